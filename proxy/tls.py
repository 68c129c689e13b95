"""The TLS listener's certificate: the user's own chain and key, or a local CA and a leaf.

`self_signed` (no `server.tls.cert`/`key`): a local certificate authority and a leaf
certificate for MEXC's hosts (`api.mexc.com`, `wbs-api.mexc.com`), `localhost`,
`127.0.0.1`, `::1` and `server.tls.names`, made with `cryptography` in `<storage folder>/tls/`
(next to the SQLite file):

    tls/            0700
      ca.key        0600  the CA's private key: it never leaves this folder
      ca.crt        0644  what a client trusts (`python -m proxy ca` prints it)
      leaf.key      0600
      leaf.crt      0644  the leaf, then the CA (the chain the listener serves)

Both keys are ECDSA P-256 (fast handshakes, accepted by every client we know of). The CA
is valid 10 years and the leaf 90 days. On every start, and hourly while running:

- the CA is reused; its certificate is re-signed with the same key and subject when it has
  less than a year left, so a client that trusts the old certificate keeps accepting leaves
  until the old one expires (and one that gets the new one accepts them too). A lost key
  means a new CA, which clients must trust again (logged as a warning);
- the CA may sign for the leaf's DNS names only: a critical NameConstraints extension
  permits exactly them (`permitted_names`; addresses stay unconstrained, for BoringSSL's
  sake, see there). Whoever reads `ca.key` (a backup of the data volume,
  a process of the sidecar's user) could otherwise issue a certificate for any site, and
  every client that trusts the CA (the README puts it in the system store and in certifi's
  bundle) would accept it. When the permitted set changes (`server.tls.names` changed, or
  a CA made before the constraint) the CA is made anew, with a new key: re-signing the old
  key would not help, since a client that kept the old certificate would still accept
  anything that key signs. Clients must trust the new CA (a warning at start-up says so);
- the leaf is reused while the CA signed it, its names are the configured ones and it has
  more than 30 days left; otherwise a new one is issued and loaded into the running
  listener (connections already open keep theirs).

Server name indication: there is one certificate, and no other is ever made on demand. A
client that asks for a name the leaf does not hold gets the leaf, and its own name check
refuses it ("certificate is not valid for <name>", which says what to add to
`server.tls.names`); the first few such names are logged once each. (Refusing the handshake
instead would show the client only a reset connection: asyncio drops the TLS alert of a
failed handshake unsent.) A user-supplied certificate is served as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import ipaddress
import logging
import os
import secrets
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .config import MEXC_HOSTS, Settings, TlsSettings
from .private import make_private_dir

log = logging.getLogger("proxy.tls")

CA_LIFETIME = dt.timedelta(days=3650)
CA_RENEW_BEFORE = dt.timedelta(days=365)
LEAF_LIFETIME = dt.timedelta(days=90)
LEAF_RENEW_BEFORE = dt.timedelta(days=30)
# certificates start an hour in the past: a client whose clock is a little behind accepts them
BACKDATE = dt.timedelta(hours=1)
CHECK_EVERY_S = 3600.0
UNKNOWN_NAMES_LOGGED = 16

BUILTIN_NAMES = (*MEXC_HOSTS, "localhost", "127.0.0.1", "::1")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def tls_dir(settings: Settings) -> Path:
    """`<folder of storage.path>/tls`."""
    return Path(settings.storage.path).parent / "tls"


def leaf_names(tls: TlsSettings) -> tuple[str, ...]:
    """The built-in names, then the configured ones, each once, lower case."""
    out: list[str] = []
    for name in (*BUILTIN_NAMES, *tls.names):
        if name.lower() not in out:
            out.append(name.lower())
    return tuple(out)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint, `AB:CD:...` as browsers and `openssl x509 -fingerprint` show it."""
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


# --------------------------------------------------------------------------- files


def _secure_dir(path: Path) -> None:
    """`tls/` 0700, made with its missing parents owner-only (the storage folder may not
    exist yet: the certificates are made before the database); an existing `tls/` is
    tightened to 0700, its parents are left as they are."""
    make_private_dir(path)
    os.chmod(path, 0o700)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Atomically: a new file with `mode` from the start, then renamed over `path`."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # whatever the umask took away
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One process at a time makes certificates in `folder` (the server and `proxy ca`)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        yield
        return
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey | None:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    return key if isinstance(key, ec.EllipticCurvePrivateKey) else None


