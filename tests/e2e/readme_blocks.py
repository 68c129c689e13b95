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


def shell_blocks(text: str = README) -> list[tuple[str, str, str]]:
    """Every ```bash and ```console block: (the heading it is under, language, text)."""
    out: list[tuple[str, str, str]] = []
    heading = ""
    lines = iter(text.splitlines(keepends=True))
    for line in lines:
        fence = re.match(r"^```(\S*)\n", line)
        if fence is None:
            m = re.match(r"^#+ (.*)\n", line)
            heading = m.group(1) if m else heading
            continue
        body = []
        for inner in lines:
            if inner.startswith("```"):
                break
            body.append(inner)
        if fence.group(1) in ("bash", "sh", "shell", "console"):
            out.append((heading, fence.group(1), "".join(body)))
    return out


def commands(block: str) -> list[str]:
    """A bash block's commands: lines joined across `\\` continuations, without comments
    that take a whole line or end one (` # ...`) and without blank lines."""
    out: list[str] = []
    pending = ""
    for line in block.splitlines():
        if pending:
            line = pending + " " + line.strip()
            pending = ""
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1].rstrip()
            continue
        code = re.sub(r"(^|\s)#\s.*$", "", line).strip()
        if code and not code.startswith("#"):
            out.append(code)
    assert not pending, block
    return out


def console_steps(block: str) -> list[tuple[str, list[str]]]:
    """A console block's `$ command` lines, each with the output lines shown under it."""
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            assert steps, f"console block output before any command: {block!r}"
            steps[-1][1].append(line)
    return steps
