"""Dashboard views: the pages, the JSON the page polls, CSV exports, and the two state
changes (mode switch, account reset), which go through the same service functions as the
admin API.

Every state change needs a valid CSRF token (see `csrf`), and the admin token whenever
`proxy.admin.admin_token_ok` asks for one (always when a token is configured; without one,
a request that did not reach a loopback address can change nothing, proxy/trust.py).
The CSRF cookie is `Secure` on the TLS listener, and named apart from the plain one's, so a
browser that uses both on one host name keeps both. The token may come in a
header, as for the admin API, or in the form's `admin_token` field.
"""

from __future__ import annotations

import csv
import hmac
import io
import re
from collections.abc import Iterable
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from .. import __version__, bodies, jsonutil, keys, trust
from ..admin import admin_token_ok
from ..service import PaperService
from ..store import StoreError
from . import csrf, present, snapshot

# this request's CSRF nonce, and whether it is new (then the response sets the cookie)
CSRF_NONCE = web.RequestKey("csrf_nonce", tuple[str, bool])

# the sections of the overview page that are re-rendered while it is open
SECTIONS = ("balances", "open_orders", "streams", "performance", "fills", "recent_orders", "events")

EVENT_KINDS = (
    "order.new",
    "order.fill",
    "order.canceled",
    "order.rejected",
    "order.expired",
    "account.created",
    "account.reset",
    "account.fund",
    "account.set_balance",
    "account.mx_deduct",
    "live.request",
    "mode.switch",
)
EVENTS_PAGE = 100
EXPORT_LIMIT = 1_000_000

NOTICES = {
    "reset": "The account was reset to its starting balances; its orders, fills and equity curve "
    "were removed, and the curve starts again from here.",
    "mode-paper": "Switched to PAPER mode: signed requests are answered by the paper engine.",
    "mode-live": "Switched to LIVE mode: signed requests now go to MEXC with real money.",
    "mode-same": "The mode was already set; nothing changed.",
}


# ---------------------------------------------------------------------------- helpers


def _service(request: web.Request) -> PaperService:
    return request.config_dict[keys.SERVICE]


_ID = re.compile(r"[0-9]{1,19}", re.ASCII)
_MAX_ID = 2**63 - 1  # SQLite's INTEGER: a larger one overflows the query


def parse_id(text: str) -> int | None:
    """An account or event id as URLs carry it: ASCII digits only, the whole value, at
    most 2^63 - 1; None otherwise (`int()` would take ` 5`, `1_0`, Arabic-Indic digits and 30 digits)."""
    if not _ID.fullmatch(text):
        return None
    n = int(text)
    return n if n <= _MAX_ID else None


def _selected_account(request: web.Request) -> int | None:
    service = _service(request)
    ids = service.account_ids()
    if not ids:
        return None
    wanted = parse_id(request.query.get("account", ""))
    return wanted if wanted in service.accounts else ids[0]


def _account_from_path(request: web.Request) -> int:
    account_id = parse_id(request.match_info["account_id"])
    if account_id is None or account_id not in _service(request).accounts:
        raise web.HTTPNotFound(reason="unknown account")
    return account_id


def _url(request: web.Request, name: str, query: dict[str, Any] | None = None, **parts: str) -> str:
    url = request.app.router[name].url_for(**parts)
    if query:
        url = url.with_query({k: str(v) for k, v in query.items() if v is not None and v != ""})
    return str(url)


def _page_urls(request: web.Request, acct_q: dict[str, Any]) -> dict[str, str]:
    """The links every page's frame needs (navigation keeps the selected account)."""
    return {
        "overview": _url(request, "index", acct_q),
        "events": _url(request, "events", acct_q),
        "settings": _url(request, "settings", acct_q),
        "css": _url(request, "static", {"v": __version__}, filename="dashboard.css"),
        "js": _url(request, "static", {"v": __version__}, filename="dashboard.js"),
    }


def _cookie_nonce(request: web.Request) -> str | None:
    return request.cookies.get(csrf.cookie_name(trust.is_tls(request)))


def _csrf_nonce(request: web.Request) -> tuple[str, bool]:
    nonce = _cookie_nonce(request)
    if csrf.nonce_ok(nonce):
        assert nonce is not None
        return nonce, False
    return csrf.new_nonce(), True


def _token_required(request: web.Request) -> bool:
    return request.config_dict[keys.SETTINGS].server.admin_token is not None


def _changes_possible(request: web.Request) -> bool:
    server = request.config_dict[keys.SETTINGS].server
    return server.admin_token is not None or trust.arrived_on_loopback(request)


