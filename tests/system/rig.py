"""The real-process test rig: a Kamailio proxy and SIPp phones on loopback.

System tests put the service between real SIP peers (RFC 3261 section 16 proxy,
section 8 user agents), all on 127.0.0.1::

    phone (SIPp) --> Kamailio :5060 --> service :5080
    service      --> Kamailio :5060 --> the phone named by the Request-URI user

Phones listen on fixed ports named by user part: alice 5061, bob 5062, carol 5063,
dave 5064, eve 5065.  "alice17" reaches alice's port too (one SIPp answers many
calls), and "port5070" reaches port 5070.  The routing lives in
``sipp-scenarios/kamailio.cfg``; :class:`PortMap` mirrors it.  Setting
``CALL_API_RIG_PORT_OFFSET`` shifts every port, to run beside another rig.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import IO, Literal, Self

REPO_ROOT = Path(__file__).resolve().parents[2]
SCENARIO_DIR = REPO_ROOT / "sipp-scenarios"
KAMAILIO_CFG = SCENARIO_DIR / "kamailio.cfg"
LOOPBACK = "127.0.0.1"
PORT_OFFSET_ENV = "CALL_API_RIG_PORT_OFFSET"

Transport = Literal["udp", "tcp"]

PHONE_PORTS: Mapping[str, int] = MappingProxyType(
    {"alice": 5061, "bob": 5062, "carol": 5063, "dave": 5064, "eve": 5065}
)
"""The phone table of kamailio.cfg (route[PHONE_PORT]) with its default ports."""

SCENARIO_KEYS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {"uac_hold_unhold.xml": MappingProxyType({"hold_dir": "sendonly"})}
)
"""Default ``-key`` values of scenarios that take more than ``phone``."""

_NUMBERED_PHONE = re.compile(r"(?P<name>[a-z]+)[0-9]*")
_PORT_PHONE = re.compile(r"port(?P<port>[0-9]{4,5})")
_SIPP_TRANSPORT: Mapping[Transport, str] = MappingProxyType({"udp": "u1", "tcp": "t1"})
_SIPP_EXIT_MEANING: Mapping[int, str] = MappingProxyType({
    0: "all calls succeeded",
    1: "at least one call failed",
    97: "exit on internal command",
    99: "normal exit without calls processed",
    255: "fatal error, or the global -timeout was reached",
})


class RigError(Exception):
    """A rig process could not be started, or a binary it needs is missing."""


def _find_binary(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RigError(f"{name!r} is not on PATH: `bash scripts/test` installs the Debian package {package}")
    return path


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

    @property
    def proxy_address(self) -> str:
        """``host:port`` of the proxy, the remote end of every phone that calls."""
        return f"{LOOPBACK}:{self.proxy}"

    def defines(self) -> list[str]:
        """Kamailio ``-A`` pre-processor defines for these ports."""
        names = [f"PROXY_PORT={self.proxy}", f"SERVICE_PORT={self.service}"]
        names += [f"{name.upper()}_PORT={port}" for name, port in self.phones.items()]
        return names


# -- probing ------------------------------------------------------------------------------------------------


def _options_request(host: str, port: int, transport: Transport, local_port: int, call_id: str, cseq: int) -> bytes:
    uri_params = ";transport=tcp" if transport == "tcp" else ""
    return (
        f"OPTIONS sip:{host}:{port}{uri_params} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport.upper()} {LOOPBACK}:{local_port};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
        f"From: <sip:rig@{LOOPBACK}:{local_port}>;tag={cseq}rig\r\n"
        f"To: <sip:{host}:{port}>\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} OPTIONS\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def _status_of(data: bytes, call_id: str) -> int | None:
    status = data.split(b"\r\n", 1)[0].split(b" ", 2)
    if call_id.encode() in data and len(status) >= 2 and status[0] == b"SIP/2.0" and status[1].isdigit():
        return int(status[1])
    return None


def sip_options(
    port: int, *, host: str = LOOPBACK, transport: Transport = "udp", timeout: float = 0.5, interval: float = 0.01
) -> int | None:
    """Send OPTIONS (no user part, so addressed to the element itself) until a reply comes.

    Returns the status code of the first reply, or None when nothing answered
    within ``timeout``.  Each attempt is a new transaction (over TCP a new
    connection), retried every ``interval`` seconds, since the first ones may
    reach a socket not bound yet.
    """
    deadline = time.monotonic() + timeout
    call_id = f"{uuid.uuid4().hex}@rig"
    if transport == "tcp":
        return _tcp_options(host, port, call_id, deadline, interval)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        local_port = sock.getsockname()[1]
        cseq = 0
        while True:
            cseq += 1
            sock.sendto(_options_request(host, port, "udp", local_port, call_id, cseq), (host, port))
            wait_until = min(deadline, time.monotonic() + interval)
            while (left := wait_until - time.monotonic()) > 0:
                sock.settimeout(left)
                try:
                    data = sock.recv(65535)
                except (TimeoutError, ConnectionRefusedError):
                    break
                if (status := _status_of(data, call_id)) is not None:
                    return status
            if time.monotonic() >= deadline:
                return None


def _tcp_options(host: str, port: int, call_id: str, deadline: float, interval: float) -> int | None:
    cseq = 0
    while (left := deadline - time.monotonic()) > 0:
        cseq += 1
        try:
            with socket.create_connection((host, port), timeout=left) as sock:
                sock.sendall(_options_request(host, port, "tcp", sock.getsockname()[1], call_id, cseq))
                data = b""
                while b"\r\n\r\n" not in data and (left := deadline - time.monotonic()) > 0:
                    sock.settimeout(left)
                    chunk = sock.recv(65535)
                    if not chunk:
                        break
                    data += chunk
                if (status := _status_of(data, call_id)) is not None:
                    return status
        except (TimeoutError, ConnectionError):
            pass
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
    return None


def _proc_net_sockets(proto: Transport) -> Iterator[tuple[int, str]]:
    """(local port, state) of every IPv4/IPv6 socket of ``proto`` in this network namespace (Linux)."""
    for name in (proto, f"{proto}6"):
        try:
            lines = Path("/proc/net", name).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            yield int(fields[1].rsplit(":", 1)[1], 16), fields[3]


def is_listening(port: int, proto: Transport) -> bool:
    """Whether some socket is bound to ``port`` to receive: an unconnected UDP socket or a TCP listener."""
    state = "07" if proto == "udp" else "0A"
    return any(p == port and s == state for p, s in _proc_net_sockets(proto))


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """Whether both a UDP and a TCP server could bind ``host:port`` now (what a restart needs)."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
                if kind == socket.SOCK_STREAM:
                    sock.listen()
            except OSError:
                return False
    return True


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"({path.name}: not written)"
    return text if len(text) <= limit else "[...]\n" + text[-limit:]


