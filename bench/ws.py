"""User-data streams (`/ws`, issue 15): from an order's REST acknowledgement to its push,
the memory of idle streams, and what a reader that stops reading costs the order path.

The sidecar runs as in the other benchmarks (its own process, persistence FULL), with
`accounts` bench accounts (account i: key `mx0vglbenchws<i>`), the websocket idle timeout
off (a stream here may stay quiet longer than MEXC's 60 s), `server.max_connections`
4096 (each stream is an open connection) and the market watcher as configured. This
process is the client: REST orders on raw keep-alive connections (bench/loadgen.py),
streams with aiohttp's WebSocket client, frames decoded with the sidecar's own protobuf
classes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import yaml

from bench.loadgen import RunResult, closed_loop, connect, request_bytes
from bench.procs import KEY, SECRET, sidecar_config
from bench.requests import FIRST_CENTS, SPAN_CENTS, ccxt_query, resting_limit_orders
from proxy import jsonutil
from proxy.ws import mexc_push_pb2 as pb

PRIVATE = ["spot@private.account.v3.api.pb", "spot@private.deals.v3.api.pb", "spot@private.orders.v3.api.pb"]


def account(i: int) -> tuple[str, str]:
    """Account i's (key, secret); account 0 is the bench's usual one."""
    return (KEY, SECRET) if i == 0 else (f"mx0vglbenchws{i:04d}", f"bench-ws-secret-{i}")


def ws_config(workdir: Path, upstream_port: int, accounts: int) -> Path:
    path = sidecar_config(workdir, upstream_port)
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    rich = cfg["accounts"][0]["balances"]
    cfg["accounts"] = [
        {"api_key": k, "secret_key": s, "name": f"ws{i}", "balances": rich}
        for i in range(accounts) for k, s in [account(i)]
    ]
    cfg["websocket"] = {"idle_timeout_s": 0}
    # every stream is an open connection: 1,000 of them need more than the default 512
    cfg["server"]["max_connections"] = 4096
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def limit_orders(host: str, key: str, secret: str, offset: int = 0) -> Callable[[], bytes]:
    """Resting BUY LIMITs of account (key, secret), as bench/requests.py builds them."""
    headers = {"X-MEXC-APIKEY": key, "Content-Type": "application/json"}
    n = offset

    def build() -> bytes:
        nonlocal n
        cents = FIRST_CENTS - n % SPAN_CENTS
        n += 1
        q = ccxt_query({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.0001",
                        "price": f"{cents // 100}.{cents % 100:02d}"}, secret)
        return request_bytes("POST", f"/api/v3/order?{q}", host, headers)

    return build


def session_for_streams(timeout_s: float) -> aiohttp.ClientSession:
    """No connection limit: every open WebSocket holds one of the session's connections
    (aiohttp's default of 100 would stall the 101st stream)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=timeout_s)
    )


async def listen_key(session: aiohttp.ClientSession, base: str, key: str, secret: str) -> str:
    q = ccxt_query({}, secret)
    async with session.post(f"{base}/api/v3/userDataStream?{q}", headers={"X-MEXC-APIKEY": key}) as r:
        data = await r.json()
    assert r.status == 200, data
    return str(data["listenKey"])


async def open_stream(session: aiohttp.ClientSession, base: str, key: str) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(f"{base.replace('http', 'ws', 1)}/ws?listenKey={key}", autoping=True)
    await ws.send_json({"method": "SUBSCRIPTION", "params": PRIVATE})
    ack = await ws.receive_json(timeout=30)
    assert ack.get("msg") == ",".join(PRIVATE), ack
    return ws


@dataclass
class PushLatency:
    latencies_ms: list[float] = field(default_factory=list)  # ack -> push, 0 if the push came first
    request_ms: list[float] = field(default_factory=list)  # request sent -> push
    before_ack: int = 0  # pushes that reached the client before the order's acknowledgement
    acked: int = 0
    missing: int = 0
    orders: int = 0
    duration_s: float = 0.0

    def pct(self, q: float, of: list[float] | None = None) -> float:
        lat = sorted(self.latencies_ms if of is None else of)
        if not lat:
            return float("nan")
        return lat[min(len(lat) - 1, max(0, round(q * (len(lat) - 1))))]


