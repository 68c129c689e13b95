"""Scripted cassettes: a market written by hand, for testing a strategy's reaction to a
precise sequence (a gap down, a thin book, a queue that never clears).

    start_ms: 1767225600000          # tape time of `at: 0` (epoch ms; this default)
    exchange_info: demo.yaml         # optional: exchangeInfo from this recorded cassette
                                     # (or .json file), relative to this file; default the
                                     # real recording packaged with mexc-paper (BTCUSDT,
                                     # METALUSDT, RARIUSDT, PYTHUSDT, AOUSDT, AMPEDUSDT)
    market:
      BTCUSDT:                       # one list of events per symbol
        - at: 0                      # ms after start_ms, never going back
          book:                      # the whole book from now on, best level first
            bids: [["87000", "0.5"], ["86990", "1.2"]]
            asks: [["87010", "0.4"]]
        - at: 1500
          trade: {price: "87010", qty: "0.05", taker: BUY}
        - at: 3000
          trades:                    # several prints in one millisecond, in order
            - {price: "86990", qty: "0.3", taker: SELL}
          book: {bids: [], asks: [["86995", "1"]]}

Prices and quantities are quoted decimal strings (as in config.yaml: YAML reads 0.1 as a
float). `taker` is the aggressor: BUY lifted an ask (MEXC's isBuyerMaker false), SELL hit
a bid. A malformed script stops start-up naming the line and the field.

The REST answers are made from the script at the tape's time, in MEXC's shapes: depth,
trades, historicalTrades, aggTrades, klines, avgPrice, ticker/price, ticker/bookTicker,
ticker/24hr, exchangeInfo (the script's symbols) and defaultSymbols. Anything else is
"not recorded". Book versions (`lastUpdateId`) count the symbol's books from 1.

The packaged exchangeInfo (proxy/tape/exchange_info.json) is the real answer recorded
from MEXC around 2025-12-31 (gocryptotrader's http_spot_only.json, see
scripts/build_cassettes.py).
"""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from .. import jsonutil
from ..engine.model import Book, Trade
from ..errors import Err
from ..upstream import RawResponse
from .frames import tape_frames
from .tape import (
    KNOWN_PATHS,
    LIMITED,
    Series,
    Tape,
    TapeError,
    asked_symbols,
    build_steps,
    error,
    json_response,
    load_tape,
)

DEFAULT_START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
PACKAGED_EXCHANGE_INFO = Path(__file__).with_name("exchange_info.json")

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_TOP = ("start_ms", "exchange_info", "market")
_EVENT = ("at", "book", "trade", "trades")
_BOOK = ("bids", "asks")
_TRADE = ("price", "qty", "taker")


