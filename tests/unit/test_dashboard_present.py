"""The dashboard's pure parts: formats, fill explanations, event summaries, SVG charts,
CSRF tokens."""

from __future__ import annotations

import re
from decimal import Decimal as D
from typing import Any

import pytest

from proxy.dashboard import chart, csrf, present
from proxy.dashboard.snapshot import event_row
from proxy.engine.model import Fill, Side


def fill(reason: dict[str, Any], price: str = "87900", qty: str = "0.01") -> Fill:
    return Fill(
        trade_id="1X1", order_id="C02__1001", account_id=1, symbol="BTCUSDT", side=Side.BUY,
        price=D(price), qty=D(qty), quote_qty=D(price) * D(qty), commission=D("0"),
        commission_asset="USDT", is_maker=reason.get("source") != "book" or "crossed_levels" in reason,
        time_ms=0, client_order_id=None, reason=reason,
    )


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (D("97900"), "97,900.00"),
        (D("-0.004"), "0.00"),  # no "-0.00"
        (D("0.125"), "0.12"),  # half-even
        (D("0.135"), "0.14"),
        (D("1234567.891"), "1,234,567.89"),
        (None, "n/a"),
    ],
)
def test_money_rounds_half_even_to_cents(value: D | None, want: str) -> None:
    assert present.money(value) == want


def test_signed_money_and_sign_class() -> None:
    assert present.signed_money(D("1.5")) == "+1.50"
    assert present.signed_money(D("-1.5")) == "-1.50"
    assert present.signed_money(D("0.001")) == "0.00"
    assert [present.sign_class(v) for v in (D("2"), D("-2"), D("0.001"), None)] == [
        "pos", "neg", "flat", "flat"]


def test_exact_amounts_and_prices() -> None:
    assert present.amount(D("1E-7")) == "0.0000001"
    assert present.amount(D("10000.00")) == "10000"
    assert present.price(D(527) / D(3)) == "175.66666667"
    assert present.when(1_767_205_854_814) == "2025-12-31 18:30:54.814 UTC"


def test_explains_a_taker_fill_by_its_book_level() -> None:
    text = present.explain_fill(fill({
        "source": "book", "book_version": "56217769552", "level_price": "87903.98",
        "level_qty": "5.121816", "consumed_before": "0.5"}))
    assert text == (
        "Taker: took 0.01 from the order book level at 87903.98, which showed 5.121816 "
        "(0.5 of it already taken by earlier paper orders); book snapshot 56217769552.")


def test_explains_a_taker_fill_from_memory_with_decimals() -> None:
    text = present.explain_fill(fill({
        "source": "book", "book_version": "7", "level_price": D("87903.98"),
        "level_qty": D("5.10"), "consumed_before": D("0")}))
    assert "level at 87903.98, which showed 5.1; book snapshot 7." in text
    assert "already taken" not in text


def test_explains_a_maker_fill_from_the_book_moving_through() -> None:
    text = present.explain_fill(fill({
        "source": "book", "model": "queue", "book_version": "9",
        "crossed_levels": [{"price": "87890", "qty": "0.01", "displayed": "0.3"}],
        "queue_ahead_before": "1.5", "queue_ahead_after": "0"}))
    assert text.startswith("Maker: the order book moved through the order's price 87900")
    assert "0.01 at 87890 (of 0.3 shown)" in text
    assert "Queue ahead was 1.5." in text


def test_explains_maker_fills_from_public_trades() -> None:
    trade = {"price": "87900", "qty": "0.4", "time": 1_767_205_854_814, "isBuyerMaker": True}
    at = present.explain_fill(fill({
        "source": "trade", "model": "queue", "trade": trade, "through": False,
        "queue_ahead_before": "0.3", "queue_ahead_after": "0"}))
    assert at.startswith(
        "Maker: a public trade of 0.4 at 87900 at 2025-12-31 18:30:54.814 UTC (a seller took)")
    assert "queue ahead went from 0.3 to 0" in at
    through = present.explain_fill(fill({
        "source": "trade", "model": "through", "trade": dict(trade, price="87800", isBuyerMaker=False),
        "through": True, "queue_ahead_before": None, "queue_ahead_after": "0"}))
    assert "(a buyer took) printed through the order's price 87900" in through
    assert "capped by that trade's size" in through
    touch = present.explain_fill(fill({"source": "trade", "model": "touch", "trade": trade,
                                       "through": False}))
    assert "touch model fills the whole remainder" in touch


