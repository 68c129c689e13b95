"""The sidecar under test, for real clients: a local fake MEXC and mexc-paper on 127.0.0.1.

`Sidecar` runs the real app (`proxy.app.create_app`) in a thread with its own event loop,
listening on a free port of 127.0.0.1, with settings loaded from a config file exactly as
`python -m proxy --config` loads them. Its upstream is a `FakeMexc` (tests/fake_upstream.py)
serving the real recordings, also on 127.0.0.1, so unmodified sync and async clients
(ccxt, pymexc, requests, curl) can talk to it over real sockets.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web
from fake_upstream import FakeMexc, FakeMexcThread

from proxy.accesslog import SafeAccessLogger
from proxy.app import WATCHER, create_app
from proxy.config import Settings, load_settings

# The README's demo account (config.yaml): the recipes use exactly these.
KEY = "mx0vglpaperdemo"
SECRET = "paperdemosecret"
SYMBOL = "BTCUSDT"


def config_text(upstream_url: str, db_path: Path, poll_interval_s: float = 3600) -> str:
    """A complete config file for the sidecar under test (the subprocess uses it too)."""
    return f"""\
server:
  host: 127.0.0.1
  port: 8080
upstream:
  base_url: {upstream_url}
  timeout_s: 5
  connect_timeout_s: 2
  market_cache_ms: 0
  ws_url: null             # offline: no market stream
storage:
  path: {db_path}
  synchronous: NORMAL
logging:
  level: INFO
accounts:
  - api_key: {KEY}
    secret_key: {SECRET}
    name: demo
    balances: {{USDT: "10000", BTC: "1"}}
paper:
  poll_interval_s: {poll_interval_s}
dashboard:
  enabled: false
"""


def load_test_settings(upstream_url: str, tmp_path: Path, poll_interval_s: float = 3600) -> Settings:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(config_text(upstream_url, tmp_path / "paper.sqlite3", poll_interval_s))
    return load_settings(cfg, {})


class ErrorLog(logging.Handler):
    """Collects ERROR records of the sidecar: an unexpected exception becomes a MEXC 500
    for the client, and the test should say which one."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(("proxy", "aiohttp")):
            self.records.append(f"{record.name}: {record.getMessage()}")


class Sidecar:
    """mexc-paper in a thread: `with Sidecar(settings) as s: ... s.url ...`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.app: web.Application | None = None
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sidecar", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._start())
        except BaseException as exc:  # reported by __enter__
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        self.app = create_app(self.settings)
        self._runner = web.AppRunner(
            self.app, access_log_class=SafeAccessLogger, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 10) -> Any:
        """Run a coroutine on the sidecar's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def watcher_cycles(self, n: int = 1) -> None:
        """Let the market watcher complete `n` more polling cycles (each one is poked)."""
        assert self.app is not None
        self.run(self.app[WATCHER].wait_cycles(n))

    def __enter__(self) -> Sidecar:
        self._thread.start()
        self._ready.wait(15)
        if self._error is not None:
            raise RuntimeError("the sidecar did not start") from self._error
        assert self.port, "the sidecar did not start in time"
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        try:
            self.run(stop(), timeout=15)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(15)
            self.loop.close()


class Market:
    """Thread-safe scripting of the fake MEXC from a test (it runs on its own loop)."""

    def __init__(self, thread: FakeMexcThread) -> None:
        self.thread = thread
        self.fake: FakeMexc = thread.fake

    @property
    def url(self) -> str:
        return self.thread.url

    def print_trade(self, price: str, qty: str, buyer_maker: bool, time_ms: int) -> None:
        self.thread.call(self.fake.print_trade, SYMBOL, price, qty, buyer_maker, time_ms)

    def requests(self) -> list[Any]:
        return list(self.thread.call(lambda: list(self.fake.seen)))

    def signed_requests(self) -> list[Any]:
        return list(self.thread.call(self.fake.signed_requests))