# -- Kamailio -----------------------------------------------------------------------------------------------


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
            _find_binary("kamailio", "kamailio"), "-DD", "-E", "-f", str(self.config),
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
        return _tail(self.log_path, limit)

    def start(self, timeout: float = 5.0) -> float:
        """Start Kamailio and wait until it answers OPTIONS; returns the seconds that took."""
        if self._proc is not None:
            raise RigError("this Kamailio was already started")
        command = self.command()
        (self.workdir / "run").mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        started = time.monotonic()
        self._proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            cwd=self.workdir, start_new_session=True,
        )
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
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
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


# -- SIPp ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SippResult:
    """How one SIPp run ended, and what an assertion about it should show."""

    name: str
    """Label of the run, e.g. ``bob-uas_answer``."""
    command: tuple[str, ...]
    returncode: int
    """SIPp's exit status: 0 all calls succeeded, 1 some failed, 255 fatal or timeout; negative if killed."""
    killed: bool
    """True when the rig killed SIPp (its wait timed out, or it was stopped while running)."""
    output_path: Path
    errors_path: Path
    messages_path: Path

    @property
    def ok(self) -> bool:
        """Every call of the scenario succeeded."""
        return self.returncode == 0 and not self.killed

    def meaning(self) -> str:
        """The exit status in words."""
        if self.killed:
            return f"killed by the rig (status {self.returncode})"
        return _SIPP_EXIT_MEANING.get(self.returncode, "unknown status")

    def statistics(self) -> str:
        """The call counters of SIPp's final statistics screen."""
        text = _tail(self.output_path, 1_000_000)
        lines = [line.strip() for line in text.splitlines()
                 if re.match(r"\s*(Successful call|Failed call|Total Calls created|Current Calls)\b", line)]
        return "\n".join(lines[-4:])

    def last_messages(self, count: int = 6) -> str:
        """The last ``count`` SIP messages SIPp sent or received (its -trace_msg log)."""
        text = _tail(self.messages_path, 1_000_000)
        parts = [part.strip() for part in re.split(r"^-{20,}.*$", text, flags=re.MULTILINE) if part.strip()]
        return "\n\n".join(parts[-count:])

    def report(self, messages: int = 6) -> str:
        """Everything useful about this run, for an assertion message."""
        head = []
        for line in _tail(self.output_path, 100_000).splitlines():
            if re.match(r"\s*(-{5,}|Port\s+Total-time|Call rate)", line):
                break  # the statistics screens start here
            if line.strip():
                head.append(line)
        return "\n".join([
            f"== SIPp {self.name}: exit {self.returncode} ({self.meaning()})",
            "$ " + " ".join(self.command),
            "-- statistics:", self.statistics() or "(none)",
            "-- output:", "\n".join(head[:20]) or "(none)",
            "-- errors:", _tail(self.errors_path, 3000),
            f"-- last {messages} messages:", self.last_messages(messages) or "(none)",
        ])


