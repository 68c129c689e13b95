"""MEXC's WebSocket control protocol (reference 9.1): what a client sends as JSON text, and
the text MEXC answers. Pure functions; the connection logic is in streams.py.

Client -> server:
  {"method": "SUBSCRIPTION",   "params": ["<channel>", ...], "id": <optional uint>}
  {"method": "UNSUBSCRIPTION", "params": ["<channel>", ...]}
  {"method": "PING"}           (ccxt sends "ping": the method is case-insensitive)
Server -> client, JSON text, `code` 0 even for a refusal, `id` echoing the request's:
  {"id":0,"code":0,"msg":"<channel>,<channel>"}   subscribed / unsubscribed (comma-joined)
  {"id":0,"code":0,"msg":"PONG"}
  {"id":0,"code":0,"msg":"Not Subscribed successfully! [<channel>].  Reason\uff1a Blocked! "}
      (observed for a channel MEXC does not serve; note the two spaces, the full-width
      colon U+FF1A and the trailing space; several channels are comma-joined in the brackets)
  {"id":0,"code":0,"msg":"msg format invalid"}    (not JSON, no method, params not a list
      of channel names: a text pymexc knows from MEXC)
  `Invalid listen key`          plain text, not JSON, before the connection is closed (ccxt
                                matches this literal)
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import jsonutil

INVALID_LISTEN_KEY = "Invalid listen key"
PONG = "PONG"
FORMAT_INVALID = "msg format invalid"
# refusal reasons: the observed one, and ours for the 31st subscription (UNSURE: MEXC only
# says extra subscriptions are invalid)
FULLWIDTH_COLON = "\uff1a"  # MEXC's refusal text has one
BLOCKED = "Blocked! "
TOO_MANY_SUBSCRIPTIONS = "Subscription limit ({limit}) exceeded! "

SUBSCRIBE = "SUBSCRIPTION"
UNSUBSCRIBE = "UNSUBSCRIPTION"
PING = "PING"
MAX_CHANNEL_LEN = 200


@dataclass(frozen=True, slots=True)
class Control:
    method: str  # SUBSCRIBE, UNSUBSCRIBE or PING
    params: tuple[str, ...] = ()
    id: int = 0


def parse(text: str) -> Control | None:
    """A client's control message; None when it is not one (answer FORMAT_INVALID)."""
    try:
        data = jsonutil.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    method = data.get("method")
    if not isinstance(method, str):
        return None
    method = method.upper()
    rid = data.get("id", 0)
    if isinstance(rid, bool) or not isinstance(rid, int) or not 0 <= rid < 2**63:
        rid = 0
    if method == PING:
        return Control(PING, (), rid)
    if method not in (SUBSCRIBE, UNSUBSCRIBE):
        return None
    params = data.get("params")
    if not isinstance(params, list) or not params:
        return None
    if not all(isinstance(p, str) and 0 < len(p) <= MAX_CHANNEL_LEN for p in params):
        return None
    # the same channel twice in one request counts once, in first-seen order
    return Control(method, tuple(dict.fromkeys(params)), rid)


def answer(msg: str, rid: int = 0) -> str:
    return jsonutil.dumps_str({"id": rid, "code": 0, "msg": msg})


def refusal(channels: list[str] | tuple[str, ...], reason: str, rid: int = 0) -> str:
    joined = ",".join(channels)
    return answer(f"Not Subscribed successfully! [{joined}].  Reason{FULLWIDTH_COLON} {reason}", rid)
