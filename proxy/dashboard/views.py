"""Dashboard views."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from .. import keys


@aiohttp_jinja2.template("index.html")
async def index(request: web.Request) -> dict[str, Any]:
    service = request.config_dict[keys.SERVICE]
    mode = request.config_dict[keys.MODE]
    accounts = service.account_ids()
    try:
        selected = int(request.query.get("account", accounts[0] if accounts else 0))
    except ValueError:
        selected = accounts[0] if accounts else 0
    balances = service.balances(selected) if selected in service.accounts else []
    orders = service.open_orders(selected) if selected in service.accounts else []
    return {
        "mode": mode.current,
        "accounts": [(a, service.label(a)) for a in accounts],
        "selected": selected,
        "balances": balances,
        "orders": orders,
    }


ROUTES = [web.get("/", index, name="index")]
