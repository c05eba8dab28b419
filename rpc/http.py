"""Plain HTTP on the API port: ``GET /metrics``, ``GET /healthz`` and the dashboard's files (issue 14).

websockets reads every request on the port and hands it to ``process_request`` before any handshake
(:meth:`rpc.server.ApiServer._check_request`); a request for another path than the API's is answered here
with a whole HTTP response, and the connection closes after it (websockets speaks no keep-alive, which
Prometheus and probes do not need). So there is one listening socket and one server, no second port.

Who may read what:

* ``/metrics`` and ``/healthz`` carry the service's operating state: they honour the API token
  (``Authorization: Bearer`` or ``?token=``, RFC 6750, as the WebSocket). With ``ws.metrics_public`` a
  client from the trusted networks (``sip.trusted``: the operator's own, where the proxy and the
  monitoring live) reaches them without it, since Prometheus' and Kubernetes' probes are simplest
  without secrets; anyone else still needs the token.
* ``/`` and the files beside it (``rpc/static``, shipped in the wheel) are the dashboard's code, the same
  for everyone: served without the token, which the page takes from its own query string and sends on the
  WebSocket, where every call's data is. A module script's own imports cannot carry the page's query.

The answers are never cached (``Cache-Control: no-store``); unknown paths get 404. Every answer also carries
:data:`SECURITY_HEADERS`: the browser must not guess a file's type (``nosniff``), the page may run only its own
script and style and talk only to its own origin (a Content Security Policy, CSP3 section 6.7.2.8: ``'self'``
matches ``ws:``/``wss:`` of the page's host and port), and since the token is in the page's URL no request
it makes may send that URL on as a Referer (``Referrer-Policy: no-referrer``).

The page finds the API at the ``<meta name="call-api-path">`` of index.html, which is served with the
configured ``ws.path`` in it (:data:`PATH_META`), so a service on another ``--ws-path`` needs no other page.
"""

from __future__ import annotations

import email.utils
import hmac
import html
import ipaddress
import json
import logging
from collections.abc import Callable, Sequence
from http import HTTPStatus
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Final, Protocol
from urllib.parse import unquote

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Response

from b2bua.config import IPNetwork, WsConfig

__all__ = ["PATH_META", "SECURITY_HEADERS", "STATIC", "HttpFront", "HttpLogFilter", "SipStatus", "token_verdict"]

#: websockets' own log lines for the server (connection open, rejected ...), under the API's logger.
websockets_logger = logging.getLogger("call_api.rpc.websockets")

#: The dashboard's files: served at ``/`` (index.html) and ``/<name>``.
STATIC: Final = resources.files("rpc") / "static"
_TYPES: Final = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
                 ".ico": "image/x-icon", ".json": "application/json"}

#: What the browser may do with an answer (see the module docstring); on every answer, dashboard or not.
SECURITY_HEADERS: Final = (
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                                "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    ("Referrer-Policy", "no-referrer"),
)

#: The element of index.html that names the API's path, replaced by the configured one when served.
PATH_META: Final = b'<meta name="call-api-path" content="/call-api">'


