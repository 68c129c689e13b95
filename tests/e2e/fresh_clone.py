"""A fresh clone as a new user has it after the README's Quick start, for the tests that run
the README's commands and the scripts as written.

What it is: the repository's files (tracked, plus new ones not ignored: what `git clone`
would give once committed) copied to a temporary folder, and the `.venv` the Quick start's
`bash scripts/test.sh` leaves there: the project installed with its test extra, and
scripts/venv.sh's stamp saying so. The suite cannot pip-install (no network), so that
`.venv` is a small virtual environment of its own that sees this interpreter's installed
packages (a `.pth` file); the copy's `proxy/` comes first on `sys.path` for `python -m`.
Commands then run with the environment of a new shell: no VIRTUAL_ENV, no virtual
environment on PATH, and no pip index (an install the scripts should not need fails).

The copy's config.yaml differs from the committed one in two values only: the listen port
(a free one, not 8080, which another process may hold) and the upstream (a closed local
port instead of api.mexc.com: the suite never reaches the internet).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import yaml
from process_support import free_port

ROOT = Path(__file__).resolve().parents[2]
OFFLINE_UPSTREAM = "http://127.0.0.1:9"  # nothing listens there: connection refused at once
IGNORED = shutil.ignore_patterns(".git", ".venv", "venv", "data", "__pycache__", "*.egg-info",
                                 "test-artifacts", ".pytest_cache", ".ruff_cache", ".hypothesis",
                                 "*.sqlite3*", "build", "dist")


@dataclass(frozen=True)
class FreshClone:
    path: Path
    port: int  # the copy's server.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, **extra: str) -> dict[str, str]:
        """A new shell's environment: no virtual environment active or on PATH."""
        venv_bin = Path(sys.executable).parent
        prefixes = {str(Path(sys.prefix).resolve()), str(venv_bin.resolve())}
        path = [p for p in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
                if p and not any(str(Path(p).resolve()).startswith(x) for x in prefixes)]
        drop = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PROXY_CONFIG", "MEXC_PAPER_DB", "CI",
                "MEXC_PAPER_CHROMIUM", "PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST")
        env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("PAPER_TRADING")}
        env.update(PATH=os.pathsep.join(path), PIP_NO_INDEX="1")
        env.update(extra)
        return env


def repository_files() -> list[Path]:
    """The files a clone would hold: git's view when there is one, else the folder less
    what .gitignore ignores."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, capture_output=True, check=True, timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [Path(p.decode()) for p in out.split(b"\0") if p and (ROOT / p.decode()).is_file()]


def make_fresh_clone(dest: Path) -> FreshClone:
    files = repository_files()
    if files:
        for rel in files:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    else:
        shutil.copytree(ROOT, dest, ignore=IGNORED, dirs_exist_ok=True)

    port = free_port()
    config = yaml.safe_load((dest / "config.yaml").read_text(encoding="utf-8"))
    config["server"]["port"] = port
    config["upstream"]["base_url"] = OFFLINE_UPSTREAM
    config["upstream"]["ws_url"] = None  # offline: no market stream
    (dest / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

    # the Quick start's .venv: here a venv that sees this interpreter's packages
    venv = dest / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    site = next((venv / "lib").glob("python3*/site-packages"))
    outer = sysconfig.get_paths()["purelib"]
    (site / "_mexc_paper_test_outer.pth").write_text(f"import site; site.addsitedir({outer!r})\n")
    subprocess.run(
        ["bash", "-c", ". scripts/venv.sh && mark_installed test"], cwd=dest, check=True, timeout=30,
        env={**os.environ, "VIRTUAL_ENV": str(venv), "PATH": f"{venv}/bin:{os.environ.get('PATH', '')}"},
    )
    return FreshClone(dest, port)
