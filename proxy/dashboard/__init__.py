"""The dashboard sub-app at /dashboard/: read-only views over the service, plus the few
state changes (mode, reset) that go through the same service functions as the API."""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from ..config import Settings
from . import views


def create_dashboard_app(settings: Settings) -> web.Application:
    app = web.Application()
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("proxy.dashboard", "templates"),
        autoescape=jinja2.select_autoescape(["html", "xml"], default=True),
    )
    app.add_routes(views.ROUTES)
    app.router.add_static("/static/", Path(__file__).parent / "static", name="static")
    return app
