"""Issue 17's attacks, each against the part it broke: secrets in aiohttp's tracebacks,
signatures spelt so the stripping missed them, encoded dot-segments, trickled headers,
file modes, an unbounded exchangeInfo cache, upstream errors labelled JSON, dashboard
overflows and input that only looked valid (a trailing newline, non-ASCII digits).
(The DNS-rebinding attack is in test_trust.py.)"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import yaml
from aiohttp.test_utils import TestClient
from fake_upstream import FakeMexc, FakeMexcThread, Fault, Seen
from process_support import free_port
from relsupport import KEY, SECRET, record_figures
from yarl import URL

from proxy import keys, logsetup, parsers
from proxy.config import AccountSettings, ConfigError, ServerSettings, Settings, settings_from_mapping
from proxy.errors import ApiError, Err
from proxy.parsers import ShapeError
from proxy.store import Store

ROOT = Path(__file__).resolve().parents[2]


def start_process(tmp_path: Path, cfg: dict[str, Any]) -> tuple[subprocess.Popen[bytes], int, Path]:
    """`python -m proxy` with `cfg` (its port filled in), stderr to a file; returns once
    /healthz answers."""
    port = free_port()
    cfg = {**cfg, "server": {**cfg.get("server", {}), "port": port}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAPER_TRADING", "PROXY_"))}
    log_path = tmp_path / "stderr.log"
    with log_path.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "proxy", "--config", str(tmp_path / "config.yaml")],
                                cwd=ROOT, env=env, stdout=err, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:
        assert proc.poll() is None, log_path.read_text()[-2000:]
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return proc, port, log_path
        except OSError:
            assert time.monotonic() < deadline, "sidecar did not start"
            time.sleep(0.02)  # polling another process's port: it offers no event to await


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)


def raw_http(port: int, data: bytes, timeout: float = 5) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def base_config(fake: FakeMexcThread, tmp_path: Path, **server: Any) -> dict[str, Any]:
    return {
        "server": server,
        "upstream": {"base_url": fake.url, "timeout_s": 2, "market_cache_ms": 0, "ws_url": None},
        "storage": {"path": str(tmp_path / "db.sqlite3")},
        "logging": {"level": "DEBUG", "format": "text", "access_log": True},
        "accounts": [{"api_key": KEY, "secret_key": SECRET, "balances": {"USDT": "10000"}}],
    }


# --------------------------------------------------------------------- 2. secrets in tracebacks

ADMIN_TOKEN = "tok-Zq81xWv0pLr7-adm"
ACCOUNT_SECRET = "sec-Hh42kQ9vNn3w-acct"


def leaked_pieces(text: str, secret: str, size: int = 6) -> list[str]:
    """Every `size`-character piece of `secret` that occurs in `text` (a masked secret
    such as `tok-...-adm` would still give away both ends)."""
    return [secret[i:i + size] for i in range(len(secret) - size + 1) if secret[i:i + size] in text]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_secrets_in_headers_aiohttp_rejects_are_redacted_from_its_tracebacks(
    tmp_path: Path, fmt: str
) -> None:
    """A header value aiohttp's parser rejects puts the raw header block into the
    exception it logs: the admin token and the account secret must not reach the log,
    not even in part."""
    with FakeMexcThread() as fake:
        cfg = base_config(fake, tmp_path, admin_token=ADMIN_TOKEN)
        cfg["accounts"][0]["secret_key"] = ACCOUNT_SECRET
        cfg["logging"]["format"] = fmt
        proc, port, log_path = start_process(tmp_path, cfg)
        try:
            for header in (f"X-Admin-Token: {ADMIN_TOKEN}\x01",
                           f"Authorization: Bearer {ADMIN_TOKEN}\x7f",
                           f"X-Note: {ACCOUNT_SECRET}\x00",
                           f"X-Admin-Token {ADMIN_TOKEN}"):
                answer = raw_http(port, f"POST /admin/api/mode HTTP/1.1\r\nHost: localhost\r\n"
                                        f"{header}\r\nContent-Length: 0\r\n\r\n".encode("latin-1"))
                assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request"), answer[:100]
        finally:
            stop_process(proc)
    text = log_path.read_text(errors="replace")
    assert "Error handling request" in text and "Traceback" in text  # aiohttp did log them...
    assert "<redacted>" in text  # ...redacted
    assert leaked_pieces(text, ADMIN_TOKEN) == []
    assert leaked_pieces(text, ACCOUNT_SECRET) == []


def test_every_secret_in_settings_is_redacted_from_every_part_of_a_record() -> None:
    """Message, arguments, exception text, stack info and extra fields; in the forms a
    traceback writes a value (as is, repr of bytes with escapes, JSON-escaped)."""
    settings = Settings(
        server=ServerSettings(admin_token="adm\"tok\\é-1234"),
        accounts=(AccountSettings("mx0vKEYKEYKEYKEY1", "s3cr3t-s3cr3t-xyz"),),
    )
    assert set(settings.secrets()) == {"adm\"tok\\é-1234", "mx0vKEYKEYKEYKEY1", "s3cr3t-s3cr3t-xyz"}
    filt = logsetup.ContextFilter(lambda: "paper", settings.secrets())
    token = "adm\"tok\\é-1234"
    try:
        raise ValueError(f"bad header {token.encode()!r} {token!r} {'s3cr3t-s3cr3t-xyz'}")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("aiohttp.server", logging.ERROR, __file__, 1,
                               "Error handling request %s", ("s3cr3t-s3cr3t-xyz",), exc_info)
    record.stack_info = f"stack {token}"
    record.account = "mx0vKEYKEYKEYKEY1"
    assert filt.filter(record)
    out = logsetup.TextFormatter().format(record) + logsetup.JsonFormatter().format(record)
    for secret in ("s3cr3t-s3cr3t-xyz", token, repr(token.encode())[2:-1], "tok\\\\é", "KEYKEYKEY"):
        assert secret not in out, secret
    assert "<redacted>" in out and "mx0v...KEY1" in out


# --------------------------------------------------------------------- 3. signature spellings

HEX = "5f" * 32
SPELLINGS = ["%73ignature", "sig%6Eature", "%2573ignature", "Signature", "SIGNATURE", "+signature",
             "signature%20", "%20signature", "signature%00", "%EF%BD%93ignature", "%C5%BFignature",
             "signature"]
PUBLIC = ["/api/v3/klines?symbol=BTCUSDT&interval=1m", "/api/v3/depth?symbol=BTCUSDT",
          "/api/v3/avgPrice?symbol=BTCUSDT", "/api/v3/exchangeInfo?symbol=BTCUSDT",
          "/api/v3/someNewPublicThing?symbol=BTCUSDT", "/api/v1/contract/detail?symbol=BTC_USDT",
          "/api/v1/contract/ticker?symbol=BTC_USDT"]


def test_the_suites_signed_request_check_knows_every_spelling() -> None:
    """tests/fake_upstream.py's check (the autouse `paper_mode_sends_nothing_signed`)."""
    fake = FakeMexc()
    for spelling in SPELLINGS:
        for query in (f"a=1&{spelling}={HEX}", f"a=1;{spelling}={HEX}", f"{spelling}={HEX}"):
            fake.seen = [Seen("GET", "/api/v3/klines", query, {}, b"")]
            assert len(fake.signed_requests()) == 1, query
    fake.seen = [Seen("GET", "/api/v3/klines;signature=x", "", {}, b"", "/api/v3/klines;signature=x"),
                 Seen("GET", "/api/v3/klines", "", {"x-mexc-apikey": "k"}, b"")]
    assert len(fake.signed_requests()) == 2
    fake.seen = [Seen("GET", "/api/v3/klines", "symbol=BTCUSDT&note=signature&signatures=1", {}, b"")]
    assert fake.signed_requests() == []


