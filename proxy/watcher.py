"""The market watcher: keeps books and the public tape fresh for symbols with open orders.

Two sources, per symbol with open paper orders:

- the market stream (when `upstream.ws_url` is set): the symbol's aggregated deals and
  aggregated depth channels, subscribed through the relay (the same shared upstream
  subscriptions local clients use). Every deal and every depth change is fed to the
  engine as it arrives (a consumer task, per symbol in arrival order); the book is kept
  from the diffs (`ws.livebook`), anchored on a REST snapshot by MEXC's
  fromVersion/toVersion procedure. In steady state a symbol costs no REST request.
- REST polling, every `paper.poll_interval_s`: depth and recent trades. It is the source
  while the stream is disabled, down or not yet subscribed, and the one-off that
  initialises a symbol: a trades page at the hand-over (see below) and a depth snapshot
  whenever the book has to be (re)synchronised.

Trades and book switch sources separately. A drop of the stream (reported synchronously
by the relay) sends the symbol back to REST at once; when the channel is live again, one
REST trades page is the hand-over: the page's trades are fed as the polling path feeds
them, and the stream's trades are fed from the page's newest time on, those on the page
skipped (counted, not collapsed: identical prints in one millisecond are distinct). Stream
trades older than the page are the page's; so a trade is fed once, from one source.

Failures of REST back off exponentially (a 429 honours Retry-After) and are logged once
per streak; the loop never dies and never spins.

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
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from .engine.model import Book, Trade
from .feed import Committed
from .service import PaperService
from .upstream import MexcClient, UpstreamError
from .ws.channels import FrameSink
from .ws.livebook import LiveBook
from .ws.pbwire import (
    BODY_AGGRE_DEALS,
    BODY_AGGRE_DEPTHS,
    WireError,
    decode_aggre_deals,
    decode_aggre_depths,
    decode_push,
)
from .ws.relay import deals_channel, depth_channel

log = logging.getLogger("proxy.watcher")

TradeKey = tuple[int, object, object, bool]
MAX_BACKOFF_S = 60.0
# levels of the REST snapshot the stream's diffs are applied to (MEXC's procedure asks for
# its maximum, 5000: a diff may touch any level, and a shallower snapshot leaves the
# levels beyond it unknown)
SYNC_DEPTH_LIMIT = 5000
# stream trades held while a symbol waits for its hand-over page
MAX_BUFFERED_TRADES = 50_000
REST, STREAM = "rest", "stream"


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


class MarketStream(Protocol):
    """What the watcher needs of a public-channel source (the relay; in replay, a tape
    may offer the same): shared subscriptions with raw frames, and whether a channel is
    live. `generation` changes whenever a channel is subscribed on a new socket, so a
    consumer knows it may have missed frames; listeners are called synchronously on any
    such change."""

    async def subscribe(self, channel: str, sink: FrameSink) -> bool: ...

    def unsubscribe(self, channel: str, sink: FrameSink) -> None: ...

    def generation(self, channel: str) -> int | None: ...

    def add_listener(self, cb: Callable[[], None]) -> None: ...

    def status(self) -> dict[str, Any]: ...


def _trade(price: str, qty: str, time_ms: int, trade_type: int) -> Trade:
    # tradeType is the taker's side: 1 buy (the seller was the maker), 2 sell
    return Trade(Decimal(price), Decimal(qty), time_ms, trade_type == 2)


class _Feed:
    """One symbol's stream state: its two channels, the book kept from the diffs, and
    which source currently feeds its trades and its book."""

    def __init__(self, watcher: MarketWatcher, symbol: str) -> None:
        self.w = watcher
        self.symbol = symbol
        self.deals = deals_channel(symbol)
        self.depth = depth_channel(symbol)
        self.book = LiveBook(symbol)
        self.trades_src = REST
        self.book_src = REST
        self.trades_gen: int | None = None
        self.book_gen: int | None = None
        self.buffered: list[Trade] = []  # stream trades waiting for the hand-over
        self.pending: list[Trade] = []  # stream trades waiting for the consumer
        self.book_dirty = False
        # after the hand-over page: stream trades up to its newest time are the page's
        self.cutoff_ms: int | None = None
        self.cutoff_keys: Counter[TradeKey] = Counter()
        self.last_price: Decimal | None = None
        self.subscribed: set[str] = set()
        self.refused: set[str] = set()
        self.task: asyncio.Task[None] | None = None
        self.bad_frames = 0
        self.trades_in = 0
        self.diffs_in = 0
        self.updates_fed = 0
        self.trades_fed = 0
        self.fills = 0
        self.synced_at_ms: int | None = None

    @property
    def source(self) -> str:
        if self.trades_src == STREAM and self.book_src == STREAM:
            return "stream"
        if self.trades_src == REST and self.book_src == REST:
            return "rest"
        return "mixed"

    # ---- sinks: called by the relay for every frame, synchronously; never raise ----
    def on_deals(self, frame: bytes) -> None:
        try:
            push = decode_push(frame)
            if push.body_field != BODY_AGGRE_DEALS:
                return
            deals = decode_aggre_deals(push.body)
            trades = [_trade(d.price, d.quantity, d.time_ms, d.trade_type) for d in deals]
        except (WireError, InvalidOperation, ValueError):
            self.bad_frames += 1
            return
        if not trades:
            return
        trades.sort(key=lambda t: t.time_ms)  # stable: a push's order within a millisecond
        self.trades_in += len(trades)
        if self.trades_src != STREAM:
            if len(self.buffered) < MAX_BUFFERED_TRADES:
                self.buffered.extend(trades)
            return
        if self.cutoff_ms is not None:
            trades = self._after_cutoff(trades)
            if not trades:
                return
        self.last_price = trades[-1].price
        self.pending.extend(trades)
        self.w._mark(self.symbol)

    def _after_cutoff(self, trades: list[Trade]) -> list[Trade]:
        """Drop what the hand-over page already fed: trades older than its newest, and
        those of its newest millisecond that were on it."""
        cutoff = self.cutoff_ms
        assert cutoff is not None
        out = []
        for t in trades:
            if t.time_ms < cutoff:
                continue
            if t.time_ms == cutoff:
                k = _key(t)
                if self.cutoff_keys[k] > 0:
                    self.cutoff_keys[k] -= 1
                    continue
            else:
                self.cutoff_ms = None  # past the page: nothing more to skip
                self.cutoff_keys.clear()
            out.append(t)
        return out

    def on_depth(self, frame: bytes) -> None:
        try:
            push = decode_push(frame)
            if push.body_field != BODY_AGGRE_DEPTHS:
                return
            diff = decode_aggre_depths(push.body)
            market_ms = push.send_ms if push.send_ms is not None else push.create_ms
            changed = self.book.on_diff(diff, market_ms, self.w._now_ms())
        except (WireError, InvalidOperation, ValueError):
            self.bad_frames += 1
            return
        self.diffs_in += 1
        if self.book_src != STREAM:
            return
        if not self.book.synced or self.book.needs_resync:
            # a gap in the versions: out of sync until the next snapshot
            self.book_src = REST
            self.book.synced = False
            self.w.poke()
            return
        if changed:
            self.book_dirty = True
            self.w._mark(self.symbol)

    def sink_of(self, channel: str) -> FrameSink:
        return self.on_deals if channel == self.deals else self.on_depth


class MarketWatcher:
    def __init__(
        self,
        service: PaperService,
        upstream: MexcClient,
        interval_s: float,
        started_ms: int | None = None,
        *,
        stream: MarketStream | None = None,
        clock: Callable[[], int] | None = None,
        depth_limit: int = 100,
        sync_depth_limit: int = SYNC_DEPTH_LIMIT,
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
        # the market stream (None: REST polling only)
        self.stream = stream
        self._clock = clock
        self.depth_limit = depth_limit
        self.sync_depth_limit = sync_depth_limit
        self.feeds: dict[str, _Feed] = {}
        self._dirty: dict[str, None] = {}  # symbols with stream updates to feed, in order
        self._dirty_evt = asyncio.Event()
        self._feed_lock = asyncio.Lock()  # one feeder of the engine at a time, in order
        self._consumer: asyncio.Task[None] | None = None
        self.fed = asyncio.Condition()  # notified after every stream update fed (tests)
        self.stream_updates_fed = 0
        self._unsubscribe: Callable[[], None] | None = None
        if stream is not None:
            stream.add_listener(self._on_stream_change)

    def _now_ms(self) -> int:
        return self._clock() if self._clock is not None else time.time_ns() // 1_000_000

    def start(self) -> None:
        self._unsubscribe = self.service.feed.subscribe(self._on_committed)
        self._task = asyncio.create_task(self._run(), name="market-watcher")
        if self.stream is not None:
            self._consumer = asyncio.create_task(self._consume(), name="market-stream-feed")

    def _on_committed(self, record: Committed) -> None:
        """Change-feed subscriber: an order resting on a symbol not watched yet starts
        its watch now, not at the next cycle (up to `poll_interval_s` later)."""
        for o in record.orders:
            if o.is_open and o.symbol not in self.watches and o.symbol not in self.feeds:
                self.poke()
                return

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for task in (self._task, self._consumer, *(f.task for f in self.feeds.values())):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for symbol in list(self.feeds):
            self._stop_feed(symbol)

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

    async def wait_fed(self, predicate: Callable[[], bool]) -> None:
        """Wait until `predicate()` holds, checked after every stream update fed and every
        polling cycle (tests; bound it with asyncio.timeout)."""
        async with self.fed:
            while not predicate():
                self.poke()
                await self.fed.wait()

    async def _notify_fed(self) -> None:
        async with self.fed:
            self.fed.notify_all()

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
            await self._notify_fed()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()

    # ------------------------------------------------------------------ the stream side
    def _start_feed(self, symbol: str) -> _Feed:
        feed = _Feed(self, symbol)
        self.feeds[symbol] = feed
        feed.task = asyncio.create_task(self._subscribe(feed), name=f"market-stream-{symbol}")
        return feed

    async def _subscribe(self, feed: _Feed) -> None:
        stream = self.stream
        assert stream is not None
        channels = (feed.deals, feed.depth)
        results = await asyncio.gather(
            *(stream.subscribe(ch, feed.sink_of(ch)) for ch in channels), return_exceptions=True
        )
        for ch, ok in zip(channels, results, strict=True):
            if ok is True:
                feed.subscribed.add(ch)
            else:
                feed.refused.add(ch)
                log.warning(
                    "market stream: %s could not be subscribed (%s); %s stays on REST polling",
                    ch, ok if isinstance(ok, BaseException) else "refused", feed.symbol,
                )
        self._on_stream_change()

    def _stop_feed(self, symbol: str) -> None:
        feed = self.feeds.pop(symbol, None)
        if feed is None:
            return
        if feed.task is not None and not feed.task.done():
            feed.task.cancel()
        assert self.stream is not None
        for ch in (feed.deals, feed.depth):
            self.stream.unsubscribe(ch, feed.sink_of(ch))
        self._dirty.pop(symbol, None)

    def _on_stream_change(self) -> None:
        """A channel went live or stopped being live (called synchronously by the relay,
        before any frame of a new socket): whatever changed socket falls back to REST
        until it is handed over again."""
        stream = self.stream
        assert stream is not None
        for feed in self.feeds.values():
            if feed.trades_src == STREAM and stream.generation(feed.deals) != feed.trades_gen:
                feed.trades_src = REST
                feed.trades_gen = None
                feed.cutoff_ms = None
                w = self.watches.get(feed.symbol)
                if w is not None:
                    w.last_page = None  # the first REST page counts from seen_until
            if feed.book_src == STREAM and stream.generation(feed.depth) != feed.book_gen:
                feed.book_src = REST
                feed.book_gen = None
                feed.book.synced = False
                feed.book.buffer.clear()
        self.poke()

    def _mark(self, symbol: str) -> None:
        self._dirty[symbol] = None
        self._dirty_evt.set()

    async def _consume(self) -> None:
        """Feed the stream's updates to the engine as they arrive: per symbol, the trades
        since the last feed (oldest first) and the latest book."""
        while True:
            await self._dirty_evt.wait()
            self._dirty_evt.clear()
            while self._dirty:
                symbol = next(iter(self._dirty))
                del self._dirty[symbol]
                try:
                    await self._feed_stream(symbol)
                except asyncio.CancelledError:
                    raise
                except Exception:  # a bug must not stop the feed; it is logged loudly
                    log.exception("feeding the market stream of %s failed", symbol)
            await self._notify_fed()

    async def _feed_stream(self, symbol: str) -> None:
        async with self._feed_lock:
            feed = self.feeds.get(symbol)
            if feed is None:
                return
            trades, feed.pending = feed.pending, []
            book = None
            if feed.book_dirty and feed.book_src == STREAM and feed.book.synced:
                book = feed.book.book(self.depth_limit)
            feed.book_dirty = False
            if not trades and book is None:
                return
            fills = await self.service.on_market(symbol, book, trades)
            if trades:
                mark = self.seen_until.get(symbol, trades[-1].time_ms)
                self.seen_until[symbol] = max(mark, trades[-1].time_ms)
            feed.updates_fed += 1
            feed.trades_fed += len(trades)
            feed.fills += fills
            self.stream_updates_fed += 1

    # LiveMarket (MexcClient.live): the stream's book and last price for orders
    def book(self, symbol: str) -> Book | None:
        feed = self.feeds.get(symbol)
        if feed is None or feed.book_src != STREAM or not feed.book.synced:
            return None
        return feed.book.book(self.depth_limit)

    def last_price(self, symbol: str) -> Decimal | None:
        feed = self.feeds.get(symbol)
        if feed is None or feed.trades_src != STREAM:
            return None
        return feed.last_price

    def _stream_state(self) -> str:
        return str(self.stream.status().get("state")) if self.stream is not None else "disabled"

    def stream_status(self) -> dict[str, Any]:
        """For /healthz: the stream's state and the source of each watched symbol."""
        symbols: dict[str, Any] = {}
        for symbol in sorted(set(self.watches) | set(self.feeds)):
            feed = self.feeds.get(symbol)
            if feed is None:
                symbols[symbol] = {"source": "rest", "trades": "rest", "book": "rest"}
            else:
                symbols[symbol] = {
                    "source": feed.source, "trades": feed.trades_src, "book": feed.book_src,
                }
        out: dict[str, Any] = {"enabled": self.stream is not None}
        if self.stream is not None:
            out.update(self.stream.status())
        else:
            out["state"] = "disabled"
        out["symbols"] = symbols
        return out

    # ------------------------------------------------------------------ the polling side
    async def poll_once(self) -> None:
        symbols = self.service.watched_symbols()
        wanted = set(symbols)
        for gone in set(self.watches) - wanted:
            del self.watches[gone]
        for gone in set(self.feeds) - wanted:
            self._stop_feed(gone)
        now = time.monotonic()
        for symbol in symbols:
            feed = self.feeds.get(symbol)
            if feed is None and self.stream is not None:
                feed = self._start_feed(symbol)
            if (
                feed is not None and feed.task is not None and not feed.task.done()
                and self._stream_state() != "down"
            ):
                # its channels are being subscribed (the answer pokes this loop): their
                # first REST page would be outdated by the hand-over page at once
                continue
            if feed is not None and feed.trades_src == STREAM and feed.book_src == STREAM:
                if feed.book.needs_resync:
                    feed.book_src = REST
                else:
                    continue  # steady state: the stream feeds it, no REST request
            w = self.watches.setdefault(symbol, _SymbolWatch())
            if now < w.next_at:
                continue
            await self._poll_symbol(symbol, w, feed)

    async def _poll_symbol(self, symbol: str, w: _SymbolWatch, feed: _Feed | None = None) -> None:
        # A cached answer is shared with order submission, so it may be no older than an
        # order may use (upstream.market_cache_ms); half an interval alone let a poked cycle
        # (wait_cycles) reuse a page from up to interval/2 ago, and orders read the book the
        # watcher cached for that long.
        max_age = max(0, min(int(self.interval * 500), self.upstream.settings.market_cache_ms))
        stream = self.stream
        deals_gen = depth_gen = None
        want_trades = want_book = True
        if feed is not None and stream is not None:
            want_trades = feed.trades_src != STREAM
            want_book = feed.book_src != STREAM
            deals_gen = stream.generation(feed.deals) if want_trades else None
            depth_gen = stream.generation(feed.depth) if want_book else None
        page: list[Trade] | None = None
        book: Book | None = None
        snapshot: Book | None = None
        try:
            if want_trades:
                # the hand-over page must be newer than the subscription: never cached
                page = await self.upstream.trades(symbol, max_age_ms=0 if deals_gen else max_age)
            if want_book:
                if depth_gen is not None:
                    snapshot = await self.upstream.depth_snapshot(symbol, self.sync_depth_limit)
                else:
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
        fresh: list[Trade] = []
        if page is not None:
            since = self.started_ms
            mark = self.seen_until.get(symbol)
            if mark is not None:
                since = mark + 1 if since is None else max(since, mark + 1)
            fresh = new_trades(w.last_page, page, since)
            if page:
                newest = page[-1].time_ms
                self.seen_until[symbol] = max(newest, mark if mark is not None else newest)
            w.last_page = Counter(_key(t) for t in page)
        async with self._feed_lock:
            if snapshot is not None:
                assert feed is not None and stream is not None
                book = self._sync_book(feed, snapshot, depth_gen)
            if page is not None and feed is not None and deals_gen is not None:
                assert stream is not None
                if stream.generation(feed.deals) == deals_gen:
                    fresh += self._hand_over(feed, page, deals_gen)
            w.polls += 1
            w.trades_fed += len(fresh)
            w.fills += await self.service.on_market(symbol, book, fresh)

    def _sync_book(self, feed: _Feed, snapshot: Book, depth_gen: int | None) -> Book:
        """Anchor the stream's diffs on a REST snapshot; the book the engine gets now."""
        assert self.stream is not None
        if self.stream.generation(feed.depth) == depth_gen:
            result = feed.book.on_snapshot(snapshot, self.sync_depth_limit)
            if result == "synced" and not feed.book.needs_resync:
                feed.book_src = STREAM
                feed.book_gen = depth_gen
                feed.book_dirty = False
                feed.synced_at_ms = self._now_ms()
                return feed.book.book(self.depth_limit)
            log.debug("market stream: %s snapshot %s (%s); trying again", feed.symbol,
                      snapshot.version, result)
            self.poke()
        n = self.depth_limit
        return replace(snapshot, bids=snapshot.bids[:n], asks=snapshot.asks[:n])

    def _hand_over(self, feed: _Feed, page: list[Trade], deals_gen: int) -> list[Trade]:
        """Switch the symbol's trades to the stream after `page` (just fed): the buffered
        stream trades the page does not hold, from its newest time on."""
        if page:
            cutoff = page[-1].time_ms
            feed.cutoff_ms = cutoff
            feed.cutoff_keys = Counter(_key(t) for t in page if t.time_ms == cutoff)
        else:
            feed.cutoff_ms = None
            feed.cutoff_keys = Counter()
        buffered, feed.buffered = feed.buffered, []
        feed.trades_src = STREAM
        feed.trades_gen = deals_gen
        extra = feed._after_cutoff(buffered) if feed.cutoff_ms is not None else buffered
        if extra:
            feed.last_price = extra[-1].price
            self.seen_until[feed.symbol] = max(self.seen_until.get(feed.symbol, 0), extra[-1].time_ms)
        elif page:
            feed.last_price = page[-1].price
        return extra
