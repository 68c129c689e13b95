"""The local CA and the leaf (proxy/tls.py): made once, reused across restarts, renewed
before they expire, the keys owner-only; and the server.tls / upstream.resolve config."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from proxy import tls
from proxy.config import ConfigError, Settings, StorageSettings, settings_from_mapping

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def settings(tmp_path: Path, **tls_keys: object) -> Settings:
    return settings_from_mapping(
        {"server": {"tls": {"port": 0, **tls_keys}}, "storage": {"path": str(tmp_path / "data" / "p.db")}},
        {},
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def load(s: Settings, now: dt.datetime = NOW) -> tls.TlsServer:
    server = tls.TlsServer(s)
    server.load(now)
    return server


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def permitted(c: x509.Certificate) -> list[str]:
    nc = c.extensions.get_extension_for_class(x509.NameConstraints)
    assert nc.critical and nc.value.excluded_subtrees is None
    return sorted(str(n.value) for n in nc.value.permitted_subtrees or ())


def sans(c: x509.Certificate) -> list[str]:
    san = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [*san.get_values_for_type(x509.DNSName), *map(str, san.get_values_for_type(x509.IPAddress))]


def test_first_start_makes_a_ca_and_a_leaf_in_the_storage_folder_owner_only(tmp_path: Path) -> None:
    s = settings(tmp_path, names=["mexc-paper", "10.0.0.7"])
    server = load(s)
    folder = tmp_path / "data" / "tls"
    assert tls.tls_dir(s) == folder
    assert mode(folder) == 0o700
    assert mode(folder / "ca.key") == 0o600
    assert mode(folder / "leaf.key") == 0o600
    assert mode(folder / "ca.crt") == 0o644 and mode(folder / "leaf.crt") == 0o644
    assert sorted(p.name for p in folder.iterdir()) == [".lock", "ca.crt", "ca.key", "leaf.crt", "leaf.key"]

    ca, leaf = cert(folder / "ca.crt"), cert(folder / "leaf.crt")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.SERVER_AUTH])
    leaf.verify_directly_issued_by(ca)
    assert sans(leaf) == ["api.mexc.com", "wbs-api.mexc.com", "localhost", "mexc-paper",
                          "127.0.0.1", "::1", "10.0.0.7"]
    assert leaf.not_valid_after_utc == NOW + tls.LEAF_LIFETIME
    assert ca.not_valid_after_utc == NOW + tls.CA_LIFETIME
    assert leaf.not_valid_before_utc <= NOW and ca.not_valid_before_utc <= NOW
    # the served chain is the leaf, then the CA
    assert x509.load_pem_x509_certificates((folder / "leaf.crt").read_bytes())[1] == ca
    assert server.describe == f"local-ca:{folder / 'ca.crt'}"


def test_a_restart_reuses_the_ca_and_the_leaf(tmp_path: Path) -> None:
    s = settings(tmp_path)
    load(s)
    folder = tls.tls_dir(s)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    server = load(s, NOW + dt.timedelta(days=10))  # a restart ten days later
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert server.leaf is not None and server.leaf.issued is False


def test_changed_names_make_a_new_ca_and_leaf_and_say_clients_must_trust_it_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The CA may sign for the leaf's names only: other names, another CA, with a new key
    (the old key under the old certificate a client kept would still sign anything)."""
    load(settings(tmp_path))
    folder = tmp_path / "data" / "tls"
    ca_before, key_before = cert(folder / "ca.crt"), (folder / "ca.key").read_bytes()
    leaf_before = (folder / "leaf.crt").read_bytes()
    caplog.clear()
    load(settings(tmp_path, names=["paper.internal"]))
    ca_after = cert(folder / "ca.crt")
    assert (folder / "ca.key").read_bytes() != key_before
    assert ca_after.public_key() != ca_before.public_key() and ca_after.subject != ca_before.subject
    assert (folder / "leaf.crt").read_bytes() != leaf_before
    assert "paper.internal" in sans(cert(folder / "leaf.crt"))
    cert(folder / "leaf.crt").verify_directly_issued_by(ca_after)
    assert "paper.internal" in permitted(ca_after)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and "clients must trust the new" in warned[0], warned
    assert "were: api.mexc.com, localhost, wbs-api.mexc.com; now: api.mexc.com, localhost, " in warned[0]
    # the same names again: nothing remade
    caplog.clear()
    load(settings(tmp_path, names=["paper.internal"]))
    assert cert(folder / "ca.crt") == ca_after and not caplog.records


