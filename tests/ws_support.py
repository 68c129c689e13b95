"""Helpers for the /ws tests: a signed REST bot, a raw WebSocket client that decodes MEXC's
frames with ccxt's bundled MEXC classes (an independent decoder), a scriptable
PublicChannels."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient
from ccxt.protobuf.mexc import PushDataV3ApiWrapper_pb2 as mexc_pb
from conftest import KEY, SECRET
from google.protobuf.json_format import MessageToDict
from mexc_client import ccxt_query

from proxy.clock import FixedClock
from proxy.ws.channels import FrameSink

ORDERS = "spot@private.orders.v3.api.pb"
DEALS = "spot@private.deals.v3.api.pb"
ACCOUNT = "spot@private.account.v3.api.pb"
PRIVATE = [ACCOUNT, DEALS, ORDERS]
WAIT_S = 10  # an upper bound for an event that must come, never a pacing delay


def decode(frame: bytes) -> dict[str, Any]:
    """As ccxt decodes a binary frame (MessageToDict over MEXC's generated class)."""
    msg = mexc_pb.PushDataV3ApiWrapper()
    msg.ParseFromString(frame)
    return MessageToDict(msg)


class Bot:
    """Signed REST calls the way ccxt signs them."""

    def __init__(self, client: TestClient, clock: FixedClock, key: str = KEY, secret: str = SECRET) -> None:
        self.client, self.clock, self.key, self.secret = client, clock, key, secret

    async def request(self, method: str, path: str, params: dict[str, Any] | None = None) -> tuple[int, Any]:
        q = ccxt_query(params or {}, self.secret, ts=self.clock.now_ms())
        resp = await self.client.request(method, f"{path}?{q}", headers={"X-MEXC-APIKEY": self.key})
        return resp.status, await resp.json()

    async def call(self, method: str, path: str, params: dict[str, Any] | None = None) -> Any:
        status, data = await self.request(method, path, params)
        assert status == 200, data
        return data

    async def listen_key(self) -> str:
        return (await self.call("POST", "/api/v3/userDataStream"))["listenKey"]


class Stream:
    """A raw aiohttp WebSocket client of /ws: control messages out, text answers and
    decoded binary pushes in, each in the order they arrived."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, client: TestClient, key: str | None = None) -> Stream:
        path = "/ws" if key is None else f"/ws?listenKey={key}"
        return cls(await client.ws_connect(path, autoping=True))

    async def send(self, msg: dict[str, Any] | str) -> None:
        if isinstance(msg, str):
            await self.ws.send_str(msg)
        else:
            await self.ws.send_json(msg)

    async def receive(self) -> aiohttp.WSMessage:
        return await asyncio.wait_for(self.ws.receive(), WAIT_S)

    async def text(self) -> Any:
        """The next message, which must be a JSON text answer."""
        msg = await self.receive()
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        return json.loads(msg.data)

    async def subscribe(self, channels: Iterable[str], **extra: Any) -> Any:
        await self.send({"method": "SUBSCRIPTION", "params": list(channels), **extra})
        return await self.text()

    async def push(self) -> dict[str, Any]:
        msg = await self.receive()
        assert msg.type is aiohttp.WSMsgType.BINARY, msg
        return decode(msg.data)

    async def pushes(self, n: int) -> list[dict[str, Any]]:
        return [await self.push() for _ in range(n)]

    async def closed(self) -> tuple[int | None, str]:
        """Wait for the server's close frame: (code, reason) as the server sent them."""
        while True:
            msg = await self.receive()
            if msg.type is aiohttp.WSMsgType.CLOSE:
                return int(msg.data), msg.extra or ""
            if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):
                return None, f"no close frame: {msg}"

    async def close(self) -> None:
        await self.ws.close()


class FakePublicChannels:
    """A PublicChannels (proxy/ws/channels.py) the test drives: `emit(channel, frame)`
    hands a frame to every sink of the channel, byte for byte. A channel in `gates` is
    answered only once its gate is set (an upstream that has not answered yet); a
    subscription withdrawn while it waits is listed in `withdrawn`."""

    def __init__(
        self, public: set[str] | None = None, refuse: set[str] | None = None,
        gates: dict[str, asyncio.Event] | None = None,
    ) -> None:
        self.public = public  # None: every channel that is not private is public
        self.refuse = refuse or set()
        self.gates = gates or {}
        self.sinks: dict[str, list[FrameSink]] = {}
        self.calls: list[tuple[str, str]] = []
        self.withdrawn: list[str] = []

    def is_public(self, channel: str) -> bool:
        if self.public is None:
            return "@private." not in channel
        return channel in self.public

    async def subscribe(self, channel: str, sink: FrameSink) -> bool:
        self.calls.append(("subscribe", channel))
        gate = self.gates.get(channel)
        if gate is not None:
            try:
                await gate.wait()
            except asyncio.CancelledError:
                self.withdrawn.append(channel)
                raise
        if channel in self.refuse:
            return False
        self.sinks.setdefault(channel, []).append(sink)
        return True

    def unsubscribe(self, channel: str, sink: FrameSink) -> None:
        self.calls.append(("unsubscribe", channel))
        sinks = self.sinks.get(channel, [])
        if sink in sinks:
            sinks.remove(sink)

    def emit(self, channel: str, frame: bytes) -> int:
        sinks = list(self.sinks.get(channel, ()))
        for sink in sinks:
            sink(frame)
        return len(sinks)
