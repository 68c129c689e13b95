"""Maker fills (issue 6): resting orders fill from scripted books and trades.

Synchronous and deterministic: orders rest through `matching.submit`, the market arrives
through `matching.on_market`, every Txn is installed with `state.apply` and the ledger
invariants are checked after every step. Expected values are worked out by hand from the
inputs in the comments next to them.

The scripted market (unless a test says otherwise), fees maker 0.1 % / taker 0.2 %:

    asks  102.00 x 4
          101.00 x 2
    bids  100.00 x 3
           99.00 x 5
"""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from proxy.engine import matching
from proxy.engine.model import (
    Balance,
    Book,
    Fill,
    FillModel,
    Order,
    OrderStatus,
    OrderType,
    Side,
    SymbolRules,
    Trade,
)
from proxy.engine.rules import EngineConfig, NewOrder
from proxy.engine.state import AccountState, EngineState, Txn, apply, check_invariants

D = Decimal
SYMBOL = "BTCUSDT"
T0 = 1_767_205_900_000
MAKER, TAKER = D("0.001"), D("0.002")
RULES = SymbolRules(
    SYMBOL, "BTC", "USDT", base_precision=8, price_precision=2, maker_fee=MAKER, taker_fee=TAKER
)
BIDS = ((D("100.00"), D("3")), (D("99.00"), D("5")))
ASKS = ((D("101.00"), D("2")), (D("102.00"), D("4")))
START = {"USDT": "10000", "BTC": "10"}

SELLER, BUYER = True, False  # is_buyer_maker: True when the seller was the aggressor


class Market:
    """One symbol's scripted market and the engine state it drives."""

    def __init__(self, model: FillModel = FillModel.QUEUE, accounts: int = 1) -> None:
        self.state = EngineState()
        for acct in range(1, accounts + 1):
            self.state.accounts[acct] = AccountState(
                acct, f"key-{acct}", {a: Balance(a, D(v)) for a, v in START.items()}
            )
        self.cfg = EngineConfig(fill_model=model)
        self.now = T0
        self.version = 0
        self.book = self._book(BIDS, ASKS)
        self.orders: dict[str, Order] = {}  # latest version of every order, open or not
        self.fills: list[Fill] = []

    def _book(self, bids: tuple, asks: tuple) -> Book:
        self.version += 1
        return Book(SYMBOL, bids, asks, f"v{self.version}", self.now)

    def _commit(self, txn: Txn) -> Txn:
        apply(self.state, txn)
        check_invariants(self.state)
        self.orders.update(txn.orders)
        self.fills.extend(txn.fills)
        return txn

    def rest(self, side: Side, price: str, qty: str, account: int = 1) -> Order:
        """Submit a LIMIT order against the current book; it must rest untouched."""
        self.now += 1
        cmd = NewOrder(SYMBOL, side, OrderType.LIMIT, quantity=D(qty), price=D(price))
        res = matching.submit(self.state, account, cmd, RULES, self.book, None, None, self.cfg, self.now)
        assert res.rejection is None, res.rejection
        assert res.order is not None and res.order.status is OrderStatus.NEW
        assert res.txn.fills == []
        self._commit(res.txn)
        return res.order

    def trade(self, price: str, qty: str, is_buyer_maker: bool = SELLER) -> list[Fill]:
        """One public trade; returns the fills it produced."""
        self.now += 1
        t = Trade(D(price), D(qty), self.now, is_buyer_maker)
        txn = matching.on_market(self.state, SYMBOL, None, [t], self.cfg, {}, self.now)
        return self._commit(txn).fills

    def move(self, bids: tuple, asks: tuple) -> list[Fill]:
        """A new book snapshot (another version); returns the fills it produced."""
        self.now += 1
        self.book = self._book(bids, asks)
        txn = matching.on_market(self.state, SYMBOL, self.book, [], self.cfg, {}, self.now)
        return self._commit(txn).fills

    def repeat_book(self) -> list[Fill]:
        """The same snapshot (same version) again."""
        self.now += 1
        txn = matching.on_market(self.state, SYMBOL, self.book, [], self.cfg, {}, self.now)
        return self._commit(txn).fills

    def order(self, o: Order) -> Order:
        return self.orders[o.order_id]

    def balance(self, asset: str, account: int = 1) -> tuple[Decimal, Decimal]:
        b = self.state.accounts[account].balances[asset]
        return b.free, b.locked


