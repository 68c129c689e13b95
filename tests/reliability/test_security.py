"""Security: nothing signed leaves in paper mode, no secret reaches a log, safe defaults,
guarded admin changes, and live passthrough only when both halves of the mode rule are set.

- In paper mode a recording fake upstream sees no signature and no X-MEXC-APIKEY, whatever
  the client sends (pymexc sends its key on public calls and signs klines/avgPrice).
- No API secret, signature or full API key in any log line: in-process, every record of a
  run of signed traffic (with rejections, upstream faults, a 500, live forwarding) is
  scanned; and a real `python -m proxy` at DEBUG with the access log on, fed malformed
  HTTP whose request line and headers carry a signature and key, writes none to stderr.
- The default bind is 127.0.0.1 (settings, committed config, and the listening socket).
- Admin state changes need Content-Type: application/json, and the admin token when the
  server listens on a non-loopback address; without one they are refused outright.
- Live passthrough needs live.enabled AND PAPER_TRADING=false: half is a start-up error,
  and at runtime the admin API and the dashboard refuse to switch to live unless armed.
  When live, signed requests reach the upstream unchanged; back in paper, never.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient
from fake_upstream import FakeMexc, FakeMexcThread, Fault
from process_support import free_port
from relsupport import KEY, KEY2, NOW, SECRET, SECRET2, Caller, make_settings, record_figures
from yarl import URL

from proxy import keys
from proxy.app import create_app
from proxy.clock import FixedClock
from proxy.config import (
    ConfigError,
    LiveSettings,
    ServerSettings,
    Settings,
    load_settings,
    settings_from_mapping,
)

ROOT = Path(__file__).resolve().parents[2]
LIVE_KEY, LIVE_SECRET = "mx0vglLIVEKEY0000000001", "live-secret-never-logged-0001"
SIG_RE = re.compile(r"signature[\"']?\s*[=:]\s*[\"']?[0-9a-fA-F]{16,}")


def sig(secret: str, text: bytes) -> str:
    return hmac.new(secret.encode(), text, hashlib.sha256).hexdigest()


class Records(logging.Handler):
    """Every record, message and exception text, as the formatters would write them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(f"{record.levelname} {record.name}: {text}")


def scan(lines: list[str], forbidden: set[str]) -> None:
    for line in lines:
        for word in forbidden:
            assert word not in line, f"secret in a log line: {line[:300]!r}"
        assert not SIG_RE.search(line), f"signature in a log line: {line[:300]!r}"


# --------------------------------------------------------------------- nothing signed leaves


