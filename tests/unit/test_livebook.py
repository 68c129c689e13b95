"""The book kept from MEXC's depth diffs (proxy/ws/livebook.py): MEXC's sync procedure
(reference 9.3) step by step, gaps, and the depth a snapshot vouches for."""

from __future__ import annotations

from decimal import Decimal

from proxy.engine.model import Book
from proxy.ws.livebook import LiveBook
from proxy.ws.pbwire import DepthDiff

D = Decimal


def snap(version: int, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> Book:
    return Book(
        "BTCUSDT",
        tuple((D(p), D(q)) for p, q in bids),
        tuple((D(p), D(q)) for p, q in asks),
        str(version), seen_ms=1000, market_ms=900,
    )


def diff(v1: int, v2: int, bids: tuple = (), asks: tuple = ()) -> DepthDiff:
    return DepthDiff(asks=asks, bids=bids, from_version=v1, to_version=v2)


SNAP = snap(100, [("10", "1"), ("9", "2")], [("11", "1"), ("12", "2")])


def levels(book: Book) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    return ([(str(p), str(q)) for p, q in book.bids], [(str(p), str(q)) for p, q in book.asks])


def test_diffs_are_buffered_until_a_snapshot_and_those_it_holds_are_dropped() -> None:
    lb = LiveBook("BTCUSDT")
    assert lb.on_diff(diff(95, 99, bids=(("10", "5"),)), 1, 1) is False  # before the snapshot's id
    assert lb.on_diff(diff(100, 102, bids=(("9", "0"),)), 2, 2) is False  # straddles it: kept
    assert lb.on_diff(diff(103, 103, asks=(("11", "0.5"),)), 3, 3) is False
    assert not lb.synced
    assert lb.on_snapshot(SNAP, limit=100) == "synced"
    assert lb.synced and lb.version == 103
    assert levels(lb.book(10)) == ([("10", "1")], [("11", "0.5"), ("12", "2")])
    b = lb.book(10)
    # the diffs arrived before the snapshot's answer (our time 1000, MEXC's 900): MEXC's
    # time moves to what the last one says (3), translated to that later arrival
    assert b.incremental and b.version == "103" and (b.market_ms, b.seen_ms) == (1000, 1000)
    lb.on_diff(diff(104, 104), 1500, 1200)
    assert (lb.book(10).market_ms, lb.book(10).seen_ms) == (1500, 1200)


def test_a_snapshot_older_than_the_first_buffered_diff_is_stale() -> None:
    lb = LiveBook("BTCUSDT")
    lb.on_diff(diff(105, 106), 1, 1)
    assert lb.on_snapshot(SNAP, limit=100) == "stale"  # 101..104 are missing
    assert not lb.synced
    assert lb.on_snapshot(snap(104, [("10", "1")], [("11", "1")]), limit=100) == "synced"
    assert lb.version == 106


def test_after_the_snapshot_every_diff_must_follow_the_previous_one() -> None:
    lb = LiveBook("BTCUSDT")
    assert lb.on_snapshot(SNAP, limit=100) == "synced"
    assert lb.on_diff(diff(99, 100, bids=(("10", "7"),)), 5, 5) is False  # old news
    assert lb.on_diff(diff(98, 101, bids=(("10", "3"),)), 5, 5) is True  # first: may straddle
    assert lb.on_diff(diff(102, 104, bids=(("8", "1"),)), 6, 6) is True
    assert levels(lb.book(10))[0] == [("10", "3"), ("9", "2"), ("8", "1")]
    assert lb.on_diff(diff(106, 107), 7, 7) is False  # 105 is missing: a gap
    assert not lb.synced and lb.gaps == 1
    # the diff after the gap is kept for the next snapshot
    assert lb.on_snapshot(snap(105, [("10", "1")], [("11", "1")]), limit=100) == "synced"
    assert lb.version == 107


def test_a_zero_quantity_deletes_the_level_and_new_levels_sort_into_place() -> None:
    lb = LiveBook("BTCUSDT")
    lb.on_snapshot(SNAP, limit=100)
    lb.on_diff(diff(101, 101, bids=(("10", "0"), ("9.5", "4")), asks=(("11.5", "1"), ("11", "0"))), 1, 1)
    assert levels(lb.book(10)) == ([("9.5", "4"), ("9", "2")], [("11.5", "1"), ("12", "2")])
    assert levels(lb.book(1)) == ([("9.5", "4")], [("11.5", "1")])


def test_only_the_depth_the_snapshot_vouched_for_is_served() -> None:
    lb = LiveBook("BTCUSDT")
    # the snapshot filled its limit of 2 levels a side: nothing is known beyond 9 and 12
    lb.on_snapshot(SNAP, limit=2)
    lb.on_diff(diff(101, 101, bids=(("8", "5"),), asks=(("13", "5"),)), 1, 1)
    assert levels(lb.book(10)) == ([("10", "1"), ("9", "2")], [("11", "1"), ("12", "2")])
    assert not lb.needs_resync
    # the market moves past every known bid: a new snapshot is needed
    lb.on_diff(diff(102, 102, bids=(("10", "0"), ("9", "0"))), 2, 2)
    assert lb.needs_resync
    # a side the snapshot showed whole (fewer levels than asked) is known to any depth
    whole = LiveBook("BTCUSDT")
    whole.on_snapshot(SNAP, limit=100)
    whole.on_diff(diff(101, 101, bids=(("8", "5"),)), 1, 1)
    assert levels(whole.book(10))[0] == [("10", "1"), ("9", "2"), ("8", "5")]


def test_the_book_object_is_reused_until_the_next_change() -> None:
    lb = LiveBook("BTCUSDT")
    lb.on_snapshot(SNAP, limit=100)
    first = lb.book(10)
    assert lb.book(10) is first
    lb.on_diff(diff(101, 101, bids=(("10", "2"),)), 1, 1)
    assert lb.book(10) is not first and lb.book(10).version == "101"
