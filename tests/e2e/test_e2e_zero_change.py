"""Zero-change mode end to end: unmodified clients with MEXC's default URLs trade against the
real sidecar process (`python -m proxy`) over its TLS listener, REST on api.mexc.com and the
private streams on wss://wbs-api.mexc.com/ws (ccxt, ccxt.pro, pymexc, hummingbot's requests).

Each client runs in its own process whose name resolution maps `api.mexc.com` and
`wbs-api.mexc.com` to the TLS listener (zero_change/sitecustomize.py does what the hosts
file or compose's `extra_hosts` does, without root), and which trusts the CA only the way
README "Zero-change mode" says. The setup follows docker-compose.tls.example.yml: its
one-shot `mexc-paper-ca` command exports the CA and the bundle, the sidecar gets its
environment (TLS port, the image's certificate names), and the bot its `extra_hosts` and
trust variables, with container paths replaced by temporary ones and 443 by a free port.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import certifi
import pytest
import yaml
from fake_upstream import FakeMexcThread
from process_support import free_port, wait_healthy

from .readme_blocks import ROOT, code_blocks, section

HERE = Path(__file__).parent / "zero_change"
COMPOSE = yaml.safe_load((ROOT / "docker-compose.tls.example.yml").read_text(encoding="utf-8"))
ZERO = section("Zero-change mode: bots with hard-coded MEXC URLs")

# one paper account per client, so each test's balances are its own
ACCOUNTS = {
    "sync": ("mx0vglzerochangesync", "zero-change-secret-sync"),
    "async": ("mx0vglzerochangeasync", "zero-change-secret-async"),
    "hummingbot": ("mx0vglzerochangehbot", "zero-change-secret-hbot"),
    "pro": ("mx0vglzerochangepro", "zero-change-secret-pro"),
    "pymexc": ("mx0vglzerochangepymexc", "zero-change-secret-pymexc"),
}


def image_env() -> dict[str, str]:
    """The Dockerfile's ENV (what the sidecar's container starts with)."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    line = next(ln for ln in text.splitlines() if ln.startswith("ENV "))
    return dict(item.split("=", 1) for item in line[4:].split())


def config(upstream: str, db: Path) -> str:
    accounts = "\n".join(
        f"  - {{api_key: {k}, secret_key: {s}, name: {n}, balances: {{USDT: \"10000\", BTC: \"1\"}}}}"
        for n, (k, s) in ACCOUNTS.items()
    )
    return f"""\
server:
  host: 127.0.0.1
  port: 8080
  tls:
    port: ${{MEXC_PAPER_TLS_PORT:-}}
    names: ${{MEXC_PAPER_TLS_NAMES:-}}
upstream:
  base_url: {upstream}
  timeout_s: 5
  connect_timeout_s: 2
  market_cache_ms: 0
  ws_url: null             # offline: no market stream
storage:
  path: {db}
  synchronous: NORMAL
accounts:
{accounts}
paper:
  poll_interval_s: 3600
dashboard:
  enabled: false
"""


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PAPER_TRADING", "PROXY_", "MEXC_PAPER", "SSL_CERT", "REQUESTS_CA",
                                "CURL_CA", "NODE_EXTRA", "PYTHONPATH"))}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


