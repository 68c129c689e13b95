"""Thin MEXC handlers: parse and check the request, call the service, render MEXC JSON.

Public market paths are forwarded to the upstream byte for byte. Signed paths are
authenticated exactly as MEXC does (signing.py) and answered by the paper engine, or in
live mode forwarded unchanged. In paper mode nothing signed ever leaves the machine: a
signature on a public call is stripped before forwarding, no API key header is ever sent
upstream, and signed paths the engine does not serve are refused.
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any
from urllib.parse import unquote, unquote_plus

from aiohttp import web

from . import bodies, jsonutil, keys, render, signing
from .config import mask_key
from .engine.model import Event, OrderType, Side
from .engine.rules import NewOrder
from .errors import ApiError, Err, status_message
from .parsers import parse_exchange_info
from .service import KeyInfo, PaperService
from .store import Changes
from .upstream import RawResponse, UpstreamError

log = logging.getLogger("proxy.api")

JSON = "application/json"
# Parameter patterns match the whole value (fullmatch: `$` would let a trailing newline
# through) in ASCII only (`\d` and int() would take Arabic-Indic or full-width digits).
_DECIMAL = re.compile(r"[0-9]+\.?[0-9]*|\.[0-9]+")
_DIGITS = re.compile(r"[0-9]{1,19}")
_CLIENT_ID = re.compile(r"[\x21-\x7e]{1,64}")
_SYMBOL = re.compile(r"[A-Za-z0-9]{1,40}")  # MEXC's spot symbols: BTCUSDT, 1INCHUSDT
_MAX_INT64 = 2**63 - 1  # SQLite's INTEGER; larger times and ids cannot be stored or compared

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SignedHandler = Callable[[web.Request, KeyInfo, dict[str, str]], Awaitable[web.StreamResponse]]


def respond(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=jsonutil.dumps(data), status=status, content_type=JSON)


# --------------------------------------------------------------------------- upstream


def upstream_response(resp: RawResponse) -> web.Response:
    """The upstream's answer for the bot. A success, or an error whose body is MEXC's own
    error JSON, passes unchanged; any other error (an empty body, a text or HTML page,
    JSON that is not MEXC's error, whatever its Content-Type says) becomes MEXC-shaped
    JSON with the same status."""
    headers = dict(resp.headers)
    if resp.status >= 400 and not _is_mexc_error(resp.body):
        msg = status_message(resp.status)
        return web.Response(
            body=jsonutil.dumps({"code": resp.status, "msg": msg}),
            status=resp.status,
            content_type=JSON,
            headers=headers,
        )
    headers["Content-Type"] = resp.content_type or JSON
    return web.Response(body=resp.body, status=resp.status, headers=headers)


def _is_mexc_error(body: bytes) -> bool:
    """`{"code": <int>, "msg": <text>}` (the spot API), or `"message"` instead of `"msg"`
    (the contract API's errors under /api/v1/contract/)."""
    if len(body) > 65536 or body.lstrip()[:1] != b"{":
        return False
    try:
        data = jsonutil.loads(body)
    except ValueError:
        return False
    if not isinstance(data, dict) or type(data.get("code")) is not int:
        return False
    return isinstance(data.get("msg", data.get("message")), str)


def upstream_failure(exc: UpstreamError) -> ApiError:
    if exc.kind == "timeout":
        return ApiError(Err.GATEWAY_TIMEOUT)
    if exc.kind in ("replay", "loop"):
        return ApiError(Err.SERVICE_UNAVAILABLE, str(exc))
    return ApiError(Err.SERVICE_UNAVAILABLE)


# where requests may go upstream: unsigned GETs, and in live mode signed requests
PUBLIC_PREFIXES = ("/api/v3/", "/api/v1/contract/")
_PATH = re.compile(r"[A-Za-z0-9/_.-]+", re.ASCII)  # every character MEXC's paths use
_SEGMENT = re.compile(r"[A-Za-z0-9_.-]+", re.ASCII)
# a live path segment that needs its percent-encoding, decoded: RFC 3986's path characters
# (no `;` path parameters) and an encoded `/`; never `%` (double encoding), `\`, controls
_ENCODED_SEGMENT = re.compile(r"[A-Za-z0-9._~!$&'()*+,=:@/-]+", re.ASCII)


def upstream_path(
    raw_path: str, prefixes: tuple[str, ...] = PUBLIC_PREFIXES, *, keep_encoded: bool = False
) -> str | None:
    """The path to send upstream for `raw_path` as received (still percent-encoded), or
    None when there is none (the caller answers 404). Decoded once, as the upstream
    would; `.`, `..` and empty segments resolved; only the characters MEXC's paths use
    (no `%`, `\\`, `;`, controls); under one of `prefixes`. `/api/v3/%2e%2e/%2e%2e/x`
    would otherwise reach `/x` on the upstream host.

    `keep_encoded` (live passthrough): resolved segment by segment, so an encoded `/` stays
    inside its segment, and a segment that needs its percent-encoding (`a%2Fb`: one
    segment, not two) is sent as received, as long as its decoded text holds only path
    characters and no dot-segment (`%2e%2e%2fx` is refused); any other segment is sent
    decoded (`%64epth` as `depth`)."""
    if keep_encoded:
        return _live_path(raw_path, prefixes)
    if "%" in raw_path or "/." in raw_path or "//" in raw_path:
        segments: list[str] = []
        for seg in unquote(raw_path).split("/"):
            if seg in ("", "."):
                continue
            if seg == "..":
                if not segments:
                    return None
                segments.pop()
            else:
                segments.append(seg)
        tail = "/" if raw_path.endswith(("/", "/.", "/..", "%2f", "%2F")) and segments else ""
        raw_path = "/" + "/".join(segments) + tail
    if not _PATH.fullmatch(raw_path) or not raw_path.startswith(prefixes):
        return None
    return raw_path


def _live_path(raw_path: str, prefixes: tuple[str, ...]) -> str | None:
    segments: list[str] = []
    for raw in raw_path.split("/"):
        seg = unquote(raw) if "%" in raw else raw
        if seg in ("", "."):
            continue
        if seg == "..":
            if not segments:
                return None
            segments.pop()
        elif _SEGMENT.fullmatch(seg):
            segments.append(seg)
        elif _ENCODED_SEGMENT.fullmatch(seg) and all(
            part not in ("", ".", "..") for part in seg.split("/")
        ):
            segments.append(raw)  # its percent-encoding as received (`a%2Fb`)
        else:
            return None
    last = raw_path.rsplit("/", 1)[-1]
    tail = "/" if segments and (last == "" or unquote(last) in (".", "..")) else ""
    path = "/" + "/".join(segments) + tail
    return path if path.startswith(prefixes) else None


def only_params(raw: str, names: tuple[str, ...]) -> str:
    """The first `name=value` pair of each of `names` found in `raw` (names matched
    exactly after percent-decoding, as MEXC reads them), in the order of `names`, values
    as sent. What a cached public answer depends on: junk parameters (and signatures)
    neither reach the upstream nor make cache entries of their own."""
    found: dict[str, str] = {}
    for pair in raw.split("&"):
        name, eq, value = pair.partition("=")
        if "%" in name or "+" in name:
            name = unquote_plus(name)
        if name in names and name not in found and eq:
            found[name] = f"{name}={value}"
    return "&".join(found[n] for n in names if n in found)


def normal_symbols(raw: str) -> str:
    """`symbols=` of an exchangeInfo query (from `only_params`) as one spelling per set of
    symbols: split at commas (`%2C` too), each stripped and upper-cased, sorted, each once
    (`symbols=ethusdt, BTCUSDT,BTCUSDT` -> `symbols=BTCUSDT,ETHUSDT`). Each spelling was a
    cache entry of its own, and MEXC answers a list with the whole symbols' rules: 300
    lists of a 2 MB answer took half a gigabyte. A list with anything but symbols is left as
    sent (the upstream refuses it). UNSURE: whether MEXC reads lower-case symbols in the
    list; its symbols are upper case, and a sorted list selects the same symbols."""
    head, sep, rest = raw.partition("symbols=")
    if not sep or (head and not head.endswith("&")):
        return raw
    value, amp, tail = rest.partition("&")
    names = {v.strip().upper() for v in unquote_plus(value).split(",")} - {""}
    if not names or not all(_SYMBOL.fullmatch(n) for n in names):
        return raw
    return f"{head}symbols={','.join(sorted(names))}{amp}{tail}"


async def passthrough(request: web.Request) -> web.Response:
    """Forward a public GET to the upstream; answer with its status, body and type."""
    upstream = request.app[keys.UPSTREAM]
    settings = request.app[keys.SETTINGS]
    path = upstream_path(request.rel_url.raw_path)
    if path is None:
        raise ApiError(Err.NOT_FOUND)
    if path == "/api/v3/exchangeInfo":
        # cached: keyed (and asked) on what selects the answer, never on the raw query
        raw = only_params(request.rel_url.raw_query_string, ("symbol", "symbols"))
        raw = normal_symbols(signing.drop_signatures(raw))  # (`symbol=X;signature=...`)
        ttl = int(settings.upstream.exchange_info_ttl_s * 1000)
    else:
        # a public call may carry a signature (pymexc signs klines/avgPrice): never
        # forward one, in any spelling
        raw = signing.drop_signatures(request.rel_url.raw_query_string)
        ttl = 0
    try:
        resp = await upstream.get(path, raw, ttl)
    except UpstreamError as exc:
        raise upstream_failure(exc) from None
    return upstream_response(resp)


async def contract_detail(request: web.Request) -> web.Response:
    """ccxt's load_markets always asks for futures markets; answer even offline."""
    upstream = request.app[keys.UPSTREAM]
    # cached like exchangeInfo: on the parameter that matters only
    raw = signing.drop_signatures(only_params(request.rel_url.raw_query_string, ("symbol",)))
    try:
        resp = await upstream.get(request.path, raw, 60_000)
        if resp.status == 200:
            return upstream_response(resp)
    except UpstreamError:
        pass
    return respond({"success": True, "code": 0, "data": []})


async def server_time(request: web.Request) -> web.Response:
    """Answered from the sidecar's own wall clock, the one its timestamp check uses (also
    in replay, where the market runs on the tape's clock: a bot that syncs its time with
    this is never refused for a timestamp)."""
    return web.Response(
        body=b'{"serverTime":%d}' % request.app[keys.WALL_CLOCK].now_ms(), content_type=JSON
    )


# --------------------------------------------------------------------------- auth


def _parse_body(text: str, params: dict[str, str]) -> tuple[str, str | None]:
    """Add body parameters (query wins); returns (body without signature, signature)."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            data = jsonutil.loads_decimal(stripped)
        except ValueError:
            raise ApiError(Err.PARAM_ERROR, "request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise ApiError(Err.PARAM_ERROR, "request body must be a JSON object")
        for k, v in data.items():
            if k in params:
                continue
            if isinstance(v, str):
                params[k] = v
            elif isinstance(v, bool):
                params[k] = "true" if v else "false"
            elif isinstance(v, int | Decimal):
                params[k] = _number_text(Decimal(v))
            elif v is not None:
                try:
                    params[k] = jsonutil.dumps_str(v)
                except TypeError:  # deeper than orjson renders (json.loads went further)
                    raise ApiError(Err.PARAM_ERROR, "request body is nested too deeply") from None
        sig = params.get("signature")
        return text, sig if isinstance(sig, str) else None
    rest, sig = signing.split_signature(text)
    signing.parse_pairs(text, params)
    return rest, sig


async def authenticate(request: web.Request) -> tuple[KeyInfo, dict[str, str]]:
    """MEXC's checks, in its (plausible) order: key header, known key, signature present,
    recvWindow, timestamp, signature value."""
    app = request.app
    service = app[keys.SERVICE]
    api_key = request.headers.get("X-MEXC-APIKEY")
    if not api_key:
        raise ApiError(Err.API_KEY_REQUIRED)
    info = service.keys.get(api_key)
    if info is None:
        raise ApiError(Err.API_KEY_INVALID)
    raw_query = request.rel_url.raw_query_string
    body = await bodies.read(request) if request.can_read_body else b""
    params: dict[str, str] = {}
    signing.parse_pairs(raw_query, params)
    query_rest, sig = signing.split_signature(raw_query)
    body_rest = ""
    if body:
        text = body.decode("utf-8", "surrogateescape")
        body_rest, body_sig = _parse_body(text, params)
        if sig is None:
            sig = body_sig
    if not sig:
        raise ApiError(Err.MANDATORY_PARAM, param="signature")
    rw = params.get("recvWindow")
    if rw is None or rw == "":
        recv_window = signing.DEFAULT_RECV_WINDOW
    elif _DIGITS.fullmatch(rw):
        recv_window = int(rw)
        if recv_window > signing.MAX_RECV_WINDOW:
            raise ApiError(Err.RECV_WINDOW_TOO_LARGE)
    else:
        raise ApiError(Err.PARAM_ERROR, "recvWindow must be an integer")
    ts = params.get("timestamp")
    if ts is None or not _DIGITS.fullmatch(ts):
        raise ApiError(Err.MANDATORY_PARAM, param="timestamp")
    # the wall clock, also in replay: a bot signs with its own clock, never the tape's
    now = app[keys.WALL_CLOCK].now_ms()
    if not signing.timestamp_ok(now, int(ts), recv_window):
        raise ApiError(Err.TIMESTAMP_OUTSIDE_RECV_WINDOW)
    strict = app[keys.SETTINGS].server.strict_signature
    if not signing.verify(info.secret, query_rest, body_rest, sig, strict):
        raise ApiError(Err.SIGNATURE_INVALID)
    # Pairs decoded from an all-ASCII query are valid text (unquote_plus replaces bad
    # UTF-8); only a body or raw non-ASCII bytes in the request line can carry surrogates.
    if body or not raw_query.isascii():
        for k, v in params.items():
            if not _is_utf8(k) or not _is_utf8(v):
                raise ApiError(Err.ILLEGAL_CHARACTERS, k if _is_utf8(k) else None)
    return info, params


def _is_utf8(text: str) -> bool:
    """False for text that came from bytes that were not UTF-8 (decoded with
    surrogateescape) or from lone-surrogate JSON escapes: SQLite and orjson refuse it."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def forward_live(request: web.Request) -> web.Response:
    """Live passthrough: the signed request goes to MEXC unchanged (its path normalised as
    a public one's, `upstream_path`: a path that leaves MEXC's API prefixes is answered
    404 and never forwarded); the answer comes back unchanged. Every forwarded request is
    written to the audit log, marked live, whatever happened: the upstream's status, or
    the kind of failure when there was no answer (a timed-out order's status is UNKNOWN,
    so the attempt itself must be on record)."""
    upstream = request.app[keys.UPSTREAM]
    path = upstream_path(request.rel_url.raw_path, keep_encoded=True)
    if path is None:
        raise ApiError(Err.NOT_FOUND)
    body = await bodies.read(request) if request.can_read_body else b""
    headers = {"Content-Type": request.headers.get("Content-Type", JSON)}
    api_key = request.headers.get("X-MEXC-APIKEY")
    if api_key:
        headers["X-MEXC-APIKEY"] = api_key
    try:
        # normalised, still percent-encoded where a segment needs it (`a%2Fb` stays one)
        resp = await upstream.forward(
            request.method, path, request.rel_url.raw_query_string, body or None, headers,
        )
    except UpstreamError as exc:
        _audit_live(request, api_key, {"status": None, "error": exc.kind})
        raise upstream_failure(exc) from None
    _audit_live(request, api_key, {"status": resp.status})
    return upstream_response(resp)


def _audit_live(request: web.Request, api_key: str | None, outcome: dict[str, Any]) -> None:
    account = mask_key(api_key or "")
    data = {"method": request.method, "path": request.path, "api_key": account, **outcome}
    request.app[keys.STORE].submit(
        Changes(events=[(Event("live.request", None, request.app[keys.CLOCK].now_ms(), data), "live")])
    )
    if outcome.get("error"):
        log.warning("live request %s %s got no answer from the upstream: %s", request.method,
                    request.path, outcome["error"], extra={"mode": "live", "account": account})
    else:
        log.info("live request %s %s -> %d", request.method, request.path, outcome["status"],
                 extra={"mode": "live", "account": account})


def signed(handler: SignedHandler) -> Handler:
    """Authenticate as MEXC does, or forward unchanged in live mode."""

    async def wrapper(request: web.Request) -> web.StreamResponse:
        if request.app[keys.MODE].is_live:
            return await forward_live(request)
        info, params = await authenticate(request)
        return await handler(request, info, params)

    wrapper.__name__ = handler.__name__
    wrapper.__doc__ = handler.__doc__
    return wrapper


# --------------------------------------------------------------------------- parameters


def _number_text(d: Decimal) -> str:
    """A JSON number as parameter text: plain notation when it could be an amount, else
    its exponent form, which the decimal check rejects (plain `1e999999999` would be a
    gigabyte of zeros)."""
    if d.is_finite() and -40 <= d.adjusted() <= 40:
        return jsonutil.fmt(d)
    return str(d)


def _required(params: dict[str, str], name: str) -> str:
    v = params.get(name)
    if v is None or v == "":
        raise ApiError(Err.MANDATORY_PARAM, param=name)
    return v


def _decimal(params: dict[str, str], name: str) -> Decimal | None:
    v = params.get(name)
    if v is None or v == "":
        return None
    if len(v) > 40 or not _DECIMAL.fullmatch(v):
        raise ApiError(Err.PARAM_ERROR, f"{name} must be a plain positive decimal number")
    d = Decimal(v)
    if d <= 0:
        raise ApiError(Err.PARAM_ERROR, f"{name} must be greater than 0")
    return d


def _int_param(params: dict[str, str], name: str, default: int | None) -> int | None:
    v = params.get(name)
    if v is None or v == "":
        return default
    if not _DIGITS.fullmatch(v) or int(v) > _MAX_INT64:
        raise ApiError(Err.PARAM_ERROR, f"{name} must be an integer")
    return int(v)


def _symbol(params: dict[str, str]) -> str:
    return _check_symbol(_required(params, "symbol"))


def _check_symbol(s: str) -> str:
    """A symbol goes into the upstream's query (exchangeInfo?symbol=...): letters and
    digits only, or it is invalid (never `X&signature=...` or `X\n`)."""
    if not _SYMBOL.fullmatch(s):
        raise ApiError(Err.INVALID_SYMBOL)
    return s


def _ascii_upper(v: str) -> str:
    """Upper case for ASCII only: `"l\u0131m\u0131t".upper()` is `LIMIT` (dotless i)."""
    return v.upper() if v.isascii() else v


def _client_id(params: dict[str, str], name: str) -> str | None:
    v = params.get(name)
    if v is None or v == "":
        return None
    if not _CLIENT_ID.fullmatch(v):
        raise ApiError(Err.PARAM_ERROR, f"{name} must be 1-64 printable ASCII characters")
    return v


_SIDES = {s.value: s for s in Side}  # (a dict lookup: calling an Enum class is slow)
_ORDER_TYPES = {t.value: t for t in OrderType}


def parse_new_order(params: dict[str, str]) -> NewOrder:
    symbol = _symbol(params)
    side_s = _ascii_upper(_required(params, "side"))
    type_s = _ascii_upper(_required(params, "type"))
    side = _SIDES.get(side_s)
    if side is None:
        raise ApiError(Err.PARAM_ERROR, "side must be BUY or SELL")
    otype = _ORDER_TYPES.get(type_s)
    if otype is None:
        raise ApiError(
            Err.PARAM_ERROR,
            "type must be LIMIT, MARKET, LIMIT_MAKER, IMMEDIATE_OR_CANCEL or FILL_OR_KILL",
        )
    quantity = _decimal(params, "quantity")
    quote_qty = _decimal(params, "quoteOrderQty")
    price = _decimal(params, "price")
    client_id = _client_id(params, "newClientOrderId")
    if otype is OrderType.MARKET:
        if quantity is None and quote_qty is None:
            raise ApiError(Err.MANDATORY_PARAM, param="quantity")
        if quantity is not None:
            quote_qty = None  # quantity wins when both are sent
    else:
        if quantity is None:
            raise ApiError(Err.MANDATORY_PARAM, param="quantity")
        if price is None:
            raise ApiError(Err.MANDATORY_PARAM, param="price")
        quote_qty = None
    return NewOrder(symbol, side, otype, quantity, quote_qty, price, client_id)


def _symbols(params: dict[str, str], required: bool) -> list[str] | None:
    v = params.get("symbol")
    if v is None or v == "":
        if required:
            raise ApiError(Err.MANDATORY_PARAM, param="symbol")
        return None
    out = [s.strip(" ") for s in v.split(",") if s.strip(" ")]
    if not out or len(out) > 5:
        raise ApiError(Err.PARAM_ERROR, "symbol accepts 1 to 5 comma-separated symbols")
    return [_check_symbol(s) for s in out]


# --------------------------------------------------------------------------- handlers

_DAY = 86_400_000
_WEEK = 7 * _DAY


@signed
async def new_order(request: web.Request, info: KeyInfo, params: dict[str, str]) -> web.Response:
    cmd = parse_new_order(params)
    order = await request.app[keys.SERVICE].place_order(info.account_id, cmd)
    assert order is not None
    return web.Response(body=jsonutil.dumps(render.order_ack(order)), content_type=JSON)


@signed
async def test_order(request: web.Request, info: KeyInfo, params: dict[str, str]) -> web.Response:
    cmd = parse_new_order(params)
    await request.app[keys.SERVICE].place_order(info.account_id, cmd, test=True)
    return web.Response(body=b"{}", content_type=JSON)


def _batch_items(raw: str) -> list[Any]:
    try:
        data = jsonutil.loads_decimal(raw)
    except ValueError:
        # MEXC's official Python demo sends Python repr (single quotes); MEXC accepts it
        try:
            data = ast.literal_eval(raw) if len(raw) < 65536 else None
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            data = None
    if not isinstance(data, list):
        raise ApiError(Err.PARAM_ERROR, "batchOrders must be a JSON array of orders")
    return data


def _element_params(item: Any) -> dict[str, str]:
    if not isinstance(item, dict):
        raise ApiError(Err.PARAM_ERROR, "each batch order must be an object")
    out: dict[str, str] = {}
    for k, v in item.items():
        if not _is_utf8(str(k)) or (isinstance(v, str) and not _is_utf8(v)):
            raise ApiError(Err.ILLEGAL_CHARACTERS, "batchOrders")
        if isinstance(v, str):
            out[str(k)] = v
        elif isinstance(v, bool) or v is None:
            continue
        elif isinstance(v, int | Decimal | float):
            out[str(k)] = _number_text(Decimal(str(v)))
    return out


@signed
async def batch_orders(request: web.Request, info: KeyInfo, params: dict[str, str]) -> web.Response:
    items = _batch_items(_required(params, "batchOrders"))
    if not items:
        raise ApiError(Err.PARAM_ERROR, "batchOrders is empty")
    if len(items) > 20:
        raise ApiError(Err.PARAM_ERROR, "batchOrders accepts at most 20 orders")
    cmds: list[NewOrder | ApiError] = []
    client_ids: list[str | None] = []
    symbols: set[str] = set()
    for item in items:
        p = _element_params(item)
        client_ids.append(p.get("newClientOrderId") or None)
        try:
            cmd = parse_new_order(p)
            symbols.add(cmd.symbol)
            cmds.append(cmd)
        except ApiError as err:
            cmds.append(err)
    if len(symbols) > 1:
        raise ApiError(Err.PARAM_ERROR, "all orders of a batch must have the same symbol")
    results = await request.app[keys.SERVICE].place_batch(info.account_id, cmds)
    out: list[dict[str, Any]] = []
    for res, cid in zip(results, client_ids, strict=True):
        if isinstance(res, ApiError):
            el: dict[str, Any] = {}
            if cid is not None:
                el["newClientOrderId"] = cid
            el["msg"] = res.msg
            el["code"] = res.code
        else:
            el = {"symbol": res.symbol, "orderId": res.order_id}
            if cid is not None:
                el["newClientOrderId"] = cid
            el["orderListId"] = -1
        out.append(el)
    return respond(out)


def _order_ref(params: dict[str, str]) -> tuple[str | None, str | None]:
    order_id = params.get("orderId") or None
    client_id = params.get("origClientOrderId") or None
    if order_id is None and client_id is None:
        raise ApiError(Err.ORDER_ID_REQUIRED)
    return order_id, client_id


@signed
async def cancel_order(request: web.Request, info: KeyInfo, params: dict[str, str]) -> web.Response:
    symbol = _symbol(params)
    order_id, client_id = _order_ref(params)
    order = await request.app[keys.SERVICE].cancel_order(info.account_id, symbol, order_id, client_id)
    return respond(render.order_cancel(order, params.get("newClientOrderId") or None))


@signed
async def cancel_open_orders(
    request: web.Request, info: KeyInfo, params: dict[str, str]
) -> web.Response:
    symbols = _symbols(params, required=True)
    service = request.app[keys.SERVICE]
    for s in symbols or ():
        await service.rules(s)  # an unknown symbol is an error, not an empty list
    orders = await service.cancel_open(info.account_id, symbols)
    return respond([render.order_cancel(o) for o in orders])


@signed
async def cancel_all(request: web.Request, info: KeyInfo, params: dict[str, str]) -> web.Response:
    await request.app[keys.SERVICE].cancel_open(info.account_id, None)
    return respond(
        {"code": 200, "msg": "success", "timestamp": request.app[keys.CLOCK].now_ms()}
    )


@signed
async def query_order(request: web.Request, info: KeyInfo, params: dict[str, str]) -> web.Response:
    symbol = params.get("symbol") or None
    if symbol is not None:
        _check_symbol(symbol)
    order_id, client_id = _order_ref(params)
    order = await request.app[keys.SERVICE].get_order(info.account_id, symbol, order_id, client_id)
    return respond(render.order_query(order))


@signed
async def open_orders(request: web.Request, info: KeyInfo, params: dict[str, str]) -> web.Response:
    symbols = _symbols(params, required=False)
    orders = request.app[keys.SERVICE].open_orders(info.account_id, symbols)
    return respond([render.order_query(o) for o in orders])


# ccxt's fetch_closed_orders / fetch_canceled_orders leak the contract API's `states`
# (3 filled, 4 canceled) into allOrders; honouring it gives those calls the right answer.
_STATES = {"3": ("FILLED",), "4": ("CANCELED", "PARTIALLY_CANCELED")}


@signed
async def all_orders(request: web.Request, info: KeyInfo, params: dict[str, str]) -> web.Response:
    """Default window: the last 24 hours; at most 7 days; limit default 500, max 1000."""
    symbol = _symbol(params)
    start = _int_param(params, "startTime", None)
    end = _int_param(params, "endTime", None)
    limit = _int_param(params, "limit", 500)
    assert limit is not None
    if not 1 <= limit <= 1000:
        raise ApiError(Err.PARAM_ERROR, "limit must be between 1 and 1000")
    now = request.app[keys.CLOCK].now_ms()
    if start is not None and end is not None and end - start > _WEEK:
        raise ApiError(Err.PARAM_ERROR, "startTime and endTime must be at most 7 days apart")
    service: PaperService = request.app[keys.SERVICE]
    await service.rules(symbol)
    statuses = _STATES.get(params.get("states", ""))
    if start is None:
        # No startTime: the most recent `limit` orders of the 24 hours before endTime (or
        # now), oldest first, as myTrades answers. A bot asking for its last order
        # (ccxt fetch_orders/fetch_closed_orders with a limit) gets the last one.
        window_start = (now if end is None else end) - _DAY
        recent = await service.all_orders(info.account_id, symbol, None, end, limit, statuses)
        orders = [o for o in recent if o.time_ms >= window_start]
    else:
        orders = await service.all_orders(info.account_id, symbol, start, end, limit, statuses)
    return respond([render.order_query(o) for o in orders])


@signed
async def my_trades(request: web.Request, info: KeyInfo, params: dict[str, str]) -> web.Response:
    """limit default 100, max 100."""
    symbol = _symbol(params)
    limit = _int_param(params, "limit", 100)
    assert limit is not None
    if not 1 <= limit <= 100:
        raise ApiError(Err.PARAM_ERROR, "limit must be between 1 and 100")
    start = _int_param(params, "startTime", None)
    end = _int_param(params, "endTime", None)
    order_id = params.get("orderId") or None
    service: PaperService = request.app[keys.SERVICE]
    await service.rules(symbol)
    fills = await service.my_trades(info.account_id, symbol, order_id, start, end, limit)
    return respond([render.trade(f) for f in fills])


@signed
async def account(request: web.Request, info: KeyInfo, params: dict[str, str]) -> web.Response:
    return respond(render.account(request.app[keys.SERVICE].balances(info.account_id)))


@signed
async def trade_fee(request: web.Request, info: KeyInfo, params: dict[str, str]) -> web.Response:
    """Commissions are JSON numbers here (real response), written from the exact Decimal."""
    rules = await request.app[keys.SERVICE].rules(_symbol(params))
    now = request.app[keys.CLOCK].now_ms()
    body = (
        b'{"data":{"makerCommission":%s,"takerCommission":%s},"code":0,"msg":"success",'
        b'"timestamp":%d}'
        % (jsonutil.fmt(rules.maker_fee).encode(), jsonutil.fmt(rules.taker_fee).encode(), now)
    )
    return web.Response(body=body, content_type=JSON)


@signed
async def mx_deduct_get(request: web.Request, info: KeyInfo, params: dict[str, str]) -> web.Response:
    enabled = request.app[keys.SERVICE].account(info.account_id).mx_deduct
    return respond(render.wrapped({"mxDeductEnable": enabled}, request.app[keys.CLOCK].now_ms()))


@signed
async def mx_deduct_set(request: web.Request, info: KeyInfo, params: dict[str, str]) -> web.Response:
    v = _ascii_upper(_required(params, "mxDeductEnable")).lower()
    if v not in ("true", "false"):
        raise ApiError(Err.PARAM_ERROR, "mxDeductEnable must be true or false")
    enabled = await request.app[keys.SERVICE].set_mx_deduct(info.account_id, v == "true")
    return respond(render.wrapped({"mxDeductEnable": enabled}, request.app[keys.CLOCK].now_ms()))


@signed
async def self_symbols(request: web.Request, info: KeyInfo, params: dict[str, str]) -> web.Response:
    """A paper key may trade what MEXC opens to API trading (defaultSymbols)."""
    upstream = request.app[keys.UPSTREAM]
    now = request.app[keys.CLOCK].now_ms()
    try:
        resp = await upstream.get("/api/v3/defaultSymbols", "", 60_000)
        data = jsonutil.loads(resp.body).get("data", []) if resp.status == 200 else []
    except (UpstreamError, ValueError, AttributeError):
        data = []
    return respond(render.wrapped(data, now))


@signed
async def kyc_status(request: web.Request, info: KeyInfo, params: dict[str, str]) -> web.Response:
    return respond({"status": "1"})


@signed
async def uid(request: web.Request, info: KeyInfo, params: dict[str, str]) -> web.Response:
    return respond({"uid": str(90_000_000 + info.account_id)})


@signed
async def capital_config(
    request: web.Request, info: KeyInfo, params: dict[str, str]
) -> web.Response:
    """Read-only, synthetic: one entry per asset of exchangeInfo (plus held assets), with
    deposits and withdrawals disabled, since paper mode never moves real funds."""
    upstream = request.app[keys.UPSTREAM]
    assets: set[str] = {b.asset for b in request.app[keys.SERVICE].balances(info.account_id)}
    try:
        resp = await upstream.get(
            "/api/v3/exchangeInfo", "", int(request.app[keys.SETTINGS].upstream.exchange_info_ttl_s * 1000)
        )
        if resp.status == 200:
            for r in parse_exchange_info(jsonutil.loads(resp.body)).values():
                assets.add(r.base_asset)
                assets.add(r.quote_asset)
    except (UpstreamError, ValueError):
        pass
    tips = "paper trading: deposits and withdrawals are not simulated"
    out = [
        {
            "coin": a,
            "name": a,
            "networkList": [
                {
                    "coin": a,
                    "depositDesc": None,
                    "depositEnable": False,
                    "minConfirm": 0,
                    "name": a,
                    "network": a,
                    "withdrawEnable": False,
                    "withdrawFee": "0",
                    "withdrawIntegerMultiple": None,
                    "withdrawMax": "0",
                    "withdrawMin": "0",
                    "sameAddress": False,
                    "contract": "",
                    "withdrawTips": tips,
                    "depositTips": tips,
                    "netWork": a,
                }
            ],
        }
        for a in sorted(assets)
    ]
    return respond(out)


@signed
async def user_data_stream(
    request: web.Request, info: KeyInfo, params: dict[str, str]
) -> web.Response:
    """listenKeys for `GET /ws?listenKey=` (proxy/ws/listenkeys.py): POST creates one (valid
    60 minutes), PUT extends it by 60 minutes, DELETE ends it and its streams, GET lists
    the account's valid keys."""
    listen_keys = request.app[keys.LISTEN_KEYS]
    if request.method == "POST":
        return respond({"listenKey": await listen_keys.create(info.account_id)})
    if request.method == "GET":
        return respond({"listenKey": listen_keys.valid(info.account_id)})
    key = _required(params, "listenKey")
    if request.method == "PUT":
        return respond({"listenKey": await listen_keys.extend(info.account_id, key)})
    return respond({"listenKey": await listen_keys.delete(info.account_id, key)})


# --------------------------------------------------------------------------- fallbacks

# signed paths the paper engine serves (anything else signed is refused in paper mode)
SIGNED_PATHS = frozenset(
    {
        "/api/v3/order", "/api/v3/order/test", "/api/v3/batchOrders", "/api/v3/openOrders",
        "/api/v3/order/all", "/api/v3/allOrders", "/api/v3/myTrades", "/api/v3/account",
        "/api/v3/tradeFee", "/api/v3/mxDeduct/enable", "/api/v3/selfSymbols",
        "/api/v3/kyc/status", "/api/v3/uid", "/api/v3/capital/config/getall",
        "/api/v3/userDataStream",
    }
)


def _looks_signed(request: web.Request) -> bool:
    if "X-MEXC-APIKEY" in request.headers:
        return True
    return signing.has_signature(request.rel_url.raw_query_string)


async def fallback(request: web.Request) -> web.Response:
    """Every other /api/ path: signed requests are refused in paper mode (never
    forwarded); unsigned GETs of unknown public paths are forwarded; the rest is 404."""
    path = request.path
    if path in SIGNED_PATHS or path in PUBLIC_PATHS or path in LOCAL_PATHS:
        raise ApiError(Err.METHOD_NOT_ALLOWED)
    if _looks_signed(request):
        if request.app[keys.MODE].is_live:
            return await forward_live(request)
        raise ApiError(Err.PAPER_UNSUPPORTED, path=path)
    if request.method == "GET" and path.startswith(PUBLIC_PREFIXES):
        return await passthrough(request)
    raise ApiError(Err.NOT_FOUND)


# answered by the sidecar itself (GET only)
LOCAL_PATHS = frozenset({"/api/v3/time", "/api/v1/contract/detail"})

PUBLIC_PATHS = (
    "/api/v3/ping",
    "/api/v3/defaultSymbols",
    "/api/v3/symbol/offline",
    "/api/v3/exchangeInfo",
    "/api/v3/depth",
    "/api/v3/trades",
    "/api/v3/historicalTrades",
    "/api/v3/aggTrades",
    "/api/v3/klines",
    "/api/v3/avgPrice",
    "/api/v3/ticker/24hr",
    "/api/v3/ticker/price",
    "/api/v3/ticker/bookTicker",
    "/api/v3/announcements",
    "/api/v3/etf/info",
)
