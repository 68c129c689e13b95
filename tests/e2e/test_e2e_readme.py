"""README "Point your bot at mexc-paper" is what CI runs: the recipes are quoted verbatim from
bot_recipes.py (which every e2e test uses), the official clients' base-URL overrides are the
lines official_clients.py builds its URLs from, its usage snippets and the curl recipe run
against the sidecar, the compose block is the example file, and the endpoint table gives
every route the class proxy/api.py gives it (simulated, answered locally, passed through,
refused), the refused and 404/405 rows checked against the running sidecar.

And every shell block of the README (```bash and ```console) runs as written in a fresh
copy of the repository, from a new shell with no virtual environment active, after the
Quick start (fresh_clone.py); the few that cannot run inside the suite are in NOT_RUN with
why. Inline commands need no active virtual environment either."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from process_support import free_port, wait_healthy

from proxy import api
from proxy.routes import MEXC_ROUTES

from .e2e_harness import KEY, SECRET, Market, Sidecar
from .fresh_clone import FreshClone
from .official_clients import (
    DEMO_CONFIG_OVERRIDE,
    DEMO_HOSTS_OVERRIDE,
    JS_SDK_OVERRIDE,
    DemoClient,
    JsSdkClient,
    override_url,
)
from .readme_blocks import (
    DEFAULT_BASE,
    README,
    ROOT,
    code_blocks,
    commands,
    console_steps,
    run_curl_recipe,
    section,
    shell_blocks,
)

RECIPES = (Path(__file__).parent / "bot_recipes.py").read_text(encoding="utf-8")
POINT = section("Point your bot at mexc-paper")


def recipes() -> dict[str, str]:
    found = dict(re.findall(r"^# --- recipe: (\S+)\n(.*?)^# --- end$", RECIPES, re.M | re.S))
    assert set(found) == {"ccxt-urls", "ccxt-sync", "ccxt-async", "pymexc", "ccxt-pro", "pymexc-ws"}
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


def test_readme_official_sdk_overrides_are_the_ones_the_tests_use() -> None:
    official = section("MEXC's official SDKs")
    for override in (DEMO_CONFIG_OVERRIDE, DEMO_HOSTS_OVERRIDE, JS_SDK_OVERRIDE):
        line = override.format(base=DEFAULT_BASE)
        assert line in official, f"README's official SDK recipe lacks {line!r}"
    # and these are the URLs the official-client tests send to
    assert DemoClient(DEFAULT_BASE, KEY, SECRET).hosts == DEFAULT_BASE
    assert override_url(DEMO_CONFIG_OVERRIDE, DEFAULT_BASE) == DEFAULT_BASE
    assert JsSdkClient(DEFAULT_BASE, KEY, SECRET).base_url == f"{DEFAULT_BASE}/api/v3"
    assert "tests/e2e/official_clients.py" in official


TABLE = section("What is simulated, passed through, or refused (paper mode)")
METHODS = ("GET", "POST", "PUT", "DELETE")
# the README's wording of each class -> the class proxy/api.py puts a path in
CLASS_OF_WORDING = {
    "simulated": "simulated",  # api.SIGNED_PATHS: the paper engine and the account
    "synthetic": "simulated",
    "listenKey answered": "simulated",
    "answered from the sidecar's clock": "local",  # api.LOCAL_PATHS
    "passed through, or": "local",  # /api/v1/contract/detail: forwarded, or answered locally
    "passed through": "passed through",  # api.PUBLIC_PATHS, and the fallback's unsigned GETs
    "refused": "refused",  # the fallback: any other signed path, 730003
    "`{\"code\":404": "not found",  # the fallback's 404 and 405
}


def table_rows() -> list[tuple[str, str, list[str]]]:
    """(class, endpoint cell, backquoted tokens) per row of the README's endpoint table."""
    rows = []
    for line in TABLE.splitlines():
        if not line.startswith("| ") or line.startswith(("| MEXC endpoint", "|---")):
            continue
        endpoints, wording = (c.strip() for c in line.strip().strip("|").split(" | ", 1))
        matches = [words for words in CLASS_OF_WORDING if wording.startswith(words)]
        assert matches, f"README endpoint table: no class for {wording!r}"
        cls = CLASS_OF_WORDING[max(matches, key=len)]
        if endpoints.startswith("any other"):  # the fallback's rows: no fixed paths
            cls = f"any other: {cls}"
        rows.append((cls, endpoints, re.findall(r"`([^`]+)`", endpoints)))
    assert len(rows) >= 10, TABLE
    return rows


