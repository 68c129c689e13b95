"""The one commit path and the change feed (issues 15 and 17).

Every state change (orders, cancels, fills, resets, funding, set-balance, MX deduction,
mode switches) is installed in memory and queued for the disk in one step, so memory and
disk order commands alike; after durability each command's typed record is published on
`service.feed`, in commit order, never for a write that failed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import KEY, SECRET, make_settings
from fake_upstream import FakeMexc
from mexc_client import ccxt_query

from proxy import feed, keys
from proxy.app import WATCHER, create_app
from proxy.clock import FixedClock
from proxy.config import LiveSettings, PaperSettings, UpstreamSettings
from proxy.engine.model import Balance, OrderStatus, OrderType, Side
from proxy.engine.rules import NewOrder
from proxy.engine.state import check_invariants
from proxy.store import Store

D = Decimal
SYMBOL = "BTCUSDT"


def url_of(server: Any) -> str:
    return str(server.make_url("")).rstrip("/")


class Bot:
    def __init__(self, client: Any, clock: FixedClock) -> None:
        self.client, self.clock = client, clock

    async def call(self, method: str, path: str, params: dict[str, Any] | None = None) -> tuple[int, Any]:
        q = ccxt_query(params or {}, SECRET, ts=self.clock.now_ms())
        resp = await self.client.request(method, f"{path}?{q}", headers={"X-MEXC-APIKEY": KEY})
        return resp.status, await resp.json()

    async def buy(self, price: str, qty: str = "0.001", **extra: str) -> tuple[int, Any]:
        params = {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "quantity": qty, "price": price}
        return await self.call("POST", "/api/v3/order", {**params, **extra})

    async def balances(self) -> dict[str, tuple[str, str]]:
        status, data = await self.call("GET", "/api/v3/account")
        assert status == 200, data
        return {b["asset"]: (b["free"], b["locked"]) for b in data["balances"]}

    async def open_orders(self) -> list[dict[str, Any]]:
        status, data = await self.call("GET", "/api/v3/openOrders", {"symbol": SYMBOL})
        assert status == 200, data
        return data


def on_disk(path: str) -> Any:
    """What a restart would load: the database read by a store of its own."""

    async def load() -> Any:
        store = Store(path, "NORMAL")
        await store.open()
        try:
            return await store.load()
        finally:
            await store.close()

    return load()


def memory_of(service: Any, account_id: int) -> tuple[dict[str, Balance], set[str]]:
    acct = service.account(account_id)
    return dict(acct.balances), set(acct.open_orders)


def disk_of(loaded: Any, account_id: int) -> tuple[dict[str, Balance], set[str]]:
    balances = {b.asset: b for a, b in loaded.balances if a == account_id}
    return balances, {o.order_id for o in loaded.open_orders if o.account_id == account_id}


async def test_a_reset_during_trading_is_ordered_alike_in_memory_and_on_disk(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reset, then 40 resting buys accepted while the reset is still being written: the
    API, the database and a restart agree. (Before the one commit path, the reset's SQL
    was awaited first and memory cleared after, so the orders accepted meanwhile were on
    disk, with balances from before the reset, but gone from memory: a restart undid the
    reset, or refused to start on a broken invariant.) The writer thread is held until
    everything is queued, so the orders are accepted while the reset's write is in
    flight, every run (the next two tests put them in the reset's own batch)."""
    settings = make_settings(tmp_path, url_of(fake_server))
    app = create_app(settings, clock=clock)
    client = await aiohttp_client(app)
    bot = Bot(client, clock)
    service, store = app[keys.SERVICE], app[keys.STORE]

    gate = threading.Event()
    execute = store._execute

    def held(statements: Any) -> None:
        gate.wait(10)
        execute(statements)

    queued_orders = 0
    all_queued = asyncio.Event()
    queue_changes = store._queue_changes

    def counting(changes: Any, fut: Any) -> None:
        nonlocal queued_orders
        queue_changes(changes, fut)
        queued_orders += len(changes.orders)
        if queued_orders >= 40:
            all_queued.set()

    monkeypatch.setattr(store, "_execute", held)
    monkeypatch.setattr(store, "_queue_changes", counting)
    reset = asyncio.ensure_future(service.reset_account(1))
    await asyncio.sleep(0)  # the reset is queued (held by the writer)
    orders = [asyncio.ensure_future(bot.buy(f"{80000 + i}")) for i in range(40)]
    async with asyncio.timeout(10):
        await all_queued.wait()
    gate.set()
    await reset
    assert [r[0] for r in await asyncio.gather(*orders)] == [200] * 40
    monkeypatch.setattr(store, "_execute", execute)

    survivors = await bot.open_orders()
    balances = await bot.balances()
    assert len(survivors) == 40  # accepted after the reset: they survive it
    held_usdt = sum(D(o["price"]) * D(o["origQty"]) for o in survivors)
    free, locked = balances["USDT"]
    assert (D(free), D(locked)) == (D("10000") - held_usdt, held_usdt)

    await store.flush()
    mem = memory_of(service, 1)
    assert disk_of(await on_disk(settings.storage.path), 1) == mem
    check_invariants(service.state)

    await client.close()
    app2 = create_app(settings, clock=clock)
    client2 = await aiohttp_client(app2)
    assert memory_of(app2[keys.SERVICE], 1) == mem  # what the API showed survives a restart
    assert {o["orderId"] for o in await Bot(client2, clock).open_orders()} == mem[1]