@pytest.mark.parametrize("spelling", SPELLINGS)
async def test_no_spelling_of_a_signature_reaches_the_upstream(
    client: TestClient, fake: FakeMexc, spelling: str
) -> None:
    for target in PUBLIC:
        for extra in (f"&{spelling}={HEX}", f";{spelling}={HEX}", f"&a=1;{spelling}={HEX}&b=2"):
            resp = await client.get(f"{target}{extra}")
            assert resp.status < 500, (target, extra, await resp.text())
    assert fake.seen, "nothing was forwarded at all"
    assert fake.signed_requests() == []
    assert not any(HEX in s.query or HEX in s.raw_path for s in fake.seen)


# --------------------------------------------------------------------- 4. dot-segments

ESCAPES = ["/api/v3/%2e%2e/%2e%2e/x", "/api/v3/%2E%2E/%2E%2E/api/v3/capital/withdraw",
           "/api/v3/..%2f..%2fx", "/api/v3/%2e%2e%2f%2e%2e%2fx", "/api/v3/.%2e/.%2e/x",
           "/api/v1/contract/%2e%2e/%2e%2e/v3/x", "/api/v3/%2e%2e", "/api/v1/contract/%2e%2e",
           "/api/v3/%5c..%5c..%5cx", "/api/v3/%252e%252e/%252e%252e/x", "/api/v3/x%00",
           "/api/v3/ticker;x=1", "/api/v3/%2e%2e/v3/x"]
