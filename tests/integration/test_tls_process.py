"""The real process with TLS: `python -m proxy ca`, both listeners, a user-supplied
certificate, and the errors that stop start-up with a message naming the key."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from process_support import free_port, wait_healthy

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "cassettes" / "demo.yaml"


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PAPER_TRADING", "PROXY_", "MEXC_PAPER"))}
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "proxy", *args], cwd=cwd, env=e, capture_output=True,
                          text=True, timeout=60)


def start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PAPER_TRADING", "PROXY_", "MEXC_PAPER"))}
    return subprocess.Popen([sys.executable, "-m", "proxy", *args], cwd=cwd, env=e,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def write_config(tmp_path: Path, tls: str) -> Path:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"server:\n  tls:\n{tls}\nstorage:\n  path: {tmp_path / 'data' / 'p.db'}\n")
    return cfg


def https_get(port: int, path: str, ctx: ssl.SSLContext, host: str = "localhost") -> dict:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn.sock = ctx.wrap_socket(raw, server_hostname=host)
    conn.request("GET", path, headers={"Host": host})
    body = json.loads(conn.getresponse().read())
    conn.close()
    return body


# --------------------------------------------------------------------------- python -m proxy ca


def test_ca_prints_the_ca_and_makes_it_when_none_exists(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "    port: 8443")
    out = run(["ca", "--config", str(cfg)], tmp_path)
    assert out.returncode == 0, out.stderr
    ca = tmp_path / "data" / "tls" / "ca.crt"
    assert out.stdout == ca.read_text()
    cert = x509.load_pem_x509_certificate(out.stdout.encode())
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert oct(os.stat(tmp_path / "data" / "tls" / "ca.key").st_mode & 0o777) == "0o600"
    # idempotent: the same CA again
    assert run(["ca", "--config", str(cfg)], tmp_path).stdout == out.stdout


def test_ca_out_writes_a_file_and_needs_no_tls_listener(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"storage:\n  path: {tmp_path / 'db' / 'p.db'}\n")
    out = run(["ca", "--config", str(cfg), "--out", str(tmp_path / "export" / "ca.pem")], tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    written = (tmp_path / "export" / "ca.pem").read_text()
    assert written == (tmp_path / "db" / "tls" / "ca.crt").read_text()
    assert "wrote the local CA certificate to" in out.stderr and "SHA-256" in out.stderr


def test_ca_uses_proxy_config_and_refuses_a_user_certificate(tmp_path: Path) -> None:
    crt, key = self_signed_pair(tmp_path, "paper.example")
    cfg = write_config(tmp_path, f"    cert: {crt}\n    key: {key}")
    out = run(["ca"], tmp_path, env={"PROXY_CONFIG": str(cfg)})
    assert out.returncode == 2
    assert "server.tls.cert is set" in out.stderr and out.stdout == ""
    bad = tmp_path / "bad.yaml"
    bad.write_text("server:\n  tls:\n    prot: 1\n")
    out = run(["ca", "--config", str(bad)], tmp_path)
    assert out.returncode == 2 and "server.tls.prot: unknown key" in out.stderr


def test_ca_help_and_the_main_help_mention_it(tmp_path: Path) -> None:
    out = run(["ca", "--help"], tmp_path)
    assert out.returncode == 0 and "--out FILE" in out.stdout and "--config PATH" in out.stdout
    out = run(["--help"], tmp_path)
    assert out.returncode == 0 and "python -m proxy ca" in out.stdout
    for opt in ("--config", "--host", "--port", "--replay", "--record"):
        assert opt in out.stdout


# --------------------------------------------------------------------------- the process


def self_signed_pair(tmp_path: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    crt_path, key_path = tmp_path / "own.crt", tmp_path / "own.key"
    crt_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return crt_path, key_path


def test_a_user_supplied_certificate_is_served(tmp_path: Path) -> None:
    crt, key = self_signed_pair(tmp_path, "paper.example")
    tls_port, port = free_port(), free_port()
    cfg = write_config(tmp_path, f"    port: {tls_port}\n    cert: {crt}\n    key: {key}")
    proc = start(["--config", str(cfg), "--port", str(port), "--replay", str(DEMO)], tmp_path)
    try:
        wait_healthy(port, proc)
        ctx = ssl.create_default_context(cafile=str(crt))
        assert https_get(tls_port, "/healthz", ctx, "paper.example")["status"] == "ok"
        with pytest.raises(ssl.SSLCertVerificationError):
            https_get(tls_port, "/healthz", ctx, "api.mexc.com")
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert f"tls=cert:{crt}" in err
    assert not (tmp_path / "data" / "tls").exists()  # no local CA made


@pytest.mark.parametrize("which", ["cert", "key"])
def test_an_unreadable_user_certificate_stops_start_up(tmp_path: Path, which: str) -> None:
    crt, key = self_signed_pair(tmp_path, "paper.example")
    (crt if which == "cert" else key).write_text("garbage")
    cfg = write_config(tmp_path, f"    port: {free_port()}\n    cert: {crt}\n    key: {key}")
    out = run(["--config", str(cfg), "--port", str(free_port())], tmp_path)
    assert out.returncode == 2
    assert "configuration error: server.tls.cert/key: cannot load the certificate" in out.stderr


def test_a_tls_port_in_use_stops_start_up_naming_the_key(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        cfg = write_config(tmp_path, f"    port: {taken}")
        out = run(["--config", str(cfg), "--port", str(free_port()), "--replay", str(DEMO)], tmp_path)
    assert out.returncode == 2
    assert f"cannot start: server.tls.port: cannot listen on https://127.0.0.1:{taken}" in out.stderr


def test_the_tls_port_and_the_port_must_differ(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "    port: 9999")
    out = run(["--config", str(cfg), "--port", "9999"], tmp_path)
    assert out.returncode == 2
    assert "--port: 9999 is server.tls.port" in out.stderr
