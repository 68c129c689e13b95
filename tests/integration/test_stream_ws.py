"""Public channels on the sidecar's /ws, relayed from MEXC's stream (issue 16), with
unmodified clients: ccxt.pro 4.5.90 (`watch_trades`, `watch_order_book`, `watch_ticker`,
`watch_bids_asks`) built by the README's recipe (its REST URLs and `urls.api.ws.spot` at
the sidecar), and plain WebSocket clients that see the bytes. A fake MEXC serves REST and
the stream on one version counter (tests/fake_upstream.py, tests/fake_stream.py), so ccxt
syncs its book against a REST snapshot taken through the sidecar exactly as against MEXC.

Everything runs in the test's event loop; nothing sleeps to synchronise: the tests await
the fake (a subscription made, a connection dropped) or the client's own answers.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from conftest import KEY, SECRET, make_settings
from e2e.bot_recipes import ccxt_pro
from fake_stream import FakeMexcStream
from fake_upstream import FakeMexc

from proxy import keys
from proxy.app import WATCHER, create_app
from proxy.config import PaperSettings, UpstreamSettings
from proxy.ws.relay import StreamRelay

SYMBOL, CCXT_SYMBOL = "BTCUSDT", "BTC/USDT"
DEALS = f"spot@public.aggre.deals.v3.api.pb@100ms@{SYMBOL}"
DEPTH = f"spot@public.aggre.depth.v3.api.pb@100ms@{SYMBOL}"
TICKER = f"spot@public.aggre.bookTicker.v3.api.pb@100ms@{SYMBOL}"
WAIT_S = 10  # an upper bound for what must happen, never a pacing delay


@pytest.fixture(autouse=True)
def quiet_ccxt() -> Any:
    """ccxt logs its requests (key header, signature) at DEBUG: the bot's log, not the
    sidecar's, which the suite checks for secrets. Kept at WARNING, as tests/e2e does."""
    import logging

    logger = logging.getLogger("ccxt")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


class Env:
    def __init__(self, app: web.Application, base: str, fake: FakeMexc, fake_ws: FakeMexcStream) -> None:
        self.app, self.base, self.fake, self.fake_ws = app, base, fake, fake_ws
        self.ws_url = base.replace("http", "ws", 1) + "/ws"

    @property
    def relay(self) -> StreamRelay:
        return self.app[keys.MARKET_STREAM]

    async def local_subscribers(self, channel: str, n: int) -> None:
        await asyncio.wait_for(self.relay.wait_subscribers(channel, n), WAIT_S)

    def ccxt_pro(self) -> Any:
        """ccxt.pro built by the README's recipe: REST and the spot WebSocket at the sidecar."""
        return ccxt_pro(self.base, KEY, SECRET)

    async def subscribed(self, channel: str, n: int = 1) -> None:
        await self.fake_ws.wait_for(lambda: self.fake_ws.subscribers(channel) == n, WAIT_S)


@pytest.fixture
async def env(
    aiohttp_server: Any, aiohttp_client: Any, fake: FakeMexc, tmp_path: Path
) -> AsyncIterator[Env]:
    # servers first: torn down after the sidecar, which holds a socket to the fake
    fake_ws = FakeMexcStream(fake)
    rest = await aiohttp_server(fake.app())
    ws = await aiohttp_server(fake_ws.app())
    settings = make_settings(
        tmp_path, str(rest.make_url("")).rstrip("/"),
        ws_url=str(ws.make_url("/ws")).replace("http://", "ws://"),
        paper=PaperSettings(poll_interval_s=3600),
    )
    app = create_app(settings)
    client = await aiohttp_client(app)
    yield Env(app, str(client.make_url("")).rstrip("/"), fake, fake_ws)


@pytest.fixture
async def exchange(env: Env) -> AsyncIterator[Any]:
    ex = env.ccxt_pro()
    yield ex
    await ex.close()


