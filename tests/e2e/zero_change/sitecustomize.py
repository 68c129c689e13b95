"""Imported by every Python process started with this folder on PYTHONPATH: name resolution
as a hosts file (or compose's `extra_hosts`) makes it for a bot, without root.

`MEXC_PAPER_TEST_HOSTS="api.mexc.com=127.0.0.1:8443,wbs-api.mexc.com=127.0.0.1:8443"` maps a
name to an address, and the port https:// and wss:// connect to (443) to the given port
(the test's TLS listener cannot have 443). Every other name that is not a loopback one fails
to resolve, so the test network rule (127.0.0.1, localhost and ::1 only) holds in these
processes too. `socket.getaddrinfo` is what requests/urllib3, aiohttp's default resolver
(ccxt, ccxt.pro, hummingbot) and websocket-client (pymexc's stream) ask.

curl_cffi (pymexc's REST client) resolves in libcurl, which never asks Python: for it the
mapping is libcurl's own hosts-file stand-in, `CURLOPT_CONNECT_TO`
(`api.mexc.com:443:127.0.0.1:8443`, what `curl --connect-to` sets), given to every handle
when its URL is set; a URL for any other name that is not a loopback one is refused there.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

_real_getaddrinfo = socket.getaddrinfo
_MAP: dict[str, tuple[str, int]] = {}
for _item in os.environ.get("MEXC_PAPER_TEST_HOSTS", "").split(","):
    if _item.strip():
        _name, _target = _item.strip().split("=", 1)
        _host, _port = _target.rsplit(":", 1)
        _MAP[_name.lower()] = (_host, int(_port))
_LOOPBACK = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}


def _getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    name = host.decode() if isinstance(host, bytes) else host
    if name is None:
        return _real_getaddrinfo(host, port, family, type, proto, flags)
    key = name.lower().rstrip(".")
    if key in _MAP:
        address, mapped = _MAP[key]
        if str(port) in ("443", "https"):
            port = mapped
        return _real_getaddrinfo(address, port, family, type, proto, flags)
    if key in _LOOPBACK or key.startswith("127."):
        return _real_getaddrinfo(host, port, family, type, proto, flags)
    raise _unresolvable(name)


def _unresolvable(name: str) -> socket.gaierror:
    return socket.gaierror(socket.EAI_NONAME, f"{name}: not resolvable in a mexc-paper test process")


socket.getaddrinfo = _getaddrinfo


def _map_curl() -> None:
    try:
        from curl_cffi._wrapper import ffi, lib
        from curl_cffi.curl import Curl, CurlOpt
    except ImportError:
        return
    connect_to = ffi.NULL  # one list for the whole process, never freed
    for name, (address, port) in _MAP.items():
        connect_to = lib.curl_slist_append(connect_to, f"{name}:443:{address}:{port}".encode())
    real_setopt = Curl.setopt

    def setopt(self, option, value):
        if option == CurlOpt.URL:
            url = value.decode() if isinstance(value, bytes) else value
            name = (urlsplit(url).hostname or "").rstrip(".")
            if name not in _MAP and name not in _LOOPBACK and not name.startswith("127."):
                raise _unresolvable(name)
        ret = real_setopt(self, option, value)
        if option == CurlOpt.URL:
            self._check_error(lib._curl_easy_setopt(self._curl, CurlOpt.CONNECT_TO, connect_to),
                              "setopt", CurlOpt.CONNECT_TO, "mexc-paper test hosts")
        return ret

    Curl.setopt = setopt


if _MAP:
    _map_curl()
