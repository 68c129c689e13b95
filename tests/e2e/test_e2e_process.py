"""The real process, as a user runs it: `python -m proxy --config <file> --port <p>` with the
fake MEXC as upstream, driven by unmodified ccxt and by the README's curl recipe."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from process_support import free_port, wait_healthy

from .bot_recipes import ccxt_sync
from .e2e_harness import KEY, SECRET, Market, config_text
from .readme_blocks import ROOT, run_curl_recipe


def test_python_m_proxy_with_ccxt_and_curl(market: Market, tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(config_text(market.url, tmp_path / "data" / "paper.sqlite3"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAPER_TRADING", "PROXY_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "proxy", "--config", str(cfg), "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        health = wait_healthy(port, proc, timeout=20)
        assert (health["status"], health["mode"]) == ("ok", "paper")
        base = f"http://127.0.0.1:{port}"

        ex = ccxt_sync(base, KEY, SECRET)
        ex.load_markets()
        ack = ex.create_order("BTC/USDT", "market", "buy", 0.001)
        order = ex.fetch_order(ack["id"], "BTC/USDT")
        assert (order["status"], order["filled"], order["average"]) == ("closed", 0.001, 87903.98)
        # 87.90398 + fee 0.04395199
        raw = {b["asset"]: (b["free"], b["locked"]) for b in ex.fetch_balance()["info"]["balances"]}
        assert raw == {"BTC": ("1.001", "0"), "USDT": ("9912.05206801", "0")}

        # the README's curl recipe: a 20 USDT market buy (0.00022752 BTC at 87903.98)
        curl_ack, account = run_curl_recipe(base)
        assert (curl_ack["type"], curl_ack["origQty"]) == ("MARKET", "0.00022752")
        assert {b["asset"]: (b["free"], b["locked"]) for b in account["balances"]} == {
            "BTC": ("1.00122752", "0"), "USDT": ("9892.0421545236352", "0")}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "mode=PAPER" in err
    assert KEY not in err and SECRET not in err
    assert market.signed_requests() == []
