"""The processes under test: the fake upstream, the bare handler and the sidecar itself
(`python -m proxy --config <tmp> --port <p>`), each its own subprocess on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import suppress
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
KEY = "mx0vglbenchkey0001"
SECRET = "bench-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(root: Path = ROOT) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAPER_TRADING", "PROXY_"))}
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    return env


class Helper:
    """A helper server (`python -m bench.upstream` / `bench.bare`) that prints `PORT n`."""

    def __init__(self, module: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT, env=_env(), stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"{module} did not start: {line!r}")
        self.port = int(line.split()[1])

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self) -> Helper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def sidecar_config(
    workdir: Path,
    upstream_port: int,
    db: Path | None = None,
    market_cache_ms: int = 250,
    synchronous: str = "FULL",
    exchange_info_ttl_s: float = 300,
    ws_url: str | None = None,
    tls_port: int | None = None,
) -> Path:
    """A config for the sidecar under test: the committed defaults, except an upstream on
    127.0.0.1, a DB in `workdir`, a rich account and no 500-open-orders cap; with
    `tls_port`, the TLS listener there (local CA in `workdir`/tls)."""
    server: dict[str, Any] = {"host": "127.0.0.1", "port": 8080}
    if tls_port is not None:
        server["tls"] = {"port": tls_port}
    cfg: dict[str, Any] = {
        "server": server,
        "upstream": {
            "base_url": f"http://127.0.0.1:{upstream_port}",
            "timeout_s": 10,
            "connect_timeout_s": 3,
            "market_cache_ms": market_cache_ms,
            "exchange_info_ttl_s": exchange_info_ttl_s,
            "ws_url": ws_url,
        },
        "storage": {"path": str(db or workdir / "paper.sqlite3"), "synchronous": synchronous},
        "logging": {"level": "INFO", "access_log": False},
        "accounts": [
            {
                "api_key": KEY,
                "secret_key": SECRET,
                "name": "bench",
                "balances": {"USDT": "1000000000000", "BTC": "1000000"},
            }
        ],
        "paper": {"max_open_orders": 100_000},
    }
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


class Sidecar:
    """`python -m proxy` as a subprocess; `startup_s` is the time from spawn to the first
    200 on /healthz."""

    def __init__(self, config: Path, cwd: Path, root: Path = ROOT) -> None:
        """`root`: the directory `proxy` is imported from (another checkout, to compare)."""
        self.port = free_port()
        self.log_path = cwd / f"sidecar-{self.port}.log"
        self._log = open(self.log_path, "w", encoding="utf-8")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "proxy", "--config", str(config), "--port", str(self.port)],
            cwd=cwd, env=_env(root), stdout=self._log, stderr=subprocess.STDOUT,
        )
        self.startup_s = self._wait_healthy(t0)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _wait_healthy(self, t0: float, timeout: float = 30) -> float:
        url = f"http://127.0.0.1:{self.port}/healthz"
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sidecar exited early; log: {self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - t0
            except OSError:
                time.sleep(0.005)
        self.stop()
        raise RuntimeError("sidecar: no 200 on /healthz")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        with suppress(Exception):
            self._log.close()

    def __enter__(self) -> Sidecar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