def test_the_leaf_is_renewed_thirty_days_before_it_expires_also_while_running(tmp_path: Path) -> None:
    s = settings(tmp_path)
    server = load(s)
    folder = tls.tls_dir(s)
    first = cert(folder / "leaf.crt")
    # 59 days on: 31 days left, kept
    assert server.refresh(NOW + dt.timedelta(days=59)) is False
    assert cert(folder / "leaf.crt") == first
    # 61 days on: 29 days left, a new leaf, loaded into the running listener's context
    later = NOW + dt.timedelta(days=61)
    assert server.refresh(later) is True
    renewed = cert(folder / "leaf.crt")
    assert renewed != first and renewed.not_valid_after_utc == later + tls.LEAF_LIFETIME
    assert server.leaf is not None and server.leaf.not_after == renewed.not_valid_after_utc
    assert mode(folder / "leaf.key") == 0o600


def test_the_ca_is_re_signed_with_the_same_key_a_year_before_it_expires(tmp_path: Path) -> None:
    s = settings(tmp_path)
    load(s)
    folder = tls.tls_dir(s)
    old_ca, old_key = cert(folder / "ca.crt"), (folder / "ca.key").read_bytes()
    old_leaf = cert(folder / "leaf.crt")
    later = NOW + tls.CA_LIFETIME - dt.timedelta(days=300)
    load(s, later)
    new_ca = cert(folder / "ca.crt")
    assert (folder / "ca.key").read_bytes() == old_key
    assert new_ca != old_ca and new_ca.subject == old_ca.subject
    assert new_ca.not_valid_after_utc == later + tls.CA_LIFETIME
    # same key: what the old certificate signed verifies under the new one, and back
    old_leaf.verify_directly_issued_by(new_ca)
    new_leaf = cert(folder / "leaf.crt")
    new_leaf.verify_directly_issued_by(old_ca)
    assert new_leaf != old_leaf  # the chain it serves carries the new CA certificate


def test_the_ca_may_sign_for_the_leafs_names_only(tmp_path: Path) -> None:
    load(settings(tmp_path, names=["mexc-paper", "10.0.0.7", "*.paper.lan", "127.0.0.2"]))
    ca = cert(tmp_path / "data" / "tls" / "ca.crt")
    # MEXC's two hosts, not the mexc.com subtree (www.mexc.com is where users log in);
    # no address subtree: BoringSSL (pymexc's curl_cffi) refuses a CA that has one
    assert permitted(ca) == ["api.mexc.com", "localhost", "mexc-paper", "paper.lan", "wbs-api.mexc.com"]


