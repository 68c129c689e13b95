"""Every key the loader accepts is in the committed, commented config.yaml and in the
README's configuration table, so neither can fall behind the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from proxy import config

ROOT = Path(__file__).resolve().parents[2]


def accepted_keys(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The keys `load_settings` reads, found by watching it read the committed config
    and one paper.fees entry (sections are read whole: every key is asked for even when
    absent, so this is the full set)."""
    seen: set[str] = set()
    original = config._Section.raw

    def raw(self: config._Section, key: str, default: object = None) -> object:
        seen.add(f"{self.path}.{key}" if self.path else key)
        return original(self, key, default)

    monkeypatch.setattr(config._Section, "raw", raw)
    config.load_settings(ROOT / "config.yaml", {})
    config.settings_from_mapping({"paper": {"fees": {"BTCUSDT": {"maker": "0"}}}}, {})
    # sections: the top-level ones and `server.tls` (paper.fees is a mapping of data)
    sections = {k for k in seen if "." not in k} | {"server.tls"}
    return {re.sub(r"^accounts\[\d+\]", "accounts[]", k) for k in seen if k not in sections}


def readme_table_keys() -> dict[str, str]:
    """First cell of each row of the README's configuration table -> the whole row;
    `a.b` / `c` in one cell means a.b and a.c."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("## Configuration", 1)[1].split("\n\n| key |", 1)[1].split("\n\n", 1)[0]
    rows: dict[str, str] = {}
    for line in table.splitlines():
        cells = line.split("|")
        if len(cells) < 3:
            continue
        names = re.findall(r"`([^`]+)`", cells[1])
        section = ""
        for name in names:
            if "." in name:
                section = name.rsplit(".", 1)[0]
                rows[name] = line
            elif section:
                rows[f"{section}.{name}"] = line
            else:
                rows[name] = line
    return rows


def test_every_accepted_key_is_in_config_yaml_with_a_comment(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = (ROOT / "config.yaml").read_text(encoding="utf-8").splitlines()
    missing = []
    for key in sorted(accepted_keys(monkeypatch)):
        leaf = key.rsplit(".", 1)[1]
        if key.startswith("paper.fees."):
            leaf = "fees"  # documented by example in the comment of `fees:`
        pattern = re.compile(rf"^\s*(#\s*)?(- )?{re.escape(leaf)}:.*#")
        if not any(pattern.match(line) for line in lines):
            missing.append(key)
    assert missing == [], f"keys accepted by proxy/config.py but not commented in config.yaml: {missing}"


def test_every_accepted_key_is_in_the_readme_table(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = readme_table_keys()
    missing = []
    for key in sorted(accepted_keys(monkeypatch)):
        if key.startswith("accounts[]."):
            if key.rsplit(".", 1)[1] not in rows.get("accounts[]", ""):
                missing.append(key)
        elif key.startswith("paper.fees."):
            if "paper.fees" not in rows:
                missing.append(key)
        elif key not in rows:
            missing.append(key)
    assert missing == [], f"keys accepted by proxy/config.py but missing from README's table: {missing}"


def test_the_readme_table_names_no_key_the_loader_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    accepted = accepted_keys(monkeypatch)
    unknown = [k for k in readme_table_keys() if k != "accounts[]" and k not in accepted]
    assert unknown == []
