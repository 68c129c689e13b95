"""`python -m proxy`'s flags applied to the settings (proxy/__main__.py apply_cli): which
database a run uses."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from proxy.__main__ import apply_cli, build_parser
from proxy.config import ConfigError, Settings, StorageSettings, UpstreamSettings


def settings(db: str = "./data/paper.sqlite3", replay: str | None = None) -> Settings:
    return Settings(storage=StorageSettings(path=db), upstream=UpstreamSettings(replay_path=replay))


def run(argv: list[str], base: Settings | None = None) -> Settings:
    return apply_cli(base or settings(), build_parser().parse_args(argv))


def test_a_replay_gets_its_own_database_next_to_the_configured_one(tmp_path: Path) -> None:
    cassette = tmp_path / "btc-week.yaml"
    cassette.write_text("version: 1\ninteractions: []\n")
    got = run(["--replay", str(cassette)])
    assert got.upstream.replay_path == str(cassette)
    assert got.storage.path == "./data/paper-replay-btc-week.sqlite3"
    got = run(["--replay", str(cassette)], settings(db="/data/paper.sqlite3"))
    assert got.storage.path == "/data/paper-replay-btc-week.sqlite3"
    got = run(["--replay", str(cassette)], settings(db="paper.db"))
    assert got.storage.path == "paper-replay-btc-week.sqlite3"
    # the other storage settings stay
    base = replace(settings(), storage=StorageSettings(path="x/p.sqlite3", synchronous="NORMAL"))
    assert run(["--replay", str(cassette)], base).storage == StorageSettings(
        "x/paper-replay-btc-week.sqlite3", "NORMAL")


def test_a_replay_named_in_the_config_gets_its_own_database_too() -> None:
    assert run([], settings(replay="cassettes/demo.yaml")).storage.path == "./data/paper-replay-demo.sqlite3"


def test_db_names_the_database_of_any_run(tmp_path: Path) -> None:
    cassette = tmp_path / "demo.yaml"
    cassette.write_text("version: 1\ninteractions: []\n")
    assert run(["--db", "/tmp/x.sqlite3"]).storage.path == "/tmp/x.sqlite3"
    assert run(["--replay", str(cassette), "--db", "data/paper.sqlite3"]).storage.path == "data/paper.sqlite3"
    assert run(["--db", "y.sqlite3"], settings(replay="c.yaml")).storage.path == "y.sqlite3"


def test_recording_and_normal_runs_keep_the_configured_database(tmp_path: Path) -> None:
    """A recording is a live-market session: its orders belong with the normal ones."""
    assert run([]).storage.path == "./data/paper.sqlite3"
    got = run(["--record", str(tmp_path / "mine.yaml")])
    assert got.upstream.record_path == str(tmp_path / "mine.yaml")
    assert got.storage.path == "./data/paper.sqlite3"


def test_an_in_memory_database_stays_in_memory_for_a_replay() -> None:
    assert run([], settings(db=":memory:", replay="c.yaml")).storage.path == ":memory:"


def test_replay_of_a_missing_cassette_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such cassette"):
        run(["--replay", str(tmp_path / "nope.yaml")])
