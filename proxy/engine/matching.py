"""Matching: taker fills walk the L2 book; resting orders fill from the tape and the book.

Entry points (all pure: state and inputs in, a `Txn` of writes out; nothing mutated):
  submit(...)     a new order against the book as of its arrival
  cancel(...)     one or more open orders
  on_market(...)  new public trades and/or a new book snapshot for one symbol

Taker fills take each level at its own price. Liquidity a paper order took from a book
version stays taken (the consumption ledger) until a book with another version arrives,
so two paper orders never fill from the same displayed size.

Resting orders fill as maker at their limit price, from activity after they rest
(`FillModel`): a fill is never larger than the real trade or the crossed size, and one
trade's size is shared among our own orders in price-time priority. Modifying an order
means cancel and re-add, which loses its queue position.

Funds committed by an order (checked at submit, never discovered at fill time):
  BUY   the taker fills at their cost plus taker fee, plus the part that rests at
        limit x (1 + maker fee); an IOC/FOK's unfilled part the same way, released at
        once when it is cancelled (the order must be affordable in full, as the same
        LIMIT would be); a MARKET remainder commits nothing (UNSURE: MEXC may check a
        MARKET BUY against a protective price).
  SELL  the whole quantity offered (for a quote-amount market sell: what fills).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from .ledger import MX, choose_fee, release, reserve, unlock_and_spend
from .model import (
    ZERO,
    Balance,
    Book,
    Fill,
    FillModel,
    Order,
    OrderStatus,
    OrderType,
    Rejection,
    RejectReason,
    Side,
    SymbolRules,
    Trade,
)
from .rules import EngineConfig, NewOrder, check_market_notional, check_static, quantize_down
from .state import EngineState, SymbolOrders, Txn

_RESTING_TYPES = (OrderType.LIMIT, OrderType.LIMIT_MAKER)


@dataclass(frozen=True, slots=True)
class Result:
    txn: Txn
    order: Order | None = None
    rejection: Rejection | None = None
    orders: tuple[Order, ...] = ()


@dataclass(frozen=True, slots=True)
class _Take:
    price: Decimal
    qty: Decimal
    displayed: Decimal
    consumed_before: Decimal


def order_id_for(seq: int, account_id: int) -> str:
    """MEXC's live form: `C02__` + 18-digit core + 3 digits (`C02__593034730388221952036`)."""
    return f"C02__{seq}{account_id % 1000:03d}"


def _walk(
    book: Book,
    consumed: dict[tuple[Side, Decimal], Decimal],
    taker: Side,
    limit: Decimal | None,
    max_qty: Decimal | None,
    max_quote: Decimal | None,
    base_precision: int,
) -> tuple[list[_Take], bool]:
    """Walk the opposite side level by level. Returns the takes and whether the
    requested quantity (or quote amount) was used up, as opposed to the book running out
    within `limit`."""
    if taker is Side.BUY:
        levels, level_side = book.asks, Side.SELL
    else:
        levels, level_side = book.bids, Side.BUY
    takes: list[_Take] = []
    rem_qty, rem_quote = max_qty, max_quote
    for price, displayed in levels:
        if limit is not None and (price > limit if taker is Side.BUY else price < limit):
            break
        used = consumed.get((level_side, price), ZERO)
        avail = displayed - used
        if avail <= 0:
            continue
        if rem_qty is not None:
            q = avail if avail < rem_qty else rem_qty
            rem_qty -= q
        else:
            assert rem_quote is not None
            affordable = quantize_down(rem_quote / price, base_precision)  # ROUND_DOWN
            if affordable <= 0:
                return takes, True
            q = avail if avail < affordable else affordable
            rem_quote -= price * q
        takes.append(_Take(price, q, displayed, used))
        if rem_qty is not None and rem_qty <= 0:
            return takes, True
    if rem_quote is not None and takes:
        # out of levels: done if what is left cannot buy one unit at the last price
        last = takes[-1].price
        return takes, quantize_down(rem_quote / last, base_precision) <= 0  # ROUND_DOWN
    return takes, False


def _consume(
    consumed: dict[tuple[Side, Decimal], Decimal], level_side: Side, price: Decimal, q: Decimal
) -> None:
    key = (level_side, price)
    consumed[key] = consumed.get(key, ZERO) + q


