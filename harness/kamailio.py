"""The rig's proxy and its ports: Kamailio with ``sipp-scenarios/kamailio.cfg`` between SIPp phones and the
service, all on 127.0.0.1 (RFC 3261 section 16 proxy, section 8 user agents)::

    phone (SIPp) --> Kamailio :5060 --> service :5080
    service      --> Kamailio :5060 --> the phone named by the Request-URI user

Phones listen on fixed ports named by user part: alice 5061, bob 5062, carol 5063, dave 5064, eve 5065.
"alice17" reaches alice's port too (one SIPp answers many calls), and "port5070" reaches port 5070. The
routing lives in ``sipp-scenarios/kamailio.cfg``; :class:`PortMap` mirrors it. Setting
``CALL_API_RIG_PORT_OFFSET`` shifts every port, to run beside another rig.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import IO, Literal, Self

from harness.ports import LOOPBACK
from harness.processes import RigError, find_binary, kill_group, spawn, tail
from harness.sip_probe import sip_options

REPO_ROOT = Path(__file__).resolve().parents[1]
SCENARIO_DIR = REPO_ROOT / "sipp-scenarios"
KAMAILIO_CFG = SCENARIO_DIR / "kamailio.cfg"
PORT_OFFSET_ENV = "CALL_API_RIG_PORT_OFFSET"

Transport = Literal["udp", "tcp"]

PHONE_PORTS: Mapping[str, int] = MappingProxyType(
    {"alice": 5061, "bob": 5062, "carol": 5063, "dave": 5064, "eve": 5065}
)
"""The phone table of kamailio.cfg (route[PHONE_PORT]) with its default ports."""

_NUMBERED_PHONE = re.compile(r"(?P<name>[a-z]+)[0-9]*")
_PORT_PHONE = re.compile(r"port(?P<port>[0-9]{4,5})")


@dataclass(frozen=True, slots=True)
class PortMap:
    """Loopback ports of the proxy, the service and every phone (kamailio.cfg defines)."""

    proxy: int = 5060
    """Kamailio, UDP and TCP."""
    service: int = 5080
    """The service under test (or a SIPp playing it), UDP and TCP."""
    phones: Mapping[str, int] = field(default_factory=lambda: PHONE_PORTS)
    """Phone user part -> port; kamailio.cfg needs a matching ``<NAME>_PORT`` define."""

    @classmethod
    def from_env(cls) -> PortMap:
        """The default ports, shifted by ``$CALL_API_RIG_PORT_OFFSET`` when set."""
        offset = int(os.environ.get(PORT_OFFSET_ENV, "0") or "0")
        return cls().shifted(offset)

    def shifted(self, offset: int) -> PortMap:
        """Every port moved by ``offset``."""
        if offset == 0:
            return self
        phones = MappingProxyType({name: port + offset for name, port in self.phones.items()})
        return PortMap(proxy=self.proxy + offset, service=self.service + offset, phones=phones)

    def port_of(self, user: str) -> int:
        """The port a request for ``user`` reaches: ``service``, a phone (``bob``, ``bob7``) or ``portNNNN``."""
        if user == "service":
            return self.service
        if match := _PORT_PHONE.fullmatch(user):
            return int(match["port"])
        match = _NUMBERED_PHONE.fullmatch(user)
        if match is None or match["name"] not in self.phones:
            raise KeyError(f"no phone {user!r} in the rig (phones: {', '.join(self.phones)})")
        return self.phones[match["name"]]

    def uri(self, user: str) -> str:
        """``user``'s address as the service is told it: at the proxy, which routes it by user part."""
        return f"sip:{user}@{LOOPBACK}:{self.proxy}"

    @property
    def proxy_address(self) -> str:
        """``host:port`` of the proxy, the remote end of every phone that calls."""
        return f"{LOOPBACK}:{self.proxy}"

    def defines(self) -> list[str]:
        """Kamailio ``-A`` pre-processor defines for these ports."""
        names = [f"PROXY_PORT={self.proxy}", f"SERVICE_PORT={self.service}"]
        names += [f"{name.upper()}_PORT={port}" for name, port in self.phones.items()]
        return names


