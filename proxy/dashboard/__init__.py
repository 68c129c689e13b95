"""The dashboard sub-app at /dashboard/: read-only views over the service, plus the few
state changes (mode, reset) that go through the same service functions as the admin API.

Everything the page needs (CSS, JavaScript, charts) is served by the sidecar itself: the
charts are server-rendered SVG and one small script polls for updates. Autoescaping is on,
templates live in the package, and a strict Content-Security-Policy allows nothing from
elsewhere (no CDN, no inline script).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from .. import keys, trust
from ..config import Settings
from . import csrf, views

log = logging.getLogger("proxy.dashboard")

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # not no-referrer: under it browsers send `Origin: null` with the page's own form
    # posts, which proxy/trust.py must refuse; same-origin sends nothing to other sites
    "Referrer-Policy": "same-origin",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _middleware(reraise_unexpected: bool) -> Callable:
    @web.middleware
    async def dashboard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            resp = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            resp = views.error_page(request, exc.status, exc.reason or "error")
        except asyncio.CancelledError:
            raise
        except Exception:
            if reraise_unexpected:
                raise
            log.exception("dashboard error method=%s path=%s", request.method, request.path)
            resp = views.error_page(request, 500, "internal error (details are in the sidecar's log)")
        for k, v in SECURITY_HEADERS.items():
            resp.headers.setdefault(k, v)
        return resp

    return dashboard_middleware


def create_dashboard_app(settings: Settings) -> web.Application:
    # trust first: a refused Host or Origin gets a bare 403, never a page or a CSRF cookie
    app = web.Application(middlewares=[trust.middleware, _middleware(settings.reraise_unexpected)])
    app[keys.DASHBOARD_SECRET] = csrf.new_secret()
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("proxy.dashboard", "templates"),
        autoescape=jinja2.select_autoescape(["html", "xml"], default=True),
        undefined=jinja2.StrictUndefined,
    )
    app.add_routes(views.ROUTES)
    app.router.add_static("/static/", Path(__file__).parent / "static", name="static")
    return app
