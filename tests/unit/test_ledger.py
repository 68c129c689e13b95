"""The balance ledger (engine/ledger.py) on a Txn: reserve, release, credit, unlock_and_spend
and the fee choice. free + locked == total always; nothing ever goes negative; a reserve
that cannot be met changes nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.engine.ledger import MX, choose_fee, credit, release, reserve, unlock_and_spend
from proxy.engine.model import Balance, InvariantError
from proxy.engine.state import AccountState, EngineState, Txn, apply, check_invariants

D = Decimal
ACCT = 1


def make_state(**balances: str) -> EngineState:
    state = EngineState()
    state.accounts[ACCT] = AccountState(
        ACCT, "test-key", balances={a: Balance(a, D(v)) for a, v in balances.items()}
    )
    return state


def bal(txn: Txn, asset: str) -> tuple[Decimal, Decimal]:
    b = txn.balance(ACCT, asset)
    return b.free, b.locked


# ---------------------------------------------------------------- reserve


def test_reserve_moves_free_to_locked() -> None:
    txn = Txn(make_state(USDT="100"), 0)

    ok = reserve(txn, ACCT, "USDT", D("30.5"))

    assert ok is True
    assert bal(txn, "USDT") == (D("69.5"), D("30.5"))
    assert txn.balance(ACCT, "USDT").total == D("100")


def test_reserve_exactly_the_free_amount() -> None:
    txn = Txn(make_state(USDT="100"), 0)

    assert reserve(txn, ACCT, "USDT", D("100")) is True
    assert bal(txn, "USDT") == (D("0"), D("100"))


def test_reserve_short_by_the_smallest_amount_fails_and_changes_nothing() -> None:
    state = make_state(USDT="100")
    txn = Txn(state, 0)

    ok = reserve(txn, ACCT, "USDT", D("100.00000001"))

    assert ok is False
    assert txn.balances == {}
    assert txn.empty
    assert bal(txn, "USDT") == (D("100"), D("0"))
    assert state.accounts[ACCT].balances["USDT"] == Balance("USDT", D("100"), D("0"))


def test_reserve_of_an_asset_never_held_fails() -> None:
    txn = Txn(make_state(USDT="100"), 0)

    assert reserve(txn, ACCT, "BTC", D("0.001")) is False
    assert txn.balances == {}


def test_reserve_ignores_what_is_already_locked() -> None:
    txn = Txn(make_state(USDT="100"), 0)
    assert reserve(txn, ACCT, "USDT", D("60")) is True

    ok = reserve(txn, ACCT, "USDT", D("50"))  # 40 free, 60 locked: total would do, free does not

    assert ok is False
    assert bal(txn, "USDT") == (D("40"), D("60"))


def test_reserve_of_zero_writes_nothing() -> None:
    txn = Txn(make_state(USDT="100"), 0)

    assert reserve(txn, ACCT, "USDT", D("0")) is True
    assert txn.balances == {}


# ---------------------------------------------------------------- release / credit


def test_release_returns_locked_to_free() -> None:
    txn = Txn(make_state(USDT="100"), 0)
    reserve(txn, ACCT, "USDT", D("30"))

    release(txn, ACCT, "USDT", D("12.25"))

    assert bal(txn, "USDT") == (D("82.25"), D("17.75"))
    assert txn.balance(ACCT, "USDT").total == D("100")


def test_release_more_than_locked_is_an_invariant_error() -> None:
    txn = Txn(make_state(USDT="100"), 0)
    reserve(txn, ACCT, "USDT", D("30"))

    with pytest.raises(InvariantError, match="negative balance"):
        release(txn, ACCT, "USDT", D("30.01"))
    assert bal(txn, "USDT") == (D("70"), D("30"))


def test_credit_adds_to_free_only() -> None:
    txn = Txn(make_state(USDT="100"), 0)
    reserve(txn, ACCT, "USDT", D("10"))

    credit(txn, ACCT, "USDT", D("0.005"))
    credit(txn, ACCT, "BTC", D("0.25"))

    assert bal(txn, "USDT") == (D("90.005"), D("10"))
    assert bal(txn, "BTC") == (D("0.25"), D("0"))


def test_credit_that_would_make_free_negative_is_an_invariant_error() -> None:
    txn = Txn(make_state(USDT="1"), 0)

    with pytest.raises(InvariantError):
        credit(txn, ACCT, "USDT", D("-1.01"))
    assert txn.balances == {}


# ---------------------------------------------------------------- unlock_and_spend


def test_unlock_and_spend_all_of_a_buy_reservation() -> None:
    # a BUY fill of 10000 USDT + 5 USDT fee, reserved as 10005
    txn = Txn(make_state(USDT="20000"), 0)
    reserve(txn, ACCT, "USDT", D("10005"))

    unlock_and_spend(txn, ACCT, "USDT", D("10005"), D("10005"))

    assert bal(txn, "USDT") == (D("9995"), D("0"))


def test_unlock_and_spend_less_than_unlocked_returns_the_difference() -> None:
    # the fee went to MX: 10005 was reserved, only the 10000 cost is spent
    txn = Txn(make_state(USDT="20000"), 0)
    reserve(txn, ACCT, "USDT", D("10005"))

    unlock_and_spend(txn, ACCT, "USDT", D("10005"), D("10000"))

    assert bal(txn, "USDT") == (D("10000"), D("0"))


def test_unlock_part_of_a_reservation() -> None:
    txn = Txn(make_state(BTC="1"), 0)
    reserve(txn, ACCT, "BTC", D("0.5"))

    unlock_and_spend(txn, ACCT, "BTC", D("0.2"), D("0.2"))

    assert bal(txn, "BTC") == (D("0.5"), D("0.3"))
    assert txn.balance(ACCT, "BTC").total == D("0.8")


def test_unlock_more_than_locked_is_an_invariant_error() -> None:
    txn = Txn(make_state(BTC="1"), 0)
    reserve(txn, ACCT, "BTC", D("0.5"))

    with pytest.raises(InvariantError):
        unlock_and_spend(txn, ACCT, "BTC", D("0.6"), D("0.6"))
    assert bal(txn, "BTC") == (D("0.5"), D("0.5"))


# ---------------------------------------------------------------- choose_fee


def test_choose_fee_without_deduction_is_the_quote_fee() -> None:
    txn = Txn(make_state(USDT="100", MX="1000"), 0)

    assert choose_fee(txn, ACCT, D("5"), "USDT", False, D("2"), D("0.2")) == (D("5"), "USDT")


def test_choose_fee_zero_fee_is_zero_in_quote_even_with_deduction() -> None:
    txn = Txn(make_state(MX="1000"), 0)

    assert choose_fee(txn, ACCT, D("0"), "USDT", True, D("2"), D("0.2")) == (D("0"), "USDT")


def test_choose_fee_in_mx_at_the_discount() -> None:
    # 5 USDT fee, 20 % off = 4 USDT, at 2 USDT per MX = 2 MX
    txn = Txn(make_state(MX="2"), 0)

    fee = choose_fee(txn, ACCT, D("5"), "USDT", True, D("2"), D("0.2"))

    assert fee == (D("2"), MX)
    assert txn.balances == {}  # choosing charges nothing


def test_choose_fee_falls_back_to_quote_when_mx_is_short() -> None:
    txn = Txn(make_state(MX="1.99999999"), 0)

    assert choose_fee(txn, ACCT, D("5"), "USDT", True, D("2"), D("0.2")) == (D("5"), "USDT")


def test_choose_fee_counts_only_free_mx() -> None:
    txn = Txn(make_state(MX="10"), 0)
    reserve(txn, ACCT, "MX", D("9"))  # 1 free, 9 locked by an order

    assert choose_fee(txn, ACCT, D("5"), "USDT", True, D("2"), D("0.2")) == (D("5"), "USDT")


@pytest.mark.parametrize("mx_price", [None, D("0"), D("-1")])
def test_choose_fee_without_a_usable_mx_price_is_in_quote(mx_price: Decimal | None) -> None:
    txn = Txn(make_state(MX="1000"), 0)

    assert choose_fee(txn, ACCT, D("5"), "USDT", True, mx_price, D("0.2")) == (D("5"), "USDT")


# ---------------------------------------------------------------- Txn overlay and invariants


def test_txn_writes_reach_the_state_only_through_apply() -> None:
    state = make_state(USDT="100")
    txn = Txn(state, 0)
    reserve(txn, ACCT, "USDT", D("40"))
    release(txn, ACCT, "USDT", D("40"))
    credit(txn, ACCT, "BTC", D("0.1"))
    assert state.accounts[ACCT].balances == {"USDT": Balance("USDT", D("100"))}

    apply(state, txn)

    assert state.accounts[ACCT].balances == {
        "USDT": Balance("USDT", D("100"), D("0")),
        "BTC": Balance("BTC", D("0.1"), D("0")),
    }
    check_invariants(state)


def test_check_invariants_catches_locked_funds_no_open_order_holds() -> None:
    state = make_state(USDT="100")
    txn = Txn(state, 0)
    reserve(txn, ACCT, "USDT", D("40"))
    apply(state, txn)

    with pytest.raises(InvariantError, match="locked 40 != held by open orders 0"):
        check_invariants(state)


def test_check_invariants_catches_a_negative_balance() -> None:
    state = make_state(USDT="100")
    state.accounts[ACCT].balances["BTC"] = Balance("BTC", D("-0.1"))

    with pytest.raises(InvariantError, match="negative balance"):
        check_invariants(state)


_AMOUNTS = st.decimals(min_value=D("0"), max_value=D("150"), places=4, allow_nan=False)


@given(st.lists(st.tuples(st.sampled_from(["reserve", "release"]), _AMOUNTS), max_size=30))
def test_any_sequence_keeps_total_and_never_goes_negative(ops: list[tuple[str, Decimal]]) -> None:
    txn = Txn(make_state(USDT="100"), 0)
    for op, amount in ops:
        free, locked = bal(txn, "USDT")
        if op == "reserve":
            ok = reserve(txn, ACCT, "USDT", amount)
            assert ok is (amount <= free)
            if not ok:
                assert bal(txn, "USDT") == (free, locked)
        else:
            release(txn, ACCT, "USDT", min(amount, locked))
        free, locked = bal(txn, "USDT")
        assert free + locked == D("100")
        assert free >= 0 and locked >= 0
