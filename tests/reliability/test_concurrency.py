"""Concurrency: 64 clients on one account, the market moving underneath, the watcher filling.

Each client places resting, marketable and market orders, IOCs, cancels and queries, while a
market task moves the fake upstream's book, prints trades through resting prices and waits
for the watcher to feed them to the engine. After every single step the engine invariants
hold (`free >= 0`, `locked >= 0`, locked == what open orders hold); at the end every fill
is accounted for: per order, the fills sum to executedQty/cummulativeQuoteQty and never
exceed origQty, trade ids are unique, and the balances equal the starting balances moved
by exactly those fills (no double spend, nothing created), in memory and on disk.

Longer run: `MEXC_PAPER_LOAD_STEPS=60 pytest tests/reliability/test_concurrency.py -m slow`.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fake_upstream import FakeMexc
from relsupport import (
    KEY,
    NOW,
    SECRET,
    Caller,
    check_account_body,
    expected_totals,
    make_settings,
    record_figures,
)

from proxy import keys
from proxy.app import WATCHER, create_app
from proxy.clock import FixedClock
from proxy.config import AccountSettings, PaperSettings
from proxy.engine.state import check_invariants

CLIENTS = 64
STEPS = int(os.environ.get("MEXC_PAPER_LOAD_STEPS", "16"))
SYMBOL = "BTCUSDT"
# small enough that the 64 clients compete for it (insufficient-balance rejections happen)
INITIAL = {"USDT": Decimal("3000"), "BTC": Decimal("0.03")}
# rejections a client can legitimately get under this load (anything else fails the test)
EXPECTED_REJECTIONS = {
    30004,  # insufficient balance: many clients share one account
    30029,  # max open orders
    -2011,  # cancel of an order another step already filled or cancelled
    30010,  # MARKET with no liquidity left in this book version
    30087,  # marketable price beyond the PERCENT_PRICE band after the market moved
}
QTYS = ("0.0001", "0.0002", "0.0005", "0.001", "0.002")


class Market:
    """A random walk of the fake's book, price and tape."""

    def __init__(self, fake: FakeMexc, rng: random.Random) -> None:
        self.fake = fake
        self.rng = rng
        self.mid = Decimal("87900")
        self.time_ms = NOW  # orders rest at NOW (a fixed clock): trades print after them
        self.moves = 0
        self.trades = 0
        self.move()

    def move(self) -> None:
        rng = self.rng
        self.mid += Decimal(rng.randint(-3000, 3000)) / 100
        tick = Decimal("0.01")
        bids = [(self.mid - tick * (1 + i * rng.randint(1, 500)), _size(rng)) for i in range(5)]
        asks = [(self.mid + tick * (1 + i * rng.randint(1, 500)), _size(rng)) for i in range(5)]
        self.fake.set_book(SYMBOL, [(str(p), q) for p, q in bids], [(str(p), q) for p, q in asks])
        self.fake.set_price(SYMBOL, str(self.mid))
        for _ in range(rng.randint(0, 4)):
            self.time_ms += rng.randint(1, 50)
            price = self.mid + Decimal(rng.randint(-20000, 20000)) / 100
            self.fake.print_trade(SYMBOL, str(price), _size(rng), rng.random() < 0.5, self.time_ms)
            self.trades += 1
        self.moves += 1

    def best_ask(self) -> Decimal:
        return Decimal(self.fake.books[SYMBOL]["asks"][0][0])

    def best_bid(self) -> Decimal:
        return Decimal(self.fake.books[SYMBOL]["bids"][0][0])


def _size(rng: random.Random) -> str:
    return str(Decimal(rng.randint(5, 300)) / 100000)


