"""Balances: reserve on acceptance, settle on each fill, release on cancel.

Invariant: for every asset `free >= 0`, `locked >= 0`, and `locked` equals what the open
orders hold (`state.check_invariants`). Insufficient funds are rejected at submit, never
discovered at fill time.

Fees (MEXC, reference section 6.1): charged in the quote asset on both sides - a BUY pays
`cost + fee`, a SELL receives `cost - fee`. With MX deduction on and enough free MX, the fee
is paid in MX at a discount instead. MEXC's recorded commissions are not rounded
(`0.005712855` on a 4-decimal quote, `0.0003998377369698171` MX), so neither are ours.
"""

from __future__ import annotations

from decimal import Decimal

from .model import ZERO, Balance
from .state import Txn

MX = "MX"


def reserve(txn: Txn, account_id: int, asset: str, amount: Decimal) -> bool:
    """Move `amount` from free to locked; False (and nothing changed) if free is short."""
    if amount <= 0:
        return True
    b = txn.balance(account_id, asset)
    if b.free < amount:
        return False
    txn.set_balance(account_id, Balance(asset, b.free - amount, b.locked + amount))
    return True


def release(txn: Txn, account_id: int, asset: str, amount: Decimal) -> None:
    if amount <= 0:
        return
    b = txn.balance(account_id, asset)
    txn.set_balance(account_id, Balance(asset, b.free + amount, b.locked - amount))


def credit(txn: Txn, account_id: int, asset: str, amount: Decimal) -> None:
    if amount == 0:
        return
    b = txn.balance(account_id, asset)
    txn.set_balance(account_id, Balance(asset, b.free + amount, b.locked))


def unlock_and_spend(
    txn: Txn, account_id: int, asset: str, unlock: Decimal, spend: Decimal
) -> None:
    """Release `unlock` from locked and take `spend` out of the asset (spend <= unlock)."""
    b = txn.balance(account_id, asset)
    txn.set_balance(account_id, Balance(asset, b.free + unlock - spend, b.locked - unlock))


def choose_fee(
    txn: Txn,
    account_id: int,
    quote_fee: Decimal,
    quote_asset: str,
    mx_deduct: bool,
    mx_price: Decimal | None,
    mx_discount: Decimal,
) -> tuple[Decimal, str]:
    """The fee and its asset: MX at a discount when deduction is on and MX suffices."""
    if quote_fee <= 0:
        return ZERO, quote_asset
    if mx_deduct and mx_price is not None and mx_price > 0 and quote_asset != MX:
        fee_mx = quote_fee * (1 - mx_discount) / mx_price
        if txn.balance(account_id, MX).free >= fee_mx:
            return fee_mx, MX
    return quote_fee, quote_asset
