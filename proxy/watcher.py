"""The market watcher: keeps books and the public tape fresh for symbols with open orders.

Every `paper.poll_interval_s` it polls depth and recent trades (REST) for each symbol that
has open paper orders, works out which trades are new, and feeds both to the engine
through the service. Symbols without open orders are not polled. Failures back off
exponentially (a 429 honours Retry-After) and are logged once per streak; the loop never
dies and never spins.

MEXC trade ids are null, so new trades are found by comparing (time, price, qty, side)
with the previous page. Of the first page for a symbol, only trades printed since the
process started and newer than anything seen on the symbol's earlier pages count (an
order placed on a symbol nobody watched yet must not lose the trades between its arrival
and the first poll); the engine then ignores, for each order, trades printed before it
rested, by MEXC's clock. Trades missed while the process was down are not replayed: that
boundary is the start by our clock against MEXC's trade times, so a clock skew shifts it
by the skew (NTP keeps it to milliseconds); in replay the first page is a baseline only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from .engine.model import Trade
from .service import PaperService
from .upstream import MexcClient, UpstreamError

log = logging.getLogger("proxy.watcher")

TradeKey = tuple[int, object, object, bool]
MAX_BACKOFF_S = 60.0


def _key(t: Trade) -> TradeKey:
    return (t.time_ms, t.price, t.qty, t.is_buyer_maker)


def new_trades(
    previous: Counter[TradeKey] | None, page: list[Trade], since_ms: int | None = None
) -> list[Trade]:
    """Trades of `page` (oldest first) not in the previous page. Identical prints in the
    same millisecond are counted, not collapsed. Trades older than the previous page's
    oldest are ignored (they scrolled in from before). Without a previous page, the
    trades printed at or after `since_ms` (none when it is None: a baseline only)."""
    if previous is None:
        return [] if since_ms is None else [t for t in page if t.time_ms >= since_ms]
    if not previous:
        return list(page)
    oldest = min(k[0] for k in previous)
    seen = Counter(previous)
    out = []
    for t in page:
        k = _key(t)
        if seen[k] > 0:
            seen[k] -= 1
            continue
        if t.time_ms < oldest:
            continue
        out.append(t)
    return out


@dataclass
class _SymbolWatch:
    last_page: Counter[TradeKey] | None = None
    failures: int = 0
    next_at: float = 0.0
    logged: bool = False
    polls: int = 0
    trades_fed: int = 0
    fills: int = 0
    last_error: str | None = None
    errors: dict[str, int] = field(default_factory=dict)


class MarketWatcher:
    def __init__(
        self,
        service: PaperService,
        upstream: MexcClient,
        interval_s: float,
        started_ms: int | None = None,
    ) -> None:
        self.service = service
        # trades printed before this were missed while down: never replayed (None: the
        # first page of a symbol is a baseline only, as in replay, whose recorded times
        # are not comparable with our clock)
        self.started_ms = started_ms
        # symbol -> the newest trade time seen on its pages: when a symbol is watched
        # again, what was seen before is not fed twice
        self.seen_until: dict[str, int] = {}
        self.upstream = upstream
        self.interval = interval_s
        self.watches: dict[str, _SymbolWatch] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.cycles = 0
        self.started = 0
        self.cycle_done = asyncio.Condition()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="market-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def poke(self) -> None:
        """Poll now instead of waiting for the interval (tests, new symbols)."""
        self._wake.set()

    async def wait_cycles(self, n: int = 1) -> None:
        """Wait until `n` polling cycles that start after this call have completed
        (tests): a cycle already under way may have fetched the market before the caller's
        change. Each cycle is poked, so this never waits out `poll_interval_s`."""
        async with self.cycle_done:
            target = self.started + n
            while self.cycles < target:
                self.poke()
                await self.cycle_done.wait()

    async def _run(self) -> None:
        while True:
            self.started += 1
            try:
                await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not kill the watcher; it is logged loudly
                log.exception("market watcher cycle failed")
            async with self.cycle_done:
                self.cycles += 1
                self.cycle_done.notify_all()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()

    async def poll_once(self) -> None:
        symbols = self.service.watched_symbols()
        for gone in set(self.watches) - set(symbols):
            del self.watches[gone]
        now = time.monotonic()
        for symbol in symbols:
            w = self.watches.setdefault(symbol, _SymbolWatch())
            if now < w.next_at:
                continue
            await self._poll_symbol(symbol, w)

    async def _poll_symbol(self, symbol: str, w: _SymbolWatch) -> None:
        # A cached answer is shared with order submission, so it may be no older than an
        # order may use (upstream.market_cache_ms); half an interval alone let a poked cycle
        # (wait_cycles) reuse a page from up to interval/2 ago, and orders read the book the
        # watcher cached for that long.
        max_age = max(0, min(int(self.interval * 500), self.upstream.settings.market_cache_ms))
        try:
            page = await self.upstream.trades(symbol, max_age_ms=max_age)
            book = await self.upstream.book(symbol, max_age_ms=max_age)
        except UpstreamError as exc:
            w.failures += 1
            w.last_error = f"{exc.kind}: {exc}"
            w.errors[exc.kind] = w.errors.get(exc.kind, 0) + 1
            delay = min(MAX_BACKOFF_S, self.interval * (2 ** min(w.failures, 6)))
            if exc.retry_after:
                with contextlib.suppress(ValueError):
                    # honoured up to the backoff cap: an absurd value ("inf", a day)
                    # must not park the watcher for good
                    delay = max(delay, min(float(exc.retry_after), MAX_BACKOFF_S))
            w.next_at = time.monotonic() + delay
            if not w.logged:
                log.warning(
                    "market data for %s unavailable (%s); backing off, retrying every <= %.0fs",
                    symbol, exc.kind, delay,
                )
                w.logged = True
            return
        if w.logged:
            log.info("market data for %s is back after %d failures", symbol, w.failures)
        w.failures, w.logged, w.next_at, w.last_error = 0, False, 0.0, None
        since = self.started_ms
        mark = self.seen_until.get(symbol)
        if mark is not None:
            since = mark + 1 if since is None else max(since, mark + 1)
        fresh = new_trades(w.last_page, page, since)
        if page:
            self.seen_until[symbol] = max(page[-1].time_ms, mark if mark is not None else page[-1].time_ms)
        w.last_page = Counter(_key(t) for t in page)
        w.polls += 1
        w.trades_fed += len(fresh)
        w.fills += await self.service.on_market(symbol, book, fresh)