async def raw(env: Env, session: aiohttp.ClientSession, *channels: str) -> aiohttp.ClientWebSocketResponse:
    """A plain client subscribed to `channels` (one SUBSCRIPTION), its ack read."""
    ws = await session.ws_connect(env.ws_url)
    await ws.send_str(json.dumps({"method": "SUBSCRIPTION", "params": list(channels), "id": 7}))
    ack = json.loads((await ws.receive(timeout=WAIT_S)).data)
    assert ack == {"id": 7, "code": 0, "msg": ",".join(channels)}
    return ws


async def binary(ws: aiohttp.ClientWebSocketResponse) -> bytes:
    while True:
        msg = await ws.receive(timeout=WAIT_S)
        if msg.type is aiohttp.WSMsgType.BINARY:
            return msg.data
        assert msg.type is aiohttp.WSMsgType.TEXT, msg


# --------------------------------------------------------------------------- ccxt.pro


async def test_ccxt_pro_watch_trades_gets_what_mexc_pushed(env: Env, exchange: Any) -> None:
    watch = asyncio.create_task(exchange.watch_trades(CCXT_SYMBOL))
    await env.subscribed(DEALS)
    t = 1767205900123
    await env.fake_ws.push_deals(SYMBOL, [("87901.5", "0.0123", 1, t), ("87900.01", "0.5", 2, t + 1)])
    trades = await asyncio.wait_for(watch, WAIT_S)
    got = [(tr["price"], tr["amount"], tr["side"], tr["timestamp"]) for tr in trades]
    assert got == [(87901.5, 0.0123, "buy", t), (87900.01, 0.5, "sell", t + 1)]


async def test_ccxt_pro_watch_order_book_syncs_with_a_snapshot_through_the_sidecar(
    env: Env, exchange: Any
) -> None:
    books: list[tuple[Any, list[list[float]], list[list[float]]]] = []
    changed = asyncio.Event()

    async def watch() -> None:
        while True:
            book = await exchange.watch_order_book(CCXT_SYMBOL)
            books.append((book["nonce"], [list(b) for b in book["bids"]], [list(a) for a in book["asks"]]))
            changed.set()

    def expected() -> tuple[list[list[float]], list[list[float]]]:
        book = env.fake.books[SYMBOL]
        return ([[float(p), float(q)] for p, q in book["bids"]],
                [[float(p), float(q)] for p, q in book["asks"]])

    task = asyncio.create_task(watch())
    try:
        await env.subscribed(DEPTH)
        # ccxt buffers 25 diffs, then asks REST (through the sidecar) for a snapshot; the
        # fake keeps REST and the stream on one version counter, as MEXC does
        for i in range(40):
            await env.fake_ws.push_depth(SYMBOL, bids=[(f"87800.{i:02d}", f"0.{i + 1:03d}")],
                                         asks=[("87903.98", f"5.{i:02d}")])
            if books:
                break
        if not books:
            await asyncio.wait_for(changed.wait(), WAIT_S)
        assert any(s.path == "/api/v3/depth" for s in env.fake.seen)  # the snapshot, forwarded
        # from then on the book follows every diff exactly (one pushed at a time: ccxt
        # resolves a watch per diff)
        for i in range(5):
            changed.clear()
            await env.fake_ws.push_depth(SYMBOL, bids=[(f"87800.{i:02d}", "0")], asks=[(f"87910.{i}", "1.5")])
            await asyncio.wait_for(changed.wait(), WAIT_S)
            if books[-1][1:] == expected():
                break
        assert books[-1][1:] == expected()
        assert books[-1][0] is not None  # ccxt's nonce: the book is synced
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_ccxt_pro_watch_ticker_and_watch_bids_asks(env: Env, exchange: Any) -> None:
    watch = asyncio.create_task(exchange.watch_ticker(CCXT_SYMBOL))
    await env.subscribed(TICKER)
    frame = env.fake_ws.book_ticker_frame(SYMBOL, "87900.1", "1.25", "87903.9", "0.75")
    await env.fake_ws.push(TICKER, frame)
    ticker = await asyncio.wait_for(watch, WAIT_S)
    assert (ticker["bid"], ticker["bidVolume"], ticker["ask"], ticker["askVolume"]) == (
        87900.1, 1.25, 87903.9, 0.75)
    # watch_bids_asks subscribes the same channel: through the sidecar, a second local
    # subscriber of the one upstream subscription. (ccxt 4.5.90 reads that push with the
    # field names of MEXC's old JSON channel, `s` and `d`, so watch_bids_asks never returns
    # against MEXC itself; what it gets here is what MEXC would send: the same frames, which
    # its ticker parser reads.)
    other = env.ccxt_pro()
    try:
        bids_asks = asyncio.create_task(other.watch_bids_asks([CCXT_SYMBOL]))
        await env.local_subscribers(TICKER, 2)
        ticker2 = asyncio.create_task(other.watch_ticker(CCXT_SYMBOL))
        frame = env.fake_ws.book_ticker_frame(SYMBOL, "87900.2", "2", "87903.8", "3")
        await env.fake_ws.push(TICKER, frame)
        got = await asyncio.wait_for(ticker2, WAIT_S)
        assert (got["bid"], got["bidVolume"], got["ask"], got["askVolume"]) == (87900.2, 2.0, 87903.8, 3.0)
        assert env.fake_ws.subscriptions_sent(TICKER) == 1  # still one upstream subscription
        assert not bids_asks.done()  # as against MEXC (see above)
        bids_asks.cancel()
        await asyncio.gather(bids_asks, return_exceptions=True)
    finally:
        await other.close()


