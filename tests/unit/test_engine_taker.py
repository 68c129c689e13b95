"""The taker side of the engine: matching.submit against scripted L2 books, and cancel.

The rules are the recorded BTCUSDT exchangeInfo (maker 0, taker 0.0005, price 2 decimals,
quantity 8). Every expected number below is worked out by hand from the book and the
order; each accepted scenario is applied to the state and the ledger invariants checked.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from proxy.engine import matching
from proxy.engine.model import (
    Balance,
    Book,
    OrderStatus,
    OrderType,
    Rejection,
    RejectReason,
    Side,
    SymbolRules,
)
from proxy.engine.rules import EngineConfig, NewOrder
from proxy.engine.state import AccountState, EngineState, Txn, apply, check_invariants
from proxy.errors import REJECT_TO_ERR, ApiError
from proxy.parsers import parse_exchange_info

D = Decimal
ROOT = Path(__file__).resolve().parents[2]
NOW = 1_767_205_900_000
FIRST_SEQ = 700_000_000_000_000_001  # EngineState's first order sequence


def _recorded_rules() -> SymbolRules:
    with (ROOT / "cassettes" / "mexc_public.yaml").open(encoding="utf-8") as f:
        interactions = yaml.safe_load(f)["interactions"]
    for it in interactions:
        if it["request"]["uri"] == "https://api.mexc.com/api/v3/exchangeInfo?symbol=BTCUSDT":
            return parse_exchange_info(json.loads(it["response"]["body"]["string"]))["BTCUSDT"]
    raise LookupError("BTCUSDT exchangeInfo")


RULES = _recorded_rules()
CFG = EngineConfig()

# asks 100000 x 0.1, 100001 x 0.2, 100002 x 0.5 (0.8 BTC, 80001.2 USDT in all)
# bids  99999 x 0.1,  99998 x 0.2,  99997 x 0.5
ASKS = ((D("100000.00"), D("0.1")), (D("100001.00"), D("0.2")), (D("100002.00"), D("0.5")))
BIDS = ((D("99999.00"), D("0.1")), (D("99998.00"), D("0.2")), (D("99997.00"), D("0.5")))
BOOK = Book("BTCUSDT", BIDS, ASKS, version="1", seen_ms=NOW - 100)


def make_state(mx_deduct: bool = False, **balances: str) -> EngineState:
    state = EngineState()
    add_account(state, 1, mx_deduct, **balances)
    return state


def add_account(state: EngineState, account_id: int, mx_deduct: bool = False, **balances: str) -> None:
    state.accounts[account_id] = AccountState(
        account_id,
        f"key-{account_id}",
        balances={a: Balance(a, D(v)) for a, v in balances.items()},
        mx_deduct=mx_deduct,
    )


def submit(
    state: EngineState,
    cmd: NewOrder,
    book: Book = BOOK,
    *,
    account_id: int = 1,
    rules: SymbolRules = RULES,
    cfg: EngineConfig = CFG,
    mx_price: Decimal | None = None,
    last_price: Decimal | None = None,
) -> matching.Result:
    """Submit; an accepted order's Txn is applied (as the service does after commit) and
    the invariants are checked. A rejection must leave no writes behind."""
    result = matching.submit(state, account_id, cmd, rules, book, last_price, mx_price, cfg, NOW)
    if result.rejection is None:
        apply(state, result.txn)
    else:
        assert result.order is None
        assert result.txn.balances == {} and result.txn.orders == {} and result.txn.fills == []
    check_invariants(state)
    return result


def balances(state: EngineState, account_id: int = 1) -> dict[str, tuple[Decimal, Decimal]]:
    return {a: (b.free, b.locked) for a, b in state.accounts[account_id].balances.items()}


def mexc(rej: Rejection | None) -> tuple[int, int, str]:
    assert rej is not None
    err = ApiError(REJECT_TO_ERR[rej.reason], rej.detail, **rej.params)
    return err.status, err.code, err.msg


def limit(side: Side, price: str, qty: str, type_: OrderType = OrderType.LIMIT, cid: str | None = None):
    return NewOrder("BTCUSDT", side, type_, quantity=D(qty), price=D(price), client_order_id=cid)


def market_qty(side: Side, qty: str) -> NewOrder:
    return NewOrder("BTCUSDT", side, OrderType.MARKET, quantity=D(qty))


def market_quote(side: Side, quote: str) -> NewOrder:
    return NewOrder("BTCUSDT", side, OrderType.MARKET, quote_order_qty=D(quote))


def takes(result: matching.Result) -> list[tuple[Decimal, Decimal, Decimal, Decimal, str]]:
    """(price, qty, quote_qty, commission, commission_asset) of each fill."""
    return [(f.price, f.qty, f.quote_qty, f.commission, f.commission_asset) for f in result.txn.fills]


# ---------------------------------------------------------------- LIMIT resting


def test_limit_buy_below_the_ask_rests_new_with_price_times_qty_locked() -> None:
    state = make_state(USDT="100000", BTC="1")

    res = submit(state, limit(Side.BUY, "99990.00", "0.5"))

    o = res.order
    assert o is not None and res.rejection is None
    assert o.status is OrderStatus.NEW
    assert (o.executed_qty, o.cumm_quote_qty) == (D("0"), D("0"))
    # 99990 x 0.5 = 49995; the resting part reserves limit x (1 + maker fee 0)
    assert (o.locked_asset, o.locked_amount) == ("USDT", D("49995"))
    assert res.txn.fills == []
    assert balances(state) == {"USDT": (D("50005"), D("49995")), "BTC": (D("1"), D("0"))}
    assert state.accounts[1].open_orders == {o.order_id: o}


def test_limit_buy_reserves_the_maker_fee_when_the_symbol_charges_one() -> None:
    state = make_state(USDT="100000")
    rules = replace(RULES, maker_fee=D("0.001"))  # e.g. a config fee override

    res = submit(state, limit(Side.BUY, "99990.00", "0.5"), rules=rules)

    # 49995 x 1.001 = 50044.995
    assert res.order is not None and res.order.locked_amount == D("50044.995")
    assert balances(state) == {"USDT": (D("49955.005"), D("50044.995"))}


def test_limit_sell_above_the_bid_rests_with_the_base_quantity_locked() -> None:
    state = make_state(USDT="0", BTC="1")

    res = submit(state, limit(Side.SELL, "100010.00", "0.3"))

    o = res.order
    assert o is not None and o.status is OrderStatus.NEW
    assert (o.locked_asset, o.locked_amount) == ("BTC", D("0.3"))
    assert res.txn.fills == []
    assert balances(state) == {"USDT": (D("0"), D("0")), "BTC": (D("0.7"), D("0.3"))}


# ---------------------------------------------------------------- marketable LIMIT


def test_marketable_limit_buy_takes_each_level_at_its_price_and_rests_the_rest() -> None:
    state = make_state(USDT="100000", BTC="1")

    res = submit(state, limit(Side.BUY, "100001.00", "0.5"))

    # 0.1 @ 100000 (cost 10000, fee 5) and 0.2 @ 100001 (cost 20000.2, fee 10.0001);
    # 100002 is above the limit, so 0.2 rests at 100001
    assert takes(res) == [
        (D("100000"), D("0.1"), D("10000"), D("5"), "USDT"),
        (D("100001"), D("0.2"), D("20000.2"), D("10.0001"), "USDT"),
    ]
    assert all(f.is_maker is False for f in res.txn.fills)
    o = res.order
    assert o is not None
    assert o.status is OrderStatus.PARTIALLY_FILLED
    assert (o.orig_qty, o.executed_qty, o.cumm_quote_qty) == (D("0.5"), D("0.3"), D("30000.2"))
    assert o.locked_amount == D("20000.2")  # 0.2 x 100001 x (1 + 0)
    # 100000 - 10005 - 20010.2001 - 20000.2 locked
    assert balances(state) == {"USDT": (D("49984.5999"), D("20000.2")), "BTC": (D("1.3"), D("0"))}


def test_marketable_limit_sell_pays_the_taker_fee_in_quote() -> None:
    state = make_state(USDT="0", BTC="1")

    res = submit(state, limit(Side.SELL, "99998.00", "0.5"))

    # 0.1 @ 99999 (9999.9, fee 4.99995) and 0.2 @ 99998 (19999.6, fee 9.9998); 0.2 rests
    assert takes(res) == [
        (D("99999"), D("0.1"), D("9999.9"), D("4.99995"), "USDT"),
        (D("99998"), D("0.2"), D("19999.6"), D("9.9998"), "USDT"),
    ]
    o = res.order
    assert o is not None and o.status is OrderStatus.PARTIALLY_FILLED
    assert (o.executed_qty, o.locked_asset, o.locked_amount) == (D("0.3"), "BTC", D("0.2"))
    # 9999.9 - 4.99995 + 19999.6 - 9.9998
    assert balances(state) == {"USDT": (D("29984.50025"), D("0")), "BTC": (D("0.5"), D("0.2"))}


def test_limit_fully_filled_by_the_book_is_filled_and_holds_nothing() -> None:
    state = make_state(USDT="100000")

    res = submit(state, limit(Side.BUY, "100002.00", "0.3"))

    assert res.order is not None and res.order.status is OrderStatus.FILLED
    assert res.order.locked_amount == D("0")
    assert state.accounts[1].open_orders == {}
    assert balances(state) == {"USDT": (D("69984.7999"), D("0")), "BTC": (D("0.3"), D("0"))}


def test_each_fill_records_the_book_level_it_came_from() -> None:
    state = make_state(USDT="100000")

    res = submit(state, limit(Side.BUY, "100001.00", "0.5"))

    assert [f.reason for f in res.txn.fills] == [
        {
            "source": "book",
            "book_version": "1",
            "level_price": D("100000"),
            "level_qty": D("0.1"),
            "consumed_before": D("0"),
        },
        {
            "source": "book",
            "book_version": "1",
            "level_price": D("100001"),
            "level_qty": D("0.2"),
            "consumed_before": D("0"),
        },
    ]
    fill_events = [e for e in res.txn.events if e.kind == "order.fill"]
    assert [e.data["reason"] for e in fill_events] == [f.reason for f in res.txn.fills]


# ---------------------------------------------------------------- MARKET


def test_market_buy_by_quantity_walks_the_book_and_fills() -> None:
    state = make_state(USDT="100000")

    res = submit(state, market_qty(Side.BUY, "0.4"))

    assert takes(res) == [
        (D("100000"), D("0.1"), D("10000"), D("5"), "USDT"),
        (D("100001"), D("0.2"), D("20000.2"), D("10.0001"), "USDT"),
        (D("100002"), D("0.1"), D("10000.2"), D("5.0001"), "USDT"),
    ]
    o = res.order
    assert o is not None and o.status is OrderStatus.FILLED
    assert (o.orig_qty, o.executed_qty, o.cumm_quote_qty) == (D("0.4"), D("0.4"), D("40000.4"))
    # 100000 - 40000.4 - 20.0002
    assert balances(state) == {"USDT": (D("59979.5998"), D("0")), "BTC": (D("0.4"), D("0"))}


def test_market_buy_by_quantity_larger_than_the_book_is_partially_canceled() -> None:
    state = make_state(USDT="100000")

    res = submit(state, market_qty(Side.BUY, "1"))

    o = res.order
    assert o is not None and o.status is OrderStatus.PARTIALLY_CANCELED
    assert (o.orig_qty, o.executed_qty, o.cumm_quote_qty) == (D("1"), D("0.8"), D("80001.2"))
    assert o.locked_amount == D("0")
    # 80001.2 x 1.0005 = 80041.2006
    assert balances(state) == {"USDT": (D("19958.7994"), D("0")), "BTC": (D("0.8"), D("0"))}


def test_market_buy_never_walks_past_the_slippage_cap() -> None:
    # cap 5 %: limit 100000 x 1.05 = 105000; 105000.01 is not taken
    asks = ((D("100000"), D("0.1")), (D("105000"), D("0.1")), (D("105000.01"), D("5")))
    book = Book("BTCUSDT", BIDS, asks, "s")
    state = make_state(USDT="100000")

    res = submit(state, market_qty(Side.BUY, "0.5"), book)

    assert [(f.price, f.qty) for f in res.txn.fills] == [(D("100000"), D("0.1")), (D("105000"), D("0.1"))]
    assert res.order is not None and res.order.status is OrderStatus.PARTIALLY_CANCELED
    # 100000 - (10000 + 5) - (10500 + 5.25)
    assert balances(state) == {"USDT": (D("79489.75"), D("0")), "BTC": (D("0.2"), D("0"))}


def test_market_buy_by_quote_spends_that_much_quote_level_by_level() -> None:
    state = make_state(USDT="100000")

    res = submit(state, market_quote(Side.BUY, "25000"))

    # 0.1 @ 100000 = 10000, 15000 left; 15000 / 100001 = 0.14999850 (8 decimals, down),
    # costing 14999.9999985; the 0.0000015 left buys nothing at 100002
    assert takes(res) == [
        (D("100000"), D("0.1"), D("10000"), D("5"), "USDT"),
        (D("100001"), D("0.14999850"), D("14999.9999985"), D("7.49999999925"), "USDT"),
    ]
    o = res.order
    assert o is not None and o.status is OrderStatus.FILLED
    assert (o.orig_qty, o.executed_qty) == (D("0.2499985"), D("0.2499985"))
    assert o.cumm_quote_qty == D("24999.9999985")
    assert o.orig_quote_order_qty == D("25000")
    # 100000 - 24999.9999985 - 12.49999999925
    assert balances(state) == {"USDT": (D("74987.50000150075"), D("0")), "BTC": (D("0.2499985"), D("0"))}


def test_market_buy_by_quote_larger_than_the_book_is_partially_canceled() -> None:
    state = make_state(USDT="100000")

    res = submit(state, market_quote(Side.BUY, "90000"))

    o = res.order
    assert o is not None and o.status is OrderStatus.PARTIALLY_CANCELED
    # the whole book: 0.8 BTC for 80001.2; 9998.8 of the 90000 stays unspent
    assert (o.executed_qty, o.cumm_quote_qty, o.locked_amount) == (D("0.8"), D("80001.2"), D("0"))
    assert balances(state) == {"USDT": (D("19958.7994"), D("0")), "BTC": (D("0.8"), D("0"))}


def test_market_sell_by_quantity_walks_the_bids() -> None:
    state = make_state(USDT="0", BTC="1")

    res = submit(state, market_qty(Side.SELL, "0.4"))

    assert takes(res) == [
        (D("99999"), D("0.1"), D("9999.9"), D("4.99995"), "USDT"),
        (D("99998"), D("0.2"), D("19999.6"), D("9.9998"), "USDT"),
        (D("99997"), D("0.1"), D("9999.7"), D("4.99985"), "USDT"),
    ]
    assert res.order is not None and res.order.status is OrderStatus.FILLED
    # 39999.2 - 19.9996
    assert balances(state) == {"USDT": (D("39979.2004"), D("0")), "BTC": (D("0.6"), D("0"))}


def test_market_sell_by_quote_sells_what_that_quote_amount_buys() -> None:
    state = make_state(USDT="0", BTC="1")

    res = submit(state, market_quote(Side.SELL, "15000"))

    # 0.1 @ 99999 = 9999.9, 5000.1 left; 5000.1 / 99998 = 0.050002 (down), 5000.099996
    assert [(f.price, f.qty, f.quote_qty) for f in res.txn.fills] == [
        (D("99999"), D("0.1"), D("9999.9")),
        (D("99998"), D("0.050002"), D("5000.099996")),
    ]
    assert res.order is not None and res.order.status is OrderStatus.FILLED
    # 9999.9 - 4.99995 + 5000.099996 - 2.500049998 (0.05 % of each)
    assert balances(state) == {"USDT": (D("14992.499996002"), D("0")), "BTC": (D("0.849998"), D("0"))}


def test_market_order_on_an_empty_side_is_rejected_no_valid_trade_price() -> None:
    state = make_state(USDT="100000")
    book = Book("BTCUSDT", BIDS, (), "empty")

    res = submit(state, market_qty(Side.BUY, "0.1"), book)

    assert res.rejection is not None and res.rejection.reason is RejectReason.NO_LIQUIDITY
    assert mexc(res.rejection) == (400, 30010, "no valid trade price")
    assert balances(state) == {"USDT": (D("100000"), D("0"))}


# ---------------------------------------------------------------- LIMIT_MAKER


@pytest.mark.parametrize(
    ("side", "price"), [(Side.BUY, "100000.00"), (Side.BUY, "100500.00"), (Side.SELL, "99999.00")]
)
def test_limit_maker_that_would_cross_is_rejected(side: Side, price: str) -> None:
    state = make_state(USDT="100000", BTC="1")

    res = submit(state, limit(side, price, "0.1", OrderType.LIMIT_MAKER))

    assert res.rejection is not None and res.rejection.reason is RejectReason.WOULD_TAKE
    assert mexc(res.rejection) == (400, -2010, "Order would immediately match and take.")
    assert balances(state) == {"USDT": (D("100000"), D("0")), "BTC": (D("1"), D("0"))}


def test_limit_maker_inside_the_spread_rests() -> None:
    state = make_state(USDT="100000")

    res = submit(state, limit(Side.BUY, "99999.50", "0.1", OrderType.LIMIT_MAKER))

    assert res.order is not None and res.order.status is OrderStatus.NEW
    assert res.txn.fills == []
    assert balances(state) == {"USDT": (D("90000.05"), D("9999.95"))}


def test_limit_maker_that_would_cross_with_cancel_policy_is_canceled_untraded() -> None:
    state = make_state(USDT="100000")

    cmd = limit(Side.BUY, "100000.00", "0.1", OrderType.LIMIT_MAKER)

    res = submit(state, cmd, cfg=EngineConfig(limit_maker_cross="cancel"))

    assert res.order is not None and res.order.status is OrderStatus.CANCELED
    assert res.txn.fills == []
    assert balances(state) == {"USDT": (D("100000"), D("0"))}


# ---------------------------------------------------------------- IOC / FOK


def test_ioc_takes_what_crosses_and_cancels_the_rest() -> None:
    state = make_state(USDT="100000")

    res = submit(state, limit(Side.BUY, "100001.00", "0.5", OrderType.IMMEDIATE_OR_CANCEL))

    o = res.order
    assert o is not None and o.status is OrderStatus.PARTIALLY_CANCELED
    assert (o.executed_qty, o.cumm_quote_qty, o.locked_amount) == (D("0.3"), D("30000.2"), D("0"))
    assert state.accounts[1].open_orders == {}
    # 100000 - 10005 - 20010.2001
    assert balances(state) == {"USDT": (D("69984.7999"), D("0")), "BTC": (D("0.3"), D("0"))}


def test_ioc_that_crosses_nothing_is_canceled() -> None:
    state = make_state(USDT="0", BTC="1")

    res = submit(state, limit(Side.SELL, "100000.00", "0.5", OrderType.IMMEDIATE_OR_CANCEL))

    assert res.order is not None and res.order.status is OrderStatus.CANCELED
    assert res.order.executed_qty == D("0")
    assert res.txn.fills == []
    assert balances(state) == {"USDT": (D("0"), D("0")), "BTC": (D("1"), D("0"))}


def test_fok_that_the_visible_book_can_fill_is_filled() -> None:
    state = make_state(USDT="100000")

    res = submit(state, limit(Side.BUY, "100001.00", "0.3", OrderType.FILL_OR_KILL))

    assert res.order is not None and res.order.status is OrderStatus.FILLED
    assert [(f.price, f.qty) for f in res.txn.fills] == [(D("100000"), D("0.1")), (D("100001"), D("0.2"))]
    assert balances(state) == {"USDT": (D("69984.7999"), D("0")), "BTC": (D("0.3"), D("0"))}


@pytest.mark.parametrize(
    ("side", "price", "qty"),
    [(Side.BUY, "100001.00", "0.30000001"), (Side.SELL, "99998.00", "0.31"), (Side.BUY, "99999.00", "0.1")],
)
def test_fok_that_cannot_fill_completely_fills_nothing(side: Side, price: str, qty: str) -> None:
    state = make_state(USDT="100000", BTC="1")

    res = submit(state, limit(side, price, qty, OrderType.FILL_OR_KILL))

    assert res.order is not None and res.order.status is OrderStatus.CANCELED
    assert res.order.executed_qty == D("0")
    assert res.txn.fills == []
    assert balances(state) == {"USDT": (D("100000"), D("0")), "BTC": (D("1"), D("0"))}


# ---------------------------------------------------------------- insufficient funds


@pytest.mark.parametrize(
    ("cmd", "funds"),
    [
        (limit(Side.BUY, "99990.00", "0.01"), {"USDT": "999.89"}),  # needs 999.9
        (limit(Side.SELL, "100010.00", "0.5"), {"BTC": "0.49999999"}),
        # the IOC's fills need 10005 + 20010.2001
        (limit(Side.BUY, "100001.00", "0.5", OrderType.IMMEDIATE_OR_CANCEL), {"USDT": "30015.2"}),
        (market_qty(Side.BUY, "0.1"), {"USDT": "10004.99"}),  # 10000 + 5 fee
        (market_qty(Side.SELL, "0.1"), {"BTC": "0.09"}),
        (market_quote(Side.BUY, "10000"), {"USDT": "10000"}),  # spends 10000, fee 5 on top
    ],
)
def test_insufficient_funds_is_rejected_at_submit_and_nothing_is_reserved(
    cmd: NewOrder, funds: dict[str, str]
) -> None:
    state = make_state(**funds)

    res = submit(state, cmd)

    assert res.rejection is not None and res.rejection.reason is RejectReason.INSUFFICIENT_FUNDS
    assert mexc(res.rejection) == (400, 30004, "Insufficient position")
    assert balances(state) == {a: (D(v), D("0")) for a, v in funds.items()}
    assert state.accounts[1].open_orders == {}
    assert state.market("BTCUSDT").consumed == {}


@pytest.mark.parametrize("type_", [OrderType.IMMEDIATE_OR_CANCEL, OrderType.FILL_OR_KILL])
def test_ioc_and_fok_must_be_affordable_in_full_at_submit(type_: OrderType) -> None:
    # A BUY needs what the same LIMIT would reserve (0.5 x 99000 x (1 + maker fee 0) =
    # 49500), a SELL its whole quantity, even when nothing crosses and it is cancelled at
    # once: insufficient funds are rejected at submit (30004), never discovered later.
    state = make_state(USDT="49499.99", BTC="0.49999999")

    buy = submit(state, limit(Side.BUY, "99000.00", "0.5", type_))
    sell = submit(state, limit(Side.SELL, "101000.00", "0.5", type_))

    assert buy.rejection is not None and buy.rejection.reason is RejectReason.INSUFFICIENT_FUNDS
    assert sell.rejection is not None and sell.rejection.reason is RejectReason.INSUFFICIENT_FUNDS
    assert mexc(sell.rejection) == (400, 30004, "Insufficient position")
    assert balances(state) == {"USDT": (D("49499.99"), D("0")), "BTC": (D("0.49999999"), D("0"))}
    limit_buy = submit(state, limit(Side.BUY, "99000.00", "0.5"))  # the LIMIT is refused too
    assert limit_buy.rejection is not None and limit_buy.rejection.reason is RejectReason.INSUFFICIENT_FUNDS

    rich = make_state(USDT="49500", BTC="0.5")
    buy = submit(rich, limit(Side.BUY, "99000.00", "0.5", type_))
    sell = submit(rich, limit(Side.SELL, "101000.00", "0.5", type_))

    assert buy.order is not None and buy.order.status is OrderStatus.CANCELED
    assert sell.order is not None and sell.order.status is OrderStatus.CANCELED
    assert balances(rich) == {"USDT": (D("49500"), D("0")), "BTC": (D("0.5"), D("0"))}


def test_ioc_buy_needs_funds_for_its_unfilled_part_too() -> None:
    # 0.3 fills for 10005 + 20010.2001 = 30015.2001 (taker fee 0.05 %); the unfilled 0.2
    # as the same LIMIT would rest it is 0.2 x 100001 x (1 + maker fee 0) = 20000.2 more
    short = make_state(USDT="30015.2001")

    res = submit(short, limit(Side.BUY, "100001.00", "0.5", OrderType.IMMEDIATE_OR_CANCEL))

    assert res.rejection is not None and res.rejection.reason is RejectReason.INSUFFICIENT_FUNDS
    assert balances(short) == {"USDT": (D("30015.2001"), D("0"))}

    state = make_state(USDT="50015.4001")
    res = submit(state, limit(Side.BUY, "100001.00", "0.5", OrderType.IMMEDIATE_OR_CANCEL))

    assert res.order is not None and res.order.status is OrderStatus.PARTIALLY_CANCELED
    assert (res.order.executed_qty, res.order.locked_amount) == (D("0.3"), D("0"))
    assert balances(state) == {"USDT": (D("20000.2"), D("0")), "BTC": (D("0.3"), D("0"))}


def test_funds_that_cover_the_taker_fee_exactly_are_enough() -> None:
    state = make_state(USDT="10005")

    res = submit(state, market_qty(Side.BUY, "0.1"))

    assert res.order is not None and res.order.status is OrderStatus.FILLED
    assert balances(state) == {"USDT": (D("0"), D("0")), "BTC": (D("0.1"), D("0"))}


def test_a_rule_rejection_inside_submit_reserves_nothing() -> None:
    state = make_state(USDT="100000")

    # BTCUSDT band 0.005 around the last price 100000: a buy above 100500 is out of range
    res = submit(state, limit(Side.BUY, "100500.01", "0.1"), last_price=D("100000"))

    assert res.rejection is not None and res.rejection.reason is RejectReason.PRICE_OUT_OF_RANGE
    assert mexc(res.rejection) == (400, 30087, "Order price exceeds allowed range")
    assert balances(state) == {"USDT": (D("100000"), D("0"))}


# ---------------------------------------------------------------- fees


def test_taker_fee_is_charged_in_quote_on_both_sides() -> None:
    state = make_state(USDT="100000", BTC="1")

    buy = submit(state, market_qty(Side.BUY, "0.1"))
    sell = submit(state, market_qty(Side.SELL, "0.1"))

    # 0.05 % of 10000 and of 9999.9
    assert [(f.side, f.commission, f.commission_asset) for f in buy.txn.fills + sell.txn.fills] == [
        (Side.BUY, D("5"), "USDT"),
        (Side.SELL, D("4.99995"), "USDT"),
    ]
    # 100000 - 10005 + 9999.9 - 4.99995
    assert balances(state) == {"USDT": (D("99989.90005"), D("0")), "BTC": (D("1"), D("0"))}


def test_mx_deduction_pays_a_buy_fee_in_mx_at_the_discount() -> None:
    state = make_state(mx_deduct=True, USDT="100000", MX="10")

    res = submit(state, market_qty(Side.BUY, "0.1"), mx_price=D("2"))

    # 5 USDT x (1 - 0.2) / 2 USDT per MX = 2 MX; the USDT fee reserve comes back
    assert takes(res) == [(D("100000"), D("0.1"), D("10000"), D("2"), "MX")]
    assert balances(state) == {
        "USDT": (D("90000"), D("0")),
        "MX": (D("8"), D("0")),
        "BTC": (D("0.1"), D("0")),
    }


def test_mx_deduction_pays_a_sell_fee_in_mx_and_the_sale_is_credited_whole() -> None:
    state = make_state(mx_deduct=True, USDT="0", BTC="1", MX="10")

    res = submit(state, market_qty(Side.SELL, "0.1"), mx_price=D("2"))

    # 4.99995 x 0.8 / 2 = 1.99998 MX
    assert takes(res) == [(D("99999"), D("0.1"), D("9999.9"), D("1.99998"), "MX")]
    assert balances(state) == {
        "USDT": (D("9999.9"), D("0")),
        "BTC": (D("0.9"), D("0")),
        "MX": (D("8.00002"), D("0")),
    }


def test_mx_deduction_on_a_resting_marketable_limit_releases_only_the_fee_reserve() -> None:
    state = make_state(mx_deduct=True, USDT="100000", MX="10")

    res = submit(state, limit(Side.BUY, "100001.00", "0.5"), mx_price=D("2"))

    # fees 5 -> 2 MX and 10.0001 -> 4.00004 MX; the rest (0.2 x 100001) stays locked
    fees = [(f.commission, f.commission_asset) for f in res.txn.fills]
    assert fees == [(D("2"), "MX"), (D("4.00004"), "MX")]
    assert balances(state) == {
        "USDT": (D("49999.6"), D("20000.2")),  # 100000 - 10000 - 20000.2 - 20000.2
        "MX": (D("3.99996"), D("0")),
        "BTC": (D("0.3"), D("0")),
    }


def test_mx_deduction_falls_back_to_quote_per_fill_when_mx_runs_out() -> None:
    state = make_state(mx_deduct=True, USDT="100000", MX="2")

    res = submit(state, market_qty(Side.BUY, "0.3"), mx_price=D("2"))

    # first fee 2 MX uses all the MX; the second (4.00004 MX) is charged 10.0001 USDT
    fees = [(f.commission, f.commission_asset) for f in res.txn.fills]
    assert fees == [(D("2"), "MX"), (D("10.0001"), "USDT")]
    assert balances(state) == {
        "USDT": (D("69989.7999"), D("0")),  # 100000 - 10000 - 20000.2 - 10.0001
        "MX": (D("0"), D("0")),
        "BTC": (D("0.3"), D("0")),
    }


def test_fee_matches_mexcs_recorded_trade() -> None:
    # live myTrades 2025-06 (reference 6.1 / 7.15): BUY 3 FUSD at 1 -> commission 0.0015 USDT
    rules = replace(RULES, symbol="FUSDUSDT", base_asset="FUSD")
    book = Book("FUSDUSDT", ((D("0.9999"), D("100")),), ((D("1"), D("100")),), "f")
    state = make_state(USDT="10")

    res = submit(state, NewOrder("FUSDUSDT", Side.BUY, OrderType.MARKET, quantity=D("3")), book, rules=rules)

    assert takes(res) == [(D("1"), D("3"), D("3"), D("0.0015"), "USDT")]
    assert balances(state) == {"USDT": (D("6.9985"), D("0")), "FUSD": (D("3"), D("0"))}


@pytest.mark.parametrize(("mx_deduct", "mx_price"), [(False, D("2")), (True, None)])
def test_no_mx_fee_when_deduction_is_off_or_mx_has_no_price(
    mx_deduct: bool, mx_price: Decimal | None
) -> None:
    state = make_state(mx_deduct=mx_deduct, USDT="100000", MX="10")

    res = submit(state, market_qty(Side.BUY, "0.1"), mx_price=mx_price)

    assert takes(res) == [(D("100000"), D("0.1"), D("10000"), D("5"), "USDT")]
    assert balances(state)["MX"] == (D("10"), D("0"))


# ---------------------------------------------------------------- liquidity consumption


def test_second_order_on_the_same_book_version_cannot_take_the_same_liquidity() -> None:
    state = make_state(USDT="100000")
    add_account(state, 2, USDT="100000")

    first = submit(state, market_qty(Side.BUY, "0.15"))
    consumed_after_first = dict(state.market("BTCUSDT").consumed)
    # the same snapshot fetched again: a new object, the same version
    again = Book("BTCUSDT", BIDS, ASKS, "1", NOW - 50)
    second = submit(state, market_qty(Side.BUY, "0.2"), again, account_id=2)

    assert [(f.price, f.qty) for f in first.txn.fills] == [(D("100000"), D("0.1")), (D("100001"), D("0.05"))]
    assert consumed_after_first == {(Side.SELL, D("100000")): D("0.1"), (Side.SELL, D("100001")): D("0.05")}
    # 100000 is used up; 0.15 of 100001 is left, then 100002
    assert [(f.price, f.qty, f.reason["consumed_before"]) for f in second.txn.fills] == [
        (D("100001"), D("0.15"), D("0.05")),
        (D("100002"), D("0.05"), D("0")),
    ]
    # 100000 - (15000.15 + 7.500075) - (5000.1 + 2.50005)
    assert balances(state, 2) == {"USDT": (D("79989.749875"), D("0")), "BTC": (D("0.2"), D("0"))}


def test_a_new_book_version_makes_the_liquidity_available_again() -> None:
    state = make_state(USDT="100000")
    submit(state, market_qty(Side.BUY, "0.15"))

    res = submit(state, market_qty(Side.BUY, "0.1"), Book("BTCUSDT", BIDS, ASKS, "2", NOW))

    assert [(f.price, f.qty, f.reason) for f in res.txn.fills] == [
        (
            D("100000"),
            D("0.1"),
            {
                "source": "book",
                "book_version": "2",
                "level_price": D("100000"),
                "level_qty": D("0.1"),
                "consumed_before": D("0"),
            },
        )
    ]
    assert state.market("BTCUSDT").consumed == {(Side.SELL, D("100000")): D("0.1")}


def test_consumed_liquidity_turns_a_marketable_limit_into_a_resting_one() -> None:
    state = make_state(USDT="100000")
    submit(state, market_qty(Side.BUY, "0.1"))  # takes all of 100000

    res = submit(state, limit(Side.BUY, "100000.00", "0.05"))

    assert res.txn.fills == []
    assert res.order is not None and res.order.status is OrderStatus.NEW
    assert res.order.locked_amount == D("5000")


def test_fok_counts_only_liquidity_left_on_this_book_version() -> None:
    state = make_state(USDT="100000")
    submit(state, market_qty(Side.BUY, "0.15"))  # 0.15 of the 0.3 up to 100001 left

    res = submit(state, limit(Side.BUY, "100001.00", "0.3", OrderType.FILL_OR_KILL))

    assert res.order is not None and res.order.status is OrderStatus.CANCELED
    assert res.txn.fills == []


def test_taking_asks_leaves_the_bids_untouched() -> None:
    state = make_state(USDT="100000", BTC="1")
    submit(state, market_qty(Side.BUY, "0.3"))

    res = submit(state, market_qty(Side.SELL, "0.1"))

    assert [(f.price, f.qty, f.reason["consumed_before"]) for f in res.txn.fills] == [
        (D("99999"), D("0.1"), D("0"))
    ]


def streamed(version: str, bids=BIDS, asks=ASKS, seen_ms: int = NOW) -> Book:
    """A version of the book kept from MEXC's diff stream."""
    return Book("BTCUSDT", bids, asks, version, seen_ms, incremental=True)


