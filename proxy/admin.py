"""The JSON admin API under /admin/api/ (accounts with balances and positions, reset,
fund, set a balance, mode, the replay's clock), plus /healthz and /metrics. Never under
/api/v3.

State changes need `Content-Type: application/json` (a cross-site form cannot send it
without a CORS preflight, which we never grant) and the admin token (`X-Admin-Token` or
`Authorization: Bearer`) whenever one is configured; without one, only a request that
reached a loopback address (`trust.arrived_on_loopback`, on either listener) may change
state. The admin API is a sub-app behind `trust.admin_middleware`: a Host that is not
loopback or configured, unless the request carries the admin token, or a state change whose
Origin/Referer names another site, gets 403 (DNS rebinding). A switch to live needs
`{"mode": "live", "confirm": "LIVE"}`.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from . import __version__, bodies, jsonutil, keys, trust
from .config import mask_key
from .tape.replay import ClockMoveError, Replay

JSON = "application/json"


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=jsonutil.dumps(data), status=status, content_type=JSON)


def admin_token_ok(request: web.Request) -> bool:
    """True when the request may change state as far as the admin token goes."""
    if request.config_dict[keys.SETTINGS].server.admin_token is None:
        # without a token, only a request that reached a loopback address may change state
        # (decided by this request's connection, on either listener)
        return trust.arrived_on_loopback(request)
    return trust.presents_admin_token(request)


def _guard(request: web.Request) -> None:
    if not request.content_type == JSON:
        raise web.HTTPUnsupportedMediaType(reason="state changes need Content-Type: application/json")
    if not admin_token_ok(request):
        raise web.HTTPUnauthorized(reason="admin token required")


# /healthz: one section per component, each with "ok" and, when not ok, a "reason"; any
# section not ok makes the status "degraded" and lists its reason. Only a FATAL section makes
# the answer HTTP 503. Docker's HEALTHCHECK asks /healthz, and a 503 there gets the container
# restarted: a sidecar whose upstream (MEXC) is down is alive and still serves everything
# local (accounts, orders it can refuse clearly, the dashboard), and a restart would not bring
# MEXC back, only a restart loop; so a degraded upstream keeps HTTP 200. Storage that cannot
# write is 503: nothing can be acknowledged, and a restart (reload from disk) may help.
FATAL_SECTIONS = frozenset({"storage"})


def health_sections(app: web.Application) -> dict[str, dict[str, Any]]:
    settings = app[keys.SETTINGS]
    upstream = app[keys.UPSTREAM]
    down = upstream.down_since_ms is not None
    up: dict[str, Any] = {
        "url": settings.upstream.replay_path or settings.upstream.base_url,
        "replay": settings.upstream.replay_path is not None,
        "ok": not down,
        "last_error": upstream.last_error,
        "last_ok_ms": upstream.last_ok_ms,
        "down_since_ms": upstream.down_since_ms,
    }
    if down:
        up["reason"] = upstream.last_error
    storage: dict[str, Any] = {"path": settings.storage.path, "ok": app[keys.STORE].healthy}
    if not storage["ok"]:
        storage["reason"] = "a storage write failed: nothing can be acknowledged (see the log)"
    sections = {"upstream": up, "storage": storage}
    watcher = app.get(keys.WATCHER)
    if watcher is not None:
        # the market stream and the source of each watched symbol's trades and book; a
        # stream that is down is degraded, never fatal: REST polling stands in for it
        stream = watcher.stream_status()
        stream["ok"] = stream.get("state") != "down"
        if not stream["ok"]:
            stream["reason"] = f"market stream down ({stream.get('last_error')}); REST polling stands in"
        sections["stream"] = stream
    elif app.get(keys.TAPE) is not None:
        # a replay: MEXC's stream is off (the tape serves the public channels; its clock
        # is GET /admin/api/clock)
        sections["stream"] = {"enabled": False, "state": "disabled", "symbols": {}, "ok": True}
    return sections


async def healthz(request: web.Request) -> web.Response:
    sections = health_sections(request.app)
    reasons = [f"{name}: {s['reason']}" for name, s in sections.items() if not s["ok"]]
    fatal = any(not sections[name]["ok"] for name in FATAL_SECTIONS if name in sections)
    body = {
        "status": "degraded" if reasons else "ok",
        "reasons": reasons,
        "mode": request.app[keys.MODE].current,
        "version": __version__,
        **sections,
        "accounts": len(request.app[keys.SERVICE].accounts),
    }
    return _json(body, 503 if fatal else 200)


async def metrics(request: web.Request) -> web.Response:
    data = request.app[keys.METRICS].render()
    return web.Response(body=data, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


def _account_id(request: web.Request) -> int:
    service = request.config_dict[keys.SERVICE]
    raw = request.match_info["account_id"]
    # ASCII digits only: int() would also read ' 1', '1_0' or Arabic-Indic digits
    account_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 19 else -1
    if account_id not in service.accounts:
        raise web.HTTPNotFound(reason="unknown account")
    return account_id


async def positions(request: web.Request, account_id: int) -> list[dict[str, Any]]:
    """Per asset traded: the open position the account's fills add up to (average-cost
    method, the dashboard's PnL ledger: starting balances are not trades), valued at the
    symbol's last price. `unrealised_pnl` is in the symbol's quote asset, null when MEXC
    has no price."""
    service = request.config_dict[keys.SERVICE]
    ledger = await request.config_dict[keys.PNL].ledger(account_id)
    out: list[dict[str, Any]] = []
    for symbol in sorted(ledger.positions):
        p = ledger.positions[symbol]
        if not p.qty:
            continue
        price = await service.symbol_price(symbol)
        out.append({
            "asset": p.base,
            "symbol": symbol,
            "quantity": p.qty,
            "avg_cost": p.avg_cost,
            "quote": p.quote,
            "price": price,
            "unrealised_pnl": p.unrealised(price),
        })
    return out


async def account_summary(request: web.Request, account_id: int) -> dict[str, Any]:
    service = request.config_dict[keys.SERVICE]
    info = service.accounts[account_id]
    acct = service.account(account_id)
    return {
        "id": account_id,
        "name": info.settings.name,
        "api_key": mask_key(info.settings.api_key),
        "mx_deduct": acct.mx_deduct,
        "open_orders": len(acct.open_orders),
        "balances": [
            {"asset": b.asset, "free": b.free, "locked": b.locked, "total": b.total}
            for b in service.balances(account_id)
        ],
        "positions": await positions(request, account_id),
    }


async def list_accounts(request: web.Request) -> web.Response:
    service = request.config_dict[keys.SERVICE]
    return _json({"accounts": [await account_summary(request, a) for a in service.account_ids()]})


async def get_account(request: web.Request) -> web.Response:
    return _json(await account_summary(request, _account_id(request)))


async def reset_account(request: web.Request) -> web.Response:
    _guard(request)
    account_id = _account_id(request)
    await request.config_dict[keys.SERVICE].reset_account(account_id)
    return _json(await account_summary(request, account_id))


# an amount as text: ASCII, the whole value (Decimal() would also read ' 5', '1_0' or
# Arabic-Indic digits)
_AMOUNT = re.compile(r"[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?")


async def _asset_amount(request: web.Request, allow_zero: bool) -> tuple[str, Decimal]:
    try:
        data = jsonutil.loads_decimal(await bodies.read(request))
        raw_asset, raw_amount = data["asset"], data["amount"]
        asset = str(raw_asset).upper()
        if isinstance(raw_amount, str) and not _AMOUNT.fullmatch(raw_amount):
            raise ValueError("not an ASCII decimal")
        amount = Decimal(str(raw_amount))
    except (ValueError, KeyError, TypeError, InvalidOperation):
        raise web.HTTPBadRequest(reason='expected {"asset": "USDT", "amount": "100"}') from None
    if (
        not isinstance(raw_asset, str)
        or not raw_asset.isascii()
        or not amount.is_finite()
        or amount < 0
        or (amount == 0 and not allow_zero)
        # a plausible amount: below 10^15 and at most 18 decimals (an exponent like 1e-999999999
        # would be written out as a gigabyte of zeros; 10^5000 is no balance)
        or amount.adjusted() >= 15
        or -amount.as_tuple().exponent > 18  # type: ignore[operator]
        or not asset.isalnum()
        or len(asset) > 20
    ):
        kind = "a non-negative" if allow_zero else "a positive"
        raise web.HTTPBadRequest(reason=f"amount must be {kind} decimal, asset alphanumeric")
    return asset, amount


async def fund_account(request: web.Request) -> web.Response:
    """Add `amount` to the free balance of `asset`."""
    _guard(request)
    account_id = _account_id(request)
    asset, amount = await _asset_amount(request, allow_zero=False)
    await request.config_dict[keys.SERVICE].fund(account_id, asset, amount)
    return _json(await account_summary(request, account_id))


async def set_balance(request: web.Request) -> web.Response:
    """Set the free balance of `asset` to `amount` (what open orders hold stays locked)."""
    _guard(request)
    account_id = _account_id(request)
    asset, amount = await _asset_amount(request, allow_zero=True)
    await request.config_dict[keys.SERVICE].set_balance(account_id, asset, amount)
    return _json(await account_summary(request, account_id))


async def get_mode(request: web.Request) -> web.Response:
    mode = request.config_dict[keys.MODE]
    return _json({"mode": mode.current, "live_armed": mode.armed})


# what a switch to live must carry, as the dashboard asks before it switches
LIVE_CONFIRMATION = "LIVE"


async def set_mode(request: web.Request) -> web.Response:
    """`{"mode": "paper"}`, or `{"mode": "live", "confirm": "LIVE"}`: a switch to live
    trades real money and needs the explicit confirmation (400 without it)."""
    _guard(request)
    mode = request.config_dict[keys.MODE]
    try:
        data = jsonutil.loads(await bodies.read(request))
        wanted = str(data["mode"])
    except (ValueError, KeyError, TypeError):
        raise web.HTTPBadRequest(reason='expected {"mode": "paper"|"live"}') from None
    if wanted == "live" and mode.armed and data.get("confirm") != LIVE_CONFIRMATION:
        raise web.HTTPBadRequest(
            reason='a switch to live trades real money: send {"mode": "live", "confirm": "LIVE"}'
        )
    try:
        await request.config_dict[keys.SERVICE].switch_mode(wanted, source="admin")
    except PermissionError as exc:
        raise web.HTTPForbidden(reason=str(exc)) from None
    except ValueError as exc:
        raise web.HTTPBadRequest(reason=str(exc)) from None
    return _json({"mode": mode.current, "live_armed": mode.armed})


def _replay(request: web.Request) -> Replay:
    replay = request.config_dict.get(keys.TAPE)
    if replay is None or replay.feeder is None:
        raise web.HTTPNotFound(
            reason="no tape: the clock exists in replay only (python -m proxy --replay FILE)"
        )
    return replay


async def get_clock(request: web.Request) -> web.Response:
    """The tape's clock: {"tape_ms", "mode", "speed", "start_ms", "end_ms", "next_ms",
    "ended", "cassette", "kind"}."""
    return _json(_replay(request).state())


async def move_clock(request: web.Request) -> web.Response:
    """Move a stepped tape: {"advance_ms": n} or {"to_ms": t}. Answers the clock's state
    plus "passed" once every trade and book up to the new time has been matched."""
    _guard(request)
    replay = _replay(request)
    try:
        body = jsonutil.loads(await bodies.read(request))
    except ValueError:
        raise web.HTTPBadRequest(reason='expected {"advance_ms": <int>} or {"to_ms": <int>}') from None
    try:
        return _json(await replay.move(body))
    except ClockMoveError as exc:
        if exc.status == 409:
            raise web.HTTPConflict(reason=str(exc)) from None
        raise web.HTTPBadRequest(reason=str(exc)) from None


ADMIN_ROUTES = [
    web.get("/healthz", healthz),
    web.get("/metrics", metrics),
    web.get("/admin/api/accounts", list_accounts),
    web.get("/admin/api/accounts/{account_id}", get_account),
    web.post("/admin/api/accounts/{account_id}/reset", reset_account),
    web.post("/admin/api/accounts/{account_id}/fund", fund_account),
    web.post("/admin/api/accounts/{account_id}/balance", set_balance),
    web.get("/admin/api/mode", get_mode),
    web.post("/admin/api/mode", set_mode),
    web.get("/admin/api/clock", get_clock),
    web.post("/admin/api/clock", move_clock),
]

API_PREFIX = "/admin/api/"


def install(app: web.Application) -> None:
    """Add ADMIN_ROUTES to the API app: /healthz and /metrics on it (they answer any
    Host: Docker's health check, Prometheus by service name), the admin API as a sub-app
    at /admin/api/ behind `trust.admin_middleware` (Host and Origin checks)."""
    api = web.Application(middlewares=[trust.admin_middleware])
    for r in ADMIN_ROUTES:
        if r.path.startswith(API_PREFIX):
            api.router.add_route(r.method, r.path[len(API_PREFIX) - 1:], r.handler)
        else:
            app.router.add_route(r.method, r.path, r.handler)
    app.add_subapp(API_PREFIX, api)
