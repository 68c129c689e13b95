"""proxy.engine is pure (STYLE.md rules 1 and 10): standard library only, and none of the
I/O, clock, randomness or logging modules, checked three ways:

- each module's own import statements (its source, parsed),
- the modules bound in each imported module's namespace,
- a fresh interpreter: what importing proxy.engine.* adds to sys.modules.

proxy/__init__.py imports nothing (it only sets __version__), so importing the engine
loads `proxy` itself and nothing else of the package; the subprocess check asserts that too,
so a future import in proxy/__init__.py cannot hide behind the engine.
"""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

import proxy.engine

FORBIDDEN = ("aiohttp", "aiosqlite", "asyncio", "orjson", "time", "random", "logging")
# what the engine may import at all (STYLE.md rule 1, plus bisect/collections for state.py)
ALLOWED_STDLIB = {"__future__", "bisect", "collections", "dataclasses", "decimal", "enum", "typing"}

ENGINE_DIR = Path(proxy.engine.__file__).resolve().parent
MODULES = sorted(f"proxy.engine.{m.name}" for m in pkgutil.iter_modules([str(ENGINE_DIR)]))


def test_the_engine_package_has_the_expected_modules() -> None:
    assert MODULES == [
        "proxy.engine.ledger",
        "proxy.engine.matching",
        "proxy.engine.model",
        "proxy.engine.rules",
        "proxy.engine.state",
    ]


def _imports(path: Path) -> list[tuple[int, str]]:
    """(relative level, module) for every import statement anywhere in the file."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.extend((0, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            out.append((node.level, node.module or ""))
    return out


@pytest.mark.parametrize("path", sorted(ENGINE_DIR.glob("*.py")), ids=lambda p: p.name)
def test_engine_source_imports_only_the_allowed_standard_library(path: Path) -> None:
    imports = _imports(path)

    absolute = {name.split(".")[0] for level, name in imports if level == 0}
    relative = {(level, name) for level, name in imports if level > 0}

    assert absolute <= ALLOWED_STDLIB, absolute - ALLOWED_STDLIB
    assert not absolute & set(FORBIDDEN)
    # relative imports stay inside proxy.engine (level 1), never reach up into proxy
    assert all(level == 1 for level, _ in relative), relative


@pytest.mark.parametrize("name", MODULES)
def test_engine_module_namespace_binds_no_forbidden_module(name: str) -> None:
    module = importlib.import_module(name)

    bound = {
        (v.__name__ if isinstance(v, types.ModuleType) else getattr(v, "__module__", None) or "")
        for v in vars(module).values()
    }
    roots = {b.split(".")[0] for b in bound if b}

    assert not roots & set(FORBIDDEN), roots & set(FORBIDDEN)
    assert not set(FORBIDDEN) & set(vars(module))
    # anything it holds from the project comes from the engine itself
    assert {b for b in bound if b.startswith("proxy.") and not b.startswith("proxy.engine")} == set()


_PROBE = """
import json, sys
before = set(sys.modules)
import proxy.engine.ledger, proxy.engine.matching, proxy.engine.model, proxy.engine.rules, proxy.engine.state
print(json.dumps({"added": sorted(set(sys.modules) - before), "before": sorted(before)}))
"""


def test_importing_the_engine_in_a_fresh_interpreter_loads_no_forbidden_module() -> None:
    out = subprocess.run(
        [sys.executable, "-I", "-c", _PROBE],
        capture_output=True,
        text=True,
        check=True,
        cwd=str(ENGINE_DIR.parent.parent),
        timeout=60,
    )
    probe = json.loads(out.stdout)
    added = probe["added"]
    roots = {m.split(".")[0] for m in added}

    assert not roots & set(FORBIDDEN), sorted(roots & set(FORBIDDEN))
    # the interpreter itself loads `time` at start-up; nothing else forbidden was there
    assert {m for m in FORBIDDEN if m in probe["before"]} <= {"time"}
    # of the project, only the package root and the engine are loaded
    project = sorted(m for m in added if m == "proxy" or m.startswith("proxy."))
    assert project == ["proxy", "proxy.engine", *MODULES]
