"""The market a recording's stream frames carry, for the engine: trades from the
aggregated-deals frames, books from the REST snapshots plus the aggregated-depth diffs.

A recording made with the market stream up (`--record` while the watcher follows symbols
over MEXC's WebSocket) holds few REST pages: the stream is the complete tape. In replay
its trades and books are fed to the engine as the REST ones are:

- every deal of an `aggre.deals` frame is a trade at its own `time` (MEXC's clock);
  trades also on a recorded REST page are one trade (told apart by time, price, quantity
  and side, as identical prints in one millisecond are counted);
- a symbol's book follows MEXC's procedure (reference 9.3): a REST snapshot
  (`lastUpdateId`), then each diff whose `toVersion` is past it and whose `fromVersion`
  follows on (`fromVersion <= lastUpdateId + 1` for the first, then `== previous
  toVersion + 1`), quantities absolute, "0" deleting a level; a gap leaves the book as it
  was until the next snapshot. Each applied diff is a new book at its frame's tape time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from ..engine.model import Book, Trade

DEALS = ".aggre.deals.v3.api.pb@"
DEPTH = ".aggre.depth.v3.api.pb@"


class StreamError(ValueError):
    """A frame that does not decode as the channel says."""


def _pb():  # type: ignore[no-untyped-def]
    from ..ws import mexc_push_pb2

    return mexc_push_pb2


def _dec(text: str, what: str) -> Decimal:
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise StreamError(f"{what}: not a decimal: {text!r}") from None
    if not d.is_finite() or d < 0:
        raise StreamError(f"{what}: not a price or quantity: {text!r}")
    return d


def _wrapper(data: bytes):  # type: ignore[no-untyped-def]
    msg = _pb().PushDataV3ApiWrapper()
    try:
        msg.ParseFromString(data)
    except Exception:  # protobuf's DecodeError, whichever implementation raised it
        raise StreamError("not a PushDataV3ApiWrapper") from None
    return msg


def deals_of(data: bytes) -> list[Trade]:
    """The trades of one aggregated-deals frame (tradeType 2: the seller took)."""
    msg = _wrapper(data)
    if msg.WhichOneof("body") != "publicAggreDeals":
        raise StreamError(f"a deals channel's frame holds {msg.WhichOneof('body')}")
    return [
        Trade(_dec(d.price, "deal price"), _dec(d.quantity, "deal quantity"), int(d.time), d.tradeType == 2)
        for d in msg.publicAggreDeals.deals
    ]


def merge_trades(rest: list[Trade], stream: list[Trade]) -> list[Trade]:
    """Both sources' trades, each trade once, oldest first (a stable sort: each source's
    order within a millisecond is kept)."""
    if not rest:
        return list(stream)
    seen = Counter((t.time_ms, t.price, t.qty, t.is_buyer_maker) for t in rest)
    out = list(rest)
    for t in stream:
        k = (t.time_ms, t.price, t.qty, t.is_buyer_maker)
        if seen[k] > 0:
            seen[k] -= 1
            continue
        out.append(t)
    out.sort(key=lambda t: t.time_ms)
    return out


class _Diff:
    __slots__ = ("asks", "bids", "from_v", "market_ms", "to_v")

    def __init__(self, data: bytes) -> None:
        msg = _wrapper(data)
        if msg.WhichOneof("body") != "publicAggreDepths":
            raise StreamError(f"a depth channel's frame holds {msg.WhichOneof('body')}")
        body = msg.publicAggreDepths
        try:
            self.from_v, self.to_v = int(body.fromVersion), int(body.toVersion)
        except ValueError:
            raise StreamError("depth versions are not integers") from None
        self.asks = [(_dec(i.price, "ask"), _dec(i.quantity, "ask")) for i in body.asks]
        self.bids = [(_dec(i.price, "bid"), _dec(i.quantity, "bid")) for i in body.bids]
        self.market_ms = int(msg.sendTime) if msg.HasField("sendTime") else None


def books_from_diffs(
    symbol: str, snapshots: list[tuple[int, Book]], diffs: Iterable[tuple[int, bytes]]
) -> list[tuple[int, Book]]:
    """A symbol's books over tape time: its snapshots, and a book per applied diff."""
    events: list[tuple[int, int, Book | bytes]] = [(t, 0, b) for t, b in snapshots]
    events += [(t, 1, d) for t, d in diffs]
    events.sort(key=lambda e: (e[0], e[1]))
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    version: int | None = None
    first = False
    out: list[tuple[int, Book]] = []
    for t, kind, item in events:
        if kind == 0:
            assert isinstance(item, Book)
            try:
                v = int(item.version)
            except ValueError:
                continue
            if version is not None and v <= version:
                continue  # older than what the diffs already built
            bids, asks, version, first = dict(item.bids), dict(item.asks), v, True
            out.append((t, item))
            continue
        assert isinstance(item, bytes)
        diff = _Diff(item)
        if version is None or diff.to_v <= version:
            continue  # not synchronised yet, or old news
        if diff.from_v > version + 1 or (not first and diff.from_v != version + 1):
            version = None  # a gap: unsynchronised until the next snapshot
            continue
        for p, q in diff.bids:
            if q == 0:
                bids.pop(p, None)
            else:
                bids[p] = q
        for p, q in diff.asks:
            if q == 0:
                asks.pop(p, None)
            else:
                asks[p] = q
        version, first = diff.to_v, False
        out.append((t, Book(
            symbol, tuple(sorted(bids.items(), key=lambda lv: -lv[0])),
            tuple(sorted(asks.items())), str(version), t, diff.market_ms if diff.market_ms is not None else t,
        )))
    return out
