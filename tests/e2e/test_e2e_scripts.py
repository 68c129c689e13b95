"""The Quick start's scripts (scripts/run.sh, scripts/test.sh, scripts/venv.sh) as a new user
runs them. The README's own commands run in test_e2e_readme.py; here: which environment
the scripts use and when they install, and what test.sh does when Chromium cannot be
installed (it says why, runs the other tests, and the browser tests say why they skip;
under CI=true they fail)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .fresh_clone import ROOT, FreshClone

# a unit test file of the suite, and one browser test (it needs Chromium)
UNIT = "tests/unit/test_store_rows.py"
BROWSER = "tests/browser/test_dashboard_browser.py::test_page_loads_with_paper_banner_and_the_api_balances"


def venv_script(workdir: Path, script: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `script` after sourcing scripts/venv.sh in `workdir`, in a new shell's environment."""
    base = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    base.update(PIP_NO_INDEX="1", PATH="/usr/bin:/bin:/usr/local/bin")
    base.update(env)
    return subprocess.run(["bash", "-euo", "pipefail", "-c", f". scripts/venv.sh\n{script}"],
                          cwd=workdir, env=base, capture_output=True, text=True, timeout=60)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """pyproject.toml and scripts/venv.sh, and a small virtual environment `env` next to them
    (it sees this interpreter's packages, so no install is needed to run python)."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "venv.sh", tmp_path / "scripts" / "venv.sh")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "env")],
                   check=True, timeout=60)
    return tmp_path


def test_the_install_is_skipped_only_while_pyproject_and_the_checkout_are_what_was_installed(
    project: Path,
) -> None:
    env = {"VIRTUAL_ENV": str(project / "env"), "PATH": f"{project / 'env' / 'bin'}:/usr/bin:/bin"}
    check = 'installed "" && echo base; installed test && echo test; true'
    assert venv_script(project, check, **env).stdout == ""  # nothing installed yet
    assert venv_script(project, "mark_installed", **env).returncode == 0
    assert venv_script(project, check, **env).stdout.split() == ["base"]
    assert venv_script(project, "mark_installed test", **env).returncode == 0
    # the test extra has everything the sidecar needs
    assert venv_script(project, check, **env).stdout.split() == ["base", "test"]
    # a new dependency after `git pull`: install again
    with (project / "pyproject.toml").open("a") as f:
        f.write("\n# changed\n")
    assert venv_script(project, check, **env).stdout == ""
    # the same environment used from another checkout: install again (editable path)
    assert venv_script(project, "mark_installed test", **env).returncode == 0
    other = project / "other"
    shutil.copytree(project / "scripts", other / "scripts")
    shutil.copy(project / "pyproject.toml", other / "pyproject.toml")
    assert venv_script(other, check, **env).stdout == ""


def test_the_active_environment_is_used_else_dot_venv(project: Path) -> None:
    env = project / "env"
    assert venv_script(project, "mark_installed test", VIRTUAL_ENV=str(env),
                       PATH=f"{env}/bin:/usr/bin:/bin").returncode == 0
    # active: used as it is, no .venv created, nothing installed
    proc = venv_script(project, 'use_venv; echo "using $VIRTUAL_ENV"', VIRTUAL_ENV=str(env),
                       PATH=f"{env}/bin:/usr/bin:/bin")
    assert (proc.returncode, proc.stdout) == (0, f"using {env}\n"), proc.stderr
    assert not (project / ".venv").exists()
    # none active: ./.venv, activated; not installed there yet, so it installs (and here,
    # with no package index, that fails loudly instead of starting anything)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(project / ".venv")],
                   check=True, timeout=60)
    proc = venv_script(project, 'use_venv test; echo "using $VIRTUAL_ENV"')
    assert proc.returncode != 0 and "using" not in proc.stdout
    assert proc.stdout.startswith(f"installing mexc-paper with its test extra into {project / '.venv'}")
    subprocess.run(["bash", "-c", ". .venv/bin/activate && . scripts/venv.sh && mark_installed test"],
                   cwd=project, check=True, timeout=30)
    proc = venv_script(project, 'use_venv test; echo "using $VIRTUAL_ENV"')
    assert (proc.returncode, proc.stdout) == (0, f"using {project / '.venv'}\n"), proc.stderr


def failing_apt(tmp_path: Path) -> Path:
    """A bin folder with an apt-get that fails as it does offline, and `id -u` saying root
    (so test.sh tries apt-get whoever runs the suite)."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    (bin_dir / "apt-get").write_text(
        "#!/bin/sh\necho \"$*\" >> \"$(dirname \"$0\")/apt-get.calls\"\n"
        "echo 'E: Unable to locate package chromium' >&2\nexit 100\n")
    (bin_dir / "id").write_text("#!/bin/sh\necho 0\n")
    for f in ("apt-get", "id"):
        (bin_dir / f).chmod(0o755)
    return bin_dir


def run_test_sh(clone: FreshClone, bin_dir: Path, ci: bool) -> subprocess.CompletedProcess[str]:
    env = clone.env(MEXC_PAPER_CHROMIUM=str(bin_dir / "no-chromium"))
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        ["bash", "scripts/test.sh", "-q", "-p", "no:randomly", UNIT, BROWSER],
        cwd=clone.path, env=env, capture_output=True, text=True, timeout=300,
    )


def test_test_sh_says_what_failed_when_apt_get_fails_and_runs_the_other_tests(
    fresh_clone: FreshClone, tmp_path: Path
) -> None:
    bin_dir = failing_apt(tmp_path)
    proc = run_test_sh(fresh_clone, bin_dir, ci=False)
    out = proc.stdout
    assert proc.returncode == 0, (out, proc.stderr)
    assert "apt-get could not install chromium (exit 100)" in proc.stderr
    assert "E: Unable to locate package chromium" in proc.stderr  # apt-get's own words
    assert "running the tests without Chromium" in proc.stderr
    # both apt-get attempts were made: install, then update and install
    calls = (bin_dir / "apt-get.calls").read_text().splitlines()
    assert calls[0].startswith("install") and calls[1].startswith("update")
    # the unit tests ran; the browser test skipped and said why
    assert re.search(r"^12 passed, 1 skipped in ", out, re.M), out
    assert "SKIPPED [1] tests/browser/test_dashboard_browser.py" in out
    assert f"{bin_dir / 'no-chromium'} is missing (apt-get install chromium)" in out


def test_test_sh_under_ci_fails_without_chromium(fresh_clone: FreshClone, tmp_path: Path) -> None:
    proc = run_test_sh(fresh_clone, failing_apt(tmp_path), ci=True)
    assert proc.returncode == 1, proc.stdout
    assert "apt-get could not install chromium (exit 100)" in proc.stderr
    assert "browser tests cannot run under CI" in proc.stdout
    assert " passed, 1 error" in proc.stdout, proc.stdout
