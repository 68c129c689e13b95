"""A bot written for MEXC itself: ccxt 4.5.90 with its defaults, no `urls`, no MEXC address
anywhere. It places a resting limit buy and a market buy that fills, cancels the resting
one, and prints what it saw as one JSON line (or the error and exit code 1).

    python ccxt_bot.py sync|async API_KEY SECRET

(`enableRateLimit: False` only makes it faster: ccxt would pace ~3 s of load_markets.)
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

SYMBOL = "BTC/USDT"


async def trade(ex: Any, is_async: bool) -> dict[str, Any]:
    async def call(method: str, *args: Any) -> Any:
        result = getattr(ex, method)(*args)
        return await result if is_async else result

    markets = await call("load_markets")
    resting = await call("create_order", SYMBOL, "limit", "buy", 0.001, 80000)
    taker = await call("create_order", SYMBOL, "market", "buy", 0.001)
    filled = await call("fetch_order", taker["id"], SYMBOL)
    await call("cancel_order", resting["id"], SYMBOL)
    canceled = await call("fetch_order", resting["id"], SYMBOL)
    balance = await call("fetch_balance")
    return {
        "spot_url": ex.urls["api"]["spot"]["public"],
        "btc_usdt": markets[SYMBOL]["id"],
        "filled": [filled["status"], filled["filled"], filled["average"]],
        "canceled": [canceled["status"], canceled["filled"]],
        "balances": {b["asset"]: [b["free"], b["locked"]] for b in balance["info"]["balances"]},
    }


def main() -> int:
    flavour, key, secret = sys.argv[1:4]
    config = {"apiKey": key, "secret": secret, "enableRateLimit": False}
    try:
        if flavour == "sync":
            import ccxt

            out = asyncio.run(trade(ccxt.mexc(config), False))
        else:
            import ccxt.async_support as ccxt_async

            async def run() -> dict[str, Any]:
                ex = ccxt_async.mexc(config)
                try:
                    return await trade(ex, True)
                finally:
                    await ex.close()

            out = asyncio.run(run())
    except Exception as exc:  # the test reads what the bot would have seen, causes included
        chain, cause = [], exc
        while cause is not None and len(chain) < 5:
            chain.append(f"{type(cause).__name__}: {cause}"[:400])
            cause = cause.__cause__ or cause.__context__
        print(json.dumps({"error": type(exc).__name__, "message": " <- ".join(chain)}))
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
