"""Bad input, property-based: random parameters and raw bodies for every /api/v3 endpoint.

Whatever arrives (huge numbers, exponent notation, NaN, Infinity, negative and zero
amounts, extra decimals, unicode, empty values, repeated keys, very long strings, invalid
percent-encoding, bytes that are not UTF-8, JSON bodies with nested junk, bodies over the
size limit), the answer is never a 500 and never a traceback: it is JSON, and every
error is MEXC-shaped `{"code": int, "msg": str}`. A rejected request changes nothing:
balances, open orders and the order/fill tables are as before, and the engine invariants
hold after every example.

The apps run with `reraise_unexpected=True`, so an unexpected exception fails loudly
instead of becoming the generic MEXC 500 (which one test checks with it off).

Every signed route, every raw-body route and every public path class is its own
hypothesis run (parametrised), so each one is fuzzed in every run: hypothesis's
`sampled_from` over 22 routes leaves some route without a single example in a large share
of 250-example runs. After each run the test asserts that its route or class received
examples. Examples per fuzz test: $MEXC_PAPER_FUZZ_EXAMPLES (default 250 in CI), spread
evenly over its routes or classes; e.g. 5000 for a long run:
`MEXC_PAPER_FUZZ_EXAMPLES=5000 pytest tests/reliability/test_bad_input.py -m slow`.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import math
import os
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient
from fake_upstream import FakeMexc
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from relsupport import KEY, KEY2, NOW, SECRET, assert_mexc_answer, assert_mexc_error, record_figures
from yarl import URL

from proxy import api, keys
from proxy.clock import FixedClock
from proxy.engine.state import check_invariants
from proxy.routes import MEXC_ROUTES

LINE_LIMIT = 30_000  # aiohttp refuses request lines over 32 KiB before any app code runs
EXAMPLES = int(os.environ.get("MEXC_PAPER_FUZZ_EXAMPLES", "250"))


def fuzz(items: int) -> settings:
    """EXAMPLES per fuzz test, spread over its `items` parametrised routes or classes."""
    return settings(
        max_examples=max(1, math.ceil(EXAMPLES / items)),
        deadline=None,
        database=None,  # no .hypothesis/ in the working tree; failures print their example
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


ORDER = ["symbol", "side", "type", "quantity", "quoteOrderQty", "price", "newClientOrderId"]
PARAMS: dict[str, list[str]] = {
    "/api/v3/order": [*ORDER, "orderId", "origClientOrderId"],
    "/api/v3/order/test": ORDER,
    "/api/v3/batchOrders": ["batchOrders"],
    "/api/v3/openOrders": ["symbol"],
    "/api/v3/order/all": ["symbol"],
    "/api/v3/allOrders": ["symbol", "startTime", "endTime", "limit", "states"],
    "/api/v3/myTrades": ["symbol", "orderId", "startTime", "endTime", "limit"],
    "/api/v3/tradeFee": ["symbol"],
    "/api/v3/mxDeduct/enable": ["mxDeductEnable"],
    "/api/v3/userDataStream": ["listenKey"],
}
COMMON = ["recvWindow", "signature"]
_BUY = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "80000"}
VALID: dict[str, dict[str, str]] = {
    "/api/v3/order": {**_BUY, "orderId": "C02__700000000000000001001"},
    "/api/v3/order/test": _BUY,
    "/api/v3/batchOrders": {"batchOrders": json.dumps([_BUY, {**_BUY, "side": "SELL", "price": "99000"}])},
    "/api/v3/openOrders": {"symbol": "BTCUSDT"},
    "/api/v3/allOrders": {"symbol": "BTCUSDT", "startTime": str(NOW - 3_600_000), "endTime": str(NOW),
                          "limit": "10"},
    "/api/v3/myTrades": {"symbol": "BTCUSDT", "limit": "10", "orderId": "C02__700000000000000001001"},
    "/api/v3/tradeFee": {"symbol": "BTCUSDT"},
    "/api/v3/mxDeduct/enable": {"mxDeductEnable": "true"},
    "/api/v3/userDataStream": {"listenKey": "abc"},
}
SIGNED_ROUTES = sorted(
    {(r.method, r.path) for r in MEXC_ROUTES
     if r.path.startswith("/api/v3/") and r.handler.__module__ == "proxy.api"
     and r.handler.__name__ not in ("passthrough", "server_time", "fallback")}
)
ODD_PATHS = ["/api/v3/", "/api/v3/capital/withdraw", "/api/v3/%zz", "/api/v3/%ff", "/api/v3/order/",
             "/api/v3//order", "/api/v3/../admin/api/mode", "/api/v3/" + "x" * 3000]
# the kinds of path the fallback and the public routes tell apart (proxy/api.py)
PATH_CLASSES: dict[str, Any] = {
    "public market data (passed through)": st.sampled_from(api.PUBLIC_PATHS),
    "answered by the sidecar": st.sampled_from(sorted(api.LOCAL_PATHS)),
    "signed paths, unsigned or another method": st.sampled_from(sorted(api.SIGNED_PATHS)),
    "odd paths": st.sampled_from(ODD_PATHS),
    "random paths under /api/v3/": st.text(
        alphabet=st.characters(codec="ascii", exclude_characters="?#%\x00"), max_size=30
    ).map(lambda s: "/api/v3/" + quote(s, safe="/")),
}

NASTY = [
    "", " ", "0", "-0", "-1", "0.0", "00", "1e3", "1E3", "1e-7", "1E+2", "1e999999999", "NaN",
    "nan", "-NaN", "sNaN", "Infinity", "-Infinity", "inf", "+1", " 1", "1 ", "1\n", "0x10",
    "1_000", "1,5", "1.2.3", ".", ".5", "5.", "١٢٣", "\uff11\uff12", "9" * 40, "9" * 41, "9" * 63,
    "0." + "0" * 37 + "1", "1.123456789012345678901234567890", "99999999999999999999",
    "9223372036854775807", "9223372036854775808", "18446744073709551616", "true", "null",
    "[]", "{}", "[1]", '{"a":1}', "[[[[[[[[[[", "🙂", "ß", "\u202e", "\x00", "\x7f", "é",
    "x" * 2000, "x" * 12000, "BTCUSDT", "btcusdt", "BTC/USDT", "METALUSDT", "NOSUCHUSDT",
    "BUY", "SELL", "buy", "LIMIT", "MARKET", "IMMEDIATE_OR_CANCEL", "FILL_OR_KILL",
    "LIMIT_MAKER", "STOP_LOSS", "0.001", "80000", "87900", "87903.98", "1", "0.00000001",
    "0.0000001", "100000000", "C02__700000000000000001001", "3", "4", "1000", "1001",
]
# already percent-encoded fragments, some invalid
RAW = ["%", "%z", "%zz", "%E0%A4%A", "%ff", "%FF%FE", "%ED%A0%80", "%00", "%C0%AF", "+", "%2B",
       "&&", "=", "==", "a=b=c", "%25", "%u0041", "%0A", "%F0%9F%99%82"]

values = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=30),
    st.from_regex(r"-?[0-9]{0,25}(\.[0-9]{0,25})?([eE][-+]?[0-9]{1,10})?", fullmatch=True),
    st.integers().map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.floats().map(repr),
)


def assert_nothing_signed(seen: list[Any]) -> None:
    """Paper mode: the upstream never gets a signature or an API key (any spelling)."""
    for s in seen:
        assert "signature=" not in s.query.lower(), s
        assert not any(k.lower() == "x-mexc-apikey" for k in s.headers), s
        assert KEY not in s.query and KEY2 not in s.query, s


def sign(query: bytes, body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), query + body, hashlib.sha256).hexdigest()


def encode_pairs(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)


def json_text(pairs: list[tuple[str, Any]]) -> str:
    """A JSON object, keeping repeated keys (json.dumps of a dict would drop them)."""
    return "{" + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in pairs) + "}"


json_junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
    | st.sampled_from(NASTY),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@st.composite
def api_requests(draw: Any, route: tuple[str, str]) -> dict[str, Any]:
    method, path = route
    names = PARAMS.get(path, []) + COMMON
    name = st.one_of(st.sampled_from(names), st.sampled_from(names), st.text(max_size=12))
    pairs = draw(st.lists(st.tuples(name, values), max_size=8))
    if draw(st.booleans()):  # a valid request with a few values made nasty: reaches deeper
        template = list(VALID.get(path, {}).items())
        for i in draw(st.lists(st.integers(0, max(0, len(template) - 1)), max_size=3)):
            if template:
                template[i] = (template[i][0], draw(values))
        pairs = template + pairs[: draw(st.integers(0, 2))]
    if pairs and draw(st.booleans()):  # a repeated key with another value
        k, _ = draw(st.sampled_from(pairs))
        pairs.insert(draw(st.integers(0, len(pairs))), (k, draw(values)))
    where = draw(st.sampled_from(["query", "query", "form body", "json body", "split"]))
    auth = draw(st.sampled_from(["valid", "valid", "valid", "valid", "bad signature",
                                 "no signature", "no key", "unknown key", "other account"]))
    # mostly a fresh timestamp, so the parsers are reached (hypothesis favours 0: the
    # usual case is 0 here); sometimes none, sometimes a nasty one first (the first counts)
    if draw(st.integers(0, 9)) != 9:
        pairs.append(("timestamp", str(NOW)))
    if draw(st.integers(0, 9)) == 9:
        pairs.insert(0, ("timestamp", draw(values)))
    raw = draw(st.lists(st.sampled_from(RAW), max_size=2))
    ctype = draw(st.sampled_from([None, "application/json", "application/x-www-form-urlencoded",
                                  "text/plain", "multipart/form-data; boundary=x"]))
    json_extra = draw(st.lists(st.tuples(st.text(max_size=8), json_junk), max_size=3))
    return {"method": method, "path": path, "pairs": pairs, "where": where, "auth": auth,
            "raw": raw, "ctype": ctype, "json_extra": json_extra}


def build(req: dict[str, Any]) -> tuple[str, str, bytes, dict[str, str]]:
    pairs: list[tuple[str, str]] = req["pairs"]
    raw_tail = "&".join(req["raw"])
    query, body = "", ""
    if req["where"] == "query":
        query = "&".join(x for x in (encode_pairs(pairs), raw_tail) if x)
    elif req["where"] == "form body":
        body = "&".join(x for x in (encode_pairs(pairs), raw_tail) if x)
    elif req["where"] == "json body":
        body = json_text([*pairs, *req["json_extra"]])
    else:
        half = len(pairs) // 2
        query, body = encode_pairs(pairs[:half]), encode_pairs(pairs[half:])
    qb, bb = query.encode(), body.encode()
    headers: dict[str, str] = {}
    auth = req["auth"]
    if auth != "no key":
        headers["X-MEXC-APIKEY"] = {"unknown key": "mx0vnotakey000000", "other account": KEY2}.get(auth, KEY)
    if auth in ("valid", "unknown key", "other account"):
        sig = sign(qb, bb)
    elif auth == "bad signature":
        sig = sign(qb, bb, "not-the-secret")
    else:
        sig = ""
    if sig:
        query = f"{query}&signature={sig}" if query else f"signature={sig}"
    if req["ctype"]:
        headers["Content-Type"] = req["ctype"]
    return req["method"], f"{req['path']}?{query}" if query else req["path"], bb, headers


class World:
    """What a rejected request must not change: the ledger, the open orders, the tables."""

    def __init__(self, client: TestClient) -> None:
        self.app = client.server.app
        self.service = self.app[keys.SERVICE]
        self.store = self.app[keys.STORE]

    async def snapshot(self) -> Any:
        check_invariants(self.service.state)
        await self.store.flush()
        accounts = {
            a: (tuple(self.service.balances(a)), tuple(sorted(self.service.account(a).open_orders)))
            for a in self.service.account_ids()
        }
        return accounts, await self.store.count("orders"), await self.store.count("fills")


async def send(client: TestClient, method: str, target: str, body: bytes,
               headers: dict[str, str]) -> tuple[int, str, bytes]:
    url = client.make_url("").join(URL(target, encoded=True))
    async with client.session.request(method, url, data=body or None, headers=headers) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


# test -> route or path class -> answers by code ("200" or the MEXC code), this session
EXAMPLES_SENT: dict[str, dict[str, Counter[str]]] = {}


def count(test: str, item: str, status: int, body: bytes) -> None:
    """One example that reached the sidecar, and what it was answered."""
    code = "200" if status == 200 else str(json.loads(body).get("code"))
    EXAMPLES_SENT.setdefault(test, {}).setdefault(item, Counter())[code] += 1


def bad_input_figures() -> dict[str, Any]:
    out: dict[str, Any] = {"examples_per_test": EXAMPLES}
    for test, items in EXAMPLES_SENT.items():
        by_code: Counter[str] = Counter()
        for codes in items.values():
            by_code.update(codes)
        out[test] = {"examples": sum(by_code.values()), "by_code": dict(by_code),
                     "items": len(items), "examples_per_item": {k: sum(v.values()) for k, v in items.items()}}
    out["total_examples"] = sum(out[t]["examples"] for t in EXAMPLES_SENT)
    return out


def assert_every_item_fuzzed(test: str, item_arg: str) -> Callable[[Any], Any]:
    """Wraps a parametrised hypothesis test: after all of its examples have run, the
    route or path class of this item must have received at least one example (one that
    reached the sidecar and was counted), then the figures are updated."""

    def decorate(hypothesis_test: Any) -> Any:
        @functools.wraps(hypothesis_test)  # keeps .hypothesis: pytest-asyncio runs inner_test
        def run(**kwargs: Any) -> None:
            item = kwargs[item_arg]
            label = item if isinstance(item, str) else " ".join(item)
            before = sum(EXAMPLES_SENT.get(test, {}).get(label, Counter()).values())
            hypothesis_test(**kwargs)
            sent = sum(EXAMPLES_SENT.get(test, {}).get(label, Counter()).values()) - before
            assert sent >= 1, f"{test}: {label} received no example"
            record_figures("bad_input", **bad_input_figures())

        return run

    return decorate


@pytest.mark.slow
@pytest.mark.parametrize("route", SIGNED_ROUTES, ids=":".join)
@assert_every_item_fuzzed("signed", "route")
@fuzz(len(SIGNED_ROUTES))
@given(data=st.data())
async def test_signed_endpoints_never_500_and_rejections_change_nothing(
    client: TestClient, fake: FakeMexc, clock: FixedClock, route: tuple[str, str], data: Any
) -> None:
    req = data.draw(api_requests(route), label="request")
    world = World(client)
    before = await world.snapshot()
    seen = len(fake.seen)
    method, target, body, headers = build(req)
    assume(len(target) < LINE_LIMIT)  # longer lines never reach the app (see the test below)
    status, ctype, answer = await send(client, method, target, body, headers)
    assert_mexc_answer(status, ctype, answer)
    after = await world.snapshot()
    if status != 200:
        assert after == before, (status, answer)
    assert_nothing_signed(fake.seen[seen:])
    count("signed", " ".join(route), status, answer)


@pytest.mark.slow
@pytest.mark.parametrize("route", SIGNED_ROUTES, ids=":".join)
@assert_every_item_fuzzed("raw bodies", "route")
@fuzz(len(SIGNED_ROUTES))
@given(body=st.one_of(
    st.binary(max_size=3000),
    json_junk.map(lambda j: json.dumps(j).encode()),
    st.integers(1, 20000).map(lambda n: b'{"symbol":' + b"[" * n + b"]" * n + b"}"),
    st.integers(1, 20000).map(lambda n: b'{"a":' * n),
    st.sampled_from([b"{", b"{}", b"[]", b"null", b'{"symbol":"\\ud800"}', b'{"quantity":1e999999999}',
                     b'{"quantity":-1e-999999999}', b'{"x":' + b"1" * 5000 + b"}",
                     b"symbol=BTCUSDT&symbol=ETHUSDT", b"\xff\xfe\x00", b"a=%ff&b=\xff",
                     b'{"batchOrders":"[{\\"newClientOrderId\\":\\"\\\\ud800\\"}]"}']),
), valid_signature=st.booleans(),
   ctype=st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain"]))
async def test_raw_bodies_never_500(
    client: TestClient, fake: FakeMexc, body: bytes, route: tuple[str, str], valid_signature: bool,
    ctype: str,
) -> None:
    world = World(client)
    before = await world.snapshot()
    seen = len(fake.seen)
    query = f"timestamp={NOW}".encode()
    sig = sign(query, body) if valid_signature else "0" * 64
    target = f"{route[1]}?{query.decode()}&signature={sig}"
    status, ctype_out, data = await send(client, route[0], target, body,
                                         {"X-MEXC-APIKEY": KEY, "Content-Type": ctype})
    assert_mexc_answer(status, ctype_out, data)
    if status != 200:
        assert await world.snapshot() == before, data
    assert_nothing_signed(fake.seen[seen:])
    count("raw bodies", " ".join(route), status, data)


@pytest.mark.slow
@pytest.mark.parametrize("path_class", list(PATH_CLASSES))
@assert_every_item_fuzzed("public and unknown paths", "path_class")
@fuzz(len(PATH_CLASSES))
@given(data=st.data(), method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
       query=st.lists(st.tuples(st.sampled_from(["symbol", "signature", "timestamp", "limit", "interval"])
                                | st.text(max_size=10), values), max_size=5).map(encode_pairs),
       raw=st.lists(st.sampled_from(RAW), max_size=2).map("&".join),
       key=st.sampled_from([None, KEY, "x"]))
async def test_public_and_unknown_paths_never_500(
    client: TestClient, fake: FakeMexc, path_class: str, data: Any, method: str, query: str, raw: str,
    key: str | None,
) -> None:
    path = data.draw(PATH_CLASSES[path_class], label="path")
    seen = len(fake.seen)
    q = "&".join(x for x in (query, raw) if x)
    assume(len(path) + len(q) < LINE_LIMIT)
    headers = {"X-MEXC-APIKEY": key} if key else {}
    status, ctype, answer = await send(client, method, f"{path}?{q}" if q else path, b"", headers)
    assert_mexc_answer(status, ctype, answer)
    assert_nothing_signed(fake.seen[seen:])
    count("public and unknown paths", path_class, status, answer)


@pytest.mark.parametrize("size,status", [(65536, None), (65537, 413), (1_000_000, 413)])
async def test_request_body_size_limit(client: TestClient, size: int, status: int | None) -> None:
    """server.max_body_bytes (default 65536): larger bodies are refused with MEXC's 413."""
    world = World(client)
    before = await world.snapshot()
    body = (b"a=" + b"x" * size)[:size]
    query = f"timestamp={NOW}".encode()
    target = f"/api/v3/order?{query.decode()}&signature={sign(query, body)}"
    got, ctype, data = await send(client, "POST", target, body, {"X-MEXC-APIKEY": KEY})
    if status is None:  # at the limit: read, then refused for what it says, not its size
        assert got == 400 and assert_mexc_error(got, ctype, data)["code"] != 413
    else:
        too_large = {"code": 413, "msg": "Request Entity Too Large"}
        assert (got, assert_mexc_error(got, ctype, data)) == (413, too_large)
    assert await world.snapshot() == before