def test_a_streamed_version_that_leaves_a_level_alone_keeps_what_was_taken_from_it() -> None:
    state = make_state(USDT="100000")
    submit(state, market_qty(Side.BUY, "0.15"), streamed("10"))  # 0.1 @ 100000, 0.05 @ 100001
    # 100 ms later: a diff changed the bids only; MEXC still shows the asks we "took"
    bids = ((D("99999.00"), D("0.4")), *BIDS[1:])
    res = submit(state, market_qty(Side.BUY, "0.2"), streamed("11", bids=bids, seen_ms=NOW + 100))
    assert [(f.price, f.qty, f.reason["consumed_before"]) for f in res.txn.fills] == [
        (D("100001"), D("0.15"), D("0.05")),
        (D("100002"), D("0.05"), D("0")),
    ]


def test_a_streamed_level_that_shrinks_caps_what_stays_taken_and_a_deleted_one_forgets_it() -> None:
    state = make_state(USDT="100000")
    submit(state, market_qty(Side.BUY, "0.25"), streamed("10"))  # 0.1 @ 100000, 0.15 @ 100001
    # trades elsewhere ate 100000 (deleted) and left 0.1 of 100001; 100002 got more size
    asks = ((D("100001.00"), D("0.1")), (D("100002.00"), D("0.9")), (D("100003.00"), D("1")))
    state_market = state.market("BTCUSDT")
    res = submit(state, market_qty(Side.BUY, "0.5"), streamed("12", asks=asks, seen_ms=NOW + 100))
    # 100001: min(0.15 taken, 0.1 shown) = 0.1 still ours, nothing left; 100002 untaken
    assert [(f.price, f.qty, f.reason["consumed_before"]) for f in res.txn.fills] == [
        (D("100002"), D("0.5"), D("0")),
    ]
    assert state_market.consumed == {(Side.SELL, D("100001")): D("0.1"), (Side.SELL, D("100002")): D("0.5")}