@dataclass
class ZeroChange:
    tmp: Path
    cfg: Path
    ca_dir: Path  # stands for the compose file's /ca volume
    tls_port: int
    plain_port: int
    proc: subprocess.Popen[str]
    market: FakeMexcThread

    def hosts(self) -> str:
        """The bot's `extra_hosts`, pointed at the TLS listener on 127.0.0.1."""
        names = [h.split(":", 1)[0] for h in COMPOSE["services"]["bot"]["extra_hosts"]]
        return ",".join(f"{n}=127.0.0.1:{self.tls_port}" for n in names)

    def bot_env(
        self, trust: dict[str, str] | None = None, pythonpath: tuple[Path, ...] = ()
    ) -> dict[str, str]:
        """A bot process: MEXC's names lead to the sidecar; `trust` (default: the compose
        file's bot environment) says which CAs it trusts."""
        env = clean_env()
        if trust is None:
            bot = COMPOSE["services"]["bot"]["environment"]
            trust = {k: str(v).replace("/ca/", f"{self.ca_dir}/") for k, v in bot.items()
                     if k in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")}
        env.update(trust)
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (HERE, *pythonpath))
        env["MEXC_PAPER_TEST_HOSTS"] = self.hosts()
        return env

    def private_subscriptions(self) -> float:
        line = 'mexc_paper_ws_subscriptions{kind="private"} '
        with urllib.request.urlopen(f"http://127.0.0.1:{self.plain_port}/metrics", timeout=10) as r:
            text = r.read().decode()
        return next(float(ln[len(line):]) for ln in text.splitlines() if ln.startswith(line))

    def no_streams(self) -> None:
        """Wait until the sidecar holds no private subscription (a previous test's bot has
        exited; the sidecar notices its closed sockets in its own time): a streaming bot
        waits for its own subscriptions by this count."""
        deadline = time.monotonic() + 10
        while (n := self.private_subscriptions()) > 0:
            assert time.monotonic() < deadline, f"{n} private subscriptions left open"
            time.sleep(0.02)

    def run(self, script: str, *args: str, env: dict[str, str], cwd: Path | None = None) -> tuple[int, Any]:
        proc = subprocess.run([sys.executable, str(HERE / script), *args], env=env, cwd=cwd or self.tmp,
                              capture_output=True, text=True, timeout=120)
        lines = proc.stdout.strip().splitlines()
        assert lines, proc.stderr[-2000:]
        return proc.returncode, json.loads(lines[-1])


