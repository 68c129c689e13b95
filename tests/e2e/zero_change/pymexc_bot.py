"""A streaming bot written for MEXC itself with pymexc 1.3.0 and nothing repointed: its
`spot.WebSocket` makes its listenKey with its REST client on https://api.mexc.com
(`pymexc.base.SPOT`) and connects to the address it hard-codes,
`wss://wbs-api.mexc.com/ws?listenKey=...`; its `spot.HTTP` places a market buy. Prints one
JSON line: the pushes it got (as `MessageToDict` sees them), what REST reports afterwards
(or the error and exit code 1).

    python pymexc_bot.py API_KEY SECRET METRICS_URL

METRICS_URL is the sidecar's /metrics on its plain listener: pymexc does not wait for the
answer to its SUBSCRIPTION, so the bot waits until the sidecar holds its three private
subscriptions before it places the order (what the test harness adds; pymexc is unchanged).
"""

from __future__ import annotations

import io
import json
import logging
import queue
import sys
import time
import urllib.request
from typing import Any

WAIT_S = 20  # an upper bound for something that must happen, never a pacing delay


def until_subscribed(metrics_url: str, n: int) -> None:
    line = 'mexc_paper_ws_subscriptions{kind="private"} '
    deadline = time.monotonic() + WAIT_S
    while True:
        with urllib.request.urlopen(metrics_url, timeout=10) as r:
            text = r.read().decode()
        value = next(float(ln[len(line):]) for ln in text.splitlines() if ln.startswith(line))
        if value >= n:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the sidecar holds {value} private subscriptions, not {n}")
        time.sleep(0.02)


def as_dict(message: Any) -> dict[str, Any]:
    from google.protobuf.json_format import MessageToDict

    return MessageToDict(message)


def run(key: str, secret: str, metrics_url: str) -> dict[str, Any]:
    from pymexc import spot

    ws = spot.WebSocket(api_key=key, api_secret=secret)
    rest = spot.HTTP(api_key=key, api_secret=secret)
    got: queue.Queue[tuple[str, Any]] = queue.Queue()
    try:
        listen_key = ws.listenKey
        endpoint = ws.endpoint.replace(listen_key, "KEY")
        ws.account_orders(lambda m: got.put(("orders", as_dict(m))))
        ws.account_deals(lambda m: got.put(("deals", as_dict(m))))
        ws.account_update(lambda m: got.put(("account", as_dict(m))))
        until_subscribed(metrics_url, 3)
        ack = rest.order("BTCUSDT", "BUY", "MARKET", quantity="0.001", new_client_order_id="zc-pm-1")
        pushed = [got.get(timeout=WAIT_S) for _ in range(5)]  # NEW, the deal, FILLED, USDT, BTC
        return {
            "rest_url": rest.base_url,
            "endpoint": endpoint,
            "listen_key": len(listen_key),
            "ack": ack,
            "pushed": pushed,
            "order": rest.query_order("BTCUSDT", order_id=ack["orderId"]),
            "trades": rest.account_trade_list("BTCUSDT"),
            "balances": {b["asset"]: [b["free"], b["locked"]]
                         for b in rest.account_information()["balances"]},
        }
    finally:
        ws.exit()
        rest.session.close()


def main() -> int:
    # pymexc reports a failed WebSocket connection only as "too many connection attempts";
    # why each attempt failed is in websocket-client's and pymexc's error log
    log = io.StringIO()
    logging.basicConfig(level=logging.ERROR, stream=log, format="%(name)s: %(message)s")
    try:
        out = run(*sys.argv[1:4])
    except Exception as exc:  # the test reads what the bot would have seen, causes included
        chain, cause = [], exc
        while cause is not None and len(chain) < 5:
            chain.append(f"{type(cause).__name__}: {cause}"[:400])
            cause = cause.__cause__ or cause.__context__
        print(json.dumps({"error": type(exc).__name__, "message": " <- ".join(chain),
                          "log": log.getvalue()[-4000:]}))
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
