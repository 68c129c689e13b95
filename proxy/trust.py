"""Which requests may reach the dashboard and the admin API: the one place that decides.

DNS rebinding: a page on attacker.example can re-point its own name at 127.0.0.1 and then
talk to the sidecar as a same-origin page. The browser still names the site it thinks it
talks to, so such a request arrives with `Host: attacker.example` (and, for a state change,
`Origin: http://attacker.example`). The dashboard and the admin API therefore answer only
a Host that is

- a loopback name: `localhost`, an address in 127.0.0.0/8, or `::1` (any port);
- the listen address itself (`server.host`) when it is a specific address, not a wildcard;
- one of `server.allowed_hosts` (e.g. the Docker service name another container uses).

A request without a Host header (HTTP/1.0) passes: browsers always send one. A state
change (any method but GET, HEAD and OPTIONS) must moreover have an `Origin` and a
`Referer` that, when present, name a trusted host; `Origin: null` (a sandboxed frame, a
file:// page) names none. The MEXC API (/api/v3, /api/v1), /healthz, /metrics and /ws are
not behind this check: bots in Docker reach them by service name, and signed requests are
protected by their signatures.

The admin API (not the dashboard) answers any Host when the request carries the
configured admin token (`server.admin_token`, in `X-Admin-Token` or `Authorization:
Bearer`; `presents_admin_token`). The Host check stops a page that borrows the authority of
where a request comes from (a loopback connection, which needs no token); a rebinding page
cannot know the token, and a browser never adds either header to a request by itself (a
page's script would need a CORS preflight, which is never granted). So a script in another
container may call the admin API by the container's address, or by a name nobody listed,
as long as it sends the token; its Origin/Referer, when present, are still checked. The
dashboard keeps the Host check in every case: its pages are read without a token, and
hand out the CSRF cookie and token. Without a configured token nothing changes: the Host
must be trusted. (`server.allowed_hosts` reads `$MEXC_PAPER_ALLOWED_HOSTS`; the Docker
image sets it to its service name, `mexc-paper`, so the dashboard works by that name too.)

The decision is a function of the request (`refusal`), so what is trusted depends on
the listener a request arrived on: over TLS (`server.tls`) the names the certificate holds
beyond the built-in ones (`server.tls.names`) are trusted too; no other site can be served
under them over TLS, since a browser accepts only our certificate for them. MEXC's own host
names (`api.mexc.com`, `wbs-api.mexc.com`, which the certificate also holds) are not: a
dashboard under MEXC's name would pass for MEXC's own (README "Zero-change mode").

What a request's connection says about it is here too, for the admin token rule:
`arrived_on_loopback` (the address the client connected to is a loopback one, on either
listener; with a wildcard listen address, a connection to 127.0.0.1 is loopback and one to
the container's address is not) and `is_tls`.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Awaitable, Callable

from aiohttp import web
from yarl import URL

from . import keys
from .config import MEXC_HOSTS

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_WILDCARDS = frozenset({"", "0.0.0.0", "::"})
_NAME = re.compile(r"[a-z0-9_.-]+", re.ASCII)
_PORT = re.compile(r"[0-9]*", re.ASCII)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def host_name(value: str) -> str | None:
    """A Host header (or an allowed_hosts entry) as a lower-case name without port and
    without a final dot; IPv6 without brackets. None when it is not a well-formed host."""
    v = value.strip().lower()
    if v.startswith("["):
        end = v.find("]")
        rest = v[end + 1:]
        if end < 0 or (rest and not rest.startswith(":")):
            return None
        name, port = v[1:end], rest[1:]
        try:
            ipaddress.IPv6Address(name)
        except ValueError:
            return None
    else:
        name, _, port = v.partition(":")
        if name.endswith("."):
            name = name[:-1]
        if not _NAME.fullmatch(name):
            return None
    if not _PORT.fullmatch(port):
        return None
    return name


def is_loopback_name(name: str) -> bool:
    """`localhost`, 127.0.0.0/8 or ::1, written as browsers write them (no `127.1`)."""
    if name in ("localhost", "::1"):
        return True
    try:
        return ipaddress.IPv4Address(name).is_loopback
    except ValueError:
        return False


def trusted_names(request: web.Request) -> frozenset[str]:
    """The names besides loopback ones that `request` may use as its Host:
    server.allowed_hosts, a specific listen address, and over TLS the certificate's
    configured names (server.tls.names; not a wildcard entry, not MEXC's hosts)."""
    server = request.config_dict[keys.SETTINGS].server
    listen = host_name(server.host)
    extra = {listen} if listen is not None and listen not in _WILDCARDS else set()
    if server.tls is not None and request.secure:
        extra.update(n for n in server.tls.names if not n.startswith("*.") and n not in MEXC_HOSTS)
    return frozenset(server.allowed_hosts) | extra


def host_trusted(request: web.Request, value: str) -> bool:
    name = host_name(value)
    return name is not None and (is_loopback_name(name) or name in trusted_names(request))


def _url_host(value: str) -> str | None:
    """The host[:port] an Origin or Referer names; None when it names none."""
    try:
        url = URL(value)
    except ValueError:
        return None
    if url.scheme not in ("http", "https") or not url.raw_host:
        return None
    host = url.raw_host
    return f"[{host}]" if ":" in host else host


def presents_admin_token(request: web.Request) -> bool:
    """The request carries `server.admin_token` (`X-Admin-Token`, or `Authorization:
    Bearer`); False when none is configured."""
    token = request.config_dict[keys.SETTINGS].server.admin_token
    if token is None:
        return False
    given = request.headers.get("X-Admin-Token", "")
    auth = request.headers.get("Authorization", "")
    if not given and auth.startswith("Bearer "):
        given = auth[7:]
    # (as bytes: compare_digest refuses non-ASCII str; aiohttp gives headers as Latin-1)
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode())