async def test_paper_mode_never_sends_a_signature_or_key_upstream(
    client: TestClient, fake: FakeMexc, clock: FixedClock
) -> None:
    caller = Caller(client, KEY, SECRET, clock)
    # pymexc style: the key header on every public call, klines and avgPrice signed
    public = ["/api/v3/ping", "/api/v3/time", "/api/v3/exchangeInfo", "/api/v3/depth",
              "/api/v3/trades", "/api/v3/klines", "/api/v3/avgPrice", "/api/v3/ticker/price",
              "/api/v3/ticker/24hr", "/api/v3/ticker/bookTicker", "/api/v3/aggTrades",
              "/api/v3/defaultSymbols", "/api/v3/unknownPublicThing", "/api/v1/contract/detail"]
    for path in public:
        for params in ({}, {"symbol": "BTCUSDT", "interval": "5m"}):
            status, _ctype, _body = await caller.raw("GET", path, params)
            assert status < 500, path
            resp = await client.get(f"{path}?symbol=BTCUSDT", headers={"X-MEXC-APIKEY": KEY})
            assert resp.status < 500
    # two signatures, the signature first, odd header spellings
    ts = clock.now_ms()
    for q, hdr in [(f"signature={'a' * 64}&symbol=BTCUSDT&timestamp={ts}", "x-mexc-apikey"),
                   (f"symbol=BTCUSDT&signature={'b' * 64}&signature={'c' * 64}", "X-Mexc-ApiKey"),
                   (f"symbol=BTCUSDT&timestamp={ts}&signature=", "X-MEXC-APIKEY")]:
        await client.get(f"/api/v3/klines?{q}&interval=1m", headers={hdr: KEY})
    # every signed call the engine serves, and the signed ones it refuses (wallet)
    for method, path, params in [
        ("POST", "/api/v3/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                   "quantity": "0.001", "price": "80000"}),
        ("POST", "/api/v3/order/test", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                        "quantity": "0.001"}),
        ("GET", "/api/v3/account", {}), ("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"}),
        ("GET", "/api/v3/allOrders", {"symbol": "BTCUSDT"}),
        ("GET", "/api/v3/myTrades", {"symbol": "BTCUSDT"}),
        ("GET", "/api/v3/tradeFee", {"symbol": "BTCUSDT"}), ("GET", "/api/v3/selfSymbols", {}),
        ("GET", "/api/v3/capital/config/getall", {}), ("POST", "/api/v3/userDataStream", {}),
        ("DELETE", "/api/v3/openOrders", {"symbol": "BTCUSDT"}),
        ("POST", "/api/v3/capital/withdraw", {"coin": "USDT", "address": "x", "amount": "1"}),
        ("POST", "/api/v3/capital/withdraw/apply", {"coin": "USDT", "address": "x", "amount": "1"}),
        ("GET", "/api/v3/capital/deposit/address", {"coin": "USDT"}),
        ("POST", "/api/v3/capital/transfer", {"fromAccountType": "SPOT"}),
        ("GET", "/api/v3/sub-account/list", {}), ("POST", "/api/v3/sub-account/virtualSubAccount", {}),
        ("GET", "/api/v3/rebate/taxQuery", {}), ("POST", "/api/v1/private/order/submit", {}),
    ]:
        status, _ctype, data = await caller.raw(method, path, params)
        assert status < 500, (path, data)
    assert len(fake.seen) > 20
    assert fake.signed_requests() == []
    assert all("signature" not in s.query.lower() for s in fake.seen)
    assert all(KEY not in json.dumps(s.headers) and KEY not in s.query for s in fake.seen)
    assert not any(s.path.startswith(("/api/v3/capital", "/api/v3/sub-account", "/api/v1/private",
                                      "/api/v3/order", "/api/v3/account")) for s in fake.seen)
    record_figures("security: upstream", upstream_requests_seen=len(fake.seen), signed_seen=0)


# --------------------------------------------------------------------- logs