def test_size_added_to_a_streamed_level_is_available_on_top_of_what_was_taken() -> None:
    state = make_state(USDT="100000")
    submit(state, market_qty(Side.BUY, "0.1"), streamed("10"))  # all of 100000
    asks = ((D("100000.00"), D("0.3")), *ASKS[1:])  # 0.2 more arrived at 100000
    res = submit(state, market_qty(Side.BUY, "0.25"), streamed("11", asks=asks, seen_ms=NOW + 100))
    assert [(f.price, f.qty, f.reason["consumed_before"]) for f in res.txn.fills] == [
        (D("100000"), D("0.2"), D("0.1")),
        (D("100001"), D("0.05"), D("0")),
    ]


def test_a_level_beyond_a_streamed_books_depth_keeps_its_share() -> None:
    state = make_state(USDT="100000")
    submit(state, market_qty(Side.BUY, "0.3"), streamed("10"))  # 100000 and 100001 used up
    # the next version shows 100000 only: 100001 is beyond it, neither shown nor gone
    txn = Txn(state, NOW + 1)
    txn.set_book(streamed("11", asks=ASKS[:1], seen_ms=NOW + 1))
    assert txn.consumed_map("BTCUSDT") == {
        (Side.SELL, D("100000")): D("0.1"), (Side.SELL, D("100001")): D("0.2"),
    }
    res = submit(state, market_qty(Side.BUY, "0.05"), streamed("11", asks=ASKS[:1], seen_ms=NOW + 1))
    assert res.rejection is not None and res.rejection.reason is RejectReason.NO_LIQUIDITY


