"""Fixtures for the end-to-end suite: a fake MEXC and the sidecar, both on 127.0.0.1.

Every test gets a fresh fake upstream (the real recordings) and a fresh sidecar (a new
SQLite file, the demo account with 10000 USDT and 1 BTC). When a test ends, two things
are checked whatever the test did: the sidecar logged no unexpected error, and the fake
upstream never saw a signed request or an API key header (paper mode sends nothing
signed upstream, even though pymexc sends its key header on public calls and signs
klines/avgPrice).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_upstream import FakeMexcThread

from .e2e_harness import ErrorLog, Market, Sidecar, load_test_settings
from .fresh_clone import FreshClone, make_fresh_clone

# every request any fake upstream saw during the e2e run, for the final check
SEEN: list = []

# The clients' own DEBUG logs carry their API key and signatures (ccxt logs its request
# headers, urllib3 its URLs). They are the bot's logs, not the sidecar's: the suite-wide
# no-secrets-in-logs check (tests/conftest.py) is about the sidecar, so keep them quiet.
CLIENT_LOGGERS = ("ccxt", "urllib3", "requests", "pymexc", "curl_cffi", "charset_normalizer")


@pytest.fixture(scope="session", autouse=True)
def quiet_client_loggers() -> Iterator[None]:
    saved = {name: logging.getLogger(name).level for name in CLIENT_LOGGERS}
    for name in CLIENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture
def market() -> Iterator[Market]:
    with FakeMexcThread() as thread:
        m = Market(thread)
        yield m
        seen = m.requests()
        SEEN.extend(seen)
    assert [s for s in seen if "signature" in s.query] == []
    assert [s for s in seen if any(k.lower() == "x-mexc-apikey" for k in s.headers)] == []
    assert thread.fake.signed_requests() == []


def _sidecar(market: Market, tmp_path: Path, poll_interval_s: float) -> Iterator[Sidecar]:
    errors = ErrorLog()
    root = logging.getLogger()
    root.addHandler(errors)
    try:
        with Sidecar(load_test_settings(market.url, tmp_path, poll_interval_s)) as s:
            yield s
    finally:
        root.removeHandler(errors)
    assert errors.records == [], errors.records


@pytest.fixture
def sidecar(market: Market, tmp_path: Path) -> Iterator[Sidecar]:
    """Market polling is slow (an hour): fills happen only when an order arrives."""
    yield from _sidecar(market, tmp_path, 3600)


@pytest.fixture
def polling_sidecar(market: Market, tmp_path: Path) -> Iterator[Sidecar]:
    """Market polling every 20 ms, for resting orders that fill from the tape."""
    yield from _sidecar(market, tmp_path, 0.02)


@pytest.fixture(scope="session", autouse=True)
def upstream_never_saw_a_signed_request() -> Iterator[None]:
    """At the end of the e2e run: across every test, the upstream saw public requests and
    not one of them carried a signature or an API key."""
    yield
    if SEEN:
        assert [s for s in SEEN if "signature" in s.query] == []
        assert [s for s in SEEN if any(k.lower() == "x-mexc-apikey" for k in s.headers)] == []


@pytest.fixture(scope="session")
def fresh_clone(tmp_path_factory: pytest.TempPathFactory) -> FreshClone:
    """The repository as a new user has it after the README's Quick start (fresh_clone.py)."""
    return make_fresh_clone(tmp_path_factory.mktemp("clone"))