def routes_named(tokens: list[str]) -> set[tuple[str, str]]:
    """`POST /a`, `/b` (the method before it), `GET`, `PUT`, `DELETE /c` (three methods)."""
    out: set[tuple[str, str]] = set()
    pending: list[str] = []
    last = ""
    for token in tokens:
        method, _, path = token.rpartition(" ") if " " in token else ("", "", token)
        if token in METHODS:
            pending.append(token)
            continue
        assert path.startswith("/api/"), token
        if method:
            assert method in METHODS, token
            last = method
        assert last, f"no method for {token}"
        out |= {(m, path) for m in (*pending, last)}
        pending = []
    assert pending == [], tokens
    return out


def test_readme_endpoint_table_classes_match_the_code() -> None:
    named: dict[str, set[tuple[str, str]]] = {}
    for cls, _endpoints, tokens in table_rows():
        if cls in ("simulated", "local", "passed through"):
            named.setdefault(cls, set()).update(routes_named(tokens))
    paths = {cls: {p for _m, p in routes} for cls, routes in named.items()}
    assert paths["simulated"] == set(api.SIGNED_PATHS)
    assert paths["local"] == set(api.LOCAL_PATHS)
    assert paths["passed through"] == set(api.PUBLIC_PATHS)
    # and with the methods of the route table: every route named once, nothing extra
    routes = {(r.method, r.path) for r in MEXC_ROUTES if "{" not in r.path}
    assert len(routes) > 30
    everything = named["simulated"] | named["local"] | named["passed through"]
    assert sum(map(len, named.values())) == len(everything), "a route is in two classes"
    assert everything == routes
    for cls in ("local", "passed through"):
        assert {m for m, _p in named[cls]} == {"GET"}, cls
    assert "730003" in TABLE and "never forwarded" in TABLE


def refused_paths() -> list[str]:
    """The examples of the refused row (`capital/withdraw`, `sub-account/*`, ...) as paths."""
    (tokens,) = [t for cls, _e, t in table_rows() if cls == "any other: refused"]
    out = ["/api/v3/" + t.replace("*", "paper-test") for t in tokens]
    assert len(out) >= 8, tokens
    return out


def test_readme_refused_and_unknown_rows_are_what_the_sidecar_does(sidecar: Sidecar, market: Market) -> None:
    js = JsSdkClient(sidecar.url, KEY, SECRET)
    for path in refused_paths():
        assert path not in api.SIGNED_PATHS and path not in api.PUBLIC_PATHS and path not in api.LOCAL_PATHS
        for method in ("GET", "POST"):
            status, answer = js.sign_request(method, path.removeprefix("/api/v3"), {"coin": "USDT"})
            assert (status, answer) == (400, {
                "code": 730003, "msg": f"Unsupported operation: {path} is not available in paper mode"})
    refused = set(refused_paths())
    assert [s.path for s in market.requests() if s.path in refused] == []  # never forwarded
    # the unsigned-GET row: forwarded as it is, under both prefixes
    (row,) = [e for cls, e, _t in table_rows() if cls == "any other: passed through"]
    for prefix in ("/api/v3/", "/api/v1/contract/"):
        assert f"`{prefix}`" in row
        path = f"{prefix}paper-test-unknown"
        status, _answer = plain_get(f"{sidecar.url}{path}?a=1")
        assert [(s.path, s.query) for s in market.requests() if s.path == path] == [(path, "a=1")]
    # the last row: another method of a known path, a path outside the forwarded prefixes
    assert [cls for cls, _e, _t in table_rows()][-1] == "not found"
    status, answer = js.public_request("PATCH", "/order")
    assert (status, answer) == (405, {"code": 405, "msg": "Method Not Allowed"})
    assert plain_get(f"{sidecar.url}/api/v9/nothing") == (404, {"code": 404, "msg": "Not Found"})