def scenario_path(scenario: str | Path) -> Path:
    """A scenario file: a bare name is looked up in ``sipp-scenarios/``."""
    path = Path(scenario)
    if not path.is_absolute() and len(path.parts) == 1:
        path = SCENARIO_DIR / path
    if not path.is_file():
        raise RigError(f"no SIPp scenario {path}")
    return path


class Sipp:
    """One SIPp process running a scenario as a phone (or as the service), started with ``Popen``.

    Several run at once; ``wait()`` collects the exit status with the trace
    files for assertion messages, ``stop()`` kills whatever still runs.
    """

    def __init__(
        self,
        scenario: str | Path,
        *,
        workdir: Path,
        local_port: int,
        phone: str,
        call: str | None = None,
        remote: str | None = None,
        transport: Transport = "udp",
        calls: int = 1,
        rate: float | None = None,
        pause_ms: int | None = None,
        timeout_s: float = 10.0,
        keys: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
        name: str | None = None,
    ) -> None:
        """``phone`` is this side's user part (``-key phone``); ``call`` the user to call (``-s``).

        Without ``remote`` and ``call`` SIPp only answers (a UAS); ``remote`` is the
        ``host:port`` to send to.  ``timeout_s`` is SIPp's global ``-timeout``
        (then it fails with 255).
        """
        self.scenario = scenario_path(scenario)
        self.workdir = workdir
        self.local_port = local_port
        self.phone = phone
        self.call = call
        self.remote = remote
        self.transport: Transport = transport
        self.calls = calls
        self.rate = rate
        self.pause_ms = pause_ms
        self.timeout_s = timeout_s
        self.keys = {**SCENARIO_KEYS.get(self.scenario.name, {}), **(keys or {})}
        self.extra_args = tuple(extra_args)
        self.name = name or f"{phone}-{self.scenario.stem}"
        self.output_path = workdir / f"{self.name}.out"
        self.errors_path = workdir / f"{self.name}_errors.log"
        self.messages_path = workdir / f"{self.name}_messages.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None
        self._result: SippResult | None = None

    @property
    def answers(self) -> bool:
        """True for a UAS: it sends nothing until a request arrives."""
        return self.remote is None and self.call is None

    def command(self) -> list[str]:
        """The sipp command line."""
        command = [
            _find_binary("sipp", "sip-tester"), "-sf", str(self.scenario),
            "-i", LOOPBACK, "-mi", LOOPBACK, "-ci", LOOPBACK, "-p", str(self.local_port),
            "-t", _SIPP_TRANSPORT[self.transport], "-m", str(self.calls), "-nostdin",
            "-timeout", f"{round(self.timeout_s * 1000)}ms", "-timeout_error",
            "-trace_err", "-error_file", str(self.errors_path),
            "-trace_msg", "-message_file", str(self.messages_path),
            "-key", "phone", self.phone,
        ]
        for key, value in self.keys.items():
            command += ["-key", key, value]
        if self.call is not None:
            command += ["-s", self.call]
        if self.rate is not None:
            command += ["-r", f"{self.rate:g}"]
        if self.pause_ms is not None:
            command += ["-d", str(self.pause_ms)]
        command += self.extra_args
        if self.remote is not None:
            command.append(self.remote)
        return command

    @property
    def running(self) -> bool:
        """Started and not yet exited."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, ready_timeout: float = 3.0) -> Self:
        """Start SIPp; a UAS is waited for until it listens on its port, so callers never race it."""
        if self._proc is not None:
            raise RigError(f"SIPp {self.name} was already started")
        if is_listening(self.local_port, self.transport):
            raise RigError(f"{self.transport} port {self.local_port} for SIPp {self.name} is already taken")
        command = self.command()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._output = self.output_path.open("wb")
        self._proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self._output, stderr=subprocess.STDOUT,
            cwd=self.workdir, start_new_session=True,
        )
        if self.answers:
            deadline = time.monotonic() + ready_timeout
            while not is_listening(self.local_port, self.transport):
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    result = self.stop()
                    report = result.report() if result is not None else ""
                    raise RigError(f"SIPp {self.name} did not come up on {self.transport} port {self.local_port}\n"
                                   f"{report}")
                time.sleep(0.005)
        return self

    def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for SIPp to exit (default: its own -timeout plus 5 s, then kill it) and describe how it went."""
        if self._result is not None:
            return self._result
        proc = self._proc
        if proc is None:
            raise RigError(f"SIPp {self.name} was never started")
        killed = False
        try:
            proc.wait(self.timeout_s + 5 if timeout is None else timeout)
        except subprocess.TimeoutExpired:
            killed = True
            self._kill(proc)
        return self._finish(proc, killed)

    def stop(self) -> SippResult | None:
        """Kill SIPp if it still runs; returns its result (None if never started)."""
        proc = self._proc
        if proc is None:
            return None
        if self._result is not None:
            return self._result
        killed = proc.poll() is None
        if killed:
            self._kill(proc)
        return self._finish(proc, killed)

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
        proc.wait(5)

    def _finish(self, proc: subprocess.Popen[bytes], killed: bool) -> SippResult:
        if self._output is not None:
            self._output.close()
            self._output = None
        self._result = SippResult(
            name=self.name, command=tuple(proc.args if isinstance(proc.args, list) else [str(proc.args)]),
            returncode=proc.returncode, killed=killed, output_path=self.output_path,
            errors_path=self.errors_path, messages_path=self.messages_path,
        )
        return self._result