PREFIXES = ("/api/v3/", "/api/v1/contract/")


async def raw_get(client: TestClient, target: str) -> Any:
    """GET `target` exactly as written (yarl would otherwise resolve dot-segments and
    decode escapes on the client side)."""
    return await client.session.get(URL(f"http://127.0.0.1:{client.port}{target}", encoded=True))


@pytest.mark.parametrize("path", ESCAPES)
async def test_encoded_dot_segments_never_leave_the_public_prefixes(
    client: TestClient, fake: FakeMexc, path: str
) -> None:
    resp = await raw_get(client, f"{path}?symbol=BTCUSDT")
    body = await resp.json()
    assert (resp.status, body) == (404, {"code": 404, "msg": "Not Found"}) or (
        resp.status < 500 and set(body) == {"code", "msg"})
    for seen in fake.seen:
        assert seen.raw_path.startswith(PREFIXES), seen.raw_path
        assert "%" not in seen.raw_path and "/." not in seen.raw_path and "\\" not in seen.raw_path


@pytest.mark.parametrize("path,forwarded", [
    ("/api/v3/foo/%2e%2e/depth", "/api/v3/depth"),
    ("/api/v3/./depth", "/api/v3/depth"),
    ("/api/v3//klines", "/api/v3/klines"),
    ("/api/v3/%64epth", "/api/v3/depth"),
    ("/api/v3/ticker/%2e/price", "/api/v3/ticker/price"),
    ("/api/v1/contract/x/%2e%2e/detail", "/api/v1/contract/detail"),
])
async def test_paths_are_forwarded_normalised(
    client: TestClient, fake: FakeMexc, path: str, forwarded: str
) -> None:
    resp = await raw_get(client, f"{path}?symbol=BTCUSDT&interval=1m")
    assert resp.status < 500, await resp.text()
    sent = [s.raw_path for s in fake.seen]  # (the equity recorder asks for prices at start)
    assert forwarded in sent
    assert [p for p in sent if "%" in p or "/." in p or "//" in p] == []


# --------------------------------------------------------------------- 5. slow headers, many connections

HEAD = b"GET /api/v3/ping HTTP/1.1\r\nHost: localhost\r\n"


async def trickle(port: int, deadline: float) -> tuple[str, float]:
    """Open a connection and send a request head one header line at a time, never
    finishing it. Returns how it ended ("answered <status line>", "closed", "reset", or
    "open" at the deadline) and after how many seconds."""
    t0 = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(HEAD)
        i = 0
        while time.monotonic() < deadline:
            try:
                # the attack's pace: a header line every 0.2 s, reading what comes back
                data = await asyncio.wait_for(reader.read(4096), 0.2)
            except TimeoutError:
                i += 1
                writer.write(b"X-Pad-%d: y\r\n" % i)
                await writer.drain()
                continue
            if not data:
                return "closed", time.monotonic() - t0
            return "answered " + data.split(b"\r\n")[0].decode(), time.monotonic() - t0
        return "open", time.monotonic() - t0
    except ConnectionError:
        return "reset", time.monotonic() - t0
    finally:
        writer.close()


