"""The dashboard in a real browser: headless Chromium from Debian's packages, driven by
Playwright, against a real `python -m proxy` process and a fake MEXC (the real recordings,
in a thread). Playwright never downloads a browser: it always launches /usr/bin/chromium.
Without Chromium these tests skip locally and fail under CI=true.
Screenshots go to test-artifacts/ (gitignored)."""

from __future__ import annotations

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
    with FakeMexcThread(PricedFake()) as thread:
        yield thread


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
    assert market["orderId"] in page.locator("#recent-orders").inner_text()
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
        # the watcher's first trade page is only a baseline: print fresh trades through
        # the order's price until one arrives after it
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


def test_reset_needs_confirmation_and_restores_the_account(page: Any, sidecar: Sidecar) -> None:
    order = place(sidecar, side="BUY", type="LIMIT", quantity="0.002", price="80000")
    page.goto(dashboard(sidecar, "settings"))
    messages: list[str] = []

    def dismiss(dialog: Any) -> None:
        messages.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.click('button[data-reset-account="1"]')
    eventually(lambda: messages, what="the confirmation dialog")
    assert "Reset account alpha?" in messages[0]
    assert page.url.endswith("/dashboard/settings?account=1")  # dismissed: nothing happened
    status, open_orders = sidecar.signed("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"})
    assert status == 200
    assert [o["orderId"] for o in open_orders] == [order["orderId"]]

    def accept(dialog: Any) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    with page.expect_navigation():
        page.click('button[data-reset-account="1"]')
    assert len(messages) == 2
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
    order = place(sidecar, side="BUY", type="LIMIT", quantity="0.001", price="80000")
    sidecar.signed("DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": order["orderId"]})
    page.goto(f"{sidecar.url}/dashboard/events?account=1&filter_account=1&kind=order.canceled")
    rows = page.locator("table.events tbody tr")
    assert rows.count() >= 1
    kinds = {r.locator(".kind").inner_text() for r in rows.all()}
    assert kinds == {"order.canceled"}
    assert order["orderId"] in rows.first.inner_text()

    page.goto(dashboard(sidecar))
    with page.expect_download() as dl:
        page.click("text=orders.csv")
    path = Path(dl.value.path())
    lines = path.read_text().splitlines()
    assert lines[0].startswith("orderId,clientOrderId,symbol,side,type,status,price")
    assert any(line.startswith(order["orderId"]) and ",CANCELED," in line for line in lines[1:])


@pytest.fixture
def live_sidecar(market: FakeMexcThread, tmp_path: Path) -> Iterator[Sidecar]:
    s = start_sidecar(tmp_path, market, live=True)
    yield s
    stop_sidecar(s)


def _rgb(css: str) -> tuple[int, int, int]:
    r, g, b = (int(x) for x in re.findall(r"\d+", css)[:3])
    return r, g, b


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

        # paper -> live asks first (it was armed at start)
        seen: list[str] = []
        page.once("dialog", lambda d: (seen.append(d.message), d.accept()))
        with page.expect_navigation():
            page.click("#switch-live")
        assert "REAL MONEY" in seen[0]
        assert "LIVE TRADING" in page.locator("#mode-banner").inner_text()
        assert live_sidecar.admin("GET", "/healthz")[1]["mode"] == "live"

        page.goto(f"{live_sidecar.url}/dashboard/events?filter_account=all&kind=mode.switch")
        switches = [r.locator("td.data").inner_text() for r in page.locator("table.events tbody tr").all()]
        assert len(switches) == 2
        assert '"from":"paper","to":"live","source":"dashboard"' in switches[0]
        assert '"from":"live","to":"paper","source":"dashboard"' in switches[1]
    finally:
        ctx.close()


def test_equity_curve_gets_points(page: Any, sidecar: Sidecar) -> None:
    """The recorder writes a point every second in this config; the chart shows them."""
    page.goto(dashboard(sidecar))

    def points() -> int:
        text = page.locator("#performance, [data-section=performance]").first.inner_text()
        m = re.search(r"(\d+) points?", text)
        return int(m.group(1)) if m else 0

    eventually(lambda: points() >= 2, timeout=10, what="equity points")
    polyline = page.locator("#equity-chart svg polyline")
    assert polyline.count() == 1
    coords = polyline.get_attribute("points") or ""
    assert len(coords.split()) >= 2
    assert all(Decimal(v) >= 0 for pair in coords.split() for v in pair.split(","))
