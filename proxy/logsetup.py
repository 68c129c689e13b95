"""Logging: human-readable lines by default, JSON lines with `logging.format: json`.

Every record carries the mode (paper or live), so paper and live activity can never be
confused in an audit. A last-line-of-defence filter redacts signatures and full API keys
should any code ever format one into a message.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterable

from . import jsonutil
from .config import mask_key

_SIG = re.compile(r"(signature=)[0-9A-Fa-f]{16,}")
_STD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class ContextFilter(logging.Filter):
    def __init__(self, mode_getter, secrets: Iterable[str] = ()) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.mode_getter = mode_getter
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "mode"):
            record.mode = self.mode_getter()
        msg = record.getMessage()
        clean = _SIG.sub(r"\1<redacted>", msg)
        for s in self.secrets:
            if s in clean:
                clean = clean.replace(s, mask_key(s))
        if clean != msg:
            record.msg, record.args = clean, None
        return True


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
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return jsonutil.dumps_str(out)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s [%(mode)s] %(name)s: %(message)s")


def configure(level: str, fmt: str, mode_getter, secrets: Iterable[str] = ()) -> None:  # type: ignore[no-untyped-def]
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(ContextFilter(mode_getter, secrets))
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