async def test_long_query_strings_up_to_the_line_limit(client: TestClient) -> None:
    """Very long values are answered as MEXC errors up to aiohttp's 32 KiB request line;
    beyond it the HTTP parser refuses the request with a plain 400 (docs/reliability.md)."""
    for n in (1000, 10_000, 30_000):
        q = f"symbol={'A' * n}&timestamp={NOW}"
        q = f"{q}&signature={sign(q.encode(), b'')}"
        status, ctype, data = await send(client, "GET", f"/api/v3/order?{q}", b"", {"X-MEXC-APIKEY": KEY})
        assert_mexc_error(status, ctype, data)
    status, _ctype, data = await send(client, "GET", f"/api/v3/order?a={'A' * 40_000}", b"", {})
    assert status == 400 and b"Traceback" not in data


@pytest.mark.parametrize("params,code", [
    ({"startTime": "9999999999999999999"}, 33333),
    ({"endTime": "9223372036854775808"}, 33333),
    ({"startTime": "9223372036854775807", "endTime": "9223372036854775807"}, 200),
])
async def test_times_beyond_64_bits_are_a_param_error(
    client: TestClient, params: dict[str, str], code: int
) -> None:
    """Found by the fuzzer: 19-digit times overflowed SQLite's INTEGER (a 500)."""
    for path in ("/api/v3/allOrders", "/api/v3/myTrades"):
        q = "&".join(f"{k}={v}" for k, v in {"symbol": "BTCUSDT", **params, "timestamp": NOW}.items())
        q = f"{q}&signature={sign(q.encode(), b'')}"
        status, ctype, data = await send(client, "GET", f"{path}?{q}", b"", {"X-MEXC-APIKEY": KEY})
        answer = assert_mexc_answer(status, ctype, data)
        assert (status if code == 200 else answer["code"]) == code, answer


