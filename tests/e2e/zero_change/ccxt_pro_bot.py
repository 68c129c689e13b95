"""A streaming bot written for MEXC itself: ccxt.pro 4.5.90 with its defaults, no `urls`, so
REST goes to https://api.mexc.com and the private streams to wss://wbs-api.mexc.com/ws.
It watches its orders, trades and balance, places a resting limit buy and a market buy
that fills, cancels the resting one, and prints one JSON line: what the streams gave it,
what REST reports afterwards (or the error and exit code 1).

    python ccxt_pro_bot.py API_KEY SECRET METRICS_URL

METRICS_URL is the sidecar's /metrics on its plain listener: ccxt.pro does not wait for
MEXC's answer to its SUBSCRIPTION, so the bot waits until the sidecar holds its three
private subscriptions before it places anything (what the test harness adds; ccxt itself
is unchanged).
"""

from __future__ import annotations

import asyncio
import copy
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import aiohttp

SYMBOL = "BTC/USDT"
WAIT_S = 20  # an upper bound for something that must happen, never a pacing delay
# not `cost`: ccxt reads a pushed order's `amount` (the order's notional; "0" for a market
# order by quantity, as MEXC pushes it) where REST gives the filled quote amount
ORDER_FIELDS = ("id", "clientOrderId", "status", "type", "side", "price", "amount", "filled",
                "remaining", "average")
TRADE_FIELDS = ("id", "order", "side", "price", "amount", "cost", "timestamp")


class Watch:
    """Runs one watch_* call in a loop and keeps everything it returned."""

    def __init__(self, watch: Callable[[], Any]) -> None:
        self.items: list[Any] = []
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._run(watch))

    async def _run(self, watch: Callable[[], Any]) -> None:
        while True:
            got = await watch()
            # ccxt updates the dicts it returned before (an order's, the balance): keep
            # a snapshot of each as it was returned
            got = copy.deepcopy(got)
            self.items.extend(got if isinstance(got, list) else [got])
            self._changed.set()

    async def until(self, what: str, check: Callable[[list[Any]], Any]) -> Any:
        deadline = time.monotonic() + WAIT_S
        while not (found := check(self.items)):
            if self._task.done():
                self._task.result()  # the watcher failed: raise its error
            if time.monotonic() > deadline:
                raise TimeoutError(f"never pushed: {what}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                pass
        return found

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def order_of(order_id: str, status: str) -> Callable[[list[Any]], Any]:
    def check(items: list[Any]) -> Any:
        return next((o for o in reversed(items) if o["id"] == order_id and o["status"] == status), None)

    return check


async def until_subscribed(metrics_url: str, n: int) -> None:
    line = 'mexc_paper_ws_subscriptions{kind="private"} '
    deadline = time.monotonic() + WAIT_S
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(metrics_url) as r:
                text = await r.text()
            value = next(float(ln[len(line):]) for ln in text.splitlines() if ln.startswith(line))
            if value >= n:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the sidecar holds {value} private subscriptions, not {n}")
            await asyncio.sleep(0.02)


def order_view(o: dict[str, Any]) -> dict[str, Any]:
    view = {k: o[k] for k in ORDER_FIELDS}
    info = o["info"]  # the pushed protobuf fields, or REST's JSON
    view["info"] = {k: info.get(k) for k in ("status", "cumulativeQuantity", "cumulativeAmount",
                                             "executedQty", "cummulativeQuoteQty")}
    return view


def trade_view(t: dict[str, Any]) -> dict[str, Any]:
    view = {k: t[k] for k in TRADE_FIELDS}
    view["fee"] = [t["fee"]["cost"], t["fee"]["currency"]]
    view["info"] = t["info"]
    return view


async def trade(ex: Any, metrics_url: str) -> dict[str, Any]:
    await ex.load_markets()
    orders = Watch(lambda: ex.watch_orders(SYMBOL))
    trades = Watch(lambda: ex.watch_my_trades(SYMBOL))
    balance = Watch(lambda: ex.watch_balance())
    try:
        await until_subscribed(metrics_url, 3)
        resting = await ex.create_order(SYMBOL, "limit", "buy", 0.001, 80000, {"clientOrderId": "zc-pro-1"})
        opened = await orders.until("the resting buy, open", order_of(resting["id"], "open"))
        taker = await ex.create_order(SYMBOL, "market", "buy", 0.001)
        filled = await orders.until("the market buy, closed", order_of(taker["id"], "closed"))
        pushed_trades = await trades.until("the market buy's fill", lambda items: items and list(items))
        await ex.cancel_order(resting["id"], SYMBOL)
        canceled = await orders.until("the resting buy, canceled", order_of(resting["id"], "canceled"))
        last = await balance.until("the balance after the cancel", lambda items: items and (
            items[-1].get("USDT", {}).get("used") == 0 and items[-1].get("BTC", {}).get("free") == 1.001
            and items[-1]))
        rest_balance = await ex.fetch_balance()
        return {
            "ws_url": ex.urls["api"]["ws"]["spot"],
            "spot_url": ex.urls["api"]["spot"]["public"],
            "clients": sorted(url.split("?")[0] + ("?listenKey" if "?listenKey=" in url else "")
                              for url in ex.clients),
            "pushed": {
                "open": order_view(opened),
                "filled": order_view(filled),
                "canceled": order_view(canceled),
                "trades": [trade_view(t) for t in pushed_trades],
                "balance": {a: [last[a]["free"], last[a]["used"], last[a]["total"]] for a in ("BTC", "USDT")},
                "balance_info": last["info"],
            },
            "rest": {
                "filled": order_view(await ex.fetch_order(taker["id"], SYMBOL)),
                "canceled": order_view(await ex.fetch_order(resting["id"], SYMBOL)),
                "trades": [trade_view(t) for t in await ex.fetch_my_trades(SYMBOL)],
                "balance": {a: [rest_balance[a]["free"], rest_balance[a]["used"], rest_balance[a]["total"]]
                            for a in ("BTC", "USDT")},
                "balances": {b["asset"]: [b["free"], b["locked"]] for b in rest_balance["info"]["balances"]},
            },
        }
    finally:
        for w in (orders, trades, balance):
            await w.stop()


async def run(key: str, secret: str, metrics_url: str) -> dict[str, Any]:
    import ccxt.pro as ccxtpro

    ex = ccxtpro.mexc({"apiKey": key, "secret": secret, "enableRateLimit": False})
    try:
        return await trade(ex, metrics_url)
    finally:
        await ex.close()


def main() -> int:
    try:
        out = asyncio.run(run(*sys.argv[1:4]))
    except Exception as exc:  # the test reads what the bot would have seen, causes included
        chain, cause = [], exc
        while cause is not None and len(chain) < 5:
            chain.append(f"{type(cause).__name__}: {cause}"[:400])
            cause = cause.__cause__ or cause.__context__
        print(json.dumps({"error": type(exc).__name__, "message": " <- ".join(chain)}))
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