def lv(*pairs: tuple[str, str]) -> tuple:
    return tuple((D(p), D(q)) for p, q in pairs)


def assert_maker_at_limit(fills: list[Fill], order: Order) -> None:
    for f in fills:
        assert f.order_id == order.order_id
        assert f.is_maker is True
        assert f.price == order.price
        assert f.commission == f.qty * order.price * MAKER
        assert f.commission_asset == "USDT"


# --------------------------------------------------------------------------- queue ahead


def test_the_displayed_size_at_its_price_when_it_rests_is_the_queue_ahead() -> None:
    m = Market()
    assert m.rest(Side.BUY, "100.00", "1").queue_ahead == D("3")  # bids 100.00 x 3
    assert m.rest(Side.SELL, "102.00", "1").queue_ahead == D("4")  # asks 102.00 x 4
    assert m.rest(Side.BUY, "100.50", "1").queue_ahead == D("0")  # inside the spread: first
    assert m.rest(Side.BUY, "99.50", "1").queue_ahead == D("0")  # an empty visible level
    assert m.rest(Side.BUY, "98.00", "1").queue_ahead is None  # below the deepest bid 99.00


def test_trades_at_the_price_consume_the_queue_then_fill_the_order() -> None:
    m = Market()
    buy = m.rest(Side.BUY, "100.00", "2")  # queue ahead 3

    assert m.trade("100.00", "2") == []  # 3 - 2 = 1 still ahead
    assert m.order(buy).queue_ahead == D("1")
    assert m.order(buy).status is OrderStatus.NEW

    fills = m.trade("100.00", "1.5")  # 1 for the queue, 0.5 for us
    assert [f.qty for f in fills] == [D("0.5")]
    assert m.order(buy).queue_ahead == D("0")
    assert (m.order(buy).status, m.order(buy).executed_qty) == (OrderStatus.PARTIALLY_FILLED, D("0.5"))

    fills = m.trade("100.00", "4")  # nothing ahead: the remaining 1.5, capped by 4
    assert [f.qty for f in fills] == [D("1.5")]
    done = m.order(buy)
    assert (done.status, done.executed_qty, done.cumm_quote_qty) == (OrderStatus.FILLED, D("2"), D("200"))
    assert_maker_at_limit(m.fills, buy)


def test_trades_through_the_price_fill_whatever_the_queue_and_at_the_limit_price() -> None:
    m = Market()
    buy = m.rest(Side.BUY, "100.00", "2")  # queue ahead 3, never consumed below
    fills = m.trade("99.50", "0.5")  # through the bid: 0.5, capped by the trade
    assert [(f.qty, f.price) for f in fills] == [(D("0.5"), D("100.00"))]
    assert m.order(buy).queue_ahead == D("0")  # the level traded through: nothing is ahead
    # through is through whatever the flag says (a buyer paying 99 left our 100 bid behind)
    fills = m.trade("99.00", "10", BUYER)
    assert [(f.qty, f.price) for f in fills] == [(D("1.5"), D("100.00"))]
    assert m.order(buy).status is OrderStatus.FILLED

    sell = m.rest(Side.SELL, "101.00", "1")  # queue ahead 2
    fills = m.trade("101.25", "0.4", BUYER)  # through the ask
    assert [(f.qty, f.price, f.side) for f in fills] == [(D("0.4"), D("101.00"), Side.SELL)]
    assert_maker_at_limit(m.fills[:2], buy)
    assert_maker_at_limit(m.fills[2:], sell)


