"""The TLS listener next to the plain one, over real sockets on 127.0.0.1: one app on both
(REST, dashboard, admin, /healthz, WebSocket upgrades), trust decided per request, MEXC's
host names limited to MEXC's surface, no certificate for a name we did not configure, no
plain-HTTP fallback, and the loop protection (proxy/loopguard.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import re
import ssl
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from conftest import KEY, NOW, SECRET, make_settings
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from mexc_client import ccxt_query
from process_support import free_port

from proxy import keys
from proxy.accesslog import SafeAccessLogger
from proxy.app import create_app
from proxy.clock import FixedClock
from proxy.config import ServerSettings, Settings, TlsSettings, UpstreamSettings
from proxy.listen import Bound, start_sites
from proxy.loopguard import LOOP_HEADER, UpstreamResolver
from proxy.tls import TlsServer

ECHO = "/ws-echo-test"  # a WebSocket route added for these tests only (GET /ws is issue 15's)


async def _echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        await ws.send_str(f"echo {msg.data} secure={request.secure}")
    return ws


class Served:
    """create_app(settings) on a plain and a TLS listener, as `python -m proxy` runs it."""

    def __init__(self, settings: Settings, clock: FixedClock, ws_route: bool = False) -> None:
        self.settings = settings
        self.app = create_app(settings, clock=clock)
        if ws_route:
            self.app.router.add_get(ECHO, _echo)
        self.tls = TlsServer(settings)
        self.runner = web.AppRunner(self.app, access_log_class=SafeAccessLogger, shutdown_timeout=0.5)
        self.bound: list[Bound] = []

    async def __aenter__(self) -> Served:
        self.tls.load()
        await self.runner.setup()
        self.bound = await start_sites(self.runner, self.settings, self.tls)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.tls.stop()
        await self.runner.cleanup()

    def port(self, scheme: str) -> int:
        return next(b.port for b in self.bound if b.scheme == scheme)

    @property
    def ca(self) -> Path:
        assert self.tls.ca is not None
        return self.tls.ca.path

    def trusting(self) -> ssl.SSLContext:
        """A client context that trusts our CA and nothing else."""
        return ssl.create_default_context(cafile=str(self.ca))


def tls_settings(tmp_path: Path, base_url: str, **server: Any) -> Settings:
    s = make_settings(tmp_path, base_url)
    tls = server.pop("tls", TlsSettings(port=0, names=("mexc-paper",)))
    return replace(s, server=ServerSettings(host="127.0.0.1", port=server.pop("port", 0), tls=tls, **server))


def session(ctx: ssl.SSLContext | None = None, **kw: Any) -> aiohttp.ClientSession:
    """A client that reaches api.mexc.com, wbs-api.mexc.com and localhost at 127.0.0.1
    (what a hosts file does for a real bot)."""
    pins = {"api.mexc.com": "127.0.0.1", "wbs-api.mexc.com": "127.0.0.1", "localhost": "127.0.0.1",
            "mexc-paper": "127.0.0.1", "evil.example": "127.0.0.1"}
    connector = aiohttp.TCPConnector(ssl=ctx if ctx is not None else True, resolver=UpstreamResolver(pins),
                                     use_dns_cache=False)
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True), **kw)


@pytest.fixture
async def served(fake_server: Any, tmp_path: Path, clock: FixedClock) -> AsyncIterator[Served]:
    url = str(fake_server.make_url("")).rstrip("/")
    async with Served(tls_settings(tmp_path, url), clock, ws_route=True) as s:
        yield s


def signed_query(params: dict[str, str]) -> str:
    return ccxt_query(params, SECRET, ts=NOW)


# --------------------------------------------------------------------------- one app, two listeners


async def test_the_tls_listener_serves_what_the_plain_one_serves(served: Served) -> None:
    tls = f"https://api.mexc.com:{served.port('https')}"
    plain = f"http://127.0.0.1:{served.port('http')}"
    async with session(served.trusting()) as http:
        async with http.get(f"{tls}/api/v3/ping") as r:
            assert (r.status, await r.json()) == (200, {})
        async with http.get(f"{tls}/api/v3/depth?symbol=BTCUSDT&limit=5") as r:
            assert r.status == 200 and (await r.json())["asks"][0] == ["87903.98", "5.12181600"]
        q = signed_query({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001",
                          "price": "80000"})
        async with http.post(f"{tls}/api/v3/order?{q}", headers={"X-MEXC-APIKEY": KEY}) as r:
            assert r.status == 200, await r.text()
            order_id = (await r.json())["orderId"]
        # the order placed over TLS is the plain listener's too: one app, one state
        q = signed_query({"symbol": "BTCUSDT"})
        async with http.get(f"{plain}/api/v3/openOrders?{q}", headers={"X-MEXC-APIKEY": KEY}) as r:
            assert [o["orderId"] for o in await r.json()] == [order_id]
        for base in (tls, plain):
            async with http.get(f"{base}/healthz") as r:
                assert (r.status, (await r.json())["mode"]) == (200, "paper")
        local_tls = f"https://localhost:{served.port('https')}"
        async with http.get(f"{local_tls}/dashboard/") as r:
            assert r.status == 200 and "PAPER TRADING" in await r.text()
        async with http.get(f"{local_tls}/admin/api/accounts") as r:
            assert r.status == 200 and len((await r.json())["accounts"]) == 2


async def test_wss_upgrades_on_the_tls_listener(served: Served) -> None:
    async with session(served.trusting()) as http:
        async with http.ws_connect(f"wss://wbs-api.mexc.com:{served.port('https')}{ECHO}") as ws:
            await ws.send_str("PING")
            assert await ws.receive_str(timeout=5) == "echo PING secure=True"
        async with http.ws_connect(f"ws://127.0.0.1:{served.port('http')}{ECHO}") as ws:
            await ws.send_str("PING")
            assert await ws.receive_str(timeout=5) == "echo PING secure=False"


async def test_mexc_host_names_serve_no_dashboard_and_no_admin_api(served: Served) -> None:
    """Under MEXC's names: the MEXC API, /healthz and /metrics, never the dashboard or the
    admin API (proxy/trust.py); the certificate's configured names are trusted over TLS."""
    tls = f"https://api.mexc.com:{served.port('https')}"
    plain = f"http://127.0.0.1:{served.port('http')}"
    async with session(served.trusting()) as http:
        for path in ("/dashboard/", "/dashboard/settings", "/admin/api/accounts"):
            async with http.get(f"{tls}{path}", allow_redirects=False) as r:
                assert r.status == 403, path
                assert "this Host is not served here" in await r.text()
        async with http.post(f"{tls}/admin/api/accounts/1/reset", json={}) as r:
            assert r.status == 403
        for path in ("/healthz", "/metrics", "/api/v3/time"):
            async with http.get(f"{tls}{path}") as r:
                assert r.status == 200, path
        # the Host decides, on either listener
        async with http.get(f"{plain}/dashboard/", headers={"Host": "wbs-api.mexc.com"}) as r:
            assert r.status == 403
        # a name of server.tls.names: trusted over TLS only (only our certificate holds it)
        async with http.get(f"https://mexc-paper:{served.port('https')}/dashboard/") as r:
            assert r.status == 200
        async with http.get(f"{plain}/dashboard/", headers={"Host": "mexc-paper:8080"}) as r:
            assert r.status == 403


