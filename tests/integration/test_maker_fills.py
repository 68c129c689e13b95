"""Maker fills over HTTP (issue 6): a bot rests a LIMIT BUY, the local fake MEXC prints
trades at and through its price, and the bot sees what it would see on MEXC.

The market watcher runs as in production (its own task in the app's cleanup_ctx); the
tests never sleep: after each change to the fake market they wait for the watcher's next
completed polling cycle (`MarketWatcher.wait_cycles`, which pokes it).

Scripted market: bids 87000.00 x 0.004 / 86999.00 x 1, asks 87001.00 x 1; maker fee
0.1 % (a paper.fees override: BTCUSDT's recorded makerCommission is 0).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from conftest import KEY, NOW, ROOT, SECRET, make_settings
from fake_upstream import FakeMexc
from mexc_client import ccxt_query

from proxy import keys
from proxy.app import WATCHER, create_app
from proxy.clock import FixedClock
from proxy.config import FeeOverride, PaperSettings, Settings, UpstreamSettings
from proxy.engine.model import FillModel
from proxy.engine.state import check_invariants

D = Decimal
SYMBOL = "BTCUSDT"
BUY = {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "quantity": "0.01", "price": "87000"}
SELLER = True  # isBuyerMaker: the seller was the aggressor


class Bot:
    """A bot on the sidecar: signs like ccxt, reads what a bot reads."""

    def __init__(self, app: web.Application, client: TestClient, clock: FixedClock) -> None:
        self.app, self.client, self.clock = app, client, clock

    async def call(self, method: str, path: str, params: dict[str, Any] | None = None) -> Any:
        q = ccxt_query(params or {}, SECRET, ts=self.clock.now_ms())
        resp = await self.client.request(method, f"{path}?{q}", headers={"X-MEXC-APIKEY": KEY})
        data = await resp.json()
        assert resp.status == 200, data
        return data

    async def order(self, order_id: str) -> dict[str, Any]:
        return await self.call("GET", "/api/v3/order", {"symbol": SYMBOL, "orderId": order_id})

    async def trades(self) -> list[dict[str, Any]]:
        return await self.call("GET", "/api/v3/myTrades", {"symbol": SYMBOL})

    async def balances(self) -> dict[str, tuple[str, str]]:
        data = await self.call("GET", "/api/v3/account")
        return {b["asset"]: (b["free"], b["locked"]) for b in data["balances"]}

    async def market_seen(self) -> None:
        """The watcher has polled the fake market as it is now and fed the engine."""
        await self.app[WATCHER].wait_cycles(1)
        check_invariants(self.app[keys.SERVICE].state)


def settings_for(tmp_path: Path, server: Any) -> Settings:
    return make_settings(
        tmp_path,
        str(server.make_url("")).rstrip("/"),
        paper=PaperSettings(poll_interval_s=3600, fees={SYMBOL: FeeOverride(maker=D("0.001"))}),
    )


def script_market(fake: FakeMexc) -> None:
    fake.set_book(SYMBOL, bids=[("87000.00", "0.004"), ("86999.00", "1")], asks=[("87001.00", "1")])


async def start(aiohttp_client: Any, settings: Settings, clock: FixedClock) -> Bot:
    app = create_app(settings, clock=clock)
    client = await aiohttp_client(app)
    return Bot(app, client, clock)


def depth_and_trade_polls(fake: FakeMexc) -> int:
    return sum(1 for s in fake.seen if s.path in ("/api/v3/depth", "/api/v3/trades"))


async def test_a_bot_polling_its_resting_buy_sees_new_partially_filled_filled(
    aiohttp_client: Any, aiohttp_server: Any, tmp_path: Path
) -> None:
    clock = FixedClock(NOW)
    fake = FakeMexc(clock.now_ms)
    script_market(fake)
    server = await aiohttp_server(fake.app())
    bot = await start(aiohttp_client, settings_for(tmp_path, server), clock)

    ack = await bot.call("POST", "/api/v3/order", BUY)
    oid = ack["orderId"]
    # reserved: 0.01 x 87000 = 870 plus the maker fee 0.87
    assert await bot.balances() == {"USDT": ("9129.13", "870.87"), "BTC": ("1", "0")}
    await bot.market_seen()  # the tape as it was when the order rested: a baseline only
    seen = [await bot.order(oid)]

    # a seller takes 0.006 at 87000: 0.004 was ahead of us, 0.002 fills
    fake.print_trade(SYMBOL, "87000", "0.006", SELLER, NOW + 1_000)
    await bot.market_seen()
    seen.append(await bot.order(oid))
    assert await bot.balances() == {"USDT": ("9129.13", "696.696"), "BTC": ("1.002", "0")}

    # a seller prints 0.003 through our bid: 0.003 more, at our price
    fake.print_trade(SYMBOL, "86999.5", "0.003", SELLER, NOW + 2_000)
    await bot.market_seen()
    seen.append(await bot.order(oid))
    assert await bot.balances() == {"USDT": ("9129.13", "435.435"), "BTC": ("1.005", "0")}

    # a big print through: the remaining 0.005, never more
    fake.print_trade(SYMBOL, "86990", "1", SELLER, NOW + 3_000)
    await bot.market_seen()
    seen.append(await bot.order(oid))

    assert [(o["status"], o["executedQty"], o["cummulativeQuoteQty"]) for o in seen] == [
        ("NEW", "0", "0"),
        ("PARTIALLY_FILLED", "0.002", "174"),  # 0.002 x 87000
        ("PARTIALLY_FILLED", "0.005", "435"),  # + 0.003 x 87000
        ("FILLED", "0.01", "870"),
    ]
    assert {(o["origQty"], o["price"], o["side"], o["type"]) for o in seen} == {
        ("0.01", "87000", "BUY", "LIMIT")}

    trades = await bot.trades()
    assert [(t["price"], t["qty"], t["quoteQty"], t["commission"], t["commissionAsset"]) for t in trades] == [
        ("87000", "0.002", "174", "0.174", "USDT"),
        ("87000", "0.003", "261", "0.261", "USDT"),
        ("87000", "0.005", "435", "0.435", "USDT"),
    ]
    assert all(t["isMaker"] is True and t["isBuyer"] is True and t["orderId"] == oid for t in trades)
    assert len({t["id"] for t in trades}) == 3

    # 10000 - 870 - 0.87 fees; nothing left locked
    assert await bot.balances() == {"USDT": ("9129.13", "0"), "BTC": ("1.01", "0")}
    assert await bot.call("GET", "/api/v3/openOrders", {"symbol": SYMBOL}) == []


async def test_a_print_at_the_price_smaller_than_the_queue_fills_nothing(
    aiohttp_client: Any, aiohttp_server: Any, tmp_path: Path
) -> None:
    clock = FixedClock(NOW)
    fake = FakeMexc(clock.now_ms)
    script_market(fake)
    server = await aiohttp_server(fake.app())
    bot = await start(aiohttp_client, settings_for(tmp_path, server), clock)
    oid = (await bot.call("POST", "/api/v3/order", BUY))["orderId"]
    await bot.market_seen()
    fake.print_trade(SYMBOL, "87000", "0.003", SELLER, NOW + 1_000)  # 0.004 is ahead of us
    fake.print_trade(SYMBOL, "87000", "0.5", not SELLER, NOW + 1_001)  # a buyer: not our side
    await bot.market_seen()
    o = await bot.order(oid)
    assert (o["status"], o["executedQty"]) == ("NEW", "0")
    fake.print_trade(SYMBOL, "87000", "0.002", SELLER, NOW + 2_000)  # 0.001 ahead, 0.001 ours
    await bot.market_seen()
    o = await bot.order(oid)
    assert (o["status"], o["executedQty"], o["cummulativeQuoteQty"]) == ("PARTIALLY_FILLED", "0.001", "87")


async def test_after_a_restart_the_order_resumes_from_the_current_market(
    aiohttp_client: Any, aiohttp_server: Any, tmp_path: Path
) -> None:
    clock = FixedClock(NOW)
    fake = FakeMexc(clock.now_ms)
    script_market(fake)
    server = await aiohttp_server(fake.app())
    settings = settings_for(tmp_path, server)
    bot = await start(aiohttp_client, settings, clock)
    oid = (await bot.call("POST", "/api/v3/order", BUY))["orderId"]
    await bot.market_seen()
    fake.print_trade(SYMBOL, "87000", "0.006", SELLER, NOW + 1_000)  # 0.004 ahead, 0.002 ours
    await bot.market_seen()
    assert (await bot.order(oid))["executedQty"] == "0.002"
    await bot.client.close()  # the sidecar stops (cleanup_ctx: watcher, store)

    # while it is down a seller sweeps through our bid: this is never replayed
    fake.print_trade(SYMBOL, "86990", "1", SELLER, NOW + 2_000)
    clock.advance(60_000)
    bot = await start(aiohttp_client, settings, clock)
    o = await bot.order(oid)
    assert (o["status"], o["executedQty"], o["cummulativeQuoteQty"]) == ("PARTIALLY_FILLED", "0.002", "174")
    assert [x["orderId"] for x in await bot.call("GET", "/api/v3/openOrders", {"symbol": SYMBOL})] == [oid]
    await bot.market_seen()
    await bot.market_seen()
    assert (await bot.order(oid))["executedQty"] == "0.002"
    assert len(await bot.trades()) == 1
    assert await bot.balances() == {"USDT": ("9129.13", "696.696"), "BTC": ("1.002", "0")}

    # the market after the restart does fill it; the queue ahead (used up) was kept
    fake.print_trade(SYMBOL, "87000", "0.003", SELLER, NOW + 61_000)
    await bot.market_seen()
    o = await bot.order(oid)
    assert (o["status"], o["executedQty"], o["cummulativeQuoteQty"]) == ("PARTIALLY_FILLED", "0.005", "435")
    trades = await bot.trades()
    assert [(t["qty"], t["price"], t["commission"], t["isMaker"]) for t in trades] == [
        ("0.002", "87000", "0.174", True), ("0.003", "87000", "0.261", True)]
    assert await bot.balances() == {"USDT": ("9129.13", "435.435"), "BTC": ("1.005", "0")}


async def test_the_watcher_polls_while_an_order_rests_and_stops_when_none_does(
    aiohttp_client: Any, aiohttp_server: Any, tmp_path: Path
) -> None:
    clock = FixedClock(NOW)
    fake = FakeMexc(clock.now_ms)
    script_market(fake)
    server = await aiohttp_server(fake.app())
    bot = await start(aiohttp_client, settings_for(tmp_path, server), clock)
    await bot.market_seen()
    assert depth_and_trade_polls(fake) == 0  # nothing rests: nothing to watch

    oid = (await bot.call("POST", "/api/v3/order", BUY))["orderId"]
    await bot.market_seen()  # (the new resting symbol pokes a cycle at once: let it end)
    before = depth_and_trade_polls(fake)
    await bot.market_seen()
    await bot.market_seen()
    assert depth_and_trade_polls(fake) - before == 4  # depth and trades, each cycle

    await bot.call("DELETE", "/api/v3/order", {"symbol": SYMBOL, "orderId": oid})
    polls = depth_and_trade_polls(fake)
    await bot.market_seen()
    await bot.market_seen()
    assert depth_and_trade_polls(fake) == polls
    assert SYMBOL not in bot.app[WATCHER].watches


async def test_trades_between_the_order_and_the_first_poll_of_its_symbol_count(
    aiohttp_client: Any, aiohttp_server: Any, tmp_path: Path
) -> None:
    """Nobody watched BTCUSDT before this order: the first page the watcher gets is not
    a mere baseline. What printed after the order arrived fills it; what printed before
    (the recorded tape, and a sweep 1 ms before the order) does not."""
    clock = FixedClock(NOW)
    fake = FakeMexc(clock.now_ms)
    script_market(fake)
    server = await aiohttp_server(fake.app())
    bot = await start(aiohttp_client, settings_for(tmp_path, server), clock)
    clock.advance(10)
    fake.print_trade(SYMBOL, "86990", "1", SELLER, NOW + 9)  # through our bid, before it rested
    oid = (await bot.call("POST", "/api/v3/order", BUY))["orderId"]
    fake.print_trade(SYMBOL, "86995", "0.003", SELLER, NOW + 20)  # through our bid, after

    await bot.market_seen()  # the first poll of BTCUSDT

    o = await bot.order(oid)
    # 0.003 x 87000 = 261, maker fee 0.261
    assert (o["status"], o["executedQty"], o["cummulativeQuoteQty"]) == ("PARTIALLY_FILLED", "0.003", "261")
    assert [(t["qty"], t["price"], t["commission"], t["isMaker"]) for t in await bot.trades()] == [
        ("0.003", "87000", "0.261", True)]
    # 870.87 reserved; 261.261 of it spent; 0.007 x 87000 x 1.001 = 609.609 still locked
    assert await bot.balances() == {"USDT": ("9129.13", "609.609"), "BTC": ("1.003", "0")}


async def test_replayed_trades_fill_resting_orders_though_their_times_are_old(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    """Offline on the committed recording (2025-12-31) with today's clock signing the
    requests: the market runs on the tape's clock, so the recorded trades after the order
    fill it. `touch` makes every fill come from a trade: the second recorded page prints
    down to 87539, through the buy at 87800."""
    settings = make_settings(
        tmp_path,
        upstream=UpstreamSettings(replay_path=str(ROOT / "cassettes" / "demo.yaml"), replay_mode="step"),
        paper=PaperSettings(poll_interval_s=3600, fill_model=FillModel.TOUCH),
    )
    app = create_app(settings)  # the system clock: a year after the recording
    client = await aiohttp_client(app)
    bot = Bot(app, client, app[keys.WALL_CLOCK])
    oid = (await bot.call("POST", "/api/v3/order", dict(BUY, price="87800")))["orderId"]
    tape = app[keys.TAPE]
    assert tape.tape is not None
    await tape.move({"to_ms": tape.tape.end_ms})

    o = await bot.order(oid)
    assert (o["status"], o["executedQty"], o["cummulativeQuoteQty"]) == ("FILLED", "0.01", "878")
    fills = await app[keys.STORE].fills(1, SYMBOL, oid, None, None, 10)
    assert [(f.price, f.qty, f.is_maker, f.reason["source"]) for f in fills] == [
        (D("87800"), D("0.01"), True, "trade")]
    assert D(fills[0].reason["trade"]["price"]) < D("87800")
