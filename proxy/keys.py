"""Every typed application key. Handlers read app state through these only."""

from __future__ import annotations

from aiohttp import web

from .clock import Clock
from .config import Settings
from .equity import EquityRecorder, PnlCache
from .loopguard import LoopGuard
from .metrics import Metrics
from .service import ModeState, PaperService
from .store import Store
from .tape.replay import Replay
from .upstream import MexcClient
from .watcher import MarketStream, MarketWatcher
from .ws.channels import PublicChannels
from .ws.listenkeys import ListenKeys
from .ws.streams import StreamHub

SETTINGS = web.AppKey("settings", Settings)
# the market's and the paper engine's clock: order, fill and event times (tape time in replay)
CLOCK = web.AppKey("clock", Clock)
# the wall clock: the signature timestamp/recvWindow check and /api/v3/time (the same
# object as CLOCK except in replay, where CLOCK runs on the tape)
WALL_CLOCK = web.AppKey("wall_clock", Clock)
METRICS = web.AppKey("metrics", Metrics)
MODE = web.AppKey("mode", ModeState)
STORE = web.AppKey("store", Store)
UPSTREAM = web.AppKey("upstream", MexcClient)
SERVICE = web.AppKey("service", PaperService)
# set by the dashboard sub-app's parent so it can read the API app's state
PARENT = web.AppKey("parent", web.Application)
# the background task that writes the equity curve (when the dashboard is enabled)
EQUITY = web.AppKey("equity", EquityRecorder)
# per-account PnL ledgers over the fills (read by the dashboard)
PNL = web.AppKey("pnl", PnlCache)
# dashboard sub-app: the per-process secret its CSRF tokens are signed with
DASHBOARD_SECRET = web.AppKey("dashboard_secret", bytes)
# what serves public WebSocket channels on /ws (the relay of MEXC's stream, or the tape)
PUBLIC_CHANNELS = web.AppKey("public_channels", PublicChannels)
# replay only: the tape, its clock and feeder (GET/POST /admin/api/clock)
TAPE = web.AppKey("tape", Replay)
# the public stream the market watcher subscribes through: the relay of MEXC's (absent when
# upstream.ws_url is null); in replay, whatever serves the tape's stream may set it (in a
# cleanup context before the watcher's)
MARKET_STREAM = web.AppKey("market_stream", MarketStream)
# the market watcher (books and trades of the symbols with open orders)
WATCHER = web.AppKey("watcher", MarketWatcher)
# user-data-stream listenKeys (/api/v3/userDataStream) and the /ws connections
LISTEN_KEYS = web.AppKey("listen_keys", ListenKeys)
USER_STREAMS = web.AppKey("user_streams", StreamHub)
# this process's loop protection: the mark its upstream requests carry, its listeners
LOOP_GUARD = web.AppKey("loop_guard", LoopGuard)
