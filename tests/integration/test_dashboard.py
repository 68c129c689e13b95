"""The dashboard sub-app through aiohttp's test client: pages, the polled JSON, CSRF and
admin-token protection, mode switches and their audit entries, CSV exports, the equity
recorder and the PnL ledgers. (The real-browser tests are in tests/browser/.)"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from conftest import KEY, SECRET, make_settings
from dashboard_support import PricedFake
from fake_upstream import FakeMexc
from mexc_client import ccxt_query

from proxy import keys
from proxy.app import create_app
from proxy.clock import FixedClock
from proxy.config import DashboardSettings, LiveSettings, ServerSettings
from proxy.dashboard import present
from proxy.store import StoreError

TOKEN = "admin-token-for-tests"


@pytest.fixture
def fake() -> FakeMexc:
    return PricedFake()


def url_of(server: Any) -> str:
    return str(server.make_url("")).rstrip("/")


async def csrf_token(client: TestClient, path: str = "/dashboard/settings") -> str:
    resp = await client.get(path)
    assert resp.status == 200
    m = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', await resp.text())
    assert m is not None
    return m.group(1)


def signer(client: TestClient, clock: FixedClock) -> Any:
    async def call(method: str, path: str, params: dict[str, Any]) -> tuple[int, Any]:
        q = ccxt_query(params, SECRET, ts=clock.now_ms())
        resp = await client.request(method, f"{path}?{q}", headers={"X-MEXC-APIKEY": KEY})
        return resp.status, await resp.json()

    return call


async def place(signed: Any, **params: str) -> dict[str, Any]:
    status, body = await signed("POST", "/api/v3/order", {"symbol": "BTCUSDT", **params})
    assert status == 200, body
    return body


async def open_order_ids(signed: Any) -> list[str]:
    status, body = await signed("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"})
    assert status == 200
    return [o["orderId"] for o in body]


# ---------------------------------------------------------------------------- pages


async def test_overview_shows_balances_values_orders_and_fills(client: TestClient, signed: Any) -> None:
    resting = await place(signed, side="BUY", type="LIMIT", quantity="0.001", price="80000")
    await place(signed, side="BUY", type="MARKET", quantity="0.01")
    resp = await client.get("/dashboard/?account=1")
    assert resp.status == 200
    html = await resp.text()
    assert '<div id="mode-banner" class="banner paper"' in html
    assert "<strong>PAPER TRADING</strong>" in html
    status, acct = await signed("GET", "/api/v3/account")
    assert status == 200
    for b in acct["balances"]:
        row = re.search(rf'<tr data-asset="{b["asset"]}">(.*?)</tr>', html)
        assert row is not None
        assert f'<td class="free">{b["free"]}</td><td class="locked">{b["locked"]}</td>' in row.group(1)
    assert f'data-order-id="{resting["orderId"]}"' in html
    assert "Taker: took 0.01 from the order book level at 87903.98" in html
    # 1.01 BTC at 87900 + the USDT left
    usdt = next(Decimal(b["free"]) + Decimal(b["locked"]) for b in acct["balances"] if b["asset"] == "USDT")
    total = usdt + Decimal("1.01") * 87900
    want = format(total.quantize(Decimal("0.01")), ",f")
    assert f'<span class="big" id="total-value">{want} USDT</span>' in html


async def test_state_json_carries_the_sections_and_the_data(client: TestClient, signed: Any) -> None:
    order = await place(signed, side="SELL", type="LIMIT", quantity="0.5", price="95000",
                        newClientOrderId="sell-high")
    resp = await client.get("/dashboard/api/state?account=1")
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "no-store"
    state = await resp.json()
    assert state["mode"] == "paper"
    assert "PAPER TRADING" in state["banner"]
    assert set(state["html"]) == {
        "balances", "open_orders", "streams", "performance", "fills", "recent_orders", "events"}
    assert order["orderId"] in state["html"]["open_orders"]
    [row] = state["data"]["open_orders"]
    assert (row["order_id"], row["client_order_id"], row["price"], row["qty"]) == (
        order["orderId"], "sell-high", "95000", "0.5")
    balances = {b["asset"]: (b["free"], b["locked"]) for b in state["data"]["balances"]}
    assert balances == {"BTC": ("0.5", "0.5"), "USDT": ("10000", "0")}
    # the other account has its own page
    other = await (await client.get("/dashboard/api/state?account=2")).json()
    assert other["data"]["open_orders"] == []
    assert {b["asset"] for b in other["data"]["balances"]} == {"USDT"}


async def test_everything_from_the_bot_is_escaped(client: TestClient, signed: Any) -> None:
    await place(signed, side="BUY", type="LIMIT", quantity="0.001", price="80000",
                newClientOrderId="<script>alert(1)</script>")
    html = await (await client.get("/dashboard/")).text()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


async def test_pages_are_self_contained_and_locked_down(client: TestClient) -> None:
    for path in ("/dashboard/", "/dashboard/events", "/dashboard/settings"):
        resp = await client.get(path)
        assert resp.status == 200, path
        html = await resp.text()
        # no CDN: every script, stylesheet and image comes from the sidecar
        assert not re.search(r'(src|href)="(https?:)?//', html), path
        csp = resp.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert resp.headers["X-Frame-Options"] == "DENY"
    for name in ("dashboard.js", "dashboard.css"):
        resp = await client.get(f"/dashboard/static/{name}")
        assert resp.status == 200
        assert "https://" not in await resp.text()


async def test_dashboard_errors_are_html_and_api_errors_stay_mexc_json(client: TestClient) -> None:
    resp = await client.get("/dashboard/no-such-page")
    assert resp.status == 404
    assert resp.content_type == "text/html"
    assert "PAPER TRADING" in await resp.text()
    resp = await client.get("/dashboard/export/99/orders.csv")
    assert resp.status == 404
    resp = await client.get("/api/v3/no-such-path")
    assert resp.content_type == "application/json"


async def test_root_redirects_to_the_dashboard(client: TestClient) -> None:
    resp = await client.get("/", allow_redirects=False)
    assert (resp.status, resp.headers["Location"]) == (302, "/dashboard/")


async def test_event_log_filters_by_account_and_kind(client: TestClient, signed: Any) -> None:
    order = await place(signed, side="BUY", type="LIMIT", quantity="0.001", price="80000")
    await signed("DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": order["orderId"]})
    status, _ = await signed("POST", "/api/v3/order", {
        "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "1000", "price": "80000"})
    assert status == 400
    await client.app[keys.STORE].flush()  # the rejection's audit entry is written unawaited

    html = await (await client.get("/dashboard/events?filter_account=1&kind=order.*")).text()
    kinds = re.findall(r'<span class="kind [a-z]+">([a-z.]+)</span>', html)
    assert kinds == ["order.rejected", "order.canceled", "order.new"]
    html = await (await client.get("/dashboard/events?filter_account=1&kind=order.canceled")).text()
    assert re.findall(r'<span class="kind [a-z]+">([a-z.]+)</span>', html) == ["order.canceled"]
    assert order["orderId"] in html
    html = await (await client.get("/dashboard/events?filter_account=2")).text()
    assert re.findall(r'<span class="kind [a-z]+">([a-z.]+)</span>', html) == ["account.created"]
    resp = await client.get("/dashboard/events?kind=<x>")
    assert resp.status == 400


async def test_csv_exports_are_exact_and_defused(client: TestClient, signed: Any) -> None:
    await place(signed, side="BUY", type="LIMIT", quantity="0.001", price="80000",
                newClientOrderId="=HYPERLINK(1)")
    market = await place(signed, side="BUY", type="MARKET", quantity="0.01")
    resp = await client.get("/dashboard/export/1/orders.csv")
    assert resp.status == 200
    assert resp.content_type == "text/csv"
    assert 'filename="mexc-paper-account1-orders.csv"' in resp.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert [r["type"] for r in rows] == ["LIMIT", "MARKET"]
    assert rows[0]["clientOrderId"] == "'=HYPERLINK(1)"  # no formula in a spreadsheet
    assert (rows[0]["price"], rows[0]["origQty"], rows[0]["status"]) == ("80000", "0.001", "NEW")
    assert (rows[1]["executedQty"], rows[1]["cummulativeQuoteQty"]) == ("0.01", "879.0398")

    resp = await client.get("/dashboard/export/1/trades.csv")
    [t] = list(csv.DictReader(io.StringIO(await resp.text())))
    status, mine = await signed("GET", "/api/v3/myTrades", {"symbol": "BTCUSDT"})
    assert status == 200
    assert (t["orderId"], t["price"], t["qty"], t["commission"], t["commissionAsset"]) == (
        market["orderId"], mine[0]["price"], mine[0]["qty"], mine[0]["commission"], "USDT")
    assert t["isMaker"] == "false" and t["fillSource"] == "book"
    assert t["explanation"].startswith("Taker: took 0.01")
    empty = await (await client.get("/dashboard/export/2/trades.csv")).text()
    assert empty.splitlines() == [
        "tradeId,orderId,clientOrderId,symbol,side,price,qty,quoteQty,commission,commissionAsset,"
        "isMaker,time,timeUtc,fillSource,explanation"]


# ---------------------------------------------------------------------------- changes


async def test_reset_without_csrf_token_is_refused(client: TestClient, signed: Any) -> None:
    order = await place(signed, side="BUY", type="LIMIT", quantity="0.001", price="80000")
    token = await csrf_token(client)
    for form in ({"confirm": "yes"}, {"confirm": "yes", "csrf_token": "f" * 64}):
        resp = await client.post("/dashboard/accounts/1/reset", data=form, allow_redirects=False)
        assert resp.status == 403
        assert "CSRF check failed" in await resp.text()
    # the right token without its cookie (a cross-site form) is refused too
    client.session.cookie_jar.clear()
    resp = await client.post("/dashboard/accounts/1/reset", data={"confirm": "yes", "csrf_token": token},
                             allow_redirects=False)
    assert resp.status == 403
    assert await open_order_ids(signed) == [order["orderId"]]


async def test_reset_asks_for_confirmation_then_resets(client: TestClient, signed: Any) -> None:
    await place(signed, side="BUY", type="LIMIT", quantity="0.001", price="80000")
    await place(signed, side="BUY", type="MARKET", quantity="0.01")
    token = await csrf_token(client)
    resp = await client.post("/dashboard/accounts/1/reset", data={"csrf_token": token})
    assert resp.status == 200
    page = await resp.text()
    assert "Reset account one?" in page
    assert '<input type="hidden" name="confirm" value="yes">' in page
    assert len(await open_order_ids(signed)) == 1  # nothing happened yet

    resp = await client.post("/dashboard/accounts/1/reset", data={"csrf_token": token, "confirm": "yes"},
                             allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == "/dashboard/?account=1&done=reset"
    assert await open_order_ids(signed) == []
    status, acct = await signed("GET", "/api/v3/account")
    assert status == 200
    assert {b["asset"]: b["free"] for b in acct["balances"]} == {"USDT": "10000", "BTC": "1"}
    html = await (await client.get(resp.headers["Location"])).text()
    assert "was reset to its starting balances" in html


async def test_switch_to_live_is_refused_when_not_armed(client: TestClient) -> None:
    token = await csrf_token(client)
    html = await (await client.get("/dashboard/settings")).text()
    assert re.search(r'id="switch-live" disabled', html)
    resp = await client.post("/dashboard/settings/mode",
                             data={"csrf_token": token, "mode": "live", "confirm": "yes"})
    assert resp.status == 403
    assert "not armed" in await resp.text()
    assert client.app[keys.MODE].current == "paper"
    assert await client.app[keys.STORE].events(kind="mode.switch") == []


async def test_mode_switches_ask_when_going_live_and_are_audited(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock
) -> None:
    settings = make_settings(tmp_path, url_of(fake_server), live=LiveSettings(enabled=True), mode="live")
    client = await aiohttp_client(create_app(settings, clock=clock))
    mode = client.app[keys.MODE]
    token = await csrf_token(client)

    resp = await client.post("/dashboard/settings/mode", data={"csrf_token": token, "mode": "paper"},
                             allow_redirects=False)
    assert (resp.status, resp.headers["Location"]) == (303, "/dashboard/settings?done=mode-paper")
    assert mode.current == "paper"

    resp = await client.post("/dashboard/settings/mode", data={"csrf_token": token, "mode": "live"})
    assert resp.status == 200
    assert "Switch to LIVE trading?" in await resp.text()
    assert mode.current == "paper"  # not without confirmation

    resp = await client.post("/dashboard/settings/mode",
                             data={"csrf_token": token, "mode": "live", "confirm": "yes"},
                             allow_redirects=False)
    assert resp.status == 303
    assert mode.current == "live"

    resp = await client.post("/admin/api/mode", json={"mode": "paper"})
    assert resp.status == 200
    assert mode.current == "paper"

    events = await client.app[keys.STORE].events(kind="mode.switch")
    got = [(e["data"]["from"], e["data"]["to"], e["data"]["source"], e["mode"], e["account_id"])
           for e in reversed(events)]
    assert got == [
        ("live", "paper", "dashboard", "paper", None),
        ("paper", "live", "dashboard", "live", None),
        ("live", "paper", "admin", "paper", None),
    ]


async def test_non_loopback_host_needs_the_admin_token(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock, remote_connection: Any
) -> None:
    settings = make_settings(tmp_path, url_of(fake_server),
                             server=ServerSettings(host="0.0.0.0", admin_token=TOKEN))
    client = await aiohttp_client(create_app(settings, clock=clock))
    signed = signer(client, clock)
    order = await place(signed, side="BUY", type="LIMIT", quantity="0.001", price="80000")
    html = await (await client.get("/dashboard/settings")).text()
    assert 'name="admin_token"' in html
    token = await csrf_token(client)
    reset = "/dashboard/accounts/1/reset"

    for form in ({}, {"admin_token": "wrong"}, {"admin_token": ""}):
        resp = await client.post(reset, data={"csrf_token": token, "confirm": "yes", **form},
                                 allow_redirects=False)
        assert resp.status == 401
        assert "admin token required" in await resp.text()
    # the admin token does not replace the CSRF token
    resp = await client.post(reset, data={"confirm": "yes", "admin_token": TOKEN},
                             headers={"X-Admin-Token": TOKEN}, allow_redirects=False)
    assert resp.status == 403
    assert await open_order_ids(signed) == [order["orderId"]]

    resp = await client.post(reset, data={"csrf_token": token, "confirm": "yes", "admin_token": TOKEN},
                             allow_redirects=False)
    assert resp.status == 303
    assert await open_order_ids(signed) == []
    # or in a header, as for the admin API
    resp = await client.post("/dashboard/settings/mode", data={"csrf_token": token, "mode": "paper"},
                             headers={"X-Admin-Token": TOKEN}, allow_redirects=False)
    assert (resp.status, resp.headers["Location"]) == (303, "/dashboard/settings?done=mode-same")


async def test_non_loopback_host_without_a_token_accepts_no_changes(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock, remote_connection: Any
) -> None:
    settings = make_settings(tmp_path, url_of(fake_server), server=ServerSettings(host="0.0.0.0"))
    client = await aiohttp_client(create_app(settings, clock=clock))
    html = await (await client.get("/dashboard/settings")).text()
    assert "accepts no changes" in html
    assert "http://192.0.2.10:8080, not a loopback address" in html
    assert re.search(r'data-reset-account="1" disabled', html)
    token = await csrf_token(client)
    resp = await client.post("/dashboard/accounts/1/reset", data={"csrf_token": token, "confirm": "yes",
                                                                  "admin_token": "anything"})
    assert resp.status == 401
    assert "no server.admin_token configured" in await resp.text()


# ---------------------------------------------------------------------------- performance


async def test_an_equity_point_is_recorded_right_after_start(client: TestClient) -> None:
    store = client.app[keys.STORE]
    await store.flush()
    now = client.app[keys.CLOCK].now_ms()
    assert await store.equity(1) == [(now, Decimal("97900"))]  # 10000 USDT + 1 BTC at 87900
    assert await store.equity(2) == [(now, Decimal("500"))]


async def test_the_recorder_values_accounts_at_current_prices(
    client: TestClient, fake: FakeMexc, signed: Any
) -> None:
    app = client.app
    await place(signed, side="BUY", type="MARKET", quantity="0.01")
    fake.set_price("BTCUSDT", "90000")
    app[keys.CLOCK].advance(60_000)  # type: ignore[attr-defined]
    app[keys.UPSTREAM]._cache.clear()  # the all-prices answer is cached for 5 s of wall time
    recorded = await app[keys.EQUITY].record_once()
    await app[keys.STORE].flush()
    status, acct = await signed("GET", "/api/v3/account")
    assert status == 200
    usdt = next(Decimal(b["free"]) for b in acct["balances"] if b["asset"] == "USDT")
    assert recorded[1] == usdt + Decimal("1.01") * 90000
    points = await app[keys.STORE].equity(1)
    assert [v for _, v in points] == [Decimal("97900"), recorded[1]]


async def test_without_prices_only_cash_only_accounts_get_a_point(
    aiohttp_client: Any, tmp_path: Path, clock: FixedClock
) -> None:
    app = create_app(make_settings(tmp_path, "http://127.0.0.1:9"), clock=clock)  # nothing listens
    await aiohttp_client(app)
    await app[keys.STORE].flush()
    assert await app[keys.STORE].equity(1) == []  # holds BTC: no price, no point
    assert await app[keys.STORE].equity(2) == [(clock.now_ms(), Decimal("500"))]


async def test_the_recorder_keeps_recording_every_interval(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, url_of(fake_server),
                             dashboard=DashboardSettings(equity_interval_s=0.02))
    app = create_app(settings)  # the real clock: one point per round
    await aiohttp_client(app)
    await app[keys.EQUITY].wait_rounds(4)
    await app[keys.STORE].flush()
    points = await app[keys.STORE].equity(2)
    assert len(points) >= 4
    assert [t for t, _ in points] == sorted({t for t, _ in points})
    assert {v for _, v in points} == {Decimal("500")}


async def _quiet_recorder_app(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock, gap_s: float
) -> tuple[Any, TestClient, Any]:
    """An app whose recorder never records on its timer during a test (an hour apart)."""
    settings = make_settings(tmp_path, url_of(fake_server), dashboard=DashboardSettings(
        equity_interval_s=3600, equity_change_gap_s=gap_s))
    app = create_app(settings, clock=clock)
    client = await aiohttp_client(app)
    return app, client, signer(client, clock)


async def _account_value(signed: Any, btc_price: str = "87900") -> Decimal:
    status, acct = await signed("GET", "/api/v3/account", {})
    assert status == 200
    bal = {b["asset"]: Decimal(b["free"]) + Decimal(b["locked"]) for b in acct["balances"]}
    return bal["USDT"] + bal["BTC"] * Decimal(btc_price)


async def test_a_fill_records_a_point_within_the_change_gap(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock
) -> None:
    app, _client, signed = await _quiet_recorder_app(aiohttp_client, fake_server, tmp_path, clock, 0.05)
    recorder, store = app[keys.EQUITY], app[keys.STORE]
    assert recorder.rounds == 1  # the point right after start
    start = clock.now_ms()
    clock.advance(1000)
    await place(signed, side="BUY", type="MARKET", quantity="0.01")
    async with asyncio.timeout(5):
        await recorder.wait_rounds(2)  # long before the hour-long interval
    await store.flush()
    after = await _account_value(signed)
    assert after == Decimal("97900") - Decimal("0.0398") - Decimal("0.4395199")  # spread and fee
    assert await store.equity(1) == [(start, Decimal("97900")), (start + 1000, after)]
    assert await store.equity(2) == [(start, Decimal("500"))]  # idle: no new point for it


async def test_changes_within_the_gap_do_not_record_but_a_reset_does_at_once(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, client, signed = await _quiet_recorder_app(aiohttp_client, fake_server, tmp_path, clock, 3600)
    recorder, store, service = app[keys.EQUITY], app[keys.STORE], app[keys.SERVICE]
    await place(signed, side="BUY", type="MARKET", quantity="0.01")
    await place(signed, side="BUY", type="LIMIT", quantity="0.001", price="80000")
    async with asyncio.timeout(5):
        await recorder.wait_wakeups(1)
    assert recorder.rounds == 1  # throttled: no valuation per order
    traded = await _account_value(signed)
    assert traded != Decimal("97900")

    # a round racing the reset: the reset is in memory the moment it is queued for the
    # disk (one commit path), so the round reads the restored balances, never a mix
    enqueue = store.enqueue
    racing: list[asyncio.Future[dict[int, Decimal]]] = []

    def enqueue_with_a_racing_round(changes: Any) -> Any:
        racing.append(asyncio.ensure_future(recorder.record_once()))
        return enqueue(changes)

    monkeypatch.setattr(store, "enqueue", enqueue_with_a_racing_round)
    await service.reset_account(1)
    monkeypatch.setattr(store, "enqueue", enqueue)
    assert (await racing[0])[1] == Decimal("97900")
    await store.flush()
    assert [v for _, v in await store.equity(1)] == [Decimal("97900")]

    # without a racing round, the recorder itself records right after a reset
    clock.advance(1000)
    await service.reset_account(1)

    async with asyncio.timeout(5):
        await recorder.wait_rounds(2)  # right after the reset, though the gap is an hour
    await store.flush()
    now = clock.now_ms()
    assert await store.equity(1) == [(now, Decimal("97900"))]  # a fresh start, nothing stale
    # the page measures the value change from the fresh start, not from before the reset
    state = await (await client.get("/dashboard/api/state?account=1")).json()
    perf = state["html"]["performance"]
    assert f"Value change since {present.when(now)}" in perf
    assert re.search(r'<span class="big flat">0\.00 USDT</span>', perf)


async def test_pnl_ledgers_read_only_new_fills_and_start_over_after_a_reset(
    client: TestClient, signed: Any
) -> None:
    pnl = client.app[keys.PNL]
    service = client.app[keys.SERVICE]
    await place(signed, side="BUY", type="MARKET", quantity="0.01")
    ledger = await pnl.ledger(1)
    assert ledger.count == 1
    await place(signed, side="SELL", type="MARKET", quantity="0.004")
    assert (await pnl.ledger(1)) is ledger
    assert ledger.count == 2
    assert (await pnl.ledger(1)).count == 2  # nothing new, nothing read twice
    # the ledgers follow the change feed: no fill committed since, no store read at all
    reads = pnl.reads
    await place(signed, side="BUY", type="LIMIT", quantity="0.001", price="80000")  # rests
    assert (await pnl.ledger(1)) is ledger and pnl.reads == reads
    pos = ledger.positions["BTCUSDT"]
    assert (pos.base, pos.quote, pos.qty) == ("BTC", "USDT", Decimal("0.006"))
    await service.reset_account(1)
    fresh = await pnl.ledger(1)
    assert fresh is not ledger and fresh.count == 0
    await place(signed, side="BUY", type="MARKET", quantity="0.002")
    assert (await pnl.ledger(1)).count == 1


async def test_performance_section_shows_pnl_and_the_equity_chart(client: TestClient, signed: Any) -> None:
    await place(signed, side="BUY", type="MARKET", quantity="0.01")
    state = await (await client.get("/dashboard/api/state?account=1")).json()
    perf = state["html"]["performance"]
    assert '<svg class="chart equity"' in perf and "<polyline" in perf
    assert '<svg class="chart pnl"' in perf
    [row] = state["data"]["pnl_rows"]
    # bought 0.01 at 87903.98, valued at 87900: -0.0398 unrealised; the fee is realised
    assert (row["symbol"], row["position"], row["avg_cost"]) == ("BTCUSDT", "0.01", "87903.98")
    assert row["unrealised"] == "-0.04"
    assert row["realised"] == "-0.44"
    assert state["data"]["fees_paid"] == [{"asset": "USDT", "amount": "0.4395199"}]


async def test_a_switch_to_live_that_cannot_be_audited_is_undone(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = make_settings(tmp_path, url_of(fake_server), live=LiveSettings(enabled=True), mode="live")
    app = create_app(settings, clock=clock)
    await aiohttp_client(app)
    service, mode = app[keys.SERVICE], app[keys.MODE]
    assert await service.switch_mode("paper", source="test") is True
    assert await service.switch_mode("paper", source="test") is False  # no change, no entry

    def broken(changes: Any) -> asyncio.Future[None]:
        fut = asyncio.get_running_loop().create_future()
        fut.set_exception(StoreError("disk full"))
        return fut

    monkeypatch.setattr(app[keys.STORE], "enqueue", broken)
    with pytest.raises(StoreError):
        await service.switch_mode("live", source="test")
    assert mode.current == "paper"  # paper is the safe side


async def test_without_accounts_the_pages_still_render(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock
) -> None:
    client = await aiohttp_client(create_app(make_settings(tmp_path, url_of(fake_server), accounts=()),
                                             clock=clock))
    for path in ("/dashboard/", "/dashboard/events", "/dashboard/settings", "/dashboard/api/state"):
        resp = await client.get(path)
        assert resp.status == 200, path
    assert "No accounts" in await (await client.get("/dashboard/")).text()


async def test_assets_are_valued_with_the_best_price_the_sidecar_has(
    aiohttp_client: Any, aiohttp_server: Any, tmp_path: Path, clock: FixedClock
) -> None:
    """Issue 16: on the replay demo the all-symbols ticker holds five other symbols, so BTC
    was valued n/a and left out: the page reported 9,712 USDT for an account holding
    1.003 BTC, and the equity curve fell. BTC is now valued at its own ticker (else the
    engine's book), the same way on the page and the curve; an asset nobody can price
    makes the total n/a, and no point is drawn or recorded from a partial total."""
    fake = FakeMexc(clock.now_ms)  # the recorded all-symbols ticker: no BTCUSDT in it
    fake.recorded["/api/v3/ticker/price"] = [("", [{"symbol": "ETHUSDT", "price": "3000"}])]
    server = await aiohttp_server(fake.app())
    app, client, signed = await _quiet_recorder_app(aiohttp_client, server, tmp_path, clock, 3600)
    recorder, store = app[keys.EQUITY], app[keys.STORE]
    await place(signed, side="BUY", type="MARKET", quoteOrderQty="200")
    expected = await _account_value(signed, "87900")  # BTCUSDT's own ticker
    clock.advance(1000)
    assert (await recorder.record_once())[1] == expected
    state = await (await client.get("/dashboard/api/state?account=1")).json()
    assert re.search(
        rf'id="total-value">{re.escape(present.money(expected))} USDT<', state["html"]["balances"]
    )
    await store.flush()
    assert [v for _, v in await store.equity(1)] == [Decimal("97900"), expected]  # no fall
    assert fake.signed_requests() == []

    await app[keys.SERVICE].fund(1, "ZZZ", Decimal("5"))  # no ticker, no book: no price at all
    clock.advance(1000)
    assert 1 not in await recorder.record_once()  # a partial total is no point
    state = await (await client.get("/dashboard/api/state?account=1")).json()
    balances_html = state["html"]["balances"]
    assert 'id="total-value">n/a USDT<' in balances_html
    assert "No USDT price for ZZZ" in balances_html
    await store.flush()
    assert [v for _, v in await store.equity(1)] == [Decimal("97900"), expected]
