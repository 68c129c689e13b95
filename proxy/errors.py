"""THE table of MEXC error codes, and the middleware that renders them.

This is the only module that knows MEXC's codes, messages and HTTP statuses. Everything
else raises `ApiError(Err.X, ...)`; the engine returns domain reasons (`RejectReason`) that
`REJECT_TO_ERR` maps here. Sources: ../shared/reference/mexc-spot-v3.md sections 2.4 and 3.3.
Codes and messages marked UNSURE there are our best plausible choice; each such entry says so.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from . import jsonutil
from .engine.model import RejectReason

log = logging.getLogger("proxy.errors")


class Err(enum.Enum):
    """(HTTP status, MEXC code, message template)."""

    # --- authentication (section 2.4) ---
    API_KEY_REQUIRED = (400, 400, "api key required")
    API_KEY_INVALID = (400, 10072, "Api key info invalid")
    SIGNATURE_INVALID = (400, 700002, "Signature for this request is not valid.")
    TIMESTAMP_OUTSIDE_RECV_WINDOW = (
        400,
        700003,
        "Timestamp for this request is outside of the recvWindow.",
    )
    # 700004 is observed for a missing signature; MEXC's text for other missing mandatory
    # parameters is UNSURE, so we use the same template naming the parameter.
    MANDATORY_PARAM = (
        400,
        700004,
        "Mandatory parameter '{param}' was not sent, was empty/null, or malformed.",
    )
    ORDER_ID_REQUIRED = (
        400,
        700004,
        "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
    )
    RECV_WINDOW_TOO_LARGE = (400, 700005, "recvWindow must less than 60000")
    # doc table (section 2.4); we send it for text that is not valid UTF-8 (bytes or
    # lone-surrogate JSON escapes), which nothing downstream could store or echo
    ILLEGAL_CHARACTERS = (400, 700008, "Illegal characters found in parameter")
    NO_PERMISSION = (400, 700007, "No permission to access the endpoint.")

    # --- parameters ---
    # 33333 "param is error" is in the doc table; we add a detail after a colon so a bot
    # developer can see which parameter was wrong (UNSURE: MEXC's own detail text).
    PARAM_ERROR = (400, 33333, "param is error")
    INVALID_SYMBOL = (400, -1121, "Invalid symbol.")
    INVALID_PARAM_COMBINATION = (400, -1128, "Combination of optional parameters invalid.")
    QUANTITY_SCALE = (400, 400, " quantity scale is invalid")  # observed, leading space
    AMOUNT_SCALE = (400, 400, " amount scale is invalid")  # observed, leading space
    PRICE_SCALE = (400, 400, " price scale is invalid")  # UNSURE, by analogy

    # --- orders ---
    UNKNOWN_ORDER = (400, -2011, "Unknown order sent.")  # cancel of unknown/closed order
    ORDER_NOT_FOUND = (400, -2013, "Order does not exist.")  # query of unknown order
    # -2010 is Binance's NEW_ORDER_REJECTED, which MEXC inherits with -2011/-2013 (UNSURE).
    WOULD_TAKE = (400, -2010, "Order would immediately match and take.")
    DUPLICATE_ORDER = (400, -2010, "Duplicate order sent.")
    SYMBOL_NOT_API_TRADABLE = (400, 10007, "bad symbol")
    SYMBOL_SUSPENDED = (400, 30000, "suspended transaction for the symbol")
    SIDE_NOT_ALLOWED = (
        400,
        30001,
        "The current transaction direction is not allowed to place an order",
    )
    MIN_NOTIONAL = (400, 30002, "The minimum transaction volume cannot be less than:{amount}{asset}")
    MAX_NOTIONAL = (
        400,
        30003,
        "The maximum transaction volume cannot be greater than:{amount}{asset}",
    )
    INSUFFICIENT_POSITION = (400, 30004, "Insufficient position")
    NO_VALID_TRADE_PRICE = (400, 30010, "no valid trade price")
    MARKET_ORDER_DISABLED = (400, 30019, "api market order is disabled")
    MAX_OPEN_ORDERS = (400, 30029, "Cannot exceed the maximum order limit")
    ORDER_TYPE_NOT_ALLOWED = (400, 30041, "current order type can not place order")
    PRICE_OUT_OF_RANGE = (400, 30087, "Order price exceeds allowed range")

    # --- user data stream (listenKey) ---
    # A PUT of an unknown key was answered 730708 "listen key information error"
    # (mexcdevelop/mexc-api-demo issue #35, 2023); we answer it for every unknown, expired,
    # deleted or other account's key on PUT and DELETE (UNSURE: MEXC's code for DELETE).
    LISTEN_KEY_INVALID = (400, 730708, "listen key information error")
    # a 61st valid key for one account (MEXC: at most 60; its error is UNSURE)
    LISTEN_KEY_LIMIT = (400, 400, "The number of listen keys has reached the limit of {limit}")

    # --- paper mode ---
    # 730003 "Unsupported operation" from the doc table, with a message that says why.
    PAPER_UNSUPPORTED = (
        400,
        730003,
        "Unsupported operation: {path} is not available in paper mode",
    )

    # --- replay ---
    # A request the cassette holds no answer for (replay never answers with another
    # request's recording). Not a MEXC code: 400 with MEXC's generic code 400, so a client
    # raises a bad-request error instead of retrying as it would on a 503. A symbol the
    # cassette never saw gets INVALID_SYMBOL (-1121) with the same explanation.
    NOT_RECORDED = (400, 400, "Not recorded")

    # --- this sidecar ---
    # a request of this sidecar's own upstream client came back to it (proxy/loopguard.py):
    # refused with 508 Loop Detected (RFC 5842); the client that sent it answers its own
    # caller SERVICE_UNAVAILABLE with the reason. Not a MEXC code: MEXC never loops.
    LOOP_DETECTED = (
        508,
        508,
        "Loop Detected: this request came from this sidecar's own upstream client "
        "(MEXC's hosts resolve to the sidecar on its own machine)",
    )

    # --- transport ---
    NOT_FOUND = (404, 404, "Not Found")  # UNSURE: MEXC's body for unknown paths
    METHOD_NOT_ALLOWED = (405, 405, "Method Not Allowed")
    # a request whose body did not arrive within server.header_timeout_s (proxy/bodies.py);
    # not a MEXC code: HTTP's 408, which clients read as a timeout (ccxt: RequestTimeout)
    REQUEST_TIMEOUT = (408, 408, "Request Timeout: the request body did not arrive within {seconds} s")
    PAYLOAD_TOO_LARGE = (413, 413, "Request Entity Too Large")
    TOO_MANY_REQUESTS = (429, 429, "Too Many Requests")
    INTERNAL = (500, 500, "Internal error")
    SERVICE_UNAVAILABLE = (503, 503, "service not available, please try again")
    GATEWAY_TIMEOUT = (504, 504, "Gateway Time-out")
    # what an upstream HTML error page of these statuses becomes (the status is kept)
    UNAUTHORIZED = (401, 401, "No authority")
    FORBIDDEN = (403, 403, "Access Denied")
    BAD_GATEWAY = (502, 502, "Bad Gateway")

    @property
    def status(self) -> int:
        return self.value[0]

    @property
    def code(self) -> int:
        return self.value[1]


# The message for an upstream error page that is not MEXC JSON, by its HTTP status.
STATUS_MSG: dict[int, str] = {
    e.status: e.value[2]
    for e in (
        Err.UNAUTHORIZED, Err.FORBIDDEN, Err.NOT_FOUND, Err.TOO_MANY_REQUESTS, Err.INTERNAL,
        Err.BAD_GATEWAY, Err.SERVICE_UNAVAILABLE, Err.GATEWAY_TIMEOUT,
    )
}

# Codes an upstream may answer `exchangeInfo?symbol=X` (or `depth`) with when X is not a
# symbol: -1121 is recorded (cassettes/mexc_errors.yaml); 30014 and 10007 are the doc
# table's "invalid symbol" and "bad symbol"; 400 is MEXC's generic code (UNSURE).
INVALID_SYMBOL_CODES = frozenset({Err.INVALID_SYMBOL.code, 30014, Err.SYMBOL_NOT_API_TRADABLE.code, 400})


def status_message(status: int) -> str:
    return STATUS_MSG.get(status, "upstream error")


REJECT_TO_ERR: dict[RejectReason, Err] = {
    RejectReason.INSUFFICIENT_FUNDS: Err.INSUFFICIENT_POSITION,
    RejectReason.MIN_NOTIONAL: Err.MIN_NOTIONAL,
    RejectReason.MIN_QUANTITY: Err.MIN_NOTIONAL,
    RejectReason.MAX_NOTIONAL: Err.MAX_NOTIONAL,
    RejectReason.QUANTITY_SCALE: Err.QUANTITY_SCALE,
    RejectReason.PRICE_SCALE: Err.PRICE_SCALE,
    RejectReason.AMOUNT_SCALE: Err.AMOUNT_SCALE,
    RejectReason.SYMBOL_SUSPENDED: Err.SYMBOL_SUSPENDED,
    RejectReason.SYMBOL_NOT_API_TRADABLE: Err.SYMBOL_NOT_API_TRADABLE,
    RejectReason.SIDE_NOT_ALLOWED: Err.SIDE_NOT_ALLOWED,
    RejectReason.ORDER_TYPE_NOT_ALLOWED: Err.ORDER_TYPE_NOT_ALLOWED,
    RejectReason.MARKET_ORDER_DISABLED: Err.MARKET_ORDER_DISABLED,
    RejectReason.PRICE_OUT_OF_RANGE: Err.PRICE_OUT_OF_RANGE,
    RejectReason.MAX_OPEN_ORDERS: Err.MAX_OPEN_ORDERS,
    RejectReason.WOULD_TAKE: Err.WOULD_TAKE,
    RejectReason.DUPLICATE_CLIENT_ORDER_ID: Err.DUPLICATE_ORDER,
    RejectReason.NO_LIQUIDITY: Err.NO_VALID_TRADE_PRICE,
    RejectReason.INVALID_PARAMETER: Err.PARAM_ERROR,
}


class ApiError(Exception):
    """A MEXC error answer. `detail` is appended after a colon for generic codes."""

    __slots__ = ("code", "msg", "status")

    def __init__(self, err: Err, detail: str | None = None, **fmt: object) -> None:
        template = err.value[2]
        msg = template.format(**fmt) if fmt else template
        if detail:
            msg = f"{msg}: {detail}"
        super().__init__(msg)
        self.status = err.status
        self.code = err.code
        self.msg = msg

    def body(self) -> bytes:
        return jsonutil.dumps({"code": self.code, "msg": self.msg})

    def response(self, headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(
            body=self.body(),
            status=self.status,
            content_type="application/json",
            headers=headers,
        )


def error_body(code: int, msg: str) -> bytes:
    return jsonutil.dumps({"code": code, "msg": msg})


_HTTP_TO_ERR = {
    404: Err.NOT_FOUND,
    405: Err.METHOD_NOT_ALLOWED,
    413: Err.PAYLOAD_TOO_LARGE,
    429: Err.TOO_MANY_REQUESTS,
    503: Err.SERVICE_UNAVAILABLE,
    504: Err.GATEWAY_TIMEOUT,
}

_request_ids = itertools.count(1)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _is_mexc_path(path: str) -> bool:
    return path.startswith("/api/")


def make_error_middleware(reraise_unexpected: bool) -> Callable:
    """Render every failure under /api/ as MEXC JSON; other paths keep aiohttp's pages.

    `reraise_unexpected` (tests) lets an unexpected exception propagate so a cassette
    miss inside a handler fails the test loudly instead of becoming a generic 500.
    """

    @web.middleware
    async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return exc.response()
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            if not _is_mexc_path(request.path):
                if request.path.startswith("/admin/api/"):
                    return web.Response(
                        body=jsonutil.dumps({"error": exc.reason, "status": exc.status}),
                        status=exc.status,
                        content_type="application/json",
                    )
                raise
            err = _HTTP_TO_ERR.get(exc.status)
            if err is not None:
                return ApiError(err).response()
            return web.Response(
                body=error_body(exc.status, exc.reason or "error"),
                status=exc.status,
                content_type="application/json",
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            if reraise_unexpected:
                raise
            rid = next(_request_ids)
            log.exception(
                "unexpected error request_id=%d method=%s path=%s",
                rid,
                request.method,
                request.path,
            )
            if request.path.startswith("/admin/api/"):
                return web.Response(
                    body=jsonutil.dumps({"error": "internal error", "request_id": rid}),
                    status=500,
                    content_type="application/json",
                )
            if not _is_mexc_path(request.path):
                raise
            return ApiError(Err.INTERNAL).response()

    return error_middleware