def test_a_trade_at_our_price_counts_only_when_it_came_from_the_other_side() -> None:
    """nautilus' rule (peers.md 1.4): a trade at exactly the price reaches a resting buy
    only if a seller was the aggressor (isBuyerMaker true), a resting sell only if a buyer was."""
    m = Market()
    bid = m.rest(Side.BUY, "100.50", "1")  # alone at a new best bid: queue 0
    ask = m.rest(Side.SELL, "100.75", "1")  # alone at a new best ask: queue 0

    assert m.trade("100.50", "5", BUYER) == []  # a buyer lifted someone's offer at 100.50
    assert m.trade("100.75", "5", SELLER) == []  # a seller hit someone's bid at 100.75
    assert m.order(bid).executed_qty == m.order(ask).executed_qty == D("0")

    assert [(f.order_id, f.qty) for f in m.trade("100.50", "0.25", SELLER)] == [(bid.order_id, D("0.25"))]
    assert [(f.order_id, f.qty) for f in m.trade("100.75", "0.75", BUYER)] == [(ask.order_id, D("0.75"))]


def test_prints_from_our_own_side_do_not_move_the_queue() -> None:
    m = Market()
    buy = m.rest(Side.BUY, "100.00", "1")  # queue 3
    assert m.trade("100.00", "5", BUYER) == []
    assert m.order(buy).queue_ahead == D("3")
    assert m.trade("100.00", "2", SELLER) == []
    assert m.order(buy).queue_ahead == D("1")


def test_a_trade_smaller_than_the_remainder_gives_an_exact_partial_fill() -> None:
    m = Market()
    m.book = Book(SYMBOL, lv(("87000.50", "0.0005")), lv(("87001.00", "1")), "p1", m.now)
    buy = m.rest(Side.BUY, "87000.50", "0.003")  # queue ahead 0.0005
    fills = m.trade("87000.50", "0.00173")  # 0.0005 for the queue, 0.00123 for us
    o = m.order(buy)
    assert o.status is OrderStatus.PARTIALLY_FILLED
    assert o.executed_qty == D("0.00123")
    assert o.remaining == D("0.00177")
    assert o.cumm_quote_qty == D("107.010615")  # 0.00123 x 87000.50
    [f] = fills
    assert (f.qty, f.quote_qty, f.commission) == (D("0.00123"), D("107.010615"), D("0.107010615"))
    assert o.is_open and o.order_id in m.state.accounts[1].open_orders


# --------------------------------------------------------------------------- sharing


def test_one_trade_is_shared_among_our_orders_in_price_time_priority() -> None:
    m = Market(accounts=2)
    a = m.rest(Side.BUY, "100.00", "2", account=1)  # first at 100
    b = m.rest(Side.BUY, "100.00", "2", account=2)  # second at 100
    c = m.rest(Side.BUY, "100.50", "1", account=1)  # later, but a better price

    fills = m.trade("99.50", "2.5")  # through all three: c 1, then a 1.5, b nothing
    assert [(f.order_id, f.qty) for f in fills] == [(c.order_id, D("1")), (a.order_id, D("1.5"))]
    assert sum(f.qty for f in fills) == D("2.5")

    fills = m.trade("99.50", "4")  # a 0.5, then b 2: 2.5 of the 4 (nothing else wants it)
    assert [(f.order_id, f.qty) for f in fills] == [(a.order_id, D("0.5")), (b.order_id, D("2"))]
    assert {m.order(o).status for o in (a, b, c)} == {OrderStatus.FILLED}
    # each account paid for its own fills only: b bought 2 at 100 plus 0.2 maker fee
    assert m.balance("USDT", 2) == (D("10000") - D("200.2"), D("0"))
    assert m.balance("BTC", 2) == (D("12"), D("0"))


def test_the_real_queue_ahead_is_consumed_once_for_our_orders_at_one_price() -> None:
    m = Market()
    a = m.rest(Side.BUY, "100.00", "2")  # queue 3
    b = m.rest(Side.BUY, "100.00", "2")  # queue 3 (a is ours, not in the real book)
    fills = m.trade("100.00", "4")  # 3 real ahead, then a gets 1; b is behind a
    assert [(f.order_id, f.qty) for f in fills] == [(a.order_id, D("1"))]
    assert (m.order(a).queue_ahead, m.order(b).queue_ahead) == (D("0"), D("0"))
    fills = m.trade("100.00", "3")  # a's remaining 1, then 2 to b
    assert [(f.order_id, f.qty) for f in fills] == [(a.order_id, D("1")), (b.order_id, D("2"))]


