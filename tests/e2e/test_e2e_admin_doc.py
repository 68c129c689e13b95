"""docs/admin-api.md documents every route of proxy/admin.py (ADMIN_ROUTES: the admin API,
/healthz, /metrics), and each section's request, run with curl against the sidecar, answers
with the fields the page shows (names, nesting and JSON types; values differ run to run)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest

from proxy import admin

from .e2e_harness import KEY, SECRET, Market, Sidecar
from .official_clients import JsSdkClient
from .readme_blocks import DEFAULT_BASE, README, ROOT

DOC_PATH = ROOT / "docs" / "admin-api.md"
DOC = DOC_PATH.read_text(encoding="utf-8")
HEADING = re.compile(r"^## (GET|POST|PUT|PATCH|DELETE) (/\S*)\n", re.M)


def sections() -> list[tuple[str, str, str]]:
    """(method, path, text up to the next `## ` heading) per route section, in page order."""
    found = list(HEADING.finditer(DOC))
    out = []
    for i, m in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(DOC)
        text = DOC[m.end():end]
        cut = re.search(r"^## ", text, re.M)
        out.append((m.group(1), m.group(2), text[: cut.start()] if cut else text))
    return out


def test_every_admin_route_is_documented() -> None:
    routes = {(r.method, r.path) for r in admin.ADMIN_ROUTES}
    documented = [(m, p) for m, p, _t in sections()]
    assert len(documented) == len(set(documented)), "a route has two sections"
    assert sorted(routes - set(documented)) == [], f"routes without a section in {DOC_PATH.name}"
    assert sorted(set(documented) - routes) == [], f"sections in {DOC_PATH.name} for routes that do not exist"
    assert "(docs/admin-api.md)" in README


def shape(value: Any) -> Any:
    """The JSON's structure: keys and nesting, the type of each value; a list by its first
    element."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def assert_same_shape(documented: Any, got: Any, where: str) -> None:
    if documented == "NoneType" or got == "NoneType":  # null where the other run had a value
        return
    if isinstance(documented, dict):
        assert isinstance(got, dict), (where, got)
        assert list(documented) == list(got), f"{where}: fields {list(got)}, documented {list(documented)}"
        for k in documented:
            assert_same_shape(documented[k], got[k], f"{where}.{k}")
    elif isinstance(documented, list):
        assert isinstance(got, list), (where, got)
        if documented and got:
            assert_same_shape(documented[0], got[0], f"{where}[0]")
    else:
        assert documented == got, (where, documented, got)


def blocks(text: str) -> list[tuple[str, str]]:
    return re.findall(r"^```(\w*)\n(.*?)^```$", text, re.M | re.S)


def test_the_documented_requests_answer_what_the_page_shows(sidecar: Sidecar, market: Market) -> None:
    if shutil.which("curl") is None:
        pytest.fail("curl is not installed: the page's requests are curl commands")
    # the state the examples were taken in: a MARKET buy filled, a LIMIT buy resting
    js = JsSdkClient(sidecar.url, KEY, SECRET)
    market_buy = {"type": "MARKET", "quantity": "0.01"}
    for order in (market_buy, {"type": "LIMIT", "quantity": "0.001", "price": "80000"}):
        status, ack = js.sign_request("POST", "/order", {"symbol": "BTCUSDT", "side": "BUY", **order})
        assert status == 200, ack
    ran = 0
    for method, path, text in sections():
        where = f"{method} {path}"
        found = blocks(text)
        assert found and found[0][0] == "bash", f"{where}: the request (a ```bash block) comes first"
        request, (lang, answer) = found[0][1], found[1]
        assert f"curl -s{' -X ' + method if method != 'GET' else ''} " in request, (where, request)
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", request.replace(DEFAULT_BASE, sidecar.url)],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, (where, proc.stderr)
        if lang == "json":
            assert_same_shape(shape(json.loads(answer)), shape(json.loads(proc.stdout)), where)
        else:  # /metrics: every metric the excerpt shows is served
            assert lang == "text", where
            for line in answer.splitlines():
                if line.startswith("# TYPE "):
                    assert line in proc.stdout, (where, line)
        ran += 1
    assert ran == len(admin.ADMIN_ROUTES)
