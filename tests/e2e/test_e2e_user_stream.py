"""The user-data stream with unmodified clients, repointed only by the README's recipes:
ccxt.pro 4.5.90 (`watch_orders`, `watch_my_trades`, `watch_balance`) and pymexc 1.3.0's
`spot.WebSocket` (`account_orders`, `account_deals`, `account_update`). Orders are placed
over REST, partially filled and filled by the fake tape, and cancelled; what the clients
parse from the pushes is checked to the last decimal against what REST reports.

Market: the recorded BTCUSDT book (best bid 87900.00 x 0.05661525, best ask 87903.98),
maker fee 0, taker fee 0.0005 in USDT; the demo account starts with 10000 USDT and 1 BTC.
"""

from __future__ import annotations

import asyncio
import copy
import queue
import time
from collections.abc import Callable
from typing import Any

import pytest

from proxy import keys

from .bot_recipes import ccxt_pro, pymexc_sync, pymexc_websocket
from .e2e_harness import KEY, SECRET, Market, Sidecar

BTC = "BTC/USDT"
WAIT_S = 10  # an upper bound for something that must happen, never a pacing delay


class Watch:
    """Runs one ccxt.pro watch_* call in a loop and keeps everything it returned."""

    def __init__(self, watch: Callable[[], Any]) -> None:
        self.items: list[Any] = []
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._run(watch))

    async def _run(self, watch: Callable[[], Any]) -> None:
        while True:
            got = await watch()
            # watch_balance returns the same dict, updated: keep a snapshot of each
            self.items.extend(got if isinstance(got, list) else [copy.deepcopy(got)])
            self._changed.set()

    async def until(self, check: Callable[[list[Any]], Any]) -> Any:
        deadline = time.monotonic() + WAIT_S
        while not (found := check(self.items)):
            if self._task.done():
                self._task.result()  # the watcher failed: raise its error
            self._changed.clear()
            await asyncio.wait_for(self._changed.wait(), max(0.01, deadline - time.monotonic()))
        return found

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def private_subscriptions(sidecar: Sidecar) -> int:
    async def read() -> int:
        assert sidecar.app is not None
        return sidecar.app[keys.USER_STREAMS].subscriptions["private"]

    return int(sidecar.run(read()))


async def until_subscribed(sidecar: Sidecar, n: int) -> None:
    """The clients subscribe in their own time (ccxt does not wait for MEXC's ack):
    wait until the sidecar holds `n` private subscriptions."""
    deadline = time.monotonic() + WAIT_S
    while private_subscriptions(sidecar) < n:
        assert time.monotonic() < deadline, "the client never subscribed"
        await asyncio.sleep(0.02)


def order_of(order_id: str, status: str) -> Callable[[list[Any]], Any]:
    def check(items: list[Any]) -> Any:
        return next((o for o in reversed(items) if o["id"] == order_id and o["status"] == status), None)

    return check


