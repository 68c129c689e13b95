"""Loading cassettes onto the tape (issue 18): scripted ones validated with the line and
field of every mistake, recorded ones timed by `recorded_ms` or by their own data."""

from __future__ import annotations

import base64
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from proxy.engine.model import Trade
from proxy.tape.frames import make_frames
from proxy.tape.tape import TapeError, load_tape

ROOT = Path(__file__).resolve().parents[2]
DEALS = "spot@public.aggre.deals.v3.api.pb@100ms@ABCUSDT"
# one deal frame (our protobuf module): 0.25 at 12, a buyer took, printed at 1550
DEAL = make_frames(DEALS, [Trade(Decimal("12"), Decimal("0.25"), 1550, False)], [])[0].data  # type: ignore[index]

GOOD = """\
start_ms: 1000000
market:
  BTCUSDT:
    - at: 0
      book:
        bids: [["100.00", "1"]]
        asks: [["101.00", "2"]]
    - at: 5
      trade: {price: "101.00", qty: "0.5", taker: BUY}
"""


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def test_a_scripted_cassette_loads(tmp_path: Path) -> None:
    tape = load_tape(write(tmp_path, GOOD))
    assert (tape.kind, tape.start_ms, tape.end_ms) == ("scripted", 1_000_000, 1_000_005)
    assert [(s.t, len(s.trades), s.book is not None) for s in tape.steps] == [
        (1_000_000, 0, True),
        (1_000_005, 1, False),
    ]
    (trade,) = tape.steps[1].trades
    assert (trade.price, trade.qty, trade.is_buyer_maker) == (Decimal("101.00"), Decimal("0.5"), False)


@pytest.mark.parametrize(
    "change,line,field,words",
    [
        # money as a YAML number: it would be a float
        ('trade: {price: "101.00"', 9, "market.BTCUSDT[1].trade.price", "quoted decimal string"),
        ('qty: "0.5"', 9, "market.BTCUSDT[1].trade.qty", "quoted decimal string"),
        ("taker: BUY", 9, "market.BTCUSDT[1].trade.taker", "BUY or SELL"),
        ("at: 5", 8, "market.BTCUSDT[1].at", "must be an integer"),
        ('asks: [["101.00", "2"]]', 7, "market.BTCUSDT[0].book", "crossed"),
        ('bids: [["100.00", "1"]]', 6, "market.BTCUSDT[0].book.bids[1]", "strictly descending"),
        ("BTCUSDT:", 3, "market.DOGEUSDT", "no exchangeInfo"),
        ("start_ms: 1000000", 1, "start_ms", "must be an integer"),
        ("    - at: 5\n", 8, "market.BTCUSDT[1].at", "must not go back"),
        (
            'trade: {price: "101.00", qty: "0.5", taker: BUY}',
            9,
            "market.BTCUSDT[1].trade.size",
            "unknown key",
        ),
    ],
)
def test_a_malformed_script_names_the_line_and_the_field(
    tmp_path: Path, change: str, line: int, field: str, words: str
) -> None:
    bad = {
        'trade: {price: "101.00"': "trade: {price: 101.5",
        'qty: "0.5"': "qty: 0.5",
        "taker: BUY": "taker: maybe",
        "at: 5": "at: soon",
        'asks: [["101.00", "2"]]': 'asks: [["99.00", "2"]]',
        'bids: [["100.00", "1"]]': 'bids: [["100.00", "1"], ["100.50", "1"]]',
        "BTCUSDT:": "DOGEUSDT:",
        "start_ms: 1000000": 'start_ms: "soon"',
        "    - at: 5\n": '    - at: 5\n      trade: {price: "101.00", qty: "0.5", taker: BUY}\n    - at: 4\n',
        'trade: {price: "101.00", qty: "0.5", taker: BUY}':
            'trade: {price: "101.00", qty: "0.5", taker: BUY, size: 1}',
    }[change]
    text = GOOD.replace(change, bad, 1)
    if change == "    - at: 5\n":
        line = 10  # the third event, after the second one's two lines
        field = "market.BTCUSDT[2].at"
    path = write(tmp_path, text)
    with pytest.raises(TapeError) as err:
        load_tape(path)
    msg = str(err.value)
    assert msg.startswith(f"{path} line {line}: {field}: "), msg
    assert words in msg


