"""Under CI (CI=true, set by .ci/run) a skipped test is a failure unless its reason is
declared below with why it may skip there. A skip hides a test that did not run: in CI that
must be a decision written down here, never an accident of the machine (a missing tool, a
file outside the repository, a browser that could not be installed).

Every way a test can skip is caught: a skip while it runs, in a fixture or from a `skip`/
`skipif` mark (those happen at setup; `pytest_runtest_makereport`), and a skip while a
module is collected (`pytest.skip(..., allow_module_level=True)`, a module-level
`pytest.importorskip`, a skip in a conftest; `pytest_make_collect_report`), which skips
every test of the module without any test reporting it. An undeclared collection skip is a
collection error, which stops the run (as an import error in a test module does).

Locally skips stay skips, and `-rs` (pyproject.toml addopts) prints every reason.
tests/conftest.py imports both hooks; tests/unit/test_suite_policy.py runs them on small
suites.
"""

from __future__ import annotations

import os
import re
from typing import Any

import pytest

# reason pattern (re.search on the skip's reason) -> why that skip is allowed under CI
DECLARED_SKIPS: dict[str, str] = {
    r"^README block not run by the suite: ": (
        "the README's shell blocks that cannot run inside the test suite (docker, the suite's "
        "own command); tests/e2e/test_e2e_readme.py's NOT_RUN names each block and why"
    ),
}


def declared(reason: str) -> bool:
    return any(re.search(pattern, reason) for pattern in DECLARED_SKIPS)


def skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # (file, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _fail_if_undeclared(report: pytest.TestReport | pytest.CollectReport, what: str) -> None:
    if os.environ.get("CI") != "true" or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = skip_reason(report)
    if declared(reason):
        return
    report.outcome = "failed"
    report.longrepr = (
        f"undeclared skip under CI=true: {reason}\n"
        f"{what} that does not run in CI must be declared with its reason in "
        "tests/skip_policy.py DECLARED_SKIPS (or made to run)."
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    outcome = yield
    _fail_if_undeclared(outcome.get_result(), "A test")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    outcome = yield
    _fail_if_undeclared(outcome.get_result(), f"A module or folder ({collector.nodeid or '.'})")
