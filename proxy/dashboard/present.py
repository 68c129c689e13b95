"""How the dashboard shows things: number and time formats, and why a fill happened.

Pure functions. Money stays Decimal and is rendered with `jsonutil.fmt` (exact amounts, as
the API shows them) or rounded with a named rounding mode (values and PnL in the
valuation asset).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from ..engine.model import Fill
from ..jsonutil import fmt

CENT = Decimal("0.01")
PRICE_STEP = Decimal("1e-8")
NA = "n/a"


def amount(d: Decimal | None) -> str:
    """An exact amount (balances, quantities, prices from the exchange)."""
    return NA if d is None else fmt(d)


def money(d: Decimal | None, places: Decimal = CENT) -> str:
    """A value in the valuation asset, rounded half-even to cents, with thousands separators."""
    if d is None:
        return NA
    q = d.quantize(places, rounding=ROUND_HALF_EVEN)
    if not q:
        q = abs(q)  # no "-0.00"
    return format(q, ",f")


def signed_money(d: Decimal | None) -> str:
    s = money(d)
    if d is not None and not s.startswith("-") and d.quantize(CENT, rounding=ROUND_HALF_EVEN) > 0:
        return "+" + s
    return s


def price(d: Decimal | None) -> str:
    """A derived price (average cost): at most 8 decimals, half-even."""
    if d is None:
        return NA
    return fmt(d.quantize(PRICE_STEP, rounding=ROUND_HALF_EVEN))


def sign_class(d: Decimal | None) -> str:
    """CSS class for a PnL figure: pos, neg or flat."""
    if d is None or not d.quantize(CENT, rounding=ROUND_HALF_EVEN):
        return "flat"
    return "pos" if d > 0 else "neg"


def when(ms: int | None) -> str:
    """Epoch milliseconds as UTC, to the millisecond."""
    if ms is None:
        return NA
    t = datetime.fromtimestamp(ms // 1000, UTC)
    return f"{t:%Y-%m-%d %H:%M:%S}.{ms % 1000:03d} UTC"


def short_time(ms: int) -> str:
    t = datetime.fromtimestamp(ms // 1000, UTC)
    return f"{t:%m-%d %H:%M}"


def _v(x: Any) -> str:
    """A value from a fill reason: Decimal in memory, a string once stored."""
    if x is None:
        return "unknown"
    if isinstance(x, Decimal):
        return fmt(x)
    return str(x)


def _nonzero(x: Any) -> bool:
    if x is None:
        return False
    try:
        return Decimal(str(x)) != 0
    except ArithmeticError:
        return True


def explain_fill(fill: Fill) -> str:
    """One or two sentences on why the fill happened, from `Fill.reason`."""
    r: Mapping[str, Any] = fill.reason or {}
    source = r.get("source")
    if source == "book" and "level_price" in r:
        text = (
            f"Taker: took {fmt(fill.qty)} from the order book level at {_v(r.get('level_price'))}, "
            f"which showed {_v(r.get('level_qty'))}"
        )
        if _nonzero(r.get("consumed_before")):
            text += f" ({_v(r.get('consumed_before'))} of it already taken by earlier paper orders)"
        return text + f"; book snapshot {_v(r.get('book_version'))}."
    if source == "book" and "crossed_levels" in r:
        levels = ", ".join(
            f"{_v(lv.get('qty'))} at {_v(lv.get('price'))} (of {_v(lv.get('displayed'))} shown)"
            for lv in r.get("crossed_levels") or ()
            if isinstance(lv, Mapping)
        )
        text = (
            f"Maker: the order book moved through the order's price {fmt(fill.price)}; "
            f"filled from the crossing levels {levels or 'unknown'}"
            f" (book snapshot {_v(r.get('book_version'))})."
        )
        if r.get("queue_ahead_before") is not None:
            text += f" Queue ahead was {_v(r.get('queue_ahead_before'))}."
        return text
    if source == "trade":
        t = r.get("trade") if isinstance(r.get("trade"), Mapping) else {}
        assert isinstance(t, Mapping)
        aggressor = "a seller" if t.get("isBuyerMaker") else "a buyer"
        trade_ms = t.get("time")
        at = f" at {when(trade_ms)}" if isinstance(trade_ms, int) else ""
        head = f"Maker: a public trade of {_v(t.get('qty'))} at {_v(t.get('price'))}{at} ({aggressor} took)"
        model = _v(r.get("model"))
        if model == "touch":
            return (
                f"{head} reached the order's price {fmt(fill.price)}; the optimistic touch model "
                "fills the whole remainder on any touch."
            )
        if r.get("through"):
            return (
                f"{head} printed through the order's price {fmt(fill.price)}; the fill is capped by "
                f"that trade's size (fill model {model})."
            )
        before, after = r.get("queue_ahead_before"), r.get("queue_ahead_after")
        return (
            f"{head} printed at the order's price; queue ahead went from {_v(before)} to "
            f"{_v(after)}, and what was left of the trade filled the order (fill model {model})."
        )
    return "No explanation was recorded for this fill."


def _s(x: Any) -> str:
    """A scalar from a stored event (money is a string there); '-' when missing."""
    if x is None or x == "":
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    return _v(x)


def _balances(b: Any) -> str:
    if not isinstance(b, Mapping) or not b:
        return "nothing"
    return ", ".join(f"{_s(v)} {k}" for k, v in sorted(b.items()))


def _order_words(d: Mapping[str, Any]) -> str:
    """'BUY LIMIT 0.001 BTCUSDT @ 80000' (or 'BUY MARKET 0.01 BTCUSDT at market (cap
    92299.17)') from an order's fields."""
    head = f"{_s(d.get('side'))} {_s(d.get('type'))}"
    qty, quote = d.get("quantity"), d.get("quote_order_qty")
    symbol = _s(d.get("symbol"))
    what = f"{_s(qty)} {symbol}" if qty not in (None, "") else f"{symbol} for {_s(quote)} quote"
    price = d.get("price")
    if d.get("type") == "MARKET":  # its price is the slippage cap the engine put on it
        at = " at market" + (f" (cap {_s(price)})" if price not in (None, "") else "")
    else:
        at = f" @ {_s(price)}" if price not in (None, "") else ""
    return f"{head} {what}{at}"


def event_summary(kind: str, data: Any) -> str:
    """One line on what an audit-log entry says (the full JSON is shown next to it)."""
    d: Mapping[str, Any] = data if isinstance(data, Mapping) else {}
    if kind == "order.new":
        text = f"{_order_words(d)} · order {_s(d.get('order_id'))}"
        if d.get("client_order_id"):
            text += f" · client id {_s(d.get('client_order_id'))}"
        return text
    if kind == "order.fill":
        role = "maker" if d.get("is_maker") else "taker"
        return (
            f"{_s(d.get('side'))} {_s(d.get('qty'))} {_s(d.get('symbol'))} @ {_s(d.get('price'))} "
            f"({role}, fee {_s(d.get('commission'))} {_s(d.get('commission_asset'))}) "
            f"· order {_s(d.get('order_id'))}"
        )
    if kind == "order.canceled":
        return (
            f"{_s(d.get('status'))} {_s(d.get('symbol'))} · order {_s(d.get('order_id'))} "
            f"· {_s(d.get('executed_qty'))} filled · by {_s(d.get('by'))}"
        )
    if kind == "order.rejected":
        return f"{_order_words(d)} refused: {_s(d.get('msg'))} (code {_s(d.get('code'))})"
    if kind in ("account.created", "account.reset"):
        return f"balances {_balances(d.get('balances'))}"
    if kind == "account.fund":
        return f"+{_s(d.get('amount'))} {_s(d.get('asset'))}"
    if kind == "account.set_balance":
        return f"{_s(d.get('asset'))} free {_s(d.get('free_before'))} → {_s(d.get('free'))}"
    if kind == "account.mx_deduct":
        return "MX fee deduction " + ("on" if d.get("enabled") else "off")
    if kind == "live.request":
        return (
            f"{_s(d.get('method'))} {_s(d.get('path'))} → HTTP {_s(d.get('status'))} "
            f"(key {_s(d.get('api_key'))})"
        )
    if kind == "mode.switch":
        return (
            f"{_s(d.get('from')).upper()} → {_s(d.get('to')).upper()} (via {_s(d.get('source'))})"
        )
    return ", ".join(
        f"{k} {_s(v)}" for k, v in d.items() if not isinstance(v, Mapping | list)
    ) or "-"
