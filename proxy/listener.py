"""What a request's own connection says about it: which listener, which address, which Host.

Trust is decided per request from these, never from one global host setting:

- `arrived_on_loopback(request)`: the connection's local address (the address the client
  connected to) is a loopback address, on whichever listener, plain or TLS. Only a process
  on this machine (this container) can connect to it. A wildcard listener (`0.0.0.0` in
  Docker) is loopback for a connection to 127.0.0.1 and not for one to the container's
  address. This is what stands in for the admin token when none is configured.
- `is_tls(request)`: it arrived on the TLS listener (the dashboard's cookies are `Secure`).
- `mexc_host(request)`: its Host is one of MEXC's (a bot with hard-coded URLs, README
  "Zero-change mode"). Under those names the sidecar serves what MEXC serves there
  (`/api/...`, `/ws`) plus `/healthz` and `/metrics`; the dashboard and the admin API are
  not served (404): a page under `https://api.mexc.com` that shows balances and takes
  changes would pass for MEXC's own, and a bot has no business there. They stay on
  `localhost`, `127.0.0.1`, the service name, on either listener.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import web

from .config import MEXC_HOSTS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_NOT_UNDER_MEXC_HOSTS = ("/dashboard", "/admin/")


def local_address(request: web.Request) -> tuple[str, int] | None:
    """(address, port) the client connected to, or None (no socket: a test double)."""
    transport = request.transport
    if transport is None:
        return None
    sockname = transport.get_extra_info("sockname")
    if not sockname or not isinstance(sockname, tuple):
        return None  # a Unix socket has a path here
    return str(sockname[0]), int(sockname[1])


def arrived_on_loopback(request: web.Request) -> bool:
    local = local_address(request)
    if local is None:
        return False
    try:
        addr = ipaddress.ip_address(local[0].split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def is_tls(request: web.Request) -> bool:
    return request.secure


def host_name(request: web.Request) -> str:
    """The Host header's name, lower case, without port or trailing dot."""
    host = request.host
    if host.startswith("["):
        return host[1:].split("]", 1)[0].lower()
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".").lower()


def mexc_host(request: web.Request) -> bool:
    return host_name(request) in MEXC_HOSTS


def describe(request: web.Request) -> str:
    """`https://127.0.0.1:8443` for messages: the listener address this request reached."""
    local = local_address(request)
    scheme = "https" if is_tls(request) else "http"
    if local is None:
        return f"{scheme}://?"
    host = f"[{local[0]}]" if ":" in local[0] else local[0]
    return f"{scheme}://{host}:{local[1]}"


@web.middleware
async def mexc_host_scope(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Under MEXC's host names, no dashboard and no admin API (see the module docstring)."""
    path = request.path
    if (path == "/" or path.startswith(_NOT_UNDER_MEXC_HOSTS)) and mexc_host(request):
        raise web.HTTPNotFound(
            reason=f"not served under {host_name(request)}: open the dashboard on "
            "localhost or 127.0.0.1"
        )
    return await handler(request)
