"""`GET /ws`: MEXC's WebSocket on the sidecar's own listener (reference section 9).

`/ws?listenKey=K` carries the private channels of K's account (orders, deals, account,
built by push.py from the change feed); public channels, on any `/ws` connection, go to
whatever serves them (`keys.PUBLIC_CHANNELS`: the relay of MEXC's stream, or the tape).
The control protocol is in protocol.py.

Delivery. The hub subscribes once to the service's change feed. The feed calls it after a
command is durable, in commit order; the hub hands the record to the bounded send queue of
every connection of the record's accounts that subscribed a private channel, and returns:
nothing on the order path waits for a socket. Each connection has one writer task that
takes its queue in order (records, relayed public frames and control answers share it),
encodes a record into frames for the channels the connection has subscribed, and sends
them. A reader that stops reading blocks only its own writer (aiohttp waits for the socket
to drain); its queue then fills, and when it holds `websocket.send_queue` items, or
more than `websocket.send_queue_bytes` bytes (relayed frames count their size, a control
answer its length, a private record RECORD_BYTES: its frames are built by the writer), the
connection is cut off: queue dropped, close frame 1008 "slow reader: send queue full"
(written if the socket takes it within 2 s, else the TCP connection is aborted). One item
is always taken when the queue is empty, whatever its size (an upstream frame may be up to
4 MB). A relayed frame is one bytes object shared by every connection that queues it:
the byte bound caps what one connection may hold back, not a copy per connection. MEXC
documents no such rule; a client that misses pushes must reconnect and re-read its state
over REST, as after any disconnect. Never an unbounded buffer.

Control messages. The reader never waits for anything but the socket: a SUBSCRIPTION
takes effect at once (counted against the 30, its frames delivered from then on), and
the upstream's verdict on a public channel (MEXC's answer, up to `upstream.timeout_s`
when MEXC is slow; at once while its stream is known to be down) is awaited in a task
of its own. Answers to SUBSCRIPTION and UNSUBSCRIPTION (and "msg format invalid") go out
in request order; a PONG is sent at once, ahead of any subscription answer still
waiting for MEXC, so a client's keep-alive never times out behind a subscription. An
UNSUBSCRIPTION of a channel whose subscription is still waiting withdraws it (answered
in order: the subscription, then the unsubscription).

MEXC's connection rules (reference 9.1), and how they are applied here:
  - at most 30 subscriptions per connection: the 31st channel is refused (protocol.py);
  - no subscription for 30 s (since the connection opened or since its last subscription
    went; a refused SUBSCRIPTION, or one still waiting for MEXC's answer, is not a
    subscription and does not restart the 30 s): closed, 1000 "no subscription";
  - subscribed but idle for 60 s: closed, 1000 "idle". Activity is any data frame pushed
    to the client and any message from it (a PING counts; MEXC tells clients to PING to
    keep a quiet stream open). WebSocket-level ping frames are answered but do not count;
  - every connection is closed after 24 h, 1000 "24h limit";
  - more than 100 messages per second from the client (a token bucket of 100, refilled at
    100/s): closed, 1008 "too many messages";
  - at most 5 connections per listenKey: a 6th is closed at once, 1008;
  - an unknown, expired or deleted listenKey: the text `Invalid listen key`, then close
    1008 (MEXC's text; its close code is UNSURE). A key deleted (DELETE) or expiring
    while connected ends its connections: 1000 "listen key deleted" / "listen key expired".
    In live mode a key the sidecar did not issue is MEXC's: the connection is relayed to
    MEXC's stream instead (livepass.py), never in paper mode.
The timeouts are `websocket.*` settings (tests shorten them). At shutdown every connection
gets 1001 "server shutting down".
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from ..clock import Clock
from ..config import WebSocketSettings
from ..feed import MODE_SWITCH, ChangeFeed, Committed
from ..metrics import LabelledCounter, Metrics
from . import protocol, push
from .channels import FrameSink, PublicChannels
from .listenkeys import ListenKeys, mask
from .livepass import LiveStreams

log = logging.getLogger("proxy.ws")

MAX_SUBSCRIPTIONS = 30
MAX_MESSAGES_PER_S = 100
MAX_CONNECTIONS_PER_KEY = 5
MAX_MESSAGE_BYTES = 64 * 1024  # a client's control message; SUBSCRIPTION of 30 channels is ~2 KB
# what a queued private record counts against websocket.send_queue_bytes: its frames are
# built by the writer (a command's pushes are a few hundred bytes each)
RECORD_BYTES = 1024
CLOSE_TIMEOUT_S = 2.0
EXPIRY_CHECK_S = 10.0

_ids = itertools.count(1)


def channel_family(channel: str) -> str:
    """A channel without its symbol and interval, for metric labels
    (`spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT` -> `public.aggre.deals.v3.api.pb`)."""
    parts = channel.split("@")
    return parts[1] if len(parts) > 1 else parts[0]


class Connection:
    """One `/ws` connection: its subscriptions, its bounded send queue, its writer."""

    def __init__(
        self, hub: StreamHub, ws: web.WebSocketResponse, request: web.Request,
        key: str | None, account_id: int | None,
    ) -> None:
        loop = asyncio.get_running_loop()
        self.hub = hub
        self.ws = ws
        self.request = request
        self.id = next(_ids)
        self.key = key
        self.account_id = account_id
        self.opened = loop.time()
        self.opened_ms = hub.clock.now_ms()
        self.last_activity = self.opened
        self.unsubscribed_since = self.opened
        # channel -> the sink handed to PublicChannels (None for a private channel)
        self.subs: dict[str, FrameSink | None] = {}
        self.private: frozenset[str] = frozenset()
        self.queue: deque[Committed | tuple[str, bytes] | str] = deque()
        self.limit = hub.settings.send_queue
        self.limit_bytes = hub.settings.send_queue_bytes
        self.queued_bytes = 0
        # public channels whose subscription waits for the upstream's verdict
        self._pending: dict[str, asyncio.Task[bool]] = {}
        # answers to control messages, in request order; the head goes out once ready
        self._answers: deque[_Answer] = deque()
        self.frames_sent = 0
        self.closing = False
        self.close_reason: str | None = None
        self._tokens = float(MAX_MESSAGES_PER_S)
        self._tokens_at = self.opened
        self._wake: asyncio.Future[None] | None = None
        self._writer = loop.create_task(self._write_loop(), name=f"ws-writer-{self.id}")
        self._closer: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ the send queue
    def offer(self, item: Committed | tuple[str, bytes] | str) -> None:
        """Queue a record, a public frame (label, bytes) or a control answer. Never blocks:
        a connection with a full queue is cut off instead."""
        if self.closing:
            return
        size = _size(item)
        if self.queue and (len(self.queue) >= self.limit or self.queued_bytes + size > self.limit_bytes):
            self.cut_off(WSCloseCode.POLICY_VIOLATION, "slow reader: send queue full", "slow_reader")
            return
        self.queue.append(item)
        self.queued_bytes += size
        w = self._wake
        if w is not None and not w.done():
            w.set_result(None)

    def public_sink(self, channel: str) -> FrameSink:
        label = channel_family(channel)

        def sink(frame: bytes) -> None:
            self.offer((label, frame))

        return sink

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        ws, q = self.ws, self.queue
        count = self.hub.count_push
        try:
            while True:
                if not q:
                    self._wake = loop.create_future()
                    await self._wake
                    continue
                item = q.popleft()
                self.queued_bytes -= _size(item)
                if isinstance(item, str):
                    await ws.send_str(item)
                    continue
                if isinstance(item, tuple):
                    label, data = item
                    await ws.send_bytes(data)
                    count(label)
                    self.frames_sent += 1
                    self.last_activity = loop.time()
                    continue
                assert self.account_id is not None
                frames = push.frames(item, self.account_id, self.private, self.hub.clock.now_ms())
                for channel, data in frames:
                    await ws.send_bytes(data)
                    count(channel)
                self.frames_sent += len(frames)
                if frames:
                    self.last_activity = loop.time()
        except ConnectionError:  # the socket went away: the reader sees it too
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("ws connection %d: push failed; closing it", self.id)
            self.cut_off(WSCloseCode.INTERNAL_ERROR, "internal error", "error")

    # ------------------------------------------------------------------ ending
    def cut_off(self, code: int, reason: str, label: str) -> None:
        """End the connection from our side: no more pushes; a close frame with `reason`,
        or an aborted TCP connection if the client does not take it in time."""
        if self.closing:
            return
        self.closing = True
        self.close_reason = reason
        self.queue.clear()
        self.queued_bytes = 0
        self.hub.detach(self)
        self.hub.count_disconnect(label)
        log.info(
            "ws connection %d (listen key %s) closed by the server: %s",
            self.id, mask(self.key) if self.key else "-", reason,
        )
        self._writer.cancel()
        self._closer = asyncio.get_running_loop().create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()), CLOSE_TIMEOUT_S)
            if self.ws.close_code == WSCloseCode.ABNORMAL_CLOSURE:
                self._abort()  # no close frame back in time: aiohttp's close() would linger
        except (TimeoutError, ConnectionError, RuntimeError):
            self._abort()  # the client does not take the close frame
        except asyncio.CancelledError:
            # the writer we cancelled was waiting for the socket to drain, and so was
            # close(): aiohttp's shared drain waiter is cancelled with it
            self._abort()
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise

    def _abort(self) -> None:
        """Drop the TCP connection (what is still buffered for the client with it)."""
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    @property
    def closer(self) -> asyncio.Task[None] | None:
        """The task sending our close frame, once `cut_off` started one."""
        return self._closer

    async def finish(self) -> None:
        """After the receive loop ended: stop writing, let a close under way finish."""
        self.closing = True
        self.queue.clear()
        self.queued_bytes = 0
        self._answers.clear()
        self.hub.detach(self)
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        if self._closer is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._closer
        pending = list(self._pending.values())
        self._pending.clear()
        for task in pending:  # not started: never subscribed; waiting: unsubscribes itself
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        public = self.hub.public_channels()
        for channel, sink in self.subs.items():
            if sink is not None and public is not None:
                public.unsubscribe(channel, sink)
        self.subs.clear()
        self.private = frozenset()

    # ------------------------------------------------------------------ receiving
    def _deadline(self) -> tuple[float, str, str] | None:
        """(loop time, close reason, metric label) of the next rule that ends it."""
        s = self.hub.settings
        out: list[tuple[float, str, str]] = []
        if s.max_lifetime_s:
            out.append((self.opened + s.max_lifetime_s, "24h limit", "lifetime"))
        if len(self.subs) == len(self._pending):  # nothing subscribed (waiting is not)
            if s.no_subscription_timeout_s:
                out.append((self.unsubscribed_since + s.no_subscription_timeout_s,
                            "no subscription", "no_subscription"))
        elif s.idle_timeout_s:
            out.append((self.last_activity + s.idle_timeout_s, "idle", "idle"))
        return min(out) if out else None

    def _rate_ok(self, now: float) -> bool:
        self._tokens = min(float(MAX_MESSAGES_PER_S),
                           self._tokens + (now - self._tokens_at) * MAX_MESSAGES_PER_S)
        self._tokens_at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    async def serve(self) -> None:
        """Read control messages until the connection ends."""
        loop = asyncio.get_running_loop()
        ws = self.ws
        while not self.closing:
            deadline = self._deadline()
            timeout = None
            if deadline is not None:
                timeout = deadline[0] - loop.time()
                if timeout <= 0:
                    self.cut_off(WSCloseCode.OK, deadline[1], deadline[2])
                    break
            try:
                msg = await ws.receive(timeout=timeout)
            except TimeoutError:
                continue  # a deadline passed, or moved: look again
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                break
            now = loop.time()
            self.last_activity = now
            if not self._rate_ok(now):
                self.cut_off(WSCloseCode.POLICY_VIOLATION, "too many messages", "rate")
                break
            if msg.type is WSMsgType.TEXT:
                self._control(msg.data)
            else:  # a binary frame from a client is not a control message
                self._answer(_Answer.ready(protocol.answer(protocol.FORMAT_INVALID)))

    def _control(self, text: str) -> None:
        """Handle one control message without waiting (module docstring)."""
        ctl = protocol.parse(text)
        if ctl is None:
            self._answer(_Answer.ready(protocol.answer(protocol.FORMAT_INVALID)))
        elif ctl.method == protocol.PING:
            self.offer(protocol.answer(protocol.PONG, ctl.id))  # never behind a pending answer
        elif ctl.method == protocol.SUBSCRIBE:
            self._subscribe(ctl)
        else:
            self._unsubscribe(ctl)

    # ------------------------------------------------------------------ answers, in order
    def _answer(self, answer: _Answer) -> None:
        self._answers.append(answer)
        self._flush_answers()

    def _flush_answers(self) -> None:
        answers = self._answers
        while answers and answers[0].waiting == 0:
            for text in answers.popleft().texts():
                self.offer(text)

    def _subscribe(self, ctl: protocol.Control) -> None:
        answer = _Answer(ctl.id)
        public = self.hub.public_channels()
        for channel in ctl.params:
            pending = self._pending.get(channel)
            if pending is not None:  # asked again while its verdict is still awaited
                self._await_verdict(answer, channel, self.subs[channel], pending)
                continue
            if channel in self.subs:
                answer.verdict(channel, _OK)
                continue
            if len(self.subs) >= MAX_SUBSCRIPTIONS:
                answer.verdict(channel, _OVER)
                continue
            if channel in push.PRIVATE_CHANNELS:
                if self.account_id is None:
                    answer.verdict(channel, _BLOCKED)
                    continue
                self.subs[channel] = None
                self.private = self.private | {channel}
                self.hub.attach_private(self)
                answer.verdict(channel, _OK)
                continue
            if public is None or not public.is_public(channel):
                answer.verdict(channel, _BLOCKED)
                continue
            sink = self.public_sink(channel)
            self.subs[channel] = sink  # counted now: no 31st slips in meanwhile
            task = asyncio.get_running_loop().create_task(
                public.subscribe(channel, sink), name=f"ws-subscribe-{self.id}")
            self._pending[channel] = task
            self._await_verdict(answer, channel, sink, task)
        self._answer(answer)

    def _await_verdict(
        self, answer: _Answer, channel: str, sink: FrameSink | None, task: asyncio.Task[bool]
    ) -> None:
        answer.verdict(channel, None)

        def done(task: asyncio.Task[bool]) -> None:
            if self._pending.get(channel) is task:
                del self._pending[channel]
            if task.cancelled():
                ok = True  # withdrawn by an UNSUBSCRIPTION (or the connection closed)
            elif task.exception() is not None:
                log.error("ws connection %d: public subscription failed", self.id,
                          exc_info=task.exception())
                ok = False
            else:
                ok = task.result()
            if not ok and self.subs.get(channel) is sink:
                del self.subs[channel]  # never a subscription: the 30 s go on
                public = self.hub.public_channels()
                if public is not None and sink is not None:
                    public.unsubscribe(channel, sink)
            answer.verdict(channel, _OK if ok else _BLOCKED)
            self._flush_answers()

        task.add_done_callback(done)

    def _unsubscribe(self, ctl: protocol.Control) -> None:
        public = self.hub.public_channels()
        had = len(self.subs) > len(self._pending)
        for channel in ctl.params:
            if channel not in self.subs:
                continue
            sink = self.subs.pop(channel)
            pending = self._pending.pop(channel, None)
            if pending is not None:
                pending.cancel()  # not started: never subscribed; waiting: unsubscribes itself
            if sink is None:
                self.private = self.private - {channel}
            elif public is not None:
                public.unsubscribe(channel, sink)
        if not self.private:
            self.hub.detach_private(self)
        if had and len(self.subs) == len(self._pending):
            self.unsubscribed_since = asyncio.get_running_loop().time()
        self._answer(_Answer.ready(protocol.answer(",".join(ctl.params), ctl.id)))


_OK, _BLOCKED, _OVER = "ok", "blocked", "over"


class _Answer:
    """The answer to one control message: ready at once, or once every channel of a
    SUBSCRIPTION has its verdict (channel -> _OK/_BLOCKED/_OVER, None while waiting)."""

    __slots__ = ("_text", "channels", "id", "waiting")

    def __init__(self, rid: int = 0) -> None:
        self.id = rid
        self.channels: dict[str, str | None] = {}
        self.waiting = 0
        self._text: str | None = None

    @classmethod
    def ready(cls, text: str) -> _Answer:
        a = cls()
        a._text = text
        return a

    def verdict(self, channel: str, verdict: str | None) -> None:
        if channel in self.channels and self.channels[channel] is None:
            self.waiting -= 1
        self.channels[channel] = verdict
        if verdict is None:
            self.waiting += 1

    def texts(self) -> list[str]:
        """MEXC's answers: the subscribed channels, then the refused ones, then those
        over the limit (protocol.py)."""
        if self._text is not None:
            return [self._text]
        by: dict[str, list[str]] = {_OK: [], _BLOCKED: [], _OVER: []}
        for channel, verdict in self.channels.items():
            by[verdict or _BLOCKED].append(channel)
        out = []
        if by[_OK]:
            out.append(protocol.answer(",".join(by[_OK]), self.id))
        if by[_BLOCKED]:
            out.append(protocol.refusal(by[_BLOCKED], protocol.BLOCKED, self.id))
        if by[_OVER]:
            out.append(protocol.refusal(
                by[_OVER], protocol.TOO_MANY_SUBSCRIPTIONS.format(limit=MAX_SUBSCRIPTIONS), self.id))
        return out


def _size(item: Committed | tuple[str, bytes] | str) -> int:
    if isinstance(item, tuple):
        return len(item[1])
    if isinstance(item, str):
        return len(item)
    return RECORD_BYTES


class StreamHub:
    """Every `/ws` connection, routed by account; the change feed's one subscriber."""

    def __init__(
        self, settings: WebSocketSettings, clock: Clock, metrics: Metrics, keys: ListenKeys,
        public: Callable[[], PublicChannels | None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.keys = keys
        self.public_channels = public
        self.connections: set[Connection] = set()
        self._private: dict[int, set[Connection]] = {}  # account -> connections with a private sub
        self._by_key: dict[str, set[Connection]] = {}
        self._unsubscribe_feed: Callable[[], None] | None = None
        self._expiry: asyncio.Task[None] | None = None
        # live mode armed with a ws_url: MEXC's listenKeys relayed to MEXC (livepass.py)
        self.live: LiveStreams | None = None
        self.count_push = LabelledCounter(metrics.ws_pushes).inc
        self.count_disconnect = LabelledCounter(metrics.ws_disconnects).inc
        metrics.ws_connections.labels("private").set_function(
            lambda: sum(1 for c in self.connections if c.key is not None))
        metrics.ws_connections.labels("public").set_function(
            lambda: sum(1 for c in self.connections if c.key is None))
        metrics.ws_connections.labels("live").set_function(
            lambda: len(self.live.open) if self.live is not None else 0)
        metrics.ws_subscriptions.labels("private").set_function(lambda: self.subscriptions["private"])
        metrics.ws_subscriptions.labels("public").set_function(lambda: self.subscriptions["public"])
        keys.on_end = self._key_ended

    # ------------------------------------------------------------------ lifecycle
    def start(self, feed: ChangeFeed | None) -> None:
        if feed is not None:
            self._unsubscribe_feed = feed.subscribe(self._on_commit)
        self._expiry = asyncio.get_running_loop().create_task(self._expire_keys(), name="listen-key-expiry")

    async def shutdown(self) -> None:
        """Close every connection (the app's shutdown, before handlers are waited for)."""
        if self._unsubscribe_feed is not None:
            self._unsubscribe_feed()
            self._unsubscribe_feed = None
        if self._expiry is not None:
            self._expiry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._expiry
            self._expiry = None
        if self.live is not None:
            await self.live.close()
        for conn in list(self.connections):
            conn.cut_off(WSCloseCode.GOING_AWAY, "server shutting down", "shutdown")
        closers = [c.closer for c in list(self.connections) if c.closer is not None]
        if closers:
            await asyncio.wait(closers, timeout=CLOSE_TIMEOUT_S + 1)

    async def _expire_keys(self) -> None:
        while True:
            await asyncio.sleep(EXPIRY_CHECK_S)
            try:
                await self.keys.expire()
            except Exception:  # a failed delete is retried on the next round
                log.exception("expiring listen keys failed")

    # ------------------------------------------------------------------ routing
    def _on_commit(self, record: Committed) -> None:
        """The feed's callback: hand the record to the queues of its accounts' streams."""
        if record.kind == MODE_SWITCH and record.mode is not None and record.mode[1] != "live":
            if self.live is not None:
                self.live.paper()
        private = self._private
        if not private:
            return
        for account_id in record.accounts():
            conns = private.get(account_id)
            if conns:
                for conn in tuple(conns):
                    conn.offer(record)

    def attach_private(self, conn: Connection) -> None:
        assert conn.account_id is not None
        self._private.setdefault(conn.account_id, set()).add(conn)

    def detach_private(self, conn: Connection) -> None:
        if conn.account_id is None:
            return
        conns = self._private.get(conn.account_id)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self._private[conn.account_id]

    def detach(self, conn: Connection) -> None:
        """No more pushes to `conn` (it is closing)."""
        self.detach_private(conn)

    @property
    def subscriptions(self) -> dict[str, int]:
        """Subscriptions on open connections, by kind (read when /metrics is scraped)."""
        private = public = 0
        for c in self.connections:
            for sink in c.subs.values():
                if sink is None:
                    private += 1
                else:
                    public += 1
        return {"private": private, "public": public}

    # ------------------------------------------------------------------ connections
    def connections_of_key(self, key: str) -> int:
        return len(self._by_key.get(key, ()))

    def open(self, ws: web.WebSocketResponse, request: web.Request, key: str | None,
             account_id: int | None) -> Connection:
        conn = Connection(self, ws, request, key, account_id)
        self.connections.add(conn)
        if key is not None:
            self._by_key.setdefault(key, set()).add(conn)
        return conn

    async def close(self, conn: Connection) -> None:
        if not conn.closing:
            self.count_disconnect("client")
        await conn.finish()
        self.connections.discard(conn)
        if conn.key is not None:
            conns = self._by_key.get(conn.key)
            if conns is not None:
                conns.discard(conn)
                if not conns:
                    del self._by_key[conn.key]

    def _key_ended(self, key: str, why: str) -> None:
        for conn in list(self._by_key.get(key, ())):
            conn.cut_off(WSCloseCode.OK, f"listen key {why}", f"key_{why}")

    # ------------------------------------------------------------------ the dashboard
    def streams(self, account_id: int) -> list[dict[str, Any]]:
        """The account's connected user streams, oldest first."""
        out = []
        for c in sorted(self.connections, key=lambda c: c.id):
            if c.account_id != account_id or c.closing:
                continue
            out.append({
                "id": c.id,
                "key": mask(c.key or ""),
                "since_ms": c.opened_ms,
                "channels": sorted(ch for ch, sink in c.subs.items() if sink is None),
                "public": sum(1 for sink in c.subs.values() if sink is not None),
                "frames": c.frames_sent,
                "queued": len(c.queue),
            })
        return out


async def handle(request: web.Request) -> web.StreamResponse:
    """`GET /ws` and `GET /ws?listenKey=K`."""
    from .. import keys as app_keys  # (not at the top: keys imports StreamHub from here)

    hub = request.app[app_keys.USER_STREAMS]
    key: str | None = request.query.get("listenKey")
    account_id = hub.keys.account_of(key) if key is not None else None
    if key is not None and account_id is None and hub.live is not None and request.app[app_keys.MODE].is_live:
        return await hub.live.handle(request, key)  # MEXC's key, live mode: MEXC's stream
    ws = web.WebSocketResponse(
        autoping=True, compress=False, max_msg_size=MAX_MESSAGE_BYTES, timeout=CLOSE_TIMEOUT_S
    )
    await ws.prepare(request)
    if key is not None:
        if account_id is None:
            hub.count_disconnect("invalid_key")
            await _refuse(ws, protocol.INVALID_LISTEN_KEY, "Invalid listen key")
            return ws
        if hub.connections_of_key(key) >= MAX_CONNECTIONS_PER_KEY:
            hub.count_disconnect("too_many_connections")
            reason = f"too many connections for this listen key (max {MAX_CONNECTIONS_PER_KEY})"
            await _refuse(ws, None, reason)
            return ws
    conn = hub.open(ws, request, key, account_id)
    try:
        await conn.serve()
    finally:
        await hub.close(conn)
    return ws


async def _refuse(ws: web.WebSocketResponse, text: str | None, reason: str) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError, asyncio.TimeoutError):
        if text is not None:
            await ws.send_str(text)
        await asyncio.wait_for(
            ws.close(code=WSCloseCode.POLICY_VIOLATION, message=reason.encode()), CLOSE_TIMEOUT_S
        )
