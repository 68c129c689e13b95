"""Replay on the tape's clock (issue 18): one recorded hour replayed in step mode to its
end with resting paper orders, what such a cassette costs on disk, and the pytest
fixture's start-up and teardown.

The hour is generated for the benchmark in the format `--record` writes (vcrpy's YAML
plus `recorded_ms`, one item per answer, written by `yaml.safe_dump` as RecordingTransport
does): BTCUSDT's depth (20 levels a side) once a second, and its trades page (the newest
100 trades, `paper.trades_limit`) once a second, as the REST-polling market watcher records
them. A random walk around 87000 prints `trades` trades over the hour.
"""

from __future__ import annotations

import asyncio
import base64
import random
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiohttp import ClientSession, web

from bench.procs import ROOT
from proxy import keys
from proxy.clock import SystemClock
from proxy.config import AccountSettings, PaperSettings, Settings, StorageSettings, UpstreamSettings
from proxy.tape.tape import load_tape
from proxy.testing import MexcPaper

START = 1_767_225_600_000
SYMBOL = "BTCUSDT"
BASE = "https://api.mexc.com/api/v3"
KEY, SECRET = "bench-tape-key", "bench-tape-secret"


def _item(uri: str, body: bytes, recorded_ms: int) -> dict[str, Any]:
    return {
        "recorded_ms": recorded_ms,
        "request": {"body": None, "headers": {}, "method": "GET", "uri": uri},
        "response": {"body": {"string": body.decode()}, "headers": {"Content-Type": ["application/json"]},
                     "status": {"code": 200, "message": ""}},
    }


Tape = list[tuple[int, int, str, bool]]


def _market(trades: int, books: int, seed: int) -> tuple[Tape, list[dict[str, Any]]]:
    """The hour: (time, price in cents, qty, isBuyerMaker) per trade, oldest first, and one
    20-level depth answer per second around the last price."""
    rng = random.Random(seed)
    span = books * 1000
    times = sorted(rng.randrange(START, START + span) for _ in range(trades))
    price = 8_700_000  # cents
    tape: list[tuple[int, int, str, bool]] = []
    for t in times:
        price += rng.choice((-1, 0, 0, 1)) * rng.randrange(1, 30)
        qty = rng.randrange(1, 50_000_000)
        tape.append((t, price, f"{qty / 1e8:.8f}", rng.random() < 0.5))
    depths = []
    n = 0
    for second in range(books):
        now = START + second * 1000 + 999
        while n < len(tape) and tape[n][0] <= now:
            n += 1
        mid = tape[n - 1][1] if n else price
        depths.append({
            "asks": [[f"{(mid + 1 + 5 * k) / 100:.2f}", f"{rng.randrange(1, 300_000_000) / 1e8:.8f}"]
                     for k in range(20)],
            "bids": [[f"{(mid - 5 * k) / 100:.2f}", f"{rng.randrange(1, 300_000_000) / 1e8:.8f}"]
                     for k in range(20)],
            "lastUpdateId": 56_000_000_000 + second * 97, "timestamp": now - 30,
        })
    return tape, depths


def _info_item() -> dict[str, Any]:
    info = (ROOT / "proxy" / "tape" / "exchange_info.json").read_text()
    return _item(f"{BASE}/exchangeInfo", orjson.dumps(orjson.loads(info)), START)


def generate(path: Path, trades: int = 100_000, books: int = 3_600, seed: int = 18) -> dict[str, float]:
    """Write the hour as the REST-polling watcher records it (depth and the trades page
    once a second); returns its size and what it holds."""
    tape, depths = _market(trades, books, seed)
    t0 = time.perf_counter()
    n = 0
    with path.open("w", encoding="utf-8") as f:
        f.write("version: 1\ninteractions:\n")
        for second, depth in enumerate(depths):
            now = START + second * 1000 + 999
            # the newest 100 trades printed up to now, newest first
            while n < len(tape) and tape[n][0] <= now:
                n += 1
            page = [
                {"id": None, "isBestMatch": True, "isBuyerMaker": bm, "price": f"{p / 100:.2f}", "qty": q,
                 "quoteQty": format(Decimal(p) / 100 * Decimal(q), "f"), "time": t,
                 "tradeType": "ASK" if bm else "BID"}
                for t, p, q, bm in reversed(tape[max(0, n - 100):n])
            ]
            items = [
                _item(f"{BASE}/depth?symbol={SYMBOL}&limit=100", orjson.dumps(depth), now - 20),
                _item(f"{BASE}/trades?symbol={SYMBOL}&limit=100", orjson.dumps(page), now),
            ]
            f.write(yaml.safe_dump(items, sort_keys=True, allow_unicode=True, width=1_000_000))
        f.write(yaml.safe_dump([_info_item()], sort_keys=True, width=1_000_000))
    return {"bytes": path.stat().st_size, "seconds": books, "trades": trades, "books": books,
            "write_s": time.perf_counter() - t0}