async def test_ccxt_pro_watch_ohlcv_gets_mexcs_kline(env: Env, exchange: Any) -> None:
    kline = f"spot@public.kline.v3.api.pb@{SYMBOL}@Min1"
    watch = asyncio.create_task(exchange.watch_ohlcv(CCXT_SYMBOL, "1m"))
    await env.subscribed(kline)
    ohlc = ("87900", "87950.5", "87880.25", "87910")
    frame = env.fake_ws.kline_frame(SYMBOL, "Min1", 1767205860, *ohlc, "3.5")
    await env.fake_ws.push(kline, frame)
    (candle,) = await asyncio.wait_for(watch, WAIT_S)
    assert candle == [1767205860000, 87900.0, 87950.5, 87880.25, 87910.0, 3.5]


async def test_a_bot_watching_trades_and_its_resting_order_share_one_subscription(
    env: Env, exchange: Any
) -> None:
    """The market watcher subscribes the deals of a symbol with a resting order through the
    same relay: a bot's watch_trades adds a local subscriber, not an upstream one, and the
    one deal MEXC pushes both reaches the bot and fills its paper order."""
    order = await exchange.create_order(CCXT_SYMBOL, "limit", "buy", 0.01, 87000)
    watcher = env.app[WATCHER]
    async with asyncio.timeout(WAIT_S):
        await watcher.wait_fed(lambda: SYMBOL in watcher.feeds and watcher.feeds[SYMBOL].source == "stream")
    watch = asyncio.create_task(exchange.watch_trades(CCXT_SYMBOL))
    await env.local_subscribers(DEALS, 2)  # the watcher and the bot
    assert env.fake_ws.subscriptions_sent(DEALS) == 1
    t = 1767205999000  # after the order arrived, by MEXC's clock
    await env.fake_ws.push_deals(SYMBOL, [("86999", "0.02", 2, t)])  # a seller through our bid
    (trade,) = await asyncio.wait_for(watch, WAIT_S)
    assert (trade["price"], trade["amount"], trade["side"], trade["timestamp"]) == (86999.0, 0.02, "sell", t)
    feed = watcher.feeds[SYMBOL]
    async with asyncio.timeout(WAIT_S):
        await watcher.wait_fed(lambda: feed.fills >= 1)
    got = await exchange.fetch_order(order["id"], CCXT_SYMBOL)
    assert (got["status"], got["filled"], got["price"]) == ("closed", 0.01, 87000.0)
    assert all(tr["price"] != "86999" for tr in env.fake.trades[SYMBOL])  # never on REST


