"""The market watcher (issue 6): which trades are new, which symbols are polled, and how
failures are reported.

`new_trades` is pure and tested on MEXC-shaped pages (trade ids are null). The polling
tests drive `MarketWatcher.poll_once` against a stub upstream and a stub service: no
network, no background task, and a hand-moved monotonic clock for the backoff. The
backoff's bounds and the recovery over HTTP are in tests/reliability/test_upstream_faults.py.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from proxy import watcher as watcher_mod
from proxy.engine.model import Book, Trade
from proxy.parsers import parse_trades
from proxy.upstream import UpstreamError
from proxy.watcher import MarketWatcher, new_trades

D = Decimal
T = 1_767_205_900_000


def mexc_trade(price: str, qty: str, time_ms: int, buyer_maker: bool) -> dict[str, Any]:
    """One element of GET /api/v3/trades as MEXC sends it: the id is null."""
    return {
        "id": None, "price": price, "qty": qty, "quoteQty": "0", "time": time_ms,
        "isBuyerMaker": buyer_maker, "isBestMatch": True, "tradeType": "ASK" if buyer_maker else "BID",
    }


def page(*trades: dict[str, Any]) -> list[Trade]:
    """A page given newest first (MEXC's order), parsed to oldest first."""
    return parse_trades(list(trades))


def counted(trades: list[Trade]) -> Counter:
    return Counter((t.time_ms, t.price, t.qty, t.is_buyer_maker) for t in trades)


def keys(trades: list[Trade]) -> list[tuple[int, str, str, bool]]:
    return [(t.time_ms, format(t.price, "f"), format(t.qty, "f"), t.is_buyer_maker) for t in trades]


A = mexc_trade("87900.01", "0.001", T + 1, True)
B = mexc_trade("87900.02", "0.002", T + 2, False)
C = mexc_trade("87900.03", "0.003", T + 3, True)
E = mexc_trade("87900.04", "0.004", T + 4, False)


# --------------------------------------------------------------------------- new_trades


def test_the_first_page_is_only_a_baseline() -> None:
    assert new_trades(None, page(C, B, A)) == []


def test_trades_already_on_the_previous_page_are_not_new() -> None:
    previous = counted(page(C, B, A))
    fresh = new_trades(previous, page(E, C, B))  # A scrolled off, E arrived
    assert keys(fresh) == [(T + 4, "87900.04", "0.004", False)]
    assert new_trades(previous, page(C, B, A)) == []  # nothing happened


def test_new_trades_come_oldest_first() -> None:
    previous = counted(page(A))
    assert [t.time_ms for t in new_trades(previous, page(E, C, B, A))] == [T + 2, T + 3, T + 4]


def test_without_ids_any_of_time_price_quantity_and_side_tells_trades_apart() -> None:
    previous = counted(page(A))
    variants = [
        mexc_trade("87900.01", "0.001", T + 1, False),  # side
        mexc_trade("87900.09", "0.001", T + 1, True),  # price
        mexc_trade("87900.01", "0.005", T + 1, True),  # quantity
        mexc_trade("87900.01", "0.001", T + 9, True),  # time
    ]
    for v in variants:
        assert len(new_trades(previous, page(v, A))) == 1, v


def test_identical_prints_in_one_millisecond_are_counted_not_collapsed() -> None:
    previous = counted(page(A))
    fresh = new_trades(previous, page(A, A, A))  # two more of the same print
    assert keys(fresh) == [(T + 1, "87900.01", "0.001", True)] * 2


def test_trades_older_than_the_previous_page_are_ignored() -> None:
    previous = counted(page(C, B))
    assert keys(new_trades(previous, page(C, B, A))) == []  # A is older than B: from before


def test_after_an_empty_page_everything_is_new() -> None:
    assert keys(new_trades(Counter(), page(B, A))) == keys(page(B, A))


def test_the_same_decimal_written_differently_is_the_same_trade() -> None:
    previous = counted(page(mexc_trade("87900.10", "0.0010", T + 1, True)))
    assert new_trades(previous, page(mexc_trade("87900.1", "0.001", T + 1, True))) == []


# --------------------------------------------------------------------------- polling


@dataclass
class StubSettings:
    market_cache_ms: int = 0


@dataclass
class StubUpstream:
    pages: dict[str, list[Trade]] = field(default_factory=dict)
    fail: UpstreamError | None = None
    calls: list[tuple[str, str]] = field(default_factory=list)
    settings: StubSettings = field(default_factory=StubSettings)

    async def trades(self, symbol: str, max_age_ms: int | None = None) -> list[Trade]:
        self.calls.append(("trades", symbol))
        if self.fail is not None:
            raise self.fail
        return self.pages.get(symbol, [])

    async def book(self, symbol: str, max_age_ms: int | None = None) -> Book:
        self.calls.append(("book", symbol))
        if self.fail is not None:
            raise self.fail
        return Book(symbol, ((D("1"), D("1")),), ((D("2"), D("1")),), "1")


@dataclass
class StubService:
    symbols: list[str] = field(default_factory=list)
    fed: list[tuple[str, list[Trade]]] = field(default_factory=list)

    def watched_symbols(self) -> list[str]:
        return sorted(self.symbols)

    async def on_market(self, symbol: str, book: Book, trades: list[Trade]) -> int:
        self.fed.append((symbol, list(trades)))
        return 0


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Monotonic:
    c = Monotonic()
    monkeypatch.setattr(watcher_mod, "time", c)
    return c


def polled(up: StubUpstream) -> list[str]:
    out = sorted({s for _kind, s in up.calls})
    up.calls.clear()
    return out


async def test_only_symbols_with_open_orders_are_polled(clock: Monotonic) -> None:
    up, svc = StubUpstream(), StubService(["BTCUSDT", "ETHUSDT"])
    w = MarketWatcher(svc, up, 1.0)  # type: ignore[arg-type]
    await w.poll_once()
    assert polled(up) == ["BTCUSDT", "ETHUSDT"]

    svc.symbols = ["BTCUSDT"]  # ETHUSDT's last order closed
    await w.poll_once()
    assert polled(up) == ["BTCUSDT"]
    assert set(w.watches) == {"BTCUSDT"}

    svc.symbols = []
    await w.poll_once()
    assert up.calls == [] and w.watches == {}


async def test_only_new_trades_are_fed_and_a_returning_symbol_gets_only_what_is_newer(
    clock: Monotonic,
) -> None:
    up, svc = StubUpstream({"BTCUSDT": page(B, A)}), StubService(["BTCUSDT"])
    w = MarketWatcher(svc, up, 1.0)  # type: ignore[arg-type]
    await w.poll_once()  # baseline: A and B happened before we watched
    up.pages["BTCUSDT"] = page(C, B, A)
    await w.poll_once()
    await w.poll_once()  # the same page again: nothing new
    assert [(s, keys(t)) for s, t in svc.fed] == [
        ("BTCUSDT", []), ("BTCUSDT", keys(page(C))), ("BTCUSDT", [])]

    svc.symbols, svc.fed = [], []
    await w.poll_once()  # no open orders: not polled, its page forgotten
    up.pages["BTCUSDT"] = page(E, C, B, A)  # E printed while nobody watched
    svc.symbols = ["BTCUSDT"]  # a new order: E may have printed after it arrived
    await w.poll_once()
    # A, B, C were seen before: never fed twice (one trade must not fill more than its
    # size); E is fed, and the engine skips it for orders that arrived after it printed
    assert [(s, keys(t)) for s, t in svc.fed] == [("BTCUSDT", keys(page(E)))]


async def test_a_failure_streak_is_logged_once_and_backs_off(
    clock: Monotonic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="proxy.watcher")
    up, svc = StubUpstream(), StubService(["BTCUSDT"])
    w = MarketWatcher(svc, up, 1.0)  # type: ignore[arg-type]
    up.fail = UpstreamError("http", "upstream /api/v3/trades answered 429", status=429,
                            retry_after="5")
    for _ in range(6):
        await w.poll_once()  # never raises
        watch = w.watches["BTCUSDT"]
        wait = watch.next_at - clock.now
        assert wait >= 5  # Retry-After honoured
        up.calls.clear()
        clock.now += wait - 0.001  # still backing off: the symbol is left alone
        await w.poll_once()
        assert up.calls == []
        clock.now += 0.002
    assert w.watches["BTCUSDT"].failures == 6
    warnings = [r for r in caplog.records if r.name == "proxy.watcher" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "BTCUSDT" in warnings[0].getMessage() and "http" in warnings[0].getMessage()
    assert svc.fed == []

    up.fail = None  # it comes back: one line says so, and the streak is over
    await w.poll_once()
    back = [r.getMessage() for r in caplog.records if r.name == "proxy.watcher" and r.levelno == logging.INFO]
    assert back == ["market data for BTCUSDT is back after 6 failures"]
    assert w.watches["BTCUSDT"].failures == 0

    caplog.clear()  # a new streak is a new incident: logged once again
    up.fail = UpstreamError("timeout", "upstream timed out")
    for _ in range(3):
        await w.poll_once()
        clock.now = w.watches["BTCUSDT"].next_at
    lines = [r for r in caplog.records if r.name == "proxy.watcher"]
    assert [r.levelno for r in lines] == [logging.WARNING]
    assert "timeout" in lines[0].getMessage()


async def test_one_failing_symbol_does_not_stop_the_others(clock: Monotonic) -> None:
    class HalfBroken(StubUpstream):
        async def trades(self, symbol: str, max_age_ms: int | None = None) -> list[Trade]:
            if symbol == "ETHUSDT":
                self.calls.append(("trades", symbol))
                raise UpstreamError("connect", "refused")
            return await super().trades(symbol, max_age_ms)

    up, svc = HalfBroken({"BTCUSDT": page(A)}), StubService(["BTCUSDT", "ETHUSDT"])
    w = MarketWatcher(svc, up, 1.0)  # type: ignore[arg-type]
    await w.poll_once()
    up.pages["BTCUSDT"] = page(B, A)
    clock.now += 1
    await w.poll_once()
    assert [(s, keys(t)) for s, t in svc.fed] == [("BTCUSDT", []), ("BTCUSDT", keys(page(B)))]
    assert w.watches["ETHUSDT"].failures == 1  # still backing off after one second


def test_the_first_page_counts_the_trades_since_the_process_started() -> None:
    # an order placed on a symbol nobody watched must not lose the trades between its
    # arrival and the first poll; those printed before the start were missed while down
    assert keys(new_trades(None, page(C, B, A), since_ms=T + 2)) == keys(page(C, B))  # B, C
    assert new_trades(None, page(C, B, A), since_ms=T + 100) == []
