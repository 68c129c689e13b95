"""The relay of MEXC's public channels: `PublicChannels` over one shared upstream stream.

Local subscribers of a channel (WebSocket clients of /ws, and the market watcher) share
one upstream subscription: the first subscriber makes it, the last one to leave ends it.
Each binary frame is handed to every sink of its channel as the very bytes MEXC sent.

MEXC's answer to the subscription is every waiting subscriber's answer: a refusal refuses
them all (and the next subscriber asks MEXC again). Once subscribed, a channel stays held
upstream while it has local subscribers: after a drop it is resubscribed, and a refusal
then is retried with backoff by the stream client (proxy/ws/stream.py), the subscribers
staying subscribed. A subscriber that arrives while the channel is not held upstream
(whatever the reason) makes the upstream subscription again.

Channel names are checked against MEXC's public channels (reference section 9.3) before
anything goes upstream; a name that is not one of them is refused here (the /ws handler
answers MEXC's refusal) and never reaches MEXC.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from .channels import FrameSink
from .stream import StreamClient

log = logging.getLogger("proxy.relay")

_SYM = r"[A-Z0-9]{2,40}"
_SPEED = r"(?:100ms|10ms)"
_INTERVAL = r"(?:Min1|Min5|Min15|Min30|Min60|Hour4|Hour8|Day1|Week1|Month1)"
# the mini-ticker time zones MEXC lists (reference 9.3): 24H, UTC-10, UTC-8 ... UTC-3,
# UTC+0 ... UTC+13, and UTC+4:30, UTC+5:30, UTC+12:45
_TZ = (
    r"(?:24H|UTC-10|UTC-[3-8]|UTC\+(?:[0-9]|1[0-3])|UTC\+4:30|UTC\+5:30|UTC\+12:45)"
)
_PATTERNS = (
    rf"spot@public\.aggre\.deals\.v3\.api\.pb@{_SPEED}@{_SYM}",
    rf"spot@public\.aggre\.depth\.v3\.api\.pb@{_SPEED}@{_SYM}",
    rf"spot@public\.aggre\.bookTicker\.v3\.api\.pb@{_SPEED}@{_SYM}",
    rf"spot@public\.limit\.depth\.v3\.api\.pb@{_SYM}@(?:5|10|20)",
    rf"spot@public\.bookTicker\.batch\.v3\.api\.pb@{_SYM}",
    rf"spot@public\.kline\.v3\.api\.pb@{_SYM}@{_INTERVAL}",
    rf"spot@public\.miniTickers\.v3\.api\.pb@{_TZ}",
    rf"spot@public\.miniTicker\.v3\.api\.pb@{_SYM}@{_TZ}",
    # legacy protobuf channels: still in MEXC's .proto files, gone from its docs (UNSURE
    # whether MEXC still serves them): passed upstream, whose refusal the client then gets
    rf"spot@public\.increase\.depth\.v3\.api\.pb@{_SYM}",
    rf"spot@public\.increase\.depth\.batch\.v3\.api\.pb@{_SYM}",
    rf"spot@public\.deals\.v3\.api\.pb@{_SYM}",
    rf"spot@public\.bookTicker\.v3\.api\.pb@{_SYM}",
)
_PUBLIC = re.compile("|".join(f"(?:{p})" for p in _PATTERNS))


def is_public_channel(channel: str) -> bool:
    """Whether `channel` names one of MEXC's public protobuf channels (symbols in upper
    case). The old JSON channels (no `.pb`) are not: MEXC answers them "Blocked!"."""
    return _PUBLIC.fullmatch(channel) is not None


def deals_channel(symbol: str) -> str:
    return f"spot@public.aggre.deals.v3.api.pb@100ms@{symbol}"


def depth_channel(symbol: str) -> str:
    return f"spot@public.aggre.depth.v3.api.pb@100ms@{symbol}"


class StreamRelay:
    """`PublicChannels` backed by a `StreamClient` (which it owns and closes)."""

    def __init__(self, client: StreamClient) -> None:
        self.client = client
        client.on_frame = self._deliver
        self._sinks: dict[str, tuple[FrameSink, ...]] = {}
        self._pending: dict[str, asyncio.Future[bool]] = {}
        self.frames_delivered = 0
        self.sink_errors = 0
        self._changed: asyncio.Condition | None = None  # created by wait_subscribers
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ PublicChannels
    def is_public(self, channel: str) -> bool:
        return is_public_channel(channel)

    async def subscribe(self, channel: str, sink: FrameSink) -> bool:
        if not is_public_channel(channel):
            return False
        current = self._sinks.get(channel, ())
        if sink in current:
            return True
        self._sinks[channel] = (*current, sink)
        self._sinks_changed()
        pending = self._pending.get(channel)
        if pending is None and not self.client.wants(channel):
            # not held upstream (the first subscriber, or a channel MEXC dropped): one
            # upstream call, in a task of its own so that a subscriber that leaves
            # meanwhile (its connection closed) does not cancel it for the others
            pending = asyncio.get_running_loop().create_future()
            self._pending[channel] = pending
            task = asyncio.get_running_loop().create_task(self._open(channel, pending))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if pending is None:
            return True
        try:
            ok = await asyncio.shield(pending)
        except asyncio.CancelledError:
            self.unsubscribe(channel, sink)
            raise
        return ok and sink in self._sinks.get(channel, ())

    async def _open(self, channel: str, fut: asyncio.Future[bool]) -> None:
        ok = False
        try:
            ok = await self.client.subscribe(channel)
        finally:
            if self._pending.get(channel) is fut:
                del self._pending[channel]
            if ok and channel not in self._sinks:  # every subscriber left meanwhile
                self.client.unsubscribe(channel)
                ok = False
            elif not ok:
                # refused upstream: every sink that joined meanwhile gets the same answer
                if self._sinks.pop(channel, None) is not None:
                    self._sinks_changed()
                self.client.unsubscribe(channel)
            fut.set_result(ok)

    def unsubscribe(self, channel: str, sink: FrameSink) -> None:
        current = self._sinks.get(channel)
        if not current or sink not in current:
            return
        rest = tuple(s for s in current if s is not sink)
        self._sinks_changed()
        if rest:
            self._sinks[channel] = rest
            return
        del self._sinks[channel]
        if channel not in self._pending:
            self.client.unsubscribe(channel)
        # else: the pending first subscribe sees no sinks left and reports False

    # ------------------------------------------------------------------ more than the protocol
    def is_live(self, channel: str) -> bool:
        return self.client.is_live(channel)

    def generation(self, channel: str) -> int | None:
        return self.client.generation(channel)

    def add_listener(self, cb: Callable[[], None]) -> None:
        self.client.add_listener(cb)

    def subscribers(self, channel: str) -> int:
        return len(self._sinks.get(channel, ()))

    async def wait_subscribers(self, channel: str, n: int) -> None:
        """Until `channel` has `n` local subscribers (tests; bound it with a timeout)."""
        if self._changed is None:
            self._changed = asyncio.Condition()
        async with self._changed:
            await self._changed.wait_for(lambda: self.subscribers(channel) == n)

    def _sinks_changed(self) -> None:
        cond = self._changed
        if cond is not None:
            async def notify() -> None:
                async with cond:
                    cond.notify_all()

            task = asyncio.get_running_loop().create_task(notify())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def status(self) -> dict[str, object]:
        out = self.client.status()
        out["channels"] = len(self._sinks)
        out["local_subscribers"] = sum(len(s) for s in self._sinks.values())
        out["frames_delivered"] = self.frames_delivered
        return out

    async def close(self) -> None:
        await self.client.close()

    # ------------------------------------------------------------------ frames
    def _deliver(self, channel: str, frame: bytes) -> None:
        sinks = self._sinks.get(channel)
        if not sinks:
            return
        self.frames_delivered += len(sinks)
        for sink in sinks:
            try:
                sink(frame)
            except Exception:  # a sink must not raise; one that does loses its subscription
                self.sink_errors += 1
                log.exception("a subscriber of %s failed; unsubscribing it", channel)
                self.unsubscribe(channel, sink)


STATES = ("disabled", "idle", "connecting", "up", "down")


class StreamCollector:
    """/metrics for the market stream, read from `status()` (the watcher's
    `stream_status`) at scrape time: nothing is counted twice on the frame path."""

    def __init__(self, status: Callable[[], dict[str, Any]]) -> None:
        self.status = status

    def describe(self) -> list[Any]:
        return []  # no fixed set announced up front: collect() is cheap and always valid

    def collect(self) -> Iterator[Any]:
        s = self.status()
        state = s.get("state", "disabled") if s.get("enabled") else "disabled"
        g = GaugeMetricFamily("mexc_paper_stream_state", "Market stream state (1 = current)",
                              labels=["state"])
        for name in STATES:
            g.add_metric([name], 1.0 if name == state else 0.0)
        yield g
        for name, help_text, key in (
            ("mexc_paper_stream_connections", "Open upstream stream connections", "connections"),
            ("mexc_paper_stream_subscriptions", "Upstream channel subscriptions in force",
             "subscriptions"),
            ("mexc_paper_stream_local_subscribers", "Local subscriptions (clients and watcher)",
             "local_subscribers"),
        ):
            yield GaugeMetricFamily(name, help_text, value=float(s.get(key, 0)))
        for name, help_text, key in (
            ("mexc_paper_stream_frames_in", "Binary frames received from the upstream stream",
             "frames_in"),
            ("mexc_paper_stream_frames_delivered", "Frames handed to local subscribers",
             "frames_delivered"),
            ("mexc_paper_stream_reconnects", "Upstream stream connections re-established",
             "reconnects"),
            ("mexc_paper_stream_connect_errors", "Failed upstream stream connection attempts",
             "connect_errors"),
        ):
            yield CounterMetricFamily(name, help_text, value=float(s.get(key, 0)))
        sources: dict[str, int] = {"stream": 0, "rest": 0, "mixed": 0}
        for sym in s.get("symbols", {}).values():
            sources[sym["source"]] = sources.get(sym["source"], 0) + 1
        w = GaugeMetricFamily("mexc_paper_watched_symbols",
                              "Symbols with open orders by market-data source", labels=["source"])
        for name, n in sorted(sources.items()):
            w.add_metric([name], float(n))
        yield w