def _apply_fill(
    txn: Txn,
    order: Order,
    price: Decimal,
    qty: Decimal,
    is_maker: bool,
    mx_deduct: bool,
    mx_price: Decimal | None,
    mx_discount: Decimal,
    reason: dict,
) -> Order:
    """Settle one fill: balances, the fill record and the new order version."""
    acct_id = order.account_id
    cost = price * qty
    rate = order.maker_fee if is_maker else order.taker_fee
    quote_fee = cost * rate
    fee, fee_asset = choose_fee(
        txn, acct_id, quote_fee, order.quote_asset, mx_deduct, mx_price, mx_discount
    )
    fee_in_quote = fee if fee_asset == order.quote_asset else ZERO
    executed = order.executed_qty + qty
    done = executed >= order.orig_qty
    if order.side is Side.BUY:
        portion = cost + quote_fee
        if done or portion > order.locked_amount:
            portion = order.locked_amount
        unlock_and_spend(txn, acct_id, order.quote_asset, portion, cost + fee_in_quote)
        _credit(txn, acct_id, order.base_asset, qty)
    else:
        portion = qty
        unlock_and_spend(txn, acct_id, order.base_asset, portion, qty)
        _credit(txn, acct_id, order.quote_asset, cost - fee_in_quote)
    if fee_asset == MX and fee > 0:
        b = txn.balance(acct_id, MX)
        txn.set_balance(acct_id, replace(b, free=b.free - fee))
    n = order.fill_count + 1
    fill = Fill(
        trade_id=f"{order.core_id}X{n}",
        order_id=order.order_id,
        account_id=acct_id,
        symbol=order.symbol,
        side=order.side,
        price=price,
        qty=qty,
        quote_qty=cost,
        commission=fee,
        commission_asset=fee_asset,
        is_maker=is_maker,
        time_ms=txn.now_ms,
        client_order_id=order.client_order_id,
        reason=reason,
    )
    txn.add_fill(fill)
    txn.emit(
        "order.fill",
        acct_id,
        order_id=order.order_id,
        trade_id=fill.trade_id,
        symbol=order.symbol,
        side=order.side.value,
        price=price,
        qty=qty,
        commission=fee,
        commission_asset=fee_asset,
        is_maker=is_maker,
        reason=reason,
    )
    return replace(
        order,
        executed_qty=executed,
        cumm_quote_qty=order.cumm_quote_qty + cost,
        locked_amount=order.locked_amount - portion,
        fill_count=n,
        status=OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED,
        update_ms=txn.now_ms,
    )


def _credit(txn: Txn, account_id: int, asset: str, amount: Decimal) -> None:
    b = txn.balance(account_id, asset)
    txn.set_balance(account_id, Balance(asset, b.free + amount, b.locked))


def _close(txn: Txn, order: Order, by: str) -> Order:
    """Cancel what is left: release the reservation, CANCELED or PARTIALLY_CANCELED."""
    release(txn, order.account_id, order.locked_asset, order.locked_amount)
    status = OrderStatus.CANCELED if order.executed_qty == 0 else OrderStatus.PARTIALLY_CANCELED
    closed = replace(order, status=status, locked_amount=ZERO, update_ms=txn.now_ms)
    txn.emit(
        "order.canceled",
        order.account_id,
        order_id=order.order_id,
        symbol=order.symbol,
        status=status.value,
        executed_qty=order.executed_qty,
        by=by,
    )
    return closed


def _reject(txn: Txn, reason: RejectReason, **params: str) -> Result:
    return Result(txn, None, Rejection(reason, params))


