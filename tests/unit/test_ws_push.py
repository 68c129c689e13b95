"""The private pushes (proxy/ws/push.py): bytes checked by hand, decoded by a second,
independent decoder (the MEXC classes ccxt 4.5.90 bundles, read with `MessageToDict` as
ccxt and hummingbot read them), and the sequence a command pushes.

The `Committed` records are built the way the service builds them (`_install`): the engine
runs on its state, the record lists the Txn's orders, fills and each balance before and
after. Book and rules as in test_engine_taker.py: asks 100000 x 0.1, 100001 x 0.2,
100002 x 0.5; bids 99999 x 0.1, 99998 x 0.2, 99997 x 0.5; maker 0, taker 0.0005.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from ccxt.protobuf.mexc import PushDataV3ApiWrapper_pb2 as mexc_pb
from google.protobuf.json_format import MessageToDict
from test_engine_taker import BOOK, CFG, NOW, RULES, limit, make_state, market_qty

from proxy import feed
from proxy.engine import matching
from proxy.engine.model import Balance, Fill, Order, OrderStatus, OrderType, Side, Trade
from proxy.engine.state import EngineState, Txn, apply
from proxy.feed import BalanceChange, Committed
from proxy.jsonutil import fmt
from proxy.ws import push

D = Decimal
ALL = push.PRIVATE_CHANNELS
SEND = NOW + 7


def record_of(kind: str, state: EngineState, txn: Txn, account_id: int | None = 1, seq: int = 1) -> Committed:
    """What PaperService._install publishes for `txn` (balances before = the state's)."""
    held = state.accounts
    balances = tuple(
        BalanceChange(aid, asset, held[aid].balances.get(asset) or Balance(asset), after)
        for (aid, asset), after in txn.balances.items()
    )
    record = Committed(seq, kind, txn.now_ms, account_id, tuple(txn.orders.values()),
                       tuple(txn.fills), balances)
    apply(state, txn)
    return record


def decode(frame: bytes) -> dict[str, Any]:
    """As ccxt does it (ccxt/async_support/base/exchange.py decode_proto_msg)."""
    msg = mexc_pb.PushDataV3ApiWrapper()
    msg.ParseFromString(frame)
    return MessageToDict(msg)


def pushes(record: Committed, account_id: int = 1, channels: frozenset[str] = ALL) -> list[dict[str, Any]]:
    out = []
    for channel, frame in push.frames(record, account_id, channels, SEND):
        d = decode(frame)
        assert d["channel"] == channel
        out.append(d)
    return out


def summary(decoded: list[dict[str, Any]]) -> list[tuple]:
    """(channel kind, the fields that tell the story) per push."""
    out: list[tuple] = []
    for d in decoded:
        if "privateOrders" in d:
            o = d["privateOrders"]
            out.append(("orders", o["status"], o["cumulativeQuantity"], o["cumulativeAmount"],
                        o.get("lastDealQuantity")))
        elif "privateDeals" in d:
            t = d["privateDeals"]
            out.append(("deals", t["price"], t["quantity"], t["amount"], t["feeAmount"]))
        else:
            a = d["privateAccount"]
            out.append(("account", a["vcoinName"], a["balanceAmount"], a["balanceAmountChange"],
                        a["frozenAmount"], a["frozenAmountChange"], a["type"]))
    return out


# ---------------------------------------------------------------- bytes, by hand


def test_an_account_push_is_these_bytes() -> None:
    change = BalanceChange(1, "USDT", Balance("USDT", D("10"), D("0")), Balance("USDT", D("9.5"), D("0.5")))
    record = Committed(1, feed.ORDER_NEW, 1000, 1, balances=(change,))
    coin = push.coin_id("USDT")
    assert len(coin) == 32 and coin == push.coin_id("USDT") != push.coin_id("BTC")
    body = (
        b"\x0a\x04" b"USDT"                 # 1 vcoinName, 4 bytes
        + b"\x12\x20" + coin.encode()       # 2 coinId, 32 bytes
        + b"\x1a\x03" b"9.5"                # 3 balanceAmount
        + b"\x22\x04" b"-0.5"               # 4 balanceAmountChange
        + b"\x2a\x03" b"0.5"                # 5 frozenAmount
        + b"\x32\x03" b"0.5"                # 6 frozenAmountChange
        + b"\x3a\x0d" b"ENTRUST_PLACE"      # 7 type, 13 bytes
        + b"\x40\xe8\x07"                   # 8 time = 1000 (varint e8 07)
    )
    expected = (
        b"\x0a\x1e" b"spot@private.account.v3.api.pb"  # 1 channel, 30 bytes
        + b"\x28\xe8\x07"                   # 5 createTime = 1000
        + b"\x30\xe9\x07"                   # 6 sendTime = 1001
        + b"\x9a\x13" + bytes([len(body)]) + body  # 307 privateAccount: tag (307<<3)|2 = 2458 = 9a 13
    )
    assert push.frames(record, 1, ALL, 1001) == [(push.CH_ACCOUNT, expected)]


def test_a_deals_push_is_these_bytes_and_false_flags_are_not_on_the_wire() -> None:
    fill = Fill("7X1", "C02__7001", 1, "MXUSDT", Side.SELL, D("3.6962"), D("1"), D("3.6962"),
                D("0.0004"), "MX", False, 1000, None, {})
    record = Committed(1, feed.MARKET, 1000, None, fills=(fill,))
    body = (
        b"\x0a\x06" b"3.6962"               # 1 price
        + b"\x12\x01" b"1"                  # 2 quantity
        + b"\x1a\x06" b"3.6962"             # 3 amount
        + b"\x20\x02"                       # 4 tradeType = 2 (sell); 5 isMaker, 6 isSelfTrade false: absent
        + b"\x3a\x03" b"7X1"                # 7 tradeId
        # 8 clientOrderId: none was sent, the empty string is not on the wire
        + b"\x4a\x09" b"C02__7001"          # 9 orderId
        + b"\x52\x06" b"0.0004"             # 10 feeAmount
        + b"\x5a\x02" b"MX"                 # 11 feeCurrency
        + b"\x60\xe8\x07"                   # 12 time = 1000
    )
    expected = (
        b"\x0a\x1c" b"spot@private.deals.v3.api.pb"  # 1 channel, 28 bytes
        + b"\x1a\x06" b"MXUSDT"             # 3 symbol
        + b"\x30\xe9\x07"                   # 6 sendTime = 1001
        + b"\x92\x13" + bytes([len(body)]) + body  # 306 privateDeals: 2450 = 92 13
    )
    assert push.frames(record, 1, ALL, 1001) == [(push.CH_DEALS, expected)]


# ---------------------------------------------------------------- what clients read


def test_every_field_clients_index_survives_message_to_dict_even_when_zero() -> None:
    """hummingbot indexes orders clientId/id/status/createTime, deals clientOrderId/tradeId/
    quantity/amount/price/feeAmount/feeCurrency/time, account vcoinName/balanceAmount/
    frozenAmount (reference 7.19); ccxt reads the rest. Zero amounts are "0", never ""."""
    state = make_state(USDT="1000", BTC="0")
    res = matching.submit(state, 1, limit(Side.BUY, "100000.00", "0.001", cid="hb-1"),
                          RULES, BOOK, None, None, CFG, NOW)
    decoded = pushes(record_of(feed.ORDER_NEW, state, res.txn))
    orders = [d["privateOrders"] for d in decoded if "privateOrders" in d]
    deals = [d["privateDeals"] for d in decoded if "privateDeals" in d]
    account = [d["privateAccount"] for d in decoded if "privateAccount" in d]
    assert orders and deals and account
    for o in orders:
        assert {"clientId", "id", "status", "createTime", "price", "quantity", "amount", "avgPrice",
                "orderType", "tradeType", "remainAmount", "remainQuantity", "cumulativeQuantity",
                "cumulativeAmount"} <= o.keys(), o
    assert orders[0]["cumulativeQuantity"] == "0" and orders[0]["avgPrice"] == "0"
    for t in deals:
        assert {"clientOrderId", "tradeId", "quantity", "amount", "price", "feeAmount", "feeCurrency",
                "time", "orderId", "tradeType"} <= t.keys(), t
    btc = next(a for a in account if a["vcoinName"] == "BTC")
    assert (btc["frozenAmount"], btc["frozenAmountChange"]) == ("0", "0")  # present as "0"
    for a in account:
        assert {"vcoinName", "balanceAmount", "frozenAmount", "balanceAmountChange",
                "frozenAmountChange", "type", "time"} <= a.keys(), a
    assert all(d["sendTime"] == str(SEND) for d in decoded)


def test_our_classes_and_ccxts_load_in_one_process_and_read_the_same_frame() -> None:
    from proxy.ws import mexc_push_pb2 as ours

    assert ours.PushDataV3ApiWrapper.DESCRIPTOR.full_name == "mexc_paper.push.v3.PushDataV3ApiWrapper"
    assert mexc_pb.PushDataV3ApiWrapper.DESCRIPTOR.full_name == "PushDataV3ApiWrapper"
    state = make_state(USDT="100000")
    res = matching.submit(state, 1, limit(Side.BUY, "99000.00", "0.1", cid="c-1"), RULES, BOOK, None,
                          None, CFG, NOW)
    ((_, frame),) = push.frames(record_of(feed.ORDER_NEW, state, res.txn), 1, {push.CH_ORDERS}, SEND)
    mine = ours.PushDataV3ApiWrapper.FromString(frame)
    assert MessageToDict(mine) == decode(frame)


# ---------------------------------------------------------------- sequences


def test_a_resting_limit_buy_pushes_new_and_its_reservation() -> None:
    state = make_state(USDT="100000", BTC="1")
    res = matching.submit(state, 1, limit(Side.BUY, "99990.00", "0.5", cid="rest-1"), RULES, BOOK,
                          None, None, CFG, NOW)
    decoded = pushes(record_of(feed.ORDER_NEW, state, res.txn))
    assert summary(decoded) == [
        ("orders", 1, "0", "0", None),
        ("account", "USDT", "50005", "-49995", "49995", "49995", "ENTRUST_PLACE"),
    ]
    o = decoded[0]["privateOrders"]
    assert o == {
        "id": res.order.order_id, "clientId": "rest-1", "price": "99990", "quantity": "0.5",
        "amount": "49995", "avgPrice": "0", "orderType": 1, "tradeType": 1, "remainAmount": "49995",
        "remainQuantity": "0.5", "cumulativeQuantity": "0", "cumulativeAmount": "0", "status": 1,
        "createTime": str(NOW),
    }
    assert decoded[0]["symbol"] == "BTCUSDT" and "createTime" not in decoded[0]
    assert decoded[1]["createTime"] == str(NOW) and "symbol" not in decoded[1]


def test_a_market_buy_over_two_levels_pushes_new_then_each_fill_then_filled() -> None:
    state = make_state(USDT="100000")
    res = matching.submit(state, 1, market_qty(Side.BUY, "0.25"), RULES, BOOK, None, None, CFG, NOW)
    record = record_of(feed.ORDER_NEW, state, res.txn)
    decoded = pushes(record)
    # 0.1 x 100000 = 10000 (fee 5), 0.15 x 100001 = 15000.15 (fee 7.500075)
    assert summary(decoded) == [
        ("orders", 1, "0", "0", None),
        ("deals", "100000", "0.1", "10000", "5"),
        ("orders", 3, "0.1", "10000", "0.1"),
        ("deals", "100001", "0.15", "15000.15", "7.500075"),
        ("orders", 2, "0.25", "25000.15", "0.15"),
        # 25000.15 + 12.500075 fees
        ("account", "USDT", "74987.349925", "-25012.650075", "0", "0", "ENTRUST"),
        ("account", "BTC", "0.25", "0.25", "0", "0", "ENTRUST"),
    ]
    last = decoded[4]["privateOrders"]
    order = res.order
    assert order is not None and order.status is OrderStatus.FILLED
    # a MARKET order by quantity: amount "0" (MEXC's sample); remainAmount is what the
    # protective price reserved beyond what the fills cost, as in MEXC's sample
    assert (last["orderType"], last["amount"], last["price"]) == (5, "0", fmt(order.price))
    assert last["remainAmount"] == fmt(order.price * D("0.25") - D("25000.15"))
    assert last["avgPrice"] == "100000.6"  # 25000.15 / 0.25
    assert last["remainQuantity"] == "0"
    deal_ids = [d["privateDeals"]["tradeId"] for d in decoded if "privateDeals" in d]
    assert deal_ids == [f.trade_id for f in res.txn.fills]
    assert {d["privateDeals"]["orderId"] for d in decoded if "privateDeals" in d} == {order.order_id}


def test_an_ioc_that_fills_part_pushes_each_fill_then_partially_canceled() -> None:
    state = make_state(USDT="100000")
    res = matching.submit(state, 1, limit(Side.BUY, "100001.00", "0.5", OrderType.IMMEDIATE_OR_CANCEL),
                          RULES, BOOK, None, None, CFG, NOW)
    decoded = pushes(record_of(feed.ORDER_NEW, state, res.txn))
    assert [s[:3] for s in summary(decoded) if s[0] != "account"] == [
        ("orders", 1, "0"), ("deals", "100000", "0.1"), ("orders", 3, "0.1"),
        ("deals", "100001", "0.2"), ("orders", 3, "0.3"), ("orders", 5, "0.3"),
    ]
    final = decoded[5]["privateOrders"]
    assert "lastDealQuantity" not in final and final["remainQuantity"] == "0.2"
    assert final["orderType"] == 3 and final["amount"] == "50000.5"  # 100001 x 0.5
    # a buy's remainAmount: amount minus what the fills cost (10000 + 20000.2)
    assert final["remainAmount"] == "20000.3"
    # the reservation was taken and given back in the same command: one net change
    assert [s for s in summary(decoded) if s[0] == "account"] == [
        ("account", "USDT", "69984.7999", "-30015.2001", "0", "0", "ENTRUST"),  # 30000.2 + 15.0001 fee
        ("account", "BTC", "0.3", "0.3", "0", "0", "ENTRUST"),
    ]


def test_a_cancel_pushes_canceled_and_the_released_reservation() -> None:
    state = make_state(USDT="100000")
    res = matching.submit(state, 1, limit(Side.BUY, "99000.00", "0.1"), RULES, BOOK, None, None, CFG, NOW)
    record_of(feed.ORDER_NEW, state, res.txn)
    assert res.order is not None
    cancel = matching.cancel(state, 1, [res.order.order_id], NOW + 5)
    decoded = pushes(record_of(feed.ORDER_CANCEL, state, cancel.txn, seq=2))
    assert summary(decoded) == [
        ("orders", 4, "0", "0", None),
        ("account", "USDT", "100000", "9900", "0", "-9900", "ENTRUST_CANCEL"),
    ]


def test_a_maker_fill_from_the_tape_pushes_the_deal_and_the_order_only() -> None:
    state = make_state(USDT="100000")
    res = matching.submit(state, 1, limit(Side.BUY, "99999.00", "0.2", cid="mk"), RULES, BOOK, None,
                          None, CFG, NOW)
    record_of(feed.ORDER_NEW, state, res.txn)
    # a seller prints 0.5 through our bid: 0.1 ahead of us at 99999, then us
    txn = matching.on_market(state, "BTCUSDT", None,
                             [Trade(D("99998.00"), D("0.5"), NOW + 10, True, 1)], CFG, {}, NOW + 20)
    record = record_of(feed.MARKET, state, txn, account_id=None, seq=2)
    assert record.fills, "the engine filled the resting order"
    decoded = pushes(record)
    kinds = [s[0] for s in summary(decoded)]
    assert kinds[:2] == ["deals", "orders"] and "account" in kinds
    o = decoded[1]["privateOrders"]
    t = decoded[0]["privateDeals"]
    assert t["isMaker"] is True and t["clientOrderId"] == "mk"
    assert o["lastDealQuantity"] == t["quantity"] and o["status"] in (2, 3)


def test_a_market_update_that_moves_only_queue_estimates_pushes_nothing() -> None:
    state = make_state(USDT="100000")
    res = matching.submit(state, 1, limit(Side.BUY, "99999.00", "0.2"), RULES, BOOK, None, None, CFG, NOW)
    record_of(feed.ORDER_NEW, state, res.txn)
    assert res.order is not None
    moved = Committed(2, feed.MARKET, NOW + 1, None, orders=(res.order,))
    assert push.frames(moved, 1, ALL, SEND) == []


def test_a_reset_cancels_open_orders_and_pushes_balances_as_deposit_or_withdraw() -> None:
    o = _order(OrderStatus.CANCELED)
    record = Committed(
        3, feed.ACCOUNT_RESET, NOW, 1, orders=(o,), reset=1,
        balances=(
            BalanceChange(1, "USDT", Balance("USDT", D("90"), D("10")), Balance("USDT", D("10000"))),
            BalanceChange(1, "BTC", Balance("BTC", D("2")), Balance("BTC", D("1"))),
        ),
    )
    assert summary(pushes(record)) == [
        ("orders", 4, "0", "0", None),
        ("account", "USDT", "10000", "9910", "0", "-10", "DEPOSIT"),
        ("account", "BTC", "1", "-1", "0", "0", "WITHDRAW"),
    ]


def test_an_mx_fee_is_a_trade_fee_change() -> None:
    fill = Fill("1X1", "C02__1001", 1, "BTCUSDT", Side.BUY, D("100"), D("1"), D("100"), D("0.04"), "MX",
                False, NOW, None, {})
    o = _order(OrderStatus.FILLED, executed="1", cumm="100")
    record = Committed(
        1, feed.ORDER_NEW, NOW, 1, orders=(o,), fills=(fill,),
        balances=(
            BalanceChange(1, "USDT", Balance("USDT", D("1000")), Balance("USDT", D("900"))),
            BalanceChange(1, "BTC", Balance("BTC", D("0")), Balance("BTC", D("1"))),
            BalanceChange(1, "MX", Balance("MX", D("10")), Balance("MX", D("9.96"))),
        ),
    )
    assert [s[6] for s in summary(pushes(record)) if s[0] == "account"] == ["ENTRUST", "ENTRUST", "TRADE_FEE"]


def test_a_stream_gets_only_its_account_and_its_channels() -> None:
    a = _order(OrderStatus.NEW, account_id=1)
    b = _order(OrderStatus.NEW, account_id=2, order_id="C02__2002")
    record = Committed(1, feed.ORDER_BATCH, NOW, None, orders=(a, b), balances=(
        BalanceChange(1, "USDT", Balance("USDT", D("1")), Balance("USDT", D("0"), D("1"))),
        BalanceChange(2, "USDT", Balance("USDT", D("5")), Balance("USDT", D("4"), D("1"))),
    ))
    mine = pushes(record, account_id=2)
    assert [d["privateOrders"]["id"] for d in mine if "privateOrders" in d] == ["C02__2002"]
    assert [d["privateAccount"]["balanceAmount"] for d in mine if "privateAccount" in d] == ["4"]
    assert [d["channel"] for d in pushes(record, 1, frozenset({push.CH_ACCOUNT}))] == [push.CH_ACCOUNT]
    assert pushes(record, 3) == []
    assert push.frames(record, 1, frozenset(), SEND) == []


@pytest.mark.parametrize(("cumm", "executed", "avg"), [
    ("0", "0", "0"),
    ("348", "0.004", "87000"),
    ("100", "3", "33.3333333333333333"),  # does not terminate: half-even at 16 decimals
    ("2.014", "2000", "0.001007"),  # MEXC's sample
])
def test_avg_price(cumm: str, executed: str, avg: str) -> None:
    assert push.avg_price(D(cumm), D(executed)) == avg


def test_remain_amount_matches_mexcs_market_buy_sample() -> None:
    """MEXC's decoded push for a MARKET buy of 2000 at protective price 0.001053 that cost
    2.014: remainAmount "0.092" (reference 9.2)."""
    o = _order(OrderStatus.FILLED, type_=OrderType.MARKET, price="0.001053", qty="2000",
               executed="2000", cumm="2.014")
    body = push.orders_fields(push.OrderStep(o, OrderStatus.FILLED, o.executed_qty, o.cumm_quote_qty))
    assert (body["remainAmount"], body["amount"], body["avgPrice"], body["remainQuantity"]) == (
        "0.092", "0", "0.001007", "0")


def _order(status: OrderStatus, *, account_id: int = 1, order_id: str = "C02__1001",
           type_: OrderType = OrderType.LIMIT, price: str = "100", qty: str = "1", executed: str = "0",
           cumm: str = "0") -> Order:
    return Order(order_id, 1, account_id, "BTCUSDT", Side.BUY, type_, D(price), D(qty), None,
                 D(price) * D(qty), None, status, D(executed), D(cumm), NOW, NOW, "USDT", D(0), D(0),
                 D(0), "BTC", "USDT")