async def test_no_secret_signature_or_full_key_in_any_log_record(
    aiohttp_client: Any, aiohttp_server: Any, tmp_path: Path
) -> None:
    records = Records()
    root = logging.getLogger()
    old = root.level
    root.addHandler(records)
    root.setLevel(logging.DEBUG)
    signatures: set[str] = set()
    try:
        fake = FakeMexc()
        server = await aiohttp_server(fake.app())
        base = str(server.make_url("")).rstrip("/")
        clock = FixedClock(NOW)
        app = create_app(make_settings(tmp_path / "p", base, reraise_unexpected=False), clock=clock)
        client = await aiohttp_client(app)

        async def call(method: str, target: str, body: bytes = b"", key: str = KEY, secret: str = SECRET,
                       c: TestClient = client) -> int:
            path, q = target.split("?", 1)
            s = sig(secret, q.encode() + body)
            signatures.add(s)
            url = c.make_url("").join(URL(f"{path}?{q}&signature={s}", encoded=True))
            resp = await c.session.request(method, url, data=body or None,
                                           headers={"X-MEXC-APIKEY": key, "Content-Type": "application/json"})
            await resp.read()
            return resp.status

        ts = f"timestamp={NOW}"
        order = "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=0.001&price=80000"
        assert await call("POST", f"/api/v3/order?{order}&{ts}") == 200
        assert await call("POST", f"/api/v3/order?{ts}", f"{order}&recvWindow=5000".encode()) == 200
        assert await call("POST", f"/api/v3/order/test?{ts}", json.dumps(
            {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "quantity": "0.001",
             "price": "99000"}).encode()) == 200
        await call("GET", f"/api/v3/account?{ts}", secret="wrong")  # 700002
        await call("GET", f"/api/v3/account?timestamp={NOW - 10**6}")  # 700003
        await call("GET", f"/api/v3/account?{ts}", key=LIVE_KEY, secret=LIVE_SECRET)  # unknown key
        await call("GET", f"/api/v3/account?{ts}", key=KEY2, secret=SECRET)  # another's secret
        await call("POST", f"/api/v3/order?{order.replace('0.001', '1000')}&{ts}")  # insufficient
        await call("POST", f"/api/v3/capital/withdraw?coin=USDT&{ts}")  # refused in paper
        await call("GET", f"/api/v3/order?orderId=%ff&{ts}", b"orderId=\xff")  # illegal bytes
        fake.faults["*"] = Fault(status=502, body="<html>bad gateway</html>", content_type="text/html")
        await call("POST", f"/api/v3/order?{order}&{ts}")  # 30010
        fake.faults.clear()

        def boom(*_a: Any, **_k: Any) -> Any:
            raise RuntimeError("a bug")

        real = app[keys.SERVICE].balances
        app[keys.SERVICE].balances = boom  # type: ignore[method-assign]
        assert await call("GET", f"/api/v3/account?{ts}") == 500
        app[keys.SERVICE].balances = real  # type: ignore[method-assign]

        # live mode: a real-looking key and signature are forwarded, never logged
        live = create_app(make_settings(tmp_path / "l", base, live=LiveSettings(enabled=True), mode="live"),
                          clock=clock)
        live_client = await aiohttp_client(live)
        await call("POST", f"/api/v3/order?{order}&{ts}", key=LIVE_KEY, secret=LIVE_SECRET, c=live_client)
        await call("GET", f"/api/v3/account?{ts}", key=LIVE_KEY, secret=LIVE_SECRET, c=live_client)
        await app[keys.STORE].flush()
    finally:
        root.removeHandler(records)
        root.setLevel(old)
    assert len(records.lines) > 20
    assert any("request_id=" in line for line in records.lines)  # the 500 was logged...
    lines = records.lines
    scan(lines, {KEY, SECRET, KEY2, SECRET2, LIVE_KEY, LIVE_SECRET, *signatures})
    record_figures("security: in-process logs", log_records_scanned=len(lines),
                   signatures_sent=len(signatures))


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a LISTEN socket on `port`, from /proc/net/tcp{,6}."""
    out: set[str] = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            parts = row.split()
            addr, p = parts[1].split(":")
            if int(p, 16) == port and parts[3] == "0A":
                if len(addr) == 8:
                    out.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(addr)[::-1]))
                else:
                    out.add(addr)
    return out


def raw_http(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
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


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_real_process_logs_no_secret_even_for_malformed_http(tmp_path: Path, fmt: str) -> None:
    """`python -m proxy` as deployed (its logging setup), at DEBUG with the access log:
    aiohttp logs a malformed request with its raw request line and headers; the
    sidecar's log filter must redact the signature and key in that exception text too.
    Also: with no host configured it listens on 127.0.0.1 only."""
    with FakeMexcThread() as fake:
        port = free_port()
        cfg = {
            "server": {"port": port},  # no host: the default
            "upstream": {"base_url": fake.url, "timeout_s": 2, "market_cache_ms": 0, "ws_url": None},
            "storage": {"path": str(tmp_path / "db.sqlite3")},
            "logging": {"level": "DEBUG", "format": fmt, "access_log": True},
            "accounts": [{"api_key": KEY, "secret_key": SECRET,
                          "balances": {"USDT": "10000", "BTC": "1"}}],
            "dashboard": {"enabled": False},
        }
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PAPER_TRADING", "PROXY_"))}
        err = (tmp_path / "stderr.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "proxy", "--config", str(tmp_path / "config.yaml")],
                                cwd=ROOT, env=env, stdout=err, stderr=subprocess.STDOUT)
        err.close()
        signatures: set[str] = set()
        try:
            deadline = time.monotonic() + 20
            while True:
                assert proc.poll() is None, (tmp_path / "stderr.log").read_text()[-2000:]
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "sidecar did not start"
                    time.sleep(0.02)  # polling another process's port
            assert listening_addresses(port) == {"127.0.0.1"}

            def signed_get(target: str, secret: str = SECRET, key: str = KEY) -> bytes:
                path, q = target.split("?", 1)
                s = sig(secret, q.encode())
                signatures.add(s)
                return raw_http(port, f"GET /api/v3/{path}?{q}&signature={s} HTTP/1.1\r\nHost: x\r\n"
                                      f"X-MEXC-APIKEY: {key}\r\nConnection: close\r\n\r\n".encode())

            ts = f"timestamp={int(time.time() * 1000)}"
            assert b" 200 " in signed_get(f"account?{ts}")
            signed_get(f"account?{ts}", secret="wrong")
            signed_get(f"account?{ts}", key=LIVE_KEY, secret=LIVE_SECRET)
            signed_get(f"klines?symbol=BTCUSDT&interval=1m&{ts}")
            fault = Fault(status=503, body="<html/>", content_type="text/html")
            fake.call(fake.fake.faults.__setitem__, "*", fault)
            signed_get(f"depth?symbol=BTCUSDT&{ts}")
            fake.call(fake.fake.faults.clear)
            s = "ab" * 32
            signatures.add(s)
            line = f"GET /api/v3/account?{ts}&signature={s}"
            malformed = [
                f"{line}\x01 HTTP/1.1\r\nHost: x\r\nX-MEXC-APIKEY: {KEY}\r\n\r\n",
                f"{line} HTTP/1.1\r\nHost: x\r\nX-MEXC-APIKEY: {KEY}\x01\r\n\r\n",
                f"{line} HTTP/1.1\r\nHost: x\r\nX-MEXC-APIKEY {LIVE_KEY}\r\n\r\n",
                f"G\x00T /api/v3/account?signature={s} HTTP/1.1\r\nX-MEXC-APIKEY: {KEY}\r\n\r\n",
                f"GET /api/v3/account?signature={s}&{'x' * 40000} HTTP/1.1\r\n\r\n",
                f"GET /api/v3/account?signature={s} HTTP/1.1\r\nX-MEXC-APIKEY: {KEY}\r\n"
                f"Content-Length: nope\r\n\r\n",
                f"POST /api/v3/order?{ts} HTTP/1.1\r\nX-MEXC-APIKEY: {KEY}\r\n"
                "Transfer-Encoding: chunked\r\n\r\n"
                f"zz\r\nsignature={s}\r\n0\r\n\r\n",
            ]
            for m in malformed:
                answer = raw_http(port, m.encode("latin-1"))
                assert answer.startswith(b"HTTP/1.") and b" 500 " not in answer.split(b"\r\n")[0]
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
    text = (tmp_path / "stderr.log").read_text(errors="replace")
    assert "Error handling request" in text  # aiohttp did log the malformed requests...
    assert "<redacted>" in text  # ...redacted
    assert "mx0v...0001" in text or "mx0v" in text  # the unknown key, masked
    scan(text.splitlines(), {KEY, SECRET, LIVE_KEY, LIVE_SECRET, *signatures})
    assert "Traceback" not in text or "aiohttp" in text  # only aiohttp's own parse errors
    record_figures(f"security: process logs ({fmt})", log_lines_scanned=len(text.splitlines()),
                   malformed_requests=len(malformed), signatures_sent=len(signatures))


# --------------------------------------------------------------------- defaults


def test_default_bind_is_loopback() -> None:
    assert ServerSettings().host == "127.0.0.1"
    assert Settings().server.host == "127.0.0.1"
    assert load_settings(None, {}).server.host == "127.0.0.1"
    committed = yaml.safe_load((ROOT / "config.yaml").read_text())
    assert committed["server"]["host"] == "127.0.0.1"
    assert load_settings(None, {}).mode == "paper"


# --------------------------------------------------------------------- admin API


STATE_CHANGES = [
    ("/admin/api/accounts/1/fund", {"asset": "USDT", "amount": "5"}),
    ("/admin/api/accounts/1/balance", {"asset": "USDT", "amount": "5"}),
    ("/admin/api/accounts/1/reset", {}),
    ("/admin/api/mode", {"mode": "paper"}),
]


async def admin_app(aiohttp_client: Any, fake_server: Any, tmp_path: Path, **server: Any) -> Any:
    settings = make_settings(tmp_path, str(fake_server.make_url("")).rstrip("/"),
                             server=ServerSettings(**server))
    app = create_app(settings, clock=FixedClock(NOW))
    return app, await aiohttp_client(app)


async def balances_of(app: Any) -> Any:
    return tuple(app[keys.SERVICE].balances(1))


@pytest.mark.parametrize("path,payload", STATE_CHANGES)
async def test_admin_changes_need_json_content_type(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, path: str, payload: dict[str, str]
) -> None:
    """A cross-site form cannot send application/json without a CORS preflight."""
    app, client = await admin_app(aiohttp_client, fake_server, tmp_path)
    before = await balances_of(app)
    for ctype in (None, "application/x-www-form-urlencoded", "text/plain", "multipart/form-data"):
        headers = {"Content-Type": ctype} if ctype else {}
        resp = await client.post(path, data=json.dumps(payload), headers=headers)
        assert resp.status == 415, (ctype, await resp.text())
        assert (await resp.json())["status"] == 415
    assert await balances_of(app) == before
    resp = await client.post(path, json=payload)
    assert resp.status == 200, await resp.text()


@pytest.mark.parametrize("path,payload", STATE_CHANGES)
async def test_admin_changes_need_the_token_on_a_non_loopback_host(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, path: str, payload: dict[str, str],
    remote_connection: Any,
) -> None:
    app, client = await admin_app(aiohttp_client, fake_server, tmp_path, host="0.0.0.0",
                                  admin_token="s3cret-admin-token")
    before = await balances_of(app)
    for headers in ({}, {"X-Admin-Token": "wrong"}, {"Authorization": "Bearer wrong"},
                    {"Authorization": "s3cret-admin-token"}, {"X-Admin-Token": ""},
                    {"X-Admin-Token": "s3cret-admin-token-and-more"},
                    {"X-Admin-Token": "S3CRET-ADMIN-TOKEN"}):
        resp = await client.post(path, json=payload, headers=headers)
        assert resp.status == 401, (headers, await resp.text())
    assert await balances_of(app) == before
    for headers in ({"X-Admin-Token": "s3cret-admin-token"},
                    {"Authorization": "Bearer s3cret-admin-token"}):
        resp = await client.post(path, json=payload, headers=headers)
        assert resp.status == 200, await resp.text()


async def test_non_loopback_without_a_token_refuses_every_change(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, remote_connection: Any
) -> None:
    app, client = await admin_app(aiohttp_client, fake_server, tmp_path, host="0.0.0.0")
    before = await balances_of(app)
    for path, payload in STATE_CHANGES:
        for headers in ({}, {"X-Admin-Token": ""}, {"Authorization": "Bearer "}):
            resp = await client.post(path, json=payload, headers=headers)
            assert resp.status == 401
    assert await balances_of(app) == before


@pytest.mark.parametrize("amount", ["1e999999999", "-1", "0", "NaN", "Infinity", "1e-999999999",
                                    "abc", "", "9" * 5000, {"x": 1}, [1], None])
async def test_admin_fund_rejects_bad_amounts_without_a_500(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, amount: Any
) -> None:
    app, client = await admin_app(aiohttp_client, fake_server, tmp_path)
    before = await balances_of(app)
    resp = await client.post("/admin/api/accounts/1/fund", json={"asset": "USDT", "amount": amount})
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["status"] == 400
    assert await balances_of(app) == before


# --------------------------------------------------------------------- the mode rule


@pytest.mark.parametrize("live_enabled,env,error", [
    (True, {}, "PAPER_TRADING=false is missing"),
    (False, {"PAPER_TRADING": "false"}, "live.enabled: true is missing"),
    (True, {"PAPER_TRADING": "0"}, None),
    (False, {}, None),
    (True, {"PAPER_TRADING": "true"}, "PAPER_TRADING=false is missing"),
])
def test_live_needs_both_halves_of_the_mode_rule(
    live_enabled: bool, env: dict[str, str], error: str | None
) -> None:
    data = {"live": {"enabled": live_enabled}}
    if error is None:
        mode = settings_from_mapping(data, env).mode
        assert mode == ("live" if live_enabled else "paper")
    else:
        with pytest.raises(ConfigError, match=re.escape(error.split(" is missing")[0])):
            settings_from_mapping(data, env)


async def test_admin_api_cannot_switch_to_live_unless_armed(
    client: TestClient, fake: FakeMexc, clock: FixedClock
) -> None:
    for payload in ({"mode": "live"}, {"mode": "LIVE"}, {"mode": "live "}):
        resp = await client.post("/admin/api/mode", json=payload)
        assert resp.status in (400, 403), await resp.text()
    resp = await client.post("/admin/api/mode", json={"mode": "live"})
    assert resp.status == 403
    assert await (await client.get("/admin/api/mode")).json() == {"mode": "paper", "live_armed": False}
    status, ack = await Caller(client, KEY, SECRET, clock).call("POST", "/api/v3/order", {
        "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "80000"})
    assert status == 200 and ack["orderId"].startswith("C02__")  # the paper engine answered
    assert fake.signed_requests() == []


async def test_dashboard_cannot_switch_to_live_unless_armed(client: TestClient) -> None:
    """Without a CSRF token the form is refused; with one, live is still refused."""
    resp = await client.post("/dashboard/settings/mode", data={"mode": "live", "confirm": "yes"},
                             allow_redirects=False)
    assert resp.status in (400, 403), resp.status
    page = await client.get("/dashboard/settings")
    token = re.search(r'name="csrf_token"\s+value="([0-9a-f]+)"', await page.text())
    if token is not None:
        resp = await client.post("/dashboard/settings/mode", allow_redirects=False,
                                 data={"mode": "live", "confirm": "yes", "csrf_token": token.group(1)})
        assert resp.status == 403, resp.status
    assert (await (await client.get("/admin/api/mode")).json())["mode"] == "paper"


@pytest.mark.live_upstream  # forwards signed requests to the fake on purpose
async def test_live_forwards_signed_requests_unchanged_and_paper_never(
    aiohttp_client: Any, fake_server: Any, fake: FakeMexc, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, str(fake_server.make_url("")).rstrip("/"),
                             live=LiveSettings(enabled=True), mode="live")
    client = await aiohttp_client(create_app(settings, clock=FixedClock(NOW)))
    sent = []
    for method, q, body in [
        ("POST", f"symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=1&timestamp={NOW}", b""),
        ("GET", f"timestamp={NOW}&recvWindow=5000", b""),
        ("DELETE", f"symbol=BTCUSDT&orderId=C02__1&timestamp={NOW}", b""),
        ("POST", f"coin=USDT&address=a%2Cb&amount=1&timestamp={NOW}", b"memo=x%20y"),
    ]:
        path = {"POST": "/api/v3/order", "GET": "/api/v3/account", "DELETE": "/api/v3/order"}[method]
        if body:
            path = "/api/v3/capital/withdraw/apply"
        q = f"{q}&signature={sig(LIVE_SECRET, q.encode() + body)}"
        url = client.make_url("").join(URL(f"{path}?{q}", encoded=True))
        before = len(fake.seen)
        resp = await client.session.request(method, url, data=body or None,
                                            headers={"X-MEXC-APIKEY": LIVE_KEY})
        await resp.read()
        got = fake.seen[before:]
        assert len(got) == 1, [s.path for s in got]
        assert (got[0].method, got[0].path, got[0].query, got[0].body) == (method, path, q, body)
        assert got[0].headers.get("X-MEXC-APIKEY") == LIVE_KEY
        sent.append(path)
    # back to paper at runtime: signed requests stay local from now on
    resp = await client.post("/admin/api/mode", json={"mode": "paper"})
    assert resp.status == 200
    before = len(fake.seen)
    q = f"timestamp={NOW}"
    resp = await client.get(f"/api/v3/account?{q}&signature={sig(LIVE_SECRET, q.encode())}",
                            headers={"X-MEXC-APIKEY": LIVE_KEY})
    assert (resp.status, (await resp.json())["code"]) == (400, 10072)  # not a paper key
    assert fake.seen[before:] == []
    # and, armed at start, live may be switched on again (with the explicit confirmation)
    resp = await client.post("/admin/api/mode", json={"mode": "live", "confirm": "LIVE"})
    assert resp.status == 200
    assert (await (await client.get("/admin/api/mode")).json())["mode"] == "live"
    record_figures("security: live passthrough", forwarded_unchanged=len(sent))