def submit(
    state: EngineState,
    account_id: int,
    cmd: NewOrder,
    rules: SymbolRules,
    book: Book,
    last_price: Decimal | None,
    mx_price: Decimal | None,
    cfg: EngineConfig,
    now_ms: int,
) -> Result:
    """Validate and execute a new order against `book` (the book at its arrival)."""
    txn = Txn(state, now_ms)
    acct = state.accounts[account_id]
    rej = check_static(rules, cmd, cfg, last_price)
    if rej is not None:
        return Result(txn, None, rej)
    if cmd.client_order_id is not None and cmd.client_order_id in acct.client_ids:
        return _reject(txn, RejectReason.DUPLICATE_CLIENT_ORDER_ID)
    if cmd.type in _RESTING_TYPES and len(acct.open_orders) >= cfg.max_open_orders:
        return _reject(txn, RejectReason.MAX_OPEN_ORDERS)
    txn.set_book(book)
    current = txn.book(cmd.symbol)
    assert current is not None
    if cmd.type is OrderType.MARKET:
        return _submit_market(txn, account_id, acct.mx_deduct, cmd, rules, current, mx_price, cfg)
    return _submit_limit(txn, account_id, acct.mx_deduct, cmd, rules, current, mx_price, cfg)


def _new_order(
    txn: Txn,
    account_id: int,
    cmd: NewOrder,
    rules: SymbolRules,
    price: Decimal,
    orig_qty: Decimal,
    orig_quote: Decimal,
    locked_asset: str,
    locked: Decimal,
    queue_ahead: Decimal | None,
    book: Book,
) -> Order:
    seq = txn.take_seq()
    market = txn.state.market(cmd.symbol)
    order = Order(
        order_id=order_id_for(seq, account_id),
        seq=seq,
        account_id=account_id,
        symbol=cmd.symbol,
        side=cmd.side,
        type=cmd.type,
        price=price,
        orig_qty=orig_qty,
        quote_order_qty=cmd.quote_order_qty,
        orig_quote_order_qty=orig_quote,
        client_order_id=cmd.client_order_id,
        status=OrderStatus.NEW,
        executed_qty=ZERO,
        cumm_quote_qty=ZERO,
        time_ms=txn.now_ms,
        update_ms=txn.now_ms,
        locked_asset=locked_asset,
        locked_amount=locked,
        maker_fee=rules.maker_fee,
        taker_fee=rules.taker_fee,
        base_asset=rules.base_asset,
        quote_asset=rules.quote_asset,
        queue_ahead=queue_ahead,
        armed_seq=txn.tape_seq.get(cmd.symbol, market.tape_seq),
        armed_ms=book.market_time_at(txn.now_ms),
    )
    txn.emit(
        "order.new",
        account_id,
        order_id=order.order_id,
        symbol=cmd.symbol,
        side=cmd.side.value,
        type=cmd.type.value,
        price=price,
        quantity=orig_qty,
        quote_order_qty=cmd.quote_order_qty,
        client_order_id=cmd.client_order_id,
    )
    return order


def _take_reason(take: _Take, book: Book) -> dict:
    return {
        "source": "book",
        "book_version": book.version,
        "level_price": take.price,
        "level_qty": take.displayed,
        "consumed_before": take.consumed_before,
    }


def _visible_size(book: Book, side: Side, price: Decimal) -> Decimal | None:
    """Displayed size on `side` at `price`; None when the price is beyond the depth."""
    levels = book.bids if side is Side.BUY else book.asks
    if not levels:
        return ZERO
    deepest = levels[-1][0]
    if (side is Side.BUY and price < deepest) or (side is Side.SELL and price > deepest):
        return None
    return book.size_at(side, price)


