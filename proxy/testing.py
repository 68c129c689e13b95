"""pytest plugin for bot projects: a mexc-paper sidecar per test, replaying a cassette on
a stepped tape, so a bot's tests get the same fills on every run and every machine.

Opt in per project (it is not registered automatically):

    # conftest.py
    pytest_plugins = ["proxy.testing"]        # or: pytest -p proxy.testing

    @pytest.mark.mexc_paper(cassette="cassettes/dip.yaml", balances={"USDT": "1000"})
    def test_my_bot(mexc_paper):
        bot = MyBot(base_url=mexc_paper.base_url, key=mexc_paper.api_key,
                    secret=mexc_paper.secret_key)
        bot.place_orders()
        mexc_paper.advance(5_000)              # the tape moves 5 s; every trade and book
        assert mexc_paper.fills("BTCUSDT")     # in them has been matched on return

The marker's arguments (all optional except the cassette, which may instead come from a
`mexc_paper_cassette` fixture the project overrides):
  cassette   a recorded or scripted cassette; a relative path is looked up next to the
             test module, then from the rootdir
  balances   the starting balances of the one default account ({"USDT": "10000"})
  accounts   instead: a list of accounts as in config.yaml (api_key, secret_key, name,
             balances)
  config     any other config.yaml sections, e.g. {"paper": {"fees": {"*": {"maker": "0.001"}}}}

The sidecar runs in a thread with its own event loop (a bot under test may be
synchronous, ccxt's blocking client, and would block a loop it shared), on a free port of
127.0.0.1, with its database in a temporary folder removed at teardown. It is the same
code as `python -m proxy --replay CASSETTE --step`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from . import keys, render
from .accesslog import SafeAccessLogger
from .app import create_app
from .config import settings_from_mapping
from .engine.model import Balance
from .tape.tape import load_tape

DEFAULT_API_KEY = "mx0vglpapertest"
DEFAULT_SECRET_KEY = "paper-test-secret"  # noqa: S105 (a paper account's, never MEXC's)
DEFAULT_BALANCES = {"USDT": "10000"}
TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Account:
    api_key: str
    secret_key: str
    name: str | None
    account_id: int


def ccxt_urls(base: str) -> dict[str, Any]:
    """ccxt's `urls` override for mexc with every MEXC host replaced by `base` (the same
    as README's "ccxt" recipe)."""
    return {
        "api": {
            "spot": {"public": base, "private": base},
            "contract": {"public": base + "/api/v1/contract", "private": base + "/api/v1/private"},
            "spot2": {"public": base + "/open/api/v2", "private": base + "/open/api/v2"},
            "broker": {"private": base + "/api/v3/broker"},
        }
    }


