"""The user-data stream across a SIGKILL of a real `python -m proxy`.

A stream (raw aiohttp client, frames decoded with ccxt's bundled MEXC classes) follows one
account while 8 clients place, fill and cancel orders. Twice the process is killed with
SIGKILL and restarted on the same database:

  1. after the load has stopped and the stream has received the pushes of every
     acknowledged command: after the restart REST reports exactly what was pushed (each
     order's last pushed version, every deal, each asset's last pushed balance);
  2. in the middle of the load: nothing that was pushed is missing after the restart
     (a push leaves only after its command is durable). Commands durable but not yet
     pushed at the kill may exist; the stream does not replay them, as MEXC does not.

After each restart the client reconnects with the listenKey it had: keys are on disk.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from fake_upstream import FakeMexcThread
from process_support import free_port
from relsupport import Caller, record_figures
from ws_support import PRIVATE, decode

ROOT = Path(__file__).resolve().parents[2]
KEY, SECRET = "ws-crash-key-0001", "ws-crash-secret"
SYMBOL = "BTCUSDT"
MID = Decimal("87900")
WORKERS = 8
STATUS = {"NEW": 1, "FILLED": 2, "PARTIALLY_FILLED": 3, "CANCELED": 4, "PARTIALLY_CANCELED": 5}


class Process:
    def __init__(self, tmp: Path, upstream: str) -> None:
        self.tmp = tmp
        self.config = tmp / "config.json"
        self.config.write_text(json.dumps({
            "server": {"host": "127.0.0.1", "port": 8080},
            "upstream": {"base_url": upstream, "timeout_s": 2, "connect_timeout_s": 1,
                         "market_cache_ms": 0, "ws_url": None},  # offline: no market stream
            "storage": {"path": str(tmp / "paper.sqlite3")},
            "accounts": [{"api_key": KEY, "secret_key": SECRET,
                          "balances": {"USDT": "100000", "BTC": "2"}}],
            "paper": {"poll_interval_s": 3600},
            "dashboard": {"enabled": False},
        }))
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = free_port()
        self.starts += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PAPER_TRADING", "PROXY_"))}
        with (self.tmp / f"sidecar-{self.starts}.log").open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "proxy", "--config", str(self.config), "--port", str(self.port)],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # another process: no event to await, poll
            assert self.proc.poll() is None, (self.tmp / f"sidecar-{self.starts}.log").read_text()
            try:
                import urllib.request

                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.02)
        raise AssertionError("the sidecar did not start")

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class Follower:
    """One user stream: every push, decoded, in arrival order."""

    def __init__(self) -> None:
        self.pushes: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()
        self.subscribed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self, session: aiohttp.ClientSession, url: str, key: str) -> Follower:
        self.task = asyncio.create_task(self._follow(session, url, key))
        return self

    async def ready(self) -> None:
        done, _ = await asyncio.wait(
            [asyncio.ensure_future(self.subscribed.wait()), self.task], timeout=10,
            return_when=asyncio.FIRST_COMPLETED)
        assert self.subscribed.is_set(), [t.result() for t in done if t is self.task]

    async def until(self, check: Any) -> None:
        while not check():
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), 10)

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    async def _follow(self, session: aiohttp.ClientSession, url: str, key: str) -> None:
        ws = await session.ws_connect(f"{url.replace('http', 'ws', 1)}/ws?listenKey={key}")
        await ws.send_json({"method": "SUBSCRIPTION", "params": PRIVATE})
        ack = await ws.receive_json(timeout=10)
        assert ack == {"id": 0, "code": 0, "msg": ",".join(PRIVATE)}, ack
        self.subscribed.set()
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.BINARY:
                self.pushes.append(decode(msg.data))
                self.arrived.set()

    def orders(self) -> dict[str, dict[str, Any]]:
        """Each order's last pushed version."""
        return {p["privateOrders"]["id"]: p["privateOrders"] for p in self.pushes if "privateOrders" in p}

    def deals(self) -> dict[str, dict[str, Any]]:
        return {p["privateDeals"]["tradeId"]: p["privateDeals"] for p in self.pushes if "privateDeals" in p}

    def balances(self) -> dict[str, tuple[str, str]]:
        out = {}
        for p in self.pushes:
            if "privateAccount" in p:
                a = p["privateAccount"]
                out[a["vcoinName"]] = (a["balanceAmount"], a["frozenAmount"])
        return out


async def trade(caller: Caller, rng: random.Random, stop: asyncio.Event, acked: list[str],
                limit: int | None = None) -> None:
    """Place, take and cancel until `stop` (or until `acked` holds `limit` answers)."""
    open_ids: list[str] = []
    while not stop.is_set() and (limit is None or len(acked) < limit):
        kind = rng.choice(["rest", "rest", "taker", "cancel"])
        side = rng.choice(["BUY", "SELL"])
        p: dict[str, Any] = {"symbol": SYMBOL, "side": side, "quantity": rng.choice(("0.001", "0.002"))}
        method, path = "POST", "/api/v3/order"
        if kind == "rest":
            off = Decimal(rng.randint(100, 5000)) / 100
            p.update(type="LIMIT", price=str(MID - off if side == "BUY" else MID + 4 + off))
        elif kind == "taker":
            p.update(type="MARKET")
        elif open_ids:
            method, path = "DELETE", "/api/v3/order"
            p = {"symbol": SYMBOL, "orderId": open_ids.pop(rng.randrange(len(open_ids)))}
        else:
            continue
        try:
            status, data = await caller.call(method, path, p)
        except (TimeoutError, aiohttp.ClientError, OSError):
            return  # killed: what was in flight is unknown
        if status == 200:
            acked.append(data["orderId"])
            if method == "POST" and p["type"] == "LIMIT":
                open_ids.append(data["orderId"])