@pytest.mark.parametrize("model", [FillModel.QUEUE, FillModel.THROUGH])
def test_random_tapes_never_fill_more_than_traded_and_always_as_maker_at_the_limit(
    model: FillModel,
) -> None:
    rng = random.Random(20251231)
    m = Market(model, accounts=3)
    orders: list[Order] = []
    for _ in range(12):
        side = rng.choice([Side.BUY, Side.SELL])
        cents = rng.randint(9700, 9999) if side is Side.BUY else rng.randint(10100, 10300)
        price = f"{cents / 100:.2f}"  # buys below the best ask, sells above the best bid: they rest
        orders.append(m.rest(side, price, f"{rng.randint(1, 8) / 10}", account=rng.randint(1, 3)))
    by_id = {o.order_id: o for o in orders}
    for _ in range(300):
        price = f"{rng.randint(9600, 10400) / 100:.2f}"
        qty = D(rng.randint(1, 40)) / 10
        fills = m.trade(price, str(qty), rng.random() < 0.5)
        for side in (Side.BUY, Side.SELL):
            assert sum((f.qty for f in fills if f.side is side), D(0)) <= qty
        for f in fills:
            o = by_id[f.order_id]
            assert f.is_maker and f.price == o.price
            assert (D(price) <= o.price) if o.side is Side.BUY else (D(price) >= o.price)
    assert m.fills  # the tape did reach the orders
    for o in orders:
        final = m.order(o)
        assert final.executed_qty == sum((f.qty for f in m.fills if f.order_id == o.order_id), D(0))
        assert final.executed_qty <= final.orig_qty


# --------------------------------------------------------------------------- models compared


TAPE = [  # (price, qty): every print by a seller, against a resting BUY 2 at 100.00, queue 3
    ("100.00", "1"),  # at the price
    ("100.00", "3"),  # at the price
    ("99.50", "0.5"),  # through
    ("99.00", "5"),  # through
]


def executed_after_each_print(model: FillModel) -> tuple[list[Decimal], Market, Order]:
    m = Market(model)
    buy = m.rest(Side.BUY, "100.00", "2")
    out = []
    for price, qty in TAPE:
        m.trade(price, qty)
        out.append(m.order(buy).executed_qty)
    return out, m, buy


def test_the_same_order_fills_later_and_less_under_queue_than_touch_and_through_only_through() -> None:
    queue, mq, buy = executed_after_each_print(FillModel.QUEUE)
    touch, mt, _ = executed_after_each_print(FillModel.TOUCH)
    through, mth, _ = executed_after_each_print(FillModel.THROUGH)
    # queue:   1 of 3 ahead used; 2 more use the queue up, 1 fills; 0.5 through; 0.5 through
    assert queue == [D("0"), D("1"), D("1.5"), D("2")]
    # touch:   the first touch fills the whole remainder
    assert touch == [D("2"), D("2"), D("2"), D("2")]
    # through: prints at the price never fill; 0.5, then the remaining 1.5
    assert through == [D("0"), D("0"), D("0.5"), D("2")]
    assert all(q <= t for q, t in zip(queue, touch, strict=True))
    assert queue.index(next(q for q in queue if q > 0)) > touch.index(next(t for t in touch if t > 0))
    for m in (mq, mt, mth):
        assert_maker_at_limit(m.fills, buy)
    # under queue and through no fill is larger than the print it came from
    for m in (mq, mth):
        for f in m.fills:
            assert f.qty <= D(f.reason["trade"]["qty"])
    assert [f.reason["model"] for f in mq.fills + mt.fills + mth.fills] == (
        ["queue"] * 3 + ["touch"] + ["through"] * 2
    )


def test_through_never_fills_at_the_price_even_with_nothing_ahead() -> None:
    for model, expected in ((FillModel.THROUGH, []), (FillModel.QUEUE, [D("1")])):
        m = Market(model)
        m.rest(Side.BUY, "100.50", "1")  # queue 0 (new best bid)
        assert [f.qty for f in m.trade("100.50", "5")] == expected, model
        through = [f.qty for f in m.trade("100.49", "0.25")]
        assert through == ([D("0.25")] if model is FillModel.THROUGH else []), model  # queue: done


