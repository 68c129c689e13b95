"""CSRF protection for the dashboard's forms: a signed double-submit cookie.

The browser gets a random nonce in an HttpOnly, SameSite=Strict cookie; every form carries
`HMAC-SHA256(process secret, nonce)`. A state change is accepted only when the form's token
matches the cookie's nonce under this process's secret, so another site can neither read
the token nor forge one, and a token from before a restart no longer works.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

COOKIE = "mexc_paper_csrf"
# the TLS listener's cookie is Secure; a browser refuses to let a plain-HTTP page set a
# cookie of the same name as a Secure one, so the two listeners use two names
COOKIE_TLS = "mexc_paper_csrf_tls"
FIELD = "csrf_token"

_NONCE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")


def cookie_name(secure: bool) -> str:
    return COOKIE_TLS if secure else COOKIE


def new_secret() -> bytes:
    return secrets.token_bytes(32)


def new_nonce() -> str:
    return secrets.token_urlsafe(32)


def nonce_ok(nonce: str | None) -> bool:
    return nonce is not None and bool(_NONCE.match(nonce))


def token_for(secret: bytes, nonce: str) -> str:
    return hmac.new(secret, b"dashboard-csrf:" + nonce.encode(), hashlib.sha256).hexdigest()


def token_ok(secret: bytes, nonce: str | None, token: str | None) -> bool:
    if not nonce_ok(nonce) or not token:
        return False
    assert nonce is not None
    return hmac.compare_digest(token_for(secret, nonce).encode(), token.encode())
