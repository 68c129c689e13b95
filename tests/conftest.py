"""Shared fixtures: settings for tests, a fake upstream, the app under test, a signer."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_upstream import FakeMexc
from mexc_client import ccxt_query

from proxy.app import create_app
from proxy.clock import FixedClock
from proxy.config import (
    AccountSettings,
    PaperSettings,
    ServerSettings,
    Settings,
    StorageSettings,
    UpstreamSettings,
)

ROOT = Path(__file__).resolve().parent.parent
KEY, SECRET = "test-key-aaaa1111", "test-secret"
KEY2, SECRET2 = "test-key-bbbb2222", "test-secret-2"
NOW = 1_767_205_900_000  # just after the recorded market (2025-12-31)


def make_settings(tmp_path: Path, base_url: str = "http://127.0.0.1:9", **kw: Any) -> Settings:
    paper = kw.pop("paper", PaperSettings(poll_interval_s=3600))
    upstream = kw.pop(
        "upstream",
        UpstreamSettings(base_url=base_url, timeout_s=2, connect_timeout_s=1, market_cache_ms=0),
    )
    accounts = kw.pop(
        "accounts",
        (
            AccountSettings(KEY, SECRET, {"USDT": Decimal("10000"), "BTC": Decimal("1")}, "one"),
            AccountSettings(KEY2, SECRET2, {"USDT": Decimal("500")}, "two"),
        ),
    )
    return Settings(
        server=kw.pop("server", ServerSettings()),
        upstream=upstream,
        storage=StorageSettings(path=str(tmp_path / "paper.sqlite3"), synchronous="NORMAL"),
        accounts=accounts,
        paper=paper,
        reraise_unexpected=kw.pop("reraise_unexpected", True),
        **kw,
    )


@pytest.fixture
def fake() -> FakeMexc:
    return FakeMexc()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
async def fake_server(aiohttp_server: Any, fake: FakeMexc) -> Any:
    return await aiohttp_server(fake.app())


@pytest.fixture
async def client(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock
) -> TestClient:
    settings = make_settings(tmp_path, str(fake_server.make_url("")).rstrip("/"))
    return await aiohttp_client(create_app(settings, clock=clock))


Signer = Callable[..., Any]


@pytest.fixture
def signed(client: TestClient, clock: FixedClock) -> Signer:
    """signed(method, path, params, key=KEY, secret=SECRET) -> (status, json) the ccxt way."""

    async def call(
        method: str, path: str, params: dict[str, Any] | None = None,
        key: str = KEY, secret: str = SECRET,
    ) -> tuple[int, Any]:
        q = ccxt_query(params or {}, secret, ts=clock.now_ms())
        resp = await client.request(method, f"{path}?{q}", headers={"X-MEXC-APIKEY": key})
        return resp.status, await resp.json()

    return call


@pytest.fixture
def captured_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog
