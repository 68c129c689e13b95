"""README.md's code blocks, for the tests that run them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DEFAULT_BASE = "http://127.0.0.1:8080"


def section(title: str) -> str:
    """The text of a README section, up to the next heading of the same or higher level
    (lines inside code fences are not headings)."""
    lines = README.splitlines(keepends=True)
    start = lines.index(next(ln for ln in lines if re.fullmatch(rf"#+ {re.escape(title)}\n", ln)))
    level = len(lines[start]) - len(lines[start].lstrip("#"))
    out: list[str] = []
    fenced = False
    for line in lines[start + 1:]:
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(rf"#{{1,{level}}} ", line):
            break
        out.append(line)
    return "".join(out)


def code_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```$", text, re.M | re.S)


def run_curl_recipe(base: str) -> tuple[dict, dict]:
    """Run the README's curl recipe (bash, curl, openssl) against `base`: (order ack, account)."""
    for tool in ("bash", "curl", "openssl"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    (block,) = code_blocks(section("Plain HTTP (curl)"), "bash")
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block], env={
        "BASE": base, "PATH": "/usr/bin:/bin:/usr/local/bin"}, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    ack, account = (json.loads(line) for line in proc.stdout.strip().splitlines())
    return ack, account
