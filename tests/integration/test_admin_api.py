"""The JSON admin API (proxy/admin.py) through the HTTP app, against the fake upstream serving
the recorded market: accounts with balances and positions, reset, fund, set a balance, and
the audit entry each change leaves in the event log.

The recorded BTCUSDT best ask is 87903.98 and the taker fee 0.0005 (see
test_trading_api.py); key 1 starts with 10000 USDT and 1 BTC, key 2 with 500 USDT. The
admin token, Content-Type and bad-amount checks are in tests/reliability/test_security.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from conftest import KEY, KEY2, SECRET, SECRET2, make_settings
from fake_upstream import FakeMexc, Fault
from mexc_client import ccxt_query

from proxy import keys
from proxy.app import create_app
from proxy.clock import FixedClock
from proxy.config import DashboardSettings

S = "BTCUSDT"
START_ONE = [{"asset": "BTC", "free": "1", "locked": "0", "total": "1"},
             {"asset": "USDT", "free": "10000", "locked": "0", "total": "10000"}]


def ok(result: tuple[int, Any]) -> Any:
    status, body = result
    assert status == 200, body
    return body


async def admin(client: TestClient, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
    if method == "GET":
        resp = await client.get(f"/admin/api{path}")
    else:
        resp = await client.post(f"/admin/api{path}", json=payload)
    return resp.status, await resp.json()


async def place(signed: Any, **params: str) -> Any:
    return ok(await signed("POST", "/api/v3/order", {"symbol": S, **params}))


async def api_balances(signed: Any, **key: str) -> dict[str, tuple[str, str]]:
    body = ok(await signed("GET", "/api/v3/account", **key))
    return {b["asset"]: (b["free"], b["locked"]) for b in body["balances"]}


async def events(client: TestClient, account_id: int, kind: str) -> list[dict[str, Any]]:
    return await client.app[keys.STORE].events(account_id=account_id, kind=kind)


async def test_accounts_list_balances_and_positions(
    client: TestClient, signed: Any, fake: FakeMexc, clock: FixedClock
) -> None:
    assert ok(await admin(client, "GET", "/accounts")) == {"accounts": [
        {"id": 1, "name": "one", "api_key": "test...1111", "mx_deduct": False, "open_orders": 0,
         "balances": START_ONE, "positions": []},
        {"id": 2, "name": "two", "api_key": "test...2222", "mx_deduct": False, "open_orders": 0,
         "balances": [{"asset": "USDT", "free": "500", "locked": "0", "total": "500"}], "positions": []},
    ]}
    # 0.01 BTC at the recorded best ask 87903.98; then the market moves (a new book) and
    # 0.01 more at 88000; valued at the recorded ticker price 87878.42
    place_1 = await place(signed, side="BUY", type="MARKET", quantity="0.01")
    fake.set_book(S, [("87999.5", "1")], [("88000", "1")])
    fake.set_price(S, "87878.42")
    clock.advance(1000)
    await place(signed, side="BUY", type="MARKET", quantity="0.01")
    await place(signed, side="BUY", type="LIMIT", quantity="0.001", price="80000")
    one = ok(await admin(client, "GET", "/accounts/1"))
    # USDT: 10000 - 879.0398 - 0.4395199 - 880 - 0.44 = 8240.0806801, 80 of it locked
    assert one == {
        "id": 1, "name": "one", "api_key": "test...1111", "mx_deduct": False, "open_orders": 1,
        "balances": [{"asset": "BTC", "free": "1.02", "locked": "0", "total": "1.02"},
                     {"asset": "USDT", "free": "8160.0806801", "locked": "80", "total": "8240.0806801"}],
        # average cost (87903.98 + 88000) / 2 = 87951.99; unrealised (87878.42 - 87951.99) x 0.02
        "positions": [{"asset": "BTC", "symbol": S, "quantity": "0.02", "avg_cost": "87951.99",
                       "quote": "USDT", "price": "87878.42", "unrealised_pnl": "-1.4714"}],
    }
    listed = ok(await admin(client, "GET", "/accounts"))["accounts"]
    assert listed[0] == one and listed[1]["positions"] == []
    # selling more than the fills bought opens a short in this ledger (starting balances
    # are not trades): 0.05 sold at 87999.5 closes 0.02 and leaves -0.03 at 87999.5
    await place(signed, side="SELL", type="MARKET", quantity="0.05")
    [pos] = ok(await admin(client, "GET", "/accounts/1"))["positions"]
    assert (pos["quantity"], pos["avg_cost"], pos["unrealised_pnl"]) == (
        "-0.03", "87999.5", "3.6324")  # (87878.42 - 87999.5) x -0.03
    # no ticker from the upstream: valued at the middle of the book the engine holds, the
    # best price the sidecar has (as on the dashboard and the equity curve)
    fake.faults["/api/v3/ticker/price"] = Fault(status=500, body="{}")
    [pos] = ok(await admin(client, "GET", "/accounts/1"))["positions"]
    assert (pos["quantity"], pos["price"], pos["unrealised_pnl"]) == ("-0.03", "87999.75", "-0.0075")
    # and with no book either, the position is still listed, its value unknown
    client.app[keys.SERVICE].state.markets.clear()
    [pos] = ok(await admin(client, "GET", "/accounts/1"))["positions"]
    assert (pos["quantity"], pos["price"], pos["unrealised_pnl"]) == ("-0.03", None, None)
    assert place_1["orderId"].startswith("C02__")

    assert await admin(client, "GET", "/accounts/3") == (404, {"error": "unknown account", "status": 404})
    assert await admin(client, "GET", "/accounts/one") == (404, {"error": "unknown account", "status": 404})


async def test_reset_restores_the_configured_balances_and_removes_open_orders(
    client: TestClient, signed: Any
) -> None:
    k2 = {"key": KEY2, "secret": SECRET2}
    await place(signed, side="BUY", type="MARKET", quantity="0.01")
    resting = await place(signed, side="BUY", type="LIMIT", quantity="0.001", price="80000",
                          newClientOrderId="r-1")
    ok(await admin(client, "POST", "/accounts/1/fund", {"asset": "MX", "amount": "5"}))
    other = ok(await signed("POST", "/api/v3/order", {"symbol": S, "side": "BUY", "type": "LIMIT",
                                                      "quantity": "0.001", "price": "80000"}, **k2))
    orders_before = len(await events(client, 1, "order.new"))

    summary = ok(await admin(client, "POST", "/accounts/1/reset", {}))
    assert summary == {"id": 1, "name": "one", "api_key": "test...1111", "mx_deduct": False,
                       "open_orders": 0, "balances": START_ONE, "positions": []}
    # the bot sees a fresh account: no orders, no trades, the configured balances
    assert ok(await signed("GET", "/api/v3/openOrders")) == []
    assert await signed("GET", "/api/v3/order", {"symbol": S, "orderId": resting["orderId"]}) == (
        400, {"code": -2013, "msg": "Order does not exist."})
    assert await signed("DELETE", "/api/v3/order", {"symbol": S, "orderId": resting["orderId"]}) == (
        400, {"code": -2011, "msg": "Unknown order sent."})
    assert ok(await signed("GET", "/api/v3/allOrders", {"symbol": S})) == []
    assert ok(await signed("GET", "/api/v3/myTrades", {"symbol": S})) == []
    assert await api_balances(signed) == {"BTC": ("1", "0"), "USDT": ("10000", "0")}
    # the other account is untouched
    assert [o["orderId"] for o in ok(await signed("GET", "/api/v3/openOrders", **k2))] == [other["orderId"]]
    assert await api_balances(signed, **k2) == {"USDT": ("420", "80")}
    # the reset is audited; the audit log keeps what happened before it
    [entry] = await events(client, 1, "account.reset")
    assert (entry["account_id"], entry["mode"], entry["data"]) == (
        1, "paper", {"balances": {"USDT": "10000", "BTC": "1"}})
    assert len(await events(client, 1, "order.new")) == orders_before == 2
    # trading goes on; order ids are never reused and the client id is free again
    again = await place(signed, side="BUY", type="LIMIT", quantity="0.001", price="80000",
                        newClientOrderId="r-1")
    assert int(again["orderId"][5:]) > int(resting["orderId"][5:])
    assert await api_balances(signed) == {"BTC": ("1", "0"), "USDT": ("9920", "80")}


async def test_fund_adds_and_balance_sets_the_free_amount(client: TestClient, signed: Any) -> None:
    resting = await place(signed, side="BUY", type="LIMIT", quantity="0.001", price="80000")

    got = ok(await admin(client, "POST", "/accounts/1/fund", {"asset": "usdt", "amount": "250.5"}))
    assert got["balances"] == [{"asset": "BTC", "free": "1", "locked": "0", "total": "1"},
                               {"asset": "USDT", "free": "10170.5", "locked": "80", "total": "10250.5"}]
    got = ok(await admin(client, "POST", "/accounts/1/fund", {"asset": "ETH", "amount": "0.75"}))
    assert [b["asset"] for b in got["balances"]] == ["BTC", "ETH", "USDT"]
    assert await api_balances(signed) == {"BTC": ("1", "0"), "ETH": ("0.75", "0"), "USDT": ("10170.5", "80")}

    # set: the free amount becomes exactly the value; the open order keeps its 80 locked
    got = ok(await admin(client, "POST", "/accounts/1/balance", {"asset": "USDT", "amount": "100"}))
    assert got["balances"][2] == {"asset": "USDT", "free": "100", "locked": "80", "total": "180"}
    got = ok(await admin(client, "POST", "/accounts/1/balance", {"asset": "BTC", "amount": "0"}))
    assert got["balances"][0] == {"asset": "BTC", "free": "0", "locked": "0", "total": "0"}
    got = ok(await admin(client, "POST", "/accounts/2/balance", {"asset": "BTC", "amount": "0.5"}))
    assert got["balances"] == [{"asset": "BTC", "free": "0.5", "locked": "0", "total": "0.5"},
                               {"asset": "USDT", "free": "500", "locked": "0", "total": "500"}]
    for bad in ("-1", "abc", "1e999999999"):
        status, body = await admin(client, "POST", "/accounts/1/balance", {"asset": "USDT", "amount": bad})
        assert (status, body["status"]) == (400, 400), bad
    assert (await admin(client, "POST", "/accounts/9/balance", {"asset": "USDT", "amount": "1"}))[0] == 404

    # the bot trades on the new balances: 0.002 x 80000 = 160 > 100 free
    assert await api_balances(signed) == {"ETH": ("0.75", "0"), "USDT": ("100", "80")}
    assert await signed("POST", "/api/v3/order", {"symbol": S, "side": "BUY", "type": "LIMIT",
                                                  "quantity": "0.002", "price": "80000"}) == (
        400, {"code": 30004, "msg": "Insufficient position"})
    assert await signed("POST", "/api/v3/order", {"symbol": S, "side": "SELL", "type": "LIMIT",
                                                  "quantity": "0.001", "price": "95000"}) == (
        400, {"code": 30004, "msg": "Insufficient position"})
    ok(await signed("DELETE", "/api/v3/order", {"symbol": S, "orderId": resting["orderId"]}))
    assert await api_balances(signed) == {"ETH": ("0.75", "0"), "USDT": ("180", "0")}
    assert await api_balances(signed, key=KEY2, secret=SECRET2) == {"BTC": ("0.5", "0"), "USDT": ("500", "0")}

    # each change is in the event log, newest first, with what it did
    funds = await events(client, 1, "account.fund")
    assert [e["data"] for e in funds] == [{"asset": "ETH", "amount": "0.75"},
                                          {"asset": "USDT", "amount": "250.5"}]
    sets = await events(client, 1, "account.set_balance")
    assert [e["data"] for e in sets] == [{"asset": "BTC", "free_before": "1", "free": "0"},
                                         {"asset": "USDT", "free_before": "10170.5", "free": "100"}]
    assert all(e["mode"] == "paper" for e in funds + sets)
    assert [e["data"] for e in await events(client, 2, "account.set_balance")] == [
        {"asset": "BTC", "free_before": "0", "free": "0.5"}]
    assert await events(client, 2, "account.fund") == []


async def test_positions_need_no_dashboard(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock
) -> None:
    settings = make_settings(tmp_path, str(fake_server.make_url("")).rstrip("/"),
                             dashboard=DashboardSettings(enabled=False))
    client = await aiohttp_client(create_app(settings, clock=clock))
    q = ccxt_query({"symbol": S, "side": "BUY", "type": "MARKET", "quantity": "0.01"}, SECRET,
                   ts=clock.now_ms())
    resp = await client.post(f"/api/v3/order?{q}", headers={"X-MEXC-APIKEY": KEY})
    assert resp.status == 200, await resp.text()
    # 0.01 at the recorded best ask 87903.98, valued at the fake's ticker price 87900
    assert ok(await admin(client, "GET", "/accounts/1"))["positions"] == [
        {"asset": "BTC", "symbol": S, "quantity": "0.01", "avg_cost": "87903.98", "quote": "USDT",
         "price": "87900", "unrealised_pnl": "-0.0398"}]
