"""MEXC's exchange rules: built from exchangeInfo, checked before anything is reserved.

Pure functions with table tests. No silent rounding: a quantity with too many decimals is
rejected as MEXC rejects it. Where rounding is intended (quote-amount market orders) the
caller names the rounding mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

from .model import (
    ZERO,
    FillModel,
    OrderType,
    Rejection,
    RejectReason,
    Side,
    SymbolRules,
)

_LIMIT_PRICED = (
    OrderType.LIMIT,
    OrderType.LIMIT_MAKER,
    OrderType.IMMEDIATE_OR_CANCEL,
    OrderType.FILL_OR_KILL,
)
# PERCENT_PRICE_BY_SIDE applies to these types (MEXC docs: LIMIT / IOC / FOK).
_PERCENT_PRICE_TYPES = (OrderType.LIMIT, OrderType.IMMEDIATE_OR_CANCEL, OrderType.FILL_OR_KILL)


@dataclass(frozen=True, slots=True)
class NewOrder:
    """A validated-for-syntax order request (the API layer built it from parameters)."""

    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal | None = None
    quote_order_qty: Decimal | None = None
    price: Decimal | None = None
    client_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class EngineConfig:
    fill_model: FillModel = FillModel.QUEUE
    # a MARKET order never walks further than this fraction from the best price
    market_slippage_cap: Decimal = Decimal("0.05")
    # LIMIT_MAKER that would cross: "reject" (error, nothing recorded) or "cancel"
    # (accepted and immediately CANCELED). MEXC's behaviour is UNSURE.
    limit_maker_cross: str = "reject"
    enforce_spot_trading_allowed: bool = False
    enforce_percent_price: bool = True
    max_open_orders: int = 500
    # MX deduction discount on fees (MEXC: 20 %)
    mx_discount: Decimal = Decimal("0.2")


def decimals(d: Decimal) -> int:
    """Number of decimal places, ignoring trailing zeros ("1.50" has 1)."""
    exp = d.normalize().as_tuple().exponent
    return -exp if isinstance(exp, int) and exp < 0 else 0


def quantize_down(d: Decimal, places: int) -> Decimal:
    """Round toward zero to `places` decimals (ROUND_DOWN, named at every call site)."""
    return d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN)


def _written_like_mexc(value: Any) -> bool:
    """False when it is not a number as MEXC writes one: a bool, or text that is not ASCII or has blanks
    or underscores (Decimal() and int() would read ` 1`, `1_0` or Arabic-Indic digits)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        return value.isascii() and value == value.strip() and "_" not in value
    return True


def _dec(value: Any, default: Decimal | None = None) -> Decimal | None:
    """Parse a Decimal from MEXC's strings; MEXC really sends "" and null."""
    if value is None or value == "" or not _written_like_mexc(value):
        return default
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        return default
    return d if d.is_finite() else default


def _int(value: Any, default: int) -> int:
    if not _written_like_mexc(value):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def rules_from_exchange_info(s: dict[str, Any]) -> SymbolRules:
    """Build SymbolRules from one `symbols[]` element of /api/v3/exchangeInfo."""
    up = down = None
    for f in s.get("filters") or ():
        if isinstance(f, dict) and f.get("filterType") == "PERCENT_PRICE_BY_SIDE":
            up = _dec(f.get("bidMultiplierUp"))
            down = _dec(f.get("askMultiplierDown"))
    max_notional = _dec(s.get("maxQuoteAmount"))
    return SymbolRules(
        symbol=str(s["symbol"]),
        base_asset=str(s.get("baseAsset", "")),
        quote_asset=str(s.get("quoteAsset", "")),
        status=str(s.get("status", "1")),
        base_precision=_int(s.get("baseAssetPrecision"), 8),
        price_precision=_int(s.get("quotePrecision"), 8),
        quote_precision=_int(s.get("quoteAssetPrecision"), _int(s.get("quotePrecision"), 8)),
        min_qty=_dec(s.get("baseSizePrecision"), ZERO) or ZERO,
        min_notional=_dec(s.get("quoteAmountPrecision"), ZERO) or ZERO,
        min_notional_market=_dec(
            s.get("quoteAmountPrecisionMarket"), _dec(s.get("quoteAmountPrecision"), ZERO)
        )
        or ZERO,
        max_notional=max_notional,
        max_notional_market=_dec(s.get("maxQuoteAmountMarket"), max_notional),
        maker_fee=_dec(s.get("makerCommission"), ZERO) or ZERO,
        taker_fee=_dec(s.get("takerCommission"), ZERO) or ZERO,
        order_types=frozenset(str(t) for t in (s.get("orderTypes") or ())),
        trade_side_type=_int(s.get("tradeSideType"), 1),
        spot_trading_allowed=bool(s.get("isSpotTradingAllowed", True)),
        bid_multiplier_up=up,
        ask_multiplier_down=down,
    )


