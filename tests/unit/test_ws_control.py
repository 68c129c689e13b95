"""MEXC's control messages (proxy/ws/protocol.py), as clients send them and MEXC answers."""

from __future__ import annotations

import json

import pytest

from proxy.ws import protocol
from proxy.ws.protocol import Control


@pytest.mark.parametrize(("text", "expected"), [
    ('{"method":"SUBSCRIPTION","params":["spot@private.orders.v3.api.pb"]}',
     Control("SUBSCRIPTION", ("spot@private.orders.v3.api.pb",), 0)),
    # the documented form with an id, echoed back
    ('{"method":"SUBSCRIPTION","params":["a","b","a"],"id":7}', Control("SUBSCRIPTION", ("a", "b"), 7)),
    ('{"method":"UNSUBSCRIPTION","params":["a"]}', Control("UNSUBSCRIPTION", ("a",), 0)),
    ('{"method":"PING"}', Control("PING", (), 0)),
    ('{"method":"ping"}', Control("PING", (), 0)),  # ccxt
    ('{"method":"ping","id":true}', Control("PING", (), 0)),  # not an unsigned int: 0
    ('{"method":"ping","id":-3}', Control("PING", (), 0)),
])
def test_parse(text: str, expected: Control) -> None:
    assert protocol.parse(text) == expected


@pytest.mark.parametrize("text", [
    "", "ping", "[]", "{}", '{"method":1}', '{"method":"LOGIN"}', '{"method":"SUBSCRIPTION"}',
    '{"method":"SUBSCRIPTION","params":[]}', '{"method":"SUBSCRIPTION","params":"a"}',
    '{"method":"SUBSCRIPTION","params":[1]}', '{"method":"SUBSCRIPTION","params":[""]}',
    '{"method":"SUBSCRIPTION","params":["' + "x" * 201 + '"]}',
])
def test_what_is_not_a_control_message(text: str) -> None:
    assert protocol.parse(text) is None


def test_answers_are_mexcs_texts() -> None:
    assert protocol.answer("PONG") == '{"id":0,"code":0,"msg":"PONG"}'
    assert json.loads(protocol.answer("a,b", 3)) == {"id": 3, "code": 0, "msg": "a,b"}
    # the observed refusal: two spaces, a full-width colon (U+FF1A), a trailing space
    assert json.loads(protocol.refusal(["spot@public.kline.v3.api@BTCUSDT@Min60"], protocol.BLOCKED)) == {
        "id": 0, "code": 0,
        "msg": "Not Subscribed successfully! [spot@public.kline.v3.api@BTCUSDT@Min60]."
               "  Reason\uff1a Blocked! ",
    }
    assert protocol.INVALID_LISTEN_KEY == "Invalid listen key"  # ccxt matches this literal