def test_other_script_mistakes(tmp_path: Path) -> None:
    cases = {
        "market: {}\n": "market: lists no symbol",
        'market:\n  BTCUSDT:\n    - at: 0\n      trade: {price: "1", qty: "1", taker: SELL}\n':
            "needs at least one book",
        "market:\n  BTCUSDT:\n    - at: 0\n": "needs a book, a trade or trades",
        "start_ms: 1\nmarkets: {}\n": "neither a recorded cassette",
        "market:\n  BTCUSDT:\n    - {at: 0, book: {bids: [], asks: []}}\nextra: 1\n": "extra: unknown key",
        "exchange_info: nowhere.yaml\nmarket:\n  BTCUSDT:\n    - {at: 0, book: {bids: [], asks: []}}\n":
            "no such file",
        "market: [\n": "not valid YAML",
    }
    for text, words in cases.items():
        with pytest.raises(TapeError, match=words):
            load_tape(write(tmp_path, text))


def test_the_committed_examples_load() -> None:
    for name in ("scripted_gap_down.yaml", "scripted_queue.yaml"):
        tape = load_tape(ROOT / "cassettes" / name)
        assert tape.kind == "scripted" and tape.symbols == {"BTCUSDT"}


def _interaction(uri: str, body: str, recorded_ms: int | None = None) -> dict:
    it: dict = {
        "request": {"body": None, "headers": {}, "method": "GET", "uri": uri},
        "response": {
            "body": {"string": body},
            "headers": {"Content-Type": ["application/json"]},
            "status": {"code": 200, "message": "OK"},
        },
    }
    if recorded_ms is not None:
        it["recorded_ms"] = recorded_ms
    return it


def test_recorded_ms_times_answers_and_frames(tmp_path: Path) -> None:
    """The format `--record` writes: recorded_ms on every interaction, stream frames as
    list items; trades are fed at their own times, the first page's older ones are
    history; overlapping pages are one tape."""
    base = "https://api.mexc.com/api/v3"
    page1 = (
        '[{"id":null,"price":"10","qty":"1","time":900,"isBuyerMaker":true},'
        '{"id":null,"price":"10","qty":"2","time":1000,"isBuyerMaker":true}]'
    )
    page2 = (
        '[{"id":null,"price":"11","qty":"3","time":1500,"isBuyerMaker":false},'
        '{"id":null,"price":"10","qty":"2","time":1000,"isBuyerMaker":true}]'
    )
    items = [
        _interaction(f"{base}/trades?symbol=ABCUSDT&limit=100", page1, 1000),
        _interaction(
            f"{base}/depth?symbol=ABCUSDT&limit=100",
            '{"lastUpdateId":7,"bids":[["9","1"]],"asks":[["11","1"]],"timestamp":995}',
            1001,
        ),
        _interaction(f"{base}/trades?symbol=ABCUSDT&limit=100", page2, 2000),
        {"stream": {"channel": DEALS, "recorded_ms": 1600, "frame": base64.b64encode(DEAL).decode()}},
    ]
    path = tmp_path / "rec.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "interactions": items}), encoding="utf-8")
    tape = load_tape(path)
    assert (tape.kind, tape.start_ms, tape.end_ms) == ("recorded", 1000, 2000)
    assert [(s.t, [t.qty for t in s.trades], s.book and s.book.version) for s in tape.steps] == [
        (1000, [Decimal("2")], None),
        (1001, [], "7"),
        (1500, [Decimal("3")], None),
        (1550, [Decimal("0.25")], None),  # on no page: the stream is the complete tape
    ]
    book = tape.book_at("ABCUSDT", 5000)
    assert book is not None and (book.seen_ms, book.market_ms) == (1001, 995)
    (frame,) = tape.frames[DEALS]
    assert (frame.t, frame.data, frame.synthesised) == (1600, DEAL, False)
    assert tape.answer("GET", "/api/v3/trades", "symbol=ABCUSDT&limit=100", 1999).body == page1.encode()
    assert tape.answer("GET", "/api/v3/trades", "symbol=ABCUSDT&limit=1", 2000).body.count(b'"price"') == 1


