"""Listening: the process's sockets, with a bound on open connections.

`serve()` is what `python -m proxy` runs instead of `web.run_app`: the same life cycle
(the app's startup and cleanup, SIGINT/SIGTERM as a graceful exit), on one or two
listeners of one `AppRunner`, so both serve the same app (REST, dashboard, admin,
/healthz, /ws): plain HTTP on `server.port` and, with `server.tls`, HTTPS/WSS on
`server.tls.port` (proxy/tls.py makes its certificate). Each listener is a `GatedSite`,
whose connections pass through one shared `ConnectionGate`: past
`server.max_connections` open connections a new one is answered `503` (MEXC JSON) and
closed, without reaching aiohttp. The time a connection has to send its request head is
bounded in the app itself (`server.header_timeout_s`, aiohttp's keep-alive timer, set in
`create_app`), so it holds for any runner; so is the time a handler waits for a request's
body (proxy/bodies.py). On the TLS listener the handshake must finish within
`server.header_timeout_s` too (asyncio's default is 60 s).

aiohttp has no connection limit of its own; the gate wraps the protocol aiohttp's server
creates for each connection (the public `runner.server` factory) and passes every
protocol callback through unchanged. A connection is counted when it is *made*
(`connection_made`), not when it is accepted: on a TLS listener asyncio calls the app's
protocol only once the handshake has finished, and never calls its `connection_lost` when
the handshake failed, so a slot taken at accept time by a client that does not trust our CA
(or by a port check) would never be given back. A handshake in progress holds no slot; the
handshake timeout bounds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from . import keys
from .config import Settings
from .errors import ApiError, Err
from .tls import TlsServer

log = logging.getLogger("proxy.listen")

# how long a refused connection may keep sending before it is closed anyway
_REFUSED_LINGER_S = 2.0


def _refusal() -> bytes:
    body = ApiError(Err.SERVICE_UNAVAILABLE).body()
    return (
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
    )


class ConnectionGate:
    """Counts the open connections of every listener it guards; beyond `limit`, a new
    connection gets a 503 and is closed."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self.refused = 0
        self._warned = False

    def wrap(self, factory: Callable[[], asyncio.BaseProtocol]) -> Callable[[], asyncio.BaseProtocol]:
        def make() -> asyncio.BaseProtocol:
            return _Counted(factory, self)

        return make

    def _admit(self) -> bool:
        """Take a slot for a connection that was just made; False when none is left."""
        if self.open >= self.limit:
            self.refused += 1
            if not self._warned:
                log.warning("connection limit reached (server.max_connections=%d): "
                            "refusing new connections with 503", self.limit)
                self._warned = True
            return False
        self.open += 1
        return True

    def _closed(self) -> None:
        self.open -= 1
        if self._warned and self.open < self.limit // 2:
            self._warned = False  # warn again the next time it fills up


class _Counted(asyncio.Protocol):
    """Takes a slot when the connection is made (after the TLS handshake) and passes every
    callback to aiohttp's protocol, made then; releases the slot once, when the connection
    is lost. Without a slot the connection is answered 503 (`_Refused`) and aiohttp never
    sees it."""

    def __init__(self, factory: Callable[[], Any], gate: ConnectionGate) -> None:
        self.factory = factory
        self.gate: ConnectionGate | None = gate
        self.inner: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        gate = self.gate
        assert gate is not None
        if gate._admit():
            self.inner = self.factory()
        else:
            self.gate = None
            self.inner = _Refused()
        self.inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.gate is not None:
            self.gate._closed()
            self.gate = None
        if self.inner is not None:
            self.inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class _Refused(asyncio.Protocol):
    """Answers 503 at once, half-closes, discards what the client still sends (closing
    with unread data would reset the connection before the client reads the answer)."""

    def connection_made(self, transport: Any) -> None:  # (uvloop's is no asyncio.Transport)
        transport.write(_refusal())
        if transport.can_write_eof():
            transport.write_eof()
        self._timer = asyncio.get_running_loop().call_later(_REFUSED_LINGER_S, transport.close)

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool:
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._timer.cancel()


