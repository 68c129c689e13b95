"""Replay on the tape's own clock (issue 18): step, speed and real-time modes against one
scripted cassette, the admin clock API, replay refusing what it did not record, and the
recorded demo on tape time.

cassettes/scripted_gap_down.yaml (t = ms after its start, 1767225600000):
    0      book  bids 87000.00 x 0.004, 86999.00 x 1.5, 86990.00 x 3 / asks 87001.00 ...
    1000   trade 87001.00 x 0.05 (buyer)
    2500   trade 87000.00 x 0.004 (seller) + book without the 87000 bid
    5000   trade 87001.00 x 0.1 (buyer)
    10000  trades 86999 x 1.5, 86990 x 3, 85260 x 0.7 (sellers) + book 85250 / 85300
    20000  trade 85300 x 0.2 (buyer)
    30000  trades 85300 x 0.4, 85320 x 0.5 (buyers) + book 85310 / 85320
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from conftest import KEY, NOW, ROOT, SECRET, make_settings
from mexc_client import ccxt_query

from proxy import keys
from proxy.app import create_app
from proxy.clock import FixedClock, SystemClock
from proxy.config import FeeOverride, PaperSettings, UpstreamSettings

D = Decimal
GAP = ROOT / "cassettes" / "scripted_gap_down.yaml"
QUEUE = ROOT / "cassettes" / "scripted_queue.yaml"
DEMO = ROOT / "cassettes" / "demo.yaml"
START = 1_767_225_600_000
JSON = {"Content-Type": "application/json"}


class Bot:
    def __init__(self, app: web.Application, client: TestClient, wall: Any) -> None:
        self.app, self.client, self.wall = app, client, wall

    async def call(
        self, method: str, path: str, params: dict[str, Any] | None = None, ok: bool = True
    ) -> Any:
        q = ccxt_query(params or {}, SECRET, ts=self.wall.now_ms())
        resp = await self.client.request(method, f"{path}?{q}", headers={"X-MEXC-APIKEY": KEY})
        data = await resp.json()
        if ok:
            assert resp.status == 200, data
        return data

    async def buy(self, price: str, qty: str = "0.01", symbol: str = "BTCUSDT") -> dict[str, Any]:
        return await self.call(
            "POST",
            "/api/v3/order",
            {"symbol": symbol, "side": "BUY", "type": "LIMIT", "quantity": qty, "price": price},
        )

    async def order(self, oid: str) -> dict[str, Any]:
        return await self.call("GET", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": oid})

    async def trades(self) -> list[dict[str, Any]]:
        return await self.call("GET", "/api/v3/myTrades", {"symbol": "BTCUSDT"})

    async def clock(self) -> dict[str, Any]:
        resp = await self.client.get("/admin/api/clock")
        assert resp.status == 200
        return await resp.json()

    async def advance(self, **body: int) -> dict[str, Any]:
        resp = await self.client.post("/admin/api/clock", json=body, headers=JSON)
        data = await resp.json()
        assert resp.status == 200, data
        return data


def tape_settings(tmp_path: Path, cassette: Path, mode: str = "step", speed: float = 1.0, **kw: Any) -> Any:
    paper = kw.pop(
        "paper", PaperSettings(poll_interval_s=3600, fees={"BTCUSDT": FeeOverride(maker=D("0.001"))})
    )
    return make_settings(
        tmp_path,
        upstream=UpstreamSettings(replay_path=str(cassette), replay_mode=mode, replay_speed=speed),
        paper=paper,
        **kw,
    )


async def start(aiohttp_client: Any, settings: Any, wall: Any = None) -> Bot:
    wall = wall or FixedClock(NOW)
    app = create_app(settings, clock=wall)
    client = await aiohttp_client(app)
    return Bot(app, client, wall)


# --------------------------------------------------------------------------- step mode


async def test_step_mode_fills_exactly_when_the_clock_passes_the_trade(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    bot = await start(aiohttp_client, tape_settings(tmp_path, GAP))
    state = await bot.clock()
    assert state == {
        "tape_ms": START,
        "mode": "step",
        "speed": None,
        "start_ms": START,
        "end_ms": START + 30_000,
        "next_ms": START + 1000,
        "ended": False,
        "cassette": "scripted_gap_down.yaml",
        "kind": "scripted",
    }
    oid = (await bot.buy("86995.00"))["orderId"]
    o = await bot.order(oid)
    assert (o["status"], o["time"]) == ("NEW", START)  # order times are tape time

    # the quiet part and up to one millisecond before the gap: nothing reaches 86995
    moved = await bot.advance(to_ms=START + 9999)
    assert moved["tape_ms"] == START + 9999 and moved["next_ms"] == START + 10_000
    assert moved["passed"] == {
        "from_ms": START,
        "to_ms": START + 9999,
        "steps": 3,
        "trades": 3,
        "books": 1,
        "frames": 0,
        "fills": 1 - 1,
    }
    assert (await bot.order(oid))["status"] == "NEW"

    # the gap: the sweep prints 86990 through the buy at 86995
    moved = await bot.advance(advance_ms=1)
    assert moved["passed"]["fills"] == 1 and moved["passed"]["trades"] == 3
    o = await bot.order(oid)
    assert (o["status"], o["executedQty"], o["updateTime"]) == ("FILLED", "0.01", START + 10_000)
    (fill,) = await bot.trades()
    assert (fill["price"], fill["qty"], fill["isMaker"], fill["time"]) == (
        "86995",
        "0.01",
        True,
        START + 10_000,
    )
    assert fill["commission"] == "0.86995"  # 0.1 % maker fee (paper.fees), in USDT


async def test_advance_says_what_it_passed_and_refuses_going_back(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    bot = await start(aiohttp_client, tape_settings(tmp_path, GAP))
    moved = await bot.advance(advance_ms=40_000)
    assert moved["passed"] == {
        "from_ms": START,
        "to_ms": START + 40_000,
        "steps": 6,
        "trades": 9,
        "books": 3,
        "frames": 0,
        "fills": 0,
    }
    assert (moved["tape_ms"], moved["next_ms"], moved["ended"]) == (START + 40_000, None, True)
    for body, status, words in [
        ({"to_ms": START}, 400, "never goes back"),
        ({"advance_ms": -1}, 400, "never goes back"),
        ({"advance_ms": 1.5}, 400, "must be an integer"),
        ({"advance_ms": True}, 400, "must be an integer"),
        ({"to_ms": 10**17}, 400, "year 9999"),
        ({"advance_ms": 1, "to_ms": 2}, 400, "expected"),
        ({}, 400, "expected"),
    ]:
        resp = await bot.client.post("/admin/api/clock", json=body, headers=JSON)
        data = await resp.json()
        assert resp.status == status and words in data["error"], (body, data)
    # the admin POST rules apply: JSON only
    resp = await bot.client.post(
        "/admin/api/clock", data=b'{"advance_ms": 1}', headers={"Content-Type": "text/plain"}
    )
    assert resp.status == 415
    assert (await bot.clock())["tape_ms"] == START + 40_000


async def test_the_clock_exists_only_in_replay(client: TestClient) -> None:
    resp = await client.get("/admin/api/clock")
    assert resp.status == 404
    assert "replay only" in (await resp.json())["error"]


# ------------------------------------------------------------------ speed and real time


async def _until_position(app: web.Application, t: int) -> None:
    feeder = app[keys.TAPE].feeder
    assert feeder is not None
    await asyncio.wait_for(feeder.wait_position(t), 30)


@pytest.mark.parametrize("mode,speed", [("speed", 40.0), ("real", 1.0)])
async def test_speed_and_real_time_fill_when_the_clock_passes_the_trade(
    aiohttp_client: Any, tmp_path: Path, mode: str, speed: float
) -> None:
    """The same tape on the wall clock: the fill's time is the trade's tape time, and the
    order is not filled before the clock has passed it. The real-time run uses the queue
    cassette's first trade at +1000 ms (a buy first in line at 87000.01 fills from it)."""
    cassette, price, trade_at = (GAP, "86995.00", 10_000) if mode == "speed" else (QUEUE, "87000.01", 1000)
    settings = tape_settings(
        tmp_path, cassette, mode=mode, speed=speed, paper=PaperSettings(poll_interval_s=3600)
    )
    bot = await start(aiohttp_client, settings, SystemClock())
    ack = await bot.buy(price)
    assert ack["transactTime"] < START + trade_at
    state = await bot.clock()
    assert state["mode"] == mode and state["speed"] == (speed if mode == "speed" else None)
    await _until_position(bot.app, START + trade_at)
    o = await bot.order(ack["orderId"])
    assert (o["status"], o["updateTime"]) == ("FILLED", START + trade_at)
    (fill,) = await bot.trades()
    assert fill["time"] == START + trade_at and fill["isMaker"] is True
    # a moved clock in these modes is the tape's own business
    resp = await bot.client.post("/admin/api/clock", json={"advance_ms": 1}, headers=JSON)
    assert resp.status == 409 and "--step" in (await resp.json())["error"]


