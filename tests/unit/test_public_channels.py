"""Which channel names the relay passes upstream (reference 9.3): MEXC's public protobuf
channels, upper-case symbols; everything else is refused locally."""

from __future__ import annotations

import pytest

from proxy.ws.relay import deals_channel, depth_channel, is_public_channel


@pytest.mark.parametrize(
    "channel",
    [
        "spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT",
        "spot@public.aggre.deals.v3.api.pb@10ms@1INCHUSDT",
        "spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT",
        "spot@public.aggre.bookTicker.v3.api.pb@10ms@ETHUSDC",
        "spot@public.limit.depth.v3.api.pb@BTCUSDT@5",
        "spot@public.limit.depth.v3.api.pb@BTCUSDT@20",
        "spot@public.bookTicker.batch.v3.api.pb@BTCUSDT",
        "spot@public.kline.v3.api.pb@BTCUSDT@Min1",
        "spot@public.kline.v3.api.pb@BTCUSDT@Month1",
        "spot@public.miniTickers.v3.api.pb@UTC+8",
        "spot@public.miniTickers.v3.api.pb@24H",
        "spot@public.miniTickers.v3.api.pb@UTC-10",
        "spot@public.miniTicker.v3.api.pb@BTCUSDT@UTC+5:30",
        "spot@public.miniTicker.v3.api.pb@BTCUSDT@UTC+12:45",
        "spot@public.increase.depth.v3.api.pb@BTCUSDT",  # legacy: upstream decides
        "spot@public.deals.v3.api.pb@BTCUSDT",
        deals_channel("MXUSDT"),
        depth_channel("MXUSDT"),
    ],
)
def test_mexcs_public_channels_are_public(channel: str) -> None:
    assert is_public_channel(channel)


@pytest.mark.parametrize(
    "channel",
    [
        "spot@public.aggre.deals.v3.api.pb@100ms@btcusdt",  # symbols are upper-case
        "spot@public.aggre.deals.v3.api.pb@1s@BTCUSDT",
        "spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT@x",
        "spot@public.limit.depth.v3.api.pb@BTCUSDT@15",
        "spot@public.kline.v3.api.pb@BTCUSDT@Min2",
        "spot@public.kline.v3.api.pb@BTCUSDT",
        "spot@public.miniTickers.v3.api.pb@UTC+14",
        "spot@public.miniTickers.v3.api.pb@UTC-9",
        "spot@public.deals.v3.api@BTCUSDT",  # the JSON channels MEXC blocks since 2025-08
        "spot@public.kline.v3.api@BTCUSDT@Min60",
        "spot@private.orders.v3.api.pb",
        "spot@private.account.v3.api.pb",
        "spot@private.deals.v3.api.pb",
        "",
        " spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT",
        "spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT\n",
    ],
)
def test_anything_else_is_not(channel: str) -> None:
    assert not is_public_channel(channel)
