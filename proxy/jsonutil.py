"""The only JSON entry point: orjson with Decimal rendered as MEXC-style plain strings.

Money never goes through a float. MEXC sends prices and quantities as JSON strings; we
parse them with `Decimal(str)`. Where a number arrives as a JSON number (config, rare
request bodies) use `loads_decimal`, which keeps it a Decimal.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson


def fmt(d: Decimal) -> str:
    """Render a Decimal as MEXC does: plain notation, no exponent, no trailing zeros.

    `format(d, "f")` never uses exponent notation; stripping zeros matches the live
    order responses (`"origQty":"0.11"`, `"executedQty":"0"`).
    """
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    if s in ("-0", ""):
        return "0"
    return s


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return fmt(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, default=_default)


def dumps_str(obj: Any) -> str:
    return dumps(obj).decode()


def dumps_pretty(obj: Any) -> str:
    """Indented JSON for people (the dashboard's audit-log details)."""
    return orjson.dumps(obj, default=_default, option=orjson.OPT_INDENT_2).decode()


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


def loads_decimal(data: bytes | str) -> Any:
    """Parse JSON keeping non-integer numbers as Decimal (never float)."""
    if isinstance(data, bytes):
        data = data.decode()
    try:
        return json.loads(data, parse_float=Decimal)
    except RecursionError:  # nested junk (`[[[[...`): invalid input, not a crash
        raise ValueError("JSON nested too deeply") from None