def test_trickled_headers_are_cut_off_and_connections_are_bounded(tmp_path: Path) -> None:
    """The real process (`python -m proxy`): with server.max_connections 6 and
    server.header_timeout_s 1, ten connections trickling header lines: the four beyond the
    limit are answered 503 (MEXC JSON) at once, the others are closed by the server, and
    then the sidecar answers again."""
    with FakeMexcThread() as fake:
        cfg = base_config(fake, tmp_path, header_timeout_s=1, max_connections=6)
        cfg["logging"] = {"level": "INFO"}
        proc, port, _ = start_process(tmp_path, cfg)
        try:
            async def attack() -> list[tuple[str, float]]:
                deadline = time.monotonic() + 30
                return await asyncio.gather(*(trickle(port, deadline) for _ in range(10)))

            outcomes = asyncio.run(attack())
            after = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v3/ping", timeout=5)
            assert (after.status, after.read()) == (200, b"{}")
        finally:
            stop_process(proc)
    ends = sorted(o for o, _ in outcomes)
    refused = [o for o in ends if o == "answered HTTP/1.1 503 Service Unavailable"]
    cut = [o for o in ends if o in ("closed", "reset")]
    assert "open" not in ends, outcomes
    # (a probe of the start-up wait may still hold one slot when the attack begins)
    assert len(refused) >= 4 and len(cut) <= 6 and len(refused) + len(cut) == 10, outcomes
    record_figures("hardening: slow headers", connections=10, refused_at_limit=len(refused),
                   cut_by_header_timeout=len(cut),
                   slowest_cut_s=round(max(t for o, t in outcomes if o in ("closed", "reset")), 2))


def hold_the_only_slot(port: int) -> socket.socket:
    """A kept-alive connection that was answered (so was admitted) and stays open. The
    start-up probe's connection may hold the slot for a moment after it was answered:
    retry until it is free (another process: no event to await)."""
    deadline = time.monotonic() + 10
    while True:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(HEAD + b"\r\n")
        if s.recv(4096).startswith(b"HTTP/1.1 200 OK"):
            return s
        s.close()
        assert time.monotonic() < deadline, "the slot never became free"
        time.sleep(0.05)


def test_the_limit_answers_mexc_json(tmp_path: Path) -> None:
    with FakeMexcThread() as fake:
        proc, port, _ = start_process(tmp_path, base_config(fake, tmp_path, max_connections=1,
                                                             header_timeout_s=5))
        try:
            held = hold_the_only_slot(port)
            try:
                answer = raw_http(port, HEAD + b"\r\n")
            finally:
                held.close()
        finally:
            stop_process(proc)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 503 Service Unavailable"
    assert b"Content-Type: application/json" in head and b"Connection: close" in head
    assert json.loads(body) == json.loads(ApiError(Err.SERVICE_UNAVAILABLE).body())


@pytest.mark.parametrize("key,value", [("header_timeout_s", 0), ("header_timeout_s", -1),
                                       ("header_timeout_s", "x"), ("max_connections", 0),
                                       ("max_connections", "many")])
def test_connection_bounds_are_validated(key: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=rf"server\.{key}"):
        settings_from_mapping({"server": {key: value}}, {})
    s = settings_from_mapping({"server": {"header_timeout_s": 2.5, "max_connections": 9}}, {})
    assert (s.server.header_timeout_s, s.server.max_connections) == (2.5, 9)


# --------------------------------------------------------------------- 6. file modes


@pytest.mark.parametrize("umask", [0o022, 0o000, 0o002])
async def test_database_and_its_folder_are_owner_only_whatever_the_umask(
    tmp_path: Path, umask: int
) -> None:
    db = tmp_path / "data" / "sub" / "paper.sqlite3"
    old = os.umask(umask)
    try:
        store = Store(str(db), "NORMAL")
        await store.open()
        try:
            await store.flush()
            files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in db.parent.iterdir()}
            folders = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (db.parent, db.parent.parent)}
        finally:
            await store.close()
    finally:
        os.umask(old)
    assert files == {"paper.sqlite3": 0o600, "paper.sqlite3-wal": 0o600, "paper.sqlite3-shm": 0o600}
    assert folders == {"sub": 0o700, "data": 0o700}


