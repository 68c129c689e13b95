"""The signed trading and account endpoints through the HTTP app, against the fake upstream
serving the recorded market (cassettes/mexc_public.yaml, recorded from MEXC on 2025-12-31).

The recorded BTCUSDT book (depth):
    asks 87903.98 x 5.12181600   87904.48 x 0.00235992   87905.80 x 0.00237122 ...
    bids 87900.00 x 0.05661525   87899.76 x 2.48076800   87899.75 x 0.00474690 ...
and the recorded BTCUSDT rules (exchangeInfo): makerCommission "0", takerCommission
"0.0005", quotePrecision 2, baseAssetPrecision 8, quoteAmountPrecision (minimum notional)
"1", quoteAmountPrecisionMarket "1", baseSizePrecision (minimum quantity) "0.000001".
`test_the_recorded_market_is_what_the_figures_assume` pins those numbers; every expected
balance, price, quantity and fee below is worked out by hand from them (the arithmetic is
in the comments). Accounts (conftest): key 1 starts with 10000 USDT and 1 BTC, key 2 with
500 USDT.

Response key sets are checked against the real recorded shapes in tests/fixtures/mexc
(JKorf Mexc.Net endpoint fixtures, ccxt's static mexc responses, copied into the repository;
their origin is in tests/fixtures/mexc/README.md); where the sidecar follows a newer live
shape quoted in the MEXC reference (the project's shared reference/mexc-spot-v3.md) instead,
the difference is spelled out next to the check.

Signing styles, auth errors and the basic isolation checks are in test_auth.py; market
passthrough in test_passthrough.py; durability after SIGKILL in
tests/reliability/test_crash_safety.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from conftest import KEY, KEY2, NOW, SECRET, SECRET2
from fake_upstream import FakeMexc
from mexc_client import ccxt_query

from proxy.clock import FixedClock

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "mexc"
ORDER_ID = re.compile(r"^C02__\d{21}$")
DAY = 86_400_000
S = "BTCUSDT"


# ------------------------------------------------------------------ recorded shapes


def _fixture(path: str) -> Any:
    return json.loads((FIXTURES / path).read_text(encoding="utf-8"))


def jkorf(area: str, name: str) -> Any:
    """A JKorf Mexc.Net fixture: method, path, auth flag, then the response JSON."""
    text = (FIXTURES / "jkorf-mexc-net" / area / f"{name}.txt").read_text(encoding="utf-8")
    return json.loads(text.split("\n", 3)[3])


# every recording this module reads (a missing one fails the test that reads it, never skips)
RECORDINGS = (
    "ccxt-static/response_mexc.json",
    *(f"jkorf-mexc-net/{name}.txt" for name in (
        "Trading/PlaceOrder", "Trading/CancelOrder", "Trading/CancelAllOrders", "Trading/GetUserTrades",
        "Account/GetAccountInfo", "Account/GetTradeFeeAsync", "Account/GetMxDeductionStatus",
        "Account/SetMxDeduction", "Account/GetKycStatus", "ExchangeData/GetApiSymbols",
    )),
)


def test_the_recorded_shapes_are_in_the_repository() -> None:
    """Inside the repository, so a clone anywhere runs the shape checks (they used to read
    the shared fixture folder beside it and skip silently elsewhere); each named with its origin."""
    assert FIXTURES.is_relative_to(ROOT / "tests")
    readme = (FIXTURES / "README.md").read_text(encoding="utf-8")
    for name in RECORDINGS:
        assert (FIXTURES / name).is_file(), name
        assert name in readme, f"{name} is not listed in {FIXTURES / 'README.md'}"
    assert "github.com/JKorf/Mexc.Net @ 92dc3013" in readme and "github.com/ccxt/ccxt @ 9349afed" in readme


def ccxt_responses(method: str) -> list[Any]:
    data = _fixture("ccxt-static/response_mexc.json")
    return [case["httpResponse"] for case in data["methods"][method]]


def ack_keys() -> set[str]:
    """POST /api/v3/order: the JKorf fixture and ccxt's three recorded spot acks agree."""
    keys = set(jkorf("Trading", "PlaceOrder"))
    for ack in ccxt_responses("createOrder"):
        assert set(ack) == keys
    return keys


def order_keys() -> set[str]:
    """An order object as the live exchange sends it: ccxt's recorded fetchOrders element
    (2024, `timeInForce`/`stopPrice`/`icebergQty` null), plus `stpMode`, which MEXC added
    in 2025-09 (reference 7.11 live sample)."""
    return set(ccxt_responses("fetchOrders")[0][0]) | {"stpMode"}


def cancel_keys() -> set[str]:
    """DELETE /api/v3/order: the JKorf fixture without `timeInForce`, which the 2026 docs
    dropped (reference 7.8)."""
    return set(jkorf("Trading", "CancelOrder")) - {"timeInForce"}


def trade_keys() -> set[str]:
    keys = set(jkorf("Trading", "GetUserTrades")[0])
    assert set(ccxt_responses("fetchMyTrades")[0][0]) == keys
    return keys


# ------------------------------------------------------------------ helpers


def ok(result: tuple[int, Any]) -> Any:
    status, body = result
    assert status == 200, body
    return body


async def place(signed: Any, key: str = KEY, secret: str = SECRET, **params: str) -> tuple[int, Any]:
    return await signed("POST", "/api/v3/order", {"symbol": S, **params}, key=key, secret=secret)


async def balances(signed: Any, key: str = KEY, secret: str = SECRET) -> dict[str, tuple[str, str]]:
    body = ok(await signed("GET", "/api/v3/account", key=key, secret=secret))
    return {b["asset"]: (b["free"], b["locked"]) for b in body["balances"]}


async def get_order(signed: Any, **ref: str) -> Any:
    return ok(await signed("GET", "/api/v3/order", {"symbol": S, **ref}))


async def my_trades(signed: Any, key: str = KEY, secret: str = SECRET, **params: Any) -> Any:
    return ok(await signed("GET", "/api/v3/myTrades", {"symbol": S, **params}, key=key, secret=secret))


def metal_market(fake: FakeMexc) -> None:
    """METALUSDT (in the recorded exchangeInfo: quotePrecision 5, baseAssetPrecision 2)
    with its recorded bookTicker (bid 0.16183 x 8.97, ask 0.16254 x 1570.54) as its book
    and its recorded ticker price 0.16254."""
    fake.set_book("METALUSDT", [("0.16183", "8.97")], [("0.16254", "1570.54")])
    fake.set_price("METALUSDT", "0.16254")


