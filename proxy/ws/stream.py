"""The upstream WebSocket client: MEXC's public market stream at `upstream.ws_url`.

One `StreamClient` holds as few connections as MEXC allows: a channel goes to the first
connection with fewer than 30 subscriptions (MEXC's limit per connection), a new one is
opened only when all are full, and a connection is closed once it has carried no
subscription for `idle_close_s`. Nothing connects until something subscribes.

Per connection:
- control frames are JSON text (`SUBSCRIPTION`, `UNSUBSCRIPTION`, `PING`), never more than
  `max_msgs_per_s` of them per second (MEXC disconnects a client above 100/s and bans
  repeat offenders); pending subscriptions are sent together, up to 30 in one message;
- a `{"method":"PING"}` every `ping_interval_s`; a connection that hears nothing (no
  push, no PONG) for `idle_timeout_s` is considered dead and dropped;
- after any drop (MEXC also closes every connection after 24 h): reconnect with
  exponential backoff (with jitter) and resubscribe everything it carried. A socket counts
  as up once MEXC has said something on it (an answer, a frame, a PONG), not at the
  handshake: an upstream that accepts and closes at once (an IP MEXC blocks) is one
  outage whose backoff keeps growing, not a reconnect every `backoff_min_s`.

One warning per outage (the first drop or failed connect of a connection that carries
subscriptions), one info line when it ends: every connection that carries subscriptions
is up again, or the ones that were down are no longer wanted. Retries in between log at
DEBUG only. While an outage is known, `subscribe` answers at once (the subscription is
kept and made when the stream is back) instead of waiting `ack_timeout_s` for an answer
that cannot come; a subscription waiting for its answer when an outage starts gets that
answer then.

MEXC's refusal of a channel (`Not Subscribed successfully! ...`) is final only as the
answer to a subscription someone is waiting for (`subscribe` returns False; the relay
refuses its local subscribers). A channel refused later, when it is resubscribed after a
reconnect (or made after an outage, its subscribers already told it was subscribed), is
kept: it is asked for again with the same exponential backoff (`backoff_min_s` doubling
up to `backoff_max_s`) until MEXC accepts it; meanwhile it is not live (consumers fall
back as during an outage). One warning when such a channel is first refused, one info
line when it is accepted again; `status()["refused_channels"]` counts them.

Each binary frame is handed over as the raw bytes with its channel (the wrapper's field
1, read by `pbwire.channel_of`), so a relay can pass it on byte-identical. Only public
channels are ever sent upstream (`spot@public.` names; anything else is refused before a
byte leaves), the URL carries no listenKey (the config rejects a query) and no header
beyond aiohttp's own, a User-Agent and the loop mark: nothing private or signed goes
upstream here.

Loop protection (proxy/loopguard.py), as for REST: host names resolve through
`upstream.resolve` and never to this sidecar's own listeners, the handshake carries this
process's `X-Mexc-Paper-Loop` mark (the sidecar's /ws refuses it with 508), and a
`ws_url` that is this sidecar's own address is never dialled. A loop is an outage whose
reason says what to fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
from yarl import URL

from .. import jsonutil
from ..loopguard import LOOP_HEADER, LoopGuard, UpstreamLoop, UpstreamResolver
from .pbwire import channel_of

log = logging.getLogger("proxy.stream")

MAX_SUBSCRIPTIONS = 30  # per connection (reference section 9.1)
PUBLIC_PREFIX = "spot@public."

FrameHandler = Callable[[str, bytes], None]
Recorder = Callable[[str, int, bytes], None]


class _Conn:
    """One upstream connection and the channels it carries."""

    def __init__(self, client: StreamClient, index: int) -> None:
        self.client = client
        self.index = index
        self.channels: set[str] = set()  # wanted on this connection
        self.acked: set[str] = set()  # subscribed under the current socket
        self.sent: set[str] = set()  # SUBSCRIPTION sent under the current socket
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.generation = 0  # +1 on every successful (re)connect
        self.ops: list[tuple[str, str]] = []  # pending ("SUBSCRIPTION"|"UNSUBSCRIPTION", ch)
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.last_rx = 0.0
        self.last_tx = 0.0
        self.failures = 0
        self.ever_up = False
        self.confirmed = False  # MEXC said something on the current socket
        self.empty_since: float | None = None
        self.reaped = False  # closed by us after idle_close_s without a subscription
        self.next_id = 1

    @property
    def up(self) -> bool:
        return self.ws is not None and not self.ws.closed

    @property
    def live(self) -> bool:
        """Up, and MEXC has answered on this socket (an ack, a frame or a PONG)."""
        return self.confirmed and self.up

    def start(self) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run(), name=f"mexc-stream-{self.index}")

    # ------------------------------------------------------------------ lifecycle
    async def _run(self) -> None:
        c = self.client
        while True:
            if not self.channels:
                # nothing to carry: no (re)connect (a socket left open without a
                # subscription is closed by _reap after idle_close_s)
                c._connection_closed(self)
                return
            try:
                await self._connect()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connect failures: aiohttp, OS and TLS errors
                self.failures += 1
                c.connect_errors += 1
                c._connection_down(self, f"connect failed: {_describe(exc)}")
                await asyncio.sleep(c._backoff(self.failures))
                continue
            reason = "closed by the upstream"
            try:
                reason = await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a broken socket mid-session
                reason = _describe(exc)
            finally:
                ws, self.ws = self.ws, None
                self.confirmed = False
                self.acked.clear()
                self.sent.clear()
                if ws is not None and not ws.closed:
                    with contextlib.suppress(Exception):
                        await ws.close()
            if self.reaped:  # we closed it, unused: no outage
                self.reaped = False
                self.ever_up = False
                if not self.channels:
                    c._connection_closed(self)
                    return
                continue  # wanted again meanwhile: a new socket at once
            if not self.channels:  # it carried nothing any more: no outage, no reconnect
                c._connection_closed(self)
                return
            self.failures += 1
            c._connection_down(self, reason)
            await asyncio.sleep(c._backoff(self.failures))

    async def _connect(self) -> None:
        c = self.client
        c._check_literal()
        session = await c._session()
        try:
            self.ws = await session.ws_connect(
                c.url,
                timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
                autoping=True,
                max_msg_size=4 * 1024 * 1024,
            )
        except aiohttp.WSServerHandshakeError as exc:
            guard = c.guard
            if guard is not None and (
                exc.status == 508 or (exc.headers or {}).get(LOOP_HEADER) == guard.mark
            ):
                raise StreamLoop(c.loop_message) from None
            raise
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, UpstreamLoop):
                raise StreamLoop(c.loop_message) from None
            raise
        self.generation += 1
        self.last_rx = time.monotonic()
        self.confirmed = False  # up once MEXC says something on it (_read_loop)
        # everything this connection carries is (re)subscribed on the new socket
        self.ops = [("SUBSCRIPTION", ch) for ch in sorted(self.channels)]
        self.wake.set()

    def _confirm(self) -> None:
        """MEXC's first message on this socket: the connection is really up."""
        self.confirmed = True
        if self.ever_up:
            self.client.reconnects += 1
        self.ever_up = True
        self.client._connection_up(self)

    async def _session(self) -> str:
        """Run one socket until it drops; returns why it ended."""
        assert self.ws is not None
        sender = asyncio.create_task(self._send_loop(), name=f"mexc-stream-send-{self.index}")
        try:
            return await self._read_loop()
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender

    async def _read_loop(self) -> str:
        ws = self.ws
        assert ws is not None
        c = self.client
        idle = c.idle_timeout_s
        while True:
            try:
                msg = await ws.receive(timeout=idle)
            except TimeoutError:
                return f"no message for {idle:g} s"
            self.last_rx = time.monotonic()
            if not self.confirmed and msg.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                self._confirm()
            if msg.type is aiohttp.WSMsgType.BINARY:
                data: bytes = msg.data
                channel = channel_of(data)
                c.frames_in += 1
                if channel is None:
                    c.bad_frames += 1
                    continue
                if channel not in self.acked and channel in self.sent:
                    # data is as good as an ack (MEXC has been seen to answer late)
                    self.acked.add(channel)
                    c._acked(self, channel)
                if c.recorder is not None:
                    c._record(channel, data)
                c.on_frame(channel, data)
            elif msg.type is aiohttp.WSMsgType.TEXT:
                self._on_text(msg.data)
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                code = ws.close_code
                return f"closed by the upstream (code {code})" if code else "closed by the upstream"
            elif msg.type is aiohttp.WSMsgType.ERROR:
                return f"socket error: {_describe(ws.exception())}"

    async def _send_loop(self) -> None:
        c = self.client
        gap = 1.0 / c.max_msgs_per_s
        next_ping = time.monotonic() + c.ping_interval_s
        while True:
            if not self.ops:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), max(0.0, next_ping - time.monotonic()))
            wait = self.last_tx + gap - time.monotonic()
            if wait > 0:  # pacing: MEXC's 100 messages/s per connection
                await asyncio.sleep(wait)
            if self.ops:
                await self._send_ops()
            elif time.monotonic() >= next_ping:
                await self._send({"method": "PING"})
                next_ping = time.monotonic() + c.ping_interval_s

    async def _send_ops(self) -> None:
        """Send the first run of same-method operations as one message (≤ 30 channels)."""
        method = self.ops[0][0]
        batch: list[str] = []
        while self.ops and self.ops[0][0] == method and len(batch) < MAX_SUBSCRIPTIONS:
            ch = self.ops.pop(0)[1]
            if method == "SUBSCRIPTION":
                if ch not in self.channels or ch in self.sent:
                    continue  # unsubscribed meanwhile, or already sent on this socket
                self.sent.add(ch)
            else:
                if ch in self.channels or ch not in self.sent:
                    continue  # wanted again meanwhile, or never sent on this socket
                self.sent.discard(ch)
                self.acked.discard(ch)
            batch.append(ch)
        if batch:
            for ch in batch:  # never anything but a public channel
                if not ch.startswith(PUBLIC_PREFIX):
                    raise AssertionError(f"refusing to send a non-public channel upstream: {ch}")
            msg_id = self.next_id
            self.next_id += 1
            await self._send({"method": method, "params": batch, "id": msg_id})

    async def _send(self, message: dict[str, Any]) -> None:
        ws = self.ws
        if ws is None or ws.closed:
            return
        self.last_tx = time.monotonic()
        self.client.msgs_out += 1
        await ws.send_str(jsonutil.dumps(message).decode())

    def _on_text(self, text: str) -> None:
        """Acks: `{"id":n,"code":0,"msg":"ch1,ch2"}`; a refusal keeps code 0 and says
        `Not Subscribed successfully! [ch].  Reason: Blocked! ` (MEXC's colon there is a
        full-width one); a pong says `PONG`."""
        try:
            data = jsonutil.loads(text)
        except ValueError:
            log.debug("upstream stream sent a text frame that is not JSON: %.200s", text)
            return
        if not isinstance(data, dict):
            return
        msg = data.get("msg")
        if not isinstance(msg, str) or msg == "PONG":
            return
        c = self.client
        if msg.startswith("Not Subscribed successfully"):
            inside = msg[msg.find("[") + 1: msg.find("]")] if "[" in msg and "]" in msg else ""
            for ch in (s.strip() for s in inside.split(",")):
                if ch in self.channels:
                    self.sent.discard(ch)
                    c._refused(self, ch, msg)
            return
        for ch in msg.split(","):
            if ch in self.sent and ch not in self.acked:
                self.acked.add(ch)
                c._acked(self, ch)