def _submit_limit(
    txn: Txn,
    acct_id: int,
    mx_deduct: bool,
    cmd: NewOrder,
    rules: SymbolRules,
    book: Book,
    mx_price: Decimal | None,
    cfg: EngineConfig,
) -> Result:
    assert cmd.price is not None and cmd.quantity is not None
    price, qty, side = cmd.price, cmd.quantity, cmd.side
    opp = book.best_ask() if side is Side.BUY else book.best_bid()
    crosses = opp is not None and (price >= opp if side is Side.BUY else price <= opp)

    if cmd.type is OrderType.LIMIT_MAKER and crosses:
        if cfg.limit_maker_cross == "reject":
            return _reject(txn, RejectReason.WOULD_TAKE)
        order = _new_order(
            txn, acct_id, cmd, rules, price, qty, price * qty,
            rules.quote_asset if side is Side.BUY else rules.base_asset, ZERO, None, book,
        )
        order = _close(txn, order, by="limit_maker_would_take")
        txn.put_order(order)
        return Result(txn, order)

    consumed = txn.consumed_map(cmd.symbol)
    takes: list[_Take] = []
    if crosses:
        takes, _ = _walk(book, consumed, side, price, qty, None, rules.base_precision)
    filled = sum((t.qty for t in takes), ZERO)
    if cmd.type is OrderType.FILL_OR_KILL and filled < qty:
        takes, filled = [], ZERO
    rest = qty - filled if cmd.type in _RESTING_TYPES else ZERO

    if side is Side.BUY:
        lock_asset = rules.quote_asset
        need = sum((t.price * t.qty * (1 + rules.taker_fee) for t in takes), ZERO)
        need += rest * price * (1 + rules.maker_fee)
        # what an IOC/FOK does not fill is cancelled at once, but the order must be
        # affordable in full at its price, as the same LIMIT would be (price x qty plus
        # the maker fee of a resting part: no more, so an IOC is never refused where the
        # LIMIT would be accepted); _close releases this part in the same Txn
        need += (qty - filled - rest) * price * (1 + rules.maker_fee)
    else:
        lock_asset = rules.base_asset
        need = qty
    if not reserve(txn, acct_id, lock_asset, need):
        return _reject(txn, RejectReason.INSUFFICIENT_FUNDS)

    queue = _visible_size(book, side, price) if rest > 0 else None
    order = _new_order(
        txn, acct_id, cmd, rules, price, qty, price * qty, lock_asset, need, queue, book
    )
    level_side = Side.SELL if side is Side.BUY else Side.BUY
    for t in takes:
        order = _apply_fill(
            txn, order, t.price, t.qty, False, mx_deduct, mx_price, cfg.mx_discount,
            _take_reason(t, book),
        )
        _consume(consumed, level_side, t.price, t.qty)
    if cmd.type not in _RESTING_TYPES and order.is_open:
        order = _close(txn, order, by=cmd.type.value.lower())
    elif order.status is OrderStatus.FILLED and order.locked_amount:
        release(txn, acct_id, lock_asset, order.locked_amount)
        order = replace(order, locked_amount=ZERO)
    txn.put_order(order)
    return Result(txn, order)


def _submit_market(
    txn: Txn,
    acct_id: int,
    mx_deduct: bool,
    cmd: NewOrder,
    rules: SymbolRules,
    book: Book,
    mx_price: Decimal | None,
    cfg: EngineConfig,
) -> Result:
    side = cmd.side
    levels = book.asks if side is Side.BUY else book.bids
    if not levels:
        return _reject(txn, RejectReason.NO_LIQUIDITY)
    best = levels[0][0]
    cap = cfg.market_slippage_cap
    limit = best * (1 + cap) if side is Side.BUY else best * (1 - cap)
    ref_price = cmd.price or quantize_down(limit, rules.price_precision)  # ROUND_DOWN
    consumed = txn.consumed_map(cmd.symbol)
    if cmd.quantity is not None:
        rej = check_market_notional(rules, cmd.quantity * best)
        if rej is not None:
            return Result(txn, None, rej)
        takes, complete = _walk(
            book, consumed, side, limit, cmd.quantity, None, rules.base_precision
        )
        orig_qty = cmd.quantity
        orig_quote = ref_price * orig_qty
    else:
        assert cmd.quote_order_qty is not None
        takes, complete = _walk(
            book, consumed, side, limit, None, cmd.quote_order_qty, rules.base_precision
        )
        filled = sum((t.qty for t in takes), ZERO)
        estimate = quantize_down(cmd.quote_order_qty / best, rules.base_precision)  # ROUND_DOWN
        orig_qty = filled if complete else max(filled, estimate)
        orig_quote = cmd.quote_order_qty
    if not takes:
        return _reject(txn, RejectReason.NO_LIQUIDITY)

    if side is Side.BUY:
        lock_asset = rules.quote_asset
        need = sum((t.price * t.qty * (1 + rules.taker_fee) for t in takes), ZERO)
    else:
        lock_asset = rules.base_asset
        need = cmd.quantity if cmd.quantity is not None else sum((t.qty for t in takes), ZERO)
    if not reserve(txn, acct_id, lock_asset, need):
        return _reject(txn, RejectReason.INSUFFICIENT_FUNDS)

    order = _new_order(
        txn, acct_id, cmd, rules, ref_price, orig_qty, orig_quote, lock_asset, need, None, book
    )
    level_side = Side.SELL if side is Side.BUY else Side.BUY
    for t in takes:
        order = _apply_fill(
            txn, order, t.price, t.qty, False, mx_deduct, mx_price, cfg.mx_discount,
            _take_reason(t, book),
        )
        _consume(consumed, level_side, t.price, t.qty)
    if complete:
        if order.locked_amount:
            release(txn, acct_id, lock_asset, order.locked_amount)
        order = replace(order, status=OrderStatus.FILLED, locked_amount=ZERO)
    else:
        order = _close(txn, order, by="market_book_exhausted")
    txn.put_order(order)
    return Result(txn, order)


