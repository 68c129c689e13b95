"""How the upstream client tells a JSON answer from a truncated or HTML "success"."""

from __future__ import annotations

import orjson
import pytest

from proxy.upstream import _PARSE_TO_CHECK, _is_json

SMALL = orjson.dumps({"symbol": "BTCUSDT", "price": "87900.00"})
LARGE = orjson.dumps({"symbols": [{"symbol": f"S{i}USDT", "status": "1"} for i in range(5000)]})


def test_the_large_body_is_above_the_parse_limit() -> None:
    assert len(SMALL) < _PARSE_TO_CHECK < len(LARGE)


@pytest.mark.parametrize(
    "body", [SMALL, LARGE, b" \n" + LARGE + b"\n", b"[]", orjson.dumps([SMALL.decode()])]
)
def test_json_bodies_pass(body: bytes) -> None:
    assert _is_json(body)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        SMALL[:-1],  # truncated
        SMALL[:10] + b"}",  # truncated, then a bracket: a small body is parsed
        LARGE[: len(LARGE) // 2],  # truncated mid-way
        b"<html><body>" + b"x" * _PARSE_TO_CHECK + b"</body></html>",
        b"{" + b" " * _PARSE_TO_CHECK,  # opened, never closed
    ],
)
def test_bodies_that_are_not_json_fail(body: bytes) -> None:
    assert not _is_json(body)


def test_depth_keeps_mexcs_timestamp_as_the_books_market_time() -> None:
    from proxy.parsers import parse_depth

    data = {"lastUpdateId": 7, "bids": [], "asks": [], "timestamp": 1767205854814}
    stamped = parse_depth("BTCUSDT", data, 99)
    assert (stamped.version, stamped.seen_ms, stamped.market_ms) == ("7", 99, 1767205854814)
    bare = parse_depth("BTCUSDT", {"lastUpdateId": 7, "bids": [], "asks": []}, 99)
    assert bare.market_ms is None
