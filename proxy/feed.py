"""The change feed: every committed command's changes, as typed records, after durability.

`PaperService` has one commit path (`service._commit`): a command's writes are installed
in memory and queued for the disk in the same event-loop step, so memory and disk see
commands in the same order. When the store reports a batch durable, each command's
`Committed` record is published here, in commit order; a batch that failed publishes
nothing (its state is reloaded from the disk instead). Subscribers (the WebSocket user
streams, the equity recorder, the dashboard) get the records synchronously, one call per
record, and must neither block nor raise: a subscriber that needs to do work queues the
record in a `FeedQueue` of its own, bounded, and is cut off when it falls too far behind
(never waited for: a slow reader cannot delay an order's acknowledgement or another
reader).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .engine.model import Balance, Fill, Order

log = logging.getLogger("proxy.feed")

# Committed.kind values
ORDER_NEW = "order.new"  # one order placed (REST POST /api/v3/order)
ORDER_BATCH = "order.batch"  # the accepted orders of one batchOrders request
ORDER_CANCEL = "order.cancel"  # one order cancelled
ORDER_CANCEL_ALL = "order.cancel_all"  # openOrders / order/all cancelled
MARKET = "market"  # resting orders filled from public market activity
ACCOUNT_RESET = "account.reset"
ACCOUNT_FUND = "account.fund"
ACCOUNT_SET_BALANCE = "account.set_balance"
ACCOUNT_MX_DEDUCT = "account.mx_deduct"
MODE_SWITCH = "mode.switch"


@dataclass(frozen=True, slots=True)
class BalanceChange:
    """One asset of one account across one command: the balance before and after."""

    account_id: int
    asset: str
    before: Balance
    after: Balance


@dataclass(frozen=True, slots=True)
class Committed:
    """One command's changes, published once they are on disk.

    `orders` holds the new version of every order the command changed, in the order they
    were first changed (an order accepted and filled by the same command appears once, in
    its final state; `fills` tells the steps in between). A reset lists the account's open
    orders as CANCELED versions and every asset's balance before and after. Every order,
    fill and balance carries its account id: a market update can touch several accounts.
    """

    seq: int  # 1, 2, 3 ... in commit order, within this process
    kind: str
    time_ms: int
    account_id: int | None  # the account a command was for; None for market updates and mode switches
    orders: tuple[Order, ...] = ()
    fills: tuple[Fill, ...] = ()
    balances: tuple[BalanceChange, ...] = ()
    reset: int | None = None  # the account id that was reset
    mode: tuple[str, str] | None = None  # (from, to) of a mode switch
    mx_deduct: bool | None = None  # the new setting of an account.mx_deduct command

    def accounts(self) -> set[int]:
        """Every account this record concerns."""
        out = {o.account_id for o in self.orders}
        out.update(f.account_id for f in self.fills)
        out.update(b.account_id for b in self.balances)
        if self.account_id is not None:
            out.add(self.account_id)
        return out


Subscriber = Callable[[Committed], None]


class ChangeFeed:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self.published = 0  # the seq of the last record published

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call `callback(record)` for every record from now on; returns the unsubscribe."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            try:
                self._subscribers.remove(callback)
            except ValueError:
                pass

        return unsubscribe

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, record: Committed) -> None:
        self.published = record.seq
        for callback in tuple(self._subscribers):
            try:
                callback(record)
            except Exception:  # a subscriber's bug must not stop the others
                log.exception("change-feed subscriber %r failed; removed", callback)
                try:
                    self._subscribers.remove(callback)
                except ValueError:
                    pass


class FeedOverflow(Exception):
    """The reader fell more than `maxsize` records behind and was cut off."""


class FeedQueue:
    """A bounded queue of records for one reader. When full, the reader is cut off: the
    queue is closed, what it held is dropped, and `get()` raises FeedOverflow."""

    def __init__(
        self, feed: ChangeFeed, maxsize: int, accept: Callable[[Committed], bool] | None = None
    ) -> None:
        self.maxsize = maxsize
        self._accept = accept
        self._items: deque[Committed] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.overflowed = False
        self.closed = False
        self._unsubscribe = feed.subscribe(self._put)

    def _put(self, record: Committed) -> None:
        if self.closed or (self._accept is not None and not self._accept(record)):
            return
        if len(self._items) >= self.maxsize:
            self.overflowed = True
            self.close()
            return
        self._items.append(record)
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def __len__(self) -> int:
        return len(self._items)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._unsubscribe()
            self._items.clear()
            self._wake()

    def get_nowait(self) -> Committed | None:
        if self.overflowed:
            raise FeedOverflow
        return self._items.popleft() if self._items else None

    async def get(self) -> Committed:
        """The next record; FeedOverflow once cut off; asyncio.CancelledError-safe.
        After `close()` without overflow, raises EOFError."""
        while True:
            if self.overflowed:
                raise FeedOverflow
            if self._items:
                return self._items.popleft()
            if self.closed:
                raise EOFError
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