async def ack_to_push(base: str, host: str, port: int, placers: int, streams: int,
                      duration_s: float, warmup_s: float) -> PushLatency:
    """`placers` clients (accounts 0..placers-1) place resting orders in a closed loop,
    each followed by a stream of its own account; `streams` streams in all are connected
    (the rest on accounts nobody trades on). For each order acknowledged in the measured
    window: the time from its acknowledgement reaching the client to its NEW push reaching
    the stream's reader (0 when the push came first)."""
    out = PushLatency()
    perf = time.perf_counter
    pushed: dict[str, float] = {}
    acked: dict[str, tuple[float, float]] = {}  # order id -> (request sent, ack received)
    async with session_for_streams(60) as session:
        socks: list[aiohttp.ClientWebSocketResponse] = []
        for i in range(max(streams, placers)):  # stream i follows account i
            k, s = account(i)
            socks.append(await open_stream(session, base, await listen_key(session, base, k, s)))

        async def read(ws: aiohttp.ClientWebSocketResponse) -> None:
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.BINARY:
                    frame = pb.PushDataV3ApiWrapper.FromString(msg.data)
                    if frame.HasField("privateOrders") and frame.privateOrders.status == 1:
                        pushed.setdefault(frame.privateOrders.id, perf())

        readers = [asyncio.create_task(read(ws)) for ws in socks]
        loop = asyncio.get_running_loop()
        t_start = loop.time() + warmup_s
        t_end = t_start + duration_s

        async def place(i: int) -> None:
            k, s = account(i)
            build = limit_orders(host, k, s, offset=i * 100_000)
            conn = await connect("127.0.0.1", port)
            try:
                while loop.time() < t_end:
                    data = build()
                    t0 = perf()
                    status, body = await conn.send(data)
                    t = perf()
                    assert status == 200, body[:300]
                    out.orders += 1
                    if loop.time() >= t_start:
                        acked[jsonutil.loads(body)["orderId"]] = (t0, t)
            finally:
                assert conn.transport is not None
                conn.transport.close()

        await asyncio.gather(*(place(i) for i in range(placers)))
        deadline = loop.time() + 5
        while loop.time() < deadline and not acked.keys() <= pushed.keys():
            await asyncio.sleep(0.01)  # the last pushes, with a deadline
        for r in readers:
            r.cancel()
        for ws in socks:
            await ws.close()
    out.acked = len(acked)
    out.duration_s = duration_s
    for oid, (t0, t) in acked.items():
        if oid not in pushed:
            out.missing += 1
            continue
        out.latencies_ms.append(max(0.0, pushed[oid] - t) * 1000)
        out.request_ms.append((pushed[oid] - t0) * 1000)
        out.before_ack += pushed[oid] < t
    return out


async def idle_streams(
    base: str, streams: int, accounts: int, rss: Callable[[], float]
) -> tuple[float, float]:
    """RSS of the sidecar (MB) before and with `streams` connected, subscribed, idle
    streams (spread over `accounts` accounts, 5 per listenKey)."""
    async with session_for_streams(120) as session:
        await asyncio.sleep(0.5)
        before = rss()
        keys: list[str] = []
        for n in range((streams + 4) // 5):
            k, s = account(n % accounts)
            keys.append(await listen_key(session, base, k, s))
        socks = []
        sem = asyncio.Semaphore(50)

        async def one(n: int) -> None:
            async with sem:
                socks.append(await open_stream(session, base, keys[n // 5]))

        await asyncio.gather(*(one(n) for n in range(streams)))
        await asyncio.sleep(0.5)
        during = rss()
        for ws in socks:
            await ws.close()
    return before, during


async def placement(base: str, host: str, port: int, stream: str, concurrency: int,
                    duration_s: float, warmup_s: float) -> tuple[RunResult, float]:
    """Resting orders of account 0 in a closed loop, with `stream` "none", "reading" (a
    stream of the account that reads every push) or "silent" (one that subscribes and
    then never reads again: aiohttp's client stops taking from the socket once 64 KiB
    wait unread). Returns the run and how many streams the sidecar had cut off as slow
    readers by its end."""
    session = aiohttp.ClientSession() if stream != "none" else None
    reader: asyncio.Task[None] | None = None
    try:
        if session is not None:
            ws = await open_stream(session, base, await listen_key(session, base, KEY, SECRET))
            if stream == "reading":

                async def drain() -> None:
                    async for _msg in ws:
                        pass

                reader = asyncio.create_task(drain())
        res = await closed_loop("127.0.0.1", port, resting_limit_orders(host), concurrency,
                                duration_s, warmup_s)
        return res, await disconnects(base, "slow_reader")
    finally:
        if reader is not None:
            reader.cancel()
        if session is not None:
            await session.close()


async def disconnects(base: str, reason: str) -> float:
    async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as r:
        text = await r.text()
    line = f'mexc_paper_ws_disconnects_total{{reason="{reason}"}} '
    for ln in text.splitlines():
        if ln.startswith(line):
            return float(ln[len(line):])
    return 0.0
