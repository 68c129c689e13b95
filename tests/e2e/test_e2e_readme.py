"""README "Point your bot at mexc-paper" is what CI runs: the recipes are quoted verbatim from
bot_recipes.py (which every e2e test uses), its usage snippets and the curl recipe run
against the sidecar, the compose block is the example file, and the endpoint table names
every route the sidecar has."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import yaml

from proxy import api
from proxy.routes import MEXC_ROUTES

from .e2e_harness import KEY, SECRET, Sidecar
from .readme_blocks import DEFAULT_BASE, ROOT, code_blocks, run_curl_recipe, section

RECIPES = (Path(__file__).parent / "bot_recipes.py").read_text(encoding="utf-8")
POINT = section("Point your bot at mexc-paper")


def recipes() -> dict[str, str]:
    found = dict(re.findall(r"^# --- recipe: (\S+)\n(.*?)^# --- end$", RECIPES, re.M | re.S))
    assert set(found) == {"ccxt-urls", "ccxt-sync", "ccxt-async", "pymexc"}
    return found


def test_readme_quotes_the_recipes_the_tests_use() -> None:
    blocks = code_blocks(POINT, "python")
    for name, text in recipes().items():
        assert any(text.strip() in b for b in blocks), f"README does not quote recipe {name!r} verbatim"
    # and the config the recipes assume is the committed one
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    assert config["accounts"][0]["api_key"] == KEY
    assert config["accounts"][0]["secret_key"].endswith(f":-{SECRET}}}")
    assert config["server"]["port"] == 8080 and DEFAULT_BASE in POINT


def run_python_blocks(blocks: list[str], base: str) -> str:
    out = io.StringIO()
    namespace: dict = {}
    with contextlib.redirect_stdout(out):
        for block in blocks:
            exec(compile(block.replace(DEFAULT_BASE, base), "README.md", "exec"), namespace)  # noqa: S102
    return out.getvalue()


def test_readme_python_snippets_run(sidecar: Sidecar) -> None:
    ccxt_part = section("ccxt (sync and async)")
    out = run_python_blocks(code_blocks(ccxt_part, "python"), sidecar.url)
    # the limit buy at 80000 rests below the book: open, 80 USDT locked
    assert out.startswith("open {'free': 9920.0, 'used': 80.0, 'total': 10000.0}"), out

    out = run_python_blocks(code_blocks(section("pymexc"), "python"), sidecar.url)
    ack_line, balances_line = out.strip().splitlines()
    assert "'type': 'MARKET'" in ack_line and "'origQty': '0.00022752'" in ack_line
    # 20 USDT buys floor8(20 / 87903.98) = 0.00022752 BTC for 19.9999135296 + fee 0.0099999567648
    assert "{'asset': 'BTC', 'free': '1.00022752', 'locked': '0'" in balances_line
    assert "{'asset': 'USDT', 'free': '9899.9900865136352', 'locked': '80'" in balances_line


def test_readme_curl_recipe_runs(sidecar: Sidecar) -> None:
    ack, account = run_curl_recipe(sidecar.url)
    assert (ack["type"], ack["side"], ack["origQty"]) == ("MARKET", "BUY", "0.00022752")
    assert {b["asset"]: (b["free"], b["locked"]) for b in account["balances"]} == {
        "BTC": ("1.00022752", "0"), "USDT": ("9979.9900865136352", "0")}


def test_readme_compose_block_is_the_example_file() -> None:
    (block,) = code_blocks(section("docker-compose"), "yaml")
    example = (ROOT / "docker-compose.example.yml").read_text(encoding="utf-8")
    assert block == example
    compose = yaml.safe_load(example)
    bot = compose["services"]["bot"]["environment"]
    assert bot["MEXC_BASE_URL"] == "http://mexc-paper:8080"
    assert bot["MEXC_API_KEY"] == KEY and SECRET in bot["MEXC_API_SECRET"]
    assert compose["services"]["bot"]["depends_on"]["mexc-paper"]["condition"] == "service_healthy"


def test_readme_endpoint_table_names_every_route() -> None:
    table = section("What is simulated, passed through, or refused (paper mode)")
    routes = {(r.method, r.path) for r in MEXC_ROUTES if "{" not in r.path}
    assert len(routes) > 30
    for method, path in sorted(routes):
        rows = [ln for ln in table.splitlines() if f"{path}`" in ln]
        assert rows, f"{method} {path} is missing from the README table"
        assert any(method in row for row in rows), f"{method} {path}: no README row names the method"
    for path in (*api.PUBLIC_PATHS, *api.SIGNED_PATHS):
        assert f"{path}`" in table, path
    assert "730003" in table and "never forwarded" in table
