"""Parsers of MEXC's public responses into domain types (Decimal, never float).

A contract test runs every recorded response in cassettes/ through these parsers, so a
re-recording that changes a shape fails loudly. Each parser raises `ShapeError` on a body
that is not what MEXC sends. MEXC really sends "" and null for some numbers.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from .engine.model import Book, SymbolRules, Trade
from .engine.rules import rules_from_exchange_info


class ShapeError(ValueError):
    """An upstream body that does not have MEXC's shape."""


# numbers as MEXC writes them, ASCII only and the whole value: Decimal() and int() would
# also take blanks, `1_000` and Arabic-Indic or full-width digits
_NUMBER = re.compile(r"-?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?")
_INTEGER = re.compile(r"-?[0-9]{1,20}")


def _d(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ShapeError(f"{what}: expected a decimal string, got {value!r}")
    if isinstance(value, str) and not _NUMBER.fullmatch(value):
        raise ShapeError(f"{what}: not a decimal: {value!r}")
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise ShapeError(f"{what}: not a decimal: {value!r}") from None
    if not d.is_finite():
        raise ShapeError(f"{what}: not finite: {value!r}")
    return d


def _int(value: Any, what: str) -> int:
    """A time or id: a JSON integer, or a string of ASCII digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    raise ShapeError(f"{what}: expected an integer, got {value!r}")


def _opt_d(value: Any, what: str) -> Decimal | None:
    if value is None or value == "":
        return None
    return _d(value, what)


def parse_exchange_info(data: Any) -> dict[str, SymbolRules]:
    if not isinstance(data, dict) or not isinstance(data.get("symbols"), list):
        raise ShapeError("exchangeInfo: expected an object with a symbols list")
    out: dict[str, SymbolRules] = {}
    for s in data["symbols"]:
        if not isinstance(s, dict) or not isinstance(s.get("symbol"), str):
            raise ShapeError("exchangeInfo: symbol entry without a symbol name")
        for key in ("baseAsset", "quoteAsset"):
            if not isinstance(s.get(key), str):
                raise ShapeError(f"exchangeInfo {s['symbol']}: {key} missing")
        out[s["symbol"]] = rules_from_exchange_info(s)
    return out


def _levels(raw: Any, what: str) -> tuple[tuple[Decimal, Decimal], ...]:
    if not isinstance(raw, list):
        raise ShapeError(f"{what}: expected a list of [price, qty]")
    out = []
    for lvl in raw:
        if not isinstance(lvl, list) or len(lvl) < 2:
            raise ShapeError(f"{what}: level is not [price, qty]: {lvl!r}")
        out.append((_d(lvl[0], what), _d(lvl[1], what)))
    return tuple(out)


def parse_depth(symbol: str, data: Any, seen_ms: int = 0) -> Book:
    if not isinstance(data, dict) or "bids" not in data or "asks" not in data:
        raise ShapeError("depth: expected an object with bids and asks")
    bids = tuple(sorted(_levels(data["bids"], "depth.bids"), key=lambda lv: -lv[0]))
    asks = tuple(sorted(_levels(data["asks"], "depth.asks"), key=lambda lv: lv[0]))
    version = data.get("lastUpdateId")
    stamp = data.get("timestamp")
    market_ms = stamp if isinstance(stamp, int) and not isinstance(stamp, bool) else None
    if version is None:
        version = market_ms if market_ms is not None else seen_ms
    return Book(symbol, bids, asks, str(version), seen_ms, market_ms)


def parse_trades(data: Any) -> list[Trade]:
    """/api/v3/trades (newest first on MEXC) -> trades oldest first."""
    if not isinstance(data, list):
        raise ShapeError("trades: expected a list")
    out = []
    for t in data:
        if not isinstance(t, dict):
            raise ShapeError("trades: entry is not an object")
        time_ms = _int(t.get("time"), "trades.time")
        out.append(
            Trade(
                price=_d(t.get("price"), "trades.price"),
                qty=_d(t.get("qty"), "trades.qty"),
                time_ms=time_ms,
                is_buyer_maker=bool(t.get("isBuyerMaker")),
            )
        )
    out.sort(key=lambda tr: tr.time_ms)
    return out


def parse_agg_trades(data: Any) -> list[Trade]:
    if not isinstance(data, list):
        raise ShapeError("aggTrades: expected a list")
    out = []
    for t in data:
        if not isinstance(t, dict) or "p" not in t or "q" not in t or "T" not in t:
            raise ShapeError("aggTrades: entry without p/q/T")
        out.append(Trade(_d(t["p"], "aggTrades.p"), _d(t["q"], "aggTrades.q"), _int(t["T"], "aggTrades.T"),
                         bool(t.get("m"))))
    out.sort(key=lambda tr: tr.time_ms)
    return out


def parse_ticker_price(data: Any) -> dict[str, Decimal]:
    items = data if isinstance(data, list) else [data]
    out: dict[str, Decimal] = {}
    for it in items:
        if not isinstance(it, dict) or not isinstance(it.get("symbol"), str):
            raise ShapeError("ticker/price: entry without symbol")
        out[it["symbol"]] = _d(it.get("price"), "ticker/price.price")
    return out


def parse_book_ticker(data: Any) -> dict[str, tuple[Decimal | None, Decimal | None]]:
    items = data if isinstance(data, list) else [data]
    out: dict[str, tuple[Decimal | None, Decimal | None]] = {}
    for it in items:
        if not isinstance(it, dict) or not isinstance(it.get("symbol"), str):
            raise ShapeError("bookTicker: entry without symbol")
        out[it["symbol"]] = (
            _opt_d(it.get("bidPrice"), "bookTicker.bidPrice"),
            _opt_d(it.get("askPrice"), "bookTicker.askPrice"),
        )
    return out


_TICKER_KEYS = ("symbol", "lastPrice", "openPrice", "highPrice", "lowPrice", "volume")


def parse_ticker_24hr(data: Any) -> dict[str, dict[str, Decimal | None]]:
    items = data if isinstance(data, list) else [data]
    out: dict[str, dict[str, Decimal | None]] = {}
    for it in items:
        if not isinstance(it, dict) or any(k not in it for k in _TICKER_KEYS):
            raise ShapeError("ticker/24hr: entry without the usual keys")
        if "timestamp" in it:
            # ccxt would then parse it as a swap ticker (clients.md section 1.5)
            raise ShapeError("ticker/24hr: unexpected timestamp key")
        out[it["symbol"]] = {
            k: _opt_d(it.get(k), f"ticker/24hr.{k}")
            for k in (
                "lastPrice", "bidPrice", "askPrice", "bidQty", "askQty", "openPrice",
                "highPrice", "lowPrice", "volume", "quoteVolume", "priceChange",
                "priceChangePercent", "prevClosePrice",
            )
        }
    return out


def parse_klines(data: Any) -> list[tuple[int, Decimal, Decimal, Decimal, Decimal, Decimal]]:
    if not isinstance(data, list):
        raise ShapeError("klines: expected a list")
    out = []
    for k in data:
        if not isinstance(k, list) or len(k) < 8:
            raise ShapeError("klines: entry is not an 8-element array")
        out.append((_int(k[0], "klines.openTime"), _d(k[1], "o"), _d(k[2], "h"), _d(k[3], "l"),
                    _d(k[4], "c"), _d(k[5], "v")))
    return out


def parse_avg_price(data: Any) -> Decimal:
    if not isinstance(data, dict) or "price" not in data:
        raise ShapeError("avgPrice: expected {mins, price}")
    return _d(data["price"], "avgPrice.price")


def parse_server_time(data: Any) -> int:
    if not isinstance(data, dict) or not isinstance(data.get("serverTime"), int):
        raise ShapeError("time: expected {serverTime: int}")
    return int(data["serverTime"])


def parse_default_symbols(data: Any) -> list[str]:
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ShapeError("defaultSymbols: expected {data: [...]}")
    return [str(s) for s in data["data"]]


def parse_contract_detail(data: Any) -> list[dict[str, Any]]:
    if not isinstance(data, dict) or "data" not in data:
        raise ShapeError("contract/detail: expected {success, code, data}")
    d = data["data"]
    return d if isinstance(d, list) else [d]


def parse_symbol_offline(data: Any) -> list[tuple[str, int, int | None]]:
    """(symbol, state, offlineTime ms or None); state 2 suspended, 3 delisted. The reference
    is UNSURE whether the live field is `state` (docs) or `status` (JKorf): either is read."""
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ShapeError("symbol/offline: expected {data: [...]}")
    out = []
    for item in data["data"]:
        if not isinstance(item, dict) or not isinstance(item.get("symbol"), str):
            raise ShapeError(f"symbol/offline: bad entry {item!r}")
        state = item.get("state", item.get("status"))
        if not isinstance(state, int):
            raise ShapeError(f"symbol/offline: state not a number: {item!r}")
        when = item.get("offlineTime")
        if when is not None and not isinstance(when, int):
            raise ShapeError(f"symbol/offline: offlineTime not a number: {when!r}")
        out.append((item["symbol"], state, when))
    return out


def parse_announcements(data: Any) -> list[tuple[str, str, int]]:
    """(title, url, postTime ms) of every announcement on the page."""
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ShapeError("announcements: expected {code, data: [...], msg}")
    out = []
    for page in data["data"]:
        if not isinstance(page, dict) or not isinstance(page.get("details"), list):
            raise ShapeError("announcements: expected data[].details")
        for d in page["details"]:
            if not (isinstance(d, dict) and isinstance(d.get("title"), str)
                    and isinstance(d.get("url"), str) and isinstance(d.get("postTime"), int)):
                raise ShapeError(f"announcements: bad entry {d!r}")
            out.append((d["title"], d["url"], d["postTime"]))
    return out


def parse_etf_info(data: Any) -> dict[str, Decimal]:
    """Net value per leveraged-token symbol (one object, or an array without `symbol`)."""
    items = data if isinstance(data, list) else [data]
    out = {}
    for e in items:
        if not isinstance(e, dict) or not isinstance(e.get("symbol"), str):
            raise ShapeError(f"etf/info: bad entry {e!r}")
        out[e["symbol"]] = _d(e.get("netValue"), "etf/info netValue")
    return out


def parse_error(data: Any) -> tuple[int, str] | None:
    """MEXC's error body `{"code": int, "msg": str}`; None if it is not one."""
    if isinstance(data, dict) and isinstance(data.get("code"), int) and "msg" in data:
        return data["code"], str(data["msg"])
    return None