def test_unknown_reason_says_so() -> None:
    assert present.explain_fill(fill({})) == "No explanation was recorded for this fill."


def _floats_in(svg: str) -> list[D]:
    return [D(v) for v in re.findall(r'(?:x|y|x1|y1|x2|y2|cx|cy|width)="(-?[\d.]+)"', svg)]


def test_equity_svg_draws_the_points_in_the_box() -> None:
    pts = [(1_767_205_800_000, D("97900")), (1_767_205_860_000, D("97950.5")),
           (1_767_205_920_000, D("97800"))]
    svg = str(chart.equity_svg(pts, "USDT", width=720, height=240))
    assert svg.startswith('<svg class="chart equity"')
    line = re.search(r'<polyline class="line down" points="([^"]+)"', svg)
    assert line is not None
    coords = [tuple(D(v) for v in p.split(",")) for p in line.group(1).split()]
    assert [c[0] for c in coords] == [D("84.0"), D("394.0"), D("704.0")]
    ys = [c[1] for c in coords]
    assert ys[1] < ys[0] < ys[2]  # higher value, higher on screen
    assert all(D(0) <= v <= D(720) for v in _floats_in(svg))
    assert "97,800.00 USDT at" in svg  # the last point's tooltip


def test_equity_svg_empty_and_single_point() -> None:
    assert "No equity points yet" in chart.equity_svg([])
    one = str(chart.equity_svg([(0, D("10000"))]))
    assert 'class="line up" points="394.0,' in one


@pytest.mark.parametrize(
    ("value", "labels"),
    [
        (D("10000"), ["9,900.00", "9,950.00", "10,000.00", "10,050.00", "10,100.00"]),
        (D("97900"), ["97,800.00", "97,850.00", "97,900.00", "97,950.00", "98,000.00"]),
        (D("500"), ["499.00", "499.50", "500.00", "500.50", "501.00"]),
        (D("0.5"), ["0.48", "0.49", "0.50", "0.51", "0.52"]),
        (D("0"), ["-1.00", "-0.50", "0.00", "0.50", "1.00"]),
    ],
)
def test_a_flat_equity_curve_gets_round_axis_labels(value: D, labels: list[str]) -> None:
    svg = str(chart.equity_svg([(0, value), (60_000, value)]))
    assert re.findall(r'text-anchor="end">([-\d,.]+)</text>', svg) == labels


def test_charts_escape_their_text() -> None:
    svg = str(chart.pnl_svg([("<b>X</b>", D("-5"), None)], quote="US&T"))
    assert "<b>" not in svg
    assert "&lt;b&gt;X&lt;/b&gt;" in svg
    assert "US&amp;T" in svg
    assert "unrealised: n/a" in svg
    assert 'class="bar realised neg"' in svg


def test_pnl_bars_scale_to_the_biggest_value() -> None:
    svg = str(chart.pnl_svg([("A", D("10"), D("-5")), ("B", D("2.5"), D("0"))], width=720))
    widths = [D(w) for w in re.findall(r'<rect [^>]*width="([\d.]+)"', svg)]
    assert widths == [D("210.0"), D("105.0"), D("52.5"), D("0.0")]


