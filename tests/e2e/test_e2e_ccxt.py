"""ccxt 4.5.90, unmodified, sync `ccxt.mexc` and async `ccxt.async_support.mexc`, against
the running sidecar. Every test runs once per flavour through the same code: `await
ex("method", ...)` calls the sync method directly (the sidecar has its own thread) or awaits
the async one.

Market: the recorded BTCUSDT book (asks 87903.98 x 5.121816, ...; bids 87900.00 x
0.05661525, 87899.76 x 2.480768, ...), last price 87900, taker fee 0.0005 charged in USDT on
both sides, maker fee 0. The demo account starts with 10000 USDT and 1 BTC.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from .bot_recipes import ccxt_async, ccxt_sync
from .e2e_harness import KEY, SECRET, Market, Sidecar

BTC = "BTC/USDT"


class Ccxt:
    """One calling convention for both flavours of the same exchange class."""

    def __init__(self, exchange: Any, is_async: bool) -> None:
        self.exchange = exchange
        self.is_async = is_async

    async def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.exchange, method)(*args, **kwargs)
        return await result if self.is_async else result

    async def raises(self, exc: type[Exception], method: str, *args: Any) -> Exception:
        with pytest.raises(exc) as info:
            await self(method, *args)
        return info.value


async def _client(flavour: str, sidecar: Sidecar, secret: str = SECRET) -> AsyncIterator[Ccxt]:
    if flavour == "sync":
        yield Ccxt(ccxt_sync(sidecar.url, KEY, secret), False)
        return
    exchange = ccxt_async(sidecar.url, KEY, secret)
    try:
        yield Ccxt(exchange, True)
    finally:
        await exchange.close()


@pytest.fixture(params=["sync", "async"])
async def ex(request: pytest.FixtureRequest, sidecar: Sidecar) -> AsyncIterator[Ccxt]:
    async for c in _client(request.param, sidecar):
        yield c


async def balances(ex: Ccxt) -> dict[str, tuple[str, str]]:
    """fetch_balance as MEXC sent it: {asset: (free, locked)}, exact decimal strings.
    ccxt's unified numbers must agree with them."""
    bal = await ex("fetch_balance")
    raw = {b["asset"]: (b["free"], b["locked"]) for b in bal["info"]["balances"]}
    for asset, (free, locked) in raw.items():
        assert bal[asset]["free"] == float(free)
        assert bal[asset]["used"] == float(locked)
        assert bal[asset]["total"] == float(Decimal(free) + Decimal(locked))
    return raw


# --------------------------------------------------------------------------- market data


async def test_market_data(ex: Ccxt, market: Market) -> None:
    markets = await ex("load_markets")
    m = markets[BTC]
    # exchangeInfo as recorded: 8 amount decimals, 2 price decimals, min 0.000001 BTC / 1 USDT
    assert (m["id"], m["base"], m["quote"], m["spot"]) == ("BTCUSDT", "BTC", "USDT", True)
    assert m["precision"]["amount"] == 1e-8 and m["precision"]["price"] == 0.01
    assert m["limits"]["amount"]["min"] == 0.000001
    assert m["limits"]["cost"] == {"min": 1.0, "max": 4000000.0}
    assert (m["maker"], m["taker"]) == (0.0, 0.0005)
    assert sorted(s for s, v in markets.items() if v["spot"]) == sorted(
        f"{s['baseAsset']}/{s['quoteAsset']}" for s in market.fake.exchange_info["symbols"]
    )

    t0 = int(time.time() * 1000)
    server = await ex("fetch_time")
    assert t0 - 1000 <= server <= int(time.time() * 1000) + 1000  # the sidecar's own clock

    rec = market.fake._rec("/api/v3/ticker/24hr", "symbol=BTCUSDT")
    t = await ex("fetch_ticker", BTC)
    assert "timestamp" not in t["info"]  # else ccxt parses a swap ticker (all None)
    assert t["info"] == rec  # passed through unchanged
    assert (t["bid"], t["ask"]) == (float(rec["bidPrice"]), float(rec["askPrice"]))
    assert (t["high"], t["low"]) == (float(rec["highPrice"]), float(rec["lowPrice"]))
    assert (t["last"], t["baseVolume"]) == (float(rec["lastPrice"]), float(rec["volume"]))
    assert t["timestamp"] == rec["closeTime"]

    tickers = await ex("fetch_tickers")
    recorded = market.fake._rec("/api/v3/ticker/24hr", "")
    assert len(tickers) == len(recorded)
    for sym, tk in tickers.items():
        assert "timestamp" not in tk["info"], sym
        assert tk["bid"] is not None and tk["ask"] is not None and tk["high"] is not None, sym
    assert sorted(tk["info"]["symbol"] for tk in tickers.values()) == sorted(r["symbol"] for r in recorded)

    book = await ex("fetch_order_book", BTC)
    depth = market.fake.books["BTCUSDT"]
    assert book["asks"] == [[float(p), float(q)] for p, q in depth["asks"]]
    assert book["bids"] == [[float(p), float(q)] for p, q in depth["bids"]]
    assert book["asks"][0] == [87903.98, 5.121816] and book["bids"][0] == [87900.0, 0.05661525]
    assert book["nonce"] == depth["lastUpdateId"] and book["timestamp"] == depth["timestamp"]

    trades = await ex("fetch_trades", BTC)
    agg = [s for s in market.requests() if s.path == "/api/v3/aggTrades"][-1]
    answered = market.fake._rec("/api/v3/aggTrades", agg.query)
    assert [(tr["price"], tr["amount"], tr["timestamp"]) for tr in trades] == sorted(
        ((float(a["p"]), float(a["q"]), a["T"]) for a in answered), key=lambda x: x[2]
    )

    candles = await ex("fetch_ohlcv", BTC, "5m")
    kl = [s for s in market.requests() if s.path == "/api/v3/klines"][-1]
    assert "interval=5m" in kl.query
    answered = market.fake._rec("/api/v3/klines", kl.query)
    assert candles == [[k[0], *(float(x) for x in k[1:6])] for k in answered]


