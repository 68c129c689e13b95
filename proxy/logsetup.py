"""Logging: human-readable lines by default, JSON lines with `logging.format: json`.

Every record carries the mode (paper or live), so paper and live activity can never be
confused in an audit. A last-line-of-defence filter redacts signatures, full API keys and
every secret the settings hold (secret keys, the admin token) wherever a record carries
them, tracebacks included, should any code (ours or aiohttp's) ever format one.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus

from . import jsonutil
from .config import mask_key

_SIG = re.compile(r"""(signature["']?\s*[=:]\s*["']?)[0-9A-Fa-f]{16,}""", re.IGNORECASE)
# the key header as a malformed request's echo shows it (`X-MEXC-APIKEY: mx0v...`)
_KEY_HEADER = re.compile(r"(x-mexc-apikey['\"]?\s*[:=]?\s*['\"]?)([A-Za-z0-9_-]{10,})", re.IGNORECASE)
_STD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class ContextFilter(logging.Filter):
    """Adds the mode to every record and redacts it: signatures, the `X-MEXC-APIKEY`
    header value, and every configured secret in the message, its arguments, exception
    text (aiohttp logs a rejected request with its raw header block), stack info and
    extra fields. `secrets` maps a value to what the log shows instead (`Settings.secrets()`);
    a plain list of values is shown as `<redacted>`."""

    def __init__(self, mode_getter, secrets: Mapping[str, str] | Iterable[str] = ()) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.mode_getter = mode_getter
        shown = dict(secrets) if isinstance(secrets, Mapping) else dict.fromkeys(secrets, REDACTED)
        self._shown: dict[str, str] = {}
        for value, instead in shown.items():
            if value:
                for form in _written_forms(value):
                    self._shown.setdefault(form, instead)
        self._secret = (
            re.compile("|".join(re.escape(f) for f in sorted(self._shown, key=len, reverse=True)))
            if self._shown
            else None
        )

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "mode"):
            record.mode = self.mode_getter()
        msg = record.getMessage()
        clean = self.redact(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        # exception text too: aiohttp logs a malformed request with the raw request line
        # and headers in the exception (signature, API key, admin token included)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for k, v in record.__dict__.items():
            if k not in _STD and isinstance(v, str):
                record.__dict__[k] = self.redact(v)
        return True

    def redact(self, text: str) -> str:
        clean = _SIG.sub(r"\1<redacted>", text)
        clean = _KEY_HEADER.sub(lambda m: m.group(1) + mask_key(m.group(2)), clean)
        if self._secret is not None:
            clean = self._secret.sub(lambda m: self._shown[m.group(0)], clean)
        return clean


REDACTED = "<redacted>"


def _written_forms(value: str) -> set[str]:
    """How a traceback or a message may write `value`: as is, escaped as in a str's or a
    bytes' repr (aiohttp shows a rejected header line as bytes), JSON-escaped, and
    percent-encoded; and, for a value that is not ASCII, as the bytes of a client that
    sent it Latin-1 (or cp1252) encoded, and as its UTF-8 read as Latin-1. (The config
    refuses secrets that are not visible ASCII; this covers any other source.)"""
    utf8 = value.encode("utf-8", "surrogateescape")
    forms = {
        value,
        repr(value)[1:-1],
        repr(utf8)[2:-1],
        jsonutil.dumps_str(value)[1:-1],
        quote(value, safe=""),
        quote_plus(value, safe=""),
        utf8.decode("latin-1"),
        repr(utf8.decode("latin-1"))[1:-1],
    }
    for encoding in ("latin-1", "cp1252"):
        try:
            raw = value.encode(encoding)
        except UnicodeEncodeError:
            continue
        text = raw.decode("utf-8", "surrogateescape")
        forms.update((repr(raw)[2:-1], text, repr(text)[1:-1], quote(raw, safe="")))
    return {f for f in forms if f}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "mode": getattr(record, "mode", None),
            "msg": record.getMessage(),
        }
        for k, v in record.__dict__.items():
            if k not in _STD and k not in out:
                out[k] = v if isinstance(v, str | int | float | bool) or v is None else str(v)
        if record.exc_info or record.exc_text:
            out["exc"] = record.exc_text or self.formatException(record.exc_info)
        return jsonutil.dumps_str(out)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s [%(mode)s] %(name)s: %(message)s")


def configure(level: str, fmt: str, mode_getter, secrets: Mapping[str, str] | Iterable[str] = ()) -> None:  # type: ignore[no-untyped-def]
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(ContextFilter(mode_getter, secrets))
    root.addHandler(handler)
    root.setLevel(level)