def _base_context(request: web.Request, page: str, account_id: int | None) -> dict[str, Any]:
    service = _service(request)
    mode = request.config_dict[keys.MODE]
    nonce, _ = request[CSRF_NONCE]
    acct_q = {"account": account_id}
    return {
        "page": page,
        "mode": mode.current,
        "live_armed": mode.armed,
        "version": __version__,
        "accounts": [
            {"id": str(a), "label": service.label(a), "selected": a == account_id}
            for a in service.account_ids()
        ],
        "account_id": "" if account_id is None else str(account_id),
        "account_label": "" if account_id is None else service.label(account_id),
        "urls": _page_urls(request, acct_q),
        "csrf_field": csrf.FIELD,
        "csrf_token": csrf.token_for(request.config_dict[keys.DASHBOARD_SECRET], nonce),
        "token_required": _token_required(request),
        "changes_possible": _changes_possible(request),
        "notice": NOTICES.get(request.query.get("done", ""), ""),
    }


def _render(request: web.Request, template: str, context: dict[str, Any], status: int = 200) -> web.Response:
    resp = aiohttp_jinja2.render_template(template, request, context, status=status)
    nonce, fresh = request[CSRF_NONCE]
    if fresh:
        secure = trust.is_tls(request)
        resp.set_cookie(
            csrf.cookie_name(secure), nonce, httponly=True, samesite="Strict", secure=secure,
            path=_url(request, "index"),
        )
    return resp


def _prepare(request: web.Request) -> None:
    request[CSRF_NONCE] = _csrf_nonce(request)


async def _guarded_form(request: web.Request) -> Any:
    """The POSTed form, once the request has proved it may change state."""
    form = await bodies.form(request)
    token = form.get(csrf.FIELD)
    if not csrf.token_ok(
        request.config_dict[keys.DASHBOARD_SECRET],
        _cookie_nonce(request),
        token if isinstance(token, str) else None,
    ):
        raise web.HTTPForbidden(
            reason="CSRF check failed: the form's security token is missing or stale "
            "(reload the page and try again)"
        )
    if not _admin_ok(request, form.get("admin_token")):
        if not _changes_possible(request):
            raise web.HTTPUnauthorized(
                reason="this request did not reach a loopback address and the server has no "
                "server.admin_token configured, so the dashboard accepts no changes from here"
            )
        raise web.HTTPUnauthorized(reason="admin token required (server.admin_token)")
    return form


def _admin_ok(request: web.Request, given: Any) -> bool:
    if admin_token_ok(request):
        return True
    token = request.config_dict[keys.SETTINGS].server.admin_token
    if token is None or not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(given.encode(), token.encode())


# ---------------------------------------------------------------------------- pages


async def _overview_context(request: web.Request, account_id: int | None) -> dict[str, Any]:
    ctx = _base_context(request, "overview", account_id)
    if account_id is None:
        return ctx
    settings = request.config_dict[keys.SETTINGS]
    data = await snapshot.overview(
        _service(request), request.config_dict[keys.PNL], account_id, settings.dashboard.quote_asset
    )
    ctx.update(data)
    ctx.update(snapshot.streams(
        request.config_dict.get(keys.USER_STREAMS), request.config_dict.get(keys.LISTEN_KEYS), account_id
    ))
    ctx["equity_interval"] = f"{settings.dashboard.equity_interval_s:g}"
    ctx["equity_gap"] = f"{settings.dashboard.equity_change_gap_s:g}"
    ctx["urls"].update(
        state=_url(request, "state", {"account": account_id}),
        orders_csv=_url(request, "export_orders", account_id=str(account_id)),
        trades_csv=_url(request, "export_trades", account_id=str(account_id)),
    )
    return ctx


async def index(request: web.Request) -> web.Response:
    _prepare(request)
    ctx = await _overview_context(request, _selected_account(request))
    return _render(request, "index.html", ctx)


async def state(request: web.Request) -> web.Response:
    """What the open overview page polls: the mode and the re-rendered sections."""
    _prepare(request)
    account_id = _selected_account(request)
    ctx = await _overview_context(request, account_id)
    env = aiohttp_jinja2.get_env(request.app)
    html = {}
    if account_id is not None:
        for name in SECTIONS:
            html[name] = env.get_template(f"sections/{name}.html").render(ctx)
    body = {
        "mode": ctx["mode"],
        "banner": env.get_template("sections/banner.html").render(ctx),
        "account": ctx["account_id"],
        "html": html,
        "data": {
            k: ctx.get(k)
            for k in ("total_value", "balances", "open_orders", "recent_orders", "fills",
                      "fees_paid", "pnl_rows", "pnl_realised", "pnl_unrealised", "unpriced")
        },
    }
    return web.Response(
        body=jsonutil.dumps(body), content_type="application/json", headers={"Cache-Control": "no-store"}
    )