async def test_a_fund_after_a_reset_in_the_same_batch_is_on_disk(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock
) -> None:
    """Commands installed in the same event-loop iteration share a group-commit batch:
    its rows used to be written before its raw statements, so a reset's DELETEs wiped,
    on disk, what was accepted after it (found by review; the real process lost 20 open
    orders that way and then refused to start)."""
    settings = make_settings(tmp_path, url_of(fake_server))
    app = create_app(settings, clock=clock)
    await aiohttp_client(app)
    service, store = app[keys.SERVICE], app[keys.STORE]
    await asyncio.gather(service.reset_account(1), service.fund(1, "USDT", D("5")))
    await store.flush()
    mem = memory_of(service, 1)
    assert mem[0]["USDT"].free == D("10005")
    assert disk_of(await on_disk(settings.storage.path), 1) == mem


async def test_an_order_after_a_reset_in_the_same_batch_is_on_disk(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock
) -> None:
    url = url_of(fake_server)
    settings = make_settings(tmp_path, url, upstream=UpstreamSettings(
        base_url=url, timeout_s=2, connect_timeout_s=1, market_cache_ms=60_000))
    app = create_app(settings, clock=clock)
    client = await aiohttp_client(app)
    service, store = app[keys.SERVICE], app[keys.STORE]
    status, _ = await Bot(client, clock).buy("80000")  # warms the rules, book and price caches
    assert status == 200
    cmd = NewOrder(symbol=SYMBOL, side=Side.BUY, type=OrderType.LIMIT,
                   quantity=D("0.001"), price=D("80001"))
    # both install in their first step (no awaits with warm caches): one batch
    await asyncio.gather(service.reset_account(1), service.place_order(1, cmd))
    await store.flush()
    mem = memory_of(service, 1)
    assert len(mem[1]) == 1  # accepted after the reset: open in memory (and on the API)
    assert disk_of(await on_disk(settings.storage.path), 1) == mem