def plain_get(url: str) -> tuple[int, object]:
    """An unsigned GET without an API key: (status, JSON)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


# ------------------------------------------------------------ every shell block, as written

# Commands of the README's shell blocks that the suite does not run, and why. A block whose
# commands are all here is reported as a skip (declared in tests/skip_policy.py).
NOT_RUN = {
    "bash scripts/test.sh": (
        "the suite's own command: run here it would run the suite inside itself; CI runs it "
        "(.ci/run) and test_e2e_scripts.py runs it in a fresh copy on a few tests"),
    "docker ": (
        "needs a Docker daemon and the network (base image, pip); hadolint checks the "
        "Dockerfile and test_process.py runs the image's CMD as a process"),
    # Zero-change mode: test_e2e_zero_change.py runs these where MEXC's names lead to the
    # sidecar's TLS listener and on a private copy of certifi
    "curl --cacert mexc-paper-ca.pem https://api.mexc.com/": (
        "asks api.mexc.com, which only the zero-change setup leads to the sidecar: "
        "test_e2e_zero_change.py runs it there (curl --connect-to)"),
    **dict.fromkeys(
        ('CERTIFI=$(python -c "import certifi', 'cp "$CERTIFI" ', 'cat mexc-paper-ca.pem >> "$CERTIFI"',
         'mv "$CERTIFI.'),
        "changes certifi's bundle of the Python it runs with (here: the suite's own); "
        "test_e2e_zero_change.py runs it on a private copy of certifi"),
}
# a command that starts the sidecar (it runs until stopped)
SIDECAR = re.compile(r"^(bash scripts/run\.sh|(\.venv/bin/)?python -m proxy)(\s|$)")
BLOCKS = shell_blocks()


def not_run(command: str) -> str | None:
    return next((why for prefix, why in NOT_RUN.items() if command.startswith(prefix)), None)


def stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the group of the process this test started
        return proc.communicate(timeout=5)


def start_in(clone: FreshClone, command: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["bash", "-c", f"exec {command}"], cwd=clone.path, env=clone.env(), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )


def run_sidecar_command(clone: FreshClone, command: str) -> None:
    """It starts, answers /healthz in paper mode, and stops cleanly on SIGTERM; nothing
    needed installing (the Quick start did that)."""
    proc = start_in(clone, command)
    try:
        health = wait_healthy(clone.port, proc, timeout=60)
    finally:
        out, err = stop(proc)
    assert proc.returncode == 0, (command, out, err)
    assert "installing mexc-paper" not in out, out
    assert health["mode"] == "paper" and health["status"] in ("ok", "degraded"), health
    assert "started mode=PAPER" in err, err
    if "--replay" in command:
        cassette = Path(command.split("--replay", 1)[1].split()[0])
        assert health["status"] == "ok", health
        assert health["storage"]["path"] == f"./data/paper-replay-{cassette.stem}.sqlite3", health


@pytest.fixture(scope="module")
def clone_sidecar(fresh_clone: FreshClone) -> Iterator[str]:
    """The fresh copy's sidecar on the demo recording, for blocks that talk to one."""
    port = free_port()
    proc = start_in(fresh_clone, f"bash scripts/run.sh --replay cassettes/demo.yaml --port {port}")
    try:
        wait_healthy(port, proc, timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def mexc_errors(stdout: str) -> list[str]:
    """Output lines that are MEXC error answers."""
    out = []
    for line in stdout.splitlines():
        with contextlib.suppress(ValueError):
            data = json.loads(line)
            if isinstance(data, dict) and "msg" in data and data.get("code") not in (None, 0, 200):
                out.append(line)
    return out


@pytest.mark.parametrize(
    ("heading", "lang", "block"), BLOCKS, ids=[f"{h} {i}" for i, (h, _l, _b) in enumerate(BLOCKS)])
def test_readme_shell_block_runs_as_written_in_a_fresh_clone(
    heading: str, lang: str, block: str, fresh_clone: FreshClone, request: pytest.FixtureRequest
) -> None:
    if lang == "console":
        steps = console_steps(block)
        cmds = [c for c, _o in steps]
    else:
        steps = []
        cmds = commands(block)
    skipped = [(c, not_run(c)) for c in cmds if not_run(c)]
    to_run = [c for c in cmds if not not_run(c)]
    if not to_run:
        reasons = {why: [c.split(" -")[0] for c, w in skipped if w == why] for _c, why in skipped}
        pytest.skip("README block not run by the suite: "
                    + "; ".join(f"{', '.join(cs)}: {why}" for why, cs in reasons.items()))

    if lang == "console":  # each command's output starts as shown ("..." ends a shown prefix)
        assert not skipped, "a console block either runs whole or not at all"
        for command, shown in steps:
            proc = subprocess.run(["bash", "-c", command], cwd=fresh_clone.path, env=fresh_clone.env(),
                                  capture_output=True, text=True, timeout=60)
            got = (proc.stdout + proc.stderr).splitlines()
            assert len(got) >= len(shown), (command, got)
            for want, line in zip(shown, got, strict=False):
                if want.endswith("..."):
                    assert line.startswith(want[:-3]), (command, line)
                else:
                    assert line == want, (command, line)
    elif any(SIDECAR.match(c) for c in to_run):
        assert all(SIDECAR.match(c) for c in to_run), (
            f"README block under {heading!r} mixes a sidecar start with other commands: split it")
        for command in to_run:
            run_sidecar_command(fresh_clone, command)
    else:  # a script, e.g. the curl recipe: runs whole, against the fresh copy's sidecar
        assert not skipped, f"README block under {heading!r}: a script cannot lose lines {skipped}"
        base = request.getfixturevalue("clone_sidecar")
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block.replace(DEFAULT_BASE, base)],
                              cwd=fresh_clone.path, env=fresh_clone.env(), capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 0, (heading, proc.stdout, proc.stderr)
        assert mexc_errors(proc.stdout) == [], (heading, proc.stdout)