def test_csrf_token_is_bound_to_the_nonce_and_the_secret() -> None:
    secret, nonce = csrf.new_secret(), csrf.new_nonce()
    token = csrf.token_for(secret, nonce)
    assert csrf.token_ok(secret, nonce, token)
    assert not csrf.token_ok(secret, csrf.new_nonce(), token)
    assert not csrf.token_ok(csrf.new_secret(), nonce, token)
    assert not csrf.token_ok(secret, nonce, None)
    assert not csrf.token_ok(secret, None, token)
    assert not csrf.token_ok(secret, "short", csrf.token_for(secret, "short"))


@pytest.mark.parametrize(
    ("kind", "data", "want"),
    [
        ("order.new", {"order_id": "C02__1001", "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                       "price": "80000", "quantity": "0.001", "quote_order_qty": None,
                       "client_order_id": "bot-1"},
         "BUY LIMIT 0.001 BTCUSDT @ 80000 · order C02__1001 · client id bot-1"),
        ("order.new", {"order_id": "C02__1002", "symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                       "price": "92299.17", "quantity": "0.01", "quote_order_qty": None,
                       "client_order_id": None},
         "BUY MARKET 0.01 BTCUSDT at market (cap 92299.17) · order C02__1002"),
        ("order.rejected", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "price": None,
                            "quantity": None, "quote_order_qty": "100", "code": 30004,
                            "msg": "Insufficient position"},
         "BUY MARKET BTCUSDT for 100 quote at market refused: Insufficient position (code 30004)"),
        ("order.fill", {"order_id": "C02__1002", "trade_id": "7X1", "symbol": "BTCUSDT", "side": "BUY",
                        "price": "87903.98", "qty": "0.01", "commission": "0.4395199",
                        "commission_asset": "USDT", "is_maker": False, "reason": {"source": "book"}},
         "BUY 0.01 BTCUSDT @ 87903.98 (taker, fee 0.4395199 USDT) · order C02__1002"),
        ("order.canceled", {"order_id": "C02__1001", "symbol": "BTCUSDT", "status": "CANCELED",
                            "executed_qty": "0", "by": "user"},
         "CANCELED BTCUSDT · order C02__1001 · 0 filled · by user"),
        ("order.rejected", {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "price": "90000",
                            "quantity": "5", "quote_order_qty": None, "code": 30004,
                            "msg": "Insufficient position"},
         "SELL LIMIT 5 BTCUSDT @ 90000 refused: Insufficient position (code 30004)"),
        ("account.reset", {"balances": {"USDT": "10000", "BTC": "1"}}, "balances 1 BTC, 10000 USDT"),
        ("account.created", {"balances": {}}, "balances nothing"),
        ("account.fund", {"asset": "USDT", "amount": "250"}, "+250 USDT"),
        ("account.set_balance", {"asset": "BTC", "free_before": "1", "free": "0.5"}, "BTC free 1 → 0.5"),
        ("account.mx_deduct", {"enabled": True}, "MX fee deduction on"),
        ("live.request", {"method": "POST", "path": "/api/v3/order", "api_key": "mx0v…abcd",
                          "status": 200},
         "POST /api/v3/order → HTTP 200 (key mx0v…abcd)"),
        ("mode.switch", {"from": "paper", "to": "live", "source": "dashboard"},
         "PAPER → LIVE (via dashboard)"),
        ("order.expired", {"order_id": "C02__9", "status": "EXPIRED", "extra": {"x": 1}},
         "order_id C02__9, status EXPIRED"),
        ("order.expired", None, "-"),
    ],
)
def test_event_summary_is_one_readable_line(kind: str, data: Any, want: str) -> None:
    assert present.event_summary(kind, data) == want


def test_event_rows_keep_the_full_json_for_the_details() -> None:
    row = event_row({"id": 7, "time": 0, "account_id": 1, "kind": "account.fund", "mode": "paper",
                     "data": {"asset": "USDT", "amount": D("250.50")}}, {1: "alpha"})
    assert (row["account"], row["summary"]) == ("alpha", "+250.5 USDT")
    assert row["data"] == '{\n  "asset": "USDT",\n  "amount": "250.5"\n}'
