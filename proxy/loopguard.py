"""Loop protection: the sidecar's own upstream calls never reach the sidecar itself.

That happens when MEXC's hosts resolve to the sidecar on the machine it runs on: a hosts
file entry made for the zero-change mode (README "Zero-change mode") on the sidecar's own
machine, or an `extra_hosts` entry given to the sidecar's container instead of the bot's.
Two checks, each answering the caller with a MEXC-shaped 503 that names the problem, and
one WARNING line per process (not one per request):

1. Before connecting: the upstream client's resolver (`UpstreamResolver`) compares the
   addresses a host resolves to with the addresses this process listens on, and refuses
   a match without opening a connection. The same resolver pins hosts to addresses from
   `upstream.resolve`, so the sidecar can keep MEXC's real addresses whatever the hosts
   file says.
2. On arrival: every upstream request carries `X-Mexc-Paper-Loop: <mark>`, a random value
   of this process. A request that arrives with it (the address check could not see the
   loop: a port forward, a proxy in between) is refused with HTTP 508 and a MEXC-shaped
   body, the mark echoed, and the upstream client that sent it turns that into the 503.
   Another sidecar's mark is not ours: chaining sidecars on purpose keeps working.

The upstream WebSocket client (`upstream.ws_url`) must send the same header and use the
same resolver, so it is protected the same way.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from .errors import ApiError, Err

log = logging.getLogger("proxy.loopguard")

LOOP_HEADER = "X-Mexc-Paper-Loop"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class UpstreamLoop(OSError):
    """The upstream host resolves to this sidecar (raised by the resolver, before connecting)."""


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _is_local(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """An address of this machine (or network namespace): one a socket can bind to."""
    if addr.is_loopback:
        return True
    family = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.bind((str(addr), 0))
        except OSError:
            return False
    return True


class LoopGuard:
    """This process's mark, the addresses it listens on, and the one-time warning."""

    def __init__(self, base_url: str, mark: str | None = None) -> None:
        self.mark = mark or secrets.token_hex(16)
        self.base_url = base_url
        # (address, port) of every listening socket, set once they are bound
        self.listening: list[tuple[str, int]] = []
        self.detections = 0
        self._local_cache: dict[ipaddress.IPv4Address | ipaddress.IPv6Address, bool] = {}

    @property
    def message(self) -> str:
        host = urlsplit(self.base_url).hostname or self.base_url
        return (
            f"upstream loop: upstream.base_url {self.base_url} leads back to this sidecar "
            f"({host} resolves to it: a hosts file or extra_hosts entry on the sidecar's own "
            "machine?); set upstream.resolve to MEXC's real address or remove the entry "
            "(README: Zero-change mode)"
        )

    def detected(self, how: str) -> None:
        """Count a loop; the first one is logged, with what to do."""
        self.detections += 1
        if self.detections == 1:
            log.warning("%s (%s); public calls answer 503 until it is fixed", self.message, how)

    def points_here(self, host: str, port: int) -> bool:
        """True when (host, port) is one of this process's listening sockets."""
        addr = _ip(host)
        if addr is None:
            return False
        for lhost, lport in self.listening:
            if lport != port:
                continue
            laddr = _ip(lhost)
            if laddr is None:
                continue
            if laddr == addr or (laddr.is_unspecified and self._local(addr)):
                return True
        return False

    def _local(self, addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        known = self._local_cache.get(addr)
        if known is None:
            known = self._local_cache[addr] = _is_local(addr)
        return known

    def middleware(self) -> Callable:
        mark = self.mark

        @web.middleware
        async def loop_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.headers.get(LOOP_HEADER) == mark:
                self.detected(f"a request of this sidecar's upstream client arrived: {request.path}")
                return ApiError(Err.LOOP_DETECTED).response(headers={LOOP_HEADER: mark})
            return await handler(request)

        return loop_guard


class UpstreamResolver(AbstractResolver):
    """The upstream client's resolver: `upstream.resolve` pins, then the system resolver
    (its answers kept `ttl_s`); an answer that points at this sidecar is refused
    (UpstreamLoop). The connector that uses it must not cache names itself
    (`use_dns_cache=False`): every connection is checked here, also those opened after
    an answer that was fetched before the listeners were bound."""

    def __init__(
        self, pinned: Mapping[str, str], guard: LoopGuard | None = None, ttl_s: float = 300.0
    ) -> None:
        self._pinned = dict(pinned)
        self._guard = guard
        self._ttl_s = ttl_s
        self._cache: dict[tuple[str, int, int], tuple[float, list[ResolveResult]]] = {}
        self._default: AbstractResolver = DefaultResolver()

    async def _system(self, host: str, port: int, family: socket.AddressFamily) -> list[ResolveResult]:
        key = (host, port, int(family))
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        results = await self._default.resolve(host, port, family)
        self._cache[key] = (now + self._ttl_s, results)
        return results

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        pinned = self._pinned.get(host.lower().rstrip("."))
        if pinned is not None:
            addr = ipaddress.ip_address(pinned)
            results = [
                ResolveResult(
                    hostname=host,
                    host=pinned,
                    port=port,
                    family=socket.AF_INET6 if addr.version == 6 else socket.AF_INET,
                    proto=0,
                    flags=socket.AI_NUMERICHOST,
                )
            ]
        else:
            results = await self._system(host, port, family)
        guard = self._guard
        if guard is not None and guard.listening:
            for r in results:
                if guard.points_here(r["host"], r["port"]):
                    guard.detected(f"{host} resolves to {r['host']}:{r['port']}, where it listens")
                    raise UpstreamLoop(f"{host} resolves to this sidecar ({r['host']}:{r['port']})")
        return results

    async def close(self) -> None:
        await self._default.close()
