"""Replay as a real process (issue 18): the clock flags, a malformed scripted cassette
stopping start-up with exit code 2, and crash safety on tape time (kill -9, restart: the
acknowledged orders are there and the tape resumes where the database left off)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from mexc_client import ccxt_query
from process_support import free_port, wait_healthy

ROOT = Path(__file__).resolve().parents[2]
GAP = ROOT / "cassettes" / "scripted_gap_down.yaml"
START = 1_767_225_600_000
KEY, SECRET = "mx0vglpaperdemo", "paperdemosecret"


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAPER_TRADING", "PROXY_"))}
    return subprocess.run(
        [sys.executable, "-m", "proxy", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=30
    )


def test_a_malformed_scripted_cassette_stops_start_up_naming_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GAP.read_text().replace('qty: "0.05"', "qty: 0.05"), encoding="utf-8")
    line = next(i for i, ln in enumerate(bad.read_text().splitlines(), 1) if "qty: 0.05" in ln)
    proc = run(["--config", str(ROOT / "config.yaml"), "--replay", str(bad), "--step"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"mexc-paper: cassette error: {bad} line {line}: market.BTCUSDT[1].trade.qty: "
        'must be a quoted decimal string, e.g. "0.5" (got 0.05)'
    )


def test_the_clock_flags_are_checked(tmp_path: Path) -> None:
    config = ["--config", str(ROOT / "config.yaml")]
    proc = run([*config, "--step"], tmp_path)
    assert (proc.returncode, proc.stderr.strip()) == (
        2,
        "mexc-paper: configuration error: --step: only with --replay (or upstream.replay_path)",
    )
    proc = run([*config, "--replay", str(GAP), "--speed", "0"], tmp_path)
    assert proc.returncode == 2 and "--speed: must be greater than 0" in proc.stderr
    proc = run([*config, "--replay", str(GAP), "--speed", "2", "--step"], tmp_path)
    assert proc.returncode == 2 and "not allowed with argument" in proc.stderr


class Sidecar:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PAPER_TRADING", "PROXY_"))}
        env["MEXC_PAPER_DB"] = str(self.tmp / "replay.sqlite3")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "proxy",
                "--config",
                str(ROOT / "config.yaml"),
                "--port",
                str(self.port),
                "--replay",
                str(GAP),
                "--step",
            ],
            cwd=self.tmp,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_healthy(self.port, self.proc)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        assert self.proc.stderr is not None
        self.proc.stderr.close()

    def call(self, method: str, path: str, params: dict[str, Any]) -> Any:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}?{ccxt_query(params, SECRET)}",
            method=method,
            headers={"X-MEXC-APIKEY": KEY},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def clock(self, body: dict[str, int] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/admin/api/clock",
            data=data,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())


def test_kill_9_in_replay_keeps_acknowledged_orders_and_resumes_the_tape(tmp_path: Path) -> None:
    sc = Sidecar(tmp_path)
    sc.start()
    try:
        ack = sc.call(
            "POST",
            "/api/v3/order",
            {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01", "price": "86995.00"},
        )
        assert sc.clock({"to_ms": START + 2500})["passed"]["steps"] == 2
        second = sc.call(
            "POST",
            "/api/v3/order",
            {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01", "price": "86999.00"},
        )
    finally:
        sc.kill()
    sc.start()
    try:
        # both acknowledged orders survived; the tape resumed where the database left off
        # (the second order's arrival), not at its start
        assert sc.clock()["tape_ms"] == START + 2500
        for oid in (ack["orderId"], second["orderId"]):
            o = sc.call("GET", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": oid})
            assert o["status"] == "NEW"
        moved = sc.clock({"to_ms": START + 10_000})
        assert moved["passed"]["fills"] == 2
        fills = sc.call("GET", "/api/v3/myTrades", {"symbol": "BTCUSDT"})
        assert sorted((f["price"], f["time"]) for f in fills) == [
            ("86995", START + 10_000),
            ("86999", START + 10_000),
        ]
    finally:
        sc.kill()