INSUFFICIENT = (400, {"code": 30004, "msg": "Insufficient position"})
MIN_NOTIONAL = (400, {"code": 30002, "msg": "The minimum transaction volume cannot be less than:1USDT"})
WOULD_TAKE = (400, {"code": -2010, "msg": "Order would immediately match and take."})
DUPLICATE = (400, {"code": -2010, "msg": "Duplicate order sent."})
INVALID_SYMBOL = (400, {"code": -1121, "msg": "Invalid symbol."})
UNKNOWN_ORDER = (400, {"code": -2011, "msg": "Unknown order sent."})
NO_SUCH_ORDER = (400, {"code": -2013, "msg": "Order does not exist."})
START = {"BTC": ("1", "0"), "USDT": ("10000", "0")}


def test_the_recorded_market_is_what_the_figures_assume(fake: FakeMexc) -> None:
    book = fake.books[S]
    assert book["asks"][:3] == [["87903.98", "5.12181600"], ["87904.48", "0.00235992"],
                                ["87905.80", "0.00237122"]]
    assert book["bids"][:3] == [["87900.00", "0.05661525"], ["87899.76", "2.48076800"],
                                ["87899.75", "0.00474690"]]
    s = fake.symbol(S)
    assert (s["makerCommission"], s["takerCommission"]) == ("0", "0.0005")
    assert (s["quotePrecision"], s["quoteAssetPrecision"], s["baseAssetPrecision"]) == (2, 2, 8)
    assert (s["quoteAmountPrecision"], s["quoteAmountPrecisionMarket"], s["baseSizePrecision"]) == (
        "1", "1", "0.000001")
    assert s["orderTypes"] == ["LIMIT", "MARKET", "LIMIT_MAKER"]
    # the 0.05 % taker fee of the reference's fee schedule (section 6.1)
    assert s["takerCommission"] == "0.0005"


# ------------------------------------------------------------------ POST /api/v3/order


async def test_limit_order_rests_and_the_ack_has_the_live_shape(signed: Any) -> None:
    ack = ok(await place(signed, side="BUY", type="LIMIT", quantity="0.001", price="80000"))
    oid = ack["orderId"]
    assert ORDER_ID.match(oid), oid
    assert ack == {"symbol": S, "orderId": oid, "orderListId": -1, "price": "80000",
                   "origQty": "0.001", "type": "LIMIT", "side": "BUY", "transactTime": NOW}
    # no status, fills or clientOrderId in a live ack
    assert set(ack) == ack_keys()
    want = {
        "symbol": S, "orderId": oid, "orderListId": -1, "clientOrderId": None, "price": "80000",
        "origQty": "0.001", "executedQty": "0", "cummulativeQuoteQty": "0", "status": "NEW",
        "stpMode": "", "timeInForce": None, "type": "LIMIT", "side": "BUY", "stopPrice": None,
        "icebergQty": None, "time": NOW, "updateTime": NOW, "isWorking": True,
        "origQuoteOrderQty": "80",  # 80000 x 0.001
    }
    got = await get_order(signed, orderId=oid)
    assert got == want
    assert set(got) == order_keys()
    assert ok(await signed("GET", "/api/v3/openOrders", {"symbol": S})) == [want]
    # a BUY locks price x quantity x (1 + maker fee 0) = 80 USDT
    assert await balances(signed) == {"BTC": ("1", "0"), "USDT": ("9920", "80")}


async def test_market_buy_by_quantity_fills_at_the_recorded_best_ask_with_the_taker_fee(
    signed: Any,
) -> None:
    ack = ok(await place(signed, side="BUY", type="MARKET", quantity="0.01"))
    oid = ack["orderId"]
    # price: the protective limit, best ask x 1.05 rounded down to quotePrecision 2
    # (87903.98 x 1.05 = 92299.179 -> 92299.17)
    assert ack == {"symbol": S, "orderId": oid, "orderListId": -1, "price": "92299.17",
                   "origQty": "0.01", "type": "MARKET", "side": "BUY", "transactTime": NOW}
    order = await get_order(signed, orderId=oid)
    assert (order["status"], order["executedQty"], order["cummulativeQuoteQty"]) == (
        "FILLED", "0.01", "879.0398")  # 0.01 x 87903.98
    # live MARKET orders report origQuoteOrderQty = price x origQty (ccxt fetchOrders fixture)
    assert order["origQuoteOrderQty"] == "922.9917"  # 92299.17 x 0.01
    trades = await my_trades(signed)
    assert trades == [{
        "symbol": S, "id": oid[5:-3] + "X1", "orderId": oid, "orderListId": -1,
        "price": "87903.98", "qty": "0.01", "quoteQty": "879.0398",
        "commission": "0.4395199",  # 879.0398 x 0.0005, in the quote asset
        "commissionAsset": "USDT", "time": NOW, "isBuyer": True, "isMaker": False,
        "isBestMatch": True, "isSelfTrade": False, "clientOrderId": None,
    }]
    assert set(trades[0]) == trade_keys()
    # 10000 - 879.0398 - 0.4395199 = 9120.5206801
    assert await balances(signed) == {"BTC": ("1.01", "0"), "USDT": ("9120.5206801", "0")}


async def test_market_buy_by_quote_amount_spends_at_most_the_amount(signed: Any) -> None:
    ack = ok(await place(signed, side="BUY", type="MARKET", quoteOrderQty="100",
                         newClientOrderId="quote-1"))
    # 100 / 87903.98 = 0.0011376045..., down to baseAssetPrecision 8: 0.0011376;
    # the 0.000432352 USDT left buys nothing at 87904.48
    assert ack == {"symbol": S, "orderId": ack["orderId"], "orderListId": -1, "price": "92299.17",
                   "origQty": "0.0011376", "type": "MARKET", "side": "BUY", "transactTime": NOW}
    order = await get_order(signed, origClientOrderId="quote-1")
    assert order["orderId"] == ack["orderId"] and order["clientOrderId"] == "quote-1"
    assert (order["status"], order["executedQty"], order["cummulativeQuoteQty"],
            order["origQuoteOrderQty"]) == ("FILLED", "0.0011376", "99.999567648", "100")
    [trade] = await my_trades(signed)
    assert (trade["price"], trade["qty"], trade["quoteQty"], trade["commission"],
            trade["commissionAsset"], trade["clientOrderId"]) == (
        "87903.98", "0.0011376", "99.999567648",
        "0.049999783824",  # 99.999567648 x 0.0005
        "USDT", "quote-1")
    # 10000 - 99.999567648 - 0.049999783824
    assert await balances(signed) == {"BTC": ("1.0011376", "0"), "USDT": ("9899.950432568176", "0")}


