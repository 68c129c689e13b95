"""The baseline: a bare aiohttp handler that answers every request with a fixed order ack.

Same aiohttp, same event loop (uvloop when installed), no access log: the most a Python
aiohttp server on this machine can do per request. `python -m bench.bare [--port P]`
prints `PORT <n>` when ready.
"""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web

from bench.util import run

ACK = (
    b'{"symbol":"BTCUSDT","orderId":"C02__700000000000000001001","orderListId":-1,'
    b'"price":"80000","origQty":"0.0001","type":"LIMIT","side":"BUY","transactTime":1767205900000}'
)


async def order(request: web.Request) -> web.Response:
    return web.Response(body=ACK, content_type="application/json")


async def serve(port: int) -> None:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", order)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    sockets = site._server.sockets  # type: ignore[union-attr]
    print(f"PORT {sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    run(serve(p.parse_args().port))


if __name__ == "__main__":
    main()