class StreamLoop(Exception):
    """`upstream.ws_url` leads back to this sidecar."""


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class StreamClient:
    """MEXC's public stream over as few connections as MEXC allows. `on_frame(channel,
    raw)` receives every binary push; `recorder(channel, recorded_ms, raw)` too, when set.
    Listeners (`add_listener`) are called, synchronously, whenever a channel goes live or
    stops being live (a drop, a refusal), so a consumer can switch its source at once."""

    def __init__(
        self,
        url: str,
        *,
        on_frame: FrameHandler | None = None,
        recorder: Recorder | None = None,
        clock: Callable[[], int] | None = None,
        resolve: Mapping[str, str] | None = None,
        guard: LoopGuard | None = None,
        connect_timeout_s: float = 10.0,
        ack_timeout_s: float = 5.0,
        ping_interval_s: float = 20.0,
        idle_timeout_s: float = 60.0,
        idle_close_s: float = 10.0,
        max_msgs_per_s: float = 50.0,
        backoff_min_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ) -> None:
        self.url = url
        self.resolve = dict(resolve or {})
        self.guard = guard
        self.on_frame: FrameHandler = on_frame or (lambda _c, _f: None)
        self.recorder = recorder
        self._clock = clock
        self.connect_timeout_s = connect_timeout_s
        self.ack_timeout_s = ack_timeout_s
        self.ping_interval_s = ping_interval_s
        self.idle_timeout_s = idle_timeout_s
        self.idle_close_s = idle_close_s
        self.max_msgs_per_s = max_msgs_per_s
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self.conns: list[_Conn] = []
        self.where: dict[str, _Conn] = {}  # channel -> its connection
        self.waiters: dict[str, list[asyncio.Future[bool]]] = {}
        self.refused: dict[str, str] = {}  # channel -> MEXC's refusal text (last one)
        # channels MEXC refused after their subscribers were told they were subscribed:
        # asked for again with backoff (channel -> refusals in a row)
        self.retrying: dict[str, int] = {}
        self.listeners: list[Callable[[], None]] = []
        self._http: aiohttp.ClientSession | None = None
        self._closing: set[asyncio.Future[Any]] = set()
        self._n = 0
        self._closed = False
        # figures for /healthz and /metrics
        self.frames_in = 0
        self.bad_frames = 0
        self.msgs_out = 0
        self.reconnects = 0
        self.connect_errors = 0
        self.last_error: str | None = None
        self.outage_since: float | None = None  # monotonic
        self.outage_started_ms: int | None = None
        self.outages = 0
        self.connect_errors_in_outage = 0

    # ------------------------------------------------------------------ helpers
    def _now_ms(self) -> int:
        return self._clock() if self._clock is not None else time.time_ns() // 1_000_000

    async def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            headers = {"User-Agent": "mexc-paper"}
            if self.guard is not None:
                headers[LOOP_HEADER] = self.guard.mark
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(
                    total=None, connect=self.connect_timeout_s, sock_connect=self.connect_timeout_s
                ),
                # names resolve through upstream.resolve, never to this sidecar (the
                # resolver checks every answer; the connector must not cache names)
                connector=aiohttp.TCPConnector(
                    use_dns_cache=False, resolver=UpstreamResolver(self.resolve, self.guard, ttl_s=300),
                ),
                headers=headers,
            )
        return self._http

    @property
    def loop_message(self) -> str:
        host = URL(self.url).host or self.url
        return (
            f"upstream loop: upstream.ws_url {self.url} leads back to this sidecar ({host} "
            "resolves to it: a hosts file or extra_hosts entry on the sidecar's own machine?); "
            "set upstream.resolve to MEXC's real address or remove the entry (README: Zero-change mode)"
        )

    def _check_literal(self) -> None:
        """A ws_url whose host is an address of this sidecar's listeners is never dialled."""
        guard = self.guard
        if guard is None or not guard.listening:
            return
        url = URL(self.url)
        if url.host and guard.points_here(url.host, url.port or 0):
            raise StreamLoop(self.loop_message)

    def _record(self, channel: str, frame: bytes) -> None:
        """Tee a frame into the recording; a failing recorder (a full disk) is logged
        once and stops recording frames, never the stream."""
        assert self.recorder is not None
        try:
            self.recorder(channel, self._now_ms(), frame)
        except Exception:
            log.exception("recording the market stream failed; its frames are no longer recorded")
            self.recorder = None

    def _backoff(self, failures: int) -> float:
        base = min(self.backoff_max_s, self.backoff_min_s * 2 ** min(failures - 1, 16))
        return base * random.uniform(0.8, 1.2)

    def _notify(self) -> None:
        for cb in list(self.listeners):
            try:
                cb()
            except Exception:  # a listener's bug must not break the stream
                log.exception("market stream listener failed")

    def add_listener(self, cb: Callable[[], None]) -> None:
        self.listeners.append(cb)

    # ------------------------------------------------------------------ subscriptions
    def wants(self, channel: str) -> bool:
        """Whether `channel` is held upstream: subscribed, being subscribed, or kept for
        when the stream is back."""
        return channel in self.where

    async def subscribe(self, channel: str) -> bool:
        """Subscribe `channel` upstream (idempotent). Waits up to `ack_timeout_s` for
        MEXC's answer: False when MEXC refused the channel; True when it acknowledged it,
        and also when no answer came in time (the stream is slow) or an outage is known
        (answered at once, or as soon as the outage starts): the subscription is then
        kept and made as soon as a connection is up."""
        if not channel.startswith(PUBLIC_PREFIX):
            return False
        if self._closed:
            return False
        conn = self.where.get(channel)
        if conn is None:
            conn = self._place(channel)
            conn.channels.add(channel)
            conn.empty_since = None
            self.where[channel] = conn
            self.refused.pop(channel, None)
            conn.ops.append(("SUBSCRIPTION", channel))
            conn.wake.set()
            conn.start()
        if channel in conn.acked and conn.up:
            return True
        if self.outage_since is not None and not conn.live:
            return True  # no answer can come before the stream is back: kept
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.waiters.setdefault(channel, []).append(fut)
        try:
            return await asyncio.wait_for(asyncio.shield(fut), self.ack_timeout_s)
        except TimeoutError:
            return channel in self.where
        finally:
            lst = self.waiters.get(channel)
            if lst is not None:
                with contextlib.suppress(ValueError):
                    lst.remove(fut)
                if not lst:
                    del self.waiters[channel]

    def unsubscribe(self, channel: str) -> None:
        conn = self.where.pop(channel, None)
        if conn is None:
            return
        conn.channels.discard(channel)
        self.retrying.pop(channel, None)
        was_live = channel in conn.acked
        if channel in conn.sent:
            conn.ops.append(("UNSUBSCRIPTION", channel))
            conn.wake.set()
        else:
            conn.acked.discard(channel)
        self._resolve(channel, True)
        if not conn.channels:
            conn.empty_since = time.monotonic()
            # the runner closes the connection once it has been empty for idle_close_s
            asyncio.get_running_loop().call_later(self.idle_close_s + 0.01, self._reap, conn)
            self._outage_over(given_up=True)  # it may have been the one that was down
        if was_live:
            self._notify()

    def _reap(self, conn: _Conn) -> None:
        if conn.channels or conn.ws is None or conn.ws.closed or conn.empty_since is None:
            return
        if time.monotonic() - conn.empty_since >= self.idle_close_s:
            conn.reaped = True
            task = asyncio.ensure_future(conn.ws.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def _place(self, channel: str) -> _Conn:
        for conn in self.conns:
            if len(conn.channels) < MAX_SUBSCRIPTIONS:
                return conn
        self._n += 1
        conn = _Conn(self, self._n)
        self.conns.append(conn)
        return conn

    def _resolve(self, channel: str, ok: bool) -> None:
        for fut in self.waiters.get(channel, ()):
            if not fut.done():
                fut.set_result(ok)

    # ------------------------------------------------------------------ events from connections
    def _acked(self, conn: _Conn, channel: str) -> None:
        refusals = self.retrying.pop(channel, None)
        if refusals is not None:
            self.refused.pop(channel, None)
            log.info("upstream accepted the channel %s again after %d refusals", channel, refusals)
        self._resolve(channel, True)
        self._notify()

    def _refused(self, conn: _Conn, channel: str, text: str) -> None:
        text = text.strip()
        self.refused[channel] = text
        conn.acked.discard(channel)
        if not any(not f.done() for f in self.waiters.get(channel, ())):
            # nobody waits for this answer: the channel's subscribers were told it was
            # subscribed (a resubscription after a reconnect, or one kept during an
            # outage). It is kept and asked for again with backoff.
            self._retry_later(conn, channel, text)
            self._notify()
            return
        log.warning("upstream refused the channel %s: %s", channel, text)
        conn.channels.discard(channel)
        self.retrying.pop(channel, None)
        if self.where.get(channel) is conn:
            del self.where[channel]
        self._resolve(channel, False)
        self._notify()

    def _retry_later(self, conn: _Conn, channel: str, text: str) -> None:
        n = self.retrying.get(channel, 0) + 1
        self.retrying[channel] = n
        delay = self._backoff(n)
        if n == 1:
            log.warning(
                "upstream refused the channel %s on resubscribing (%s); its subscribers stay "
                "subscribed, asking again with backoff", channel, text,
            )
        else:
            log.debug("upstream refused the channel %s again (%d in a row); next try in %.1f s",
                      channel, n, delay)
        asyncio.get_running_loop().call_later(delay, self._retry, conn, channel)

    def _retry(self, conn: _Conn, channel: str) -> None:
        if self._closed or self.where.get(channel) is not conn or channel in conn.sent:
            return  # unsubscribed meanwhile, or already sent again (a new socket)
        if conn.up:
            conn.ops.append(("SUBSCRIPTION", channel))
            conn.wake.set()
        # else: the next socket subscribes everything the connection carries

    def _outage_over(self, given_up: bool = False) -> None:
        """End the outage once every connection that carries subscriptions is up (MEXC
        answered on it); `given_up`: a connection that was down is no longer wanted."""
        if self.outage_since is None:
            return
        wanted = [c for c in self.conns if c.channels]
        if not all(c.live for c in wanted):
            return
        took = time.monotonic() - self.outage_since
        if not given_up:
            log.info(
                "market stream %s is back after %.1f s (%d reconnect attempts)",
                self.url, took, self.connect_errors_in_outage,
            )
        else:
            log.info("market stream %s: outage over after %.1f s (what was down is no longer "
                     "subscribed)", self.url, took)
        self.outage_since = None
        self.outage_started_ms = None
        self.last_error = None

    def _connection_up(self, conn: _Conn) -> None:
        conn.failures = 0
        self._outage_over()

    def _connection_down(self, conn: _Conn, reason: str) -> None:
        # whoever waits for an answer on this connection gets one now: kept, made when
        # the stream is back (subscribe() says so at once during an outage)
        for ch in conn.channels:
            self._resolve(ch, True)
        if not conn.channels:  # unsubscribed meanwhile: nothing is missing
            log.debug("market stream connection %d ended unused: %s", conn.index, reason)
            return
        self.last_error = reason
        if self.outage_since is None:
            self.outage_since = time.monotonic()
            self.outage_started_ms = self._now_ms()
            self.outages += 1
            self.connect_errors_in_outage = 0
            log.warning(
                "market stream %s unavailable (%s); reconnecting with backoff, "
                "REST polling meanwhile", self.url, reason,
            )
        else:
            self.connect_errors_in_outage += 1
            log.debug("market stream connection %d still down: %s", conn.index, reason)
        self._notify()

    def _connection_closed(self, conn: _Conn) -> None:
        with contextlib.suppress(ValueError):
            self.conns.remove(conn)
        self._outage_over(given_up=True)
        self._notify()

    # ------------------------------------------------------------------ state
    def is_live(self, channel: str) -> bool:
        conn = self.where.get(channel)
        return conn is not None and channel in conn.acked and conn.up

    def generation(self, channel: str) -> int | None:
        """Changes whenever `channel` is subscribed on a new socket (None: not live)."""
        conn = self.where.get(channel)
        if conn is None or channel not in conn.acked or not conn.up:
            return None
        return conn.index * 1_000_000 + conn.generation

    @property
    def state(self) -> str:
        wanted = [c for c in self.conns if c.channels]
        if not wanted and not any(c.up for c in self.conns):
            return "idle"
        if self.outage_since is not None:
            return "down"
        if all(c.live for c in wanted):
            return "up"
        return "connecting"

    def status(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "state": self.state,
            "connections": sum(1 for c in self.conns if c.up),
            "subscriptions": sum(len(c.acked) for c in self.conns),
            "channels_wanted": len(self.where),
            "frames_in": self.frames_in,
            "messages_out": self.msgs_out,
            "reconnects": self.reconnects,
            "connect_errors": self.connect_errors,
            "outages": self.outages,
            "down_since_ms": self.outage_started_ms,
            "last_error": self.last_error,
            "refused_channels": len(self.retrying),
        }

    async def close(self) -> None:
        self._closed = True
        for conn in list(self.conns):
            if conn.task is not None:
                conn.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await conn.task
            if conn.ws is not None and not conn.ws.closed:
                with contextlib.suppress(Exception):
                    await conn.ws.close()
        for ch in list(self.waiters):
            self._resolve(ch, False)
        if self._http is not None:
            await self._http.close()
            self._http = None