async def test_limit_maker_that_would_cross_is_rejected_and_reserves_nothing(signed: Any) -> None:
    # at the best ask (buy) or the best bid (sell) it would take liquidity
    assert await place(signed, side="BUY", type="LIMIT_MAKER", quantity="0.001",
                       price="87903.98") == WOULD_TAKE
    assert await place(signed, side="SELL", type="LIMIT_MAKER", quantity="0.001",
                       price="87900") == WOULD_TAKE
    assert await balances(signed) == START
    assert ok(await signed("GET", "/api/v3/allOrders", {"symbol": S})) == []
    # one tick inside the spread it rests
    ack = ok(await place(signed, side="BUY", type="LIMIT_MAKER", quantity="0.001", price="87903.97"))
    assert ack["type"] == "LIMIT_MAKER"
    assert (await get_order(signed, orderId=ack["orderId"]))["status"] == "NEW"
    assert await balances(signed) == {"BTC": ("1", "0"), "USDT": ("9912.09603", "87.90397")}


async def test_ioc_fills_what_crosses_at_once_and_cancels_the_rest(signed: Any) -> None:
    ack = ok(await place(signed, side="SELL", type="IMMEDIATE_OR_CANCEL", quantity="0.1",
                         price="87900"))
    assert ack["type"] == "IMMEDIATE_OR_CANCEL" and "status" not in ack
    order = await get_order(signed, orderId=ack["orderId"])
    # only the best bid (87900.00 x 0.05661525) is at or above 87900
    assert (order["status"], order["executedQty"], order["cummulativeQuoteQty"]) == (
        "PARTIALLY_CANCELED", "0.05661525", "4976.480475")  # 87900 x 0.05661525
    [trade] = await my_trades(signed)
    assert (trade["price"], trade["qty"], trade["commission"], trade["commissionAsset"],
            trade["isBuyer"], trade["isMaker"]) == (
        "87900", "0.05661525", "2.4882402375", "USDT", False, False)  # 4976.480475 x 0.0005
    # 1 - 0.05661525 BTC; 10000 + 4976.480475 - 2.4882402375 USDT; nothing left locked
    assert await balances(signed) == {"BTC": ("0.94338475", "0"), "USDT": ("14973.9922347625", "0")}
    assert ok(await signed("GET", "/api/v3/openOrders", {"symbol": S})) == []

    # an IOC that crosses nothing is cancelled whole
    ack = ok(await place(signed, side="BUY", type="IMMEDIATE_OR_CANCEL", quantity="0.001",
                         price="87000"))
    order = await get_order(signed, orderId=ack["orderId"])
    assert (order["status"], order["executedQty"]) == ("CANCELED", "0")
    assert await balances(signed) == {"BTC": ("0.94338475", "0"), "USDT": ("14973.9922347625", "0")}


async def test_fok_fills_completely_or_not_at_all(signed: Any) -> None:
    # 0.1 BTC to sell at >= 87900, but only 0.05661525 is bid there: killed, nothing traded
    ack = ok(await place(signed, side="SELL", type="FILL_OR_KILL", quantity="0.1", price="87900"))
    order = await get_order(signed, orderId=ack["orderId"])
    assert (ack["type"], order["status"], order["executedQty"]) == ("FILL_OR_KILL", "CANCELED", "0")
    assert await my_trades(signed) == []
    assert await balances(signed) == START
    # 0.1 BTC to buy at <= 87904.48: the best ask alone has 5.121816
    ack = ok(await place(signed, side="BUY", type="FILL_OR_KILL", quantity="0.1", price="87904.48"))
    order = await get_order(signed, orderId=ack["orderId"])
    assert (order["status"], order["executedQty"], order["cummulativeQuoteQty"]) == (
        "FILLED", "0.1", "8790.398")  # 0.1 x 87903.98
    [trade] = await my_trades(signed)
    assert (trade["price"], trade["commission"]) == ("87903.98", "4.395199")  # 8790.398 x 0.0005
    # 10000 - 8790.398 - 4.395199
    assert await balances(signed) == {"BTC": ("1.1", "0"), "USDT": ("1205.206801", "0")}


async def test_duplicate_client_order_id_is_rejected(signed: Any) -> None:
    ok(await place(signed, side="BUY", type="LIMIT", quantity="0.001", price="80000",
                   newClientOrderId="dup-1"))
    assert await place(signed, side="BUY", type="LIMIT", quantity="0.002", price="81000",
                       newClientOrderId="dup-1") == DUPLICATE
    assert await place(signed, side="BUY", type="MARKET", quantity="0.01",
                       newClientOrderId="dup-1") == DUPLICATE
    # only the first order holds funds; the rejected market order traded nothing
    assert await balances(signed) == {"BTC": ("1", "0"), "USDT": ("9920", "80")}
    assert await my_trades(signed) == []
    assert len(ok(await signed("GET", "/api/v3/allOrders", {"symbol": S}))) == 1


async def test_insufficient_funds_is_30004_and_reserves_nothing(signed: Any) -> None:
    k2 = {"key": KEY2, "secret": SECRET2}
    # 0.01 x 80000 = 800 USDT > 500
    assert await place(signed, **k2, side="BUY", type="LIMIT", quantity="0.01",
                       price="80000") == INSUFFICIENT
    # 600 USDT at the best ask plus the taker fee > 500
    assert await place(signed, **k2, side="BUY", type="MARKET", quoteOrderQty="600") == INSUFFICIENT
    # no BTC at all
    assert await place(signed, **k2, side="SELL", type="LIMIT", quantity="0.001",
                       price="95000") == INSUFFICIENT
    assert await balances(signed, **k2) == {"USDT": ("500", "0")}
    assert ok(await signed("GET", "/api/v3/allOrders", {"symbol": S}, **k2)) == []
    # exactly the free balance is enough: 0.00625 x 80000 = 500 (maker fee 0)
    ok(await place(signed, **k2, side="BUY", type="LIMIT", quantity="0.00625", price="80000"))
    assert await balances(signed, **k2) == {"USDT": ("0", "500")}
    assert await place(signed, **k2, side="BUY", type="LIMIT", quantity="0.0000125",
                       price="80000") == INSUFFICIENT
    assert await balances(signed, **k2) == {"USDT": ("0", "500")}


