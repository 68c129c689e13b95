"""MEXC's private pushes, built from the change feed's `Committed` records.

This module is the one place that knows the WebSocket wire format of the private channels
(reference section 9.2; the messages are ours, proxy/ws/mexc_push.proto, with MEXC's field
numbers). It is pure: domain objects in, protobuf frames out; the send time is passed in.

What one committed command pushes to a stream of its account, in this order:

  for each order the command changed (in the order the command changed them):
    orders  status 1 NEW                       if the command placed it
    for each of its fills:
      deals   the fill                         (tradeId and orderId as myTrades reports them)
      orders  status 3 PARTIALLY_FILLED or 2 FILLED, lastDealQuantity = the fill,
              cumulative quantity/amount and avgPrice as of that fill
    orders  its final version                  if that differs from the last one pushed:
              4 CANCELED / 5 PARTIALLY_CANCELED (IOC/FOK/MARKET remainders, cancels,
              cancel-all, resets)
  account one push per asset whose balance the command changed: the free and frozen
          amounts after the command and the changes (type below)

MEXC's own sequence is inferred (reference 9.2 "Expected push sequence", UNSURE): it pushes
NEW, then one orders push per fill, then the cancel. A `Committed` record holds each
order's final version only; the versions in between are derived from its fills (each fill
adds its quantity and quote amount). Balances are known per command, before and after, so
an order placed and filled by the same command gives one account push per asset with the
net change, not one for the reservation and one per fill (the feed does not carry the
balance after each step).

Account change `type` (reference section 8): a cancel (or cancel-all) is ENTRUST_CANCEL; in
a command that placed orders, an asset whose frozen amount grew is ENTRUST_PLACE; an asset
that is only a fee (MX deduction) is TRADE_FEE; other changes by orders and fills are
ENTRUST. The sidecar's own admin actions (reset, fund, set balance) have no MEXC name: they
are DEPOSIT when the asset's total grew and WITHDRAW when it shrank.

Field values (every string is a plain decimal, "0" rather than empty, so MEXC's decoders,
whose `MessageToDict` drops empty strings and zero numbers, keep every field clients
index; `clientId`/`clientOrderId` are empty, so absent, only for orders sent without one):
  price             the order's price as GET /api/v3/order reports it (for MARKET orders the
                    protective price the engine walked the book to)
  quantity          origQty as REST reports it
  amount            price x quantity for LIMIT, LIMIT_MAKER, IOC and FOK orders; the
                    quoteOrderQty of a MARKET order by quote amount; "0" for a MARKET order
                    by quantity (as MEXC's sample)
  remainAmount      BUY: amount (a MARKET by quantity: price x quantity) minus what the
                    fills cost so far, the quote still reserved or refunded (MEXC's sample:
                    "0.092" on a filled MARKET buy); SELL: price x remainQuantity
  remainQuantity    quantity minus cumulativeQuantity
  avgPrice          cumulativeAmount / cumulativeQuantity, exact (rounded half-even at 16
                    decimals if it does not terminate), "0" before the first fill
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal

from .. import feed
from ..engine.model import ZERO, Fill, Order, OrderStatus, OrderType, Side
from ..feed import BalanceChange, Committed
from ..jsonutil import fmt
from . import mexc_push_pb2 as pb

CH_ORDERS = "spot@private.orders.v3.api.pb"
CH_DEALS = "spot@private.deals.v3.api.pb"
CH_ACCOUNT = "spot@private.account.v3.api.pb"
PRIVATE_CHANNELS = frozenset({CH_ORDERS, CH_DEALS, CH_ACCOUNT})

ORDER_TYPE = {
    OrderType.LIMIT: 1,
    OrderType.LIMIT_MAKER: 2,
    OrderType.IMMEDIATE_OR_CANCEL: 3,
    OrderType.FILL_OR_KILL: 4,
    OrderType.MARKET: 5,
}
TRADE_TYPE = {Side.BUY: 1, Side.SELL: 2}
STATUS = {
    OrderStatus.NEW: 1,
    OrderStatus.FILLED: 2,
    OrderStatus.PARTIALLY_FILLED: 3,
    OrderStatus.CANCELED: 4,
    OrderStatus.PARTIALLY_CANCELED: 5,
}

_PLACING = frozenset({feed.ORDER_NEW, feed.ORDER_BATCH})
_CANCELLING = frozenset({feed.ORDER_CANCEL, feed.ORDER_CANCEL_ALL})
_AVG_STEP = Decimal("1e-16")
_AVG_CONTEXT = Context(prec=60)

Frame = tuple[str, bytes]  # (channel, one serialized PushDataV3ApiWrapper)


@dataclass(frozen=True, slots=True)
class OrderStep:
    """One version of an order as pushed: the order's fixed fields, and where it stood."""

    order: Order
    status: OrderStatus
    executed: Decimal
    cumm: Decimal
    fill: Fill | None = None  # the fill that made this version, if one did