async def test_an_existing_folder_keeps_its_mode(tmp_path: Path) -> None:
    """A database put straight into an existing folder (./paper.sqlite3) changes nothing
    about that folder; the file itself is still created owner-only."""
    tmp_path.chmod(0o755)
    store = Store(str(tmp_path / "paper.sqlite3"), "NORMAL")
    await store.open()
    await store.close()
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "paper.sqlite3").stat().st_mode) == 0o600


# --------------------------------------------------------------------- 7. the exchangeInfo cache


def info_calls(fake: FakeMexc) -> list[str]:
    return [s.query for s in fake.seen if s.path == "/api/v3/exchangeInfo"]


async def test_junk_exchange_info_queries_share_one_cache_entry(client: TestClient, fake: FakeMexc) -> None:
    """400 `exchangeInfo?n=<i>` raised RSS from 58 to 169 MB for good: each raw query was
    a cache entry of its own. Only symbol/symbols matter."""
    upstream = client.app[keys.UPSTREAM]
    assert (await client.get("/api/v3/exchangeInfo")).status == 200
    sizes = len(upstream._cache), len(upstream._parsed)
    calls = len(info_calls(fake))
    for i in range(400):
        resp = await client.get(f"/api/v3/exchangeInfo?n={i}&signature={HEX}")
        assert resp.status == 200
    assert (len(upstream._cache), len(upstream._parsed)) == sizes
    assert len(info_calls(fake)) == calls  # all answered from the one entry
    for query in ("symbol=BTCUSDT&n=1", "n=2&symbol=BTCUSDT", "symbol=BTCUSDT&symbol=ETHUSDT&x="):
        resp = await client.get(f"/api/v3/exchangeInfo?{query}")
        assert [s["symbol"] for s in (await resp.json())["symbols"]] == ["BTCUSDT"]
    assert info_calls(fake)[calls:] == ["symbol=BTCUSDT"]
    for i in range(100):  # the contract list is cached the same way
        assert (await client.get(f"/api/v1/contract/detail?n={i}")).status == 200
    assert len(upstream._cache) == sizes[0] + 2


async def test_the_upstream_cache_is_bounded_and_drops_expired_entries(
    client: TestClient, fake: FakeMexc
) -> None:
    upstream = client.app[keys.UPSTREAM]
    upstream.cache_max = 20
    now = [1000.0]
    upstream.monotonic = lambda: now[0]
    for i in range(60):  # distinct symbols lists: distinct answers, each cacheable
        assert (await client.get(f"/api/v3/exchangeInfo?symbols=X{i}")).status == 200
        assert len(upstream._cache) <= 20 and len(upstream._parsed) <= 20
    assert len(upstream._cache) == 20
    now[0] += upstream.settings.exchange_info_ttl_s + 1  # every entry has expired
    assert (await client.get("/api/v3/exchangeInfo?symbols=Y")).status == 200
    assert list(upstream._cache) == [("/api/v3/exchangeInfo", "symbols=Y")]


# --------------------------------------------------------------------- 8. upstream errors labelled JSON


@pytest.mark.parametrize("status,body,ctype", [
    (500, "", "application/json"),
    (503, "Service Temporarily Unavailable", "application/json"),
    (502, "<html><body>Bad Gateway</body></html>", "application/problem+json"),
    (500, "[]", "application/json"),
    (429, '{"error": "slow down"}', "application/json"),
    (400, '{"code": "x", "msg": "bad"}', "application/json"),
    (404, '{"code": 404}', "application/json"),
    (500, '{"code": 5', "application/json"),
    (504, "null", "text/plain"),
])
async def test_upstream_errors_always_reach_the_bot_as_mexc_json(
    client: TestClient, fake: FakeMexc, status: int, body: str, ctype: str
) -> None:
    fake.faults["/api/v3/depth"] = Fault(status=status, body=body, content_type=ctype,
                                         headers={"Retry-After": "3"} if status == 429 else {})
    resp = await client.get("/api/v3/depth?symbol=BTCUSDT")
    assert resp.status == status
    assert resp.content_type == "application/json"
    data = await resp.json()
    assert set(data) == {"code", "msg"} and isinstance(data["code"], int) and data["msg"], data
    if status == 429:
        assert resp.headers["Retry-After"] == "3"


