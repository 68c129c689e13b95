"""`python -m proxy [--config PATH] [--host H] [--port P]`: run the sidecar.

Also `--replay CASSETTE`, `--record CASSETTE` and `--db PATH`. A replay keeps its own
database unless `--db` names one (`replay_db_path`): a recorded market's orders never mix
with a live-market session's.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path

from aiohttp import web

from . import __version__, keys, listen, logsetup
from .accesslog import SafeAccessLogger
from .app import create_app
from .config import ConfigError, Settings, load_settings, mask_key, resolve_config_path

log = logging.getLogger("proxy")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m proxy",
        description=(
            "mexc-paper: a local paper-trading testnet for MEXC Spot V3. Point your bot's "
            "base URL here; market data comes from MEXC, orders fill on virtual balances."
        ),
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


def startup_line(settings: Settings, mode: str | None = None) -> str:
    """`mode`: the runtime mode (a persisted switch to paper overrides an armed live)."""
    up = settings.upstream
    upstream = f"replay:{up.replay_path}" if up.replay_path else up.base_url
    keys = ",".join(mask_key(a.api_key) for a in settings.accounts) or "-"
    return (
        f"mexc-paper {__version__} started mode={(mode or settings.mode).upper()} "
        f"listen=http://{settings.server.host}:{settings.server.port} upstream={upstream}"
        + f" stream={up.ws_url if up.ws_url and not up.replay_path else 'off'}"
        + (f" recording={up.record_path}" if up.record_path else "")
        + f" db={settings.storage.path} accounts={len(settings.accounts)} keys={keys}"
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        path = resolve_config_path(args.config, os.environ)
        settings = apply_cli(load_settings(path, os.environ), args)
    except ConfigError as exc:
        print(f"mexc-paper: configuration error: {exc}", file=sys.stderr)
        return 2

    app = create_app(settings)
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

    async def announce(_app: web.Application) -> None:
        log.info(startup_line(settings, mode_state.current))
        # What exists now (modules, config, the loaded state) lives as long as the process:
        # move it out of the cyclic GC's reach so full collections stay short (they were
        # the largest latency spikes under load, docs/benchmarks.md). Refcounting still
        # frees these objects; only cycle collection skips them.
        gc.collect()
        gc.freeze()

    app.on_startup.append(announce)
    # web.run_app, with connections bounded (server.max_connections)
    listen.serve(
        app,
        settings.server.host,
        settings.server.port,
        settings.server.max_connections,
        access_log=logging.getLogger("aiohttp.access") if settings.logging.access_log else None,
        access_log_class=SafeAccessLogger,
        shutdown_timeout=2.0,
    )
    log.info("mexc-paper stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