# --------------------------------------------------------------------------- taker fills


async def test_taker_orders_fill_on_the_book_and_move_balances_exactly(ex: Ccxt) -> None:
    await ex("load_markets")
    assert await balances(ex) == {"BTC": ("1", "0"), "USDT": ("10000", "0")}

    # market buy by amount: 0.001 @ 87903.98 = 87.90398, fee 0.04395199 USDT
    ack = await ex("create_order", BTC, "market", "buy", 0.001)
    assert ack["id"].startswith("C02__") and ack["status"] is None  # MEXC's ack has no status
    assert "code" not in ack["info"] and ack["info"]["type"] == "MARKET"
    o = await ex("fetch_order", ack["id"], BTC)
    assert (o["status"], o["filled"], o["remaining"], o["cost"]) == ("closed", 0.001, 0.0, 87.90398)
    assert o["average"] == 87903.98 and "code" not in o["info"]
    assert await balances(ex) == {"BTC": ("1.001", "0"), "USDT": ("9912.05206801", "0")}

    # market buy by cost: 100 USDT buys floor8(100 / 87903.98) = 0.0011376 BTC
    ack = await ex("create_order", BTC, "market", "buy", None, None, {"cost": 100})
    o = await ex("fetch_order", ack["id"], BTC)
    assert (o["status"], o["filled"]) == ("closed", 0.0011376)
    assert o["info"]["cummulativeQuoteQty"] == "99.999567648"
    assert o["info"]["origQuoteOrderQty"] == "100"
    assert await balances(ex) == {"BTC": ("1.0021376", "0"), "USDT": ("9812.002500578176", "0")}

    # market sell 0.002 @ 87900 = 175.8, fee 0.0879 USDT
    ack = await ex("create_order", BTC, "market", "sell", 0.002)
    o = await ex("fetch_order", ack["id"], BTC)
    assert (o["status"], o["side"], o["filled"], o["cost"]) == ("closed", "sell", 0.002, 175.8)
    assert await balances(ex) == {"BTC": ("1.0001376", "0"), "USDT": ("9987.714600578176", "0")}

    # IOC sell 0.06 @ 87900: only 0.05461525 is left at 87900 (0.002 was taken above);
    # the rest is cancelled: PARTIALLY_CANCELED, which ccxt calls canceled
    ack = await ex("create_order", BTC, "limit", "sell", 0.06, 87900, {"timeInForce": "IOC"})
    assert ack["info"]["type"] == "IMMEDIATE_OR_CANCEL" and ack["timeInForce"] == "IOC"
    o = await ex("fetch_order", ack["id"], BTC)
    assert o["info"]["status"] == "PARTIALLY_CANCELED" and o["status"] == "canceled"
    assert (o["filled"], o["remaining"], o["cost"]) == (0.05461525, 0.00538475, 4800.680475)
    assert await balances(ex) == {
        "BTC": ("0.94552235", "0"), "USDT": ("14785.994735340676", "0")}

    # FOK buy 0.1 @ 87903.5 (below the best ask 87903.98): nothing crosses, killed, no charge
    ack = await ex("create_order", BTC, "limit", "buy", 0.1, 87903.5, {"timeInForce": "FOK"})
    assert ack["info"]["type"] == "FILL_OR_KILL"
    o = await ex("fetch_order", ack["id"], BTC)
    assert (o["info"]["status"], o["filled"], o["cost"]) == ("CANCELED", 0.0, 0.0)
    assert await balances(ex) == {
        "BTC": ("0.94552235", "0"), "USDT": ("14785.994735340676", "0")}

    # FOK buy 0.01 @ 87904 fills completely at 87903.98: 879.0398 + fee 0.43951990
    ack = await ex("create_order", BTC, "limit", "buy", 0.01, 87904, {"timeInForce": "FOK"})
    o = await ex("fetch_order", ack["id"], BTC)
    assert (o["status"], o["filled"], o["average"], o["price"]) == ("closed", 0.01, 87903.98, 87904.0)
    assert await balances(ex) == {
        "BTC": ("0.95552235", "0"), "USDT": ("13906.515415440676", "0")}

    # every fill, with its fee, in myTrades (oldest first) and per order
    trades = await ex("fetch_my_trades", BTC)
    assert [(t["side"], t["price"], t["amount"], t["takerOrMaker"]) for t in trades] == [
        ("buy", 87903.98, 0.001, "taker"),
        ("buy", 87903.98, 0.0011376, "taker"),
        ("sell", 87900.0, 0.002, "taker"),
        ("sell", 87900.0, 0.05461525, "taker"),
        ("buy", 87903.98, 0.01, "taker"),
    ]
    assert [t["info"]["commission"] for t in trades] == [
        "0.04395199", "0.049999783824", "0.0879", "2.4003402375", "0.4395199"]
    assert {t["fee"]["currency"] for t in trades} == {"USDT"}
    assert trades[2]["fee"]["cost"] == 0.0879
    order_trades = await ex("fetch_order_trades", ack["id"], BTC)
    assert [(t["order"], t["amount"], t["fee"]["cost"]) for t in order_trades] == [
        (ack["id"], 0.01, 0.4395199)]
    assert order_trades[0]["id"] == trades[-1]["id"]

    closed = await ex("fetch_closed_orders", BTC)  # ccxt sends states=3: FILLED only
    assert {o["info"]["status"] for o in closed} == {"FILLED"} and len(closed) == 4


