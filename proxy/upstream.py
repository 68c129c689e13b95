"""The upstream: one ClientSession to MEXC (or a cassette), coalescing, short caches.

`MexcClient` is the only code that talks to the upstream. Public GETs go through
`get()` (identical concurrent GETs share one upstream call; some answers are cached for a
TTL). Live passthrough of signed requests goes through `forward()`, which nothing calls in
paper mode. Transport and HTTP failures become `UpstreamError`; a MEXC 5xx means "status
unknown", not "failed", so callers never treat it as a definite answer.

Transports: `HttpTransport` (the network) and `RecordingTransport` (tees every public answer
into a cassette while running). Replay is `proxy.tape` (the tape's own clock).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
import yaml
from yarl import URL

from . import jsonutil
from .config import UpstreamSettings
from .engine.model import Book, SymbolRules, Trade
from .errors import INVALID_SYMBOL_CODES
from .loopguard import LOOP_HEADER, LoopGuard, UpstreamLoop, UpstreamResolver
from .parsers import (
    ShapeError,
    parse_depth,
    parse_error,
    parse_exchange_info,
    parse_ticker_price,
    parse_trades,
)

log = logging.getLogger("proxy.upstream")

# hop-by-hop headers (RFC 9110 section 7.6.1) are never passed on; these are kept
PASS_HEADERS = ("Retry-After",)


@dataclass(frozen=True, slots=True)
class RawResponse:
    status: int
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()
    # the body's end was announced (Content-Length or chunked), so a body cut short in
    # transport raised instead of arriving here; False for connection-close framing
    framed: bool = True

    @property
    def is_json(self) -> bool:
        if "json" in self.content_type:
            return True
        b = self.body.lstrip()[:1]
        return b in (b"{", b"[")

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


class UpstreamError(Exception):
    """The upstream could not give a usable answer.

    kind: "connect" (refused/reset), "timeout", "http" (a non-2xx answer), "shape" (a body
    that is not MEXC's), "replay" (no recording for the request), "invalid_symbol".
    """

    def __init__(
        self,
        kind: str,
        message: str,
        status: int | None = None,
        code: int | None = None,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.code = code
        self.retry_after = retry_after


class Transport(Protocol):
    async def request(
        self,
        method: str,
        path: str,
        raw_query: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> RawResponse: ...

    async def close(self) -> None: ...


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _keep_headers(headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((k, headers[k]) for k in PASS_HEADERS if k in headers)


class HttpTransport:
    """`guard`: this process's loop protection (proxy/loopguard.py): every request carries
    its mark, names resolve through `upstream.resolve` and never to this sidecar."""

    def __init__(self, settings: UpstreamSettings, guard: LoopGuard | None = None) -> None:
        self.base = settings.base_url
        self.timeout = aiohttp.ClientTimeout(
            total=settings.timeout_s,
            connect=settings.connect_timeout_s,
            sock_connect=settings.connect_timeout_s,
        )
        self.max_connections = settings.max_connections
        self.resolve = settings.resolve
        self.guard = guard
        self.session: aiohttp.ClientSession | None = None
        # an address in base_url skips the resolver: checked against the listeners here
        url = URL(self.base)
        self._literal = (url.host, url.port) if url.host and _is_ip(url.host) else None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self.max_connections, enable_cleanup_closed=True,
            # names are cached (300 s) by the resolver, which checks every answer for a loop
            use_dns_cache=False, resolver=UpstreamResolver(self.resolve, self.guard, ttl_s=300),
        )
        headers = {"User-Agent": "mexc-paper"}
        if self.guard is not None:
            headers[LOOP_HEADER] = self.guard.mark
        self.session = aiohttp.ClientSession(
            timeout=self.timeout,
            connector=connector,
            auto_decompress=True,
            headers=headers,
        )

    def _loop_error(self) -> UpstreamError:
        assert self.guard is not None
        return UpstreamError("loop", self.guard.message)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def request(
        self,
        method: str,
        path: str,
        raw_query: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> RawResponse:
        assert self.session is not None, "transport not started"
        guard = self.guard
        if self._literal is not None and guard is not None and guard.listening:
            host, port = self._literal
            if guard.points_here(host, port or 0):
                guard.detected(f"upstream.base_url is this sidecar's address {host}:{port}")
                raise self._loop_error()
        url = URL(f"{self.base}{path}?{raw_query}" if raw_query else f"{self.base}{path}", encoded=True)
        try:
            async with self.session.request(
                method, url, data=body, headers=headers, allow_redirects=False
            ) as resp:
                data = await resp.read()
                if guard is not None and resp.headers.get(LOOP_HEADER) == guard.mark:
                    raise self._loop_error()
                return RawResponse(
                    resp.status,
                    data,
                    resp.headers.get("Content-Type", ""),
                    _keep_headers(resp.headers),
                    "Content-Length" in resp.headers
                    or "chunked" in resp.headers.get("Transfer-Encoding", "").lower(),
                )
        except aiohttp.ConnectionTimeoutError:
            # no connection within connect_timeout_s: nothing was sent, the upstream is
            # "not available" (503), unlike a request that went out and got no answer (504)
            raise UpstreamError("connect", f"upstream unreachable: connect timeout {method} {path}") from None
        except TimeoutError:
            raise UpstreamError("timeout", f"upstream timed out: {method} {path}") from None
        except aiohttp.ClientPayloadError as exc:
            raise UpstreamError("shape", f"upstream body truncated: {exc}") from None
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, UpstreamLoop):
                raise self._loop_error() from None
            raise UpstreamError("connect", f"upstream unreachable: {type(exc).__name__}") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamError("connect", f"upstream unreachable: {type(exc).__name__}") from None


# --------------------------------------------------------------------------- cassettes


def load_cassette(path: str | Path) -> list[dict[str, Any]]:
    """Interactions of a cassette (vcrpy's v1 YAML, or --record's superset of it)."""
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict) or not isinstance(data.get("interactions"), list):
        raise ValueError(f"{path}: not a cassette (no interactions list)")
    return data["interactions"]


def interaction_parts(it: dict[str, Any]) -> tuple[str, str, str, RawResponse]:
    """(method, path, raw query, response) of one cassette interaction."""
    req, resp = it["request"], it["response"]
    parts = urlsplit(req["uri"])
    body = resp.get("body", {}).get("string", b"")
    if isinstance(body, str):
        body = body.encode("utf-8")
    hdrs = resp.get("headers") or {}
    ctype = ""
    extra = []
    for k, v in hdrs.items():
        value = v[0] if isinstance(v, list) and v else str(v)
        if k.lower() == "content-type":
            ctype = value
        elif k in PASS_HEADERS:
            extra.append((k, value))
    status = int(resp.get("status", {}).get("code", 200))
    return req["method"].upper(), parts.path, parts.query, RawResponse(status, body, ctype, tuple(extra))


# the C emitter when PyYAML has libyaml (the same text, ~7 times faster), else Python's
_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
# how often the recording's buffer is written out, and how much it may hold before that
RECORD_FLUSH_S = 1.0
RECORD_MAX_BUFFERED = 10_000


def _sorted(value: Any) -> Any:
    """`value` with every mapping's keys in sorted order (what `sort_keys=True` writes)."""
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    return value


class RecordingTransport:
    """Tees every public GET answer, and the market stream's frames, into a cassette.

    The format is a superset of vcrpy's v1 YAML cassette: `version: 1` then
    `interactions:`, a list appended to at column 0, so the file is valid YAML after every
    write. Each REST answer is a vcrpy interaction (`request`, `response`) with one key
    more, `recorded_ms` (epoch ms when the answer arrived), which vcrpy ignores. The
    market stream's frames (`append_stream`) go into the same list, in arrival order, as
    items of their own:

        - stream:
            channel: spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT
            recorded_ms: 1767205800456
            frame: <base64 of the raw binary frame>

    vcrpy cannot load a cassette holding `stream:` items (it reads `request` from every
    item: KeyError 'request'); one recorded with the stream off (`upstream.ws_url: null`)
    or with nothing subscribed holds only interactions, which it loads. `--replay` (the
    tape, proxy/tape/) reads both. Only unsigned public GETs reach this transport; live
    passthrough bypasses it, so no key or signature is ever written.

    Writing: items are buffered and written in batches, one append per batch, by a task
    that runs every RECORD_FLUSH_S (1 s) or as soon as RECORD_MAX_BUFFERED items wait,
    the YAML made and written in a worker thread: nothing is written on the event loop
    per frame. `close()` (a clean stop) writes everything; a `kill -9` loses what arrived
    in the last second at most, and one that strikes during a write may leave the last
    item cut short (delete it by hand). A failed write (a full disk) is logged once and
    stops the recording, never the sidecar.
    """

    def __init__(
        self, inner: HttpTransport, path: str | Path, clock: Callable[[], int] | None = None,
        flush_s: float = RECORD_FLUSH_S,
    ) -> None:
        self.inner = inner
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists() or self.path.stat().st_size == 0:
            self.path.write_text("version: 1\ninteractions:\n", encoding="utf-8")
        self._clock = clock
        self.flush_s = flush_s
        self.count = 0
        self.frames = 0
        self.batches = 0
        self.failed = False
        self._buffer: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._writer: asyncio.Task[None] | None = None
        self._stopping = False
        self._closed = False

    def _now_ms(self) -> int:
        return self._clock() if self._clock is not None else time.time_ns() // 1_000_000

    async def start(self) -> None:
        await self.inner.start()
        self._writer = asyncio.get_running_loop().create_task(self._write_loop(), name="cassette-writer")

    async def request(
        self,
        method: str,
        path: str,
        raw_query: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> RawResponse:
        resp = await self.inner.request(method, path, raw_query, body, headers)
        if method == "GET" and not headers:
            self._append(path, raw_query, resp, self._now_ms())
        return resp

    def append_stream(self, channel: str, recorded_ms: int, frame: bytes) -> None:
        """One binary frame of the market stream, as it arrived."""
        item = {
            "stream": {
                "channel": channel,
                "recorded_ms": recorded_ms,
                "frame": base64.b64encode(frame).decode("ascii"),
            }
        }
        self._add(item)
        self.frames += 1

    def _append(self, path: str, raw_query: str, resp: RawResponse, recorded_ms: int) -> None:
        uri = f"{self.inner.base}{path}" + (f"?{raw_query}" if raw_query else "")
        try:
            text: str | bytes = resp.body.decode("utf-8")
        except UnicodeDecodeError:
            text = resp.body
        hdrs: dict[str, list[str]] = {"Content-Type": [resp.content_type]}
        for k, v in resp.headers:
            hdrs[k] = [v]
        item = {
            "recorded_ms": recorded_ms,
            "request": {"body": None, "headers": {}, "method": "GET", "uri": uri},
            "response": {
                "body": {"string": text},
                "headers": hdrs,
                "status": {"code": resp.status, "message": ""},
            },
        }
        self._add(_sorted(item))
        self.count += 1

    # ---- the writer ----
    def _add(self, item: dict[str, Any]) -> None:
        if self.failed:
            return
        if self._closed:  # after close(): nothing batches any more
            self._write([item])
            return
        self._buffer.append(item)
        if len(self._buffer) >= RECORD_MAX_BUFFERED:
            self._wake.set()

    async def _write_loop(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_s)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write what is buffered, in arrival order (one batch at a time)."""
        async with self._lock:
            batch, self._buffer = self._buffer, []
            if batch and not self.failed:
                await asyncio.to_thread(self._write, batch)

    def _write(self, batch: list[dict[str, Any]]) -> None:
        try:
            data = yaml.dump(
                batch, Dumper=_DUMPER, sort_keys=False, allow_unicode=True, width=1_000_000
            ).encode("utf-8")
            with self.path.open("ab", buffering=0) as f:
                view = memoryview(data)
                while view:
                    view = view[f.write(view) or 0:]
            self.batches += 1
        except Exception:  # a full disk, a file gone: the recording stops, the sidecar not
            self.failed = True
            log.exception("writing the recording %s failed; recording stops", self.path)

    async def close(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._writer is not None:
            await self._writer  # its last round writes what is buffered
            self._writer = None
        await self.flush()
        self._closed = True
        await self.inner.close()


# --------------------------------------------------------------------------- the client


# the public paths MEXC serves (api.PUBLIC_PATHS plus time and contract/detail; a unit
# test keeps them equal): metric labels, and what replay knows it merely did not record
KNOWN_PATHS = _KNOWN_PATHS = frozenset(
    {
        "/api/v3/ping", "/api/v3/time", "/api/v3/defaultSymbols", "/api/v3/symbol/offline",
        "/api/v3/exchangeInfo", "/api/v3/depth", "/api/v3/trades", "/api/v3/historicalTrades",
        "/api/v3/aggTrades", "/api/v3/klines", "/api/v3/avgPrice", "/api/v3/ticker/24hr",
        "/api/v3/ticker/price", "/api/v3/ticker/bookTicker", "/api/v3/announcements",
        "/api/v3/etf/info", "/api/v1/contract/detail",
    }
)


# Bodies up to this size are parsed to tell JSON from a truncated or HTML "success";
# larger ones (exchangeInfo is ~1.5 MB: 13 ms to parse, on every forwarded request) are
# judged by their first and last bytes when their framing was checked: a body cut short
# in transport then raised ClientPayloadError instead (fewer bytes than Content-Length,
# or an unfinished chunked stream). Without framing (connection close) they are parsed.
_PARSE_TO_CHECK = 64 * 1024
_WS = b" \t\r\n"


def _is_json(body: bytes, framed: bool = True) -> bool:
    if framed and len(body) > _PARSE_TO_CHECK:
        head, tail = body.lstrip(_WS)[:1], body.rstrip(_WS)[-1:]
        return (head, tail) in ((b"{", b"}"), (b"[", b"]"))
    try:
        jsonutil.loads(body)
    except ValueError:
        return False
    return True


class LiveMarket(Protocol):
    """A fresher source of a symbol's book and last price than REST (the market stream,
    for the symbols it keeps in sync); None where it has nothing."""

    def book(self, symbol: str) -> Book | None: ...

    def last_price(self, symbol: str) -> Decimal | None: ...


class MexcClient:
    # most answers kept in the TTL cache (and parsed values kept); beyond it the expired
    # ones go first, then the oldest. Keys are (path, query) and bots choose the query:
    # callers pass only the parameters that matter (api.passthrough), this is the bound.
    cache_max = 256
    # and most bytes of answer bodies in it (the count alone let 256 full exchangeInfo
    # answers of 2 MB stay); an answer larger than this is not cached at all
    cache_max_bytes = 32 * 1024 * 1024
    # every this many insertions the expired entries are dropped even below the bound
    _SWEEP_EVERY = 64

    def __init__(
        self,
        transport: Transport,
        settings: UpstreamSettings,
        depth_limit: int = 100,
        trades_limit: int = 100,
        metrics: Any = None,
        clock: Any = None,
    ) -> None:
        self.transport = transport
        self.settings = settings
        self.depth_limit = depth_limit
        self.trades_limit = trades_limit
        self.metrics = metrics
        self._clock = clock
        self._inflight: dict[tuple[str, str], asyncio.Future[RawResponse]] = {}
        self._cache: dict[tuple[str, str], tuple[float, RawResponse]] = {}
        self._parsed: dict[tuple[str, str], tuple[RawResponse, Any]] = {}
        self._market_key_cache: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {}
        # health (/healthz): the last error, the last usable answer, and since when the
        # upstream has been down (None while it answers); an outage is logged once when it
        # starts and once when it ends, never per failed call
        self.last_error: str | None = None
        self.last_ok_ms: int | None = None
        self.down_since_ms: int | None = None
        self._down_since = 0.0  # time.monotonic() of down_since_ms, for the outage's length
        self.calls = 0
        # the market stream's books and prices, preferred to REST where it has them
        self.live: LiveMarket | None = None
        self.monotonic = time.monotonic  # the cache's clock (tests move it)
        self._inserts = 0

    def _now_ms(self) -> int:
        return self._clock.now_ms() if self._clock is not None else time.time_ns() // 1_000_000

    # the failures that mean the upstream is down (not answering usably): refused or reset
    # connections, timeouts, 5xx answers, bodies that are not MEXC's, and a loop back to this
    # sidecar (proxy/loopguard.py, which logs that itself, once, naming the cause). A replay's
    # missing recording or an unknown symbol is an answer about one request, not an outage.
    _OUTAGE_KINDS = frozenset({"connect", "timeout", "http", "shape", "loop"})

    def _failed(self, kind: str, reason: str) -> None:
        self.last_error = reason
        if kind in self._OUTAGE_KINDS and self.down_since_ms is None:
            self.down_since_ms = self._now_ms()
            self._down_since = time.monotonic()
            if kind == "loop":
                return
            log.warning(
                "upstream %s is down (%s): public calls and orders that need market data fail "
                "until it answers again (logged once; /healthz says degraded meanwhile)",
                self.settings.replay_path or self.settings.base_url, reason,
            )

    def _answered(self) -> None:
        if self.down_since_ms is not None:
            log.warning(
                "upstream %s answers again after %.1f s down",
                self.settings.replay_path or self.settings.base_url, time.monotonic() - self._down_since,
            )
            self.down_since_ms = None
        self.last_ok_ms = self._now_ms()
        self.last_error = None

    async def close(self) -> None:
        for fut in list(self._inflight.values()):
            fut.cancel()
        await self.transport.close()

    # ---- raw ----
    async def _fetch(self, path: str, raw_query: str) -> RawResponse:
        label = path if path in _KNOWN_PATHS else "other"
        t0 = time.perf_counter()
        self.calls += 1
        try:
            resp = await self.transport.request("GET", path, raw_query)
        except UpstreamError as exc:
            self._failed(exc.kind, f"{exc.kind}: {exc}")
            if self.metrics is not None:
                self.metrics.upstream_errors.labels(label, exc.kind).inc()
            raise
        finally:
            if self.metrics is not None:
                self.metrics.upstream_latency.labels(label).observe(time.perf_counter() - t0)
        if resp.status < 400 and not _is_json(resp.body, resp.framed):
            # a truncated, empty or HTML "success" (a captive proxy, a maintenance page) is
            # no answer at all: never forwarded to the bot, cached or parsed
            exc = UpstreamError(
                "shape", f"upstream {path} answered {resp.status} with a body that is not JSON",
                status=resp.status,
            )
            self._failed("shape", f"shape: {exc}")
            if self.metrics is not None:
                self.metrics.upstream_errors.labels(label, "shape").inc()
            raise exc
        if resp.status < 500:
            self._answered()
        else:
            self._failed("http", f"http {resp.status}: upstream {path} answered {resp.status}")
            if self.metrics is not None:
                self.metrics.upstream_errors.labels(label, "http5xx").inc()
        return resp

    async def get(self, path: str, raw_query: str = "", ttl_ms: int = 0) -> RawResponse:
        """A public GET: cached for `ttl_ms` when 200, identical in-flight calls coalesced."""
        key = (path, raw_query)
        if ttl_ms:
            hit = self._cache.get(key)
            if hit is not None:
                if hit[0] > self.monotonic():
                    return hit[1]
                del self._cache[key]
        fut = self._inflight.get(key)
        if fut is None:
            fut = asyncio.ensure_future(self._fetch(path, raw_query))
            self._inflight[key] = fut
            fut.add_done_callback(lambda _f, k=key: self._inflight.pop(k, None))
        resp = await asyncio.shield(fut)
        if ttl_ms and resp.status == 200 and len(resp.body) <= self.cache_max_bytes:
            self._cache.pop(key, None)  # (re)inserted last: the order is the age
            self._cache[key] = (self.monotonic() + ttl_ms / 1000, resp)
            self._inserted()
        return resp

    def cache_bytes(self) -> int:
        """Bytes of answer bodies in the cache."""
        return sum(len(resp.body) for _, resp in self._cache.values())

    def _inserted(self) -> None:
        """Keep the caches bounded: every `_SWEEP_EVERY` insertions, or when one is over
        `cache_max` entries or `cache_max_bytes`, drop expired answers, then the oldest,
        and the parsed values of answers no longer cached. (The bytes are summed on each
        insertion, one per upstream answer: at most 256 lengths, a few microseconds.)"""
        self._inserts += 1
        cache, parsed = self._cache, self._parsed
        size = self.cache_bytes()
        over = len(cache) > self.cache_max or len(parsed) > self.cache_max or size > self.cache_max_bytes
        if not over and self._inserts % self._SWEEP_EVERY:
            return
        now = self.monotonic()
        for key in [k for k, (until, _) in cache.items() if until <= now]:
            size -= len(cache.pop(key)[1].body)
        for key in list(cache)[: max(0, len(cache) - self.cache_max)]:
            size -= len(cache.pop(key)[1].body)
        for key in list(cache):
            if size <= self.cache_max_bytes:
                break
            size -= len(cache.pop(key)[1].body)
        for key in [k for k, (resp, _) in parsed.items() if cache.get(k, (0, None))[1] is not resp]:
            del parsed[key]

    async def forward(
        self,
        method: str,
        path: str,
        raw_query: str,
        body: bytes | None,
        headers: Mapping[str, str],
    ) -> RawResponse:
        """Live passthrough of a signed request, unchanged. Never used in paper mode."""
        try:
            resp = await self.transport.request(method, path, raw_query, body, headers)
        except UpstreamError as exc:
            self._failed(exc.kind, f"{exc.kind}: {exc}")
            raise
        if resp.status < 500:
            self._answered()
        else:
            self._failed("http", f"http {resp.status}: upstream {path} answered {resp.status}")
        return resp

    # ---- parsed, for the engine ----
    @staticmethod
    def _decode(path: str, resp: RawResponse) -> Any:
        """The JSON of a 200 answer; anything else becomes an UpstreamError."""
        try:
            data = jsonutil.loads(resp.body)
        except Exception:
            raise UpstreamError(
                "shape" if resp.status < 500 else "http",
                f"upstream {path} answered {resp.status} with a non-JSON body",
                status=resp.status,
            ) from None
        if resp.status != 200:
            err = parse_error(data)
            raise UpstreamError(
                "http",
                f"upstream {path} answered {resp.status}" + (f": {err[1]}" if err else ""),
                status=resp.status,
                code=err[0] if err else None,
                retry_after=resp.header("Retry-After"),
            )
        return data

    async def _parsed_value(self, path: str, raw_query: str, ttl_ms: int, parse: Any) -> Any:
        """GET, decode and parse once per distinct upstream answer."""
        resp = await self.get(path, raw_query, ttl_ms)
        key = (path, raw_query)
        cached = self._parsed.get(key)
        if cached is not None and cached[0] is resp:
            return cached[1]
        data = self._decode(path, resp)
        try:
            value = parse(data)
        except ShapeError as exc:
            raise UpstreamError("shape", f"upstream {path}: {exc}") from None
        self._parsed[key] = (resp, value)
        if len(self._parsed) > self.cache_max:
            self._inserted()
        return value

    async def rules(self, symbol: str) -> SymbolRules:
        ttl = int(self.settings.exchange_info_ttl_s * 1000)
        try:
            all_rules = await self._parsed_value(
                "/api/v3/exchangeInfo", f"symbol={symbol}", ttl, parse_exchange_info
            )
        except UpstreamError as exc:
            if exc.status == 400 and exc.code in INVALID_SYMBOL_CODES:
                raise UpstreamError("invalid_symbol", f"invalid symbol {symbol}") from None
            raise
        rules = all_rules.get(symbol)
        if rules is None:
            raise UpstreamError("invalid_symbol", f"exchangeInfo has no symbol {symbol}")
        return rules

    async def all_rules(self) -> dict[str, SymbolRules]:
        ttl = int(self.settings.exchange_info_ttl_s * 1000)
        return await self._parsed_value("/api/v3/exchangeInfo", "", ttl, parse_exchange_info)

    def _market_keys(self, symbol: str) -> tuple[tuple[str, str], tuple[str, str]]:
        """The cache keys of `book(symbol)` and `last_price(symbol)`: (path, raw query)."""
        keys = self._market_key_cache.get(symbol)
        if keys is None:
            keys = self._market_key_cache[symbol] = (
                ("/api/v3/depth", f"symbol={symbol}&limit={self.depth_limit}"),
                ("/api/v3/ticker/price", f"symbol={symbol}"),
            )
        return keys

    def cached_market(self, symbol: str) -> tuple[Book, Decimal | None] | None:
        """`(await book(symbol), await last_price(symbol))` when both are answered from
        the cache and already parsed, without I/O, tasks or awaits; else None (the caller
        then fetches them). The common case of every order on a watched symbol."""
        live = self.live
        if live is not None and (book := live.book(symbol)) is not None:
            price = live.last_price(symbol)
            if price is None:
                price = self._cached_price(symbol)
                if price is None:
                    return None
            return book, price
        if not self.settings.market_cache_ms:
            return None
        keys = self._market_keys(symbol)
        now = self.monotonic()
        values = []
        for key in keys:
            hit = self._cache.get(key)
            if hit is None or hit[0] <= now:
                return None
            parsed = self._parsed.get(key)
            if parsed is None or parsed[0] is not hit[1]:
                return None
            values.append(parsed[1])
        return values[0], values[1].get(symbol)

    def _cached_price(self, symbol: str) -> Decimal | None:
        """The last price from an unexpired, parsed ticker/price answer, without I/O."""
        if not self.settings.market_cache_ms:
            return None
        key = self._market_keys(symbol)[1]
        hit = self._cache.get(key)
        if hit is None or hit[0] <= self.monotonic():
            return None
        parsed = self._parsed.get(key)
        if parsed is None or parsed[0] is not hit[1]:
            return None
        return parsed[1].get(symbol)

    async def book(self, symbol: str, max_age_ms: int | None = None) -> Book:
        """The symbol's book: the market stream's where it keeps one in sync, else REST
        (at most `max_age_ms` old, default `market_cache_ms`)."""
        live = self.live
        if live is not None and (book := live.book(symbol)) is not None:
            return book
        return await self.rest_book(symbol, max_age_ms)

    async def rest_book(self, symbol: str, max_age_ms: int | None = None) -> Book:
        ttl = self.settings.market_cache_ms if max_age_ms is None else max_age_ms
        seen = self._now_ms()
        path, query = self._market_keys(symbol)[0]
        return await self._parsed_value(
            path, query, ttl, lambda data: parse_depth(symbol, data, seen)
        )

    async def depth_snapshot(self, symbol: str, limit: int) -> Book:
        """A fresh REST book of `limit` levels (never cached: it anchors the stream's
        diffs, reference 9.3)."""
        seen = self._now_ms()
        return await self._parsed_value(
            "/api/v3/depth", f"symbol={symbol}&limit={limit}", 0,
            lambda data: parse_depth(symbol, data, seen),
        )

    async def trades(self, symbol: str, max_age_ms: int | None = None) -> list[Trade]:
        ttl = self.settings.market_cache_ms if max_age_ms is None else max_age_ms
        return await self._parsed_value(
            "/api/v3/trades", f"symbol={symbol}&limit={self.trades_limit}", ttl, parse_trades
        )

    async def last_price(self, symbol: str) -> Decimal | None:
        """Latest trade price (for PERCENT_PRICE_BY_SIDE and MX fees); None if unknown.
        From the market stream's trades where it has them, else ticker/price."""
        live = self.live
        if live is not None and (price := live.last_price(symbol)) is not None:
            return price
        path, query = self._market_keys(symbol)[1]
        try:
            prices = await self._parsed_value(
                path, query, self.settings.market_cache_ms, parse_ticker_price
            )
        except UpstreamError:
            return None
        return prices.get(symbol)

    async def all_prices(self, ttl_ms: int = 5000) -> dict[str, Decimal]:
        with contextlib.suppress(UpstreamError):
            return await self._parsed_value(
                "/api/v3/ticker/price", "", ttl_ms, parse_ticker_price
            )
        return {}
