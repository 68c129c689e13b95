"""The watcher's hand-over between REST and the stream (proxy/watcher.py): a trade is fed
once, from one source, whichever way the symbol switches. A stub stream (the test decides
when a channel is live and delivers frames to the watcher's sinks itself), a stub upstream
(REST pages) and a stub service (records what the engine was fed)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fake_stream import FakeMexcStream

from proxy.engine.model import Book, Trade
from proxy.parsers import parse_trades
from proxy.watcher import MarketWatcher
from proxy.ws.channels import FrameSink
from proxy.ws.relay import deals_channel, depth_channel

D = Decimal
T = 1_767_205_900_000
SYM = "BTCUSDT"
DEALS, DEPTH = deals_channel(SYM), depth_channel(SYM)
ENCODER = FakeMexcStream(clock=lambda: T)


def rest_trade(price: str, qty: str, time_ms: int, buyer_maker: bool) -> dict[str, Any]:
    return {"id": None, "price": price, "qty": qty, "quoteQty": "0", "time": time_ms,
            "isBuyerMaker": buyer_maker, "isBestMatch": True, "tradeType": "ASK" if buyer_maker else "BID"}


def key(t: Trade) -> tuple[int, str, str, bool]:
    return (t.time_ms, format(t.price, "f"), format(t.qty, "f"), t.is_buyer_maker)


# (price, qty, time, buyer is maker); the same trade on REST and on the stream
A = ("100", "1", T + 1, True)
B = ("101", "2", T + 2, False)
C = ("102", "3", T + 3, True)
E = ("103", "4", T + 4, False)
F = ("104", "5", T + 5, True)


def page(*trades: tuple[str, str, int, bool]) -> list[Trade]:
    return parse_trades([rest_trade(*t) for t in reversed(trades)])  # MEXC: newest first


def frame(*trades: tuple[str, str, int, bool]) -> bytes:
    # tradeType 2 (a seller took) = the buyer was the maker
    return ENCODER.deals_frame(SYM, [(p, q, 2 if bm else 1, t) for p, q, t, bm in trades])


@dataclass
class StubStream:
    sinks: dict[str, FrameSink] = field(default_factory=dict)
    gens: dict[str, int] = field(default_factory=dict)
    listeners: list[Callable[[], None]] = field(default_factory=list)

    async def subscribe(self, channel: str, sink: FrameSink) -> bool:
        self.sinks[channel] = sink
        return True

    def unsubscribe(self, channel: str, sink: FrameSink) -> None:
        self.sinks.pop(channel, None)

    def generation(self, channel: str) -> int | None:
        return self.gens.get(channel)

    def add_listener(self, cb: Callable[[], None]) -> None:
        self.listeners.append(cb)

    def status(self) -> dict[str, Any]:
        return {"state": "up"}

    def set_live(self, channel: str, gen: int | None) -> None:
        if gen is None:
            self.gens.pop(channel, None)
        else:
            self.gens[channel] = gen
        for cb in self.listeners:
            cb()


@dataclass
class StubSettings:
    market_cache_ms: int = 0


@dataclass
class StubUpstream:
    page: list[Trade] = field(default_factory=list)
    settings: StubSettings = field(default_factory=StubSettings)
    calls: list[str] = field(default_factory=list)

    async def trades(self, symbol: str, max_age_ms: int | None = None) -> list[Trade]:
        self.calls.append("trades")
        return self.page

    async def book(self, symbol: str, max_age_ms: int | None = None) -> Book:
        self.calls.append("book")
        return Book(symbol, ((D("99"), D("1")),), ((D("105"), D("1")),), "7")

    async def depth_snapshot(self, symbol: str, limit: int) -> Book:
        self.calls.append("snapshot")
        return Book(symbol, ((D("99"), D("1")),), ((D("105"), D("1")),), "7")


@dataclass
class StubService:
    fed: list[tuple[int, ...]] = field(default_factory=list)

    def watched_symbols(self) -> list[str]:
        return [SYM]

    async def on_market(self, symbol: str, book: Book | None, trades: list[Trade]) -> int:
        self.fed.extend(key(t) for t in trades)
        return 0


def keys(*trades: tuple[str, str, int, bool]) -> list[tuple[int, str, str, bool]]:
    return [key(t) for t in page(*trades)]


async def watcher() -> tuple[MarketWatcher, StubStream, StubUpstream, StubService]:
    stream, up, svc = StubStream(), StubUpstream(), StubService()
    w = MarketWatcher(svc, up, 1.0, T, stream=stream, clock=lambda: T + 1000)  # type: ignore[arg-type]
    w._consumer = asyncio.create_task(w._consume())  # the feed only: polls are driven here
    return w, stream, up, svc


async def stop(w: MarketWatcher) -> None:
    await w.stop()


async def test_the_hand_over_feeds_each_trade_once_from_one_source() -> None:
    w, stream, up, svc = await watcher()
    try:
        up.page = page(A, B)
        await w.poll_once()  # the channels are being subscribed: no REST page meanwhile
        feed = w.feeds[SYM]
        assert feed.task is not None and up.calls == []
        await feed.task  # subscribed, but not live yet (the stream is slow to answer)
        await w.poll_once()  # REST meanwhile: its first page counts from the start
        assert svc.fed == keys(A, B) and feed.trades_src == "rest"
        # the stream starts delivering before the hand-over: B (also on the REST pages)
        stream.set_live(DEALS, 1)
        stream.sinks[DEALS](frame(B))
        up.page = page(A, B, C)  # the hand-over page: C is its newest
        await w.poll_once()
        assert feed.trades_src == "stream"
        assert svc.fed == keys(A, B, C)  # C from the page, B once
        # after the hand-over the stream alone feeds; C was still in flight: the page's
        calls = up.calls.count("trades")
        stream.sinks[DEALS](frame(C, E))
        stream.sinks[DEALS](frame(F))
        async with asyncio.timeout(5):
            await w.wait_fed(lambda: len(svc.fed) >= 5)
        assert svc.fed == keys(A, B, C, E, F)
        await w.poll_once()
        assert up.calls.count("trades") == calls
        assert w.last_price(SYM) == D("104")
    finally:
        await stop(w)


async def test_identical_prints_in_the_pages_newest_millisecond_are_counted() -> None:
    w, stream, up, svc = await watcher()
    try:
        await w.poll_once()
        await w.feeds[SYM].task  # type: ignore[misc]
        x = ("100", "1", T + 9, True)
        stream.set_live(DEALS, 1)
        later = ("105", "6", T + 10, False)
        stream.sinks[DEALS](frame(x, x, x, later))  # three identical prints in one millisecond
        up.page = page(A, x, x)  # the page holds two of them (the third printed just after)
        await w.poll_once()
        assert svc.fed == keys(A, x, x, x, later)
    finally:
        await stop(w)


async def test_a_drop_goes_back_to_rest_counting_from_the_last_streamed_trade() -> None:
    w, stream, up, svc = await watcher()
    try:
        await w.poll_once()
        await w.feeds[SYM].task  # type: ignore[misc]
        stream.set_live(DEALS, 1)
        up.page = page(A)
        await w.poll_once()
        stream.sinks[DEALS](frame(B))
        async with asyncio.timeout(5):
            await w.wait_fed(lambda: len(svc.fed) == 2)
        stream.set_live(DEALS, None)  # dropped: reported at once
        assert w.feeds[SYM].trades_src == "rest"
        # frames of a new socket before the hand-over wait for it
        stream.set_live(DEALS, 2)
        stream.sinks[DEALS](frame(E))
        assert svc.fed == keys(A, B)
        up.page = page(A, B, C, E)  # C printed while the stream was away
        await w.poll_once()
        assert svc.fed == keys(A, B, C, E)
        assert w.stream_status()["symbols"][SYM]["trades"] == "stream"
    finally:
        await stop(w)


async def test_a_synced_symbol_costs_no_request_and_a_new_socket_resyncs_its_book() -> None:
    w, stream, up, _svc = await watcher()
    try:
        await w.poll_once()
        await w.feeds[SYM].task  # type: ignore[misc]
        stream.set_live(DEALS, 1)
        stream.set_live(DEPTH, 1)
        await w.poll_once()  # hand-over page and the snapshot
        assert up.calls[-2:] == ["trades", "snapshot"] and w.feeds[SYM].source == "stream"
        n = len(up.calls)
        for _ in range(3):
            await w.poll_once()
        assert len(up.calls) == n
        assert w.book(SYM) is not None and w.book(SYM).incremental  # type: ignore[union-attr]
        stream.set_live(DEPTH, 2)  # the depth channel moved to a new socket: resync
        assert w.book(SYM) is None and w.feeds[SYM].book_src == "rest"
        await w.poll_once()
        assert up.calls[n:] == ["snapshot"] and w.feeds[SYM].source == "stream"
    finally:
        await stop(w)