async def test_a_batch_interleaved_with_a_reset_stays_consistent(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock
) -> None:
    """A batch fetches each element's market data (awaits) between engine runs; each
    element is installed when it runs, so a reset between elements is ordered alike."""
    settings = make_settings(tmp_path, url_of(fake_server))
    app = create_app(settings, clock=clock)
    client = await aiohttp_client(app)
    bot = Bot(client, clock)
    service = app[keys.SERVICE]
    batch = [
        {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": str(81000 + i)}
        for i in range(10)
    ]
    from proxy import jsonutil

    async def batch_call() -> tuple[int, Any]:
        return await bot.call("POST", "/api/v3/batchOrders", {"batchOrders": jsonutil.dumps_str(batch)})

    async def reset_soon() -> None:
        for _ in range(3):
            await asyncio.sleep(0)
        await service.reset_account(1)

    (status, answer), _ = await asyncio.gather(batch_call(), reset_soon())
    assert status == 200 and all("orderId" in a for a in answer), answer
    await app[keys.STORE].flush()
    assert disk_of(await on_disk(settings.storage.path), 1) == memory_of(service, 1)
    check_invariants(service.state)


async def test_records_are_published_after_durability_in_commit_order(
    aiohttp_client: Any, fake_server: Any, fake: FakeMexc, tmp_path: Path, clock: FixedClock
) -> None:
    settings = make_settings(tmp_path, url_of(fake_server), paper=PaperSettings(poll_interval_s=3600))
    app = create_app(settings, clock=clock)
    client = await aiohttp_client(app)
    bot = Bot(client, clock)
    service, store = app[keys.SERVICE], app[keys.STORE]
    seen: list[feed.Committed] = []
    durable_batches: list[int] = []

    def collect(record: feed.Committed) -> None:
        seen.append(record)
        durable_batches.append(store.batches)  # the batch that carried it is already counted

    service.feed.subscribe(collect)
    before_batches = store.batches
    fake.set_book(SYMBOL, bids=[("87000.00", "0.004")], asks=[("87001.00", "1")])
    status, ack = await bot.buy("87000.00", "0.01")
    assert status == 200
    [placed] = seen
    assert placed.kind == feed.ORDER_NEW and placed.account_id == 1
    assert durable_batches[0] > before_batches
    [order] = placed.orders
    assert (order.order_id, order.status) == (ack["orderId"], OrderStatus.NEW)
    [usdt] = placed.balances
    assert (usdt.asset, usdt.before, usdt.after) == (
        "USDT", Balance("USDT", D("10000"), D("0")), Balance("USDT", D("9130"), D("870")),
    )

    # a maker fill from the tape: one market record with the fill and both assets
    fake.print_trade(SYMBOL, "86999.00", "0.02", True, clock.now_ms() + 1000)
    await app[WATCHER].wait_cycles(1)
    filled = seen[-1]
    assert filled.kind == feed.MARKET and filled.account_id is None
    [fill] = filled.fills
    assert (fill.order_id, fill.qty, fill.price, fill.is_maker) == (
        ack["orderId"], D("0.01"), D("87000.00"), True
    )
    assert filled.orders[0].status is OrderStatus.FILLED
    assert {b.asset for b in filled.balances} == {"USDT", "BTC"}
    assert filled.accounts() == {1}

    status, _ = await bot.buy("80000", "0.001")
    assert status == 200
    status, cancelled = await bot.call("DELETE", "/api/v3/openOrders", {"symbol": SYMBOL})
    assert status == 200 and len(cancelled) == 1
    assert seen[-1].kind == feed.ORDER_CANCEL_ALL
    assert seen[-1].orders[0].status is OrderStatus.CANCELED
    assert [r.seq for r in seen] == sorted(r.seq for r in seen)
    assert len({r.seq for r in seen}) == len(seen)


async def test_a_failed_write_publishes_nothing(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = make_settings(tmp_path, url_of(fake_server), reraise_unexpected=False)
    app = create_app(settings, clock=clock)
    client = await aiohttp_client(app)
    bot = Bot(client, clock)
    service, store = app[keys.SERVICE], app[keys.STORE]
    seen: list[feed.Committed] = []
    service.feed.subscribe(seen.append)
    execute = store._execute

    def disk_full(statements: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store, "_execute", disk_full)
    status, body = await bot.buy("80000")
    assert status == 500 and body["code"] == 500, body
    monkeypatch.setattr(store, "_execute", execute)
    assert service._reloading is not None
    await service._reloading  # the in-memory state is reloaded from the disk after a failure
    status, ack = await bot.buy("80001")
    assert status == 200
    assert [r.orders[0].order_id for r in seen] == [ack["orderId"]]


async def test_resets_funding_and_mx_deduct_are_records_too(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock
) -> None:
    settings = make_settings(tmp_path, url_of(fake_server))
    app = create_app(settings, clock=clock)
    client = await aiohttp_client(app)
    bot = Bot(client, clock)
    service = app[keys.SERVICE]
    seen: list[feed.Committed] = []
    service.feed.subscribe(seen.append)
    status, ack = await bot.buy("80000", "0.01")
    assert status == 200
    await service.fund(1, "ETH", D("2"))
    await service.set_mx_deduct(1, True)
    await service.reset_account(1)
    kinds = [r.kind for r in seen]
    assert kinds == [feed.ORDER_NEW, feed.ACCOUNT_FUND, feed.ACCOUNT_MX_DEDUCT, feed.ACCOUNT_RESET]
    fund = seen[1]
    assert [(b.asset, b.before.free, b.after.free) for b in fund.balances] == [("ETH", D(0), D(2))]
    assert seen[2].mx_deduct is True
    reset = seen[3]
    assert reset.reset == 1
    [cancelled] = reset.orders
    assert (cancelled.order_id, cancelled.status, cancelled.locked_amount) == (
        ack["orderId"], OrderStatus.CANCELED, D(0)
    )
    after = {b.asset: b.after for b in reset.balances}
    assert after == {
        "USDT": Balance("USDT", D("10000"), D(0)),
        "BTC": Balance("BTC", D("1"), D(0)),
        "ETH": Balance("ETH", D(0), D(0)),  # an asset the reset removes ends at zero
    }


async def test_a_failing_subscriber_stays_subscribed_and_the_others_still_get_records(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A subscriber's bug is logged once and counted; it does not stop the others, and
    it is not dropped (that would silently end, say, every push while sockets stay open)."""
    settings = make_settings(tmp_path, url_of(fake_server))
    app = create_app(settings, clock=clock)
    client = await aiohttp_client(app)
    bot = Bot(client, clock)
    service = app[keys.SERVICE]
    calls: list[int] = []
    seen: list[feed.Committed] = []

    def buggy(record: feed.Committed) -> None:
        calls.append(record.seq)
        raise RuntimeError("subscriber bug")

    service.feed.subscribe(buggy)
    service.feed.subscribe(seen.append)
    for i in range(3):
        status, _ = await bot.buy(str(80000 + i))
        assert status == 200  # acknowledged all the same
    assert len(calls) == 3 and [r.seq for r in seen] == calls
    assert service.feed.failures == 3
    assert sum("subscriber bug" in (r.exc_text or "") or "failed (kept" in r.getMessage()
               for r in caplog.records if r.name == "proxy.feed") == 1


async def test_a_switch_to_paper_survives_a_restart(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With live armed, a switch to paper is persisted: after a crash or restart the
    sidecar stays in paper (and says so) until it is switched to live again."""
    settings = make_settings(tmp_path, url_of(fake_server), live=LiveSettings(enabled=True), mode="live")
    app = create_app(settings, clock=clock)
    client = await aiohttp_client(app)
    assert app[keys.MODE].current == "live"
    assert await app[keys.SERVICE].switch_mode("paper", source="admin")
    await client.close()

    caplog.set_level(logging.WARNING, logger="proxy.service")
    app2 = create_app(settings, clock=clock)
    client2 = await aiohttp_client(app2)
    assert app2[keys.MODE].current == "paper"
    assert any("staying in PAPER mode" in r.getMessage() for r in caplog.records)
    health = await (await client2.get("/healthz")).json()
    assert health["mode"] == "paper"
    assert await app2[keys.SERVICE].switch_mode("live", source="admin")
    await client2.close()

    app3 = create_app(settings, clock=clock)
    await aiohttp_client(app3)
    assert app3[keys.MODE].current == "live"  # switched to live again on purpose


async def test_a_new_resting_symbol_is_watched_at_once_not_at_the_next_cycle(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock
) -> None:
    """The watcher subscribes to the change feed: the first open order on a symbol starts
    its watch now, though the polling interval is an hour."""
    settings = make_settings(tmp_path, url_of(fake_server), paper=PaperSettings(poll_interval_s=3600))
    app = create_app(settings, clock=clock)
    client = await aiohttp_client(app)
    watcher = app[WATCHER]
    async with watcher.cycle_done:  # the cycle right after start is over
        await watcher.cycle_done.wait_for(lambda: watcher.cycles >= 1)
    assert SYMBOL not in watcher.watches
    status, _ = await Bot(client, clock).buy("80000")
    assert status == 200
    async with asyncio.timeout(5), watcher.cycle_done:
        await watcher.cycle_done.wait_for(
            lambda: SYMBOL in watcher.watches and watcher.watches[SYMBOL].polls >= 1
        )
    assert watcher.cycles == 2  # one poked cycle, not the hourly one


async def test_a_command_accepted_on_top_of_a_failed_write_is_not_written_either(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Order A's write fails while order B, computed in memory on top of A (balances are
    written as absolute values), waits behind it. Writing B would put A's reservation on
    disk without A (found by review: B's push showed A's frozen amount, the reload found a
    broken invariant, and the database no longer loaded). Both fail, nothing of either is
    published, the state is reloaded from the disk, and the next order goes through."""
    settings = make_settings(tmp_path, url_of(fake_server), reraise_unexpected=False)
    app = create_app(settings, clock=clock)
    client = await aiohttp_client(app)
    bot = Bot(client, clock)
    service, store = app[keys.SERVICE], app[keys.STORE]
    seen: list[feed.Committed] = []
    service.feed.subscribe(seen.append)
    status, _ = await bot.buy("79000")  # warm caches; one durable open order
    assert status == 200
    seen.clear()

    gate, writing = threading.Event(), threading.Event()
    execute = store._execute
    failed: list[bool] = []

    def first_write_fails(statements: Any) -> None:
        if not failed:
            failed.append(True)
            writing.set()
            gate.wait(10)
            raise OSError("disk full")
        execute(statements)

    queued = asyncio.Event()
    queue_changes = store._queue_changes

    def counting(changes: Any, fut: Any) -> None:
        queue_changes(changes, fut)
        if changes.orders and failed:
            queued.set()  # B: installed while A's write is under way

    monkeypatch.setattr(store, "_execute", first_write_fails)
    monkeypatch.setattr(store, "_queue_changes", counting)
    a = asyncio.ensure_future(bot.buy("80000"))
    async with asyncio.timeout(10):
        await asyncio.get_running_loop().run_in_executor(None, writing.wait, 10)
    b = asyncio.ensure_future(bot.buy("80001"))
    async with asyncio.timeout(10):
        await queued.wait()
    await asyncio.sleep(0)  # B's batch is handed to the writer behind A's
    gate.set()
    (status_a, _), (status_b, _) = await a, await b
    assert (status_a, status_b) == (500, 500)
    assert service._reloading is not None
    await service._reloading
    assert not service.recovering
    assert seen == []  # nothing of either was published

    await store.flush()
    mem = memory_of(service, 1)
    assert disk_of(await on_disk(settings.storage.path), 1) == mem
    assert len(mem[1]) == 1  # the first order only
    check_invariants(service.state)
    status, ack = await bot.buy("80002")
    assert status == 200 and [r.orders[0].order_id for r in seen] == [ack["orderId"]]

    await client.close()
    app2 = create_app(settings, clock=clock)
    await aiohttp_client(app2)  # the database loads (its invariants hold)
    assert memory_of(app2[keys.SERVICE], 1)[1] == {o for o in memory_of(service, 1)[1]}


async def test_mx_deduction_fetches_the_mx_price_at_most_every_few_seconds(
    aiohttp_client: Any, fake_server: Any, fake: FakeMexc, tmp_path: Path, clock: FixedClock
) -> None:
    """Every market update used to fetch MXUSDT over REST while any account had MX
    deduction on (found by review: one request per stream update)."""
    settings = make_settings(tmp_path, url_of(fake_server), paper=PaperSettings(poll_interval_s=3600))
    app = create_app(settings, clock=clock)
    client = await aiohttp_client(app)
    bot = Bot(client, clock)
    status, _ = await bot.call("POST", "/api/v3/mxDeduct/enable", {"mxDeductEnable": "true"})
    assert status == 200
    status, _ = await bot.buy("80000")
    assert status == 200
    watcher = app[WATCHER]

    def mx_requests() -> int:
        return sum(1 for s in fake.seen if s.path == "/api/v3/ticker/price" and "MXUSDT" in s.query)

    before = mx_requests()
    for _ in range(5):
        await watcher.wait_cycles(1)
    assert mx_requests() - before <= 1
