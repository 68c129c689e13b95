"""The upstream stream client and the relay (proxy/ws/stream.py, proxy/ws/relay.py) against
a fake MEXC WebSocket (tests/fake_stream.py): one upstream subscription per channel
whatever the number of local subscribers, frames byte-identical, lazy connections, MEXC's
limits (30 subscriptions per connection, 100 messages/s), reconnect and resubscribe after
a drop with one log line per outage, and nothing private sent upstream."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_stream import FakeMexcStream

from proxy.ws.relay import StreamRelay, is_public_channel
from proxy.ws.stream import StreamClient

DEALS = "spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT"
DEPTH = "spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT"


class Sink:
    """A local subscriber: collects frames, lets a test await the n-th."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.event = asyncio.Event()

    def __call__(self, frame: bytes) -> None:
        self.frames.append(frame)
        self.event.set()

    async def wait(self, n: int) -> None:
        async with asyncio.timeout(10):
            while len(self.frames) < n:
                self.event.clear()
                await self.event.wait()


async def until(stream: StreamClient | StreamRelay, predicate: Callable[[], bool]) -> None:
    """Wait until `predicate()` holds, checked whenever the stream reports a change (a
    channel live or not, a connection down or closed)."""
    changed = asyncio.Event()
    stream.add_listener(changed.set)
    async with asyncio.timeout(10):
        while not predicate():
            await changed.wait()
            changed.clear()


@pytest.fixture
def fake_ws() -> FakeMexcStream:
    return FakeMexcStream()


@pytest.fixture
async def ws_url(aiohttp_server: Any, fake_ws: FakeMexcStream) -> str:
    server = await aiohttp_server(fake_ws.app())
    return str(server.make_url("/ws")).replace("http://", "ws://")


def make_client(url: str, **kw: Any) -> StreamClient:
    kw.setdefault("backoff_min_s", 0.01)
    kw.setdefault("backoff_max_s", 0.05)
    kw.setdefault("idle_close_s", 0.0)
    return StreamClient(url, **kw)


@pytest.fixture
async def relay(ws_url: str) -> AsyncIterator[StreamRelay]:
    r = StreamRelay(make_client(ws_url))
    yield r
    await r.close()


async def test_nothing_connects_until_something_subscribes(
    relay: StreamRelay, fake_ws: FakeMexcStream
) -> None:
    await asyncio.sleep(0)
    assert fake_ws.connections_made == 0 and relay.status()["state"] == "idle"
    assert await relay.subscribe(DEALS, Sink())
    assert fake_ws.connections_made == 1 and relay.status()["state"] == "up"


async def test_many_local_subscribers_share_one_upstream_subscription_byte_identical(
    relay: StreamRelay, fake_ws: FakeMexcStream
) -> None:
    sinks = [Sink() for _ in range(50)]
    results = await asyncio.gather(*(relay.subscribe(DEALS, s) for s in sinks))
    assert all(results)
    assert fake_ws.subscriptions_sent(DEALS) == 1 and fake_ws.subscribers(DEALS) == 1
    frames = [fake_ws.deals_frame("BTCUSDT", [("87900.01", "0.5", 1, 1767205800000 + i)]) for i in range(3)]
    for f in frames:
        await fake_ws.push(DEALS, f)
    for s in sinks:
        await s.wait(3)
        assert s.frames == frames  # the very bytes MEXC sent, in order
    assert relay.status()["frames_in"] == 3
    assert relay.status()["frames_delivered"] == 150


async def test_the_last_subscriber_leaving_ends_the_upstream_subscription(
    relay: StreamRelay, fake_ws: FakeMexcStream
) -> None:
    a, b, other = Sink(), Sink(), Sink()
    assert await relay.subscribe(DEALS, a) and await relay.subscribe(DEALS, b)
    assert await relay.subscribe(DEPTH, other)
    relay.unsubscribe(DEALS, a)
    await asyncio.sleep(0.05)
    assert fake_ws.messages("UNSUBSCRIPTION") == [] and fake_ws.subscribers(DEALS) == 1
    relay.unsubscribe(DEALS, b)
    await fake_ws.wait_for(lambda: fake_ws.subscribers(DEALS) == 0)
    assert [m["params"] for m in fake_ws.messages("UNSUBSCRIPTION")] == [[DEALS]]
    await fake_ws.push(DEALS, fake_ws.deals_frame("BTCUSDT", [("1", "1", 1, 1)]))
    frame = fake_ws.depth_frame("BTCUSDT", [], [("1", "1")], 5, 6)
    await fake_ws.push(DEPTH, frame)
    await other.wait(1)
    assert a.frames == b.frames == [] and other.frames == [frame]
    relay.unsubscribe(DEALS, a)  # unknown pairs are ignored
    assert relay.subscribers(DEPTH) == 1


