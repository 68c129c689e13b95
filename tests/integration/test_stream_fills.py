"""Fills from MEXC's public stream (issue 16): the market watcher subscribes the deals and
depth channels of every symbol with open orders through the relay, feeds every trade and
book change to the engine as it arrives, and costs no REST request in steady state.

A fake MEXC serves REST (tests/fake_upstream.py) and the WebSocket (tests/fake_stream.py)
on one version counter, so the sidecar syncs the streamed book against a REST snapshot as
MEXC documents. The tests never sleep to synchronise: they await the watcher
(`wait_fed`: after every stream update fed and every polling cycle) or the fake.

Scripted market: bids 87000.00 x 0.004 / 86999.00 x 1, asks 87001.00 x 1; a resting BUY
0.01 @ 87000 (queue ahead 0.004).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from conftest import KEY, NOW, SECRET, make_settings
from fake_stream import FakeMexcStream
from fake_upstream import FakeMexc
from mexc_client import ccxt_query

from proxy import keys
from proxy.app import WATCHER, create_app
from proxy.clock import FixedClock
from proxy.config import PaperSettings
from proxy.engine.state import check_invariants
from proxy.watcher import MarketWatcher

D = Decimal
SYMBOL = "BTCUSDT"
BUY = {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "quantity": "0.01", "price": "87000"}
BUY_TAKER, SELL_TAKER = 1, 2  # tradeType: the taker's side


class Env:
    def __init__(
        self, app: web.Application, client: TestClient, clock: FixedClock,
        fake: FakeMexc, fake_ws: FakeMexcStream,
    ) -> None:
        self.app, self.client, self.clock, self.fake, self.fake_ws = app, client, clock, fake, fake_ws

    @property
    def watcher(self) -> MarketWatcher:
        return self.app[WATCHER]

    async def call(self, method: str, path: str, params: dict[str, Any] | None = None) -> Any:
        q = ccxt_query(params or {}, SECRET, ts=self.clock.now_ms())
        resp = await self.client.request(method, f"{path}?{q}", headers={"X-MEXC-APIKEY": KEY})
        data = await resp.json()
        assert resp.status == 200, data
        return data

    async def order(self, order_id: str) -> dict[str, Any]:
        return await self.call("GET", "/api/v3/order", {"symbol": SYMBOL, "orderId": order_id})

    async def until(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(15):
            await self.watcher.wait_fed(predicate)
        check_invariants(self.app[keys.SERVICE].state)

    async def streaming(self) -> None:
        """The watcher feeds SYMBOL's trades and book from the stream."""
        feeds = self.watcher.feeds
        await self.until(lambda: SYMBOL in feeds and feeds[SYMBOL].source == "stream")

    def rest_market_requests(self) -> int:
        return sum(1 for s in self.fake.seen if s.path in ("/api/v3/depth", "/api/v3/trades"))

    def upstream_requests(self, since: int) -> tuple[dict[str, int], dict[str, int]]:
        """Every request the sidecar sent the REST fake since `since` (an index into its
        log), by path: (those for one symbol, as `path?symbol=X`; those for all symbols)."""
        per_symbol: dict[str, int] = {}
        every: dict[str, int] = {}
        for s in self.fake.seen[since:]:
            symbols = [p for p in s.query.split("&") if p.startswith(("symbol=", "symbols="))]
            if symbols:
                key = f"{s.path}?{symbols[0]}"
                per_symbol[key] = per_symbol.get(key, 0) + 1
            else:
                every[s.path] = every.get(s.path, 0) + 1
        return per_symbol, every

    async def health(self) -> dict[str, Any]:
        resp = await self.client.get("/healthz")
        return await resp.json()


@pytest.fixture
async def env(
    aiohttp_server: Any, aiohttp_client: Any, fake: FakeMexc, clock: FixedClock, tmp_path: Path
) -> Env:
    # (servers first: torn down after the sidecar, which holds a socket to the fake)
    fake.set_book(SYMBOL, bids=[("87000.00", "0.004"), ("86999.00", "1")], asks=[("87001.00", "1")])
    fake_ws = FakeMexcStream(fake, clock=clock.now_ms)
    rest = await aiohttp_server(fake.app())
    ws = await aiohttp_server(fake_ws.app())
    settings = make_settings(
        tmp_path, str(rest.make_url("")).rstrip("/"),
        ws_url=str(ws.make_url("/ws")).replace("http://", "ws://"),
        paper=PaperSettings(poll_interval_s=3600),
    )
    app = create_app(settings, clock=clock)
    client = await aiohttp_client(app)
    return Env(app, client, clock, fake, fake_ws)


