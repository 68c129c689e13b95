"""Helpers shared by the reliability tests: MEXC-shape checks, a signing caller, the
ledger checks (conservation of money through fills) and the figures recorder.

Figures: the reliability tests record what they did (requests, kills, examples, faults)
with `record_figures`, in memory. At the end of the session, tests/conftest.py
merges them into `$MEXC_PAPER_FIGURES` when it is set (`write_figures`); that file is
where the numbers in docs/reliability.md come from.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS))

from fake_upstream import FakeMexcThread  # noqa: E402  (tests/ on the path first)
from mexc_client import ccxt_query  # noqa: E402
from process_support import free_port  # noqa: E402


def _root_conftest() -> Any:
    """tests/conftest.py, loaded by path: `import conftest` names whichever conftest.py
    pytest imported last (tests/e2e has its own)."""
    name = "mexc_paper_tests_conftest"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, TESTS / "conftest.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_conftest = _root_conftest()
KEY: str = _conftest.KEY
SECRET: str = _conftest.SECRET
KEY2: str = _conftest.KEY2
SECRET2: str = _conftest.SECRET2
NOW: int = _conftest.NOW
make_settings = _conftest.make_settings

ZERO = Decimal(0)
# every key a signature, secret or full API key could hide under in a log or upstream call
SIGNED_PARAM = "signature="


FIGURES: dict[str, Any] = {}  # name -> values, recorded during this session


def record_figures(name: str, **values: Any) -> None:
    """Keep `values` under `name` for this session's figures (a later call with the same
    name replaces them); always printed (`pytest -s` shows them)."""
    print(f"[figures] {name}: {json.dumps(values, sort_keys=True, default=str)}")
    FIGURES[name] = values


def write_figures(target: str | None) -> Path | None:
    """Merge this session's figures into the JSON file `target` (if set and any were
    recorded): figures of tests that did not run this time stay as they were."""
    if not target or not FIGURES:
        return None
    path = Path(target)
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except ValueError:
            data = {}
    data.update(FIGURES)
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    return path


def assert_mexc_error(status: int, content_type: str, body: bytes) -> dict[str, Any]:
    """A MEXC error: JSON object {"code": int, "msg": str}, no traceback, status >= 400."""
    assert status >= 400, (status, body[:300])
    assert content_type.startswith("application/json"), (status, content_type, body[:300])
    assert b"Traceback" not in body, body[:300]
    data = json.loads(body)
    assert isinstance(data, dict), body[:300]
    assert set(data) == {"code", "msg"}, body[:300]
    assert isinstance(data["code"], int) and not isinstance(data["code"], bool), body[:300]
    assert isinstance(data["msg"], str), body[:300]
    return data


def assert_mexc_answer(status: int, content_type: str, body: bytes) -> Any:
    """Any /api/ answer: JSON, never a 500, errors MEXC-shaped."""
    assert status != 500 and status < 600, (status, body[:300])
    if status >= 400:
        return assert_mexc_error(status, content_type, body)
    assert content_type.startswith("application/json"), (status, content_type, body[:300])
    return json.loads(body)


class Caller:
    """Signs like ccxt and calls an aiohttp TestClient or ClientSession + base URL."""

    def __init__(self, session: Any, key: str, secret: str, clock: Any = None, base: str = "") -> None:
        self.session = session
        self.key = key
        self.secret = secret
        self.clock = clock
        self.base = base
        self.requests = 0
        self.statuses: dict[str, int] = {}

    async def raw(
        self, method: str, path: str, params: Mapping[str, Any] | None = None
    ) -> tuple[int, str, bytes]:
        ts = self.clock.now_ms() if self.clock is not None else None
        q = ccxt_query(dict(params or {}), self.secret, ts=ts)
        async with self.session.request(
            method, f"{self.base}{path}?{q}", headers={"X-MEXC-APIKEY": self.key}
        ) as resp:
            body = await resp.read()
            self.requests += 1
            self.statuses[str(resp.status)] = self.statuses.get(str(resp.status), 0) + 1
            return resp.status, resp.headers.get("Content-Type", ""), body

    async def call(
        self, method: str, path: str, params: Mapping[str, Any] | None = None
    ) -> tuple[int, Any]:
        status, ctype, body = await self.raw(method, path, params)
        return status, assert_mexc_answer(status, ctype, body)

    async def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        status, data = await self.call("GET", "/api/v3/account")
        assert status == 200, data
        return check_account_body(data)


def check_account_body(data: Any) -> dict[str, tuple[Decimal, Decimal]]:
    """GET /api/v3/account: every asset's free and locked are plain, non-negative decimals."""
    out: dict[str, tuple[Decimal, Decimal]] = {}
    for b in data["balances"]:
        free, locked = Decimal(b["free"]), Decimal(b["locked"])
        assert free >= 0 and locked >= 0, b
        assert "E" not in b["free"] + b["locked"], b
        out[b["asset"]] = (free, locked)
    return out


