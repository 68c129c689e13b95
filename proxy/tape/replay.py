"""What a replaying app holds (`keys.TAPE`): the tape, its clock, the feeder, the channels,
and the clock's state as the admin API and the pytest fixture report it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .channels import TapeChannels
from .clock import TapeClock
from .feeder import Passed, TapeFeeder
from .tape import Tape

# the latest time a clock move may reach (SQLite stores times as 64-bit integers; a
# date past the year 9999 is no tape time)
MAX_TAPE_MS = 253_402_300_799_999


class ClockMoveError(ValueError):
    """A clock move that cannot be made (`status` is the HTTP status to answer)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Replay:
    clock: TapeClock
    tape: Tape | None = None
    feeder: TapeFeeder | None = None
    channels: TapeChannels | None = None

    def state(self) -> dict[str, Any]:
        """GET /admin/api/clock."""
        tape, clock, feeder = self.tape, self.clock, self.feeder
        assert tape is not None and feeder is not None
        return {
            "tape_ms": clock.now_ms(),
            "mode": clock.mode,
            "speed": clock.speed if clock.mode == "speed" else None,
            "start_ms": tape.start_ms,
            "end_ms": tape.end_ms,
            "next_ms": clock.next_ms,
            "ended": feeder.ended,
            "cassette": tape.name,
            "kind": tape.kind,
        }

    def target_of(self, body: Any) -> int:
        """The tape time a POST /admin/api/clock body asks for: {"advance_ms": n} from
        the current position, or {"to_ms": t}."""
        if not isinstance(body, dict) or len(body) != 1 or not ({"advance_ms", "to_ms"} & set(body)):
            raise ClockMoveError('expected {"advance_ms": <int>} or {"to_ms": <int>}')
        if self.clock.mode != "step":
            raise ClockMoveError(
                f"the tape runs by itself in {self.clock.mode} mode; start the sidecar with --step "
                "to move its clock", 409,
            )
        ((name, value),) = body.items()
        if not isinstance(value, int) or isinstance(value, bool):
            raise ClockMoveError(f"{name} must be an integer (milliseconds), got {value!r}")
        position = self.clock.position
        if name == "advance_ms":
            if value < 0:
                raise ClockMoveError(
                    f"advance_ms must not be negative, got {value}: the tape never goes back"
                )
            target = position + value
        else:
            if value < position:
                raise ClockMoveError(
                    f"to_ms {value} is before the tape's time {position}: the tape never goes back"
                )
            target = value
        if target > MAX_TAPE_MS:
            raise ClockMoveError(f"the tape's time cannot go past {MAX_TAPE_MS} (year 9999)")
        return target

    async def move(self, body: Any) -> dict[str, Any]:
        """POST /admin/api/clock: move a stepped tape; answers once every step up to the
        new time has been matched, with what the move passed."""
        assert self.feeder is not None
        passed: Passed = await self.feeder.advance_to(self.target_of(body))
        return {**self.state(), "passed": passed.as_dict()}
