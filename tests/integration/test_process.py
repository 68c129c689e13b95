"""The real process: `python -m proxy` starts, answers /healthz, stops cleanly on signals."""

from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from process_support import free_port, wait_healthy

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "cassettes" / "demo.yaml"


def start(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PAPER_TRADING", "PROXY_"))}
    e.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "proxy", *args], cwd=cwd, env=e,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_starts_on_committed_config_and_stops_on_signal(tmp_path: Path, sig: int) -> None:
    port = free_port()
    proc = start(
        ["--config", str(ROOT / "config.yaml"), "--port", str(port), "--replay", str(DEMO)],
        cwd=tmp_path,
    )
    try:
        health = wait_healthy(port, proc)
        assert health["status"] == "ok"
        assert health["mode"] == "paper"
        assert health["storage"] == {"path": "./data/paper-replay-demo.sqlite3", "ok": True}
        t0 = time.monotonic()
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=5)
        assert time.monotonic() - t0 < 5
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    line = next(ln for ln in err.splitlines() if "started mode=" in ln)
    assert "mode=PAPER" in line
    assert f"listen=http://127.0.0.1:{port}" in line
    assert f"upstream=replay:{DEMO}" in line
    assert "stream=off" in line  # a replay never connects to MEXC's stream
    # a replay has its own database next to the configured one (storage.path)
    assert "db=./data/paper-replay-demo.sqlite3" in line
    assert "accounts=1" in line
    assert "keys=mx0v...demo" in line
    assert "mx0vglpaperdemo" not in err and "paperdemosecret" not in err
    assert (tmp_path / "data" / "paper-replay-demo.sqlite3").exists()
    assert not (tmp_path / "data" / "paper.sqlite3").exists()


def test_live_half_armed_refuses_to_start_and_names_live_enabled(tmp_path: Path) -> None:
    proc = start(["--config", str(ROOT / "config.yaml")], cwd=tmp_path, env={"PAPER_TRADING": "false"})
    _out, err = proc.communicate(timeout=10)
    assert proc.returncode == 2
    assert "live.enabled" in err
    assert "refusing to start" in err


def test_config_error_exits_2_and_names_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("server:\n  prot: 8080\n")
    proc = start(["--config", str(cfg)], cwd=tmp_path)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 2
    assert "server.prot: unknown key" in err


def test_proxy_config_env_names_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "other.yaml"
    cfg.write_text("paper:\n  fill_model: nonsense\n")
    proc = start([], cwd=tmp_path, env={"PROXY_CONFIG": str(cfg)})
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 2
    assert "paper.fill_model" in err


def test_help_lists_the_options(tmp_path: Path) -> None:
    proc = start(["--help"], cwd=tmp_path)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    for opt in ("--config", "--host", "--port", "--replay", "--record", "--db"):
        assert opt in out


def image_command(port: int) -> list[str]:
    """The Dockerfile's CMD arguments after `python -m proxy`, on 127.0.0.1:`port` (a test
    must not listen on 0.0.0.0)."""
    cmd = None
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("CMD "):
            cmd = json.loads(line[4:])
    assert cmd is not None and cmd[:3] == ["python", "-m", "proxy"]
    args = cmd[3:]
    args[args.index("--port") + 1] = str(port)
    args[args.index("--host") + 1] = "127.0.0.1"
    return args


