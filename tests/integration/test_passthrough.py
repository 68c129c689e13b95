"""Market-data passthrough, the upstream client, paper/live separation, record and replay.

The vcrpy tests replay cassettes/ (built from the real recordings) for upstream
https://api.mexc.com; the fake-upstream tests script delays, faults and counts calls.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient
from conftest import KEY, NOW, SECRET, make_settings
from fake_upstream import FakeMexc, Fault
from mexc_client import ccxt_query
from yarl import URL

from proxy import api, keys, parsers
from proxy.app import create_app
from proxy.clock import FixedClock
from proxy.config import LiveSettings, UpstreamSettings
from proxy.routes import MEXC_ROUTES
from proxy.tape.tape import load_tape
from proxy.upstream import (
    _KNOWN_PATHS,
    HttpTransport,
    RecordingTransport,
    interaction_parts,
    load_cassette,
)

ROOT = Path(__file__).resolve().parents[2]
MEXC = "https://api.mexc.com"
# every public path the route table serves: forwarded, or answered locally (time, and
# contract/detail when the upstream is down)
ROUTED_PUBLIC = frozenset(
    r.path for r in MEXC_ROUTES
    if r.method == "GET" and r.handler in (api.passthrough, api.contract_detail, api.server_time)
)


def mexc_settings(tmp_path: Path, **kw: Any) -> Any:
    return make_settings(
        tmp_path,
        upstream=UpstreamSettings(base_url=MEXC, timeout_s=2, connect_timeout_s=1, market_cache_ms=0),
        **kw,
    )


def recorded_public() -> list[tuple[str, str, Any]]:
    out = []
    for it in load_cassette(ROOT / "cassettes" / "mexc_public.yaml"):
        _method, path, query, resp = interaction_parts(it)
        out.append((path, query, resp))
    return out


# ------------------------------------------------------------------ vcrpy cassettes


@pytest.mark.vcr
@pytest.mark.default_cassette("mexc_public.yaml")
async def test_every_recorded_public_path_passes_through_unchanged(
    aiohttp_client: Any, tmp_path: Path, vcr: Any
) -> None:
    app = create_app(mexc_settings(tmp_path), clock=FixedClock(NOW))
    client = await aiohttp_client(app)
    cases = recorded_public()
    assert {path for path, _q, _r in cases} == ROUTED_PUBLIC
    for path, query, want in cases:
        url = f"{path}?{query}" if query else path
        if path == "/api/v3/time":
            # answered from the sidecar's clock and never forwarded; the recording still
            # goes through the upstream client unchanged
            plays = vcr.play_count
            resp = await client.get(url)
            assert (resp.status, await resp.json()) == (200, {"serverTime": NOW})
            assert vcr.play_count == plays
            got = await app[keys.UPSTREAM].get(path, query)
            assert (got.status, got.body) == (want.status, want.body)
            continue
        resp = await client.get(url)
        body = await resp.read()
        assert resp.status == want.status, url
        assert body == want.body, url
        assert resp.headers["Content-Type"].startswith("application/json")
    assert vcr.all_played  # every recorded interaction was asked for, none is stale


@pytest.mark.vcr
@pytest.mark.default_cassette("mexc_public.yaml")
async def test_exchange_info_is_cached_for_its_ttl(aiohttp_client: Any, tmp_path: Path, vcr: Any) -> None:
    client = await aiohttp_client(create_app(mexc_settings(tmp_path)))
    first = await (await client.get("/api/v3/exchangeInfo")).read()
    plays = vcr.play_count
    for _ in range(5):
        assert await (await client.get("/api/v3/exchangeInfo")).read() == first
    assert vcr.play_count == plays


@pytest.mark.vcr
@pytest.mark.default_cassette("mexc_errors.yaml")
async def test_upstream_429_passes_through_with_retry_after(aiohttp_client: Any, tmp_path: Path) -> None:
    client = await aiohttp_client(create_app(mexc_settings(tmp_path)))
    resp = await client.get("/api/v3/ticker/price?symbol=BTCUSDT")
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "7"
    assert await resp.json() == {"code": 429, "msg": "Too Many Requests"}


@pytest.mark.vcr
@pytest.mark.default_cassette("mexc_errors.yaml")
async def test_upstream_5xx_html_becomes_mexc_json_with_same_status(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(mexc_settings(tmp_path)))
    resp = await client.get("/api/v3/depth?symbol=BTCUSDT&limit=100")
    assert resp.status == 502
    assert resp.headers["Content-Type"].startswith("application/json")
    assert await resp.json() == {"code": 502, "msg": "Bad Gateway"}


@pytest.mark.vcr
@pytest.mark.default_cassette("mexc_errors.yaml")
async def test_upstream_client_error_json_passes_through(aiohttp_client: Any, tmp_path: Path) -> None:
    client = await aiohttp_client(create_app(mexc_settings(tmp_path)))
    resp = await client.get("/api/v3/exchangeInfo?symbol=NOSUCHUSDT")
    assert (resp.status, await resp.json()) == (400, {"code": -1121, "msg": "Invalid symbol."})


@pytest.mark.vcr
@pytest.mark.default_cassette("mexc_errors.yaml")
async def test_order_on_unknown_symbol_is_invalid_symbol(aiohttp_client: Any, tmp_path: Path) -> None:
    clock = FixedClock(1_767_205_900_000)
    client = await aiohttp_client(create_app(mexc_settings(tmp_path), clock=clock))
    q = ccxt_query({"symbol": "NOSUCHUSDT", "side": "BUY", "type": "LIMIT", "quantity": "1",
                    "price": "1"}, SECRET, ts=clock.now_ms())
    resp = await client.post(f"/api/v3/order?{q}", headers={"X-MEXC-APIKEY": KEY})
    assert (resp.status, await resp.json()) == (400, {"code": -1121, "msg": "Invalid symbol."})


def test_contract_every_recorded_response_parses() -> None:
    """A re-recording that changes a shape fails here, loudly."""
    parsers_by_path = {
        "/api/v3/exchangeInfo": parsers.parse_exchange_info,
        "/api/v3/depth": lambda d: parsers.parse_depth("BTCUSDT", d),
        "/api/v3/trades": parsers.parse_trades,
        "/api/v3/aggTrades": parsers.parse_agg_trades,
        "/api/v3/ticker/price": parsers.parse_ticker_price,
        "/api/v3/ticker/bookTicker": parsers.parse_book_ticker,
        "/api/v3/ticker/24hr": parsers.parse_ticker_24hr,
        "/api/v3/klines": parsers.parse_klines,
        "/api/v3/avgPrice": parsers.parse_avg_price,
        "/api/v3/time": parsers.parse_server_time,
        "/api/v3/defaultSymbols": parsers.parse_default_symbols,
        "/api/v1/contract/detail": parsers.parse_contract_detail,
        "/api/v3/ping": lambda d: d == {} or (_ for _ in ()).throw(parsers.ShapeError("ping")),
        "/api/v3/historicalTrades": parsers.parse_trades,
        "/api/v3/symbol/offline": parsers.parse_symbol_offline,
        "/api/v3/announcements": parsers.parse_announcements,
        "/api/v3/etf/info": parsers.parse_etf_info,
    }
    assert set(parsers_by_path) == ROUTED_PUBLIC  # a new public route needs a parser here
    for name in ("mexc_public.yaml", "demo.yaml"):
        seen: set[str] = set()
        for it in load_cassette(ROOT / "cassettes" / name):
            if "stream" in it:
                continue  # a WebSocket frame (tests/integration/test_tape_stream.py)
            _m, path, _q, resp = interaction_parts(it)
            data = json.loads(resp.body)
            parsers_by_path[path](data)
            seen.add(path)
        # and a recording in both cassettes (scripts/build_cassettes.py)
        assert seen == ROUTED_PUBLIC, (name, sorted(ROUTED_PUBLIC - seen))
    rules = parsers.parse_exchange_info(_exchange_info())
    btc = rules["BTCUSDT"]
    assert (btc.base_precision, btc.price_precision, str(btc.min_qty), str(btc.min_notional)) == (
        8, 2, "0.000001", "1")
    assert (str(btc.taker_fee), str(btc.maker_fee), str(btc.bid_multiplier_up)) == ("0.0005", "0", "0.005")


def _exchange_info() -> Any:
    for path, query, resp in recorded_public():
        if path == "/api/v3/exchangeInfo" and not query:
            return json.loads(resp.body)
    raise AssertionError("no exchangeInfo recording")


def test_contract_the_newer_public_paths_parse_to_their_recorded_values() -> None:
    by_path = {path: json.loads(resp.body) for path, _q, resp in recorded_public()}
    news = parsers.parse_announcements(by_path["/api/v3/announcements"])
    assert news[0] == ("OKX to list Virtuals Protocol (VIRTUAL) for spot trading",
                       "https://www.mexc.com/help/okx-to-list-virtuals-protocol-virtual-for-spot-trading",
                       1761620404821)
    assert parsers.parse_symbol_offline(by_path["/api/v3/symbol/offline"]) == [
        ("LVNUSDT", 3, None), ("LOKAUSDT", 3, 1724125694000)]
    assert str(parsers.parse_etf_info(by_path["/api/v3/etf/info"])["OP3SUSDT"]) == "0.332"
    with pytest.raises(parsers.ShapeError):
        parsers.parse_symbol_offline({"data": [{"symbol": "X", "state": "3"}]})
    with pytest.raises(parsers.ShapeError):
        parsers.parse_announcements({"code": 0, "data": [{"details": [{"title": "t"}]}], "msg": ""})


def test_upstream_known_paths_are_the_routed_public_paths() -> None:
    """Replay tells "not recorded" (400) from "MEXC has no such path" (404) by this set."""
    assert _KNOWN_PATHS == ROUTED_PUBLIC
    assert set(api.PUBLIC_PATHS) < ROUTED_PUBLIC


def test_contract_error_bodies_parse() -> None:
    for it in load_cassette(ROOT / "cassettes" / "mexc_errors.yaml"):
        _m, path, _q, resp = interaction_parts(it)
        if resp.is_json:
            assert parsers.parse_error(json.loads(resp.body)) is not None, path


def test_contract_ticker_with_timestamp_key_is_rejected() -> None:
    """ccxt would parse a ticker with `timestamp` as a swap ticker (clients.md 1.5)."""
    t = {"symbol": "X", "lastPrice": "1", "openPrice": "1", "highPrice": "1", "lowPrice": "1",
         "volume": "1", "timestamp": 1}
    with pytest.raises(parsers.ShapeError):
        parsers.parse_ticker_24hr(t)


# ------------------------------------------------------------------ fake upstream


async def start(aiohttp_client: Any, fake_server: Any, tmp_path: Path,
                clock: FixedClock | None = None, **kw: Any) -> TestClient:
    settings = make_settings(tmp_path, str(fake_server.make_url("")).rstrip("/"), **kw)
    return await aiohttp_client(create_app(settings, clock=clock))


async def test_concurrent_identical_gets_share_one_upstream_call(
    aiohttp_client: Any, fake_server: Any, fake: FakeMexc, tmp_path: Path
) -> None:
    client = await start(aiohttp_client, fake_server, tmp_path)
    fake.faults["/api/v3/ticker/bookTicker"] = Fault(status=0, delay_s=0.2)
    before = len(fake.seen)
    resps = await asyncio.gather(*(client.get("/api/v3/ticker/bookTicker?symbol=BTCUSDT") for _ in range(10)))
    bodies = {await r.read() for r in resps}
    assert len(bodies) == 1
    assert [s.path for s in fake.seen[before:]] == ["/api/v3/ticker/bookTicker"]


async def test_upstream_down_gives_mexc_503_quickly(aiohttp_client: Any, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "http://127.0.0.1:9")  # nothing listens on port 9
    client = await aiohttp_client(create_app(settings))
    t0 = time.monotonic()
    resp = await client.get("/api/v3/ticker/price?symbol=BTCUSDT")
    assert time.monotonic() - t0 < 2
    assert (resp.status, await resp.json()) == (
        503, {"code": 503, "msg": "service not available, please try again"})


async def test_upstream_timeout_gives_mexc_504_within_the_timeout(
    aiohttp_client: Any, fake_server: Any, fake: FakeMexc, tmp_path: Path
) -> None:
    fake.faults["/api/v3/depth"] = Fault(status=0, delay_s=5)
    settings = make_settings(
        tmp_path, upstream=UpstreamSettings(base_url=str(fake_server.make_url("")).rstrip("/"),
                                            timeout_s=0.5, connect_timeout_s=0.5))
    client = await aiohttp_client(create_app(settings))
    t0 = time.monotonic()
    resp = await client.get("/api/v3/depth?symbol=BTCUSDT")
    elapsed = time.monotonic() - t0
    assert 0.4 < elapsed < 1.5
    assert (resp.status, await resp.json()) == (504, {"code": 504, "msg": "Gateway Time-out"})


async def test_contract_detail_is_forwarded_or_empty_offline(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path
) -> None:
    client = await start(aiohttp_client, fake_server, tmp_path)
    resp = await client.get("/api/v1/contract/detail")
    data = await resp.json()
    assert data["code"] == 0 and data["data"]  # the recording, forwarded
    offline = await aiohttp_client(create_app(make_settings(tmp_path / "o", "http://127.0.0.1:9")))
    resp = await offline.get("/api/v1/contract/detail")
    assert (resp.status, await resp.json()) == (200, {"success": True, "code": 0, "data": []})


async def test_paper_mode_never_forwards_a_signature_or_api_key(
    aiohttp_client: Any, fake_server: Any, fake: FakeMexc, tmp_path: Path, clock: FixedClock
) -> None:
    client = await start(aiohttp_client, fake_server, tmp_path, clock=clock)
    # pymexc signs klines and sends its key header on every call
    q = ccxt_query({"symbol": "BTCUSDT", "interval": "5m"}, SECRET, ts=clock.now_ms())
    resp = await client.get(f"/api/v3/klines?{q}", headers={"X-MEXC-APIKEY": KEY})
    assert resp.status == 200
    forwarded = fake.seen[-1]
    assert forwarded.path == "/api/v3/klines"
    assert "signature" not in forwarded.query
    assert forwarded.query.startswith("symbol=BTCUSDT&interval=5m&timestamp=")
    # signed paths the engine does not serve are refused, not forwarded
    seen = len(fake.seen)
    for method, path in [("POST", "/api/v3/capital/withdraw"), ("GET", "/api/v3/capital/deposit/address"),
                         ("POST", "/api/v3/capital/transfer"), ("GET", "/api/v3/sub-account/list")]:
        q = ccxt_query({"coin": "USDT"}, SECRET, ts=clock.now_ms())
        resp = await client.request(method, f"{path}?{q}", headers={"X-MEXC-APIKEY": KEY})
        assert resp.status == 400
        assert await resp.json() == {
            "code": 730003, "msg": f"Unsupported operation: {path} is not available in paper mode"}
    # and every order/account call stays local: a real, accepted order included
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "80000"}
    local = [("GET", "/api/v3/account", {}), ("POST", "/api/v3/order", order),
             ("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"})]
    answers = []
    for method, path, params in local:
        q = ccxt_query(params, SECRET, ts=clock.now_ms())
        resp = await client.request(method, f"{path}?{q}", headers={"X-MEXC-APIKEY": KEY})
        answers.append((resp.status, await resp.json()))
    assert [status for status, _ in answers] == [200, 200, 200], answers
    account, ack, open_orders = (data for _, data in answers)
    assert {b["asset"] for b in account["balances"]} >= {"USDT", "BTC"}
    assert ack["orderId"] and ack["symbol"] == "BTCUSDT"
    assert [o["orderId"] for o in open_orders] == [ack["orderId"]]
    assert fake.signed_requests() == []
    assert all(s.path not in ("/api/v3/account", "/api/v3/order", "/api/v3/openOrders",
                              "/api/v3/capital/withdraw") for s in fake.seen[seen:])


async def test_capital_config_getall_is_synthetic_and_read_only(signed: Any) -> None:
    status, data = await signed("GET", "/api/v3/capital/config/getall")
    assert status == 200
    coins = {c["coin"]: c for c in data}
    assert {"BTC", "USDT", "METAL", "RARI", "PYTH", "AO", "AMPED"} <= set(coins)
    net = coins["BTC"]["networkList"][0]
    assert net["depositEnable"] is False and net["withdrawEnable"] is False


@pytest.mark.live_upstream
async def test_live_mode_forwards_signed_requests_unchanged(
    aiohttp_client: Any, fake_server: Any, fake: FakeMexc, tmp_path: Path, clock: FixedClock
) -> None:
    settings = make_settings(tmp_path, str(fake_server.make_url("")).rstrip("/"),
                             live=LiveSettings(enabled=True), mode="live")
    app = create_app(settings, clock=clock)
    client = await aiohttp_client(app)
    q = ccxt_query({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "1",
                    "price": "1"}, "real-secret-we-never-see", ts=clock.now_ms())
    resp = await client.post(f"/api/v3/order?{q}", headers={"X-MEXC-APIKEY": "mx0vrealkey12345"},
                             data=b"extra=1")
    assert resp.status == 404  # whatever the upstream says comes back
    got = fake.seen[-1]
    assert (got.method, got.path, got.query, got.body) == ("POST", "/api/v3/order", q, b"extra=1")
    assert got.headers["X-MEXC-APIKEY"] == "mx0vrealkey12345"
    await app[keys.STORE].flush()
    events = await app[keys.STORE].events(kind="live.request")
    assert events[0]["mode"] == "live"
    assert events[0]["data"]["path"] == "/api/v3/order"
    assert events[0]["data"]["api_key"] == "mx0v...2345"


@pytest.mark.live_upstream
async def test_live_request_without_an_upstream_answer_is_still_audited(
    aiohttp_client: Any, fake_server: Any, fake: FakeMexc, tmp_path: Path, clock: FixedClock
) -> None:
    """A timed-out live order may have been placed (status UNKNOWN): the attempt is on the
    audit log, with the kind of failure; so is one that never reached the upstream."""
    fake.faults["/api/v3/order"] = Fault(status=0, delay_s=5)
    live = {"live": LiveSettings(enabled=True), "mode": "live"}
    q = ccxt_query({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "1",
                    "price": "1"}, "real-secret-we-never-see", ts=clock.now_ms())
    results = []
    for name, base in (("slow", str(fake_server.make_url("")).rstrip("/")), ("down", "http://127.0.0.1:9")):
        settings = make_settings(tmp_path / name, upstream=UpstreamSettings(
            base_url=base, timeout_s=0.5, connect_timeout_s=0.5), **live)
        app = create_app(settings, clock=clock)
        client = await aiohttp_client(app)
        resp = await client.post(f"/api/v3/order?{q}", headers={"X-MEXC-APIKEY": "mx0vrealkey12345"})
        results.append((resp.status, await resp.json()))
        await app[keys.STORE].flush()
        events = await app[keys.STORE].events(kind="live.request")
        assert [(e["mode"], e["data"]) for e in events] == [("live", {
            "method": "POST", "path": "/api/v3/order", "api_key": "mx0v...2345", "status": None,
            "error": "timeout" if name == "slow" else "connect"})], name
    assert results == [(504, {"code": 504, "msg": "Gateway Time-out"}),
                       (503, {"code": 503, "msg": "service not available, please try again"})]
    orders = [s for s in fake.seen if s.path == "/api/v3/order"]
    assert [(s.method, s.query) for s in orders] == [("POST", q)]  # the slow one did go out


@pytest.mark.live_upstream
async def test_live_mode_forwards_the_path_still_percent_encoded(
    aiohttp_client: Any, fake_server: Any, fake: FakeMexc, tmp_path: Path, clock: FixedClock
) -> None:
    settings = make_settings(tmp_path, str(fake_server.make_url("")).rstrip("/"),
                             live=LiveSettings(enabled=True), mode="live")
    app = create_app(settings, clock=clock)
    client = await aiohttp_client(app)
    q = ccxt_query({"coin": "USDT"}, "real-secret-we-never-see", ts=clock.now_ms())
    url = client.make_url("").join(URL(f"/api/v3/sub-account/a%2Fb?{q}", encoded=True))
    resp = await client.session.get(url, headers={"X-MEXC-APIKEY": "mx0vrealkey12345"})
    assert resp.status == 404  # the fake's answer, passed back
    got = fake.seen[-1]
    assert (got.raw_path, got.query) == ("/api/v3/sub-account/a%2Fb", q)  # not .../a/b
    await app[keys.STORE].flush()
    events = await app[keys.STORE].events(kind="live.request")
    assert events[0]["data"]["status"] == 404


# ------------------------------------------------------------------ record and replay


async def test_a_recording_is_written_in_batches_in_arrival_order(
    aiohttp_server: Any, fake: FakeMexc, tmp_path: Path, clock: FixedClock
) -> None:
    """At 50 symbols the stream brings ~1,000 frames a second: the recording buffers them
    and writes batches (every second, in a worker thread), never a file append and a YAML
    dump per frame on the event loop; a clean stop writes everything."""
    server = await aiohttp_server(fake.app())
    up = UpstreamSettings(base_url=str(server.make_url("")).rstrip("/"))
    path = tmp_path / "rec.yaml"
    rec = RecordingTransport(HttpTransport(up), path, clock.now_ms, flush_s=3600)
    await rec.start()
    header = path.read_bytes()
    channel = "spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT"
    try:
        for i in range(300):
            rec.append_stream(channel, 1767205800000 + i, bytes([i % 256]) * 40)
        answer = await rec.request("GET", "/api/v3/ticker/price", "symbol=BTCUSDT")
        rec.append_stream(channel, 1767205800300, b"last")
        assert path.read_bytes() == header  # nothing written per frame
        await rec.flush()
        assert rec.batches == 1
        rec.append_stream(channel, 1767205800301, b"after the flush")
    finally:
        await rec.close()  # writes the rest
    items = yaml.safe_load(path.read_text())["interactions"]
    assert len(items) == 303 and rec.batches == 2
    assert [it["stream"]["recorded_ms"] for it in items[:300]] == [1767205800000 + i for i in range(300)]
    assert items[300]["response"]["body"]["string"] == answer.body.decode()
    assert [base64.b64decode(it["stream"]["frame"]) for it in items[301:]] == [b"last", b"after the flush"]
    # the REST item is written as before: every mapping's keys sorted
    assert list(items[300]) == ["recorded_ms", "request", "response"]


def test_vcrpy_loads_a_recording_of_rest_answers_but_not_one_with_stream_frames(tmp_path: Path) -> None:
    """What RecordingTransport's docstring and cassettes/README.md say of the format: a
    superset of vcrpy's; its REST items are vcrpy interactions (plus `recorded_ms`)."""
    from vcr.serialize import deserialize
    from vcr.serializers import yamlserializer

    rest_only = (ROOT / "cassettes" / "mexc_public.yaml").read_text()
    requests, responses = deserialize(rest_only, yamlserializer)[:2]
    assert requests and len(requests) == len(responses)
    with_frames = (ROOT / "cassettes" / "demo.yaml").read_text()
    assert "\n- stream:\n" in with_frames
    with pytest.raises(KeyError, match="request"):
        deserialize(with_frames, yamlserializer)


