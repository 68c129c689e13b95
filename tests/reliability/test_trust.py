"""DNS rebinding and cross-site state changes (issue 17, "Security").

A page on attacker.example whose name the attacker re-points at 127.0.0.1 talks to the
sidecar as a same-origin page: the browser sends `Host: attacker.example` and an Origin
of attacker.example. The dashboard and the admin API refuse any Host that is not a
loopback name, the listen address or one of `server.allowed_hosts`; their state changes
also refuse an Origin or Referer naming another host; a switch to live on the admin API
needs an explicit confirmation. The MEXC API, /healthz and /metrics answer any Host (bots
in Docker reach the sidecar by service name).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from fake_upstream import FakeMexc
from mexc_client import ccxt_query
from relsupport import KEY, NOW, SECRET, Caller, make_settings

from proxy import keys, trust
from proxy.app import create_app
from proxy.clock import FixedClock
from proxy.config import ConfigError, LiveSettings, ServerSettings, load_settings, settings_from_mapping

FOREIGN = ["attacker.example", "attacker.example:8080", "127.0.0.1.attacker.example",
           "localhost.attacker.example", "evil.localhost", "127.1", "2130706433", "0.0.0.0",
           "[::ffff:7f00:1]", "localhost:80:80", "[::1", "", "local host"]
LOOPBACK = ["localhost", "LOCALHOST:8080", "localhost.", "127.0.0.1", "127.0.0.1:1",
            "127.200.3.4:8080", "[::1]", "[::1]:8080"]

READS = ["/dashboard/", "/dashboard/settings", "/dashboard/events", "/dashboard/api/state",
         "/dashboard/export/1/orders.csv", "/admin/api/accounts", "/admin/api/accounts/1",
         "/admin/api/mode"]
CHANGES = [
    ("/admin/api/accounts/1/fund", {"asset": "USDT", "amount": "5"}),
    ("/admin/api/accounts/1/balance", {"asset": "USDT", "amount": "5"}),
    ("/admin/api/accounts/1/reset", {}),
    ("/admin/api/mode", {"mode": "paper"}),
]


def url_of(server: Any) -> str:
    return str(server.make_url("")).rstrip("/")


async def app_client(aiohttp_client: Any, fake_server: Any, tmp_path: Path, **kw: Any) -> TestClient:
    server = kw.pop("server", ServerSettings())
    settings = make_settings(tmp_path, url_of(fake_server), server=server, **kw)
    return await aiohttp_client(create_app(settings, clock=FixedClock(NOW)))


async def csrf(client: TestClient, host: str | None = None) -> tuple[int, str, dict[str, str]]:
    """(status, the page's CSRF token or "", the cookies it set) of the settings page."""
    headers = {"Host": host} if host is not None else {}
    resp = await client.get("/dashboard/settings", headers=headers)
    m = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', await resp.text())
    cookies = {k: v.value for k, v in resp.cookies.items()}
    return resp.status, m.group(1) if m else "", cookies


def balances(client: TestClient) -> Any:
    return tuple(client.app[keys.SERVICE].balances(1))


@pytest.mark.parametrize("host", FOREIGN)
async def test_dashboard_and_admin_api_refuse_a_foreign_host(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, host: str
) -> None:
    """The rebinding attack as observed: no admin token (the default), a foreign Host and
    a matching Origin. Nothing is read, nothing changes, no CSRF cookie or token."""
    client = await app_client(aiohttp_client, fake_server, tmp_path)
    before = balances(client)
    origin = {"Origin": f"http://{host}"} if host else {}
    for path in READS:
        resp = await client.get(path, headers={"Host": host, **origin}, allow_redirects=False)
        assert resp.status == 403, (path, resp.status)
        assert "Set-Cookie" not in resp.headers
        assert "csrf" not in (await resp.text()).lower()
    for path, payload in CHANGES:
        resp = await client.post(path, json=payload, headers={"Host": host, **origin})
        assert resp.status == 403, (path, await resp.text())
    status, token, cookies = await csrf(client, host)
    assert (status, token, cookies) == (403, "", {})
    assert balances(client) == before


async def test_the_observed_attack_cannot_switch_to_live(
    aiohttp_client: Any, fake_server: Any, fake: FakeMexc, tmp_path: Path
) -> None:
    """With live armed: the rebinding page's `POST /admin/api/mode {"mode":"live"}` (with
    or without the confirmation) is refused, and the next signed request stays local."""
    client = await app_client(aiohttp_client, fake_server, tmp_path,
                              live=LiveSettings(enabled=True), mode="live")
    mode = client.app[keys.MODE]
    resp = await client.post("/admin/api/mode", json={"mode": "paper"})
    assert resp.status == 200 and mode.current == "paper"
    attacker = {"Host": "attacker.example:8080", "Origin": "http://attacker.example:8080"}
    for payload in ({"mode": "live"}, {"mode": "live", "confirm": "LIVE"}):
        resp = await client.post("/admin/api/mode", json=payload, headers=attacker)
        assert resp.status == 403
    assert mode.current == "paper"
    status, _ = await Caller(client, KEY, SECRET, FixedClock(NOW)).call("GET", "/api/v3/account", {})
    assert status == 200
    assert fake.signed_requests() == []


@pytest.mark.parametrize("host", LOOPBACK)
async def test_loopback_names_are_trusted(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, host: str
) -> None:
    client = await app_client(aiohttp_client, fake_server, tmp_path)
    for path in READS:
        resp = await client.get(path, headers={"Host": host})
        assert resp.status == 200, (path, resp.status)
    status, token, _ = await csrf(client, host)
    assert status == 200 and token
    resp = await client.post("/admin/api/accounts/1/fund", json={"asset": "USDT", "amount": "1"},
                             headers={"Host": host, "Origin": f"http://{host}"})
    assert resp.status == 200, await resp.text()


async def test_configured_hosts_and_the_listen_address_are_trusted(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path
) -> None:
    server = ServerSettings(host="192.0.2.7", admin_token="tok-for-trust-tests",
                            allowed_hosts=("paper.internal", "mexc-paper"))
    client = await app_client(aiohttp_client, fake_server, tmp_path, server=server)
    auth = {"X-Admin-Token": "tok-for-trust-tests"}
    for host in ("paper.internal", "PAPER.internal:8080", "mexc-paper:8080", "192.0.2.7:8080",
                 "localhost"):
        resp = await client.get("/dashboard/", headers={"Host": host})
        assert resp.status == 200, host
        resp = await client.post("/admin/api/accounts/1/fund", json={"asset": "USDT", "amount": "1"},
                                 headers={"Host": host, "Origin": f"http://{host}", **auth})
        assert resp.status == 200, host
    for host in ("other.internal", "paper.internal.attacker.example", "192.0.2.8"):
        resp = await client.get("/dashboard/", headers={"Host": host})
        assert resp.status == 403, host
        resp = await client.post("/admin/api/accounts/1/fund", json={"asset": "USDT", "amount": "1"},
                                 headers={"Host": host})
        assert resp.status == 403, host


TOKEN = "tok-for-trust-tests"


@pytest.mark.parametrize("host", ["172.18.0.5:8080", "sidecar", "attacker.example", "[fd00::5]:8080"])
async def test_the_admin_token_vouches_for_any_host_on_the_admin_api_only(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path, host: str
) -> None:
    """A script in another container calling the admin API by the sidecar's address (or a
    name nobody listed) with the admin token is answered: a rebinding page cannot know the
    token, and a browser never adds it by itself. Without the token, with a wrong one, or
    with no token configured, the Host is checked; the dashboard always checks it; the
    Origin/Referer rule still holds."""
    client = await app_client(aiohttp_client, fake_server, tmp_path,
                              server=ServerSettings(admin_token=TOKEN))
    fund = ("/admin/api/accounts/1/fund", {"asset": "USDT", "amount": "1"})
    for auth in ({"X-Admin-Token": TOKEN}, {"Authorization": f"Bearer {TOKEN}"}):
        resp = await client.get("/admin/api/accounts/1", headers={"Host": host, **auth})
        assert resp.status == 200, await resp.text()
        resp = await client.post(fund[0], json=fund[1], headers={"Host": host, **auth})
        assert resp.status == 200, await resp.text()
    usdt = next(b.free for b in client.app[keys.SERVICE].balances(1) if b.asset == "USDT")
    assert str(usdt) == "10002"
    for auth in ({}, {"X-Admin-Token": TOKEN + "x"}, {"Authorization": "Bearer nope"},
                 {"X-Admin-Token": "", "Authorization": "Basic " + TOKEN}):
        for method, path in (("GET", "/admin/api/accounts"), ("POST", fund[0])):
            resp = await client.request(method, path, json=fund[1], headers={"Host": host, **auth})
            assert resp.status == 403, (auth, method, await resp.text())
            assert "this Host is not served here" in (await resp.json())["error"]
    resp = await client.post(fund[0], json=fund[1], headers={
        "Host": host, "X-Admin-Token": TOKEN, "Origin": "http://attacker.example"})
    assert resp.status == 403 and "Origin names another site" in (await resp.json())["error"]
    for path in ("/dashboard/", "/dashboard/settings"):
        resp = await client.get(path, headers={"Host": host, "X-Admin-Token": TOKEN})
        assert resp.status == 403 and "Set-Cookie" not in resp.headers
    # no token configured: nothing vouches, whatever the request carries
    client = await app_client(aiohttp_client, fake_server, tmp_path / "none")
    resp = await client.post(fund[0], json=fund[1], headers={"Host": host, "X-Admin-Token": TOKEN})
    assert resp.status == 403


@pytest.mark.parametrize("path", ["/api/v3/ping", "/api/v3/time", "/api/v3/depth?symbol=BTCUSDT",
                                  "/api/v1/contract/detail", "/healthz", "/metrics"])
async def test_mexc_api_and_probes_answer_any_host(client: TestClient, path: str) -> None:
    for host in ("mexc-paper:8080", "attacker.example", "sidecar"):
        resp = await client.get(path, headers={"Host": host})
        assert resp.status == 200, (path, host, await resp.text())


async def test_signed_mexc_calls_answer_any_host(client: TestClient, clock: FixedClock) -> None:
    for host in ("mexc-paper:8080", "attacker.example"):
        q = ccxt_query({}, SECRET, ts=clock.now_ms())
        resp = await client.get(f"/api/v3/account?{q}", headers={"Host": host, "X-MEXC-APIKEY": KEY})
        assert resp.status == 200, await resp.text()


@pytest.mark.parametrize("header,value", [
    ("Origin", "http://attacker.example"),
    ("Origin", "http://attacker.example:8080"),
    ("Origin", "null"),
    ("Origin", "http://localhost.attacker.example"),
    ("Origin", "not a url"),
    ("Origin", "file://"),
    ("Referer", "http://attacker.example/dashboard/settings"),
    ("Referer", "http://127.0.0.1.attacker.example/"),
    ("Referer", "//attacker.example/x"),
])
async def test_state_changes_refuse_a_foreign_origin_or_referer(
    client: TestClient, header: str, value: str
) -> None:
    before = balances(client)
    for path, payload in CHANGES:
        resp = await client.post(path, json=payload, headers={header: value})
        assert resp.status == 403, (path, await resp.text())
    status, token, _ = await csrf(client)
    assert status == 200 and token
    for path, form in (("/dashboard/accounts/1/reset", {"confirm": "yes"}),
                       ("/dashboard/settings/mode", {"mode": "paper"})):
        resp = await client.post(path, data={"csrf_token": token, **form}, headers={header: value},
                                 allow_redirects=False)
        assert resp.status == 403, (path, await resp.text())
    assert balances(client) == before


async def test_state_changes_accept_their_own_origin_and_referer(client: TestClient) -> None:
    own = f"http://127.0.0.1:{client.port}"
    for headers in ({"Origin": own}, {"Referer": f"{own}/dashboard/settings"},
                    {"Origin": "http://localhost:8080", "Referer": "http://[::1]:8080/x"}, {}):
        resp = await client.post("/admin/api/accounts/1/fund", json={"asset": "USDT", "amount": "1"},
                                 headers=headers)
        assert resp.status == 200, (headers, await resp.text())
        _, token, _ = await csrf(client)
        resp = await client.post("/dashboard/settings/mode", headers=headers, allow_redirects=False,
                                 data={"csrf_token": token, "mode": "paper"})
        assert resp.status == 303, (headers, await resp.text())


async def test_admin_switch_to_live_needs_an_explicit_confirmation(
    aiohttp_client: Any, fake_server: Any, tmp_path: Path
) -> None:
    client = await app_client(aiohttp_client, fake_server, tmp_path,
                              live=LiveSettings(enabled=True), mode="live")
    mode = client.app[keys.MODE]
    assert (await client.post("/admin/api/mode", json={"mode": "paper"})).status == 200
    for payload in ({"mode": "live"}, {"mode": "live", "confirm": "yes"},
                    {"mode": "live", "confirm": "live"}, {"mode": "live", "confirm": True},
                    {"mode": "live", "confirm": ["LIVE"]}):
        resp = await client.post("/admin/api/mode", json=payload)
        assert resp.status == 400, (payload, await resp.text())
        assert '"confirm":"LIVE"' in (await resp.json())["error"].replace(" ", "")
        assert mode.current == "paper"
    assert await client.app[keys.STORE].events(kind="mode.switch") != []
    resp = await client.post("/admin/api/mode", json={"mode": "live", "confirm": "LIVE"})
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"mode": "live", "live_armed": True}
    # paper needs no confirmation: it is the safe side
    assert (await client.post("/admin/api/mode", json={"mode": "paper"})).status == 200
    assert mode.current == "paper"