async def test_below_minimum_notional_is_30002_with_mexcs_message(signed: Any) -> None:
    # 0.00001 x 80000 = 0.8 < 1 USDT (quoteAmountPrecision)
    assert await place(signed, side="BUY", type="LIMIT", quantity="0.00001",
                       price="80000") == MIN_NOTIONAL
    # market: quoteOrderQty and quantity x best ask (0.00001 x 87903.98 = 0.879) against
    # quoteAmountPrecisionMarket 1
    assert await place(signed, side="BUY", type="MARKET", quoteOrderQty="0.99") == MIN_NOTIONAL
    assert await place(signed, side="BUY", type="MARKET", quantity="0.00001") == MIN_NOTIONAL
    assert await balances(signed) == START
    # 0.0000125 x 80000 = 1 exactly is enough
    ok(await place(signed, side="BUY", type="LIMIT", quantity="0.0000125", price="80000"))
    assert await balances(signed) == {"BTC": ("1", "0"), "USDT": ("9999", "1")}


async def test_too_many_decimals_are_rejected_as_mexc_does(signed: Any) -> None:
    """MEXC's live answers for too many decimals (reference 3.3): HTTP 400, code 400 and a
    message with a leading space; the docs table's 10096 "amount decimal places is too
    long" is the wallet's code, not what an order gets."""
    assert await place(signed, side="BUY", type="LIMIT", quantity="0.000000001",
                       price="80000") == (400, {"code": 400, "msg": " quantity scale is invalid"})
    assert await place(signed, side="BUY", type="LIMIT", quantity="0.001",
                       price="80000.001") == (400, {"code": 400, "msg": " price scale is invalid"})
    assert await place(signed, side="BUY", type="MARKET",
                       quoteOrderQty="10.001") == (400, {"code": 400, "msg": " amount scale is invalid"})
    assert await balances(signed) == START
    # trailing zeros are not decimals: 80000.10 has one, 0.00100000 has three
    ack = ok(await place(signed, side="BUY", type="LIMIT", quantity="0.00100000", price="80000.10"))
    assert (ack["price"], ack["origQty"]) == ("80000.1", "0.001")


async def test_unknown_symbol_is_invalid_symbol_everywhere(signed: Any) -> None:
    order = {"symbol": "NOSUCHUSDT", "side": "BUY", "type": "LIMIT", "quantity": "1", "price": "1"}
    assert await signed("POST", "/api/v3/order", order) == INVALID_SYMBOL
    assert await signed("POST", "/api/v3/order/test", order) == INVALID_SYMBOL
    for method, path in (("GET", "/api/v3/allOrders"), ("GET", "/api/v3/myTrades"),
                         ("DELETE", "/api/v3/openOrders"), ("GET", "/api/v3/tradeFee")):
        assert await signed(method, path, {"symbol": "NOSUCHUSDT"}) == INVALID_SYMBOL, path
    assert await balances(signed) == START


# ------------------------------------------------------------------ POST /api/v3/order/test


async def test_test_order_validates_like_a_real_order_and_fills_nothing(
    client: TestClient, signed: Any, clock: FixedClock
) -> None:
    good = {"side": "SELL", "type": "IMMEDIATE_OR_CANCEL", "quantity": "0.05661525", "price": "87900"}
    q = ccxt_query({"symbol": S, **good}, SECRET, ts=clock.now_ms())
    resp = await client.post(f"/api/v3/order/test?{q}", headers={"X-MEXC-APIKEY": KEY})
    assert (resp.status, await resp.read()) == (200, b"{}")
    assert await signed("POST", "/api/v3/order/test", {"symbol": S, "side": "BUY", "type": "MARKET",
                                                       "quantity": "0.01"}) == (200, {})
    assert await balances(signed) == START
    assert ok(await signed("GET", "/api/v3/allOrders", {"symbol": S})) == []
    assert await my_trades(signed) == []
    # the test order took no liquidity: the whole best bid is still there for a real one
    ack = ok(await place(signed, **good))
    order = await get_order(signed, orderId=ack["orderId"])
    assert (order["status"], order["executedQty"]) == ("FILLED", "0.05661525")

    # a bad test order gets exactly the error the real order gets
    ok(await place(signed, side="BUY", type="LIMIT", quantity="0.001", price="80000",
                   newClientOrderId="taken"))
    before = await balances(signed)
    bad: list[tuple[dict[str, str], str, str]] = [
        ({"side": "BUY", "type": "LIMIT", "quantity": "0.01", "price": "80000"}, KEY2, SECRET2),
        ({"side": "BUY", "type": "LIMIT", "quantity": "0.00001", "price": "80000"}, KEY, SECRET),
        ({"side": "BUY", "type": "LIMIT", "quantity": "0.000000001", "price": "80000"}, KEY, SECRET),
        ({"side": "BUY", "type": "LIMIT_MAKER", "quantity": "0.001", "price": "87904"}, KEY, SECRET),
        ({"side": "BUY", "type": "LIMIT", "quantity": "0.001"}, KEY, SECRET),
        ({"side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "80000",
          "newClientOrderId": "taken"}, KEY, SECRET),
    ]
    expected = [INSUFFICIENT, MIN_NOTIONAL, (400, {"code": 400, "msg": " quantity scale is invalid"}),
                WOULD_TAKE,
                (400, {"code": 700004,
                       "msg": "Mandatory parameter 'price' was not sent, was empty/null, or malformed."}),
                DUPLICATE]
    for (params, key, secret), want in zip(bad, expected, strict=True):
        as_test = await signed("POST", "/api/v3/order/test", {"symbol": S, **params}, key=key, secret=secret)
        as_real = await signed("POST", "/api/v3/order", {"symbol": S, **params}, key=key, secret=secret)
        assert as_test == as_real == want, params
    assert await balances(signed) == before


# ------------------------------------------------------------------ POST /api/v3/batchOrders


def limit(qty: str, price: str, **kw: str) -> dict[str, str]:
    return {"symbol": S, "side": "BUY", "type": "LIMIT", "quantity": qty, "price": price, **kw}


async def batch(signed: Any, orders: list[dict[str, str]]) -> tuple[int, Any]:
    return await signed("POST", "/api/v3/batchOrders",
                        {"batchOrders": json.dumps(orders, separators=(",", ":"))})