async def test_record_then_replay(
    aiohttp_server: Any, fake: FakeMexc, tmp_path: Path, clock: FixedClock
) -> None:
    """What was recorded replays on tape time: the answer at tape time t is the latest
    recorded at or before t (asking again does not move the market), whatever the order
    of the query's parameters; nothing signed is ever written."""
    server = await aiohttp_server(fake.app())
    up = UpstreamSettings(base_url=str(server.make_url("")).rstrip("/"))
    rec = RecordingTransport(HttpTransport(up), tmp_path / "rec.yaml", clock.now_ms)
    await rec.start()
    try:
        live1 = await rec.request("GET", "/api/v3/depth", "symbol=BTCUSDT&limit=5")
        clock.advance(1000)
        fake.set_book("BTCUSDT", [("1", "2")], [("3", "4")])
        live2 = await rec.request("GET", "/api/v3/depth", "symbol=BTCUSDT&limit=5")
        price = await rec.request("GET", "/api/v3/ticker/price", "symbol=BTCUSDT")
    finally:
        await rec.close()
    assert rec.count == 3
    tape = load_tape(tmp_path / "rec.yaml")
    t1, t2 = clock.now_ms() - 1000, clock.now_ms()  # each answer's recorded_ms
    assert (tape.start_ms, tape.end_ms) == (t1, t2)
    at = [tape.answer("GET", "/api/v3/depth", "limit=5&symbol=BTCUSDT", t)
          for t in (t1, t1, t2 - 1, t2, t2 + 9)]
    assert [r.body for r in at] == [live1.body, live1.body, live1.body, live2.body, live2.body]
    assert tape.answer("GET", "/api/v3/ticker/price", "symbol=BTCUSDT", t1).body == price.body
    # no recording at all for a request: an error that says so, never another answer
    miss = tape.answer("GET", "/api/v3/klines", "symbol=BTCUSDT&interval=1m", t1)
    assert (miss.status, json.loads(miss.body)["code"]) == (400, 400)
    assert b"not in the cassette rec.yaml" in miss.body
    text = (tmp_path / "rec.yaml").read_text()
    assert "signature" not in text and "X-MEXC-APIKEY" not in text