def cancel(state: EngineState, account_id: int, order_ids: list[str], now_ms: int) -> Result:
    """Cancel open orders of one account; ids that are not open are skipped."""
    txn = Txn(state, now_ms)
    acct = state.accounts[account_id]
    done: list[Order] = []
    for oid in order_ids:
        order = txn.order(oid) or acct.open_orders.get(oid)
        if order is None or not order.is_open:
            continue
        closed = _close(txn, order, by="user")
        txn.put_order(closed)
        done.append(closed)
    return Result(txn, done[0] if done else None, None, tuple(done))


# --------------------------------------------------------------------------- maker fills


def on_market(
    state: EngineState,
    symbol: str,
    book: Book | None,
    trades: list[Trade],
    cfg: EngineConfig,
    mx_prices: dict[str, Decimal],
    now_ms: int,
) -> Txn:
    """Feed new public trades (oldest first) and/or a new book to the resting orders."""
    txn = Txn(state, now_ms)
    market = state.market(symbol)
    index = state.open_by_symbol.get(symbol)
    seq = market.tape_seq
    for t in trades:
        seq += 1
        if index:
            _on_trade(txn, index, Trade(t.price, t.qty, t.time_ms, t.is_buyer_maker, seq), cfg, mx_prices)
    if trades:
        txn.tape_seq[symbol] = seq
    if book is not None:
        txn.set_book(book)
        current = txn.book(symbol)
        if index and current is book and cfg.fill_model is FillModel.QUEUE:
            _on_book(txn, index, book, cfg, mx_prices)
    return txn


def _current(txn: Txn, index: SymbolOrders, oid: str) -> Order:
    o = txn.orders.get(oid)
    return o if o is not None else index.orders[oid]


def _mx(txn: Txn, order: Order, mx_prices: dict[str, Decimal]) -> tuple[bool, Decimal | None]:
    acct = txn.state.accounts[order.account_id]
    return acct.mx_deduct, mx_prices.get(order.quote_asset)


def _on_trade(
    txn: Txn,
    index: SymbolOrders,
    trade: Trade,
    cfg: EngineConfig,
    mx_prices: dict[str, Decimal],
) -> None:
    model = cfg.fill_model
    # Our resting buys are reachable by a trade at or below their price, sells at or above.
    for side, candidates in (
        (Side.BUY, index.buys_at_or_above(trade.price)),
        (Side.SELL, index.sells_at_or_below(trade.price)),
    ):
        budget = trade.qty
        # a trade at exactly our price hits our side only if its aggressor came from the
        # other side: a seller (buyer is maker) for our bids, a buyer for our asks
        hits_our_side = trade.is_buyer_maker if side is Side.BUY else not trade.is_buyer_maker
        # lazily: the index is not changed while a Txn is built, and most trades stop
        # at the first order (budget used up), so the rest is never walked
        for oid in candidates:
            if model is not FillModel.TOUCH and budget <= 0:
                break
            o = _current(txn, index, oid)
            # only trades after the order rested: later on our tape, and printed after the
            # order arrived by MEXC's clock (a poll page also holds the trades between the
            # previous poll and the order). Strictly after: if MEXC stamps a book with its
            # last change rather than the time of the answer, a trade at that very
            # millisecond is already in the book the order saw.
            if not o.is_open or o.armed_seq >= trade.seq or trade.time_ms <= o.armed_ms:
                continue
            through = trade.price < o.price if side is Side.BUY else trade.price > o.price
            before = o.queue_ahead
            after = before
            if model is FillModel.TOUCH:
                q = o.remaining
            elif model is FillModel.THROUGH:
                if not through:
                    continue
                q = min(o.remaining, budget)
            elif through:
                q = min(o.remaining, budget)
                after = ZERO
            elif hits_our_side:
                ahead = before if before is not None else ZERO
                q = min(o.remaining, max(ZERO, budget - ahead))
                after = max(ZERO, ahead - budget)
            else:
                continue
            if q > 0:
                mx_deduct, mx_price = _mx(txn, o, mx_prices)
                reason = {
                    "source": "trade",
                    "model": model.value,
                    "trade": {
                        "price": trade.price,
                        "qty": trade.qty,
                        "time": trade.time_ms,
                        "isBuyerMaker": trade.is_buyer_maker,
                    },
                    "through": through,
                    "queue_ahead_before": before,
                    "queue_ahead_after": after,
                }
                o = _apply_fill(
                    txn, o, o.price, q, True, mx_deduct, mx_price, cfg.mx_discount, reason
                )
                budget -= q
            if after != o.queue_ahead:
                o = replace(o, queue_ahead=after)
            if q > 0 or after != before:
                txn.put_order(o)


