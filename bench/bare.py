"""The baseline: a bare aiohttp handler that answers every request with a fixed order ack.

Same aiohttp, same event loop (uvloop when installed), no access log: the most a Python
aiohttp server on this machine can do per request. `python -m bench.bare [--port P]`
prints `PORT <n>` when ready.

`--durable DB`: the same handler, except that each request first commits one audit row
through the sidecar's own `proxy.store.Store` (group commit, `synchronous = FULL`) and
answers only once it is on disk. No authentication, no engine: the most any handler that
acknowledges durable work can do here, i.e. the ceiling of the sidecar's order path.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable

from aiohttp import web

from bench.util import run, serve_forever
from proxy.engine.model import Event
from proxy.store import Changes, Store

ACK = (
    b'{"symbol":"BTCUSDT","orderId":"C02__700000000000000001001","orderListId":-1,'
    b'"price":"80000","origQty":"0.0001","type":"LIMIT","side":"BUY","transactTime":1767205900000}'
)


async def order(request: web.Request) -> web.Response:
    return web.Response(body=ACK, content_type="application/json")


def durable_order(store: Store) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        await store.commit(Changes(events=[(Event("bench.ack", None, 0, {}), "paper")]))
        return web.Response(body=ACK, content_type="application/json")

    return handler


async def serve(port: int, durable: str | None) -> None:
    app = web.Application()
    if durable:
        store = Store(durable, "FULL")
        await store.open()
        app.router.add_route("*", "/{tail:.*}", durable_order(store))
    else:
        app.router.add_route("*", "/{tail:.*}", order)
    await serve_forever(app, port)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--durable", metavar="DB", help="commit one row per request to this SQLite file")
    args = p.parse_args()
    run(serve(args.port, args.durable))


if __name__ == "__main__":
    main()