def test_a_broken_recording_is_refused_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "rec.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "interactions": [
                    {
                        "stream": {
                            "channel": "spot@public.aggre.deals.v3.api.pb@100ms@ABCUSDT",
                            "frame": "eA==",
                        }
                    }
                ],
            }
        )
    )
    with pytest.raises(TapeError, match=r"interactions\[0\]: stream item without recorded_ms"):
        load_tape(path)
    item = {"stream": {"channel": DEALS, "recorded_ms": 5, "frame": "eA=="}}
    path.write_text(yaml.safe_dump({"version": 1, "interactions": [item]}))
    with pytest.raises(TapeError, match=f"the frame of {DEALS} recorded at 5: not a PushDataV3ApiWrapper"):
        load_tape(path)


def test_a_gzipped_cassette_loads_as_it_is(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "s.yaml.gz"
    path.write_bytes(gzip.compress(GOOD.encode()))
    assert load_tape(path).end_ms == 1_000_005
    (tmp_path / "bad.yaml.gz").write_bytes(b"not gzip")
    with pytest.raises(TapeError, match=r"bad\.yaml\.gz"):
        load_tape(tmp_path / "bad.yaml.gz")


def test_a_public_request_matches_without_the_auth_parameters_mexc_ignores() -> None:
    """pymexc signs klines and avgPrice: timestamp, recvWindow (and the signature, which
    the sidecar strips) do not make them another request."""
    tape = load_tape(ROOT / "cassettes" / "demo.yaml")
    plain = tape.answer("GET", "/api/v3/avgPrice", "symbol=BTCUSDT", tape.start_ms)
    signed = tape.answer("GET", "/api/v3/avgPrice", "symbol=BTCUSDT&timestamp=1&recvWindow=5", tape.start_ms)
    assert plain.status == 200 and signed.body == plain.body


def test_a_stream_recording_carries_the_same_market_as_a_rest_one(tmp_path: Path) -> None:
    """The same generated minute recorded both ways (bench/tape.py): over REST (depth and
    the trades page each second) and over the stream (one snapshot, then deal frames and
    depth diffs). Replayed, both feed the engine the same trades and the same books."""
    import sys

    sys.path.insert(0, str(ROOT))
    from bench.tape import generate, generate_stream

    rest_path, stream_path = tmp_path / "rest.yaml", tmp_path / "stream.yaml"
    generate(rest_path, trades=1_500, books=60, seed=7)
    generate_stream(stream_path, trades=1_500, books=60, seed=7)
    rest, stream = load_tape(rest_path), load_tape(stream_path)

    def fed(tape) -> list:
        return [(t.time_ms, t.price, t.qty, t.is_buyer_maker) for st in tape.steps for t in st.trades]

    # every trade once (overlapping REST pages, or deal frames), in the same order
    assert rest.start_ms == stream.start_ms
    assert len(fed(stream)) == 1_500 and fed(rest) == fed(stream)
    for second in range(1, 60):
        t = rest.start_ms + second * 1000 + 500
        a, b = rest.book_at("BTCUSDT", t), stream.book_at("BTCUSDT", t)
        assert a is not None and b is not None
        assert (a.bids, a.asks, a.version) == (b.bids, b.asks, b.version), second
