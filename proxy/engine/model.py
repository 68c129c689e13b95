"""Domain types of the paper engine, named the MEXC way.

Pure: standard library only. Money is Decimal; nothing here reads a clock or does I/O.
Orders and fills are immutable; a change is a new version of the object. Modifying an
order means cancel and re-add, which loses its queue position (as on the exchange).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

ZERO = Decimal(0)


class Side(enum.StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderType(enum.StrEnum):
    LIMIT = "LIMIT"
    MARKET = "MARKET"
    LIMIT_MAKER = "LIMIT_MAKER"
    IMMEDIATE_OR_CANCEL = "IMMEDIATE_OR_CANCEL"
    FILL_OR_KILL = "FILL_OR_KILL"


class OrderStatus(enum.StrEnum):
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    PARTIALLY_CANCELED = "PARTIALLY_CANCELED"


OPEN_STATUSES = frozenset({OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED})


class FillModel(enum.StrEnum):
    """How resting (maker) orders fill from public market activity.

    QUEUE   (default) the displayed size at the order's price when it starts resting is the
            queue ahead; trades at the price consume it first; trades through the price fill;
            the book moving through the price fills up to the size that crossed. Every fill
            is capped by the real volume and shared among our own orders (price-time).
    THROUGH fills only on trades strictly through the price, capped by the trade's size.
    TOUCH   fills the whole remainder on any trade at or through the price (the optimistic
            rule other paper modes use; for comparison only).
    """

    QUEUE = "queue"
    THROUGH = "through"
    TOUCH = "touch"


class RejectReason(enum.Enum):
    """Business rejections. `errors.REJECT_TO_ERR` maps them to MEXC codes."""

    INSUFFICIENT_FUNDS = "insufficient_funds"
    MIN_NOTIONAL = "min_notional"
    MIN_QUANTITY = "min_quantity"
    MAX_NOTIONAL = "max_notional"
    QUANTITY_SCALE = "quantity_scale"
    PRICE_SCALE = "price_scale"
    AMOUNT_SCALE = "amount_scale"
    SYMBOL_SUSPENDED = "symbol_suspended"
    SYMBOL_NOT_API_TRADABLE = "symbol_not_api_tradable"
    SIDE_NOT_ALLOWED = "side_not_allowed"
    ORDER_TYPE_NOT_ALLOWED = "order_type_not_allowed"
    MARKET_ORDER_DISABLED = "market_order_disabled"
    PRICE_OUT_OF_RANGE = "price_out_of_range"
    MAX_OPEN_ORDERS = "max_open_orders"
    WOULD_TAKE = "would_take"
    DUPLICATE_CLIENT_ORDER_ID = "duplicate_client_order_id"
    NO_LIQUIDITY = "no_liquidity"
    INVALID_PARAMETER = "invalid_parameter"


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: RejectReason
    params: dict[str, str] = field(default_factory=dict)
    detail: str | None = None


class InvariantError(AssertionError):
    """A broken ledger invariant: a bug, never a business rejection."""


@dataclass(frozen=True, slots=True)
class SymbolRules:
    """Trading rules of one symbol, from MEXC's own exchangeInfo fields.

    MEXC has no PRICE_FILTER/LOT_SIZE; the rules are (read off the recorded responses in
    ../shared/fixtures/mexc and the reference's section 6):
      base_precision        `baseAssetPrecision` (int): max decimals of `quantity`
      price_precision       `quotePrecision` (int): max decimals of `price`
      quote_precision       `quoteAssetPrecision` (int): max decimals of `quoteOrderQty`
      min_qty               `baseSizePrecision` (string): minimum base quantity, "0" = none
                            (despite the name it is not a step size)
      min_notional          `quoteAmountPrecision` (string): minimum quote amount of a
                            LIMIT-priced order (despite the name not a precision)
      min_notional_market   `quoteAmountPrecisionMarket`: minimum quote amount of a MARKET order
      max_notional          `maxQuoteAmount`: maximum quote amount of a LIMIT-priced order
      max_notional_market   `maxQuoteAmountMarket`: maximum quote amount of a MARKET order
      maker_fee/taker_fee   `makerCommission`/`takerCommission` (fractions)
      status                "1" online, "2" paused, "3" offline
      trade_side_type       1 all, 2 buy only, 3 sell only, 4 closed
      spot_trading_allowed  `isSpotTradingAllowed`
      bid_multiplier_up / ask_multiplier_down   the PERCENT_PRICE_BY_SIDE filter, if any
    """

    symbol: str
    base_asset: str
    quote_asset: str
    status: str = "1"
    base_precision: int = 8
    price_precision: int = 8
    quote_precision: int = 8
    min_qty: Decimal = ZERO
    min_notional: Decimal = ZERO
    min_notional_market: Decimal = ZERO
    max_notional: Decimal | None = None
    max_notional_market: Decimal | None = None
    maker_fee: Decimal = ZERO
    taker_fee: Decimal = ZERO
    order_types: frozenset[str] = frozenset({"LIMIT", "MARKET", "LIMIT_MAKER"})
    trade_side_type: int = 1
    spot_trading_allowed: bool = True
    bid_multiplier_up: Decimal | None = None
    ask_multiplier_down: Decimal | None = None


# A price level is a (price, quantity) pair; tuples keep the hot paths cheap.
Level = tuple[Decimal, Decimal]


@dataclass(frozen=True, slots=True)
class Book:
    """An L2 snapshot: bids best (highest) first, asks best (lowest) first.

    `version` identifies the snapshot (MEXC's lastUpdateId, or the toVersion of the last
    stream diff applied). Liquidity a paper order took from one version is not available
    again until a different version arrives; for an `incremental` book (kept from MEXC's
    diff stream, one version per 100 ms push) it stays taken across versions, each level's
    share capped by that level's new displayed size (see `Txn.set_book`).
    `seen_ms` is when we fetched it (orders which snapshot is newer), by our clock;
    `market_ms` is MEXC's own `timestamp` of the snapshot, by MEXC's clock (None when the
    answer has none).
    """

    symbol: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    version: str
    seen_ms: int = 0
    market_ms: int | None = None
    incremental: bool = False

    def market_time_at(self, now_ms: int) -> int:
        """MEXC's time at our `now_ms`, estimated from this snapshot: its timestamp plus
        the time since we fetched it. Trade times are MEXC's, so comparing them with this
        needs no agreement between the two clocks. Our clock when MEXC gave no time."""
        if self.market_ms is None:
            return now_ms
        return self.market_ms + max(0, now_ms - self.seen_ms)

    def best_bid(self) -> Decimal | None:
        return self.bids[0][0] if self.bids else None

    def best_ask(self) -> Decimal | None:
        return self.asks[0][0] if self.asks else None

    def size_at(self, side: Side, price: Decimal) -> Decimal:
        """Displayed size on `side` (BUY = bids) at exactly `price`."""
        levels = self.bids if side is Side.BUY else self.asks
        for p, q in levels:
            if p == price:
                return q
            if (side is Side.BUY and p < price) or (side is Side.SELL and p > price):
                break
        return ZERO


@dataclass(frozen=True, slots=True)
class Trade:
    """A public trade. `is_buyer_maker` true means the seller was the aggressor.

    MEXC's trade ids are null; `seq` is our own tape position for the symbol.
    """

    price: Decimal
    qty: Decimal
    time_ms: int
    is_buyer_maker: bool
    seq: int = 0


@dataclass(frozen=True, slots=True)
class Balance:
    asset: str
    free: Decimal = ZERO
    locked: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    seq: int
    account_id: int
    symbol: str
    side: Side
    type: OrderType
    price: Decimal
    orig_qty: Decimal
    quote_order_qty: Decimal | None
    orig_quote_order_qty: Decimal
    client_order_id: str | None
    status: OrderStatus
    executed_qty: Decimal
    cumm_quote_qty: Decimal
    time_ms: int
    update_ms: int
    locked_asset: str
    locked_amount: Decimal
    maker_fee: Decimal
    taker_fee: Decimal
    base_asset: str
    quote_asset: str
    # displayed size ahead of us at our price; None while the level is beyond the
    # visible depth (set the first time the level is seen)
    queue_ahead: Decimal | None = None
    armed_seq: int = 0
    fill_count: int = 0
    # MEXC's time when the order started resting (Book.market_time_at); trades printed
    # before it never fill it. Not stored: after a restart the watcher counts only the
    # trades after the start, and 0 lets those through.
    armed_ms: int = 0

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def core_id(self) -> str:
        """The numeric part of the id, shared with the trade ids (`<core>X<n>`)."""
        return self.order_id[5:-3]


@dataclass(frozen=True, slots=True)
class Fill:
    trade_id: str
    order_id: str
    account_id: int
    symbol: str
    side: Side
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    is_maker: bool
    time_ms: int
    client_order_id: str | None
    reason: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Event:
    """An audit-log entry. `data` must be JSON-serialisable (Decimals allowed)."""

    kind: str
    account_id: int | None
    time_ms: int
    data: dict[str, Any]
