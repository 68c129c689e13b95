"""A local fake MEXC built from the real recordings (cassettes/mexc_public.yaml).

It serves exchangeInfo, depth, trades and tickers from state the test can change (move the
book, print trades), answers every other recorded public path with its recording, records
every request it sees (so tests can prove no signature or API key ever reached it), and
can inject faults per path: a status and body, a delay, a dropped connection.

Use in async tests with `aiohttp_server(fake.app())`, or from sync code and other
processes with `FakeMexcThread` (its own event loop in a thread, on 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from aiohttp import web

from proxy.upstream import interaction_parts, load_cassette

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = ROOT / "cassettes" / "mexc_public.yaml"


def _decoded(text: str) -> str:
    """Percent-decoded until it stops changing (a double-encoded name too)."""
    for _ in range(5):
        once = unquote_plus(text)
        if once == text:
            break
        text = once
    return text


def names_signature(pair: str) -> bool:
    """Whether the name of a `name=value` pair could be read as `signature` by some
    parser: percent-decoded (repeatedly), any case, Unicode compatibility forms (a
    full-width or long s), surrounding blanks and control characters ignored."""
    name = pair.partition("=")[0]
    if not name:
        return False
    norm = unicodedata.normalize("NFKC", _decoded(name)).casefold()
    return norm.strip("".join(map(chr, range(33))) + "\x7f") == "signature"


def _public_params(query: str) -> list[tuple[str, str]]:
    return sorted(
        (k, v) for k, v in parse_qsl(query) if k not in ("timestamp", "recvWindow", "signature")
    )


@dataclass
class Fault:
    status: int = 500
    body: str = ""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    drop: bool = False  # close the connection without an answer
    times: int | None = None  # None: until cleared


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    raw_path: str = ""  # as sent, still percent-encoded


class FakeMexc:
    """`clock`: the market's clock (a test's FixedClock.now_ms): depth answers carry its
    time as MEXC's `timestamp`, as the live exchange stamps them. Without one, a book's
    timestamp is the time of the last market event (the recording's, or the newest
    printed trade's)."""

    def __init__(self, clock: Callable[[], int] | None = None) -> None:
        self.clock = clock
        self.recorded: dict[str, list[tuple[str, Any]]] = {}
        for it in load_cassette(PUBLIC):
            _method, path, query, resp = interaction_parts(it)
            self.recorded.setdefault(path, []).append((query, json.loads(resp.body)))
        info = self._rec("/api/v3/exchangeInfo", "")
        self.exchange_info: dict[str, Any] = copy.deepcopy(info)
        depth = self._rec("/api/v3/depth", "limit=10&symbol=BTCUSDT")
        self.books: dict[str, dict[str, Any]] = {"BTCUSDT": copy.deepcopy(depth)}
        trades = self._rec("/api/v3/trades", "limit=10&symbol=BTCUSDT")
        self.trades: dict[str, list[dict[str, Any]]] = {"BTCUSDT": copy.deepcopy(trades)}
        self.prices: dict[str, str] = {"BTCUSDT": "87900", "MXUSDT": "2.5"}
        self.seen: list[Seen] = []
        self.faults: dict[str, Fault] = {}
        self.version = int(depth["lastUpdateId"])
        self.market_ms = int(depth["timestamp"])  # the last market event

    def _rec(self, path: str, query: str) -> Any:
        for q, body in self.recorded[path]:
            if q == query:
                return body
        # like MEXC, ignore parameter order and the auth parameters pymexc adds to public calls
        wanted = _public_params(query)
        for q, body in self.recorded[path]:
            if _public_params(q) == wanted:
                return body
        return self.recorded[path][0][1]

    # ---- scripting the market ----
    def set_book(self, symbol: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> None:
        self.version += 1
        self.books[symbol] = {
            "asks": [[p, q] for p, q in asks],
            "bids": [[p, q] for p, q in bids],
            "lastUpdateId": self.version,
            "timestamp": self.market_ms,
        }

    def print_trade(self, symbol: str, price: str, qty: str, buyer_maker: bool, time_ms: int) -> None:
        """Add a trade (MEXC lists newest first)."""
        self.market_ms = max(self.market_ms, time_ms)
        page = self.trades.setdefault(symbol, [])
        page.insert(0, {
            "id": None, "isBestMatch": True, "isBuyerMaker": buyer_maker, "price": price,
            "qty": qty, "quoteQty": format(Decimal(price) * Decimal(qty), "f"), "time": time_ms,
            "tradeType": "ASK" if buyer_maker else "BID",
        })
        del page[100:]

    def set_price(self, symbol: str, price: str) -> None:
        self.prices[symbol] = price

    def add_symbol(self, base: str, quote: str = "USDT", **fields: Any) -> dict[str, Any]:
        template = copy.deepcopy(self.exchange_info["symbols"][0])
        template.update(symbol=base + quote, baseAsset=base, quoteAsset=quote, fullName=base)
        template.update(fields)
        self.exchange_info["symbols"].append(template)
        return template

    def symbol(self, symbol: str) -> dict[str, Any]:
        for s in self.exchange_info["symbols"]:
            if s["symbol"] == symbol:
                return s
        raise KeyError(symbol)

    # ---- what reached us ----
    def signed_requests(self) -> list[Seen]:
        """Requests that carried an API key header or a signature in any spelling some
        parser could read as one (see `names_signature`), in the query or the path."""
        return [
            s for s in self.seen
            if any(k.lower() == "x-mexc-apikey" for k in s.headers)
            or any(names_signature(pair) for pair in re.split("[&;]", s.query))
            or "signature" in _decoded(s.raw_path or s.path).casefold()
        ]

    # ---- the app ----
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append(
            Seen(request.method, request.path, request.rel_url.raw_query_string,
                 dict(request.headers), body, request.rel_url.raw_path)
        )
        fault = self.faults.get(request.path) or self.faults.get("*")
        if fault is not None:
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults = {k: v for k, v in self.faults.items() if v is not fault}
            if fault.delay_s:
                await asyncio.sleep(fault.delay_s)
            if fault.drop:
                assert request.transport is not None
                request.transport.close()
                raise asyncio.CancelledError
            if fault.status:
                return web.Response(
                    text=fault.body, status=fault.status, headers=fault.headers,
                    content_type=fault.content_type,
                )
        q = dict(parse_qsl(request.rel_url.raw_query_string))
        path = request.path
        if path == "/api/v3/exchangeInfo":
            data = copy.deepcopy(self.exchange_info)
            wanted = q.get("symbol")
            if wanted:
                data["symbols"] = [s for s in data["symbols"] if s["symbol"] == wanted]
                if not data["symbols"]:
                    return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
            return web.json_response(data)
        if path == "/api/v3/depth":
            book = self.books.get(q.get("symbol", ""))
            if book is None:
                return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
            limit = int(q.get("limit", 100))
            if self.clock is not None:  # stamped with the time of the answer, as MEXC does
                book["timestamp"] = self.clock()
            return web.json_response(dict(book, bids=book["bids"][:limit], asks=book["asks"][:limit]))
        if path == "/api/v3/trades":
            sym = q.get("symbol", "")
            if sym not in self.books and sym not in self.trades:
                return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
            return web.json_response(self.trades.get(sym, [])[: int(q.get("limit", 500))])
        if path == "/api/v3/ticker/price" and "symbol" in q:
            sym = q["symbol"]
            if sym not in self.prices:
                return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
            return web.json_response({"symbol": sym, "price": self.prices[sym]})
        if path in self.recorded:
            raw = request.rel_url.raw_query_string
            return web.json_response(self._rec(path, raw))
        return web.json_response({"code": 404, "msg": "Not Found"}, status=404)


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class FakeMexcThread:
    """Runs a FakeMexc on 127.0.0.1 in a thread (for sync clients and subprocesses).
    Those sidecars run on the system clock, so the market's clock is the wall clock too
    unless the fake was given one."""

    def __init__(self, fake: FakeMexc | None = None) -> None:
        self.fake = fake or FakeMexc(wall_clock_ms)
        if self.fake.clock is None:
            self.fake.clock = wall_clock_ms
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self._ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.fake.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def call(self, fn: Any, *args: Any) -> Any:
        """Run fn(*args) on the fake's loop (thread-safe market scripting)."""
        done = threading.Event()
        out: list[Any] = []

        def run() -> None:
            out.append(fn(*args))
            done.set()

        self.loop.call_soon_threadsafe(run)
        done.wait(5)
        return out[0] if out else None

    def __enter__(self) -> FakeMexcThread:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()
