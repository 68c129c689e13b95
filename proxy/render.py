"""MEXC's JSON shapes for orders, trades and accounts (the live shapes, not doc samples).

Prices and quantities are strings in plain notation with no trailing zeros, as the live
exchange answers (`"origQty":"0.11"`, `"executedQty":"0"`); times and `orderListId` are
numbers; `orderId` is a string. No order object ever has a `code` key (ccxt would read it
as a rejected batch entry) and tickers are never touched here.
"""

from __future__ import annotations

from typing import Any

from .engine.model import Balance, Fill, Order
from .jsonutil import fmt


def order_ack(o: Order) -> dict[str, Any]:
    """POST /api/v3/order: the live ack has no status, fills or clientOrderId."""
    return {
        "symbol": o.symbol,
        "orderId": o.order_id,
        "orderListId": -1,
        "price": fmt(o.price),
        "origQty": fmt(o.orig_qty),
        "type": o.type.value,
        "side": o.side.value,
        "transactTime": o.time_ms,
    }


def order_query(o: Order) -> dict[str, Any]:
    """GET /api/v3/order, openOrders, allOrders (live shape, 2025-09)."""
    return {
        "symbol": o.symbol,
        "orderId": o.order_id,
        "orderListId": -1,
        "clientOrderId": o.client_order_id,
        "price": fmt(o.price),
        "origQty": fmt(o.orig_qty),
        "executedQty": fmt(o.executed_qty),
        "cummulativeQuoteQty": fmt(o.cumm_quote_qty),
        "status": o.status.value,
        "stpMode": "",
        "timeInForce": None,
        "type": o.type.value,
        "side": o.side.value,
        "stopPrice": None,
        "icebergQty": None,
        "time": o.time_ms,
        "updateTime": o.update_ms,
        "isWorking": True,
        "origQuoteOrderQty": fmt(o.orig_quote_order_qty),
    }


def order_cancel(o: Order, cancel_client_id: str | None = None) -> dict[str, Any]:
    """DELETE /api/v3/order and the elements of DELETE /api/v3/openOrders."""
    return {
        "symbol": o.symbol,
        "origClientOrderId": o.client_order_id,
        "orderId": o.order_id,
        "clientOrderId": cancel_client_id if cancel_client_id is not None else o.client_order_id,
        "price": fmt(o.price),
        "origQty": fmt(o.orig_qty),
        "executedQty": fmt(o.executed_qty),
        "cummulativeQuoteQty": fmt(o.cumm_quote_qty),
        "status": o.status.value,
        "type": o.type.value,
        "side": o.side.value,
    }


def trade(f: Fill) -> dict[str, Any]:
    """GET /api/v3/myTrades element (live shape, 2025-06)."""
    return {
        "symbol": f.symbol,
        "id": f.trade_id,
        "orderId": f.order_id,
        "orderListId": -1,
        "price": fmt(f.price),
        "qty": fmt(f.qty),
        "quoteQty": fmt(f.quote_qty),
        "commission": fmt(f.commission),
        "commissionAsset": f.commission_asset,
        "time": f.time_ms,
        "isBuyer": f.side.value == "BUY",
        "isMaker": f.is_maker,
        "isBestMatch": True,
        "isSelfTrade": False,
        "clientOrderId": f.client_order_id,
    }


def account(balances: list[Balance], can_trade: bool = True) -> dict[str, Any]:
    """GET /api/v3/account (2026 shape). Only assets with a non-zero balance are listed.
    `available` is new in 2026 and undocumented; we report the free amount."""
    return {
        "makerCommission": None,
        "takerCommission": None,
        "buyerCommission": None,
        "sellerCommission": None,
        "canTrade": can_trade,
        "canWithdraw": False,
        "canDeposit": False,
        "updateTime": None,
        "accountType": "SPOT",
        "balances": [
            {
                "asset": b.asset,
                "free": fmt(b.free),
                "locked": fmt(b.locked),
                "available": fmt(b.free),
            }
            for b in balances
            if b.free or b.locked
        ],
        "permissions": ["SPOT"],
    }


def wrapped(data: Any, now_ms: int, code: int = 0) -> dict[str, Any]:
    """The `{"data":..., "code":0, "msg":"success", "timestamp":...}` envelope."""
    return {"data": data, "code": code, "msg": "success", "timestamp": now_ms}