async def test_the_dashboard_cookie_is_secure_on_the_tls_listener_only(served: Served) -> None:
    async with session(served.trusting()) as http:
        async with http.get(f"https://localhost:{served.port('https')}/dashboard/settings") as r:
            tls_cookie = r.headers["Set-Cookie"]
            page = await r.text()
        async with http.get(f"http://127.0.0.1:{served.port('http')}/dashboard/settings") as r:
            plain_cookie = r.headers["Set-Cookie"]
    assert tls_cookie.startswith("mexc_paper_csrf_tls=") and "Secure" in tls_cookie
    assert "HttpOnly" in tls_cookie and "SameSite=Strict" in tls_cookie
    assert plain_cookie.startswith("mexc_paper_csrf=") and "Secure" not in plain_cookie

    # a form over TLS works with the TLS cookie: reset account 1 (loopback, no token needed)
    token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page)
    assert token is not None
    async with session(served.trusting()) as http:
        base = f"https://localhost:{served.port('https')}"
        async with http.get(f"{base}/dashboard/settings") as r:
            token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', await r.text())
        assert token is not None
        async with http.post(f"{base}/dashboard/accounts/1/reset",
                             data={"csrf_token": token.group(1), "confirm": "yes"},
                             allow_redirects=False) as r:
            assert r.status == 303, await r.text()


async def test_a_loopback_connection_may_change_state_without_a_token_on_either_listener(
    served: Served,
) -> None:
    async with session(served.trusting()) as http:
        for base in (f"https://localhost:{served.port('https')}", f"http://127.0.0.1:{served.port('http')}"):
            async with http.post(f"{base}/admin/api/accounts/2/fund",
                                 json={"asset": "USDT", "amount": "1"}) as r:
                assert r.status == 200, await r.text()
    balances = {b.asset: b.free for b in served.app[keys.SERVICE].balances(2)}
    assert str(balances["USDT"]) == "502"


