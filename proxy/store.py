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
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
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
from .private import make_private_file

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
    # 2: user-data-stream listenKeys (POST/PUT/DELETE /api/v3/userDataStream); they
    # survive a restart as they survive a MEXC blip
    """
    CREATE TABLE listen_keys (
        listen_key TEXT PRIMARY KEY,
        account_id INTEGER NOT NULL,
        created_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL
    );
    CREATE INDEX listen_keys_account ON listen_keys (account_id, created_ms);
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


_STOP = object()  # the writer thread's last queue item
_AFTER_FAILURE = StoreError("not written: accepted on top of a write that failed")


@dataclass(slots=True)
class _Batch:
    """One event-loop iteration's commands, as SQL, and who waits for them."""

    statements: list[tuple[str, Sequence[Any]]]
    group: list[tuple[Changes, asyncio.Future[None] | None]]
    # set when the SQL could not be built: settled in queue order, never executed
    error: Exception | None = None
    # Store.generation when it was handed to the writer: a batch of a generation whose
    # write (or build) failed is never executed (see Store._thread_main)
    gen: int = 0


# Multi-row statements: `INSERT ... VALUES (...), (...), ...` in chunks of a power of two
# rows. Each statement is one sqlite3_step, and every step releases and retakes the GIL,
# which the event-loop thread holds most of the time: one statement per row (executemany)
# made the writer and the event loop trade the GIL dozens of times per batch. Power-of-two
# chunks keep the number of distinct statements (and prepared-statement cache entries) small.
_MAX_CHUNK = 256
_MULTI_SQL: dict[tuple[str, int], str] = {}


def _multi_sql(sql: str, rows: int) -> str:
    text = _MULTI_SQL.get((sql, rows))
    if text is None:
        head, _, rest = sql.partition(" VALUES (")
        placeholders, _, tail = rest.partition(")")
        values = ", ".join(["(" + placeholders + ")"] * rows)
        text = _MULTI_SQL[(sql, rows)] = f"{head} VALUES {values}{tail}"
    return text