@pytest.mark.parametrize("body", [
    b"orderId=\xff",  # not UTF-8
    b'{"orderId": "\\udc80"}',  # a lone surrogate escape
    b'{"symbol": "\\ud800", "side": "BUY", "type": "LIMIT", "quantity": "1", "price": "1"}',
])
async def test_text_that_is_not_utf8_is_illegal_characters(client: TestClient, body: bytes) -> None:
    """Found by the fuzzer: such text reached SQLite and orjson (a 500), and as an audit
    entry it failed the whole group-commit batch of other clients' orders."""
    query = f"timestamp={NOW}".encode()
    for method, path in (("GET", "/api/v3/order"), ("POST", "/api/v3/order"),
                         ("PUT", "/api/v3/userDataStream")):
        target = f"{path}?{query.decode()}&signature={sign(query, body)}"
        status, ctype, data = await send(client, method, target, body, {"X-MEXC-APIKEY": KEY})
        assert (status, assert_mexc_error(status, ctype, data)["code"]) == (400, 700008), data
    # and with a wrong signature it is just that, not a crash in the re-encoding fallback
    target = f"/api/v3/order?{query.decode()}&signature={'0' * 64}"
    status, ctype, data = await send(client, "GET", target, body, {"X-MEXC-APIKEY": KEY})
    assert assert_mexc_error(status, ctype, data)["code"] == 700002


