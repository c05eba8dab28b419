"""build_service: every setting reaches the component that uses it, read back from the built objects; and
the built service starts (SIP, then the API) and stops as a whole."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable
from typing import Any

import pytest

from b2bua.config import SETTINGS, Config, load_config
from b2bua.io.runtime import Service
from b2bua.logs import SafeFormatter
from b2bua.service import CallApi, build_service, configure_logging
from b2bua.sip.auth import Credentials
from b2bua.sip.overload import OverloadSettings
from b2bua.sip.session_timer import SessionTimerSettings
from rpc.server import ApiServer

Probe = Callable[[CallApi], Any]


def _hosts(built: CallApi) -> set[tuple[str, int]]:
    return {(host, port) for _, host, port in built.runtime.shell.listen}


def _log_level(built: CallApi) -> str:
    """The root logger's level once the process is set up for this configuration (then put back)."""
    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    try:
        configure_logging(built.config.log)
        return logging.getLevelName(root.level)
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers


def _store_path(built: CallApi) -> str | None:
    """Where the built service will keep its calls (opened at start, not at build)."""
    return None if built.persistence is None else str(built.persistence.path)


def _overload(built: CallApi) -> OverloadSettings:
    settings = built.runtime.overload
    assert settings is not None
    return settings


def _timers(built: CallApi) -> SessionTimerSettings:
    settings = built.b2bua.settings.supervision.session_timers
    assert settings is not None
    return settings


#: For each setting: flags giving it a value other than its default, what to read from the built service,
#: and what must be read there.
CASES: dict[str, tuple[list[str], Probe, Any]] = {
    "sip.listen": (["--sip-listen", "127.0.0.2:5090"], _hosts, {("127.0.0.2", 5090)}),
    "sip.transports": (["--sip-transport", "tcp"], lambda b: {t for t, _, _ in b.runtime.shell.listen}, {"tcp"}),
    "sip.outbound_proxy": (["--outbound-proxy", "sip:proxy.example.com;lr"],
                           lambda b: str(b.runtime.ua.settings.outbound_proxy), "sip:proxy.example.com;lr"),
    "sip.trusted": (["--trusted", "10.0.0.0/8"], lambda b: b.runtime.ua.settings.trusted,
                    (ipaddress.ip_network("10.0.0.0/8"),)),
    "sip.user": (["--user", "pbx"], lambda b: b.runtime.ua.settings.user, "pbx"),
    "sip.display_name": (["--display-name", "Front Desk"], lambda b: b.runtime.ua.settings.display_name,
                         "Front Desk"),
    "sip.user_agent": (["--user-agent", "acme/2"], lambda b: b.runtime.ua.settings.user_agent, "acme/2"),
    "sip.advertised_host": (["--advertised-host", "203.0.113.7"],
                            lambda b: (b.runtime.ua.settings.host, b.runtime.advertised_host),
                            ("203.0.113.7", "203.0.113.7")),
    "sip.max_message_size": (["--max-message-size", "4096"],
                             lambda b: (b.runtime.ua.layer.limits.max_size, b.runtime.shell.max_message_size),
                             (4096, 4096)),
    "sip.tcp_idle_timeout": (["--tcp-idle-timeout", "30"], lambda b: b.runtime.shell.tcp_idle_timeout, 30.0),
    "sip.tls_listen": (["--sip-tls-listen", "127.0.0.2:5091", "--sip-tls-cert", "c", "--sip-tls-key", "k"],
                       lambda b: ([a for a in b.runtime.shell.listen if a[0] == "tls"], b.runtime.ua.settings.tls_port),
                       ([("tls", "127.0.0.2", 5091)], 5091)),
    "sip.tls_cert": (["--sip-tls-cert", "sip.pem", "--sip-tls-key", "sip.key"], lambda b: b.runtime.shell.tls.cert,
                     "sip.pem"),
    "sip.tls_key": (["--sip-tls-key", "sip.key", "--sip-tls-cert", "sip.pem"], lambda b: b.runtime.shell.tls.key,
                    "sip.key"),
    "sip.tls_ca": (["--sip-tls-ca", "ca.pem"], lambda b: b.runtime.shell.tls.ca, "ca.pem"),
    "sip.tls_verify_server": (["--sip-tls-verify-server", "no"], lambda b: b.runtime.shell.tls.verify_server, False),
    "sip.tls_verify_client": (["--sip-tls-verify-client", "yes"], lambda b: b.runtime.shell.tls.verify_client, True),
    "sip.tls_handshake_timeout": (["--sip-tls-handshake-timeout", "2.5"],
                                  lambda b: b.runtime.shell.tls.handshake_timeout, 2.5),
    "timers.t1": (["--t1", "0.25"], lambda b: (b.runtime.ua.timers.T1, b.runtime.ua.layer.timers.T1), (0.25, 0.25)),
    "timers.t2": (["--t2", "8"], lambda b: (b.runtime.ua.timers.T2, b.runtime.ua.layer.timers.T2), (8.0, 8.0)),
    "timers.t4": (["--t4", "2.5"], lambda b: (b.runtime.ua.timers.T4, b.runtime.ua.layer.timers.T4), (2.5, 2.5)),
    "ws.host": (["--ws-host", "127.0.0.2"], lambda b: b.api.config.host, "127.0.0.2"),
    "ws.port": (["--ws-port", "6001"], lambda b: b.api.config.port, 6001),
    "ws.path": (["--ws-path", "/rpc"], lambda b: b.api.config.path, "/rpc"),
    "ws.token": (["--ws-token", "s3cret"], lambda b: b.api.config.token, "s3cret"),
    "ws.origins": (["--ws-origin", "https://app.example.com"], lambda b: b.api.config.origins,
                   ("https://app.example.com",)),
    "ws.max_frame": (["--ws-max-frame", "4096"], lambda b: b.api.config.max_frame, 4096),
    "ws.ping_interval": (["--ws-ping-interval", "0"], lambda b: b.api.config.ping_interval, 0.0),
    "ws.metrics_public": (["--ws-metrics-public", "true"], lambda b: b.api.http.config.metrics_public, True),
    "ws.compression": (["--ws-compression", "true"], lambda b: b.api.config.compression, True),
    "ws.tls_cert": (["--ws-tls-cert", "api.pem", "--ws-tls-key", "api.key"],
                    lambda b: (b.api.config.tls_cert, b.api.config.secure), ("api.pem", True)),
    "ws.tls_key": (["--ws-tls-key", "api.key", "--ws-tls-cert", "api.pem"], lambda b: b.api.config.tls_key, "api.key"),
    "api.event_buffer": (["--event-buffer", "50"], lambda b: b.b2bua.live.buffer.maxlen, 50),
    "calls.refer_notify_timeout": (["--refer-notify-timeout", "2"],
                                   lambda b: b.b2bua.settings.refer_notify_timeout, 2.0),
    "calls.answer_timeout": (["--answer-timeout", "5"], lambda b: b.b2bua.settings.answer_timeout, 5.0),
    "calls.max_calls": (["--max-calls", "3"], lambda b: b.b2bua.settings.max_calls, 3),
    "calls.session_timers": (["--session-timers", "off"], lambda b: b.b2bua.settings.supervision.session_timers,
                             None),
    "calls.session_expires": (["--session-expires", "600"], lambda b: _timers(b).session_expires, 600),
    "calls.min_se": (["--min-se", "120"], lambda b: _timers(b).min_se, 120),
    "calls.lab_short_session_timers": (["--lab-short-session-timers", "yes", "--min-se", "10"],
                                       lambda b: _timers(b).min_se, 10),
    "calls.max_duration": (["--max-duration", "3600"], lambda b: b.b2bua.settings.supervision.max_duration, 3600.0),
    "calls.idle_probe": (["--idle-probe", "300"], lambda b: b.b2bua.settings.supervision.idle_probe, 300.0),
    "overload.high": (["--overload-high", "0"], lambda b: b.runtime.overload, None),
    "overload.sustain": (["--overload-sustain", "0.5"], lambda b: _overload(b).sustain, 0.5),
    "overload.low": (["--overload-low", "0.01"], lambda b: _overload(b).low, 0.01),
    "overload.calm": (["--overload-calm", "5"], lambda b: _overload(b).calm, 5.0),
    "overload.busy": (["--overload-busy", "0.5"], lambda b: _overload(b).busy, 0.5),
    "overload.retry_after": (["--overload-retry-after", "7"], lambda b: _overload(b).retry_after, 7),
    "state.dir": (["--state-dir", "STATE"], _store_path, "STATE/calls.sqlite3"),
    "state.on_stop": (["--on-stop", "end"], lambda b: b.config.state.on_stop, "end"),
    "log.level": (["--log-level", "debug"], _log_level, "DEBUG"),
    "credentials": (["--credential", "example.com:alice:pw"], lambda b: b.runtime.ua.settings.credentials,
                    (Credentials("alice", "pw", "example.com"),)),
}


