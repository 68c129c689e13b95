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
import unicodedata
from urllib.parse import quote, unquote_plus

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
    # (string searches instead of split/join: this runs on every signed request)
    if raw.startswith("signature="):
        start = 0
    else:
        start = raw.find("&signature=") + 1
        if start == 0:
            return raw, None
    end = raw.find("&", start)
    if end < 0:
        return raw[: max(start - 1, 0)], raw[start + 10 :]
    return raw[:start] + raw[end + 1 :], raw[start + 10 : end]


# How MEXC reads a query, as far as a signature goes (UNSURE: not documented; its API is a
# Java service): pairs split on `&`, names percent-decoded (`+` as a space), names matched
# exactly. So `%73ignature=` IS a signature to MEXC; `Signature=` or `;signature=` are
# not, but another parser on the way (or a more lenient MEXC) may read them as one. A
# public call needs no signature in any spelling, so before forwarding we drop every
# pair, split on `&` and `;`, whose name reads as `signature` after decoding
# (repeatedly), Unicode compatibility folding (a full-width or long s), any case, and
# with blanks and control characters ignored.
_BLANKS = "".join(map(chr, range(33))) + "\x7f"


def names_signature(name: str) -> bool:
    """Whether a raw (still percent-encoded) parameter name could be read as `signature`."""
    for _ in range(4):
        once = unquote_plus(name)
        if once == name:
            break
        name = once
    return unicodedata.normalize("NFKC", name).casefold().strip(_BLANKS) == "signature"


def _could_hold_signature(raw: str) -> bool:
    # cheap test first: an ASCII query without '%' spells every name's letters out
    return not raw.isascii() or "%" in raw or "ignature" in raw.lower()


def drop_signatures(raw: str) -> str:
    """`raw` without any pair that names a signature in any spelling (see above); the
    rest unchanged, in order."""
    if not _could_hold_signature(raw):
        return raw
    out = []
    dropped = False
    for pair in raw.split("&"):
        parts = pair.split(";")
        kept = [p for p in parts if not names_signature(p.partition("=")[0])]
        dropped = dropped or len(kept) != len(parts)
        if kept:
            out.append(";".join(kept))
    return "&".join(out) if dropped else raw


def has_signature(raw: str) -> bool:
    return drop_signatures(raw) != raw


def is_well_formed(signature: str) -> bool:
    return len(signature) == 64 and _HEX.issuperset(signature)


def _reencode(raw: str, safe: str) -> str:
    """Decode every pair and encode it again the way a client library would have.
    Bytes that were not UTF-8 (a body decoded with surrogateescape) are encoded back as
    the bytes they were, never raise."""
    out = []
    for pair in raw.split("&"):
        k, eq, v = pair.partition("=")
        out.append(
            quote(unquote_plus(k), safe=safe, errors="surrogateescape")
            + eq
            + quote(unquote_plus(v), safe=safe, errors="surrogateescape")
        )
    return "&".join(out)


# How client libraries percent-encode before signing: Python's urlencode(quote_via=quote)
# (ccxt, pymexc) and JavaScript's encodeURIComponent (MEXC's JS SDK).
_CLIENT_SAFE = ("", "-_.!~*'()")


def verify(secret: bytes, query: str, body: str, signature: str, strict: bool = False) -> bool:
    """Constant-time check of `signature` over `query + body` (signature pairs removed).

    The bytes as received are tried first. Only if they fail: `+` read as `%20` (pymexc,
    the official demo), then the parameters re-encoded as the common client libraries
    encode them (an HTTP library between the signer and us may have normalised escapes,
    e.g. `%3A` to `:`, as yarl does unless told the URL is already encoded). Every
    variant signs the same decoded parameters, so none weakens the check (UNSURE whether
    MEXC itself is this lenient; `strict` stops after the `%20` retry, the documented rule).
    """
    if not is_well_formed(signature):
        return False
    given = signature.encode()
    payload = (query + body).encode("utf-8", "surrogateescape")
    if _std_hmac.compare_digest(sign(secret, payload).encode(), given):
        return True
    if b"+" in payload:
        alt = payload.replace(b"+", b"%20")
        if _std_hmac.compare_digest(sign(secret, alt).encode(), given):
            return True
    if strict:
        return False
    for safe in _CLIENT_SAFE:
        text = _reencode(query, safe) + _reencode(body, safe) if body else _reencode(query, safe)
        alt = text.encode("utf-8", "surrogateescape")
        if alt != payload and _std_hmac.compare_digest(sign(secret, alt).encode(), given):
            return True
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