async def test_limit_order_crossing_the_book_takes_then_rests(ex: Ccxt) -> None:
    await ex("load_markets")
    # sell 0.1 @ 87900: takes the 0.05661525 bid at 87900 (taker), rests 0.04338475 as maker
    ack = await ex("create_order", BTC, "limit", "sell", 0.1, 87900)
    o = await ex("fetch_order", ack["id"], BTC)
    assert o["info"]["status"] == "PARTIALLY_FILLED" and o["status"] == "open"
    assert (o["filled"], o["remaining"], o["cost"]) == (0.05661525, 0.04338475, 4976.480475)
    # 4976.480475 - fee 2.4882402375 credited; 0.04338475 BTC still offered
    assert await balances(ex) == {"BTC": ("0.9", "0.04338475"), "USDT": ("14973.9922347625", "0")}
    trades = await ex("fetch_order_trades", ack["id"], BTC)
    assert [(t["price"], t["amount"], t["takerOrMaker"], t["info"]["commission"]) for t in trades] == [
        (87900.0, 0.05661525, "taker", "2.4882402375")]
    assert [o["id"] for o in await ex("fetch_open_orders", BTC)] == [ack["id"]]


# --------------------------------------------------------------------------- resting orders


async def test_resting_orders_lock_funds_and_cancel_restores_them(ex: Ccxt) -> None:
    await ex("load_markets")
    buy = await ex("create_order", BTC, "limit", "buy", 0.01, 87500)
    assert (buy["price"], buy["amount"], buy["type"], buy["side"]) == (87500.0, 0.01, "limit", "buy")
    assert buy["info"]["origQty"] == "0.01" and "clientOrderId" not in buy["info"]
    assert await balances(ex) == {"BTC": ("1", "0"), "USDT": ("9125", "875")}

    sell = await ex("create_order", BTC, "limit", "sell", 0.001, 88300, {"clientOrderId": "bot-sell-1"})
    assert await balances(ex) == {"BTC": ("0.999", "0.001"), "USDT": ("9125", "875")}

    maker = await ex("create_order", BTC, "limit", "buy", 0.001, 87000, {"postOnly": True})
    assert maker["info"]["type"] == "LIMIT_MAKER"
    assert await balances(ex) == {"BTC": ("0.999", "0.001"), "USDT": ("9038", "962")}

    # a post-only order that would take is refused and changes nothing
    err = await ex.raises(ccxt.ExchangeError, "create_order", BTC, "limit", "buy", 0.001, 87905,
                          {"postOnly": True})
    assert '"code":-2010' in str(err)
    assert await balances(ex) == {"BTC": ("0.999", "0.001"), "USDT": ("9038", "962")}

    o = await ex("fetch_order", buy["id"], BTC)
    assert (o["status"], o["filled"], o["remaining"], o["price"]) == ("open", 0.0, 0.01, 87500.0)
    assert o["info"]["clientOrderId"] is None and "code" not in o["info"]
    by_client = await ex("fetch_order", None, BTC, {"clientOrderId": "bot-sell-1"})
    assert (by_client["id"], by_client["clientOrderId"]) == (sell["id"], "bot-sell-1")
    assert (by_client["side"], by_client["price"], by_client["amount"]) == ("sell", 88300.0, 0.001)
    maker_q = await ex("fetch_order", maker["id"], BTC)
    assert (maker_q["type"], maker_q["timeInForce"]) == ("limit", "POST_ONLY")
    assert maker_q["info"]["type"] == "LIMIT_MAKER" and maker_q["status"] == "open"

    ids = [buy["id"], sell["id"], maker["id"]]
    assert [o["id"] for o in await ex("fetch_open_orders", BTC)] == ids
    assert [o["id"] for o in await ex("fetch_open_orders")] == ids

    canceled = await ex("cancel_order", buy["id"], BTC)
    assert (canceled["id"], canceled["status"]) == (buy["id"], "canceled")
    assert canceled["info"]["status"] == "CANCELED" and "code" not in canceled["info"]
    assert await balances(ex) == {"BTC": ("0.999", "0.001"), "USDT": ("9913", "87")}

    rest = await ex("cancel_all_orders", BTC)
    assert sorted(o["id"] for o in rest) == sorted([sell["id"], maker["id"]])
    assert {o["status"] for o in rest} == {"canceled"}
    assert all("code" not in o["info"] for o in rest)
    assert await balances(ex) == {"BTC": ("1", "0"), "USDT": ("10000", "0")}

    # cancel_all_orders without a symbol: DELETE /api/v3/order/all
    again = await ex("create_order", BTC, "limit", "sell", 0.002, 88000)
    assert await balances(ex) == {"BTC": ("0.998", "0.002"), "USDT": ("10000", "0")}
    assert await ex("cancel_all_orders") == []
    assert await ex("fetch_open_orders") == []
    assert await balances(ex) == {"BTC": ("1", "0"), "USDT": ("10000", "0")}

    # a filled order for the history
    filled = await ex("create_order", BTC, "market", "buy", 0.001)
    orders = await ex("fetch_orders", BTC)
    assert [o["id"] for o in orders] == [*ids, again["id"], filled["id"]]
    assert [o["status"] for o in orders] == ["canceled"] * 4 + ["closed"]
    assert all("code" not in o["info"] for o in orders)
    assert [o["id"] for o in await ex("fetch_closed_orders", BTC)] == [filled["id"]]
    assert [o["id"] for o in await ex("fetch_canceled_orders", BTC)] == [*ids, again["id"]]
    since = orders[0]["timestamp"]
    assert [o["id"] for o in await ex("fetch_orders", BTC, since, 2)] == [buy["id"], sell["id"]]