class MexcPaper:
    """A running sidecar on a stepped tape (what the `mexc_paper` fixture gives a test)."""

    def __init__(
        self,
        cassette: str | Path,
        accounts: list[dict[str, Any]] | None = None,
        config: dict[str, Any] | None = None,
        workdir: str | Path | None = None,
    ) -> None:
        self.cassette = Path(cassette)
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="mexc-paper-"))
        data: dict[str, Any] = copy.deepcopy(config or {})
        data.setdefault("dashboard", {}).setdefault("enabled", False)
        data.setdefault("storage", {}).setdefault("path", str(self.workdir / "paper.sqlite3"))
        data["storage"].setdefault("synchronous", "NORMAL")
        data["accounts"] = accounts or [
            {"api_key": DEFAULT_API_KEY, "secret_key": DEFAULT_SECRET_KEY, "balances": DEFAULT_BALANCES}
        ]
        settings = settings_from_mapping(data, {})
        self.settings = replace(
            settings,
            server=replace(settings.server, host="127.0.0.1", port=0),
            upstream=replace(settings.upstream, replay_path=str(self.cassette), record_path=None,
                             replay_mode="step"),
        )
        self.tape = load_tape(self.cassette)
        self.port = 0
        self.accounts: list[Account] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mexc-paper", daemon=True)
        self._runner: web.AppRunner | None = None
        self._app: web.Application | None = None

    # ---- lifecycle ----
    def start(self) -> MexcPaper:
        self._thread.start()
        try:
            self._call(self._start())
        except BaseException:
            self.stop()
            raise
        return self

    async def _start(self) -> None:
        app = create_app(self.settings, tape=self.tape)
        runner = web.AppRunner(app, access_log_class=SafeAccessLogger, access_log=None,
                               shutdown_timeout=1.0)
        self._runner, self._app = runner, app
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.port = int(runner.addresses[0][1])
        service = app[keys.SERVICE]
        self.accounts = [
            Account(a.api_key, a.secret_key, a.name, service.keys[a.api_key].account_id)
            for a in self.settings.accounts
        ]

    def stop(self) -> None:
        """Stop the sidecar and delete its database (when the folder is its own)."""
        if self._thread.is_alive():
            if self._runner is not None:
                with contextlib.suppress(Exception):
                    self._call(self._runner.cleanup())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(TIMEOUT_S)
        if not self._loop.is_running() and not self._loop.is_closed():
            self._loop.close()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> MexcPaper:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(TIMEOUT_S)

    @property
    def _sidecar(self) -> web.Application:
        assert self._app is not None, "the sidecar is not running"
        return self._app

    # ---- where and who ----
    @property
    def base_url(self) -> str:
        """What a bot uses instead of https://api.mexc.com."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """What a bot uses instead of wss://wbs-api.mexc.com/ws."""
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def api_key(self) -> str:
        return self.accounts[0].api_key

    @property
    def secret_key(self) -> str:
        return self.accounts[0].secret_key

    def ccxt_urls(self) -> dict[str, Any]:
        """`urls` for `ccxt.mexc({...})` pointing every MEXC host at this sidecar."""
        return ccxt_urls(self.base_url)

    # ---- the tape ----
    @property
    def start_ms(self) -> int:
        return self.tape.start_ms

    @property
    def end_ms(self) -> int:
        return self.tape.end_ms

    @property
    def tape_ms(self) -> int:
        return self.clock()["tape_ms"]

    def clock(self) -> dict[str, Any]:
        """What GET /admin/api/clock answers."""
        replay = self._sidecar[keys.TAPE]

        async def state() -> dict[str, Any]:
            return replay.state()

        return self._call(state())

    def advance(self, ms: int | None = None, *, to_ms: int | None = None) -> dict[str, Any]:
        """Move the tape by `ms`, or to `to_ms`, and return once every trade and book up
        to the new time has been matched: the clock's state plus what it passed (as
        POST /admin/api/clock answers)."""
        return self._call(self._move(ms, to_ms))

    async def advance_async(self, ms: int | None = None, *, to_ms: int | None = None) -> dict[str, Any]:
        """`advance` for a test running its own event loop (an async bot)."""
        fut = asyncio.run_coroutine_threadsafe(self._move(ms, to_ms), self._loop)
        return await asyncio.wrap_future(fut)

    async def _move(self, ms: int | None, to_ms: int | None) -> dict[str, Any]:
        if (ms is None) == (to_ms is None):
            raise TypeError("advance(ms) or advance(to_ms=...), one of them")
        body = {"advance_ms": ms} if ms is not None else {"to_ms": to_ms}
        return await self._sidecar[keys.TAPE].move(body)

    def wait_subscriptions(self, n: int = 1, timeout_s: float = 10.0) -> None:
        """Wait until the sidecar serves at least `n` public stream subscriptions (a bot
        subscribes asynchronously; move the tape once its subscriptions are in, or it
        misses the frames)."""
        self._call(asyncio.wait_for(self._channels().wait_subscriptions(n), timeout_s))

    async def wait_subscriptions_async(self, n: int = 1, timeout_s: float = 10.0) -> None:
        """`wait_subscriptions` for a test running its own event loop (an async bot)."""
        coro = asyncio.wait_for(self._channels().wait_subscriptions(n), timeout_s)
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    def _channels(self) -> Any:
        channels = self._sidecar[keys.TAPE].channels
        assert channels is not None
        return channels

    # ---- what the account did (for assertions) ----
    def _account_id(self, account: int | str) -> int:
        if isinstance(account, int):
            return self.accounts[account].account_id
        for a in self.accounts:
            if account in (a.api_key, a.name):
                return a.account_id
        raise KeyError(f"no account {account!r}")

    def orders(self, symbol: str | None = None, account: int | str = 0) -> list[dict[str, Any]]:
        """Every order of the account (open and closed), oldest first, as GET
        /api/v3/order renders each one."""
        account_id = self._account_id(account)

        async def read() -> list[dict[str, Any]]:
            app = self._sidecar
            await app[keys.STORE].flush()
            rows = await app[keys.STORE].orders(account_id, symbol, None, None, 1_000_000)
            live = app[keys.SERVICE].account(account_id).open_orders
            return [render.order_query(live.get(o.order_id, o)) for o in rows]

        return self._call(read())

    def open_orders(self, symbol: str | None = None, account: int | str = 0) -> list[dict[str, Any]]:
        return [o for o in self.orders(symbol, account) if o["status"] in ("NEW", "PARTIALLY_FILLED")]

    def fills(self, symbol: str | None = None, account: int | str = 0) -> list[dict[str, Any]]:
        """The account's fills, oldest first, as GET /api/v3/myTrades renders them."""
        account_id = self._account_id(account)

        async def read() -> list[dict[str, Any]]:
            store = self._sidecar[keys.STORE]
            await store.flush()
            fills = await store.fills(account_id, symbol, None, None, None, 1_000_000)
            return [render.trade(f) for f in fills]

        return self._call(read())

    def balances(self, account: int | str = 0) -> dict[str, Balance]:
        """asset -> Balance(asset, free, locked) with exact Decimals (`.total` too)."""
        account_id = self._account_id(account)

        async def read() -> dict[str, Balance]:
            return {b.asset: b for b in self._sidecar[keys.SERVICE].balances(account_id)}

        return self._call(read())

    def events(self, kind: str | None = None, account: int | str | None = None) -> list[dict[str, Any]]:
        """The audit log, oldest first (kind: "order.fill", or a family like "order.*")."""
        account_id = None if account is None else self._account_id(account)

        async def read() -> list[dict[str, Any]]:
            store = self._sidecar[keys.STORE]
            await store.flush()
            return list(reversed(await store.events(account_id, kind, limit=1_000_000)))

        return self._call(read())


