"""Before/after: the sidecar from another checkout against this one, in the same run.

    python -m bench.compare --base /path/to/old/checkout [--repeat 5] [--duration 3]

Both sidecars get the same upstream, config and load generator, and are measured in
alternating order (base, new, new, base, ...), so machine noise hits both alike. Reported
per side: orders/s and latency at 1 and 32 clients, p99 at 500 orders/s offered (open
loop), the CPU the sidecar's main (event loop) thread and its other threads (SQLite
writer) spend per order, and the engine's trades/s (bench.inproc, run with each side's
`proxy` on the path). `--base` must contain a `proxy/` package.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import loadgen
from bench import requests as rq
from bench.procs import ROOT, Helper, Sidecar, sidecar_config
from bench.util import run


def _thread_cpu(pid: int) -> dict[str, float]:
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", encoding="ascii") as f:
                x = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        out[tid] = (int(x[11]) + int(x[12])) / os.sysconf("SC_CLK_TCK")
    return out


def _engine(root: Path, trades: int) -> float:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); sys.path.insert(1, sys.argv[2]);"
        "from bench import inproc; print(inproc.engine_trades_per_s(int(sys.argv[3]))[0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(root), str(ROOT), str(trades)],
        capture_output=True, text=True, check=True, cwd=tempfile.gettempdir(),
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, required=True)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--engine-trades", type=int, default=50_000)
    args = ap.parse_args()
    sides = {"before": args.base.resolve(), "after": ROOT}
    rows: dict[str, dict[str, list[float]]] = {s: {} for s in sides}

    def add(side: str, name: str, value: float) -> None:
        rows[side].setdefault(name, []).append(value)

    work = Path(tempfile.mkdtemp(prefix="mexc-paper-compare-"))
    try:
        with Helper("bench.upstream") as up:
            for rep in range(args.repeat):
                order = list(sides.items()) if rep % 2 == 0 else list(sides.items())[::-1]
                for side, root in order:
                    for conc in (1, 32):
                        wd = work / f"{side}-{rep}-{conc}"
                        with Sidecar(sidecar_config(wd, up.port), wd, root=root) as sc:
                            build = rq.resting_limit_orders(f"127.0.0.1:{sc.port}")
                            c0 = _thread_cpu(sc.pid)
                            r = run(loadgen.closed_loop("127.0.0.1", sc.port, build, conc,
                                                        args.duration, 0.3))
                            c1 = _thread_cpu(sc.pid)
                        main_tid = str(sc.pid)
                        add(side, f"orders/s, {conc} clients", r.rate)
                        add(side, f"p50 ms, {conc} clients", r.p50_ms)
                        add(side, f"p99 ms, {conc} clients", r.p99_ms)
                        add(side, f"max ms, {conc} clients", max(r.latencies_ns) / 1e6)
                        add(side, f"main-thread CPU us/order, {conc} clients",
                            1e6 * (c1[main_tid] - c0.get(main_tid, 0)) / r.total)
                        add(side, f"other-threads CPU us/order, {conc} clients",
                            1e6 * sum(c1[t] - c0.get(t, 0) for t in c1 if t != main_tid) / r.total)
                    wd = work / f"{side}-{rep}-open"
                    with Sidecar(sidecar_config(wd, up.port), wd, root=root) as sc:
                        build = rq.resting_limit_orders(f"127.0.0.1:{sc.port}")
                        r = run(loadgen.open_loop("127.0.0.1", sc.port, build, 500,
                                                  max(args.duration, 2.0), 0.3))
                    add(side, "p99 ms at 500/s offered", r.p99_ms)
                    add(side, "max ms at 500/s offered", max(r.latencies_ns) / 1e6)
                    add(side, "engine trades/s", _engine(root, args.engine_trades))
                    print(f"rep {rep + 1} {side}: "
                          f"{rows[side]['orders/s, 32 clients'][-1]:.0f} orders/s at 32", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"| figure (median of {args.repeat}, same run) | before | after | after / before |")
    print("|---|---:|---:|---:|")
    for name in rows["after"]:
        b = statistics.median(rows["before"][name])
        a = statistics.median(rows["after"][name])
        print(f"| {name} | {b:,.2f} | {a:,.2f} | {a / b:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
