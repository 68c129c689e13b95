"""Serve one app on its listeners: plain HTTP on `server.port`, and HTTPS/WSS on
`server.tls.port` when configured. Both are sites of one `AppRunner`, so they serve the
same app (REST, dashboard, admin, /healthz, /ws), share its startup and cleanup, and stop
together on SIGINT/SIGTERM with aiohttp's graceful shutdown (what `web.run_app` does for
one site).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from . import keys
from .config import Settings
from .tls import TlsServer

log = logging.getLogger("proxy")


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


async def start_sites(
    runner: web.AppRunner, settings: Settings, tls: TlsServer | None
) -> list[Bound]:
    """Start the listeners on a set-up runner; returns every bound socket, plain first,
    and tells the app's loop guard where it listens."""
    server = settings.server
    sites: list[tuple[str, web.TCPSite]] = [("http", web.TCPSite(runner, server.host, server.port))]
    if tls is not None and server.tls is not None:
        sites.append(
            ("https", web.TCPSite(runner, server.host, server.tls.port, ssl_context=tls.context))
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
        # aiohttp has no public accessor for one site's sockets
        for sock in site._server.sockets:  # type: ignore[union-attr]
            name = sock.getsockname()
            bound.append(Bound(scheme, str(name[0]), int(name[1])))
    runner.app[keys.LOOP_GUARD].listening = [(b.host, b.port) for b in bound]
    if tls is not None:
        tls.start_renewal()
    return bound


def _hint(exc: OSError) -> str:
    if exc.errno == errno.EACCES:
        return (
            " (a port below 1024 needs root, CAP_NET_BIND_SERVICE or a lower "
            "net.ipv4.ip_unprivileged_port_start; README: Zero-change mode)"
        )
    return ""


class ListenError(Exception):
    """A listener could not be opened (the message names the key)."""


def run(
    app: web.Application,
    settings: Settings,
    tls: TlsServer | None,
    *,
    access_log: logging.Logger | None,
    access_log_class: type[AbstractAccessLogger],
    announce: Callable[[list[Bound]], None],
    shutdown_timeout: float = 2.0,
) -> None:
    """Run until SIGINT/SIGTERM, as `web.run_app` does, with one or two listeners.
    `announce(bound)` is called once every listener is open."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    async def serve() -> None:
        runner = web.AppRunner(
            app,
            handle_signals=True,
            access_log=access_log,
            access_log_class=access_log_class,
            shutdown_timeout=shutdown_timeout,
        )
        await runner.setup()
        try:
            bound = await start_sites(runner, settings, tls)
            announce(bound)
            await asyncio.Event().wait()  # until a signal raises GracefulExit
        finally:
            if tls is not None:
                await tls.stop()
            await runner.cleanup()

    main = loop.create_task(serve())
    try:
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        if not main.done():
            main.cancel()
            with contextlib.suppress(asyncio.CancelledError, web.GracefulExit):
                loop.run_until_complete(main)
        _cancel_all(loop)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in tasks:
        t.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
