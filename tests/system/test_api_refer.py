"""The REFER commands end to end over WebSocket: the service as a process, Kamailio as its outbound proxy,
SIPp phones as transferees; CallStart, CallBlindTransfer, CallAttendedTransfer and a chain of commands
driven only by the Call-IDs the notifications report, each checked against the notification sequence of
the seed; a transfer without its final NOTIFY under ``--refer-notify-timeout 2`` (the other failure flows
are in test_refer_flows.py, in-process with the same flag). Then the README's five-minute tour, run as the
README gives it.

A transferee is two SIPp linked with -3pcc: the dialog side gets the REFER and sends the NOTIFYs, its twin
places the new call under the Call-ID ``xfer-<the dialog's Call-ID>`` (see sipp-scenarios/README.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from websockets.asyncio.client import connect

from harness.kamailio import PORT_OFFSET_ENV, Kamailio, PortMap
from harness.ports import port_is_free
from harness.processes import spawn
from harness.procfs import is_listening
from harness.service import ROOT, ApiFactory, ServiceProcess
from harness.sip_probe import sip_options
from harness.sipp import Sipp, SippLauncher, assert_all_ok, wait_all

from .ws_commands import call_id_of, command, names, wait_for_text, when_answered

pytestmark = pytest.mark.system

Messages = list[dict[str, Any]]


def events(messages: Messages) -> list[dict[str, Any]]:
    """The params of every notification after the response, less the ``cmd_id`` (checked to be the command's)."""
    cmd_id = messages[0]["result"]["cmd_id"]
    found = []
    for message in messages[1:]:
        params = dict(message["params"])
        assert params.pop("cmd_id") == cmd_id, message
        if message["method"] == "Event":
            found.append(params)
    return found


def event(messages: Messages, data: str) -> dict[str, Any]:
    """The params of the one ``data`` event."""
    (found,) = [m for m in messages if m.get("method") == "Event" and m["params"]["data"] == data]
    params: dict[str, Any] = found["params"]
    return params


def run(coroutine: Coroutine[Any, Any, None], phones: list[Sipp], proxy: Kamailio, service: ServiceProcess) -> None:
    """Drive the API (15 s at most), then require every phone to have succeeded; the phones' reports
    (and the service log) also explain a drive that failed or timed out."""
    try:
        asyncio.run(asyncio.wait_for(coroutine, 15))
    finally:
        try:
            assert_all_ok(wait_all(phones, 10), proxy)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n== service log (tail):\n{service.log_tail()}") from None


def call_start_events(first: str) -> list[dict[str, Any]]:
    """What CallStart reports when alice (reached under Call-ID ``first``) follows the REFER to bob."""
    new = f"xfer-{first}"
    return [
        {"data": "CALL_ANSWER", "callid": first, "leg": "caller", "status": "SIP/2.0 200 OK"},
        {"data": "TRANSFER_ACCEPT", "callid": first, "leg": "caller", "status": "SIP/2.0 202 Accepted"},
        # named by the transferee's INVITE through the service, which is no SIP response: no status
        {"data": "CALL_START", "callid": new},
        {"data": "CALL_ANSWER", "callid": new, "leg": "callee", "status": "SIP/2.0 200 OK"},
    ]


def test_call_start(call_api_ws: ApiFactory, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap) -> None:
    service, url = call_api_ws()
    bob = sipp("uas_answer.xml", phone="bob")
    alice, alice_new = sipp.transferee("alice", "uas_transferee.xml", "uac_transferee_call.xml",
                                       twin_port=rig_ports.proxy + 11,
                                       keys={"peer": "bob", "offer_dir": "inactive", "target": "bob"})
    got: dict[str, Messages] = {}

    async def drive() -> None:
        async with connect(url) as ws:
            got["start"] = await command(ws, "CallStart", {"caller": rig_ports.uri("alice"),
                                                           "callee": rig_ports.uri("bob")}, "start")

    run(drive(), [alice, alice_new, bob], kamailio, service)
    assert names(got["start"]) == ["Started", "CALL_ANSWER", "TRANSFER_ACCEPT", "CALL_START", "CALL_ANSWER",
                                   "Ended"], got
    first = call_id_of(alice)  # the Call-ID the service chose towards alice
    assert events(got["start"]) == call_start_events(first)
    assert call_id_of(alice_new) == f"xfer-{first}"
    assert "osid" not in bob.message_log(), "the service must strip the correlation token before the callee"


def test_blind_transfer(call_api_ws: ApiFactory, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap) -> None:
    service, url = call_api_ws()
    carol = sipp("uas_answer.xml", phone="carol")
    bob, bob_new = sipp.transferee("bob", "uas_transferee.xml", "uac_transferee_call.xml",
                                   twin_port=rig_ports.proxy + 12,
                                   keys={"peer": "alice", "offer_dir": "sendrecv", "target": "carol"})
    alice = sipp("uac_call_wait_bye.xml", phone="alice", call="bob")
    caller_call_id = call_id_of(alice)
    got: dict[str, Messages] = {}

    async def drive() -> None:
        async with connect(url) as ws:
            got["transfer"] = await when_answered(ws, "CallBlindTransfer", {
                "callid": caller_call_id, "leg": "callee", "destination": rig_ports.uri("carol")})

    run(drive(), [alice, bob, bob_new, carol], kamailio, service)
    assert names(got["transfer"]) == ["Started", "TRANSFER_ACCEPT", "CALL_START", "Ended"], got
    callee_call_id = call_id_of(bob)
    assert events(got["transfer"]) == [
        {"data": "TRANSFER_ACCEPT", "callid": callee_call_id, "leg": "callee", "status": "SIP/2.0 202 Accepted"},
        {"data": "CALL_START", "callid": f"xfer-{callee_call_id}"},
    ]
    assert "Referred-By: <sip:alice@" in bob.message_log()
    assert "osid" not in carol.message_log()


def test_refer_notify_timeout_from_the_command_line(
    call_api_ws: ApiFactory, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap
) -> None:
    """With ``--refer-notify-timeout 2``, a blind transfer whose transferee accepts the REFER and never sends
    the final NOTIFY is reported failed (408) after about 2 s, not the default 32; the call stays up."""
    service, url = call_api_ws("--refer-notify-timeout", "2")
    bob = sipp("uas_transferee_silent.xml", phone="bob", keys={"peer": "alice", "offer_dir": "sendrecv",
                                                                "target": "carol"})
    alice = sipp("uac_call_wait_bye.xml", phone="alice", call="bob")
    caller_call_id = call_id_of(alice)
    wait_for_text(bob.messages_path, r"^ACK sip:")
    got: dict[str, Messages] = {}
    took: list[float] = []

    async def drive() -> None:
        async with connect(url) as ws:
            started = time.monotonic()
            got["transfer"] = await when_answered(ws, "CallBlindTransfer", {
                "callid": caller_call_id, "leg": "callee", "destination": rig_ports.uri("carol")})
            took.append(time.monotonic() - started)
            got["end"] = await command(ws, "CallEnd", {"callid": caller_call_id}, "end")

    run(drive(), [alice, bob], kamailio, service)
    # only a 100 Trying NOTIFY came: no CALL_START (flows/refer.py)
    assert names(got["transfer"]) == ["Started", "TRANSFER_ACCEPT", "Error", "Ended"], got
    (error,) = [m["params"] for m in got["transfer"] if m.get("method") == "Error"]
    assert error["code"] == 408, error
    assert 1.5 < took[0] < 10, f"the transfer failed after {took[0]:.1f} s"
    assert names(got["end"]) == ["Started", "Ended"]


def test_attended_transfer_with_upstream_spelling(
    call_api_ws: ApiFactory, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap
) -> None:
    """Call A alice -> bob, call B bob -> carol; alice (A's caller) is REFERred to carol with Replaces naming
    carol's dialog; then the call left, alice's new dialog bridged to carol's, is ended by CALL_START's Call-ID."""
    service, url = call_api_ws()
    bob = sipp("uas_answer.xml", phone="bob")
    carol = sipp("uas_answer_replaced.xml", phone="carol", keys={"newcomer": "alice"})
    alice, alice_new = sipp.transferee("alice", "uac_transferee_attended.xml", "uac_transferee_replaces.xml",
                                       twin_port=rig_ports.proxy + 11, call="bob", keys={"target": "carol"})
    # bob's consultation call, from a second SIPp with bob's identity (the proxy sends it to the service)
    bob2 = sipp("uac_call_wait_bye.xml", phone="bob", call="carol", local_port=rig_ports.proxy + 12)
    call_a, call_b = call_id_of(alice), call_id_of(bob2)
    got: dict[str, Messages] = {}

    async def drive() -> None:
        async with connect(url) as ws:
            got["transfer"] = await when_answered(ws, "CallAttendedTransfer", {
                "callidA": call_a, "legA": "caller", "callidB": call_b, "legB": "callee",
                "destination": rig_ports.uri("carol")})
            start = event(got["transfer"], "CALL_START") if "result" in got["transfer"][0] else {}
            if "callid" in start:
                got["end"] = await command(ws, "CallEnd", {"callid": start["callid"]}, "end")

    run(drive(), [alice, alice_new, bob, bob2, carol], kamailio, service)
    assert names(got["transfer"]) == ["Started", "TRANSFER_ACCEPT", "CALL_START", "Ended"], got
    assert events(got["transfer"]) == [
        {"data": "TRANSFER_ACCEPT", "callid": call_a, "leg": "caller", "status": "SIP/2.0 202 Accepted"},
        # alice's INVITE with Replaces (her twin's Call-ID), not the dialog it replaced
        {"data": "CALL_START", "callid": f"xfer-{call_a}"},
    ]
    assert names(got["end"]) == ["Started", "Ended"]
    assert re.search(r"^Replaces: \S+;to-tag=\S+;from-tag=\S+\r?$", alice_new.message_log(), re.MULTILINE)
    assert "osid" not in carol.message_log() and not re.search(r"^Replaces:", carol.message_log(), re.MULTILINE)


def test_chain_by_reported_callids(
    call_api_ws: ApiFactory, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap
) -> None:
    """CallStart(alice, bob); then CallHold, CallUnHold and CallBlindTransfer of bob to carol by the Call-ID
    CALL_START reported, and CallEnd by the one the transfer's CALL_START reported."""
    service, url = call_api_ws()
    carol = sipp("uas_answer.xml", phone="carol")
    bob, bob_new = sipp.transferee("bob", "uas_hold_transferee_keep.xml", "uac_transferee_keep.xml",
                                   twin_port=rig_ports.proxy + 12,
                                   keys={"peer": "alice", "offer_dir": "sendrecv", "target": "carol"})
    alice, alice_new = sipp.transferee("alice", "uas_transferee_keep.xml", "uac_transferee_keep.xml",
                                       twin_port=rig_ports.proxy + 11,
                                       keys={"peer": "bob", "offer_dir": "inactive", "target": "bob"})
    got: dict[str, Messages] = {}

    async def drive() -> None:
        async with connect(url) as ws:
            got["start"] = await command(ws, "CallStart", {"caller": rig_ports.uri("alice"),
                                                           "callee": rig_ports.uri("bob")}, "start")
            callid = event(got["start"], "CALL_START")["callid"]
            # until alice's ACK has come through, bob's call is not set up for a re-INVITE
            got["hold"] = await when_answered(ws, "CallHold", {"callid": callid, "leg": "callee"})
            got["unhold"] = await command(ws, "CallUnHold", {"callid": callid, "leg": "callee"}, "unhold")
            got["transfer"] = await command(ws, "CallBlindTransfer", {
                "callid": callid, "leg": "callee", "destination": rig_ports.uri("carol")}, "transfer")
            moved = event(got["transfer"], "CALL_START")["callid"]
            got["end"] = await command(ws, "CallEnd", {"callid": moved}, "end")

    run(drive(), [alice, alice_new, bob, bob_new, carol], kamailio, service)
    assert names(got["start"]) == ["Started", "CALL_ANSWER", "TRANSFER_ACCEPT", "CALL_START", "CALL_ANSWER",
                                   "Ended"], got
    first = call_id_of(alice)
    assert events(got["start"]) == call_start_events(first)
    bob_leg = call_id_of(bob)  # the Call-ID the service chose towards bob: the leg held, resumed, REFERred
    assert names(got["hold"]) == ["Started", "CALL_HOLD", "Ended"], got
    assert events(got["hold"]) == [{"data": "CALL_HOLD", "callid": bob_leg, "leg": "callee",
                                    "status": "SIP/2.0 200 OK"}]
    assert names(got["unhold"]) == ["Started", "CALL_UNHOLD", "Ended"], got
    assert events(got["unhold"]) == [{"data": "CALL_UNHOLD", "callid": bob_leg, "leg": "callee",
                                      "status": "SIP/2.0 200 OK"}]
    assert names(got["transfer"]) == ["Started", "TRANSFER_ACCEPT", "CALL_START", "Ended"], got
    assert events(got["transfer"]) == [
        {"data": "TRANSFER_ACCEPT", "callid": bob_leg, "leg": "callee", "status": "SIP/2.0 202 Accepted"},
        {"data": "CALL_START", "callid": f"xfer-{bob_leg}"},
    ]
    assert names(got["end"]) == ["Started", "Ended"], got
    assert "Referred-By: <sip:alice@" in bob.message_log()
    assert "osid" not in carol.message_log()


# -- the README's five-minute tour ---------------------------------------------------------------------------

TOUR_PORTS = {"Kamailio": 5060, "service SIP": 5080, "API": 5059, "alice": 5061, "bob": 5062,
              "alice's new call": 5071, "alice's -3pcc link": 5090}
"""The default ports the tour runs on (scripts/tour)."""
TOUR_PARTIES = ("proxy", "service", "alice", "bob")
CLIENT = ".venv/bin/call-api-client"


class Tour(NamedTuple):
    terminals: dict[str, str]
    """Party -> the README's command line for its terminal."""
    client: list[str]
    """The README's call-api-client command lines, in order."""


def method_of(line: str) -> str:
    """The ``--method`` of a client command line."""
    match = re.search(r"--method (\w+)", line)
    assert match is not None, line
    return match[1]


def readme_tour() -> Tour:
    """The shell lines of the README's "Five-minute tour" section."""
    text = (ROOT / "README.md").read_text()
    assert "\n## Five-minute tour\n" in text, "README.md lost its five-minute tour"
    section = text.split("\n## Five-minute tour\n", 1)[1].split("\n## ", 1)[0]
    lines = [line.strip() for block in re.findall(r"^```sh\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
             for line in block.splitlines() if line.strip()]
    terminals = {}
    for line in lines:
        if match := re.match(r"bash scripts/tour (\w+)", line):
            terminals[match[1]] = line
    client = [line for line in lines if line.startswith(CLIENT)]
    assert sorted(terminals) == sorted(TOUR_PARTIES), lines
    assert [method_of(line) for line in client] == ["CallStart", "CallHold", "CallUnHold", "CallEnd"], client
    assert any(line.startswith("CALLID=") for line in lines), "the tour no longer shows how to keep the callid"
    return Tour(terminals, client)


class Terminal:
    """One of the tour's terminals: a command line in its own session, its output in a log."""

    def __init__(self, name: str, line: str, logs: Path) -> None:
        self.name = name
        self.line = line
        self.log_path = logs / f"{name}.log"
        env = dict(os.environ, TOUR_LOGS=str(logs / "phones"), PYTHONUNBUFFERED="1")
        with self.log_path.open("wb") as log:
            self.proc = spawn(["bash", "-c", line], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)

    def log(self) -> str:
        return f"== {self.name}: $ {self.line}\n{self.log_path.read_text(errors='replace')[-3000:]}"

    def wait(self, timeout: float) -> int | None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout)
        return self.proc.returncode

    def interrupt(self, timeout: float = 5.0) -> int | None:
        """Ctrl-C, as in a terminal (SIGINT to its process group); SIGKILL if it is still there after ``timeout``."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGINT)
            self.wait(timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # nothing of the group may keep a port
        if self.proc.poll() is None:
            self.proc.wait(5)
            return None
        return self.proc.returncode


def until_ready(what: str, ready: Callable[[], bool], terminal: Terminal, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert terminal.proc.poll() is None and time.monotonic() < deadline, f"{what} never came up\n{terminal.log()}"
        time.sleep(0.05)


def client_run(line: str, callid: str | None) -> tuple[int, Messages, str]:
    """One of the README's client command lines, through bash, with ``$CALLID`` set as the reader set it."""
    env = dict(os.environ)
    if callid is not None:
        env["CALLID"] = callid
    result = subprocess.run(["bash", "-c", line], cwd=ROOT, env=env, capture_output=True, text=True, timeout=15)
    messages = [json.loads(out) for out in result.stdout.splitlines()]
    return result.returncode, messages, f"$ {line}\n{result.stdout}{result.stderr}"


def test_readme_tour(tmp_path: Path) -> None:
    """The tour on its default ports (another rig beside this one, on shifted ports, would collide: skipped then)."""
    if int(os.environ.get(PORT_OFFSET_ENV, "0") or "0"):
        pytest.skip(f"the tour runs on the default ports; {PORT_OFFSET_ENV} says another rig may hold them")
    taken = [f"{who} {port}" for who, port in TOUR_PORTS.items() if not port_is_free(port)]
    assert not taken, f"the tour's ports are taken: {', '.join(taken)}"
    assert (ROOT / CLIENT).exists(), f"{CLIENT} is missing: run `bash scripts/test` first"
    tour = readme_tour()
    terminals: dict[str, Terminal] = {}
    try:
        terminals["proxy"] = proxy = Terminal("proxy", tour.terminals["proxy"], tmp_path)
        until_ready("Kamailio", lambda: sip_options(5060, timeout=0.2) == 200, proxy)
        terminals["service"] = service = Terminal("service", tour.terminals["service"], tmp_path)
        until_ready("the service", lambda: is_listening(5059, "tcp") and is_listening(5080, "udp"), service)
        terminals["bob"] = bob = Terminal("bob", tour.terminals["bob"], tmp_path)
        until_ready("bob", lambda: is_listening(5062, "udp"), bob)
        terminals["alice"] = alice = Terminal("alice", tour.terminals["alice"], tmp_path)
        until_ready("alice", lambda: is_listening(5061, "udp") and is_listening(5071, "udp"), alice)

        callid: str | None = None
        seen: dict[str, Messages] = {}
        for line in tour.client:
            status, messages, shown = client_run(line, callid)
            context = f"{shown}\n" + "\n".join(t.log() for t in terminals.values())
            assert status == 0, context
            method = method_of(line)
            seen[method] = messages
            if method == "CallStart":
                callid = event(messages, "CALL_START")["callid"]
                assert events(messages) == call_start_events(callid.removeprefix("xfer-")), context
        held = events(seen["CallHold"])
        assert [e["data"] for e in held] == ["CALL_HOLD"] and held[0]["leg"] == "callee", seen
        assert events(seen["CallUnHold"]) == [{**held[0], "data": "CALL_UNHOLD"}], seen
        assert names(seen["CallEnd"]) == ["Started", "Ended"], seen

        # Both phones saw their call through (SIPp: no failed call) and exit on their own.
        for phone in (alice, bob):
            assert phone.wait(10) == 0, "\n".join(t.log() for t in terminals.values())
        # Ctrl-C stops the service and the proxy cleanly.
        assert service.interrupt() == 0, service.log()
        assert proxy.interrupt() == 0, proxy.log()
    finally:
        for terminal in reversed(terminals.values()):
            terminal.interrupt()
