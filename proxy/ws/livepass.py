"""Live mode: `/ws?listenKey=K` with MEXC's own listenKey, relayed to MEXC's stream.

In live mode `POST /api/v3/userDataStream` is forwarded to MEXC (like every signed
request), so a bot holds MEXC's listenKey; a bot whose WebSocket address points at the
sidecar (zero-change mode, or `urls.api.ws.spot`) then connects here with it. A key the
sidecar did not issue is relayed, only while live mode is armed and active and
`upstream.ws_url` is set: one upstream connection to `upstream.ws_url?listenKey=K` per
local connection, a transparent bidirectional proxy (every text and binary frame passed
on unchanged, both ways; a close on one side closes the other, with its code when it can
be sent). The sidecar reads nothing of it, enforces none of its rules (MEXC does), and
keeps no state: the bot's private stream is MEXC's.

Never in paper mode: a key the sidecar did not issue is then refused (`Invalid listen
key`), and no listenKey ever goes upstream. A switch to paper closes every relayed
connection at once (1000 "switched to paper mode"). The upstream connection carries the
loop mark and resolves through `upstream.resolve` (proxy/loopguard.py), like every other
upstream connection. The key is masked in every log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web
from yarl import URL

from ..config import UpstreamSettings
from ..loopguard import LOOP_HEADER, LoopGuard, UpstreamResolver
from .listenkeys import mask

log = logging.getLogger("proxy.ws")

MAX_FRAME_BYTES = 4 * 1024 * 1024  # as the market stream's client
CLOSE_TIMEOUT_S = 2.0
# close codes that cannot be sent in a close frame (RFC 6455 7.4.1): replaced
_NOT_SENDABLE = {1004, 1005, 1006, 1015}


class _Relay:
    __slots__ = ("ending", "local", "up")

    def __init__(self, local: web.WebSocketResponse, up: aiohttp.ClientWebSocketResponse) -> None:
        self.local, self.up = local, up
        self.ending: tuple[int, bytes] | None = None  # our reason to end it (code, text)


class LiveStreams:
    """The relayed live user-data streams of one app."""

    def __init__(self, upstream: UpstreamSettings, guard: LoopGuard | None) -> None:
        assert upstream.ws_url
        self.ws_url = upstream.ws_url
        self.settings = upstream
        self.guard = guard
        self._http: aiohttp.ClientSession | None = None
        self.open: set[_Relay] = set()
        self.relayed = 0
        self._tasks: set[asyncio.Future[None]] = set()

    async def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            headers = {"User-Agent": "mexc-paper"}
            if self.guard is not None:
                headers[LOOP_HEADER] = self.guard.mark
            timeout = self.settings.connect_timeout_s
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, connect=timeout, sock_connect=timeout),
                connector=aiohttp.TCPConnector(
                    use_dns_cache=False,
                    resolver=UpstreamResolver(self.settings.resolve, self.guard, ttl_s=300),
                ),
                headers=headers,
            )
        return self._http

    async def handle(self, request: web.Request, key: str) -> web.WebSocketResponse:
        """Relay one local connection to MEXC's stream with `key`."""
        url = URL(self.ws_url).update_query({"listenKey": key})
        try:
            up = await (await self._session()).ws_connect(
                url, autoping=True, max_msg_size=MAX_FRAME_BYTES,
                timeout=aiohttp.ClientWSTimeout(ws_close=CLOSE_TIMEOUT_S),
            )
        except Exception as exc:  # aiohttp, OS and TLS errors: the bot gets a close, not a hang
            log.warning("live user stream (listen key %s): MEXC's stream unavailable: %s",
                        mask(key), type(exc).__name__)
            local = web.WebSocketResponse()
            await local.prepare(request)
            await local.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"upstream stream unavailable")
            return local
        local = web.WebSocketResponse(autoping=True, compress=False, max_msg_size=MAX_FRAME_BYTES,
                                      timeout=CLOSE_TIMEOUT_S)
        await local.prepare(request)
        relay = _Relay(local, up)
        self.open.add(relay)
        self.relayed += 1
        log.info("live user stream (listen key %s) relayed to %s", mask(key), self.ws_url)
        try:
            await self._pump(relay)
        finally:
            self.open.discard(relay)  # (_pump already did, unless it was cancelled or failed)
            await _close(up, WSCloseCode.OK, b"")
        return local

    async def _pump(self, relay: _Relay) -> None:
        local, up = relay.local, relay.up
        to_up = asyncio.create_task(_forward(local, up))
        to_local = asyncio.create_task(_forward(up, local))
        try:
            done, _ = await asyncio.wait((to_up, to_local), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (to_up, to_local):
                task.cancel()
            await asyncio.gather(to_up, to_local, return_exceptions=True)
        self.open.discard(relay)  # ending: no longer counted, before the bot sees the close
        # one side ended: close the other, with the same code when it can be sent
        if relay.ending is not None:  # ended by us (a switch to paper, shutdown)
            await _close(up, WSCloseCode.OK, b"")
            await _close(local, *relay.ending)
        elif to_local in done:  # MEXC closed
            code = up.close_code or WSCloseCode.OK
            code = WSCloseCode.INTERNAL_ERROR if code in _NOT_SENDABLE else code
            await _close(local, code, b"closed by the upstream")
        else:
            await _close(up, WSCloseCode.OK, b"")
            await _close(local, local.close_code or WSCloseCode.OK, b"")

    def _end_all(self, code: int, reason: bytes) -> list[asyncio.Future[None]]:
        """End every relayed connection: its upstream side closes, and its local side
        then gets `code` and `reason` (_pump)."""
        out = []
        for relay in list(self.open):
            relay.ending = (code, reason)
            task = asyncio.ensure_future(_close(relay.up, WSCloseCode.OK, b""))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            out.append(task)
        return out

    def paper(self) -> None:
        """Live mode ended: close every relayed connection now."""
        if self.open:
            log.info("switched to paper mode: closing %d relayed live user streams", len(self.open))
        self._end_all(WSCloseCode.OK, b"switched to paper mode")

    async def close(self) -> None:
        """At shutdown: close every relayed connection, then the session."""
        await asyncio.gather(*self._end_all(WSCloseCode.GOING_AWAY, b"server shutting down"),
                             return_exceptions=True)
        if self._http is not None:
            await self._http.close()
            self._http = None


async def _forward(src: Any, dst: Any) -> None:
    """Every frame of `src` to `dst`, until `src` closes."""
    async for msg in src:
        if msg.type is WSMsgType.TEXT:
            await dst.send_str(msg.data)
        elif msg.type is WSMsgType.BINARY:
            await dst.send_bytes(msg.data)


async def _close(ws: Any, code: int, message: bytes) -> None:
    with contextlib.suppress(Exception):
        if not ws.closed:
            await asyncio.wait_for(ws.close(code=code, message=message), CLOSE_TIMEOUT_S)