async def test_a_real_mexc_error_body_passes_unchanged(client: TestClient, fake: FakeMexc) -> None:
    body = '{"code":-1121,"msg":"Invalid symbol."}'
    fake.faults["/api/v3/depth"] = Fault(status=400, body=body)
    resp = await client.get("/api/v3/depth?symbol=NOPE")
    assert (resp.status, await resp.text()) == (400, body)


# --------------------------------------------------------------------- 9. dashboard parameters

BIG = "9" * 30


@pytest.mark.parametrize("query", [
    f"before={BIG}", f"filter_account={BIG}", f"before=-{BIG}", "before=-1", "before=1_0",
    "before=%D9%A1", "before=+5", "before=%205", "filter_account=-1", "filter_account=%D9%A1",
    f"filter_account={2**63}", "filter_account=1%0A", "before=5%0A",
])
async def test_out_of_range_dashboard_parameters_get_400(client: TestClient, query: str) -> None:
    resp = await client.get(f"/dashboard/events?{query}")
    assert resp.status == 400, (query, resp.status)


@pytest.mark.parametrize("path", [
    f"/dashboard/?account={BIG}", f"/dashboard/api/state?account={BIG}",
    f"/dashboard/settings?account=-{BIG}", f"/dashboard/events?account={BIG}",
    "/dashboard/?account=%D9%A1", f"/dashboard/?done={BIG}",
    f"/dashboard/events?kind={'x' * 41}", "/dashboard/events?kind=order.%0A",
    "/dashboard/events?kind=%EF%BD%8Frder.*",
])
async def test_odd_dashboard_parameters_never_500(client: TestClient, path: str) -> None:
    resp = await client.get(path)
    assert resp.status in (200, 400), (path, resp.status)


@pytest.mark.parametrize("path", [f"/dashboard/export/{BIG}/orders.csv", "/dashboard/export/-1/trades.csv",
                                  "/dashboard/export/%D9%A1/orders.csv",
                                  f"/dashboard/accounts/{BIG}/reset"])
async def test_odd_account_ids_in_dashboard_paths_are_404(client: TestClient, path: str) -> None:
    method = client.post if path.endswith("/reset") else client.get
    resp = await method(path)
    assert resp.status in (403, 404), (path, resp.status)


async def test_valid_dashboard_parameters_still_work(client: TestClient) -> None:
    for q in ("before=5", "filter_account=1", "filter_account=all", f"filter_account={2**63 - 1}",
              "before=9223372036854775807", "kind=order.*", ""):
        assert (await client.get(f"/dashboard/events?{q}")).status == 200, q


# --------------------------------------------------------------------- 10. whole-value ASCII validation

ARABIC = str.maketrans("0123456789", "".join(chr(0x660 + i) for i in range(10)))  # Arabic-Indic
ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "80000"}


async def signed_pairs(client: TestClient, method: str, path: str, pairs: dict[str, str]) -> tuple[int, Any]:
    """Sign exactly these pairs (timestamp and recvWindow included when given)."""
    q = urlencode(pairs, quote_via=quote)
    q = f"{q}&signature={hmac.new(SECRET.encode(), q.encode(), hashlib.sha256).hexdigest()}"
    resp = await client.request(method, f"{path}?{q}", headers={"X-MEXC-APIKEY": KEY})
    return resp.status, await resp.json()


