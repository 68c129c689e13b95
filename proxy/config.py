"""Settings: loaded once from config.yaml + environment into frozen dataclasses.

`load_settings(path, environ)` is the only place that reads the config file or the
environment. Validation is eager: an unknown key, a missing required value, a bad value, a
money value that is not a quoted decimal string, or an unset `${VAR}` raises ConfigError
naming the key (the process exits with code 2). JSON is valid YAML and loads too.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from .engine.model import FillModel


class ConfigError(Exception):
    """A configuration problem; the message names the key."""


def mask_key(key: str) -> str:
    """`mx0vglpaperdemo` -> `mx0v...demo`: enough to recognise, never the whole key."""
    if len(key) <= 8:
        return key[:2] + "..."
    return f"{key[:4]}...{key[-4:]}"


# MEXC's hosts: a bot with hard-coded URLs reaches the TLS listener under these names
MEXC_HOSTS = ("api.mexc.com", "wbs-api.mexc.com")


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """`server.tls`: the HTTPS/WSS listener (same routes as the plain one)."""

    port: int = 8443
    # a PEM certificate chain and its key (both or neither); without them, `self_signed`
    cert: str | None = None
    key: str | None = None
    # a local CA and a leaf certificate, made and kept in the storage folder (proxy/tls.py)
    self_signed: bool = True
    # extra DNS names / IP addresses for the leaf (e.g. the Docker service name)
    names: tuple[str, ...] = ()

    @property
    def local_ca(self) -> bool:
        """The certificate comes from the local CA (no cert/key of the user's)."""
        return self.cert is None


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    # required for dashboard actions and the admin API when host is not loopback
    admin_token: str | None = field(default=None, repr=False)
    # largest accepted request body (bytes); larger bodies get HTTP 413 (MEXC JSON)
    max_body_bytes: int = 65536
    # True: a signature must match the bytes as sent (or with '+' read as %20), nothing
    # else. False: also the parameters re-encoded as client libraries encode them, which
    # MEXC's own Python demo needs (it signs quoted values and sends them raw) (UNSURE:
    # whether MEXC itself is that lenient; its demo working against it says it is)
    strict_signature: bool = False
    # names besides loopback ones (and a specific listen address) that the dashboard and
    # the admin API answer as Host (proxy/trust.py); lower case, without port or brackets
    allowed_hosts: tuple[str, ...] = ()
    # seconds a connection has to send a complete request head, counted from when it
    # opened or from the previous answer (so also how long an idle kept-alive connection
    # stays open); a slower one is closed
    header_timeout_s: float = 20.0
    # open client connections at most (every listener together); one more is answered
    # 503 and closed
    max_connections: int = 512
    # the TLS listener; None: none (`server.tls` absent, or its port null/empty)
    tls: TlsSettings | None = None


DEFAULT_WS_URL = "wss://wbs-api.mexc.com/ws"


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    base_url: str = "https://api.mexc.com"
    timeout_s: float = 10.0
    connect_timeout_s: float = 3.0
    max_connections: int = 32
    exchange_info_ttl_s: float = 300.0
    # how old a book / trades / last price the engine may use (ms)
    market_cache_ms: int = 250
    # write every public upstream answer and stream frame to this cassette while running
    # (vcrpy's YAML plus `stream:` items: RecordingTransport)
    record_path: str | None = None
    # serve the upstream from this cassette instead of the network (offline)
    replay_path: str | None = None
    # the replay's clock (command line only: --speed N, --step): "real", "speed", "step"
    replay_mode: str = "real"
    replay_speed: float = 1.0
    # MEXC's public market stream (WebSocket); None: no streaming, REST polling only
    ws_url: str | None = DEFAULT_WS_URL
    # host -> IP address the upstream client connects to instead of asking the system
    # resolver (which may read a hosts file that points MEXC's hosts at this sidecar)
    resolve: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StorageSettings:
    path: str = "./data/paper.sqlite3"
    # SQLite synchronous level: FULL survives power loss, NORMAL survives process crashes
    synchronous: str = "FULL"


@dataclass(frozen=True, slots=True)
class LiveSettings:
    enabled: bool = False


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    level: str = "INFO"
    format: str = "text"
    # one line per HTTP request (method, path, status, time; never the query string)
    access_log: bool = False


@dataclass(frozen=True, slots=True)
class AccountSettings:
    api_key: str
    secret_key: str = field(repr=False)
    # None when the account lists no balances (then PAPER_TRADING_INITIAL_BALANCE_* apply)
    balances: Mapping[str, Decimal] | None = None
    name: str | None = None

    def __repr__(self) -> str:
        return f"AccountSettings(api_key={mask_key(self.api_key)!r}, name={self.name!r})"


@dataclass(frozen=True, slots=True)
class FeeOverride:
    maker: Decimal | None = None
    taker: Decimal | None = None


@dataclass(frozen=True, slots=True)
class PaperSettings:
    fill_model: FillModel = FillModel.QUEUE
    poll_interval_s: float = 1.0
    depth_limit: int = 100
    trades_limit: int = 100
    market_slippage_cap: Decimal = Decimal("0.05")
    limit_maker_cross: str = "reject"
    # per-symbol fee overrides; key "*" applies to every symbol
    fees: Mapping[str, FeeOverride] = field(default_factory=dict)
    mx_deduct_discount: Decimal = Decimal("0.2")
    enforce_spot_trading_allowed: bool = False
    enforce_percent_price: bool = True
    max_open_orders: int = 500


@dataclass(frozen=True, slots=True)
class DashboardSettings:
    enabled: bool = True
    # how often the equity curve gets a point per account (seconds)
    equity_interval_s: float = 60.0
    # after an order, fill or funding, a point at most this often (seconds)
    equity_change_gap_s: float = 5.0
    quote_asset: str = "USDT"


@dataclass(frozen=True, slots=True)
class WebSocketSettings:
    """`GET /ws`, MEXC's WebSocket rules (reference 9.1). A timeout of 0 turns it off."""

    # no subscription for this long (since the connection opened, or since its last
    # subscription went): disconnected
    no_subscription_timeout_s: float = 30.0
    # subscribed, but nothing pushed and no message from the client for this long
    idle_timeout_s: float = 60.0
    # any connection is closed after this long
    max_lifetime_s: float = 86400.0
    # records and frames queued for one connection before it counts as a reader that
    # fell too far behind and is disconnected
    send_queue: int = 1024
    # ... or bytes queued (relayed frames by their size; one item is always taken)
    send_queue_bytes: int = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    upstream: UpstreamSettings = field(default_factory=UpstreamSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    live: LiveSettings = field(default_factory=LiveSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    accounts: tuple[AccountSettings, ...] = ()
    paper: PaperSettings = field(default_factory=PaperSettings)
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)
    websocket: WebSocketSettings = field(default_factory=WebSocketSettings)
    # derived from the mode rule at load time
    mode: str = "paper"
    # PAPER_TRADING_INITIAL_BALANCE_<ASSET> from the environment
    initial_balances: Mapping[str, Decimal] = field(default_factory=dict)
    # tests: let unexpected exceptions propagate instead of becoming MEXC 500s
    reraise_unexpected: bool = False
    config_path: str | None = None

    @property
    def live_armed(self) -> bool:
        """Both halves of the mode rule were set at start (config flag and env var)."""
        return self.mode == "live"

    def secrets(self) -> dict[str, str]:
        """Every secret these settings hold -> what a log line shows instead (the log
        filter redacts them all): API keys masked, so they stay recognisable as on the
        dashboard; secret keys and the admin token as `<redacted>`."""
        out: dict[str, str] = {}
        for a in self.accounts:
            out[a.secret_key] = "<redacted>"
            out.setdefault(a.api_key, mask_key(a.api_key))
        if self.server.admin_token:
            out[self.server.admin_token] = "<redacted>"
        return {k: v for k, v in out.items() if k}

    def starting_balances(self, account: AccountSettings) -> dict[str, Decimal]:
        if account.balances is not None:
            return dict(account.balances)
        return dict(self.initial_balances)


# --------------------------------------------------------------------------- loading

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")  # ASCII, whole value (fullmatch)
_BOOL_ENV = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _substitute(value: Any, path: str, environ: Mapping[str, str]) -> Any:
    """Replace `${VAR}` / `${VAR:-default}` in every string scalar."""
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            raise ConfigError(f"{path}: environment variable ${{{name}}} is not set")

        return _VAR.sub(repl, value)
    if isinstance(value, dict):
        return {k: _substitute(v, f"{path}.{k}" if path else str(k), environ) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, f"{path}[{i}]", environ) for i, v in enumerate(value)]
    return value


class _Section:
    """Reads one mapping, checking types and rejecting unknown keys."""

    def __init__(self, data: Any, path: str) -> None:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: must be a mapping")
        self.data = data
        self.path = path
        self.used: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def raw(self, key: str, default: Any = None) -> Any:
        self.used.add(key)
        return self.data.get(key, default)

    def str(self, key: str, default: str | None, required: bool = False) -> str | None:
        v = self.raw(key)
        if v is None:
            if required:
                raise ConfigError(f"{self._key(key)}: required value is missing")
            return default
        if not isinstance(v, str | int | float) or isinstance(v, bool):
            raise ConfigError(f"{self._key(key)}: must be a string")
        s = str(v)
        if required and not s:
            raise ConfigError(f"{self._key(key)}: required value is empty")
        return s

    def int(self, key: str, default: int, lo: int | None = None, hi: int | None = None) -> int:
        v = self.raw(key)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, int | str):
            raise ConfigError(f"{self._key(key)}: must be an integer")
        try:
            n = int(v)
        except ValueError:
            raise ConfigError(f"{self._key(key)}: must be an integer, got {v!r}") from None
        if (lo is not None and n < lo) or (hi is not None and n > hi):
            raise ConfigError(f"{self._key(key)}: must be between {lo} and {hi}, got {n}")
        return n

    def float(self, key: str, default: float, positive: bool = True) -> float:
        v = self.raw(key)
        if v is None:
            return default
        if isinstance(v, bool):
            raise ConfigError(f"{self._key(key)}: must be a number")
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise ConfigError(f"{self._key(key)}: must be a number, got {v!r}") from None
        if positive and not f > 0:
            raise ConfigError(f"{self._key(key)}: must be greater than 0, got {v!r}")
        return f

    def bool(self, key: str, default: bool) -> bool:
        v = self.raw(key)
        if v is None:
            return default
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v.lower() in _BOOL_ENV:
            return _BOOL_ENV[v.lower()]
        raise ConfigError(f"{self._key(key)}: must be true or false, got {v!r}")

    def money(self, key: str, default: Decimal | None) -> Decimal | None:
        v = self.raw(key)
        if v is None:
            return default
        return parse_money(v, self._key(key))

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        v = self.str(key, default)
        assert v is not None
        if v not in choices:
            raise ConfigError(f"{self._key(key)}: must be one of {', '.join(choices)}, got {v!r}")
        return v

    def done(self) -> None:
        unknown = sorted(set(map(str, self.data)) - self.used)
        if unknown:
            raise ConfigError(f"{self._key(unknown[0])}: unknown key")