async def test_a_resting_order_fills_from_a_deal_that_only_the_stream_carried(env: Env) -> None:
    order = await env.call("POST", "/api/v3/order", BUY)
    await env.streaming()
    feed = env.watcher.feeds[SYMBOL]
    assert env.fake_ws.subscribers(f"spot@public.aggre.deals.v3.api.pb@100ms@{SYMBOL}") == 1
    # printed and gone between two REST polls: MEXC's trades page never shows it
    await env.fake_ws.push_deals(SYMBOL, [("86999.50", "0.02", SELL_TAKER, NOW + 10)])
    await env.until(lambda: feed.fills >= 1)
    got = await env.order(order["orderId"])
    assert got["status"] == "FILLED" and got["executedQty"] == "0.01"
    assert all(t["price"] != "86999.50" for t in env.fake.trades[SYMBOL])
    (fill,) = await env.call("GET", "/api/v3/myTrades", {"symbol": SYMBOL})
    assert fill["price"] == "87000" and fill["qty"] == "0.01" and fill["isMaker"] is True


async def test_a_deal_at_the_price_first_uses_up_the_queue_ahead(env: Env) -> None:
    order = await env.call("POST", "/api/v3/order", BUY)
    await env.streaming()
    feed = env.watcher.feeds[SYMBOL]
    await env.fake_ws.push_deals(SYMBOL, [("87000.00", "0.003", SELL_TAKER, NOW + 5)])
    await env.until(lambda: feed.trades_fed >= 1)
    assert (await env.order(order["orderId"]))["status"] == "NEW"  # 0.001 still ahead
    await env.fake_ws.push_deals(SYMBOL, [("87000.00", "0.004", SELL_TAKER, NOW + 6),
                                          ("87000.00", "0.5", BUY_TAKER, NOW + 7)])  # a buyer: not us
    await env.until(lambda: feed.trades_fed >= 3)
    got = await env.order(order["orderId"])
    assert got["status"] == "PARTIALLY_FILLED" and got["executedQty"] == "0.003"


async def test_a_depth_push_through_the_price_fills_and_the_same_size_is_not_taken_twice(env: Env) -> None:
    order = await env.call("POST", "/api/v3/order", BUY)
    await env.streaming()
    feed = env.watcher.feeds[SYMBOL]
    # an ask appears below our bid: the book moved through the order
    await env.fake_ws.push_depth(SYMBOL, asks=[("86999.90", "0.006")])
    await env.until(lambda: feed.fills >= 1)
    got = await env.order(order["orderId"])
    assert got["status"] == "PARTIALLY_FILLED" and got["executedQty"] == "0.006"
    # 100 ms later MEXC still shows that ask (our paper fill never happened there): a
    # diff elsewhere must not let the order take it again
    updates = feed.updates_fed
    await env.fake_ws.push_depth(SYMBOL, bids=[("86998.00", "3")])
    await env.until(lambda: feed.updates_fed > updates)
    assert (await env.order(order["orderId"]))["executedQty"] == "0.006"
    # size added to that level is available on top of what we took
    await env.fake_ws.push_depth(SYMBOL, asks=[("86999.90", "0.01")])
    await env.until(lambda: feed.fills >= 2)
    got = await env.order(order["orderId"])
    assert got["status"] == "FILLED" and got["executedQty"] == "0.01"
    fills = await env.call("GET", "/api/v3/myTrades", {"symbol": SYMBOL})
    assert [f["qty"] for f in fills] == ["0.006", "0.004"]


async def test_takers_do_not_reuse_liquidity_across_diffs_that_leave_the_level_alone(env: Env) -> None:
    await env.call("POST", "/api/v3/order", BUY)  # a resting order: the symbol is watched
    await env.streaming()
    feed = env.watcher.feeds[SYMBOL]

    async def diff(**kw: Any) -> None:
        updates = feed.updates_fed
        await env.fake_ws.push_depth(SYMBOL, **kw)
        await env.until(lambda: feed.updates_fed > updates)

    await diff(asks=[("87001.00", "0.01")])
    take = {"symbol": SYMBOL, "side": "BUY", "type": "MARKET", "quantity": "0.006"}
    first = await env.order((await env.call("POST", "/api/v3/order", take))["orderId"])
    assert first["status"] == "FILLED"
    await diff(bids=[("86990.00", "2")])  # the ask level untouched
    second = await env.order((await env.call("POST", "/api/v3/order", take))["orderId"])
    # 0.004 of the 87001 level is left; nothing more is shown: the order ends partly filled
    assert second["executedQty"] == "0.004" and second["status"] == "PARTIALLY_CANCELED"
    # the level shrinks on MEXC below what we took: nothing of it is left for us
    await diff(asks=[("87001.00", "0.003"), ("87002.00", "1")])
    third = await env.call("POST", "/api/v3/order", {**take, "quantity": "0.002"})
    fills = await env.call("GET", "/api/v3/myTrades", {"symbol": SYMBOL, "orderId": third["orderId"]})
    assert [(f["price"], f["qty"]) for f in fills] == [("87002", "0.002")]


