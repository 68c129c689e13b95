"""Account valuation and trading PnL: pure Decimal arithmetic, no I/O, no clock.

Valuation: every asset is valued in one quote asset (USDT by default) at the current price
of `<ASSET><QUOTE>` (the quote asset itself is worth 1). An asset without such a price is
listed as unpriced and left out of the total.

PnL, per symbol, by the average-cost method over the account's fills (in fill order),
in the symbol's quote asset:
  - a fill in the direction of the position (or from flat) moves the average cost:
    avg = (avg * |pos| + price * qty) / (|pos| + qty);
  - a fill against the position realises (price - avg) * closed_qty (sign-adjusted for a
    short position); if it goes through zero the rest opens a new position at its price;
  - unrealised = (current price - avg) * position (negative position = short);
  - fees are counted: a fee paid in the quote asset counts at face value, one paid in the
    base asset at the fill price (and it also leaves the position), one paid in any other
    asset (MX deduction) at that asset's current price in the quote asset. The realised
    PnL shown is net of every fee that could be valued.
Starting balances are not trades: selling a coin the account started with opens a short
position in this ledger (what the trades alone did), not a loss on unknown cost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from .engine.model import ZERO, Balance, Fill, Side

ONE = Decimal(1)


def asset_price(asset: str, prices: Mapping[str, Decimal], quote: str = "USDT") -> Decimal | None:
    """Price of one unit of `asset` in `quote`; None when unknown."""
    if asset == quote:
        return ONE
    return prices.get(asset + quote)


@dataclass(frozen=True, slots=True)
class AssetValue:
    asset: str
    free: Decimal
    locked: Decimal
    price: Decimal | None
    value: Decimal | None

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass(frozen=True, slots=True)
class Valuation:
    quote: str
    assets: tuple[AssetValue, ...]
    total: Decimal
    unpriced: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return not self.unpriced


def value_balances(
    balances: Iterable[Balance], prices: Mapping[str, Decimal], quote: str = "USDT"
) -> Valuation:
    """Value every balance with a non-zero total in `quote`."""
    assets: list[AssetValue] = []
    unpriced: list[str] = []
    total = ZERO
    for b in sorted(balances, key=lambda b: b.asset):
        if not b.total:
            continue
        price = asset_price(b.asset, prices, quote)
        value = None if price is None else b.total * price
        if value is None:
            unpriced.append(b.asset)
        else:
            total += value
        assets.append(AssetValue(b.asset, b.free, b.locked, price, value))
    return Valuation(quote, tuple(assets), total, tuple(unpriced))


@dataclass(slots=True)
class Position:
    """What the fills of one symbol add up to (amounts in the symbol's quote asset)."""

    symbol: str
    base: str
    quote: str
    qty: Decimal = ZERO  # signed: negative is short
    avg_cost: Decimal = ZERO
    realised_gross: Decimal = ZERO  # before fees
    fees_in_quote: Decimal = ZERO  # fees paid in the quote or base asset, valued at the fill
    other_fees: dict[str, Decimal] = field(default_factory=dict)  # e.g. MX, by asset
    bought: Decimal = ZERO
    sold: Decimal = ZERO
    volume: Decimal = ZERO  # quote turnover
    fills: int = 0

    def apply(self, fill: Fill) -> None:
        """Add one fill (fills must come in the order they happened)."""
        qty, price = fill.qty, fill.price
        self.fills += 1
        self.volume += fill.quote_qty
        if fill.side is Side.BUY:
            self.bought += qty
            self._trade(qty, price)
        else:
            self.sold += qty
            self._trade(-qty, price)
        fee, asset = fill.commission, fill.commission_asset
        if not fee:
            return
        if asset == self.quote:
            self.fees_in_quote += fee
        elif asset == self.base:
            self.fees_in_quote += fee * price
            # the fee leaves the position at its average cost (no PnL of its own)
            self.qty -= fee
            if not self.qty:
                self.avg_cost = ZERO
        else:
            self.other_fees[asset] = self.other_fees.get(asset, ZERO) + fee

    def _trade(self, delta: Decimal, price: Decimal) -> None:
        pos = self.qty
        if not pos or (pos > 0) == (delta > 0):
            new = pos + delta
            self.avg_cost = (self.avg_cost * abs(pos) + price * abs(delta)) / abs(new)
            self.qty = new
            return
        closing = min(abs(delta), abs(pos))
        direction = ONE if pos > 0 else -ONE
        self.realised_gross += (price - self.avg_cost) * closing * direction
        new = pos + delta
        self.qty = new
        if not new:
            self.avg_cost = ZERO
        elif (new > 0) != (pos > 0):
            self.avg_cost = price  # went through zero: the rest is a new position

    def fees(self, prices: Mapping[str, Decimal]) -> tuple[Decimal, tuple[str, ...]]:
        """All fees valued in the quote asset, and the fee assets that have no price."""
        total = self.fees_in_quote
        missing: list[str] = []
        for asset, amount in sorted(self.other_fees.items()):
            p = asset_price(asset, prices, self.quote)
            if p is None:
                missing.append(asset)
            else:
                total += amount * p
        return total, tuple(missing)

    def unrealised(self, price: Decimal | None) -> Decimal | None:
        if not self.qty:
            return ZERO
        if price is None:
            return None
        return (price - self.avg_cost) * self.qty


@dataclass(frozen=True, slots=True)
class SymbolPnl:
    symbol: str
    quote: str
    position: Decimal
    avg_cost: Decimal
    price: Decimal | None
    realised: Decimal  # net of fees
    fees: Decimal
    unrealised: Decimal | None
    fills: int
    volume: Decimal
    unpriced_fees: tuple[str, ...]

    @property
    def total(self) -> Decimal | None:
        return None if self.unrealised is None else self.realised + self.unrealised


@dataclass(frozen=True, slots=True)
class PnlReport:
    """Per-symbol PnL in each symbol's quote asset, and totals in the valuation asset
    (symbols whose quote asset has no price in it are left out of the totals)."""

    quote: str
    symbols: tuple[SymbolPnl, ...]
    realised: Decimal
    unrealised: Decimal
    fees: Decimal
    incomplete: tuple[str, ...]  # symbols left out of (part of) the totals

    @property
    def total(self) -> Decimal:
        return self.realised + self.unrealised


class PnlLedger:
    """Fills in, positions out. Feed fills in time order with `apply`."""

    def __init__(self) -> None:
        self.positions: dict[str, Position] = {}
        self.fees_paid: dict[str, Decimal] = {}
        self.count = 0

    def apply(self, fill: Fill, base: str, quote: str) -> None:
        pos = self.positions.get(fill.symbol)
        if pos is None:
            pos = self.positions[fill.symbol] = Position(fill.symbol, base, quote)
        pos.apply(fill)
        self.count += 1
        if fill.commission:
            a = fill.commission_asset
            self.fees_paid[a] = self.fees_paid.get(a, ZERO) + fill.commission

    def report(self, prices: Mapping[str, Decimal], quote: str = "USDT") -> PnlReport:
        rows: list[SymbolPnl] = []
        realised = unrealised = fees_total = ZERO
        incomplete: list[str] = []
        for symbol in sorted(self.positions):
            p = self.positions[symbol]
            price = prices.get(symbol)
            fees, missing = p.fees(prices)
            u = p.unrealised(price)
            row = SymbolPnl(
                symbol=symbol,
                quote=p.quote,
                position=p.qty,
                avg_cost=p.avg_cost,
                price=price,
                realised=p.realised_gross - fees,
                fees=fees,
                unrealised=u,
                fills=p.fills,
                volume=p.volume,
                unpriced_fees=missing,
            )
            rows.append(row)
            conv = asset_price(p.quote, prices, quote)
            if conv is None:
                incomplete.append(symbol)
                continue
            realised += row.realised * conv
            fees_total += fees * conv
            if u is None:
                incomplete.append(symbol)
            else:
                unrealised += u * conv
            if missing and symbol not in incomplete:
                incomplete.append(symbol)
        return PnlReport(quote, tuple(rows), realised, unrealised, fees_total, tuple(incomplete))
