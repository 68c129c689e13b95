"""listenKeys over REST (/api/v3/userDataStream, reference 7.19): random, valid 60 minutes,
extended by PUT, ended by DELETE, listed by GET, at most 60 per account, MEXC's 730708 for
a key PUT/DELETE does not know, and kept across a restart."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from conftest import KEY2, NOW, SECRET2, make_settings
from ws_support import Bot, Stream

from proxy import keys
from proxy.app import create_app
from proxy.clock import FixedClock

MIN = 60_000
PATH = "/api/v3/userDataStream"
UNKNOWN = {"code": 730708, "msg": "listen key information error"}


def url_of(server: Any) -> str:
    return str(server.make_url("")).rstrip("/")


async def start(aiohttp_client: Any, tmp_path: Path, server: Any, clock: FixedClock) -> Bot:
    app = create_app(make_settings(tmp_path, url_of(server)), clock=clock)
    return Bot(await aiohttp_client(app), clock)


async def test_post_answers_a_new_random_64_hex_key_each_time_and_get_lists_them(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock
) -> None:
    bot = await start(aiohttp_client, tmp_path, fake_server, clock)
    first, second = await bot.listen_key(), await bot.listen_key()
    assert re.fullmatch(r"[0-9a-f]{64}", first) and re.fullmatch(r"[0-9a-f]{64}", second)
    assert first != second
    # not the old derivable sha256(constant + account id)
    assert first != hashlib.sha256(b"mexc-paper-listen-key:1").hexdigest()
    assert await bot.call("GET", PATH) == {"listenKey": [first, second]}
    # the other account sees none of them
    other = Bot(bot.client, clock, KEY2, SECRET2)
    assert await other.call("GET", PATH) == {"listenKey": []}


async def test_put_keeps_a_key_60_minutes_more_and_an_expired_key_is_unknown(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock
) -> None:
    bot = await start(aiohttp_client, tmp_path, fake_server, clock)
    key = await bot.listen_key()
    clock.advance(59 * MIN)
    assert await bot.call("PUT", PATH, {"listenKey": key}) == {"listenKey": key}
    clock.advance(59 * MIN)  # 118 minutes after creation, 59 after the keep-alive
    assert await bot.call("GET", PATH) == {"listenKey": [key]}
    clock.advance(1 * MIN)  # 60 minutes after the keep-alive: gone
    assert await bot.call("GET", PATH) == {"listenKey": []}
    assert await bot.request("PUT", PATH, {"listenKey": key}) == (400, UNKNOWN)
    assert await bot.request("DELETE", PATH, {"listenKey": key}) == (400, UNKNOWN)


async def test_delete_ends_a_key_and_unknown_or_foreign_keys_are_730708(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock
) -> None:
    bot = await start(aiohttp_client, tmp_path, fake_server, clock)
    key, kept = await bot.listen_key(), await bot.listen_key()
    other = Bot(bot.client, clock, KEY2, SECRET2)
    # another account's key is unknown to this one, for PUT and DELETE alike
    assert await other.request("PUT", PATH, {"listenKey": key}) == (400, UNKNOWN)
    assert await other.request("DELETE", PATH, {"listenKey": key}) == (400, UNKNOWN)
    assert await bot.request("PUT", PATH, {"listenKey": "0" * 64}) == (400, UNKNOWN)
    status, body = await bot.request("PUT", PATH)
    assert (status, body["code"]) == (400, 700004) and "'listenKey'" in body["msg"]

    assert await bot.call("DELETE", PATH, {"listenKey": key}) == {"listenKey": key}
    assert await bot.call("GET", PATH) == {"listenKey": [kept]}
    assert await bot.request("DELETE", PATH, {"listenKey": key}) == (400, UNKNOWN)
    assert await bot.request("PUT", PATH, {"listenKey": key}) == (400, UNKNOWN)


async def test_at_most_60_valid_keys_per_account(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock
) -> None:
    bot = await start(aiohttp_client, tmp_path, fake_server, clock)
    made = [await bot.listen_key() for _ in range(60)]
    assert len(set(made)) == 60
    status, body = await bot.request("POST", PATH)
    limit = "The number of listen keys has reached the limit of 60"
    assert (status, body) == (400, {"code": 400, "msg": limit})
    # the other account has its own 60
    assert len((await Bot(bot.client, clock, KEY2, SECRET2).call("POST", PATH))["listenKey"]) == 64
    # one ended (DELETE) or expired makes room
    await bot.call("DELETE", PATH, {"listenKey": made[0]})
    assert len(await bot.listen_key()) == 64
    clock.advance(61 * MIN)
    assert len(await bot.listen_key()) == 64
    assert len((await bot.call("GET", PATH))["listenKey"]) == 1


async def test_keys_survive_a_restart_and_an_expired_one_does_not(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, clock: FixedClock
) -> None:
    bot = await start(aiohttp_client, tmp_path, fake_server, clock)
    key = await bot.listen_key()
    stale = await bot.listen_key()
    clock.advance(30 * MIN)
    await bot.call("PUT", PATH, {"listenKey": key})  # the keep-alive is on disk too
    await bot.client.close()

    clock.advance(40 * MIN)  # 70 minutes after creation: only the one kept alive is valid
    bot = await start(aiohttp_client, tmp_path, fake_server, clock)
    assert await bot.call("GET", PATH) == {"listenKey": [key]}
    assert await bot.request("PUT", PATH, {"listenKey": stale}) == (400, UNKNOWN)
    stream = await Stream.open(bot.client, key)
    assert await stream.subscribe(["spot@private.orders.v3.api.pb"]) == {
        "id": 0, "code": 0, "msg": "spot@private.orders.v3.api.pb"}
    store = bot.client.app[keys.STORE]
    assert [row[0] for row in await store.listen_keys()] == [key]  # the expired one was deleted


async def test_two_fresh_sidecars_hand_out_different_keys(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path
) -> None:
    keys_seen = []
    for n in range(2):
        clock = FixedClock(NOW)
        bot = await start(aiohttp_client, tmp_path / str(n), fake_server, clock)
        keys_seen.append(await bot.listen_key())  # the same account id (1), the same time
    assert keys_seen[0] != keys_seen[1]
