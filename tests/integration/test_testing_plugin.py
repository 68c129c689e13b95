"""The pytest plugin `proxy.testing` (issue 18): the `mexc_paper` fixture used as a bot
project uses it (pytester, a pytest of its own in a subprocess), and `MexcPaper` itself:
keys, clock moves, read access for assertions, teardown with the database."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from e2e.bot_recipes import mexc_paper_urls
from mexc_client import ccxt_query

from proxy.testing import MexcPaper, ccxt_urls

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
GAP = ROOT / "cassettes" / "scripted_gap_down.yaml"
START = 1_767_225_600_000


def call(paper: MexcPaper, method: str, path: str, params: dict, account: int = 0) -> dict:
    import urllib.request

    acct = paper.accounts[account]
    req = urllib.request.Request(
        f"{paper.base_url}{path}?{ccxt_query(params, acct.secret_key)}", method=method,
        headers={"X-MEXC-APIKEY": acct.api_key},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def test_mexc_paper_runs_a_stepped_tape_and_reads_back_what_happened() -> None:
    accounts = [
        {"api_key": "bot-a", "secret_key": "secret-a", "name": "a", "balances": {"USDT": "2000"}},
        {"api_key": "bot-b", "secret_key": "secret-b", "balances": {"BTC": "1"}},
    ]
    with MexcPaper(GAP, accounts) as paper:
        workdir = paper.workdir
        assert (workdir / "paper.sqlite3").exists()
        assert paper.base_url == f"http://127.0.0.1:{paper.port}" and paper.ws_url.endswith("/ws")
        assert (paper.api_key, paper.secret_key) == ("bot-a", "secret-a")
        assert (paper.start_ms, paper.end_ms, paper.tape_ms) == (START, START + 30_000, START)
        buy = call(paper, "POST", "/api/v3/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                                    "quantity": "0.01", "price": "86995.00"})
        assert [o["orderId"] for o in paper.open_orders("BTCUSDT")] == [buy["orderId"]]
        assert paper.orders(account=1) == [] and paper.fills() == []
        moved = paper.advance(to_ms=START + 10_000)
        assert moved["passed"]["fills"] == 1 and moved["tape_ms"] == START + 10_000
        (order,) = paper.orders("BTCUSDT", account="a")
        assert (order["status"], order["updateTime"]) == ("FILLED", START + 10_000)
        (fill,) = paper.fills("BTCUSDT")
        assert (fill["price"], fill["qty"], fill["isMaker"]) == ("86995", "0.01", True)
        balances = paper.balances()
        assert balances["BTC"].free == Decimal("0.01")
        assert balances["USDT"].total == Decimal("2000") - Decimal("869.95")  # maker fee 0
        assert paper.balances("bot-b")["BTC"].free == 1
        assert [e["kind"] for e in paper.events("order.*")] == ["order.new", "order.fill"]
        assert paper.advance(5000)["tape_ms"] == START + 15_000
        with pytest.raises(TypeError):
            paper.advance()
        with pytest.raises(ValueError, match="never goes back"):
            paper.advance(to_ms=START)
    assert not workdir.exists()  # the database went with it


async def test_advance_async_from_a_test_with_its_own_loop() -> None:
    with MexcPaper(GAP) as paper:
        moved = await paper.advance_async(to_ms=START + 1000)
        assert moved["passed"]["trades"] == 1


def test_ccxt_urls_are_the_readme_recipe() -> None:
    assert ccxt_urls("http://127.0.0.1:1234") == mexc_paper_urls("http://127.0.0.1:1234")


def test_the_fixture_in_a_project(pytester: pytest.Pytester) -> None:
    """Marker and fixture overrides, path lookup, clear errors, teardown of the database."""
    (pytester.path / "cassettes").mkdir()
    (pytester.path / "cassettes" / "gap.yaml").write_text(GAP.read_text())
    pytester.makeconftest(
        """
        import pytest
        pytest_plugins = ["proxy.testing"]

        @pytest.fixture
        def mexc_paper_cassette():
            return "cassettes/gap.yaml"   # from the rootdir
        """
    )
    pytester.makepyfile(
        test_bot="""
        import json, pytest
        from pathlib import Path

        def test_default_cassette_and_account(mexc_paper):
            assert mexc_paper.clock()["cassette"] == "gap.yaml"
            assert mexc_paper.api_key == "mx0vglpapertest"
            assert mexc_paper.balances()["USDT"].free == 10000
            Path("workdir.txt").write_text(str(mexc_paper.workdir))

        @pytest.mark.mexc_paper(balances={"BTC": "2"}, config={"paper": {"fill_model": "through"}})
        def test_marker_balances_and_config(mexc_paper):
            assert set(mexc_paper.balances()) == {"BTC"}
            assert mexc_paper.advance(to_ms=mexc_paper.end_ms)["ended"] is True

        @pytest.mark.mexc_paper(cassette="nowhere.yaml")
        def test_missing_cassette(mexc_paper):
            pass

        @pytest.mark.mexc_paper(balance={"BTC": "2"})
        def test_typo(mexc_paper):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rE", timeout=120)
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines([
        "*mexc_paper: no such cassette nowhere.yaml*",
        "*mexc_paper: unknown marker arguments ?'balance'?*",
    ])
    workdir = Path((pytester.path / "workdir.txt").read_text())
    assert workdir.name.startswith("mexc-paper-") and not workdir.exists()