async def test_an_unserialisable_audit_entry_cannot_fail_other_orders(client: TestClient) -> None:
    """Defence in depth for the bug above: the group commit batches audit entries of
    rejected requests with other clients' orders."""
    from proxy.engine.model import Event
    from proxy.store import Changes

    store = World(client).store
    store.submit(Changes(events=[(Event("order.rejected", 1, NOW, {"symbol": "\ud800"}), "paper")]))
    q = f"symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=0.001&price=80000&timestamp={NOW}"
    q = f"{q}&signature={sign(q.encode(), b'')}"
    status, _ctype, data = await send(client, "POST", f"/api/v3/order?{q}", b"", {"X-MEXC-APIKEY": KEY})
    assert status == 200, data
    assert store.healthy


async def test_deep_json_and_huge_exponents_are_param_errors(client: TestClient) -> None:
    """Found by the fuzzer: nested JSON raised RecursionError (a 500); a JSON number like
    1e999999999 was rendered in plain notation (a gigabyte of zeros)."""
    query = f"timestamp={NOW}".encode()
    for body in (b'{"symbol":' + b"[" * 50_000 + b"]" * 50_000 + b"}"[:60_000],
                 b'{"symbol":"BTCUSDT","side":"BUY","type":"LIMIT","price":"1","quantity":1e999999999}',
                 b'{"batchOrders":[' + b"[" * 20_000 + b"]" * 20_000 + b"]}"):
        body = body[:65_000]
        target = f"/api/v3/order?{query.decode()}&signature={sign(query, body)}"
        status, ctype, data = await send(client, "POST", target, body, {"X-MEXC-APIKEY": KEY})
        assert (status, assert_mexc_error(status, ctype, data)["code"]) == (400, 33333), data
    q = "batchOrders=" + quote("[" * 5000 + "]" * 5000, safe="") + f"&timestamp={NOW}"
    q = f"{q}&signature={sign(q.encode(), b'')}"
    status, ctype, data = await send(client, "POST", f"/api/v3/batchOrders?{q}", b"", {"X-MEXC-APIKEY": KEY})
    assert (status, assert_mexc_error(status, ctype, data)["code"]) == (400, 33333), data