def parse_money(value: Any, key: str) -> Decimal:
    """Money in config is a quoted decimal string (YAML `0.001` would be a float)."""
    if not isinstance(value, str):
        raise ConfigError(f"{key}: money must be a quoted decimal string, e.g. \"10000\"")
    if not _DECIMAL.fullmatch(value.strip()):
        raise ConfigError(f"{key}: not a decimal number: {value!r}")
    try:
        d = Decimal(value.strip())
    except InvalidOperation:
        raise ConfigError(f"{key}: not a decimal number: {value!r}") from None
    if d < 0:
        raise ConfigError(f"{key}: must not be negative: {value!r}")
    return d


def parse_bool_env(name: str, value: str) -> bool:
    v = value.strip().lower()
    if v not in _BOOL_ENV:
        raise ConfigError(
            f"{name}: must be one of true/false/1/0/yes/no, got {value!r}"
        )
    return _BOOL_ENV[v]


def _balances(value: Any, key: str) -> dict[str, Decimal]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: must be a mapping of asset to amount")
    out: dict[str, Decimal] = {}
    for asset, amount in value.items():
        if not isinstance(asset, str) or not asset.strip():
            raise ConfigError(f"{key}: asset names must be strings")
        out[asset.strip().upper()] = parse_money(amount, f"{key}.{asset}")
    return out


