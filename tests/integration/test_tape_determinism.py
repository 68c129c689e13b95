"""Determinism of replay (issue 18): the same cassette, configuration, bot requests and
clock moves give the same order ids, fills, balances and event log on every run.

The bot signs with the real wall clock (so every run's requests differ in their
timestamps and signatures, as a real bot's would); nothing of it may leak into the
history. The only wall-clock values a replay has are named in README ("Test your bot in
CI"): /api/v3/time's serverTime, the equity curve's points and log timestamps."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from test_tape import GAP, START, Bot, start, tape_settings

from proxy import keys
from proxy.clock import SystemClock

RUNS = 10


async def scenario(bot: Bot) -> None:
    """A bot's session: orders of every kind between clock moves."""
    buy = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01"}
    sell = {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "quantity": "0.02"}
    await bot.call("POST", "/api/v3/order", {**buy, "price": "86995.00"})
    await bot.call("POST", "/api/v3/order", {**buy, "price": "87000.00", "newClientOrderId": "queue-1"})
    await bot.call(
        "POST",
        "/api/v3/order",
        {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quoteOrderQty": "100"},
    )
    await bot.advance(advance_ms=2500)
    doomed = await bot.call("POST", "/api/v3/order", {**buy, "price": "86000.00"})
    await bot.advance(advance_ms=2499)
    await bot.call("DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": doomed["orderId"]})
    await bot.advance(to_ms=START + 10_000)
    await bot.call("POST", "/api/v3/order", {**sell, "price": "85310.00"})
    await bot.call("POST", "/api/v3/order", {**buy, "price": "85250.00", "quantity": "0.05"})
    await bot.call(
        "POST",
        "/api/v3/order",
        {
            "symbol": "BTCUSDT",
            "side": "SELL",
            "type": "IMMEDIATE_OR_CANCEL",
            "quantity": "0.01",
            "price": "85000.00",
        },
    )
    await bot.advance(to_ms=START + 40_000)


async def history(bot: Bot) -> dict[str, Any]:
    """Everything a run leaves behind, from the API and the database."""
    app = bot.app
    store, service = app[keys.STORE], app[keys.SERVICE]
    await store.flush()
    out: dict[str, Any] = {
        "all_orders": await bot.call("GET", "/api/v3/allOrders", {"symbol": "BTCUSDT"}),
        "my_trades": await bot.call("GET", "/api/v3/myTrades", {"symbol": "BTCUSDT"}),
        "account": await bot.call("GET", "/api/v3/account"),
        "open": await bot.call("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"}),
    }
    for account_id in service.account_ids():
        orders = await store.orders(account_id, "BTCUSDT", None, None, 1000)
        fills = await store.fills(account_id, "BTCUSDT", None, None, None, 1000)
        out[f"orders/{account_id}"] = [dataclasses.asdict(o) for o in orders]
        out[f"fills/{account_id}"] = [dataclasses.asdict(f) for f in fills]
        out[f"balances/{account_id}"] = [dataclasses.asdict(b) for b in service.balances(account_id)]
    out["events"] = await store.events(limit=10_000)
    out["clock"] = await bot.clock()
    return out


async def test_ten_runs_leave_identical_histories(aiohttp_client: Any, tmp_path: Path) -> None:
    runs = []
    for n in range(RUNS):
        bot = await start(aiohttp_client, tape_settings(tmp_path / f"run{n}", GAP), SystemClock())
        await scenario(bot)
        runs.append(await history(bot))
        await bot.client.close()
    first = runs[0]
    # the scenario did what it says, in tape order and at tape times
    assert [(o["type"], o["price"], o["status"], o["executedQty"]) for o in first["all_orders"]] == [
        ("LIMIT", "86995", "FILLED", "0.01"),
        ("LIMIT", "87000", "FILLED", "0.01"),
        ("MARKET", "91351.05", "FILLED", "0.00114941"),
        ("LIMIT", "86000", "CANCELED", "0"),
        ("LIMIT", "85310", "FILLED", "0.02"),
        ("LIMIT", "85250", "NEW", "0"),
        ("IMMEDIATE_OR_CANCEL", "85000", "FILLED", "0.01"),
    ]
    assert [(t["price"], t["qty"], t["isMaker"], t["time"] - START) for t in first["my_trades"]] == [
        ("87001", "0.00114941", False, 0),
        ("87000", "0.01", True, 10_000),  # the better price first, from the same sweep
        ("86995", "0.01", True, 10_000),
        ("85250", "0.01", False, 10_000),
        ("85310", "0.02", True, 30_000),
    ]
    assert first["all_orders"][0]["orderId"].startswith("C02__")
    assert [e["kind"] for e in first["events"]].count("order.fill") == len(first["fills/1"])
    assert all(START <= e["time"] <= START + 40_000 for e in first["events"])
    for n, run in enumerate(runs[1:], start=2):
        for key in first:
            assert run[key] == first[key], f"run {n} differs from run 1 in {key}"