@pytest.mark.parametrize("model", [FillModel.THROUGH, FillModel.TOUCH])
def test_the_book_through_rule_belongs_to_the_queue_model_only(model: FillModel) -> None:
    m = Market(model)
    buy = m.rest(Side.BUY, "100.00", "2")
    assert m.move(lv(("99.00", "5")), lv(("99.50", "3"), ("101.00", "2"))) == []
    assert m.order(buy).executed_qty == D("0")


# --------------------------------------------------------------------------- book through


def test_the_book_moving_through_fills_at_the_limit_up_to_the_crossed_size() -> None:
    m = Market()
    buy = m.rest(Side.BUY, "100.00", "2")  # queue 3
    # the asks come down through our bid: 0.5 at 99.50 and 1 at 100.00 cross, 100.50 does not
    fills = m.move(lv(("99.00", "5")), lv(("99.50", "0.5"), ("100.00", "1"), ("100.50", "3")))
    [f] = fills
    assert (f.qty, f.price, f.is_maker, f.quote_qty) == (D("1.5"), D("100.00"), True, D("150"))
    assert f.reason == {
        "source": "book",
        "model": "queue",
        "book_version": m.book.version,
        "crossed_levels": [
            {"price": D("99.50"), "qty": D("0.5"), "displayed": D("0.5")},
            {"price": D("100.00"), "qty": D("1"), "displayed": D("1")},
        ],
        "queue_ahead_before": D("3"),
        "queue_ahead_after": D("0"),
    }
    o = m.order(buy)
    assert (o.status, o.executed_qty, o.queue_ahead) == (OrderStatus.PARTIALLY_FILLED, D("1.5"), D("0"))

    assert m.repeat_book() == []  # the same snapshot: its crossed size is used up
    fills = m.move(lv(("99.00", "5")), lv(("100.00", "2")))  # a new snapshot: 0.5 more
    assert [f.qty for f in fills] == [D("0.5")]
    assert m.order(buy).status is OrderStatus.FILLED
    assert_maker_at_limit(m.fills, buy)


def test_a_crossed_size_is_shared_between_our_orders() -> None:
    m = Market(accounts=2)
    a = m.rest(Side.BUY, "100.00", "2", account=1)
    b = m.rest(Side.BUY, "100.00", "2", account=2)
    s = m.rest(Side.SELL, "101.00", "1", account=1)
    fills = m.move(lv(("99.00", "5")), lv(("99.50", "1"), ("100.00", "1.5")))  # 2.5 crosses
    assert [(f.order_id, f.qty) for f in fills] == [(a.order_id, D("2")), (b.order_id, D("0.5"))]
    # the bids rise through our ask: 0.25 at 101.00 crosses
    fills = m.move(lv(("101.00", "0.25"), ("99.00", "5")), lv(("101.50", "1")))
    assert [(f.order_id, f.qty, f.price) for f in fills] == [(s.order_id, D("0.25"), D("101.00"))]


def test_a_shrinking_level_shortens_the_queue_and_a_growing_one_does_not() -> None:
    m = Market()
    buy = m.rest(Side.BUY, "100.00", "2")  # queue 3
    m.move(lv(("100.00", "1"), ("99.00", "5")), ASKS)  # 2 canceled ahead of us (assumed)
    assert m.order(buy).queue_ahead == D("1")
    m.move(lv(("100.00", "10"), ("99.00", "5")), ASKS)  # newcomers join behind us
    assert m.order(buy).queue_ahead == D("1")
    assert [f.qty for f in m.trade("100.00", "1.5")] == [D("0.5")]

    deep = m.rest(Side.BUY, "98.00", "1")  # beyond the visible depth: not known yet
    assert deep.queue_ahead is None
    m.move(lv(("100.00", "10"), ("99.00", "5"), ("98.00", "7")), ASKS)
    assert m.order(deep).queue_ahead == D("7")  # set the first time the level is seen


