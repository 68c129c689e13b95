"""pymexc 1.3.0, unmodified, sync `pymexc.spot.HTTP` and async `pymexc.spot.AsyncHTTP`, with
`base_url` pointed at the sidecar. pymexc adds `timestamp` and `recvWindow` to every call,
sorts parameters, signs the `%20` form while curl_cffi sends `+`, sends its API key header
on public calls too, and signs klines and avgPrice; returns the raw MEXC JSON.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymexc._async.base import MexcAPIError as AsyncMexcAPIError
from pymexc.base import MexcAPIError

from .bot_recipes import pymexc_async, pymexc_sync
from .e2e_harness import KEY, SECRET, Market, Sidecar


class Pymexc:
    def __init__(self, client: Any, is_async: bool) -> None:
        self.client = client
        self.is_async = is_async

    async def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.client, method)(*args, **kwargs)
        return await result if self.is_async else result

    async def close(self) -> None:
        """pymexc never closes its curl_cffi session; a bot (and this suite) must."""
        if self.is_async:
            await self.client.session.close()
        else:
            self.client.session.close()

    async def error(self, method: str, *args: Any, **kwargs: Any) -> str:
        with pytest.raises(AsyncMexcAPIError if self.is_async else MexcAPIError) as info:
            await self(method, *args, **kwargs)
        return str(info.value)


def make(flavour: str, sidecar: Sidecar, secret: str = SECRET) -> Pymexc:
    if flavour == "sync":
        return Pymexc(pymexc_sync(sidecar.url, KEY, secret), False)
    return Pymexc(pymexc_async(sidecar.url, KEY, secret), True)


@pytest.fixture(params=["sync", "async"])
async def pm(request: pytest.FixtureRequest, sidecar: Sidecar) -> AsyncIterator[Pymexc]:
    client = make(request.param, sidecar)
    yield client
    await client.close()


async def balances(pm: Pymexc) -> dict[str, tuple[str, str]]:
    account = await pm("account_information")
    assert account["accountType"] == "SPOT" and account["canTrade"] is True
    return {b["asset"]: (b["free"], b["locked"]) for b in account["balances"]}


async def test_public_calls_pass_through_and_nothing_signed_goes_upstream(
    pm: Pymexc, market: Market
) -> None:
    fake = market.fake
    assert await pm("ping") == {}
    t0 = int(time.time() * 1000)
    server = (await pm("time"))["serverTime"]
    assert t0 - 1000 <= server <= int(time.time() * 1000) + 1000
    info = await pm("exchange_info", symbol="BTCUSDT")
    assert info["symbols"] == [fake.symbol("BTCUSDT")]
    book = await pm("order_book", "BTCUSDT", 5)
    assert (book["asks"], book["bids"]) == (fake.books["BTCUSDT"]["asks"], fake.books["BTCUSDT"]["bids"])
    assert await pm("trades", "BTCUSDT", 3) == fake.trades["BTCUSDT"][:3]
    agg = await pm("agg_trades", "BTCUSDT")
    assert agg == fake._rec("/api/v3/aggTrades", "") and agg[0]["a"] is None
    # signed by pymexc; the sidecar strips the signature and forwards the rest
    klines = await pm("klines", "BTCUSDT", "5m")
    assert klines == fake._rec("/api/v3/klines", "interval=5m&limit=500&symbol=BTCUSDT")
    assert klines[0][:2] == [1767056100000, "87231.15"]
    assert await pm("avg_price", "BTCUSDT") == {"mins": 5, "price": "87920.64"}
    ticker = await pm("ticker_24h", "BTCUSDT")
    assert ticker == fake._rec("/api/v3/ticker/24hr", "symbol=BTCUSDT")
    assert ticker["symbol"] == "BTCUSDT" and "timestamp" not in ticker
    every = await pm("ticker_24h")
    assert len(every) == 5 and all("timestamp" not in t for t in every)
    assert await pm("ticker_price", "BTCUSDT") == {"symbol": "BTCUSDT", "price": "87900"}
    assert (await pm("ticker_book_price", "BTCUSDT"))["symbol"] == "BTCUSDT"

    seen = market.requests()
    by_path = {s.path: s for s in seen}
    for path in ("/api/v3/klines", "/api/v3/avgPrice"):
        assert "signature" not in by_path[path].query
        assert "symbol=BTCUSDT" in by_path[path].query
    # pymexc sent its key header on every call above; none reached the upstream
    assert all("x-mexc-apikey" not in {k.lower() for k in s.headers} for s in seen)
    assert market.signed_requests() == []


async def test_orders_and_account(pm: Pymexc) -> None:
    assert await balances(pm) == {"BTC": ("1", "0"), "USDT": ("10000", "0")}
    assert await pm("test_order", "BTCUSDT", "BUY", "LIMIT", quantity="0.01", price="87500") == {}

    ack = await pm("order", "BTCUSDT", "BUY", "LIMIT", quantity="0.01", price="87500",
                   new_client_order_id="pm-1")
    assert set(ack) == {"symbol", "orderId", "orderListId", "price", "origQty", "type", "side",
                        "transactTime"}  # MEXC's live ack: no status, no clientOrderId, no code
    assert (ack["price"], ack["origQty"], ack["type"], ack["side"]) == ("87500", "0.01", "LIMIT", "BUY")
    assert ack["orderId"].startswith("C02__") and ack["orderListId"] == -1
    assert await balances(pm) == {"BTC": ("1", "0"), "USDT": ("9125", "875")}

    q = await pm("query_order", "BTCUSDT", orig_client_order_id="pm-1")
    assert q == await pm("query_order", "BTCUSDT", order_id=ack["orderId"])
    assert "code" not in q
    assert (q["orderId"], q["clientOrderId"], q["status"], q["executedQty"]) == (
        ack["orderId"], "pm-1", "NEW", "0")
    assert (q["origQuoteOrderQty"], q["timeInForce"], q["isWorking"]) == ("875", None, True)

    # pymexc's JSON has spaces; it signs them as %20 and sends them as +
    batch = await pm("batch_orders", [{"price": "87000"}, {"price": "87100", "newClientOrderId": "pm-b2"}],
                     "BTCUSDT", "BUY", "LIMIT", quantity="0.001", price="1")
    assert [set(b) for b in batch] == [{"symbol", "orderId", "orderListId"},
                                      {"symbol", "orderId", "newClientOrderId", "orderListId"}]
    assert batch[1]["newClientOrderId"] == "pm-b2"
    assert await balances(pm) == {"BTC": ("1", "0"), "USDT": ("8950.9", "1049.1")}
    open_ = await pm("current_open_orders", "BTCUSDT")
    assert [o["orderId"] for o in open_] == [ack["orderId"], batch[0]["orderId"], batch[1]["orderId"]]
    assert [o["price"] for o in open_] == ["87500", "87000", "87100"]
    assert all("code" not in o for o in open_)

    # market sell 0.002 fills at the 87900 bid: 175.8 - 0.0879 fee
    sold = await pm("order", "BTCUSDT", "SELL", "MARKET", quantity="0.002")
    assert await balances(pm) == {"BTC": ("0.998", "0"), "USDT": ("9126.6121", "1049.1")}
    trades = await pm("account_trade_list", "BTCUSDT")
    assert trades == await pm("account_trade_list", "BTCUSDT", order_id=sold["orderId"])
    (t,) = trades
    assert (t["orderId"], t["price"], t["qty"], t["quoteQty"]) == (sold["orderId"], "87900", "0.002", "175.8")
    assert (t["commission"], t["commissionAsset"]) == ("0.0879", "USDT")
    assert (t["isBuyer"], t["isMaker"]) == (False, False)

    canceled = await pm("cancel_order", "BTCUSDT", orig_client_order_id="pm-1")
    assert (canceled["orderId"], canceled["status"], canceled["origClientOrderId"]) == (
        ack["orderId"], "CANCELED", "pm-1")
    assert "code" not in canceled
    assert await balances(pm) == {"BTC": ("0.998", "0"), "USDT": ("10001.6121", "174.1")}
    rest = await pm("cancel_all_open_orders", "BTCUSDT")
    assert sorted(o["orderId"] for o in rest) == sorted(b["orderId"] for b in batch)
    assert {o["status"] for o in rest} == {"CANCELED"} and all("code" not in o for o in rest)
    assert await balances(pm) == {"BTC": ("0.998", "0"), "USDT": ("10175.7121", "0")}
    assert await pm("current_open_orders", "BTCUSDT") == []

    every = await pm("all_orders", "BTCUSDT")
    assert [(o["orderId"], o["status"]) for o in every] == [
        (ack["orderId"], "CANCELED"), (batch[0]["orderId"], "CANCELED"),
        (batch[1]["orderId"], "CANCELED"), (sold["orderId"], "FILLED")]
    assert all("code" not in o for o in every)

    fee = await pm("query_symbol_commission", "BTCUSDT")
    assert set(fee) == {"data", "code", "msg", "timestamp"}
    assert (fee["data"], fee["code"], fee["msg"]) == (
        {"makerCommission": 0, "takerCommission": 0.0005}, 0, "success")


async def test_errors_are_mexc_json(pm: Pymexc, sidecar: Sidecar) -> None:
    # pymexc reads response.json()["code"] and ["msg"] on every non-2xx answer
    msg = await pm.error("order", "BTCUSDT", "BUY", "LIMIT", quantity="1", price="87500")
    assert msg == "(code=30004): Insufficient position"
    msg = await pm.error("order", "BTCUSDT", "BUY", "LIMIT", quantity="0.00001", price="87500")
    assert msg == "(code=30002): The minimum transaction volume cannot be less than:1USDT"
    msg = await pm.error("query_order", "BTCUSDT", order_id="C02__1")
    assert msg == "(code=-2013): Order does not exist."
    msg = await pm.error("cancel_order", "BTCUSDT", order_id="C02__1")
    assert msg == "(code=-2011): Unknown order sent."
    msg = await pm.error("deposit_address", "USDT")
    assert msg.startswith("(code=730003): Unsupported operation: /api/v3/capital/deposit/address")
    wrong = make("async" if pm.is_async else "sync", sidecar, secret="not-the-secret")
    try:
        assert await wrong.error("account_information") == (
            "(code=700002): Signature for this request is not valid.")
    finally:
        await wrong.close()
    assert await balances(pm) == {"BTC": ("1", "0"), "USDT": ("10000", "0")}


async def test_pymexc_boolean_parameters_need_a_string(pm: Pymexc) -> None:
    """pymexc signs `mxDeductEnable=True` (Python's str) while curl_cffi sends `true`: the
    signature cannot match what arrives, as on MEXC. Passing the string "true" works."""
    msg = await pm.error("enable_mx_deduct", True)
    assert msg == "(code=700002): Signature for this request is not valid."
    on = await pm("enable_mx_deduct", "true")
    assert (on["data"], on["code"], on["msg"]) == ({"mxDeductEnable": True}, 0, "success")
    assert (await pm("query_mx_deduct_status"))["data"] == {"mxDeductEnable": True}
