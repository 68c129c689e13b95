"""Persistence: SQLite in WAL mode, schema migrations, group commit, append-only audit log.

Writes go through one writer thread and one connection: concurrent commands queue their
changes, and each batch is written in one `BEGIN IMMEDIATE ... COMMIT` (group commit), so
an order is on disk before its acknowledgement without paying one fsync per order. Reads
(queries of history, the dashboard) use a separate aiosqlite connection, which WAL lets
run beside the writer.

Money is stored as exact decimal TEXT (`format(d, "f")`), never REAL.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiosqlite

from . import jsonutil
from .engine.model import (
    Balance,
    Event,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    Side,
)
from .engine.state import Txn

log = logging.getLogger("proxy.store")

MIGRATIONS: tuple[str, ...] = (
    # 1: the initial schema
    """
    CREATE TABLE accounts (
        id INTEGER PRIMARY KEY,
        api_key TEXT NOT NULL UNIQUE,
        mx_deduct INTEGER NOT NULL DEFAULT 0,
        created_ms INTEGER NOT NULL,
        reset_ms INTEGER
    );
    CREATE TABLE balances (
        account_id INTEGER NOT NULL,
        asset TEXT NOT NULL,
        free TEXT NOT NULL,
        locked TEXT NOT NULL,
        PRIMARY KEY (account_id, asset)
    ) WITHOUT ROWID;
    CREATE TABLE orders (
        seq INTEGER PRIMARY KEY,
        order_id TEXT NOT NULL UNIQUE,
        account_id INTEGER NOT NULL,
        symbol TEXT NOT NULL,
        client_order_id TEXT,
        side TEXT NOT NULL,
        type TEXT NOT NULL,
        status TEXT NOT NULL,
        price TEXT NOT NULL,
        orig_qty TEXT NOT NULL,
        quote_order_qty TEXT,
        orig_quote_order_qty TEXT NOT NULL,
        executed_qty TEXT NOT NULL,
        cumm_quote_qty TEXT NOT NULL,
        time_ms INTEGER NOT NULL,
        update_ms INTEGER NOT NULL,
        locked_asset TEXT NOT NULL,
        locked_amount TEXT NOT NULL,
        maker_fee TEXT NOT NULL,
        taker_fee TEXT NOT NULL,
        base_asset TEXT NOT NULL,
        quote_asset TEXT NOT NULL,
        queue_ahead TEXT,
        fill_count INTEGER NOT NULL,
        is_open INTEGER NOT NULL
    );
    CREATE INDEX orders_account_symbol_time ON orders (account_id, symbol, time_ms);
    CREATE UNIQUE INDEX orders_client_id ON orders (account_id, client_order_id)
        WHERE client_order_id IS NOT NULL;
    CREATE INDEX orders_open ON orders (is_open) WHERE is_open = 1;
    CREATE TABLE fills (
        trade_id TEXT PRIMARY KEY,
        order_id TEXT NOT NULL,
        account_id INTEGER NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        price TEXT NOT NULL,
        qty TEXT NOT NULL,
        quote_qty TEXT NOT NULL,
        commission TEXT NOT NULL,
        commission_asset TEXT NOT NULL,
        is_maker INTEGER NOT NULL,
        time_ms INTEGER NOT NULL,
        client_order_id TEXT,
        reason TEXT NOT NULL
    );
    CREATE INDEX fills_account_symbol_time ON fills (account_id, symbol, time_ms);
    CREATE INDEX fills_order ON fills (order_id);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time_ms INTEGER NOT NULL,
        account_id INTEGER,
        kind TEXT NOT NULL,
        mode TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX events_account ON events (account_id, id);
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE equity (
        account_id INTEGER NOT NULL,
        time_ms INTEGER NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (account_id, time_ms)
    ) WITHOUT ROWID;
    """,
)


class StoreError(Exception):
    """A write did not reach the disk; the in-memory state must be reloaded."""


def _s(d: Decimal | None) -> str | None:
    return None if d is None else format(d, "f")


def _order_row(o: Order) -> tuple[Any, ...]:
    return (
        o.seq, o.order_id, o.account_id, o.symbol, o.client_order_id, o.side.value,
        o.type.value, o.status.value, _s(o.price), _s(o.orig_qty), _s(o.quote_order_qty),
        _s(o.orig_quote_order_qty), _s(o.executed_qty), _s(o.cumm_quote_qty), o.time_ms,
        o.update_ms, o.locked_asset, _s(o.locked_amount), _s(o.maker_fee), _s(o.taker_fee),
        o.base_asset, o.quote_asset, _s(o.queue_ahead), o.fill_count, 1 if o.is_open else 0,
    )


ORDER_COLUMNS = (
    "seq, order_id, account_id, symbol, client_order_id, side, type, status, price, "
    "orig_qty, quote_order_qty, orig_quote_order_qty, executed_qty, cumm_quote_qty, "
    "time_ms, update_ms, locked_asset, locked_amount, maker_fee, taker_fee, base_asset, "
    "quote_asset, queue_ahead, fill_count, is_open"
)
_UPSERT_ORDER = (
    f"INSERT INTO orders ({ORDER_COLUMNS}) VALUES ({', '.join('?' * 25)}) "
    "ON CONFLICT(seq) DO UPDATE SET status=excluded.status, executed_qty=excluded.executed_qty,"
    " cumm_quote_qty=excluded.cumm_quote_qty, update_ms=excluded.update_ms,"
    " locked_amount=excluded.locked_amount, queue_ahead=excluded.queue_ahead,"
    " fill_count=excluded.fill_count, is_open=excluded.is_open"
)
_UPSERT_BALANCE = (
    "INSERT INTO balances (account_id, asset, free, locked) VALUES (?, ?, ?, ?) "
    "ON CONFLICT(account_id, asset) DO UPDATE SET free=excluded.free, locked=excluded.locked"
)
_INSERT_FILL = (
    "INSERT INTO fills (trade_id, order_id, account_id, symbol, side, price, qty, quote_qty,"
    " commission, commission_asset, is_maker, time_ms, client_order_id, reason)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_EVENT = "INSERT INTO events (time_ms, account_id, kind, mode, data) VALUES (?, ?, ?, ?, ?)"


def order_from_row(r: sqlite3.Row | tuple[Any, ...]) -> Order:
    (
        seq, order_id, account_id, symbol, client_order_id, side, type_, status, price,
        orig_qty, quote_order_qty, orig_quote, executed, cumm, time_ms, update_ms,
        locked_asset, locked_amount, maker_fee, taker_fee, base_asset, quote_asset,
        queue_ahead, fill_count, _is_open,
    ) = tuple(r)
    return Order(
        order_id=order_id,
        seq=seq,
        account_id=account_id,
        symbol=symbol,
        side=Side(side),
        type=OrderType(type_),
        price=Decimal(price),
        orig_qty=Decimal(orig_qty),
        quote_order_qty=None if quote_order_qty is None else Decimal(quote_order_qty),
        orig_quote_order_qty=Decimal(orig_quote),
        client_order_id=client_order_id,
        status=OrderStatus(status),
        executed_qty=Decimal(executed),
        cumm_quote_qty=Decimal(cumm),
        time_ms=time_ms,
        update_ms=update_ms,
        locked_asset=locked_asset,
        locked_amount=Decimal(locked_amount),
        maker_fee=Decimal(maker_fee),
        taker_fee=Decimal(taker_fee),
        base_asset=base_asset,
        quote_asset=quote_asset,
        queue_ahead=None if queue_ahead is None else Decimal(queue_ahead),
        armed_seq=0,
        fill_count=fill_count,
    )


FILL_COLUMNS = (
    "trade_id, order_id, account_id, symbol, side, price, qty, quote_qty, commission,"
    " commission_asset, is_maker, time_ms, client_order_id, reason"
)


def fill_from_row(r: sqlite3.Row | tuple[Any, ...]) -> Fill:
    (
        trade_id, order_id, account_id, symbol, side, price, qty, quote_qty, commission,
        commission_asset, is_maker, time_ms, client_order_id, reason,
    ) = tuple(r)
    return Fill(
        trade_id=trade_id,
        order_id=order_id,
        account_id=account_id,
        symbol=symbol,
        side=Side(side),
        price=Decimal(price),
        qty=Decimal(qty),
        quote_qty=Decimal(quote_qty),
        commission=Decimal(commission),
        commission_asset=commission_asset,
        is_maker=bool(is_maker),
        time_ms=time_ms,
        client_order_id=client_order_id,
        reason=jsonutil.loads(reason),
    )


@dataclass(slots=True)
class Changes:
    """Everything one batch writes. Later versions of an order or balance replace earlier."""

    orders: dict[int, Order] = field(default_factory=dict)
    balances: dict[tuple[int, str], Balance] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    events: list[tuple[Event, str]] = field(default_factory=list)
    statements: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    @classmethod
    def from_txn(cls, txn: Txn, mode: str) -> Changes:
        return cls(
            {o.seq: o for o in txn.orders.values()},
            dict(txn.balances),
            list(txn.fills),
            [(e, mode) for e in txn.events],
        )

    def merge(self, other: Changes) -> None:
        self.orders.update(other.orders)
        self.balances.update(other.balances)
        self.fills.extend(other.fills)
        self.events.extend(other.events)
        self.statements.extend(other.statements)


@dataclass(slots=True)
class LoadedState:
    accounts: list[tuple[int, str, bool]]
    balances: list[tuple[int, Balance]]
    open_orders: list[Order]
    max_seq: int | None


class Store:
    def __init__(self, path: str, synchronous: str = "FULL") -> None:
        self.path = path
        self.synchronous = synchronous
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._conn: sqlite3.Connection | None = None
        self.reader: aiosqlite.Connection | None = None
        self._pending: list[tuple[Changes, asyncio.Future[None] | None]] = []
        self._wake: asyncio.Event | None = None
        self._writer_task: asyncio.Task[None] | None = None
        self._closing = False
        self.on_failure: Callable[[BaseException], None] | None = None
        self.batches = 0
        self.batched_items = 0
        self.healthy = True
        self._lock = threading.Lock()

    # ---- lifecycle ----
    async def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._open_writer)
        self.reader = await aiosqlite.connect(self.path)
        await self.reader.execute("PRAGMA query_only = 1")
        await self.reader.execute("PRAGMA cache_size = -16384")
        self._wake = asyncio.Event()
        self._writer_task = asyncio.create_task(self._writer_loop(), name="sqlite-group-commit")

    def _open_writer(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("PRAGMA cache_size = -32768")
        conn.execute("PRAGMA temp_store = MEMORY")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for i, script in enumerate(MIGRATIONS[version:], start=version + 1):
            conn.execute("BEGIN IMMEDIATE")
            try:
                for stmt in script.split(";"):
                    if stmt.strip():
                        conn.execute(stmt)
                conn.execute(f"PRAGMA user_version = {i}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            log.info("storage migrated to schema version %d", i)
        self._conn = conn

    async def close(self) -> None:
        self._closing = True
        if self._writer_task is not None:
            assert self._wake is not None
            self._wake.set()
            await self._writer_task
        if self.reader is not None:
            await self.reader.close()
            self.reader = None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close_writer)
        self._executor.shutdown(wait=True)

    def _close_writer(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # ---- loading ----
    async def load(self) -> LoadedState:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._load)

    def _load(self) -> LoadedState:
        c = self._conn
        assert c is not None
        accounts = [(r[0], r[1], bool(r[2])) for r in c.execute(
            "SELECT id, api_key, mx_deduct FROM accounts ORDER BY id")]
        balances = [
            (r[0], Balance(r[1], Decimal(r[2]), Decimal(r[3])))
            for r in c.execute("SELECT account_id, asset, free, locked FROM balances")
        ]
        open_orders = [
            order_from_row(r)
            for r in c.execute(f"SELECT {ORDER_COLUMNS} FROM orders WHERE is_open = 1 ORDER BY seq")
        ]
        max_seq = c.execute("SELECT MAX(seq) FROM orders").fetchone()[0]
        floor = c.execute("SELECT value FROM meta WHERE key = 'seq_floor'").fetchone()
        if floor is not None:
            max_seq = max(max_seq or 0, int(floor[0]))
        return LoadedState(accounts, balances, open_orders, max_seq)

    async def ensure_account(
        self, api_key: str, balances: dict[str, Decimal], now_ms: int, mode: str
    ) -> tuple[int, bool]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, self._ensure_account, api_key, balances, now_ms, mode
        )

    def _ensure_account(
        self, api_key: str, balances: dict[str, Decimal], now_ms: int, mode: str
    ) -> tuple[int, bool]:
        c = self._conn
        assert c is not None
        row = c.execute("SELECT id FROM accounts WHERE api_key = ?", (api_key,)).fetchone()
        if row is not None:
            return row[0], False
        c.execute("BEGIN IMMEDIATE")
        try:
            cur = c.execute(
                "INSERT INTO accounts (api_key, created_ms) VALUES (?, ?)", (api_key, now_ms)
            )
            account_id = int(cur.lastrowid or 0)
            c.executemany(
                "INSERT INTO balances (account_id, asset, free, locked) VALUES (?, ?, ?, '0')",
                [(account_id, a, _s(v)) for a, v in balances.items()],
            )
            c.execute(
                _INSERT_EVENT,
                (now_ms, account_id, "account.created", mode,
                 jsonutil.dumps({"balances": balances}).decode()),
            )
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return account_id, True

    # ---- group commit ----
    async def commit(self, changes: Changes) -> None:
        """Queue `changes` and wait until they are durable."""
        if self._closing:
            raise StoreError("store is closing")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((changes, fut))
        assert self._wake is not None
        self._wake.set()
        await fut

    def submit(self, changes: Changes) -> None:
        """Queue changes nobody waits for (audit entries of rejected requests). Their
        data is serialised here first: an entry that cannot be written is dropped (and
        logged) instead of failing the group-commit batch of other clients' orders."""
        if self._closing or self._wake is None:
            return
        try:
            for e, _mode in changes.events:
                jsonutil.dumps(e.data)
        except TypeError as exc:  # orjson.JSONEncodeError
            log.error("audit entry %s dropped: it cannot be serialised (%s)",
                      changes.events[0][0].kind if changes.events else "?", exc)
            return
        self._pending.append((changes, None))
        self._wake.set()

    async def flush(self) -> None:
        """Wait until everything queued so far is written."""
        await self.commit(Changes())

    async def _writer_loop(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._pending:
                if self._closing:
                    return
                continue
            batch, self._pending = self._pending, []
            merged = Changes()
            for ch, _ in batch:
                merged.merge(ch)
            try:
                await loop.run_in_executor(self._executor, self._write, merged)
            except BaseException as exc:  # the disk said no: nothing of the batch is durable
                self.healthy = False
                log.critical("storage write failed, %d commands rejected: %s", len(batch), exc)
                for _, fut in batch:
                    if fut is not None and not fut.done():
                        fut.set_exception(StoreError(str(exc)))
                if self.on_failure is not None:
                    self.on_failure(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            self.healthy = True
            self.batches += 1
            self.batched_items += len(batch)
            for _, fut in batch:
                if fut is not None and not fut.done():
                    fut.set_result(None)
            if self._pending:
                self._wake.set()

    def _write(self, ch: Changes) -> None:
        c = self._conn
        assert c is not None
        c.execute("BEGIN IMMEDIATE")
        try:
            if ch.orders:
                c.executemany(_UPSERT_ORDER, [_order_row(o) for o in ch.orders.values()])
            if ch.balances:
                c.executemany(
                    _UPSERT_BALANCE,
                    [(a, b.asset, _s(b.free), _s(b.locked)) for (a, _), b in ch.balances.items()],
                )
            if ch.fills:
                c.executemany(
                    _INSERT_FILL,
                    [
                        (
                            f.trade_id, f.order_id, f.account_id, f.symbol, f.side.value,
                            _s(f.price), _s(f.qty), _s(f.quote_qty), _s(f.commission),
                            f.commission_asset, 1 if f.is_maker else 0, f.time_ms,
                            f.client_order_id, jsonutil.dumps(f.reason).decode(),
                        )
                        for f in ch.fills
                    ],
                )
            if ch.events:
                c.executemany(
                    _INSERT_EVENT,
                    [
                        (e.time_ms, e.account_id, e.kind, mode, jsonutil.dumps(e.data).decode())
                        for e, mode in ch.events
                    ],
                )
            for sql, params in ch.statements:
                c.execute(sql, params)
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    # ---- reads (aiosqlite) ----
    async def _fetchall(self, sql: str, params: Iterable[Any]) -> list[Any]:
        """Execute and fetch in ONE call on the reader thread. Separate execute/fetch
        calls let concurrent reads overlap on the shared connection, which then never
        leaves its read transaction and keeps serving a stale WAL snapshot: an order
        acknowledged a moment ago would read as "Order does not exist"."""
        assert self.reader is not None
        return list(await self.reader.execute_fetchall(sql, tuple(params)))

    async def get_order(
        self, account_id: int, order_id: str | None = None, client_order_id: str | None = None
    ) -> Order | None:
        if order_id is not None:
            rows = await self._fetchall(
                f"SELECT {ORDER_COLUMNS} FROM orders WHERE order_id = ? AND account_id = ?",
                (order_id, account_id),
            )
        else:
            rows = await self._fetchall(
                f"SELECT {ORDER_COLUMNS} FROM orders WHERE account_id = ? AND client_order_id = ?",
                (account_id, client_order_id),
            )
        return order_from_row(rows[0]) if rows else None

    async def client_id_exists(self, account_id: int, client_order_id: str) -> bool:
        rows = await self._fetchall(
            "SELECT 1 FROM orders WHERE account_id = ? AND client_order_id = ? LIMIT 1",
            (account_id, client_order_id),
        )
        return bool(rows)

    async def orders(
        self,
        account_id: int,
        symbol: str | None,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
        newest_first: bool = False,
        statuses: tuple[str, ...] | None = None,
    ) -> list[Order]:
        sql = f"SELECT {ORDER_COLUMNS} FROM orders WHERE account_id = ?"
        params: list[Any] = [account_id]
        if symbol is not None:
            sql += " AND symbol = ?"
            params.append(symbol)
        if start_ms is not None:
            sql += " AND time_ms >= ?"
            params.append(start_ms)
        if end_ms is not None:
            sql += " AND time_ms <= ?"
            params.append(end_ms)
        if statuses:
            sql += f" AND status IN ({', '.join('?' * len(statuses))})"
            params.extend(statuses)
        if newest_first or start_ms is None:
            sql += " ORDER BY time_ms DESC, seq DESC LIMIT ?"
            params.append(limit)
            rows = await self._fetchall(sql, params)
            out = [order_from_row(r) for r in rows]
            return out if newest_first else out[::-1]
        sql += " ORDER BY time_ms, seq LIMIT ?"
        params.append(limit)
        return [order_from_row(r) for r in await self._fetchall(sql, params)]

    async def fills(
        self,
        account_id: int,
        symbol: str | None,
        order_id: str | None,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
        newest_first: bool = False,
    ) -> list[Fill]:
        sql = f"SELECT {FILL_COLUMNS} FROM fills WHERE account_id = ?"
        params: list[Any] = [account_id]
        if symbol is not None:
            sql += " AND symbol = ?"
            params.append(symbol)
        if order_id is not None:
            sql += " AND order_id = ?"
            params.append(order_id)
        if start_ms is not None:
            sql += " AND time_ms >= ?"
            params.append(start_ms)
        if end_ms is not None:
            sql += " AND time_ms <= ?"
            params.append(end_ms)
        if newest_first or start_ms is None:
            sql += " ORDER BY time_ms DESC, rowid DESC LIMIT ?"
            params.append(limit)
            out = [fill_from_row(r) for r in await self._fetchall(sql, params)]
            return out if newest_first else out[::-1]
        sql += " ORDER BY time_ms, rowid LIMIT ?"
        params.append(limit)
        return [fill_from_row(r) for r in await self._fetchall(sql, params)]

    async def fills_of_orders(self, order_ids: list[str]) -> list[Fill]:
        if not order_ids:
            return []
        sql = (
            f"SELECT {FILL_COLUMNS} FROM fills WHERE order_id IN "
            f"({', '.join('?' * len(order_ids))}) ORDER BY time_ms, rowid"
        )
        return [fill_from_row(r) for r in await self._fetchall(sql, order_ids)]

    async def events(
        self,
        account_id: int | None = None,
        kind: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[dict[str, Any]]:
        sql = "SELECT id, time_ms, account_id, kind, mode, data FROM events WHERE 1=1"
        params: list[Any] = []
        if account_id is not None:
            sql += " AND account_id = ?"
            params.append(account_id)
        if kind:
            sql += " AND kind LIKE ?"
            params.append(kind.rstrip("*") + "%")
        if before_id is not None:
            sql += " AND id < ?"
            params.append(before_id)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        return [
            {"id": r[0], "time": r[1], "account_id": r[2], "kind": r[3], "mode": r[4],
             "data": jsonutil.loads(r[5])}
            for r in await self._fetchall(sql, params)
        ]

    async def equity(self, account_id: int, limit: int = 1000) -> list[tuple[int, Decimal]]:
        rows = await self._fetchall(
            "SELECT time_ms, value FROM equity WHERE account_id = ? ORDER BY time_ms DESC LIMIT ?",
            (account_id, limit),
        )
        return [(r[0], Decimal(r[1])) for r in reversed(rows)]

    async def count(self, table: str) -> int:
        assert table in ("orders", "fills", "events", "accounts")
        rows = await self._fetchall(f"SELECT COUNT(*) FROM {table}", ())
        return int(rows[0][0])

    async def integrity_check(self) -> str:
        rows = await self._fetchall("PRAGMA integrity_check", ())
        return str(rows[0][0])


def reset_statements(
    account_id: int, balances: dict[str, Decimal], now_ms: int, next_seq: int
) -> list[tuple[str, tuple[Any, ...]]]:
    """SQL that wipes one account's orders, fills and equity and restores its balances.
    Order ids are never reused: the id counter's high-water mark is kept in `meta`."""
    stmts: list[tuple[str, tuple[Any, ...]]] = [
        (
            "INSERT INTO meta (key, value) VALUES ('seq_floor', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (str(next_seq - 1),),
        ),
        ("DELETE FROM orders WHERE account_id = ?", (account_id,)),
        ("DELETE FROM fills WHERE account_id = ?", (account_id,)),
        ("DELETE FROM equity WHERE account_id = ?", (account_id,)),
        ("DELETE FROM balances WHERE account_id = ?", (account_id,)),
        ("UPDATE accounts SET reset_ms = ? WHERE id = ?", (now_ms, account_id)),
    ]
    for asset, amount in balances.items():
        stmts.append(
            (
                "INSERT INTO balances (account_id, asset, free, locked) VALUES (?, ?, ?, '0')",
                (account_id, asset, _s(amount)),
            )
        )
    return stmts