async def test_order_history_with_only_a_limit_is_the_most_recent(ex: Ccxt) -> None:
    """allOrders without startTime answers the latest `limit` orders (as myTrades does), so
    `fetch_closed_orders(symbol, limit=1)` is the last closed order, not the first of the day.
    (Bug found by this suite: the oldest orders of the last 24 hours came back.)"""
    await ex("load_markets")
    resting = [(await ex("create_order", BTC, "limit", "buy", 0.001, 87000 + i))["id"] for i in range(3)]
    filled = [(await ex("create_order", BTC, "market", "buy", 0.001))["id"] for _ in range(3)]
    assert [o["id"] for o in await ex("fetch_orders", BTC, None, 2)] == filled[1:]
    assert [o["id"] for o in await ex("fetch_closed_orders", BTC, None, 1)] == filled[2:]
    assert [t["order"] for t in await ex("fetch_my_trades", BTC, None, 2)] == filled[1:]
    everything = await ex("fetch_orders", BTC)
    assert [o["id"] for o in everything] == resting + filled  # oldest first
    # with a startTime the window starts there, oldest first
    since = everything[1]["timestamp"]
    first = await ex("fetch_orders", BTC, since, 2)
    assert [o["id"] for o in first] == [
        o["id"] for o in everything if o["timestamp"] >= since][:2]