def _reject(reason: RejectReason, detail: str | None = None, **params: str) -> Rejection:
    return Rejection(reason, params, detail)


def check_static(
    rules: SymbolRules, cmd: NewOrder, cfg: EngineConfig, last_price: Decimal | None
) -> Rejection | None:
    """Every rule that does not need the order book, in MEXC's plausible order."""
    if rules.status != "1":
        return _reject(RejectReason.SYMBOL_SUSPENDED)
    if cfg.enforce_spot_trading_allowed and not rules.spot_trading_allowed:
        return _reject(RejectReason.SYMBOL_NOT_API_TRADABLE)
    tst = rules.trade_side_type
    if (
        tst == 4
        or (tst == 2 and cmd.side is Side.SELL)
        or (tst == 3 and cmd.side is Side.BUY)
    ):
        return _reject(RejectReason.SIDE_NOT_ALLOWED)
    # IOC/FOK are accepted as types even though exchangeInfo never lists them.
    if cmd.type is OrderType.MARKET and rules.order_types and "MARKET" not in rules.order_types:
        return _reject(RejectReason.MARKET_ORDER_DISABLED)
    if (
        cmd.type in (OrderType.LIMIT, OrderType.LIMIT_MAKER)
        and rules.order_types
        and cmd.type.value not in rules.order_types
    ):
        return _reject(RejectReason.ORDER_TYPE_NOT_ALLOWED)

    if cmd.quantity is not None:
        if decimals(cmd.quantity) > rules.base_precision:
            return _reject(RejectReason.QUANTITY_SCALE)
        if rules.min_qty > 0 and cmd.quantity < rules.min_qty:
            return _reject(
                RejectReason.MIN_QUANTITY,
                amount=_plain(rules.min_qty),
                asset=rules.base_asset,
            )
    if cmd.type in _LIMIT_PRICED:
        assert cmd.price is not None and cmd.quantity is not None
        if decimals(cmd.price) > rules.price_precision:
            return _reject(RejectReason.PRICE_SCALE)
        notional = cmd.price * cmd.quantity
        if notional < rules.min_notional:
            return _reject(
                RejectReason.MIN_NOTIONAL,
                amount=_plain(rules.min_notional),
                asset=rules.quote_asset,
            )
        if rules.max_notional is not None and notional > rules.max_notional:
            return _reject(
                RejectReason.MAX_NOTIONAL,
                amount=_plain(rules.max_notional),
                asset=rules.quote_asset,
            )
        if (
            cfg.enforce_percent_price
            and last_price is not None
            and cmd.type in _PERCENT_PRICE_TYPES
            and not price_within_band(rules, cmd.side, cmd.price, last_price)
        ):
            return _reject(RejectReason.PRICE_OUT_OF_RANGE)
    elif cmd.quote_order_qty is not None:
        if decimals(cmd.quote_order_qty) > rules.quote_precision:
            return _reject(RejectReason.AMOUNT_SCALE)
        err = check_market_notional(rules, cmd.quote_order_qty)
        if err is not None:
            return err
    return None


def check_market_notional(rules: SymbolRules, notional: Decimal) -> Rejection | None:
    if notional < rules.min_notional_market:
        return _reject(
            RejectReason.MIN_NOTIONAL,
            amount=_plain(rules.min_notional_market),
            asset=rules.quote_asset,
        )
    if rules.max_notional_market is not None and notional > rules.max_notional_market:
        return _reject(
            RejectReason.MAX_NOTIONAL,
            amount=_plain(rules.max_notional_market),
            asset=rules.quote_asset,
        )
    return None


def price_within_band(rules: SymbolRules, side: Side, price: Decimal, last: Decimal) -> bool:
    """PERCENT_PRICE_BY_SIDE (UNSURE, see the reference section 6). When
    `bidMultiplierUp >= 1` both multipliers are literal factors (2025 sample "5"/"0.2":
    buy <= 5 x last, sell >= 0.2 x last); otherwise both are band fractions (2026 BTCUSDT
    "0.005"/"0.005": buy <= last x 1.005, sell >= last x 0.995). Buys are capped above,
    sells below, so passive orders always pass."""
    up, down = rules.bid_multiplier_up, rules.ask_multiplier_down
    literal = up is not None and up >= 1
    if side is Side.BUY:
        if up is None or up <= 0:
            return True
        return price <= (last * up if literal else last * (1 + up))
    if down is None or down <= 0:
        return True
    return price >= (last * down if literal else last * (1 - down))


def _plain(d: Decimal) -> str:
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s or "0"
