"""Helpers for the browser tests: the sidecar as a real process, signed calls, screenshots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fake_upstream import FakeMexcThread
from mexc_client import ccxt_query

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from process_support import free_port, wait_healthy

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
# Debian's chromium; $MEXC_PAPER_CHROMIUM names another (scripts/test.sh reads it too)
CHROMIUM = Path(os.environ.get("MEXC_PAPER_CHROMIUM") or "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# two paper accounts; the first is the one the browser looks at
ACCOUNTS = [
    {"api_key": "mx0vglbrowseralpha", "secret_key": "browser-secret-alpha", "name": "alpha",
     "balances": {"USDT": "10000", "BTC": "1"}},
    {"api_key": "mx0vglbrowserbeta", "secret_key": "browser-secret-beta", "name": "beta",
     "balances": {"USDT": "500"}},
]


@dataclass
class Sidecar:
    url: str
    proc: subprocess.Popen[bytes]
    market: FakeMexcThread
    log_path: Path
    accounts: list[dict[str, Any]] = field(default_factory=lambda: ACCOUNTS)

    def key(self, n: int = 0) -> tuple[str, str]:
        return self.accounts[n]["api_key"], self.accounts[n]["secret_key"]

    def signed(self, method: str, path: str, params: dict[str, Any] | None = None,
               account: int = 0) -> tuple[int, Any]:
        """A signed MEXC call, the way ccxt signs it."""
        key, secret = self.key(account)
        q = ccxt_query(params or {}, secret)
        req = urllib.request.Request(f"{self.url}{path}?{q}", method=method,
                                     headers={"X-MEXC-APIKEY": key})
        return _open(req)

    def admin(self, method: str, path: str, data: dict[str, Any] | None = None) -> tuple[int, Any]:
        req = urllib.request.Request(
            f"{self.url}{path}", method=method,
            data=None if data is None else json.dumps(data).encode(),
            headers={"Content-Type": "application/json"},
        )
        return _open(req)

    def reset(self, account_id: int = 1) -> None:
        status, _ = self.admin("POST", f"/admin/api/accounts/{account_id}/reset", {})
        assert status == 200


def _open(req: urllib.request.Request) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def start_sidecar(tmp: Path, market: FakeMexcThread, live: bool = False) -> Sidecar:
    port = free_port()
    config = {
        "server": {"host": "127.0.0.1", "port": port},
        "upstream": {"base_url": market.url, "timeout_s": 2, "connect_timeout_s": 1,
                     "market_cache_ms": 0, "ws_url": None},  # offline: no market stream
        "storage": {"path": str(tmp / "paper.sqlite3"), "synchronous": "NORMAL"},
        "live": {"enabled": live},
        "accounts": ACCOUNTS,
        "paper": {"poll_interval_s": 0.2},
        # the timer never fires during a test: every point comes from start, a reset or trading
        "dashboard": {"equity_interval_s": 60, "equity_change_gap_s": 0.2},
    }
    cfg = tmp / "config.json"
    cfg.write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAPER_TRADING", "PROXY_", "MEXC_"))}
    if live:
        env["PAPER_TRADING"] = "false"
    log_path = tmp / "sidecar.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "proxy", "--config", str(cfg)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        wait_healthy(port, proc)  # type: ignore[arg-type]
    except BaseException:
        proc.kill()
        raise
    return Sidecar(f"http://127.0.0.1:{port}", proc, market, log_path)


def stop_sidecar(s: Sidecar) -> None:
    s.proc.terminate()
    try:
        s.proc.wait(10)
    except subprocess.TimeoutExpired:
        s.proc.kill()
        s.proc.wait(5)


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def eventually(check: Any, timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll `check()` until it returns a truthy value (the browser updates on its own)."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