async def client_task(
    n: int, caller: Caller, market: Market, service: Any, log: list[tuple[str, int, Any]],
    acked: dict[str, dict[str, Any]],
) -> None:
    rng = random.Random(1000 + n)
    mine: list[str] = []
    for _ in range(STEPS):
        action = rng.choices(
            ["rest_buy", "rest_sell", "cross_limit", "market", "market_quote", "ioc",
             "cancel", "get", "open", "account"],
            weights=[15, 10, 10, 8, 5, 8, 15, 10, 7, 7],
        )[0]
        side = rng.choice(["BUY", "SELL"])
        qty = rng.choice(QTYS)
        params: dict[str, Any] = {"symbol": SYMBOL}
        method, path = "POST", "/api/v3/order"
        if action == "rest_buy":
            price = market.mid - Decimal(rng.randint(1, 20000)) / 100
            params.update(side="BUY", type="LIMIT", quantity=qty, price=str(price))
        elif action == "rest_sell":
            price = market.mid + Decimal(rng.randint(1, 20000)) / 100
            params.update(side="SELL", type="LIMIT", quantity=qty, price=str(price))
        elif action in ("cross_limit", "ioc"):
            price = market.best_ask() + 1 if side == "BUY" else market.best_bid() - 1
            kind = "LIMIT" if action == "cross_limit" else "IMMEDIATE_OR_CANCEL"
            params.update(side=side, type=kind, quantity=qty, price=str(price))
        elif action == "market":
            params.update(side=side, type="MARKET", quantity=qty)
        elif action == "market_quote":
            params.update(side=side, type="MARKET", quoteOrderQty=str(rng.randint(2, 40)))
        elif action == "cancel":
            if not mine:
                continue
            method, path = "DELETE", "/api/v3/order"
            params["orderId"] = mine.pop(rng.randrange(len(mine)))
        elif action == "get":
            if not acked:
                continue
            method, path = "GET", "/api/v3/order"
            params["orderId"] = rng.choice(list(acked))
        elif action == "open":
            method, path = "GET", "/api/v3/openOrders"
        else:
            method, path, params = "GET", "/api/v3/account", {}
        status, data = await caller.call(method, path, params)
        # after every step: the engine's ledger is consistent
        check_invariants(service.state)
        code = data["code"] if status != 200 else 0
        log.append((action, status, code))
        assert status in (200, 400), (action, status, data)
        if status == 400:
            assert code in EXPECTED_REJECTIONS, (action, params, data)
            continue
        if path == "/api/v3/order" and method == "POST":
            acked[data["orderId"]] = params
            mine.append(data["orderId"])
        elif path == "/api/v3/account":
            check_account_body(data)
        elif path == "/api/v3/openOrders":
            for o in data:
                assert Decimal(o["executedQty"]) < Decimal(o["origQty"]), o
        elif method == "GET":
            assert Decimal(data["executedQty"]) <= Decimal(data["origQty"]), data


async def mover_task(market: Market, watcher: Any, service: Any, done: asyncio.Event) -> None:
    while not done.is_set():
        market.move()
        await watcher.wait_cycles(1)  # the watcher saw this book and tape
        check_invariants(service.state)


