"""Public WebSocket frames made from a market's trades and books (synthesised, not
received): the channels of a scripted cassette, and the offline demo's stream
(scripts/build_cassettes.py writes them into cassettes/demo.yaml marked
`synthesised: true`).

Each frame is one protobuf `PushDataV3ApiWrapper` (our module proxy/ws/mexc_push.proto,
MEXC's field numbers) at a tape time, as MEXC would push it:

  spot@public.aggre.deals.v3.api.pb@(100ms|10ms)@SYM   the trades of each window, sent
        at the window's last trade
  spot@public.aggre.depth.v3.api.pb@(100ms|10ms)@SYM   each new book as a diff of the one
        before (absolute quantities, "0" deletes a level), `fromVersion` = the previous
        book's version + 1, `toVersion` = this one's: contiguous with the REST snapshot's
        `lastUpdateId`, so a client syncs its book as on MEXC
  spot@public.limit.depth.v3.api.pb@SYM@(5|10|20)      each new book's top levels
  spot@public.aggre.bookTicker.v3.api.pb@(100ms|10ms)@SYM  the best bid and ask when
        they change
  spot@public.kline.v3.api.pb@SYM@(Min1 ... Day1)      the running candle after each trade

Every other channel has no synthesised frames (a subscription is refused).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from itertools import pairwise
from typing import Any

from ..engine.model import Book, Trade
from .tape import Frame, Tape

_KLINE_S = {"Min1": 60, "Min5": 300, "Min15": 900, "Min30": 1800, "Min60": 3600, "Hour4": 14_400,
            "Hour8": 28_800, "Day1": 86_400}
_CHANNEL = re.compile(
    r"^spot@public\.(?:"
    r"(?P<deals>aggre\.deals)\.v3\.api\.pb@(?P<dw>100ms|10ms)@(?P<ds>[A-Z0-9]+)"
    r"|(?P<depth>aggre\.depth)\.v3\.api\.pb@(?P<pw>100ms|10ms)@(?P<ps>[A-Z0-9]+)"
    r"|(?P<ticker>aggre\.bookTicker)\.v3\.api\.pb@(?P<tw>100ms|10ms)@(?P<ts>[A-Z0-9]+)"
    r"|(?P<limit>limit\.depth)\.v3\.api\.pb@(?P<ls>[A-Z0-9]+)@(?P<ln>5|10|20)"
    r"|(?P<kline>kline)\.v3\.api\.pb@(?P<ks>[A-Z0-9]+)@(?P<ki>" + "|".join(_KLINE_S) + r")"
    r")$"
)


def _pb() -> Any:
    from ..ws import mexc_push_pb2

    return mexc_push_pb2


def _f(d: Decimal) -> str:
    return format(d, "f")


def _wrapper(channel: str, symbol: str, t: int) -> Any:
    return _pb().PushDataV3ApiWrapper(channel=channel, symbol=symbol, sendTime=t)


def channel_symbol(channel: str) -> str | None:
    """The symbol of a channel this module can make frames for (None otherwise)."""
    m = _CHANNEL.match(channel)
    if m is None:
        return None
    return next(v for k, v in m.groupdict().items() if k in ("ds", "ps", "ts", "ls", "ks") and v)


def make_frames(
    channel: str, trades: Sequence[Trade], books: Sequence[tuple[int, Book]]
) -> list[Frame] | None:
    """The frames of `channel` for one symbol's market: trades oldest first (each at its
    time), books as (tape time, book) in time order. None for a channel this module does
    not make."""
    m = _CHANNEL.match(channel)
    if m is None:
        return None
    g = m.groupdict()
    event = channel.rsplit("@", 1)[0]  # the channel without its symbol (MEXC's eventType)
    if g["deals"]:
        return _deals(channel, g["ds"], event, trades, 100 if g["dw"] == "100ms" else 10)
    if g["depth"]:
        return _depth(channel, g["ps"], event, books)
    if g["ticker"]:
        return _tickers(channel, g["ts"], books)
    if g["limit"]:
        return _limit(channel, g["ls"], "spot@public.limit.depth.v3.api.pb", books, int(g["ln"]))
    return _klines(channel, g["ks"], g["ki"], trades)


def tape_frames(tape: Tape, channel: str) -> list[Frame] | None:
    """`make_frames` over a tape's market: the trades it feeds (from its start) and its
    books (a Tape's `frame_maker`)."""
    symbol = channel_symbol(channel)
    if symbol is None or symbol not in tape.books:
        return None
    trades = [tr for st in tape.steps if st.symbol == symbol for tr in st.trades]
    series = tape.books[symbol]
    return make_frames(channel, trades, list(zip(series.times, series.values, strict=True)))


def _deals(channel: str, symbol: str, event: str, trades: Sequence[Trade], window: int) -> list[Frame]:
    pb = _pb()
    out: list[Frame] = []
    i, n = 0, len(trades)
    while i < n:
        w = trades[i].time_ms // window
        j = i
        while j < n and trades[j].time_ms // window == w:
            j += 1
        batch = trades[i:j]
        t = batch[-1].time_ms
        msg = _wrapper(channel, symbol, t)
        msg.publicAggreDeals.eventType = event
        for tr in batch:
            msg.publicAggreDeals.deals.append(pb.PublicAggreDealsV3ApiItem(
                price=_f(tr.price), quantity=_f(tr.qty), tradeType=2 if tr.is_buyer_maker else 1,
                time=tr.time_ms))
        out.append(Frame(t, channel, msg.SerializeToString(), True))
        i = j
    return out


def _levels(levels: Sequence[tuple[Decimal, Decimal]]) -> dict[Decimal, Decimal]:
    return dict(levels)


def _diff(
    before: dict[Decimal, Decimal], after: dict[Decimal, Decimal], bids: bool
) -> list[tuple[Decimal, Decimal]]:
    changed = [(p, q) for p, q in after.items() if before.get(p) != q]
    changed += [(p, Decimal(0)) for p in before if p not in after]
    return sorted(changed, key=lambda lv: -lv[0] if bids else lv[0])


def _depth(
    channel: str, symbol: str, event: str, books: Sequence[tuple[int, Book]]
) -> list[Frame] | None:
    pb = _pb()
    out: list[Frame] = []
    for (_t0, prev), (t, cur) in pairwise(books):
        try:
            start, end = int(prev.version) + 1, int(cur.version)
        except ValueError:
            return None  # versions that are not MEXC's counter: no diff stream to make
        msg = _wrapper(channel, symbol, t)
        body = msg.publicAggreDepths
        body.eventType, body.fromVersion, body.toVersion = event, str(start), str(end)
        for p, q in _diff(_levels(prev.asks), _levels(cur.asks), False):
            body.asks.append(pb.PublicAggreDepthV3ApiItem(price=_f(p), quantity=_f(q)))
        for p, q in _diff(_levels(prev.bids), _levels(cur.bids), True):
            body.bids.append(pb.PublicAggreDepthV3ApiItem(price=_f(p), quantity=_f(q)))
        out.append(Frame(t, channel, msg.SerializeToString(), True))
    return out


def _limit(
    channel: str, symbol: str, event: str, books: Sequence[tuple[int, Book]], n: int
) -> list[Frame]:
    pb = _pb()
    out: list[Frame] = []
    for t, book in books:
        msg = _wrapper(channel, symbol, t)
        body = msg.publicLimitDepths
        body.eventType, body.version = event, book.version
        for p, q in book.asks[:n]:
            body.asks.append(pb.PublicLimitDepthV3ApiItem(price=_f(p), quantity=_f(q)))
        for p, q in book.bids[:n]:
            body.bids.append(pb.PublicLimitDepthV3ApiItem(price=_f(p), quantity=_f(q)))
        out.append(Frame(t, channel, msg.SerializeToString(), True))
    return out


def _tickers(channel: str, symbol: str, books: Sequence[tuple[int, Book]]) -> list[Frame]:
    out: list[Frame] = []
    last: tuple[Any, ...] | None = None
    for t, book in books:
        bid = book.bids[0] if book.bids else (None, None)
        ask = book.asks[0] if book.asks else (None, None)
        top = (*bid, *ask)
        if top == last:
            continue
        last = top
        msg = _wrapper(channel, symbol, t)
        body = msg.publicAggreBookTicker
        body.bidPrice, body.bidQuantity = (_f(bid[0]), _f(bid[1])) if bid[0] is not None else ("", "")
        body.askPrice, body.askQuantity = (_f(ask[0]), _f(ask[1])) if ask[0] is not None else ("", "")
        body.version = book.version
        out.append(Frame(t, channel, msg.SerializeToString(), True))
    return out


def _klines(channel: str, symbol: str, interval: str, trades: Sequence[Trade]) -> list[Frame]:
    width_s = _KLINE_S[interval]
    out: list[Frame] = []
    candle: list[Any] | None = None
    for tr in trades:
        start_s = tr.time_ms // 1000 // width_s * width_s
        if candle is None or candle[0] != start_s:
            candle = [start_s, tr.price, tr.price, tr.price, tr.price, Decimal(0), Decimal(0)]
        candle[2] = max(candle[2], tr.price)
        candle[3] = min(candle[3], tr.price)
        candle[4] = tr.price
        candle[5] += tr.qty
        candle[6] += tr.qty * tr.price
        msg = _wrapper(channel, symbol, tr.time_ms)
        k = msg.publicSpotKline
        k.interval, k.windowStart, k.windowEnd = interval, start_s, start_s + width_s
        k.openingPrice, k.highestPrice, k.lowestPrice, k.closingPrice = (
            _f(candle[1]), _f(candle[2]), _f(candle[3]), _f(candle[4]))
        k.volume, k.amount = _f(candle[5]), format(candle[6].normalize(), "f")
        out.append(Frame(tr.time_ms, channel, msg.SerializeToString(), True))
    return out
