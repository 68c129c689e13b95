"""The two upstream timeouts end differently: no connection within `connect_timeout_s` is
"service not available" (503: nothing was sent), a request that went out and got no answer
within `timeout_s` is "Gateway Time-out" (504: its outcome is unknown)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings

from proxy.app import create_app
from proxy.config import UpstreamSettings
from proxy.upstream import HttpTransport, UpstreamError


@contextlib.contextmanager
def _full_backlog() -> Iterator[int]:
    """A port on 127.0.0.1 whose accept queue is full: the kernel drops further SYNs, so a
    new connection neither succeeds nor is refused until the client gives up."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        # listen(0) queues one connection (Linux admits backlog + 1); a few more make sure
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", port))
            fillers.append(s)
        yield port
    finally:
        for s in fillers:
            s.close()
        listener.close()


async def test_connect_timeout_is_503_not_504(tmp_path: Path) -> None:
    with _full_backlog() as port:
        transport = HttpTransport(
            UpstreamSettings(base_url=f"http://127.0.0.1:{port}", timeout_s=5, connect_timeout_s=0.3)
        )
        await transport.start()
        try:
            t0 = time.monotonic()
            with pytest.raises(UpstreamError) as info:
                await transport.request("GET", "/api/v3/ping", "")
            elapsed = time.monotonic() - t0
        finally:
            await transport.close()
    assert info.value.kind == "connect"
    assert "connect timeout" in str(info.value)
    assert 0.25 <= elapsed < 2.0  # the connect timeout, not the 5 s total


async def test_bot_sees_503_for_a_connect_timeout(aiohttp_client: Any, tmp_path: Path) -> None:
    with _full_backlog() as port:
        settings = make_settings(
            tmp_path,
            upstream=UpstreamSettings(
                base_url=f"http://127.0.0.1:{port}", timeout_s=5, connect_timeout_s=0.3, market_cache_ms=0
            ),
        )
        client = await aiohttp_client(create_app(settings))
        t0 = time.monotonic()
        resp = await client.get("/api/v3/ticker/price?symbol=BTCUSDT")
        elapsed = time.monotonic() - t0
        body = await resp.json()
    assert resp.status == 503
    assert body == {"code": 503, "msg": "service not available, please try again"}
    assert elapsed < 2.0


async def test_no_answer_within_the_total_timeout_is_504(aiohttp_client: Any, tmp_path: Path) -> None:
    """The connection is accepted and the request read, but no answer comes."""
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        await reader.read(1024)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        settings = make_settings(
            tmp_path,
            upstream=UpstreamSettings(
                base_url=f"http://127.0.0.1:{port}", timeout_s=0.4, connect_timeout_s=0.3, market_cache_ms=0
            ),
        )
        client = await aiohttp_client(create_app(settings))
        resp = await client.get("/api/v3/ticker/price?symbol=BTCUSDT")
        body = await resp.json()
    finally:
        for w in accepted:
            w.close()
        server.close()
        await server.wait_closed()
    assert resp.status == 504
    assert body == {"code": 504, "msg": "Gateway Time-out"}
    assert accepted, "the request reached the silent upstream"