async def test_batch_orders_answer_per_element_with_http_200(signed: Any) -> None:
    status, body = await batch(signed, [
        limit("0.001", "80000", newClientOrderId="b-1"),
        limit("0.00001", "80000", newClientOrderId="b-2"),  # 0.8 USDT: below the minimum
        limit("0.001", "80001"),
        limit("0.001", "80002", newClientOrderId="b-1"),  # b-1 was taken two elements ago
        {"symbol": S, "side": "BUY", "type": "MARKET", "quantity": "0.01"},
        {"symbol": S, "side": "BUY", "type": "LIMIT", "quantity": "0.001"},  # no price
    ])
    assert status == 200, body
    assert len(body) == 6
    ids = [el.get("orderId") for el in body]
    assert body == [
        {"symbol": S, "orderId": ids[0], "newClientOrderId": "b-1", "orderListId": -1},
        {"newClientOrderId": "b-2", "msg": MIN_NOTIONAL[1]["msg"], "code": 30002},
        {"symbol": S, "orderId": ids[2], "orderListId": -1},
        {"newClientOrderId": "b-1", "msg": "Duplicate order sent.", "code": -2010},
        {"symbol": S, "orderId": ids[4], "orderListId": -1},
        {"msg": "Mandatory parameter 'price' was not sent, was empty/null, or malformed.",
         "code": 700004},
    ]
    assert all(ORDER_ID.match(i) for i in (ids[0], ids[2], ids[4]))
    assert len({ids[0], ids[2], ids[4]}) == 3
    # resting: 80 + 80.001 locked; the market order paid 879.0398 + 0.4395199
    # free: 10000 - 160.001 - 879.4793199 = 8960.5196801
    assert await balances(signed) == {"BTC": ("1.01", "0"), "USDT": ("8960.5196801", "160.001")}
    opened = ok(await signed("GET", "/api/v3/openOrders", {"symbol": S}))
    assert [(o["orderId"], o["clientOrderId"], o["price"]) for o in opened] == [
        (ids[0], "b-1", "80000"), (ids[2], None, "80001")]
    assert (await get_order(signed, orderId=ids[4]))["status"] == "FILLED"


async def test_batch_orders_take_at_most_20_of_one_symbol(signed: Any, fake: FakeMexc) -> None:
    metal_market(fake)
    too_many = [limit("0.001", str(80000 + i)) for i in range(21)]
    assert await batch(signed, too_many) == (
        400, {"code": 33333, "msg": "param is error: batchOrders accepts at most 20 orders"})
    mixed = [limit("0.001", "80000"),
             {"symbol": "METALUSDT", "side": "BUY", "type": "LIMIT", "quantity": "10", "price": "0.15"}]
    assert await batch(signed, mixed) == (
        400, {"code": 33333, "msg": "param is error: all orders of a batch must have the same symbol"})
    assert await balances(signed) == START
    assert ok(await signed("GET", "/api/v3/openOrders")) == []

    body = ok(await batch(signed, too_many[:20]))
    assert [set(el) for el in body] == [{"symbol", "orderId", "orderListId"}] * 20
    # 0.001 x (80000 + 80001 + ... + 80019) = 0.001 x 1600190
    assert await balances(signed) == {"BTC": ("1", "0"), "USDT": ("8399.81", "1600.19")}
    opened = ok(await signed("GET", "/api/v3/openOrders", {"symbol": S}))
    assert [o["orderId"] for o in opened] == [el["orderId"] for el in body]
    assert [o["price"] for o in opened] == [str(80000 + i) for i in range(20)]


# ------------------------------------------------------------------ cancel


async def test_cancel_by_order_id_and_by_client_order_id(signed: Any, clock: FixedClock) -> None:
    a = ok(await place(signed, side="BUY", type="LIMIT", quantity="0.001", price="80000"))["orderId"]
    b = ok(await place(signed, side="SELL", type="LIMIT", quantity="0.002", price="95000",
                       newClientOrderId="c-2"))["orderId"]
    assert await balances(signed) == {"BTC": ("0.998", "0.002"), "USDT": ("9920", "80")}
    clock.advance(1500)

    got = ok(await signed("DELETE", "/api/v3/order", {"symbol": S, "orderId": a}))
    assert got == {"symbol": S, "origClientOrderId": None, "orderId": a, "clientOrderId": None,
                   "price": "80000", "origQty": "0.001", "executedQty": "0",
                   "cummulativeQuoteQty": "0", "status": "CANCELED", "type": "LIMIT", "side": "BUY"}
    assert set(got) == cancel_keys()
    assert await balances(signed) == {"BTC": ("0.998", "0.002"), "USDT": ("10000", "0")}

    # by client id; the cancel's own newClientOrderId comes back as clientOrderId
    got = ok(await signed("DELETE", "/api/v3/order", {"symbol": S, "origClientOrderId": "c-2",
                                                      "newClientOrderId": "cancel-c-2"}))
    assert got == {"symbol": S, "origClientOrderId": "c-2", "orderId": b, "clientOrderId": "cancel-c-2",
                   "price": "95000", "origQty": "0.002", "executedQty": "0",
                   "cummulativeQuoteQty": "0", "status": "CANCELED", "type": "LIMIT", "side": "SELL"}
    assert await balances(signed) == START

    queried = await get_order(signed, orderId=a)
    assert (queried["status"], queried["time"], queried["updateTime"]) == ("CANCELED", NOW, NOW + 1500)
    # closed, unknown, or on another symbol: -2011
    assert await signed("DELETE", "/api/v3/order", {"symbol": S, "orderId": a}) == UNKNOWN_ORDER
    assert await signed("DELETE", "/api/v3/order", {"symbol": S, "origClientOrderId": "c-2"}) == UNKNOWN_ORDER
    assert await signed("DELETE", "/api/v3/order",
                        {"symbol": S, "orderId": "C02__700000000000009999001"}) == UNKNOWN_ORDER
    assert await signed("DELETE", "/api/v3/order",
                        {"symbol": S, "origClientOrderId": "never"}) == UNKNOWN_ORDER
    c = ok(await place(signed, side="BUY", type="LIMIT", quantity="0.001", price="80000"))["orderId"]
    assert await signed("DELETE", "/api/v3/order", {"symbol": "METALUSDT", "orderId": c}) == UNKNOWN_ORDER
    assert await signed("DELETE", "/api/v3/order", {"symbol": S}) == (400, {
        "code": 700004,
        "msg": "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"})
    assert (await get_order(signed, orderId=c))["status"] == "NEW"