async def test_create_orders_batch(ex: Ccxt) -> None:
    await ex("load_markets")
    result = await ex("create_orders", [
        {"symbol": BTC, "type": "limit", "side": "buy", "amount": 0.001, "price": 87000,
         "params": {"clientOrderId": "batch:a/1(x)"}},
        {"symbol": BTC, "type": "limit", "side": "sell", "amount": 0.001, "price": 88000},
        {"symbol": BTC, "type": "limit", "side": "buy", "amount": 0.00001, "price": 87000},
        {"symbol": BTC, "type": "market", "side": "buy", "amount": 0.001},
    ])
    assert [o["status"] for o in result] == [None, None, "rejected", None]
    ok = [result[0], result[1], result[3]]
    assert all(o["id"].startswith("C02__") and "code" not in o["info"] for o in ok)
    assert result[2]["info"]["code"] == 30002  # the failed element alone carries a code
    assert result[0]["info"]["newClientOrderId"] == "batch:a/1(x)"
    by_client = await ex("fetch_order", None, BTC, {"clientOrderId": "batch:a/1(x)"})
    assert (by_client["id"], by_client["status"], by_client["price"]) == (result[0]["id"], "open", 87000.0)
    market_buy = await ex("fetch_order", result[3]["id"], BTC)
    assert (market_buy["status"], market_buy["average"]) == ("closed", 87903.98)
    # 87 locked for the buy, 0.001 BTC for the sell, 87.90398 + 0.04395199 paid
    assert await balances(ex) == {"BTC": ("1", "0.001"), "USDT": ("9825.05206801", "87")}


async def test_test_order_validates_and_changes_nothing(ex: Ccxt) -> None:
    await ex("load_markets")
    await ex("create_order", BTC, "limit", "buy", 0.001, 87000, {"test": True})
    await ex.raises(ccxt.InsufficientFunds, "create_order", BTC, "limit", "buy", 1, 87000, {"test": True})
    assert await ex("fetch_open_orders") == []
    assert await balances(ex) == {"BTC": ("1", "0"), "USDT": ("10000", "0")}


# --------------------------------------------------------------------------- maker fills


@pytest.fixture(params=["sync", "async"])
async def ex_polling(request: pytest.FixtureRequest, polling_sidecar: Sidecar) -> AsyncIterator[Ccxt]:
    async for c in _client(request.param, polling_sidecar):
        yield c


async def wait_status(ex: Ccxt, sidecar: Sidecar, order_id: str, info_status: str) -> dict:
    """Poll fetch_order (with a deadline) while the market watcher runs its cycles."""
    deadline = time.monotonic() + 10
    while True:
        o = await ex("fetch_order", order_id, BTC)
        if o["info"]["status"] == info_status or time.monotonic() > deadline:
            return o
        sidecar.watcher_cycles(1)


