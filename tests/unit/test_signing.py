"""signing.py: MEXC's documented vectors, signature placement, timing rule, parsing."""

from __future__ import annotations

import pytest

from proxy import signing

SECRET = b"45d0b3c26f2644f19bfb98b07741b2f5"
EX2 = "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=11&recvWindow=5000&timestamp=1644489390087"
EX2_SIG = "fd3e4e8543c5188531eb7279d68ae7d26a573d0fc5ab0d18eb692451654d837a"
EX3_Q = "symbol=BTCUSDT&side=BUY&type=LIMIT"
EX3_B = "quantity=1&price=11&recvWindow=5000&timestamp=1644489390087"
EX3_SIG = "d1a676610ceb39174c8039b3f548357994b2a34139a8addd33baadba65684592"


def test_known_answer_query_only() -> None:
    assert signing.sign(SECRET, EX2.encode()) == EX2_SIG


def test_known_answer_query_plus_body_without_separator() -> None:
    assert signing.sign(SECRET, (EX3_Q + EX3_B).encode()) == EX3_SIG
    assert signing.verify(SECRET, EX3_Q, EX3_B, EX3_SIG)


def test_verify_accepts_the_documented_vector() -> None:
    assert signing.verify(SECRET, EX2, "", EX2_SIG)


def test_verify_rejects_wrong_secret_and_upper_case_and_garbage() -> None:
    assert not signing.verify(b"wrong", EX2, "", EX2_SIG)
    assert not signing.verify(SECRET, EX2, "", EX2_SIG.upper())  # MEXC: lower case only
    assert not signing.verify(SECRET, EX2, "", "zz" * 32)
    assert not signing.verify(SECRET, EX2, "", EX2_SIG[:-1])
    assert not signing.verify(SECRET, EX2 + "&x=1", "", EX2_SIG)


@pytest.mark.parametrize(
    ("raw", "rest", "sig"),
    [
        ("a=1&b=2&signature=abc", "a=1&b=2", "abc"),
        ("signature=abc&timestamp=5", "timestamp=5", "abc"),  # official demo: before timestamp
        ("a=1&signature=abc&timestamp=5", "a=1&timestamp=5", "abc"),
        ("a=1&b=2", "a=1&b=2", None),
        ("", "", None),
        ("xsignature=1&a=2", "xsignature=1&a=2", None),
    ],
)
def test_split_signature_wherever_it_stands(raw: str, rest: str, sig: str | None) -> None:
    assert signing.split_signature(raw) == (rest, sig)


def test_plus_is_retried_as_percent_20() -> None:
    # pymexc signs `%20` but curl_cffi sends `+`
    signed_text = "batchOrders=%5B%7B%22a%22%3A%20%221%22%7D%5D&timestamp=1"
    sig = signing.sign(SECRET, signed_text.encode())
    sent = signed_text.replace("%20", "+")
    assert signing.verify(SECRET, sent, "", sig)


@pytest.mark.parametrize(
    ("now", "ts", "window", "ok"),
    [
        (10_000, 10_000, 5000, True),
        (10_000, 10_999, 5000, True),  # up to 1 s in the future
        (10_000, 11_000, 5000, False),
        (10_000, 5_000, 5000, True),  # exactly recvWindow old
        (10_000, 4_999, 5000, False),
        (100_000, 41_000, 60000, True),
    ],
)
def test_timestamp_rule(now: int, ts: int, window: int, ok: bool) -> None:
    assert signing.timestamp_ok(now, ts, window) is ok


def test_parse_pairs_decodes_and_first_wins() -> None:
    out: dict[str, str] = {}
    signing.parse_pairs("a=1&b=x%20y&c=p+q&a=2&d=&e", out)
    assert out == {"a": "1", "b": "x y", "c": "p q", "d": "", "e": ""}
    signing.parse_pairs("a=9&f=3", out)  # body after query: query wins
    assert out["a"] == "1" and out["f"] == "3"


def test_parse_pairs_survives_invalid_percent_encoding() -> None:
    out: dict[str, str] = {}
    signing.parse_pairs("a=%ZZ%&b=%ff%fe", out)
    assert out["a"] == "%ZZ%"
    assert isinstance(out["b"], str)


def test_reencoded_parameters_verify_unless_strict() -> None:
    """MEXC's Python demo signs `quote(v)` but sends `v` raw: the bytes differ, the
    decoded parameters do not. Accepted by default, refused with `strict`."""
    signed_text = "newClientOrderId=demo%3Ab%2F1&timestamp=1644489390087"
    sent = "newClientOrderId=demo:b/1&timestamp=1644489390087"
    signature = signing.sign(SECRET, signed_text.encode())
    assert signing.verify(SECRET, sent, "", signature)
    assert not signing.verify(SECRET, sent, "", signature, strict=True)
    # the documented '+'-as-%20 retry stays on in strict mode
    spaced = signing.sign(SECRET, b"a=x%20y&timestamp=1")
    assert signing.verify(SECRET, "a=x+y&timestamp=1", "", spaced, strict=True)
    # a re-encoding never makes different parameters verify
    assert not signing.verify(SECRET, "newClientOrderId=demo:b/2&timestamp=1644489390087", "", signature)