async def events(request: web.Request) -> web.Response:
    _prepare(request)
    service = _service(request)
    account_id = _selected_account(request)
    q = request.query
    filter_account: int | None = None
    if q.get("filter_account", "") not in ("", "all"):
        filter_account = parse_id(q["filter_account"])
        if filter_account is None:
            raise web.HTTPBadRequest(reason="filter_account must be an account id")
    elif "filter_account" not in q:
        filter_account = account_id
    kind = q.get("kind", "").strip()
    if kind and (len(kind) > 40 or not kind.isascii() or not all(c.isalnum() or c in "._*" for c in kind)):
        raise web.HTTPBadRequest(reason="kind must look like order.fill or order.*")
    before: int | None = None
    if q.get("before"):
        before = parse_id(q["before"])
        if before is None:
            raise web.HTTPBadRequest(reason="before must be an event id")
    rows = await service.store.events(filter_account, kind or None, EVENTS_PAGE, before)
    labels = {a: service.label(a) for a in service.account_ids()}
    ctx = _base_context(request, "events", account_id)
    ctx.update(
        events=[snapshot.event_row(e, labels) for e in rows],
        kinds=[{"kind": k, "selected": k == kind} for k in EVENT_KINDS],
        kind=kind,
        filter_account="all" if filter_account is None else str(filter_account),
        filter_accounts=[
            {"id": str(a), "label": labels[a], "selected": a == filter_account}
            for a in service.account_ids()
        ],
        older_url=_url(
            request,
            "events",
            {
                "account": account_id,
                "filter_account": "all" if filter_account is None else filter_account,
                "kind": kind,
                "before": rows[-1]["id"],
            },
        )
        if len(rows) == EVENTS_PAGE
        else "",
        newest_url=_url(
            request,
            "events",
            {"account": account_id, "filter_account": "all" if filter_account is None else filter_account,
             "kind": kind},
        )
        if before is not None
        else "",
    )
    return _render(request, "events.html", ctx)


async def settings_page(request: web.Request) -> web.Response:
    _prepare(request)
    account_id = _selected_account(request)
    ctx = _base_context(request, "settings", account_id)
    service = _service(request)
    settings = request.config_dict[keys.SETTINGS]
    ctx.update(
        mode_url=_url(request, "set_mode"),
        reset_accounts=[
            {
                "id": str(a),
                "label": service.label(a),
                "url": _url(request, "reset", account_id=str(a)),
                "starting": ", ".join(
                    f"{present.amount(v)} {k}"
                    for k, v in sorted(settings.starting_balances(service.accounts[a].settings).items())
                )
                or "nothing",
            }
            for a in service.account_ids()
        ],
        listen=trust.describe(request),
    )
    return _render(request, "settings.html", ctx)


# ---------------------------------------------------------------------------- changes


def _confirm_page(
    request: web.Request, title: str, message: str, fields: dict[str, str], danger: bool
) -> web.Response:
    ctx = _base_context(request, "confirm", _selected_account(request))
    ctx.update(
        title=title,
        message=message,
        action=str(request.rel_url.path),
        fields=[{"name": k, "value": v} for k, v in fields.items()],
        danger=danger,
    )
    return _render(request, "confirm.html", ctx)


async def set_mode(request: web.Request) -> web.Response:
    _prepare(request)
    form = await _guarded_form(request)
    wanted = form.get("mode")
    if wanted not in ("paper", "live"):
        raise web.HTTPBadRequest(reason="mode must be paper or live")
    mode = request.config_dict[keys.MODE]
    if wanted == "live" and not mode.armed:
        raise web.HTTPForbidden(
            reason="live mode was not armed at start (needs live.enabled: true in the config "
            "and PAPER_TRADING=false in the environment)"
        )
    back = form.get("account", "")
    if wanted == "live" and mode.current != "live" and form.get("confirm") != "yes":
        return _confirm_page(
            request,
            "Switch to LIVE trading?",
            "From now on, signed order and account requests are forwarded to MEXC and trade "
            "REAL MONEY on the account whose API key the bot uses.",
            {"mode": "live", "account": str(back)},
            danger=True,
        )
    try:
        changed = await _service(request).switch_mode(str(wanted), source="dashboard")
    except PermissionError as exc:
        raise web.HTTPForbidden(reason=str(exc)) from None
    except StoreError:
        raise web.HTTPServiceUnavailable(reason="the audit log could not be written") from None
    done = f"mode-{wanted}" if changed else "mode-same"
    raise web.HTTPSeeOther(_url(request, "settings", {"account": back, "done": done}))


