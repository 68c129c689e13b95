"""The tape's clock: the market's time in replay.

Three modes:
  real   tape time runs at wall-clock speed from where the tape starts
  speed  N times wall-clock speed (`--speed N`)
  step   only `POST /admin/api/clock` (or the pytest fixture's `advance`) moves it

`position` is how far the feeder has matched the tape: every step at or before it has
been fed to the engine. In step mode the clock reads `position`. In real and speed mode it
reads the wall-derived time, but never past a step the feeder has not fed yet (at most
one millisecond before it): time cannot pass a trade before the resting orders have seen
it, however busy the machine is. While the feeder matches a step the clock reads that
step's time (so a fill's time is its trade's time in every mode). The clock never goes
back.
"""

from __future__ import annotations

import time
from collections.abc import Callable

MODES = ("real", "speed", "step")


class TapeClock:
    """A `Clock` (now_ms) whose time is tape time."""

    def __init__(
        self,
        start_ms: int,
        mode: str = "real",
        speed: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown tape clock mode {mode!r}")
        if not speed > 0:
            raise ValueError(f"speed must be greater than 0, got {speed!r}")
        self.mode = mode
        self.speed = 1.0 if mode == "real" else float(speed)
        self.start_ms = start_ms
        self.position = start_ms
        # the next step the feeder has not fed yet (None: none left)
        self.next_ms: int | None = None
        # True while the feeder matches a step: the clock reads that step's time
        self.pinned = False
        self._monotonic = monotonic
        self._anchor_tape = start_ms
        self._anchor_wall: float | None = None

    def run(self) -> None:
        """Start the wall-derived time (real and speed mode) from the current position."""
        self._anchor_tape = self.position
        self._anchor_wall = self._monotonic()

    @property
    def running(self) -> bool:
        return self._anchor_wall is not None and self.mode != "step"

    def target(self) -> int:
        """Where the tape should be by the wall clock (the position in step mode)."""
        if self._anchor_wall is None or self.mode == "step":
            return self.position
        elapsed_ms = (self._monotonic() - self._anchor_wall) * 1000.0 * self.speed
        return self._anchor_tape + int(elapsed_ms)

    def now_ms(self) -> int:
        if self.pinned or self._anchor_wall is None or self.mode == "step":
            return self.position
        t = self.target()
        nxt = self.next_ms
        if nxt is not None and t >= nxt:
            t = nxt - 1
        return t if t > self.position else self.position

    def wall_s_until(self, tape_ms: int) -> float:
        """Wall seconds until the wall-derived time reaches `tape_ms` (0 if it has)."""
        if self._anchor_wall is None or self.mode == "step":
            return 0.0
        ahead = tape_ms - self.target()
        return max(0.0, ahead / 1000.0 / self.speed)
