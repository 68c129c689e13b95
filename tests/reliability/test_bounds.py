"""What a client cannot hold open (review of issues 17 and 19): a request body trickled after
a complete head (server.header_timeout_s covered the head only), and a TLS connection
that never completes its handshake (asyncio's default timeout is 60 s). Both held a slot of
server.max_connections for as long as the client liked."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
from fake_upstream import FakeMexcThread
from process_support import free_port
from relsupport import KEY, base_config, make_settings, start_process, stop_process

from proxy import bodies, keys
from proxy.app import create_app
from proxy.clock import FixedClock
from proxy.config import LiveSettings, ServerSettings, UpstreamSettings

ROOT = Path(__file__).resolve().parents[2]
ANNOUNCED = 1000  # bytes of body the head promises; the client sends one every 0.2 s


def slow_head(method: str, target: str, content_type: str, **headers: str) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: localhost", f"Content-Type: {content_type}",
             f"Content-Length: {ANNOUNCED}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def trickle_body(port: int, head: bytes, deadline: float) -> tuple[str, bytes]:
    """Send a complete request head, then its body one byte every 0.2 s (the attack's
    pace), reading what comes back, until the server closes the connection or the
    deadline passes. Returns ("closed" | "reset" | "open", everything read)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    got = b""
    try:
        writer.write(head)
        while time.monotonic() < deadline:
            try:
                chunk = await asyncio.wait_for(reader.read(4096), 0.2)
            except TimeoutError:
                writer.write(b"a")
                await writer.drain()
                continue
            if not chunk:
                return "closed", got
            got += chunk
        return "open", got
    except ConnectionError:
        return "reset", got
    finally:
        writer.close()


async def silent(port: int, deadline: float) -> str:
    """Connect and send nothing (no TLS ClientHello either): how did it end?"""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.monotonic() < deadline:
            try:
                chunk = await asyncio.wait_for(reader.read(4096), 0.2)
            except TimeoutError:
                continue
            return "closed" if not chunk else f"answered {chunk[:40]!r}"
        return "open"
    except ConnectionError:
        return "reset"
    finally:
        writer.close()


def answer(got: bytes) -> tuple[str, Any]:
    head, _, body = got.partition(b"\r\n\r\n")
    status = head.split(b"\r\n")[0].decode()
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode(errors="replace")


MEXC_408 = {"code": 408, "msg": "Request Timeout: the request body did not arrive within 0.5 s"}
ADMIN_408 = {"error": "the request body did not arrive within 0.5 s", "status": 408}
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
ORDER = "/api/v3/order?symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=1&timestamp=1"


@pytest.mark.parametrize("mode,method,target,ctype,expected", [
    ("paper", "POST", ORDER, FORM, MEXC_408),                               # authenticate
    ("live", "POST", ORDER, FORM, MEXC_408),                                # forward_live
    ("live", "POST", "/api/v3/capital/withdraw", FORM, MEXC_408),           # live fallback
    ("paper", "POST", "/admin/api/accounts/1/fund", JSON, ADMIN_408),
    ("paper", "POST", "/admin/api/accounts/1/balance", JSON, ADMIN_408),
    ("paper", "POST", "/admin/api/mode", JSON, ADMIN_408),
    ("replay", "POST", "/admin/api/clock", JSON, ADMIN_408),
    ("paper", "POST", "/dashboard/accounts/1/reset", FORM, None),           # the dashboard's forms
    ("paper", "POST", "/dashboard/settings/mode", FORM, None),
], ids=["order", "live-order", "live-fallback", "admin-fund", "admin-balance", "admin-mode",
        "admin-clock", "dashboard-reset", "dashboard-mode"])
