"""Public WebSocket channels in replay: the tape's frames, sent at their tape times.

Registered under `keys.PUBLIC_CHANNELS` when replaying, in place of the relay of MEXC's
stream. A subscription gets the channel's frames recorded (or synthesised) after the
tape's current position, each when the tape's clock passes it (the feeder calls
`emit_until`). Frames go out byte-identical to the cassette. A channel the cassette
holds no frames for is refused as MEXC refuses a channel (replay never makes up a
stream it does not have; a scripted cassette's channels are made from its market).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable

from ..ws.channels import FrameSink
from .clock import TapeClock
from .tape import Frame, Tape

log = logging.getLogger("proxy.tape")

# reference section 9.3: every public channel name MEXC serves, current and legacy
_PUBLIC = re.compile(
    r"^spot@public\.("
    r"aggre\.deals\.v3\.api\.pb@(100ms|10ms)@[A-Z0-9]+"
    r"|aggre\.depth\.v3\.api\.pb@(100ms|10ms)@[A-Z0-9]+"
    r"|aggre\.bookTicker\.v3\.api\.pb@(100ms|10ms)@[A-Z0-9]+"
    r"|limit\.depth\.v3\.api\.pb@[A-Z0-9]+@(5|10|20)"
    r"|kline\.v3\.api\.pb@[A-Z0-9]+@(Min1|Min5|Min15|Min30|Min60|Hour4|Hour8|Day1|Week1|Month1)"
    r"|bookTicker\.batch\.v3\.api\.pb@[A-Z0-9]+"
    r"|miniTickers\.v3\.api\.pb@[A-Za-z0-9:+-]+"
    r"|miniTicker\.v3\.api\.pb@[A-Z0-9]+@[A-Za-z0-9:+-]+"
    r"|increase\.depth\.v3\.api\.pb@[A-Z0-9]+"
    r"|increase\.depth\.batch\.v3\.api\.pb@[A-Z0-9]+"
    r"|deals\.v3\.api\.pb@[A-Z0-9]+"
    r"|bookTicker\.v3\.api\.pb@[A-Z0-9]+"
    r")$"
)


class TapeChannels:
    """`PublicChannels` over the tape (see proxy/ws/channels.py for the protocol)."""

    def __init__(self, tape: Tape, clock: TapeClock, poke: Callable[[], None] | None = None) -> None:
        self.tape = tape
        self.clock = clock
        self.poke = poke
        self.sinks: dict[str, list[FrameSink]] = {}
        self.cursor: dict[str, int] = {}
        self._made: dict[str, list[Frame] | None] = {}
        self.sent = 0
        self._changed = asyncio.Condition()

    def is_public(self, channel: str) -> bool:
        return _PUBLIC.match(channel) is not None

    def frames_of(self, channel: str) -> list[Frame] | None:
        """The channel's frames: recorded, or made from a scripted market (None when the
        cassette has none for it)."""
        frames = self.tape.frames.get(channel)
        if frames is not None:
            return frames
        if channel not in self._made:
            maker = self.tape.frame_maker
            self._made[channel] = maker(channel) if maker is not None else None
        return self._made[channel]

    async def subscribe(self, channel: str, sink: FrameSink) -> bool:
        frames = self.frames_of(channel)
        if not frames:
            return False
        sinks = self.sinks.setdefault(channel, [])
        if not sinks:
            # from the first frame after the tape's position on
            lo, hi = 0, len(frames)
            pos = self.clock.now_ms()
            while lo < hi:
                mid = (lo + hi) // 2
                if frames[mid].t <= pos:
                    lo = mid + 1
                else:
                    hi = mid
            self.cursor[channel] = lo
        if sink not in sinks:
            sinks.append(sink)
        if self.poke is not None:
            self.poke()
        async with self._changed:
            self._changed.notify_all()
        return True

    @property
    def subscriptions(self) -> int:
        """(channel, subscriber) pairs served now."""
        return sum(len(s) for s in self.sinks.values())

    async def wait_subscriptions(self, n: int) -> None:
        """Wait until at least `n` subscriptions are served (tests, the pytest fixture: a
        bot subscribes asynchronously, and a stepped tape should move only once its
        subscriptions are in, or it misses the frames)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.subscriptions >= n)

    def unsubscribe(self, channel: str, sink: FrameSink) -> None:
        sinks = self.sinks.get(channel)
        if not sinks or sink not in sinks:
            return
        sinks.remove(sink)
        if not sinks:
            del self.sinks[channel]
            self.cursor.pop(channel, None)

    def next_due(self) -> int | None:
        due = None
        for channel, i in self.cursor.items():
            frames = self.frames_of(channel) or []
            if i < len(frames) and (due is None or frames[i].t < due):
                due = frames[i].t
        return due

    def emit_until(self, t: int) -> int:
        """Send every subscribed frame at or before tape time t, in tape order."""
        if not self.sinks:
            return 0
        out: list[tuple[int, str, Frame]] = []
        for channel in sorted(self.cursor):
            frames = self.frames_of(channel) or []
            i = self.cursor[channel]
            while i < len(frames) and frames[i].t <= t:
                out.append((frames[i].t, channel, frames[i]))
                i += 1
            self.cursor[channel] = i
        out.sort(key=lambda x: (x[0], x[1]))
        for _t, channel, frame in out:
            for sink in list(self.sinks.get(channel, ())):
                try:
                    sink(frame.data)
                except Exception:  # a sink must not raise; one that does is dropped
                    log.exception("a WebSocket subscriber of %s failed; dropped", channel)
                    self.unsubscribe(channel, sink)
        self.sent += len(out)
        return len(out)