class _Checker:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, node: yaml.Node, field: str, msg: str) -> TapeError:
        return TapeError(f"{self.path} line {node.start_mark.line + 1}: {field}: {msg}")

    def mapping(self, node: yaml.Node, field: str, allowed: tuple[str, ...]) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, field, "must be a mapping")
        out: dict[str, yaml.Node] = {}
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else None
            if key not in allowed:
                raise self.fail(k, f"{field}.{key}" if field else str(key),
                                f"unknown key (expected one of: {', '.join(allowed)})")
            if key in out:
                raise self.fail(k, f"{field}.{key}" if field else key, "given twice")
            out[key] = v
        return out

    def seq(self, node: yaml.Node, field: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, field, "must be a list")
        return list(node.value)

    def integer(self, node: yaml.Node, field: str, lo: int | None = None) -> int:
        if not isinstance(node, yaml.ScalarNode) or node.tag != _INT:
            raise self.fail(node, field, f"must be an integer (milliseconds), got {_shown(node)}")
        n = int(node.value.replace("_", ""))
        if lo is not None and n < lo:
            raise self.fail(node, field, f"must be at least {lo}, got {n}")
        return n

    def text(self, node: yaml.Node, field: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag != _STR:
            raise self.fail(node, field, f"must be a string, got {_shown(node)}")
        return str(node.value)

    def money(self, node: yaml.Node, field: str) -> Decimal:
        if not isinstance(node, yaml.ScalarNode) or node.tag != _STR:
            raise self.fail(node, field, f'must be a quoted decimal string, e.g. "0.5" (got {_shown(node)})')
        try:
            d = Decimal(node.value.strip())
        except InvalidOperation:
            raise self.fail(node, field, f"not a decimal number: {node.value!r}") from None
        if not d.is_finite() or d <= 0:
            raise self.fail(node, field, f"must be greater than 0, got {node.value!r}")
        return d


def _shown(node: yaml.Node) -> str:
    if isinstance(node, yaml.ScalarNode):
        return node.value if node.tag != _STR else repr(node.value)
    return "a mapping" if isinstance(node, yaml.MappingNode) else "a list"


@dataclass
class _Parsed:
    start_ms: int
    info: dict[str, Any]
    books: dict[str, list[tuple[int, Book]]]
    trades: dict[str, list[Trade]]
    order: list[str]


def _levels(c: _Checker, node: yaml.Node, field: str, bids: bool) -> tuple[tuple[Decimal, Decimal], ...]:
    out: list[tuple[Decimal, Decimal]] = []
    for i, lvl in enumerate(c.seq(node, field)):
        f = f"{field}[{i}]"
        if not isinstance(lvl, yaml.SequenceNode) or len(lvl.value) != 2:
            raise c.fail(lvl, f, 'a level is ["price", "quantity"]')
        price = c.money(lvl.value[0], f"{f}[0] (price)")
        qty = c.money(lvl.value[1], f"{f}[1] (quantity)")
        if out and (price >= out[-1][0] if bids else price <= out[-1][0]):
            order = "descending (best bid first)" if bids else "ascending (best ask first)"
            raise c.fail(lvl, f, f"levels must be strictly {order}: {price} after {out[-1][0]}")
        out.append((price, qty))
    return tuple(out)


def _trade(c: _Checker, node: yaml.Node, field: str, t: int) -> Trade:
    m = c.mapping(node, field, _TRADE)
    for k in _TRADE:
        if k not in m:
            raise c.fail(node, f"{field}.{k}", "required")
    price = c.money(m["price"], f"{field}.price")
    qty = c.money(m["qty"], f"{field}.qty")
    taker = c.text(m["taker"], f"{field}.taker").upper()
    if taker not in ("BUY", "SELL"):
        raise c.fail(m["taker"], f"{field}.taker", f"must be BUY or SELL, got {taker!r}")
    return Trade(price, qty, t, is_buyer_maker=taker == "SELL")


def parse_script(path: Path, text: str) -> _Parsed:
    c = _Checker(path)
    try:
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise TapeError(f"{path}: not valid YAML: {exc}") from None
    if root is None:
        raise TapeError(f"{path}: empty cassette")
    top = c.mapping(root, "", _TOP)
    start = c.integer(top["start_ms"], "start_ms", 0) if "start_ms" in top else DEFAULT_START_MS
    info_node = top.get("exchange_info")
    info = _exchange_info(c, path, info_node)
    listed = {s["symbol"]: s for s in info.get("symbols", ()) if isinstance(s, dict)}
    if "market" not in top:
        raise c.fail(root, "market", "required: the events of each symbol")
    market = top["market"]
    if not isinstance(market, yaml.MappingNode):
        raise c.fail(market, "market", "must be a mapping of symbol to a list of events")
    if not market.value:
        raise c.fail(market, "market", "lists no symbol")
    books: dict[str, list[tuple[int, Book]]] = {}
    trades: dict[str, list[Trade]] = {}
    for key_node, events_node in market.value:
        symbol = str(key_node.value)
        field = f"market.{symbol}"
        if symbol in books:
            raise c.fail(key_node, field, "given twice")
        if symbol not in listed:
            where = "the packaged recording" if info_node is None else "exchange_info"
            raise c.fail(
                key_node, field, f"{symbol} has no exchangeInfo in {where} (add it with exchange_info:)"
            )
        last_at = 0
        sym_books: list[tuple[int, Book]] = []
        sym_trades: list[Trade] = []
        for i, ev_node in enumerate(c.seq(events_node, field)):
            f = f"{field}[{i}]"
            ev = c.mapping(ev_node, f, _EVENT)
            if "at" not in ev:
                raise c.fail(ev_node, f"{f}.at", "required: ms after start_ms")
            at = c.integer(ev["at"], f"{f}.at", 0)
            if at < last_at:
                raise c.fail(ev["at"], f"{f}.at", f"must not go back ({at} after {last_at})")
            last_at = at
            t = start + at
            if "trade" in ev and "trades" in ev:
                raise c.fail(ev["trades"], f"{f}.trades", "give trade or trades, not both")
            if not any(k in ev for k in ("book", "trade", "trades")):
                raise c.fail(ev_node, f, "an event needs a book, a trade or trades")
            if "trade" in ev:
                sym_trades.append(_trade(c, ev["trade"], f"{f}.trade", t))
            if "trades" in ev:
                items = c.seq(ev["trades"], f"{f}.trades")
                if not items:
                    raise c.fail(ev["trades"], f"{f}.trades", "is empty")
                for j, tn in enumerate(items):
                    sym_trades.append(_trade(c, tn, f"{f}.trades[{j}]", t))
            if "book" in ev:
                bm = c.mapping(ev["book"], f"{f}.book", _BOOK)
                bids = _levels(c, bm["bids"], f"{f}.book.bids", True) if "bids" in bm else ()
                asks = _levels(c, bm["asks"], f"{f}.book.asks", False) if "asks" in bm else ()
                if bids and asks and bids[0][0] >= asks[0][0]:
                    raise c.fail(
                        bm["asks"], f"{f}.book", f"crossed: best bid {bids[0][0]} >= best ask {asks[0][0]}"
                    )
                version = len(sym_books) + 1
                sym_books.append((t, Book(symbol, bids, asks, str(version), t, t)))
        if not sym_books:
            raise c.fail(key_node, field, "needs at least one book (orders need one to arrive at)")
        books[symbol] = sym_books
        trades[symbol] = sym_trades
    return _Parsed(start, info, books, trades, list(books))


def _exchange_info(c: _Checker, script: Path, node: yaml.Node | None) -> dict[str, Any]:
    if node is None:
        return json.loads(PACKAGED_EXCHANGE_INFO.read_text(encoding="utf-8"))
    name = c.text(node, "exchange_info")
    src = (script.parent / name).resolve()
    if not src.exists():
        raise c.fail(node, "exchange_info", f"no such file: {src}")
    if src.suffix == ".json":
        try:
            data = json.loads(src.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise c.fail(node, "exchange_info", f"{src} is not JSON: {exc}") from None
    else:
        try:
            tape = load_tape(src)
        except TapeError as exc:
            raise c.fail(node, "exchange_info", str(exc)) from None
        resp = tape.rest.exact.get(("/api/v3/exchangeInfo", ())) if tape.rest else None
        found = resp.at(tape.start_ms) if resp is not None else None
        if found is None or found.status != 200:
            raise c.fail(node, "exchange_info", f"{src} holds no recorded /api/v3/exchangeInfo answer")
        data = jsonutil.loads(found.body)
    if not isinstance(data, dict) or not isinstance(data.get("symbols"), list):
        raise c.fail(node, "exchange_info", "not an exchangeInfo answer (no symbols list)")
    return data


def load_script(path: Path, text: str) -> Tape:
    p = parse_script(path, text)
    book_series = {s: Series(v) for s, v in p.books.items()}
    trade_series = {s: Series((tr.time_ms, tr) for tr in v) for s, v in p.trades.items()}
    steps = build_steps(book_series, p.trades)
    end = max([p.start_ms, *(st.t for st in steps)])
    listed = {s["symbol"]: s for s in p.info["symbols"] if isinstance(s, dict)}
    info = {**p.info, "symbols": [listed[s] for s in p.order]}
    tape = Tape(
        path=str(path), kind="scripted", start_ms=p.start_ms, end_ms=end, steps=steps,
        books=book_series, trades=trade_series, symbols=frozenset(p.order),
    )
    tape.synth = ScriptedRest(tape, info)
    tape.frame_maker = lambda channel: tape_frames(tape, channel)
    return tape


# --------------------------------------------------------------------------- REST answers

_DAY = 86_400_000
_KLINE_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "60m": 3_600_000,
             "4h": 14_400_000, "1d": _DAY}


def _f(d: Decimal) -> str:
    """A price or quantity as the script wrote it ("87000.00" stays so, as MEXC's depth)."""
    return format(d, "f")


def _c(d: Decimal) -> str:
    """A computed amount (no trailing zeros)."""
    return jsonutil.fmt(d)


class ScriptedRest:
    """MEXC's public answers made from a scripted market at tape time t."""

    def __init__(self, tape: Tape, info: dict[str, Any]) -> None:
        self.tape = tape
        self.info = info
        self.entries = {s["symbol"]: s for s in info["symbols"]}

    def answer(
        self, path: str, params: dict[str, str], norm: tuple[tuple[str, str], ...], t: int
    ) -> RawResponse | None:
        if path not in KNOWN_PATHS:
            return None
        asked = asked_symbols(params)
        if any(s not in self.tape.symbols for s in asked):
            return None
        if path == "/api/v3/exchangeInfo":
            if not asked:
                return json_response(self.info)
            return json_response({**self.info, "symbols": [self.entries[s] for s in asked]})
        if path == "/api/v3/defaultSymbols":
            return json_response(
                {"code": 0, "data": sorted(self.tape.symbols), "msg": "success", "timestamp": t}
            )
        if path in ("/api/v3/ticker/price", "/api/v3/ticker/bookTicker", "/api/v3/ticker/24hr"):
            return self._tickers(path, asked, "symbol" in params, t)
        symbol = params.get("symbol")
        if not symbol:
            return None
        limit = None
        if path in LIMITED:
            try:
                limit = int(params.get("limit") or LIMITED[path])
            except ValueError:
                return error(Err.PARAM_ERROR, "limit must be an integer")
            limit = max(1, min(limit, 5000 if path == "/api/v3/depth" else 1000))
        if path == "/api/v3/depth":
            b = self.tape.book_at(symbol, t)
            assert b is not None and limit is not None
            return json_response({
                "lastUpdateId": int(b.version), "bids": [[_f(p), _f(q)] for p, q in b.bids[:limit]],
                "asks": [[_f(p), _f(q)] for p, q in b.asks[:limit]], "timestamp": b.market_ms,
            })
        if path in ("/api/v3/trades", "/api/v3/historicalTrades"):
            assert limit is not None
            return json_response([
                {"id": None, "price": _f(tr.price), "qty": _f(tr.qty), "quoteQty": _c(tr.price * tr.qty),
                 "time": tr.time_ms, "isBuyerMaker": tr.is_buyer_maker, "isBestMatch": True,
                 "tradeType": "ASK" if tr.is_buyer_maker else "BID"}
                for tr in reversed(self._window(symbol, None, t, limit))
            ])
        if path == "/api/v3/aggTrades":
            assert limit is not None
            lo, hi = _opt_int(params, "startTime"), _opt_int(params, "endTime")
            return json_response([
                {"a": None, "f": None, "l": None, "p": _f(tr.price), "q": _f(tr.qty), "T": tr.time_ms,
                 "m": tr.is_buyer_maker, "M": True}
                for tr in reversed(self._window(symbol, lo, min(t, hi) if hi is not None else t, limit))
            ])
        if path == "/api/v3/avgPrice":
            trs = self._window(symbol, t - 300_000 + 1, t, None)
            if not trs:
                return None
            qty = sum((tr.qty for tr in trs), Decimal(0))
            vwap = sum((tr.price * tr.qty for tr in trs), Decimal(0)) / qty
            return json_response({"mins": 5, "price": _f(vwap.quantize(trs[-1].price))})
        if path == "/api/v3/klines":
            return self._klines(symbol, params, t, limit or 500)
        return None

    def _window(self, symbol: str, lo: int | None, hi: int, limit: int | None) -> list[Trade]:
        """Trades printed in [lo, hi] (oldest first), the newest `limit` of them."""
        s = self.tape.trades.get(symbol)
        if s is None:
            return []
        j = bisect_right(s.times, hi)
        i = 0 if lo is None else bisect_left(s.times, lo)
        if limit is not None:
            i = max(i, j - limit)
        return s.values[i:j] if i < j else []

    def _tickers(self, path: str, asked: list[str], single: bool, t: int) -> RawResponse | None:
        out = []
        for symbol in asked or sorted(self.tape.symbols):
            entry = self._ticker(path, symbol, t)
            if entry is None:
                if asked:
                    return None
                continue
            out.append(entry)
        return json_response(out[0] if single else out)

    def _ticker(self, path: str, symbol: str, t: int) -> dict[str, Any] | None:
        book = self.tape.book_at(symbol, t)
        bid = book.bids[0] if book and book.bids else None
        ask = book.asks[0] if book and book.asks else None
        if path == "/api/v3/ticker/bookTicker":
            return {"symbol": symbol,
                    "bidPrice": _f(bid[0]) if bid else "", "bidQty": _f(bid[1]) if bid else "",
                    "askPrice": _f(ask[0]) if ask else "", "askQty": _f(ask[1]) if ask else ""}
        last = self.tape.last_trade(symbol, t)
        if last is None:
            return None  # nothing printed yet: no price to give
        if path == "/api/v3/ticker/price":
            return {"symbol": symbol, "price": _f(last.price)}
        day = self._window(symbol, t - _DAY + 1, t, None)
        first = day[0] if day else last
        op = first.price
        change = last.price - op
        return {
            "symbol": symbol, "priceChange": _c(change),
            "priceChangePercent": _c((change / op).quantize(Decimal("0.0001"))),
            "prevClosePrice": _f(op), "lastPrice": _f(last.price),
            "bidPrice": _f(bid[0]) if bid else "", "bidQty": _f(bid[1]) if bid else "",
            "askPrice": _f(ask[0]) if ask else "", "askQty": _f(ask[1]) if ask else "",
            "openPrice": _f(op), "highPrice": _f(max((tr.price for tr in day), default=last.price)),
            "lowPrice": _f(min((tr.price for tr in day), default=last.price)),
            "volume": _c(sum((tr.qty for tr in day), Decimal(0))),
            "quoteVolume": _c(sum((tr.qty * tr.price for tr in day), Decimal(0))),
            "openTime": first.time_ms, "closeTime": last.time_ms, "count": None,
        }

    def _klines(self, symbol: str, params: dict[str, str], t: int, limit: int) -> RawResponse | None:
        width = _KLINE_MS.get(params.get("interval", ""))
        if width is None:
            return None
        lo, hi = _opt_int(params, "startTime"), _opt_int(params, "endTime")
        end = t if hi is None else min(t, hi)
        rows: list[list[Any]] = []
        for tr in self._window(symbol, lo, end, None):
            open_ms = tr.time_ms - tr.time_ms % width
            if rows and rows[-1][0] == open_ms:
                r = rows[-1]
                r[2], r[3], r[4] = max(r[2], tr.price), min(r[3], tr.price), tr.price
                r[5] += tr.qty
                r[7] += tr.qty * tr.price
            else:
                rows.append([open_ms, tr.price, tr.price, tr.price, tr.price, tr.qty, open_ms + width,
                             tr.qty * tr.price])
        rows = rows[-limit:]
        return json_response([[r[0], *(_f(x) for x in r[1:5]), _c(r[5]), r[6], _c(r[7])] for r in rows])


def _opt_int(params: dict[str, str], name: str) -> int | None:
    v = params.get(name)
    try:
        return int(v) if v else None
    except ValueError:
        return None
