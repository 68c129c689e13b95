"""Live mode: `/ws?listenKey=K` with MEXC's own listenKey (live mode forwards
`userDataStream` to MEXC) is relayed to MEXC's stream, a transparent proxy in both
directions (proxy/ws/livepass.py), against the fake MEXC stream (tests/fake_stream.py).
Never in paper mode: there a key the sidecar did not issue is refused and no listenKey
goes upstream."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import make_settings
from fake_stream import FakeMexcStream

from proxy import keys
from proxy.app import create_app
from proxy.config import LiveSettings
from proxy.loopguard import LOOP_HEADER

MEXC_KEY = "a1b2c3d4" * 8  # a listenKey MEXC issued (the sidecar never saw it)
ORDERS = "spot@private.orders.v3.api.pb"
WAIT_S = 10


async def sidecar(
    aiohttp_server: Any, aiohttp_client: Any, tmp_path: Path, live: bool
) -> tuple[Any, FakeMexcStream]:
    fake_ws = FakeMexcStream()
    server = await aiohttp_server(fake_ws.app())
    extra: dict[str, Any] = {"live": LiveSettings(enabled=True), "mode": "live"} if live else {}
    ws_url = str(server.make_url("/ws")).replace("http://", "ws://")
    settings = make_settings(tmp_path, ws_url=ws_url, **extra)
    return await aiohttp_client(create_app(settings)), fake_ws


@pytest.mark.live_upstream
async def test_live_mode_relays_mexcs_listen_key_to_mexcs_stream_both_ways(
    aiohttp_server: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    client, fake_ws = await sidecar(aiohttp_server, aiohttp_client, tmp_path, live=True)
    ws = await client.ws_connect(f"/ws?listenKey={MEXC_KEY}")
    await fake_ws.wait_for(lambda: len(fake_ws.conns) == 1, WAIT_S)
    assert fake_ws.urls == [f"/ws?listenKey={MEXC_KEY}"]
    mark = client.app[keys.USER_STREAMS].live.guard.mark
    assert fake_ws.headers[0][LOOP_HEADER] == mark  # loop protection, as every upstream call
    (conn,) = fake_ws.conns.values()
    # the bot's control messages reach MEXC as they are, MEXC's answers come back as they are
    sub = json.dumps({"method": "SUBSCRIPTION", "params": [ORDERS], "id": 9})
    await ws.send_str(sub)
    answer = await ws.receive(timeout=WAIT_S)
    assert answer.type is aiohttp.WSMsgType.TEXT and json.loads(answer.data)["id"] == 9
    assert fake_ws.received == [(conn.id, sub)]
    await ws.send_str('{"method":"PING"}')
    assert json.loads((await ws.receive(timeout=WAIT_S)).data)["msg"] == "PONG"
    # counted on /metrics apart from the sidecar's own streams
    metrics = await (await client.get("/metrics")).text()
    assert 'mexc_paper_ws_connections{kind="live"} 1.0' in metrics
    assert 'mexc_paper_ws_connections{kind="private"} 0.0' in metrics
    # MEXC's pushes, byte for byte
    frame = b"\n\x1dspot@private.orders.v3.api.pb\xa2\x13\x02\n\x00"
    await conn.ws.send_bytes(frame)
    msg = await ws.receive(timeout=WAIT_S)
    assert (msg.type, msg.data) == (aiohttp.WSMsgType.BINARY, frame)
    # MEXC closes: so does the bot's connection
    await conn.ws.close(code=1000, message=b"bye")
    msg = await ws.receive(timeout=WAIT_S)
    assert msg.type is aiohttp.WSMsgType.CLOSE and ws.close_code == 1000
    metrics = await (await client.get("/metrics")).text()
    assert 'mexc_paper_ws_connections{kind="live"} 0.0' in metrics


@pytest.mark.live_upstream
async def test_a_switch_to_paper_closes_the_relayed_streams_and_relays_no_more(
    aiohttp_server: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    client, fake_ws = await sidecar(aiohttp_server, aiohttp_client, tmp_path, live=True)
    ws = await client.ws_connect(f"/ws?listenKey={MEXC_KEY}")
    await fake_ws.wait_for(lambda: len(fake_ws.conns) == 1, WAIT_S)
    await client.app[keys.SERVICE].switch_mode("paper", source="test")
    msg = await ws.receive(timeout=WAIT_S)
    assert (msg.type, ws.close_code, msg.extra) == (aiohttp.WSMsgType.CLOSE, 1000, "switched to paper mode")
    await fake_ws.wait_for(lambda: not fake_ws.conns, WAIT_S)  # its upstream side too
    again = await client.ws_connect(f"/ws?listenKey={MEXC_KEY}")
    msg = await again.receive(timeout=WAIT_S)
    assert (msg.type, msg.data) == (aiohttp.WSMsgType.TEXT, "Invalid listen key")
    assert fake_ws.connections_made == 1


async def test_paper_mode_never_sends_a_listen_key_upstream(
    aiohttp_server: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    client, fake_ws = await sidecar(aiohttp_server, aiohttp_client, tmp_path, live=False)
    ws = await client.ws_connect(f"/ws?listenKey={MEXC_KEY}")
    msg = await ws.receive(timeout=WAIT_S)
    assert (msg.type, msg.data) == (aiohttp.WSMsgType.TEXT, "Invalid listen key")
    assert (await ws.receive(timeout=WAIT_S)).type is aiohttp.WSMsgType.CLOSE
    assert fake_ws.connections_made == 0 and fake_ws.urls == []