# ------------------------------------------------------------------ scripted market shapes


async def test_a_queue_that_never_clears_and_a_thin_book(aiohttp_client: Any, tmp_path: Path) -> None:
    bot = await start(aiohttp_client, tape_settings(tmp_path, QUEUE))
    behind = (await bot.buy("87000.00"))["orderId"]
    first = (await bot.buy("87000.01"))["orderId"]
    market = await bot.call(
        "POST", "/api/v3/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.05"}
    )
    m = await bot.order(market["orderId"])
    assert (m["status"], m["executedQty"]) == ("PARTIALLY_CANCELED", "0.01")
    await bot.advance(to_ms=START + 9000)
    assert (await bot.order(behind))["status"] == "NEW"  # 5 BTC ahead, 0.9 traded
    o = await bot.order(first)
    assert (o["status"], o["updateTime"]) == ("FILLED", START + 1000)


async def test_the_scripted_rest_answers_follow_the_tape(aiohttp_client: Any, tmp_path: Path) -> None:
    bot = await start(aiohttp_client, tape_settings(tmp_path, GAP))
    depth = await (await bot.client.get("/api/v3/depth?symbol=BTCUSDT&limit=1")).json()
    assert depth == {
        "lastUpdateId": 1,
        "bids": [["87000.00", "0.004"]],
        "asks": [["87001.00", "0.8"]],
        "timestamp": START,
    }
    resp = await bot.client.get("/api/v3/ticker/price?symbol=BTCUSDT")
    assert resp.status == 400  # nothing printed yet at the tape's start
    await bot.advance(to_ms=START + 10_000)
    depth = await (await bot.client.get("/api/v3/depth?symbol=BTCUSDT&limit=1")).json()
    assert depth["bids"] == [["85250.00", "0.5"]] and depth["lastUpdateId"] == 3
    price = await (await bot.client.get("/api/v3/ticker/price?symbol=BTCUSDT")).json()
    assert price == {"symbol": "BTCUSDT", "price": "85260.00"}
    trades = await (await bot.client.get("/api/v3/trades?symbol=BTCUSDT&limit=2")).json()
    assert [(t["price"], t["time"]) for t in trades] == [
        ("85260.00", START + 10_000),
        ("86990.00", START + 10_000),
    ]
    info = await (await bot.client.get("/api/v3/exchangeInfo")).json()
    assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT"]


