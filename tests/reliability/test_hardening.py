"""Issue 17's attacks, each against the part it broke: secrets in aiohttp's tracebacks,
signatures spelt so the stripping missed them, encoded dot-segments, trickled headers,
file modes, an unbounded exchangeInfo cache, upstream errors labelled JSON, dashboard
overflows and input that only looked valid (a trailing newline, non-ASCII digits).
(The DNS-rebinding attack is in test_trust.py.)"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import logging
import os
import re
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
from aiohttp import web
from aiohttp.test_utils import TestClient
from fake_upstream import FakeMexc, FakeMexcThread, Fault, Seen
from mexc_client import ccxt_query
from relsupport import (
    KEY,
    SECRET,
    base_config,
    make_settings,
    raw_http,
    record_figures,
    start_process,
    stop_process,
)
from yarl import URL

from proxy import api, keys, logsetup, parsers
from proxy.api import upstream_path
from proxy.app import create_app
from proxy.clock import FixedClock
from proxy.config import (
    AccountSettings,
    ConfigError,
    LiveSettings,
    ServerSettings,
    Settings,
    settings_from_mapping,
)
from proxy.errors import ApiError, Err
from proxy.parsers import ShapeError
from proxy.store import Store
from proxy.tls import TlsServer

ROOT = Path(__file__).resolve().parents[2]


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


@pytest.mark.parametrize("key,cfg", [
    ("server.admin_token", {"server": {"admin_token": "tökén-Zq81xWv0pLr7"}}),
    ("server.admin_token", {"server": {"admin_token": "two words"}}),
    ("server.admin_token", {"server": {"admin_token": "tab\there"}}),
    ("accounts[0].secret_key", {"accounts": [{"api_key": "mx0vKEYKEYKEY1", "secret_key": "sécret-1234"}]}),
    ("accounts[0].api_key", {"accounts": [{"api_key": "mx0vKÉYKEYKEY1", "secret_key": "s3cret"}]}),
])
def test_secrets_that_are_not_visible_ascii_are_refused_at_load(key: str, cfg: dict[str, Any]) -> None:
    """A token a client may send Latin-1 encoded (aiohttp then logs its bytes, `t\\xf6k`,
    a form the redaction did not know) never gets configured: ConfigError naming the key."""
    with pytest.raises(ConfigError, match=rf"^{re.escape(key)}: must be visible ASCII"):
        settings_from_mapping(cfg, {})
    ok = settings_from_mapping({"server": {"admin_token": "A-z_0.9~!@#$%^&*()+={}[]|:;'<>,?/"}}, {})
    assert ok.server.admin_token == "A-z_0.9~!@#$%^&*()+={}[]|:;'<>,?/"


def test_a_non_ascii_admin_token_stops_the_process_naming_the_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAPER_TRADING", "PROXY_"))}
    env["MEXC_PAPER_ADMIN_TOKEN"] = "tökén-Zq81xWv0pLr7"
    proc = subprocess.run([sys.executable, "-m", "proxy", "--config", str(ROOT / "config.yaml")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "configuration error: server.admin_token: must be visible ASCII" in proc.stderr
    assert "Zq81xW" not in proc.stderr


async def test_a_non_ascii_secret_sent_latin1_encoded_is_redacted_from_aiohttps_traceback() -> None:
    """Defence in depth, for secrets from anywhere but the config: aiohttp logs a rejected
    header as the bytes the client sent; the Latin-1 bytes of a non-ASCII secret are
    recognised (as are its UTF-8 bytes, and its UTF-8 read as Latin-1 text)."""
    token = "tökén-Zq81xWv0pLr7"
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logsetup.TextFormatter())
    handler.addFilter(logsetup.ContextFilter(lambda: "paper", [token]))
    server_log = logging.getLogger("aiohttp.server")
    server_log.addHandler(handler)
    runner = web.AppRunner(web.Application())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        for raw in (token.encode("latin-1"), token.encode("utf-8")):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nX-Admin-Token: " + raw + b"\x01\r\n"
                         b"Content-Length: 0\r\n\r\n")
            assert (await reader.read()).startswith(b"HTTP/1.0 400 Bad Request")
            writer.close()
    finally:
        server_log.removeHandler(handler)
        await runner.cleanup()
    text = out.getvalue()
    # and a message that wrote the UTF-8 bytes as Latin-1 text
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "header %s",
                               (token.encode().decode("latin-1"),), None)
    handler.handle(record)
    text = out.getvalue()
    assert text.count("Error handling request") == 2 and "header <redacted>" in text
    assert leaked_pieces(text, "Zq81xWv0pLr7") == [], text
    assert "\\xf6k\\xe9n" not in text and "t\\xc3\\xb6k" not in text


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


async def live_client(aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock) -> TestClient:
    settings = make_settings(tmp_path, str(fake_server.make_url("")).rstrip("/"),
                             live=LiveSettings(enabled=True), mode="live")
    return await aiohttp_client(create_app(settings, clock=clock))


LIVE_KEY = {"X-MEXC-APIKEY": "mx0vrealkey12345"}


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("path", [
    *(p for p in ESCAPES if upstream_path(p) is None),  # (the others resolve inside /api/v3/)
    "/api/v3/a%2F..%2F..%2Fx", "/api/v3/%2e%2e%2fcapital/withdraw", "/api/v3/x%2F%2Fy",
    "/api/v3/%2e%2e/%2e%2e/%2e%2e/api/v3/order", "/api/v3/x%2F.", "/api/v3/%3Bx",
])
async def test_live_mode_forwards_no_path_outside_the_api(
    aiohttp_client: Any, fake_server: Any, fake: FakeMexc, tmp_path: Path, clock: FixedClock,
    method: str, path: str,
) -> None:
    """Live mode forwarded anything that looked signed with its raw path: `GET
    /api/v3/%2e%2e/%2e%2e/x` with an X-MEXC-APIKEY header reached `/x` on MEXC's host.
    Live paths go through the same normaliser as public ones: 404, nothing forwarded."""
    client = await live_client(aiohttp_client, fake_server, tmp_path, clock)
    q = ccxt_query({"coin": "USDT"}, "real-secret-we-never-see", ts=clock.now_ms())
    resp = await client.session.request(
        method, URL(f"http://127.0.0.1:{client.port}{path}?{q}", encoded=True), headers=LIVE_KEY)
    assert (resp.status, await resp.json()) == (404, {"code": 404, "msg": "Not Found"})
    assert fake.signed_requests() == []
    await client.app[keys.STORE].flush()
    assert await client.app[keys.STORE].events(kind="live.request") == []


@pytest.mark.live_upstream
@pytest.mark.parametrize("path,forwarded", [
    ("/api/v3/order", "/api/v3/order"),
    ("/api/v3/foo/%2e%2e/order", "/api/v3/order"),
    ("/api/v3/%6Frder", "/api/v3/order"),
    ("/api/v3//capital/./config/getall", "/api/v3/capital/config/getall"),
    ("/api/v3/%2E%2E/%2E%2E/api/v3/capital/withdraw", "/api/v3/capital/withdraw"),
    ("/api/v1/contract/%2e%2e/%2e%2e/v3/order", "/api/v3/order"),
    # a segment that needs its encoding keeps it: one segment, not two
    ("/api/v3/sub-account/a%2Fb", "/api/v3/sub-account/a%2Fb"),
    ("/api/v3/sub-account/n%40me", "/api/v3/sub-account/n%40me"),
])
async def test_live_paths_are_forwarded_normalised(
    aiohttp_client: Any, fake_server: Any, fake: FakeMexc, tmp_path: Path, clock: FixedClock,
    path: str, forwarded: str,
) -> None:
    client = await live_client(aiohttp_client, fake_server, tmp_path, clock)
    q = ccxt_query({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001",
                    "price": "80000"}, "real-secret-we-never-see", ts=clock.now_ms())
    url = URL(f"http://127.0.0.1:{client.port}{path}?{q}", encoded=True)
    await client.session.post(url, headers=LIVE_KEY)
    got = [s for s in fake.seen if s.headers.get("X-MEXC-APIKEY")]
    assert [(s.method, s.raw_path, s.query) for s in got] == [("POST", forwarded, q)]


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


@pytest.mark.parametrize("umask", [0o022, 0o002])
async def test_the_tls_listener_makes_the_data_folder_owner_only(tmp_path: Path, umask: int) -> None:
    """With server.tls (the Docker image's default) the certificates are made before the
    database: the storage folder and its missing parents are made by the TLS code, and
    were 0755 (0775). Now every folder made for the data is 0700, whoever makes it first."""
    db = tmp_path / "data" / "sub" / "paper.sqlite3"
    settings = settings_from_mapping({"server": {"tls": {"port": 0}}, "storage": {"path": str(db)}}, {})
    old = os.umask(umask)
    try:
        TlsServer(settings).load()
        store = Store(str(db), "NORMAL")
        await store.open()
        await store.close()
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (db.parent / "tls", db.parent, db.parent.parent)}
    assert modes == {"tls": 0o700, "sub": 0o700, "data": 0o700}


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_the_ca_command_makes_the_data_folder_owner_only(tmp_path: Path, umask: int) -> None:
    """`python -m proxy ca` before the first start makes the storage folder (for tls/):
    owner-only too."""
    data = tmp_path / "data"
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"storage: {{path: {data / 'paper.sqlite3'}}}\nserver: {{tls: {{port: 8443}}}}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROXY_", "MEXC_PAPER"))}
    proc = subprocess.run(
        [sys.executable, "-m", "proxy", "ca", "--config", str(cfg), "--out", str(tmp_path / "ca.pem")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, umask=umask,
    )
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "tls").stat().st_mode) == 0o700


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


async def test_a_symbols_list_is_one_cache_entry_whatever_its_spelling(
    client: TestClient, fake: FakeMexc
) -> None:
    """`symbols=` lists that name the same symbols (case, spaces, order, repeats, an
    encoded comma) ask the upstream once, with one spelling."""
    upstream = client.app[keys.UPSTREAM]
    calls = len(info_calls(fake))
    for query in ("symbols=ETHUSDT,BTCUSDT", "symbols=btcusdt,ethusdt", "symbols=BTCUSDT,%20ETHUSDT,BTCUSDT",
                  "symbols=ETHUSDT%2CBTCUSDT", "symbols=%20ethusdt%20,BTCUSDT,",
                  "n=1&symbols=BTCUSDT,ETHUSDT"):
        resp = await client.get(f"/api/v3/exchangeInfo?{query}")
        assert resp.status == 200, query
    assert info_calls(fake)[calls:] == ["symbols=BTCUSDT,ETHUSDT"]
    assert [k for k in upstream._cache if k[0] == "/api/v3/exchangeInfo"] == [
        ("/api/v3/exchangeInfo", "symbols=BTCUSDT,ETHUSDT")]
    # what is not a list of symbols is forwarded as sent (and refused upstream)
    assert api.normal_symbols("symbols=BTC/USDT,X") == "symbols=BTC/USDT,X"
    assert api.normal_symbols("symbol=BTCUSDT&symbols=b,a") == "symbol=BTCUSDT&symbols=A,B"
    assert api.normal_symbols("symbol=BTCUSDT") == "symbol=BTCUSDT"


async def test_the_upstream_cache_is_bounded_by_bytes(client: TestClient, fake: FakeMexc) -> None:
    """The bound is on bytes, not entries: 300 distinct `symbols=` lists, each answered
    with the whole exchangeInfo (as MEXC answers any list), took RSS from 61 to 553 MB
    under a bound of 256 entries. Here the bytes stay under cache_max_bytes (the newest
    answers kept), and an answer larger than the bound is not cached at all."""
    for i in range(300):  # a bigger exchangeInfo, as MEXC's 2,500 symbols
        fake.add_symbol(f"X{i:04d}")
    upstream = client.app[keys.UPSTREAM]
    size = len(await (await client.get("/api/v3/exchangeInfo")).read())
    assert size > 200_000
    assert upstream.cache_max_bytes == 32 * 1024 * 1024  # the production bound (documented)
    upstream.cache_max_bytes = 4 * size + size // 2
    assert upstream.cache_max > 40  # the entry bound alone would have kept all of them
    for i in range(40):
        assert (await client.get(f"/api/v3/exchangeInfo?symbols=BTCUSDT,X{i:04d}")).status == 200
        assert upstream.cache_bytes() <= upstream.cache_max_bytes
    kept = [q for p, q in upstream._cache if p == "/api/v3/exchangeInfo"]
    assert kept == [f"symbols=BTCUSDT,X{i:04d}" for i in range(36, 40)], kept
    upstream.cache_max_bytes = size - 1
    calls = len(info_calls(fake))
    for _ in range(2):
        assert (await client.get("/api/v3/exchangeInfo?symbols=BTCUSDT,X0100")).status == 200
    assert len(info_calls(fake)) == calls + 2  # too large to keep: asked again
    assert ("/api/v3/exchangeInfo", "symbols=BTCUSDT,X0100") not in upstream._cache


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
