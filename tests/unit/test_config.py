"""Config loading: every rejection names its key; the mode rule's four combinations."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from proxy.config import ConfigError, load_settings, mask_key, settings_from_mapping

ROOT = Path(__file__).resolve().parents[2]


def load(data: object, env: dict[str, str] | None = None):
    return settings_from_mapping(data, env or {})


def test_committed_config_loads_in_paper_mode() -> None:
    s = load_settings(ROOT / "config.yaml", {})
    assert s.mode == "paper"
    assert s.server.host == "127.0.0.1"
    assert s.server.port == 8080
    assert s.accounts[0].api_key == "mx0vglpaperdemo"
    assert s.accounts[0].secret_key == "paperdemosecret"  # ${PAPER_DEMO_SECRET:-...}
    assert s.accounts[0].balances == {"USDT": Decimal("10000"), "BTC": Decimal("1")}
    assert s.storage.path == "./data/paper.sqlite3"


def test_env_var_substitution_reads_the_environment() -> None:
    s = load_settings(ROOT / "config.yaml", {"PAPER_DEMO_SECRET": "s3cr3t", "MEXC_PAPER_DB": "/d/x.db"})
    assert s.accounts[0].secret_key == "s3cr3t"
    assert s.storage.path == "/d/x.db"


def test_unset_env_var_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"accounts\[0\]\.secret_key: environment variable \$\{NOPE\}"):
        load({"accounts": [{"api_key": "k", "secret_key": "${NOPE}"}]})


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"serverx": {}}, "serverx"),
        ({"server": {"hots": "x"}}, "server.hots"),
        ({"paper": {"fill_modle": "queue"}}, "paper.fill_modle"),
        ({"accounts": [{"api_key": "k", "secret_key": "s", "balance": {}}]}, r"accounts\[0\]\.balance"),
    ],
)
def test_unknown_key_is_rejected_by_name(data: object, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{key}: unknown key"):
        load(data)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"accounts": [{"secret_key": "s"}]}, r"accounts\[0\]\.api_key: required"),
        ({"accounts": [{"api_key": "k"}]}, r"accounts\[0\]\.secret_key: required"),
        ({"accounts": [{"api_key": "", "secret_key": "s"}]}, r"accounts\[0\]\.api_key: required"),
    ],
)
def test_missing_required_value_is_named(data: object, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        load(data)


@pytest.mark.parametrize(
    ("amount", "why"),
    [
        (10000, "quoted decimal string"),
        (0.001, "quoted decimal string"),
        ("ten", "not a decimal"),
        ("1e3", "not a decimal"),
        ("NaN", "not a decimal"),
        ("-5", "must not be negative"),
    ],
)
def test_money_must_be_a_quoted_decimal_string(amount: object, why: str) -> None:
    data = {"accounts": [{"api_key": "k", "secret_key": "s", "balances": {"USDT": amount}}]}
    with pytest.raises(ConfigError, match=rf"accounts\[0\]\.balances\.USDT: .*{why}"):
        load(data)


def test_fee_override_money_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"paper\.fees\.BTCUSDT\.taker"):
        load({"paper": {"fees": {"BTCUSDT": {"taker": 0.001}}}})
    s = load({"paper": {"fees": {"*": {"taker": "0.001"}}}})
    assert s.paper.fees["*"].taker == Decimal("0.001")


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"server": {"port": "eighty"}}, "server.port"),
        ({"server": {"port": 70000}}, "server.port"),
        ({"upstream": {"timeout_s": 0}}, "upstream.timeout_s"),
        ({"upstream": {"base_url": "ftp://x"}}, "upstream.base_url"),
        ({"upstream": {"ws_url": "https://wbs-api.mexc.com/ws"}}, "upstream.ws_url"),
        # public only: a listenKey (any query) or credentials never go into the URL
        ({"upstream": {"ws_url": "wss://wbs-api.mexc.com/ws?listenKey=abc"}}, "upstream.ws_url"),
        ({"upstream": {"ws_url": "wss://user:pw@wbs-api.mexc.com/ws"}}, "upstream.ws_url"),
        ({"upstream": {"ws_url": 1}}, "upstream.ws_url"),
        ({"live": {"enabled": "maybe"}}, "live.enabled"),
        ({"paper": {"fill_model": "magic"}}, "paper.fill_model"),
        ({"logging": {"format": "xml"}}, "logging.format"),
        ({"dashboard": {"equity_change_gap_s": 0}}, "dashboard.equity_change_gap_s"),
        ({"dashboard": {"equity_change_gap_s": "soon"}}, "dashboard.equity_change_gap_s"),
    ],
)
def test_bad_values_are_named(data: object, key: str) -> None:
    with pytest.raises(ConfigError, match=f"^{key}:"):
        load(data)


def test_the_market_stream_defaults_to_mexc_and_null_turns_it_off() -> None:
    assert load({}).upstream.ws_url == "wss://wbs-api.mexc.com/ws"
    assert load_settings(ROOT / "config.yaml", {}).upstream.ws_url == "wss://wbs-api.mexc.com/ws"
    assert load({"upstream": {"ws_url": None}}).upstream.ws_url is None
    assert load({"upstream": {"ws_url": ""}}).upstream.ws_url is None
    assert load({"upstream": {"ws_url": "ws://127.0.0.1:9/ws"}}).upstream.ws_url == "ws://127.0.0.1:9/ws"


def test_json_config_loads(tmp_path: Path) -> None:
    p = tmp_path / "config.json"
    p.write_text(json.dumps({"server": {"port": 9999}, "paper": {"fill_model": "touch"}}))
    s = load_settings(p, {})
    assert s.server.port == 9999
    assert s.paper.fill_model.value == "touch"


def test_equity_recording_settings_default_and_load() -> None:
    assert (load({}).dashboard.equity_interval_s, load({}).dashboard.equity_change_gap_s) == (60.0, 5.0)
    d = load({"dashboard": {"equity_interval_s": 30, "equity_change_gap_s": 0.5}}).dashboard
    assert (d.equity_interval_s, d.equity_change_gap_s) == (30.0, 0.5)
    assert load_settings(ROOT / "config.yaml", {}).dashboard.equity_change_gap_s == 5.0


# ---- the mode rule: live iff live.enabled AND PAPER_TRADING=false ----


def test_mode_neither_half_is_paper() -> None:
    assert load({}, {}).mode == "paper"
    assert load({"live": {"enabled": False}}, {"PAPER_TRADING": "true"}).mode == "paper"


def test_mode_both_halves_is_live() -> None:
    s = load({"live": {"enabled": True}}, {"PAPER_TRADING": "false"})
    assert s.mode == "live"
    assert s.live_armed


def test_mode_only_env_half_refuses_and_names_live_enabled() -> None:
    with pytest.raises(ConfigError, match=r"live\.enabled: true is missing"):
        load({"live": {"enabled": False}}, {"PAPER_TRADING": "0"})


def test_mode_only_config_half_refuses_and_names_the_env_var() -> None:
    with pytest.raises(ConfigError, match="PAPER_TRADING=false is missing"):
        load({"live": {"enabled": True}}, {})


@pytest.mark.parametrize("value", ["true", "1", "yes", "YES", "True"])
def test_paper_trading_truthy_values(value: str) -> None:
    assert load({}, {"PAPER_TRADING": value}).mode == "paper"


@pytest.mark.parametrize("value", ["treu", "", "on", "2"])
def test_paper_trading_rejects_anything_else(value: str) -> None:
    with pytest.raises(ConfigError, match="PAPER_TRADING: must be one of"):
        load({}, {"PAPER_TRADING": value})


def test_initial_balance_env_applies_to_accounts_without_balances() -> None:
    s = load(
        {"accounts": [{"api_key": "a", "secret_key": "s"},
                      {"api_key": "b", "secret_key": "s", "balances": {"BTC": "2"}}]},
        {"PAPER_TRADING_INITIAL_BALANCE_USDT": "2500.5", "PAPER_TRADING_INITIAL_BALANCE_eth": "3"},
    )
    assert s.starting_balances(s.accounts[0]) == {"USDT": Decimal("2500.5"), "ETH": Decimal("3")}
    assert s.starting_balances(s.accounts[1]) == {"BTC": Decimal("2")}


def test_initial_balance_env_is_validated() -> None:
    with pytest.raises(ConfigError, match="PAPER_TRADING_INITIAL_BALANCE_USDT"):
        load({}, {"PAPER_TRADING_INITIAL_BALANCE_USDT": "lots"})


def test_settings_repr_never_shows_secrets() -> None:
    s = load({"accounts": [{"api_key": "mx0vabcdefghijkl", "secret_key": "topsecretvalue"}]})
    text = repr(s)
    assert "topsecretvalue" not in text
    assert "mx0vabcdefghijkl" not in text
    assert mask_key("mx0vabcdefghijkl") == "mx0v...ijkl"


def test_duplicate_api_keys_are_rejected() -> None:
    with pytest.raises(ConfigError, match=r"accounts\[1\]\.api_key: duplicate"):
        load({"accounts": [{"api_key": "k", "secret_key": "a"}, {"api_key": "k", "secret_key": "b"}]})


def test_connect_timeout_may_not_exceed_the_total_timeout() -> None:
    message = r"upstream\.connect_timeout_s: must not exceed upstream\.timeout_s \(2\)"
    with pytest.raises(ConfigError, match=message):
        load({"upstream": {"timeout_s": 2, "connect_timeout_s": 3}})
    assert load({"upstream": {"timeout_s": 2, "connect_timeout_s": 2}}).upstream.connect_timeout_s == 2.0
    assert load({"upstream": {"timeout_s": 2}}).upstream.connect_timeout_s == 2.0  # the default shrinks
    assert load({}).upstream.connect_timeout_s == 3.0
