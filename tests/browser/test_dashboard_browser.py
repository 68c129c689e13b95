"""The dashboard in a real browser: headless Chromium from Debian's packages, driven by
Playwright, against a real `python -m proxy` process and a fake MEXC (the real recordings,
in a thread). Playwright never downloads a browser: it always launches /usr/bin/chromium.
Without Chromium these tests skip locally and fail under CI=true.
Confirmations are the page's own <dialog> (screenshots can show it; a native confirm()
cannot be captured), and the tests assert no native dialog opens.
Screenshots go to test-artifacts/ (gitignored)."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Sidecar,
    eventually,
    screenshot,
    start_sidecar,
    stop_sidecar,
)
from dashboard_support import PricedFake
from fake_upstream import FakeMexcThread

pytestmark = pytest.mark.browser


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests cannot run under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium_path() -> Path:
    if not (CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium_path: Path) -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def market() -> Iterator[FakeMexcThread]:
    """The fake MEXC for the module. At teardown: it received no signed request and no
    API key header (no test here forwards a signed request; none needs an opt-out)."""
    with FakeMexcThread(PricedFake()) as thread:
        yield thread
        signed = [(s.method, s.path) for s in thread.call(thread.fake.signed_requests)]
    assert signed == [], f"the fake upstream received signed requests or an API key: {signed}"


@pytest.fixture(scope="module")
def sidecar(market: FakeMexcThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    s = start_sidecar(tmp_path_factory.mktemp("paper"), market)
    yield s
    stop_sidecar(s)


@pytest.fixture
def page(browser: Any, sidecar: Sidecar) -> Iterator[Any]:
    sidecar.reset(1)
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    yield pg
    ctx.close()
    assert errors == [], f"JavaScript errors or CSP violations on the page: {errors}"


def dashboard(s: Sidecar, path: str = "", account: int = 1) -> str:
    return f"{s.url}/dashboard/{path}?account={account}"


def balance_cells(page: Any) -> dict[str, tuple[str, str]]:
    out = {}
    for row in page.locator("#balances tbody tr[data-asset]").all():
        out[row.get_attribute("data-asset")] = (
            row.locator("td.free").inner_text(), row.locator("td.locked").inner_text())
    return out


def api_balances(s: Sidecar) -> dict[str, tuple[str, str]]:
    status, acct = s.signed("GET", "/api/v3/account")
    assert status == 200, acct
    return {b["asset"]: (b["free"], b["locked"]) for b in acct["balances"]}


def place(s: Sidecar, **params: str) -> dict[str, Any]:
    status, body = s.signed("POST", "/api/v3/order", {"symbol": "BTCUSDT", **params})
    assert status == 200, body
    return body


def test_page_loads_with_paper_banner_and_the_api_balances(page: Any, sidecar: Sidecar) -> None:
    page.goto(dashboard(sidecar))
    banner = page.locator("#mode-banner")
    assert banner.is_visible()
    assert "PAPER TRADING" in banner.inner_text()
    box = banner.bounding_box()
    assert box is not None and box["y"] < 5 and box["height"] >= 40  # at the very top, big
    assert page.locator("body").get_attribute("class") == "paper"
    assert page.title().startswith("PAPER")
    r, g, _b = _rgb(page.evaluate(
        "getComputedStyle(document.getElementById('mode-banner')).backgroundColor"))
    assert g > r  # paper is green, never the live red

    want = api_balances(sidecar)
    assert want == {"USDT": ("10000", "0"), "BTC": ("1", "0")}
    assert balance_cells(page) == want
    # 10000 USDT + 1 BTC at the fake's 87900
    assert page.locator("#total-value").inner_text() == "97,900.00 USDT"
    assert page.locator("#equity-chart svg").count() == 1
    note = page.locator("#restart-note").inner_text().lower()
    assert "open orders resume from the current market" in note
    assert "not replayed" in note
    # the paper account has no live switch to offer: it was not armed at start
    page.goto(dashboard(sidecar, "settings"))
    assert page.locator("#switch-live").is_disabled()
    style = page.evaluate("""() => { const s = getComputedStyle(document.getElementById('switch-live'));
                                     return [s.color, s.backgroundColor, s.cursor, s.opacity]; }""")
    assert style[2:] == ["not-allowed", "1"]
    fg, bg = _rgb(style[0]), _rgb(style[1])
    assert _contrast(fg, bg) >= 4.5  # readable (WCAG AA), not white on pale pink
    assert max(bg) - min(bg) < 16  # grey: a disabled button does not look like the live red
    assert "not</strong> armed" in page.content() or "not armed" in page.locator("#mode-card").inner_text()
    screenshot(page, "dashboard-paper-settings.png")


def test_orders_and_fills_appear_without_reload(page: Any, sidecar: Sidecar) -> None:
    page.goto(dashboard(sidecar))
    page.evaluate("window.__sameDocument = true")
    assert page.locator("#open-orders").inner_text().count("No open orders.") == 1

    order = place(sidecar, side="BUY", type="LIMIT", quantity="0.001", price="80000",
                  newClientOrderId="browser-resting-1")
    row = page.locator(f'#open-orders tr[data-order-id="{order["orderId"]}"]')
    row.wait_for(state="visible", timeout=10_000)
    assert "browser-resting-1" in row.inner_text()
    assert "80000" in row.inner_text() and "BUY" in row.inner_text()
    eventually(lambda: balance_cells(page) == api_balances(sidecar), what="locked USDT on the page")
    assert balance_cells(page)["USDT"] == ("9920", "80")

    market = place(sidecar, side="BUY", type="MARKET", quantity="0.01")
    fill = page.locator("#fills tbody tr[data-trade-id]").first
    fill.wait_for(state="visible", timeout=10_000)
    text = fill.inner_text()
    assert "taker" in text
    assert "Taker: took 0.01 from the order book level at 87903.98" in text
    recent = page.locator(f'#recent-orders tr[data-order-id="{market["orderId"]}"]')
    assert "MARKET\tmarket\t0.01\t0.01" in recent.inner_text()  # not the slippage cap as a price
    eventually(lambda: balance_cells(page) == api_balances(sidecar), what="balances after the fill")
    assert page.locator("#pnl tbody tr").first.inner_text().startswith("BTCUSDT")
    assert page.evaluate("window.__sameDocument") is True  # never reloaded
    page.locator("#fills").scroll_into_view_if_needed()
    screenshot(page, "dashboard-paper-overview.png")


def test_a_resting_order_filled_by_the_tape_says_why(
    page: Any, sidecar: Sidecar, market: FakeMexcThread
) -> None:
    order = place(sidecar, side="BUY", type="LIMIT", quantity="0.001", price="80000")
    page.goto(dashboard(sidecar))
    page.locator(f'#open-orders tr[data-order-id="{order["orderId"]}"]').wait_for()

    def filled() -> bool:
        # print trades through the order's price (after it rested) until the watcher's
        # next poll has fed one to the engine
        if page.locator("#fills tbody tr[data-trade-id]").count():
            return True
        market.call(market.fake.print_trade, "BTCUSDT", "79999", "0.001", True, int(time.time() * 1000))
        return False

    eventually(filled, timeout=15, what="the maker fill on the page")
    text = page.locator("#fills tbody tr[data-trade-id]").first.inner_text()
    assert "maker" in text
    assert "Maker: a public trade of 0.001 at 79999" in text
    assert "printed through the order's price 80000" in text
    assert "No open orders." in page.locator("#open-orders").inner_text()
    page.locator("#fills").scroll_into_view_if_needed()
    screenshot(page, "dashboard-maker-fill.png")


def native_dialogs(page: Any) -> list[str]:
    """Messages of native alert/confirm dialogs (the dashboard asks in the page instead)."""
    seen: list[str] = []
    page.on("dialog", lambda d: (seen.append(d.message), d.dismiss()))
    return seen


def test_reset_needs_confirmation_and_restores_the_account(page: Any, sidecar: Sidecar) -> None:
    order = place(sidecar, side="BUY", type="LIMIT", quantity="0.002", price="80000")
    native = native_dialogs(page)
    page.goto(dashboard(sidecar, "settings"))
    dialog = page.locator("#confirm-dialog")
    assert not dialog.is_visible()

    page.click('button[data-reset-account="1"]')
    dialog.wait_for(state="visible")
    assert page.locator("#confirm-title").inner_text() == "Reset account alpha?"
    assert "Balances go back to 1 BTC, 10000 USDT" in page.locator("#confirm-message").inner_text()
    assert page.locator("#confirm-ok").inner_text() == "Yes, reset alpha"
    assert page.evaluate("document.activeElement.id") == "confirm-cancel"  # the safe default
    page.click("#confirm-cancel")
    dialog.wait_for(state="hidden")
    assert page.url.endswith("/dashboard/settings?account=1")  # cancelled: nothing happened
    status, open_orders = sidecar.signed("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"})
    assert status == 200
    assert [o["orderId"] for o in open_orders] == [order["orderId"]]

    page.click('button[data-reset-account="1"]')
    dialog.wait_for(state="visible")
    with page.expect_navigation():
        page.click("#confirm-ok")
    assert native == []
    assert "was reset to its starting balances" in page.locator(".notice").inner_text()
    assert api_balances(sidecar) == {"USDT": ("10000", "0"), "BTC": ("1", "0")}
    status, open_orders = sidecar.signed("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"})
    assert (status, open_orders) == (200, [])
    assert balance_cells(page) == {"USDT": ("10000", "0"), "BTC": ("1", "0")}
    assert "No open orders." in page.locator("#open-orders").inner_text()
    screenshot(page, "dashboard-after-reset.png")


def test_state_change_without_csrf_token_is_refused(page: Any, sidecar: Sidecar) -> None:
    order = place(sidecar, side="BUY", type="LIMIT", quantity="0.001", price="80000")
    page.goto(dashboard(sidecar, "settings"))
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    reset_url = f"{sidecar.url}/dashboard/accounts/1/reset"
    # the browser's own cookie, but no token / a wrong token
    for form in ({"confirm": "yes"}, {"confirm": "yes", "csrf_token": "0" * 64}):
        resp = page.request.post(reset_url, form=form, max_redirects=0)
        assert resp.status == 403
        assert "CSRF" in resp.text()
    # a real token without the cookie it belongs to (what a cross-site page could send)
    other = page.context.browser.new_context()
    resp = other.request.post(reset_url, form={"confirm": "yes", "csrf_token": token}, max_redirects=0)
    assert resp.status == 403
    other.close()
    # a form posted from the page without its token: refused, and the page says why
    page.evaluate(
        """url => { const f = document.createElement('form'); f.method = 'post'; f.action = url;
                    const c = document.createElement('input'); c.name = 'confirm'; c.value = 'yes';
                    f.appendChild(c); document.body.appendChild(f); f.submit(); }""",
        reset_url,
    )
    page.wait_for_selector("section.error")
    assert "403" in page.locator("section.error h1").inner_text()
    assert "PAPER TRADING" in page.locator("#mode-banner").inner_text()
    screenshot(page, "dashboard-csrf-refused.png")
    # nothing was reset
    status, open_orders = sidecar.signed("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"})
    assert status == 200
    assert [o["orderId"] for o in open_orders] == [order["orderId"]]


def test_event_log_filters_and_csv_export(page: Any, sidecar: Sidecar) -> None:
    order = place(sidecar, side="BUY", type="LIMIT", quantity="0.001", price="80000",
                  newClientOrderId="browser-log-1")
    sidecar.signed("DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": order["orderId"]})
    page.goto(f"{sidecar.url}/dashboard/events?account=1&filter_account=1&kind=order.canceled")
    rows = page.locator("table.events tbody tr")
    assert rows.count() >= 1
    kinds = {r.locator(".kind").inner_text() for r in rows.all()}
    assert kinds == {"order.canceled"}
    assert rows.first.locator("td.data summary").inner_text() == (
        f"CANCELED BTCUSDT · order {order['orderId']} · 0 filled · by user")

    market = place(sidecar, side="BUY", type="MARKET", quantity="0.01")
    page.goto(f"{sidecar.url}/dashboard/events?account=1")
    rows = page.locator("table.events tbody tr")
    by_kind = {r.locator(".kind").inner_text(): r for r in reversed(rows.all())}  # newest wins
    assert set(by_kind) >= {"account.created", "account.reset", "order.new", "order.canceled",
                            "order.fill"}
    fill = by_kind["order.fill"].locator("td.data")
    assert fill.locator("summary").inner_text() == (
        f"BUY 0.01 BTCUSDT @ 87903.98 (taker, fee 0.4395199 USDT) · order {market['orderId']}")
    assert by_kind["order.new"].locator("summary").inner_text().startswith(
        "BUY MARKET 0.01 BTCUSDT at market (cap ")  # the engine's slippage cap, not a limit price
    assert by_kind["account.reset"].locator("summary").inner_text() == "balances 1 BTC, 10000 USDT"
    # every summary is one line; the JSON stays folded away until asked for
    line = float(page.evaluate("parseFloat(getComputedStyle(document.querySelector("
                               "'td.data summary')).lineHeight)"))
    for r in rows.all():
        box = r.locator("td.data summary").bounding_box()
        assert box is not None and box["height"] < 1.5 * line, r.inner_text()
    assert not fill.locator("pre").is_visible()
    fill.locator("summary").click()
    assert fill.locator("pre").is_visible()
    data = json.loads(fill.locator("pre").inner_text())
    assert (data["order_id"], data["qty"], data["reason"]["source"]) == (market["orderId"], "0.01", "book")
    screenshot(page, "dashboard-event-log.png")

    # on the overview, details someone opened stay open while new events arrive
    page.goto(dashboard(sidecar))
    recent = page.locator("[data-section=events] details")
    opened = recent.first.get_attribute("id")
    recent.first.locator("summary").click()
    place(sidecar, side="BUY", type="LIMIT", quantity="0.001", price="80000")
    eventually(lambda: recent.first.get_attribute("id") != opened, what="the new event on the page")
    assert page.locator(f"details#{opened}").get_attribute("open") is not None
    assert page.locator(f"details#{opened} pre").is_visible()

    with page.expect_download() as dl:
        page.click("text=orders.csv")
    path = Path(dl.value.path())
    lines = path.read_text().splitlines()
    assert lines[0].startswith("orderId,clientOrderId,symbol,side,type,status,price")
    assert any(line.startswith(order["orderId"]) and ",CANCELED," in line for line in lines[1:])


def test_switching_accounts_shows_the_other_account(page: Any, sidecar: Sidecar) -> None:
    place(sidecar, side="BUY", type="LIMIT", quantity="0.001", price="80000")  # on alpha
    page.goto(dashboard(sidecar))
    assert page.locator("h1").inner_text().startswith("Account alpha")
    with page.expect_navigation():
        page.select_option("select[name=account]", "2")
    assert page.url.endswith("/dashboard/?account=2")
    assert page.locator("h1").inner_text().startswith("Account beta")
    assert page.locator("select[name=account] option:checked").inner_text() == "beta (#2)"
    status, acct = sidecar.signed("GET", "/api/v3/account", account=1)
    assert status == 200
    assert balance_cells(page) == {b["asset"]: (b["free"], b["locked"]) for b in acct["balances"]}
    assert balance_cells(page) == {"USDT": ("500", "0")}
    assert page.locator("#total-value").inner_text() == "500.00 USDT"
    assert "No open orders." in page.locator("#open-orders").inner_text()  # alpha's stays there
    # the navigation keeps the account, and the live updates follow it
    assert page.locator("nav a", has_text="Event log").get_attribute("href").endswith("account=2")
    eventually(lambda: page.locator("#live-status.ok").count(), what="a poll for account 2")
    assert page.locator("h1").inner_text().startswith("Account beta")
    screenshot(page, "dashboard-switch-account.png")


@pytest.fixture
def live_sidecar(market: FakeMexcThread, tmp_path: Path) -> Iterator[Sidecar]:
    s = start_sidecar(tmp_path, market, live=True)
    yield s
    stop_sidecar(s)


def _rgb(css: str) -> tuple[int, int, int]:
    r, g, b = (int(x) for x in re.findall(r"\d+", css)[:3])
    return r, g, b


def _contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """WCAG contrast ratio of two sRGB colours."""
    def lum(c: tuple[int, int, int]) -> float:
        lin = [x / 255 / 12.92 if x / 255 <= 0.03928 else ((x / 255 + 0.055) / 1.055) ** 2.4 for x in c]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_live_mode_is_red_and_the_toggle_confirms(browser: Any, live_sidecar: Sidecar) -> None:
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    try:
        page.goto(dashboard(live_sidecar))
        banner = page.locator("#mode-banner")
        assert "LIVE TRADING: REAL MONEY" in banner.inner_text()
        assert page.locator("body").get_attribute("class") == "live"
        r, g, b = _rgb(page.evaluate(
            "getComputedStyle(document.getElementById('mode-banner')).backgroundColor"))
        assert r > 150 and g < 60 and b < 80  # red
        screenshot(page, "dashboard-live-overview.png")

        # live -> paper needs no confirmation
        page.goto(dashboard(live_sidecar, "settings"))
        with page.expect_navigation():
            page.click("#switch-paper")
        assert "PAPER TRADING" in page.locator("#mode-banner").inner_text()
        assert live_sidecar.admin("GET", "/healthz")[1]["mode"] == "paper"

        # paper -> live asks first (it was armed at start), in a red dialog of its own
        native = native_dialogs(page)
        dialog = page.locator("#confirm-dialog")
        assert page.locator("#switch-live").is_enabled()
        r, g, b = _rgb(page.evaluate(
            "getComputedStyle(document.getElementById('switch-live')).backgroundColor"))
        assert r > 150 and g < 60 and b < 80  # an armed switch to live stays red
        page.click("#switch-live")
        dialog.wait_for(state="visible")
        assert dialog.get_attribute("class") == "danger"
        assert page.locator("#confirm-title").inner_text() == "Switch to LIVE trading?"
        assert "REAL MONEY" in page.locator("#confirm-message").inner_text()
        r, g, b = _rgb(page.evaluate(
            "getComputedStyle(document.getElementById('confirm-title')).backgroundColor"))
        assert r > 150 and g < 60 and b < 80  # red
        assert page.evaluate("document.activeElement.id") == "confirm-cancel"
        screenshot(page, "dashboard-live-confirm.png")
        with page.expect_navigation():
            page.click("#confirm-ok")
        assert native == []
        assert "LIVE TRADING" in page.locator("#mode-banner").inner_text()
        assert live_sidecar.admin("GET", "/healthz")[1]["mode"] == "live"

        page.goto(f"{live_sidecar.url}/dashboard/events?filter_account=all&kind=mode.switch")
        rows = page.locator("table.events tbody tr").all()
        assert [r.locator("td.data summary").inner_text() for r in rows] == [
            "PAPER → LIVE (via dashboard)", "LIVE → PAPER (via dashboard)"]
        assert [json.loads(r.locator("td.data pre").text_content() or "") for r in rows] == [
            {"from": "paper", "to": "live", "source": "dashboard"},
            {"from": "live", "to": "paper", "source": "dashboard"},
        ]
    finally:
        ctx.close()


def _equity(page: Any) -> dict[str, Any]:
    """What the equity chart shows: recorded points, the line's y coordinates, the value
    change, and the estimated value."""
    perf = page.locator("[data-section=performance]")
    text = perf.inner_text()
    m = re.search(r"(\d+) recorded points?", text)
    coords = perf.locator("#equity-chart svg polyline").get_attribute("points") or ""
    change = perf.locator(".summary > div", has_text="Value change").locator(".big").inner_text()
    return {
        "recorded": int(m.group(1)) if m else 0,
        "ys": [Decimal(pair.split(",")[1]) for pair in coords.split()],
        "change": change,
        "total": page.locator("#total-value").inner_text(),
        "pnl": page.locator("[data-section=balances] .summary .big").nth(1).inner_text(),
    }


def _usdt(text: str) -> Decimal:
    return Decimal(text.removesuffix(" USDT").replace(",", ""))


def test_equity_curve_moves_as_the_bot_trades(page: Any, sidecar: Sidecar) -> None:
    """The timer is a minute apart here, so every recorded point comes from the reset (the
    page fixture's) or from trading."""
    page.goto(dashboard(sidecar))
    page.evaluate("window.__sameDocument = true")
    # the reset recorded a fresh starting point at once: the curve starts at the start value
    before = eventually(lambda: (e := _equity(page))["recorded"] == 1 and e, what="the reset's point")
    assert before["change"] == "0.00 USDT"
    assert before["total"] == "97,900.00 USDT"
    assert len(set(before["ys"])) == 1  # flat

    place(sidecar, side="BUY", type="MARKET", quantity="0.01")
    after = eventually(lambda: (e := _equity(page))["recorded"] == 2 and e,
                       what="a point recorded after the fill")
    assert after["total"] == "97,899.52 USDT"  # paid the spread (0.0398) and the fee (0.4395199)
    # the line moved: the newest point sits lower (SVG y grows downwards) than the start
    assert after["ys"][-1] > after["ys"][0]
    # and the value change is measured from the reset's point, matching the PnL
    assert after["change"] == "-0.48 USDT"
    assert _usdt(after["change"]) == _usdt(after["total"]) - _usdt(before["total"])
    assert after["pnl"] == after["change"]
    assert page.evaluate("window.__sameDocument") is True  # never reloaded
    dot = page.locator("#equity-chart svg circle.dot title").text_content() or ""
    assert dot.startswith("97,899.52 USDT at ")
    page.locator("#equity-chart").scroll_into_view_if_needed()
    screenshot(page, "dashboard-equity-moves.png")
