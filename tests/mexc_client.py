"""A small MEXC client for tests, signing the way real clients do (clients.md)."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote, urlencode

KEY = "mx0vglpaperdemo"
SECRET = "paperdemosecret"


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def ccxt_query(params: dict, secret: str = SECRET, ts: int | None = None,
               recv_window: int | None = 5000) -> str:
    """ccxt: params in insertion order, then timestamp and recvWindow, urlencoded with
    quote (spaces -> %20), signature appended last."""
    p = dict(params)
    p["timestamp"] = ts if ts is not None else int(time.time() * 1000)
    if recv_window is not None:
        p["recvWindow"] = recv_window
    q = urlencode(p, quote_via=quote)
    return f"{q}&signature={sign(secret, q)}"
