"""The signing styles of MEXC's official Python demo and JS SDK (official_clients.py)
against the running sidecar: every signed call verifies and answers with exact values."""

from __future__ import annotations

from urllib.parse import urlsplit

from .e2e_harness import KEY, SECRET, Market, Sidecar
from .official_clients import DemoClient, JsSdkClient


def demo_balances(demo: DemoClient) -> dict[str, tuple[str, str]]:
    account = demo.sign_request("GET", "/api/v3/account")
    return {b["asset"]: (b["free"], b["locked"]) for b in account["balances"]}


def test_official_python_demo(sidecar: Sidecar, market: Market) -> None:
    demo = DemoClient(sidecar.url, KEY, SECRET)
    assert demo_balances(demo) == {"BTC": ("1", "0"), "USDT": ("10000", "0")}
    assert demo.last is not None
    query = urlsplit(demo.last.request.url).query
    assert query.startswith("signature=") and "&timestamp=" in query and "recvWindow" not in query

    ack = demo.sign_request("POST", "/api/v3/order", {
        "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01", "price": "87500"})
    assert demo.last.status_code == 200, ack
    query = urlsplit(demo.last.request.url).query
    assert query.index("&signature=") < query.index("&timestamp=")  # signature before timestamp
    assert (ack["symbol"], ack["price"], ack["origQty"], ack["type"]) == ("BTCUSDT", "87500", "0.01", "LIMIT")
    order = demo.sign_request("GET", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": ack["orderId"]})
    assert (order["status"], order["executedQty"], order["clientOrderId"]) == ("NEW", "0", None)
    assert demo_balances(demo) == {"BTC": ("1", "0"), "USDT": ("9125", "875")}

    # batchOrders as a Python repr (single quotes), spaces sent as '+' but signed as %20
    batch = demo.post_batchorders([
        {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "87000",
         "newClientOrderId": "demo:b/1"},
        {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "quantity": "0.001", "price": "88000"},
    ])
    assert "batchOrders=%5B%7B%27symbol%27%3A+%27BTCUSDT%27" in demo.last.request.url
    assert [sorted(b) for b in batch] == [["newClientOrderId", "orderId", "orderListId", "symbol"],
                                         ["orderId", "orderListId", "symbol"]]
    assert batch[0]["newClientOrderId"] == "demo:b/1"
    assert demo_balances(demo) == {"BTC": ("0.999", "0.001"), "USDT": ("9038", "962")}
    open_ = demo.sign_request("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"})
    assert [(o["orderId"], o["clientOrderId"]) for o in open_] == [
        (ack["orderId"], None), (batch[0]["orderId"], "demo:b/1"), (batch[1]["orderId"], None)]

    canceled = demo.sign_request("DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": ack["orderId"]})
    assert (canceled["orderId"], canceled["status"]) == (ack["orderId"], "CANCELED")
    rest = demo.sign_request("DELETE", "/api/v3/openOrders", {"symbol": "BTCUSDT"})
    assert sorted(o["orderId"] for o in rest) == sorted(b["orderId"] for b in batch)
    assert demo_balances(demo) == {"BTC": ("1", "0"), "USDT": ("10000", "0")}

    # a market buy for 50 USDT: floor8(50 / 87903.98) = 0.0005688 BTC at 87903.98
    bought = demo.sign_request("POST", "/api/v3/order", {
        "symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quoteOrderQty": "50"})
    trades = demo.sign_request("GET", "/api/v3/myTrades", {"symbol": "BTCUSDT"})
    assert [(t["orderId"], t["qty"], t["quoteQty"], t["commission"]) for t in trades] == [
        (bought["orderId"], "0.0005688", "49.999783824", "0.024999891912")]
    assert demo_balances(demo) == {"BTC": ("1.0005688", "0"), "USDT": ("9949.975216284088", "0")}
    every = demo.sign_request("GET", "/api/v3/allOrders", {"symbol": "BTCUSDT"})
    assert [o["status"] for o in every] == ["CANCELED", "CANCELED", "CANCELED", "FILLED"]
    fee = demo.sign_request("GET", "/api/v3/tradeFee", {"symbol": "BTCUSDT"})
    assert fee["data"] == {"makerCommission": 0, "takerCommission": 0.0005} and fee["code"] == 0

    # the body variant: form text in the body under a JSON content type; the values are
    # signed quote()d (demo%3Abody) but sent as they are (demo:body)
    assert demo.post_order_test_via_body({
        "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "87000",
        "newClientOrderId": "demo:body"}) == {}
    assert demo.last.status_code == 200 and urlsplit(demo.last.request.url).query == ""
    assert demo_balances(demo) == {"BTC": ("1.0005688", "0"), "USDT": ("9949.975216284088", "0")}

    # every timestamp came from the sidecar's clock; the upstream saw none of it
    assert not any(s.path == "/api/v3/time" for s in market.requests())


