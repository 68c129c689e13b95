"""Request builders: what a bot sends, signed the way ccxt signs (tests/mexc_client.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from bench.loadgen import request_bytes
from bench.procs import KEY, ROOT, SECRET

sys.path.insert(0, str(ROOT / "tests"))

from mexc_client import ccxt_query

FIRST_CENTS = 8_000_000  # 80000.00 USDT: far below the recorded book (~87900), so orders rest
SPAN_CENTS = 3_000_000  # prices cycle down to 50000.00, still above the minimum notional


def resting_limit_orders(host: str, qty: str = "0.0001") -> Callable[[], bytes]:
    """POST /api/v3/order, a BUY LIMIT at a price no other order of the run has, well
    below the best bid so it rests; fresh timestamp on every call."""
    headers = {"X-MEXC-APIKEY": KEY, "Content-Type": "application/json"}
    n = 0

    def build() -> bytes:
        nonlocal n
        cents = FIRST_CENTS - n % SPAN_CENTS
        n += 1
        q = ccxt_query(
            {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": qty,
             "price": f"{cents // 100}.{cents % 100:02d}"},
            SECRET,
        )
        return request_bytes("POST", f"/api/v3/order?{q}", host, headers)

    return build


def market_orders(host: str, qty: str) -> Callable[[], bytes]:
    """POST /api/v3/order, a MARKET BUY of `qty` (walks the ask side)."""
    headers = {"X-MEXC-APIKEY": KEY, "Content-Type": "application/json"}

    def build() -> bytes:
        q = ccxt_query({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": qty}, SECRET)
        return request_bytes("POST", f"/api/v3/order?{q}", host, headers)

    return build


def public_get(host: str, target: str) -> Callable[[], bytes]:
    data = request_bytes("GET", target, host)
    return lambda: data