async def test_every_body_read_is_bounded_and_the_connection_closed(
    aiohttp_client: Any, tmp_path: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch,
    mode: str, method: str, target: str, ctype: str, expected: Any,
) -> None:
    """A complete request head, then a body one byte at a time: after
    server.header_timeout_s the handler stops waiting, answers 408 (MEXC JSON on /api,
    the admin API's JSON, the dashboard's 408 page) and the server closes the connection,
    whatever the client still sends. Nothing is changed and nothing is forwarded live."""
    monkeypatch.setattr(bodies, "_LINGER_S", 0.1)  # (the real process test keeps its 2 s)
    server = ServerSettings(header_timeout_s=0.5)
    if mode == "replay":
        settings = make_settings(tmp_path, server=server, upstream=UpstreamSettings(
            replay_path=str(ROOT / "cassettes" / "demo.yaml"), replay_mode="step"))
    elif mode == "live":
        # an upstream nobody listens on: a request that got through would fail otherwise
        settings = make_settings(tmp_path, f"http://127.0.0.1:{free_port()}", server=server,
                                 live=LiveSettings(enabled=True), mode="live")
    else:
        settings = make_settings(tmp_path, server=server)
    app = create_app(settings, clock=clock)
    client = await aiohttp_client(app)
    before = [(b.asset, b.free, b.locked) for b in app[keys.SERVICE].balances(1)]
    ending, got = await trickle_body(client.server.port, slow_head(method, target, ctype, **{
        "X-MEXC-APIKEY": KEY}), time.monotonic() + 20)
    assert ending in ("closed", "reset"), (ending, got)
    status, body = answer(got)
    assert status == "HTTP/1.1 408 Request Timeout", got
    if expected is not None:
        assert body == expected
    assert [(b.asset, b.free, b.locked) for b in app[keys.SERVICE].balances(1)] == before
    await app[keys.STORE].flush()
    assert await app[keys.STORE].events(kind="live.request") == []  # nothing forwarded


def test_slow_bodies_and_silent_tls_connections_are_cut_off(tmp_path: Path) -> None:
    """The real process (`python -m proxy`, server.header_timeout_s 1, max_connections 6,
    a TLS listener): four connections trickle an order's body and four open the TLS port
    and never start a handshake. The bodies are answered 408 (MEXC JSON) and closed, the
    TLS connections are closed by the handshake timeout, and the sidecar answers on both
    listeners afterwards. Before: every one of them stayed open (a body for as long as the
    client kept sending, a handshake 60 s), each holding a connection slot."""
    tls_port = free_port()
    with FakeMexcThread() as fake:
        cfg = base_config(fake, tmp_path, header_timeout_s=1, max_connections=6, tls={"port": tls_port})
        cfg["logging"] = {"level": "INFO"}
        proc, port, _ = start_process(tmp_path, cfg)
        try:
            async def attack() -> tuple[list[tuple[str, bytes]], list[str]]:
                deadline = time.monotonic() + 20
                head = slow_head("POST", ORDER, FORM, **{"X-MEXC-APIKEY": KEY})
                bodies = asyncio.gather(*(trickle_body(port, head, deadline) for _ in range(4)))
                handshakes = asyncio.gather(*(silent(tls_port, deadline) for _ in range(4)))
                return await bodies, await handshakes

            bodies, handshakes = asyncio.run(attack())

            async def after() -> list[str]:
                out: list[str] = []
                for p in (port, tls_port):
                    ctx = ssl.create_default_context(cafile=str(tmp_path / "tls" / "ca.crt"))
                    reader, writer = await asyncio.open_connection(
                        "127.0.0.1", p, ssl=ctx if p == tls_port else None,
                        server_hostname="localhost" if p == tls_port else None)
                    writer.write(b"GET /api/v3/ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                    out.append((await reader.read()).split(b"\r\n")[0].decode())
                    writer.close()
                return out

            assert asyncio.run(after()) == ["HTTP/1.1 200 OK"] * 2
        finally:
            stop_process(proc)
    for ending, got in bodies:
        assert ending in ("closed", "reset"), (ending, got)
        assert answer(got) == ("HTTP/1.1 408 Request Timeout", {
            "code": 408, "msg": "Request Timeout: the request body did not arrive within 1 s"})
    assert all(h in ("closed", "reset") for h in handshakes), handshakes