async def test_resting_orders_fill_as_maker_from_the_tape(
    ex_polling: Ccxt, polling_sidecar: Sidecar, market: Market
) -> None:
    ex, sidecar = ex_polling, polling_sidecar
    await ex("load_markets")
    buy = await ex("create_order", BTC, "limit", "buy", 0.01, 87500)
    sell = await ex("create_order", BTC, "limit", "sell", 0.01, 88000, {"clientOrderId": "tp-1"})
    sidecar.watcher_cycles(2)  # the watcher has read the tape as it was when the orders rested
    now = int(time.time() * 1000)
    market.print_trade("87400", "0.02", True, now)  # a seller sweeps through our bid
    market.print_trade("88100", "0.004", False, now)  # a buyer takes 0.004 through our ask

    o = await wait_status(ex, sidecar, buy["id"], "FILLED")
    assert (o["status"], o["filled"], o["average"], o["cost"]) == ("closed", 0.01, 87500.0, 875.0)
    o = await wait_status(ex, sidecar, sell["id"], "PARTIALLY_FILLED")
    assert (o["status"], o["filled"], o["remaining"], o["cost"]) == ("open", 0.004, 0.006, 352.0)
    # maker fee is 0: USDT 10000 - 875 + 352; BTC 1 - 0.01 offered + 0.01 bought, of the
    # 0.01 offered 0.004 sold and 0.006 still locked
    assert await balances(ex) == {"BTC": ("1", "0.006"), "USDT": ("9477", "0")}

    trades = await ex("fetch_my_trades", BTC)
    assert [(t["order"], t["side"], t["price"], t["amount"], t["takerOrMaker"]) for t in trades] == [
        (buy["id"], "buy", 87500.0, 0.01, "maker"), (sell["id"], "sell", 88000.0, 0.004, "maker")]
    assert [(t["fee"]["cost"], t["fee"]["currency"]) for t in trades] == [(0.0, "USDT")] * 2
    assert trades[1]["info"]["clientOrderId"] == "tp-1"
    assert [t["id"] for t in await ex("fetch_order_trades", sell["id"], BTC)] == [trades[1]["id"]]

    canceled = await ex("cancel_order", sell["id"], BTC)
    assert canceled["info"]["status"] == "PARTIALLY_CANCELED" and canceled["status"] == "canceled"
    assert canceled["filled"] == 0.004
    assert await balances(ex) == {"BTC": ("1.006", "0"), "USDT": ("9477", "0")}


# --------------------------------------------------------------------------- fees and errors


async def test_trading_fee(ex: Ccxt) -> None:
    await ex("load_markets")
    fee = await ex("fetch_trading_fee", BTC)
    assert (fee["symbol"], fee["maker"], fee["taker"]) == (BTC, 0.0, 0.0005)
    assert fee["info"] == {"makerCommission": 0, "takerCommission": 0.0005}


async def test_errors_ccxt_maps(ex: Ccxt, sidecar: Sidecar) -> None:
    await ex("load_markets")
    err = await ex.raises(ccxt.InsufficientFunds, "create_order", BTC, "limit", "buy", 1, 87500)
    assert '{"code":30004,"msg":"Insufficient position"}' in str(err)
    err = await ex.raises(ccxt.InvalidOrder, "create_order", BTC, "limit", "buy", 0.00001, 87500)
    assert '"code":30002' in str(err) and "1USDT" in str(err)
    err = await ex.raises(ccxt.InsufficientFunds, "create_order", BTC, "market", "sell", 2)
    # MEXC's "Order does not exist" (-2013) is not in ccxt's map: a plain ExchangeError
    err = await ex.raises(ccxt.ExchangeError, "fetch_order", "C02__1", BTC)
    assert type(err) is ccxt.ExchangeError and '"code":-2013' in str(err)
    err = await ex.raises(ccxt.BadRequest, "cancel_order", "C02__1", BTC)
    assert '"code":-2011' in str(err)
    assert await balances(ex) == {"BTC": ("1", "0"), "USDT": ("10000", "0")}


@pytest.mark.parametrize("flavour", ["sync", "async"])
async def test_wrong_secret_is_authentication_error(flavour: str, sidecar: Sidecar) -> None:
    async for ex in _client(flavour, sidecar, secret="not-the-secret"):
        # with keys, load_markets itself signs (capital/config/getall)
        err = await ex.raises(ccxt.AuthenticationError, "load_markets")
        assert '{"code":700002,"msg":"Signature for this request is not valid."}' in str(err)
        err = await ex.raises(ccxt.AuthenticationError, "fetch_balance")
        assert '"code":700002' in str(err)