async def test_a_channel_mexc_does_not_serve_is_refused_without_going_upstream(
    relay: StreamRelay, fake_ws: FakeMexcStream
) -> None:
    for bad in (
        "spot@public.aggre.deals.v3.api.pb@100ms@btcusdt",  # symbols are upper-case
        "spot@public.deals.v3.api@BTCUSDT",  # the old JSON channels: blocked
        "spot@private.orders.v3.api.pb",  # private: never relayed
        "spot@public.aggre.deals.v3.api.pb@5ms@BTCUSDT",
        "nonsense",
    ):
        assert not relay.is_public(bad)
        assert await relay.subscribe(bad, Sink()) is False
    assert fake_ws.connections_made == 0


async def test_a_channel_the_upstream_refuses_is_refused_to_every_waiting_subscriber(
    relay: StreamRelay, fake_ws: FakeMexcStream
) -> None:
    channel = "spot@public.increase.depth.v3.api.pb@BTCUSDT"  # legacy: MEXC decides
    fake_ws.refuse.add(channel)
    results = await asyncio.gather(relay.subscribe(channel, Sink()), relay.subscribe(channel, Sink()))
    assert results == [False, False]
    assert relay.subscribers(channel) == 0 and relay.status()["channels_wanted"] == 0
    assert fake_ws.subscriptions_sent(channel) == 1
    # a later attempt asks MEXC again
    fake_ws.refuse.clear()
    assert await relay.subscribe(channel, Sink())


async def test_a_channel_refused_on_resubscribing_stays_subscribed_and_is_asked_for_until_accepted(
    relay: StreamRelay, fake_ws: FakeMexcStream, caplog: pytest.LogCaptureFixture
) -> None:
    """MEXC accepted the channel, then refuses it when it is resubscribed after a drop. Its
    local subscribers were told it was subscribed: they stay subscribed (never stranded on
    a channel nothing holds upstream), the sidecar asks MEXC again with backoff, and they
    get its frames as soon as MEXC accepts it."""
    caplog.set_level(logging.INFO, logger="proxy.stream")
    first = Sink()
    assert await relay.subscribe(DEALS, first)
    fake_ws.refuse.add(DEALS)
    await fake_ws.drop_all()
    await fake_ws.wait_for(lambda: fake_ws.subscriptions_sent(DEALS) >= 3)  # refused twice
    assert not relay.is_live(DEALS)
    status = relay.status()
    assert status["channels_wanted"] == 1 and status["refused_channels"] == 1
    assert relay.subscribers(DEALS) == 1
    second = Sink()  # a new local subscriber meanwhile: subscribed, like the first
    assert await relay.subscribe(DEALS, second)
    fake_ws.refuse.clear()  # MEXC serves it again
    await until(relay, lambda: relay.is_live(DEALS))
    frame = fake_ws.deals_frame("BTCUSDT", [("1", "1", 1, 1)])
    await fake_ws.push(DEALS, frame)
    await first.wait(1)
    await second.wait(1)
    assert first.frames == second.frames == [frame]
    assert relay.status()["refused_channels"] == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "proxy.stream"
             and r.levelno >= logging.INFO and ("refused" in r.getMessage() or "accepted" in r.getMessage())]
    assert len(lines) == 2  # one warning when refused, one line when accepted again
    assert "asking again with backoff" in lines[0] and "accepted the channel" in lines[1]


