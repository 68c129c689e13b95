"""A small HTTP/1.1 load generator on raw asyncio protocols (keep-alive, no pipelining).

It runs in the benchmark process, never in the server's. Two modes:

- closed loop: `concurrency` connections, each sends its next request when the previous
  answer has arrived; gives throughput and the latency a waiting client sees;
- open loop: requests are *scheduled* at a fixed offered rate, independent of answers, and
  each latency is measured from its scheduled time, so a slow server shows up as latency
  (no coordinated omission: the client never hides queueing by slowing down).

Request builders are called once per request, so signed requests carry a fresh timestamp.
Every answer is checked: a status the scenario does not expect is counted as an error.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

RequestBuilder = Callable[[], bytes]


class HttpError(Exception):
    pass


class _Conn(asyncio.Protocol):
    """One keep-alive connection; `send` returns a future of (status, body)."""

    __slots__ = ("buf", "closed", "transport", "waiter")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(HttpError(f"connection lost: {exc}"))

    def send(self, data: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None and self.waiter is None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buf[:end]).lower()
        i = head.find(b"\r\ncontent-length:")
        if i < 0:
            raise HttpError("answer without Content-Length")
        j = head.find(b"\r\n", i + 2)
        length = int(head[i + 17 : j if j > 0 else None])
        total = end + 4 + length
        if len(buf) < total:
            return
        status = int(head[9:12])
        body = bytes(buf[end + 4 : total])
        del buf[:total]
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((status, body))


async def connect(host: str, port: int, tls: TlsClient | None = None) -> _Conn:
    """A connection; over TLS when `tls` is given (the handshake is done when it returns)."""
    loop = asyncio.get_running_loop()
    if tls is None:
        _t, conn = await loop.create_connection(_Conn, host, port)
    else:
        _t, conn = await loop.create_connection(
            _Conn, host, port, ssl=tls.context, server_hostname=tls.server_name
        )
    return conn


@dataclass(frozen=True)
class TlsClient:
    """How the load generator speaks TLS: the context (trusting the server's CA) and the
    name it asks for (SNI and certificate check)."""

    context: ssl.SSLContext
    server_name: str = "localhost"


def request_bytes(
    method: str, target: str, host: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if body or method in ("POST", "PUT", "DELETE"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class RunResult:
    """One measured window."""

    duration_s: float
    latencies_ns: list[int] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    offered_rate: float | None = None
    sample_error: bytes = b""
    # every answer, warm-up and tail included (for CPU-per-request figures)
    total: int = 0

    @property
    def count(self) -> int:
        return len(self.latencies_ns)

    @property
    def rate(self) -> float:
        return self.count / self.duration_s if self.duration_s > 0 else 0.0

    def pct_ms(self, q: float) -> float:
        lat = sorted(self.latencies_ns)
        if not lat:
            return float("nan")
        idx = min(len(lat) - 1, max(0, round(q * (len(lat) - 1))))
        return lat[idx] / 1e6

    @property
    def p50_ms(self) -> float:
        return self.pct_ms(0.50)

    @property
    def p99_ms(self) -> float:
        return self.pct_ms(0.99)


async def closed_loop(
    host: str,
    port: int,
    build: RequestBuilder,
    concurrency: int,
    duration_s: float,
    warmup_s: float = 0.3,
    ok_status: int = 200,
    tls: TlsClient | None = None,
) -> RunResult:
    """`concurrency` clients, each waiting for its answer before the next request."""
    conns = [await connect(host, port, tls) for _ in range(concurrency)]
    loop = asyncio.get_running_loop()
    t_start = loop.time() + warmup_s
    t_end = t_start + duration_s
    result = RunResult(duration_s)
    lat = result.latencies_ns
    perf = time.perf_counter_ns

    async def client(conn: _Conn) -> None:
        while True:
            data = build()
            t0 = perf()
            status, body = await conn.send(data)
            t1 = perf()
            result.total += 1
            now = loop.time()
            if now >= t_end:
                return
            if now < t_start:
                continue
            if status != ok_status:
                result.errors += 1
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if not result.sample_error:
                    result.sample_error = body[:300]
                continue
            lat.append(t1 - t0)

    try:
        await asyncio.gather(*(client(c) for c in conns))
    finally:
        for c in conns:
            if c.transport is not None:
                c.transport.close()
    return result


async def open_loop(
    host: str,
    port: int,
    build: RequestBuilder,
    rate: float,
    duration_s: float,
    warmup_s: float = 0.3,
    connections: int = 64,
    max_connections: int = 512,
    ok_status: int = 200,
    tls: TlsClient | None = None,
) -> RunResult:
    """Requests scheduled at `rate` per second; latency counts from the scheduled time."""
    loop = asyncio.get_running_loop()
    idle: deque[_Conn] = deque([await connect(host, port, tls) for _ in range(connections)])
    opened = connections
    waiting: deque[int] = deque()  # scheduled times (ns) of requests without a connection
    result = RunResult(duration_s, offered_rate=rate)
    lat = result.latencies_ns
    perf = time.perf_counter_ns
    period_ns = int(1e9 / rate)
    t0_ns = perf() + int(warmup_s * 1e9)
    start_ns = t0_ns - int(warmup_s * 1e9)
    end_ns = t0_ns + int(duration_s * 1e9)
    outstanding = 0
    done = loop.create_future()
    all_scheduled = False
    opening = 0
    openers: set[asyncio.Task[None]] = set()

    def finished(conn: _Conn, scheduled: int, fut: asyncio.Future[tuple[int, bytes]]) -> None:
        nonlocal outstanding
        outstanding -= 1
        t1 = perf()
        result.total += 1
        exc = fut.exception()
        if exc is not None:
            result.errors += 1
        else:
            status, body = fut.result()
            if scheduled >= t0_ns:
                if status != ok_status:
                    result.errors += 1
                    result.statuses[status] = result.statuses.get(status, 0) + 1
                    if not result.sample_error:
                        result.sample_error = body[:300]
                else:
                    lat.append(t1 - scheduled)
        if not conn.closed:
            idle.append(conn)
        dispatch()
        if all_scheduled and outstanding == 0 and not waiting and not done.done():
            done.set_result(None)

    def fire(conn: _Conn, scheduled: int) -> None:
        nonlocal outstanding
        outstanding += 1
        fut = conn.send(build())
        fut.add_done_callback(lambda f, c=conn, s=scheduled: finished(c, s, f))

    def dispatch() -> None:
        nonlocal opened, opening
        while waiting and idle:
            fire(idle.popleft(), waiting.popleft())
        if waiting and opened + opening < max_connections and opening < 8:
            opening += 1
            task = loop.create_task(open_one())
            openers.add(task)
            task.add_done_callback(openers.discard)

    async def open_one() -> None:
        nonlocal opened, opening
        try:
            c = await connect(host, port, tls)
            opened += 1
            idle.append(c)
        finally:
            opening -= 1
        dispatch()

    i = 0
    try:
        while True:
            now = perf()
            # schedule every request whose time has come (catch up after a late wake-up)
            while True:
                scheduled = start_ns + i * period_ns
                if scheduled > now or scheduled >= end_ns:
                    break
                waiting.append(scheduled)
                i += 1
            dispatch()
            if start_ns + i * period_ns >= end_ns:
                break
            delay = (start_ns + i * period_ns - perf()) / 1e9
            await asyncio.sleep(max(0.0, delay))
        all_scheduled = True
        if outstanding == 0 and not waiting:
            done.set_result(None)
        await asyncio.wait_for(done, 30)
    finally:
        for c in idle:
            if c.transport is not None:
                c.transport.close()
    return result


async def get_once(host: str, port: int, data: bytes, tls: TlsClient | None = None) -> tuple[int, bytes]:
    conn = await connect(host, port, tls)
    try:
        return await conn.send(data)
    finally:
        assert conn.transport is not None
        conn.transport.close()