def _load_certs(path: Path) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError):
        return []


def _same_key(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> bool:
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert.public_key().public_bytes(*fmt) == key.public_key().public_bytes(*fmt)


# --------------------------------------------------------------------------- the CA


@dataclass(frozen=True, slots=True)
class LocalCA:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    path: Path  # ca.crt

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def permitted_names(names: tuple[str, ...]) -> tuple[x509.GeneralName, ...]:
    """The NameConstraints permitted subtrees for a leaf holding `names` (RFC 5280
    4.2.1.10: a DNS name permits itself and the names below it): each DNS name, `*.x` as
    `x`.

    MEXC's two hosts are permitted as the two names the leaf holds, not as the `mexc.com`
    subtree: the subtree would let a stolen `ca.key` sign for `www.mexc.com` (where a
    user logs in with a password) and every other MEXC site, while the two names are all a
    bot reaches through the sidecar. A new MEXC host for bots means a new CA anyway (the
    leaf must hold it).

    IP addresses are not constrained (RFC 5280: a name type without a subtree is not
    restricted): BoringSSL, which pymexc's HTTP client (curl_cffi) verifies with, refuses
    every certificate under a CA with an IP address constraint ("unsupported name
    constraint type") as soon as the leaf holds an address, and the leaf must hold
    127.0.0.1 and ::1. So a stolen key could still sign for a bare IP address (an HTTPS
    site reached by address, not by name); every name is constrained."""
    out: list[x509.GeneralName] = []
    for name in names:
        try:
            ipaddress.ip_address(name)
        except ValueError:
            item = x509.DNSName(name[2:] if name.startswith("*.") else name)
            if item not in out:
                out.append(item)
    return tuple(out)


def _constraints_of(cert: x509.Certificate) -> frozenset[x509.GeneralName] | None:
    """The permitted subtrees of a CA certificate; None without NameConstraints."""
    try:
        nc = cert.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return None
    return frozenset(nc.permitted_subtrees or ())


def _describe_names(items: frozenset[x509.GeneralName] | tuple[x509.GeneralName, ...]) -> str:
    return ", ".join(sorted(str(i.value) for i in items))


def _ca_cert(
    key: ec.EllipticCurvePrivateKey,
    subject: x509.Name,
    now: dt.datetime,
    permitted: tuple[x509.GeneralName, ...],
) -> x509.Certificate:
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        # what it may sign for: the leaf's names only (critical: a client that cannot
        # read the constraint must refuse the CA rather than trust it for everything)
        .add_extension(
            x509.NameConstraints(permitted_subtrees=list(permitted), excluded_subtrees=None),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )


def ensure_ca(
    folder: Path, names: tuple[str, ...] = BUILTIN_NAMES, now: dt.datetime | None = None,
    *, remake: bool = True,
) -> LocalCA:
    """The local CA in `folder` that may sign for `names` (the leaf's): reused, re-signed
    before it expires, made anew when it may sign for other names, or made. `remake`
    False (`python -m proxy ca`): a CA for other names is kept, with a warning; only the
    server, which issues the leaf, makes it anew, so an export run with another
    configuration (or none) never replaces the CA a running server uses."""
    now = now or _now()
    _secure_dir(folder)
    with _locked(folder):
        return _ensure_ca_locked(folder, permitted_names(names), now, remake)


def _ensure_ca_locked(
    folder: Path, permitted: tuple[x509.GeneralName, ...], now: dt.datetime, remake: bool = True
) -> LocalCA:
    key_path, cert_path = folder / "ca.key", folder / "ca.crt"
    key = _load_key(key_path) if key_path.exists() else None
    certs = _load_certs(cert_path) if cert_path.exists() else []
    cert = certs[0] if certs else None
    if key is not None and cert is not None and _same_key(cert, key):
        had = _constraints_of(cert)
        if had != frozenset(permitted) and not remake:
            log.warning(
                "the local CA %s may sign for other names than this configuration's (%s; "
                "this configuration: %s): the sidecar makes a new CA at its next start with "
                "this configuration, to be exported and trusted again then", cert_path,
                "any name" if had is None else _describe_names(had), _describe_names(permitted),
            )
            permitted = tuple(had) if had is not None else permitted
        elif had != frozenset(permitted):
            # a new key, not a re-signed certificate: a client that kept the old
            # certificate would still accept whatever the old key signs
            log.warning(
                "the local CA was made anew: %s; clients must trust the new %s again "
                "(`python -m proxy ca`) and may drop the old one",
                "it could sign for any name (made by an older version)" if had is None else
                f"the names it may sign for changed (were: {_describe_names(had)}; now: "
                f"{_describe_names(permitted)})",
                cert_path,
            )
            return _new_ca(key_path, cert_path, permitted, now)
    if key is not None:
        os.chmod(key_path, 0o600)
        if cert is not None and _same_key(cert, key):
            if cert.not_valid_after_utc - now > CA_RENEW_BEFORE:
                return LocalCA(cert, key, cert_path)
            # same key and subject, new dates: leaves it signed stay valid under both
            cert = _ca_cert(key, cert.subject, now, permitted)
            _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
            log.warning(
                "the local CA certificate was renewed (it expired within a year): clients "
                "must trust the new %s before the old one expires (same key, fingerprint %s)",
                cert_path, fingerprint(cert),
            )
            return LocalCA(cert, key, cert_path)
        subject = cert.subject if cert is not None else _ca_subject()
        cert = _ca_cert(key, subject, now, permitted)
        _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        log.warning("the local CA certificate %s was missing or did not match its key: re-made "
                    "from the key (fingerprint %s)", cert_path, fingerprint(cert))
        return LocalCA(cert, key, cert_path)
    if key_path.exists() or cert is not None:
        log.warning(
            "the local CA key %s is missing or unreadable: making a new CA; clients must "
            "trust the new %s", key_path, cert_path,
        )
    return _new_ca(key_path, cert_path, permitted, now)


def _new_ca(
    key_path: Path, cert_path: Path, permitted: tuple[x509.GeneralName, ...], now: dt.datetime
) -> LocalCA:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _ca_cert(key, _ca_subject(), now, permitted)
    _write(key_path, _key_pem(key), 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    log.info("created a local CA: %s (fingerprint %s), for %s only; `python -m proxy ca` prints it",
             cert_path, fingerprint(cert), _describe_names(permitted))
    return LocalCA(cert, key, cert_path)


def _ca_subject() -> x509.Name:
    # a random suffix: two sidecars' CAs in one trust store must not share a name
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mexc-paper"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"mexc-paper local CA {secrets.token_hex(4)}"),
    ])


