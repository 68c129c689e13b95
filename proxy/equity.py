"""Performance over the store: the equity recorder, and the PnL ledgers the dashboard reads.

The equity recorder is a background task that writes each account's value to `equity`.

Right after start and then every `dashboard.equity_interval_s` it values every paper
account (balances x current prices from /api/v3/ticker/price, see `performance`) and
queues one row per account through the store's group commit. When the upstream gives no
prices at all, accounts holding anything besides the valuation asset get no point (a
curve that drops to the cash balance whenever MEXC is unreachable would lie).

`PnlCache` keeps one `performance.PnlLedger` per account and feeds it only the fills it
has not seen yet (fills are append-only; a reset, counted in `PaperService.resets`, starts
the ledger over), so a dashboard polling every second does not re-read the whole history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from decimal import Decimal

from .clock import Clock
from .jsonutil import fmt
from .performance import PnlLedger, value_balances
from .service import PaperService
from .store import Changes

log = logging.getLogger("proxy.equity")

INSERT_EQUITY = "INSERT OR REPLACE INTO equity (account_id, time_ms, value) VALUES (?, ?, ?)"


class EquityRecorder:
    def __init__(self, service: PaperService, clock: Clock, interval_s: float, quote: str) -> None:
        self.service = service
        self.clock = clock
        self.interval = interval_s
        self.quote = quote
        self.rounds = 0
        self.round_done = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def start(self, first_timeout_s: float = 2.0) -> None:
        """Record the first point now (waiting at most `first_timeout_s` for prices, so a
        slow upstream cannot hold up start-up), then one every interval in the background."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._round(), first_timeout_s)
        self._task = asyncio.create_task(self._run(), name="equity-recorder")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait_rounds(self, n: int = 1) -> None:
        """Wait until `n` recording rounds have completed since start (tests)."""
        async with self.round_done:
            await self.round_done.wait_for(lambda: self.rounds >= n)

    async def record_once(self) -> dict[int, Decimal]:
        """Value every account and queue its equity point; returns what was recorded."""
        prices = await self.service.upstream.all_prices()
        now = self.clock.now_ms()
        out: dict[int, Decimal] = {}
        stmts = []
        for account_id in self.service.account_ids():
            v = value_balances(self.service.balances(account_id), prices, self.quote)
            if not prices and any(a.asset != self.quote for a in v.assets):
                continue
            out[account_id] = v.total
            stmts.append((INSERT_EQUITY, (account_id, now, fmt(v.total))))
        if stmts:
            self.service.store.submit(Changes(statements=stmts))
        return out

    async def _round(self) -> None:
        try:
            await self.record_once()
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug must not end the curve; it is logged loudly
            log.exception("recording the equity curve failed")
        async with self.round_done:
            self.rounds += 1
            self.round_done.notify_all()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self._round()


@dataclass(slots=True)
class _Cursor:
    resets: int
    ledger: PnlLedger = field(default_factory=PnlLedger)
    last_ms: int = 0
    seen_at_last: set[str] = field(default_factory=set)


class PnlCache:
    """Per-account PnL ledgers, brought up to date from the store on demand."""

    PAGE = 5000

    def __init__(self, service: PaperService) -> None:
        self.service = service
        self._cursors: dict[int, _Cursor] = {}
        self._assets: dict[str, tuple[str, str]] = {}
        self._lock = asyncio.Lock()

    async def ledger(self, account_id: int) -> PnlLedger:
        async with self._lock:
            resets = self.service.resets.get(account_id, 0)
            cur = self._cursors.get(account_id)
            if cur is None or cur.resets != resets:
                cur = self._cursors[account_id] = _Cursor(resets)
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