def refusal(request: web.Request, token_vouches: bool = False) -> str | None:
    """Why `request` may not use the dashboard or the admin API; None when it may.
    `token_vouches` (the admin API): a request that presents the admin token may use any
    Host."""
    host = request.headers.get("Host")
    if (
        host is not None
        and not host_trusted(request, host)
        and not (token_vouches and presents_admin_token(request))
    ):
        return (
            "this Host is not served here: use localhost, or add the name to "
            "server.allowed_hosts (or send the admin token, on the admin API)"
        )
    if request.method not in SAFE_METHODS:
        for header in ("Origin", "Referer"):
            value = request.headers.get(header)
            if value is None:
                continue
            named = _url_host(value)
            if named is None or not host_trusted(request, named):
                return f"cross-site request refused ({header} names another site)"
    return None


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """First middleware of the dashboard sub-app: a refused request gets a bare 403 (no
    page, no cookie, no CSRF token)."""
    reason = refusal(request)
    if reason is not None:
        raise web.HTTPForbidden(reason=reason)
    return await handler(request)


@web.middleware
async def admin_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """First middleware of the admin API sub-app: as `middleware`, but the admin token
    vouches for any Host."""
    reason = refusal(request, token_vouches=True)
    if reason is not None:
        raise web.HTTPForbidden(reason=reason)
    return await handler(request)


# --------------------------------------------------------------------------- the connection


def local_address(request: web.Request) -> tuple[str, int] | None:
    """(address, port) the client connected to; None without a socket (a test double)."""
    transport = request.transport
    if transport is None:
        return None
    sockname = transport.get_extra_info("sockname")
    if not sockname or not isinstance(sockname, tuple):
        return None  # a Unix socket has a path here
    return str(sockname[0]), int(sockname[1])


def arrived_on_loopback(request: web.Request) -> bool:
    """The client connected to a loopback address: it runs on this machine (container)."""
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
    """It came over the TLS listener."""
    return request.secure


def describe(request: web.Request) -> str:
    """`https://127.0.0.1:8443` for messages: the listener address this request reached."""
    local = local_address(request)
    scheme = "https" if is_tls(request) else "http"
    if local is None:
        return f"{scheme}://?"
    host = f"[{local[0]}]" if ":" in local[0] else local[0]
    return f"{scheme}://{host}:{local[1]}"