async def test_steady_state_costs_no_rest_request(env: Env) -> None:
    """Every upstream path counts, not only depth and trades: with MX deduction on (its
    fee is priced in MXUSDT) and the dashboard valuing the account, a symbol on the
    stream costs no REST request of any kind. What remains is not per watched symbol:
    MXUSDT's price (one for every symbol, kept 5 s) and the all-symbols price list."""
    await env.call("POST", "/api/v3/mxDeduct/enable", {"mxDeductEnable": "true"})
    await env.call("POST", "/api/v3/order", BUY)
    await env.streaming()
    feed = env.watcher.feeds[SYMBOL]
    mark = len(env.fake.seen)
    for i in range(5):
        await env.fake_ws.push_depth(SYMBOL, bids=[("86999.00", str(1 + i))])
        await env.fake_ws.push_deals(SYMBOL, [("87005", "0.001", BUY_TAKER, NOW + 20 + i)])
    last = env.fake.books[SYMBOL]
    await env.until(lambda: feed.trades_fed >= 5 and feed.book.version == last["lastUpdateId"])
    await env.watcher.wait_cycles(3)  # the polling loop runs, and leaves the symbol alone
    health = await env.health()
    assert health["stream"]["symbols"] == {SYMBOL: {"source": "stream", "trades": "stream", "book": "stream"}}
    # orders on the symbol use the streamed book and last price: no REST either
    await env.call("POST", "/api/v3/order", {**BUY, "price": "86000"})
    per_symbol, all_symbols = env.upstream_requests(mark)
    assert {k: n for k, n in per_symbol.items() if k.endswith(f"={SYMBOL}")} == {}
    assert per_symbol.get("/api/v3/ticker/price?symbol=MXUSDT", 0) <= 1, per_symbol
    assert set(per_symbol) <= {"/api/v3/ticker/price?symbol=MXUSDT"}, per_symbol
    assert set(all_symbols) <= {"/api/v3/ticker/price"}, all_symbols


async def test_while_the_stream_is_down_rest_stands_in_and_no_trade_is_fed_twice(env: Env) -> None:
    order = await env.call("POST", "/api/v3/order", BUY)
    await env.streaming()
    feed = env.watcher.feeds[SYMBOL]
    env.fake_ws.accepting = False
    await env.fake_ws.drop_all()
    await env.until(lambda: feed.source == "rest")
    health = await env.health()
    assert health["stream"]["state"] == "down"
    assert health["stream"]["symbols"][SYMBOL]["source"] == "rest"
    # a trade while the stream is down reaches the engine through REST
    env.fake.print_trade(SYMBOL, "86999.00", "0.003", True, NOW + 30)
    await env.watcher.wait_cycles(1)
    assert (await env.order(order["orderId"]))["executedQty"] == "0.003"
    # back: resubscribed, handed over after one REST page (which still shows that trade)
    env.fake_ws.accepting = True
    await env.streaming()
    assert env.fake_ws.subscribers(f"spot@public.aggre.depth.v3.api.pb@100ms@{SYMBOL}") == 1
    assert (await env.order(order["orderId"]))["executedQty"] == "0.003"
    await env.fake_ws.push_deals(SYMBOL, [("86999.00", "0.002", SELL_TAKER, NOW + 40)])
    await env.until(lambda: (feed.fills >= 1))
    assert (await env.order(order["orderId"]))["executedQty"] == "0.005"
    assert (await env.health())["stream"]["reconnects"] >= 1


async def test_a_gap_in_the_versions_resyncs_from_one_snapshot(env: Env) -> None:
    await env.call("POST", "/api/v3/order", BUY)
    await env.streaming()
    feed = env.watcher.feeds[SYMBOL]
    depth_calls = sum(1 for s in env.fake.seen if s.path == "/api/v3/depth")
    env.fake.books[SYMBOL]["lastUpdateId"] += 5  # five updates the stream never delivered
    await env.fake_ws.push_depth(SYMBOL, asks=[("87001.00", "0.7")])
    await env.until(lambda: feed.book.resyncs >= 2 and feed.source == "stream")
    assert feed.book.gaps == 1
    assert sum(1 for s in env.fake.seen if s.path == "/api/v3/depth") == depth_calls + 1
    assert dict(feed.book.book(10).asks)[D("87001.00")] == D("0.7")
    assert feed.book.version == env.fake.books[SYMBOL]["lastUpdateId"]


