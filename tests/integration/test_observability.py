"""/metrics, /healthz, JSON logs that carry the mode, and MEXC-shaped answers for wrong
methods on the paths the sidecar answers itself."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import orjson
from aiohttp.test_utils import TestClient
from conftest import NOW, make_settings
from fake_upstream import FakeMexc, Fault
from prometheus_client.parser import text_string_to_metric_families

from proxy import logsetup
from proxy.app import create_app
from proxy.config import UpstreamSettings


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_metrics_count_requests_orders_fills_and_upstream(
    client: TestClient, signed: Any, fake: FakeMexc
) -> None:
    status, ack = await signed(
        "POST", "/api/v3/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}
    )
    assert status == 200, ack
    status, _ = await signed(
        "POST", "/api/v3/order",
        {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "1", "price": "80000"},
    )
    assert status == 400  # 80,000 USDT: more than the account holds
    fake.faults["/api/v3/ticker/price"] = Fault(status=502, body="<html>bad gateway</html>",
                                                content_type="text/html", times=1)
    resp = await client.get("/api/v3/ticker/price?symbol=ETHUSDT")
    assert resp.status == 502

    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.content_type == "text/plain"
    m = _samples(await resp.text())
    assert m[("mexc_paper_requests_total", (("path", "/api/v3/order"), ("status", "200")))] == 1
    assert m[("mexc_paper_requests_total", (("path", "/api/v3/order"), ("status", "400")))] == 1
    assert m[("mexc_paper_orders_total", (("outcome", "filled"), ("type", "MARKET")))] == 1
    assert m[("mexc_paper_orders_total", (("outcome", "rejected"), ("type", "LIMIT")))] == 1
    assert m[("mexc_paper_fills_total", (("role", "taker"),))] >= 1
    errors = ("mexc_paper_upstream_errors_total", (("kind", "http5xx"), ("path", "/api/v3/ticker/price")))
    assert m[errors] == 1
    latency = [v for (name, labels), v in m.items()
               if name == "mexc_paper_upstream_seconds_count" and ("path", "/api/v3/depth") in labels]
    assert latency and latency[0] >= 1


async def test_healthz_names_mode_version_upstream_and_storage(client: TestClient) -> None:
    resp = await client.get("/healthz")
    body = await resp.json()
    assert resp.status == 200
    assert body["status"] == "ok"
    assert body["mode"] == "paper"
    assert body["version"]
    assert {"upstream", "storage"} <= body.keys()


DEPTH = "/api/v3/depth?symbol=BTCUSDT&limit=5"


def _outage_lines(logs: Any) -> tuple[list[logging.LogRecord], list[logging.LogRecord]]:
    records = [r for r in logs.records if r.name == "proxy.upstream"]
    return ([r for r in records if " is down (" in r.getMessage()],
            [r for r in records if " answers again after " in r.getMessage()])


async def test_a_down_upstream_makes_healthz_degraded_with_http_200_and_is_logged_once(
    client: TestClient, fake: FakeMexc, captured_logs: Any
) -> None:
    """Every public call answers 503 while MEXC is unreachable: /healthz says so, with the
    reason, and stays HTTP 200 (Docker must not restart a live sidecar in a loop); the log
    says it once when the outage starts and once when it ends."""
    assert (await client.get(DEPTH)).status == 200
    body = await (await client.get("/healthz")).json()
    assert (body["status"], body["reasons"], body["upstream"]["ok"]) == ("ok", [], True)

    fake.faults["*"] = Fault(drop=True)  # the connection closes without an answer
    for _ in range(3):
        resp = await client.get(DEPTH)
        assert resp.status == 503, await resp.text()
    resp = await client.get("/healthz")
    assert resp.status == 200
    body = await resp.json()
    up = body["upstream"]
    assert body["status"] == "degraded"
    assert up["ok"] is False and up["down_since_ms"] == NOW
    assert up["reason"] == up["last_error"] and up["reason"].startswith("connect: ")
    assert body["reasons"] == [f"upstream: {up['reason']}"]
    assert body["storage"]["ok"] is True and "reason" not in body["storage"]
    down, back = _outage_lines(captured_logs)
    assert len(down) == 1 and back == []
    assert down[0].levelno == logging.WARNING and up["reason"] in down[0].getMessage()

    fake.faults.clear()
    for _ in range(2):
        assert (await client.get(DEPTH)).status == 200
    resp = await client.get("/healthz")
    body = await resp.json()
    assert (resp.status, body["status"], body["reasons"]) == (200, "ok", [])
    assert body["upstream"]["ok"] is True and body["upstream"]["down_since_ms"] is None
    assert "reason" not in body["upstream"]
    down, back = _outage_lines(captured_logs)
    assert len(down) == 1 and len(back) == 1


async def test_an_unreachable_upstream_is_degraded_not_ok(aiohttp_client: Any, tmp_path: Path) -> None:
    """The issue's case: nothing listens at the upstream's address."""
    client = await aiohttp_client(create_app(make_settings(tmp_path, "http://127.0.0.1:9")))
    assert (await client.get("/api/v3/ping")).status == 503
    resp = await client.get("/healthz")
    body = await resp.json()
    assert (resp.status, body["status"]) == (200, "degraded")
    assert body["reasons"][0].startswith("upstream: connect: upstream unreachable")


async def test_a_replay_without_a_recording_is_no_outage(aiohttp_client: Any, tmp_path: Path) -> None:
    """A path the cassette lacks is an answer about one request, not a down upstream."""
    cassette = tmp_path / "ping-only.yaml"
    cassette.write_text(
        "version: 1\ninteractions:\n"
        "- request: {method: GET, uri: 'https://api.mexc.com/api/v3/ping'}\n"
        "  response: {status: {code: 200}, headers: {Content-Type: [application/json]},\n"
        "             body: {string: '{}'}}\n")
    up = UpstreamSettings(replay_path=str(cassette), market_cache_ms=0)
    settings = make_settings(tmp_path, upstream=up)
    client = await aiohttp_client(create_app(settings))
    assert (await client.get("/api/v3/ping")).status == 200
    assert (await client.get(DEPTH)).status >= 500
    body = await (await client.get("/healthz")).json()
    assert (body["status"], body["upstream"]["ok"]) == ("ok", True)
    assert body["upstream"]["last_error"].startswith("replay: no recording")


async def test_wrong_method_on_local_paths_is_mexc_405(aiohttp_client: Any, tmp_path: Path) -> None:
    client = await aiohttp_client(create_app(make_settings(tmp_path)))
    for method, path in [("POST", "/api/v3/time"), ("DELETE", "/api/v3/time"),
                         ("POST", "/api/v1/contract/detail"), ("PUT", "/api/v3/ticker/price"),
                         ("PATCH", "/api/v3/order")]:
        resp = await client.request(method, path)
        assert resp.status == 405, (method, path)
        assert await resp.json() == {"code": 405, "msg": "Method Not Allowed"}
    resp = await client.get("/api/v3/time")
    assert resp.status == 200 and "serverTime" in await resp.json()


def _json_lines(mode_getter: Any, emit: Any) -> list[dict[str, Any]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logsetup.JsonFormatter())
    handler.addFilter(logsetup.ContextFilter(mode_getter, ["mx0vsecretkey123456", "s3cr3t-value"]))
    log = logging.getLogger("proxy.test.jsonlog")
    log.addHandler(handler)
    log.propagate = False
    try:
        emit(log)
    finally:
        log.removeHandler(handler)
        log.propagate = True
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_json_log_lines_carry_the_mode_and_no_secret() -> None:
    lines = _json_lines(
        lambda: "paper",
        lambda log: (
            log.info("order %s accepted", "C02__1", extra={"account": "mx0v...3456"}),
            log.info("live request %s", "POST /api/v3/order", extra={"mode": "live"}),
            log.warning("key mx0vsecretkey123456 used, secret s3cr3t-value, signature=%s", "ab" * 32),
        ),
    )
    assert [(x["mode"], x["level"]) for x in lines] == [
        ("paper", "INFO"), ("live", "INFO"), ("paper", "WARNING")]
    assert lines[0]["msg"] == "order C02__1 accepted" and lines[0]["account"] == "mx0v...3456"
    assert lines[0]["logger"] == "proxy.test.jsonlog" and lines[0]["time"].endswith("Z")
    leaked = lines[2]["msg"]
    assert "mx0vsecretkey123456" not in leaked and "s3cr3t-value" not in leaked
    assert "ab" * 32 not in leaked and "signature=<redacted>" in leaked


def test_text_log_lines_show_the_mode() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logsetup.TextFormatter())
    handler.addFilter(logsetup.ContextFilter(lambda: "live"))
    log = logging.getLogger("proxy.test.textlog")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.info("order placed")
    finally:
        log.removeHandler(handler)
        log.propagate = True
    assert "[live] proxy.test.textlog: order placed" in stream.getvalue()