def expected_totals(initial: Mapping[str, Decimal], fills: Iterable[Any], base: str = "BTC",
                    quote: str = "USDT") -> dict[str, Decimal]:
    """Starting balances moved by every fill (MEXC: fee in the quote asset on both sides,
    or in MX when deducted). `fills` are myTrades JSON objects or store Fill objects."""
    totals = {a: Decimal(v) for a, v in initial.items()}

    def add(asset: str, amount: Decimal) -> None:
        totals[asset] = totals.get(asset, ZERO) + amount

    for f in fills:
        if isinstance(f, dict):
            buy = bool(f["isBuyer"])
            qty, quote_qty = Decimal(f["qty"]), Decimal(f["quoteQty"])
            fee, fee_asset = Decimal(f["commission"]), f["commissionAsset"]
        else:
            buy = f.side.value == "BUY"
            qty, quote_qty, fee, fee_asset = f.qty, f.quote_qty, f.commission, f.commission_asset
        add(base, qty if buy else -qty)
        add(quote, -quote_qty if buy else quote_qty)
        add(fee_asset, -fee)
    return totals


# --------------------------------------------------------------------------- the real process

ROOT = TESTS.parent


def start_process(tmp_path: Path, cfg: dict[str, Any]) -> tuple[subprocess.Popen[bytes], int, Path]:
    """`python -m proxy` with `cfg` (its port filled in), stderr to a file; returns once
    /healthz answers."""
    port = free_port()
    cfg = {**cfg, "server": {**cfg.get("server", {}), "port": port}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAPER_TRADING", "PROXY_"))}
    log_path = tmp_path / "stderr.log"
    with log_path.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "proxy", "--config", str(tmp_path / "config.yaml")],
                                cwd=ROOT, env=env, stdout=err, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:
        assert proc.poll() is None, log_path.read_text()[-2000:]
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return proc, port, log_path
        except OSError:
            assert time.monotonic() < deadline, "sidecar did not start"
            time.sleep(0.02)  # polling another process's port: it offers no event to await


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, and wait for the graceful exit."""
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)


def raw_http(port: int, data: bytes, timeout: float = 5) -> bytes:
    """Send `data` to 127.0.0.1:`port` and return everything read until the close."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def base_config(fake: FakeMexcThread, tmp_path: Path, **server: Any) -> dict[str, Any]:
    """A config for `start_process`: the fake upstream, one account, DEBUG logs, and the
    `server` keys given."""
    return {
        "server": server,
        "upstream": {"base_url": fake.url, "timeout_s": 2, "market_cache_ms": 0, "ws_url": None},
        "storage": {"path": str(tmp_path / "db.sqlite3")},
        "logging": {"level": "DEBUG", "format": "text", "access_log": True},
        "accounts": [{"api_key": KEY, "secret_key": SECRET, "balances": {"USDT": "10000"}}],
    }
