"""The market-stream benchmarks (issue 16): the relay's added latency, fan-out to many local
WebSocket clients, and what watched symbols cost in REST requests once the stream feeds them.

The sidecar runs as a subprocess (`python -m proxy`) with `upstream.base_url` and
`upstream.ws_url` pointed at fakes that run in this process, in the same event loop as the
local clients (tests/fake_upstream.py for REST, tests/fake_stream.py for the WebSocket,
pushing frames encoded with ccxt's MEXC classes). One loop and one thread: the time a frame
is sent and the time a client receives it are read from the same clock, with no thread
switch in between.

- latency: two clients in this process, one subscribed straight to the fake, one through
  the sidecar's /ws; the fake pushes one deals frame at a time to both (its send time,
  perf_counter_ns, written into the deal's `time` field) and waits for both to have it.
  Each frame's added latency is its time through the sidecar minus its time straight
  from the fake, the same frame and send time both ways; its p50 and p99 are the relay's
  added latency (not a difference of two percentiles). The fake writes the frame to the
  sidecar's upstream connection first (it subscribed first), so the direct client's time
  includes one extra socket write (microseconds): the added latency is understated by
  that much at most.
- fan-out: `fanout_clients` local clients subscribe one channel through the sidecar (one
  upstream subscription); the fake pushes `fanout_rate` frames/s for `fanout_s` seconds;
  every client must receive every frame. The sidecar's CPU time over the run, per 1,000
  frames delivered (frames x clients).
- watched symbols: one resting order on each of `symbols` symbols; once every symbol's
  trades and book come from the stream, the fake counts every REST request the sidecar
  makes, whatever its path, while it pushes a depth diff and a deal per symbol every
  100 ms: those for a watched symbol (any path: depth, trades, a ticker...) must be none;
  the rest (for all symbols, like the valuation's all-symbols ticker/price, or for
  another symbol) are reported by path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.procs import KEY, ROOT, SECRET, Sidecar, sidecar_config
from bench.util import cpu_s

sys.path.insert(0, str(ROOT / "tests"))

from fake_stream import FakeMexcStream
from fake_upstream import FakeMexc
from mexc_client import ccxt_query

from proxy.ws.pbwire import decode_aggre_deals, decode_push

CHANNEL = "spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT"


@dataclass
class Figures:
    via_ms: list[float] = field(default_factory=list)
    direct_ms: list[float] = field(default_factory=list)
    added_ms: list[float] = field(default_factory=list)  # per frame: via - direct
    fanout_frames: int = 0
    fanout_clients: int = 0
    fanout_delivered: int = 0
    fanout_expected: int = 0
    fanout_cpu_s: float = 0.0
    fanout_upstream_subscriptions: int = 0
    symbols: int = 0
    steady_s: float = 0.0
    steady_rest: dict[str, int] = field(default_factory=dict)  # by path (+ symbol)
    steady_watched: int = 0  # requests for a watched symbol, any path
    init_rest: dict[str, int] = field(default_factory=dict)
    sync_s: float = 0.0


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


class Fakes:
    """REST and WebSocket fakes of MEXC on 127.0.0.1, in this loop."""

    def __init__(self) -> None:
        self.rest = FakeMexc(lambda: time.time_ns() // 1_000_000)
        self.ws = FakeMexcStream(self.rest)
        self._runners: list[web.AppRunner] = []
        self.rest_url = self.ws_url = ""

    async def start(self) -> None:
        for app, attr in ((self.rest.app(), "rest_url"), (self.ws.app(), "ws_url")):
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._runners.append(runner)
            setattr(self, attr, f"http://127.0.0.1:{port}" if attr == "rest_url" else f"ws://127.0.0.1:{port}/ws")

    async def stop(self) -> None:
        for r in self._runners:
            await r.cleanup()


def timed_frame(fakes: Fakes, seq: int) -> bytes:
    """A deals frame whose deal time is the send time (ns), read back by the receiver."""
    return fakes.ws.deals_frame("BTCUSDT", [("87900.01", str(seq), 1, time.perf_counter_ns())])


def sent_ns(frame: bytes) -> int:
    return decode_aggre_deals(decode_push(frame).body)[0].time_ms


async def subscribe(
    session: aiohttp.ClientSession, url: str, channel: str
) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(url, max_msg_size=0)
    await ws.send_str(json.dumps({"method": "SUBSCRIPTION", "params": [channel], "id": 1}))
    while True:
        msg = await ws.receive(timeout=10)
        if msg.type is aiohttp.WSMsgType.TEXT and channel in msg.data:
            if "Not Subscribed" in msg.data:
                raise RuntimeError(f"subscription refused: {msg.data}")
            return ws
        if msg.type is not aiohttp.WSMsgType.TEXT:
            raise RuntimeError(f"unexpected {msg.type} before the subscription ack")


async def serves_ws(url: str) -> bool:
    """Whether the sidecar serves GET /ws (the latency and fan-out figures need it)."""
    async with aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(url)
        except aiohttp.WSServerHandshakeError:
            return False
        await ws.close()
        return True


async def paired_latency(
    fakes: Fakes, via_url: str, n: int, gap_s: float
) -> tuple[list[float], list[float], list[float]]:
    """ms from the fake's send to each client's receive, for the same frames: (through the
    sidecar, straight from the fake, the difference per frame). One frame in flight."""
    via: list[float] = []
    direct: list[float] = []
    got: dict[str, dict[int, float]] = {"via": {}, "direct": {}}
    arrived = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        through = await subscribe(session, via_url, CHANNEL)
        await fakes.ws.wait_for(lambda: fakes.ws.subscribers(CHANNEL) >= 1)
        straight = await subscribe(session, fakes.ws_url, CHANNEL)
        await fakes.ws.wait_for(lambda: fakes.ws.subscribers(CHANNEL) >= 2)

        async def read(name: str, ws: aiohttp.ClientWebSocketResponse) -> None:
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.BINARY:
                    t = time.perf_counter_ns()
                    deal = decode_aggre_deals(decode_push(msg.data).body)[0]
                    got[name][int(deal.quantity)] = (t - deal.time_ms) / 1e6
                    arrived.set()

        readers = [asyncio.create_task(read("via", through)), asyncio.create_task(read("direct", straight))]
        try:
            for i in range(n):
                await fakes.ws.push(CHANNEL, timed_frame(fakes, i))
                async with asyncio.timeout(10):
                    while i not in got["via"] or i not in got["direct"]:
                        arrived.clear()
                        await arrived.wait()
                await asyncio.sleep(gap_s)
        finally:
            for t in readers:
                t.cancel()
            await through.close()
            await straight.close()
    via = [got["via"][i] for i in range(n)]
    direct = [got["direct"][i] for i in range(n)]
    return via, direct, [v - d for v, d in zip(via, direct, strict=True)]


async def fanout(
    fakes: Fakes, url: str, clients: int, rate: int, seconds: float, pid: int, f: Figures
) -> None:
    counts = [0] * clients
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        sockets = []
        for _ in range(clients):
            sockets.append(await subscribe(session, url, CHANNEL))
        f.fanout_upstream_subscriptions = fakes.ws.subscribers(CHANNEL)
        frames = int(rate * seconds)

        async def reader(i: int, ws: aiohttp.ClientWebSocketResponse) -> None:
            while counts[i] < frames:
                msg = await ws.receive()
                if msg.type is aiohttp.WSMsgType.BINARY:
                    counts[i] += 1
                elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    return

        readers = [asyncio.create_task(reader(i, ws)) for i, ws in enumerate(sockets)]
        cpu0 = cpu_s(pid)
        t0 = time.perf_counter()
        for k in range(frames):
            await fakes.ws.push(CHANNEL, timed_frame(fakes, k))
            delay = t0 + (k + 1) / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*readers), timeout=30)
        f.fanout_cpu_s = cpu_s(pid) - cpu0
        for t in readers:
            t.cancel()
        for ws in sockets:
            await ws.close()
    f.fanout_frames, f.fanout_clients = frames, clients
    f.fanout_delivered, f.fanout_expected = sum(counts), frames * clients


async def watched(fakes: Fakes, base: str, symbols: int, seconds: float, f: Figures) -> None:
    rest, ws = fakes.rest, fakes.ws
    names = []
    for i in range(symbols):
        name = f"W{i:03d}USDT"
        rest.add_symbol(f"W{i:03d}")
        rest.set_book(name, bids=[("100.00", "5"), ("99.00", "5")], asks=[("101.00", "5"), ("102.00", "5")])
        rest.trades[name] = []
        names.append(name)
    async with aiohttp.ClientSession() as session:
        mark = len(rest.seen)
        t0 = time.perf_counter()
        for name in names:
            order = {"symbol": name, "side": "BUY", "type": "LIMIT", "quantity": "1", "price": "90"}
            q = ccxt_query(order, SECRET)
            async with session.post(f"{base}/api/v3/order?{q}", headers={"X-MEXC-APIKEY": KEY}) as r:
                if r.status != 200:
                    raise RuntimeError(f"order on {name}: {r.status} {await r.text()}")
        # every symbol on the stream (the watcher subscribes on its next cycle)
        deadline = time.perf_counter() + 60
        while True:
            async with session.get(f"{base}/healthz") as r:
                health = await r.json()
            sources = health.get("stream", {}).get("symbols", {})
            if len(sources) == symbols and all(s["source"] == "stream" for s in sources.values()):
                break
            if time.perf_counter() > deadline:
                raise RuntimeError(f"symbols not all on the stream after 60 s: {sources}")
            await asyncio.sleep(0.1)
        f.sync_s = time.perf_counter() - t0
        f.init_rest = _by_path(rest.seen[mark:])[0]
        mark = len(rest.seen)
        t1 = time.perf_counter()
        k = 0
        while time.perf_counter() - t1 < seconds:
            k += 1
            now = time.time_ns() // 1_000_000
            for name in names:
                await ws.push_depth(name, bids=[("99.00", str(5 + k % 3))])
                await ws.push_deals(name, [("101.00", "0.01", 1, now)])
            await asyncio.sleep(0.1)
        f.steady_s = time.perf_counter() - t1
        f.steady_rest, f.steady_watched = _by_path(rest.seen[mark:], set(names))
        f.symbols = symbols


def _by_path(seen: list[Any], watched: set[str] | None = None) -> tuple[dict[str, int], int]:
    """Requests by path (with `?symbol=X` when they name one), and how many were for a
    symbol of `watched`."""
    out: dict[str, int] = {}
    for_watched = 0
    for s in seen:
        symbol = next((p.split("=", 1)[1] for p in s.query.split("&") if p.startswith("symbol=")), None)
        key = s.path if symbol is None else f"{s.path}?symbol={symbol}"
        out[key] = out.get(key, 0) + 1
        for_watched += watched is not None and symbol in watched
    return out, for_watched


async def run_all(
    workdir: Path, *, latency_n: int, fanout_clients: int, fanout_rate: int, fanout_s: float,
    symbols: int, steady_s: float,
) -> Figures:
    f = Figures()
    fakes = Fakes()
    await fakes.start()
    try:
        cfg = sidecar_config(workdir, 0, ws_url=fakes.ws_url)
        text = cfg.read_text().replace("http://127.0.0.1:0", fakes.rest_url)
        cfg.write_text(text)
        loop = asyncio.get_running_loop()
        sidecar = await loop.run_in_executor(None, Sidecar, cfg, workdir)
        try:
            url = f"ws://127.0.0.1:{sidecar.port}/ws"
            if await serves_ws(url):
                await paired_latency(fakes, url, 20, 0.002)  # warm-up
                await fakes.ws.wait_for(lambda: fakes.ws.subscribers(CHANNEL) == 0)
                f.via_ms, f.direct_ms, f.added_ms = await paired_latency(fakes, url, latency_n, 0.002)
                await fakes.ws.wait_for(lambda: fakes.ws.subscribers(CHANNEL) == 0)
                await fanout(fakes, url, fanout_clients, fanout_rate, fanout_s, sidecar.pid, f)
            await watched(fakes, f"http://127.0.0.1:{sidecar.port}", symbols, steady_s, f)
        finally:
            await loop.run_in_executor(None, sidecar.stop)
    finally:
        await fakes.stop()
    return f


def summary(f: Figures) -> dict[str, float]:
    """The figures; those of /ws are NaN (n/a) when the sidecar does not serve it."""
    nan = float("nan")
    med = statistics.median
    ws = bool(f.via_ms)
    steady = f.steady_s or nan
    other = sum(f.steady_rest.values()) - f.steady_watched
    return {
        "via_p50": med(f.via_ms) if ws else nan,
        "via_p99": pct(f.via_ms, 0.99),
        "direct_p50": med(f.direct_ms) if ws else nan,
        "direct_p99": pct(f.direct_ms, 0.99),
        "added_p50": pct(f.added_ms, 0.5),  # of the per-frame differences
        "added_p99": pct(f.added_ms, 0.99),
        "p99_difference": pct(f.via_ms, 0.99) - pct(f.direct_ms, 0.99),
        "delivered_pct": 100 * f.fanout_delivered / f.fanout_expected if f.fanout_expected else nan,
        "cpu_ms_per_1000": 1e6 * f.fanout_cpu_s / f.fanout_delivered if f.fanout_delivered else nan,
        "upstream_subs": float(f.fanout_upstream_subscriptions) if ws else nan,
        "watched_rest_per_s": f.steady_watched / steady,
        "other_rest_per_s": other / steady,
        "all_rest_per_s": sum(f.steady_rest.values()) / steady,
        "init_rest_per_symbol": sum(f.init_rest.values()) / max(1, f.symbols),
        "sync_s": f.sync_s,
    }