# --------------------------------------------------------------------------- the plugin


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "mexc_paper(cassette, balances=None, accounts=None, config=None): the mexc_paper "
        "fixture's cassette, accounts and configuration (proxy.testing)",
    )


@pytest.fixture
def mexc_paper_cassette() -> str | Path | None:
    """The cassette when a test's marker names none (override it in a conftest.py)."""
    return None


def _resolve(cassette: str | Path, request: pytest.FixtureRequest) -> Path:
    p = Path(cassette)
    if p.is_absolute():
        candidates = [p]
    else:
        candidates = list(dict.fromkeys([Path(request.path).parent / p, Path(request.config.rootpath) / p]))
    for c in candidates:
        if c.exists():
            return c
    looked = ", ".join(map(str, candidates))
    raise pytest.UsageError(f"mexc_paper: no such cassette {cassette} (looked in {looked})")


@pytest.fixture
def mexc_paper(request: pytest.FixtureRequest, mexc_paper_cassette: str | Path | None) -> Iterator[MexcPaper]:
    """A mexc-paper sidecar on a stepped tape for this test (see the module's docstring)."""
    marker = request.node.get_closest_marker("mexc_paper")
    opts: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    if marker is not None and marker.args:
        opts.setdefault("cassette", marker.args[0])
    cassette = opts.pop("cassette", None) or mexc_paper_cassette
    if cassette is None:
        raise pytest.UsageError(
            "mexc_paper: which cassette? @pytest.mark.mexc_paper(cassette=...) or a "
            "mexc_paper_cassette fixture"
        )
    balances = opts.pop("balances", None)
    accounts = opts.pop("accounts", None)
    config = opts.pop("config", None)
    if opts:
        raise pytest.UsageError(f"mexc_paper: unknown marker arguments {sorted(opts)}")
    if balances is not None:
        if accounts is not None:
            raise pytest.UsageError("mexc_paper: give balances or accounts, not both")
        money = {k: str(v) if isinstance(v, int | Decimal) else v for k, v in balances.items()}
        accounts = [{"api_key": DEFAULT_API_KEY, "secret_key": DEFAULT_SECRET_KEY, "balances": money}]
    paper = MexcPaper(_resolve(cassette, request), accounts, config)
    paper.start()
    try:
        yield paper
    finally:
        paper.stop()