async def test_replay_answers_an_unknown_path_with_the_mexc_404(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    """Offline, a path MEXC does not serve gets the 404 the sidecar answers for unknown
    paths elsewhere, not a "no recording" 503; a public MEXC path that was not recorded
    still says so."""
    settings = make_settings(tmp_path, upstream=UpstreamSettings(
        replay_path=str(ROOT / "cassettes" / "demo.yaml"), market_cache_ms=0))
    client = await aiohttp_client(create_app(settings))
    resp = await client.get("/api/v3/noSuchPath?symbol=BTCUSDT")
    assert resp.status == 404
    assert resp.headers["Content-Type"].startswith("application/json")
    body = await resp.read()
    assert json.loads(body) == {"code": 404, "msg": "Not Found"}
    elsewhere = await client.post("/api/v3/noSuchPath")  # answered by the sidecar itself
    assert (elsewhere.status, await elsewhere.read()) == (404, body)
    assert (await client.get("/api/v3/etf/info?symbol=OP3SUSDT")).status == 200  # recorded

    only_ping = tmp_path / "ping.yaml"
    only_ping.write_text(
        "version: 1\ninteractions:\n- request: {body: null, headers: {}, method: GET, uri: "
        "'https://api.mexc.com/api/v3/ping'}\n  response: {body: {string: '{}'}, headers: "
        "{Content-Type: [application/json]}, status: {code: 200, message: OK}}\n")
    settings = make_settings(tmp_path / "p", upstream=UpstreamSettings(replay_path=str(only_ping)))
    client = await aiohttp_client(create_app(settings))
    assert (await client.get("/api/v3/ping")).status == 200
    resp = await client.get("/api/v3/klines?symbol=BTCUSDT&interval=5m")
    data = await resp.json()
    # a client must not retry this: 400, not a 503 "please try again"
    assert (resp.status, data["code"]) == (400, -1121)
    assert data["msg"] == "Invalid symbol.: BTCUSDT is not in the cassette ping.yaml"
    resp = await client.get("/api/v3/avgPrice")
    data = await resp.json()
    assert (resp.status, data["code"]) == (400, 400)
    assert data["msg"] == "Not recorded: GET /api/v3/avgPrice is not in the cassette ping.yaml"
    resp = await client.get("/api/v3/noSuchPath")
    assert (resp.status, await resp.read()) == (404, body)


async def test_offline_demo_fills_a_resting_order(aiohttp_client: Any, tmp_path: Path) -> None:
    """The README's offline command at --speed: the recorded market moves on tape time
    and a resting buy below the first book fills when the tape reaches the second."""
    settings = make_settings(tmp_path, upstream=UpstreamSettings(
        replay_path=str(ROOT / "cassettes" / "demo.yaml"), replay_mode="speed", replay_speed=100_000))
    app = create_app(settings)
    client = await aiohttp_client(app)
    q = ccxt_query({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01",
                    "price": "87700"}, SECRET)
    resp = await client.post(f"/api/v3/order?{q}", headers={"X-MEXC-APIKEY": KEY})
    ack = await resp.json()
    assert resp.status == 200, ack
    feeder = app[keys.TAPE].feeder
    assert feeder is not None
    await asyncio.wait_for(feeder.wait_position(1_767_209_913_314), 30)  # the second book
    q = ccxt_query({"symbol": "BTCUSDT", "orderId": ack["orderId"]}, SECRET)
    order = await (await client.get(f"/api/v3/order?{q}", headers={"X-MEXC-APIKEY": KEY})).json()
    assert order["status"] == "FILLED"
    assert order["executedQty"] == "0.01"
    assert order["cummulativeQuoteQty"] == "877"
    assert order["updateTime"] == 1_767_209_913_314
    balances = {b.asset: b for b in app[keys.SERVICE].balances(1)}
    assert balances["BTC"].free == 1 + __import__("decimal").Decimal("0.01")