def image_environment() -> dict[str, str]:
    """The Dockerfile's ENV."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return dict(kv.split("=", 1) for kv in next(
        ln for ln in text.splitlines() if ln.startswith("ENV "))[4:].split())


def test_docker_command_starts_outside_docker(tmp_path: Path) -> None:
    """The image's CMD with the image's environment, run as a plain process."""
    port = free_port()
    args = image_command(port)
    image_env = image_environment()
    assert image_env["MEXC_PAPER_TLS_PORT"] == "8443"  # the image's TLS listener
    tls_port = free_port()
    env = {"PROXY_CONFIG": str(ROOT / "config.yaml"), "MEXC_PAPER_DB": str(tmp_path / "d" / "p.db"),
           "MEXC_PAPER_TLS_PORT": str(tls_port), "MEXC_PAPER_TLS_NAMES": image_env["MEXC_PAPER_TLS_NAMES"]}
    proc = start([*args, "--replay", str(DEMO)], cwd=tmp_path, env=env)
    try:
        health = wait_healthy(port, proc)
        assert health["mode"] == "paper"
        # the replay's own database, in the folder of $MEXC_PAPER_DB (the volume /data)
        assert health["storage"]["path"] == str(tmp_path / "d" / "paper-replay-demo.sqlite3")
        assert (tmp_path / "d" / "paper-replay-demo.sqlite3").exists()
        assert not (tmp_path / "d" / "p.db").exists()
        ca = tmp_path / "d" / "tls" / "ca.crt"  # the local CA, next to the databases, in the volume
        ctx = ssl.create_default_context(cafile=str(ca))
        conn = http.client.HTTPSConnection("127.0.0.1", tls_port, context=ctx, timeout=5)
        conn.request("GET", "/healthz", headers={"Host": "mexc-paper"})
        assert json.loads(conn.getresponse().read())["mode"] == "paper"
        conn.close()
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=5)
    assert proc.returncode == 0
    assert f"listen=http://127.0.0.1:{port},https://127.0.0.1:{tls_port} tls=local-ca:" in err


def test_other_containers_reach_the_admin_api_and_the_dashboard_by_service_name(tmp_path: Path) -> None:
    """The image's CMD with the image's whole environment and the committed config, as a
    bot's or a CI job's container reaches it: `Host: mexc-paper` (the compose service
    name) with the admin token. The image trusts its service name (MEXC_PAPER_ALLOWED_HOSTS)
    on the plain listener too; before, only over TLS, so a plain admin call answered 403
    "this Host is not served here". The admin token vouches for any other Host (the
    container's address); without it, and on the dashboard, that Host is refused. The data
    folder the TLS listener makes first is owner-only."""
    port, tls_port = free_port(), free_port()
    token = "ci-token-Jw2v9"
    env = {**image_environment(), "PROXY_CONFIG": str(ROOT / "config.yaml"),
           "MEXC_PAPER_DB": str(tmp_path / "d" / "paper.sqlite3"), "MEXC_PAPER_TLS_PORT": str(tls_port),
           "MEXC_PAPER_ADMIN_TOKEN": token}
    assert env["MEXC_PAPER_ALLOWED_HOSTS"] == "mexc-paper"
    proc = start([*image_command(port), "--replay", str(DEMO)], cwd=tmp_path, env=env)

    def call(method: str, path: str, host: str, **headers: str) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        body = b"{}" if method == "POST" else None
        conn.request(method, path, body=body, headers={"Host": host, "Content-Type": "application/json",
                                                       **headers})
        resp = conn.getresponse()
        out = resp.status, resp.read().decode()
        conn.close()
        return out

    try:
        wait_healthy(port, proc)
        by_name, by_address = f"mexc-paper:{port}", f"172.18.0.5:{port}"
        status, body = call("POST", "/admin/api/accounts/1/reset", by_name, **{"X-Admin-Token": token})
        assert status == 200, body
        assert call("GET", "/dashboard/", by_name)[0] == 200
        assert call("GET", "/admin/api/accounts", by_name)[0] == 200
        bearer = {"Authorization": f"Bearer {token}"}
        status, body = call("POST", "/admin/api/accounts/1/reset", by_address, **bearer)
        assert status == 200, body
        assert call("POST", "/admin/api/accounts/1/reset", by_name)[0] == 401  # a change needs the token
        for method, path in (("GET", "/admin/api/accounts"), ("POST", "/admin/api/accounts/1/reset"),
                             ("GET", "/dashboard/")):
            assert call(method, path, by_address)[0] == 403, (method, path)
        assert call("GET", "/dashboard/", by_address, **{"X-Admin-Token": token})[0] == 403
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=5)
    assert proc.returncode == 0, err
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o700


def test_replay_orders_stay_out_of_the_normal_database_unless_db_names_it(tmp_path: Path) -> None:
    """A replay's orders never reach the database a live-market session uses; `--db PATH`
    chooses the database of any run, a replay's included."""
    config = ["--config", str(ROOT / "config.yaml"), "--replay", str(DEMO)]
    chosen = tmp_path / "mine.sqlite3"
    for extra, db in (([], tmp_path / "data" / "paper-replay-demo.sqlite3"), (["--db", str(chosen)], chosen)):
        port = free_port()
        proc = start([*config, "--port", str(port), *extra], cwd=tmp_path)
        try:
            health = wait_healthy(port, proc)
            assert os.path.abspath(tmp_path / health["storage"]["path"]) == str(db)
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/admin/api/accounts/1/fund", method="POST",
                data=b'{"asset": "USDT", "amount": "5"}', headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=5) as resp:
                assert resp.status == 200
        finally:
            proc.terminate()
            _out, err = proc.communicate(timeout=5)
        assert proc.returncode == 0, err
        assert f"db={health['storage']['path']}" in err
        assert db.exists()
    # the normal database was never created: the next live-market session starts clean
    assert not (tmp_path / "data" / "paper.sqlite3").exists()
    databases = sorted(p.name for p in tmp_path.rglob("*.sqlite3"))
    assert databases == ["mine.sqlite3", "paper-replay-demo.sqlite3"]
