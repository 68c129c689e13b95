"""The tape: a cassette's REST answers and market, ordered by tape time.

Tape time is the time of the recording. Where a cassette item carries `recorded_ms` (the
recorder's wall clock when the answer or frame arrived, written by `--record`) that is
its tape time. Older cassettes have none; their times are derived from the data itself:
a depth answer is at its `timestamp`, a trades page at its newest trade's `time`, and
everything else (exchangeInfo, tickers, klines, ...) holds for the whole tape.

What the tape serves at tape time t is what was recorded at or before t: for each
request the latest recording at or before t (a request earlier than a kind's first
recording gets that first recording, the earliest state known). The market the engine is
fed is one ordered list of `Step`s: a symbol's new public trades (each at its own trade
time, MEXC's clock) and/or its new book at one tape millisecond. The tape starts at its
earliest timed item; trades printed before it are history (on the REST pages, never fed).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import heapq
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import parse_qsl

import yaml

from .. import jsonutil
from ..engine.model import Book, Trade
from ..errors import ApiError, Err
from ..parsers import ShapeError, parse_depth, parse_trades
from ..upstream import KNOWN_PATHS, RawResponse, interaction_parts

T = TypeVar("T")

ALWAYS = -(1 << 62)  # the tape time of an answer that holds for the whole tape

# paths whose `limit` only shapes the answer: a recording with another limit answers,
# cut to the limit asked (MEXC's default when none is given)
LIMITED = {
    "/api/v3/depth": 100,
    "/api/v3/trades": 500,
    "/api/v3/historicalTrades": 500,
    "/api/v3/aggTrades": 500,
    "/api/v3/klines": 500,
}
# paths whose per-symbol answer is an entry of the all-symbols answer
BY_SYMBOL = ("/api/v3/ticker/price", "/api/v3/ticker/24hr", "/api/v3/ticker/bookTicker",
             "/api/v3/exchangeInfo")

JSON = "application/json"


class TapeError(ValueError):
    """A cassette that cannot be replayed; the message names the file (and line)."""


class Series(Generic[T]):
    """Values at tape times, in time order (equal times keep their recorded order)."""

    __slots__ = ("times", "values")

    def __init__(self, items: Iterable[tuple[int, T]] = ()) -> None:
        pairs = sorted(items, key=lambda p: p[0])
        self.times = [p[0] for p in pairs]
        self.values = [p[1] for p in pairs]

    def __len__(self) -> int:
        return len(self.values)

    def at(self, t: int) -> T | None:
        """The latest value at or before t; the first one when t is earlier than all."""
        if not self.values:
            return None
        i = bisect_right(self.times, t) - 1
        return self.values[i if i >= 0 else 0]

    def index_after(self, t: int) -> int:
        """Index of the first value strictly after t."""
        return bisect_right(self.times, t)


@dataclass(frozen=True, slots=True)
class Step:
    """What the market did at one tape millisecond on one symbol: trades (oldest first)
    then the book as it stood after them."""

    t: int
    symbol: str
    trades: tuple[Trade, ...] = ()
    book: Book | None = None


@dataclass(frozen=True, slots=True)
class Frame:
    t: int
    channel: str
    data: bytes
    synthesised: bool = False


class Answers(Protocol):
    """Where REST answers come from: recorded ones, or made from a scripted market."""

    def answer(
        self, path: str, params: dict[str, str], norm: tuple[tuple[str, str], ...], t: int
    ) -> RawResponse | None: ...


@dataclass
class Tape:
    path: str
    kind: str  # "recorded" | "scripted"
    start_ms: int
    end_ms: int
    steps: list[Step]
    books: dict[str, Series[Book]]
    # every trade the cassette knows per symbol (history included), oldest first
    trades: dict[str, Series[Trade]]
    symbols: frozenset[str]
    frames: dict[str, list[Frame]] = field(default_factory=dict)
    # the REST answers: recorded ones, or a synthesiser (scripted cassettes)
    rest: RecordedRest | None = None
    synth: Answers | None = None
    # makes a channel's frames from the market on subscription (scripted cassettes)
    frame_maker: Callable[[str], list[Frame] | None] | None = None

    @property
    def name(self) -> str:
        return Path(self.path).name

    # ---- REST ----
    def answer(self, method: str, path: str, raw_query: str, t: int) -> RawResponse:
        """The answer to a public request at tape time t, or a MEXC-shaped error that
        says the cassette does not hold it (never another request's answer)."""
        if path not in KNOWN_PATHS:
            return error(Err.NOT_FOUND)
        if path == "/api/v3/ping":
            return RawResponse(200, b"{}", JSON)
        pairs = query_pairs(raw_query)
        params = dict(pairs)
        norm = tuple(sorted(pairs))
        resp = None
        if method == "GET":
            if self.rest is not None:
                resp = self.rest.answer(path, params, norm, t)
            if resp is None and self.synth is not None:
                resp = self.synth.answer(path, params, norm, t)
        if resp is not None:
            return resp
        return self.miss(method, path, raw_query, params)

    def miss(self, method: str, path: str, raw_query: str, params: dict[str, str]) -> RawResponse:
        asked = asked_symbols(params)
        unknown = [s for s in asked if s not in self.symbols]
        if unknown:
            return error(Err.INVALID_SYMBOL, f"{unknown[0]} is not in the cassette {self.name}")
        what = f"{method} {path}" + (f"?{raw_query}" if raw_query else "")
        return error(Err.NOT_RECORDED, f"{what} is not in the cassette {self.name}")

    # ---- market ----
    def book_at(self, symbol: str, t: int) -> Book | None:
        s = self.books.get(symbol)
        return s.at(t) if s is not None else None

    def last_trade(self, symbol: str, t: int) -> Trade | None:
        """The latest trade printed at or before t (None before the first)."""
        s = self.trades.get(symbol)
        if s is None:
            return None
        i = bisect_right(s.times, t) - 1
        return s.values[i] if i >= 0 else None


def error(err: Err, detail: str | None = None) -> RawResponse:
    return RawResponse(err.status, ApiError(err, detail).body(), JSON)


# what a client may add to a public request that MEXC ignores there (pymexc signs klines)
_AUTH_PARAMS = frozenset({"timestamp", "recvWindow", "signature"})


def query_pairs(raw_query: str) -> list[tuple[str, str]]:
    """A public request's parameters, without the authentication ones MEXC ignores."""
    return [p for p in parse_qsl(raw_query, keep_blank_values=True) if p[0] not in _AUTH_PARAMS]


def asked_symbols(params: dict[str, str]) -> list[str]:
    out = []
    if params.get("symbol"):
        out.append(params["symbol"])
    raw = params.get("symbols")
    if raw:
        raw = raw.strip("[]")
        out.extend(s.strip().strip('"') for s in raw.split(",") if s.strip())
    return out


def json_response(data: Any) -> RawResponse:
    return RawResponse(200, jsonutil.dumps(data), JSON)


# --------------------------------------------------------------------------- recorded


class RecordedRest:
    """The recorded answers, by (path, sorted query), each a Series over tape time."""

    def __init__(self, items: list[tuple[int, str, tuple[tuple[str, str], ...], RawResponse]]) -> None:
        exact: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[int, RawResponse]]] = {}
        loose: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[int, RawResponse]]] = {}
        for t, path, norm, resp in items:
            exact.setdefault((path, norm), []).append((t, resp))
            if path in LIMITED and resp.status == 200:
                loose.setdefault((path, _without(norm, "limit")), []).append((t, resp))
        self.exact = {k: Series(v) for k, v in exact.items()}
        self.loose = {k: Series(v) for k, v in loose.items()}
        self._shaped: dict[tuple[int, int], RawResponse] = {}
        self._picked: dict[tuple[int, tuple[str, ...]], RawResponse | None] = {}

    def answer(
        self, path: str, params: dict[str, str], norm: tuple[tuple[str, str], ...], t: int
    ) -> RawResponse | None:
        s = self.exact.get((path, norm))
        if s is not None:
            return s.at(t)
        if path in LIMITED:
            s = self.loose.get((path, _without(norm, "limit")))
            if s is not None:
                resp = s.at(t)
                assert resp is not None
                return self._shape(path, resp, params.get("limit"))
        if path in BY_SYMBOL:
            asked = asked_symbols(params)
            if asked and all(k in ("symbol", "symbols") for k in params):
                whole = self.exact.get((path, ()))
                if whole is not None:
                    resp = whole.at(t)
                    assert resp is not None
                    return self._pick(path, resp, tuple(asked), "symbol" in params)
        return None

    def _shape(self, path: str, resp: RawResponse, limit: str | None) -> RawResponse:
        """A recording cut to `limit` rows (levels per side for depth)."""
        try:
            n = int(limit) if limit else LIMITED[path]
        except ValueError:
            return error(Err.PARAM_ERROR, "limit must be an integer")
        key = (id(resp), n)
        hit = self._shaped.get(key)
        if hit is not None:
            return hit
        data = jsonutil.loads(resp.body)
        if path == "/api/v3/depth" and isinstance(data, dict):
            if len(data.get("bids", ())) <= n and len(data.get("asks", ())) <= n:
                out = resp
            else:
                out = json_response({**data, "bids": data["bids"][:n], "asks": data["asks"][:n]})
        elif isinstance(data, list) and len(data) > n:
            # trades and aggTrades are newest first, klines oldest first
            out = json_response(data[-n:] if path == "/api/v3/klines" else data[:n])
        else:
            out = resp
        self._shaped[key] = out
        return out

    def _pick(
        self, path: str, resp: RawResponse, symbols: tuple[str, ...], single: bool
    ) -> RawResponse | None:
        """Entries of an all-symbols answer (None when one of them is not in it)."""
        key = (id(resp), (*symbols, "1" if single else "n"))
        if key in self._picked:
            return self._picked[key]
        out: RawResponse | None = None
        if resp.status == 200:
            data = jsonutil.loads(resp.body)
            if path == "/api/v3/exchangeInfo" and isinstance(data, dict):
                entries = {s.get("symbol"): s for s in data.get("symbols", ()) if isinstance(s, dict)}
                if all(s in entries for s in symbols):
                    out = json_response({**data, "symbols": [entries[s] for s in symbols]})
            elif isinstance(data, list):
                entries = {e.get("symbol"): e for e in data if isinstance(e, dict)}
                if all(s in entries for s in symbols):
                    picked = [entries[s] for s in symbols]
                    out = json_response(picked[0] if single else picked)
        self._picked[key] = out
        return out