async def test_cancel_open_orders_of_a_symbol(signed: Any, fake: FakeMexc) -> None:
    metal_market(fake)
    a = ok(await place(signed, side="BUY", type="LIMIT", quantity="0.001", price="80000",
                       newClientOrderId="o-1"))["orderId"]
    b = ok(await place(signed, side="SELL", type="LIMIT", quantity="0.003", price="96000"))["orderId"]
    m = ok(await signed("POST", "/api/v3/order", {"symbol": "METALUSDT", "side": "BUY", "type": "LIMIT",
                                                  "quantity": "10", "price": "0.15"}))["orderId"]
    # 80 + 1.5 USDT (10 x 0.15) and 0.003 BTC locked
    assert await balances(signed) == {"BTC": ("0.997", "0.003"), "USDT": ("9918.5", "81.5")}

    got = ok(await signed("DELETE", "/api/v3/openOrders", {"symbol": S}))
    assert got == [
        {"symbol": S, "origClientOrderId": "o-1", "orderId": a, "clientOrderId": "o-1", "price": "80000",
         "origQty": "0.001", "executedQty": "0", "cummulativeQuoteQty": "0", "status": "CANCELED",
         "type": "LIMIT", "side": "BUY"},
        {"symbol": S, "origClientOrderId": None, "orderId": b, "clientOrderId": None, "price": "96000",
         "origQty": "0.003", "executedQty": "0", "cummulativeQuoteQty": "0", "status": "CANCELED",
         "type": "LIMIT", "side": "SELL"},
    ]
    # The JKorf fixture's elements also carry orderListId and timeInForce (docs sample);
    # the live 2024 capture (reference 7.9) has neither. The sidecar sends the cancel shape.
    recorded = set(jkorf("Trading", "CancelAllOrders")[0])
    assert all(set(el) == cancel_keys() == recorded - {"orderListId", "timeInForce"} for el in got)
    assert await balances(signed) == {"BTC": ("1", "0"), "USDT": ("9998.5", "1.5")}
    assert [o["orderId"] for o in ok(await signed("GET", "/api/v3/openOrders"))] == [m]
    assert ok(await signed("DELETE", "/api/v3/openOrders", {"symbol": S})) == []
    # up to 5 symbols, comma-separated
    got = ok(await signed("DELETE", "/api/v3/openOrders", {"symbol": "BTCUSDT,METALUSDT"}))
    assert [(o["orderId"], o["status"]) for o in got] == [(m, "CANCELED")]
    assert await balances(signed) == START


# ------------------------------------------------------------------ queries


async def test_query_order_by_id_and_by_client_id(signed: Any) -> None:
    ack = ok(await place(signed, side="SELL", type="LIMIT", quantity="0.25", price="99999.99",
                         newClientOrderId="q-7"))
    by_id = await get_order(signed, orderId=ack["orderId"])
    by_cid = await get_order(signed, origClientOrderId="q-7")
    assert by_id == by_cid
    assert (by_id["clientOrderId"], by_id["side"], by_id["price"], by_id["origQty"],
            by_id["origQuoteOrderQty"]) == ("q-7", "SELL", "99999.99", "0.25",
                                            "24999.9975")  # 99999.99 x 0.25
    # symbol is optional (2025-07 docs); the order is found without it
    assert ok(await signed("GET", "/api/v3/order", {"orderId": ack["orderId"]})) == by_id
    assert await signed("GET", "/api/v3/order",
                        {"symbol": S, "orderId": "C02__700000000000009999001"}) == NO_SUCH_ORDER
    assert await signed("GET", "/api/v3/order", {"symbol": S, "origClientOrderId": "q-8"}) == NO_SUCH_ORDER
    assert await signed("GET", "/api/v3/order",
                        {"symbol": "METALUSDT", "orderId": ack["orderId"]}) == NO_SUCH_ORDER
    assert await signed("GET", "/api/v3/order", {"symbol": S}) == (400, {
        "code": 700004,
        "msg": "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"})


async def test_open_orders_with_and_without_symbol(signed: Any, fake: FakeMexc) -> None:
    metal_market(fake)
    a = ok(await place(signed, side="BUY", type="LIMIT", quantity="0.001", price="80000"))["orderId"]
    # no METAL to sell
    assert await signed("POST", "/api/v3/order", {"symbol": "METALUSDT", "side": "SELL", "type": "LIMIT",
                                                  "quantity": "20", "price": "0.2"}) == INSUFFICIENT
    m = ok(await signed("POST", "/api/v3/order", {"symbol": "METALUSDT", "side": "BUY", "type": "LIMIT",
                                                  "quantity": "20", "price": "0.1"}))["orderId"]
    b = ok(await place(signed, side="BUY", type="MARKET", quantity="0.01"))["orderId"]  # filled
    c = ok(await place(signed, side="BUY", type="LIMIT", quantity="0.002", price="81000"))["orderId"]

    def ids(orders: list[dict[str, Any]]) -> list[str]:
        return [o["orderId"] for o in orders]

    everything = ok(await signed("GET", "/api/v3/openOrders"))
    assert ids(everything) == [a, m, c] and b not in ids(everything)
    assert all(set(o) == order_keys() and o["status"] == "NEW" for o in everything)
    assert ids(ok(await signed("GET", "/api/v3/openOrders", {"symbol": S}))) == [a, c]
    metal = ok(await signed("GET", "/api/v3/openOrders", {"symbol": "METALUSDT"}))
    assert [(o["symbol"], o["price"], o["origQty"], o["origQuoteOrderQty"]) for o in metal] == [
        ("METALUSDT", "0.1", "20", "2")]
    assert ids(ok(await signed("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT,METALUSDT"}))) == [a, m, c]


