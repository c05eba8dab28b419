"""Fixtures that start the rig's real processes on loopback (the `harness` package) and always clean them up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.kamailio import Kamailio, KamailioLauncher, PortMap
from harness.service import ServiceProcess
from harness.sipp import SippLauncher


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
def call_api(tmp_path: Path, rig_ports: PortMap) -> Iterator[Callable[..., ServiceProcess]]:
    """``call_api(*flags)`` starts the service on the rig's service port; stopped (SIGTERM) at teardown."""
    started: list[ServiceProcess] = []

    def start(*flags: str, port: int | None = None) -> ServiceProcess:
        args = ["--sip-listen", f"127.0.0.1:{port or rig_ports.service}", "--ws-port", "0", *flags]
        service = ServiceProcess(args, tmp_path / f"call-api-{len(started)}.log").start()
        started.append(service)
        return service

    try:
        yield start
    finally:
        for service in started:
            service.stop()