async def test_the_stream_shows_in_metrics(env: Env) -> None:
    await env.call("POST", "/api/v3/order", BUY)
    await env.streaming()
    await env.fake_ws.push_deals(SYMBOL, [("87005", "0.001", BUY_TAKER, NOW + 1)])
    await env.until(lambda: env.watcher.feeds[SYMBOL].trades_in >= 1)
    text = await (await env.client.get("/metrics")).text()
    assert 'mexc_paper_stream_state{state="up"} 1.0' in text
    assert "mexc_paper_stream_connections 1.0" in text
    assert "mexc_paper_stream_subscriptions 2.0" in text
    assert "mexc_paper_stream_frames_in_total" in text
    assert 'mexc_paper_watched_symbols{source="stream"} 1.0' in text
    health = await env.health()
    assert health["status"] == "ok"
    assert health["stream"]["connections"] == 1 and health["stream"]["frames_in"] >= 1


async def test_a_recording_holds_the_stream_frames_beside_the_rest_answers(
    aiohttp_server: Any, aiohttp_client: Any, fake: FakeMexc, clock: FixedClock, tmp_path: Path
) -> None:
    import base64

    import yaml

    from proxy.config import UpstreamSettings
    from proxy.tape.tape import load_tape

    fake.set_book(SYMBOL, bids=[("87000.00", "0.004")], asks=[("87001.00", "1")])
    fake_ws = FakeMexcStream(fake, clock=clock.now_ms)
    rest = await aiohttp_server(fake.app())
    ws = await aiohttp_server(fake_ws.app())
    cassette = tmp_path / "rec.yaml"
    settings = make_settings(tmp_path, upstream=UpstreamSettings(
        base_url=str(rest.make_url("")).rstrip("/"), timeout_s=2, connect_timeout_s=1, market_cache_ms=0,
        ws_url=str(ws.make_url("/ws")).replace("http://", "ws://"), record_path=str(cassette),
    ))
    app = create_app(settings, clock=clock)
    env = Env(app, await aiohttp_client(app), clock, fake, fake_ws)
    await env.call("POST", "/api/v3/order", BUY)
    await env.streaming()
    feed = env.watcher.feeds[SYMBOL]
    deals = fake_ws.deals_frame(SYMBOL, [("87005", "0.001", BUY_TAKER, NOW + 1)])
    await fake_ws.push(f"spot@public.aggre.deals.v3.api.pb@100ms@{SYMBOL}", deals)
    await env.until(lambda: feed.trades_in >= 1)
    await app[keys.UPSTREAM].transport.flush()  # written in batches: what is buffered, now
    items = yaml.safe_load(cassette.read_text())["interactions"]
    rest_items = [it for it in items if "request" in it]
    stream_items = [it["stream"] for it in items if "stream" in it]
    assert rest_items and all(it["recorded_ms"] == NOW for it in rest_items)
    assert {it["request"]["uri"].split("?")[0].rsplit("/", 1)[-1] for it in rest_items} >= {"depth", "trades"}
    assert stream_items[-1] == {
        "channel": f"spot@public.aggre.deals.v3.api.pb@100ms@{SYMBOL}",
        "recorded_ms": NOW,
        "frame": base64.b64encode(deals).decode(),
    }
    # it replays on tape time: the REST answers, and the trade that was only on the stream
    tape = load_tape(cassette)
    assert tape.answer("GET", "/api/v3/exchangeInfo", f"symbol={SYMBOL}", tape.end_ms).status == 200
    assert [(t.price, t.time_ms) for st in tape.steps for t in st.trades if t.price == D("87005")] == [
        (D("87005"), NOW + 1)]


async def test_replay_never_connects_to_the_stream(
    aiohttp_client: Any, aiohttp_server: Any, clock: FixedClock, tmp_path: Path
) -> None:
    from conftest import ROOT

    from proxy.config import UpstreamSettings
    from proxy.tape.channels import TapeChannels

    fake_ws = FakeMexcStream()
    ws = await aiohttp_server(fake_ws.app())
    settings = make_settings(tmp_path, upstream=UpstreamSettings(
        replay_path=str(ROOT / "cassettes" / "demo.yaml"), market_cache_ms=0,
        ws_url=str(ws.make_url("/ws")).replace("http://", "ws://"),
    ))
    app = create_app(settings, clock=clock)
    client = await aiohttp_client(app)
    # the tape serves the public channels (its frames), never MEXC's stream
    assert app.get(keys.MARKET_STREAM) is None and isinstance(app.get(keys.PUBLIC_CHANNELS), TapeChannels)
    health = await (await client.get("/healthz")).json()
    assert health["stream"]["state"] == "disabled"
    assert fake_ws.connections_made == 0