async def test_ccxt_pro_sees_its_orders_fills_and_balances_as_rest_reports_them(
    polling_sidecar: Sidecar, market: Market
) -> None:
    sidecar = polling_sidecar
    ex = ccxt_pro(sidecar.url, KEY, SECRET)
    watches: list[Watch] = []
    try:
        await ex.load_markets()
        orders = Watch(lambda: ex.watch_orders(BTC))
        trades = Watch(lambda: ex.watch_my_trades(BTC))
        balance = Watch(lambda: ex.watch_balance())
        watches = [orders, trades, balance]
        await until_subscribed(sidecar, 3)

        # a resting buy: open, its reservation in the balance
        buy = await ex.create_order(BTC, "limit", "buy", 0.002, 87900, {"clientOrderId": "pro-1"})
        o = await orders.until(order_of(buy["id"], "open"))
        assert (o["clientOrderId"], o["side"], o["type"], o["price"], o["amount"], o["filled"],
                o["remaining"]) == ("pro-1", "buy", "limit", 87900.0, 0.002, 0.0, 0.002)
        b = await balance.until(lambda items: items and items[-1]["USDT"]["used"] == 175.8 and items[-1])
        rest = await ex.fetch_balance()
        assert (b["USDT"]["free"], b["USDT"]["used"]) == (rest["USDT"]["free"], rest["USDT"]["used"])
        assert b["info"]["balanceAmount"] == "9824.2"  # 10000 - 0.002 x 87900, maker fee 0

        # the tape fills half, then the rest
        sidecar.watcher_cycles(2)  # the watcher has read the tape as it was when the order rested
        now = int(time.time() * 1000)
        market.print_trade("87899", "0.001", True, now)  # a seller through our bid: 0.001 of ours
        o = await orders.until(lambda items: next(
            (x for x in items if x["id"] == buy["id"] and x["filled"] == 0.001), None))
        assert (o["status"], o["remaining"], o["average"]) == ("open", 0.001, 87900.0)
        market.print_trade("87899", "1", True, now + 1)
        o = await orders.until(order_of(buy["id"], "closed"))
        assert (o["filled"], o["remaining"]) == (0.002, 0.0)

        got = await trades.until(lambda items: len(items) >= 2 and items)
        rest_trades = await ex.fetch_my_trades(BTC)
        assert [(t["id"], t["order"], t["side"], t["price"], t["amount"], t["cost"], t["fee"]["cost"],
                 t["fee"]["currency"], t["timestamp"]) for t in got] == [
            (t["id"], t["order"], t["side"], t["price"], t["amount"], t["cost"], t["fee"]["cost"],
             t["fee"]["currency"], t["timestamp"]) for t in rest_trades]
        for pushed, t in zip(got, rest_trades, strict=True):  # the exact decimal strings
            p, r = pushed["info"], t["info"]
            assert (p["tradeId"], p["orderId"], p["price"], p["quantity"], p["amount"], p["feeAmount"],
                    p["feeCurrency"], p["clientOrderId"]) == (
                r["id"], r["orderId"], r["price"], r["qty"], r["quoteQty"], r["commission"],
                r["commissionAsset"], r["clientOrderId"])
        rest_order = await ex.fetch_order(buy["id"], BTC)
        assert (o["info"]["cumulativeQuantity"], o["info"]["cumulativeAmount"]) == (
            rest_order["info"]["executedQty"], rest_order["info"]["cummulativeQuoteQty"])
        b = await balance.until(lambda items: items and items[-1]["BTC"]["free"] == 1.002 and items[-1])
        rest = await ex.fetch_balance()
        for asset in ("USDT", "BTC"):
            assert (b[asset]["free"], b[asset]["used"]) == (rest[asset]["free"], rest[asset]["used"])

        # placed and cancelled
        sell = await ex.create_order(BTC, "limit", "sell", 0.5, 95000)
        await orders.until(order_of(sell["id"], "open"))
        await ex.cancel_order(sell["id"], BTC)
        o = await orders.until(order_of(sell["id"], "canceled"))
        assert (o["amount"], o["filled"], o["info"]["status"]) == (0.5, 0.0, 4)
        b = await balance.until(lambda items: items and items[-1]["BTC"]["used"] == 0 and
                                items[-1]["BTC"]["free"] == 1.002 and items[-1])
        assert b["info"]["type"] == "ENTRUST_CANCEL"
    finally:
        for w in watches:
            await w.stop()
        await ex.close()


async def test_pymexc_websocket_gets_its_orders_deals_and_balances(
    sidecar: Sidecar, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pymexc.base
    import pymexc.base_websocket

    # the recipe repoints pymexc's module constants; give them back after the test
    monkeypatch.setattr(pymexc.base, "SPOT", pymexc.base.SPOT)
    monkeypatch.setattr(pymexc.base_websocket, "SPOT", pymexc.base_websocket.SPOT)
    ws = pymexc_websocket(sidecar.url, KEY, SECRET)
    rest = pymexc_sync(sidecar.url, KEY, SECRET)
    got: queue.Queue[tuple[str, Any]] = queue.Queue()
    try:
        assert len(ws.listenKey) == 64 and ws.endpoint.startswith(sidecar.url.replace("http", "ws"))
        ws.account_orders(lambda m: got.put(("orders", m)))
        ws.account_deals(lambda m: got.put(("deals", m)))
        ws.account_update(lambda m: got.put(("account", m)))
        await until_subscribed(sidecar, 3)

        ack = rest.order("BTCUSDT", "BUY", "MARKET", quote_order_qty="20", new_client_order_id="pm-1")
        pushed = [got.get(timeout=WAIT_S) for _ in range(5)]  # NEW, the deal, FILLED, USDT, BTC
        assert [k for k, _ in pushed] == ["orders", "deals", "orders", "account", "account"]
        orders = [m for k, m in pushed if k == "orders"]
        assert [(m.id, m.clientId, m.status) for m in orders] == [
            (ack["orderId"], "pm-1", 1), (ack["orderId"], "pm-1", 2)]
        order = rest.query_order("BTCUSDT", order_id=ack["orderId"])
        final = orders[-1]
        assert (final.cumulativeQuantity, final.cumulativeAmount, final.quantity, final.amount) == (
            order["executedQty"], order["cummulativeQuoteQty"], order["origQty"], "20")
        (deal,) = [m for k, m in pushed if k == "deals"]
        (trade,) = rest.account_trade_list("BTCUSDT")
        assert (deal.tradeId, deal.orderId, deal.price, deal.quantity, deal.amount, deal.feeAmount,
                deal.feeCurrency, deal.time) == (
            trade["id"], trade["orderId"], trade["price"], trade["qty"], trade["quoteQty"],
            trade["commission"], trade["commissionAsset"], trade["time"])
        balances = {b["asset"]: (b["free"], b["locked"]) for b in rest.account_information()["balances"]}
        for _, m in pushed[3:]:
            assert (m.balanceAmount, m.frozenAmount) == balances[m.vcoinName]
            assert m.type == "ENTRUST"
    finally:
        ws.exit()
        rest.session.close()