# --------------------------------------------------------------------------- fees, balances


def test_buy_partial_fills_settle_per_fill_and_release_everything_when_filled() -> None:
    m = Market()
    m.book = Book(SYMBOL, lv(("87000.50", "0.0005")), lv(("87001.00", "1")), "p1", m.now)
    buy = m.rest(Side.BUY, "87000.50", "0.003")
    # reserved: 0.003 x 87000.50 x 1.001 = 261.0015 + 0.2610015
    assert m.balance("USDT") == (D("10000") - D("261.2625015"), D("261.2625015"))
    assert m.order(buy).locked_amount == D("261.2625015")

    [f1] = m.trade("87000.50", "0.00173")  # 0.00123 after the 0.0005 ahead
    assert (f1.qty, f1.quote_qty, f1.commission, f1.commission_asset) == (
        D("0.00123"), D("107.010615"), D("0.107010615"), "USDT")
    # released in proportion: cost + maker fee of the fill = 107.117625615
    assert m.balance("USDT") == (D("9738.7374985"), D("154.144875885"))
    assert m.order(buy).locked_amount == D("154.144875885")
    assert m.balance("BTC") == (D("10.00123"), D("0"))

    [f2] = m.trade("86990.00", "1")  # through: the remaining 0.00177
    assert (f2.qty, f2.quote_qty, f2.commission) == (D("0.00177"), D("153.990885"), D("0.153990885"))
    done = m.order(buy)
    assert (done.status, done.executed_qty, done.cumm_quote_qty) == (
        OrderStatus.FILLED, D("0.003"), D("261.0015"))
    assert done.locked_amount == D("0")
    assert m.balance("USDT") == (D("9738.7374985"), D("0"))  # 10000 - 261.0015 - 0.2610015
    assert m.balance("BTC") == (D("10.003"), D("0"))
    assert buy.order_id not in m.state.accounts[1].open_orders
    assert SYMBOL not in m.state.open_by_symbol  # nothing left for the watcher
    assert [f.trade_id for f in m.fills] == [f"{buy.core_id}X1", f"{buy.core_id}X2"]


def test_sell_partial_fills_release_base_and_credit_quote_less_the_maker_fee() -> None:
    m = Market()
    sell = m.rest(Side.SELL, "101.00", "0.5")  # locks 0.5 BTC
    assert m.balance("BTC") == (D("9.5"), D("0.5"))
    [f1] = m.trade("101.25", "0.2", BUYER)
    # 0.2 x 101 = 20.2, fee 0.0202 USDT: +20.1798
    assert (f1.quote_qty, f1.commission, f1.commission_asset) == (D("20.2"), D("0.0202"), "USDT")
    assert m.balance("BTC") == (D("9.5"), D("0.3"))
    assert m.balance("USDT") == (D("10020.1798"), D("0"))
    o = m.order(sell)
    assert (o.status, o.executed_qty, o.cumm_quote_qty, o.locked_amount) == (
        OrderStatus.PARTIALLY_FILLED, D("0.2"), D("20.2"), D("0.3"))

    m.trade("102.00", "1", BUYER)  # the remaining 0.3: 30.3, fee 0.0303
    o = m.order(sell)
    assert (o.status, o.executed_qty, o.cumm_quote_qty, o.locked_amount) == (
        OrderStatus.FILLED, D("0.5"), D("50.5"), D("0"))
    assert m.balance("BTC") == (D("9.5"), D("0"))
    assert m.balance("USDT") == (D("10050.4495"), D("0"))  # + 50.5 - 0.0505


def test_the_maker_fee_is_the_rules_rate_and_not_the_taker_rate() -> None:
    m = Market()
    m.rest(Side.BUY, "100.00", "1")
    [f] = m.trade("99.00", "1")
    assert f.commission == D("0.1")  # 100 x 0.001, not 100 x 0.002


# --------------------------------------------------------------------------- reasons


