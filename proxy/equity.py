"""Performance over the store: the equity recorder, and the PnL ledgers the dashboard reads.

The equity recorder is a background task that writes each account's value to `equity`.

It values every paper account (balances x current prices from /api/v3/ticker/price, see
`performance`) and queues one row per account through the store's group commit:
  - right after start;
  - right after an account reset, so the reset account's curve starts again at its
    starting value (and any point a round read from the old balances while the reset was
    being written is deleted with it);
  - after the service reports a change (an order, a fill, a cancel, funding), at most once
    per `dashboard.equity_change_gap_s`: the first change after a quiet spell records at
    once, later ones are coalesced into one point at the end of the gap, so the curve
    moves as the bot trades without a valuation per order;
  - and otherwise every `dashboard.equity_interval_s`, so price moves show up too.
It subscribes to the service's change feed (`PaperService.feed`) with a callback that
only marks a change (a coalescing queue of one), so nothing on the order path waits for
it. An account holding any asset no price is known for gets no point (a curve that drops
to the cash balance whenever MEXC is unreachable, or leaves out a coin it holds, would
lie). Prices come from `PaperService.mark_prices`, as on the dashboard and the admin API.

`PnlCache` keeps one `performance.PnlLedger` per account and feeds it only the fills it
has not seen yet (fills are append-only; a reset, counted in `PaperService.resets`, starts
the ledger over), so a dashboard polling every second does not re-read the whole history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from .clock import Clock
from .feed import Committed
from .jsonutil import fmt
from .performance import PnlLedger, value_balances
from .service import PaperService
from .store import Changes

log = logging.getLogger("proxy.equity")

INSERT_EQUITY = "INSERT OR REPLACE INTO equity (account_id, time_ms, value) VALUES (?, ?, ?)"
DELETE_EQUITY = "DELETE FROM equity WHERE account_id = ?"


class EquityRecorder:
    def __init__(
        self,
        service: PaperService,
        clock: Clock,
        interval_s: float,
        quote: str,
        change_gap_s: float = 5.0,
    ) -> None:
        self.service = service
        self.clock = clock
        self.interval = interval_s
        self.change_gap = change_gap_s
        self.quote = quote
        self.rounds = 0
        self.wakeups = 0  # change notifications seen by the background task (tests)
        self.round_done = asyncio.Condition()
        # account id -> the reset count its points were last recorded under
        self._resets_seen: dict[int, int] = dict(service.resets)
        self._last: dict[int, Decimal] = {}  # account id -> the value of its last point
        self._changes: asyncio.Queue[str] = asyncio.Queue()
        self._reset = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None

    def _on_committed(self, record: Committed) -> None:
        """Feed subscriber: mark a change (and a reset, which records at once)."""
        if record.reset is not None:
            self._reset.set()
        if self._changes.empty():
            self._changes.put_nowait("change")

    async def start(self, first_timeout_s: float = 2.0) -> None:
        """Record the first point now (waiting at most `first_timeout_s` for prices, so a
        slow upstream cannot hold up start-up), then run in the background."""
        self._unsubscribe = self.service.feed.subscribe(self._on_committed)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._round(), first_timeout_s)
        self._task = asyncio.create_task(self._run(), name="equity-recorder")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    async def wait_rounds(self, n: int = 1) -> None:
        """Wait until `n` recording rounds have completed since start (tests)."""
        async with self.round_done:
            await self.round_done.wait_for(lambda: self.rounds >= n)

    async def wait_wakeups(self, n: int = 1) -> None:
        """Wait until the background task has seen `n` change notifications (tests)."""
        async with self.round_done:
            await self.round_done.wait_for(lambda: self.wakeups >= n)

    def reset_pending(self) -> bool:
        """Whether an account was reset since its last point (then it gets one now)."""
        resets = self.service.resets
        return any(resets.get(a, 0) != self._resets_seen.get(a, 0) for a in resets)

    async def record_once(self, changed_only: bool = False) -> dict[int, Decimal]:
        """Value every account and queue its equity point; returns what was recorded.
        An account reset since its last point loses every older point first. With
        `changed_only` (a round after a change notification), an account whose value is
        what its last point says gets no new point: one busy account does not fill the
        curves of idle ones."""
        quote = self.quote
        held = {b.asset for a in self.service.account_ids() for b in self.service.balances(a) if b.total}
        prices = await self.service.mark_prices(a + quote for a in held if a != quote)
        # from here on nothing awaits: the balances and the reset counts belong together
        now = self.clock.now_ms()
        out: dict[int, Decimal] = {}
        stmts = []
        for account_id in self.service.account_ids():
            resets = self.service.resets.get(account_id, 0)
            was_reset = resets != self._resets_seen.get(account_id, 0)
            if was_reset:
                # the reset deleted the curve, but a round that read the old balances
                # while it was being written may have queued a point after that
                stmts.append((DELETE_EQUITY, (account_id,)))
                self._resets_seen[account_id] = resets
                self._last.pop(account_id, None)
            v = value_balances(self.service.balances(account_id), prices, self.quote)
            if v.unpriced:
                # a total that leaves out an asset is no value of the account: no point
                continue
            if changed_only and self._last.get(account_id) == v.total:
                continue
            out[account_id] = self._last[account_id] = v.total
            stmts.append((INSERT_EQUITY, (account_id, now, fmt(v.total))))
        if stmts:
            self.service.store.submit(Changes(statements=stmts))
        return out

    async def _round(self, changed_only: bool = False) -> bool:
        ok = True
        try:
            await self.record_once(changed_only)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug must not end the curve; it is logged loudly
            log.exception("recording the equity curve failed")
            ok = False
        async with self.round_done:
            self.rounds += 1
            self.round_done.notify_all()
        return ok

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        changed = False
        ok = True
        last_timer = last
        while True:
            if ok and self.reset_pending():
                due = loop.time()
            elif changed or not ok:  # a failed round is retried after the gap, not at once
                due = min(last + self.change_gap, last_timer + self.interval)
            else:
                due = last_timer + self.interval
            delay = due - loop.time()
            if delay > 0 and (changed or not ok):
                # a round is due at `due`: more changes add nothing before it, so they are
                # not even listened to (one wake-up per order cost the order path ~25 %
                # CPU); only a reset cuts the wait short, since it records at once
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._reset.wait(), delay)
                self._reset.clear()
                continue
            if delay > 0:
                try:
                    async with asyncio.timeout(delay):
                        await self._changes.get()
                except TimeoutError:
                    pass
                else:
                    changed = True
                    async with self.round_done:
                        self.wakeups += 1
                        self.round_done.notify_all()
                    continue
            while not self._changes.empty():  # this round covers them
                self._changes.get_nowait()
            self._reset.clear()
            # (asyncio may wake a timeout up to its clock resolution early: allow a ms)
            timer = loop.time() + 0.001 >= last_timer + self.interval
            ok = await self._round(changed_only=not timer)
            last = loop.time()
            if timer:
                last_timer = last
            changed = False


@dataclass(slots=True)
class _Cursor:
    resets: int
    ledger: PnlLedger = field(default_factory=PnlLedger)
    last_ms: int = 0
    seen_at_last: set[str] = field(default_factory=set)


class PnlCache:
    """Per-account PnL ledgers, brought up to date from the store on demand.

    It subscribes to the change feed: an account's ledger reads the store only after a
    committed record brought it fills (or reset it), so the dashboard, which asks every
    second, costs no query while nothing happens."""

    PAGE = 5000

    def __init__(self, service: PaperService) -> None:
        self.service = service
        self._cursors: dict[int, _Cursor] = {}
        self._assets: dict[str, tuple[str, str]] = {}
        self._lock = asyncio.Lock()
        self._dirty: set[int] = set()  # accounts with fills since their last catch-up
        self.reads = 0  # catch-ups that read the store (tests)
        self.unsubscribe = service.feed.subscribe(self._on_committed)

    def _on_committed(self, record: Committed) -> None:
        for f in record.fills:
            self._dirty.add(f.account_id)
        if record.reset is not None:
            self._dirty.add(record.reset)

    async def ledger(self, account_id: int) -> PnlLedger:
        async with self._lock:
            resets = self.service.resets.get(account_id, 0)
            cur = self._cursors.get(account_id)
            if cur is None or cur.resets != resets:
                cur = self._cursors[account_id] = _Cursor(resets)
            elif account_id not in self._dirty:
                return cur.ledger  # no fill committed since the last catch-up
            self._dirty.discard(account_id)  # (fills committed during the read mark it again)
            self.reads += 1
            await self._catch_up(account_id, cur)
            return cur.ledger

    async def _catch_up(self, account_id: int, cur: _Cursor) -> None:
        store = self.service.store
        while True:
            page = await store.fills(account_id, None, None, cur.last_ms, None, self.PAGE)
            fresh = 0
            for f in page:
                if f.time_ms == cur.last_ms and f.trade_id in cur.seen_at_last:
                    continue
                base, quote = await self._symbol_assets(account_id, f.symbol, f.order_id)
                cur.ledger.apply(f, base, quote)
                fresh += 1
                if f.time_ms != cur.last_ms:
                    cur.last_ms = f.time_ms
                    cur.seen_at_last = set()
                cur.seen_at_last.add(f.trade_id)
            if len(page) < self.PAGE or not fresh:
                return

    async def _symbol_assets(self, account_id: int, symbol: str, order_id: str) -> tuple[str, str]:
        """(base, quote) of a symbol, from the order the fill belongs to (exact, offline)."""
        known = self._assets.get(symbol)
        if known is not None:
            return known
        order = await self.service.store.get_order(account_id, order_id)
        if order is not None:
            known = self._assets[symbol] = (order.base_asset, order.quote_asset)
            return known
        quote = next((q for q in ("USDT", "USDC", "BTC", "ETH") if symbol.endswith(q)), "")
        return symbol[: len(symbol) - len(quote)], quote