@pytest.mark.slow  # scaled by the long run (docs/reliability.md)
async def test_64_clients_one_account_market_moving(
    aiohttp_client: Any, aiohttp_server: Any, tmp_path: Path
) -> None:
    fake = FakeMexc()
    server = await aiohttp_server(fake.app())
    settings = make_settings(
        tmp_path,
        str(server.make_url("")).rstrip("/"),
        paper=PaperSettings(poll_interval_s=0.02),
        accounts=(AccountSettings(KEY, SECRET, INITIAL, "load"),),
    )
    clock = FixedClock(NOW)
    app = create_app(settings, clock=clock)
    client = await aiohttp_client(app)
    service = app[keys.SERVICE]
    market = Market(fake, random.Random(7))
    caller = Caller(client, KEY, SECRET, clock)
    log: list[tuple[str, int, Any]] = []
    acked: dict[str, dict[str, Any]] = {}

    done = asyncio.Event()
    mover = asyncio.create_task(mover_task(market, app[WATCHER], service, done))
    try:
        await asyncio.gather(
            *(client_task(n, caller, market, service, log, acked) for n in range(CLIENTS))
        )
    finally:
        done.set()
        await mover
    await app[WATCHER].wait_cycles(1)

    # cancel what rests; then nothing may stay locked
    status, canceled = await caller.call("DELETE", "/api/v3/openOrders", {"symbol": SYMBOL})
    assert status == 200, canceled
    check_invariants(service.state)
    balances = await caller.balances()
    assert all(locked == 0 for _free, locked in balances.values()), balances

    # every acknowledged order: fills sum to its executed quantities, never beyond origQty
    all_trades: list[dict[str, Any]] = []
    trade_ids: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    for oid in acked:
        status, order = await caller.call("GET", "/api/v3/order", {"symbol": SYMBOL, "orderId": oid})
        assert status == 200, order
        assert order["status"] not in ("NEW", "PARTIALLY_FILLED"), order
        statuses[order["status"]] += 1
        status, trades = await caller.call(
            "GET", "/api/v3/myTrades", {"symbol": SYMBOL, "orderId": oid, "limit": 100}
        )
        assert status == 200, trades
        assert len(trades) < 100
        executed = sum((Decimal(t["qty"]) for t in trades), Decimal(0))
        quote = sum((Decimal(t["quoteQty"]) for t in trades), Decimal(0))
        assert executed == Decimal(order["executedQty"]), (order, trades)
        assert quote == Decimal(order["cummulativeQuoteQty"]), (order, trades)
        assert executed <= Decimal(order["origQty"]), order
        assert all(t["orderId"] == oid for t in trades)
        trade_ids.update(t["id"] for t in trades)
        all_trades.extend(trades)
    assert all(n == 1 for n in trade_ids.values()), [t for t, n in trade_ids.items() if n > 1]

    # the store holds exactly these fills, and nothing for orders no client was told about
    store = app[keys.STORE]
    await store.flush()
    stored = await store.fills_of_orders(list(acked))
    assert sorted(f.trade_id for f in stored) == sorted(trade_ids)
    assert await store.count("fills") == len(stored)

    # money is conserved: start + fills == end, in the API, in memory and on disk
    want = expected_totals(INITIAL, all_trades)
    got = {a: free + locked for a, (free, locked) in balances.items()}
    assert {a: v for a, v in want.items() if v} == got
    loaded = await store.load()
    on_disk = {b.asset: b.free + b.locked for _a, b in loaded.balances if _a == 1 and b.total}
    assert on_disk == got

    assert fake.signed_requests() == []  # paper mode: nothing signed went upstream
    by_code = Counter(str(code) for _a, _s, code in log)
    fills = len(all_trades)
    maker = sum(1 for t in all_trades if t["isMaker"])
    assert fills > 50 and maker > 5, (fills, maker)  # the load really traded, both ways
    assert market.moves > 5
    record_figures(
        "concurrency",
        clients=CLIENTS,
        steps_per_client=STEPS,
        requests=caller.requests,
        load_requests=len(log),
        orders_acknowledged=len(acked),
        answers_by_code=dict(by_code),
        final_statuses=dict(statuses),
        fills=fills,
        maker_fills=maker,
        market_moves=market.moves,
        public_trades_printed=market.trades,
        http_500=caller.statuses.get("500", 0),
    )


async def test_acknowledged_order_is_readable_at_once_under_concurrent_reads(
    client: Any, clock: FixedClock
) -> None:
    """An order closed at once (IOC) is read from the database. Under 64 concurrent
    readers the shared read connection used to stay inside one read transaction and serve
    a stale snapshot, so GET /api/v3/order answered -2013 for an acknowledged order."""
    caller = Caller(client, KEY, SECRET, clock)
    missing: list[Any] = []

    async def one() -> None:
        for _ in range(4):
            status, ack = await caller.call("POST", "/api/v3/order", {
                "symbol": SYMBOL, "side": "BUY", "type": "IMMEDIATE_OR_CANCEL",
                "quantity": "0.0001", "price": "80000"})
            assert status == 200, ack
            status, order = await caller.call(
                "GET", "/api/v3/order", {"symbol": SYMBOL, "orderId": ack["orderId"]})
            if status != 200:
                missing.append(order)
            status, _ = await caller.call("GET", "/api/v3/allOrders", {"symbol": SYMBOL})
            assert status == 200

    await asyncio.gather(*(one() for _ in range(CLIENTS)))
    assert missing == []
    record_figures("read_after_ack", clients=CLIENTS, requests=caller.requests)