def generate_stream(
    path: Path, trades: int = 100_000, books: int = 3_600, seed: int = 18
) -> dict[str, float]:
    """The same hour as the market stream records it (the relay's format): one REST depth
    snapshot, then every trade in aggregated-deals frames (100 ms windows) and every book
    change as an aggregated-depth diff frame; returns its size."""
    from proxy.engine.model import Book, Trade
    from proxy.parsers import parse_depth
    from proxy.tape.frames import make_frames

    tape, depths = _market(trades, books, seed)
    trs = [Trade(Decimal(p) / 100, Decimal(q), t, bm) for t, p, q, bm in tape]
    bks: list[tuple[int, Book]] = []
    for i, d in enumerate(depths):
        t = START + i * 1000 + 999
        bks.append((t, parse_depth(SYMBOL, d, t)))
    frames = make_frames(f"spot@public.aggre.deals.v3.api.pb@100ms@{SYMBOL}", trs, bks) or []
    frames += make_frames(f"spot@public.aggre.depth.v3.api.pb@100ms@{SYMBOL}", trs, bks) or []
    frames.sort(key=lambda fr: fr.t)
    t0 = time.perf_counter()
    with path.open("w", encoding="utf-8") as f:
        f.write("version: 1\ninteractions:\n")
        f.write(yaml.safe_dump([_info_item(), _item(f"{BASE}/depth?symbol={SYMBOL}&limit=100",
                                                     orjson.dumps(depths[0]), START + 999)],
                               sort_keys=True, width=1_000_000))
        for i in range(0, len(frames), 1000):
            items = [{"stream": {"channel": fr.channel, "recorded_ms": fr.t + 15,
                                 "frame": base64.b64encode(fr.data).decode("ascii")}}
                     for fr in frames[i:i + 1000]]
            f.write(yaml.safe_dump(items, sort_keys=False, allow_unicode=True, width=1_000_000))
    return {"bytes": path.stat().st_size, "seconds": books, "frames": len(frames),
            "write_s": time.perf_counter() - t0}


def _settings(tmp: Path, cassette: Path) -> Settings:
    return Settings(
        upstream=UpstreamSettings(replay_path=str(cassette), replay_mode="step"),
        storage=StorageSettings(path=str(tmp / "tape.sqlite3"), synchronous="NORMAL"),
        accounts=(AccountSettings(KEY, SECRET, {"USDT": Decimal("100000000"), "BTC": Decimal("1000")}),),
        paper=PaperSettings(poll_interval_s=3600, enforce_percent_price=False),
    )


def replay_hour(cassette: Path, tmp: Path, orders: int = 100) -> dict[str, float]:
    """Load the cassette, rest `orders` LIMIT orders (half buys below the start, half sells
    above, 2 USDT apart), then move the stepped tape to its end in one call."""
    from mexc_client import ccxt_query  # tests/ is on sys.path via bench.inproc

    from proxy.app import create_app

    t0 = time.perf_counter()
    tape = load_tape(cassette)
    load_s = time.perf_counter() - t0

    async def go() -> dict[str, float]:
        app = create_app(_settings(tmp, cassette), clock=SystemClock(), tape=tape)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        book = tape.book_at(SYMBOL, tape.start_ms)
        assert book is not None
        mid = (book.bids[0][0] + book.asks[0][0]) / 2
        try:
            async with ClientSession() as s:
                for i in range(orders):
                    side = "BUY" if i % 2 == 0 else "SELL"
                    offset = Decimal(2 * (i // 2 + 1))
                    price = mid - offset if side == "BUY" else mid + offset
                    q = ccxt_query({"symbol": SYMBOL, "side": side, "type": "LIMIT", "quantity": "0.01",
                                    "price": format(price.quantize(Decimal("0.01")), "f")}, SECRET)
                    async with s.post(f"http://127.0.0.1:{port}/api/v3/order?{q}",
                                      headers={"X-MEXC-APIKEY": KEY}) as r:
                        assert r.status == 200, await r.text()
                t1 = time.perf_counter()
                clock = f"http://127.0.0.1:{port}/admin/api/clock"
                async with s.post(clock, json={"to_ms": tape.end_ms}) as r:
                    moved = await r.json()
                    assert r.status == 200, moved
                replay_s = time.perf_counter() - t1
            open_left = len(app[keys.SERVICE].open_orders(1))
        finally:
            await runner.cleanup()
        p = moved["passed"]
        return {"replay_s": replay_s, "steps": p["steps"], "trades": p["trades"], "books": p["books"],
                "fills": p["fills"], "open_left": open_left}

    out = asyncio.run(go())
    out["load_s"] = load_s
    return out


def fixture_times(cassette: Path, n: int = 5) -> tuple[list[float], list[float]]:
    """`MexcPaper` (the mexc_paper fixture's sidecar) start-up and teardown, n times."""
    starts, stops = [], []
    for _ in range(n):
        paper = MexcPaper(cassette)
        t0 = time.perf_counter()
        paper.start()
        t1 = time.perf_counter()
        paper.stop()
        t2 = time.perf_counter()
        starts.append(t1 - t0)
        stops.append(t2 - t1)
    return starts, stops
