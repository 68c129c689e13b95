"""In-process benchmarks: the pure engine, a 20-level walk from a cached book, and
signature verification plus parameter parsing. No HTTP, no I/O, no event loop in the
timed code; each figure is the median of repeated timed runs."""

from __future__ import annotations

import random
import sys
import time
from decimal import Decimal
from typing import Any

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from bench.procs import KEY, ROOT, SECRET
from proxy import api, keys, signing
from proxy.clock import SystemClock
from proxy.config import Settings
from proxy.engine import matching
from proxy.engine.model import Balance, Book, OrderType, Side, Trade
from proxy.engine.rules import EngineConfig, NewOrder
from proxy.engine.state import AccountState, EngineState, apply
from proxy.parsers import parse_depth, parse_exchange_info

sys.path.insert(0, str(ROOT / "tests"))

from fake_upstream import FakeMexc
from mexc_client import ccxt_query

NOW = 1_767_205_900_000
SYMBOL = "BTCUSDT"
RICH = {"USDT": Decimal("1000000000000"), "BTC": Decimal("1000000")}


def _rules() -> Any:
    return parse_exchange_info(FakeMexc().exchange_info)[SYMBOL]


def _state() -> EngineState:
    state = EngineState()
    state.accounts[1] = AccountState(1, KEY, {a: Balance(a, v) for a, v in RICH.items()})
    return state


def _book(levels: int, version: str = "1") -> Book:
    """The recorded best bid/ask, `levels` levels of 0.001 BTC per side, 0.5 apart."""
    bid, ask, step = Decimal("87900.00"), Decimal("87903.98"), Decimal("0.5")
    data = {
        "bids": [[format(bid - step * k, "f"), "0.001"] for k in range(levels)],
        "asks": [[format(ask + step * k, "f"), "0.001"] for k in range(levels)],
        "lastUpdateId": version,
    }
    return parse_depth(SYMBOL, data, NOW)


# --------------------------------------------------------------------------- engine


def engine_setup(resting: int = 1000, seed: int = 7) -> tuple[EngineState, list[Trade], EngineConfig]:
    """`resting` orders on one symbol (half buys just under the best bid, half sells
    just over the best ask, one price each, 40 BTC each (under the 4,000,000 USDT
    maximum), so that nearly all stay resting) and a scripted tape whose prices range over all of them, so
    most trades reach an order: through its price (a fill), or at it (queue ahead
    consumed first, then a fill)."""
    rules = _rules()
    cfg = EngineConfig(max_open_orders=1_000_000)
    state = _state()
    book = _book(20)
    for i in range(resting):
        side = Side.BUY if i % 2 == 0 else Side.SELL
        k = i // 2
        price = Decimal("87900.00") - Decimal("0.01") * k if side is Side.BUY else (
            Decimal("87903.98") + Decimal("0.01") * k
        )
        cmd = NewOrder(SYMBOL, side, OrderType.LIMIT, Decimal("40"), None, price, None)
        res = matching.submit(state, 1, cmd, rules, book, None, None, cfg, NOW)
        assert res.rejection is None and res.order is not None and res.order.is_open
        apply(state, res.txn)
    rnd = random.Random(seed)
    lo = Decimal("87900.00") - Decimal("0.01") * (resting // 2)
    span = int((Decimal("87903.98") + Decimal("0.01") * (resting // 2) - lo) * 100)
    tape = [
        Trade(
            lo + Decimal(rnd.randrange(span)) / 100,
            Decimal(rnd.randrange(1, 200)) / 100000,  # 0.00001 .. 0.00199 BTC
            NOW + i,
            rnd.random() < 0.5,
        )
        for i in range(100_000)
    ]
    return state, tape, cfg


def engine_trades_per_s(trades: int, batch: int = 100) -> tuple[float, int]:
    """proxy.engine.matching.on_market over a scripted tape, `batch` trades per call (as
    the watcher feeds a page), each resulting Txn applied. Returns (trades/s, fills)."""
    state, tape, cfg = engine_setup()
    tape = tape[:trades]
    fills = 0
    t0 = time.perf_counter()
    for i in range(0, len(tape), batch):
        txn = matching.on_market(state, SYMBOL, None, tape[i : i + batch], cfg, {}, NOW + i)
        fills += len(txn.fills)
        apply(state, txn)
    dt = time.perf_counter() - t0
    assert sum(len(ix) for ix in state.open_by_symbol.values()) >= 990
    return len(tape) / dt, fills


def walk_from_cache_us(orders: int) -> float:
    """A MARKET BUY that walks all 20 ask levels of a cached book: matching.submit only
    (the Txn is not applied, so every order sees the whole book again)."""
    rules = _rules()
    cfg = EngineConfig()
    state = _state()
    book = _book(20)
    cmd = NewOrder(SYMBOL, Side.BUY, OrderType.MARKET, Decimal("0.02"), None, None, None)
    res = matching.submit(state, 1, cmd, rules, book, Decimal("87900"), None, cfg, NOW)
    assert res.order is not None and len(res.txn.fills) == 20, res
    t0 = time.perf_counter()
    for _ in range(orders):
        matching.submit(state, 1, cmd, rules, book, Decimal("87900"), None, cfg, NOW)
    return (time.perf_counter() - t0) / orders * 1e6


# --------------------------------------------------------------------------- auth


class _Service:
    def __init__(self) -> None:
        from proxy.config import AccountSettings
        from proxy.service import KeyInfo

        self.keys = {KEY: KeyInfo(1, SECRET.encode(), AccountSettings(KEY, SECRET))}


def _auth_app() -> web.Application:
    app = web.Application()
    app[keys.SERVICE] = _Service()  # type: ignore[assignment]
    app[keys.CLOCK] = app[keys.WALL_CLOCK] = SystemClock()
    app[keys.SETTINGS] = Settings()
    return app


def _drive(coro: Any) -> Any:
    """Run a coroutine that never suspends (no body to read) without an event loop."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError("authenticate suspended")


def auth_us(requests: int, chunk: int = 500) -> tuple[float, float]:
    """(authenticate + parse_new_order, signing.verify alone) in microseconds per request,
    for ccxt-style signed order requests (everything in the query, fresh timestamps).
    Requests are built in chunks just before they are timed, so none goes stale."""
    app = _auth_app()
    secret = SECRET.encode()
    full = verify = 0.0
    done = 0
    while done < requests:
        reqs = []
        for i in range(done, min(requests, done + chunk)):
            q = ccxt_query({"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "quantity": "0.0001",
                            "price": f"{80000 - (i % 100000) * 0.01:.2f}"}, SECRET)
            reqs.append(make_mocked_request(
                "POST", f"/api/v3/order?{q}", headers={"X-MEXC-APIKEY": KEY}, app=app))
        t0 = time.perf_counter()
        for r in reqs:
            _info, params = _drive(api.authenticate(r))
            api.parse_new_order(params)
        full += time.perf_counter() - t0
        split = [signing.split_signature(r.rel_url.raw_query_string) for r in reqs]
        t0 = time.perf_counter()
        for rest, sig in split:
            assert signing.verify(secret, rest, "", sig or "")
        verify += time.perf_counter() - t0
        done += len(reqs)
    return full / requests * 1e6, verify / requests * 1e6
