"""The tape feeder: moves the tape's clock and matches every step it passes.

In replay it replaces the market watcher (which polls REST on the wall clock, so fills
depended on when it happened to poll). Moving the clock from a to b feeds every step in
(a, b] to the engine in tape order, with the clock reading each step's time while it is
matched, so a fill's time is the time of the trade or book that caused it; stream frames
in (a, b] go to the WebSocket subscribers of their channels. A symbol without open paper
orders is not fed (nothing could fill; the next order reads the book at its own time).

Real and speed mode: a background task wakes when the next step (or subscribed frame) is
due by the wall clock. Step mode: only `advance_to` moves it, and it returns once every
step up to the new time has been matched, with what it passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Container
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from .clock import TapeClock
from .tape import Tape

log = logging.getLogger("proxy.tape")

# longest wall-clock sleep of the real-time loop (it also wakes on a new subscription)
MAX_SLEEP_S = 1.0


class MarketSink(Protocol):
    """What the feeder feeds: `PaperService` (its open orders and its fill models)."""

    async def on_market(self, symbol: str, book: Any, trades: list[Any]) -> int: ...


class FrameSource(Protocol):
    def next_due(self) -> int | None: ...

    def emit_until(self, t: int) -> int: ...


@dataclass
class Passed:
    """What one move of the clock passed."""

    from_ms: int
    to_ms: int
    steps: int = 0
    trades: int = 0
    books: int = 0
    frames: int = 0
    fills: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class TapeFeeder:
    def __init__(
        self,
        tape: Tape,
        clock: TapeClock,
        service: MarketSink,
        open_symbols: Callable[[], Container[str]] | None = None,
        frames: FrameSource | None = None,
    ) -> None:
        self.tape = tape
        self.clock = clock
        self.service = service
        # the symbols with open paper orders now (the service's open_by_symbol)
        self.open_symbols = open_symbols
        self.frames = frames
        self.index = 0  # the next step to feed
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._moved = asyncio.Condition()
        self.total = Passed(clock.position, clock.position)
        self._set_next()

    # ---- positions ----
    def _set_next(self) -> None:
        steps = self.tape.steps
        self.clock.next_ms = steps[self.index].t if self.index < len(steps) else None

    def skip_to(self, t: int) -> None:
        """Mark every step at or before t as passed without feeding it (start-up: a tape
        resumed where the database left off, or the steps at the tape's very start, when
        no order can exist yet)."""
        steps = self.tape.steps
        while self.index < len(steps) and steps[self.index].t <= t:
            self.index += 1
        if t > self.clock.position:
            self.clock.position = t
        self._set_next()

    @property
    def next_ms(self) -> int | None:
        return self.clock.next_ms

    @property
    def ended(self) -> bool:
        return self.index >= len(self.tape.steps) and self.clock.position >= self.tape.end_ms

    # ---- moving ----
    async def advance_to(self, target: int) -> Passed:
        """Feed every step in (position, target] in tape order, then set the clock to
        target. Moves are serialised; a target behind the position moves nothing."""
        async with self._lock:
            clock = self.clock
            passed = Passed(clock.position, max(clock.position, target))
            steps = self.tape.steps
            n = len(steps)
            while self.index < n and steps[self.index].t <= target:
                step = steps[self.index]
                self.index += 1
                if self.frames is not None:
                    passed.frames += self.frames.emit_until(step.t)
                if step.t > clock.position:
                    clock.position = step.t
                clock.next_ms = steps[self.index].t if self.index < n else None
                passed.steps += 1
                passed.trades += len(step.trades)
                passed.books += step.book is not None
                if self.open_symbols is None or step.symbol in self.open_symbols():
                    clock.pinned = True
                    try:
                        passed.fills += await self.service.on_market(
                            step.symbol, step.book, list(step.trades)
                        )
                    finally:
                        clock.pinned = False
            if self.frames is not None:
                passed.frames += self.frames.emit_until(target)
            if target > clock.position:
                clock.position = target
            self._set_next()
            t = self.total
            t.to_ms = clock.position
            t.steps += passed.steps
            t.trades += passed.trades
            t.books += passed.books
            t.frames += passed.frames
            t.fills += passed.fills
        async with self._moved:
            self._moved.notify_all()
        return passed

    async def wait_position(self, t: int) -> None:
        """Wait until every step up to tape time t has been matched (tests, the fixture)."""
        async with self._moved:
            await self._moved.wait_for(lambda: self.clock.position >= t)

    # ---- real and speed mode ----
    def start(self) -> None:
        if self.clock.mode == "step":
            return
        self.clock.run()
        self._task = asyncio.create_task(self._run(), name="tape-feeder")

    def poke(self) -> None:
        """Re-plan the next wake-up (a new stream subscription)."""
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.advance_to(self.clock.target())
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not stop the tape; it is logged loudly
                log.exception("tape feeder failed to feed a step")
                await asyncio.sleep(MAX_SLEEP_S)
            due = [t for t in (self.clock.next_ms, self.frames.next_due() if self.frames else None)
                   if t is not None]
            delay = min([MAX_SLEEP_S, *(self.clock.wall_s_until(t) for t in due)])
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