class SippLauncher:
    """Starts SIPp phones for one test (the ``sipp`` fixture) and kills any still running at teardown.

    ``sipp("uas_answer.xml", phone="bob")`` answers on bob's port;
    ``sipp("uac_call.xml", phone="alice", call="bob")`` calls bob from alice's
    port through the proxy; ``phone="service"`` plays the service on its port.
    """

    def __init__(self, workdir: Path, ports: PortMap, *, transport: Transport = "udp", timeout_s: float = 10.0) -> None:
        self.workdir = workdir
        self.ports = ports
        self.transport: Transport = transport
        """Default transport of every phone."""
        self.timeout_s = timeout_s
        """Default SIPp -timeout, seconds."""
        self.started: list[Sipp] = []

    def __call__(
        self,
        scenario: str | Path,
        *,
        phone: str,
        call: str | None = None,
        local_port: int | None = None,
        remote: str | None = None,
        transport: Transport | None = None,
        calls: int = 1,
        rate: float | None = None,
        pause_ms: int | None = None,
        timeout_s: float | None = None,
        keys: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
    ) -> Sipp:
        """Start ``scenario`` as ``phone`` on its rig port; with ``call`` it calls that user via the proxy."""
        if remote is None and call is not None:
            remote = self.ports.proxy_address
        sipp = Sipp(
            scenario, workdir=self.workdir, local_port=self.ports.port_of(phone) if local_port is None else local_port,
            phone=phone, call=call, remote=remote, transport=transport or self.transport, calls=calls, rate=rate,
            pause_ms=pause_ms, timeout_s=self.timeout_s if timeout_s is None else timeout_s, keys=keys,
            extra_args=extra_args, name=f"{len(self.started)}-{phone}-{Path(scenario).stem}",
        )
        self.started.append(sipp)
        return sipp.start()

    def stop_all(self) -> None:
        """Kill every SIPp started here that still runs."""
        for sipp in self.started:
            sipp.stop()


def wait_all(sipps: Iterable[Sipp], timeout: float | None = None) -> list[SippResult]:
    """Wait for several SIPp runs, in order; ``timeout`` bounds the whole wait."""
    deadline = None if timeout is None else time.monotonic() + timeout
    return [sipp.wait(None if deadline is None else max(0.0, deadline - time.monotonic())) for sipp in sipps]


def assert_all_ok(results: Iterable[SippResult], proxy: Kamailio | None = None) -> None:
    """Fail with every report (and the proxy's log) unless every run succeeded."""
    results = list(results)
    if all(result.ok for result in results):
        return
    reports = [result.report() for result in results]
    if proxy is not None:
        reports.append("== kamailio log (tail):\n" + proxy.log_tail())
    raise AssertionError("\n\n".join(reports))
