"""`python -m proxy [--config PATH] [--host H] [--port P]`: run the sidecar.

Also `--replay CASSETTE`, `--record CASSETTE` and `--db PATH`. A replay keeps its own
database unless `--db` names one (`replay_db_path`): a recorded market's orders never mix
with a live-market session's.

`python -m proxy ca [--config PATH] [--out FILE]`: print (or write) the local CA
certificate a client must trust for the TLS listener; the CA is made if none exists yet.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import ssl
import sys
from dataclasses import replace
from pathlib import Path

from . import __version__, keys, listen, logsetup
from .accesslog import SafeAccessLogger
from .app import create_app
from .config import ConfigError, Settings, load_settings, mask_key, resolve_config_path
from .tape.tape import TapeError, load_tape
from .tls import TlsServer, ca_certificate, fingerprint

log = logging.getLogger("proxy")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m proxy",
        description=(
            "mexc-paper: a local paper-trading testnet for MEXC Spot V3. Point your bot's "
            "base URL here; market data comes from MEXC, orders fill on virtual balances."
        ),
        epilog="`python -m proxy ca [--config PATH] [--out FILE]` prints the local CA "
        "certificate for the TLS listener (server.tls).",
    )
    p.add_argument(
        "--config",
        metavar="PATH",
        help="config file (default: $PROXY_CONFIG, else ./config.yaml if present)",
    )
    p.add_argument("--host", help="listen address (overrides server.host)")
    p.add_argument("--port", type=int, help="listen port (overrides server.port)")
    p.add_argument(
        "--replay",
        metavar="CASSETTE",
        help="serve market data offline from a recorded cassette (overrides upstream)",
    )
    clock = p.add_mutually_exclusive_group()
    clock.add_argument(
        "--speed", type=float, metavar="N",
        help="replay: run the tape at N times real time (default: real time)",
    )
    clock.add_argument(
        "--step", action="store_true",
        help="replay: the tape moves only when told (POST /admin/api/clock)",
    )
    p.add_argument(
        "--record",
        metavar="CASSETTE",
        help="record every public upstream answer to this cassette while running",
    )
    p.add_argument(
        "--db",
        metavar="PATH",
        help="SQLite database for this run (overrides storage.path; a replay's default is "
        "paper-replay-<cassette name>.sqlite3 next to storage.path)",
    )
    p.add_argument("--version", action="version", version=f"mexc-paper {__version__}")
    return p


def apply_cli(settings: Settings, args: argparse.Namespace) -> Settings:
    server = settings.server
    if args.host:
        server = replace(server, host=args.host)
    if args.port is not None:
        if not 0 <= args.port <= 65535:
            raise ConfigError(f"--port: must be between 0 and 65535, got {args.port}")
        if server.tls is not None and server.tls.port and server.tls.port == args.port:
            raise ConfigError(f"--port: {args.port} is server.tls.port; the two listeners need two ports")
        server = replace(server, port=args.port)
    upstream = settings.upstream
    if args.replay:
        if not os.path.exists(args.replay):
            raise ConfigError(f"--replay: no such cassette: {args.replay}")
        upstream = replace(upstream, replay_path=args.replay, record_path=None)
    if args.record:
        if upstream.replay_path:
            raise ConfigError("--record: cannot record while replaying")
        upstream = replace(upstream, record_path=args.record)
    if args.speed is not None or args.step:
        flag = "--step" if args.step else "--speed"
        if not upstream.replay_path:
            raise ConfigError(f"{flag}: only with --replay (or upstream.replay_path)")
        if args.step:
            upstream = replace(upstream, replay_mode="step")
        elif not 0 < args.speed <= 1_000_000:
            raise ConfigError(f"--speed: must be greater than 0 (and at most 1000000), got {args.speed:g}")
        else:
            upstream = replace(upstream, replay_mode="speed", replay_speed=args.speed)
    storage = settings.storage
    if args.db:
        storage = replace(storage, path=args.db)
    elif upstream.replay_path and storage.path != ":memory:":
        # A recording is a live-market session: it keeps the normal database. A replay
        # is another market (the past, on repeat): its orders get their own database, or
        # they would show up in the next live-market session.
        storage = replace(storage, path=replay_db_path(storage.path, upstream.replay_path))
    return replace(settings, server=server, upstream=upstream, storage=storage)


def replay_db_path(db_path: str, cassette: str) -> str:
    """`paper-replay-<cassette stem>.sqlite3` in the folder of the configured database."""
    return os.path.join(os.path.dirname(db_path), f"paper-replay-{Path(cassette).stem}.sqlite3")


def startup_line(
    settings: Settings,
    mode: str | None = None,
    bound: list[listen.Bound] | None = None,
    tls: TlsServer | None = None,
) -> str:
    """One line: the runtime `mode` (a persisted switch to paper overrides an armed live),
    every listener (as bound: a port 0 shows the port it got), upstream, database, accounts."""
    up = settings.upstream
    upstream = f"replay:{up.replay_path}" if up.replay_path else up.base_url
    if up.replay_path:
        speed = f"x{up.replay_speed:g}" if up.replay_mode == "speed" else ""
        upstream += f" clock={up.replay_mode}{speed}"
    keys = ",".join(mask_key(a.api_key) for a in settings.accounts) or "-"
    if bound:
        seen: list[str] = []
        for b in bound:
            if b.url not in seen:
                seen.append(b.url)
        listen = ",".join(seen)
    else:
        listen = f"http://{settings.server.host}:{settings.server.port}"
    return (
        f"mexc-paper {__version__} started mode={(mode or settings.mode).upper()} "
        f"listen={listen}"
        + (f" tls={tls.describe}" if tls is not None else "")
        + f" upstream={upstream}"
        + f" stream={up.ws_url if up.ws_url and not up.replay_path else 'off'}"
        + (f" recording={up.record_path}" if up.record_path else "")
        + f" db={settings.storage.path} accounts={len(settings.accounts)} keys={keys}"
    )


def ca_main(argv: list[str]) -> int:
    """`python -m proxy ca [--config PATH] [--out FILE]`."""
    p = argparse.ArgumentParser(
        prog="python -m proxy ca",
        description=(
            "Print the local CA certificate that signs the TLS listener's certificate (a "
            "client trusts it to reach the sidecar as api.mexc.com); the CA is made in the "
            "storage folder if none exists yet."
        ),
    )
    p.add_argument("--config", metavar="PATH",
                   help="config file (default: $PROXY_CONFIG, else ./config.yaml if present)")
    p.add_argument("--out", metavar="FILE", help="write the certificate here instead of printing it")
    args = p.parse_args(argv)
    try:
        settings = load_settings(resolve_config_path(args.config, os.environ), os.environ)
    except ConfigError as exc:
        print(f"mexc-paper: configuration error: {exc}", file=sys.stderr)
        return 2
    tls = settings.server.tls
    if tls is not None and not tls.local_ca:
        print(
            f"mexc-paper: server.tls.cert is set ({tls.cert}): the TLS listener serves your own "
            "certificate, not the local CA's; trust the CA that issued it",
            file=sys.stderr,
        )
        return 2
    try:
        ca = ca_certificate(settings)
    except OSError as exc:
        print(f"mexc-paper: cannot make or read the local CA: {exc}", file=sys.stderr)
        return 1
    if args.out:
        out = Path(args.out)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(ca.pem)
        except OSError as exc:
            print(f"mexc-paper: --out {out}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        print(f"mexc-paper: wrote the local CA certificate to {out} (from {ca.path}, SHA-256 "
              f"{fingerprint(ca.cert)})", file=sys.stderr)
    else:
        sys.stdout.write(ca.pem.decode("ascii"))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["ca"]:
        return ca_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        path = resolve_config_path(args.config, os.environ)
        settings = apply_cli(load_settings(path, os.environ), args)
    except ConfigError as exc:
        print(f"mexc-paper: configuration error: {exc}", file=sys.stderr)
        return 2
    tape = None
    if settings.upstream.replay_path:
        try:
            tape = load_tape(settings.upstream.replay_path)
        except TapeError as exc:
            print(f"mexc-paper: cassette error: {exc}", file=sys.stderr)
            return 2

    app = create_app(settings, tape=tape)
    mode_state = app[keys.MODE]
    logsetup.configure(
        settings.logging.level,
        settings.logging.format,
        lambda: mode_state.current,
        settings.secrets(),
    )
    try:
        import uvloop  # optional: pip install 'mexc-paper[fast]'

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass

    tls = None
    if settings.server.tls is not None:
        tls = TlsServer(settings)
        try:
            tls.load()
        except (OSError, ssl.SSLError, ValueError) as exc:
            what = "server.tls.cert/key" if not settings.server.tls.local_ca else "server.tls"
            print(f"mexc-paper: configuration error: {what}: cannot load the certificate: {exc}",
                  file=sys.stderr)
            return 2

    def announce(bound: list[listen.Bound]) -> None:
        log.info(startup_line(settings, mode_state.current, bound, tls))
        # What exists now (modules, config, the loaded state) lives as long as the process:
        # move it out of the cyclic GC's reach so full collections stay short (they were
        # the largest latency spikes under load, docs/benchmarks.md). Refcounting still
        # frees these objects; only cycle collection skips them.
        gc.collect()
        gc.freeze()

    # web.run_app, on one or two listeners, with connections bounded (server.max_connections)
    try:
        listen.serve(
            app,
            settings,
            tls,
            announce=announce,
            access_log=logging.getLogger("aiohttp.access") if settings.logging.access_log else None,
            access_log_class=SafeAccessLogger,
            shutdown_timeout=2.0,
        )
    except listen.ListenError as exc:
        print(f"mexc-paper: cannot start: {exc}", file=sys.stderr)
        return 2
    log.info("mexc-paper stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
