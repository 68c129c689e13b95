"""The market a recording's stream frames carry, for the engine: trades from the
aggregated-deals frames, books from the REST snapshots plus the aggregated-depth diffs.

A recording made with the market stream up (`--record` while the watcher follows symbols
over MEXC's WebSocket) holds few REST pages: the stream is the complete tape. In replay
its trades and books are fed to the engine as the live watcher feeds them, read with the
same book code (proxy/ws/livebook.py; frames read with our protobuf module):

- every deal of an `aggre.deals` frame is a trade at its own `time` (MEXC's clock);
  trades also on a recorded REST page are one trade (told apart by time, price, quantity
  and side; identical prints in one millisecond are counted);
- a symbol's book follows MEXC's procedure (reference 9.3): a REST snapshot
  (`lastUpdateId`), then the diffs after it, each starting right after the one before;
  a gap leaves the book unsynchronised until the next snapshot. Each applied diff is a
  new (incremental) book at its frame's tape time, as the watcher hands the engine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from ..engine.model import Book, Trade
from ..ws.livebook import LiveBook
from ..ws.mexc_push_pb2 import PushDataV3ApiWrapper
from ..ws.pbwire import DepthDiff

DEALS = ".aggre.deals.v3.api.pb@"
DEPTH = ".aggre.depth.v3.api.pb@"


class StreamError(ValueError):
    """A frame that does not decode as its channel says."""


def _dec(text: str, what: str) -> Decimal:
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise StreamError(f"{what}: not a decimal: {text!r}") from None
    if not d.is_finite() or d < 0:
        raise StreamError(f"{what}: not a price or quantity: {text!r}")
    return d


def _push(data: bytes, body: str) -> PushDataV3ApiWrapper:
    """The frame decoded (our protobuf module: C-speed), which must hold `body`."""
    msg = PushDataV3ApiWrapper()
    try:
        msg.ParseFromString(data)
    except Exception:  # protobuf's DecodeError, whichever implementation raised it
        raise StreamError("not a PushDataV3ApiWrapper") from None
    if msg.WhichOneof("body") != body:
        raise StreamError(f"the frame holds {msg.WhichOneof('body')}, not {body}")
    return msg


def deals_of(data: bytes) -> list[Trade]:
    """The trades of one aggregated-deals frame (tradeType 2: the seller took)."""
    msg = _push(data, "publicAggreDeals")
    return [
        Trade(_dec(d.price, "deal price"), _dec(d.quantity, "deal quantity"), d.time, d.tradeType == 2)
        for d in msg.publicAggreDeals.deals
    ]


def _diff(data: bytes) -> tuple[DepthDiff, int | None]:
    msg = _push(data, "publicAggreDepths")
    body = msg.publicAggreDepths
    if not (body.fromVersion.isdigit() and body.toVersion.isdigit()):
        raise StreamError(f"depth versions are not numbers: {body.fromVersion!r}, {body.toVersion!r}")
    diff = DepthDiff(
        tuple((i.price, i.quantity) for i in body.asks), tuple((i.price, i.quantity) for i in body.bids),
        int(body.fromVersion), int(body.toVersion),
    )
    return diff, (msg.sendTime if msg.HasField("sendTime") else None)


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


def books_from_diffs(
    symbol: str,
    snapshots: list[tuple[int, Book, int]],
    diffs: Iterable[tuple[int, bytes]],
    depth: int,
) -> list[tuple[int, Book]]:
    """A symbol's books over tape time: (tape time, snapshot, its `limit`) REST snapshots
    and (tape time, frame) depth diffs in; a book per synced snapshot and applied diff out
    (the top `depth` levels a side)."""
    events: list[tuple[int, int, object]] = [(t, 0, (b, limit)) for t, b, limit in snapshots]
    events += [(t, 1, d) for t, d in diffs]
    events.sort(key=lambda e: (e[0], e[1]))
    live = LiveBook(symbol)
    out: list[tuple[int, Book]] = []
    for t, kind, item in events:
        if kind == 0:
            snap, limit = item  # type: ignore[misc]
            if not snap.version.isdigit():
                continue  # not MEXC's counter: nothing to anchor diffs on
            if live.synced and int(snap.version) <= live.version:
                continue  # older than what the diffs already built
            if live.on_snapshot(snap, limit) == "synced":
                out.append((t, live.book(depth)))
            continue
        assert isinstance(item, bytes)
        diff, send_ms = _diff(item)
        try:
            changed = live.on_diff(diff, send_ms, t)
        except ValueError as exc:
            raise StreamError(str(exc)) from None
        if changed:
            out.append((t, live.book(depth)))
    return out
