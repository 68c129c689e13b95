"""Prometheus metrics, in a registry owned by the app (no module-level singletons)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest


class LabelledCounter:
    """`counter.labels(*values).inc()` with the children kept: labels() validates and
    locks on every call, and these counters move on every request."""

    def __init__(self, counter: Counter) -> None:
        self._counter = counter
        self._children: dict[tuple[str, ...], Any] = {}

    def inc(self, *values: str) -> None:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._counter.labels(*values)
        child.inc()


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "mexc_paper_requests", "HTTP requests by route and status", ["path", "status"],
            registry=r,
        )
        self.orders = Counter(
            "mexc_paper_orders", "Order commands by type and outcome", ["type", "outcome"],
            registry=r,
        )
        self.fills = Counter(
            "mexc_paper_fills", "Paper fills by liquidity role", ["role"], registry=r
        )
        self.upstream_latency = Histogram(
            "mexc_paper_upstream_seconds",
            "Upstream request latency",
            ["path"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.upstream_errors = Counter(
            "mexc_paper_upstream_errors", "Upstream failures by path and kind", ["path", "kind"],
            registry=r,
        )
        self.open_orders = Gauge(
            "mexc_paper_open_orders", "Open paper orders (all accounts)", registry=r
        )
        self.commit_batches = Counter(
            "mexc_paper_commit_batches", "Group-commit transactions written", registry=r
        )

        # GET /ws (proxy/ws/streams.py sets the gauges' functions)
        self.ws_connections = Gauge(
            "mexc_paper_ws_connections",
            "Open /ws connections: private (opened with a sidecar listenKey), public, or live "
            "(MEXC's listenKey relayed to MEXC in live mode)", ["kind"],
            registry=r,
        )
        self.ws_subscriptions = Gauge(
            "mexc_paper_ws_subscriptions", "Channel subscriptions on open /ws connections",
            ["kind"], registry=r,
        )
        self.ws_pushes = Counter(
            "mexc_paper_ws_pushes", "Data frames pushed on /ws, by channel (without symbol)",
            ["channel"], registry=r,
        )
        self.ws_disconnects = Counter(
            "mexc_paper_ws_disconnects", "/ws connections ended, by reason", ["reason"],
            registry=r,
        )

        self.count_order = LabelledCounter(self.orders).inc  # (type, outcome)
        self.count_fill = LabelledCounter(self.fills).inc  # (role,)

    def render(self) -> bytes:
        return generate_latest(self.registry)