async def test_a_subscriber_of_a_channel_not_held_upstream_subscribes_it_again(
    relay: StreamRelay, fake_ws: FakeMexcStream
) -> None:
    """Whatever dropped the upstream subscription, the next local subscriber makes it
    again, instead of being told "subscribed" with nothing subscribed upstream."""
    stranded = Sink()
    assert await relay.subscribe(DEALS, stranded)
    relay.client.unsubscribe(DEALS)  # the upstream subscription gone, the sink still there
    await fake_ws.wait_for(lambda: fake_ws.subscribers(DEALS) == 0)
    newcomer = Sink()
    assert await relay.subscribe(DEALS, newcomer)
    assert fake_ws.subscriptions_sent(DEALS) == 2 and relay.is_live(DEALS)
    frame = fake_ws.deals_frame("BTCUSDT", [("1", "1", 1, 1)])
    await fake_ws.push(DEALS, frame)
    await stranded.wait(1)
    await newcomer.wait(1)


async def test_a_subscription_during_a_known_outage_is_answered_at_once(
    ws_url: str, fake_ws: FakeMexcStream
) -> None:
    """No answer can come while MEXC's stream is down: the subscription is kept (made
    when the stream is back) and said so at once, not after ack_timeout_s."""
    client = make_client(ws_url, ack_timeout_s=3600)
    try:
        fake_ws.accepting = False
        # the first one is answered when the outage starts (its connect fails) ...
        assert await asyncio.wait_for(client.subscribe(DEALS), 10)
        assert client.state == "down"
        # ... the next ones at once
        assert await asyncio.wait_for(client.subscribe(DEPTH), 10)
        fake_ws.accepting = True
        await fake_ws.wait_for(lambda: fake_ws.subscribers(DEALS) == fake_ws.subscribers(DEPTH) == 1)
    finally:
        await client.close()


async def test_thirty_subscriptions_per_connection_then_another_connection(
    relay: StreamRelay, fake_ws: FakeMexcStream
) -> None:
    channels = [f"spot@public.aggre.deals.v3.api.pb@100ms@SYM{i:03d}USDT" for i in range(65)]
    results = await asyncio.gather(*(relay.subscribe(ch, Sink()) for ch in channels))
    assert all(results)
    assert len(fake_ws.conns) == 3
    assert sorted(len(c.channels) for c in fake_ws.conns.values()) == [5, 30, 30]
    assert fake_ws.messages("UNSUBSCRIPTION") == []
    # pending subscriptions go out together: far fewer messages than channels
    assert len(fake_ws.messages("SUBSCRIPTION")) <= 6
    assert relay.status()["subscriptions"] == 65 and relay.status()["connections"] == 3


async def test_control_messages_are_paced_under_mexcs_limit(ws_url: str, fake_ws: FakeMexcStream) -> None:
    # a PING every 10 ms would be 100 messages/s; the client sends at most max_msgs_per_s
    fake_ws.max_msgs_per_s = 6
    client = make_client(ws_url, ping_interval_s=0.01, max_msgs_per_s=5)
    try:
        assert await client.subscribe(DEALS)
        await fake_ws.wait_for(lambda: len(fake_ws.messages("PING")) >= 8, timeout=20)
        assert fake_ws.kicked == [] and fake_ws.connections_made == 1
    finally:
        await client.close()


async def test_a_drop_reconnects_resubscribes_and_logs_once_per_outage(
    relay: StreamRelay, fake_ws: FakeMexcStream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="proxy.stream")
    changes: list[bool] = []
    relay.add_listener(lambda: changes.append(relay.is_live(DEALS)))
    sink = Sink()
    assert await relay.subscribe(DEALS, sink) and await relay.subscribe(DEPTH, Sink())
    gen = relay.generation(DEALS)
    fake_ws.accepting = False  # down for a while: several attempts fail
    await fake_ws.drop_all()
    await fake_ws.wait_for(lambda: fake_ws.refused_upgrades >= 3)
    assert relay.status()["state"] == "down" and not relay.is_live(DEALS)
    assert False in changes  # the drop was reported at once
    fake_ws.accepting = True
    await fake_ws.wait_for(lambda: fake_ws.subscribers(DEALS) == 1 and fake_ws.subscribers(DEPTH) == 1)
    async with asyncio.timeout(5):
        while not relay.is_live(DEALS):
            await asyncio.sleep(0.01)
    assert relay.generation(DEALS) != gen  # a consumer can tell it may have missed frames
    frame = fake_ws.deals_frame("BTCUSDT", [("1", "1", 1, 1)])
    await fake_ws.push(DEALS, frame)
    await sink.wait(1)
    assert sink.frames == [frame]
    status = relay.status()
    assert status["state"] == "up" and status["reconnects"] == 1 and status["connect_errors"] >= 3
    assert status["outages"] == 1 and status["down_since_ms"] is None
    lines = [r for r in caplog.records if r.name == "proxy.stream" and r.levelno >= logging.INFO]
    assert [r.levelno for r in lines] == [logging.WARNING, logging.INFO]
    assert "unavailable" in lines[0].getMessage() and "is back" in lines[1].getMessage()