async def test_all_orders_time_window_and_limit(signed: Any, clock: FixedClock) -> None:
    a = ok(await place(signed, side="BUY", type="LIMIT", quantity="0.001", price="80000"))["orderId"]
    clock.advance(2 * DAY)
    b = ok(await place(signed, side="BUY", type="LIMIT", quantity="0.001", price="80001"))["orderId"]
    ok(await signed("DELETE", "/api/v3/order", {"symbol": S, "orderId": b}))
    clock.advance(3_600_000)
    c = ok(await place(signed, side="BUY", type="MARKET", quantity="0.001"))["orderId"]

    async def listed(**params: Any) -> list[tuple[str, str]]:
        body = ok(await signed("GET", "/api/v3/allOrders", {"symbol": S, **params}))
        assert all(set(o) == order_keys() for o in body)
        return [(o["orderId"], o["status"]) for o in body]

    # default: the last 24 hours (a is 49 hours old), oldest first
    assert await listed() == [(b, "CANCELED"), (c, "FILLED")]
    week = {"startTime": NOW, "endTime": NOW + 7 * DAY}
    assert await listed(**week) == [(a, "NEW"), (b, "CANCELED"), (c, "FILLED")]
    assert await listed(startTime=NOW, endTime=NOW + DAY) == [(a, "NEW")]
    assert await listed(startTime=NOW + 1) == [(b, "CANCELED"), (c, "FILLED")]
    # limit: with a start, the first ones from it; without, the most recent ones
    assert await listed(startTime=NOW, limit=1) == [(a, "NEW")]
    assert await listed(limit=1) == [(c, "FILLED")]
    assert await listed(limit=1000, **week) == [(a, "NEW"), (b, "CANCELED"), (c, "FILLED")]
    # startTime and endTime at most 7 days apart; limit 1..1000
    assert await signed("GET", "/api/v3/allOrders",
                        {"symbol": S, "startTime": NOW, "endTime": NOW + 7 * DAY + 1}) == (
        400, {"code": 33333, "msg": "param is error: startTime and endTime must be at most 7 days apart"})
    for bad in (0, 1001):
        assert await signed("GET", "/api/v3/allOrders", {"symbol": S, "limit": bad}) == (
            400, {"code": 33333, "msg": "param is error: limit must be between 1 and 1000"})
    assert await signed("GET", "/api/v3/allOrders", {}) == (400, {
        "code": 700004, "msg": "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."})


async def test_my_trades_fields_filters_and_limit(signed: Any, clock: FixedClock) -> None:
    buy = ok(await place(signed, side="BUY", type="MARKET", quantity="0.01", newClientOrderId="t-1"))
    clock.advance(1000)
    sell = ok(await place(signed, side="SELL", type="IMMEDIATE_OR_CANCEL", quantity="0.06",
                          price="87899.76"))
    # the sell takes the whole best bid and 0.00338475 of the next:
    # 87900 x 0.05661525 = 4976.480475, fee 2.4882402375
    # 87899.76 x 0.00338475 = 297.51871266, fee 0.14875935633
    trades = await my_trades(signed)
    assert [(t["orderId"], t["id"], t["price"], t["qty"], t["quoteQty"], t["commission"],
             t["commissionAsset"], t["isBuyer"], t["isMaker"], t["time"], t["clientOrderId"])
            for t in trades] == [
        (buy["orderId"], buy["orderId"][5:-3] + "X1", "87903.98", "0.01", "879.0398", "0.4395199",
         "USDT", True, False, NOW, "t-1"),
        (sell["orderId"], sell["orderId"][5:-3] + "X1", "87900", "0.05661525", "4976.480475",
         "2.4882402375", "USDT", False, False, NOW + 1000, None),
        (sell["orderId"], sell["orderId"][5:-3] + "X2", "87899.76", "0.00338475", "297.51871266",
         "0.14875935633", "USDT", False, False, NOW + 1000, None),
    ]
    assert all(set(t) == trade_keys() for t in trades)
    assert (await get_order(signed, orderId=sell["orderId"]))["status"] == "FILLED"
    # BTC: 1 + 0.01 - 0.06; USDT: 10000 - 879.0398 - 0.4395199 + 4976.480475 - 2.4882402375
    #      + 297.51871266 - 0.14875935633
    assert await balances(signed) == {"BTC": ("0.95", "0"), "USDT": ("14391.88286816617", "0")}

    assert [t["id"] for t in await my_trades(signed, orderId=buy["orderId"])] == [trades[0]["id"]]
    assert [t["id"] for t in await my_trades(signed, startTime=NOW + 1)] == [trades[1]["id"], trades[2]["id"]]
    assert [t["id"] for t in await my_trades(signed, endTime=NOW)] == [trades[0]["id"]]
    assert [t["id"] for t in await my_trades(signed, limit=1)] == [trades[2]["id"]]
    assert len(await my_trades(signed, limit=100)) == 3
    for bad in (0, 101):
        assert await signed("GET", "/api/v3/myTrades", {"symbol": S, "limit": bad}) == (
            400, {"code": 33333, "msg": "param is error: limit must be between 1 and 100"})


# ------------------------------------------------------------------ account endpoints


async def test_account_balances_are_strings_and_locked_follows_orders(signed: Any) -> None:
    body = ok(await signed("GET", "/api/v3/account"))
    recorded = jkorf("Account", "GetAccountInfo")
    # the JKorf fixture's keys, plus the four commission fields of the 2026 docs sample
    # (reference 7.14); balances: asset/free/locked plus the 2026 `available`
    assert set(body) == set(recorded) | {"makerCommission", "takerCommission", "buyerCommission",
                                         "sellerCommission"}
    assert {k: body[k] for k in recorded if k != "balances"} == {
        "canTrade": True, "canWithdraw": False, "canDeposit": False, "updateTime": None,
        "accountType": "SPOT", "permissions": ["SPOT"]}
    assert body["balances"] == [{"asset": "BTC", "free": "1", "locked": "0", "available": "1"},
                                {"asset": "USDT", "free": "10000", "locked": "0", "available": "10000"}]
    assert all(set(b) == set(recorded["balances"][0]) | {"available"} for b in body["balances"])

    buy = ok(await place(signed, side="BUY", type="LIMIT", quantity="0.0123", price="81234.56"))
    sell = ok(await place(signed, side="SELL", type="LIMIT", quantity="0.4", price="90000"))
    # 0.0123 x 81234.56 = 999.185088 USDT; 0.4 BTC
    assert await balances(signed) == {"BTC": ("0.6", "0.4"), "USDT": ("9000.814912", "999.185088")}
    ok(await signed("DELETE", "/api/v3/order", {"symbol": S, "orderId": sell["orderId"]}))
    assert await balances(signed) == {"BTC": ("1", "0"), "USDT": ("9000.814912", "999.185088")}
    ok(await signed("DELETE", "/api/v3/order", {"symbol": S, "orderId": buy["orderId"]}))
    assert await balances(signed) == START
    # an asset that went to zero is no longer listed
    k2 = {"key": KEY2, "secret": SECRET2}
    ok(await place(signed, **k2, side="BUY", type="LIMIT", quantity="0.00625", price="80000"))
    assert ok(await signed("GET", "/api/v3/account", **k2))["balances"] == [
        {"asset": "USDT", "free": "0", "locked": "500", "available": "0"}]