@pytest.mark.parametrize("name,value,code", [
    ("quantity", "0.001\n", 33333), ("quantity", "1".translate(ARABIC), 33333),
    ("quantity", "0.001".translate(ARABIC), 33333),
    ("price", "80000\n", 33333), ("price", "80000".translate(ARABIC), 33333),
    ("price", "\uff180000", 33333), ("newClientOrderId", "abc\n", 33333),
    ("newClientOrderId", "abc\r\n", 33333), ("type", "l\u0131m\u0131t", 33333), ("type", "LIMIT\n", 33333),
    ("symbol", "BTCUSDT\n", -1121), ("symbol", "BTCUSDT&symbol=ETHUSDT", -1121),
    ("symbol", "\uff22TCUSDT", -1121), ("symbol", f"BTCUSDT;signature={HEX}", -1121),
])
async def test_order_parameters_are_whole_ascii_values(
    client: TestClient, clock: Any, fake: FakeMexc, name: str, value: str, code: int
) -> None:
    pairs = {**ORDER, name: value, "timestamp": str(clock.now_ms())}
    status, body = await signed_pairs(client, "POST", "/api/v3/order", pairs)
    assert (status, body["code"]) == (400, code), body
    status, orders = await signed_pairs(client, "GET", "/api/v3/openOrders",
                                        {"symbol": "BTCUSDT", "timestamp": str(clock.now_ms())})
    assert (status, orders) == (200, [])
    assert not any("\n" in s.query or "%0A" in s.query.upper() for s in fake.seen)


@pytest.mark.parametrize("pairs,code", [
    ({"timestamp": "A"}, 700004),
    ({"timestamp": "T\n"}, 700004),
    ({"timestamp": "T", "recvWindow": "5000\n"}, 33333),
    ({"timestamp": "T", "recvWindow": "5000".translate(ARABIC)}, 33333),
    ({"timestamp": "T", "limit": "10\n"}, 33333),
    ({"timestamp": "T", "limit": "10".translate(ARABIC)}, 33333),
    ({"timestamp": "T", "startTime": "A"}, 33333),
])
async def test_integer_parameters_are_whole_ascii_values(
    client: TestClient, clock: Any, pairs: dict[str, str], code: int
) -> None:
    now = str(clock.now_ms())  # T: now; A: now in Arabic-Indic digits
    pairs = {"symbol": "BTCUSDT",
             **{k: v.replace("T", now).replace("A", now.translate(ARABIC)) for k, v in pairs.items()}}
    status, body = await signed_pairs(client, "GET", "/api/v3/allOrders", pairs)
    assert (status, body["code"]) == (400, code), body


@pytest.mark.parametrize("value", ["1".translate(ARABIC), "123".translate(ARABIC), " 1", "1 ", "1_000",
                                   "1\n", "80000.5".translate(ARABIC), "+1", "1e3x", True, 1.5])
def test_parsers_take_only_ascii_decimals(value: Any) -> None:
    with pytest.raises(ShapeError):
        parsers.parse_ticker_price({"symbol": "BTCUSDT", "price": value})


def test_parsers_still_take_what_mexc_sends() -> None:
    assert parsers.parse_ticker_price([{"symbol": "A", "price": "87900.01"}, {"symbol": "B", "price": 5},
                                       {"symbol": "C", "price": "1E-8"}, {"symbol": "D", "price": "-0.5"}])\
        == {"A": Decimal("87900.01"), "B": Decimal(5), "C": Decimal("1E-8"), "D": Decimal("-0.5")}
    with pytest.raises(ShapeError):
        parsers.parse_trades([{"price": "1", "qty": "1", "time": "1700".translate(ARABIC)}])
    with pytest.raises(ShapeError):
        parsers.parse_klines([["1".translate(ARABIC), "1", "1", "1", "1", "1", 2, "1"]])
    assert parsers.parse_trades([{"price": "1", "qty": "2", "time": "1700"}])[0].time_ms == 1700


@pytest.mark.parametrize("payload", [
    {"asset": "USDT", "amount": "100".translate(ARABIC)}, {"asset": "USDT", "amount": " 5"},
    {"asset": "USDT", "amount": "1_0"}, {"asset": "USDT", "amount": "5\n"},
    {"asset": "\uff35\uff33\uff24\uff34", "amount": "5"}, {"asset": "USDT\n", "amount": "5"},
])
async def test_admin_amounts_and_assets_are_whole_ascii_values(
    client: TestClient, payload: dict[str, str]
) -> None:
    before = tuple(client.app[keys.SERVICE].balances(1))
    resp = await client.post("/admin/api/accounts/1/fund", json=payload)
    assert resp.status == 400, await resp.text()
    assert tuple(client.app[keys.SERVICE].balances(1)) == before
    assert (await client.get("/admin/api/accounts/%D9%A1")).status == 404