# --------------------------------------------------------------------------- not recorded


async def test_replay_refuses_what_it_did_not_record(aiohttp_client: Any, tmp_path: Path) -> None:
    """A symbol the demo never recorded gets MEXC's invalid-symbol error saying so, never
    another symbol's data; a request it holds no answer for says it was not recorded."""
    bot = await start(aiohttp_client, tape_settings(tmp_path, DEMO))
    resp = await bot.client.get("/api/v3/ticker/price?symbol=DOGEUSDT")
    assert resp.status == 400
    assert await resp.json() == {
        "code": -1121,
        "msg": "Invalid symbol.: DOGEUSDT is not in the cassette demo.yaml",
    }
    resp = await bot.client.get("/api/v3/depth?symbol=DOGEUSDT&limit=5")
    assert (resp.status, (await resp.json())["code"]) == (400, -1121)
    resp = await bot.client.get("/api/v3/klines?symbol=BTCUSDT&interval=1h")
    assert resp.status == 400
    assert await resp.json() == {
        "code": 400,
        "msg": "Not recorded: GET /api/v3/klines?symbol=BTCUSDT&interval=1h is not in the cassette demo.yaml",
    }
    order = await bot.call(
        "POST",
        "/api/v3/order",
        {"symbol": "DOGEUSDT", "side": "BUY", "type": "LIMIT", "quantity": "10", "price": "0.1"},
        ok=False,
    )
    assert order["code"] == -1121
    # what it did record still answers, per symbol from the all-symbols answers too
    resp = await bot.client.get("/api/v3/ticker/price?symbol=BTCUSDT")
    assert await resp.json() == {"price": "87878.42", "symbol": "BTCUSDT"}
    resp = await bot.client.get("/api/v3/ticker/24hr?symbol=AOUSDT")
    assert (await resp.json())["symbol"] == "AOUSDT"
    resp = await bot.client.get("/api/v3/depth?symbol=BTCUSDT&limit=2")
    assert len((await resp.json())["bids"]) == 2