class GatedSite(web.BaseSite):
    """A TCP listener (like `web.TCPSite`) whose connections pass through `gate`."""

    __slots__ = ("_gate", "_handshake_timeout", "_host", "_port")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        gate: ConnectionGate,
        *,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 128,
        handshake_timeout: float = 60.0,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._host = host
        self._port = port
        self._gate = gate
        self._handshake_timeout = handshake_timeout

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self._port}"

    @property
    def sockets(self) -> list[Any]:
        """The listening sockets (a name may resolve to several addresses)."""
        return list(self._server.sockets) if self._server is not None else []  # type: ignore[union-attr]

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        tls: dict[str, Any] = {}
        if self._ssl_context is not None:
            # a handshake holds no slot of the gate (it is counted once made): bound it
            tls["ssl_handshake_timeout"] = self._handshake_timeout
        self._server = await asyncio.get_running_loop().create_server(
            self._gate.wrap(server), self._host, self._port,
            ssl=self._ssl_context, backlog=self._backlog, **tls,
        )


@dataclass(frozen=True, slots=True)
class Bound:
    """One listening socket."""

    scheme: str  # http or https
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


class ListenError(Exception):
    """A listener could not be opened (the message names the key)."""


def _hint(exc: OSError) -> str:
    if exc.errno == errno.EACCES:
        return (
            " (a port below 1024 needs root, CAP_NET_BIND_SERVICE or a lower "
            "net.ipv4.ip_unprivileged_port_start; README: Zero-change mode)"
        )
    return ""


async def start_sites(
    runner: web.AppRunner, settings: Settings, tls: TlsServer | None, gate: ConnectionGate | None = None
) -> list[Bound]:
    """Open the listeners of a set-up runner, plain first, all behind one gate (default:
    `server.max_connections`); returns every bound socket and tells the app's loop guard
    where it listens."""
    server = settings.server
    gate = gate or ConnectionGate(server.max_connections)
    sites: list[tuple[str, GatedSite]] = [("http", GatedSite(runner, server.host, server.port, gate))]
    if tls is not None and server.tls is not None:
        sites.append(
            ("https", GatedSite(runner, server.host, server.tls.port, gate, ssl_context=tls.context,
                                handshake_timeout=server.header_timeout_s))
        )
    bound: list[Bound] = []
    for scheme, site in sites:
        try:
            await site.start()
        except OSError as exc:
            what = "server.tls.port" if scheme == "https" else "server.port"
            raise ListenError(
                f"{what}: cannot listen on {site.name}: {exc.strerror or exc}{_hint(exc)}"
            ) from None
        for sock in site.sockets:
            name = sock.getsockname()
            bound.append(Bound(scheme, str(name[0]), int(name[1])))
    runner.app[keys.LOOP_GUARD].listening = [(b.host, b.port) for b in bound]
    if tls is not None:
        tls.start_renewal()
    return bound


def serve(
    app: web.Application,
    settings: Settings,
    tls: TlsServer | None = None,
    *,
    announce: Callable[[list[Bound]], None] | None = None,
    **runner_kw: Any,
) -> None:
    """Run `app` until SIGINT/SIGTERM, as `web.run_app` would, on its gated listeners.
    `announce(bound)` is called once every listener is open; `runner_kw` go to
    `web.AppRunner` (access log, shutdown timeout). A listener that cannot be opened
    raises ListenError, after the app's cleanup."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    runner = web.AppRunner(app, handle_signals=True, **runner_kw)

    async def start() -> None:
        await runner.setup()
        bound = await start_sites(runner, settings, tls)
        if announce is not None:
            announce(bound)

    try:
        loop.run_until_complete(start())
        loop.run_forever()
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            if tls is not None:
                loop.run_until_complete(tls.stop())
            loop.run_until_complete(runner.cleanup())
        finally:
            # as run_app does: cancel what is left, then close the loop
            left = asyncio.all_tasks(loop)
            for task in left:
                task.cancel()
            with contextlib.suppress(Exception):
                loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