class Kamailio:
    """The rig's proxy: Kamailio with ``sipp-scenarios/kamailio.cfg``, a foreground child in its own session.

    ``start()`` returns once the proxy answers OPTIONS over UDP and TCP;
    ``stop()`` sends SIGTERM and, if Kamailio has not exited within the grace
    time, SIGKILLs its whole process group so no worker keeps the ports.
    """

    def __init__(
        self,
        workdir: Path,
        ports: PortMap | None = None,
        *,
        phone_transport: Transport | None = None,
        service_transport: Transport | None = None,
        log_level: int = 2,
        shm_mb: int = 256,
        pkg_mb: int = 16,
        config: Path = KAMAILIO_CFG,
        defines: Sequence[str] = (),
    ) -> None:
        """``*_transport`` force the next hop's transport; by default it follows the R-URI, then the inbound one."""
        self.workdir = workdir
        self.ports = ports if ports is not None else PortMap()
        self.phone_transport = phone_transport
        self.service_transport = service_transport
        self.log_level = log_level
        self.shm_mb = shm_mb
        self.pkg_mb = pkg_mb
        self.config = config
        self.defines = tuple(defines)
        self.log_path = workdir / "kamailio.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def command(self) -> list[str]:
        """The kamailio command line, with every port and option as a ``-A`` define."""
        defines = [*self.ports.defines(), f"LOG_LEVEL={self.log_level}"]
        if self.phone_transport is not None:
            defines.append(f'PHONE_TRANSPORT="{self.phone_transport}"')
        if self.service_transport is not None:
            defines.append(f'SERVICE_TRANSPORT="{self.service_transport}"')
        defines += self.defines
        rundir = self.workdir / "run"
        command = [
            find_binary("kamailio", "kamailio"), "-DD", "-E", "-f", str(self.config),
            "-Y", str(rundir), "-P", str(rundir / "kamailio.pid"), "-m", str(self.shm_mb), "-M", str(self.pkg_mb),
        ]
        for define in defines:
            command += ["-A", define]
        return command

    @property
    def pid(self) -> int | None:
        """Pid of the main process while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def returncode(self) -> int | None:
        """Exit status once stopped (negative: killed by that signal)."""
        return self._proc.returncode if self._proc is not None else None

    def log_tail(self, limit: int = 4000) -> str:
        """The end of Kamailio's log (stderr), for assertion messages."""
        return tail(self.log_path, limit)

    def start(self, timeout: float = 5.0) -> float:
        """Start Kamailio and wait until it answers OPTIONS; returns the seconds that took."""
        if self._proc is not None:
            raise RigError("this Kamailio was already started")
        command = self.command()
        (self.workdir / "run").mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        started = time.monotonic()
        self._proc = spawn(command, cwd=self.workdir, stdout=self._log, stderr=subprocess.STDOUT)
        while True:
            if self._proc.poll() is not None:
                self.stop()
                raise RigError(
                    f"kamailio exited with status {self._proc.returncode} before answering OPTIONS "
                    f"(port {self.ports.proxy} taken? bad config?)\n$ {' '.join(command)}\n{self.log_tail()}"
                )
            # Ready once a UDP worker answers and TCP answers too: the TCP main process
            # is then in its loop (a SIGTERM before that can leave it running).
            if sip_options(self.ports.proxy, timeout=0.02) == 200 and sip_options(
                self.ports.proxy, transport="tcp", timeout=max(0.05, timeout - (time.monotonic() - started))
            ) == 200:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                self.stop()
                raise RigError(f"kamailio did not answer OPTIONS within {timeout} s\n{self.log_tail()}")

    def stop(self, timeout: float = 1.5) -> int | None:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL the process group; returns the exit status.

        0 means a clean exit; negative, that it had to be killed.
        """
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(min(timeout, 0.5))
            except subprocess.TimeoutExpired:
                # Now and then a Kamailio child (a timer process) misses the SIGTERM the main
                # process relays, and the main one waits for it: repeat it to all, as systemd does.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(max(0.0, timeout - 0.5))
        # Too slow, or exited leaving a worker behind: nothing of the group may keep the port.
        kill_group(proc)
        if self._log is not None:
            self._log.close()
            self._log = None
        return proc.returncode

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class KamailioLauncher:
    """Starts proxies for one test (``kamailio`` fixtures) and stops them all at teardown."""

    def __init__(self, workdir: Path, ports: PortMap) -> None:
        self.workdir = workdir
        self.ports = ports
        self.started: list[Kamailio] = []

    def __call__(
        self,
        *,
        phone_transport: Transport | None = None,
        service_transport: Transport | None = None,
        log_level: int = 2,
        defines: Sequence[str] = (),
    ) -> Kamailio:
        """Start one more proxy on the rig's ports and wait until it answers OPTIONS."""
        proxy = Kamailio(
            self.workdir / f"kamailio{len(self.started)}", self.ports, phone_transport=phone_transport,
            service_transport=service_transport, log_level=log_level, defines=defines,
        )
        self.started.append(proxy)
        proxy.start()
        return proxy

    def stop_all(self) -> None:
        """Stop every proxy started here, newest first."""
        for proxy in reversed(self.started):
            proxy.stop()