def order_steps(kind: str, order: Order, fills: Iterable[Fill]) -> list[OrderStep]:
    """The versions of `order` one command of `kind` went through, derived from its
    final version and the command's fills of it (module docstring)."""
    fills = list(fills)
    if kind == feed.MARKET and not fills:
        return []  # a market update that only moved the queue estimate: no state change
    executed = order.executed_qty - sum((f.qty for f in fills), ZERO)
    cumm = order.cumm_quote_qty - sum((f.quote_qty for f in fills), ZERO)
    steps: list[OrderStep] = []
    if kind in _PLACING:
        steps.append(OrderStep(order, OrderStatus.NEW, executed, cumm))
    for f in fills:
        executed += f.qty
        cumm += f.quote_qty
        status = OrderStatus.FILLED if executed >= order.orig_qty else OrderStatus.PARTIALLY_FILLED
        steps.append(OrderStep(order, status, executed, cumm, f))
    if not steps or steps[-1].status is not order.status:
        steps.append(OrderStep(order, order.status, order.executed_qty, order.cumm_quote_qty))
    return steps


def avg_price(cumm: Decimal, executed: Decimal) -> str:
    if not executed:
        return "0"
    q = _AVG_CONTEXT.divide(cumm, executed)
    return fmt(q.quantize(_AVG_STEP, ROUND_HALF_EVEN, _AVG_CONTEXT))


def order_amount(o: Order) -> Decimal:
    if o.type is OrderType.MARKET:
        return o.quote_order_qty if o.quote_order_qty is not None else ZERO
    return o.price * o.orig_qty


def remain_amount(o: Order, executed: Decimal, cumm: Decimal) -> Decimal:
    if o.side is Side.BUY:
        reserved = o.quote_order_qty if o.quote_order_qty is not None else o.price * o.orig_qty
        return max(reserved - cumm, ZERO)
    return o.price * max(o.orig_qty - executed, ZERO)


# The bodies are built as dicts of field values: protobuf builds the nested message from
# a dict faster than it copies one built before (a push costs the order path CPU).


def orders_fields(step: OrderStep) -> dict[str, object]:
    """privateOrders (304) of one order version."""
    o = step.order
    fill = step.fill
    body: dict[str, object] = {
        "id": o.order_id,
        "clientId": o.client_order_id or "",
        "price": fmt(o.price),
        "quantity": fmt(o.orig_qty),
        "amount": fmt(order_amount(o)),
        "avgPrice": avg_price(step.cumm, step.executed),
        "orderType": ORDER_TYPE[o.type],
        "tradeType": TRADE_TYPE[o.side],
        "isMaker": fill.is_maker if fill is not None else False,
        "remainAmount": fmt(remain_amount(o, step.executed, step.cumm)),
        "remainQuantity": fmt(max(o.orig_qty - step.executed, ZERO)),
        "cumulativeQuantity": fmt(step.executed),
        "cumulativeAmount": fmt(step.cumm),
        "status": STATUS[step.status],
        "createTime": o.time_ms,
    }
    if fill is not None:
        body["lastDealQuantity"] = fmt(fill.qty)
    return body


def deals_fields(f: Fill) -> dict[str, object]:
    """privateDeals (306) of one fill."""
    return {
        "price": fmt(f.price),
        "quantity": fmt(f.qty),
        "amount": fmt(f.quote_qty),
        "tradeType": TRADE_TYPE[f.side],
        "isMaker": f.is_maker,
        "isSelfTrade": False,
        "tradeId": f.trade_id,
        "clientOrderId": f.client_order_id or "",
        "orderId": f.order_id,
        "feeAmount": fmt(f.commission),
        "feeCurrency": f.commission_asset,
        "time": f.time_ms,
    }