async def rest_state(caller: Caller, order_ids: set[str]) -> tuple[dict[str, Any], ...]:
    orders = {}
    for oid in sorted(order_ids):
        status, order = await caller.call("GET", "/api/v3/order", {"symbol": SYMBOL, "orderId": oid})
        assert status == 200, (oid, order)  # a pushed order is durable
        orders[oid] = order
    status, trades = await caller.call("GET", "/api/v3/myTrades", {"symbol": SYMBOL, "limit": 100})
    assert status == 200
    status, account = await caller.call("GET", "/api/v3/account")
    balances = {b["asset"]: (b["free"], b["locked"]) for b in account["balances"]}
    return orders, {t["id"]: t for t in trades}, balances


def same_order(pushed: dict[str, Any], rest: dict[str, Any]) -> bool:
    return (pushed["status"], pushed["cumulativeQuantity"], pushed["cumulativeAmount"]) == (
        STATUS[rest["status"]], rest["executedQty"], rest["cummulativeQuoteQty"])


def same_deal(pushed: dict[str, Any], rest: dict[str, Any]) -> bool:
    return (pushed["orderId"], pushed["price"], pushed["quantity"], pushed["amount"], pushed["feeAmount"],
            pushed["feeCurrency"]) == (rest["orderId"], rest["price"], rest["qty"], rest["quoteQty"],
                                       rest["commission"], rest["commissionAsset"])


async def test_after_a_kill_rest_holds_everything_that_was_pushed(tmp_path: Path) -> None:
    rng = random.Random(20260115)
    with FakeMexcThread() as market:
        market.call(market.fake.set_book, SYMBOL, [("87900.00", "5")], [("87904.00", "5")])
        sidecar = Process(tmp_path, market.url)
        sidecar.start()
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
                caller = Caller(session, KEY, SECRET, base=sidecar.url)
                status, body = await caller.call("POST", "/api/v3/userDataStream")
                key = body["listenKey"]

                # 1. quiescent: load, stop, let the stream catch up, kill
                follower = Follower().start(session, sidecar.url, key)
                await follower.ready()
                stop, acked = asyncio.Event(), []
                await asyncio.gather(*(trade(caller, random.Random(rng.random()), stop, acked, 60)
                                       for _ in range(WORKERS)))
                await follower.until(lambda: set(acked) <= set(follower.orders()))  # all pushed
                pushed_orders, pushed_deals, pushed_balances = (
                    follower.orders(), follower.deals(), follower.balances())
                sidecar.kill()
                await follower.stop()

                sidecar.start()
                caller.base = sidecar.url
                orders, trades, balances = await rest_state(caller, set(pushed_orders))
                assert all(same_order(pushed_orders[o], orders[o]) for o in pushed_orders)
                assert pushed_deals.keys() == trades.keys()
                assert all(same_deal(pushed_deals[t], trades[t]) for t in pushed_deals)
                assert {a: balances.get(a, ("0", "0")) for a in pushed_balances} == pushed_balances
                phase1 = len(follower.pushes)

                # 2. kill mid-load, with the same key after the restart
                follower = Follower().start(session, sidecar.url, key)
                await follower.ready()
                stop, acked = asyncio.Event(), []
                workers = [asyncio.create_task(trade(caller, random.Random(rng.random()), stop, acked))
                           for _ in range(WORKERS)]
                await follower.until(lambda: len(follower.pushes) >= 100)
                sidecar.kill()  # SIGKILL while orders are in flight and frames on their way
                stop.set()
                await asyncio.gather(*workers)
                await follower.stop()
                pushed_orders, pushed_deals = follower.orders(), follower.deals()

                sidecar.start()
                caller.base = sidecar.url
                orders, trades, _ = await rest_state(caller, set(pushed_orders))
                for oid, pushed in pushed_orders.items():  # REST is at or past what was pushed
                    rest = orders[oid]
                    executed = Decimal(rest["executedQty"])
                    assert Decimal(pushed["cumulativeQuantity"]) <= executed, (pushed, rest)
                    if pushed["status"] in (2, 4, 5):
                        assert same_order(pushed, rest), (pushed, rest)
                assert all(t in trades and same_deal(d, trades[t]) for t, d in pushed_deals.items())

                # the stream resumes with the key it had
                again = Follower().start(session, sidecar.url, key)
                await again.ready()
                status, ack = await caller.call("POST", "/api/v3/order", {
                    "symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "80000"})
                assert status == 200
                await again.until(lambda: ack["orderId"] in again.orders())
                await again.stop()
                record_figures("ws_crash", kills=2, pushes_before_quiet_kill=phase1,
                               pushes_before_load_kill=len(follower.pushes))
        finally:
            sidecar.stop()
