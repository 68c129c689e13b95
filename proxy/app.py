"""The app factory: builds the aiohttp application and does no I/O.

Resources open in `cleanup_ctx` generators, in dependency order, and close in reverse:
store (+ migrations) -> upstream session -> market stream relay (connects lazily) ->
service (loads state) -> market watcher -> user streams (listenKeys, the /ws hub on the
change feed) -> equity recorder (with the dashboard).
In replay the upstream is the tape (proxy/tape/) and the tape feeder replaces the market
watcher (and MEXC's stream: the tape serves the public channels).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from . import admin, keys
from .clock import Clock, SystemClock
from .config import Settings
from .equity import EquityRecorder, PnlCache
from .errors import make_error_middleware
from .loopguard import LoopGuard
from .metrics import LabelledCounter, Metrics
from .routes import MEXC_ROUTES
from .service import ModeState, PaperService
from .store import Store
from .tape.channels import TapeChannels
from .tape.client import TapeClient
from .tape.clock import TapeClock
from .tape.feeder import TapeFeeder
from .tape.replay import Replay
from .tape.tape import Tape, load_tape
from .upstream import HttpTransport, MexcClient, RecordingTransport, Transport
from .watcher import MarketWatcher
from .ws import streams
from .ws.listenkeys import ListenKeys
from .ws.livepass import LiveStreams
from .ws.relay import StreamCollector, StreamRelay
from .ws.stream import StreamClient
from .ws.streams import StreamHub

WATCHER = keys.WATCHER
log = logging.getLogger("proxy")


def _metrics_middleware(metrics: Metrics) -> Callable:
    count_request = LabelledCounter(metrics.requests).inc

    @web.middleware
    async def metrics_middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        status = 500
        try:
            resp = await handler(request)
            status = resp.status
            return resp
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            route = request.match_info.route.resource
            path = route.canonical if route is not None else "unmatched"
            count_request(path, str(status))

    return metrics_middleware


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    transport: Transport | None = None,
    tape: Tape | None = None,
) -> web.Application:
    """Build the app. `transport` replaces the upstream transport (tests). In replay
    (`settings.upstream.replay_path`) `clock` is the wall clock and `tape` the cassette
    when already loaded (else it is loaded at start-up)."""
    metrics = Metrics()
    # this process's loop protection: its mark on every upstream request (proxy/loopguard.py)
    guard = LoopGuard(settings.upstream.base_url)
    app = web.Application(
        middlewares=[
            guard.middleware(),
            _metrics_middleware(metrics),
            make_error_middleware(settings.reraise_unexpected),
        ],
        client_max_size=settings.server.max_body_bytes,
        handler_args={
            # ccxt sends batchOrders percent-encoded in the query: allow long request lines
            "max_line_size": 32768,
            "max_field_size": 16384,
            # aiohttp's keep-alive timer runs from a connection's start and from each answer
            # until a complete request head arrived: a connection trickling header lines
            # (or idle) is closed after this long (wins over any runner's keepalive_timeout)
            "keepalive_timeout": settings.server.header_timeout_s,
        },
    )
    app[keys.SETTINGS] = settings
    wall = clock or SystemClock()
    app[keys.WALL_CLOCK] = wall
    up = settings.upstream
    replay: Replay | None = None
    if up.replay_path and transport is None:
        replay = Replay(TapeClock(0, up.replay_mode, up.replay_speed))
        app[keys.TAPE] = replay
        app[keys.CLOCK] = replay.clock
    else:
        app[keys.CLOCK] = wall
    app[keys.METRICS] = metrics
    app[keys.MODE] = ModeState(settings.live_armed)
    app[keys.LOOP_GUARD] = guard

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        store = Store(settings.storage.path, settings.storage.synchronous)
        await store.open()
        app[keys.STORE] = store
        yield
        await store.close()

    async def upstream_ctx(app: web.Application) -> AsyncIterator[None]:
        t: Transport
        if replay is not None:
            app[keys.UPSTREAM] = await _tape_client(app, replay, tape, settings, metrics)
            yield
            return
        if transport is not None:
            t = transport
        elif up.record_path:
            rec = RecordingTransport(HttpTransport(up, guard), up.record_path, app[keys.CLOCK].now_ms)
            await rec.start()
            t = rec
        else:
            http = HttpTransport(up, guard)
            await http.start()
            t = http
        client = MexcClient(
            t,
            up,
            depth_limit=settings.paper.depth_limit,
            trades_limit=settings.paper.trades_limit,
            metrics=metrics,
            clock=app[keys.CLOCK],
        )
        app[keys.UPSTREAM] = client
        yield
        await client.close()

    async def stream_ctx(app: web.Application) -> AsyncIterator[None]:
        # MEXC's public stream, relayed to /ws and feeding the watcher; nothing connects
        # until something subscribes. Not in replay: the tape serves the market there.
        up = settings.upstream
        if not up.ws_url or up.replay_path:
            yield
            return
        transport = app[keys.UPSTREAM].transport
        client = StreamClient(
            up.ws_url,
            recorder=transport.append_stream if isinstance(transport, RecordingTransport) else None,
            clock=app[keys.CLOCK].now_ms,
            resolve=up.resolve,
            guard=guard,
            connect_timeout_s=up.connect_timeout_s,
            ack_timeout_s=up.timeout_s,
        )
        relay = StreamRelay(client)
        app[keys.MARKET_STREAM] = relay
        app[keys.PUBLIC_CHANNELS] = relay
        yield
        await relay.close()

    async def service_ctx(app: web.Application) -> AsyncIterator[None]:
        service = PaperService(
            settings, app[keys.STORE], app[keys.UPSTREAM], app[keys.CLOCK], metrics, app[keys.MODE]
        )
        await service.start()
        app[keys.SERVICE] = service
        # per-account PnL ledgers: the admin API's positions and the dashboard read them
        app[keys.PNL] = PnlCache(service)
        yield
        await app[keys.STORE].flush()

    async def tape_ctx(app: web.Application) -> AsyncIterator[None]:
        assert replay is not None and replay.tape is not None
        service = app[keys.SERVICE]
        feeder = TapeFeeder(
            replay.tape, replay.clock, service, lambda: service.state.open_by_symbol
        )
        channels = TapeChannels(replay.tape, replay.clock, feeder.poke)
        feeder.frames = channels
        await _resume(app, replay)
        # every step up to the position (the tape's start, or where the database left
        # off) was matched before: no order could rest on it in this process
        feeder.skip_to(replay.clock.position)
        replay.feeder, replay.channels = feeder, channels
        app[keys.PUBLIC_CHANNELS] = channels
        feeder.start()
        yield
        await feeder.stop()

    async def watcher_ctx(app: web.Application) -> AsyncIterator[None]:
        # in replay the recorded trade times are not comparable with our clock: a
        # symbol's first page is then a baseline only
        started = None if settings.upstream.replay_path else app[keys.CLOCK].now_ms()
        stream = app.get(keys.MARKET_STREAM)
        watcher = MarketWatcher(
            app[keys.SERVICE], app[keys.UPSTREAM], settings.paper.poll_interval_s, started,
            stream=stream, clock=app[keys.CLOCK].now_ms, depth_limit=settings.paper.depth_limit,
        )
        app[WATCHER] = watcher
        collector = StreamCollector(watcher.stream_status)
        metrics.registry.register(collector)
        if stream is not None:
            # orders on a symbol the stream keeps in sync use its book and last price
            app[keys.UPSTREAM].live = watcher
        watcher.start()
        yield
        app[keys.UPSTREAM].live = None
        await watcher.stop()
        metrics.registry.unregister(collector)

    async def equity_ctx(app: web.Application) -> AsyncIterator[None]:
        # after the service: the first equity point is recorded right after start
        service = app[keys.SERVICE]
        dash = settings.dashboard
        recorder = EquityRecorder(
            service, app[keys.CLOCK], dash.equity_interval_s, dash.quote_asset, dash.equity_change_gap_s
        )
        app[keys.EQUITY] = recorder
        await recorder.start()
        yield
        await recorder.stop()

    async def streams_ctx(app: web.Application) -> AsyncIterator[None]:
        # after the service: the hub subscribes to its change feed
        # the wall clock: a listenKey's hour and a connection's day are the bot's time,
        # also when the market runs on a replay's tape
        listen_keys = ListenKeys(app[keys.STORE], app[keys.WALL_CLOCK])
        await listen_keys.load()
        app[keys.LISTEN_KEYS] = listen_keys
        hub = StreamHub(
            settings.websocket, app[keys.WALL_CLOCK], metrics, listen_keys,
            lambda: app.get(keys.PUBLIC_CHANNELS),
        )
        hub.start(app[keys.SERVICE].feed)
        if settings.live_armed and settings.upstream.ws_url and replay is None:
            # live mode: MEXC's listenKeys on /ws go to MEXC's stream (proxy/ws/livepass.py)
            hub.live = LiveStreams(settings.upstream, guard)
        app[keys.USER_STREAMS] = hub
        yield
        await hub.shutdown()

    async def close_streams(app: web.Application) -> None:
        # WebSocket handlers run until their connection ends: close them at shutdown,
        # before aiohttp waits for the handlers (cleanup contexts run only after that)
        hub = app.get(keys.USER_STREAMS)
        if hub is not None:
            await hub.shutdown()

    app.cleanup_ctx.extend([
        store_ctx, upstream_ctx, stream_ctx, service_ctx,
        tape_ctx if replay is not None else watcher_ctx, streams_ctx,
    ])
    app.on_shutdown.append(close_streams)
    if settings.dashboard.enabled:
        app.cleanup_ctx.append(equity_ctx)
    admin.install(app)
    app.add_routes(MEXC_ROUTES)
    # MEXC's WebSocket on the same listener: user-data streams, public channels relayed
    app.router.add_get("/ws", streams.handle)
    if settings.dashboard.enabled:
        from .dashboard import create_dashboard_app

        app.add_subapp("/dashboard/", create_dashboard_app(settings))
        app.router.add_get("/", _to_dashboard)
    return app


async def _tape_client(
    app: web.Application, replay: Replay, tape: Tape | None, settings: Settings, metrics: Metrics
) -> TapeClient:
    """Load the cassette (unless given) and set the tape's clock at its start."""
    up = settings.upstream
    assert up.replay_path is not None
    replay.tape = tape if tape is not None else load_tape(up.replay_path)
    clock = replay.clock
    clock.start_ms = clock.position = replay.tape.start_ms
    return TapeClient(
        replay.tape, clock, up, settings.paper.depth_limit, settings.paper.trades_limit, metrics
    )


async def _resume(app: web.Application, replay: Replay) -> None:
    """With open orders left by an earlier run (a crash, a restart), the tape resumes
    where the database left off (its latest event), so they are never matched against
    trades from before they were placed. Without any, the tape starts over."""
    assert replay.tape is not None
    if not app[keys.SERVICE].state.open_by_symbol:
        return
    latest = await app[keys.STORE].events(limit=1)
    clock = replay.clock
    if latest and latest[0]["time"] > clock.position:
        clock.position = latest[0]["time"]
        log.info("tape %s resumes at %d, where the database left off (%d ms after its start)",
                 replay.tape.name, clock.position, clock.position - replay.tape.start_ms)


async def _to_dashboard(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/dashboard/")