async def test_a_non_loopback_connection_needs_the_token_on_the_tls_listener_too(
    served: Served, remote_connection: Any
) -> None:
    async with session(served.trusting()) as http:
        async with http.post(f"https://localhost:{served.port('https')}/admin/api/accounts/2/fund",
                             json={"asset": "USDT", "amount": "1"}) as r:
            assert r.status == 401


# --------------------------------------------------------------------------- what is refused


async def test_a_client_that_does_not_trust_our_ca_is_refused(served: Served) -> None:
    async with session(ssl.create_default_context()) as http:  # the system's roots only
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await http.get(f"https://api.mexc.com:{served.port('https')}/api/v3/ping")
    # no plain-HTTP answer on the TLS port, no TLS on the plain port: nothing falls back
    async with session() as http:
        with pytest.raises(aiohttp.ClientError) as err:
            await http.get(f"http://127.0.0.1:{served.port('https')}/api/v3/ping")
        assert not isinstance(err.value, aiohttp.ClientResponseError)
    async with session(served.trusting()) as http:
        with pytest.raises(aiohttp.ClientConnectorSSLError):
            await http.get(f"https://localhost:{served.port('http')}/api/v3/ping")


async def _handshake(port: int, ctx: ssl.SSLContext, name: str) -> ssl.SSLObject:
    _reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=name), 10)
    obj = writer.get_extra_info("ssl_object")
    writer.close()
    return obj


async def test_no_certificate_is_served_for_a_name_we_did_not_configure(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    """One certificate, for the configured names only: a client that asks for another name
    gets that one and refuses it (the server logs the name once)."""
    port = served.port("https")
    for name in ("api.mexc.com", "wbs-api.mexc.com", "localhost", "mexc-paper", "API.MEXC.COM"):
        obj = await _handshake(port, served.trusting(), name)
        assert obj.version() in ("TLSv1.2", "TLSv1.3")
    with pytest.raises(ssl.SSLCertVerificationError, match=r"Hostname mismatch.*'evil\.example'"):
        await _handshake(port, served.trusting(), "evil.example")
    async with session(served.trusting()) as http:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await http.get(f"https://evil.example:{port}/api/v3/ping")
    # a client that accepts any certificate sees what it got: nothing for evil.example
    blind = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    blind.check_hostname = False
    blind.verify_mode = ssl.CERT_NONE
    der = (await _handshake(port, blind, "evil.example")).getpeercert(binary_form=True)
    assert der is not None
    san = x509.load_der_x509_certificate(der).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert "evil.example" not in san.get_values_for_type(x509.DNSName)
    assert san.get_values_for_type(x509.DNSName) == ["api.mexc.com", "wbs-api.mexc.com", "localhost",
                                                     "mexc-paper"]
    logged = [r.getMessage() for r in caplog.records if r.name == "proxy.tls"]
    assert len(logged) == 1 and "'evil.example'" in logged[0]


def forged_leaf(ca_dir: Path, out: Path, name: str) -> tuple[Path, Path]:
    """A leaf for `name` signed with our CA's key, as whoever reads ca.key could make one:
    (chain file, key file)."""
    ca_key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), None)
    ca = x509.load_pem_x509_certificate((ca_dir / "ca.crt").read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    try:
        san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        san = x509.DNSName(name)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    chain, key_file = out / f"{name}.crt", out / f"{name}.key"
    pem = serialization.Encoding.PEM
    chain.write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    key_file.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return chain, key_file


@pytest.mark.parametrize("name", ["accounts.google.com", "www.mexc.com", "mexc.com",
                                  "mexc-paper.evil.example", "localhost.evil.example"])
async def test_a_leaf_our_ca_key_signs_for_another_name_is_refused(
    served: Served, tmp_path: Path, name: str
) -> None:
    """The local CA is name-constrained (critical NameConstraints: the leaf's DNS names
    only), so a stolen ca.key cannot impersonate another site to a client that trusts our
    CA. (IP addresses stay unconstrained: BoringSSL, pymexc's curl_cffi, refuses a CA with
    an address constraint; proxy/tls.py `permitted_names`.)"""
    chain, key_file = forged_leaf(served.tls.folder, tmp_path, name)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(chain, key_file)
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ssl.SSLCertVerificationError, match="permitted subtree violation"):
            await _handshake(port, served.trusting(), name)
    finally:
        server.close()
        await server.wait_closed()
    # our own leaf still verifies, for every name it holds
    for good in ("api.mexc.com", "wbs-api.mexc.com", "localhost", "mexc-paper"):
        await _handshake(served.port("https"), served.trusting(), good)