def test_a_rest_snapshot_after_a_streamed_book_starts_the_ledger_over() -> None:
    state = make_state(USDT="100000")
    submit(state, market_qty(Side.BUY, "0.1"), streamed("10"))
    res = submit(state, market_qty(Side.BUY, "0.1"), Book("BTCUSDT", BIDS, ASKS, "11", NOW + 1))
    assert [(f.price, f.reason["consumed_before"]) for f in res.txn.fills] == [(D("100000"), D("0"))]


# ---------------------------------------------------------------- ids


def test_order_and_trade_ids_have_mexc_form_and_come_from_the_state_counter() -> None:
    state = make_state(USDT="100000")
    add_account(state, 2, USDT="100000")

    first = submit(state, limit(Side.BUY, "100001.00", "0.5"))
    second = submit(state, market_qty(Side.BUY, "0.1"), account_id=2)

    assert first.order is not None and second.order is not None
    assert first.order.order_id == f"C02__{FIRST_SEQ}001" == "C02__700000000000000001001"
    assert second.order.order_id == f"C02__{FIRST_SEQ + 1}002"
    assert all(re.fullmatch(r"C02__\d{21}", o.order_id) for o in (first.order, second.order))
    assert [f.trade_id for f in first.txn.fills] == [f"{FIRST_SEQ}X1", f"{FIRST_SEQ}X2"]
    assert [f.trade_id for f in second.txn.fills] == [f"{FIRST_SEQ + 1}X1"]
    assert all(re.fullmatch(r"\d+X\d+", f.trade_id) for f in first.txn.fills + second.txn.fills)
    # MEXC's live pair (reference 7.15): order C02__565809460614950913036, trade 565809460614950913X1
    assert all(f.trade_id.split("X")[0] == f.order_id[5:-3] for f in first.txn.fills + second.txn.fills)
    assert state.next_seq == FIRST_SEQ + 2