async def test_the_demo_replays_on_tape_time(aiohttp_client: Any, tmp_path: Path) -> None:
    """The committed recording: the first book holds until the tape passes the second
    snapshot's time; a resting buy below the first book fills as maker right then."""
    bot = await start(
        aiohttp_client, tape_settings(tmp_path, DEMO, paper=PaperSettings(poll_interval_s=3600))
    )
    first_book = 1_767_205_854_814
    second_book = 1_767_209_913_314
    state = await bot.clock()
    assert (state["start_ms"], state["end_ms"], state["kind"]) == (
        1_767_205_820_300,
        1_767_211_404_648,
        "recorded",
    )
    oid = (await bot.buy("87700"))["orderId"]
    for _ in range(5):  # asking again and again does not move a recorded market
        depth = await (await bot.client.get("/api/v3/depth?symbol=BTCUSDT&limit=1")).json()
        assert depth["timestamp"] == first_book
    await bot.advance(to_ms=second_book - 1)
    assert (await bot.order(oid))["status"] == "NEW"
    moved = await bot.advance(to_ms=second_book)
    assert moved["passed"]["books"] == 1 and moved["passed"]["fills"] == 1
    o = await bot.order(oid)
    assert (o["status"], o["cummulativeQuoteQty"], o["updateTime"]) == ("FILLED", "877", second_book)


# --------------------------------------------------------------------------- frames


async def test_recorded_frames_go_out_at_their_tape_times(aiohttp_client: Any, tmp_path: Path) -> None:
    """The tape's PublicChannels (what /ws hands public subscriptions to in replay): a
    subscriber gets the frames recorded after the tape's position, byte for byte, as the
    clock passes each one; a channel the cassette has no frames for is refused."""
    import base64

    import yaml

    # channels the tape sends as recorded without reading them (deals and depth diffs are
    # also read for the engine, so they must be real frames)
    deals = "spot@public.aggre.bookTicker.v3.api.pb@100ms@BTCUSDT"
    depth = "spot@public.limit.depth.v3.api.pb@BTCUSDT@5"
    demo = yaml.safe_load(DEMO.read_text())
    items = [it for it in demo["interactions"] if "request" in it]
    t0 = 1_767_205_820_300
    for i, (channel, dt) in enumerate([(deals, 0), (deals, 5), (depth, 5), (deals, 7), (depth, 20)]):
        items.append(
            {
                "stream": {
                    "channel": channel,
                    "recorded_ms": t0 + dt,
                    "frame": base64.b64encode(f"frame-{i}".encode()).decode(),
                }
            }
        )
    cassette = tmp_path / "frames.yaml"
    cassette.write_text(yaml.safe_dump({"version": 1, "interactions": items}, width=1_000_000))
    bot = await start(
        aiohttp_client, tape_settings(tmp_path, cassette, paper=PaperSettings(poll_interval_s=3600))
    )
    channels = bot.app[keys.PUBLIC_CHANNELS]
    got: list[bytes] = []
    assert channels.is_public(deals) and not channels.is_public("spot@private.orders.v3.api.pb")
    assert await channels.subscribe(deals, got.append) is True
    assert await channels.subscribe(depth, got.append) is True
    assert await channels.subscribe("spot@public.aggre.deals.v3.api.pb@100ms@AOUSDT", got.append) is False
    moved = await bot.advance(advance_ms=5)
    assert got == [b"frame-1", b"frame-2"]  # frame-0 is at the start: before the subscription
    assert moved["passed"]["frames"] == 2
    channels.unsubscribe(depth, got.append)
    moved = await bot.advance(advance_ms=100)
    assert got == [b"frame-1", b"frame-2", b"frame-3"] and moved["passed"]["frames"] == 1


async def test_a_restart_resumes_the_tape_only_for_open_orders(aiohttp_client: Any, tmp_path: Path) -> None:
    settings = tape_settings(tmp_path, GAP)
    bot = await start(aiohttp_client, settings)
    oid = (await bot.buy("86000.00"))["orderId"]
    await bot.advance(to_ms=START + 2500)
    await bot.call(
        "POST", "/api/v3/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quoteOrderQty": "10"}
    )
    await bot.client.close()
    bot = await start(aiohttp_client, settings)  # the same database: one order still open
    assert (await bot.clock())["tape_ms"] == START + 2500
    await bot.call("DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": oid})
    await bot.client.close()
    bot = await start(aiohttp_client, settings)  # nothing open: the tape starts over
    assert (await bot.clock())["tape_ms"] == START
