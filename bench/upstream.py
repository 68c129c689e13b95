"""The benchmarks' upstream: tests/fake_upstream.py's FakeMexc (the real recorded market) in
its own process on 127.0.0.1, with answers encoded once, so the upstream is as cheap as a
local server can be and the sidecar's cost is what the comparison shows.

`python -m bench.upstream [--port P] [--symbols N] [--levels N]` prints `PORT <n>` when ready.

- exchangeInfo lists `--symbols` symbols (the recorded ones, plus copies of BTCUSDT's
  rules under made-up names), so its body is as large as MEXC's real one;
- BTCUSDT's book is the recorded best bid/ask extended to `--levels` levels per side, and
  its `lastUpdateId` moves on every depth request (a live market does), so a book the
  sidecar refetches is a new book version and its liquidity-consumption ledger starts over;
- every other recorded answer is served from bytes built once, and requests are not
  recorded (the test fake keeps them all for its assertions).
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal
from pathlib import Path

import orjson
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fake_upstream import FakeMexc  # noqa: E402

from bench.util import run, serve_forever  # noqa: E402

LEVEL_QTY = "0.001"  # size of every synthetic level (BTC)


class BenchMexc(FakeMexc):
    def __init__(self, symbols: int, levels: int) -> None:
        super().__init__()
        i = 0
        while len(self.exchange_info["symbols"]) < symbols:
            self.add_symbol(f"BENCH{i:04d}")
            i += 1
        book = self.books["BTCUSDT"]
        best_bid = Decimal(book["bids"][0][0])
        best_ask = Decimal(book["asks"][0][0])
        step = Decimal("0.5")
        bids = [(format(best_bid - step * k, "f"), LEVEL_QTY) for k in range(levels)]
        asks = [(format(best_ask + step * k, "f"), LEVEL_QTY) for k in range(levels)]
        self.set_book("BTCUSDT", bids, asks)
        self._cache: dict[tuple[str, str], web.Response] = {}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path, raw = request.path, request.rel_url.raw_query_string
        if path == "/api/v3/depth":
            self.version += 1
            book = self.books.get("BTCUSDT")
            if book is not None and "symbol=BTCUSDT" in raw:
                book["lastUpdateId"] = self.version
                return web.Response(body=orjson.dumps(book), content_type="application/json")
        key = (path, raw)
        hit = self._cache.get(key)
        if hit is None:
            resp = await super().handle(request)
            self.seen.clear()
            assert isinstance(resp, web.Response) and resp.body is not None
            hit = self._cache[key] = resp
        return web.Response(
            body=hit.body, status=hit.status, content_type=hit.content_type or "application/json"
        )


async def serve(port: int, symbols: int, levels: int) -> None:
    fake = BenchMexc(symbols, levels)
    await serve_forever(fake.app(), port)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--symbols", type=int, default=2000)
    p.add_argument("--levels", type=int, default=20)
    args = p.parse_args()
    run(serve(args.port, args.symbols, args.levels))


if __name__ == "__main__":
    main()