def test_a_rejected_order_uses_no_id() -> None:
    state = make_state(USDT="1")

    res = submit(state, limit(Side.BUY, "99990.00", "0.01"))

    assert res.rejection is not None
    assert res.txn.next_seq == state.next_seq == FIRST_SEQ


# ---------------------------------------------------------------- cancel


def test_cancel_releases_exactly_what_a_resting_order_locked() -> None:
    state = make_state(USDT="100000")
    rules = replace(RULES, maker_fee=D("0.001"))
    placed = submit(state, limit(Side.BUY, "99990.00", "0.5"), rules=rules).order
    assert placed is not None and balances(state) == {"USDT": (D("49955.005"), D("50044.995"))}

    res = matching.cancel(state, 1, [placed.order_id], NOW + 1)
    apply(state, res.txn)
    check_invariants(state)

    assert res.order is not None and res.order.status is OrderStatus.CANCELED
    assert res.order.locked_amount == D("0")
    assert balances(state) == {"USDT": (D("100000"), D("0"))}
    assert state.accounts[1].open_orders == {}


def test_cancel_of_a_partially_filled_order_releases_the_rest_only() -> None:
    state = make_state(USDT="100000")
    placed = submit(state, limit(Side.BUY, "100001.00", "0.5")).order
    assert placed is not None

    res = matching.cancel(state, 1, [placed.order_id], NOW + 1)
    apply(state, res.txn)
    check_invariants(state)

    assert res.order is not None and res.order.status is OrderStatus.PARTIALLY_CANCELED
    assert res.order.executed_qty == D("0.3")
    # the 20000.2 still locked comes back: 49984.5999 + 20000.2
    assert balances(state) == {"USDT": (D("69984.7999"), D("0")), "BTC": (D("0.3"), D("0"))}


