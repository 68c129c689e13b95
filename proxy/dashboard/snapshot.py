"""What the dashboard shows for one account, gathered from the service and the store and
formatted for the templates (strings only: the templates hold no logic).

Read-only: nothing here changes state.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..engine.model import Order, OrderType
from ..equity import PnlCache
from ..jsonutil import dumps_pretty
from ..performance import asset_price, value_balances
from ..service import PaperService
from ..ws.listenkeys import ListenKeys
from ..ws.streams import StreamHub
from . import chart
from .present import (
    amount,
    event_summary,
    explain_fill,
    money,
    price,
    sign_class,
    signed_money,
    when,
)

RECENT_ORDERS = 25
RECENT_FILLS = 30
RECENT_EVENTS = 15
EQUITY_POINTS = 1000


def order_row(o: Order) -> dict[str, str]:
    return {
        "time": when(o.time_ms),
        "order_id": o.order_id,
        "client_order_id": o.client_order_id or "",
        "symbol": o.symbol,
        "side": o.side.value,
        "side_class": o.side.value.lower(),
        "type": o.type.value,
        "status": o.status.value,
        # a MARKET order's stored price is the engine's slippage cap, not a price it asked for
        "price": "market" if o.type is OrderType.MARKET or not o.price else amount(o.price),
        "qty": amount(o.orig_qty) if o.orig_qty else "-",
        "quote_qty": amount(o.orig_quote_order_qty) if o.orig_quote_order_qty else "-",
        "executed": amount(o.executed_qty),
        "cumm_quote": amount(o.cumm_quote_qty),
        "queue_ahead": "not visible yet" if o.queue_ahead is None else amount(o.queue_ahead),
        "locked": f"{amount(o.locked_amount)} {o.locked_asset}",
    }


def event_row(e: dict[str, Any], labels: dict[int, str]) -> dict[str, str]:
    acct = e.get("account_id")
    kind = str(e["kind"])
    return {
        "id": str(e["id"]),
        "time": when(e["time"]),
        "account": "-" if acct is None else labels.get(acct, str(acct)),
        "kind": kind,
        "kind_class": kind.split(".")[0],
        "mode": str(e["mode"]),
        "summary": event_summary(kind, e["data"]),
        "data": dumps_pretty(e["data"]),
    }


async def overview(
    service: PaperService, pnl_cache: PnlCache, account_id: int, quote: str
) -> dict[str, Any]:
    """Everything the overview page and its live sections need, as display strings."""
    store = service.store
    ledger = await pnl_cache.ledger(account_id)
    held = [b for b in service.balances(account_id) if b.total]
    wanted = {b.asset + quote for b in held if b.asset != quote}
    for p in ledger.positions.values():
        wanted.add(p.symbol)
        if p.quote != quote:
            wanted.add(p.quote + quote)
    prices = await service.mark_prices(wanted)
    labels = {a: service.label(a) for a in service.account_ids()}

    valuation = value_balances(service.balances(account_id), prices, quote)
    balances = [
        {
            "asset": a.asset,
            "free": amount(a.free),
            "locked": amount(a.locked),
            "total": amount(a.total),
            "price": amount(a.price),
            "value": money(a.value),
        }
        for a in valuation.assets
    ]

    acct = service.account(account_id)
    open_orders = [order_row(o) for o in service.open_orders(account_id)]
    recent = await store.orders(account_id, None, None, None, RECENT_ORDERS, newest_first=True)
    recent_orders = [order_row(acct.open_orders.get(o.order_id, o)) for o in recent]

    fills = await store.fills(account_id, None, None, None, None, RECENT_FILLS, newest_first=True)
    fill_rows = [
        {
            "time": when(f.time_ms),
            "trade_id": f.trade_id,
            "order_id": f.order_id,
            "symbol": f.symbol,
            "side": f.side.value,
            "side_class": f.side.value.lower(),
            "role": "maker" if f.is_maker else "taker",
            "price": amount(f.price),
            "qty": amount(f.qty),
            "quote_qty": amount(f.quote_qty),
            "fee": f"{amount(f.commission)} {f.commission_asset}",
            "why": explain_fill(f),
        }
        for f in fills
    ]

    report = ledger.report(prices, quote)
    pnl_rows = [
        {
            "symbol": r.symbol,
            "position": amount(r.position),
            "avg_cost": price(r.avg_cost) if r.position else "-",
            "price": amount(r.price),
            "realised": signed_money(r.realised),
            "realised_class": sign_class(r.realised),
            "unrealised": signed_money(r.unrealised),
            "unrealised_class": sign_class(r.unrealised),
            "fees": money(r.fees),
            "quote": r.quote,
            "fills": str(r.fills),
            "volume": money(r.volume),
        }
        for r in report.symbols
    ]
    bars: list[tuple[str, Decimal, Decimal | None]] = []
    for r in report.symbols:
        conv = asset_price(r.quote, prices, quote)
        if conv is None:
            continue
        bars.append((r.symbol, r.realised * conv, None if r.unrealised is None else r.unrealised * conv))
    if len(bars) > 1:
        bars.append(("total", report.realised, report.unrealised))
    fees_paid = [
        {"asset": a, "amount": amount(v)} for a, v in sorted(ledger.fees_paid.items())
    ]

    points = await store.equity(account_id, EQUITY_POINTS)
    recorded = len(points)
    if valuation.complete:
        # the live value as the newest point, so the curve moves between recordings (a
        # total that leaves out an unpriced asset is no value of the account: not drawn)
        now_ms = service.clock.now_ms()
        if not points or points[-1][0] < now_ms:
            points = [*points, (now_ms, valuation.total)]
    live_point = len(points) > recorded
    start_value = points[0][1] if points else None
    change = None if start_value is None or not valuation.complete else valuation.total - start_value

    events = await store.events(account_id, None, RECENT_EVENTS)

    return {
        "quote": quote,
        "prices_ok": bool(prices),
        "balances": balances,
        "total_value": money(valuation.total) if valuation.complete else "n/a",
        "unpriced": list(valuation.unpriced),
        "open_orders": open_orders,
        "recent_orders": recent_orders,
        "fills": fill_rows,
        "fees_paid": fees_paid,
        "fees_total": money(report.fees),
        "pnl_rows": pnl_rows,
        "pnl_realised": signed_money(report.realised),
        "pnl_realised_class": sign_class(report.realised),
        "pnl_unrealised": signed_money(report.unrealised),
        "pnl_unrealised_class": sign_class(report.unrealised),
        "pnl_total": signed_money(report.total),
        "pnl_total_class": sign_class(report.total),
        "pnl_incomplete": list(report.incomplete),
        "equity_points": f"{recorded} recorded point" + ("" if recorded == 1 else "s")
        + (" + the live value" if live_point else ""),
        "equity_change": signed_money(change),
        "equity_change_class": sign_class(change),
        "equity_since": when(points[0][0]) if points else "",
        "equity_svg": chart.equity_svg(points, quote),
        "pnl_svg": chart.pnl_svg(bars, quote),
        "events": [event_row(e, labels) for e in events],
    }


def streams(hub: StreamHub | None, listen_keys: ListenKeys | None, account_id: int) -> dict[str, Any]:
    """The account's connected user streams (GET /ws?listenKey=), keys masked."""
    rows = [
        {
            "key": s["key"],
            "since": when(s["since_ms"]),
            "channels": ", ".join(c.split("@")[1].removeprefix("private.").split(".")[0]
                                  for c in s["channels"]) or "-",
            "public": str(s["public"]),
            "frames": str(s["frames"]),
            "queued": str(s["queued"]),
        }
        for s in (hub.streams(account_id) if hub is not None else [])
    ]
    keys = len(listen_keys.valid(account_id)) if listen_keys is not None else 0
    return {"streams": rows, "listen_keys": str(keys)}