# --------------------------------------------------------------------------- plain clients


async def test_many_local_clients_one_upstream_subscription_the_same_bytes(env: Env) -> None:
    async with aiohttp.ClientSession() as session:
        clients = [await raw(env, session, DEALS) for _ in range(20)]
        await env.subscribed(DEALS)
        assert env.fake_ws.subscriptions_sent(DEALS) == 1 and env.fake_ws.connections_made == 1
        frame = env.fake_ws.deals_frame(SYMBOL, [("87901", "1", 1, 1767205900000)], trade_ids=["X1"])
        await env.fake_ws.push(DEALS, frame)
        assert [await binary(ws) for ws in clients] == [frame] * 20  # byte-identical
        # the last one to leave ends the upstream subscription, not before
        for ws in clients[:-1]:
            await ws.close()
        await env.local_subscribers(DEALS, 1)
        assert env.fake_ws.subscribers(DEALS) == 1 and env.fake_ws.messages("UNSUBSCRIPTION") == []
        last = clients[-1]
        await last.send_str(json.dumps({"method": "UNSUBSCRIPTION", "params": [DEALS]}))
        await env.subscribed(DEALS, 0)
        assert [m["params"] for m in env.fake_ws.messages("UNSUBSCRIPTION")] == [[DEALS]]
        await last.close()


async def test_an_upstream_drop_is_invisible_to_local_clients_but_for_the_gap(env: Env) -> None:
    async with aiohttp.ClientSession() as session:
        ws = await raw(env, session, DEALS, DEPTH)
        await env.subscribed(DEALS)
        await env.fake_ws.drop_all()
        await env.subscribed(DEALS)  # reconnected and resubscribed by the sidecar
        assert env.fake_ws.connections_made == 2
        frame = env.fake_ws.deals_frame(SYMBOL, [("1", "1", 1, 1)])
        await env.fake_ws.push(DEALS, frame)
        assert await binary(ws) == frame  # the local connection never noticed
        assert not ws.closed