class SlamsTheDoor(FakeMexcStream):
    """Accepts the WebSocket, then closes it at once (an IP MEXC blocks), while
    `slamming`; every connection made is counted (`made`)."""

    def __init__(self) -> None:
        super().__init__()
        self.slamming = True
        self.made = 0

    async def handle(self, request: Any) -> Any:
        if not self.slamming:
            return await super().handle(request)
        from aiohttp import web

        self.made += 1
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.close()
        await self._notify()
        return ws


async def test_an_upstream_that_accepts_then_closes_is_one_outage_with_a_growing_backoff(
    aiohttp_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A handshake is not a connection that works: the backoff grows (no reconnect every
    backoff_min_s) and the outage is one warning, until MEXC answers on a socket."""
    caplog.set_level(logging.DEBUG, logger="proxy.stream")
    slam = SlamsTheDoor()
    server = await aiohttp_server(slam.app())
    client = make_client(str(server.make_url("/ws")).replace("http://", "ws://"),
                         backoff_min_s=0.001, backoff_max_s=5.0)
    failures: list[int] = []
    backoff = client._backoff

    def recorded(n: int) -> float:
        failures.append(n)
        return backoff(n)

    client._backoff = recorded  # type: ignore[method-assign]
    try:
        assert await client.subscribe(DEALS)  # kept: the outage answers it
        await slam.wait_for(lambda: slam.made >= 6)
        assert failures[:5] == [1, 2, 3, 4, 5]  # never reset by a mere handshake
        assert client.state == "down" and client.outages == 1 and client.reconnects == 0
        slam.slamming = False  # MEXC answers again
        await until(client, lambda: client.is_live(DEALS))
        assert client.state == "up" and client.conns[0].failures == 0
    finally:
        await client.close()
    lines = [r for r in caplog.records if r.name == "proxy.stream" and r.levelno >= logging.INFO]
    assert [r.levelno for r in lines] == [logging.WARNING, logging.INFO]
    assert "unavailable" in lines[0].getMessage() and "is back" in lines[1].getMessage()


async def test_an_outage_ends_when_the_connection_that_was_down_is_given_up(
    relay: StreamRelay, fake_ws: FakeMexcStream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="proxy.stream")
    channels = [f"spot@public.aggre.deals.v3.api.pb@100ms@S{i:03d}USDT" for i in range(31)]
    sinks = [Sink() for _ in channels]
    assert all(await asyncio.gather(*(relay.subscribe(c, s) for c, s in zip(channels, sinks, strict=True))))
    assert len(fake_ws.conns) == 2
    # MEXC drops the second connection alone and refuses new ones for a while
    fake_ws.accepting = False
    second = next(c for c in fake_ws.conns.values() if len(c.channels) == 1)
    second.ws._req.transport.abort()
    await until(relay, lambda: relay.status()["state"] == "down")
    relay.unsubscribe(channels[-1], sinks[-1])  # its only channel is given up meanwhile
    status = relay.status()
    assert status["state"] == "up" and status["down_since_ms"] is None
    assert status["connections"] == 1 and status["subscriptions"] == 30
    lines = [r.getMessage() for r in caplog.records if r.name == "proxy.stream" and r.levelno >= logging.INFO]
    assert len(lines) == 2 and "unavailable" in lines[0] and "outage over" in lines[1]
    await until(relay, lambda: len(relay.client.conns) == 1)  # the unused one is given up


async def test_a_silent_connection_is_dropped_and_replaced(aiohttp_server: Any) -> None:
    class Mute(FakeMexcStream):
        async def _control(self, conn: Any, text: str) -> None:
            if "PING" in text.upper() and conn.id == 1:
                return  # the first connection stops answering (a half-open socket)
            await super()._control(conn, text)

    mute = Mute()
    server = await aiohttp_server(mute.app())
    client = make_client(
        str(server.make_url("/ws")).replace("http://", "ws://"), ping_interval_s=0.05, idle_timeout_s=0.3
    )
    try:
        assert await client.subscribe(DEALS)
        await mute.wait_for(lambda: mute.connections_made >= 2 and mute.subscribers(DEALS) == 1)
        await until(client, lambda: client.is_live(DEALS))  # the new socket's ack
        assert client.reconnects == 1 and 2 in mute.conns
        assert "no message for 0.3 s" in (client.last_error or "") or client.state == "up"
    finally:
        await client.close()


async def test_nothing_private_or_signed_ever_goes_upstream(
    relay: StreamRelay, fake_ws: FakeMexcStream
) -> None:
    assert await relay.subscribe(DEALS, Sink())
    await relay.subscribe("spot@private.orders.v3.api.pb", Sink())
    await relay.subscribe("spot@private.account.v3.api.pb", Sink())
    sink = Sink()
    assert await relay.subscribe(DEPTH, sink)
    relay.unsubscribe(DEPTH, sink)
    await fake_ws.wait_for(lambda: fake_ws.subscribers(DEPTH) == 0)
    assert fake_ws.urls == ["/ws"]  # no listenKey, no query at all
    for h in fake_ws.headers:
        assert not any(k.lower() in ("x-mexc-apikey", "authorization", "cookie") for k in h)
    assert fake_ws.binary_received == 0
    for _conn, text in fake_ws.received:
        data = json.loads(text)
        assert data["method"] in ("SUBSCRIPTION", "UNSUBSCRIPTION", "PING")
        assert set(data) <= {"method", "params", "id"}
        for ch in data.get("params", []):
            assert ch.startswith("spot@public.") and is_public_channel(ch)
        assert "listenKey" not in text and "signature" not in text and "private" not in text


async def test_the_client_refuses_to_send_a_non_public_channel(ws_url: str, fake_ws: FakeMexcStream) -> None:
    client = make_client(ws_url)
    try:
        assert await client.subscribe("spot@private.deals.v3.api.pb") is False
        assert fake_ws.connections_made == 0
    finally:
        await client.close()


async def test_every_frame_is_recorded_with_its_channel_and_arrival_time(
    ws_url: str, fake_ws: FakeMexcStream, tmp_path: Path
) -> None:
    from proxy.config import UpstreamSettings
    from proxy.upstream import HttpTransport, RecordingTransport

    cassette = tmp_path / "rec.yaml"
    rec = RecordingTransport(HttpTransport(UpstreamSettings()), cassette)
    # recorded_ms: the sidecar's clock when the frame arrived
    relay = StreamRelay(make_client(ws_url, recorder=rec.append_stream, clock=lambda: 1767205800456))
    try:
        sink = Sink()
        assert await relay.subscribe(DEALS, sink)
        frames = [fake_ws.deals_frame("BTCUSDT", [("87900", "0.1", 2, 1767205800400 + i)]) for i in range(2)]
        for f in frames:
            await fake_ws.push(DEALS, f)
        await sink.wait(2)
    finally:
        await relay.close()
        await rec.close()  # a clean stop writes what the recording still buffers
    data = yaml.safe_load(cassette.read_text())
    assert data["version"] == 1
    assert data["interactions"] == [
        {"stream": {"channel": DEALS, "recorded_ms": 1767205800456, "frame": base64.b64encode(f).decode()}}
        for f in frames
    ]
    text = cassette.read_text()
    assert f"- stream:\n    channel: {DEALS}\n    recorded_ms: " in text  # the shape, exactly


async def test_an_unused_connection_is_closed_after_a_grace_period_and_reused_within_it(
    ws_url: str, fake_ws: FakeMexcStream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="proxy.stream")
    lingering = StreamRelay(make_client(ws_url, idle_close_s=60))
    try:
        sink = Sink()
        assert await lingering.subscribe(DEALS, sink)
        lingering.unsubscribe(DEALS, sink)
        await fake_ws.wait_for(lambda: fake_ws.subscribers(DEALS) == 0)
        assert await lingering.subscribe(DEPTH, sink)  # within the grace period: same socket
        assert fake_ws.connections_made == 1 and len(fake_ws.conns) == 1
    finally:
        await lingering.close()
    prompt = StreamRelay(make_client(ws_url, idle_close_s=0))
    try:
        sink = Sink()
        assert await prompt.subscribe(DEALS, sink)
        prompt.unsubscribe(DEALS, sink)
        await fake_ws.wait_for(lambda: not fake_ws.conns)  # closed once nothing is subscribed
        assert prompt.status()["state"] == "idle" and prompt.status()["connections"] == 0
        assert await prompt.subscribe(DEALS, sink)  # and opened again on demand
        assert fake_ws.connections_made == 3
        assert prompt.status()["reconnects"] == 0 and prompt.status()["outages"] == 0
    finally:
        await prompt.close()
    assert [r.getMessage() for r in caplog.records if r.name == "proxy.stream"] == []  # no outage


async def test_a_first_subscriber_that_leaves_before_the_answer_does_not_fail_the_others(
    aiohttp_server: Any,
) -> None:
    class SlowAck(FakeMexcStream):
        release = asyncio.Event()

        async def _control(self, conn: Any, text: str) -> None:
            if "SUBSCRIPTION" in text and "UNSUB" not in text:
                await self._notify()  # received: the test may act before the answer
                await self.release.wait()
            await super()._control(conn, text)

    slow = SlowAck()
    server = await aiohttp_server(slow.app())
    relay = StreamRelay(make_client(str(server.make_url("/ws")).replace("http://", "ws://")))
    try:
        first, second = Sink(), Sink()
        leaving = asyncio.create_task(relay.subscribe(DEALS, first))
        staying = asyncio.create_task(relay.subscribe(DEALS, second))
        await slow.wait_for(lambda: slow.subscriptions_sent(DEALS) == 1)
        leaving.cancel()  # its local connection closed while MEXC had not answered yet
        slow.release.set()
        assert await staying is True
        assert relay.subscribers(DEALS) == 1
        frame = slow.deals_frame("BTCUSDT", [("1", "1", 1, 1)])
        await slow.push(DEALS, frame)
        await second.wait(1)
        assert first.frames == [] and second.frames == [frame]
    finally:
        await relay.close()


async def test_a_ws_url_that_leads_back_to_this_sidecar_is_an_outage_that_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A hosts file on the sidecar's machine pointing wbs-api.mexc.com at the sidecar (the
    zero-change mode set up on the wrong machine): the handshake carries this process's
    loop mark, the sidecar refuses it, and the stream reports a loop, not a flaky MEXC."""
    from aiohttp.test_utils import TestServer
    from conftest import make_settings
    from process_support import free_port

    from proxy import keys
    from proxy.app import create_app
    from proxy.config import UpstreamSettings

    caplog.set_level(logging.WARNING, logger="proxy.stream")
    port = free_port()
    settings = make_settings(tmp_path, upstream=UpstreamSettings(
        base_url="http://127.0.0.1:9", timeout_s=2, connect_timeout_s=1,
        ws_url=f"ws://wbs-api.mexc.com:{port}/ws", resolve={"wbs-api.mexc.com": "127.0.0.1"},
    ))
    app = create_app(settings)
    server = TestServer(app, port=port)
    await server.start_server()
    try:
        relay = app[keys.MARKET_STREAM]
        down = asyncio.Event()
        relay.add_listener(lambda: down.set() if relay.status()["state"] == "down" else None)
        task = asyncio.create_task(relay.subscribe(DEALS, Sink()))
        await asyncio.wait_for(down.wait(), 10)
        assert "upstream loop: upstream.ws_url" in (relay.status()["last_error"] or "")
        (line,) = [r.getMessage() for r in caplog.records if r.name == "proxy.stream"]
        assert "upstream loop" in line and "upstream.resolve" in line
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        await server.close()