async def test_trade_fee_is_wrapped_with_numbers(client: TestClient, signed: Any, clock: FixedClock) -> None:
    resp = await client.get(f"/api/v3/tradeFee?{ccxt_query({'symbol': S}, SECRET, ts=clock.now_ms())}",
                            headers={"X-MEXC-APIKEY": KEY})
    raw = await resp.read()
    # the recorded exchangeInfo's makerCommission "0" and takerCommission "0.0005", as
    # JSON numbers like the real answer
    assert (resp.status, raw) == (200, b'{"data":{"makerCommission":0,"takerCommission":0.0005},'
                                       b'"code":0,"msg":"success","timestamp":%d}' % NOW)
    recorded = jkorf("Account", "GetTradeFeeAsync")
    body = json.loads(raw)
    assert set(body) == set(recorded) and set(body["data"]) == set(recorded["data"])
    assert await signed("GET", "/api/v3/tradeFee", {}) == (400, {
        "code": 700004, "msg": "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."})


async def test_mx_deduct_switch_and_its_effect_on_the_fee(
    client: TestClient, signed: Any, clock: FixedClock
) -> None:
    recorded = jkorf("Account", "GetMxDeductionStatus")
    assert set(jkorf("Account", "SetMxDeduction")) == set(recorded)
    got = ok(await signed("GET", "/api/v3/mxDeduct/enable"))
    assert got == {"data": {"mxDeductEnable": False}, "code": 0, "msg": "success", "timestamp": NOW}
    assert set(got) == set(recorded) and set(got["data"]) == set(recorded["data"])
    assert ok(await signed("POST", "/api/v3/mxDeduct/enable", {"mxDeductEnable": "true"})) == {
        "data": {"mxDeductEnable": True}, "code": 0, "msg": "success", "timestamp": NOW}
    assert ok(await signed("GET", "/api/v3/mxDeduct/enable"))["data"] == {"mxDeductEnable": True}
    # the other account is not switched
    assert ok(await signed("GET", "/api/v3/mxDeduct/enable", key=KEY2, secret=SECRET2))["data"] == {
        "mxDeductEnable": False}
    assert await signed("POST", "/api/v3/mxDeduct/enable", {"mxDeductEnable": "yes"}) == (
        400, {"code": 33333, "msg": "param is error: mxDeductEnable must be true or false"})

    # with MX to pay it, the taker fee is paid in MX at 20 % off, valued at the MX price
    # of the fake upstream (MXUSDT 2.5): 879.0398 x 0.0005 x 0.8 / 2.5 = 0.140646368 MX
    resp = await client.post("/admin/api/accounts/1/fund", json={"asset": "MX", "amount": "100"})
    assert resp.status == 200, await resp.text()
    ok(await place(signed, side="BUY", type="MARKET", quantity="0.01"))
    [trade] = await my_trades(signed)
    assert (trade["commission"], trade["commissionAsset"]) == ("0.140646368", "MX")
    assert await balances(signed) == {"BTC": ("1.01", "0"), "MX": ("99.859353632", "0"),
                                      "USDT": ("9120.9602", "0")}  # 10000 - 879.0398
    # switched off again: the fee is back in USDT
    ok(await signed("POST", "/api/v3/mxDeduct/enable", {"mxDeductEnable": "false"}))
    clock.advance(1)
    ok(await place(signed, side="BUY", type="MARKET", quantity="0.01"))
    assert [(t["commission"], t["commissionAsset"]) for t in await my_trades(signed)] == [
        ("0.140646368", "MX"), ("0.4395199", "USDT")]


async def test_self_symbols_kyc_status_and_uid(signed: Any, fake: FakeMexc) -> None:
    got = ok(await signed("GET", "/api/v3/selfSymbols"))
    recorded_default = fake.recorded["/api/v3/defaultSymbols"][0][1]["data"]
    assert got == {"data": recorded_default, "code": 0, "msg": "success", "timestamp": NOW}
    assert len(recorded_default) == 1991 and recorded_default[:2] == ["SNTUSDT", "CGPTUSDT"]
    # shaped like the recorded defaultSymbols answer (reference 7.3)
    assert set(got) == set(jkorf("ExchangeData", "GetApiSymbols"))

    kyc = ok(await signed("GET", "/api/v3/kyc/status"))
    assert kyc == {"status": "1"} and set(kyc) == set(jkorf("Account", "GetKycStatus"))
    # {"uid":"209302839"} in the reference (7.2): a string, one per account
    assert ok(await signed("GET", "/api/v3/uid")) == {"uid": "90000001"}
    assert ok(await signed("GET", "/api/v3/uid", key=KEY2, secret=SECRET2)) == {"uid": "90000002"}


# ------------------------------------------------------------------ isolation


async def test_another_key_sees_none_of_the_history_and_cancels_nothing(signed: Any) -> None:
    """Beyond test_auth.py's open-order checks: history, trades and client-id cancels."""
    k2 = {"key": KEY2, "secret": SECRET2}
    ok(await place(signed, side="BUY", type="MARKET", quantity="0.01"))
    resting = ok(await place(signed, side="BUY", type="LIMIT", quantity="0.001", price="80000",
                             newClientOrderId="iso-1"))
    assert ok(await signed("GET", "/api/v3/allOrders", {"symbol": S}, **k2)) == []
    assert await my_trades(signed, **k2) == []
    assert await signed("DELETE", "/api/v3/order", {"symbol": S, "origClientOrderId": "iso-1"},
                        **k2) == UNKNOWN_ORDER
    assert ok(await signed("GET", "/api/v3/openOrders", **k2)) == []
    assert ok(await signed("DELETE", "/api/v3/openOrders", {"symbol": S}, **k2)) == []
    assert (await get_order(signed, orderId=resting["orderId"]))["status"] == "NEW"
    assert len(await my_trades(signed)) == 1
    assert await balances(signed) == {"BTC": ("1.01", "0"), "USDT": ("9040.5206801", "80")}
    assert await balances(signed, **k2) == {"USDT": ("500", "0")}
