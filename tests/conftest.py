"""Shared fixtures: settings for tests, a fake upstream, the app under test, a signer."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_upstream import FakeMexc
from mexc_client import ccxt_query
from skip_policy import (  # noqa: F401  (CI fails on undeclared skips)
    pytest_make_collect_report,
    pytest_runtest_makereport,
)

from proxy.accesslog import SafeAccessLogger
from proxy.app import create_app
from proxy.clock import FixedClock
from proxy.config import (
    DEFAULT_WS_URL,
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
    """Offline settings. The market stream is off (`ws_url` None) unless a test passes
    `ws_url=` (a fake's) or an `upstream` with its own non-default `ws_url`."""
    paper = kw.pop("paper", PaperSettings(poll_interval_s=3600))
    upstream = kw.pop(
        "upstream",
        UpstreamSettings(base_url=base_url, timeout_s=2, connect_timeout_s=1, market_cache_ms=0),
    )
    ws_url = kw.pop("ws_url", None)
    if ws_url is not None or upstream.ws_url == DEFAULT_WS_URL:
        upstream = replace(upstream, ws_url=ws_url)
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
def aiohttp_client(aiohttp_client: Any) -> Any:
    """pytest-aiohttp's client, with the sidecar's query-free access logger (the default
    aiohttp access log would write every signature into the log)."""

    async def go(app: Any, **kw: Any) -> Any:
        if isinstance(app, web.Application):
            # TestServer drops constructor kwargs; start it ourselves with the logger
            server = TestServer(app)
            await server.start_server(access_log_class=SafeAccessLogger)
            app = server
        return await aiohttp_client(app, **kw)

    return go


@pytest.fixture
def aiohttp_server(aiohttp_server: Any) -> Any:
    """Fake upstreams too: live-mode tests forward signed requests to them."""

    async def go(app: Any, **kw: Any) -> Any:
        kw.setdefault("access_log_class", SafeAccessLogger)
        return await aiohttp_server(app, **kw)

    return go


@pytest.fixture
def fake(clock: FixedClock) -> FakeMexc:
    return FakeMexc(clock.now_ms)


@pytest.fixture(autouse=True)
def paper_mode_sends_nothing_signed(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test that uses a fake upstream (`fake`, or a module's override of it) checks
    at teardown that it received no signed request and no X-MEXC-APIKEY header: in paper
    mode nothing signed ever leaves the machine. Live-mode tests that forward on purpose
    opt out, explicitly, with `@pytest.mark.live_upstream`."""
    if "fake" not in request.fixturenames or request.node.get_closest_marker("live_upstream"):
        yield
        return
    upstream: FakeMexc = request.getfixturevalue("fake")
    yield
    signed = [(s.method, s.path) for s in upstream.signed_requests()]
    assert signed == [], (
        f"the fake upstream received signed requests or an API key header: {signed} "
        "(a live-mode test that forwards on purpose must be marked @pytest.mark.live_upstream)"
    )


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
def remote_connection(monkeypatch: pytest.MonkeyPatch) -> tuple[str, int]:
    """Every request looks as if it reached a non-loopback address of this machine (a
    bot in another container reaching `0.0.0.0`): test servers listen on 127.0.0.1 only,
    so the connection's local address is replaced where proxy/trust.py reads it."""
    from proxy import trust

    address = ("192.0.2.10", 8080)
    monkeypatch.setattr(trust, "local_address", lambda request: address)
    return address


@pytest.fixture
def captured_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


class _AllRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    # vcrpy logs every request the *test client* makes while a cassette is active
    # ("Invoking Request http://127.0.0.1:.../api/v3/order?...&signature=..."), hosts it
    # ignores included: that is the test's own traffic, not a line the sidecar wrote.
    _HARNESS = ("vcr.", "vcr")

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "vcr" or record.name.startswith(self._HARNESS):
            return
        try:
            text = record.getMessage()
        except Exception:  # a broken format string is a bug of its own, keep the raw text
            text = str(record.msg)
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.lines.append(f"{record.name}: {text}")


@pytest.fixture(scope="session", autouse=True)
def no_secrets_in_logs() -> Any:
    """Across the whole suite: no API key, secret or signature is ever logged."""
    import re

    from proxy import api
    from proxy.service import PaperService

    # every key and secret any in-process sidecar of the suite was configured with, and
    # every key header a client sent it (unknown keys included)
    used: set[str] = {KEY, SECRET, KEY2, SECRET2, "mx0vglpaperdemo", "paperdemosecret"}
    original_init, original_auth = PaperService.__init__, api.authenticate

    def init(self: PaperService, settings: Settings, *args: Any, **kw: Any) -> None:
        used.update(settings.secrets())  # keys, secrets and the admin token
        original_init(self, settings, *args, **kw)

    async def authenticate(request: web.Request) -> Any:
        used.add(request.headers.get("X-MEXC-APIKEY", ""))
        return await original_auth(request)

    handler = _AllRecords()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(PaperService, "__init__", init)
        mp.setattr(api, "authenticate", authenticate)
        yield handler
    root.removeHandler(handler)
    root.setLevel(old_level)
    forbidden = sorted(w for w in used if len(w) >= 8)  # shorter ones would match any text
    sig = re.compile(r"[0-9a-f]{64}")
    for line in handler.lines:
        for word in forbidden:
            assert word not in line, f"secret or full API key in a log line: {line[:200]!r}"
        assert not sig.search(line), f"signature-like hex in a log line: {line[:200]!r}"


@pytest.fixture(scope="session")
def vcr_config() -> dict[str, Any]:
    """Cassettes are reviewed artefacts: keys and signatures filtered, decoded bodies."""
    return {
        "filter_headers": ["X-MEXC-APIKEY"],
        "filter_query_parameters": ["timestamp", "signature", "recvWindow"],
        "decode_compressed_response": True,
        "ignore_hosts": ["127.0.0.1", "localhost", "::1"],
        "allow_playback_repeats": True,
        "match_on": ["method", "scheme", "host", "port", "path", "query"],
    }


@pytest.fixture(scope="session")
def vcr_cassette_dir() -> str:
    return str(ROOT / "cassettes")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The figures the reliability tests recorded (relsupport.record_figures) are merged
    into $MEXC_PAPER_FIGURES when it is set, e.g. `MEXC_PAPER_FIGURES=/tmp/ci.json
    python -m pytest tests/reliability -p no:randomly`. No test exists only to report.
    (Here and not in tests/reliability/conftest.py: a second module named `conftest`
    would shadow this one for the `from conftest import ...` of the other tests.)"""
    rel = sys.modules.get("relsupport")
    if rel is not None:
        path = rel.write_figures(os.environ.get("MEXC_PAPER_FIGURES"))
        if path is not None:
            print(f"\n[figures] written to {path}")
