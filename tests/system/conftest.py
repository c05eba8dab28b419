"""Fixtures that start the rig's real processes on loopback (the `harness` package) and always clean them up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from b2bua.call.b2bua import B2bua
from harness.kamailio import Kamailio, KamailioLauncher, PortMap
from harness.ports import LOOPBACK, free_tcp_port
from harness.procfs import is_listening
from harness.service import ApiFactory, Body, Serve, ServiceFactory, ServiceProcess, serve_in_process
from harness.sipp import Sipp, SippLauncher, assert_all_ok, wait_all


@pytest.fixture
def rig_ports() -> PortMap:
    """The rig's port map (defaults, or shifted by $CALL_API_RIG_PORT_OFFSET)."""
    return PortMap.from_env()


@pytest.fixture
def kamailio_factory(tmp_path: Path, rig_ports: PortMap) -> Iterator[KamailioLauncher]:
    """``kamailio_factory(phone_transport=..., service_transport=...)`` starts a proxy; all stop at teardown."""
    launcher = KamailioLauncher(tmp_path / "proxy", rig_ports)
    try:
        yield launcher
    finally:
        launcher.stop_all()


@pytest.fixture
def kamailio(kamailio_factory: KamailioLauncher) -> Kamailio:
    """A running proxy on the rig's ports with the default options (transport follows the request)."""
    return kamailio_factory()


@pytest.fixture
def sipp(tmp_path: Path, rig_ports: PortMap) -> Iterator[SippLauncher]:
    """``sipp(scenario, phone=..., call=..., ...)`` starts a SIPp phone; any still running is killed at teardown."""
    launcher = SippLauncher(tmp_path / "sipp", rig_ports)
    try:
        yield launcher
    finally:
        launcher.stop_all()


@pytest.fixture
def call_api(tmp_path: Path, rig_ports: PortMap) -> Iterator[ServiceFactory]:
    """``call_api(*flags)`` starts the service on the rig's service port; stopped (SIGTERM) at teardown."""
    started: list[ServiceProcess] = []

    def start(*flags: str, port: int | None = None) -> ServiceProcess:
        args = ["--sip-listen", f"{LOOPBACK}:{port or rig_ports.service}", "--ws-port", "0", *flags]
        service = ServiceProcess(args, tmp_path / f"call-api-{len(started)}.log").start()
        started.append(service)
        return service

    try:
        yield start
    finally:
        for service in started:
            service.stop()


@pytest.fixture
def call_api_ws(call_api: ServiceFactory, rig_ports: PortMap) -> ApiFactory:
    """``call_api_ws(*flags)``: the service bridging through the rig's proxy, its API on a free loopback port;
    returns it and the API's URL once the API listens. ``ws_port`` starts it on a given port (a service started
    again where its clients reconnect).

    The port is chosen here (a later ``--ws-port`` wins over ``call_api``'s ``--ws-port 0``) rather than read
    from the 'call-api API ready' line, since the API starts after the SIP ready line ``call_api`` waits for."""

    def start(*flags: str, ws_port: int | None = None) -> tuple[ServiceProcess, str]:
        port = ws_port or free_tcp_port()
        service = call_api("--outbound-proxy", f"sip:{LOOPBACK}:{rig_ports.proxy};lr", "--ws-host", LOOPBACK,
                           "--ws-port", str(port), *flags)
        deadline = time.monotonic() + 5
        while not is_listening(port, "tcp"):
            assert time.monotonic() < deadline, f"the API never listened on {port}:\n{service.log_tail()}"
            time.sleep(0.01)
        return service, f"ws://{LOOPBACK}:{port}/call-api"

    return start


@pytest.fixture
def serve(rig_ports: PortMap) -> Serve:
    """``serve(body, *flags, phones=..., proxy=...)``: the service built in this process on the rig's service
    port, the proxy its outbound proxy (``flags`` added to, and overriding, that command line), ``body``
    driving it for ``timeout`` seconds at most; then every phone must have succeeded (their reports, with
    the proxy's log, also explain a body that failed or timed out). Returns the B2BUA for a last look."""

    def run(body: Body, *flags: str, phones: Sequence[Sipp] = (), proxy: Kamailio | None = None,
            timeout: float = 15.0, phones_timeout: float = 12.0) -> B2bua:
        command_line = ["--sip-listen", f"{LOOPBACK}:{rig_ports.service}",
                        "--outbound-proxy", f"sip:{LOOPBACK}:{rig_ports.proxy};lr", *flags]
        try:
            return asyncio.run(serve_in_process(command_line, body, timeout))
        finally:
            if phones:
                assert_all_ok(wait_all(phones, phones_timeout), proxy)

    return run
