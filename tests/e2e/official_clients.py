"""The request signing of MEXC's official clients, reproduced (they are not installable
packages; clients.md section 4). Each class does exactly what its original does on the
wire, so the sidecar sees the same bytes:

`DemoClient`: MEXC's Python demo (mexcdevelop/mexc-api-demo, python/spot/mexc_spot_v3.py).
  Before every signed call it asks `GET /api/v3/time` and uses serverTime as timestamp;
  signs `k=quote(v)&...&timestamp=T` (no recvWindow); sends the params with `requests`
  with `signature` placed BEFORE `timestamp`; lowercase `x-mexc-apikey` header and
  `Content-Type: application/json`. Its batch call sends `batchOrders=str(list)` (a Python
  repr with single quotes, signed with `%20` but sent with `+`); its body variant sends the
  signed form text as the body under `Content-Type: application/json`.

`JsSdkClient`: MEXC's JS SDK (npm mexc-api-sdk). `baseURL` includes `/api/v3`; signs
  `k=encodeURIComponent(v)&...&timestamp=Date.now()` (no recvWindow) and appends
  `&signature=`; sends that URL as is (sync-request) with `X-MEXC-APIKEY`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlencode

import requests

# The base-URL overrides README "MEXC's official SDKs" tells users to make (clients.md
# section 4), written for `base`. The clients below take their URL from these same lines,
# and tests/e2e/test_e2e_readme.py checks that the README quotes each one verbatim.
DEMO_CONFIG_OVERRIDE = 'mexc_host = "{base}"'  # the demo's config.py
DEMO_HOSTS_OVERRIDE = 'trade.hosts = "{base}"'  # or per object: trade = mexc_trade()
JS_SDK_OVERRIDE = 'client.config.baseURL = "{base}/api/v3"'  # the SDK's base URL includes /api/v3


def override_url(override: str, base: str) -> str:
    """The URL an override line sets, for `base`: the quoted value of the assignment."""
    value = override.format(base=base).split(" = ", 1)[1]
    assert value.startswith('"') and value.endswith('"'), override
    return value[1:-1]


def hmac_hex(secret: str, text: str) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


class DemoClient:
    def __init__(self, hosts: str, key: str, secret: str) -> None:
        self.hosts = override_url(DEMO_HOSTS_OVERRIDE, hosts)  # what the demo then prefixes
        self.key = key
        self.secret = secret
        self.last: requests.Response | None = None

    def server_time(self) -> int:
        return int(requests.get(self.hosts + "/api/v3/time", timeout=5).json()["serverTime"])

    def signed_text(self, params: dict[str, Any] | None, timestamp: int) -> str:
        if params:
            return f"{urlencode(params, quote_via=quote)}&timestamp={timestamp}"
        return f"timestamp={timestamp}"

    def sign_request(self, method: str, path: str, params: dict[str, Any] | None = None) -> Any:
        timestamp = self.server_time()
        sent = dict(params or {})
        sent["signature"] = hmac_hex(self.secret, self.signed_text(params, timestamp))
        sent["timestamp"] = timestamp  # after the signature, as the demo does
        headers = {"x-mexc-apikey": self.key, "Content-Type": "application/json"}
        self.last = requests.request(method, self.hosts + path, params=sent, headers=headers, timeout=5)
        return self.last.json()

    def post_batchorders(self, orders: list[dict[str, str]]) -> Any:
        return self.sign_request("POST", "/api/v3/batchOrders", {"batchOrders": str(orders)})

    def post_order_test_via_body(self, params: dict[str, str]) -> Any:
        """Signed form text in the body (values signed quoted, sent raw), JSON content type."""
        timestamp = self.server_time()
        raw = "&".join(f"{k}={v}" for k, v in params.items()) + f"&timestamp={timestamp}"
        signature = hmac_hex(self.secret, self.signed_text(params, timestamp))
        headers = {"x-mexc-apikey": self.key, "Content-Type": "application/json"}
        self.last = requests.post(self.hosts + "/api/v3/order/test",
                                  data=f"{raw}&signature={signature}", headers=headers, timeout=5)
        return self.last.json()


def encode_uri_component(value: object) -> str:
    return quote(str(value), safe="-_.!~*'()")


class JsSdkClient:
    def __init__(self, base: str, key: str, secret: str) -> None:
        self.base_url = override_url(JS_SDK_OVERRIDE, base)  # base + "/api/v3"
        self.key = key
        self.secret = secret
        self.last_url = ""

    def _send(self, method: str, url: str) -> tuple[int, Any]:
        self.last_url = url
        req = urllib.request.Request(url, method=method, headers={
            "Content-Type": "application/json", "X-MEXC-APIKEY": self.key})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def public_request(self, method: str, path: str, params: dict[str, Any] | None = None) -> tuple[int, Any]:
        items = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        query = "&".join(f"{k}={encode_uri_component(v)}" for k, v in items.items())
        return self._send(method, f"{self.base_url}{path}" + (f"?{query}" if query else ""))

    def sign_request(self, method: str, path: str, params: dict[str, Any] | None = None) -> tuple[int, Any]:
        items = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        items["timestamp"] = int(time.time() * 1000)  # Date.now()
        query = "&".join(f"{k}={encode_uri_component(v)}" for k, v in items.items())
        return self._send(method, f"{self.base_url}{path}?{query}&signature={hmac_hex(self.secret, query)}")

    def new_order(self, symbol: str, side: str, order_type: str, **options: Any) -> tuple[int, Any]:
        # the SDK puts the options first, then symbol, side, type
        params = {**options, "symbol": symbol, "side": side, "type": order_type}
        return self.sign_request("POST", "/order", params)
