"""Plain HTTP on the API port (rpc/http.py): /metrics, /healthz and the dashboard's files, read with a real HTTP
client (urllib) from the running API server; the WebSocket path beside them is rpc/server.py's (test_server)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.client import connect

from b2bua.config import IPNetwork, WsConfig
from rpc.http import PATH_META, SECURITY_HEADERS, STATIC, HttpLogFilter, _within
from rpc.server import ApiServer

from .api_fakes import FakeControl, FakeService, run, status_of

LOOPBACK: tuple[IPNetwork, ...] = (ipaddress.ip_network("127.0.0.0/8"),)


class Sip:
    def __init__(self) -> None:
        self.addresses = ["udp:127.0.0.1:5080", "tcp:127.0.0.1:5080"]

    def listening(self) -> list[str]:
        return self.addresses


class Exporter:
    content_type = "text/plain; version=0.0.4; charset=utf-8"

    def __init__(self) -> None:
        self.scrapes = 0

    def render(self) -> bytes:
        self.scrapes += 1
        return b"# HELP call_api_up One.\n# TYPE call_api_up gauge\ncall_api_up 1.0\n"


@asynccontextmanager
async def server(*, trusted: tuple[IPNetwork, ...] = (), sip: Sip | None = None, metrics: Exporter | None = None,
                 **ws: Any) -> AsyncIterator[ApiServer]:
    api = ApiServer(WsConfig(host="127.0.0.1", port=0, **ws), FakeService(), FakeControl(), lambda: "cmd",
                    metrics=metrics, trusted=trusted, sip=sip)
    await api.start()
    try:
        yield api
    finally:
        await api.stop()


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of ``GET url`` (an HTTP error status is an answer too)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


async def get(api: ApiServer, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    return await asyncio.to_thread(fetch, f"http://127.0.0.1:{api.port}{path}", headers)


def test_healthz_is_200_while_serving_and_503_while_stopping() -> None:
    async def body() -> None:
        sip = Sip()
        async with server(sip=sip) as api:
            status, headers, text = await get(api, "/healthz")
            assert status == 200 and headers["Content-Type"] == "application/json"
            assert headers["Cache-Control"] == "no-store"
            assert json.loads(text) == {"status": "ok", "sip": sip.addresses, "api": "/call-api", "connections": 0}
            async with connect(f"ws://127.0.0.1:{api.port}/call-api"):
                assert json.loads((await get(api, "/healthz"))[2])["connections"] == 1
                api.begin_stop()
                status, _, text = await get(api, "/healthz")
                assert status == 503 and json.loads(text)["status"] == "stopping"
                # New WebSocket clients are turned away; the one connected stays for its commands' reports.
                assert (await status_of(f"ws://127.0.0.1:{api.port}/call-api"))[0] == 503
                assert api.connections == 1

    run(body)


def test_healthz_is_503_when_the_sip_listeners_are_down() -> None:
    async def body() -> None:
        sip = Sip()
        sip.addresses = []
        async with server(sip=sip) as api:
            status, _, text = await get(api, "/healthz")
            assert status == 503 and json.loads(text)["status"] == "sip down"

    run(body)


def test_metrics_is_the_exporter_s_text_with_its_content_type() -> None:
    async def body() -> None:
        exporter = Exporter()
        async with server(metrics=exporter) as api:
            status, headers, text = await get(api, "/metrics")
            assert status == 200 and text == Exporter().render() and exporter.scrapes == 1
            assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        async with server() as api:
            assert (await get(api, "/metrics"))[0] == 404

    run(body)


@pytest.mark.parametrize(("path", "headers", "status"), [
    ("/metrics", None, 401),
    ("/healthz", None, 401),
    ("/metrics", {"Authorization": "Bearer wrong"}, 401),
    ("/metrics", {"Authorization": "Bearer s3cret"}, 200),
    ("/metrics?token=s3cret", None, 200),
    ("/healthz?token=s3cret", None, 200),
])
def test_metrics_and_healthz_need_the_token(path: str, headers: dict[str, str] | None, status: int) -> None:
    async def body() -> None:
        async with server(sip=Sip(), metrics=Exporter(), token="s3cret", trusted=LOOPBACK) as api:
            got, response_headers, _ = await get(api, path, headers)
            assert got == status
            if status == 401:
                assert response_headers["WWW-Authenticate"].startswith('Bearer realm="call-api"')

    run(body)


@pytest.mark.parametrize(("trusted", "status"), [(LOOPBACK, 200), ((ipaddress.ip_network("10.0.0.0/8"),), 401),
                                                 ((ipaddress.ip_network("::1/128"),), 401)])
def test_metrics_public_opens_them_to_the_trusted_networks_only(trusted: tuple[IPNetwork, ...], status: int) -> None:
    async def body() -> None:
        async with server(sip=Sip(), metrics=Exporter(), token="s3cret", trusted=trusted, metrics_public=True) as api:
            assert (await get(api, "/metrics"))[0] == status
            assert (await get(api, "/healthz"))[0] == status
            assert (await get(api, "/metrics?token=s3cret"))[0] == 200
            # The WebSocket itself still needs the token, trusted or not.
            assert (await status_of(f"ws://127.0.0.1:{api.port}/call-api"))[0] == 401

    run(body)


def test_the_dashboard_files_are_served_without_the_token() -> None:
    async def body() -> None:
        async with server(token="s3cret") as api:
            status, headers, text = await get(api, "/")
            assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
            assert text == (STATIC / "index.html").read_bytes()
            assert (await get(api, "/index.html"))[2] == text
            for path in ("/nothing.js", "/..%2Fserver.py", "/%2E%2E/http.py", "/.hidden", "/a/b.js", "/%00"):
                assert (await get(api, path))[0] == 404, path

    run(body)


def test_the_dashboard_files_have_their_types_and_the_browser_is_told_what_it_may_do() -> None:
    """The module script and the style sheet load only with their own types (nosniff); the policy lets the page
    run only its own files and talk only to its own origin; the token in the page's URL goes out as no Referer."""
    async def body() -> None:
        async with server() as api:
            types = {}
            for path in ("/", "/dashboard.js", "/dashboard.css", "/healthz", "/nothing"):
                status, headers, _ = await get(api, path)
                assert status in (200, 404), path
                types[path] = headers["Content-Type"]
                assert headers["X-Content-Type-Options"] == "nosniff", path
                assert headers["Referrer-Policy"] == "no-referrer", path
                directives = headers["Content-Security-Policy"].split(";")
                policy = dict(part.strip().partition(" ")[::2] for part in directives)
                assert policy["default-src"] == "'none'" and policy["connect-src"] == "'self'", policy
                assert policy["script-src"] == policy["style-src"] == "'self'", policy
            assert types["/dashboard.js"] == "text/javascript; charset=utf-8"
            assert types["/dashboard.css"] == "text/css; charset=utf-8"
            assert types["/"] == "text/html; charset=utf-8"
            assert dict(SECURITY_HEADERS)["Referrer-Policy"] == "no-referrer"

    run(body)