@pytest.mark.parametrize("how", ["untrusting-client", "tcp-connect-close"])
async def test_failed_tls_handshakes_release_their_connection_slot(
    fake_server: Any, tmp_path: Path, clock: FixedClock, how: str
) -> None:
    """A TLS connection whose handshake never completes (a client that does not trust our
    CA, a port check) takes no slot of server.max_connections: asyncio never tells the
    app's protocol about it, so a slot counted at accept time was never given back and
    max_connections such connections locked both listeners out (503) until a restart."""
    url = str(fake_server.make_url("")).rstrip("/")
    settings = tls_settings(tmp_path, url)
    settings = replace(settings, server=replace(settings.server, max_connections=3))
    async with Served(settings, clock) as served:
        port = served.port("https")
        for _ in range(6):
            if how == "untrusting-client":
                with pytest.raises(ssl.SSLCertVerificationError):
                    await asyncio.open_connection(
                        "127.0.0.1", port, ssl=ssl.create_default_context(), server_hostname="localhost")
            else:
                _r, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                await w.wait_closed()
        async with session(served.trusting()) as http:
            for base in (f"http://127.0.0.1:{served.port('http')}", f"https://localhost:{port}"):
                async with http.get(f"{base}/healthz") as r:
                    assert r.status == 200, await r.text()


# --------------------------------------------------------------------------- the loop


async def test_loop_by_address_answers_the_clear_error_without_connecting(
    fake: Any, tmp_path: Path, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    """MEXC's host resolves to this sidecar's own TLS listener (`upstream.resolve` stands
    in for a hosts file here): public calls answer 503 naming the loop, fast, one log line."""
    tls_port = free_port()
    s = tls_settings(tmp_path, "http://127.0.0.1:9", tls=TlsSettings(port=tls_port))
    s = replace(s, upstream=UpstreamSettings(
        base_url=f"https://api.mexc.com:{tls_port}", timeout_s=2, connect_timeout_s=1,
        market_cache_ms=0, resolve={"api.mexc.com": "127.0.0.1"}))
    caplog.set_level(logging.WARNING)
    async with Served(s, clock) as served, session(served.trusting()) as http:
        for base in (f"http://127.0.0.1:{served.port('http')}", f"https://localhost:{tls_port}"):
            for path in ("/api/v3/ping", "/api/v3/depth?symbol=BTCUSDT"):
                async with asyncio.timeout(5):
                    r = await http.get(f"{base}{path}")
                body = await r.json()
                assert r.status == 503, body
                assert body["code"] == 503
                assert "upstream loop: upstream.base_url https://api.mexc.com:" in body["msg"]
                assert "leads back to this sidecar" in body["msg"]
        guard = served.app[keys.LOOP_GUARD]
        assert guard.detections == 4
        # the upstream counts as down, for the loop's reason
        async with http.get(f"http://127.0.0.1:{served.port('http')}/healthz") as r:
            health = await r.json()
        assert (r.status, health["status"], health["upstream"]["ok"]) == (200, "degraded", False)
        assert "upstream loop" in health["reasons"][0]
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING and "loop" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].name == "proxy.loopguard"
    assert "api.mexc.com resolves to 127.0.0.1:" in lines[0].getMessage()


async def test_loop_by_mark_a_request_of_our_own_upstream_client_is_refused(
    tmp_path: Path, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A loop the address check cannot see (a port forward, a proxy): the request arrives
    with this process's mark, is refused with 508, and the caller gets the 503."""
    port = free_port()
    s = tls_settings(tmp_path, f"http://127.0.0.1:{port}", port=port)
    caplog.set_level(logging.WARNING)
    async with Served(s, clock) as served, session() as http:
        guard = served.app[keys.LOOP_GUARD]
        guard.listening = []  # as if the loop went through an address we do not listen on
        base = f"http://127.0.0.1:{port}"
        for _ in range(3):
            async with asyncio.timeout(5):
                r = await http.get(f"{base}/api/v3/ticker/price?symbol=BTCUSDT")
            body = await r.json()
            assert (r.status, body["code"]) == (503, 503)
            assert "upstream loop" in body["msg"]
        # what the looped request itself got: 508, MEXC-shaped, our mark echoed
        async with http.get(f"{base}/api/v3/ping", headers={LOOP_HEADER: guard.mark}) as r:
            assert r.status == 508
            assert r.headers[LOOP_HEADER] == guard.mark
            body = await r.json()
            assert body["code"] == 508 and body["msg"].startswith("Loop Detected")
        # another sidecar's mark is not a loop of ours
        async with http.get(f"{base}/healthz", headers={LOOP_HEADER: "0" * 32}) as r:
            assert r.status == 200
        assert guard.detections == 4  # each looped call once (on arrival), then the direct one
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING and "loop" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].name == "proxy.loopguard" and "public calls answer 503" in lines[0].getMessage()
