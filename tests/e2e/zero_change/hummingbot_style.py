"""What hummingbot's MEXC spot connector sends, with its hard-coded URL (hummingbot cannot be
installed here; this follows its source, hummingbot/hummingbot connector/exchange/mexc,
as the project's shared reference/clients.md section 4.4 describes it):

- REST_URL `https://api.mexc.{domain}/api/` with domain `com`, then `v3/<path>`;
- `aiohttp.ClientSession()` with aiohttp's default TLS context (hummingbot's
  ConnectionsFactory), so the process's `SSL_CERT_FILE` decides which CAs it trusts;
- signed: `timestamp` appended to the parameters, `signature` = HMAC-SHA256 hex of their
  urlencoding, appended last, no `recvWindow`; GET/DELETE parameters in the query, POST
  parameters in a form body under `Content-Type: application/json`; `X-MEXC-APIKEY`.

    python hummingbot_style.py API_KEY SECRET   -> one JSON line of what it got
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sys
import time
from typing import Any
from urllib.parse import urlencode

import aiohttp

REST_URL = "https://api.mexc.{}/api/"
DOMAIN = "com"


def url(path: str) -> str:
    return REST_URL.format(DOMAIN) + "v3/" + path


def signed(params: dict[str, Any], secret: str) -> dict[str, Any]:
    params = dict(params, timestamp=int(time.time() * 1000))
    params["signature"] = hmac.new(secret.encode(), urlencode(params).encode(), hashlib.sha256).hexdigest()
    return params


async def main(key: str, secret: str) -> dict[str, Any]:
    headers = {"X-MEXC-APIKEY": key, "Content-Type": "application/json"}
    out: dict[str, Any] = {}
    async with aiohttp.ClientSession() as session:
        async with session.get(url("ping")) as r:
            out["ping"] = [r.status, await r.json()]
        async with session.get(url("exchangeInfo"), params={"symbol": "BTCUSDT"}) as r:
            out["symbols"] = [s["symbol"] for s in (await r.json())["symbols"]]
        async with session.get(url("depth"), params={"symbol": "BTCUSDT", "limit": 5}) as r:
            out["best_ask"] = (await r.json())["asks"][0]
        order = {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.001", "type": "LIMIT",
                 "newClientOrderId": "HBOT-zero-change-1", "price": "80000", "timeInForce": "GTC"}
        async with session.post(url("order"), data=urlencode(signed(order, secret)), headers=headers) as r:
            out["order"] = [r.status, await r.json()]
        query = {"symbol": "BTCUSDT", "origClientOrderId": "HBOT-zero-change-1"}
        async with session.get(url("order"), params=signed(query, secret), headers=headers) as r:
            out["status"] = (await r.json())["status"]
        async with session.delete(url("order"), params=signed(query, secret), headers=headers) as r:
            out["cancel"] = [r.status, (await r.json())["status"]]
        async with session.get(url("account"), params=signed({}, secret), headers=headers) as r:
            out["balances"] = {b["asset"]: [b["free"], b["locked"]] for b in (await r.json())["balances"]}
        async with session.post(url("userDataStream"), data=urlencode(signed({}, secret)),
                                headers=headers) as r:
            out["listen_key"] = [r.status, len((await r.json()).get("listenKey", ""))]
    return out


if __name__ == "__main__":
    try:
        print(json.dumps(asyncio.run(main(*sys.argv[1:3]))))
    except Exception as exc:
        chain, cause = [], exc
        while cause is not None and len(chain) < 5:
            chain.append(f"{type(cause).__name__}: {cause}"[:400])
            cause = cause.__cause__ or cause.__context__
        print(json.dumps({"error": type(exc).__name__, "message": " <- ".join(chain)}))
        sys.exit(1)
