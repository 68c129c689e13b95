"""`GET /ws`, MEXC's control protocol and connection rules, with a raw aiohttp client:
answers, refusals (bad, expired and deleted keys, too many subscriptions, too many
connections, too many messages), the timeouts, a slow reader cut off without holding up
anyone else, shutdown, and what reaches the logs and /metrics."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from conftest import make_settings
from ws_support import ACCOUNT, DEALS, ORDERS, PRIVATE, Bot, FakePublicChannels, Stream

from proxy import keys
from proxy.accesslog import SafeAccessLogger
from proxy.app import create_app
from proxy.clock import FixedClock
from proxy.config import WebSocketSettings

MIN = 60_000
TRADES = "spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT"
BOOK = "spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT"


def refusal(channels: str, reason: str = "Blocked! ", rid: int = 0) -> dict[str, Any]:
    return {"id": rid, "code": 0,
            "msg": f"Not Subscribed successfully! [{channels}].  Reason\uff1a {reason}"}


async def start(
    aiohttp_client: Any, tmp_path: Path, server: Any, clock: FixedClock,
    public: FakePublicChannels | None = None, **ws: Any,
) -> Bot:
    settings = make_settings(
        tmp_path, str(server.make_url("")).rstrip("/"), websocket=WebSocketSettings(**ws)
    )
    app = create_app(settings, clock=clock)
    if public is not None:
        app[keys.PUBLIC_CHANNELS] = public
    return Bot(await aiohttp_client(app), clock)


@pytest.fixture
async def bot(aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock) -> Bot:
    return await start(aiohttp_client, tmp_path, fake_server, clock)


# ---------------------------------------------------------------- the control protocol


async def test_subscribe_ping_unsubscribe_answers(bot: Bot) -> None:
    stream = await Stream.open(bot.client, await bot.listen_key())
    assert await stream.subscribe(PRIVATE) == {"id": 0, "code": 0, "msg": ",".join(PRIVATE)}
    # the documented form with an id: echoed; a channel already subscribed is acknowledged again
    assert await stream.subscribe([ORDERS], id=5) == {"id": 5, "code": 0, "msg": ORDERS}
    for ping in ({"method": "PING"}, {"method": "ping"}):  # ccxt sends lower case
        await stream.send(ping)
        assert await stream.text() == {"id": 0, "code": 0, "msg": "PONG"}
    await stream.send({"method": "UNSUBSCRIPTION", "params": [DEALS, ACCOUNT]})
    assert await stream.text() == {"id": 0, "code": 0, "msg": f"{DEALS},{ACCOUNT}"}
    conn = next(iter(bot.client.app[keys.USER_STREAMS].connections))
    assert set(conn.subs) == {ORDERS}


async def test_what_is_not_a_control_message_is_msg_format_invalid(bot: Bot) -> None:
    stream = await Stream.open(bot.client)
    for text in ("hello", '{"method":"LOGIN"}', '{"method":"SUBSCRIPTION","params":"x"}'):
        await stream.send(text)
        assert await stream.text() == {"id": 0, "code": 0, "msg": "msg format invalid"}
    await stream.ws.send_bytes(b"\x00\x01")
    assert await stream.text() == {"id": 0, "code": 0, "msg": "msg format invalid"}


async def test_channels_nobody_serves_are_refused_as_mexc_refuses_them(bot: Bot) -> None:
    """No PublicChannels in the app: a public channel gets MEXC's "Blocked!" refusal, as do
    the discontinued JSON channels and private channels on a connection without a key."""
    public = await Stream.open(bot.client)
    assert await public.subscribe([TRADES]) == refusal(TRADES)
    assert await public.subscribe([ORDERS], id=2) == refusal(ORDERS, rid=2)
    private = await Stream.open(bot.client, await bot.listen_key())
    legacy = "spot@private.orders.v3.api"
    await private.send({"method": "SUBSCRIPTION", "params": [ORDERS, legacy]})
    assert await private.text() == {"id": 0, "code": 0, "msg": ORDERS}
    assert await private.text() == refusal(legacy)


async def test_public_channels_go_to_public_channels_and_arrive_byte_for_byte(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock
) -> None:
    public = FakePublicChannels(public={TRADES, BOOK, "spot@public.kline.v3.api.pb@BTCUSDT@Min1"},
                                refuse={BOOK})
    bot = await start(aiohttp_client, tmp_path, fake_server, clock, public)
    stream = await Stream.open(bot.client, await bot.listen_key())
    await stream.send({"method": "SUBSCRIPTION", "params": [TRADES, BOOK, "spot@public.nope", ORDERS]})
    assert await stream.text() == {"id": 0, "code": 0, "msg": f"{TRADES},{ORDERS}"}
    assert await stream.text() == refusal(f"{BOOK},spot@public.nope")
    frame = b"\n0spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT\xe2\x12\x01x"  # any bytes
    assert public.emit(TRADES, frame) == 1
    msg = await stream.receive()
    assert (msg.type, msg.data) == (aiohttp.WSMsgType.BINARY, frame)
    await stream.send({"method": "UNSUBSCRIPTION", "params": [TRADES]})
    assert await stream.text() == {"id": 0, "code": 0, "msg": TRADES}
    assert public.sinks[TRADES] == []
    # a connection that ends gives its public subscriptions back
    other = await Stream.open(bot.client)
    assert (await other.subscribe([TRADES]))["msg"] == TRADES
    await other.close()
    await _until(lambda: public.sinks[TRADES] == [])
    assert ("unsubscribe", TRADES) in public.calls[-1:]


async def test_the_31st_subscription_is_refused(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock
) -> None:
    bot = await start(aiohttp_client, tmp_path, fake_server, clock, FakePublicChannels())
    stream = await Stream.open(bot.client, await bot.listen_key())
    assert (await stream.subscribe(PRIVATE))["msg"] == ",".join(PRIVATE)
    channels = [f"spot@public.aggre.deals.v3.api.pb@100ms@S{i}USDT" for i in range(28)]
    await stream.send({"method": "SUBSCRIPTION", "params": channels})
    ack = await stream.text()
    assert ack["msg"].split(",") == channels[:27]  # 3 + 27 = 30
    assert await stream.text() == refusal(channels[27], "Subscription limit (30) exceeded! ")
    # one given back makes room again
    await stream.send({"method": "UNSUBSCRIPTION", "params": [channels[0]]})
    await stream.text()
    assert (await stream.subscribe([channels[27]]))["msg"] == channels[27]


async def test_a_ping_is_answered_while_a_subscription_waits_for_the_upstream(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock
) -> None:
    """MEXC's stream slow to answer (or down): the subscription's answer waits, the PONG
    does not. A client's keep-alive (ccxt.pro drops a socket after 16 s without a PONG)
    never times out behind a subscription."""
    upstream_answers = asyncio.Event()
    public = FakePublicChannels(gates={TRADES: upstream_answers})
    bot = await start(aiohttp_client, tmp_path, fake_server, clock, public)
    stream = await Stream.open(bot.client)
    await stream.send({"method": "SUBSCRIPTION", "params": [TRADES], "id": 1})
    await stream.send({"method": "PING"})
    assert await stream.text() == {"id": 0, "code": 0, "msg": "PONG"}  # at once
    upstream_answers.set()
    assert await stream.text() == {"id": 1, "code": 0, "msg": TRADES}
    frame = b"\n0any frame"
    assert public.emit(TRADES, frame) == 1
    msg = await stream.receive()
    assert (msg.type, msg.data) == (aiohttp.WSMsgType.BINARY, frame)


async def test_subscription_answers_keep_their_request_order(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock
) -> None:
    upstream_answers = asyncio.Event()
    public = FakePublicChannels(gates={TRADES: upstream_answers}, refuse={TRADES})
    bot = await start(aiohttp_client, tmp_path, fake_server, clock, public)
    stream = await Stream.open(bot.client)
    await stream.send({"method": "SUBSCRIPTION", "params": [TRADES, BOOK], "id": 1})  # waits
    await stream.send({"method": "SUBSCRIPTION", "params": [BOOK], "id": 2})  # ready at once
    await stream.send("not json")
    await stream.send({"method": "UNSUBSCRIPTION", "params": [BOOK], "id": 3})
    await stream.send({"method": "PING", "id": 4})
    assert await stream.text() == {"id": 4, "code": 0, "msg": "PONG"}
    upstream_answers.set()  # ... and MEXC refuses TRADES
    assert await stream.text() == {"id": 1, "code": 0, "msg": BOOK}
    assert await stream.text() == refusal(TRADES, rid=1)
    assert await stream.text() == {"id": 2, "code": 0, "msg": BOOK}
    assert await stream.text() == {"id": 0, "code": 0, "msg": "msg format invalid"}
    assert await stream.text() == {"id": 3, "code": 0, "msg": BOOK}
    conn = next(iter(bot.client.app[keys.USER_STREAMS].connections))
    assert conn.subs == {} and public.sinks.get(BOOK, []) == [] and TRADES not in public.sinks


async def test_an_unsubscription_withdraws_a_subscription_still_waiting_for_the_upstream(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock
) -> None:
    upstream_answers = asyncio.Event()
    public = FakePublicChannels(gates={TRADES: upstream_answers})
    bot = await start(aiohttp_client, tmp_path, fake_server, clock, public)
    stream = await Stream.open(bot.client)
    await stream.send({"method": "SUBSCRIPTION", "params": [TRADES], "id": 1})
    await _until(lambda: ("subscribe", TRADES) in public.calls)  # waiting for its answer
    await stream.send({"method": "UNSUBSCRIPTION", "params": [TRADES], "id": 2})
    assert await stream.text() == {"id": 1, "code": 0, "msg": TRADES}
    assert await stream.text() == {"id": 2, "code": 0, "msg": TRADES}
    upstream_answers.set()
    await stream.send({"method": "PING"})
    assert (await stream.text())["msg"] == "PONG"
    # the public channels never deliver to it: withdrawn while waiting, nothing left behind
    assert public.withdrawn == [TRADES] and public.sinks.get(TRADES, []) == []
    conn = next(iter(bot.client.app[keys.USER_STREAMS].connections))
    assert conn.subs == {}


async def test_a_refused_subscription_does_not_restart_the_no_subscription_timer(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock
) -> None:
    """MEXC closes a connection with no valid subscription 30 s after it opened: a client
    sending a refused SUBSCRIPTION every few seconds must not keep it open."""
    public = FakePublicChannels(public={TRADES, BOOK}, refuse={BOOK})
    bot = await start(aiohttp_client, tmp_path, fake_server, clock, public)
    stream = await Stream.open(bot.client)
    conn = next(iter(bot.client.app[keys.USER_STREAMS].connections))
    opened = conn.unsubscribed_since
    assert await stream.subscribe(["spot@public.nonsense@X"]) == refusal("spot@public.nonsense@X")
    assert await stream.subscribe([BOOK]) == refusal(BOOK)  # public, refused upstream
    assert await stream.subscribe([ORDERS]) == refusal(ORDERS)  # private, no listenKey
    assert conn.unsubscribed_since == opened and conn._deadline()[1] == "no subscription"
    # a subscription that goes does restart it: from having one to having none
    assert (await stream.subscribe([TRADES]))["msg"] == TRADES
    assert conn._deadline()[1] == "idle"
    await stream.send({"method": "UNSUBSCRIPTION", "params": [TRADES]})
    assert (await stream.text())["msg"] == TRADES
    assert conn.unsubscribed_since > opened and conn._deadline()[1] == "no subscription"


# ---------------------------------------------------------------- keys


async def test_a_made_up_expired_or_deleted_key_gets_invalid_listen_key(bot: Bot) -> None:
    async def refused(key: str) -> None:
        stream = await Stream.open(bot.client, key)
        msg = await stream.receive()
        assert (msg.type, msg.data) == (aiohttp.WSMsgType.TEXT, "Invalid listen key")
        assert await stream.closed() == (1008, "Invalid listen key")

    await refused("f" * 64)
    await refused("")
    deleted = await bot.listen_key()
    await bot.call("DELETE", "/api/v3/userDataStream", {"listenKey": deleted})
    await refused(deleted)
    expired = await bot.listen_key()
    bot.clock.advance(60 * MIN)
    await refused(expired)


async def test_deleting_or_expiring_a_key_ends_its_streams(bot: Bot) -> None:
    key, other = await bot.listen_key(), await bot.listen_key()
    streams = [await Stream.open(bot.client, key) for _ in range(2)]
    survivor = await Stream.open(bot.client, other)
    for s in (*streams, survivor):
        assert (await s.subscribe([ORDERS]))["msg"] == ORDERS
    await bot.call("DELETE", "/api/v3/userDataStream", {"listenKey": key})
    for s in streams:
        assert await s.closed() == (1000, "listen key deleted")
    await survivor.send({"method": "PING"})
    assert (await survivor.text())["msg"] == "PONG"

    bot.clock.advance(60 * MIN)
    assert await bot.client.app[keys.LISTEN_KEYS].expire() == [other]  # (the hub runs this every 10 s)
    assert await survivor.closed() == (1000, "listen key expired")


async def test_a_sixth_connection_on_one_key_is_refused(bot: Bot) -> None:
    key = await bot.listen_key()
    streams = [await Stream.open(bot.client, key) for _ in range(5)]
    for s in streams:
        assert (await s.subscribe([ORDERS]))["msg"] == ORDERS
    sixth = await Stream.open(bot.client, key)
    assert await sixth.closed() == (1008, "too many connections for this listen key (max 5)")
    await streams[0].close()
    await _until(lambda: bot.client.app[keys.USER_STREAMS].connections_of_key(key) == 4)
    again = await Stream.open(bot.client, key)
    assert (await again.subscribe([ORDERS]))["msg"] == ORDERS


# ---------------------------------------------------------------- connection rules


async def test_more_than_100_messages_a_second_ends_the_connection(bot: Bot) -> None:
    stream = await Stream.open(bot.client, await bot.listen_key())
    for _ in range(500):  # sent back to back: far faster than 100/s
        await stream.ws.send_str('{"method":"PING"}')
    pongs = 0
    while True:
        msg = await stream.receive()
        if msg.type is not aiohttp.WSMsgType.TEXT:
            break
        pongs += 1
    assert stream.ws.close_code == 1008 and msg.extra == "too many messages"
    assert pongs < 500  # (answers still queued at the cut-off are dropped with the connection)


async def test_no_subscription_closes_the_connection(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock
) -> None:
    bot = await start(aiohttp_client, tmp_path, fake_server, clock, no_subscription_timeout_s=0.2)
    stream = await Stream.open(bot.client, await bot.listen_key())
    assert await stream.closed() == (1000, "no subscription")


async def test_a_subscribed_stream_with_nothing_to_say_is_closed_when_idle(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock
) -> None:
    bot = await start(aiohttp_client, tmp_path, fake_server, clock, idle_timeout_s=0.3)
    stream = await Stream.open(bot.client, await bot.listen_key())
    assert (await stream.subscribe([ORDERS]))["msg"] == ORDERS
    assert await stream.closed() == (1000, "idle")


async def test_every_connection_ends_at_its_maximum_lifetime(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock
) -> None:
    bot = await start(aiohttp_client, tmp_path, fake_server, clock, idle_timeout_s=0, max_lifetime_s=0.3)
    stream = await Stream.open(bot.client, await bot.listen_key())
    assert (await stream.subscribe([ORDERS]))["msg"] == ORDERS
    assert await stream.closed() == (1000, "24h limit")


async def test_a_reader_that_stops_reading_is_cut_off_and_holds_up_nobody(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock
) -> None:
    public = FakePublicChannels()
    bot = await start(aiohttp_client, tmp_path, fake_server, clock, public, send_queue=16)
    hub = bot.client.app[keys.USER_STREAMS]
    key = await bot.listen_key()
    slow, fast = await Stream.open(bot.client, key), await Stream.open(bot.client, key)
    for s in (slow, fast):
        assert (await s.subscribe([TRADES, ORDERS]))["msg"] == f"{TRADES},{ORDERS}"
    frame = b"x" * 65536
    sent = 0
    # `slow` never reads again: its socket buffers fill, then its queue of 16; it is cut
    # off. `fast` reads every frame meanwhile.
    while len(hub.connections) == 2 and not any(c.closing for c in hub.connections):
        public.emit(TRADES, frame)
        sent += 1
        msg = await fast.receive()
        assert (msg.type, len(msg.data)) == (aiohttp.WSMsgType.BINARY, 65536)
        assert sent < 10_000, "the slow reader was never cut off"
    cut = next(c for c in hub.connections if c.closing)
    assert cut.close_reason == "slow reader: send queue full" and len(cut.queue) == 0
    # the order path never waited: an order is acknowledged and pushed to `fast`
    ack = await bot.call("POST", "/api/v3/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                                    "quantity": "0.001", "price": "80000"})
    pushed = await fast.push()
    assert pushed["privateOrders"]["id"] == ack["orderId"]
    await _until(lambda: len(hub.connections) == 1)
    metrics = await (await bot.client.get("/metrics")).text()
    assert 'mexc_paper_ws_disconnects_total{reason="slow_reader"} 1.0' in metrics


async def test_a_reader_is_cut_off_by_the_bytes_it_holds_back_not_only_their_count(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock
) -> None:
    """Upstream frames may be up to 4 MB: 1024 queued frames could be 4 GB. The queue is
    bounded by bytes too (websocket.send_queue_bytes); one frame is always taken when
    nothing is queued, however large."""
    public = FakePublicChannels()
    bot = await start(aiohttp_client, tmp_path, fake_server, clock, public,
                      send_queue=1024, send_queue_bytes=64 * 1024)
    stream = await Stream.open(bot.client)
    assert (await stream.subscribe([TRADES]))["msg"] == TRADES
    big = b"B" * 100_000  # more than the bound, on an empty queue: delivered
    public.emit(TRADES, big)
    msg = await stream.receive()
    assert (msg.type, msg.data) == (aiohttp.WSMsgType.BINARY, big)
    conn = next(iter(bot.client.app[keys.USER_STREAMS].connections))
    # three frames of 30 KB queued before the writer runs: 90 KB > 64 KB, 3 << 1024
    for _ in range(3):
        public.emit(TRADES, b"x" * 30_000)
    assert conn.closing and conn.close_reason == "slow reader: send queue full"
    assert conn.queued_bytes == 0 and not conn.queue
    assert await stream.closed() == (1008, "slow reader: send queue full")


async def test_shutdown_closes_every_stream_with_going_away(
    fake_server: Any, tmp_path: Path, clock: FixedClock
) -> None:
    settings = make_settings(tmp_path, str(fake_server.make_url("")).rstrip("/"))
    server = TestServer(create_app(settings, clock=clock))
    await server.start_server(access_log_class=SafeAccessLogger)
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(server.make_url("/ws"))
        stream = Stream(ws)
        await stream.send({"method": "PING"})
        assert (await stream.text())["msg"] == "PONG"
        closing = asyncio.create_task(server.close())
        assert await stream.closed() == (1001, "server shutting down")
        await closing


# ---------------------------------------------------------------- logs and metrics


async def test_a_key_never_reaches_the_logs(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    bot = await start(aiohttp_client, tmp_path, fake_server, clock, no_subscription_timeout_s=0.2)
    key = await bot.listen_key()
    stream = await Stream.open(bot.client, key)
    assert await stream.closed() == (1000, "no subscription")  # the server logs this close
    bad = await Stream.open(bot.client, "a" * 64)
    await bad.closed()
    lines = [r.getMessage() for r in caplog.records]
    access = [ln for ln in lines if ln.startswith("GET /ws ")]
    assert access, "the access log wrote the /ws requests"
    assert any(f"{key[:4]}...{key[-4:]}" in ln for ln in lines)  # masked: first and last 4
    assert not [ln for ln in lines if key in ln or "a" * 64 in ln]


async def test_metrics_count_connections_subscriptions_and_pushes(bot: Bot) -> None:
    stream = await Stream.open(bot.client, await bot.listen_key())
    assert (await stream.subscribe(PRIVATE))["code"] == 0
    await Stream.open(bot.client)
    await bot.call("POST", "/api/v3/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                             "quantity": "0.001", "price": "80000"})
    await stream.pushes(2)  # orders NEW, account ENTRUST_PLACE
    text = await (await bot.client.get("/metrics")).text()
    for line in (
        'mexc_paper_ws_connections{kind="private"} 1.0',
        'mexc_paper_ws_connections{kind="public"} 1.0',
        'mexc_paper_ws_subscriptions{kind="private"} 3.0',
        'mexc_paper_ws_pushes_total{channel="spot@private.orders.v3.api.pb"} 1.0',
        'mexc_paper_ws_pushes_total{channel="spot@private.account.v3.api.pb"} 1.0',
    ):
        assert line in text, line


async def _until(check: Any) -> None:
    """Wait for state the server changes after the client's side is done (a close the
    server handles in its own time): polled with a deadline, no fixed sleep."""
    for _ in range(1000):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")