async def test_live_confirmation_is_refused_when_live_is_not_armed(client: TestClient) -> None:
    resp = await client.post("/admin/api/mode", json={"mode": "live", "confirm": "LIVE"})
    assert resp.status == 403
    assert client.app[keys.MODE].current == "paper"


def test_allowed_hosts_config_is_validated() -> None:
    s = settings_from_mapping({"server": {"allowed_hosts": ["Paper.Internal", "[fd00::1]", "10.0.0.2"]}}, {})
    assert s.server.allowed_hosts == ("paper.internal", "fd00::1", "10.0.0.2")
    assert settings_from_mapping({}, {}).server.allowed_hosts == ()
    for bad in (["http://x"], ["x/y"], ["a:80"], [""], [5], ["a b"], {"a": 1}, "a b, c", "x/y"):
        with pytest.raises(ConfigError, match=r"server\.allowed_hosts"):
            settings_from_mapping({"server": {"allowed_hosts": bad}}, {})


def test_allowed_hosts_come_from_the_environment_in_the_committed_config() -> None:
    """`allowed_hosts: ${MEXC_PAPER_ALLOWED_HOSTS:-}`: one comma-separated string, as
    server.tls.names (the Docker image sets it to its service name)."""
    root = Path(__file__).resolve().parents[2]
    committed = load_settings(root / "config.yaml", {})
    assert committed.server.allowed_hosts == ()
    s = load_settings(root / "config.yaml", {"MEXC_PAPER_ALLOWED_HOSTS": "mexc-paper, Paper.LAN,10.0.0.2,"})
    assert s.server.allowed_hosts == ("mexc-paper", "paper.lan", "10.0.0.2")
    twice = settings_from_mapping({"server": {"allowed_hosts": "a.example,a.example"}}, {})
    assert twice.server.allowed_hosts == ("a.example",)


@pytest.mark.parametrize("value,name", [
    ("localhost", "localhost"), ("LocalHost:8080", "localhost"), ("[::1]:80", "::1"),
    ("[::1]", "::1"), ("example.com.", "example.com"), ("a:", "a"), ("a:x", None), ("[::1", None),
    ("", None), ("a b", None), ("[::1]x", None),
])
def test_host_names_are_parsed_strictly(value: str, name: str | None) -> None:
    assert trust.host_name(value) == name
