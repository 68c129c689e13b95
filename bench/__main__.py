"""`python -m bench`: every benchmark of mexc-paper, one markdown table.

    python -m bench                          # full run (several minutes), prints the table
    python -m bench --out docs/benchmarks.md # ... and writes it into the results file
    python -m bench --smoke                  # seconds-long CI run: same code, no thresholds

Processes: the fake upstream (`bench.upstream`), the bare aiohttp handler (`bench.bare`)
and the sidecar (`python -m proxy --config <tmp> --port <p>`) each run in their own
subprocess; this process is the load generator (bench/loadgen.py) and runs the in-process
engine and auth benchmarks. Every figure is the median of `--repeat` runs with min and
max; every ratio is computed within one run (same generator, back to back) and then
summarised, because absolute figures move between runs on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import ssl
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import growth, inproc, loadgen, tape
from bench import relay as relay_bench
from bench import requests as rq
from bench import ws as wsb
from bench.procs import ROOT, Helper, Sidecar, free_port, sidecar_config
from bench.report import Report, machine
from bench.util import cpu_s, rss_mb, run

HOST = "127.0.0.1"
ALL = ("placement", "passthrough", "market", "engine", "growth", "startup", "auth", "tls", "ws", "relay",
       "tape")
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


@dataclass
class Plan:
    repeat: int = 5
    duration_s: float = 3.0
    warmup_s: float = 0.5
    open_duration_s: float = 4.0
    concurrency: tuple[int, ...] = (1, 8, 32)
    offered: tuple[int, ...] = (500, 1000)
    passthrough_clients: int = 32
    growth_sizes: tuple[int, ...] = (1_000, 100_000, 1_000_000)
    engine_trades: int = 100_000
    walk_orders: int = 2_000
    auth_requests: int = 5_000
    relay_latency_frames: int = 2_000
    relay_fanout_clients: int = 500
    relay_fanout_rate: int = 100
    relay_fanout_s: float = 10.0
    relay_symbols: int = 50
    relay_steady_s: float = 5.0
    ws_streams: int = 100  # connected streams while 32 clients place orders
    ws_idle: int = 1_000  # idle streams for the memory figure
    ws_placers: tuple[int, ...] = (1, 32)
    tape_trades: int = 100_000
    tape_books: int = 3_600
    tape_orders: int = 100
    smoke: bool = False

    @classmethod
    def smoke_plan(cls) -> Plan:
        return cls(
            repeat=1, duration_s=0.4, warmup_s=0.1, open_duration_s=0.5,
            growth_sizes=(1_000, 10_000), engine_trades=5_000, walk_orders=100,
            auth_requests=500, ws_streams=4, ws_idle=20, ws_placers=(1, 2),
            relay_latency_frames=100, relay_fanout_clients=20,
            relay_fanout_s=0.5, relay_symbols=3, relay_steady_s=0.5, tape_trades=5_000,
            tape_books=180, tape_orders=20, smoke=True,
        )


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def check(result: loadgen.RunResult, what: str) -> loadgen.RunResult:
    """A benchmark that got errors measures the wrong thing: stop."""
    if result.errors:
        raise SystemExit(
            f"{what}: {result.errors} failed requests {result.statuses}: {result.sample_error!r}"
        )
    if not result.count:
        raise SystemExit(f"{what}: no request completed in the measured window")
    return result


class Bench:
    def __init__(self, plan: Plan, workdir: Path) -> None:
        self.plan = plan
        self.workdir = workdir
        self.r = Report()
        self._n = 0
        self.failures: list[str] = []

    def fresh_dir(self, name: str) -> Path:
        self._n += 1
        d = self.workdir / f"{self._n:03d}-{name}"
        d.mkdir(parents=True)
        return d

    def closed(
        self, port: int, build: Callable[[], bytes], conc: int, what: str,
        tls: loadgen.TlsClient | None = None,
    ) -> loadgen.RunResult:
        p = self.plan
        return check(
            run(loadgen.closed_loop(HOST, port, build, conc, p.duration_s, p.warmup_s, tls=tls)), what
        )

    def opened(self, port: int, build: Callable[[], bytes], rate: int, what: str) -> loadgen.RunResult:
        p = self.plan
        res = run(loadgen.open_loop(HOST, port, build, rate, p.open_duration_s, p.warmup_s))
        return check(res, what)

    # ------------------------------------------------------------------ 1. placement
    def placement(self, up: Helper, bare: Helper) -> None:
        """Signed resting LIMIT orders, persistence on (synchronous FULL): closed loop at
        each concurrency and open loop at each offered rate, bare handler back to back.
        A fresh sidecar (and database) per measurement keeps the open orders bounded."""
        r, p = self.r, self.plan
        sec = "1 order placement"
        for rep in range(p.repeat):
            for c in p.concurrency:
                cl = f"{c} client" if c == 1 else f"{c} clients"
                b = self.closed(bare.port, rq.resting_limit_orders(f"{HOST}:{bare.port}"), c, "bare")
                wd = self.fresh_dir(f"place-c{c}")
                with Sidecar(sidecar_config(wd, up.port), wd) as sc:
                    cpu0 = cpu_s(sc.pid)
                    s = self.closed(sc.port, rq.resting_limit_orders(f"{HOST}:{sc.port}"), c,
                                    f"sidecar orders, {cl}")
                    cpu = cpu_s(sc.pid) - cpu0
                log(f"placement rep {rep + 1} c={c}: sidecar {s.rate:.0f}/s, bare {b.rate:.0f}/s")
                tgt_rate = (">= 1,500", lambda v: v >= 1500) if c == 32 else None
                r.add(sec, f"sidecar orders/s, {cl}", "orders/s", s.rate, target=tgt_rate)
                tgt_p50 = ("< 2 ms", lambda v: v < 2.0) if c == 1 else None
                r.add(sec, f"sidecar p50, {cl}", "ms", s.p50_ms, target=tgt_p50)
                r.add(sec, f"sidecar p99, {cl}", "ms", s.p99_ms)
                r.add(sec, f"sidecar CPU per order, {cl}", "us", 1e6 * cpu / s.total)
                r.add(sec, f"bare handler req/s, {cl}", "req/s", b.rate)
                r.add(sec, f"bare handler p50, {cl}", "ms", b.p50_ms)
                tgt_ratio = (">= 35 %", lambda v: v >= 35) if c == 32 else None
                r.add(sec, f"sidecar / bare throughput, {cl}", "%",
                      100 * s.rate / b.rate, target=tgt_ratio)
                if c == 32:
                    # the ceiling: bare + one durable row per request, nothing else
                    wd = self.fresh_dir("durable-bare")
                    with Helper("bench.bare", "--durable", str(wd / "ack.sqlite3")) as dur:
                        d = self.closed(dur.port, rq.resting_limit_orders(f"{HOST}:{dur.port}"), c,
                                        "bare + durable ack")
                    r.add(sec, f"bare + durable ack req/s, {cl}", "req/s", d.rate)
                    r.add(sec, f"bare + durable ack / bare throughput, {cl}", "%",
                          100 * d.rate / b.rate)
                    r.add(sec, f"sidecar / (bare + durable ack) throughput, {cl}", "%",
                          100 * s.rate / d.rate)
            for rate in p.offered:
                b = self.opened(bare.port, rq.resting_limit_orders(f"{HOST}:{bare.port}"), rate, "bare")
                wd = self.fresh_dir(f"place-open{rate}")
                with Sidecar(sidecar_config(wd, up.port), wd) as sc:
                    s = self.opened(sc.port, rq.resting_limit_orders(f"{HOST}:{sc.port}"), rate,
                                    f"sidecar orders, open loop {rate}/s")
                log(f"placement rep {rep + 1} open {rate}/s: sidecar p99 {s.p99_ms:.2f} ms")
                tgt = ("< 10 ms", lambda v: v < 10.0) if rate == 500 else None
                r.add(sec, f"sidecar p99 at {rate}/s offered (open loop)", "ms", s.p99_ms, target=tgt)
                r.add(sec, f"sidecar p50 at {rate}/s offered (open loop)", "ms", s.p50_ms)
                r.add(sec, f"sidecar achieved at {rate}/s offered", "orders/s", s.rate)
                r.add(sec, f"bare handler p99 at {rate}/s offered", "ms", b.p99_ms)

    # ------------------------------------------------------------------ 2. passthrough
    def passthrough(self, up: Helper) -> None:
        """Public GETs through the sidecar vs straight to the same local upstream."""
        r, p = self.r, self.plan
        sec = "2 passthrough"
        # (name, path, exchangeInfo TTL of the sidecar): exchangeInfo from the sidecar's
        # cache as configured, and forwarded on every request (a 1 ms TTL: concurrent
        # identical requests still share one upstream call, as designed)
        targets = [("ticker/price", "/api/v3/ticker/price?symbol=BTCUSDT", 300.0),
                   ("exchangeInfo", "/api/v3/exchangeInfo", 300.0),
                   ("exchangeInfo forwarded (TTL 1 ms)", "/api/v3/exchangeInfo", 0.001)]
        for rep in range(p.repeat):
            for name, target, ttl in targets:
                wd = self.fresh_dir("passthrough")
                with Sidecar(sidecar_config(wd, up.port, exchange_info_ttl_s=ttl), wd) as sc:
                    direct = rq.public_get(f"{HOST}:{up.port}", target)
                    via = rq.public_get(f"{HOST}:{sc.port}", target)
                    d1 = self.closed(up.port, direct, 1, f"direct {name}")
                    s1 = self.closed(sc.port, via, 1, f"sidecar {name}")
                    n = p.passthrough_clients
                    dn = self.closed(up.port, direct, n, f"direct {name}")
                    sn = self.closed(sc.port, via, n, f"sidecar {name}")
                    log(f"passthrough rep {rep + 1} {name}: +{s1.p50_ms - d1.p50_ms:.3f} ms, "
                        f"{100 * sn.rate / dn.rate:.0f} % of direct")
                    r.add(sec, f"{name}: direct p50, 1 client", "ms", d1.p50_ms)
                    r.add(sec, f"{name}: via sidecar p50, 1 client", "ms", s1.p50_ms)
                    r.add(sec, f"{name}: added latency (p50 difference)", "ms",
                          s1.p50_ms - d1.p50_ms, target=("<= 0.5 ms", lambda v: v <= 0.5))
                    r.add(sec, f"{name}: direct req/s, {n} clients", "req/s", dn.rate)
                    r.add(sec, f"{name}: via sidecar req/s, {n} clients", "req/s", sn.rate)
                    r.add(sec, f"{name}: sidecar / direct throughput", "%", 100 * sn.rate / dn.rate,
                          target=(">= 60 %", lambda v: v >= 60))

    # ------------------------------------------------------------------ 3. market order
    def market(self, up: Helper) -> None:
        """A MARKET BUY that walks all 20 ask levels. Over HTTP the book is refetched per
        order (market_cache_ms 0): liquidity one paper order took from a book version is
        not available to the next until a new version arrives, so a cached book can be
        walked only once. The engine figure is the walk from a cached book alone."""
        r, p = self.r, self.plan
        sec = "3 marketable order, 20 levels"
        for rep in range(p.repeat):
            wd = self.fresh_dir("market")
            with Sidecar(sidecar_config(wd, up.port, market_cache_ms=0), wd) as sc:
                s = self.closed(sc.port, rq.market_orders(f"{HOST}:{sc.port}", "0.02"), 1,
                                "market orders")
            us = inproc.walk_from_cache_us(p.walk_orders)
            log(f"market rep {rep + 1}: HTTP p50 {s.p50_ms:.2f} ms, engine walk {us:.0f} us")
            r.add(sec, "HTTP p50, 1 client (book fetched per order)", "ms", s.p50_ms)
            r.add(sec, "HTTP p99, 1 client", "ms", s.p99_ms)
            r.add(sec, "HTTP orders/s, 1 client", "orders/s", s.rate)
            r.add(sec, "engine: submit walking the cached book", "us/order", us)

    # ------------------------------------------------------------------ 4. engine
    def engine(self) -> None:
        r, p = self.r, self.plan
        sec = "4 engine alone"
        for rep in range(p.repeat):
            tps, fills = inproc.engine_trades_per_s(p.engine_trades)
            log(f"engine rep {rep + 1}: {tps:,.0f} trades/s ({fills} fills)")
            r.add(sec, "on_market, 1,000 resting orders", "trades/s", tps,
                  target=(">= 50,000", lambda v: v >= 50_000))
            r.add(sec, "fills per 100 trades", "fills", 100 * fills / p.engine_trades)

    # ------------------------------------------------------------------ 5. growth
    def growth(self, up: Helper) -> None:
        """Placement rate (32 clients) and memory with n stored orders in the database."""
        r, p = self.r, self.plan
        sec = "5 growth"
        dbs: dict[int, Path] = {}
        for n in p.growth_sizes:
            path = self.workdir / f"growth-{n}.sqlite3"
            secs = growth.build(path, n)
            log(f"growth: built {n:,} stored orders in {secs:.1f} s")
            dbs[n] = path
        first, last = p.growth_sizes[0], p.growth_sizes[-1]
        for rep in range(p.repeat):
            rates: dict[int, float] = {}
            cpus: dict[int, float] = {}
            for n in p.growth_sizes:
                growth.reset(dbs[n], n)
                wd = self.fresh_dir(f"growth-{n}")
                with Sidecar(sidecar_config(wd, up.port, db=dbs[n]), wd) as sc:
                    time.sleep(0.3)
                    idle = rss_mb(sc.pid)
                    cpu0 = cpu_s(sc.pid)
                    s = self.closed(sc.port, rq.resting_limit_orders(f"{HOST}:{sc.port}"), 32,
                                    f"growth {n}")
                    cpu = cpu_s(sc.pid) - cpu0
                    busy = rss_mb(sc.pid)
                    startup = sc.startup_s
                rates[n] = s.rate
                cpus[n] = 1e6 * cpu / s.total
                log(f"growth rep {rep + 1} n={n:,}: {s.rate:.0f}/s, RSS {idle:.0f}/{busy:.0f} MB")
                label = f"{n:,} stored"
                r.add(sec, f"{label}: orders/s, 32 clients", "orders/s", s.rate)
                r.add(sec, f"{label}: p99, 32 clients", "ms", s.p99_ms)
                r.add(sec, f"{label}: sidecar CPU per order", "us", 1e6 * cpu / s.total)
                r.add(sec, f"{label}: RSS idle after start", "MB", idle)
                tgt = ("< 200 MB", lambda v: v < 200) if n == 100_000 else None
                r.add(sec, f"{label}: RSS after the run", "MB", busy, target=tgt)
                r.add(sec, f"{label}: start-up to /healthz 200", "s", startup)
            r.add(sec, f"rate at {last:,} / rate at {first:,}", "%", 100 * rates[last] / rates[first],
                  target=(">= 85 %", lambda v: v >= 85) if last >= 1_000_000 else None)
            r.add(sec, f"CPU per order at {last:,} / at {first:,}", "%", 100 * cpus[last] / cpus[first])

    # ------------------------------------------------------------------ 6. start-up
    def startup(self, up: Helper) -> None:
        r, p = self.r, self.plan
        sec = "6 start-up"
        for rep in range(max(p.repeat, 3)):
            wd = self.fresh_dir("startup")
            with Sidecar(sidecar_config(wd, up.port), wd) as sc:
                time.sleep(0.5)
                idle = rss_mb(sc.pid)
                startup = sc.startup_s
            log(f"startup rep {rep + 1}: {startup:.3f} s, {idle:.1f} MB")
            r.add(sec, "spawn to first 200 on /healthz (empty database)", "s", startup,
                  target=("< 1.5 s", lambda v: v < 1.5))
            r.add(sec, "idle RSS", "MB", idle, target=("< 80 MB", lambda v: v < 80))

    # ------------------------------------------------------------------ 7. auth
    def auth(self) -> None:
        r, p = self.r, self.plan
        sec = "7 auth micro"
        for _ in range(p.repeat):
            full, verify = inproc.auth_us(p.auth_requests)
            r.add(sec, "authenticate + parse_new_order", "us/request", full,
                  target=("< 50 us", lambda v: v < 50))
            r.add(sec, "signing.verify alone", "us/request", verify)
        log(f"auth: {self.r.fig(sec, 'authenticate + parse_new_order', 'us/request').median:.1f} us")

    # ------------------------------------------------------------------ 8. TLS
    def tls(self, up: Helper) -> None:
        """The TLS listener next to the plain one. Per request on a kept-alive connection,
        1 client, both listeners of one sidecar back to back: `GET /api/v3/time` (answered
        by the sidecar itself, so the difference is TLS alone) and a resting order. Order
        throughput at 32 clients, plain and TLS, each on a fresh sidecar and database (as
        in 1). TLS 1.3, ECDSA P-256 leaf from the local CA, the handshake outside the
        measured window."""
        r, p = self.r, self.plan
        sec = "8 TLS listener"
        for rep in range(p.repeat):
            wd = self.fresh_dir("tls-latency")
            tls_port = free_port()
            with Sidecar(sidecar_config(wd, up.port, tls_port=tls_port), wd) as sc:
                client = tls_client(wd, tls_port)
                clock = rq.public_get(f"{HOST}:{sc.port}", "/api/v3/time")
                plain_t = self.closed(sc.port, clock, 1, "plain GET /api/v3/time")
                tls_t = self.closed(tls_port, clock, 1, "TLS GET /api/v3/time", tls=client)
                orders = rq.resting_limit_orders(f"{HOST}:{sc.port}")
                # alternate which goes first: the first orders of a sidecar are the slowest
                if rep % 2:
                    tls_o = self.closed(tls_port, orders, 1, "TLS orders, 1 client", tls=client)
                    plain_o = self.closed(sc.port, orders, 1, "plain orders, 1 client")
                else:
                    plain_o = self.closed(sc.port, orders, 1, "plain orders, 1 client")
                    tls_o = self.closed(tls_port, orders, 1, "TLS orders, 1 client", tls=client)
            rates: dict[str, float] = {}
            cpus: dict[str, float] = {}
            for scheme in ("plain", "tls"):
                wd = self.fresh_dir(f"tls-{scheme}-c32")
                tls_port = free_port()
                with Sidecar(sidecar_config(wd, up.port, tls_port=tls_port), wd) as sc:
                    client = tls_client(wd, tls_port)
                    port, use = (sc.port, None) if scheme == "plain" else (tls_port, client)
                    cpu0 = cpu_s(sc.pid)
                    res = self.closed(port, rq.resting_limit_orders(f"{HOST}:{sc.port}"), 32,
                                      f"{scheme} orders, 32 clients", tls=use)
                    cpus[scheme] = 1e6 * (cpu_s(sc.pid) - cpu0) / res.total
                rates[scheme] = res.rate
            added = tls_t.p50_ms - plain_t.p50_ms
            log(f"tls rep {rep + 1}: +{added:.3f} ms p50 (time), +{tls_o.p50_ms - plain_o.p50_ms:.3f} ms "
                f"p50 (order); 32 clients {rates['tls']:.0f}/s TLS vs {rates['plain']:.0f}/s plain")
            r.add(sec, "GET /api/v3/time p50, plain, 1 client", "ms", plain_t.p50_ms)
            r.add(sec, "GET /api/v3/time p50, TLS, 1 client", "ms", tls_t.p50_ms)
            r.add(sec, "TLS added p50 per request (GET /api/v3/time, kept alive)", "ms", added,
                  target=("< 0.3 ms", lambda v: v < 0.3))
            r.add(sec, "order p50, plain, 1 client", "ms", plain_o.p50_ms)
            r.add(sec, "order p50, TLS, 1 client", "ms", tls_o.p50_ms)
            r.add(sec, "TLS added p50 per order (kept alive)", "ms", tls_o.p50_ms - plain_o.p50_ms)
            r.add(sec, "orders/s, plain, 32 clients", "orders/s", rates["plain"])
            r.add(sec, "orders/s, TLS, 32 clients", "orders/s", rates["tls"])
            r.add(sec, "TLS / plain order throughput, 32 clients", "%", 100 * rates["tls"] / rates["plain"],
                  target=(">= 70 %", lambda v: v >= 70))
            r.add(sec, "sidecar CPU per order, plain, 32 clients", "us", cpus["plain"])
            r.add(sec, "sidecar CPU per order, TLS, 32 clients", "us", cpus["tls"])
            r.add(sec, "sidecar CPU per order, TLS / plain, 32 clients", "%",
                  100 * cpus["tls"] / cpus["plain"])

    # ------------------------------------------------------------------ 9. user streams
    def ws(self, up: Helper) -> None:
        """User-data streams (bench/ws.py): REST ack -> push on an already-subscribed
        socket; RSS of idle streams; order placement with and without a stream that
        stopped reading, alternating in one run."""
        r, p = self.r, self.plan
        sec = "9 user streams"
        accounts = max(p.ws_streams, max(p.ws_placers), 5)
        for rep in range(p.repeat):
            for placers in p.ws_placers:
                streams = 1 if placers == 1 else p.ws_streams
                wd = self.fresh_dir(f"ws-push-{placers}")
                with Sidecar(wsb.ws_config(wd, up.port, accounts), wd) as sc:
                    res = run(wsb.ack_to_push(f"http://{HOST}:{sc.port}", f"{HOST}:{sc.port}", sc.port,
                                              placers, streams, p.duration_s, p.warmup_s))
                if res.missing or not res.latencies_ms:
                    raise SystemExit(f"ws: {res.missing} of {res.acked} acknowledged orders never pushed")
                what = (f"{placers} client{'s' if placers > 1 else ''}, "
                        f"{streams} stream{'s' if streams > 1 else ''}")
                log(f"ws rep {rep + 1} {what}: push - ack p50 {res.pct(0.5):+.2f} ms, "
                    f"p99 {res.pct(0.99):+.2f} ms; request -> push p50 "
                    f"{res.pct(0.5, res.request_ms):.2f} / p99 {res.pct(0.99, res.request_ms):.2f} ms; "
                    f"request -> ack p50 {res.pct(0.5, res.ack_ms):.2f} / p99 "
                    f"{res.pct(0.99, res.ack_ms):.2f} ms ({res.acked} orders, "
                    f"{100 * res.before_ack / res.acked:.0f} % pushed before the ack)")
                tgt = (("< 2 ms", lambda v: v < 2.0) if placers == 1 else ("< 10 ms", lambda v: v < 10.0))
                # signed: push arrival minus ack arrival (negative: the push came first)
                r.add(sec, f"ack -> push (push - ack, signed) p50, {what}", "ms", res.pct(0.5))
                r.add(sec, f"ack -> push (push - ack, signed) p99, {what}", "ms", res.pct(0.99), target=tgt)
                r.add(sec, f"pushes that arrived before the ack, {what}", "%",
                      100 * res.before_ack / res.acked)
                r.add(sec, f"request sent -> push p50, {what}", "ms", res.pct(0.5, res.request_ms))
                r.add(sec, f"request sent -> push p99, {what}", "ms", res.pct(0.99, res.request_ms))
                r.add(sec, f"request sent -> ack p50, {what}", "ms", res.pct(0.5, res.ack_ms))
                r.add(sec, f"request sent -> ack p99, {what}", "ms", res.pct(0.99, res.ack_ms))
                r.add(sec, f"orders/s while pushing, {what}", "orders/s", res.acked / res.duration_s)

            wd = self.fresh_dir("ws-idle")
            with Sidecar(wsb.ws_config(wd, up.port, accounts), wd) as sc:
                before, during = run(wsb.idle_streams(f"http://{HOST}:{sc.port}", p.ws_idle, accounts,
                                                      lambda: rss_mb(sc.pid)))
            log(f"ws rep {rep + 1}: RSS {before:.0f} MB idle, {during:.0f} MB with {p.ws_idle} streams")
            r.add(sec, f"RSS added by {p.ws_idle:,} idle streams", "MB", during - before,
                  target=("< 50 MB", lambda v: v < 50) if p.ws_idle >= 1000 else None)
            r.add(sec, f"RSS with {p.ws_idle:,} idle streams", "MB", during)

            # the three variants alternate within each repetition (same send_queue for all;
            # the stopped reader is cut off inside the measured window: bench/ws.py)
            rates: dict[str, float] = {}
            variants = {"none": "no stream", "reading": "a stream reading every push",
                        "silent": "a stream that stopped reading (cut off)"}
            for variant, label in variants.items():
                wd = self.fresh_dir(f"ws-{variant}")
                with Sidecar(wsb.ws_config(wd, up.port, accounts, wsb.PLACEMENT_SEND_QUEUE), wd) as sc:
                    cpu0 = cpu_s(sc.pid)
                    res, cut_at, cut = run(wsb.placement(f"http://{HOST}:{sc.port}", f"{HOST}:{sc.port}",
                                                         sc.port, variant, 32, p.duration_s, p.warmup_s))
                    cpu = cpu_s(sc.pid) - cpu0
                s = check(res, f"orders, {label}")
                r.add(sec, f"sidecar CPU per order, 32 clients, {label}", "us", 1e6 * cpu / s.total)
                rates[variant] = s.rate
                log(f"ws rep {rep + 1} {label}: {s.rate:.0f} orders/s, p99 {s.p99_ms:.1f} ms; slow readers "
                    f"cut off: {cut:.0f}" + (f", {cut_at:.2f} s into the {p.duration_s:g} s window"
                                             if cut_at is not None else ""))
                if variant == "silent":
                    if not p.smoke and (cut_at is None or not 0 <= cut_at <= p.duration_s):
                        self.failures.append(f"ws rep {rep + 1}: the stopped reader was not cut off "
                                             "within the measured window")
                    r.add(sec, "stopped reader cut off, seconds into the window", "s",
                          cut_at if cut_at is not None else float("nan"))
                elif cut:
                    self.failures.append(f"ws rep {rep + 1}: {label} was cut off as a slow reader")
                r.add(sec, f"orders/s, 32 clients, {label}", "orders/s", s.rate)
                r.add(sec, f"p99, 32 clients, {label}", "ms", s.p99_ms)
            r.add(sec, "orders/s: stopped reading / reading", "%", 100 * rates["silent"] / rates["reading"])
            r.add(sec, "orders/s: stopped reading / no stream", "%", 100 * rates["silent"] / rates["none"])
            r.add(sec, "orders/s: reading / no stream", "%", 100 * rates["reading"] / rates["none"])
        for label in variants.values():
            # run-to-run spread of the same variant, to judge the ratios above against
            f = r.fig(sec, f"orders/s, 32 clients, {label}", "orders/s")
            if len(f.samples) > 1:
                r.add(sec, f"orders/s spread (max - min) / median, {label}", "%",
                      100 * (max(f.samples) - min(f.samples)) / f.median)

    # ------------------------------------------------------------------ 10. market stream
    def relay(self) -> None:
        """bench/relay.py: the relay's added latency, fan-out, and watched symbols' REST cost."""
        r, p = self.r, self.plan
        sec = "10 market stream"
        for rep in range(p.repeat):
            wd = self.fresh_dir("relay")
            f = run(relay_bench.run_all(
                wd, latency_n=p.relay_latency_frames, fanout_clients=p.relay_fanout_clients,
                fanout_rate=p.relay_fanout_rate, fanout_s=p.relay_fanout_s,
                symbols=p.relay_symbols, steady_s=p.relay_steady_s,
            ))
            s = relay_bench.summary(f)
            if not f.via_ms:
                log("relay: the sidecar does not serve GET /ws: latency and fan-out not measured")
            log(f"relay rep {rep + 1}: added per frame p50 {s['added_p50']:.3f} ms, p99 "
                f"{s['added_p99']:.3f} ms (p99 via - p99 direct {s['p99_difference']:.3f} ms); "
                f"fan-out {s['delivered_pct']:.1f} % delivered, {s['cpu_ms_per_1000']:.1f} ms CPU/1000; "
                f"{s['watched_rest_per_s']:.2f} REST req/s for a watched symbol ({f.symbols} symbols), "
                f"{s['other_rest_per_s']:.2f} req/s for none of them "
                f"(steady-state requests by path: {f.steady_rest})")
            r.add(sec, "frame via the sidecar's /ws: p50", "ms", s["via_p50"])
            r.add(sec, "frame via the sidecar's /ws: p99", "ms", s["via_p99"])
            r.add(sec, "frame straight from the upstream: p50", "ms", s["direct_p50"])
            r.add(sec, "frame straight from the upstream: p99", "ms", s["direct_p99"])
            r.add(sec, "relay added latency per frame (via - direct, same frame), p50", "ms",
                  s["added_p50"], target=("< 0.3 ms", lambda v: v < 0.3))
            r.add(sec, "relay added latency per frame (via - direct, same frame), p99", "ms",
                  s["added_p99"], target=("< 2 ms", lambda v: v < 2.0))
            cl = f"{p.relay_fanout_clients} clients, {p.relay_fanout_rate} frames/s"
            r.add(sec, f"fan-out to {cl}: frames delivered", "%", s["delivered_pct"],
                  target=("100 %", lambda v: v >= 100))  # NaN (no /ws): not met
            r.add(sec, f"fan-out to {cl}: upstream subscriptions", "subs", s["upstream_subs"],
                  target=("1", lambda v: v == 1))
            r.add(sec, f"fan-out to {cl}: sidecar CPU per 1,000 frames delivered", "ms",
                  s["cpu_ms_per_1000"])
            r.add(sec, f"{f.symbols} watched symbols, steady state: REST requests for a watched "
                  "symbol (any path)", "req/s", s["watched_rest_per_s"], target=("0", lambda v: v == 0))
            r.add(sec, f"{f.symbols} watched symbols, steady state: REST requests for no watched "
                  "symbol (all-symbols ticker/price...; by path in the log)", "req/s", s["other_rest_per_s"])
            for path, n in sorted(f.steady_rest.items()):
                if "?symbol=" not in path:  # all-symbols answers: a row each, by path
                    r.add(sec, f"{f.symbols} watched symbols, steady state: {path} (all symbols)",
                          "req/s", n / f.steady_s)
            r.add(sec, f"{f.symbols} watched symbols: REST requests per symbol to start streaming",
                  "req", s["init_rest_per_symbol"])
            r.add(sec, f"{f.symbols} watched symbols: orders placed to all on the stream", "s",
                  s["sync_s"])

    # ------------------------------------------------------------------ 11. tape
    def tape(self) -> None:
        """One recorded hour (generated, in --record's format) replayed in step mode to
        its end with resting orders; the pytest fixture's start-up and teardown."""
        r, p = self.r, self.plan
        sec = "11 replay on tape time"
        hour = self.workdir / "tape-hour.yaml"
        gen = tape.generate(hour, p.tape_trades, p.tape_books)
        log(f"tape: generated {gen['trades']:,} trades, {gen['books']:,} books, "
            f"{gen['bytes'] / 1e6:.1f} MB in {gen['write_s']:.0f} s")
        r.add(sec, f"cassette on disk per recorded hour ({p.tape_books:,} depth + trades pages)", "MB",
              gen["bytes"] / 1e6 * 3600 / gen["seconds"])
        stream = tape.generate_stream(self.workdir / "tape-stream.yaml", p.tape_trades, p.tape_books)
        r.add(sec, "... the same hour recorded from the stream (deal and depth-diff frames)", "MB",
              stream["bytes"] / 1e6 * 3600 / stream["seconds"])
        t0 = time.perf_counter()
        tape.load_tape(self.workdir / "tape-stream.yaml")
        r.add(sec, "loading the stream-recorded hour (frames decoded, books rebuilt from diffs)", "s",
              time.perf_counter() - t0)
        for rep in range(p.repeat):
            out = tape.replay_hour(hour, self.fresh_dir("tape"), p.tape_orders)
            total = out["load_s"] + out["replay_s"]
            log(f"tape rep {rep + 1}: load {out['load_s']:.2f} s, replay {out['replay_s']:.2f} s, "
                f"{out['fills']} fills")
            label = f"{p.tape_trades:,} trades + {p.tape_books:,} books, {p.tape_orders} resting orders"
            r.add(sec, f"load + step to the end: {label}", "s", total,
                  target=("< 10 s", lambda v: v < 10) if p.tape_trades >= 100_000 else None)
            r.add(sec, "of which loading the cassette", "s", out["load_s"])
            r.add(sec, "of which matching every step (POST /admin/api/clock to the end)", "s",
                  out["replay_s"])
            r.add(sec, "steps matched per second", "steps/s", out["steps"] / out["replay_s"])
            r.add(sec, "fills", "fills", out["fills"])
        starts, stops = tape.fixture_times(ROOT / "cassettes" / "scripted_gap_down.yaml", max(p.repeat, 3))
        for a, b in zip(starts, stops, strict=True):
            r.add(sec, "mexc_paper fixture start-up (scripted cassette)", "ms", 1000 * a,
                  target=("< 1 s", lambda v: v < 1000))
            r.add(sec, "mexc_paper fixture teardown, database included", "ms", 1000 * b,
                  target=("< 1 s", lambda v: v < 1000))

    def run(self, only: tuple[str, ...]) -> None:
        with Helper("bench.upstream") as up, Helper("bench.bare") as bare:
            log(f"fake upstream on :{up.port} (pid {up.pid}), bare handler on :{bare.port}")
            for name in ALL:
                if name not in only:
                    continue
                t0 = time.perf_counter()
                try:
                    if name == "placement":
                        self.placement(up, bare)
                    elif name in ("passthrough", "market", "growth", "startup", "tls", "ws"):
                        getattr(self, name)(up)
                    else:
                        getattr(self, name)()
                except (Exception, SystemExit) as exc:  # report the others, then fail
                    self.failures.append(f"{name}: {exc}")
                    log(f"{name} FAILED: {exc!r}")
                    continue
                log(f"{name} done in {time.perf_counter() - t0:.0f} s")


def tls_client(workdir: Path, port: int, timeout_s: float = 10.0) -> loadgen.TlsClient:
    """A client of the sidecar's TLS listener, trusting its local CA (made in `workdir`),
    once the listener accepts connections."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((HOST, port), timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    return loadgen.TlsClient(ssl.create_default_context(cafile=str(workdir / "tls" / "ca.crt")))


def command_line(argv: list[str]) -> str:
    return "python -m bench" + ("" if not argv else " " + " ".join(argv))


def markdown(bench: Bench, argv: list[str], elapsed_s: float) -> str:
    m = machine()
    n_targets, missed = bench.r.summary()
    lines = [
        BEGIN,
        f"Command: `{command_line(argv)}` (run from the repository root; "
        f"{elapsed_s / 60:.1f} min, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}).",
        "",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in m.items()) + ".",
        "",
        f"Each figure: median of {bench.plan.repeat} runs (min, max); ratios are computed "
        "within each run, then summarised."
        + (" **Smoke run: durations too short for the figures to mean anything.**"
           if bench.plan.smoke else ""),
        "",
        bench.r.table(),
        "",
        f"Targets met: {n_targets - len(missed)} of {n_targets}"
        + (". Missed: " + "; ".join(f"{f.section} / {f.name} ({f.target[0] if f.target else ''})"
                                    for f in missed) if missed else "") + ".",
        *(f"\n**Failed:** {f}" for f in bench.failures),
        END,
    ]
    return "\n".join(lines)


def write_results(path: Path, block: str) -> None:
    """Replace the generated block of `path`, keeping the hand-written text around it."""
    if path.exists():
        text = path.read_text(encoding="utf-8")
        if BEGIN in text and END in text:
            head, rest = text.split(BEGIN, 1)
            _, tail = rest.split(END, 1)
            path.write_text(head + block + tail, encoding="utf-8")
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Benchmarks\n\n## Results\n\n" + block + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="seconds-long run for CI, no thresholds")
    ap.add_argument("--out", type=Path, help="write the results block into this markdown file")
    ap.add_argument("--only", help=f"comma-separated subset of: {','.join(ALL)}")
    ap.add_argument("--repeat", type=int, help="runs per figure (default 5, smoke 1)")
    ap.add_argument("--duration", type=float, help="seconds per measured window (default 3)")
    ap.add_argument("--workdir", type=Path, help="where databases go (default: a temp dir)")
    ap.add_argument("--json", type=Path, help="also write every sample as JSON here")
    args = ap.parse_args(argv)
    plan = Plan.smoke_plan() if args.smoke else Plan()
    if args.repeat:
        plan.repeat = args.repeat
    if args.duration:
        plan.duration_s = args.duration
        plan.open_duration_s = max(args.duration, 1.0)
    only = tuple(args.only.split(",")) if args.only else ALL
    unknown = set(only) - set(ALL)
    if unknown:
        ap.error(f"--only: unknown benchmark(s) {', '.join(sorted(unknown))}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mexc-paper-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    bench = Bench(plan, workdir)
    t0 = time.perf_counter()
    try:
        bench.run(only)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    block = markdown(bench, argv, time.perf_counter() - t0)
    print(block.replace(BEGIN + "\n", "").replace("\n" + END, ""))
    if args.out:
        write_results(args.out if args.out.is_absolute() else Path.cwd() / args.out, block)
        log(f"results written to {args.out}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(
            {"plan": asdict(plan), "machine": machine(),
             "figures": [{"section": f.section, "name": f.name, "unit": f.unit,
                          "samples": f.samples} for f in bench.r.figures.values()]},
            indent=1), encoding="utf-8")
    return 1 if bench.failures else 0


if __name__ == "__main__":
    sys.exit(main())