def test_official_python_demo_wrong_secret(sidecar: Sidecar) -> None:
    demo = DemoClient(sidecar.url, KEY, "not-the-secret")
    assert demo.sign_request("GET", "/api/v3/account") == {
        "code": 700002, "msg": "Signature for this request is not valid."}
    assert demo.last is not None and demo.last.status_code == 400
    assert demo.post_batchorders([{"symbol": "BTCUSDT"}]) == {
        "code": 700002, "msg": "Signature for this request is not valid."}


def test_js_sdk(sidecar: Sidecar, market: Market) -> None:
    js = JsSdkClient(sidecar.url, KEY, SECRET)
    status, ping = js.public_request("GET", "/ping")
    assert (status, ping) == (200, {})
    status, book = js.public_request("GET", "/depth", {"symbol": "BTCUSDT", "limit": 5})
    assert book["asks"][0] == ["87903.98", "5.12181600"]

    # encodeURIComponent leaves !*'() alone: they are signed and sent raw
    status, ack = js.new_order("BTCUSDT", "SELL", "LIMIT", quantity="0.001", price="88300",
                               newClientOrderId="js(1)!*'~")
    assert status == 200, ack
    assert "newClientOrderId=js(1)!*'~&symbol=BTCUSDT" in js.last_url
    assert "recvWindow" not in js.last_url
    assert js.last_url.index("timestamp=") < js.last_url.index("signature=")
    ref = {"symbol": "BTCUSDT", "origClientOrderId": "js(1)!*'~"}
    status, order = js.sign_request("GET", "/order", ref)
    assert (status, order["orderId"], order["status"]) == (200, ack["orderId"], "NEW")
    assert order["origQty"] == "0.001"

    status, sold = js.new_order("BTCUSDT", "SELL", "MARKET", quantity="0.0005")
    assert status == 200, sold
    # 0.0005 @ 87900 = 43.95, fee 0.021975
    status, trades = js.sign_request("GET", "/myTrades", {"symbol": "BTCUSDT", "orderId": sold["orderId"]})
    assert [(t["price"], t["qty"], t["quoteQty"], t["commission"], t["isMaker"]) for t in trades] == [
        ("87900", "0.0005", "43.95", "0.021975", False)]
    status, account = js.sign_request("GET", "/account")
    assert {b["asset"]: (b["free"], b["locked"]) for b in account["balances"]} == {
        "BTC": ("0.9985", "0.001"), "USDT": ("10043.928025", "0")}

    status, open_ = js.sign_request("GET", "/openOrders", {"symbol": "BTCUSDT"})
    assert [o["clientOrderId"] for o in open_] == ["js(1)!*'~"]
    status, canceled = js.sign_request("DELETE", "/order", ref)
    assert (status, canceled["status"], canceled["origClientOrderId"]) == (200, "CANCELED", "js(1)!*'~")
    status, every = js.sign_request("GET", "/allOrders", {"symbol": "BTCUSDT"})
    assert [o["status"] for o in every] == ["CANCELED", "FILLED"]

    status, err = JsSdkClient(sidecar.url, KEY, "not-the-secret").sign_request("GET", "/account")
    assert (status, err) == (400, {"code": 700002, "msg": "Signature for this request is not valid."})
    assert market.signed_requests() == []