def test_cancel_of_a_sell_returns_the_base() -> None:
    state = make_state(BTC="1")
    placed = submit(state, limit(Side.SELL, "100010.00", "0.3")).order
    assert placed is not None

    res = matching.cancel(state, 1, [placed.order_id], NOW + 1)
    apply(state, res.txn)
    check_invariants(state)

    assert balances(state) == {"BTC": (D("1"), D("0"))}


def test_cancel_of_an_unknown_or_closed_order_changes_nothing() -> None:
    state = make_state(USDT="100000")
    filled = submit(state, market_qty(Side.BUY, "0.1")).order
    assert filled is not None

    res = matching.cancel(state, 1, [filled.order_id, "C02__999"], NOW + 1)

    assert (res.order, res.orders) == (None, ())
    assert res.txn.empty


# ---------------------------------------------------------------- client ids and limits


def test_duplicate_client_order_id_is_rejected_even_after_the_first_closed() -> None:
    state = make_state(USDT="100000")
    add_account(state, 2, USDT="100000")
    first = submit(state, limit(Side.BUY, "99990.00", "0.1", cid="bot-1")).order
    assert first is not None
    apply(state, matching.cancel(state, 1, [first.order_id], NOW).txn)

    dup = submit(state, limit(Side.BUY, "99990.00", "0.1", cid="bot-1"))
    other_account = submit(state, limit(Side.BUY, "99990.00", "0.1", cid="bot-1"), account_id=2)

    assert dup.rejection is not None and dup.rejection.reason is RejectReason.DUPLICATE_CLIENT_ORDER_ID
    assert mexc(dup.rejection) == (400, -2010, "Duplicate order sent.")
    assert balances(state) == {"USDT": (D("100000"), D("0"))}
    assert other_account.order is not None and other_account.order.client_order_id == "bot-1"