def _row_statements(
    out: list[tuple[str, Sequence[Any]]], sql: str, rows: list[tuple[Any, ...]], max_vars: int
) -> None:
    """Append to `out` the statements that do `executemany(sql, rows)` in fewer steps;
    `sql` is one `INSERT ... VALUES (?, ...)` with an optional tail (`ON CONFLICT ...`)."""
    most = max(1, min(_MAX_CHUNK, max_vars // len(rows[0])))
    i, n = 0, len(rows)
    while i < n:
        size = min(most, 1 << ((n - i).bit_length() - 1))
        if size == 1:
            out.append((sql, rows[i]))
        else:
            out.append((_multi_sql(sql, size), [v for row in rows[i : i + size] for v in row]))
        i += size


def _settle(fut: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if fut.done():  # its waiter was cancelled
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)


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
    # what to publish once these changes are durable (a feed.Committed); handed to
    # `Store.on_durable` in commit order, never when the batch fails
    record: Any = None

    @classmethod
    def from_txn(cls, txn: Txn, mode: str) -> Changes:
        return cls(
            {o.seq: o for o in txn.orders.values()},
            dict(txn.balances),
            list(txn.fills),
            [(e, mode) for e in txn.events],
        )

    def merge(self, other: Changes) -> None:
        """Add `other`'s writes (its `record` stays its own: group items keep theirs)."""
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
    meta: dict[str, str] = field(default_factory=dict)


class Store:
    def __init__(self, path: str, synchronous: str = "FULL") -> None:
        self.path = path
        self.synchronous = synchronous
        self._conn: sqlite3.Connection | None = None
        self._max_vars = 999
        self.reader: aiosqlite.Connection | None = None
        # The writer thread owns `_conn`: everything that touches it (open, load, account
        # creation, group commits, close) is an item of this queue, run in order.
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # changes queued in this event-loop iteration, handed to the thread at its end
        self._pending: list[tuple[Changes, asyncio.Future[None] | None]] = []
        self._handoff_scheduled = False
        self._closing = False
        self.on_failure: Callable[[BaseException], None] | None = None
        # called with each committed Changes.record, in commit order, after its batch is
        # durable and before its waiter resumes
        self.on_durable: Callable[[Any], None] | None = None
        self.batches = 0
        self.batched_items = 0
        self.healthy = True
        # Failure containment. Commands are installed in memory before they are written,
        # so a command queued behind one whose write failed was computed on memory that
        # held the failed one (balances are written as absolute values): writing it would
        # put part of the failed command on disk. `generation` (loop thread) moves on when
        # a failure is known; the writer never executes a batch of a generation at or
        # below `_failed_gen` (writer thread), and what was still pending fails with it.
        self.generation = 0
        self._failed_gen = -1

    # ---- lifecycle ----
    async def open(self) -> None:
        if self.path != ":memory:":
            make_private_file(self.path)  # owner-only, so are its -wal and -shm
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._thread_main, name="sqlite-writer", daemon=True)
        self._thread.start()
        await self._call(self._open_writer)
        self.reader = await aiosqlite.connect(self.path)
        await self.reader.execute("PRAGMA query_only = 1")
        await self.reader.execute("PRAGMA cache_size = -16384")

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` on the writer thread, after everything queued before it."""
        if self._thread is None or (self._closing and fn != self._close_writer):
            # (after close nothing reads the queue: the call would wait forever)
            raise StoreError("store is closing")
        assert self._loop is not None
        fut = self._loop.create_future()
        self._queue.put((fn, args, fut))
        return await fut

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
        # (older SQLite builds allow only 999 bound variables per statement)
        self._max_vars = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        self._conn = conn

    async def close(self) -> None:
        self._closing = True
        if self._thread is None:
            return
        if self._pending:
            self._handoff()
        if self.reader is not None:
            await self.reader.close()
            self.reader = None
        await self._call(self._close_writer)
        self._queue.put(_STOP)
        self._thread.join()
        self._thread = None

    def _close_writer(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # ---- loading ----
    async def load(self) -> LoadedState:
        return await self._call(self._load)

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
        meta = {str(k): str(v) for k, v in c.execute("SELECT key, value FROM meta")}
        floor = meta.get("seq_floor")
        if floor is not None:
            max_seq = max(max_seq or 0, int(floor))
        return LoadedState(accounts, balances, open_orders, max_seq, meta)

    async def ensure_account(
        self, api_key: str, balances: dict[str, Decimal], now_ms: int, mode: str
    ) -> tuple[int, bool]:
        return await self._call(self._ensure_account, api_key, balances, now_ms, mode)

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
    @property
    def closing(self) -> bool:
        return self._closing

    def enqueue(self, changes: Changes) -> asyncio.Future[None]:
        """Queue `changes` now (synchronously: what is queued in one call is written in
        that order); the future resolves once they are durable, or fails with StoreError."""
        if self._closing:
            raise StoreError("store is closing")
        assert self._loop is not None
        fut: asyncio.Future[None] = self._loop.create_future()
        self._queue_changes(changes, fut)
        return fut

    async def commit(self, changes: Changes) -> None:
        """Queue `changes` and wait until they are durable."""
        await self.enqueue(changes)

    def submit(self, changes: Changes) -> None:
        """Queue changes nobody waits for (audit entries of rejected requests). Their
        data is serialised here first: an entry that cannot be written is dropped (and
        logged) instead of failing the group-commit batch of other clients' orders."""
        if self._closing or self._loop is None:
            return
        try:
            for e, _mode in changes.events:
                jsonutil.dumps(e.data)
        except TypeError as exc:  # orjson.JSONEncodeError
            log.error("audit entry %s dropped: it cannot be serialised (%s)",
                      changes.events[0][0].kind if changes.events else "?", exc)
            return
        self._queue_changes(changes, None)

    async def flush(self) -> None:
        """Wait until everything queued so far is written."""
        await self.commit(Changes())

    def _queue_changes(self, changes: Changes, fut: asyncio.Future[None] | None) -> None:
        self._pending.append((changes, fut))
        if not self._handoff_scheduled:
            self._handoff_scheduled = True
            assert self._loop is not None
            # at the end of this loop iteration: every command handled in it is one batch
            self._loop.call_soon(self._handoff)

    def _handoff(self) -> None:
        self._handoff_scheduled = False
        if not self._pending:
            return
        group, self._pending = self._pending, []
        try:
            self._queue.put(_Batch(self._batch_statements(group), group, None, self.generation))
        except Exception as exc:  # a value SQLite or JSON cannot take: nothing is written
            # (through the queue, so that it is settled after the batches before it)
            self._queue.put(_Batch([], group, exc, self.generation))

    def _thread_main(self) -> None:
        """The writer thread: runs queued calls in order; batches queued while it was
        busy are written together, in one transaction (group commit)."""
        q = self._queue
        while True:
            items = [q.get()]
            while True:
                try:
                    items.append(q.get_nowait())
                except queue.Empty:
                    break
            i = 0
            while i < len(items):
                item = items[i]
                if item is _STOP:
                    return
                if isinstance(item, _Batch) and item.error is not None:
                    i += 1
                    self._failed_gen = max(self._failed_gen, item.gen)
                    if not self._post(self._settle_batch, item.group, item.error):
                        return
                    continue
                if isinstance(item, _Batch) and item.gen <= self._failed_gen:
                    i += 1
                    if not self._post(self._settle_batch, item.group, _AFTER_FAILURE, True):
                        return
                    continue
                if isinstance(item, _Batch):
                    # batches queued while the last transaction ran: one transaction
                    statements: list[tuple[str, Sequence[Any]]] = []
                    group: list[tuple[Changes, asyncio.Future[None] | None]] = []
                    gen = item.gen
                    while (
                        i < len(items) and isinstance(items[i], _Batch) and items[i].error is None
                        and items[i].gen > self._failed_gen
                    ):
                        statements.extend(items[i].statements)
                        group.extend(items[i].group)
                        gen = max(gen, items[i].gen)
                        i += 1
                    error: BaseException | None = None
                    try:
                        self._execute(statements)
                    except BaseException as exc:  # the disk said no: nothing of the batch is durable
                        error = exc
                        self._failed_gen = max(self._failed_gen, gen)
                    if not self._post(self._settle_batch, group, error):
                        return
                    continue
                fn, args, fut = item
                i += 1
                try:
                    result, error = fn(*args), None
                except BaseException as exc:
                    result, error = None, exc
                if not self._post(_settle, fut, result, error):
                    return

    def _post(self, callback: Callable[..., None], *args: Any) -> bool:
        """Hand a result back to the event loop; False once that loop is gone."""
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop was closed without closing the store
            return False
        return True

    def _settle_batch(
        self,
        group: list[tuple[Changes, asyncio.Future[None] | None]],
        error: BaseException | None,
        after_failure: bool = False,
    ) -> None:
        if error is not None:
            self.healthy = False
            if after_failure:
                log.error("%d commands rejected: they were accepted on top of a write that "
                          "failed", len(group))
            else:
                log.critical("storage write failed, %d commands rejected: %s", len(group), error)
                # what is handed to the writer from now on is of a new generation; what
                # was installed and not handed over yet fails with the failed write
                self.generation += 1
                pending, self._pending = self._pending, []
                group = group + pending
            for _, fut in group:
                if fut is not None and not fut.done():
                    fut.set_exception(StoreError(str(error)))
            if self.on_failure is not None:
                self.on_failure(error)
            return
        self.healthy = True
        self.batches += 1
        self.batched_items += len(group)
        publish = self.on_durable
        for ch, fut in group:
            if publish is not None and ch.record is not None:
                try:
                    publish(ch.record)
                except Exception:  # a publishing bug must not leave waiters hanging
                    log.exception("publishing a committed change failed")
            if fut is not None and not fut.done():
                fut.set_result(None)

    def _batch_statements(
        self, group: list[tuple[Changes, asyncio.Future[None] | None]]
    ) -> list[tuple[str, Sequence[Any]]]:
        """The SQL of a batch, in the order its commands were queued. Row writes of
        consecutive commands are merged (later versions of an order or balance replace
        earlier ones) into multi-row statements; a command with raw statements (a
        reset's DELETEs, a mode pin, an equity point) is a barrier: the rows queued before
        it are written before it, the rows after it after it. (Writing every row of the
        batch first let a reset wipe, on disk, an order accepted after it in the same
        event-loop iteration, which memory kept.)"""
        out: list[tuple[str, Sequence[Any]]] = []
        merged: Changes | None = None
        for ch, _ in group:
            if ch.statements:
                if merged is not None:
                    out.extend(self._statements(merged))
                    merged = None
                out.extend(self._statements(ch))
                continue
            if merged is None:
                merged = Changes()
            merged.merge(ch)
        if merged is not None:
            out.extend(self._statements(merged))
        return out

    def _statements(self, ch: Changes) -> list[tuple[str, Sequence[Any]]]:
        """The SQL of one batch, built on the event-loop thread: the writer thread then
        only executes it, and needs the GIL for a few calls instead of for all the row
        building (two threads trading the GIL cost the event loop more than the work)."""
        out: list[tuple[str, Sequence[Any]]] = []
        mv = self._max_vars
        if ch.orders:
            _row_statements(out, _UPSERT_ORDER, [_order_row(o) for o in ch.orders.values()], mv)
        if ch.balances:
            _row_statements(
                out,
                _UPSERT_BALANCE,
                [(a, b.asset, _s(b.free), _s(b.locked)) for (a, _), b in ch.balances.items()],
                mv,
            )
        if ch.fills:
            _row_statements(
                out,
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
                mv,
            )
        if ch.events:
            _row_statements(
                out,
                _INSERT_EVENT,
                [
                    (e.time_ms, e.account_id, e.kind, mode, jsonutil.dumps(e.data).decode())
                    for e, mode in ch.events
                ],
                mv,
            )
        out.extend(ch.statements)
        return out

    def _execute(self, statements: list[tuple[str, Sequence[Any]]]) -> None:
        """One transaction (writer thread)."""
        c = self._conn
        assert c is not None
        c.execute("BEGIN IMMEDIATE")
        try:
            for sql, params in statements:
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

    # ---- listenKeys (proxy/ws/listenkeys.py keeps them in memory; these keep them on disk)
    async def listen_keys(self) -> list[tuple[str, int, int, int]]:
        """Every stored listenKey: (key, account id, created ms, expires ms), oldest first."""
        rows = await self._fetchall(
            "SELECT listen_key, account_id, created_ms, expires_ms FROM listen_keys"
            " ORDER BY created_ms, rowid",
            (),
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    async def put_listen_key(
        self, key: str, account_id: int, created_ms: int, expires_ms: int
    ) -> None:
        """Store a new key; durable when this returns."""
        await self.commit(Changes(statements=[(
            "INSERT INTO listen_keys (listen_key, account_id, created_ms, expires_ms)"
            " VALUES (?, ?, ?, ?)",
            (key, account_id, created_ms, expires_ms),
        )]))

    async def extend_listen_key(self, key: str, expires_ms: int) -> None:
        """A key's new expiry (a deleted key stays deleted); durable when this returns."""
        await self.commit(Changes(statements=[(
            "UPDATE listen_keys SET expires_ms = ? WHERE listen_key = ?", (expires_ms, key),
        )]))

    async def delete_listen_keys(self, keys: Sequence[str]) -> None:
        """Forget keys (deleted or expired); durable when this returns."""
        if keys:
            await self.commit(Changes(statements=[
                ("DELETE FROM listen_keys WHERE listen_key = ?", (k,)) for k in keys
            ]))

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
