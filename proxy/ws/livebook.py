"""An order book kept from MEXC's aggregated depth diffs, synchronised with a REST snapshot.

MEXC's procedure (reference 9.3): buffer the diff pushes, GET /api/v3/depth for a
`lastUpdateId`; a snapshot older than the first buffered diff (`lastUpdateId + 1 <
fromVersion`) is refetched; diffs with `toVersion <= lastUpdateId` are dropped; the first
diff kept must have `fromVersion <= lastUpdateId + 1`; after that every diff must start
right after the previous one (`fromVersion == previous toVersion + 1`). Anything else is
a gap: the book is out of sync until the next snapshot.

Quantities in a diff are absolute; "0" deletes the level. A snapshot of `limit` levels
says nothing about the levels beyond its deepest price, so on a side that filled its
limit only the prices up to that depth are served (`book()`); a side the snapshot showed
whole (fewer levels than asked for) is known to any depth. When the market has moved past
every known level of a side, `needs_resync` says so.

No I/O, no clock: the caller gives times and fetches snapshots.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from decimal import Decimal, InvalidOperation

from ..engine.model import Book
from .pbwire import DepthDiff

ZERO = Decimal(0)
MAX_BUFFER = 2000  # diffs kept while unsynchronised (200 s at 100 ms)


class _Side:
    """Price -> quantity, and the prices sorted best first (keys negated for bids)."""

    __slots__ = ("keys", "levels", "sign")

    def __init__(self, bids: bool) -> None:
        self.sign = -1 if bids else 1
        self.levels: dict[Decimal, Decimal] = {}
        self.keys: list[Decimal] = []

    def set(self, price: Decimal, qty: Decimal) -> None:
        k = price * self.sign
        if qty == 0:
            if self.levels.pop(price, None) is not None:
                i = bisect_left(self.keys, k)
                if i < len(self.keys) and self.keys[i] == k:
                    del self.keys[i]
            return
        if price not in self.levels:
            insort(self.keys, k)
        self.levels[price] = qty

    def top(self, n: int, limit: Decimal | None) -> tuple[tuple[Decimal, Decimal], ...]:
        out = []
        for k in self.keys[:n]:
            if limit is not None and k > limit * self.sign:
                break
            p = k * self.sign
            out.append((p, self.levels[p]))
        return tuple(out)

    def clear(self) -> None:
        self.levels.clear()
        self.keys.clear()


def _dec(text: str) -> Decimal:
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a decimal: {text!r}") from None
    if not d.is_finite() or d < 0:
        raise ValueError(f"not a price or quantity: {text!r}")
    return d


class LiveBook:
    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.bids = _Side(bids=True)
        self.asks = _Side(bids=False)
        self.synced = False
        self.version = 0  # toVersion of the last diff applied (or the snapshot's id)
        self.buffer: deque[tuple[DepthDiff, int | None, int]] = deque(maxlen=MAX_BUFFER)
        # deepest known prices of a side that filled its snapshot limit (None: all known)
        self.bid_floor: Decimal | None = None
        self.ask_cap: Decimal | None = None
        self.market_ms: int | None = None  # MEXC's time of the last change
        self.seen_ms = 0  # our time of the last change
        self.gaps = 0
        self.resyncs = 0
        self._book: Book | None = None
        self._book_depth = 0
        self._first_after_snapshot = False

    # ------------------------------------------------------------------ diffs
    def on_diff(self, diff: DepthDiff, market_ms: int | None, seen_ms: int) -> bool:
        """Apply (or, while unsynchronised, buffer) one diff. Returns whether the book
        changed; a gap makes it unsynchronised (check `synced`)."""
        if not self.synced:
            self.buffer.append((diff, market_ms, seen_ms))
            return False
        if diff.to_version <= self.version:
            return False  # old news
        first = self._first_after_snapshot
        if (diff.from_version > self.version + 1) or (
            not first and diff.from_version != self.version + 1
        ):
            self.gaps += 1
            self.synced = False
            self.buffer.clear()
            self.buffer.append((diff, market_ms, seen_ms))
            return False
        self._apply(diff, market_ms, seen_ms)
        return True

    def _apply(self, diff: DepthDiff, market_ms: int | None, seen_ms: int) -> None:
        for p, q in diff.bids:
            self.bids.set(_dec(p), _dec(q))
        for p, q in diff.asks:
            self.asks.set(_dec(p), _dec(q))
        self.version = diff.to_version
        self._first_after_snapshot = False
        # (market_ms, seen_ms) stay a pair: MEXC's time at our time (Book.market_time_at);
        # a buffered diff that arrived before the snapshot's answer moves MEXC's time only
        # as far as it says, translated to the later arrival
        if seen_ms >= self.seen_ms:
            if market_ms is not None:
                self.market_ms = market_ms
            self.seen_ms = seen_ms
        elif market_ms is not None:
            later = market_ms + (self.seen_ms - seen_ms)
            self.market_ms = later if self.market_ms is None else max(self.market_ms, later)
        self._book = None

    # ------------------------------------------------------------------ snapshots
    def on_snapshot(self, snap: Book, limit: int) -> str:
        """Install a REST snapshot (its version is `lastUpdateId`) and the buffered diffs
        after it. Returns "synced", or "stale" when the snapshot is older than the first
        buffered diff (fetch another), or "gap" when the buffer itself has a hole (the
        book is then the snapshot plus what could be applied; fetch another)."""
        try:
            last_id = int(snap.version)
        except ValueError:
            return "stale"
        pending = [b for b in self.buffer if b[0].to_version > last_id]
        if pending and pending[0][0].from_version > last_id + 1:
            return "stale"
        self.resyncs += 1
        self.bids.clear()
        self.asks.clear()
        for p, q in snap.bids:
            self.bids.set(p, q)
        for p, q in snap.asks:
            self.asks.set(p, q)
        self.bid_floor = snap.bids[-1][0] if len(snap.bids) >= limit and snap.bids else None
        self.ask_cap = snap.asks[-1][0] if len(snap.asks) >= limit and snap.asks else None
        self.version = last_id
        self.market_ms = snap.market_ms
        self.seen_ms = snap.seen_ms
        self._book = None
        self.buffer.clear()
        self.synced = True
        self._first_after_snapshot = True
        for diff, market_ms, seen_ms in pending:
            self.on_diff(diff, market_ms, seen_ms)
            if not self.synced:
                return "gap"
        return "synced"

    @property
    def needs_resync(self) -> bool:
        """The market moved past every level the snapshot vouched for on a side."""
        if not self.synced:
            return True
        if self.bid_floor is not None and (not self.bids.keys or -self.bids.keys[0] < self.bid_floor):
            return True
        return self.ask_cap is not None and (not self.asks.keys or self.asks.keys[0] > self.ask_cap)

    # ------------------------------------------------------------------ the engine's view
    def book(self, depth: int) -> Book:
        """The top `depth` known levels a side as an engine `Book` (cached until the next
        change). `incremental`: consumption of liquidity carries over between versions."""
        if self._book is not None and self._book_depth == depth:
            return self._book
        b = Book(
            self.symbol,
            self.bids.top(depth, self.bid_floor),
            self.asks.top(depth, self.ask_cap),
            str(self.version),
            self.seen_ms,
            self.market_ms,
            incremental=True,
        )
        self._book, self._book_depth = b, depth
        return b
