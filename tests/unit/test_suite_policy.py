"""Rules about the test suite itself: under CI a skip must be declared (tests/skip_policy.py),
and tests read only data inside the repository."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import skip_policy

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent

MINI_SUITE = '''
import pytest

def test_runs():
    assert True

def test_skips_for_no_declared_reason():
    pytest.skip("some tool is not installed")

@pytest.mark.skipif(True, reason="a fixture folder outside the repository is missing")
def test_skipped_by_marker():
    pass

def test_skips_for_a_declared_reason():
    pytest.skip("README block not run by the suite: docker (example)")

@pytest.mark.xfail(reason="expected to fail", strict=True)
def test_expected_failure():
    assert False
'''


def run_mini_suite(
    tmp_path: Path, ci: bool, modules: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(
        "from skip_policy import pytest_make_collect_report, pytest_runtest_makereport  # noqa\n")
    for name, text in (modules or {"test_mini.py": MINI_SUITE}).items():
        (tmp_path / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = str(TESTS)
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "-rA",
         "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )


def outcomes(out: str) -> dict[str, str]:
    """test name (or "skip: <reason>") -> PASSED/FAILED/ERROR/XFAIL/SKIPPED, from -rA's summary."""
    found = dict((name, word) for word, name in re.findall(
        r"^(PASSED|FAILED|ERROR|XFAIL) test_mini\.py::(\w+)", out, re.M))
    for reason in re.findall(r"^SKIPPED \[\d+\] test_mini\.py:\d+: (.*)$", out, re.M):
        found[f"skip: {reason}"] = "SKIPPED"
    return found


def test_under_ci_an_undeclared_skip_fails_and_a_declared_one_skips(tmp_path: Path) -> None:
    proc = run_mini_suite(tmp_path, ci=True)
    out = proc.stdout
    assert proc.returncode == 1, out
    assert outcomes(out) == {
        "test_runs": "PASSED",
        "test_skips_for_no_declared_reason": "FAILED",
        "test_skipped_by_marker": "ERROR",  # a skipif marker skips at setup: an error there
        "test_expected_failure": "XFAIL",  # xfail is not a skip
        "skip: README block not run by the suite: docker (example)": "SKIPPED",
    }
    assert "undeclared skip under CI=true: some tool is not installed" in out
    assert "undeclared skip under CI=true: a fixture folder outside the repository is missing" in out


def test_outside_ci_skips_stay_skips(tmp_path: Path) -> None:
    proc = run_mini_suite(tmp_path, ci=False)
    assert proc.returncode == 0, proc.stdout
    assert outcomes(proc.stdout) == {
        "test_runs": "PASSED",
        "test_expected_failure": "XFAIL",
        "skip: some tool is not installed": "SKIPPED",
        "skip: a fixture folder outside the repository is missing": "SKIPPED",
        "skip: README block not run by the suite: docker (example)": "SKIPPED",
    }
    assert "undeclared skip" not in proc.stdout


# skips that happen before any test of the module runs: at collection, or at setup from
# a mark on the module, a class or a fixture
COLLECTION_SKIPS = {
    "test_modskip.py": 'import pytest\npytest.skip("fixture folder outside the repository is missing", '
                       'allow_module_level=True)\n\ndef test_never_runs():\n    assert False\n',
    "test_importorskip.py": 'import pytest\npytest.importorskip("no_such_module_mexc_paper")\n\n'
                            'def test_never_runs():\n    assert False\n',
}
SETUP_SKIPS = '''
import pytest

pytestmark = pytest.mark.skipif(True, reason="marked on the module")

def test_module_mark():
    pass
'''
CLASS_AND_FIXTURE_SKIPS = '''
import pytest

@pytest.fixture
def tool():
    pytest.skip("the tool is missing (from a fixture)")

def test_fixture_skip(tool):
    pass

@pytest.mark.skip(reason="marked on the class")
class TestMarked:
    def test_class_mark(self):
        pass

@pytest.mark.parametrize("x", [])
def test_empty_parameters(x):
    pass
'''
DECLARED_AT_COLLECTION = (
    'import pytest\npytest.skip("README block not run by the suite: docker (example)", '
    'allow_module_level=True)\n\ndef test_never_runs():\n    assert False\n'
)


@pytest.mark.parametrize("module", sorted(COLLECTION_SKIPS))
def test_under_ci_a_skip_at_collection_is_a_collection_error(tmp_path: Path, module: str) -> None:
    """A module-level skip (or importorskip) skips every test of the module without any
    test reporting it: under CI it passed silently. Now it is a collection error naming
    the reason (the run stops, as on any module that cannot be imported)."""
    proc = run_mini_suite(tmp_path, ci=True, modules={module: COLLECTION_SKIPS[module]})
    out = proc.stdout
    assert proc.returncode != 0, out
    assert f"ERROR {module}" in out or f"ERROR collecting {module}" in out, out
    assert "undeclared skip under CI=true: " in out
    assert f"({module})" in out and "must be declared with its reason" in out
    local = run_mini_suite(tmp_path, ci=False, modules={module: COLLECTION_SKIPS[module]})
    # (exit code 5: no test was collected, the module's one skipped)
    assert local.returncode == 5 and " 1 skipped" in local.stdout, local.stdout
    assert "undeclared" not in local.stdout


def test_under_ci_a_declared_skip_at_collection_still_skips(tmp_path: Path) -> None:
    proc = run_mini_suite(tmp_path, ci=True, modules={"test_declared.py": DECLARED_AT_COLLECTION})
    assert proc.returncode == 5 and " 1 skipped" in proc.stdout, proc.stdout
    assert "undeclared" not in proc.stdout


def test_under_ci_skips_from_marks_and_fixtures_fail(tmp_path: Path) -> None:
    """Skips at setup (a mark on the module or a class, a fixture, an empty parameter
    set) were already caught: kept so."""
    proc = run_mini_suite(tmp_path, ci=True, modules={"test_mini.py": CLASS_AND_FIXTURE_SKIPS,
                                                      "test_module_mark.py": SETUP_SKIPS})
    out = proc.stdout
    assert proc.returncode == 1, out
    for reason in ("marked on the module", "the tool is missing (from a fixture)", "marked on the class",
                   "got empty parameter set"):
        assert f"undeclared skip under CI=true: {reason}" in out, reason
    assert "SKIPPED" not in out and "passed" not in out


def test_every_declared_skip_says_why() -> None:
    assert skip_policy.DECLARED_SKIPS
    for pattern, why in skip_policy.DECLARED_SKIPS.items():
        re.compile(pattern)
        assert len(why) > 40, pattern  # an explanation, not a label


# how a test would reach a folder outside the repository (comments may name the origin of
# data, code may not read it)
OUTSIDE = re.compile(r"""ROOT\.parent|parents\[\d+\]\s*/\s*["']shared|["']\.\./shared|/work/shared""")


def test_tests_read_only_data_inside_the_repository() -> None:
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        if path == Path(__file__).resolve():
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if OUTSIDE.search(code):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == [], "tests reach outside the repository:\n" + "\n".join(offenders)