async def test_unexpected_error_is_a_generic_mexc_500_without_traceback(
    aiohttp_client: Any, fake_server: Any, tmp_path: Any, clock: FixedClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With reraise_unexpected off (production), a bug becomes MEXC's 500 body, logged
    with a request id; the client sees no traceback."""
    from relsupport import make_settings

    from proxy.app import create_app

    settings = make_settings(tmp_path, str(fake_server.make_url("")).rstrip("/"), reraise_unexpected=False)
    app = create_app(settings, clock=clock)
    client = await aiohttp_client(app)

    def boom(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("a bug")

    app[keys.SERVICE].balances = boom  # type: ignore[method-assign]
    q = f"timestamp={NOW}"
    q = f"{q}&signature={sign(q.encode(), b'')}"
    with caplog.at_level(logging.ERROR, logger="proxy.errors"):
        status, ctype, data = await send(client, "GET", f"/api/v3/account?{q}", b"", {"X-MEXC-APIKEY": KEY})
    assert (status, assert_mexc_error(status, ctype, data)) == (500, {"code": 500, "msg": "Internal error"})
    assert any("request_id=" in r.getMessage() and r.exc_info for r in caplog.records)


def test_decimal_rendering_is_never_exponent() -> None:
    from proxy import jsonutil

    assert jsonutil.fmt(Decimal("1E-7")) == "0.0000001"