async def test_a_local_connection_is_answered_and_stays_open_while_mexcs_stream_is_down(
    aiohttp_server: Any, aiohttp_client: Any, fake: FakeMexc, tmp_path: Path
) -> None:
    """ccxt.pro sends one SUBSCRIPTION per watch and drops a socket that gets no PONG for
    16 s. With MEXC's stream down and upstream.timeout_s at an hour, every SUBSCRIPTION
    and the PING are answered at once; when MEXC is back the same connection gets its
    frames."""
    fake_ws = FakeMexcStream(fake)
    fake_ws.accepting = False  # MEXC's stream is down (the upgrade is refused)
    rest = await aiohttp_server(fake.app())
    ws_server = await aiohttp_server(fake_ws.app())
    settings = make_settings(
        tmp_path, upstream=UpstreamSettings(
            base_url=str(rest.make_url("")).rstrip("/"), timeout_s=3600, connect_timeout_s=1,
            ws_url=str(ws_server.make_url("/ws")).replace("http://", "ws://"),
        ),
    )
    client = await aiohttp_client(create_app(settings))
    channels = [f"spot@public.aggre.deals.v3.api.pb@100ms@{s}" for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT")]
    ws = await client.ws_connect("/ws")
    for i, channel in enumerate(channels):
        await ws.send_str(json.dumps({"method": "SUBSCRIPTION", "params": [channel], "id": i + 1}))
    await ws.send_str(json.dumps({"method": "PING"}))
    answers = [json.loads((await ws.receive(timeout=WAIT_S)).data) for _ in range(4)]
    assert {"id": 0, "code": 0, "msg": "PONG"} in answers
    assert [a for a in answers if a["msg"] != "PONG"] == [
        {"id": i + 1, "code": 0, "msg": ch} for i, ch in enumerate(channels)
    ]
    fake_ws.accepting = True  # back: subscribed upstream, frames to the same connection
    await fake_ws.wait_for(lambda: all(fake_ws.subscribers(ch) == 1 for ch in channels), WAIT_S)
    frame = fake_ws.deals_frame("ETHUSDT", [("3000", "1", 1, 1)])
    await fake_ws.push(channels[1], frame)
    assert await binary(ws) == frame
    await ws.close()


async def test_a_channel_mexc_does_not_serve_gets_mexcs_refusal_and_never_goes_upstream(env: Env) -> None:
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(env.ws_url)
        bad = "spot@public.deals.v3.api@BTCUSDT"  # the JSON channel MEXC blocks
        await ws.send_str(json.dumps({"method": "SUBSCRIPTION", "params": [bad], "id": 3}))
        ack = json.loads((await ws.receive(timeout=WAIT_S)).data)
        refusal = f"Not Subscribed successfully! [{bad}].  Reason\uff1a Blocked! "
        assert ack == {"id": 3, "code": 0, "msg": refusal}
        # one the upstream refuses (legacy, MEXC decides): its refusal, the same words
        legacy = "spot@public.increase.depth.v3.api.pb@BTCUSDT"
        env.fake_ws.refuse.add(legacy)
        await ws.send_str(json.dumps({"method": "SUBSCRIPTION", "params": [legacy], "id": 4}))
        ack = json.loads((await ws.receive(timeout=WAIT_S)).data)
        assert ack["msg"].startswith(f"Not Subscribed successfully! [{legacy}]")
        await ws.close()
    sent = [p for m in env.fake_ws.messages("SUBSCRIPTION") for p in m["params"]]
    assert bad not in sent and sent == [legacy]


async def test_a_local_client_over_mexcs_limits_costs_the_upstream_nothing_more(env: Env) -> None:
    channels = [f"spot@public.aggre.deals.v3.api.pb@100ms@S{i:02d}USDT" for i in range(31)]
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(env.ws_url)
        await ws.send_str(json.dumps({"method": "SUBSCRIPTION", "params": channels, "id": 1}))
        answers = [json.loads((await ws.receive(timeout=WAIT_S)).data)["msg"] for _ in range(2)]
        assert answers[0] == ",".join(channels[:30])
        assert answers[1].startswith(f"Not Subscribed successfully! [{channels[30]}]")
        sent = {p for m in env.fake_ws.messages("SUBSCRIPTION") for p in m["params"]}
        assert sent == set(channels[:30])
        # more than 100 messages in a second: the sidecar cuts the client off, and its
        # subscriptions end upstream
        for _ in range(150):
            if ws.closed:
                break
            await ws.send_str(json.dumps({"method": "PING"}))
        while not ws.closed:
            msg = await ws.receive(timeout=WAIT_S)
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                break
        await env.fake_ws.wait_for(lambda: all(env.fake_ws.subscribers(ch) == 0 for ch in channels[:30]))
    assert env.fake_ws.kicked == []  # the upstream never saw more than its limit


async def test_nothing_private_reaches_the_upstream_stream(env: Env) -> None:
    async with aiohttp.ClientSession() as session:
        ws = await raw(env, session, DEALS)
        await ws.send_str(json.dumps({"method": "SUBSCRIPTION", "params": ["spot@private.orders.v3.api.pb"]}))
        await ws.receive(timeout=WAIT_S)
        await ws.close()
    await env.subscribed(DEALS, 0)
    assert env.fake_ws.urls == ["/ws"]
    for _conn, text in env.fake_ws.received:
        assert "private" not in text and "listenKey" not in text and "signature" not in text
    for h in env.fake_ws.headers:
        assert not any(k.lower() == "x-mexc-apikey" for k in h)