def test_open_order_limit_from_config() -> None:
    state = make_state(USDT="100000", BTC="1")
    cfg = EngineConfig(max_open_orders=2)
    submit(state, limit(Side.BUY, "90000.00", "0.1"), cfg=cfg)
    submit(state, limit(Side.SELL, "110000.00", "0.1"), cfg=cfg)

    third = submit(state, limit(Side.BUY, "90000.00", "0.1", OrderType.LIMIT_MAKER), cfg=cfg)
    market = submit(state, market_qty(Side.BUY, "0.1"), cfg=cfg)  # never rests

    assert third.rejection is not None and third.rejection.reason is RejectReason.MAX_OPEN_ORDERS
    assert mexc(third.rejection) == (400, 30029, "Cannot exceed the maximum order limit")
    assert market.order is not None and market.order.status is OrderStatus.FILLED
    assert len(state.accounts[1].open_orders) == 2


def test_at_most_500_open_orders_per_account_by_default() -> None:
    state = make_state(USDT="1000")
    for _ in range(500):
        assert submit(state, limit(Side.BUY, "1.00", "1")).order is not None  # 1 USDT each

    rejected = submit(state, limit(Side.BUY, "1.00", "1"))
    some_id = next(iter(state.accounts[1].open_orders))
    apply(state, matching.cancel(state, 1, [some_id], NOW).txn)
    after_cancel = submit(state, limit(Side.BUY, "1.00", "1"))

    assert rejected.rejection is not None and rejected.rejection.reason is RejectReason.MAX_OPEN_ORDERS
    assert after_cancel.order is not None and after_cancel.order.status is OrderStatus.NEW
    assert len(state.accounts[1].open_orders) == 500
    assert balances(state) == {"USDT": (D("500"), D("500"))}