async def reset(request: web.Request) -> web.Response:
    _prepare(request)
    form = await _guarded_form(request)
    account_id = _account_from_path(request)
    service = _service(request)
    if form.get("confirm") != "yes":
        return _confirm_page(
            request,
            f"Reset account {service.label(account_id)}?",
            "Its balances go back to the starting balances, and its open orders, order "
            "history, fills and equity curve are deleted. This cannot be undone.",
            {},
            danger=False,
        )
    try:
        await service.reset_account(account_id)
    except StoreError:
        raise web.HTTPServiceUnavailable(reason="the reset could not be written") from None
    raise web.HTTPSeeOther(_url(request, "index", {"account": account_id, "done": "reset"}))


# ---------------------------------------------------------------------------- exports

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    """Free text in a CSV cell, defused for spreadsheets (no formula injection)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv_response(name: str, header: list[str], rows: Iterable[list[str]]) -> web.Response:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(rows)
    return web.Response(
        text=buf.getvalue(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


async def export_orders(request: web.Request) -> web.Response:
    account_id = _account_from_path(request)
    service = _service(request)
    acct = service.account(account_id)
    orders = await service.store.orders(account_id, None, None, None, EXPORT_LIMIT)
    fmt = jsonutil.fmt
    rows = []
    for stored in orders:
        o = acct.open_orders.get(stored.order_id, stored)
        rows.append([
            o.order_id, _cell(o.client_order_id or ""), o.symbol, o.side.value, o.type.value,
            o.status.value, fmt(o.price), fmt(o.orig_qty), fmt(o.orig_quote_order_qty),
            fmt(o.executed_qty), fmt(o.cumm_quote_qty), str(o.time_ms), str(o.update_ms),
            present.when(o.time_ms),
        ])
    return _csv_response(
        f"mexc-paper-account{account_id}-orders.csv",
        ["orderId", "clientOrderId", "symbol", "side", "type", "status", "price", "origQty",
         "origQuoteOrderQty", "executedQty", "cummulativeQuoteQty", "time", "updateTime", "timeUtc"],
        rows,
    )


async def export_trades(request: web.Request) -> web.Response:
    account_id = _account_from_path(request)
    service = _service(request)
    fills = await service.store.fills(account_id, None, None, None, None, EXPORT_LIMIT)
    fmt = jsonutil.fmt
    rows = [
        [
            f.trade_id, f.order_id, _cell(f.client_order_id or ""), f.symbol, f.side.value,
            fmt(f.price), fmt(f.qty), fmt(f.quote_qty), fmt(f.commission), f.commission_asset,
            "true" if f.is_maker else "false", str(f.time_ms), present.when(f.time_ms),
            str(f.reason.get("source", "")), _cell(present.explain_fill(f)),
        ]
        for f in fills
    ]
    return _csv_response(
        f"mexc-paper-account{account_id}-trades.csv",
        ["tradeId", "orderId", "clientOrderId", "symbol", "side", "price", "qty", "quoteQty",
         "commission", "commissionAsset", "isMaker", "time", "timeUtc", "fillSource", "explanation"],
        rows,
    )


ROUTES = [
    web.get("/", index, name="index"),
    web.get("/events", events, name="events"),
    web.get("/settings", settings_page, name="settings"),
    web.post("/settings/mode", set_mode, name="set_mode"),
    web.post("/accounts/{account_id}/reset", reset, name="reset"),
    web.get("/api/state", state, name="state"),
    web.get("/export/{account_id}/orders.csv", export_orders, name="export_orders"),
    web.get("/export/{account_id}/trades.csv", export_trades, name="export_trades"),
]


def error_page(request: web.Request, status: int, message: str) -> web.Response:
    """The dashboard's HTML error page (the API app keeps its MEXC JSON errors)."""
    mode = request.config_dict[keys.MODE]
    account_id = _selected_account(request)
    acct_q = {"account": account_id}
    ctx = {
        "page": "error",
        "mode": mode.current,
        "version": __version__,
        "status": str(status),
        "message": message,
        "accounts": [],
        "urls": _page_urls(request, acct_q),
    }
    return aiohttp_jinja2.render_template("error.html", request, ctx, status=status)