def _without(norm: tuple[tuple[str, str], ...], name: str) -> tuple[tuple[str, str], ...]:
    return tuple(p for p in norm if p[0] != name)


def _load_yaml(path: Path) -> Any:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as f:
                text = f.read()
        else:
            text = path.read_text(encoding="utf-8")
    except (OSError, EOFError) as exc:
        raise TapeError(f"{path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        return text, yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    except yaml.YAMLError as exc:
        raise TapeError(f"{path}: not valid YAML: {exc}") from None


def load_tape(path: str | Path) -> Tape:
    """Load a recorded (vcrpy's YAML, plus stream frames) or scripted cassette, gzipped
    when its name ends in .gz.
    Raises TapeError naming the file, and for scripted cassettes the line and field."""
    p = Path(path)
    text, data = _load_yaml(p)
    if isinstance(data, dict) and "interactions" not in data and "market" in data:
        from .script import load_script

        return load_script(p, text)
    if not isinstance(data, dict) or not isinstance(data.get("interactions"), list):
        raise TapeError(
            f"{p}: neither a recorded cassette (an `interactions:` list) nor a scripted one "
            "(a `market:` mapping; see cassettes/README.md)"
        )
    return recorded_tape(str(p), data["interactions"])


def _derived_time(path: str, resp: RawResponse) -> int | None:
    """The tape time of an answer recorded without `recorded_ms`, from its own data."""
    if resp.status != 200 or path not in ("/api/v3/depth", "/api/v3/trades"):
        return None
    try:
        data = jsonutil.loads(resp.body)
    except ValueError:
        return None
    if path == "/api/v3/depth":
        stamp = data.get("timestamp") if isinstance(data, dict) else None
        return stamp if isinstance(stamp, int) and not isinstance(stamp, bool) else None
    times = [e.get("time") for e in data if isinstance(e, dict)] if isinstance(data, list) else []
    times = [x for x in times if isinstance(x, int) and not isinstance(x, bool)]
    return max(times) if times else None


def _time_of(item: dict[str, Any], where: str) -> int | None:
    t = item.get("recorded_ms")
    if t is None:
        return None
    if not isinstance(t, int) or isinstance(t, bool):
        raise TapeError(f"{where}: recorded_ms must be an integer (epoch ms), got {t!r}")
    return t


def recorded_tape(path: str, items: list[Any], depth_limit: int = 100) -> Tape:
    rest_items: list[tuple[int | None, str, tuple[tuple[str, str], ...], RawResponse]] = []
    frames: list[Frame] = []
    for n, it in enumerate(items):
        where = f"{path}: interactions[{n}]"
        if not isinstance(it, dict):
            raise TapeError(f"{where}: not a mapping")
        if "stream" in it:
            s = it["stream"]
            if not isinstance(s, dict) or not isinstance(s.get("channel"), str):
                raise TapeError(f"{where}: stream item without a channel")
            t = _time_of(s, where)
            if t is None:
                raise TapeError(f"{where}: stream item without recorded_ms")
            try:
                data = base64.b64decode(s.get("frame", ""), validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise TapeError(f"{where}: stream frame is not base64") from None
            frames.append(Frame(t, s["channel"], data, bool(s.get("synthesised"))))
            continue
        try:
            method, upath, query, resp = interaction_parts(it)
        except (KeyError, TypeError, AttributeError, ValueError):
            raise TapeError(f"{where}: not a vcrpy interaction (request/response)") from None
        if method != "GET":
            continue
        t = _time_of(it, where)
        if t is None:
            t = _derived_time(upath, resp)
        rest_items.append((t, upath, tuple(sorted(query_pairs(query))), resp))

    timed = [t for t, *_ in rest_items if t is not None] + [f.t for f in frames]
    start = min(timed) if timed else 0
    rest = RecordedRest([(ALWAYS if t is None else t, p, q, r) for t, p, q, r in rest_items])

    symbols: set[str] = set()
    books: dict[str, list[tuple[int, Book]]] = {}
    limits: dict[tuple[str, int], int] = {}  # (symbol, tape time) -> the snapshot's limit
    pages: dict[str, list[tuple[int, list[Any]]]] = {}
    for t, upath, norm, resp in rest_items:
        params = dict(norm)
        symbols.update(asked_symbols(params))
        if resp.status != 200:
            continue
        when = start if t is None else t
        sym = params.get("symbol")
        try:
            if upath == "/api/v3/depth" and sym:
                data = jsonutil.loads(resp.body)
                book = parse_depth(sym, data, when)
                books.setdefault(sym, []).append((when, book))
                limits[(sym, when)] = int(params["limit"]) if params.get("limit", "").isdigit() else 100
            elif upath == "/api/v3/trades" and sym:
                page = jsonutil.loads(resp.body)
                if not isinstance(page, list):
                    raise ShapeError("trades: expected a list")
                pages.setdefault(sym, []).append((when, page))
            elif upath == "/api/v3/exchangeInfo" and not params:
                data = jsonutil.loads(resp.body)
                symbols.update(s["symbol"] for s in data.get("symbols", ()) if isinstance(s, dict)
                               and isinstance(s.get("symbol"), str))
        except (ShapeError, ValueError, AttributeError) as exc:
            raise TapeError(f"{path}: the recorded {upath} answer for {sym}: {exc}") from None
    for f in frames:
        parts = f.channel.split("@")
        symbols.update(p for p in parts[2:] if p.isupper() and p.isalnum() and len(p) > 4)

    known_trades: dict[str, list[Trade]] = {}
    for sym, ps in pages.items():
        ps.sort(key=lambda p: p[0])
        try:
            known_trades[sym] = merge_pages([pg for _t, pg in ps])
        except ShapeError as exc:
            raise TapeError(f"{path}: a recorded /api/v3/trades answer for {sym}: {exc}") from None
    if frames:
        _streamed_market(path, frames, books, limits, known_trades, depth_limit)
    book_series = {s: Series(_dedupe_books(v)) for s, v in books.items()}
    all_trades = {sym: Series((tr.time_ms, tr) for tr in known) for sym, known in known_trades.items()}
    fed = {sym: [tr for tr in known if tr.time_ms >= start] for sym, known in known_trades.items()}
    steps = build_steps(book_series, fed)
    end = max([start, *(st.t for st in steps), *(f.t for f in frames),
               *(t for t, *_ in rest_items if t is not None)])
    by_channel: dict[str, list[Frame]] = {}
    for f in sorted(frames, key=lambda f: f.t):
        by_channel.setdefault(f.channel, []).append(f)
    return Tape(
        path=path, kind="recorded", start_ms=start, end_ms=end, steps=steps, books=book_series,
        trades=all_trades, symbols=frozenset(symbols), frames=by_channel, rest=rest,
    )


def _streamed_market(
    path: str, frames: list[Frame], books: dict[str, list[tuple[int, Book]]],
    limits: dict[tuple[str, int], int], trades: dict[str, list[Trade]], depth_limit: int,
) -> None:
    """Add the market the recorded stream frames carry (proxy/tape/streamed.py): every
    deal to the symbol's trades, and its books rebuilt from the snapshots and the depth
    diffs (of the depth channel with the most frames, when several were recorded)."""
    from .streamed import DEALS, DEPTH, StreamError, books_from_diffs, deals_of, merge_trades

    deals: dict[str, list[Trade]] = {}
    depth: dict[str, dict[str, list[tuple[int, bytes]]]] = {}
    for f in sorted(frames, key=lambda f: f.t):
        symbol = f.channel.rsplit("@", 1)[-1]
        try:
            if DEALS in f.channel:
                deals.setdefault(symbol, []).extend(deals_of(f.data))
            elif DEPTH in f.channel:
                depth.setdefault(symbol, {}).setdefault(f.channel, []).append((f.t, f.data))
        except StreamError as exc:
            raise TapeError(f"{path}: the frame of {f.channel} recorded at {f.t}: {exc}") from None
    for symbol, stream in deals.items():
        stream.sort(key=lambda tr: tr.time_ms)
        trades[symbol] = merge_trades(trades.get(symbol, []), stream)
    for symbol, channels in depth.items():
        diffs = max(channels.values(), key=len)
        snapshots = [(t, b, limits.get((symbol, t), 100)) for t, b in books.get(symbol, [])]
        try:
            books[symbol] = books_from_diffs(symbol, snapshots, diffs, depth_limit)
        except StreamError as exc:
            raise TapeError(f"{path}: a depth frame of {symbol}: {exc}") from None


def _dedupe_books(books: list[tuple[int, Book]]) -> list[tuple[int, Book]]:
    """Books in time order, a snapshot equal to the one before it dropped (the same book
    fetched twice is not a new version of the market)."""
    out: list[tuple[int, Book]] = []
    for t, b in sorted(books, key=lambda p: p[0]):
        prev = out[-1][1] if out else None
        if prev is not None and (prev.version, prev.bids, prev.asks) == (b.version, b.bids, b.asks):
            continue
        out.append((t, b))
    return out


def _raw_key(e: Any) -> tuple[Any, Any, Any, bool]:
    if not isinstance(e, dict):
        raise ShapeError("trades: entry is not an object")
    return (e.get("time"), e.get("price"), e.get("qty"), bool(e.get("isBuyerMaker")))


def merge_pages(pages: list[list[Any]]) -> list[Trade]:
    """Trades pages as recorded (MEXC's JSON, newest first; pages in recording order) ->
    every distinct trade, oldest first. A trade on two overlapping pages is one trade; identical prints in one
    millisecond are counted, not collapsed; a trade older than the previous page's oldest
    scrolled in from before and is dropped. MEXC trade ids are null, so trades are told
    apart by content: compared as recorded, parsed (Decimal) only once kept."""
    kept: list[Any] = []
    previous: Counter[tuple[Any, Any, Any, bool]] | None = None
    for page in pages:
        keys = [_raw_key(e) for e in reversed(page)]
        if previous is None:
            kept.extend(reversed(page))
        else:
            times = [k[0] for k in previous if isinstance(k[0], int)]
            oldest = min(times) if times else None
            seen = Counter(previous)
            for e, k in zip(reversed(page), keys, strict=True):
                if seen[k] > 0:
                    seen[k] -= 1
                    continue
                if oldest is not None and isinstance(k[0], int) and k[0] < oldest:
                    continue
                kept.append(e)
        if page:
            previous = Counter(keys)
    return parse_trades(kept)  # validated, oldest first (stable: page order kept)


def build_steps(books: dict[str, Series[Book]], trades: dict[str, list[Trade]]) -> list[Step]:
    """One Step per (tape ms, symbol) holding trades and/or a book, in tape order; at the
    same millisecond symbols follow in name order. `trades` per symbol oldest first."""
    per_symbol: list[list[Step]] = []
    for sym in sorted(set(books) | set(trades)):
        bs = books.get(sym) or Series()
        trs = trades.get(sym, [])
        out: list[Step] = []
        i, j, nb, nt = 0, 0, len(bs), len(trs)
        while i < nt or j < nb:
            t = min(trs[i].time_ms if i < nt else 1 << 62, bs.times[j] if j < nb else 1 << 62)
            k = i
            while k < nt and trs[k].time_ms == t:
                k += 1
            book = None
            while j < nb and bs.times[j] == t:
                book = bs.values[j]
                j += 1
            out.append(Step(t, sym, tuple(trs[i:k]), book))
            i = k
        per_symbol.append(out)
    if len(per_symbol) == 1:
        return per_symbol[0]
    return list(heapq.merge(*per_symbol, key=lambda st: (st.t, st.symbol)))
