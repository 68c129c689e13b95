"""The change feed: every committed command's changes, as typed records, after durability.

`PaperService` has one commit path (`service._commit`): a command's writes are installed
in memory and queued for the disk in the same event-loop step, so memory and disk see
commands in the same order. When the store reports a batch durable, each command's
`Committed` record is published here, in commit order; a batch that failed publishes
nothing (its state is reloaded from the disk instead). Subscribers get the records
synchronously, one call per record, and must neither block nor raise:
  - the WebSocket hub (proxy/ws/streams.py) turns a record into pushes and queues them
    per connection, bounded: a connection that falls too far behind is cut off, never
    waited for, so a slow reader cannot delay an order's acknowledgement or another reader;
  - the equity recorder marks a change (and a reset, which records at once);
  - the dashboard's PnL ledgers (equity.PnlCache) mark the accounts with new fills, so a
    page polled every second reads the store only when something happened;
  - the market watcher starts watching a symbol when its first order rests.
"""

from __future__ import annotations

import logging
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
        self.failures = 0  # subscriber calls that raised
        self._failed: set[Subscriber] = set()

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
                # kept subscribed: dropping it would silently end, say, every push while
                # the sockets stay open; its failures are counted and logged (the first
                # one with its traceback)
                self.failures += 1
                if callback not in self._failed:
                    self._failed.add(callback)
                    log.exception("change-feed subscriber %r failed (kept; further "
                                  "failures counted in ChangeFeed.failures)", callback)
