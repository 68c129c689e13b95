"""Server-rendered SVG charts: the equity curve and the PnL bars. No JavaScript library.

Pure functions from Decimal data to SVG markup. Geometry is computed in Decimal too
(nothing here goes through a float) and rounded to a tenth of a pixel. Markup is built
only from literal templates with `Markup.format`, which escapes every value put in, so
the result is safe to put into an autoescaped template.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal

from markupsafe import Markup

from .present import money, short_time, signed_money, when

D0 = Decimal(0)
TENTH = Decimal("0.1")


def _px(d: Decimal | int) -> str:
    return format(Decimal(d).quantize(TENTH, rounding=ROUND_HALF_EVEN), "f")


def _join(parts: Sequence[Markup]) -> Markup:
    return Markup("").join(parts)


def equity_svg(
    points: Sequence[tuple[int, Decimal]],
    quote: str = "USDT",
    width: int = 720,
    height: int = 240,
) -> Markup:
    """A line chart of (time_ms, value) points, oldest first."""
    w, h = Decimal(width), Decimal(height)
    left, right, top, bottom = Decimal(84), Decimal(16), Decimal(14), Decimal(30)
    plot_w, plot_h = w - left - right, h - top - bottom
    label = f"Equity curve in {quote}"
    head = Markup(
        '<svg class="chart equity" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" '
        'role="img" aria-label="{}"><title>{}</title>'
    ).format(width, height, label, label)
    if not points:
        return _join([
            head,
            Markup('<text class="empty" x="{}" y="{}" text-anchor="middle">{}</text></svg>').format(
                width // 2,
                height // 2,
                "No equity points yet: the first is recorded right after start, then every interval.",
            ),
        ])
    values = [v for _, v in points]
    lo, hi = min(values), max(values)
    if hi == lo:
        # a flat curve: round axis labels around it (9,900 .. 10,100 for 10,000)
        pad = max(Decimal(1).scaleb(hi.adjusted() - 2), Decimal("0.02")) if hi else Decimal(1)
    else:
        pad = (hi - lo) / 20
    lo, hi = lo - pad, hi + pad
    t0, t1 = points[0][0], points[-1][0]
    span = Decimal(t1 - t0)

    def x(t: int) -> Decimal:
        if not span:
            return left + plot_w / 2
        return left + Decimal(t - t0) / span * plot_w

    def y(v: Decimal) -> Decimal:
        return top + (hi - v) / (hi - lo) * plot_h

    parts = [head]
    for i in range(5):
        gv = lo + (hi - lo) * Decimal(i) / 4
        gy = y(gv)
        parts.append(
            Markup(
                '<line class="grid" x1="{}" y1="{}" x2="{}" y2="{}"/>'
                '<text class="axis" x="{}" y="{}" text-anchor="end">{}</text>'
            ).format(_px(left), _px(gy), _px(w - right), _px(gy), _px(left - 6), _px(gy + 4), money(gv))
        )
    coords = " ".join(f"{_px(x(t))},{_px(y(v))}" for t, v in points)
    trend = "up" if values[-1] >= values[0] else "down"
    base_y = _px(top + plot_h)
    area = f"{_px(x(t0))},{base_y} {coords} {_px(x(t1))},{base_y}"
    parts.append(Markup('<polygon class="area {}" points="{}"/>').format(trend, area))
    parts.append(Markup('<polyline class="line {}" points="{}"/>').format(trend, coords))
    last_t, last_v = points[-1]
    parts.append(
        Markup('<circle class="dot {}" cx="{}" cy="{}" r="4"><title>{} {} at {}</title></circle>').format(
            trend, _px(x(last_t)), _px(y(last_v)), money(last_v), quote, when(last_t)
        )
    )
    parts.append(
        Markup('<text class="axis" x="{}" y="{}" text-anchor="start">{}</text>').format(
            _px(left), height - 8, short_time(t0)
        )
    )
    if t1 != t0:
        parts.append(
            Markup('<text class="axis" x="{}" y="{}" text-anchor="end">{} UTC</text>').format(
                _px(w - right), height - 8, short_time(t1)
            )
        )
    parts.append(Markup("</svg>"))
    return _join(parts)


def pnl_svg(
    rows: Sequence[tuple[str, Decimal, Decimal | None]],
    quote: str = "USDT",
    width: int = 720,
    bar: int = 14,
) -> Markup:
    """Horizontal bars around zero: realised and unrealised PnL per row (label, r, u).
    Labels sit in a column on the left, the figures in a column on the right."""
    label = f"Realised and unrealised PnL in {quote}"
    if not rows:
        return Markup(
            '<svg class="chart pnl" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} 40" role="img" '
            'aria-label="{}"><text class="empty" x="{}" y="24" text-anchor="middle">No fills yet.</text>'
            "</svg>"
        ).format(width, label, width // 2)
    row_h = bar * 2 + 14
    height = row_h * len(rows) + 28
    w = Decimal(width)
    left, right = Decimal(110), Decimal(190)
    half = (w - left - right) / 2
    mid = left + half
    biggest = max((abs(v) for _, r, u in rows for v in (r, u) if v is not None), default=D0)
    scale = half / biggest if biggest else D0
    figures_x = _px(w - right + 16)
    parts = [
        Markup(
            '<svg class="chart pnl" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" role="img" '
            'aria-label="{}"><title>{}</title><line class="zero" x1="{}" y1="4" x2="{}" y2="{}"/>'
        ).format(width, height, label, label, _px(mid), _px(mid), height - 22)
    ]
    for i, (name, realised, unrealised) in enumerate(rows):
        y0 = 6 + i * row_h
        parts.append(
            Markup('<text class="axis" x="{}" y="{}" text-anchor="end">{}</text>').format(
                _px(left - 10), y0 + bar + 4, name
            )
        )
        for j, (kind, v) in enumerate((("realised", realised), ("unrealised", unrealised))):
            yy = y0 + j * (bar + 2)
            shown = "n/a" if v is None else signed_money(v)
            parts.append(
                Markup('<text class="value" x="{}" y="{}">{}: {}</text>').format(
                    figures_x, yy + bar - 3, kind, shown
                )
            )
            if v is None:
                continue
            length = abs(v) * scale
            x0 = mid - length if v < 0 else mid
            parts.append(
                Markup(
                    '<rect class="bar {} {}" x="{}" y="{}" width="{}" height="{}">'
                    "<title>{} {}: {} {}</title></rect>"
                ).format(
                    kind, "neg" if v < 0 else "pos", _px(x0), yy, _px(length), bar, name, kind, shown, quote
                )
            )
    parts.append(
        Markup(
            '<text class="legend" x="{}" y="{}">dark: realised (net of fees), light: unrealised, '
            "in {}</text></svg>"
        ).format(_px(left), height - 6, quote)
    )
    return _join(parts)