def export_ca(cfg: Path, ca_dir: Path) -> None:
    """The compose file's one-shot `mexc-paper-ca` command, its /ca replaced by `ca_dir`."""
    cmd = COMPOSE["services"]["mexc-paper-ca"]["command"]
    assert cmd[:2] == ["sh", "-c"] and "python -m proxy ca --out /ca/mexc-paper-ca.pem" in cmd[2]
    script = cmd[2].replace("/ca/", f"{ca_dir}/")
    # the one-shot container has the image's environment: the same certificate names as
    # the sidecar's (the CA may sign for those only; other names would make the sidecar
    # replace it at its start)
    image = image_env()
    env = clean_env() | {"PROXY_CONFIG": str(cfg), "MEXC_PAPER_TLS_NAMES": image["MEXC_PAPER_TLS_NAMES"],
                         "MEXC_PAPER_TLS_PORT": image["MEXC_PAPER_TLS_PORT"]}
    proc = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def zc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZeroChange]:
    tmp = tmp_path_factory.mktemp("zero-change")
    with FakeMexcThread() as market:
        cfg = tmp / "config.yaml"
        cfg.write_text(config(market.url, tmp / "data" / "paper.sqlite3"), encoding="utf-8")
        ca_dir = tmp / "ca"
        ca_dir.mkdir()
        export_ca(cfg, ca_dir)  # before the sidecar: the CA is made here, then reused
        tls_port, plain_port = free_port(), free_port()
        sidecar_env = COMPOSE["services"]["mexc-paper"]["environment"]
        assert sidecar_env["MEXC_PAPER_TLS_PORT"] == "443"
        env = clean_env() | {"MEXC_PAPER_TLS_NAMES": image_env()["MEXC_PAPER_TLS_NAMES"],
                             "MEXC_PAPER_TLS_PORT": str(tls_port)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "proxy", "--config", str(cfg), "--port", str(plain_port)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            wait_healthy(plain_port, proc, timeout=30)
            yield ZeroChange(tmp, cfg, ca_dir, tls_port, plain_port, proc, market)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        for key, secret in ACCOUNTS.values():
            assert key not in err and secret not in err
        assert f"https://127.0.0.1:{tls_port}" in err  # the start-up line names both listeners
        assert " ERROR " not in err, err
        assert market.fake.signed_requests() == []


def certifi_copy(workdir: Path) -> Path:
    """A private copy of the certifi package (standing for the bot's venv's)."""
    site = workdir / "site"
    if site.exists():
        shutil.rmtree(site)
    shutil.copytree(Path(certifi.__file__).parent, site / "certifi")
    return site


def readme_certifi_recipe(zc: ZeroChange, workdir: Path) -> tuple[str, str]:
    """README's two certifi blocks (append the CA, undo), and the CA where they expect it."""
    add, undo = code_blocks(section("Trusting the CA: what each client reads"), "bash")
    shutil.copy(zc.ca_dir / "mexc-paper-ca.pem", workdir / "mexc-paper-ca.pem")
    return add, undo


def bash(script: str, env: dict[str, str], cwd: Path) -> None:
    subprocess.run(["bash", "-euo", "pipefail", "-c", script], env=env, cwd=cwd, check=True, timeout=30)


# --------------------------------------------------------------------------- the CA export


def test_the_compose_ca_export_holds_only_certificates(zc: ZeroChange) -> None:
    ca = (zc.ca_dir / "mexc-paper-ca.pem").read_text()
    assert ca == (zc.tmp / "data" / "tls" / "ca.crt").read_text()  # the sidecar kept that CA
    assert ca.count("BEGIN CERTIFICATE") == 1 and "PRIVATE KEY" not in ca
    bundle = (zc.ca_dir / "bundle.pem").read_text()
    assert bundle.endswith(ca) and bundle.count("BEGIN CERTIFICATE") > 100  # the system's roots too
    assert "PRIVATE KEY" not in bundle
    # `python -m proxy ca` prints the same certificate
    out = subprocess.run([sys.executable, "-m", "proxy", "ca", "--config", str(zc.cfg)], cwd=ROOT,
                         env=clean_env(), capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout) == (0, ca)


# --------------------------------------------------------------------------- ccxt


def expected() -> dict[str, Any]:
    # a market buy of 0.001 at 87903.98: 87.90398 + taker fee 0.04395199 USDT
    return {
        "spot_url": "https://api.mexc.com",
        "btc_usdt": "BTCUSDT",
        "filled": ["closed", 0.001, 87903.98],
        "canceled": ["canceled", 0.0],
        "balances": {"BTC": ["1.001", "0"], "USDT": ["9912.05206801", "0"]},
    }


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_ccxt_unmodified_trusts_certifi_only_and_the_readme_recipe_puts_the_ca_there(
    zc: ZeroChange, flavour: str
) -> None:
    """ccxt reads neither SSL_CERT_FILE nor REQUESTS_CA_BUNDLE (its async client builds its
    context from certifi.where(); its sync client's requests session has trust_env off),
    so the compose file's trust variables alone do not do; the README's certifi recipe
    does, and its undo undoes it."""
    key, secret = ACCOUNTS[flavour]
    site = certifi_copy(zc.tmp / flavour)
    bundle = site / "certifi" / "cacert.pem"
    original = bundle.read_bytes()
    env = zc.bot_env(pythonpath=(site,))  # SSL_CERT_FILE, REQUESTS_CA_BUNDLE set
    code, out = zc.run("ccxt_bot.py", flavour, key, secret, env=env)
    assert code == 1 and "CERTIFICATE_VERIFY_FAILED" in out["message"], out

    workdir = zc.tmp / flavour
    add, undo = readme_certifi_recipe(zc, workdir)
    bash(add, env, workdir)
    assert bundle.read_bytes() == original + (workdir / "mexc-paper-ca.pem").read_bytes()
    code, out = zc.run("ccxt_bot.py", flavour, key, secret, env=env)
    assert code == 0, out
    assert out == expected()

    bash(undo, env, workdir)
    assert bundle.read_bytes() == original
    code, out = zc.run("ccxt_bot.py", flavour, key, secret, env=env)
    assert code == 1 and "CERTIFICATE_VERIFY_FAILED" in out["message"], out


def test_ccxt_pro_unmodified_streams_its_orders_trades_and_balance_over_wss(zc: ZeroChange) -> None:
    """ccxt.pro with no `urls`: its REST and its private streams (wss://wbs-api.mexc.com/ws,
    the listenKey made on api.mexc.com) reach the sidecar's TLS listener, trusting our CA
    through certifi alone (no SSL_CERT_FILE, no REQUESTS_CA_BUNDLE: its WebSocket client
    uses the session ccxt builds from certifi); what it parsed from the pushes equals
    what REST reports afterwards."""
    key, secret = ACCOUNTS["pro"]
    workdir = zc.tmp / "pro"
    site = certifi_copy(workdir)
    env = zc.bot_env(trust={}, pythonpath=(site,))
    add, _undo = readme_certifi_recipe(zc, workdir)
    bash(add, env, workdir)
    zc.no_streams()
    code, out = zc.run("ccxt_pro_bot.py", key, secret, f"http://127.0.0.1:{zc.plain_port}/metrics",
                       env=env)
    assert code == 0, out
    # MEXC's own addresses, nothing else: the REST host, the spot WebSocket and its private URL
    assert (out["spot_url"], out["ws_url"]) == ("https://api.mexc.com", "wss://wbs-api.mexc.com/ws")
    assert out["clients"] == ["wss://wbs-api.mexc.com/ws", "wss://wbs-api.mexc.com/ws?listenKey"]
    pushed, rest = out["pushed"], out["rest"]

    opened = pushed["open"]
    assert {k: opened[k] for k in ("clientOrderId", "status", "type", "side", "price", "amount", "filled",
                                   "remaining")} == {
        "clientOrderId": "zc-pro-1", "status": "open", "type": "limit", "side": "buy", "price": 80000.0,
        "amount": 0.001, "filled": 0.0, "remaining": 0.001}
    assert opened["info"]["status"] == 1  # NEW, MEXC's numeric code

    # each order's last push as ccxt parsed it, and the same order from REST
    for name, status, code_ in (("filled", "closed", 2), ("canceled", "canceled", 4)):
        p, r = pushed[name], rest[name]
        assert p["status"] == status and p["info"]["status"] == code_
        assert {k: v for k, v in p.items() if k != "info"} == {k: v for k, v in r.items() if k != "info"}
        # the exact decimal strings
        assert (p["info"]["cumulativeQuantity"], p["info"]["cumulativeAmount"]) == (
            r["info"]["executedQty"], r["info"]["cummulativeQuoteQty"])
    assert (pushed["filled"]["filled"], pushed["filled"]["average"]) == (0.001, 87903.98)
    assert pushed["filled"]["info"]["cumulativeAmount"] == "87.90398"

    (p,), (r,) = pushed["trades"], rest["trades"]
    assert {k: v for k, v in p.items() if k != "info"} == {k: v for k, v in r.items() if k != "info"}
    assert p["fee"] == [0.04395199, "USDT"]
    pi, ri = p["info"], r["info"]
    assert (pi["tradeId"], pi["orderId"], pi["price"], pi["quantity"], pi["amount"], pi["feeAmount"],
            pi["feeCurrency"], pi["time"]) == (
        ri["id"], ri["orderId"], ri["price"], ri["qty"], ri["quoteQty"], ri["commission"],
        ri["commissionAsset"], str(ri["time"]))

    # the balance after the last push (the cancel's release) is REST's, to the last decimal
    assert pushed["balance"] == rest["balance"]
    assert rest["balances"] == expected()["balances"]
    info = pushed["balance_info"]
    assert (info["vcoinName"], info["type"], info["balanceAmount"], info["frozenAmount"],
            info["frozenAmountChange"]) == ("USDT", "ENTRUST_CANCEL", *rest["balances"]["USDT"], "-80")


# --------------------------------------------------------------------------- pymexc


def test_pymexc_websocket_with_its_built_in_address(zc: ZeroChange) -> None:
    """pymexc 1.3.0 unchanged: spot.WebSocket makes its listenKey on https://api.mexc.com
    (curl_cffi) and streams from wss://wbs-api.mexc.com/ws (websocket-client), both the
    sidecar's TLS listener; README's recipe, SSL_CERT_FILE, is all it is given. The pushes
    for a market buy placed with spot.HTTP (default URL too) carry REST's values."""
    key, secret = ACCOUNTS["pymexc"]
    metrics = f"http://127.0.0.1:{zc.plain_port}/metrics"
    zc.no_streams()
    code, out = zc.run("pymexc_bot.py", key, secret, metrics,
                       env=zc.bot_env(trust={"SSL_CERT_FILE": str(zc.ca_dir / "bundle.pem")}))
    assert code == 0, out
    assert out["rest_url"] == "https://api.mexc.com"
    assert (out["endpoint"], out["listen_key"]) == ("wss://wbs-api.mexc.com/ws?listenKey=KEY", 64)
    pushed, order, (trade,) = out["pushed"], out["order"], out["trades"]
    assert [k for k, _ in pushed] == ["orders", "deals", "orders", "account", "account"]
    orders = [m for k, m in pushed if k == "orders"]
    assert [(m["id"], m["clientId"], m["status"]) for m in orders] == [
        (out["ack"]["orderId"], "zc-pm-1", 1), (out["ack"]["orderId"], "zc-pm-1", 2)]
    final = orders[-1]
    assert (final["cumulativeQuantity"], final["cumulativeAmount"], final["quantity"], final["avgPrice"]) == (
        order["executedQty"], order["cummulativeQuoteQty"], order["origQty"], trade["price"])
    assert order["status"] == "FILLED"
    deal = pushed[1][1]
    assert (deal["tradeId"], deal["orderId"], deal["clientOrderId"], deal["price"], deal["quantity"],
            deal["amount"], deal["feeAmount"], deal["feeCurrency"], deal["time"]) == (
        trade["id"], trade["orderId"], trade["clientOrderId"], trade["price"], trade["qty"],
        trade["quoteQty"], trade["commission"], trade["commissionAsset"], str(trade["time"]))
    assert (deal["price"], deal["feeAmount"]) == ("87903.98", "0.04395199")
    for _, m in pushed[3:]:
        assert [m["balanceAmount"], m["frozenAmount"]] == out["balances"][m["vcoinName"]]
    assert out["balances"] == {"BTC": ["1.001", "0"], "USDT": ["9912.05206801", "0"]}

    # only our CA, and where each of its two clients reads it: with none, the listenKey's
    # REST call fails; with curl's own variable only, the REST call succeeds and the
    # stream's TLS handshake (websocket-client: Python's default context) refuses
    code, out = zc.run("pymexc_bot.py", key, secret, metrics, env=zc.bot_env(trust={}))
    assert (code, out["error"]) == (1, "CertificateVerifyError"), out
    code, out = zc.run("pymexc_bot.py", key, secret, metrics,
                       env=zc.bot_env(trust={"CURL_CA_BUNDLE": str(zc.ca_dir / "bundle.pem")}))
    assert (code, out["error"]) == (1, "WebSocketTimeoutException"), out
    assert "wss://wbs-api.mexc.com/ws" in out["message"]
    assert "CERTIFICATE_VERIFY_FAILED" in out["log"], out


# --------------------------------------------------------------------------- hummingbot


def test_hummingbots_hard_coded_urls_and_signing(zc: ZeroChange) -> None:
    key, secret = ACCOUNTS["hummingbot"]
    code, out = zc.run("hummingbot_style.py", key, secret, env=zc.bot_env())
    assert code == 0, out
    assert out["ping"] == [200, {}]
    assert out["symbols"] == ["BTCUSDT"]
    assert out["best_ask"] == ["87903.98", "5.12181600"]
    status, ack = out["order"]
    assert status == 200, ack
    assert (ack["symbol"], ack["side"], ack["type"], ack["price"], ack["origQty"]) == (
        "BTCUSDT", "BUY", "LIMIT", "80000", "0.001")
    assert out["status"] == "NEW"  # found by its newClientOrderId
    assert out["cancel"] == [200, "CANCELED"]
    assert out["balances"] == {"BTC": ["1", "0"], "USDT": ["10000", "0"]}
    assert out["listen_key"][0] == 200 and out["listen_key"][1] >= 32


# --------------------------------------------------------------------------- README checks


def test_the_laptop_hosts_line_and_the_curl_check(zc: ZeroChange) -> None:
    """README's /etc/hosts line names exactly the hosts the compose recipe maps, and its
    curl check answers from the sidecar (curl's --connect-to plays the hosts file)."""
    (hosts_block,) = code_blocks(section("On a laptop, with /etc/hosts"), "")
    address, *names = hosts_block.split()
    assert address == "127.0.0.1"
    assert names == [h.split(":", 1)[0] for h in COMPOSE["services"]["bot"]["extra_hosts"]]
    assert names == ["api.mexc.com", "wbs-api.mexc.com"]
    check = next(b for b in code_blocks(ZERO, "bash") if "curl" in b).strip()
    assert check == "curl --cacert mexc-paper-ca.pem https://api.mexc.com/healthz"
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    shutil.copy(zc.ca_dir / "mexc-paper-ca.pem", zc.tmp / "mexc-paper-ca.pem")
    for name in names:
        cmd = check.replace("curl ", f"curl -sS --connect-to {name}:443:127.0.0.1:{zc.tls_port} ", 1)
        cmd = cmd.replace("https://api.mexc.com", f"https://{name}")
        out = subprocess.run(cmd.split(), cwd=zc.tmp, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        health = json.loads(out.stdout)
        assert (health["status"], health["mode"]) == ("ok", "paper")


def test_the_readme_quotes_the_compose_file_and_its_addresses_agree() -> None:
    (block,) = code_blocks(section("docker compose, with extra_hosts"), "yaml")
    assert block == (ROOT / "docker-compose.tls.example.yml").read_text(encoding="utf-8")
    services = COMPOSE["services"]
    sidecar, bot, export = services["mexc-paper"], services["bot"], services["mexc-paper-ca"]
    address = sidecar["networks"]["paper"]["ipv4_address"]
    subnet = COMPOSE["networks"]["paper"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(address) in ipaddress.ip_network(subnet)
    assert bot["extra_hosts"] == [f"api.mexc.com:{address}", f"wbs-api.mexc.com:{address}"]
    assert "paper" in bot["networks"]
    # 443 inside the container, allowed for the non-root user; the image's default stays 8443
    assert sidecar["environment"]["MEXC_PAPER_TLS_PORT"] == "443"
    assert sidecar["sysctls"]["net.ipv4.ip_unprivileged_port_start"] == 0
    assert image_env()["MEXC_PAPER_TLS_PORT"] == "8443"
    # the CA key stays in the data volume; the bot gets certificates only, read-only
    assert export["volumes"] == ["paper-data:/data", "paper-ca:/ca"]
    assert sidecar["volumes"] == ["paper-data:/data"]
    assert bot["volumes"] == ["paper-ca:/ca:ro"]
    assert "paper-data:/data" not in bot["volumes"]
    env = bot["environment"]
    assert env["SSL_CERT_FILE"] == env["REQUESTS_CA_BUNDLE"] == "/ca/bundle.pem"
    assert env["NODE_EXTRA_CA_CERTS"] == "/ca/mexc-paper-ca.pem"
    assert sidecar["depends_on"]["mexc-paper-ca"]["condition"] == "service_completed_successfully"
    assert bot["depends_on"]["mexc-paper"]["condition"] == "service_healthy"


def test_the_readme_names_the_ccxt_source_it_relies_on() -> None:
    """The claim that ccxt's async client reads certifi and not the environment, checked
    in the installed ccxt."""
    import ccxt

    base = Path(ccxt.__file__).parent
    source = (base / "async_support" / "base" / "exchange.py").read_text(encoding="utf-8")
    readme = " ".join(ZERO.split())
    for line in ("self.cafile = config.get('cafile', certifi.where())",
                 "ssl.create_default_context(cafile=self.cafile)"):
        assert line in source
        assert line in readme
    assert "SSL_CERT_FILE" not in source and "REQUESTS_CA_BUNDLE" not in source
    # ccxt.pro's streams: the exchange's own session, so the same TLS context
    ws_source = (base / "async_support" / "base" / "ws" / "client.py").read_text(encoding="utf-8")
    assert "        selected_session = self.session\n" in source
    assert "client.connect(selected_session, backoff_delay)" in source
    create = ws_source.split("    def create_connection(self, session):", 1)[1].split("\n    def ", 1)[0]
    assert "return session.ws_connect(self.url, " in create and "ssl" not in create  # no context of its own
    assert "`selected_session = self.session`" in readme
    assert "`session.ws_connect(self.url, ...)` in `async_support/base/ws/client.py`" in readme
    sync_source = (base / "base" / "exchange.py").read_text(encoding="utf-8")
    assert "    requests_trust_env = False\n" in sync_source
    assert "self.session.trust_env = self.requests_trust_env" in sync_source
    assert "`requests_trust_env = False` in `base/exchange.py`" in readme


def probe(zc: ZeroChange, url: str, trust: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """urllib with Python's default TLS context, in a bot process."""
    code = ("import json, ssl, sys, urllib.request; "
            "print(urllib.request.urlopen(sys.argv[1], context=ssl.create_default_context(), "
            "timeout=10).read().decode())")
    return subprocess.run([sys.executable, "-c", code, url], env=zc.bot_env(trust=trust),
                          capture_output=True, text=True, timeout=60)


def test_python_default_context_reads_ssl_cert_file(zc: ZeroChange) -> None:
    """What the table says of Python's defaults (hummingbot's aiohttp, websocket-client,
    urllib): SSL_CERT_FILE decides; a client that trusts the system's roots only is refused."""
    out = probe(zc, "https://wbs-api.mexc.com/healthz", {"SSL_CERT_FILE": str(zc.ca_dir / "bundle.pem")})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "ok"
    out = probe(zc, "https://wbs-api.mexc.com/healthz", {})
    assert out.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in out.stderr


def test_requests_reads_requests_ca_bundle(zc: ZeroChange) -> None:
    code = ("import sys, requests; r = requests.get(sys.argv[1], timeout=10); "
            "print(r.status_code, r.json()['mode'])")
    url = "https://api.mexc.com/healthz"
    for trust, ok in (({"REQUESTS_CA_BUNDLE": str(zc.ca_dir / "bundle.pem")}, True), ({}, False)):
        out = subprocess.run([sys.executable, "-c", code, url], env=zc.bot_env(trust=trust),
                             capture_output=True, text=True, timeout=60)
        if ok:
            assert (out.returncode, out.stdout.strip()) == (0, "200 paper"), out.stderr
        else:
            assert out.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in out.stderr


def test_public_data_comes_from_the_sidecars_own_upstream(zc: ZeroChange) -> None:
    """Only the bots' processes map MEXC's names: the sidecar forwards a public call to its
    upstream (the fake MEXC), which sees it unsigned."""
    out = probe(zc, "https://api.mexc.com/api/v3/ticker/price?symbol=BTCUSDT",
                {"SSL_CERT_FILE": str(zc.ca_dir / "mexc-paper-ca.pem")})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"symbol": "BTCUSDT", "price": "87900"}
    seen = zc.market.call(lambda: list(zc.market.fake.seen))
    assert any(s.path == "/api/v3/ticker/price" for s in seen)
    assert [s for s in seen if "signature" in s.query] == []

