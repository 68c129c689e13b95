"""The upstream in replay: every answer comes from the tape at the clock's time.

Nothing is cached by wall-clock age (a stepped tape can move between two requests a
millisecond apart); parsed values are still kept per distinct recorded answer. Books for
the engine are the tape's own snapshots, stamped with their tape time, so an order's
maker boundary (`Book.market_time_at`) is exact. No network, no awaits that suspend.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from ..config import UpstreamSettings
from ..engine.model import Book
from ..parsers import parse_ticker_price
from ..upstream import MexcClient, RawResponse, UpstreamError
from .clock import TapeClock
from .tape import Tape


class _NoNetwork:
    async def request(
        self,
        method: str,
        path: str,
        raw_query: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> RawResponse:
        raise UpstreamError("replay", f"replay sends nothing upstream ({method} {path})")

    async def close(self) -> None:
        return None


class TapeClient(MexcClient):
    def __init__(
        self,
        tape: Tape,
        clock: TapeClock,
        settings: UpstreamSettings,
        depth_limit: int = 100,
        trades_limit: int = 100,
        metrics: object = None,
    ) -> None:
        super().__init__(_NoNetwork(), settings, depth_limit, trades_limit, metrics, clock)
        self.tape = tape
        self.tape_clock = clock

    async def get(self, path: str, raw_query: str = "", ttl_ms: int = 0) -> RawResponse:
        return self.answer(path, raw_query)

    def answer(self, path: str, raw_query: str = "") -> RawResponse:
        self.calls += 1
        resp = self.tape.answer("GET", path, raw_query, self.tape_clock.now_ms())
        if resp.status < 500:
            self.last_ok_ms = self.tape_clock.now_ms()
            self.last_error = None
        return resp

    async def forward(
        self,
        method: str,
        path: str,
        raw_query: str,
        body: bytes | None,
        headers: Mapping[str, str],
    ) -> RawResponse:
        raise UpstreamError("replay", "live passthrough is not available in replay")

    def _book(self, symbol: str) -> Book:
        book = self.tape.book_at(symbol, self.tape_clock.now_ms())
        if book is None:
            raise UpstreamError(
                "replay", f"the cassette {self.tape.name} holds no book for {symbol}"
            )
        return book

    async def book(self, symbol: str, max_age_ms: int | None = None) -> Book:
        return self._book(symbol)

    def price(self, symbol: str) -> Decimal | None:
        """The last trade price at or before now on the tape, else the recorded
        ticker/price answer for the symbol, else None."""
        t = self.tape_clock.now_ms()
        trade = self.tape.last_trade(symbol, t)
        if trade is not None:
            return trade.price
        if self.tape.rest is None:
            return None
        resp = self.tape.rest.answer(
            "/api/v3/ticker/price", {"symbol": symbol}, (("symbol", symbol),), t
        )
        if resp is None or resp.status != 200:
            return None
        try:
            return parse_ticker_price(self._decode("/api/v3/ticker/price", resp)).get(symbol)
        except (UpstreamError, ValueError):
            return None

    async def last_price(self, symbol: str) -> Decimal | None:
        return self.price(symbol)

    def cached_market(self, symbol: str) -> tuple[Book, Decimal | None] | None:
        """No I/O in replay: always answered here (None only when there is no book, and
        `book()` then raises the error that says so)."""
        book = self.tape.book_at(symbol, self.tape_clock.now_ms())
        if book is None:
            return None
        return book, self.price(symbol)

    async def all_prices(self, ttl_ms: int = 5000) -> dict[str, Decimal]:
        """The recorded all-symbols ticker/price at now, completed with the last trade
        price of every symbol the tape has trades for."""
        t = self.tape_clock.now_ms()
        out: dict[str, Decimal] = {}
        if self.tape.rest is not None:
            resp = self.tape.rest.answer("/api/v3/ticker/price", {}, (), t)
            if resp is not None and resp.status == 200:
                try:
                    out.update(parse_ticker_price(self._decode("/api/v3/ticker/price", resp)))
                except (UpstreamError, ValueError):
                    pass
        for symbol in self.tape.trades:
            trade = self.tape.last_trade(symbol, t)
            if trade is not None:
                out[symbol] = trade.price
        return out