_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")


def _visible_ascii(value: str | None, key: str) -> str | None:
    """A secret that travels in an HTTP header or is signed with (the admin token, a
    secret key, an API key): visible ASCII only. A client may send anything else in
    another encoding (Latin-1), which neither compares equal nor is recognised in the log
    by its redaction."""
    if value is not None and value and not _VISIBLE_ASCII.fullmatch(value):
        raise ConfigError(
            f"{key}: must be visible ASCII characters only (letters, digits, punctuation; "
            "no spaces, no accents or other non-ASCII characters)"
        )
    return value


def _accounts(value: Any) -> tuple[AccountSettings, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError("accounts: must be a list")
    out: list[AccountSettings] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        sec = _Section(item, f"accounts[{i}]")
        api_key = _visible_ascii(sec.str("api_key", None, required=True), f"accounts[{i}].api_key")
        secret = _visible_ascii(sec.str("secret_key", None, required=True), f"accounts[{i}].secret_key")
        assert api_key is not None and secret is not None
        if api_key in seen:
            raise ConfigError(f"accounts[{i}].api_key: duplicate api key {mask_key(api_key)}")
        seen.add(api_key)
        raw_bal = sec.raw("balances")
        balances = None if raw_bal is None else _balances(raw_bal, f"accounts[{i}].balances")
        name = sec.str("name", None)
        sec.done()
        out.append(AccountSettings(api_key, secret, balances, name))
    return tuple(out)


_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?", re.ASCII)


def _allowed_hosts(value: Any) -> tuple[str, ...]:
    """server.allowed_hosts: host names or IP addresses, without scheme or port; a list,
    or one comma-separated string (so `${MEXC_PAPER_ALLOWED_HOSTS}` can set them)."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list):
        raise ConfigError("server.allowed_hosts: must be a list of host names")
    out: list[str] = []
    for i, item in enumerate(value):
        key = f"server.allowed_hosts[{i}]"
        if not isinstance(item, str):
            raise ConfigError(f"{key}: must be a host name, got {item!r}")
        name = item.strip().lower()
        if name.startswith("[") and name.endswith("]"):
            name = name[1:-1]
        if ":" in name:
            try:
                ipaddress.IPv6Address(name)
            except ValueError:
                raise ConfigError(
                    f"{key}: a host name or IP address without scheme or port, got {item!r}"
                ) from None
        elif not _HOST_NAME.fullmatch(name):
            raise ConfigError(f"{key}: a host name or IP address without scheme or port, got {item!r}")
        if name.rstrip(".") not in out:
            out.append(name.rstrip("."))
    return tuple(out)


def _fees(value: Any) -> dict[str, FeeOverride]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError("paper.fees: must be a mapping of symbol to {maker, taker}")
    out: dict[str, FeeOverride] = {}
    for symbol, spec in value.items():
        sec = _Section(spec, f"paper.fees.{symbol}")
        maker = sec.money("maker", None)
        taker = sec.money("taker", None)
        sec.done()
        out[str(symbol).upper() if symbol != "*" else "*"] = FeeOverride(maker, taker)
    return out


def _ws_url(u: _Section) -> str | None:
    """`upstream.ws_url`: absent means MEXC's; null or "" turns streaming off. Public
    only: a query (a listenKey) or credentials in it are refused."""
    if "ws_url" in u.data and u.data["ws_url"] in (None, ""):
        u.used.add("ws_url")
        return None
    url = u.str("ws_url", DEFAULT_WS_URL) or DEFAULT_WS_URL
    if not re.match(r"^wss?://[^/\s?#@]+(/[^\s?#]*)?$", url):
        raise ConfigError(
            f"upstream.ws_url: must be a ws:// or wss:// URL without a query or credentials "
            f"(public channels only), or null to turn streaming off; got {url!r}"
        )
    return url


_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def valid_tls_name(name: str) -> bool:
    """A DNS name (optionally `*.` + a name) or an IP address, as a certificate can hold."""
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    labels = name[2:].split(".") if name.startswith("*.") else name.split(".")
    return len(name) <= 253 and all(_DNS_LABEL.match(label) for label in labels)


def _tls_names(value: Any, key: str) -> tuple[str, ...]:
    """A list of names, or one comma-separated string (so `${VAR}` can set them)."""
    if value is None:
        return ()
    if isinstance(value, str):
        items: list[Any] = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, list):
        items = value
    else:
        raise ConfigError(f"{key}: must be a list of DNS names or IP addresses")
    out: list[str] = []
    for item in items:
        if not isinstance(item, str) or not valid_tls_name(item.strip()):
            raise ConfigError(f"{key}: not a DNS name or IP address: {item!r}")
        name = item.strip().lower()
        if name not in out:
            out.append(name)
    return tuple(out)


def _tls(value: Any, server_port: int) -> TlsSettings | None:
    """`server.tls`. Every key is read even when the section is absent (so the loader
    knows them all); no section, or a null/empty port, means no TLS listener."""
    t = _Section(value, "server.tls")
    raw_port = t.raw("port", 8443)
    if raw_port is None or raw_port == "":
        port = None
    else:
        port = t.int("port", 8443, 0, 65535)
    cert = t.str("cert", None) or None
    key = t.str("key", None) or None
    self_signed = t.bool("self_signed", True)
    names = _tls_names(t.raw("names"), "server.tls.names")
    t.done()
    if value is None or port is None:
        return None
    if (cert is None) != (key is None):
        missing = "server.tls.key" if key is None else "server.tls.cert"
        raise ConfigError(f"{missing}: server.tls.cert and server.tls.key go together (both or neither)")
    for name, path in (("cert", cert), ("key", key)):
        if path is not None and not os.path.isfile(path):
            raise ConfigError(f"server.tls.{name}: no such file: {path}")
    if cert is None and not self_signed:
        raise ConfigError(
            "server.tls.self_signed: is false and no server.tls.cert/key is given: "
            "the TLS listener has no certificate"
        )
    if port and port == server_port:
        raise ConfigError(f"server.tls.port: must differ from server.port ({server_port})")
    return TlsSettings(port=port, cert=cert, key=key, self_signed=self_signed, names=names)


def _resolve(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError("upstream.resolve: must be a mapping of host name to IP address")
    out: dict[str, str] = {}
    for host, addr in value.items():
        key = f"upstream.resolve.{host}"
        if not isinstance(host, str) or not valid_tls_name(host) or host.startswith("*."):
            raise ConfigError(f"{key}: not a host name")
        try:
            out[host.lower()] = str(ipaddress.ip_address(str(addr).strip()))
        except ValueError:
            raise ConfigError(f"{key}: must be an IP address, got {addr!r}") from None
    return out


def settings_from_mapping(
    data: Any, environ: Mapping[str, str], config_path: str | None = None
) -> Settings:
    data = _substitute(data if data is not None else {}, "", environ)
    root = _Section(data, "")

    s = _Section(root.raw("server"), "server")
    port = s.int("port", 8080, 0, 65535)
    server = ServerSettings(
        host=s.str("host", "127.0.0.1") or "127.0.0.1",
        port=port,
        admin_token=_visible_ascii(s.str("admin_token", None) or None, "server.admin_token"),
        max_body_bytes=s.int("max_body_bytes", 65536, 1024, 64 * 1024 * 1024),
        strict_signature=s.bool("strict_signature", False),
        allowed_hosts=_allowed_hosts(s.raw("allowed_hosts")),
        header_timeout_s=s.float("header_timeout_s", 20.0),
        max_connections=s.int("max_connections", 512, 1, 1_000_000),
        tls=_tls(s.raw("tls"), port),
    )
    s.done()

    u = _Section(root.raw("upstream"), "upstream")
    base_url = u.str("base_url", "https://api.mexc.com") or ""
    if not re.match(r"^https?://[^/\s]+", base_url):
        raise ConfigError(f"upstream.base_url: must be an http(s) URL, got {base_url!r}")
    timeout_s = u.float("timeout_s", 10.0)
    upstream = UpstreamSettings(
        base_url=base_url.rstrip("/"),
        timeout_s=timeout_s,
        # by default 3 s, or the total timeout when that is shorter
        connect_timeout_s=u.float("connect_timeout_s", min(3.0, timeout_s)),
        max_connections=u.int("max_connections", 32, 1, 1000),
        exchange_info_ttl_s=u.float("exchange_info_ttl_s", 300.0),
        market_cache_ms=u.int("market_cache_ms", 250, 0, 60000),
        record_path=u.str("record_path", None) or None,
        replay_path=u.str("replay_path", None) or None,
        ws_url=_ws_url(u),
        resolve=_resolve(u.raw("resolve")),
    )
    u.done()
    if upstream.connect_timeout_s > upstream.timeout_s:
        # the total timer would fire first: a connect timeout would look like a 504
        raise ConfigError(
            f"upstream.connect_timeout_s: must not exceed upstream.timeout_s ({upstream.timeout_s:g}),"
            f" got {upstream.connect_timeout_s:g}"
        )
    if upstream.record_path and upstream.replay_path:
        raise ConfigError("upstream.record_path: cannot record while replaying (replay_path is set)")

    st = _Section(root.raw("storage"), "storage")
    storage = StorageSettings(
        path=st.str("path", "./data/paper.sqlite3", required=False) or "./data/paper.sqlite3",
        synchronous=st.choice("synchronous", "FULL", ("FULL", "NORMAL")),
    )
    st.done()

    lv = _Section(root.raw("live"), "live")
    live = LiveSettings(enabled=lv.bool("enabled", False))
    lv.done()

    lg = _Section(root.raw("logging"), "logging")
    logging_ = LoggingSettings(
        level=lg.choice("level", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
        format=lg.choice("format", "text", ("text", "json")),
        access_log=lg.bool("access_log", False),
    )
    lg.done()

    accounts = _accounts(root.raw("accounts"))

    p = _Section(root.raw("paper"), "paper")
    paper = PaperSettings(
        fill_model=FillModel(p.choice("fill_model", "queue", tuple(m.value for m in FillModel))),
        poll_interval_s=p.float("poll_interval_s", 1.0),
        depth_limit=p.int("depth_limit", 100, 5, 5000),
        trades_limit=p.int("trades_limit", 100, 1, 1000),
        market_slippage_cap=p.money("market_slippage_cap", Decimal("0.05")) or Decimal("0.05"),
        limit_maker_cross=p.choice("limit_maker_cross", "reject", ("reject", "cancel")),
        fees=_fees(p.raw("fees")),
        mx_deduct_discount=p.money("mx_deduct_discount", Decimal("0.2")) or Decimal(0),
        enforce_spot_trading_allowed=p.bool("enforce_spot_trading_allowed", False),
        enforce_percent_price=p.bool("enforce_percent_price", True),
        max_open_orders=p.int("max_open_orders", 500, 1, 100000),
    )
    p.done()
    if paper.mx_deduct_discount >= 1:
        raise ConfigError("paper.mx_deduct_discount: must be below 1")

    d = _Section(root.raw("dashboard"), "dashboard")
    dashboard = DashboardSettings(
        enabled=d.bool("enabled", True),
        equity_interval_s=d.float("equity_interval_s", 60.0),
        equity_change_gap_s=d.float("equity_change_gap_s", 5.0),
        quote_asset=(d.str("quote_asset", "USDT") or "USDT").upper(),
    )
    d.done()

    w = _Section(root.raw("websocket"), "websocket")

    def timeout(key: str, default: float) -> float:
        value = w.float(key, default, positive=False)
        if not 0 <= value < float("inf"):
            raise ConfigError(f"websocket.{key}: must be 0 (off) or a positive number, got {value:g}")
        return value

    websocket = WebSocketSettings(
        no_subscription_timeout_s=timeout("no_subscription_timeout_s", 30.0),
        idle_timeout_s=timeout("idle_timeout_s", 60.0),
        max_lifetime_s=timeout("max_lifetime_s", 86400.0),
        send_queue=w.int("send_queue", 1024, 16, 1_000_000),
        send_queue_bytes=w.int("send_queue_bytes", 8 * 1024 * 1024, 64 * 1024, 1 << 30),
    )
    w.done()
    root.done()

    # --- environment overrides from the original design ---
    paper_env = environ.get("PAPER_TRADING")
    paper_trading = True if paper_env is None else parse_bool_env("PAPER_TRADING", paper_env)
    if live.enabled and paper_trading:
        raise ConfigError(
            "live.enabled is true but the environment variable PAPER_TRADING=false is missing: "
            "live passthrough needs both; refusing to start"
        )
    if not live.enabled and not paper_trading:
        raise ConfigError(
            "PAPER_TRADING=false is set but live.enabled: true is missing in the config: "
            "live passthrough needs both; refusing to start"
        )
    mode = "live" if live.enabled and not paper_trading else "paper"

    initial: dict[str, Decimal] = {}
    prefix = "PAPER_TRADING_INITIAL_BALANCE_"
    for name, value in environ.items():
        if name.startswith(prefix) and len(name) > len(prefix):
            initial[name[len(prefix):].upper()] = parse_money(value, name)

    return Settings(
        server=server,
        upstream=upstream,
        storage=storage,
        live=live,
        logging=logging_,
        accounts=accounts,
        paper=paper,
        dashboard=dashboard,
        websocket=websocket,
        mode=mode,
        initial_balances=initial,
        config_path=config_path,
    )


def _is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


is_loopback = _is_loopback


def resolve_config_path(cli_path: str | None, environ: Mapping[str, str]) -> Path | None:
    """--config, else $PROXY_CONFIG, else ./config.yaml if present, else None (defaults)."""
    if cli_path:
        return Path(cli_path)
    env = environ.get("PROXY_CONFIG")
    if env:
        return Path(env)
    default = Path("config.yaml")
    return default if default.exists() else None


def load_settings(path: Path | str | None, environ: Mapping[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    data: Any = {}
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"config file {p}: {exc.strerror or exc}") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {p}: not valid YAML: {exc}") from None
        if data is not None and not isinstance(data, dict):
            raise ConfigError(f"config file {p}: the top level must be a mapping")
    return settings_from_mapping(data, environ, str(path) if path is not None else None)
