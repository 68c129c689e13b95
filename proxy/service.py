"""Orchestration: market data in, engine, store, state swap. The API and dashboard call this.

One command = one engine run = one durable commit:
  1. gather what the engine needs from the upstream (rules, book, last price; awaits),
  2. run the pure engine on the in-memory state (synchronous: no other command can
     interleave, so the asyncio event loop is the lock),
  3. `_install` its writes: in memory (so the next command sees the reservation) and
     into the store's queue, in the same synchronous step, so memory and disk see every
     command in the same order,
  4. await the group commit; only then is the command acknowledged.
`_install` is the one commit path: orders, cancels, market fills, resets, funding,
set-balance, the MX-deduct switch and mode switches all go through it, and nothing else
writes state. Each install carries a typed `feed.Committed` record, which the store hands
back once the batch is durable, in commit order; it is then published on `self.feed`
(the WebSocket streams, the equity recorder and the dashboard subscribe there).
If a commit fails, every command in that batch gets an error, nothing of it is published,
and the in-memory state is reloaded from the database, so memory never keeps what the
disk does not have.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from . import feed, jsonutil
from .clock import Clock
from .config import AccountSettings, Settings, mask_key
from .engine import matching
from .engine.model import (
    ZERO,
    Balance,
    Event,
    Fill,
    Order,
    OrderStatus,
    Rejection,
    RejectReason,
    SymbolRules,
    Trade,
)
from .engine.rules import EngineConfig, NewOrder
from .engine.state import AccountState, EngineState, SymbolOrders, Txn, apply, check_invariants
from .errors import REJECT_TO_ERR, ApiError, Err
from .metrics import Metrics
from .store import Changes, Store, StoreError, reset_statements
from .upstream import MexcClient, UpstreamError

log = logging.getLogger("proxy.service")

MX_QUOTE_SYMBOL = "MXUSDT"
# how old an MX price maker fills may convert their fee with (ms)
MX_PRICE_MAX_AGE_MS = 5000
# meta key present while a switch to paper pins paper mode across restarts (live armed)
META_PAPER_PIN = "mode.paper_pinned"


@dataclass(frozen=True, slots=True)
class KeyInfo:
    account_id: int
    secret: bytes
    settings: AccountSettings


class ModeState:
    """The runtime mode. Live is possible only when it was armed at start (both halves of
    the mode rule); switching live -> paper is always allowed."""

    def __init__(self, armed: bool) -> None:
        self.armed = armed
        self.current = "live" if armed else "paper"

    @property
    def is_live(self) -> bool:
        return self.current == "live"

    def switch(self, mode: str) -> None:
        if mode not in ("paper", "live"):
            raise ValueError(f"unknown mode {mode!r}")
        if mode == "live" and not self.armed:
            raise PermissionError(
                "live mode was not armed at start (needs live.enabled: true in the config "
                "and PAPER_TRADING=false in the environment)"
            )
        self.current = mode


def _reject_error(rej: Rejection) -> ApiError:
    err = REJECT_TO_ERR[rej.reason]
    if rej.reason is RejectReason.INVALID_PARAMETER:
        return ApiError(err, rej.detail)
    return ApiError(err, rej.detail, **rej.params)


class PaperService:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        upstream: MexcClient,
        clock: Clock,
        metrics: Metrics,
        mode: ModeState,
    ) -> None:
        self.settings = settings
        self.store = store
        self.upstream = upstream
        self.clock = clock
        self.metrics = metrics
        self.mode = mode
        p = settings.paper
        self.cfg = EngineConfig(
            fill_model=p.fill_model,
            market_slippage_cap=p.market_slippage_cap,
            limit_maker_cross=p.limit_maker_cross,
            enforce_spot_trading_allowed=p.enforce_spot_trading_allowed,
            enforce_percent_price=p.enforce_percent_price,
            max_open_orders=p.max_open_orders,
            mx_discount=p.mx_deduct_discount,
        )
        self.state = EngineState()
        # read when /metrics is scraped, not kept up to date on every order
        metrics.open_orders.set_function(
            lambda: sum(len(a.open_orders) for a in self.state.accounts.values())
        )
        self.keys: dict[str, KeyInfo] = {}
        self.accounts: dict[int, KeyInfo] = {}
        self._reloading: asyncio.Task[None] | None = None
        # every committed command, as typed records, after durability and in commit order
        self.feed = feed.ChangeFeed()
        self._installed = 0  # the seq of the last record installed (published ones lag)
        # account id -> how many times it was reset in this process (readers that cache
        # an account's history start over when it changes)
        self.resets: dict[int, int] = {}
        # set at start when a persisted switch to paper overrides an armed live mode
        self.paper_pin: dict[str, Any] | None = None
        # a write failed and memory is not reloaded from the disk yet: nothing installs
        self.recovering = False
        self._mx_memo: tuple[float, Decimal] | None = None  # (monotonic s, MXUSDT)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        now = self.clock.now_ms()
        for acct in self.settings.accounts:
            account_id, created = await self.store.ensure_account(
                acct.api_key, self.settings.starting_balances(acct), now, self.settings.mode
            )
            info = KeyInfo(account_id, acct.secret_key.encode(), acct)
            self.keys[acct.api_key] = info
            self.accounts[account_id] = info
            if created:
                log.info(
                    "paper account created",
                    extra={"account": mask_key(acct.api_key), "mode": self.settings.mode},
                )
        meta = await self._load()
        pin = meta.get(META_PAPER_PIN)
        if pin is not None and self.mode.armed:
            # a switch to paper survives restarts: live needs a new, explicit switch
            self.mode.current = "paper"
            try:
                self.paper_pin = jsonutil.loads(pin)
            except ValueError:
                self.paper_pin = {}
            log.warning(
                "live mode is armed, but staying in PAPER mode: it was switched to paper "
                "(%s) before this restart; switch to live again on the dashboard or with "
                "POST /admin/api/mode to trade real money",
                (self.paper_pin or {}).get("source", "?"),
            )
        self.store.on_failure = self._on_store_failure
        self.store.on_durable = self.feed.publish

    async def _load(self) -> dict[str, str]:
        """(Re)build the in-memory state from the database; returns its meta table."""
        loaded = await self.store.load()
        state = EngineState()
        for account_id, api_key, mx in loaded.accounts:
            if account_id in self.accounts:
                state.accounts[account_id] = AccountState(account_id, api_key, mx_deduct=mx)
        for account_id, bal in loaded.balances:
            if account_id in state.accounts:
                state.accounts[account_id].balances[bal.asset] = bal
        for order in loaded.open_orders:
            acct = state.accounts.get(order.account_id)
            if acct is None:
                continue
            acct.open_orders[order.order_id] = order
            if order.client_order_id is not None:
                acct.client_ids[order.client_order_id] = order.order_id
            state.open_by_symbol.setdefault(order.symbol, SymbolOrders()).put(order)
        if loaded.max_seq is not None:
            state.next_seq = max(state.next_seq, loaded.max_seq + 1)
        check_invariants(state)
        self.state = state
        return loaded.meta

    def _on_store_failure(self, exc: BaseException) -> None:
        """A write failed: memory holds commands the disk does not. Until memory is
        reloaded from the disk, nothing is installed (a command would be computed on the
        failed one's writes); the store fails what was queued behind it."""
        self.recovering = True
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.ensure_future(self._reload_after_failure())

    async def _reload_after_failure(self) -> None:
        await asyncio.sleep(0)
        try:
            await self._load()
        except Exception:
            log.exception("reloading state after a failed write also failed (retried at the "
                          "next command)")
            return
        self.recovering = False
        log.warning("in-memory state reloaded from the database after a failed write")

    # ------------------------------------------------------------------ helpers
    def account(self, account_id: int) -> AccountState:
        return self.state.accounts[account_id]

    def account_ids(self) -> list[int]:
        return sorted(self.state.accounts)

    def label(self, account_id: int) -> str:
        info = self.accounts.get(account_id)
        if info is None:
            return str(account_id)
        return info.settings.name or mask_key(info.settings.api_key)

    def _effective_rules(self, rules: SymbolRules) -> SymbolRules:
        fees = self.settings.paper.fees
        o = fees.get(rules.symbol) or fees.get("*")
        if o is None:
            return rules
        return replace(
            rules,
            maker_fee=o.maker if o.maker is not None else rules.maker_fee,
            taker_fee=o.taker if o.taker is not None else rules.taker_fee,
        )

    async def rules(self, symbol: str) -> SymbolRules:
        if not _valid_symbol(symbol):
            raise ApiError(Err.INVALID_SYMBOL)
        try:
            return self._effective_rules(await self.upstream.rules(symbol))
        except UpstreamError as exc:
            if exc.kind == "invalid_symbol":
                raise ApiError(Err.INVALID_SYMBOL) from None
            raise ApiError(
                Err.NO_VALID_TRADE_PRICE, f"market data unavailable ({exc.kind})"
            ) from None

    async def _mx_price(self, quote_asset: str) -> Decimal | None:
        if quote_asset != "USDT":
            return None
        return await self.upstream.last_price(MX_QUOTE_SYMBOL)

    def _install(
        self,
        kind: str,
        account_id: int | None,
        txn: Txn | None = None,
        *,
        changes: Changes | None = None,
        mutate: Callable[[], None] | None = None,
        orders: tuple[Order, ...] = (),
        balances: tuple[feed.BalanceChange, ...] = (),
        **record: Any,
    ) -> asyncio.Future[None]:
        """THE commit path. In one synchronous step: install a command's writes in memory
        (`txn` through `engine.state.apply`, and/or `mutate()` for writes outside the
        engine's state), queue them for the disk (`txn`'s rows plus `changes`), and attach
        the command's `feed.Committed` record, published once durable. Returns the future
        of durability. Nothing may await between the engine run and this call."""
        if self.store.closing:
            raise ApiError(Err.INTERNAL, "storage is closing")
        if self.recovering:
            if self._reloading is None or self._reloading.done():  # the last reload failed
                self._reloading = asyncio.ensure_future(self._reload_after_failure())
            raise ApiError(Err.INTERNAL, "storage is recovering from a failed write; retry")
        ch = Changes() if changes is None else changes
        fills: tuple[Fill, ...] = ()
        if txn is not None:
            now = txn.now_ms
            held = self.state.accounts
            balances = balances + tuple(
                feed.BalanceChange(
                    aid, asset, held[aid].balances.get(asset) or Balance(asset), after
                )
                for (aid, asset), after in txn.balances.items()
            )
            orders = orders + tuple(txn.orders.values())
            fills = tuple(txn.fills)
            ch.merge(Changes.from_txn(txn, self.mode.current))
            apply(self.state, txn)
            for f in fills:
                self.metrics.count_fill("maker" if f.is_maker else "taker")
        else:
            now = self.clock.now_ms()
        if mutate is not None:
            mutate()
        self._installed += 1
        ch.record = feed.Committed(
            self._installed, kind, now, account_id, orders, fills, balances, **record
        )
        return self.store.enqueue(ch)

    async def _commit(
        self, kind: str, account_id: int | None, txn: Txn | None = None, **kw: Any
    ) -> None:
        """`_install`, then wait until it is on disk (a failed write is MEXC's 500)."""
        fut = self._install(kind, account_id, txn, **kw)
        try:
            await fut
        except StoreError:
            raise ApiError(Err.INTERNAL, "storage write failed") from None

    def _audit_reject(self, account_id: int, cmd: NewOrder, err: ApiError) -> None:
        ev = Event(
            "order.rejected",
            account_id,
            self.clock.now_ms(),
            {
                "symbol": cmd.symbol,
                "side": cmd.side.value,
                "type": cmd.type.value,
                "price": cmd.price,
                "quantity": cmd.quantity,
                "quote_order_qty": cmd.quote_order_qty,
                "code": err.code,
                "msg": err.msg,
            },
        )
        self.store.submit(Changes(events=[(ev, self.mode.current)]))

    # ------------------------------------------------------------------ orders
    async def _run_submit(
        self, account_id: int, cmd: NewOrder, rules: SymbolRules
    ) -> matching.Result:
        acct = self.account(account_id)
        if (
            cmd.client_order_id is not None
            and cmd.client_order_id not in acct.client_ids
            and await self.store.client_id_exists(account_id, cmd.client_order_id)
        ):
            raise ApiError(Err.DUPLICATE_ORDER)
        try:
            if acct.mx_deduct:
                book, last, mx = await asyncio.gather(
                    self.upstream.book(cmd.symbol),
                    self.upstream.last_price(cmd.symbol),
                    self._mx_price(rules.quote_asset),
                )
            elif (cached := self.upstream.cached_market(cmd.symbol)) is not None:
                book, last = cached  # the common case: no I/O, no tasks
                mx = None
            else:
                book, last = await asyncio.gather(
                    self.upstream.book(cmd.symbol), self.upstream.last_price(cmd.symbol)
                )
                mx = None
        except UpstreamError as exc:
            raise ApiError(
                Err.NO_VALID_TRADE_PRICE, f"market data unavailable ({exc.kind})"
            ) from None
        return matching.submit(
            self.state, account_id, cmd, rules, book, last, mx, self.cfg, self.clock.now_ms()
        )

    async def place_order(self, account_id: int, cmd: NewOrder, test: bool = False) -> Order | None:
        """A new order (or a test order, which is validated the same way and discarded)."""
        try:
            rules = await self.rules(cmd.symbol)
            result = await self._run_submit(account_id, cmd, rules)
        except ApiError as err:
            self.metrics.count_order(cmd.type.value, "rejected")
            if not test:
                self._audit_reject(account_id, cmd, err)
            raise
        if result.rejection is not None:
            err = _reject_error(result.rejection)
            self.metrics.count_order(cmd.type.value, "rejected")
            if not test:
                self._audit_reject(account_id, cmd, err)
            raise err
        if test:
            self.metrics.count_order(cmd.type.value, "test")
            return None
        await self._commit(feed.ORDER_NEW, account_id, result.txn)
        assert result.order is not None
        self.metrics.count_order(cmd.type.value, result.order.status.value.lower())
        return result.order

    async def place_batch(
        self, account_id: int, cmds: list[NewOrder | ApiError]
    ) -> list[Order | ApiError]:
        """Each order runs through the engine in turn and is installed at once (memory and
        disk in the same order as every other command, even though fetching the next
        element's market data awaits); the answer waits until all of them are durable.
        Per-element errors are returned in place."""
        out: list[Order | ApiError] = []
        pending: list[asyncio.Future[None]] = []
        for cmd in cmds:
            if isinstance(cmd, ApiError):
                out.append(cmd)
                continue
            try:
                rules = await self.rules(cmd.symbol)
                result = await self._run_submit(account_id, cmd, rules)
            except ApiError as err:
                self.metrics.count_order(cmd.type.value, "rejected")
                self._audit_reject(account_id, cmd, err)
                out.append(err)
                continue
            if result.rejection is not None:
                err = _reject_error(result.rejection)
                self.metrics.count_order(cmd.type.value, "rejected")
                self._audit_reject(account_id, cmd, err)
                out.append(err)
                continue
            pending.append(self._install(feed.ORDER_BATCH, account_id, result.txn))
            assert result.order is not None
            self.metrics.count_order(cmd.type.value, result.order.status.value.lower())
            out.append(result.order)
        if pending:
            done = await asyncio.gather(*pending, return_exceptions=True)
            if any(isinstance(r, BaseException) for r in done):
                raise ApiError(Err.INTERNAL, "storage write failed")
        return out

    def find_open(
        self, account_id: int, order_id: str | None, client_order_id: str | None
    ) -> Order | None:
        acct = self.account(account_id)
        if order_id is not None:
            return acct.open_orders.get(order_id)
        if client_order_id is not None:
            oid = acct.client_ids.get(client_order_id)
            if oid is not None:
                return acct.open_orders.get(oid)
        return None

    async def get_order(
        self,
        account_id: int,
        symbol: str | None,
        order_id: str | None,
        client_order_id: str | None,
    ) -> Order:
        order = self.find_open(account_id, order_id, client_order_id)
        if order is None:
            order = await self.store.get_order(account_id, order_id, client_order_id)
        if order is None or (symbol is not None and order.symbol != symbol):
            raise ApiError(Err.ORDER_NOT_FOUND)
        return order

    async def cancel_order(
        self,
        account_id: int,
        symbol: str,
        order_id: str | None,
        client_order_id: str | None,
    ) -> Order:
        order = self.find_open(account_id, order_id, client_order_id)
        if order is None or order.symbol != symbol:
            raise ApiError(Err.UNKNOWN_ORDER)
        result = matching.cancel(self.state, account_id, [order.order_id], self.clock.now_ms())
        await self._commit(feed.ORDER_CANCEL, account_id, result.txn)
        assert result.order is not None
        self.metrics.count_order(order.type.value, "canceled")
        return result.order

    async def cancel_open(self, account_id: int, symbols: Iterable[str] | None) -> list[Order]:
        acct = self.account(account_id)
        wanted = None if symbols is None else set(symbols)
        ids = [
            o.order_id
            for o in sorted(acct.open_orders.values(), key=lambda o: o.seq)
            if wanted is None or o.symbol in wanted
        ]
        if not ids:
            return []
        result = matching.cancel(self.state, account_id, ids, self.clock.now_ms())
        await self._commit(feed.ORDER_CANCEL_ALL, account_id, result.txn)
        for o in result.orders:
            self.metrics.count_order(o.type.value, "canceled")
        return list(result.orders)

    def open_orders(self, account_id: int, symbols: Iterable[str] | None = None) -> list[Order]:
        wanted = None if symbols is None else set(symbols)
        return sorted(
            (
                o
                for o in self.account(account_id).open_orders.values()
                if wanted is None or o.symbol in wanted
            ),
            key=lambda o: o.seq,
        )

    async def all_orders(
        self,
        account_id: int,
        symbol: str,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
        statuses: tuple[str, ...] | None = None,
    ) -> list[Order]:
        rows = await self.store.orders(account_id, symbol, start_ms, end_ms, limit, statuses=statuses)
        # open orders are fresher in memory than on disk (queue estimates, fills in flight)
        acct = self.account(account_id)
        return [acct.open_orders.get(o.order_id, o) for o in rows]

    async def my_trades(
        self,
        account_id: int,
        symbol: str,
        order_id: str | None,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
    ) -> list[Fill]:
        return await self.store.fills(account_id, symbol, order_id, start_ms, end_ms, limit)

    def balances(self, account_id: int) -> list[Balance]:
        return sorted(self.account(account_id).balances.values(), key=lambda b: b.asset)

    async def set_mx_deduct(self, account_id: int, enabled: bool) -> bool:
        acct = self.account(account_id)
        ch = Changes(
            statements=[
                ("UPDATE accounts SET mx_deduct = ? WHERE id = ?", (1 if enabled else 0, account_id))
            ]
        )
        ch.events.append(
            (
                Event("account.mx_deduct", account_id, self.clock.now_ms(), {"enabled": enabled}),
                self.mode.current,
            )
        )

        def mutate() -> None:
            acct.mx_deduct = enabled

        await self._commit(
            feed.ACCOUNT_MX_DEDUCT, account_id, changes=ch, mutate=mutate, mx_deduct=enabled
        )
        return enabled

    # ------------------------------------------------------------------ market
    def watched_symbols(self) -> list[str]:
        return sorted(self.state.open_by_symbol)

    async def on_market(self, symbol: str, book: object, trades: list[Trade]) -> int:
        """Feed the fill models; returns the number of fills produced."""
        if self.recovering:  # memory is being reloaded from the disk: nothing installs
            return 0
        mx_prices: dict[str, Decimal] = {}
        resting = self.state.open_by_symbol.get(symbol)
        if resting is not None and any(
            self.state.accounts[o.account_id].mx_deduct for o in resting.orders.values()
        ):
            # only when a fill could pay its fee in MX, and a few seconds old at most: a
            # market update every 100 ms must not cost a REST request each (the fee's
            # conversion rate, not a price anything trades at)
            price = await self._mx_fee_price()
            if price is not None:
                mx_prices["USDT"] = price
        txn = matching.on_market(
            self.state, symbol, book, trades, self.cfg, mx_prices, self.clock.now_ms()  # type: ignore[arg-type]
        )
        if txn.empty:
            apply(self.state, txn)
            return 0
        await self._commit(feed.MARKET, None, txn)
        return len(txn.fills)

    async def _mx_fee_price(self) -> Decimal | None:
        """MXUSDT for maker fills' MX fees, at most MX_PRICE_MAX_AGE_MS old."""
        now = time.monotonic()
        memo = self._mx_memo
        if memo is not None and now - memo[0] < MX_PRICE_MAX_AGE_MS / 1000:
            return memo[1]
        price = await self.upstream.last_price(MX_QUOTE_SYMBOL)
        if price is not None:
            self._mx_memo = (now, price)
        return price

    # ------------------------------------------------------------------ valuation
    async def symbol_price(self, symbol: str) -> Decimal | None:
        """The best price the sidecar has for one symbol: MEXC's ticker for it, else the
        middle of the book the engine holds (the watcher's or the stream's), else None."""
        price = await self.upstream.last_price(symbol)
        if price is not None:
            return price
        market = self.state.markets.get(symbol)
        book = market.book if market is not None else None
        if book is None:
            return None
        bid, ask = book.best_bid(), book.best_ask()
        if bid is not None and ask is not None:
            return (bid + ask) / 2
        return bid if bid is not None else ask

    async def mark_prices(self, symbols: Iterable[str]) -> dict[str, Decimal]:
        """Prices to value assets and positions with, the same way everywhere (dashboard,
        admin API, equity curve): MEXC's all-symbols ticker, and for each of `symbols` it
        lacks (the recorded demo's all-symbols answer holds five other symbols, not
        BTCUSDT), `symbol_price`. A symbol nobody can price is left out: callers mark
        what it leaves unvalued instead of reporting a partial total."""
        prices = dict(await self.upstream.all_prices())
        for symbol in sorted(set(symbols) - set(prices)):
            if _valid_symbol(symbol):
                price = await self.symbol_price(symbol)
                if price is not None:
                    prices[symbol] = price
        return prices

    # ------------------------------------------------------------------ admin
    async def reset_account(self, account_id: int) -> None:
        """Wipe the account's orders, fills and equity curve and restore its starting
        balances: in memory and in the store's queue in one step, like every command, so
        an order accepted a moment before is wiped with the rest and one accepted a moment
        after sees the restored balances (on disk as in memory). The record lists the
        open orders as CANCELED versions and every asset's balance before and after."""
        info = self.accounts[account_id]
        acct = self.account(account_id)
        balances = self.settings.starting_balances(info.settings)
        now = self.clock.now_ms()
        ch = Changes(statements=reset_statements(account_id, balances, now, self.state.next_seq))
        ch.events.append(
            (Event("account.reset", account_id, now, {"balances": balances}), self.mode.current)
        )
        closed = tuple(
            replace(
                o,
                status=OrderStatus.PARTIALLY_CANCELED if o.executed_qty else OrderStatus.CANCELED,
                update_ms=now,
                locked_amount=ZERO,
            )
            for o in sorted(acct.open_orders.values(), key=lambda o: o.seq)
        )
        restored = {a: Balance(a, v, ZERO) for a, v in balances.items()}
        changed = tuple(
            feed.BalanceChange(
                account_id, a, acct.balances.get(a) or Balance(a), restored.get(a) or Balance(a)
            )
            for a in sorted(set(acct.balances) | set(restored))
        )

        def mutate() -> None:
            for o in list(acct.open_orders.values()):
                idx = self.state.open_by_symbol.get(o.symbol)
                if idx is not None:
                    idx.remove(o)
                    if not idx:
                        del self.state.open_by_symbol[o.symbol]
            acct.open_orders.clear()
            acct.client_ids.clear()
            acct.balances = restored
            self.resets[account_id] = self.resets.get(account_id, 0) + 1

        await self._commit(
            feed.ACCOUNT_RESET,
            account_id,
            changes=ch,
            mutate=mutate,
            orders=closed,
            balances=changed,
            reset=account_id,
        )

    async def switch_mode(self, mode: str, source: str) -> bool:
        """Switch the runtime mode (ModeState's rules: PermissionError when live was not
        armed, ValueError for an unknown mode) and audit it as `mode.switch`. Returns
        whether the mode changed. A switch to paper is persisted (`META_PAPER_PIN`): after
        a restart the sidecar stays in paper until switched to live again. If the switch
        cannot be written, a switch to live is undone (paper is the safe side) and
        StoreError is raised."""
        old = self.mode.current
        if mode not in ("paper", "live"):
            raise ValueError(f"unknown mode {mode!r}")
        if mode == "live" and not self.mode.armed:
            self.mode.switch(mode)  # raises PermissionError, saying what is missing
        if mode == old:
            return False
        now = self.clock.now_ms()
        ev = Event("mode.switch", None, now, {"from": old, "to": mode, "source": source})
        if mode == "paper":
            pin = jsonutil.dumps({"time": now, "source": source}).decode()
            stmt: tuple[str, tuple[Any, ...]] = (
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (META_PAPER_PIN, pin)
            )
        else:
            stmt = ("DELETE FROM meta WHERE key = ?", (META_PAPER_PIN,))

        def mutate() -> None:
            self.mode.switch(mode)
            self.paper_pin = None

        fut = self._install(
            feed.MODE_SWITCH, None, changes=Changes(events=[(ev, mode)], statements=[stmt]),
            mutate=mutate, mode=(old, mode),
        )
        log.warning("mode switched from %s to %s (%s)", old.upper(), mode.upper(), source)
        try:
            await fut
        except StoreError:
            if mode == "live":
                self.mode.switch("paper")
            raise
        return True

    async def fund(self, account_id: int, asset: str, amount: Decimal) -> Balance:
        txn = Txn(self.state, self.clock.now_ms())
        b = txn.balance(account_id, asset)
        new = Balance(asset, b.free + amount, b.locked)
        txn.set_balance(account_id, new)
        txn.emit("account.fund", account_id, asset=asset, amount=amount)
        await self._commit(feed.ACCOUNT_FUND, account_id, txn)
        return new

    async def set_balance(self, account_id: int, asset: str, free: Decimal) -> Balance:
        """Set the free amount of one asset; what open orders hold stays locked."""
        txn = Txn(self.state, self.clock.now_ms())
        b = txn.balance(account_id, asset)
        new = Balance(asset, free, b.locked)
        txn.set_balance(account_id, new)
        txn.emit("account.set_balance", account_id, asset=asset, free_before=b.free, free=free)
        await self._commit(feed.ACCOUNT_SET_BALANCE, account_id, txn)
        return new


def _valid_symbol(symbol: str) -> bool:
    return 2 <= len(symbol) <= 40 and symbol.isascii() and symbol.isalnum() and symbol.isupper()
