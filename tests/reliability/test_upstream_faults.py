"""Upstream faults, injected by a local fake MEXC: the sidecar stays up, answers with
MEXC-shaped errors within its timeout, rejects orders it cannot price (30010 "no valid
trade price", or -1121 for a symbol exchangeInfo does not list) without reserving
anything, leaves paper state untouched, and recovers by itself when the upstream does.

Every fault is checked on three kinds of traffic: a public passthrough (depth), a new
order (needs book and last price), and the market watcher's polling.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from fake_upstream import FakeMexc, Fault, Seen
from relsupport import KEY, NOW, SECRET, Caller, assert_mexc_error, make_settings, record_figures

from proxy import keys
from proxy.app import WATCHER, create_app
from proxy.clock import FixedClock
from proxy.config import PaperSettings, UpstreamSettings
from proxy.engine.state import check_invariants

TIMEOUT_S = 0.4
MARGIN_S = 0.35  # scheduling slack on a loaded CI machine
HTML = "<html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>"
SYMBOL = "BTCUSDT"
REST_BUY = {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "87000"}
NEW_BUY = {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "quantity": "0.002", "price": "86000"}
MARKET_BUY = {"symbol": SYMBOL, "side": "BUY", "type": "MARKET", "quantity": "0.001"}


class FaultyMexc(FakeMexc):
    """FakeMexc plus a transport-level truncation: the headers promise more bytes than
    are sent before the connection closes."""

    def __init__(self) -> None:
        super().__init__()
        self.truncate = False

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if not self.truncate:
            return await super().handle(request)
        self.seen.append(Seen(request.method, request.path, request.rel_url.raw_query_string,
                              dict(request.headers), b""))
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        resp.content_length = 5000
        await resp.prepare(request)
        await resp.write(b'{"lastUpdateId": 1, "bids": [["879')
        assert request.transport is not None
        request.transport.close()
        return resp


@dataclass
class Case:
    fault: Fault | None  # None: transport truncation
    public_status: int
    public_code: int


CASES = {
    "slow beyond the timeout": Case(Fault(status=0, delay_s=1.2), 504, 504),
    "5xx HTML page": Case(Fault(status=502, body=HTML, content_type="text/html"), 502, 502),
    "503 HTML page": Case(Fault(status=503, body="<html>busy</html>", content_type="text/html"), 503, 503),
    "500 MEXC JSON": Case(Fault(status=500, body='{"code":500,"msg":"Internal error"}'), 500, 500),
    "429 with Retry-After": Case(
        Fault(status=429, body='{"code":429,"msg":"Too Many Requests"}', headers={"Retry-After": "1"}),
        429, 429),
    "truncated JSON body": Case(Fault(status=200, body='{"lastUpdateId":1,"bids":[["87900.0'), 503, 503),
    "non-JSON 200 body": Case(Fault(status=200, body="<html>maintenance</html>", content_type="text/html"),
                              503, 503),
    "empty 200 body": Case(Fault(status=200, body=""), 503, 503),
    "connection dropped": Case(Fault(drop=True), 503, 503),
    "truncated in transport": Case(None, 503, 503),
}


async def start(aiohttp_client: Any, base_url: str, tmp_path: Path, poll_s: float = 3600) -> Any:
    settings = make_settings(
        tmp_path,
        upstream=UpstreamSettings(base_url=base_url, timeout_s=TIMEOUT_S, connect_timeout_s=TIMEOUT_S,
                                  market_cache_ms=0),
        paper=PaperSettings(poll_interval_s=poll_s),
    )
    clock = FixedClock(NOW)
    app = create_app(settings, clock=clock)
    client = await aiohttp_client(app)
    return app, client, Caller(client, KEY, SECRET, clock)


async def snapshot(app: Any, caller: Caller) -> Any:
    service = app[keys.SERVICE]
    check_invariants(service.state)
    await app[keys.STORE].flush()
    _, open_orders = await caller.call("GET", "/api/v3/openOrders", {"symbol": SYMBOL})
    return (await caller.balances(), open_orders, await app[keys.STORE].count("orders"),
            await app[keys.STORE].count("fills"))


async def timed(coro: Any) -> tuple[float, Any]:
    t0 = time.monotonic()
    out = await coro
    return time.monotonic() - t0, out


@pytest.mark.parametrize("name", list(CASES))
async def test_fault_gives_mexc_errors_in_time_touches_nothing_and_recovers(
    name: str, aiohttp_client: Any, aiohttp_server: Any, tmp_path: Path
) -> None:
    case = CASES[name]
    fake = FaultyMexc()
    server = await aiohttp_server(fake.app())
    app, client, caller = await start(aiohttp_client, str(server.make_url("")).rstrip("/"), tmp_path)
    status, resting = await caller.call("POST", "/api/v3/order", REST_BUY)
    assert status == 200, resting
    before = await snapshot(app, caller)

    if case.fault is None:
        fake.truncate = True
    else:
        fake.faults["*"] = case.fault
    timings: dict[str, float] = {}

    # public passthrough: the upstream's own MEXC error, or a MEXC-shaped one of ours
    elapsed, (status, ctype, body) = await timed(_get(client, f"/api/v3/depth?symbol={SYMBOL}&limit=5"))
    timings["public"] = elapsed
    err = assert_mexc_error(status, ctype, body)
    assert (status, err["code"]) == (case.public_status, case.public_code), (status, err)

    # orders it cannot price are rejected, clearly, with nothing reserved
    for params in (NEW_BUY, MARKET_BUY):
        elapsed, (status, ctype, body) = await timed(caller.raw("POST", "/api/v3/order", params))
        timings[params["type"].lower()] = elapsed
        err = assert_mexc_error(status, ctype, body)
        assert status == 400 and err["code"] == 30010, err
        assert err["msg"].startswith("no valid trade price: market data unavailable ("), err

    # the watcher's poll fails and backs off; the loop survives
    await app[WATCHER].wait_cycles(1)
    watch = app[WATCHER].watches[SYMBOL]
    assert watch.failures >= 1 and watch.last_error is not None

    # the sidecar is up (HTTP 200: Docker must not restart it), says the upstream is down
    # (a 429 is an answer: MEXC is up), and what does not need the upstream still works
    health = await client.get("/healthz")
    body = await health.json()
    assert health.status == 200
    assert body["status"] == ("ok" if case.public_status == 429 else "degraded"), body
    for t in timings.values():
        assert t < TIMEOUT_S + MARGIN_S, timings
    assert await snapshot(app, caller) == before  # paper state untouched

    # the upstream recovers: so does the sidecar, by itself
    fake.faults.clear()
    fake.truncate = False
    status, ctype, body = await _get(client, f"/api/v3/depth?symbol={SYMBOL}&limit=5")
    assert status == 200 and json.loads(body)["bids"]
    status, ack = await caller.call("POST", "/api/v3/order", NEW_BUY)
    assert status == 200, ack
    status, ack = await caller.call("POST", "/api/v3/order", MARKET_BUY)
    assert status == 200, ack
    assert (await (await client.get("/healthz")).json())["status"] == "ok"
    check_invariants(app[keys.SERVICE].state)
    assert fake.signed_requests() == []
    record_figures(f"fault: {name}", seconds={k: round(v, 3) for k, v in timings.items()},
                   timeout_s=TIMEOUT_S, public_status=case.public_status)


async def _get(client: Any, path: str) -> tuple[int, str, bytes]:
    resp = await client.get(path)
    return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


async def test_connection_refused_then_upstream_comes_up(
    aiohttp_client: Any, aiohttp_server: Any, tmp_path: Path, unused_tcp_port: int
) -> None:
    port = unused_tcp_port  # nothing listens here yet: connection refused
    app, client, caller = await start(aiohttp_client, f"http://127.0.0.1:{port}", tmp_path)
    before = await snapshot(app, caller)
    elapsed, (status, ctype, body) = await timed(_get(client, f"/api/v3/depth?symbol={SYMBOL}"))
    assert (status, assert_mexc_error(status, ctype, body)["code"]) == (503, 503)
    assert elapsed < TIMEOUT_S + MARGIN_S
    for params in (REST_BUY, MARKET_BUY):
        elapsed, (status, ctype, body) = await timed(caller.raw("POST", "/api/v3/order", params))
        err = assert_mexc_error(status, ctype, body)
        assert (status, err["code"]) == (400, 30010), err
        assert "market data unavailable (connect)" in err["msg"]
        assert elapsed < TIMEOUT_S + MARGIN_S
    assert await snapshot(app, caller) == before

    await aiohttp_server(FakeMexc().app(), port=port)  # the upstream comes up
    status, ack = await caller.call("POST", "/api/v3/order", REST_BUY)
    assert status == 200, ack
    status, ctype, body = await _get(client, f"/api/v3/depth?symbol={SYMBOL}")
    assert status == 200
    record_figures("fault: connection refused", seconds=round(elapsed, 3), timeout_s=TIMEOUT_S)


@pytest.mark.parametrize("variant", ["unknown to the upstream (-1121)", "missing from a 200 answer"])
async def test_exchange_info_without_the_symbol_is_invalid_symbol_and_reserves_nothing(
    variant: str, aiohttp_client: Any, aiohttp_server: Any, tmp_path: Path
) -> None:
    fake = FakeMexc()
    server = await aiohttp_server(fake.app())
    app, _client, caller = await start(aiohttp_client, str(server.make_url("")).rstrip("/"), tmp_path)
    before = await snapshot(app, caller)
    symbol = "PYTHUSDT"
    if variant.startswith("unknown"):
        fake.exchange_info["symbols"] = [s for s in fake.exchange_info["symbols"] if s["symbol"] != symbol]
    else:
        other = dict(fake.exchange_info, symbols=[fake.symbol("METALUSDT")])
        fake.faults["/api/v3/exchangeInfo"] = Fault(status=200, body=json.dumps(other))
    for side in ("BUY", "SELL"):
        status, ctype, body = await caller.raw("POST", "/api/v3/order", {
            "symbol": symbol, "side": side, "type": "LIMIT", "quantity": "1", "price": "0.5"})
        assert (status, assert_mexc_error(status, ctype, body)) == (
            400, {"code": -1121, "msg": "Invalid symbol."})
    assert await snapshot(app, caller) == before


async def until_failed(watcher: Any, watch: Any) -> None:
    """Cycles until the watcher's poll met the fault (its last good page is cached for
    half a poll interval, so the first cycles may not ask the upstream at all)."""
    t0 = time.monotonic()
    while not watch.failures and time.monotonic() - t0 < 2:
        await watcher.wait_cycles(1)


async def test_watcher_recovers_after_429_and_fills_the_resting_order(
    aiohttp_client: Any, aiohttp_server: Any, tmp_path: Path
) -> None:
    """A 429 with Retry-After: 1 on the watcher's polls: it backs off at least that long,
    then resumes by itself, and the resting order fills from the trades it missed none of."""
    fake = FakeMexc()
    server = await aiohttp_server(fake.app())
    app, _client, caller = await start(aiohttp_client, str(server.make_url("")).rstrip("/"), tmp_path,
                                       poll_s=0.02)
    status, ack = await caller.call("POST", "/api/v3/order", REST_BUY)
    assert status == 200, ack
    watcher = app[WATCHER]
    await watcher.wait_cycles(2)  # baseline tape page seen
    fake.faults["/api/v3/trades"] = Fault(status=429, body='{"code":429,"msg":"Too Many Requests"}',
                                          headers={"Retry-After": "1"})
    watch = watcher.watches[SYMBOL]
    await until_failed(watcher, watch)
    assert watch.failures == 1 and watch.errors == {"http": 1}
    assert watch.next_at - time.monotonic() > 0.8  # Retry-After honoured
    fake.faults.clear()
    fake.print_trade(SYMBOL, "86990", "0.5", True, NOW)  # a sell prints through our bid
    t0 = time.monotonic()
    while time.monotonic() - t0 < 5:
        await watcher.wait_cycles(1)
        if not app[keys.SERVICE].open_orders(1):
            break
        await asyncio.sleep(0.05)  # the backoff is a timer inside the watcher; nothing to await
    recovered_after = time.monotonic() - t0
    status, order = await caller.call("GET", "/api/v3/order", {"symbol": SYMBOL, "orderId": ack["orderId"]})
    assert order["status"] == "FILLED", order
    assert watcher.watches.get(SYMBOL) is None or watcher.watches[SYMBOL].failures == 0
    assert recovered_after < 2.5
    record_figures("fault: watcher 429 recovery", recovered_after_s=round(recovered_after, 3))


@pytest.mark.parametrize(
    "retry_after", ["inf", "86400", "1e308", "nan", "-5", "Wed, 21 Oct 2015 07:28:00 GMT"]
)
async def test_watcher_backoff_is_bounded_whatever_retry_after_says(
    retry_after: str, aiohttp_client: Any, aiohttp_server: Any, tmp_path: Path
) -> None:
    """The watcher must come back by itself: an absurd Retry-After may not park it forever."""
    fake = FakeMexc()
    server = await aiohttp_server(fake.app())
    app, _client, caller = await start(aiohttp_client, str(server.make_url("")).rstrip("/"), tmp_path,
                                       poll_s=0.02)
    status, ack = await caller.call("POST", "/api/v3/order", REST_BUY)
    assert status == 200, ack
    fake.faults["/api/v3/trades"] = Fault(status=429, body='{"code":429,"msg":"Too Many Requests"}',
                                          headers={"Retry-After": retry_after})
    await app[WATCHER].wait_cycles(1)
    watch = app[WATCHER].watches[SYMBOL]
    await until_failed(app[WATCHER], watch)
    assert watch.failures == 1
    assert 0 < watch.next_at - time.monotonic() <= 60.0


async def test_slow_upstream_does_not_block_orders_that_need_no_market_data(
    aiohttp_client: Any, aiohttp_server: Any, tmp_path: Path
) -> None:
    """Cancels, queries and the account never wait on the upstream."""
    fake = FakeMexc()
    server = await aiohttp_server(fake.app())
    _app, _client, caller = await start(aiohttp_client, str(server.make_url("")).rstrip("/"), tmp_path)
    status, ack = await caller.call("POST", "/api/v3/order", REST_BUY)
    assert status == 200
    fake.faults["*"] = Fault(status=0, delay_s=1.2)
    slow = asyncio.ensure_future(caller.raw("POST", "/api/v3/order", NEW_BUY))
    t0 = time.monotonic()
    assert (await caller.call("GET", "/api/v3/account"))[0] == 200
    ref = {"symbol": SYMBOL, "orderId": ack["orderId"]}
    assert (await caller.call("GET", "/api/v3/order", ref))[0] == 200
    status, canceled = await caller.call("DELETE", "/api/v3/order", ref)
    assert status == 200 and canceled["status"] == "CANCELED"
    assert time.monotonic() - t0 < 0.2
    status, _ctype, _body = await slow
    assert status == 400
    balances = await caller.balances()
    assert balances == {"BTC": (Decimal(1), Decimal(0)), "USDT": (Decimal(10000), Decimal(0))}