def test_the_page_names_the_configured_api_path() -> None:
    async def body() -> None:
        async with server(path="/api&v2") as api:
            page = (await get(api, "/"))[2]
            assert PATH_META in (STATIC / "index.html").read_bytes() and PATH_META not in page
            assert b'<meta name="call-api-path" content="/api&amp;v2">' in page
            assert (await get(api, "/api&v2"))[0] != 200  # the API's path is the WebSocket's, not a page

    run(body)


def test_the_page_loads_only_its_own_module_and_style() -> None:
    """index.html names dashboard.js (a module) and dashboard.css, both shipped beside it, and nothing remote."""
    page = (STATIC / "index.html").read_text()
    assert '<script type="module" src="dashboard.js"></script>' in page
    assert '<link rel="stylesheet" href="dashboard.css">' in page
    assert (STATIC / "dashboard.js").is_file() and (STATIC / "dashboard.css").is_file()
    assert "//" not in page.replace("<!doctype html>", "").split("<body>")[0]  # no CDN in <head>


def test_scrapes_leave_no_log_line_but_refusals_do() -> None:
    keep = HttpLogFilter()

    def record(status: int) -> logging.LogRecord:
        return logging.LogRecord("call_api.rpc.websockets", logging.INFO, __file__, 1, "connection rejected (%d %s)",
                                 (status, "X"), None)

    assert not keep.filter(record(200)) and not keep.filter(record(304))
    assert keep.filter(record(401)) and keep.filter(record(503))
    other = logging.LogRecord("call_api.rpc.websockets", logging.INFO, __file__, 1, "connection open", None, None)
    assert keep.filter(other)


@pytest.mark.parametrize(("address", "inside"), [
    (("127.0.0.1", 4000), True), (("::ffff:127.0.0.1", 4000, 0, 0), True), (("::1", 4000, 0, 0), False),
    (("10.1.2.3", 4000), False), (("fe80::1%eth0", 4000, 0, 2), False), (("not an ip", 1), False), (None, False),
])
def test_trusted_addresses(address: object, inside: bool) -> None:
    assert _within(address, LOOPBACK) is inside
