"""Flows under packet loss: SIPp phones behind seeded lossy relays (relay.py), Kamailio, the service.

Used by ``tests/system/test_loss.py`` (a handful of calls per flow) and ``benchmarks/loss.py`` (the
issue's full counts).  Both phones of a call sit behind their own :class:`~tests.system.relay.LossyRelay`
with the same loss in both directions, so every message between a phone and the proxy may be lost;
the proxy <-> service hop is clean (that is loopback between two servers in one rack).

The phones run loss-tolerant scenarios (``sipp-scenarios/loss_*.xml``): stock SIPp scenarios take a
retransmitted request they already answered as unexpected and kill the call, which is the rig failing,
not the service (issue 17).  Each flow returns a :class:`LossRun`: what a caller checks is that no call
failed at either phone, that every command reported its expected events, and that the relays did drop
datagrams (a run without loss proves nothing).
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from b2bua.call.b2bua import B2bua
from b2bua.call.call import Call, CallState
from b2bua.call.commands import (
    CallAttendedTransfer,
    CallBlindTransfer,
    CallEnd,
    CallHold,
    CallStart,
    CallUnHold,
)
from b2bua.call.events import FlowEvent, FlowReport
from b2bua.config import load_config
from b2bua.io.control import AsyncControl
from b2bua.service import build_service
from harness.kamailio import Kamailio, PortMap
from harness.ports import LOOPBACK, free_tcp_port
from harness.processes import RigError, tail
from harness.procfs import is_listening
from harness.service import ServiceProcess
from harness.sipp import Sipp, SippLauncher, SippResult, wait_all

from .relay import Impairment, LossyRelay

PROXY_DEFINES = ("FR_TIMER=32000", "WT_TIMER=32000")
"""Kamailio with RFC 3261's 32 s transaction timeout (Timer B/F), not the rig's 5 s: over a 20 % lossy
link, 5 s is four INVITE transmissions, and all four are lost about once in 600 calls (the proxy then
answers 408 and the call fails through no fault of the service).  And with a completed transaction kept
32 s (Timer J), not tm's 5 s: a phone's BYE retransmitted after that, its 200 lost twice, was a new
transaction to tm that nothing answered (tm's own 408 came 32 s later; the service saw one BYE)."""

#: What each command of a flow must report under loss, in order (FlowError never).
EXPECTED_HOLD = ["CALL_HOLD", "FlowEnded"]
EXPECTED_UNHOLD = ["CALL_UNHOLD", "FlowEnded"]
EXPECTED_END = ["FlowEnded"]


def names(reports: list[FlowReport]) -> list[str]:
    """A command's reports as names: the event's ``data``, else the report's class."""
    return [r.data if isinstance(r, FlowEvent) else type(r).__name__ for r in reports]


@dataclass
class LossRun:
    """The outcome of one flow at one loss rate."""

    flow: str
    loss: float
    calls: int
    phones: list[SippResult] = field(default_factory=list)
    relays: list[str] = field(default_factory=list)
    dropped: int = 0
    commands: int = 0
    """Commands run through the API."""
    bad_commands: list[str] = field(default_factory=list)
    """Each command whose reports differ from what it must report, with what it reported."""
    service_errors: list[str] = field(default_factory=list)
    """ERROR log records or tracebacks of the service."""
    seconds: float = 0.0

    @property
    def failed_calls(self) -> int:
        """Calls that did not complete: the most any phone did not count as successful (every phone of a
        flow takes part in each of its ``calls`` calls; one failed call shows at both phones); a phone
        killed by the rig counts as all its calls."""
        worst = 0
        for result in self.phones:
            if result.killed:
                return self.calls
            worst = max(worst, self.calls - _successful(result))
        return worst

    @property
    def ok(self) -> bool:
        """No failed call, every command as expected, no service error, and loss there was."""
        return (self.failed_calls == 0 and not self.bad_commands and not self.service_errors and self.dropped > 0
                and all(result.ok for result in self.phones))

    def report(self) -> str:
        """Everything an assertion message needs."""
        lines = [f"{self.flow} at {self.loss:.0%}: {self.calls} calls, {self.failed_calls} failed, "
                 f"{self.commands} commands, {len(self.bad_commands)} bad, {self.dropped} datagrams dropped",
                 *self.relays, *self.bad_commands[:10], *self.service_errors[:10]]
        lines += [result.report(4) for result in self.phones if not result.ok]
        return "\n".join(lines)


_SUCCESSFUL = re.compile(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)")
"""The cumulative column of SIPp's "Successful call" row.  Searched in the whole screen, not line by line:
SIPp's warnings (a receive timeout taken by ``ontimeout``) go to the same file and may split a row of
the screen, so a counter read from a line's last figure can be a label's number (it was, once)."""


def _successful(result: SippResult) -> int:
    """Calls SIPp counted as successful (its last final screen); 0 when the screen cannot be read."""
    found = _SUCCESSFUL.findall(tail(result.output_path, 1_000_000))
    return int(found[-1]) if found else 0


def free_udp_port() -> int:
    """A UDP port free now on loopback (for a phone behind a relay)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


TIMER_F_RETRANS = ("-max_non_invite_retrans", "10")
"""SIPp gives a non-INVITE request 5 retransmissions by default (6 sends over 11.5 s); RFC 3261 section
17.1.2.2 keeps sending until Timer F, 64*T1 = 32 s: 0.5, 1, 2, then every 4 s, 10 retransmissions. At 20 %
loss each way a send and its answer get through with a chance of 0.64, so SIPp's 6 give up on 0.2 % of
requests (a twin's BYE did, once, in the suite) and the RFC's 11 on 0.001 %."""


class LossyPhones:
    """Starts SIPp phones behind their own lossy relay; ``stop_all()`` stops the relays (the launcher the phones)."""

    def __init__(self, sipp: SippLauncher, loss: float, seed: int, jitter: float = 0.01) -> None:
        self.sipp = sipp
        self.loss = loss
        self.seed = seed
        self.jitter = jitter
        self.relays: list[LossyRelay] = []

    def __call__(self, scenario: str, *, phone: str, call: str | None = None, calls: int = 1,
                 rate: float | None = None, pause_ms: int | None = None, timeout_s: float = 60.0,
                 keys: Mapping[str, str] | None = None, rig_port: int | None = None) -> Sipp:
        """``phone`` answers on its rig port (through the relay), or calls ``call`` through the relay;
        ``rig_port`` puts the relay on another port than the phone's (a second SIPp with its identity)."""
        relay = self._relay(self.sipp.ports.port_of(phone) if rig_port is None else rig_port)
        remote = relay.phone_side if call is not None else None
        return self.sipp(scenario, phone=phone, call=call, local_port=relay.phone_port, remote=remote, calls=calls,
                         rate=rate, pause_ms=pause_ms, timeout_s=timeout_s, keys=keys,
                         extra_args=TIMER_F_RETRANS)

    def _relay(self, rig_port: int) -> LossyRelay:
        impairment = Impairment(self.loss, self.jitter, self.seed * 100 + len(self.relays))
        relay = LossyRelay(rig_port=rig_port, phone_port=free_udp_port(), proxy_port=self.sipp.ports.proxy,
                           impairment=impairment).start()
        self.relays.append(relay)
        return relay

    def transferee(self, dialog: str, twin: str, *, phone: str, twin_port: int, call: str | None = None,
                   calls: int = 1, keys: Mapping[str, str] | None = None, timeout_s: float = 60.0) -> tuple[Sipp, Sipp]:
        """A transferee pair (two SIPp linked with ``-3pcc``, as ``SippLauncher.transferee``), each behind its
        own lossy relay: the dialog side on ``phone``'s rig port (a UAS, or a UAC calling ``call``), the twin
        placing its new calls from ``twin_port`` through the proxy.  Returns (dialog side, twin)."""
        link_port = free_tcp_port()
        link = f"{LOOPBACK}:{link_port}"
        twin_relay = self._relay(twin_port)
        new_call = self.sipp(twin, phone=phone, local_port=twin_relay.phone_port, remote=twin_relay.phone_side,
                             calls=calls, timeout_s=timeout_s, extra_args=["-3pcc", link, *TIMER_F_RETRANS])
        deadline = time.monotonic() + 3
        while not is_listening(link_port, "tcp"):
            if not new_call.running or time.monotonic() > deadline:
                raise RigError(f"the -3pcc twin of {phone} did not listen on {link}")
            time.sleep(0.005)
        relay = self._relay(self.sipp.ports.port_of(phone))
        dialog_side = self.sipp(dialog, phone=phone, call=call, local_port=relay.phone_port,
                                remote=relay.phone_side if call is not None else None, calls=calls, keys=keys,
                                timeout_s=timeout_s, extra_args=["-3pcc", link, *TIMER_F_RETRANS])
        return dialog_side, new_call

    def stop_all(self) -> None:
        for relay in self.relays:
            relay.stop()

    def account(self, run: LossRun) -> None:
        """Copy the relays' counts into ``run``."""
        run.relays = [str(relay) for relay in self.relays]
        run.dropped = sum(relay.dropped for relay in self.relays)


def service_errors(log_text: str) -> list[str]:
    """Lines of a service log that say something went wrong inside it."""
    return [line for line in log_text.splitlines() if "Traceback" in line or " ERROR " in line]


def bridged_calls(ports: PortMap, workdir: Path, loss: float, calls: int, *, seed: int = 1,
                  rate: float = 10.0) -> LossRun:
    """``calls`` calls alice -> service -> bob (the service a real process), both phones behind lossy relays."""
    run = LossRun("bridged calls", loss, calls)
    started = time.monotonic()
    sipp = SippLauncher(workdir / "sipp", ports)
    phones = LossyPhones(sipp, loss, seed)
    timeout = 60.0 + calls / rate
    with Kamailio(workdir / "proxy", ports, defines=PROXY_DEFINES):
        service = ServiceProcess(["--sip-listen", f"{LOOPBACK}:{ports.service}", "--ws-port", "0",
                                  "--outbound-proxy", f"sip:{LOOPBACK}:{ports.proxy};lr"], workdir / "call-api.log")
        service.start()
        try:
            bob = phones("loss_uas_answer.xml", phone="bob", calls=calls, timeout_s=timeout)
            alice = phones("loss_uac_call.xml", phone="alice", call="bob", calls=calls, rate=rate, pause_ms=500,
                           timeout_s=timeout)
            run.phones = wait_all([alice, bob], timeout + 15)
        finally:
            sipp.stop_all()
            phones.stop_all()
            service.stop()
    phones.account(run)
    run.service_errors = service_errors(service.log_tail(10_000_000))
    run.seconds = time.monotonic() - started
    return run


class _ErrorRecords(logging.Handler):
    """Collects ERROR records (and any with an exception) of the in-process service."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.lines.append(f"{record.name} {record.levelname} {record.getMessage()}")


@contextmanager
def _recording_errors() -> Iterator[_ErrorRecords]:
    handler = _ErrorRecords()
    root = logging.getLogger("call_api")
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


Body = Callable[[AsyncControl, B2bua], Awaitable[None]]
Phones = Callable[[LossyPhones, PortMap, int], list[Sipp]]
"""Starts a flow's phones for ``calls`` runs behind lossy relays; returns every SIPp started."""
Command = Callable[[AsyncControl, B2bua], Awaitable[list[FlowReport]]]
"""Runs one command of a flow and returns its reports."""


async def _with_service(ports: PortMap, body: Body, timeout: float) -> None:
    built = build_service(load_config(["--sip-listen", f"{LOOPBACK}:{ports.service}", "--outbound-proxy",
                                       f"sip:{LOOPBACK}:{ports.proxy};lr"]))
    await built.runtime.start()
    try:
        await asyncio.wait_for(body(AsyncControl(built.runtime, built.control), built.b2bua), timeout)
    finally:
        await built.runtime.stop()


async def _next_answered(b2bua: B2bua, seen: set[str], timeout: float) -> Call:
    """The first call not in ``seen`` whose legs are both confirmed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for call in b2bua.table:
            if call.id not in seen and call.state is CallState.ANSWERED and \
                    all(leg.session.confirmed for leg in call.legs.values()):
                seen.add(call.id)
                return call
        await asyncio.sleep(0.02)
    raise AssertionError("no new call was answered")


async def _table_emptied(b2bua: B2bua, run: LossRun, timeout: float) -> None:
    """Wait up to ``timeout`` for the call table to empty; what is left is a bad command of ``run``."""
    deadline = time.monotonic() + timeout
    while len(b2bua.table) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    if len(b2bua.table):
        run.bad_commands.append(f"calls left in the table: {[call.id for call in b2bua.table]}")


def _in_process(run: LossRun, ports: PortMap, workdir: Path, lossy: LossyPhones, phones: Phones, body: Body, *,
                timeout: float, phones_timeout: float, started: float) -> LossRun:
    """Kamailio, the phones ``phones`` starts behind ``lossy``'s relays, and the service in this process
    running ``body`` for at most ``timeout`` seconds; then the phones' results, the service's errors and
    the relays' counts go into ``run``."""
    with Kamailio(workdir / "proxy", ports, defines=PROXY_DEFINES), _recording_errors() as errors:
        try:
            started_phones = phones(lossy, ports, run.calls)
            try:
                asyncio.run(_with_service(ports, body, timeout))
            except (AssertionError, TimeoutError) as exc:
                run.bad_commands.append(f"the API run stopped: {exc!r}")
            run.phones = wait_all(started_phones, phones_timeout)
        finally:
            lossy.sipp.stop_all()
            lossy.stop_all()
    run.service_errors = errors.lines
    lossy.account(run)
    run.seconds = time.monotonic() - started
    return run


def hold_and_resume(ports: PortMap, workdir: Path, loss: float, calls: int, *, seed: int = 2) -> LossRun:
    """``calls`` calls alice -> bob one after the other, each put on hold, resumed and ended by the API
    (CallHold, CallUnHold and CallEnd on the callee); the service runs in this process."""
    run = LossRun("hold, resume and end", loss, calls)
    started = time.monotonic()
    sipp = SippLauncher(workdir / "sipp", ports)
    per_call = 40.0
    expected = [("hold", EXPECTED_HOLD), ("unhold", EXPECTED_UNHOLD), ("end", EXPECTED_END)]

    async def body(control: AsyncControl, b2bua: B2bua) -> None:
        seen: set[str] = set()
        for _ in range(calls):
            call = await _next_answered(b2bua, seen, per_call)
            got = {"hold": await control.run(CallHold(call.id, "callee")),
                   "unhold": await control.run(CallUnHold(call.id, "callee")),
                   "end": await control.run(CallEnd(call.id))}
            for command, want in expected:
                run.commands += 1
                if names(got[command]) != want:
                    run.bad_commands.append(f"call {call.id} {command}: {got[command]}")
        await _table_emptied(b2bua, run, per_call)

    def start_phones(lossy: LossyPhones, ports: PortMap, calls: int) -> list[Sipp]:
        bob = lossy("loss_uas_hold.xml", phone="bob", calls=calls, timeout_s=per_call * calls)
        alice = lossy("loss_uac_call_wait_bye.xml", phone="alice", call="bob", calls=calls, rate=10,
                      timeout_s=per_call * calls)
        return [alice, bob]

    return _in_process(run, ports, workdir, LossyPhones(sipp, loss, seed), start_phones, body,
                       timeout=per_call * calls + 10, phones_timeout=30, started=started)


def api_flow(run: LossRun, ports: PortMap, workdir: Path, *, seed: int, phones: Phones, command: Command,
             expected: list[str], per_run: float = 40.0) -> LossRun:
    """``run.calls`` runs of one command through the API, one after the other, with the service in this
    process: ``phones`` starts the SIPp phones (for all runs), ``command(control, b2bua)`` runs the command
    of one run and returns its reports, which must be ``expected`` by name; after each run every call its
    events named (old and new) must leave the table, and after the last the table must be empty."""
    started = time.monotonic()
    sipp = SippLauncher(workdir / "sipp", ports)
    lossy = LossyPhones(sipp, run.loss, seed)

    async def body(control: AsyncControl, b2bua: B2bua) -> None:
        for index in range(run.calls):
            try:
                reports = await asyncio.wait_for(command(control, b2bua), per_run)
            except TimeoutError:
                run.bad_commands.append(f"run {index}: the command did not end within {per_run} s")
                return
            run.commands += 1
            if names(reports) != expected:
                run.bad_commands.append(f"run {index}: {names(reports)} {reports}")
            ids = {report.callid for report in reports if isinstance(report, FlowEvent) and report.callid}
            deadline = time.monotonic() + per_run
            while any(b2bua.table.find(callid) for callid in ids) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            left = [callid for callid in ids if b2bua.table.find(callid)]
            if left:
                run.bad_commands.append(f"run {index}: calls left in the table: {left}")
                return
        await _table_emptied(b2bua, run, per_run)

    return _in_process(run, ports, workdir, lossy, phones, body, timeout=per_run * 2 * run.calls + 10,
                       phones_timeout=40, started=started)


EXPECTED_CALL_START = ["CALL_ANSWER", "TRANSFER_ACCEPT", "CALL_START", "CALL_ANSWER", "FlowEnded"]
EXPECTED_BLIND = ["TRANSFER_ACCEPT", "CALL_START", "FlowEnded"]
TWIN_OFFSET = 11
"""A transferee's twin places its new calls from the proxy's port plus this (as in test_refer_flows)."""


def call_start(ports: PortMap, workdir: Path, loss: float, calls: int, *, seed: int = 3) -> LossRun:
    """``calls`` CallStart(alice, bob), one after the other: the service calls alice (a loss-tolerant
    transferee pair), REFERs her to bob, her twin's new call reaches bob through the service, the service
    hangs up alice's first dialog, and the twin hangs up the new call."""

    def phones(lossy: LossyPhones, ports: PortMap, calls: int) -> list[Sipp]:
        timeout = 40.0 * calls
        bob = lossy("loss_uas_answer.xml", phone="bob", calls=calls, timeout_s=timeout)
        alice = lossy.transferee("loss_uas_transferee.xml", "loss_uac_transferee_call.xml", phone="alice",
                                 twin_port=ports.proxy + TWIN_OFFSET, calls=calls, timeout_s=timeout,
                                 keys={"peer": "bob", "offer_dir": "inactive", "target": "bob"})
        return [*alice, bob]

    async def command(control: AsyncControl, b2bua: B2bua) -> list[FlowReport]:
        return await control.run(CallStart(ports.uri("alice"), ports.uri("bob")))

    return api_flow(LossRun("CallStart", loss, calls), ports, workdir, seed=seed, phones=phones, command=command,
                    expected=EXPECTED_CALL_START)


def blind_transfer(ports: PortMap, workdir: Path, loss: float, calls: int, *, seed: int = 4) -> LossRun:
    """``calls`` calls alice -> bob, each transferred blind: CallBlindTransfer of the callee to carol. Bob
    (a loss-tolerant transferee pair) is REFERred, his twin's new call reaches carol through the service,
    alice and bob's first dialog get BYEs, and the twin hangs up the new call."""
    seen: set[str] = set()

    def phones(lossy: LossyPhones, ports: PortMap, calls: int) -> list[Sipp]:
        timeout = 40.0 * calls
        carol = lossy("loss_uas_answer.xml", phone="carol", calls=calls, timeout_s=timeout)
        bob = lossy.transferee("loss_uas_transferee.xml", "loss_uac_transferee_call.xml", phone="bob",
                               twin_port=ports.proxy + TWIN_OFFSET, calls=calls, timeout_s=timeout,
                               keys={"peer": "alice", "offer_dir": "sendrecv", "target": "carol"})
        alice = lossy("loss_uac_call_wait_bye.xml", phone="alice", call="bob", calls=calls, rate=10,
                      timeout_s=timeout)
        return [alice, *bob, carol]

    async def command(control: AsyncControl, b2bua: B2bua) -> list[FlowReport]:
        call = await _next_answered(b2bua, seen, 40.0)
        return await control.run(CallBlindTransfer(call.id, "callee", ports.uri("carol")))

    return api_flow(LossRun("CallBlindTransfer", loss, calls), ports, workdir, seed=seed, phones=phones,
                    command=command, expected=EXPECTED_BLIND)


EXPECTED_ATTENDED = ["TRANSFER_ACCEPT", "CALL_START", "FlowEnded", "FlowEnded"]
"""CallAttendedTransfer's reports, then those of the CallEnd of the call it left."""


async def _next_answered_to(b2bua: B2bua, callee: str, seen: set[str], timeout: float) -> Call:
    """The first call not in ``seen``, both legs confirmed, whose callee is the phone ``callee``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for call in b2bua.table:
            leg = call.callee
            dialog = leg.session.dialog if leg is not None else None
            if call.id not in seen and call.state is CallState.ANSWERED and dialog is not None and \
                    f"sip:{callee}@" in dialog.remote_uri and all(x.session.confirmed for x in call.legs.values()):
                seen.add(call.id)
                return call
        await asyncio.sleep(0.02)
    raise AssertionError(f"no new call to {callee} was answered")


def attended_transfer(ports: PortMap, workdir: Path, loss: float, calls: int, *, seed: int = 5) -> LossRun:
    """``calls`` attended transfers: call A alice -> bob, call B bob -> carol (bob's second SIPp), alice (A's
    caller, a loss-tolerant transferee pair) REFERred to carol with Replaces naming carol's dialog; her
    twin's INVITE with Replaces takes carol's dialog over (carol gets alice's offer in a re-INVITE), bob's
    two legs get BYEs; then CallEnd of the call left ends alice's new dialog and carol's."""
    seen: set[str] = set()

    def phones(lossy: LossyPhones, ports: PortMap, calls: int) -> list[Sipp]:
        timeout = 40.0 * calls
        bob = lossy("loss_uas_answer.xml", phone="bob", calls=calls, timeout_s=timeout)
        carol = lossy("loss_uas_answer_replaced.xml", phone="carol", calls=calls, timeout_s=timeout,
                      keys={"newcomer": "alice"})
        alice = lossy.transferee("loss_uac_transferee_attended.xml", "loss_uac_transferee_replaces.xml",
                                 phone="alice", call="bob", twin_port=ports.proxy + TWIN_OFFSET, calls=calls,
                                 timeout_s=timeout, keys={"target": "carol"})
        bob2 = lossy("loss_uac_call_wait_bye.xml", phone="bob", call="carol", calls=calls, rate=10,
                     timeout_s=timeout, rig_port=ports.proxy + TWIN_OFFSET + 1)
        return [*alice, bob, bob2, carol]

    async def command(control: AsyncControl, b2bua: B2bua) -> list[FlowReport]:
        call_a = await _next_answered_to(b2bua, "bob", seen, 40.0)
        call_b = await _next_answered_to(b2bua, "carol", seen, 40.0)
        reports = await control.run(CallAttendedTransfer(call_a.id, "caller", call_b.id, "callee", None))
        starts = [r for r in reports if isinstance(r, FlowEvent) and r.data == "CALL_START" and r.callid]
        if not starts:
            return reports
        left = starts[0].callid
        assert left is not None
        # Alice's SIPp takes the service's BYE of her old dialog and her twin's news that the new call is
        # over in that order only (SIPp rejects a command that overtakes a mandatory receive): CallEnd
        # waits until call A, BYE answered on both legs, is over.
        deadline = time.monotonic() + 40.0
        while not call_a.ended and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return [*reports, *await control.run(CallEnd(left))]

    return api_flow(LossRun("CallAttendedTransfer", loss, calls), ports, workdir, seed=seed, phones=phones,
                    command=command, expected=EXPECTED_ATTENDED)


FLOWS: dict[str, Callable[..., LossRun]] = {"bridged": bridged_calls, "hold": hold_and_resume,
                                             "start": call_start, "blind": blind_transfer,
                                             "attended": attended_transfer}
"""Each flow under loss by name: ``FLOWS[name](ports, workdir, loss, calls)``."""