def test_every_setting_has_a_case() -> None:
    assert list(CASES) == list(SETTINGS)


@pytest.mark.parametrize("key", list(CASES))
def test_each_setting_reaches_its_component(key: str) -> None:
    flags, probe, expected = CASES[key]
    assert probe(build_service(Config())) != expected, "the case must set a value other than the default"
    assert probe(build_service(load_config(flags))) == expected


def test_the_parts_are_wired_together() -> None:
    built = build_service(Config())
    assert isinstance(built.runtime, Service) and isinstance(built.api, ApiServer)
    assert built.runtime.app is built.b2bua and built.b2bua.ua is built.runtime.ua
    assert built.control.b2bua is built.b2bua
    assert built.api.service is built.runtime and built.api.control is built.control
    assert built.runtime.ua.settings.port == 5080 and built.runtime.ua.settings.host == "127.0.0.1"


def test_options_and_invites_list_timer_in_supported_only_with_session_timers_on() -> None:
    """RFC 4028 section 7.1 and RFC 3261 section 11.2: what the service supports is what OPTIONS says."""
    assert build_service(Config()).runtime.ua.settings.supported == "replaces, norefersub, timer"
    off = load_config(["--session-timers", "false"])
    assert build_service(off).runtime.ua.settings.supported == "replaces, norefersub"


def test_start_opens_sip_then_the_api_and_stop_closes_both() -> None:
    async def scenario() -> None:
        built = build_service(load_config(["--sip-listen", "127.0.0.1:0", "--ws-host", "127.0.0.1", "--ws-port", "0"]))
        await built.start()
        try:
            assert built.runtime.shell.running and built.api.port != 0
            assert built.runtime.ua.settings.port == built.runtime.shell.bound[0].port != 0
        finally:
            await built.stop()
        assert not built.runtime.shell.running and built.api.urls == []

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_start_closes_the_sip_side_again_when_the_api_cannot_listen() -> None:
    async def scenario() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            built = build_service(load_config(["--sip-listen", "127.0.0.1:0", "--ws-host", "127.0.0.1",
                                               "--ws-port", str(port)]))
            with pytest.raises(OSError, match=f"^the API on 127.0.0.1 port {port}: "):
                await built.start()
            assert not built.runtime.shell.running

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_configure_logging_writes_through_the_safe_formatter(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    level = root.level
    try:
        configure_logging(Config().log)
        (handler,) = root.handlers
        assert isinstance(handler.formatter, SafeFormatter) and root.level == logging.INFO
    finally:
        root.setLevel(level)
