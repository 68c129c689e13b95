"""The replayed market stream (issue 16, replay side): the demo's synthesised frames decode
with ccxt's bundled MEXC classes (an encoder independent of ours) and say what was
recorded; a scripted cassette's channels are made from its market; unmodified ccxt.pro
on the fixture's /ws gets trades and a synced order book as the stepped tape moves."""

from __future__ import annotations

import asyncio
import base64
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from ccxt.protobuf.mexc import PushDataV3ApiWrapper_pb2 as ccxt_pb
from google.protobuf.json_format import MessageToDict

from proxy.tape.tape import load_tape
from proxy.testing import MexcPaper

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "cassettes" / "demo.yaml"
GAP = ROOT / "cassettes" / "scripted_gap_down.yaml"
START = 1_767_225_600_000


def decode(frame: bytes) -> dict[str, Any]:
    msg = ccxt_pb.PushDataV3ApiWrapper()
    msg.ParseFromString(frame)
    return MessageToDict(msg)


def test_the_demo_stream_is_labelled_and_decodes_to_the_recorded_market() -> None:
    items = yaml.safe_load(DEMO.read_text())["interactions"]
    streams = [it["stream"] for it in items if "stream" in it]
    assert streams and all(s["synthesised"] is True for s in streams)
    assert "stream items: NOT recordings" in DEMO.read_text().split("version: 1")[0]
    tape = load_tape(DEMO)
    fed = [tr for st in tape.steps if st.symbol == "BTCUSDT" for tr in st.trades]
    deals: list[tuple[str, str, int, int]] = []
    depth_versions = []
    for s in streams:
        data = decode(base64.b64decode(s["frame"]))
        assert data["channel"] == s["channel"] and int(data["sendTime"]) == s["recorded_ms"]
        if s["channel"] == "spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT":
            body = data["publicAggreDeals"]
            assert body["eventType"] == "spot@public.aggre.deals.v3.api.pb@100ms"
            deals += [(d["price"], d["quantity"], d["tradeType"], int(d["time"])) for d in body["deals"]]
        if s["channel"] == "spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT":
            depth_versions.append(
                (data["publicAggreDepths"]["fromVersion"], data["publicAggreDepths"]["toVersion"])
            )
    # every recorded trade on the tape, once, as MEXC streams it (tradeType 1: the buyer took)
    assert deals == [
        (format(t.price, "f"), format(t.qty, "f"), 2 if t.is_buyer_maker else 1, t.time_ms) for t in fed
    ]
    # the diff between the two recorded books, contiguous with the REST lastUpdateIds
    assert depth_versions == [("56217769553", "56222810347")]


async def test_scripted_channels_are_made_from_the_script(aiohttp_client: Any, tmp_path: Path) -> None:
    from test_tape import START as GAP_START
    from test_tape import start, tape_settings

    from proxy import keys

    bot = await start(aiohttp_client, tape_settings(tmp_path, GAP))
    channels = bot.app[keys.PUBLIC_CHANNELS]
    got: list[dict[str, Any]] = []
    for ch in (
        "spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT",
        "spot@public.limit.depth.v3.api.pb@BTCUSDT@5",
    ):
        assert await channels.subscribe(ch, lambda f: got.append(decode(f))) is True
    assert await channels.subscribe("spot@public.miniTickers.v3.api.pb@UTC+8", got.append) is False
    moved = await bot.advance(to_ms=GAP_START + 10_000)
    # deals at +1, +2.5, +5 and +10 s; books at +2.5 and +10 s (the one at +0 is before
    # the subscriptions: the tape's position when they came)
    assert moved["passed"]["frames"] == 6
    kinds = [(int(d["sendTime"]) - GAP_START, next(k for k in d if k.startswith("public"))) for d in got]
    assert kinds == [
        (1000, "publicAggreDeals"),
        (2500, "publicAggreDeals"),
        (2500, "publicLimitDepths"),
        (5000, "publicAggreDeals"),
        (10_000, "publicAggreDeals"),
        (10_000, "publicLimitDepths"),
    ]
    sweep = [d for d in got if int(d["sendTime"]) == GAP_START + 10_000 and "publicAggreDeals" in d]
    assert [x["price"] for x in sweep[0]["publicAggreDeals"]["deals"]] == ["86999.00", "86990.00", "85260.00"]


@pytest.fixture
def quiet_ccxt() -> Any:
    """ccxt logs its requests (key header, signatures) at DEBUG: the bot's logs, not the
    sidecar's, kept out of the suite's no-secrets check."""
    logger = logging.getLogger("ccxt")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


def test_ccxt_pro_watches_the_stepped_tape_through_the_fixture(quiet_ccxt: Any) -> None:
    """Unmodified ccxt.pro pointed at the fixture's /ws: trades pushed when the tape passes
    them, and an order book synced from the REST snapshot plus the depth diffs
    (fromVersion/toVersion contiguous with lastUpdateId).

    ccxt resolves a watch only while one is pending, so every move waits on one: a watch
    that was pending when its subscription reached the sidecar (`wait_subscriptions`), and
    frames at one tape time go out in channel-name order (aggre.deals, aggre.depth, kline):
    once a later channel's watch resolved, the earlier channels' frames are in ccxt's caches."""
    import ccxt.pro as ccxtpro

    async def scenario(paper: MexcPaper) -> None:
        ex = ccxtpro.mexc(
            {
                "apiKey": paper.api_key,
                "secret": paper.secret_key,
                "urls": paper.ccxt_urls(),
                # ccxt waits for 25 depth pushes before it fetches the snapshot to sync with;
                # this short market has three books
                "options": {"watchOrderBook": {"snapshotDelay": 0}},
            }
        )
        ex.urls["api"]["ws"] = {"spot": paper.ws_url, "swap": paper.ws_url}
        try:
            await ex.load_markets()
            trades_task = asyncio.ensure_future(ex.watch_trades("BTC/USDT"))
            book_task = asyncio.ensure_future(ex.watch_order_book("BTC/USDT"))
            await paper.wait_subscriptions_async(2)
            await paper.advance_async(to_ms=START + 1000)  # one trade, no book
            trades = await asyncio.wait_for(trades_task, 10)
            assert [(t["price"], t["amount"], t["side"], t["timestamp"]) for t in trades] == [
                (87001.0, 0.05, "buy", START + 1000)
            ]
            await paper.advance_async(to_ms=START + 2500)  # a trade and the book without 87000
            book = await asyncio.wait_for(book_task, 10)
            assert (book["bids"][0], book["asks"][0], book["nonce"]) == ([86999.0, 1.5], [87001.0, 0.75], 2)
            assert (ex.trades["BTC/USDT"][-1]["price"], ex.trades["BTC/USDT"][-1]["side"]) == (
                87000.0,
                "sell",
            )
            await paper.advance_async(to_ms=START + 9999)
            candle_task = asyncio.ensure_future(ex.watch_ohlcv("BTC/USDT", "1m"))
            await paper.wait_subscriptions_async(3)
            await paper.advance_async(to_ms=START + 10_000)  # the gap
            await asyncio.wait_for(candle_task, 10)
            book = ex.orderbooks["BTC/USDT"]
            assert (book["bids"][0], book["asks"][0]) == ([85250.0, 0.5], [85300.0, 0.6])
            assert [t["price"] for t in ex.trades["BTC/USDT"]][-3:] == [86999.0, 86990.0, 85260.0]
        finally:
            await ex.close()

    with MexcPaper(GAP) as paper:
        asyncio.run(scenario(paper))
        assert paper.clock()["tape_ms"] == START + 10_000