def _on_book(
    txn: Txn,
    index: SymbolOrders,
    book: Book,
    cfg: EngineConfig,
    mx_prices: dict[str, Decimal],
) -> None:
    """Queue model on a new snapshot: fill orders the opposite side moved through (up to
    the crossed size, through the consumption ledger) and shrink queues to what is still
    displayed (cancellations ahead of us)."""
    consumed = txn.consumed_map(book.symbol)
    bid_sizes = dict(book.bids)
    ask_sizes = dict(book.asks)
    lowest_bid = book.bids[-1][0] if book.bids else None
    highest_ask = book.asks[-1][0] if book.asks else None
    # Only orders this snapshot can reach, in the same priority order: a buy at or above
    # the best ask (crossed) or the lowest displayed bid (visible), a sell at or below the
    # best bid or the highest displayed ask. The loop below skips every other order, so
    # leaving them out changes nothing but the cost (O(reachable), not O(open orders)).
    buy_floor = [p for p in (lowest_bid, min((p for p, _ in book.asks), default=None)) if p is not None]
    sell_cap = [p for p in (highest_ask, max((p for p, _ in book.bids), default=None)) if p is not None]
    reachable = list(index.buys_at_or_above(min(buy_floor))) if buy_floor else []
    if sell_cap:
        reachable.extend(index.sells_at_or_below(max(sell_cap)))
    for oid in reachable:
        o = _current(txn, index, oid)
        if not o.is_open:
            continue
        if o.side is Side.BUY:
            crossing = [(p, q) for p, q in book.asks if p <= o.price]
            level_side = Side.SELL
            visible = lowest_bid is not None and o.price >= lowest_bid
            shown = bid_sizes.get(o.price, ZERO) if visible else None
        else:
            crossing = [(p, q) for p, q in book.bids if p >= o.price]
            level_side = Side.BUY
            visible = highest_ask is not None and o.price <= highest_ask
            shown = ask_sizes.get(o.price, ZERO) if visible else None
        if crossing:
            want = o.remaining
            used_levels = []
            for p, displayed in crossing:
                if want <= 0:
                    break
                avail = displayed - consumed.get((level_side, p), ZERO)
                if avail <= 0:
                    continue
                q = avail if avail < want else want
                _consume(consumed, level_side, p, q)
                used_levels.append({"price": p, "qty": q, "displayed": displayed})
                want -= q
            total = o.remaining - want
            if total > 0:
                mx_deduct, mx_price = _mx(txn, o, mx_prices)
                reason = {
                    "source": "book",
                    "model": FillModel.QUEUE.value,
                    "book_version": book.version,
                    "crossed_levels": used_levels,
                    "queue_ahead_before": o.queue_ahead,
                    "queue_ahead_after": ZERO,
                }
                o = _apply_fill(
                    txn, o, o.price, total, True, mx_deduct, mx_price, cfg.mx_discount, reason
                )
                o = replace(o, queue_ahead=ZERO)
                txn.put_order(o)
            continue
        if shown is not None and (o.queue_ahead is None or shown < o.queue_ahead):
            txn.put_order(replace(o, queue_ahead=shown))