def test_each_fill_records_the_trade_and_the_queue_before_and_after() -> None:
    m = Market()
    m.rest(Side.BUY, "100.00", "2")
    m.trade("100.00", "2")  # queue 3 -> 1, no fill
    [f] = m.trade("100.00", "1.25")
    assert f.reason == {
        "source": "trade",
        "model": "queue",
        "trade": {"price": D("100.00"), "qty": D("1.25"), "time": m.now, "isBuyerMaker": True},
        "through": False,
        "queue_ahead_before": D("1"),
        "queue_ahead_after": D("0"),
    }
    [f] = m.trade("99.99", "0.5")
    assert f.reason["through"] is True
    assert (f.reason["queue_ahead_before"], f.reason["queue_ahead_after"]) == (D("0"), D("0"))
    assert f.reason["trade"] == {"price": D("99.99"), "qty": D("0.5"), "time": m.now, "isBuyerMaker": True}
    assert f.time_ms == m.now


def test_fill_events_carry_the_same_reason_for_the_audit_log() -> None:
    m = Market()
    m.rest(Side.BUY, "100.00", "1")
    t = Trade(D("99.00"), D("0.4"), m.now + 1, SELLER)
    txn = matching.on_market(m.state, SYMBOL, None, [t], m.cfg, {}, m.now + 1)
    [fill] = txn.fills
    [event] = [e for e in txn.events if e.kind == "order.fill"]
    assert event.data["reason"] == fill.reason
    assert (event.data["qty"], event.data["price"], event.data["is_maker"]) == (D("0.4"), D("100.00"), True)
    m._commit(txn)


# --------------------------------------------------------------------------- only after it rests


def test_a_trade_printed_before_the_order_rested_never_fills_it() -> None:
    """A poll page holds the trades since the previous poll, some of them older than an
    order placed in between: later on our tape, but printed before the order arrived."""
    m = Market()
    o = m.rest(Side.BUY, "100.50", "1")  # inside the spread: nothing ahead of it
    before = Trade(D("100.00"), D("5"), o.time_ms, SELLER)  # through its price, as it arrived
    at = Trade(D("100.00"), D("0.4"), o.time_ms + 1, SELLER)  # 1 ms after it arrived: counts
    m.now += 1
    txn = matching.on_market(m.state, SYMBOL, None, [before, at], m.cfg, {}, m.now)
    fills = m._commit(txn).fills

    assert [(f.qty, f.reason["trade"]["time"]) for f in fills] == [(D("0.4"), o.time_ms + 1)]
    assert_maker_at_limit(fills, o)
    assert (m.order(o).status, m.order(o).executed_qty) == (OrderStatus.PARTIALLY_FILLED, D("0.4"))


def test_the_boundary_is_mexc_time_estimated_from_the_book() -> None:
    """MEXC stamps its depth answers; trade times are MEXC's too. The order's boundary is
    the book's stamp plus the time since we fetched it, so the two clocks never meet
    (a replayed recording is a year behind ours)."""
    m = Market()
    recorded = T0 - 365 * 86_400_000
    m.book = Book(SYMBOL, BIDS, ASKS, "rec-1", seen_ms=m.now, market_ms=recorded)
    m.now += 49  # rest() adds 1 more: the order arrives 50 ms after the book was fetched
    o = m.rest(Side.BUY, "100.50", "1")
    assert o.armed_ms == recorded + 50

    early = Trade(D("100.00"), D("0.3"), recorded + 50, SELLER)  # through, as it arrived
    late = Trade(D("100.00"), D("0.2"), recorded + 51, SELLER)
    m.now += 1
    fills = m._commit(matching.on_market(m.state, SYMBOL, None, [early, late], m.cfg, {}, m.now)).fills

    assert [(f.qty, f.reason["trade"]["time"]) for f in fills] == [(D("0.2"), recorded + 51)]
    assert_maker_at_limit(fills, o)


def test_a_book_without_a_stamp_falls_back_to_our_clock() -> None:
    assert Book(SYMBOL, BIDS, ASKS, "v", seen_ms=T0).market_time_at(T0 + 7) == T0 + 7
    assert Book(SYMBOL, BIDS, ASKS, "v", seen_ms=T0, market_ms=5).market_time_at(T0 + 7) == 12
