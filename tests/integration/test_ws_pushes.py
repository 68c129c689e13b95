"""What a user stream pushes while a bot trades over REST, decoded with ccxt's bundled MEXC
classes and checked against what REST reports for the same orders, trades and balances:
orders placed (single and batch), taker fills, maker fills from the fake tape, cancels,
cancel-all, a reset; nothing for a write that failed; nothing of another account's.

Scripted market (as test_maker_fills.py): bids 87000.00 x 0.004 / 86999.00 x 1, asks
87001.00 x 1; maker fee 0.1 %, taker 0.05 % (the recorded takerCommission).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import KEY2, NOW, SECRET2, make_settings
from fake_upstream import FakeMexc
from ws_support import ACCOUNT, DEALS, ORDERS, PRIVATE, Bot, Stream

from proxy import keys
from proxy.app import WATCHER, create_app
from proxy.clock import FixedClock
from proxy.config import FeeOverride, PaperSettings

D = Decimal
SYMBOL = "BTCUSDT"
SELLER = True  # isBuyerMaker: the seller was the aggressor
STATUS = {"NEW": 1, "FILLED": 2, "PARTIALLY_FILLED": 3, "CANCELED": 4, "PARTIALLY_CANCELED": 5}


@pytest.fixture
def market(clock: FixedClock) -> FakeMexc:
    fake = FakeMexc(clock.now_ms)
    fake.set_book(SYMBOL, bids=[("87000.00", "0.004"), ("86999.00", "1")], asks=[("87001.00", "1")])
    return fake


async def start(aiohttp_client: Any, aiohttp_server: Any, market: FakeMexc, tmp_path: Path,
                clock: FixedClock, **kw: Any) -> Bot:
    server = await aiohttp_server(market.app())
    settings = make_settings(
        tmp_path, str(server.make_url("")).rstrip("/"),
        paper=PaperSettings(poll_interval_s=3600, fees={SYMBOL: FeeOverride(maker=D("0.001"))}), **kw,
    )
    return Bot(await aiohttp_client(create_app(settings, clock=clock)), clock)


async def subscribed(bot: Bot, channels: list[str] = PRIVATE) -> Stream:
    stream = await Stream.open(bot.client, await bot.listen_key())
    assert (await stream.subscribe(channels))["msg"] == ",".join(channels)
    return stream


def kinds(pushes: list[dict[str, Any]]) -> list[str]:
    return [p["channel"] for p in pushes]


async def assert_matches_rest(bot: Bot, pushed: dict[str, Any]) -> None:
    """An orders push against GET /api/v3/order of the same order at that moment."""
    o = pushed["privateOrders"]
    rest = await bot.call("GET", "/api/v3/order", {"symbol": SYMBOL, "orderId": o["id"]})
    assert pushed["symbol"] == rest["symbol"]
    assert (o["id"], o.get("clientId"), o["price"], o["quantity"], o["status"], o["createTime"],
            o["cumulativeQuantity"], o["cumulativeAmount"], o["tradeType"]) == (
        rest["orderId"], rest["clientOrderId"], rest["price"], rest["origQty"], STATUS[rest["status"]],
        str(rest["time"]), rest["executedQty"], rest["cummulativeQuoteQty"],
        1 if rest["side"] == "BUY" else 2,
    )


async def assert_balance_is_rest(bot: Bot, pushed: dict[str, Any]) -> None:
    a = pushed["privateAccount"]
    data = await bot.call("GET", "/api/v3/account")
    rest = {b["asset"]: (b["free"], b["locked"]) for b in data["balances"]}
    assert (a["balanceAmount"], a["frozenAmount"]) == rest.get(a["vcoinName"], ("0", "0"))


async def test_a_limit_order_and_its_cancel(
    aiohttp_client: Any, aiohttp_server: Any, market: FakeMexc, tmp_path: Path, clock: FixedClock
) -> None:
    bot = await start(aiohttp_client, aiohttp_server, market, tmp_path, clock)
    stream = await subscribed(bot)
    ack = await bot.call("POST", "/api/v3/order", {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT",
                                                   "quantity": "0.01", "price": "86000",
                                                   "newClientOrderId": "bot-1"})
    new, account = await stream.pushes(2)
    assert kinds([new, account]) == [ORDERS, ACCOUNT]
    assert new["privateOrders"]["id"] == ack["orderId"] and new["privateOrders"]["clientId"] == "bot-1"
    await assert_matches_rest(bot, new)
    # 0.01 x 86000 = 860 reserved, plus the maker fee 0.86
    assert account["privateAccount"] | {"coinId": "-", "time": "-"} == {
        "vcoinName": "USDT", "coinId": "-", "balanceAmount": "9139.14", "balanceAmountChange": "-860.86",
        "frozenAmount": "860.86", "frozenAmountChange": "860.86", "type": "ENTRUST_PLACE", "time": "-"}
    await assert_balance_is_rest(bot, account)

    await bot.call("DELETE", "/api/v3/order", {"symbol": SYMBOL, "orderId": ack["orderId"]})
    canceled, released = await stream.pushes(2)
    assert canceled["privateOrders"]["status"] == 4
    await assert_matches_rest(bot, canceled)
    assert (released["privateAccount"]["type"], released["privateAccount"]["frozenAmount"]) == (
        "ENTRUST_CANCEL", "0")
    await assert_balance_is_rest(bot, released)


async def test_a_taker_order_pushes_each_fill_as_my_trades_reports_it(
    aiohttp_client: Any, aiohttp_server: Any, market: FakeMexc, tmp_path: Path, clock: FixedClock
) -> None:
    market.set_book(SYMBOL, bids=[("87000.00", "1")], asks=[("87001.00", "0.002"), ("87002.00", "1")])
    bot = await start(aiohttp_client, aiohttp_server, market, tmp_path, clock)
    stream = await subscribed(bot)
    ack = await bot.call("POST", "/api/v3/order", {"symbol": SYMBOL, "side": "BUY", "type": "MARKET",
                                                   "quantity": "0.005"})
    pushes = await stream.pushes(7)
    assert kinds(pushes) == [ORDERS, DEALS, ORDERS, DEALS, ORDERS, ACCOUNT, ACCOUNT]
    assert [p["privateOrders"]["status"] for p in pushes if p["channel"] == ORDERS] == [1, 3, 2]
    await assert_matches_rest(bot, pushes[4])
    trades = await bot.call("GET", "/api/v3/myTrades", {"symbol": SYMBOL})
    deals = [p["privateDeals"] for p in pushes if p["channel"] == DEALS]
    assert [(d["tradeId"], d["orderId"], d["price"], d["quantity"], d["amount"], d["feeAmount"],
             d["feeCurrency"], d["time"], d["tradeType"]) for d in deals] == [
        (t["id"], t["orderId"], t["price"], t["qty"], t["quoteQty"], t["commission"], t["commissionAsset"],
         str(t["time"]), 1) for t in trades]
    assert {d["orderId"] for d in deals} == {ack["orderId"]}
    for account in pushes[5:]:
        await assert_balance_is_rest(bot, account)


async def test_batch_orders_and_cancel_all(
    aiohttp_client: Any, aiohttp_server: Any, market: FakeMexc, tmp_path: Path, clock: FixedClock
) -> None:
    import json

    bot = await start(aiohttp_client, aiohttp_server, market, tmp_path, clock)
    stream = await subscribed(bot, [ORDERS])
    batch = [{"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": p}
             for p in ("85000", "85001", "85002")]
    acks = await bot.call("POST", "/api/v3/batchOrders", {"batchOrders": json.dumps(batch)})
    news = await stream.pushes(3)
    assert [p["privateOrders"]["id"] for p in news] == [a["orderId"] for a in acks]
    assert {p["privateOrders"]["status"] for p in news} == {1}
    await bot.call("DELETE", "/api/v3/openOrders", {"symbol": SYMBOL})
    canceled = await stream.pushes(3)
    assert [p["privateOrders"]["id"] for p in canceled] == [a["orderId"] for a in acks]
    for p in canceled:
        await assert_matches_rest(bot, p)
    # DELETE /api/v3/order/all too
    ack = await bot.call("POST", "/api/v3/order", {"symbol": SYMBOL, "side": "SELL", "type": "LIMIT",
                                                   "quantity": "0.001", "price": "90000"})
    await stream.push()
    await bot.call("DELETE", "/api/v3/order/all")
    pushed = await stream.push()
    assert (pushed["privateOrders"]["id"], pushed["privateOrders"]["status"]) == (ack["orderId"], 4)


async def test_maker_fills_from_the_tape(
    aiohttp_client: Any, aiohttp_server: Any, market: FakeMexc, tmp_path: Path, clock: FixedClock
) -> None:
    bot = await start(aiohttp_client, aiohttp_server, market, tmp_path, clock)
    watcher = bot.client.app[WATCHER]
    stream = await subscribed(bot)
    ack = await bot.call("POST", "/api/v3/order", {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT",
                                                   "quantity": "0.01", "price": "87000"})
    await stream.pushes(2)  # NEW, ENTRUST_PLACE
    await watcher.wait_cycles(1)  # the tape as the order rested: a baseline
    market.print_trade(SYMBOL, "87000", "0.006", SELLER, NOW + 1_000)  # 0.004 ahead, 0.002 ours
    await watcher.wait_cycles(1)
    deal, order, usdt, btc = await stream.pushes(4)
    assert kinds([deal, order, usdt, btc]) == [DEALS, ORDERS, ACCOUNT, ACCOUNT]
    d = deal["privateDeals"]
    assert (d["price"], d["quantity"], d["amount"], d["feeAmount"], d["isMaker"]) == (
        "87000", "0.002", "174", "0.174", True)
    o = order["privateOrders"]
    assert (o["status"], o["lastDealQuantity"], o["cumulativeQuantity"], o["avgPrice"]) == (
        3, "0.002", "0.002", "87000")
    await assert_matches_rest(bot, order)
    assert [a["privateAccount"]["type"] for a in (usdt, btc)] == ["ENTRUST", "ENTRUST"]
    for a in (usdt, btc):
        await assert_balance_is_rest(bot, a)

    market.print_trade(SYMBOL, "86990", "1", SELLER, NOW + 2_000)  # through: the rest, 0.008
    await watcher.wait_cycles(1)
    deal, order = await stream.pushes(2)
    assert (deal["privateDeals"]["quantity"], order["privateOrders"]["status"]) == ("0.008", 2)
    assert order["privateOrders"]["id"] == ack["orderId"]
    await assert_matches_rest(bot, order)


async def test_a_reset_pushes_the_cancels_and_the_restored_balances(
    aiohttp_client: Any, aiohttp_server: Any, market: FakeMexc, tmp_path: Path, clock: FixedClock
) -> None:
    bot = await start(aiohttp_client, aiohttp_server, market, tmp_path, clock)
    stream = await subscribed(bot)
    ack = await bot.call("POST", "/api/v3/order", {"symbol": SYMBOL, "side": "SELL", "type": "LIMIT",
                                                   "quantity": "0.5", "price": "90000"})
    await stream.pushes(2)
    resp = await bot.client.post("/admin/api/accounts/1/reset", json={})
    assert resp.status == 200, await resp.text()
    canceled, btc = await stream.pushes(2)
    assert (canceled["privateOrders"]["id"], canceled["privateOrders"]["status"]) == (ack["orderId"], 4)
    assert btc["privateAccount"] | {"coinId": "-", "time": "-"} == {
        "vcoinName": "BTC", "coinId": "-", "balanceAmount": "1", "balanceAmountChange": "0.5",
        "frozenAmount": "0", "frozenAmountChange": "-0.5", "type": "DEPOSIT", "time": "-"}


async def test_a_stream_carries_only_its_own_accounts_changes(
    aiohttp_client: Any, aiohttp_server: Any, market: FakeMexc, tmp_path: Path, clock: FixedClock
) -> None:
    bot = await start(aiohttp_client, aiohttp_server, market, tmp_path, clock)
    other = Bot(bot.client, clock, KEY2, SECRET2)
    mine = await subscribed(bot)
    theirs = await Stream.open(bot.client, await other.listen_key())
    assert (await theirs.subscribe(PRIVATE))["code"] == 0
    await bot.call("POST", "/api/v3/order", {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT",
                                             "quantity": "0.001", "price": "80000"})
    await mine.pushes(2)
    ack = await other.call("POST", "/api/v3/order", {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT",
                                                     "quantity": "0.001", "price": "80000"})
    # the other account's first push is its own order: nothing of account 1 came before it
    first = await theirs.push()
    assert first["privateOrders"]["id"] == ack["orderId"]
    assert (await theirs.push())["privateAccount"]["balanceAmount"] == "419.92"  # 500 - 80.08
    await mine.send({"method": "PING"})
    assert (await mine.text())["msg"] == "PONG"  # and account 2's order never reached account 1


async def test_a_write_that_failed_is_never_pushed(
    aiohttp_client: Any, aiohttp_server: Any, market: FakeMexc, tmp_path: Path, clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bot = await start(aiohttp_client, aiohttp_server, market, tmp_path, clock, reraise_unexpected=False)
    stream = await subscribed(bot, [ORDERS])
    store, service = bot.client.app[keys.STORE], bot.client.app[keys.SERVICE]
    execute = store._execute

    def disk_full(statements: Any) -> None:
        raise OSError("disk full")

    order = {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "80000"}
    monkeypatch.setattr(store, "_execute", disk_full)
    status, _ = await bot.request("POST", "/api/v3/order", order)
    assert status == 500
    monkeypatch.setattr(store, "_execute", execute)
    await service._reloading
    ack = await bot.call("POST", "/api/v3/order", order)
    assert (await stream.push())["privateOrders"]["id"] == ack["orderId"]  # the first push


async def test_the_dashboard_lists_each_accounts_connected_streams(
    aiohttp_client: Any, aiohttp_server: Any, market: FakeMexc, tmp_path: Path, clock: FixedClock
) -> None:
    bot = await start(aiohttp_client, aiohttp_server, market, tmp_path, clock)
    key = await bot.listen_key()
    stream = await Stream.open(bot.client, key)
    assert (await stream.subscribe([ORDERS, DEALS]))["code"] == 0
    html = await (await bot.client.get("/dashboard/?account=1")).text()
    section = html.split('data-section="streams"', 1)[1].split("</section>", 1)[0]
    assert "1 connected, 1 valid listenKey" in section
    assert f"{key[:4]}...{key[-4:]}" in section and key not in html
    assert "deals, orders" in section
    state = await (await bot.client.get("/dashboard/api/state?account=2")).json()
    assert "0 connected, 0 valid listenKeys" in state["html"]["streams"]
