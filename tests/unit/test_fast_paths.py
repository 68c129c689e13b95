"""The hot-path rewrites made for speed (docs/benchmarks.md, Profile) answer exactly as
the straightforward versions they replaced, checked against those versions."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from proxy import signing


def split_signature_reference(raw: str) -> tuple[str, str | None]:
    """The original split/join implementation."""
    if "signature=" not in raw:
        return raw, None
    pairs = raw.split("&")
    for i, pair in enumerate(pairs):
        if pair.startswith("signature="):
            del pairs[i]
            return "&".join(pairs), pair[10:]
    return raw, None


_PIECES = st.sampled_from(["&", "=", "signature=", "&signature=", "a=1", "x", "sig", "%20", ""])


@settings(max_examples=3000)
@given(st.lists(_PIECES, max_size=10).map("".join))
def test_split_signature_matches_the_reference(raw: str) -> None:
    assert signing.split_signature(raw) == split_signature_reference(raw)


@given(st.text(alphabet="0123456789abcdefABCDEFgz ", min_size=62, max_size=66))
def test_is_well_formed_matches_the_reference(sig: str) -> None:
    expected = len(sig) == 64 and all(c in "0123456789abcdef" for c in sig)
    assert signing.is_well_formed(sig) == expected


# ---------------------------------------------------------------- engine: _on_book

from decimal import Decimal  # noqa: E402

from fake_upstream import FakeMexc  # noqa: E402

from proxy.engine import matching  # noqa: E402
from proxy.engine.model import Balance, Book, FillModel, OrderType, Side  # noqa: E402
from proxy.engine.rules import EngineConfig, NewOrder  # noqa: E402
from proxy.engine.state import AccountState, EngineState, SymbolOrders, apply  # noqa: E402
from proxy.parsers import parse_exchange_info  # noqa: E402

RULES = parse_exchange_info(FakeMexc().exchange_info)["BTCUSDT"]
CFG = EngineConfig(fill_model=FillModel.QUEUE, max_open_orders=10_000)


class EveryOrder(SymbolOrders):
    """An index whose price queries return every order, as the loop did before it was
    limited to the orders a snapshot can reach."""

    def buys_at_or_above(self, price: Decimal):  # type: ignore[no-untyped-def]
        return (oid for _k, _s, oid in self.buys)

    def sells_at_or_below(self, price: Decimal):  # type: ignore[no-untyped-def]
        return (oid for _k, _s, oid in self.sells)


def _levels(prices: list[int], qtys: list[int], descending: bool) -> tuple[tuple[Decimal, Decimal], ...]:
    lv = {Decimal(p) / 100: Decimal(q) / 1000 for p, q in zip(prices, qtys, strict=False)}
    return tuple(sorted(lv.items(), key=lambda x: -x[0] if descending else x[0]))


def _state(orders: list[tuple[bool, int, int]], index_cls: type[SymbolOrders]) -> EngineState:
    state = EngineState()
    state.accounts[1] = AccountState(
        1, "k", {"USDT": Balance("USDT", Decimal("1e9")), "BTC": Balance("BTC", Decimal("1e6"))}
    )
    book0 = Book(
        "BTCUSDT",
        tuple((Decimal("87900") - Decimal("0.5") * k, Decimal("0.01")) for k in range(5)),
        tuple((Decimal("87904") + Decimal("0.5") * k, Decimal("0.01")) for k in range(5)),
        "v0",
        1,
    )
    for is_buy, cents, milli in orders:
        price = Decimal(8_789_000 + cents) / 100 if is_buy else Decimal(8_790_001 + cents) / 100
        cmd = NewOrder("BTCUSDT", Side.BUY if is_buy else Side.SELL, OrderType.LIMIT,
                       Decimal(milli) / 1000, None, price, None)
        res = matching.submit(state, 1, cmd, RULES, book0, None, None, CFG, 1000)
        apply(state, res.txn)
    old = state.open_by_symbol.get("BTCUSDT")
    if old is not None:
        new = index_cls()
        new.orders, new.buys, new.sells = old.orders, old.buys, old.sells
        state.open_by_symbol["BTCUSDT"] = new
    return state


@settings(max_examples=300, deadline=None)
@given(
    orders=st.lists(
        st.tuples(st.booleans(), st.integers(0, 1399), st.integers(1, 50)), min_size=1, max_size=25
    ),
    bids=st.lists(st.integers(8_788_500, 8_791_000), max_size=8),
    asks=st.lists(st.integers(8_789_500, 8_792_000), max_size=8),
    qtys=st.lists(st.integers(1, 40), min_size=8, max_size=8),
)
def test_on_book_touches_exactly_what_the_full_scan_touched(
    orders: list[tuple[bool, int, int]], bids: list[int], asks: list[int], qtys: list[int]
) -> None:
    book = Book("BTCUSDT", _levels(bids, qtys, True), _levels(asks, qtys, False), "v1", 2)
    fast = matching.on_market(_state(orders, SymbolOrders), "BTCUSDT", book, [], CFG, {}, 2000)
    full = matching.on_market(_state(orders, EveryOrder), "BTCUSDT", book, [], CFG, {}, 2000)
    assert fast.orders == full.orders
    assert fast.fills == full.fills
    assert fast.events == full.events
    assert fast.balances == full.balances
    assert fast.consumed == full.consumed


class Materialised(SymbolOrders):
    """The candidate lists as `list(candidates)` made them before the walk became lazy."""

    def buys_at_or_above(self, price: Decimal):  # type: ignore[no-untyped-def]
        return iter(list(super().buys_at_or_above(price)))

    def sells_at_or_below(self, price: Decimal):  # type: ignore[no-untyped-def]
        return iter(list(super().sells_at_or_below(price)))


@settings(max_examples=200, deadline=None)
@given(
    orders=st.lists(
        st.tuples(st.booleans(), st.integers(0, 1399), st.integers(1, 50)), min_size=1, max_size=25
    ),
    tape=st.lists(
        st.tuples(st.integers(8_788_500, 8_792_500), st.integers(1, 60), st.booleans()), max_size=30
    ),
    model=st.sampled_from(list(FillModel)),
)
def test_trades_fill_exactly_as_with_materialised_candidates(
    orders: list[tuple[bool, int, int]], tape: list[tuple[int, int, bool]], model: FillModel
) -> None:
    from proxy.engine.model import Trade

    cfg = EngineConfig(fill_model=model, max_open_orders=10_000)
    trades = [Trade(Decimal(p) / 100, Decimal(q) / 1000, 3000 + i, bm) for i, (p, q, bm) in enumerate(tape)]
    fast = matching.on_market(_state(orders, SymbolOrders), "BTCUSDT", None, trades, cfg, {}, 3000)
    ref = matching.on_market(_state(orders, Materialised), "BTCUSDT", None, trades, cfg, {}, 3000)
    assert fast.orders == ref.orders
    assert fast.fills == ref.fills
    assert fast.events == ref.events
    assert fast.balances == ref.balances
    assert fast.tape_seq == ref.tape_seq


# ---------------------------------------------------------------- service: no tasks on a cache hit


def test_cached_market_answers_book_and_price_without_io() -> None:
    import asyncio

    from proxy.config import UpstreamSettings
    from proxy.upstream import MexcClient, RawResponse

    class Counting:
        def __init__(self) -> None:
            self.calls: list[str] = []

        async def request(self, method, path, raw_query, body=None, headers=None):  # type: ignore[no-untyped-def]
            self.calls.append(path)
            if path == "/api/v3/depth":
                body = b'{"bids":[["87900","1"]],"asks":[["87904","1"]],"lastUpdateId":1}'
            else:
                body = b'{"symbol":"BTCUSDT","price":"87900"}'
            return RawResponse(200, body, "application/json")

        async def close(self) -> None:
            return None

    async def go() -> None:
        t = Counting()
        client = MexcClient(t, UpstreamSettings(market_cache_ms=60_000))
        assert client.cached_market("BTCUSDT") is None
        book = await client.book("BTCUSDT")
        assert client.cached_market("BTCUSDT") is None  # the price is not cached yet
        last = await client.last_price("BTCUSDT")
        assert last == Decimal("87900")
        assert client.cached_market("BTCUSDT") == (book, last)
        assert client.cached_market("BTCUSDT")[0] is await client.book("BTCUSDT")
        assert client.cached_market("ETHUSDT") is None
        await client.last_price("BTCUSDT")
        assert t.calls == ["/api/v3/depth", "/api/v3/ticker/price"]  # answered from the cache
        # an expired entry is not served
        for key, (_exp, resp) in list(client._cache.items()):
            client._cache[key] = (0.0, resp)
        assert client.cached_market("BTCUSDT") is None
        uncached = MexcClient(Counting(), UpstreamSettings(market_cache_ms=0))
        await uncached.book("BTCUSDT")
        await uncached.last_price("BTCUSDT")
        assert uncached.cached_market("BTCUSDT") is None  # no cache: always fetched

    asyncio.run(go())