@functools.cache
def coin_id(asset: str) -> str:
    """A stable 32-hex id per asset in the shape of MEXC's `coinId` (MEXC's own ids are
    internal; no client reads them)."""
    return hashlib.sha256(b"mexc-paper-coin:" + asset.encode()).hexdigest()[:32]


def change_types(record: Committed, account_id: int) -> Callable[[BalanceChange], str]:
    """The account push's `type` for each of the record's changes of `account_id`
    (module docstring)."""
    kind = record.kind
    if kind in _CANCELLING:
        return lambda change: "ENTRUST_CANCEL"
    if kind in _PLACING or kind == feed.MARKET:
        traded = {
            a for o in record.orders if o.account_id == account_id for a in (o.base_asset, o.quote_asset)
        }
        fee_only = {f.commission_asset for f in record.fills if f.account_id == account_id} - traded

        def trading(change: BalanceChange) -> str:
            if change.asset in fee_only:
                return "TRADE_FEE"
            if kind in _PLACING and change.after.locked > change.before.locked:
                return "ENTRUST_PLACE"
            return "ENTRUST"

        return trading
    return lambda change: "DEPOSIT" if change.after.total >= change.before.total else "WITHDRAW"


def account_fields(change: BalanceChange, change_type: str, time_ms: int) -> dict[str, object]:
    """privateAccount (307) of one asset's change."""
    before, after = change.before, change.after
    return {
        "vcoinName": change.asset,
        "coinId": coin_id(change.asset),
        "balanceAmount": fmt(after.free),
        "balanceAmountChange": fmt(after.free - before.free),
        "frozenAmount": fmt(after.locked),
        "frozenAmountChange": fmt(after.locked - before.locked),
        "type": change_type,
        "time": time_ms,
    }


def frames(record: Committed, account_id: int, channels: Iterable[str], send_ms: int) -> list[Frame]:
    """The binary frames one command pushes to a stream of `account_id` subscribed to
    `channels`, in push order (module docstring)."""
    wanted = frozenset(channels)
    want_orders, want_deals = CH_ORDERS in wanted, CH_DEALS in wanted
    out: list[Frame] = []
    if (want_orders or want_deals) and (record.orders or record.fills):
        fills_of: dict[str, list[Fill]] = {}
        for f in record.fills:
            if f.account_id == account_id:
                fills_of.setdefault(f.order_id, []).append(f)
        for o in record.orders:
            if o.account_id != account_id:
                continue
            for step in order_steps(record.kind, o, fills_of.pop(o.order_id, ())):
                if step.fill is not None and want_deals:
                    out.append(_deals_frame(step.fill, send_ms))
                if want_orders:
                    out.append(_frame(CH_ORDERS, o.symbol, send_ms, privateOrders=orders_fields(step)))
        if want_deals:  # fills of orders the record does not list (not expected)
            for rest in fills_of.values():
                out.extend(_deals_frame(f, send_ms) for f in rest)
    if CH_ACCOUNT in wanted:
        type_of: Callable[[BalanceChange], str] | None = None
        for change in record.balances:
            if change.account_id != account_id or change.before == change.after:
                continue
            if type_of is None:
                type_of = change_types(record, account_id)
            wrapper = pb.PushDataV3ApiWrapper(
                channel=CH_ACCOUNT, createTime=record.time_ms, sendTime=send_ms,
                privateAccount=account_fields(change, type_of(change), record.time_ms),
            )
            out.append((CH_ACCOUNT, wrapper.SerializeToString()))
    return out


def _deals_frame(f: Fill, send_ms: int) -> Frame:
    return _frame(CH_DEALS, f.symbol, send_ms, privateDeals=deals_fields(f))


def _frame(channel: str, symbol: str, send_ms: int, **body: object) -> Frame:
    wrapper = pb.PushDataV3ApiWrapper(channel=channel, symbol=symbol, sendTime=send_ms, **body)
    return channel, wrapper.SerializeToString()
