"""User-data streams (`/ws`, issue 15): from an order's REST acknowledgement to its push,
the memory of idle streams, and what a reader that stops reading costs the order path.

The sidecar runs as in the other benchmarks (its own process, persistence FULL), with
`accounts` bench accounts (account i: key `mx0vglbenchws<i>`), the websocket idle timeout
off (a stream here may stay quiet longer than MEXC's 60 s), `server.max_connections`
4096 (each stream is an open connection) and the market watcher as configured. This
process is the client: REST orders on raw keep-alive connections (bench/loadgen.py),
streams with aiohttp's WebSocket client, frames decoded with the sidecar's own protobuf
classes.

Push latency is measured per order from three client-side times: the request sent, its
acknowledgement received, its NEW push received. Reported: acknowledgement -> push as a
signed difference (negative: the push came first, which is usual: the push leaves at the
commit, the answer after it), request -> push and request -> acknowledgement.

The stopped reader: a raw WebSocket client with a 4 KiB socket receive buffer that
subscribes its account's private channels when the run starts (with the warm-up) and
never reads again, against a sidecar with `websocket.send_queue` 64 (all three variants
run with that setting). What it does not read piles up in the sidecar's socket send
buffer first, which Linux grows up to `net.ipv4.tcp_wmem`'s maximum (4 MiB: ~3 MB were
measured on loopback, about 7,500 orders' pushes), then in the send queue, and then the
sidecar cuts it off: with 3 s windows at ~4,000 orders/s that happens inside the measured
window, whose orders then straddle the cut-off (a smoke run's 0.4 s is too short for it).
When it was cut off (from /metrics, polled every 100 ms in every variant, so each carries
the same extra load) is reported.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
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


# the send queue of the stopped-reader comparison (all three variants): small enough for the
# cut-off to happen early in the measured window
PLACEMENT_SEND_QUEUE = 64
SILENT_RCVBUF = 4096


def ws_config(workdir: Path, upstream_port: int, accounts: int, send_queue: int | None = None) -> Path:
    path = sidecar_config(workdir, upstream_port)
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    rich = cfg["accounts"][0]["balances"]
    cfg["accounts"] = [
        {"api_key": k, "secret_key": s, "name": f"ws{i}", "balances": rich}
        for i in range(accounts) for k, s in [account(i)]
    ]
    cfg["websocket"] = {"idle_timeout_s": 0}
    if send_queue is not None:
        cfg["websocket"]["send_queue"] = send_queue
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
    latencies_ms: list[float] = field(default_factory=list)  # push - ack, signed (< 0: push first)
    request_ms: list[float] = field(default_factory=list)  # request sent -> push
    ack_ms: list[float] = field(default_factory=list)  # request sent -> acknowledgement
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
    window: its NEW push's arrival at the stream's reader minus its acknowledgement's
    arrival (signed: negative when the push came first), and both from the request."""
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
        out.latencies_ms.append((pushed[oid] - t) * 1000)
        out.request_ms.append((pushed[oid] - t0) * 1000)
        out.ack_ms.append((t - t0) * 1000)
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


class SilentStream:
    """A private stream that subscribes and never reads again: a raw socket with a
    SILENT_RCVBUF receive buffer (set before connecting, so the TCP window stays that
    small) and a reader that stops taking from it at once. aiohttp's client would keep
    reading into its own 64 KiB buffer, and the kernel's default receive buffer holds
    hundreds more: the sidecar would queue for seconds before its send queue filled."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int, listen_key: str) -> SilentStream:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SILENT_RCVBUF)
        sock.setblocking(False)
        await loop.sock_connect(sock, (host, port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=1024)
        nonce = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET /ws?listenKey={listen_key} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {nonce}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise RuntimeError(f"no WebSocket: {head[:200]!r}")
        writer.write(_masked_text(jsonutil.dumps({"method": "SUBSCRIPTION", "params": PRIVATE})))
        first, second = await reader.readexactly(2)
        size = second & 0x7F
        if size == 126:
            size = int.from_bytes(await reader.readexactly(2), "big")
        ack = await reader.readexactly(size)
        if first & 0x0F != 1 or jsonutil.loads(ack).get("msg") != ",".join(PRIVATE):
            raise RuntimeError(f"subscription not acknowledged: {ack[:200]!r}")
        return cls(reader, writer)  # ... and never read again

    def close(self) -> None:
        self.writer.transport.abort()


def _masked_text(payload: bytes) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def placement(base: str, host: str, port: int, stream: str, concurrency: int,
                    duration_s: float, warmup_s: float) -> tuple[RunResult, float | None, float]:
    """Resting orders of account 0 in a closed loop, with `stream` "none", "reading" (a
    stream of the account that reads every push) or "silent" (a SilentStream of the
    account), connected before the run. Returns the run, when the sidecar cut a slow
    reader off (seconds into the measured window, negative: during the warm-up; None:
    never) and how many it had cut off by the end."""
    session = aiohttp.ClientSession()
    reader: asyncio.Task[None] | None = None
    silent: SilentStream | None = None
    loop = asyncio.get_running_loop()
    cut_at: list[float] = []
    try:
        key = await listen_key(session, base, KEY, SECRET)
        if stream == "reading":
            ws = await open_stream(session, base, key)

            async def drain() -> None:
                async for _msg in ws:
                    pass

            reader = asyncio.create_task(drain())
        elif stream == "silent":
            silent = await SilentStream.open("127.0.0.1", port, key)
        t_start = loop.time() + warmup_s

        async def watch() -> None:
            while True:
                await asyncio.sleep(0.1)
                if not cut_at and await disconnects(base, "slow_reader", session) > 0:
                    cut_at.append(loop.time() - t_start)

        helpers = [asyncio.create_task(watch())]
        try:
            res = await closed_loop("127.0.0.1", port, resting_limit_orders(host), concurrency,
                                    duration_s, warmup_s)
        finally:
            for t in helpers:
                t.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
        return res, (cut_at[0] if cut_at else None), await disconnects(base, "slow_reader", session)
    finally:
        if reader is not None:
            reader.cancel()
        if silent is not None:
            silent.close()
        await session.close()


async def disconnects(base: str, reason: str, session: aiohttp.ClientSession | None = None) -> float:
    if session is None:
        async with aiohttp.ClientSession() as own:
            return await disconnects(base, reason, own)
    async with session.get(f"{base}/metrics") as r:
        text = await r.text()
    line = f'mexc_paper_ws_disconnects_total{{reason="{reason}"}} '
    for ln in text.splitlines():
        if ln.startswith(line):
            return float(ln[len(line):])
    return 0.0
