"""In-memory engine state, and the transaction that records one command's writes.

The engine reads `EngineState` and writes only into a `Txn` (an overlay: reads through the
Txn see its own pending writes). The service persists the Txn, then `apply()` installs it.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from .model import ZERO, Balance, Book, Event, Fill, InvariantError, Order, Side


@dataclass(slots=True)
class AccountState:
    account_id: int
    api_key: str
    balances: dict[str, Balance] = field(default_factory=dict)
    open_orders: dict[str, Order] = field(default_factory=dict)
    # client order id -> order id, for open orders and every order placed in this process
    client_ids: dict[str, str] = field(default_factory=dict)
    mx_deduct: bool = False


@dataclass(slots=True)
class SymbolMarket:
    """What the engine knows of one symbol's market.

    `consumed` is the liquidity-consumption ledger: size paper orders have taken from the
    levels of `book`, keyed by (book side, price); BUY means the bids. A REST snapshot with
    another version clears it (nothing tells which levels changed). A book kept from the
    diff stream (`Book.incremental`) carries it over: see `Txn.set_book`. `tape_seq` counts
    public trades seen so far; a resting order only fills from trades with a higher
    sequence than when it was armed.
    """

    book: Book | None = None
    consumed: dict[tuple[Side, Decimal], Decimal] = field(default_factory=dict)
    tape_seq: int = 0


class SymbolOrders:
    """Open orders of one symbol (all accounts) in price-time priority.

    `buys` holds (-price, seq, order_id) and `sells` (price, seq, order_id), both sorted, so
    the orders a trade can reach are a prefix found by bisection: the fill models touch
    only the orders at or through the trade's price, not every resting order.
    """

    __slots__ = ("buys", "orders", "sells")

    def __init__(self) -> None:
        self.orders: dict[str, Order] = {}
        self.buys: list[tuple[Decimal, int, str]] = []
        self.sells: list[tuple[Decimal, int, str]] = []

    def __len__(self) -> int:
        return len(self.orders)

    def _key(self, o: Order) -> tuple[Decimal, int, str]:
        return (-o.price, o.seq, o.order_id) if o.side is Side.BUY else (o.price, o.seq, o.order_id)

    def put(self, o: Order) -> None:
        if o.order_id not in self.orders:
            insort(self.buys if o.side is Side.BUY else self.sells, self._key(o))
        self.orders[o.order_id] = o

    def remove(self, o: Order) -> None:
        if self.orders.pop(o.order_id, None) is None:
            return
        keys = self.buys if o.side is Side.BUY else self.sells
        k = self._key(o)
        i = bisect_left(keys, k)
        if i < len(keys) and keys[i] == k:
            del keys[i]

    def buys_at_or_above(self, price: Decimal) -> Iterator[str]:
        """Ids of resting buys with limit >= price, best first."""
        for neg, _seq, oid in self.buys:
            if -neg < price:
                break
            yield oid

    def sells_at_or_below(self, price: Decimal) -> Iterator[str]:
        for p, _seq, oid in self.sells:
            if p > price:
                break
            yield oid

    def in_priority(self) -> Iterator[str]:
        for _k, _s, oid in self.buys:
            yield oid
        for _k, _s, oid in self.sells:
            yield oid


@dataclass(slots=True)
class EngineState:
    accounts: dict[int, AccountState] = field(default_factory=dict)
    markets: dict[str, SymbolMarket] = field(default_factory=dict)
    # open orders of every account by symbol, for the fill models
    open_by_symbol: dict[str, SymbolOrders] = field(default_factory=dict)
    next_seq: int = 700_000_000_000_000_001

    def market(self, symbol: str) -> SymbolMarket:
        m = self.markets.get(symbol)
        if m is None:
            m = self.markets[symbol] = SymbolMarket()
        return m


class Txn:
    """Pending writes of one command (or one market update) over an EngineState."""

    __slots__ = (
        "balances",
        "books",
        "consumed",
        "events",
        "fills",
        "next_seq",
        "now_ms",
        "orders",
        "state",
        "tape_seq",
    )

    def __init__(self, state: EngineState, now_ms: int) -> None:
        self.state = state
        self.now_ms = now_ms
        self.balances: dict[tuple[int, str], Balance] = {}
        self.orders: dict[str, Order] = {}
        self.fills: list[Fill] = []
        self.events: list[Event] = []
        self.consumed: dict[str, dict[tuple[Side, Decimal], Decimal]] = {}
        self.books: dict[str, Book] = {}
        self.tape_seq: dict[str, int] = {}
        self.next_seq = state.next_seq

    # --- reads through the overlay ---
    def balance(self, account_id: int, asset: str) -> Balance:
        b = self.balances.get((account_id, asset))
        if b is not None:
            return b
        b = self.state.accounts[account_id].balances.get(asset)
        return b if b is not None else Balance(asset)

    def order(self, order_id: str) -> Order | None:
        return self.orders.get(order_id)

    def book(self, symbol: str) -> Book | None:
        b = self.books.get(symbol)
        return b if b is not None else self.state.market(symbol).book

    def consumed_map(self, symbol: str) -> dict[tuple[Side, Decimal], Decimal]:
        """The ledger for the current book of `symbol`, copied on first write."""
        m = self.consumed.get(symbol)
        if m is None:
            m = self.consumed[symbol] = dict(self.state.market(symbol).consumed)
        return m

    # --- writes ---
    def set_balance(self, account_id: int, bal: Balance) -> None:
        if bal.free < ZERO or bal.locked < ZERO:
            raise InvariantError(f"negative balance {bal} for account {account_id}")
        self.balances[(account_id, bal.asset)] = bal

    def put_order(self, order: Order) -> None:
        self.orders[order.order_id] = order

    def add_fill(self, fill: Fill) -> None:
        self.fills.append(fill)

    def emit(self, kind: str, account_id: int | None, **data: object) -> None:
        self.events.append(Event(kind, account_id, self.now_ms, data))

    def set_book(self, book: Book) -> None:
        """Install a newer snapshot. A new REST version resets the consumption ledger.

        A new version of an incremental book (MEXC's diff stream, every 100 ms) keeps it:
        our paper takes never happened on MEXC, so the size they took is still displayed
        there, and clearing the ledger on every push would let paper orders take the same
        displayed size again and again. Each level's share is instead capped by the
        level's new displayed size: real trades and cancels that shrink a level below
        what we took leave at most what is still shown (a deleted level forgets it), and
        size added to a level later is available on top of what we took. A level beyond
        the book's depth (not shown, not known gone) keeps its share."""
        current = self.book(book.symbol)
        if current is not None and book.seen_ms < current.seen_ms:
            return
        self.books[book.symbol] = book
        if current is None:
            self.consumed[book.symbol] = {}
        elif current.version != book.version:
            if not book.incremental:
                self.consumed[book.symbol] = {}
                return
            old = self.consumed.get(book.symbol)
            if old is None:
                old = self.state.market(book.symbol).consumed
            if old:
                self.consumed[book.symbol] = _carry_over(old, book)

    def take_seq(self) -> int:
        seq = self.next_seq
        self.next_seq += 1
        return seq

    @property
    def empty(self) -> bool:
        return not (self.balances or self.orders or self.fills or self.events)


def _carry_over(
    consumed: dict[tuple[Side, Decimal], Decimal], book: Book
) -> dict[tuple[Side, Decimal], Decimal]:
    """The ledger for a new incremental version: each share capped by its level's size."""
    out: dict[tuple[Side, Decimal], Decimal] = {}
    for (side, price), taken in consumed.items():
        levels = book.bids if side is Side.BUY else book.asks
        if not levels:
            continue
        deepest = levels[-1][0]
        beyond = price < deepest if side is Side.BUY else price > deepest
        shown = taken if beyond else book.size_at(side, price)
        kept = taken if taken < shown else shown
        if kept > 0:
            out[(side, price)] = kept
    return out


def apply(state: EngineState, txn: Txn) -> None:
    """Install a persisted Txn into the in-memory state."""
    assert txn.state is state
    accounts = state.accounts
    for (account_id, asset), bal in txn.balances.items():
        accounts[account_id].balances[asset] = bal
    for order in txn.orders.values():
        acct = accounts[order.account_id]
        by_symbol = state.open_by_symbol.get(order.symbol)
        if order.is_open:
            acct.open_orders[order.order_id] = order
            if by_symbol is None:
                by_symbol = state.open_by_symbol[order.symbol] = SymbolOrders()
            by_symbol.put(order)
        else:
            acct.open_orders.pop(order.order_id, None)
            if by_symbol is not None:
                by_symbol.remove(order)
                if not by_symbol:
                    del state.open_by_symbol[order.symbol]
        if order.client_order_id is not None:
            acct.client_ids[order.client_order_id] = order.order_id
    for symbol, book in txn.books.items():
        state.market(symbol).book = book
    for symbol, consumed in txn.consumed.items():
        state.market(symbol).consumed = consumed
    for symbol, seq in txn.tape_seq.items():
        state.market(symbol).tape_seq = seq
    state.next_seq = txn.next_seq


def check_invariants(state: EngineState) -> None:
    """Per account: every balance's free and locked are non-negative; each asset's locked
    equals the sum of `locked_amount` its open orders hold; and no open order holds an
    asset the account has no balance row for. (`Balance.total` is computed as free +
    locked, so `free + locked == total` holds by construction and is not checked here;
    conservation of money through fills is checked by the reliability tests.)"""
    for acct in state.accounts.values():
        held: dict[str, Decimal] = {}
        for o in acct.open_orders.values():
            held[o.locked_asset] = held.get(o.locked_asset, ZERO) + o.locked_amount
        for asset, bal in acct.balances.items():
            if bal.free < 0 or bal.locked < 0:
                raise InvariantError(f"negative balance {bal} in account {acct.account_id}")
            if bal.locked != held.get(asset, ZERO):
                raise InvariantError(
                    f"account {acct.account_id} {asset}: locked {bal.locked} "
                    f"!= held by open orders {held.get(asset, ZERO)}"
                )
        for asset, amount in held.items():
            if asset not in acct.balances and amount != 0:
                raise InvariantError(f"account {acct.account_id}: {asset} held without balance")
