"""SIPp phones for the rig: one process per scenario run, its command line, how its exit status reads
(0 all calls succeeded, 1 some failed, 255 fatal or the global -timeout), and a report of its trace files
for an assertion message. The benchmarks' statistics files are read by :mod:`harness.sipp_stats`."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import IO, Self

from harness.kamailio import SCENARIO_DIR, Kamailio, PortMap, Transport
from harness.ports import LOOPBACK, free_tcp_port
from harness.processes import RigError, find_binary, kill_group, spawn, tail
from harness.procfs import is_listening

SCENARIO_KEYS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {"uac_hold_unhold.xml": MappingProxyType({"hold_dir": "sendonly"})}
)
"""Default ``-key`` values of scenarios that take more than ``phone``."""

_SIPP_TRANSPORT: Mapping[Transport, str] = MappingProxyType({"udp": "u1", "tcp": "t1"})
SIPP_EXIT_MEANING: Mapping[int, str] = MappingProxyType({
    0: "all calls succeeded",
    1: "at least one call failed",
    97: "exit on internal command",
    99: "normal exit without calls processed",
    255: "fatal error, or the global -timeout was reached",
})
"""SIPp's exit statuses (its manual, "Exit codes")."""


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
        return SIPP_EXIT_MEANING.get(self.returncode, "unknown status")

    def statistics(self) -> str:
        """The call counters of SIPp's final statistics screen."""
        text = tail(self.output_path, 1_000_000)
        lines = [line.strip() for line in text.splitlines()
                 if re.match(r"\s*(Successful call|Failed call|Total Calls created|Current Calls)\b", line)]
        return "\n".join(lines[-4:])

    def last_messages(self, count: int = 6) -> str:
        """The last ``count`` SIP messages SIPp sent or received (its -trace_msg log)."""
        text = tail(self.messages_path, 1_000_000)
        parts = [part.strip() for part in re.split(r"^-{20,}.*$", text, flags=re.MULTILINE) if part.strip()]
        return "\n\n".join(parts[-count:])

    def report(self, messages: int = 6) -> str:
        """Everything useful about this run, for an assertion message."""
        head = []
        for line in tail(self.output_path, 100_000).splitlines():
            if re.match(r"\s*(-{5,}|Port\s+Total-time|Call rate)", line):
                break  # the statistics screens start here
            if line.strip():
                head.append(line)
        return "\n".join([
            f"== SIPp {self.name}: exit {self.returncode} ({self.meaning()})",
            "$ " + " ".join(self.command),
            "-- statistics:", self.statistics() or "(none)",
            "-- output:", "\n".join(head[:20]) or "(none)",
            "-- errors:", tail(self.errors_path, 3000),
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
            find_binary("sipp", "sip-tester"), "-sf", str(self.scenario),
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

    def message_log(self) -> str:
        """Everything this SIPp sent and received so far (its -trace_msg log)."""
        return self.messages_path.read_text(errors="replace")

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
        self._proc = spawn(command, cwd=self.workdir, stdout=self._output, stderr=subprocess.STDOUT)
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
            kill_group(proc)
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
            kill_group(proc)
        return self._finish(proc, killed)

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

    def transferee(self, phone: str, dialog: str, twin: str, *, twin_port: int, call: str | None = None,
                   keys: Mapping[str, str] | None = None, transport: Transport | None = None) -> tuple[Sipp, Sipp]:
        """A transferee: two SIPp linked with ``-3pcc`` on ``phone``'s port, the dialog side (a UAS, or a
        UAC calling ``call``) that gets the REFER and sends the NOTIFYs, and its twin that places the new
        call from ``twin_port`` through the proxy. The twin starts first and is waited for until it listens
        on the link, which the dialog side then connects to. Returns (dialog side, twin)."""
        link_port = free_tcp_port()
        link = f"{LOOPBACK}:{link_port}"
        new_call = self(twin, phone=phone, local_port=twin_port, remote=self.ports.proxy_address,
                        transport=transport, extra_args=["-3pcc", link])
        deadline = time.monotonic() + 3
        while not is_listening(link_port, "tcp"):
            if not new_call.running or time.monotonic() > deadline:
                raise RigError(f"the -3pcc twin of {phone} did not listen on {link}")
            time.sleep(0.005)
        return self(dialog, phone=phone, call=call, keys=keys, transport=transport, extra_args=["-3pcc", link]), \
            new_call

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
