"""MEXC request signing rules (pure and exact).

What is signed (reference section 2.1): the raw, still percent-encoded query string and the
raw body, each with its `signature=...` pair removed wherever it stands (MEXC's official
Python demo puts it before `timestamp`), concatenated with nothing between them. HMAC-SHA256
with the account's secret, lower-case hex. If that fails we retry once with `+` read as
`%20` (pymexc and the official demo sign `%20` but their HTTP library sends `+`).

Timing rule: accept iff `timestamp < server_time + 1000` and
`server_time - timestamp <= recvWindow`; recvWindow defaults to 5000 and may not exceed 60000.
"""

from __future__ import annotations

import hmac as _std_hmac
from urllib.parse import unquote_plus

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _hmac

DEFAULT_RECV_WINDOW = 5000
MAX_RECV_WINDOW = 60000
_HEX = frozenset("0123456789abcdef")


def sign(secret: bytes, payload: bytes) -> str:
    """Lower-case hex HMAC-SHA256 of `payload`."""
    h = _hmac.HMAC(secret, hashes.SHA256())
    h.update(payload)
    return h.finalize().hex()


def split_signature(raw: str) -> tuple[str, str | None]:
    """Remove the first `signature=...` pair from a `k=v&k=v` string.

    Returns the remaining text (pairs joined as they were) and the signature value, or
    (raw, None) when there is none.
    """
    if "signature=" not in raw:
        return raw, None
    pairs = raw.split("&")
    for i, pair in enumerate(pairs):
        if pair.startswith("signature="):
            del pairs[i]
            return "&".join(pairs), pair[10:]
    return raw, None


def is_well_formed(signature: str) -> bool:
    return len(signature) == 64 and all(c in _HEX for c in signature)


def verify(secret: bytes, query: str, body: str, signature: str) -> bool:
    """Constant-time check of `signature` over `query + body` (signature pairs removed)."""
    if not is_well_formed(signature):
        return False
    payload = (query + body).encode("utf-8", "surrogateescape")
    expected = sign(secret, payload).encode()
    if _std_hmac.compare_digest(expected, signature.encode()):
        return True
    if b"+" in payload:
        alt = sign(secret, payload.replace(b"+", b"%20")).encode()
        return _std_hmac.compare_digest(alt, signature.encode())
    return False


def timestamp_ok(now_ms: int, timestamp_ms: int, recv_window_ms: int) -> bool:
    return timestamp_ms < now_ms + 1000 and now_ms - timestamp_ms <= recv_window_ms


def parse_pairs(raw: str, out: dict[str, str]) -> None:
    """Decode `k=v&...` into `out`; the first occurrence of a name wins, existing names
    (the query, when parsing a body) are kept."""
    if not raw:
        return
    for pair in raw.split("&"):
        if not pair:
            continue
        k, _, v = pair.partition("=")
        if "%" in k or "+" in k:
            k = unquote_plus(k)
        if k in out:
            continue
        if "%" in v or "+" in v:
            v = unquote_plus(v)
        out[k] = v