def test_readme_has_the_blocks_the_runner_expects() -> None:
    """The runner above sees the Quick start, the offline replay, the curl recipe, the
    live-mode refusal and Docker: a change to the README's fences cannot hide them."""
    found = {h for h, _l, _b in BLOCKS}
    assert {"Quick start", "Offline, from a recording", "Plain HTTP (curl)", "Modes", "Docker"} <= found
    every = [c for _h, lang, b in BLOCKS for c in (commands(b) if lang != "console" else [])]
    assert "bash scripts/run.sh --replay cassettes/demo.yaml" in every


# an inline command that starts with one of these needs the virtual environment active
BARE = re.compile(r"^(python3?|pip|pytest)\s")
# inline spans that start that way and are fine as written, and why
BARE_ALLOWED = {
    "pip install -e . && python -m proxy": "said to be for a virtual environment of your own",
    "python -m proxy": "names what scripts/run.sh starts",
    "pip install -e .": "names what scripts/run.sh installs",
}


def test_readme_inline_commands_need_no_active_environment() -> None:
    """`python -m bench --smoke` fails in a new shell; `.venv/bin/python -m bench --smoke`
    works. Synopses (`python -m proxy [--config PATH] ...`, with brackets) and names of a
    program (`pytest`, no arguments) are not commands to type."""
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"^```.*?^```", "", README, flags=re.M | re.S))
    bad = [s for s in spans if BARE.match(s) and "[" not in s and s not in BARE_ALLOWED]
    assert bad == [], f"README commands that need an active virtual environment: {bad}"
    assert "`.venv/bin/python -m bench --smoke`" in README
