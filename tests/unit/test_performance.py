"""Valuation and average-cost PnL (proxy.performance): exact Decimal table tests."""

from __future__ import annotations

import itertools
from decimal import Decimal as D

import pytest

from proxy.engine.model import Balance, Fill, Side
from proxy.performance import PnlLedger, Position, asset_price, value_balances

_ids = itertools.count(1)


def fill(side: str, qty: str, price: str, fee: str = "0", fee_asset: str = "USDT",
         symbol: str = "BTCUSDT") -> Fill:
    n = next(_ids)
    return Fill(
        trade_id=f"t{n}", order_id=f"o{n}", account_id=1, symbol=symbol, side=Side(side),
        price=D(price), qty=D(qty), quote_qty=D(price) * D(qty), commission=D(fee),
        commission_asset=fee_asset, is_maker=False, time_ms=n, client_order_id=None,
        reason={"source": "book"},
    )


def position(*fills: Fill) -> Position:
    p = Position("BTCUSDT", "BTC", "USDT")
    for f in fills:
        p.apply(f)
    return p


PRICES = {"BTCUSDT": D("100"), "MXUSDT": D("2.5"), "ETHBTC": D("0.05")}


def test_asset_price_quote_is_one_and_unknown_is_none() -> None:
    assert asset_price("USDT", PRICES) == D(1)
    assert asset_price("BTC", PRICES) == D("100")
    assert asset_price("DOGE", PRICES) is None
    assert asset_price("ETH", PRICES, quote="BTC") == D("0.05")


def test_value_balances_counts_free_and_locked_and_lists_unpriced_assets() -> None:
    v = value_balances(
        [Balance("USDT", D("9920"), D("80")), Balance("BTC", D("0.5"), D("0.25")),
         Balance("DOGE", D("7")), Balance("ETH", D("0"))],
        PRICES,
    )
    assert [a.asset for a in v.assets] == ["BTC", "DOGE", "USDT"]  # zero balances left out
    btc = v.assets[0]
    assert (btc.total, btc.price, btc.value) == (D("0.75"), D("100"), D("75.00"))
    assert v.assets[1].value is None
    assert v.total == D("10075.00")
    assert v.unpriced == ("DOGE",)
    assert not v.complete


def test_buys_average_their_cost() -> None:
    p = position(fill("BUY", "1", "100"), fill("BUY", "3", "200"))
    assert (p.qty, p.avg_cost, p.realised_gross) == (D("4"), D("175"), D("0"))
    assert p.unrealised(D("180")) == D("20")


def test_a_sell_realises_against_the_average_cost_and_keeps_it() -> None:
    p = position(fill("BUY", "1", "100"), fill("BUY", "1", "200"), fill("SELL", "1.5", "300"))
    assert p.realised_gross == D("225")  # (300 - 150) * 1.5
    assert (p.qty, p.avg_cost) == (D("0.5"), D("150"))
    assert p.unrealised(D("100")) == D("-25")


def test_closing_flat_resets_the_average_and_unrealised_is_zero() -> None:
    p = position(fill("BUY", "2", "100"), fill("SELL", "2", "90"))
    assert (p.qty, p.avg_cost, p.realised_gross) == (D("0"), D("0"), D("-20"))
    assert p.unrealised(None) == D("0")  # no position: no price needed


def test_going_through_zero_opens_the_rest_at_the_fill_price() -> None:
    p = position(fill("BUY", "1", "100"), fill("SELL", "3", "120"))
    assert p.realised_gross == D("20")
    assert (p.qty, p.avg_cost) == (D("-2"), D("120"))
    # a short gains when the price falls
    assert p.unrealised(D("110")) == D("20")
    p.apply(fill("BUY", "2", "110"))
    assert (p.realised_gross, p.qty) == (D("40"), D("0"))


def test_selling_coins_the_account_started_with_is_a_short_from_the_fills() -> None:
    p = position(fill("SELL", "0.5", "100"))
    assert (p.qty, p.avg_cost, p.realised_gross) == (D("-0.5"), D("100"), D("0"))


def test_fees_in_quote_base_and_mx_are_all_counted() -> None:
    p = position(
        fill("BUY", "1", "100", fee="0.1", fee_asset="USDT"),
        fill("BUY", "1", "100", fee="0.01", fee_asset="BTC"),
        fill("SELL", "0.5", "100", fee="0.04", fee_asset="MX"),
    )
    # the base fee is worth 0.01 * 100 and leaves the position at its average cost
    assert p.fees_in_quote == D("1.1")
    assert (p.qty, p.avg_cost) == (D("1.49"), D("100"))
    assert p.other_fees == {"MX": D("0.04")}
    assert p.fees(PRICES) == (D("1.2"), ())  # 0.04 MX * 2.5
    assert p.fees({}) == (D("1.1"), ("MX",))


def test_report_is_net_of_fees_and_converted_to_the_valuation_asset() -> None:
    ledger = PnlLedger()
    ledger.apply(fill("BUY", "2", "100", fee="0.2"), "BTC", "USDT")
    ledger.apply(fill("SELL", "1", "110", fee="0.11"), "BTC", "USDT")
    ledger.apply(fill("BUY", "10", "0.04", symbol="ETHBTC", fee="0.0004", fee_asset="BTC"), "ETH", "BTC")
    report = ledger.report(PRICES)
    btc, eth = report.symbols
    assert (btc.symbol, btc.realised, btc.fees, btc.unrealised) == ("BTCUSDT", D("9.69"), D("0.31"), D("0"))
    assert btc.total == D("9.69")
    # ETHBTC: in BTC; +0.01 BTC unrealised at 0.05, fee 0.0004 BTC; 1 BTC = 100 USDT
    assert (eth.realised, eth.unrealised) == (D("-0.0004"), D("0.10"))
    assert report.realised == D("9.69") + D("-0.0004") * 100
    assert report.unrealised == D("10.00")
    assert report.fees == D("0.31") + D("0.04")
    assert report.incomplete == ()
    assert ledger.fees_paid == {"USDT": D("0.31"), "BTC": D("0.0004")}
    assert ledger.count == 3


def test_report_without_prices_marks_symbols_incomplete() -> None:
    ledger = PnlLedger()
    ledger.apply(fill("BUY", "1", "100"), "BTC", "USDT")
    report = ledger.report({})
    assert report.symbols[0].unrealised is None
    assert report.symbols[0].total is None
    assert report.incomplete == ("BTCUSDT",)
    assert report.unrealised == D("0")


@pytest.mark.parametrize("n", [3, 7])
def test_average_cost_is_exact_for_repeating_decimals(n: int) -> None:
    fills = [fill("BUY", "1", str(100 + i)) for i in range(n)]
    p = position(*fills)
    total_cost = sum((D(100 + i) for i in range(n)), D(0))
    assert p.qty == D(n)
    assert abs(p.avg_cost * n - total_cost) < D("1e-20")
    p.apply(fill("SELL", str(n), "200"))
    assert abs(p.realised_gross - (D(200) * n - total_cost)) < D("1e-20")