def test_a_ca_made_without_name_constraints_is_made_anew(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A CA from before the constraint (or any CA that may sign for other names) is
    replaced, key and all, on the next start."""
    s = settings(tmp_path)
    load(s)
    folder = tls.tls_dir(s)
    key = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), None)
    old = cert(folder / "ca.crt")
    unconstrained = x509.CertificateBuilder(
        subject_name=old.subject, issuer_name=old.subject, public_key=old.public_key(),
        serial_number=old.serial_number, not_valid_before=old.not_valid_before_utc,
        not_valid_after=old.not_valid_after_utc,
        extensions=[e for e in old.extensions if not isinstance(e.value, x509.NameConstraints)],
    ).sign(key, hashes.SHA256())  # type: ignore[arg-type]
    (folder / "ca.crt").write_bytes(unconstrained.public_bytes(serialization.Encoding.PEM))
    caplog.clear()
    server = load(s)
    new = cert(folder / "ca.crt")
    assert new.public_key() != old.public_key()
    assert "api.mexc.com" in permitted(new)
    assert server.leaf is not None and server.leaf.issued
    cert(folder / "leaf.crt").verify_directly_issued_by(new)
    assert "it could sign for any name (made by an older version)" in caplog.text
    assert "clients must trust the new" in caplog.text


def test_the_ca_command_exports_the_servers_ca_even_for_other_names(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`python -m proxy ca` run with another configuration (other names, or no TLS section)
    exports the CA the server made and warns; only the server makes a CA anew, so the two
    never replace each other's CA in turn."""
    load(settings(tmp_path, names=["mexc-paper"]))
    folder = tmp_path / "data" / "tls"
    made = (folder / "ca.crt").read_bytes()
    caplog.clear()
    no_tls = Settings(storage=StorageSettings(path=str(tmp_path / "data" / "p.db")))
    for other in (settings(tmp_path), no_tls):
        assert tls.ca_certificate(other).pem == made
    assert (folder / "ca.crt").read_bytes() == made
    assert "the sidecar makes a new CA at its next start" in caplog.text
    assert tls.ca_certificate(settings(tmp_path, names=["mexc-paper"])).pem == made


def test_a_lost_ca_key_means_a_new_ca_and_leaf(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    s = settings(tmp_path)
    load(s)
    folder = tls.tls_dir(s)
    old_ca = cert(folder / "ca.crt")
    (folder / "ca.key").unlink()
    load(s)
    new_ca = cert(folder / "ca.crt")
    assert new_ca.public_key() != old_ca.public_key()
    cert(folder / "leaf.crt").verify_directly_issued_by(new_ca)
    assert "clients must trust the new" in caplog.text


def test_loosened_modes_are_tightened_on_start(tmp_path: Path) -> None:
    s = settings(tmp_path)
    load(s)
    folder = tls.tls_dir(s)
    os.chmod(folder, 0o755)  # noqa: S103 (what the test undoes)
    os.chmod(folder / "ca.key", 0o644)
    os.chmod(folder / "leaf.key", 0o644)
    load(s)
    assert (mode(folder), mode(folder / "ca.key"), mode(folder / "leaf.key")) == (0o700, 0o600, 0o600)


def test_a_corrupt_leaf_is_replaced(tmp_path: Path) -> None:
    s = settings(tmp_path)
    load(s)
    folder = tls.tls_dir(s)
    (folder / "leaf.crt").write_text("not a certificate")
    server = load(s)
    assert server.leaf is not None and server.leaf.issued
    cert(folder / "leaf.crt").verify_directly_issued_by(cert(folder / "ca.crt"))


def test_the_ca_alone_is_what_the_ca_command_exports(tmp_path: Path) -> None:
    s = settings(tmp_path)
    ca = tls.ca_certificate(s)  # no listener started yet: the CA is made
    assert (tmp_path / "data" / "tls" / "ca.crt").read_bytes() == ca.pem
    assert not (tmp_path / "data" / "tls" / "leaf.crt").exists()
    assert tls.ca_certificate(s).pem == ca.pem
    assert len(tls.fingerprint(ca.cert).split(":")) == 32


@pytest.mark.parametrize(("name", "ok"), [
    ("api.mexc.com", True), ("API.MEXC.COM", True), ("api.mexc.com.", True), ("localhost", True),
    ("mexc-paper", True), ("x.paper.internal", True), ("paper.internal", False),
    ("a.b.paper.internal", False), ("evil.example", False), ("mexc.com", False),
])
def test_sni_names_the_leaf_holds(
    tmp_path: Path, name: str, ok: bool, caplog: pytest.LogCaptureFixture
) -> None:
    server = tls.TlsServer(settings(tmp_path, names=["mexc-paper", "*.paper.internal"]))
    assert server.holds(name) is ok
    server._sni(None, name, server.context)  # type: ignore[arg-type]
    server._sni(None, name, server.context)  # type: ignore[arg-type]
    server._sni(None, None, server.context)  # type: ignore[arg-type]  # no SNI: an IP address
    logged = [r.getMessage() for r in caplog.records if r.name == "proxy.tls"]
    assert logged == ([] if ok else [
        f"TLS: a client asked for {name.lower()!r}, a name the certificate does not hold: it will "
        "refuse the certificate (add the name to server.tls.names if it should be served)"])


def test_unknown_names_are_logged_for_the_first_few_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = tls.TlsServer(settings(tmp_path))
    for i in range(100):
        server._sni(None, f"scan{i}.example", server.context)  # type: ignore[arg-type]
    assert len([r for r in caplog.records if r.name == "proxy.tls"]) == tls.UNKNOWN_NAMES_LOGGED


# --------------------------------------------------------------------------- config


def load_cfg(tls_section: object, **more: object) -> Settings:
    return settings_from_mapping({"server": {"tls": tls_section}, **more}, {})


def test_no_tls_section_or_a_null_or_empty_port_means_no_listener() -> None:
    assert settings_from_mapping({}, {}).server.tls is None
    assert load_cfg(None).server.tls is None
    assert load_cfg({"port": None}).server.tls is None
    assert load_cfg({"port": "${TLS_PORT:-}"}).server.tls is None
    s = settings_from_mapping({"server": {"tls": {"port": "${TLS_PORT:-}"}}}, {"TLS_PORT": "9443"})
    assert s.server.tls is not None and s.server.tls.port == 9443


def test_a_tls_section_defaults_to_8443_and_a_local_ca() -> None:
    t = load_cfg({}).server.tls
    assert t is not None
    assert (t.port, t.cert, t.key, t.self_signed, t.names, t.local_ca) == (8443, None, None, True, (), True)


def test_names_from_a_list_or_a_comma_separated_string() -> None:
    t = load_cfg({"names": ["Mexc-Paper", "10.1.2.3", "::1", "*.paper.lan", "mexc-paper"]}).server.tls
    assert t is not None and t.names == ("mexc-paper", "10.1.2.3", "::1", "*.paper.lan")
    s = settings_from_mapping({"server": {"tls": {"names": "${N:-}"}}}, {"N": "a.example, b.example"})
    assert s.server.tls is not None and s.server.tls.names == ("a.example", "b.example")


def test_user_certificate_files(tmp_path: Path) -> None:
    crt, key = tmp_path / "c.pem", tmp_path / "k.pem"
    crt.write_text("x")
    key.write_text("y")
    t = load_cfg({"cert": str(crt), "key": str(key), "self_signed": False}).server.tls
    assert t is not None and (t.cert, t.key, t.local_ca) == (str(crt), str(key), False)


@pytest.mark.parametrize(("section", "message"), [
    ({"port": 70000}, r"server\.tls\.port: must be between 0 and 65535"),
    ({"port": "abc"}, r"server\.tls\.port: must be an integer"),
    ({"port": 8080}, r"server\.tls\.port: must differ from server\.port \(8080\)"),
    ({"cert": "/x/c.pem"}, r"server\.tls\.key: server\.tls\.cert and server\.tls\.key go together"),
    ({"key": "/x/k.pem"}, r"server\.tls\.cert: server\.tls\.cert and server\.tls\.key go together"),
    ({"cert": "/nope/c.pem", "key": "/nope/k.pem"}, r"server\.tls\.cert: no such file: /nope/c\.pem"),
    ({"self_signed": False}, r"server\.tls\.self_signed: is false and no server\.tls\.cert/key"),
    ({"self_signed": "maybe"}, r"server\.tls\.self_signed: must be true or false"),
    ({"names": ["ok.example", "bad name"]}, r"server\.tls\.names: not a DNS name or IP address: 'bad name'"),
    ({"names": ["-bad.example"]}, r"server\.tls\.names: not a DNS name"),
    ({"names": {"a": 1}}, r"server\.tls\.names: must be a list"),
    ({"portt": 1}, r"server\.tls\.portt: unknown key"),
    ("yes", r"server\.tls: must be a mapping"),
])
def test_bad_tls_settings_name_the_key(section: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_cfg(section)


def test_upstream_resolve_pins_hosts_to_addresses() -> None:
    pins = {"API.mexc.com": "203.0.113.7", "x.example": "::1"}
    s = settings_from_mapping({"upstream": {"resolve": pins}}, {})
    assert s.upstream.resolve == {"api.mexc.com": "203.0.113.7", "x.example": "::1"}
    assert settings_from_mapping({}, {}).upstream.resolve == {}
    for bad, message in (({"api.mexc.com": "not-an-ip"}, r"upstream\.resolve\.api\.mexc\.com: must be an IP"),
                         ({"bad host": "1.2.3.4"}, r"upstream\.resolve\.bad host: not a host name"),
                         (["api.mexc.com"], r"upstream\.resolve: must be a mapping")):
        with pytest.raises(ConfigError, match=message):
            settings_from_mapping({"upstream": {"resolve": bad}}, {})


def test_leaf_names_start_with_the_builtin_ones() -> None:
    s = Settings(storage=StorageSettings(path="/x/p.db"))
    assert tls.tls_dir(s) == Path("/x/tls")
    t = load_cfg({"names": ["localhost", "svc"]}).server.tls
    assert t is not None
    assert tls.leaf_names(t) == ("api.mexc.com", "wbs-api.mexc.com", "localhost", "127.0.0.1", "::1", "svc")
