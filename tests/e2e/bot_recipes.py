"""How a bot points its MEXC client at mexc-paper. README.md ("Point your bot at
mexc-paper") quotes the blocks between the `# --- recipe:` markers verbatim, and the e2e
tests build every client through these functions, so the README shows what CI runs.
"""

from __future__ import annotations


# --- recipe: ccxt-urls
def mexc_paper_urls(base: str = "http://127.0.0.1:8080") -> dict:
    """ccxt's `urls` override for mexc: every MEXC host replaced by the sidecar.
    Spot URLs are the bare origin (ccxt appends /api/v3/...); load_markets also asks the
    contract URL for /detail, so that one must point at the sidecar too."""
    return {
        "api": {
            "spot": {"public": base, "private": base},
            "contract": {"public": base + "/api/v1/contract", "private": base + "/api/v1/private"},
            "spot2": {"public": base + "/open/api/v2", "private": base + "/open/api/v2"},
            "broker": {"private": base + "/api/v3/broker"},
        }
    }
# --- end


# --- recipe: ccxt-sync
def ccxt_sync(base: str, key: str, secret: str):
    import ccxt

    return ccxt.mexc({
        "apiKey": key,
        "secret": secret,
        "enableRateLimit": False,  # the sidecar is local; keep True to pace like MEXC
        "urls": mexc_paper_urls(base),
    })
# --- end


# --- recipe: ccxt-async
def ccxt_async(base: str, key: str, secret: str):
    import ccxt.async_support as ccxt_async

    return ccxt_async.mexc({
        "apiKey": key,
        "secret": secret,
        "enableRateLimit": False,
        "urls": mexc_paper_urls(base),
    })  # remember: await exchange.close()
# --- end


# --- recipe: pymexc
def pymexc_sync(base: str, key: str, secret: str):
    from pymexc import spot  # pymexc==1.3.0 (1.3.1 fails on import)

    client = spot.HTTP(api_key=key, api_secret=secret)
    client.base_url = base  # instead of https://api.mexc.com
    return client


def pymexc_async(base: str, key: str, secret: str):
    from pymexc import spot

    client = spot.AsyncHTTP(api_key=key, api_secret=secret)
    client.base_url = base
    return client
# --- end


# --- recipe: ccxt-pro
def ccxt_pro(base: str, key: str, secret: str):
    """ccxt.pro: the REST URLs as above, and MEXC's spot WebSocket: ws://HOST:PORT/ws
    (watch_orders, watch_my_trades and watch_balance ask the sidecar for a listenKey)."""
    import ccxt.pro as ccxtpro

    urls = mexc_paper_urls(base)
    urls["api"]["ws"] = {"spot": base.replace("http", "ws", 1) + "/ws"}
    return ccxtpro.mexc({
        "apiKey": key,
        "secret": secret,
        "enableRateLimit": False,
        "urls": urls,
    })  # remember: await exchange.close()
# --- end


# --- recipe: pymexc-ws
def pymexc_websocket(base: str, key: str, secret: str):
    """pymexc's spot.WebSocket reads its hosts from module constants: point both at the
    sidecar before creating it (it asks REST for a listenKey), then give it the private
    endpoint, which it hard-codes to MEXC's."""
    import pymexc.base
    import pymexc.base_websocket
    from pymexc import spot

    pymexc.base.SPOT = base  # REST: the listenKey and its keep-alive
    pymexc.base_websocket.SPOT = base.replace("http", "ws", 1) + "/ws"
    ws = spot.WebSocket(api_key=key, api_secret=secret)
    ws.endpoint = f"{pymexc.base_websocket.SPOT}?listenKey={ws.listenKey}"
    return ws  # ws.account_orders(callback), ws.account_deals(...), ws.account_update(...)
# --- end
