"""Test helpers for the dashboard: a fake MEXC whose all-symbols price list is scripted."""

from __future__ import annotations

from aiohttp import web
from fake_upstream import FakeMexc


class PricedFake(FakeMexc):
    """The fake MEXC, whose all-symbols /api/v3/ticker/price (what the dashboard values
    accounts with) lists its scripted prices; the trimmed recording has no BTCUSDT."""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/api/v3/ticker/price" and not request.rel_url.raw_query_string:
            return web.json_response([{"symbol": s, "price": p} for s, p in self.prices.items()])
        return await super().handle(request)
