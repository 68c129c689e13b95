"""Authentication against the running app, in each real client's signing style, and every
rejection path with MEXC's code and HTTP status."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from aiohttp.test_utils import TestClient
from conftest import KEY, KEY2, SECRET, SECRET2
from yarl import URL

from proxy.clock import FixedClock


def sig(secret: str, text: str) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


async def body_of(resp: Any) -> tuple[int, Any]:
    return resp.status, json.loads(await resp.read())


# ---------------------------------------------------------------- client styles


async def test_ccxt_style_query_with_recv_window(client: TestClient, clock: FixedClock) -> None:
    q = urlencode({"timestamp": clock.now_ms(), "recvWindow": 5000}, quote_via=quote)
    r = await client.get(f"/api/v3/account?{q}&signature={sig(SECRET, q)}", headers={"X-MEXC-APIKEY": KEY})
    status, data = await body_of(r)
    assert status == 200, data
    assert {b["asset"]: b["free"] for b in data["balances"]} == {"BTC": "1", "USDT": "10000"}


async def test_ccxt_batch_orders_percent_encoded_json(client: TestClient, clock: FixedClock) -> None:
    orders = [
        {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "80000"},
        {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.002", "price": "80001"},
    ]
    params = {"batchOrders": json.dumps(orders, separators=(",", ":")),
              "timestamp": clock.now_ms(), "recvWindow": 5000}
    q = urlencode(params, quote_via=quote)
    assert "%5B%7B%22symbol%22" in q
    # ccxt's async client sends the URL as encoded (yarl.URL(url, encoded=True))
    url = client.make_url("").join(URL(f"/api/v3/batchOrders?{q}&signature={sig(SECRET, q)}",
                                       encoded=True))
    r = await client.session.post(url, headers={"X-MEXC-APIKEY": KEY, "Content-Type": "application/json"})
    status, data = await body_of(r)
    assert status == 200, data
    assert [d["symbol"] for d in data] == ["BTCUSDT", "BTCUSDT"]
    assert all(d["orderId"].startswith("C02__") and d["orderListId"] == -1 for d in data)


async def test_escapes_normalised_in_transit_still_verify(client: TestClient, clock: FixedClock) -> None:
    """An HTTP library may turn `%3A` into `:` after signing (yarl does by default)."""
    orders = [{"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "80000"}]
    params = {"batchOrders": json.dumps(orders, separators=(",", ":")), "timestamp": clock.now_ms()}
    q = urlencode(params, quote_via=quote)
    r = await client.post(f"/api/v3/batchOrders?{q}&signature={sig(SECRET, q)}",
                          headers={"X-MEXC-APIKEY": KEY})
    assert "%3A" not in str(r.url)  # the client did normalise it
    status, data = await body_of(r)
    assert status == 200, data


async def test_pymexc_style_sorted_and_plus_for_space(client: TestClient, clock: FixedClock) -> None:
    """pymexc sorts params, signs `%20`, but its HTTP library sends `+`."""
    orders = [{"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "80000"}]
    params = {"batchOrders": json.dumps(orders), "recvWindow": 5000, "timestamp": clock.now_ms()}
    signed_text = urlencode(dict(sorted(params.items())), doseq=True).replace("+", "%20")
    sent = signed_text.replace("%20", "+")
    assert "+" in sent
    r = await client.post(f"/api/v3/batchOrders?{sent}&signature={sig(SECRET, signed_text)}",
                          headers={"X-MEXC-APIKEY": KEY, "Content-Type": "application/json"})
    status, data = await body_of(r)
    assert status == 200, data
    assert data[0]["symbol"] == "BTCUSDT"


async def test_official_python_demo_signature_before_timestamp(
    client: TestClient, clock: FixedClock
) -> None:
    # GET /api/v3/time first, as the demo does, and use serverTime
    t = await (await client.get("/api/v3/time")).json()
    ts = t["serverTime"]
    text = f"symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=0.001&price=80000&timestamp={ts}"
    query = ("symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=0.001&price=80000"
             f"&signature={sig(SECRET, text)}&timestamp={ts}")
    r = await client.post(f"/api/v3/order?{query}", headers={"x-mexc-apikey": KEY})
    status, data = await body_of(r)
    assert status == 200, data
    assert data["type"] == "LIMIT" and data["price"] == "80000"


async def test_official_python_demo_form_body_under_json_content_type(
    client: TestClient, clock: FixedClock
) -> None:
    ts = clock.now_ms()
    text = f"symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=0.001&price=80000&timestamp={ts}"
    body = f"{text}&signature={sig(SECRET, text)}"
    r = await client.post("/api/v3/order/test", data=body,
                          headers={"x-mexc-apikey": KEY, "Content-Type": "application/json"})
    status, data = await body_of(r)
    assert (status, data) == (200, {})


async def test_js_sdk_style_without_recv_window(client: TestClient, clock: FixedClock) -> None:
    text = f"quantity=0.001&price=80000&symbol=BTCUSDT&side=BUY&type=LIMIT&timestamp={clock.now_ms()}"
    r = await client.post(f"/api/v3/order?{text}&signature={sig(SECRET, text)}",
                          headers={"X-MEXC-APIKEY": KEY, "Content-Type": "application/json"})
    status, data = await body_of(r)
    assert status == 200, data
    assert data["origQty"] == "0.001"


async def test_hummingbot_style_form_body(client: TestClient, clock: FixedClock) -> None:
    params = {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "quantity": "0.01",
              "price": "95000", "timestamp": clock.now_ms()}
    text = urlencode(params)
    r = await client.post("/api/v3/order", data=f"{text}&signature={sig(SECRET, text)}",
                          headers={"X-MEXC-APIKEY": KEY, "Content-Type": "application/json"})
    status, data = await body_of(r)
    assert status == 200, data
    assert data["side"] == "SELL"


async def test_query_plus_body_concatenated_without_separator(
    client: TestClient, clock: FixedClock
) -> None:
    q = "symbol=BTCUSDT&side=BUY&type=LIMIT"
    b = f"quantity=0.001&price=80000&recvWindow=5000&timestamp={clock.now_ms()}"
    r = await client.post(f"/api/v3/order?{q}", data=f"{b}&signature={sig(SECRET, q + b)}",
                          headers={"X-MEXC-APIKEY": KEY})
    status, data = await body_of(r)
    assert status == 200, data


async def test_json_object_body_is_parsed(client: TestClient, clock: FixedClock) -> None:
    body = json.dumps({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": 0.001,
                       "price": "80000", "timestamp": clock.now_ms()})
    q = f"x=1"  # noqa: F541
    r = await client.post(f"/api/v3/order/test?{q}&signature={sig(SECRET, q + body)}", data=body,
                          headers={"X-MEXC-APIKEY": KEY, "Content-Type": "application/json"})
    assert await body_of(r) == (200, {})


async def test_unknown_parameters_are_ignored(signed: Any) -> None:
    status, data = await signed("GET", "/api/v3/account", {"states": "3", "foo": "bar"})
    assert status == 200, data


async def test_server_time_is_the_sidecar_clock(client: TestClient, clock: FixedClock) -> None:
    clock.set(1_800_000_000_123)
    assert await (await client.get("/api/v3/time")).json() == {"serverTime": 1_800_000_000_123}


# ---------------------------------------------------------------- rejections


async def expect(resp: Any, code: int, msg: str, status: int = 400) -> None:
    got_status, data = await body_of(resp)
    assert (got_status, data) == (status, {"code": code, "msg": msg})
    assert resp.headers["Content-Type"].startswith("application/json")


async def test_missing_api_key_header(client: TestClient, clock: FixedClock) -> None:
    q = f"timestamp={clock.now_ms()}"
    await expect(await client.get(f"/api/v3/account?{q}&signature={sig(SECRET, q)}"),
                 400, "api key required")


async def test_unknown_api_key(client: TestClient, clock: FixedClock) -> None:
    q = f"timestamp={clock.now_ms()}"
    await expect(await client.get(f"/api/v3/account?{q}&signature={sig(SECRET, q)}",
                                  headers={"X-MEXC-APIKEY": "mx0nosuchkey"}),
                 10072, "Api key info invalid")


async def test_missing_signature(client: TestClient, clock: FixedClock) -> None:
    await expect(await client.get(f"/api/v3/account?timestamp={clock.now_ms()}",
                                  headers={"X-MEXC-APIKEY": KEY}),
                 700004, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")


async def test_wrong_secret(client: TestClient, clock: FixedClock) -> None:
    q = f"timestamp={clock.now_ms()}"
    await expect(await client.get(f"/api/v3/account?{q}&signature={sig('not-the-secret', q)}",
                                  headers={"X-MEXC-APIKEY": KEY}),
                 700002, "Signature for this request is not valid.")


async def test_tampered_parameters(client: TestClient, clock: FixedClock) -> None:
    q = f"symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=0.001&price=80000&timestamp={clock.now_ms()}"
    s = sig(SECRET, q)
    await expect(await client.post(f"/api/v3/order?{q.replace('0.001', '0.002')}&signature={s}",
                                   headers={"X-MEXC-APIKEY": KEY}),
                 700002, "Signature for this request is not valid.")


@pytest.mark.parametrize("offset", [-5001, 1000, 60_000])
async def test_stale_or_future_timestamp(client: TestClient, clock: FixedClock, offset: int) -> None:
    q = f"timestamp={clock.now_ms() + offset}"
    await expect(await client.get(f"/api/v3/account?{q}&signature={sig(SECRET, q)}",
                                  headers={"X-MEXC-APIKEY": KEY}),
                 700003, "Timestamp for this request is outside of the recvWindow.")


async def test_recv_window_widens_the_window(client: TestClient, clock: FixedClock) -> None:
    q = f"timestamp={clock.now_ms() - 30_000}&recvWindow=60000"
    r = await client.get(f"/api/v3/account?{q}&signature={sig(SECRET, q)}", headers={"X-MEXC-APIKEY": KEY})
    assert r.status == 200


async def test_oversized_recv_window(client: TestClient, clock: FixedClock) -> None:
    q = f"timestamp={clock.now_ms()}&recvWindow=60001"
    await expect(await client.get(f"/api/v3/account?{q}&signature={sig(SECRET, q)}",
                                  headers={"X-MEXC-APIKEY": KEY}),
                 700005, "recvWindow must less than 60000")


async def test_missing_timestamp(client: TestClient) -> None:
    q = "recvWindow=5000"
    await expect(await client.get(f"/api/v3/account?{q}&signature={sig(SECRET, q)}",
                                  headers={"X-MEXC-APIKEY": KEY}),
                 700004, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")


async def test_unknown_path_and_wrong_method_are_mexc_json(client: TestClient) -> None:
    await expect(await client.post("/api/v3/nothing-here"), 404, "Not Found", 404)
    await expect(await client.put("/api/v3/order"), 405, "Method Not Allowed", 405)


async def test_oversized_body_is_mexc_json(client: TestClient) -> None:
    r = await client.post("/api/v3/order", data=b"a=" + b"x" * 70_000, headers={"X-MEXC-APIKEY": KEY})
    await expect(r, 413, "Request Entity Too Large", 413)


# ---------------------------------------------------------------- isolation


async def test_accounts_are_isolated(signed: Any) -> None:
    status, ack = await signed("POST", "/api/v3/order", {
        "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "80000",
        "newClientOrderId": "mine-1"})
    assert status == 200, ack
    oid = ack["orderId"]
    # the other key cannot see it, by id or client id, nor cancel it, nor list it
    assert await signed("GET", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": oid},
                        key=KEY2, secret=SECRET2) == (400, {"code": -2013, "msg": "Order does not exist."})
    assert await signed("GET", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "mine-1"},
                        key=KEY2, secret=SECRET2) == (400, {"code": -2013, "msg": "Order does not exist."})
    assert await signed("DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": oid},
                        key=KEY2, secret=SECRET2) == (400, {"code": -2011, "msg": "Unknown order sent."})
    assert await signed("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"},
                        key=KEY2, secret=SECRET2) == (200, [])
    assert await signed("DELETE", "/api/v3/openOrders", {"symbol": "BTCUSDT"},
                        key=KEY2, secret=SECRET2) == (200, [])
    # balances are separate
    _, acct2 = await signed("GET", "/api/v3/account", key=KEY2, secret=SECRET2)
    assert acct2["balances"] == [{"asset": "USDT", "free": "500", "locked": "0", "available": "500"}]
    # the same client id is free for the other account
    status, _ = await signed("POST", "/api/v3/order", {
        "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "80000",
        "newClientOrderId": "mine-1"}, key=KEY2, secret=SECRET2)
    assert status == 200
    # and the owner still sees exactly its one order
    _, mine = await signed("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"})
    assert [o["orderId"] for o in mine] == [oid]


async def test_a_signature_made_with_another_accounts_secret_fails(
    client: TestClient, clock: FixedClock
) -> None:
    q = f"timestamp={clock.now_ms()}"
    await expect(await client.get(f"/api/v3/account?{q}&signature={sig(SECRET2, q)}",
                                  headers={"X-MEXC-APIKEY": KEY}),
                 700002, "Signature for this request is not valid.")
