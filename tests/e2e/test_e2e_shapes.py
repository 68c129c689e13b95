"""The response-shape traps real clients fall into (clients.md sections 0 and 1.5), each
checked on the raw bytes the running sidecar sends:

- no `timestamp` key in ticker/24hr objects (ccxt would parse them as swap tickers);
- no `code` key in any order object (ccxt would read it as a rejected batch entry);
- tradeFee wrapped `{"data":{makerCommission,takerCommission},"code":0,...}`;
- every error is JSON with an integer `code` and a string `msg` (pymexc indexes both).
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from fake_upstream import Fault
from mexc_client import ccxt_query

from .e2e_harness import KEY, SECRET, Market, Sidecar


class Raw:
    def __init__(self, base: str) -> None:
        self.base = base

    def signed(self, method: str, path: str, params: dict[str, Any] | None = None,
               secret: str = SECRET, **kw: Any) -> requests.Response:
        q = ccxt_query(params or {}, secret)
        return requests.request(method, f"{self.base}{path}?{q}", headers={"X-MEXC-APIKEY": KEY},
                                timeout=5, **kw)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return requests.get(self.base + path, timeout=5, **kw)


@pytest.fixture
def raw(sidecar: Sidecar) -> Raw:
    return Raw(sidecar.url)


def test_ticker_24hr_objects_have_no_timestamp_key(raw: Raw) -> None:
    one = raw.get("/api/v3/ticker/24hr", params={"symbol": "BTCUSDT"}).json()
    assert one["symbol"] == "BTCUSDT" and "closeTime" in one and "timestamp" not in one
    every = raw.get("/api/v3/ticker/24hr").json()
    assert len(every) == 5 and not [t for t in every if "timestamp" in t]
    # with pymexc's extra parameters and key header too
    pym = raw.get("/api/v3/ticker/24hr?recvWindow=5000&symbol=BTCUSDT&timestamp=1",
                  headers={"X-MEXC-APIKEY": KEY}).json()
    assert pym == one


def test_no_order_object_has_a_code_key(raw: Raw) -> None:
    def ok(resp: requests.Response) -> Any:
        assert resp.status_code == 200, resp.text
        return resp.json()

    base = {"symbol": "BTCUSDT", "side": "BUY"}
    acks = [
        ok(raw.signed("POST", "/api/v3/order", {**base, "type": "LIMIT", "quantity": "0.001",
                                                 "price": "87000", "newClientOrderId": "shape-1"})),
        ok(raw.signed("POST", "/api/v3/order", {**base, "type": "LIMIT_MAKER", "quantity": "0.001",
                                                 "price": "87001"})),
        ok(raw.signed("POST", "/api/v3/order", {**base, "type": "MARKET", "quantity": "0.001"})),
        ok(raw.signed("POST", "/api/v3/order", {**base, "type": "MARKET", "quoteOrderQty": "20"})),
        ok(raw.signed("POST", "/api/v3/order", {**base, "type": "IMMEDIATE_OR_CANCEL", "quantity": "0.001",
                                                 "price": "87904"})),
        ok(raw.signed("POST", "/api/v3/order", {**base, "type": "FILL_OR_KILL", "quantity": "0.001",
                                                 "price": "87000"})),
    ]
    for ack in acks:
        assert list(ack) == ["symbol", "orderId", "orderListId", "price", "origQty", "type", "side",
                             "transactTime"]
    batch = ok(raw.signed("POST", "/api/v3/batchOrders", {"batchOrders": (
        '[{"symbol":"BTCUSDT","side":"SELL","type":"LIMIT","quantity":"0.001","price":"88000"},'
        '{"symbol":"BTCUSDT","side":"SELL","type":"LIMIT","quantity":"0.00001","price":"88000",'
        '"newClientOrderId":"too-small"}]')}))
    assert "code" not in batch[0]
    assert batch[1] == {"newClientOrderId": "too-small", "code": 30002,
                        "msg": "The minimum transaction volume cannot be less than:1USDT"}

    objects: list[dict] = [*acks, batch[0]]
    first = {"symbol": "BTCUSDT", "orderId": acks[0]["orderId"]}
    objects.append(ok(raw.signed("GET", "/api/v3/order", first)))
    objects += ok(raw.signed("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"}))
    objects += ok(raw.signed("GET", "/api/v3/openOrders"))
    objects += ok(raw.signed("GET", "/api/v3/allOrders", {"symbol": "BTCUSDT"}))
    objects.append(ok(raw.signed("DELETE", "/api/v3/order", {"symbol": "BTCUSDT",
                                                              "origClientOrderId": "shape-1"})))
    objects += ok(raw.signed("DELETE", "/api/v3/openOrders", {"symbol": "BTCUSDT"}))
    assert len(objects) == 7 + 1 + 3 + 3 + 7 + 1 + 2
    assert [o for o in objects if "code" in o] == []
    # DELETE /api/v3/order/all is not an order object: MEXC answers the wrapper
    everything = ok(raw.signed("DELETE", "/api/v3/order/all"))
    assert (everything["code"], everything["msg"]) == (200, "success")


# Keys, in order, of real MEXC answers (mexc-spot-v3.md 7.6, 7.11, 7.15: live captures)
LIVE_ACK = ["symbol", "orderId", "orderListId", "price", "origQty", "type", "side", "transactTime"]
LIVE_ORDER = ["symbol", "orderId", "orderListId", "clientOrderId", "price", "origQty", "executedQty",
              "cummulativeQuoteQty", "status", "stpMode", "timeInForce", "type", "side", "stopPrice",
              "icebergQty", "time", "updateTime", "isWorking", "origQuoteOrderQty"]
LIVE_TRADE = ["symbol", "id", "orderId", "orderListId", "price", "qty", "quoteQty", "commission",
              "commissionAsset", "time", "isBuyer", "isMaker", "isBestMatch", "isSelfTrade",
              "clientOrderId"]


def test_orders_and_trades_have_the_live_shapes(raw: Raw) -> None:
    ack = raw.signed("POST", "/api/v3/order", {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET",
                                               "quantity": "0.11"}).json()
    assert list(ack) == LIVE_ACK
    assert isinstance(ack["orderListId"], int) and isinstance(ack["transactTime"], int)
    order = raw.signed("GET", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": ack["orderId"]}).json()
    assert list(order) == LIVE_ORDER
    assert (order["timeInForce"], order["stopPrice"], order["icebergQty"], order["clientOrderId"]) == (
        None, None, None, None)
    # 0.05661525 @ 87900 then 0.05338475 @ 87899.76 (numbers are strings, no trailing zeros)
    assert (order["status"], order["executedQty"], order["cummulativeQuoteQty"]) == (
        "FILLED", "0.11", "9668.98718766")
    (first, second) = raw.signed("GET", "/api/v3/myTrades", {"symbol": "BTCUSDT"}).json()
    assert list(first) == LIVE_TRADE
    assert (first["price"], first["qty"], second["price"], second["qty"]) == (
        "87900", "0.05661525", "87899.76", "0.05338475")
    assert first["id"].endswith("X1") and second["id"].endswith("X2")
    assert first["id"][:-2] == second["id"][:-2] == ack["orderId"][5:-3]


def test_trade_fee_is_wrapped_with_numbers(raw: Raw) -> None:
    resp = raw.signed("GET", "/api/v3/tradeFee", {"symbol": "BTCUSDT"})
    body = resp.json()
    assert list(body) == ["data", "code", "msg", "timestamp"]
    assert body["data"] == {"makerCommission": 0, "takerCommission": 0.0005}
    assert resp.text.startswith(
        '{"data":{"makerCommission":0,"takerCommission":0.0005},"code":0,"msg":"success"')
    assert isinstance(body["timestamp"], int)


def test_every_error_is_mexc_json(raw: Raw, market: Market) -> None:
    q = ccxt_query({"symbol": "BTCUSDT"}, SECRET)
    cases: list[tuple[requests.Response, int, int]] = [
        (requests.get(f"{raw.base}/api/v3/account?{q}", timeout=5), 400, 400),  # no key header
        (requests.get(f"{raw.base}/api/v3/account?{q}", headers={"X-MEXC-APIKEY": "nobody"}, timeout=5),
         400, 10072),
        (raw.signed("GET", "/api/v3/account", secret="wrong"), 400, 700002),
        (requests.get(f"{raw.base}/api/v3/account?timestamp=1", headers={"X-MEXC-APIKEY": KEY}, timeout=5),
         400, 700004),
        (requests.get(f"{raw.base}/api/v3/account?{ccxt_query({}, SECRET, ts=1)}",
                      headers={"X-MEXC-APIKEY": KEY}, timeout=5), 400, 700003),
        (raw.signed("POST", "/api/v3/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                              "quantity": "1", "price": "87000"}), 400, 30004),
        (raw.signed("POST", "/api/v3/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                              "quantity": "0.0011", "price": "87000.123"}), 400, 400),
        (raw.signed("POST", "/api/v3/order", {"symbol": "NOPEUSDT", "side": "BUY", "type": "LIMIT",
                                              "quantity": "1", "price": "1"}), 400, -1121),
        (raw.signed("POST", "/api/v3/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT"}),
         400, 700004),
        (raw.signed("POST", "/api/v3/order", {"symbol": "BTCUSDT", "side": "UP", "type": "LIMIT",
                                              "quantity": "1", "price": "1"}), 400, 33333),
        (raw.signed("POST", "/api/v3/order", data="{not json"), 400, 33333),
        (raw.signed("POST", "/api/v3/batchOrders", {"batchOrders": "[{not json"}), 400, 33333),
        (raw.signed("GET", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": "C02__1"}), 400, -2013),
        (raw.signed("DELETE", "/api/v3/order", {"symbol": "BTCUSDT"}), 400, 700004),
        (raw.signed("POST", "/api/v3/capital/withdraw", {"coin": "USDT", "address": "x", "amount": "1"}),
         400, 730003),
        (raw.signed("GET", "/api/v3/sub-account/list"), 400, 730003),
        (requests.post(f"{raw.base}/api/v3/nothing-here", timeout=5), 404, 404),
        (requests.put(f"{raw.base}/api/v3/order", timeout=5), 405, 405),
        (requests.post(f"{raw.base}/api/v3/depth", timeout=5), 405, 405),
    ]
    for resp, status, code in cases:
        assert resp.headers["Content-Type"].startswith("application/json"), resp.request.url
        body = resp.json()
        assert (resp.status_code, body["code"]) == (status, code), (resp.request.url, body)
        assert isinstance(body["msg"], str) and body["msg"], body

    # the upstream failing: an HTML 502 page and a dead upstream both become MEXC JSON
    market.thread.call(market.fake.faults.__setitem__, "/api/v3/depth",
                       Fault(status=502, body="<html>Bad Gateway</html>", content_type="text/html"))
    resp = raw.get("/api/v3/depth", params={"symbol": "BTCUSDT"})
    assert (resp.status_code, resp.json()) == (502, {"code": 502, "msg": "Bad Gateway"})
    # and the upstream's own JSON errors pass through as they are
    resp = raw.get("/api/v3/exchangeInfo", params={"symbol": "NOPEUSDT"})
    assert (resp.status_code, resp.json()) == (400, {"code": -1121, "msg": "Invalid symbol."})
