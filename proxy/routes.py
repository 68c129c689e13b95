"""The single MEXC route table."""

from __future__ import annotations

from aiohttp import web

from . import api

MEXC_ROUTES: list[web.RouteDef] = [
    # local
    web.get("/api/v3/time", api.server_time),
    # public market data, forwarded upstream byte for byte
    *(web.get(path, api.passthrough) for path in api.PUBLIC_PATHS),
    web.get("/api/v1/contract/detail", api.contract_detail),
    # signed: the paper engine (or live passthrough when armed)
    web.post("/api/v3/order", api.new_order),
    web.post("/api/v3/order/test", api.test_order),
    web.post("/api/v3/batchOrders", api.batch_orders),
    web.delete("/api/v3/order", api.cancel_order),
    web.get("/api/v3/order", api.query_order),
    web.delete("/api/v3/openOrders", api.cancel_open_orders),
    web.get("/api/v3/openOrders", api.open_orders),
    web.delete("/api/v3/order/all", api.cancel_all),
    web.get("/api/v3/allOrders", api.all_orders),
    web.get("/api/v3/myTrades", api.my_trades),
    web.get("/api/v3/account", api.account),
    web.get("/api/v3/tradeFee", api.trade_fee),
    web.get("/api/v3/mxDeduct/enable", api.mx_deduct_get),
    web.post("/api/v3/mxDeduct/enable", api.mx_deduct_set),
    web.get("/api/v3/selfSymbols", api.self_symbols),
    web.get("/api/v3/kyc/status", api.kyc_status),
    web.get("/api/v3/uid", api.uid),
    web.get("/api/v3/capital/config/getall", api.capital_config),
    web.post("/api/v3/userDataStream", api.user_data_stream),
    web.get("/api/v3/userDataStream", api.user_data_stream),
    web.put("/api/v3/userDataStream", api.user_data_stream),
    web.delete("/api/v3/userDataStream", api.user_data_stream),
    # everything else under /api/: refused when signed (paper), forwarded when public
    web.route("*", "/api/{tail:.*}", api.fallback),
]