class HttpLogFilter(logging.Filter):
    """Drops websockets' "connection rejected (200 OK)" line: a scrape a second would otherwise log one."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (record.msg == "connection rejected (%d %s)" and isinstance(args, tuple) and args
                    and isinstance(args[0], int) and args[0] < 400)


websockets_logger.addFilter(HttpLogFilter())


class SipStatus(Protocol):
    """What ``/healthz`` asks of the SIP side (:class:`b2bua.io.runtime.Service`)."""

    def listening(self) -> list[str]:
        """The SIP addresses served (``udp:127.0.0.1:5080``), empty when the listeners are down."""
        ...


class MetricsSource(Protocol):
    """What ``/metrics`` serves (:class:`b2bua.io.metrics.Metrics`): the text and its Content-Type."""

    @property
    def content_type(self) -> str: ...

    def render(self) -> bytes: ...


class HttpFront:
    """Answers the plain HTTP requests that reach the API port (see the module docstring)."""

    def __init__(self, config: WsConfig, *, trusted: Sequence[IPNetwork] = (), metrics: MetricsSource | None = None,
                 sip: SipStatus | None = None, stopping: Callable[[], bool] = lambda: False,
                 connections: Callable[[], int] = lambda: 0) -> None:
        self.config = config
        self.trusted = tuple(trusted)
        self.metrics = metrics
        self.sip = sip
        self.stopping = stopping
        self.connections = connections

    def answer(self, connection: ServerConnection, path: str, query: str, headers: Headers) -> Response:
        """The response to ``GET path?query``."""
        if path in ("/metrics", "/healthz"):
            refusal = self._refusal(connection, headers, query)
            if refusal is not None:
                return refusal
            return self._metrics() if path == "/metrics" else self._health()
        file = _static_file(path)
        if file is None:
            return _response(HTTPStatus.NOT_FOUND, f"Not Found: the Call API is at {self.config.path}\n".encode(),
                             "text/plain; charset=utf-8")
        body = file.read_bytes()
        if file.name == "index.html":
            api_path = html.escape(self.config.path, quote=True).encode()
            body = body.replace(PATH_META, b'<meta name="call-api-path" content="' + api_path + b'">')
        return _response(HTTPStatus.OK, body, _TYPES.get(_suffix(file.name), "application/octet-stream"))

    def _refusal(self, connection: ServerConnection, headers: Headers, query: str) -> Response | None:
        token = self.config.token
        if token is None:
            return None
        if self.config.metrics_public and _within(connection.remote_address, self.trusted):
            return None
        verdict = token_verdict(token, headers, query)
        return None if verdict is None else unauthorized(verdict)

    def _metrics(self) -> Response:
        if self.metrics is None:
            return _response(HTTPStatus.NOT_FOUND, b"Not Found: no metrics in this server\n",
                             "text/plain; charset=utf-8")
        return _response(HTTPStatus.OK, self.metrics.render(), self.metrics.content_type)

    def _health(self) -> Response:
        """200 while the SIP listeners and the API serve; 503 once stopping (calls are being ended, new
        WebSocket connections refused) or when the SIP side is down."""
        listening = self.sip.listening() if self.sip is not None else []
        if self.stopping():
            status, state = HTTPStatus.SERVICE_UNAVAILABLE, "stopping"
        elif self.sip is not None and not listening:
            status, state = HTTPStatus.SERVICE_UNAVAILABLE, "sip down"
        else:
            status, state = HTTPStatus.OK, "ok"
        body = {"status": state, "sip": listening, "api": self.config.path, "connections": self.connections()}
        return _response(status, json.dumps(body).encode() + b"\n", "application/json")


def unauthorized(verdict: str) -> Response:
    """401 with ``WWW-Authenticate: verdict`` (RFC 6750 section 3)."""
    response = _response(HTTPStatus.UNAUTHORIZED, b"Unauthorized: send 'Authorization: Bearer <token>' or "
                                                   b"?token=<token>\n", "text/plain; charset=utf-8")
    response.headers["WWW-Authenticate"] = verdict
    return response


def token_verdict(token: str, headers: Headers, query: str) -> str | None:
    """None when the request carries ``token`` (RFC 6750 sections 2.1 and 2.3), else the WWW-Authenticate value."""
    expected = token.encode()
    given: list[str] = []
    for value in headers.get_all("Authorization"):
        scheme, _, credentials = value.strip().partition(" ")
        if scheme.lower() == "bearer":
            given.append(credentials.strip())
    for pair in query.split("&"):
        name, equals, value = pair.partition("=")
        if equals and unquote(name) == "token":
            given.append(unquote(value))
    if any(hmac.compare_digest(value.encode("utf-8", "replace"), expected) for value in given):
        return None
    if given:
        return 'Bearer realm="call-api", error="invalid_token"'
    return 'Bearer realm="call-api"'


def _within(address: object, networks: Sequence[IPNetwork]) -> bool:
    """Is the peer's address in one of ``networks``? (An IPv4-mapped IPv6 peer counts as its IPv4 address.)"""
    if not isinstance(address, tuple) or not address:
        return False
    try:
        ip = ipaddress.ip_address(str(address[0]).split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == network.version and ip in network for network in networks)


def _static_file(path: str) -> Traversable | None:
    """The shipped file ``path`` names (``/`` is index.html): one plain name, no directories, no dot files."""
    name = "index.html" if path == "/" else unquote(path[1:])
    if not name or "/" in name or "\\" in name or name.startswith(".") or "\0" in name:
        return None
    file = STATIC / name
    return file if file.is_file() else None


def _suffix(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def _response(status: HTTPStatus, body: bytes, content_type: str) -> Response:
    headers = Headers([("Date", email.utils.formatdate(usegmt=True)), ("Connection", "close"),
                       ("Content-Length", str(len(body))), ("Content-Type", content_type),
                       ("Cache-Control", "no-store"), *SECURITY_HEADERS])
    return Response(status.value, status.phrase, headers, body)
