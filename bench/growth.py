"""A SQLite file with history: `n` closed orders of the bench account, written directly
with bulk inserts in proxy/store.py's schema (its MIGRATIONS), with the fills and audit
events such a history has: every order has its `order.new` event; half were filled (one
maker fill and its `order.fill` event), half cancelled (an `order.canceled` event).

The sidecar then starts on the file as it would after months of use."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from bench.procs import KEY
from proxy.engine.matching import order_id_for
from proxy.store import MIGRATIONS, ORDER_COLUMNS

FIRST_SEQ = 600_000_000_000_000_001  # below what the engine hands out next (max + 1)
DAY_MS = 86_400_000


def _orders(n: int, now_ms: int) -> Iterator[tuple[Any, ...]]:
    start = now_ms - 90 * DAY_MS
    step = max(1, 90 * DAY_MS // max(n, 1))
    for i in range(n):
        seq = FIRST_SEQ + i
        filled = i % 2 == 0
        side = "BUY" if i % 4 < 2 else "SELL"
        price = f"{80000 + (i % 10000) / 100:.2f}"
        t = start + i * step
        yield (
            seq, order_id_for(seq, 1), 1, "BTCUSDT", None, side, "LIMIT",
            "FILLED" if filled else "CANCELED", price, "0.0001", None, f"{float(price) * 0.0001:.6f}",
            "0.0001" if filled else "0", f"{float(price) * 0.0001:.6f}" if filled else "0",
            t, t + 1000, "USDT" if side == "BUY" else "BTC", "0", "0", "0.0005", "BTC", "USDT",
            None, 1 if filled else 0, 0,
        )


def build(path: Path, n: int, now_ms: int | None = None) -> float:
    """Create `path` with `n` stored orders; returns the seconds it took."""
    now_ms = now_ms or int(time.time() * 1000)
    t0 = time.perf_counter()
    if path.exists():
        path.unlink()
    for extra in ("-wal", "-shm"):
        Path(str(path) + extra).unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    for script in MIGRATIONS:  # every migration: user_version says they all ran
        for stmt in script.split(";"):
            if stmt.strip():
                conn.execute(stmt)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
    conn.execute(
        "INSERT INTO accounts (id, api_key, created_ms) VALUES (1, ?, ?)", (KEY, now_ms - 90 * DAY_MS)
    )
    conn.executemany(
        "INSERT INTO balances (account_id, asset, free, locked) VALUES (1, ?, ?, '0')",
        [("USDT", "1000000000000"), ("BTC", "1000000")],
    )
    conn.executemany(
        f"INSERT INTO orders ({ORDER_COLUMNS}) VALUES ({', '.join('?' * 25)})", _orders(n, now_ms)
    )

    def fills() -> Iterator[tuple[Any, ...]]:
        for row in conn.execute(
            "SELECT order_id, side, price, time_ms FROM orders WHERE status = 'FILLED' ORDER BY seq"
        ).fetchall():
            oid, side, price, t = row
            reason = orjson.dumps({"source": "trade", "model": "queue", "through": True}).decode()
            yield (f"{oid[5:-3]}X1", oid, 1, "BTCUSDT", side, price, "0.0001",
                   f"{float(price) * 0.0001:.6f}", "0", "USDT", 1, t + 500, None, reason)

    conn.executemany(
        "INSERT INTO fills (trade_id, order_id, account_id, symbol, side, price, qty, quote_qty,"
        " commission, commission_asset, is_maker, time_ms, client_order_id, reason)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        fills(),
    )

    def events() -> Iterator[tuple[Any, ...]]:
        for oid, side, price, status, t in conn.execute(
            "SELECT order_id, side, price, status, time_ms FROM orders ORDER BY seq"
        ).fetchall():
            yield (t, 1, "order.new", "paper", orjson.dumps(
                {"order_id": oid, "symbol": "BTCUSDT", "side": side, "type": "LIMIT",
                 "price": price, "quantity": "0.0001"}).decode())
            kind = "order.fill" if status == "FILLED" else "order.canceled"
            yield (t + 500, 1, kind, "paper", orjson.dumps({"order_id": oid}).decode())

    conn.executemany(
        "INSERT INTO events (time_ms, account_id, kind, mode, data) VALUES (?, ?, ?, ?, ?)", events()
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.perf_counter() - t0


def reset(path: Path, n: int) -> None:
    """Remove what a measurement added (orders, fills, events) and restore the balances,
    so every run starts from exactly `n` stored orders and no open ones."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    last = FIRST_SEQ + n - 1
    conn.execute("DELETE FROM fills WHERE order_id IN (SELECT order_id FROM orders WHERE seq > ?)", (last,))
    conn.execute("DELETE FROM orders WHERE seq > ?", (last,))
    conn.execute("DELETE FROM events WHERE id > ?", (2 * n,))
    conn.execute("UPDATE balances SET free = CASE asset WHEN 'USDT' THEN '1000000000000' "
                 "ELSE '1000000' END, locked = '0' WHERE account_id = 1")
    conn.execute("DELETE FROM balances WHERE account_id = 1 AND asset NOT IN ('USDT', 'BTC')")
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