# --------------------------------------------------------------------------- the leaf


def _general_names(names: tuple[str, ...]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for name in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def _names_of(cert: x509.Certificate) -> set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    dns = {n.lower() for n in san.get_values_for_type(x509.DNSName)}
    return dns | {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    if cert.issuer != ca.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


@dataclass(frozen=True, slots=True)
class Leaf:
    cert_path: Path  # leaf then CA
    key_path: Path
    names: tuple[str, ...]
    not_after: dt.datetime
    issued: bool  # made now (False: reused)


def _leaf_cert(
    ca: LocalCA, key: ec.EllipticCurvePrivateKey, names: tuple[str, ...], now: dt.datetime
) -> x509.Certificate:
    not_after = min(now + LEAF_LIFETIME, ca.cert.not_valid_after_utc)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mexc-paper"),
            x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
        ]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(_general_names(names)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )


def ensure_leaf(folder: Path, ca: LocalCA, names: tuple[str, ...], now: dt.datetime | None = None) -> Leaf:
    """The leaf for `names` in `folder`: reused while it is valid for them, else issued."""
    now = now or _now()
    _secure_dir(folder)
    with _locked(folder):
        cert_path, key_path = folder / "leaf.crt", folder / "leaf.key"
        key = _load_key(key_path) if key_path.exists() else None
        chain = _load_certs(cert_path) if cert_path.exists() else []
        if key is not None and chain:
            os.chmod(key_path, 0o600)
            cert = chain[0]
            if (
                _same_key(cert, key)
                and _signed_by(cert, ca.cert)
                and _names_of(cert) == set(names)
                and cert.not_valid_after_utc - now > LEAF_RENEW_BEFORE
                and cert.not_valid_before_utc <= now
                and chain[1:] == [ca.cert]
            ):
                return Leaf(cert_path, key_path, names, cert.not_valid_after_utc, issued=False)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _leaf_cert(ca, key, names, now)
        _write(key_path, _key_pem(key), 0o600)
        pem = cert.public_bytes(serialization.Encoding.PEM) + ca.pem
        _write(cert_path, pem, 0o644)
        log.info("issued a TLS certificate for %s, valid until %s (%s)",
                 ", ".join(names), cert.not_valid_after_utc.date(), cert_path)
        return Leaf(cert_path, key_path, names, cert.not_valid_after_utc, issued=True)


def ca_certificate(settings: Settings) -> LocalCA:
    """The local CA of this configuration, made if none exists yet (`python -m proxy ca`),
    for the names the listener's leaf holds (server.tls.names; the built-in ones without
    a server.tls section); an existing one is exported as it is (see `ensure_ca`)."""
    return ensure_ca(tls_dir(settings), leaf_names(settings.server.tls or TlsSettings()), remake=False)


# --------------------------------------------------------------------------- the listener


def _name_matches(server_name: str, names: frozenset[str]) -> bool:
    name = server_name.lower().rstrip(".")
    if name in names:
        return True
    head, _, rest = name.partition(".")
    return bool(head) and f"*.{rest}" in names


class TlsServer:
    """The SSL context of the TLS listener, and (for the local CA) its renewal."""

    def __init__(self, settings: Settings) -> None:
        tls = settings.server.tls
        assert tls is not None, "no server.tls"
        self.tls = tls
        self.folder = tls_dir(settings)
        self.names = leaf_names(tls)
        self._dns = frozenset(n for n in self.names if not _is_ip(n))
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.set_alpn_protocols(["http/1.1"])
        self.ca: LocalCA | None = None
        self.leaf: Leaf | None = None
        self._task: asyncio.Task[None] | None = None
        # names clients asked for that the leaf does not hold (logged once each)
        self.unknown_names: set[str] = set()

    @property
    def describe(self) -> str:
        """For the start-up line: where the certificate comes from."""
        if self.tls.local_ca:
            return f"local-ca:{self.folder / 'ca.crt'}"
        return f"cert:{self.tls.cert}"

    def load(self, now: dt.datetime | None = None) -> None:
        """Make or reuse the certificates and load them (start-up; raises on bad files)."""
        if not self.tls.local_ca:
            assert self.tls.cert is not None and self.tls.key is not None
            self.context.load_cert_chain(self.tls.cert, self.tls.key)
            return
        self.refresh(now)
        self.context.sni_callback = self._sni

    def refresh(self, now: dt.datetime | None = None) -> bool:
        """Renew what is due and load a new leaf; True when a new leaf was loaded."""
        if not self.tls.local_ca:
            return False
        self.ca = ensure_ca(self.folder, self.names, now)
        leaf = ensure_leaf(self.folder, self.ca, self.names, now)
        changed = self.leaf is None or leaf.issued or leaf.cert_path != self.leaf.cert_path
        if changed:
            # new handshakes use it; connections already open keep the certificate they got
            self.context.load_cert_chain(leaf.cert_path, leaf.key_path)
        self.leaf = leaf
        return changed and leaf.issued

    def _sni(
        self, sock: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, ctx: ssl.SSLContext
    ) -> None:
        """Log (once per name, for the first few) a name the leaf does not hold; the client
        then refuses the leaf itself."""
        if server_name is None or _name_matches(server_name, self._dns):
            return
        name = server_name.lower()[:253]
        if name not in self.unknown_names and len(self.unknown_names) < UNKNOWN_NAMES_LOGGED:
            self.unknown_names.add(name)
            log.warning(
                "TLS: a client asked for %r, a name the certificate does not hold: it will refuse "
                "the certificate (add the name to server.tls.names if it should be served)", name,
            )

    def holds(self, server_name: str) -> bool:
        """The leaf is valid for `server_name` (DNS names, `*.` one label deep)."""
        return _name_matches(server_name, self._dns)

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(CHECK_EVERY_S)
            # on the loop's thread: the context is never changed while a handshake reads it
            # (an EC key and a certificate take about a millisecond)
            try:
                self.refresh()
            except Exception:  # keep serving the current certificate; try again later
                log.exception("renewing the TLS certificate failed; the current one stays")

    def start_renewal(self) -> None:
        if self.tls.local_ca and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._renew_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
