"""Request bodies, read within a time limit.

`server.header_timeout_s` bounds the time a connection has to send its request head
(aiohttp's keep-alive timer), but once the head has arrived a handler waits for the body
as long as the client keeps sending: a complete head followed by one byte a second held a
connection (and a slot of `server.max_connections`) for as long as the client liked. So
every body the sidecar reads is read here, within `server.header_timeout_s` of the
handler asking for it (one key: the time a client may take to send a request, its head and
then its body; a bot sends its few hundred bytes at once).

A body that does not arrive in time is answered 408 (MEXC JSON under /api/, the admin
API's JSON error under /admin/api/, aiohttp's page on the dashboard), and the connection is
closed `_LINGER_S` later whatever the client still sends (aiohttp reads and discards the
rest of a body meanwhile, so the answer reaches the client before the close).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from . import keys
from .errors import ApiError, Err

# how long a connection whose body timed out stays open for its answer to leave
_LINGER_S = 2.0


def _timed_out(request: web.Request, seconds: float) -> Exception:
    protocol = request.protocol
    if protocol is not None:
        asyncio.get_running_loop().call_later(_LINGER_S, protocol.force_close)
    if request.path.startswith("/api/"):
        return ApiError(Err.REQUEST_TIMEOUT, seconds=f"{seconds:g}")
    return web.HTTPRequestTimeout(reason=f"the request body did not arrive within {seconds:g} s")


def _limit(request: web.Request) -> float:
    return request.config_dict[keys.SETTINGS].server.header_timeout_s


async def read(request: web.Request) -> bytes:
    """`request.read()`, within server.header_timeout_s (408 and a close otherwise)."""
    seconds = _limit(request)
    try:
        async with asyncio.timeout(seconds):
            return await request.read()
    except TimeoutError:
        raise _timed_out(request, seconds) from None


async def form(request: web.Request) -> Any:
    """`request.post()` (a form), within server.header_timeout_s."""
    seconds = _limit(request)
    try:
        async with asyncio.timeout(seconds):
            return await request.post()
    except TimeoutError:
        raise _timed_out(request, seconds) from None
