"""CallStart and CallBlindTransfer (RFC 3515 REFER, RFC 5359 sections 2.4 and 2.18) through the
awaitable control API, with SIPp phones as transferees; the service runs in this process, Kamailio
and SIPp as processes.

A transferee is two SIPp instances linked with -3pcc: ``uas_transferee.xml`` holds the dialog that
gets the REFER and sends the NOTIFYs, ``uac_transferee_call.xml`` places the new call (SIPp keeps
one Call-ID per call) and tells its twin how it went.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from b2bua.call.b2bua import B2bua
from b2bua.call.call import Call, CallState
from b2bua.call.commands import CallBlindTransfer, CallEnd, CallStart
from b2bua.call.events import FlowError, FlowEvent, FlowReport
from b2bua.io.control import AsyncControl
from harness.kamailio import Kamailio, PortMap
from harness.service import Serve
from harness.sipp import Sipp, SippLauncher

from .flow_reports import names

pytestmark = pytest.mark.system

async def a_call(b2bua: B2bua, timeout: float = 5.0) -> Call:
    """The first call whose legs are both confirmed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for call in b2bua.table:
            if call.state is CallState.ANSWERED and all(leg.session.confirmed for leg in call.legs.values()):
                return call
        await asyncio.sleep(0.02)
    raise AssertionError("no call was answered")


async def table_empty(b2bua: B2bua, timeout: float = 8.0) -> None:
    """Wait until every call, old and new, is over and gone from the table."""
    deadline = time.monotonic() + timeout
    while len(b2bua.table) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert [call.id for call in b2bua.table] == []


def transferee(sipp: SippLauncher, ports: PortMap, phone: str, *, peer: str, offer_dir: str,
               target: str) -> list[Sipp]:
    """A transferee on ``phone``'s port (``uas_transferee.xml`` with its -3pcc twin ``uac_transferee_call.xml``,
    whose new call goes out from the proxy port + 11): [dialog side, twin]."""
    return list(sipp.transferee(phone, "uas_transferee.xml", "uac_transferee_call.xml", twin_port=ports.proxy + 11,
                                keys={"peer": peer, "offer_dir": offer_dir, "target": target}))


def assert_failure(reports: list[FlowReport], code: int) -> None:
    error = reports[-2]
    assert isinstance(error, FlowError) and error.code == code, error
    for report in reports:
        if isinstance(report, FlowEvent) and report.data == "CALL_START":
            # No INVITE came through the service: a NOTIFY beyond 100 Trying started the call, unnamed.
            assert report.status != "SIP/2.0 100 Trying" and report.callid is None


def test_call_start(serve: Serve, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap) -> None:
    bob = sipp("uas_answer.xml", phone="bob")
    alice = transferee(sipp, rig_ports, "alice", peer="bob", offer_dir="inactive", target="bob")
    got: list[FlowReport] = []

    async def body(control: AsyncControl, b2bua: B2bua) -> None:
        got.extend(await control.run(CallStart(rig_ports.uri("alice"), rig_ports.uri("bob"))))
        await table_empty(b2bua)

    serve(body, phones=[*alice, bob], proxy=kamailio)
    assert names(got) == ["CALL_ANSWER", "TRANSFER_ACCEPT", "CALL_START", "CALL_ANSWER", "FlowEnded"]
    first, accept, start, answer = got[:4]
    assert isinstance(first, FlowEvent) and first.leg == "caller" and first.status == "SIP/2.0 200 OK"
    assert isinstance(accept, FlowEvent) and accept.callid == first.callid and accept.status == "SIP/2.0 202 Accepted"
    # The new call is the transferee's own, under the Call-ID its twin made from the dialog's.
    assert isinstance(start, FlowEvent) and start.callid == f"xfer-{first.callid}"
    assert isinstance(answer, FlowEvent) and answer.leg == "callee" and answer.callid == start.callid
    assert answer.status == "SIP/2.0 200 OK"
    assert "osid" not in bob.message_log(), "the service must strip the correlation token before the callee"


def test_blind_transfer_of_the_callee(serve: Serve, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap) -> None:
    carol = sipp("uas_answer.xml", phone="carol")
    bob = transferee(sipp, rig_ports, "bob", peer="alice", offer_dir="sendrecv", target="carol")
    alice = sipp("uac_call_wait_bye.xml", phone="alice", call="bob")
    got: list[FlowReport] = []

    async def body(control: AsyncControl, b2bua: B2bua) -> None:
        call = await a_call(b2bua)
        got.extend(await control.run(CallBlindTransfer(call.id, "callee", rig_ports.uri("carol"))))
        await table_empty(b2bua)

    serve(body, phones=[alice, *bob, carol], proxy=kamailio)
    assert names(got) == ["TRANSFER_ACCEPT", "CALL_START", "FlowEnded"]
    accept, start = got[:2]
    assert isinstance(accept, FlowEvent) and accept.leg == "callee" and accept.status == "SIP/2.0 202 Accepted"
    assert isinstance(start, FlowEvent) and start.callid == f"xfer-{accept.callid}"
    assert "Referred-By: <sip:alice@" in bob[0].message_log()
    assert "osid" not in carol.message_log()


@pytest.mark.parametrize(("scenario", "reports", "code"), [
    ("uas_transferee_refuse.xml", ["FlowError", "FlowEnded"], 603),
    ("uas_transferee_busy.xml", ["TRANSFER_ACCEPT", "FlowError", "FlowEnded"], 486),
    ("uas_transferee_silent.xml", ["TRANSFER_ACCEPT", "FlowError", "FlowEnded"], 408),
])
def test_blind_transfer_fails_and_the_call_stays(
    serve: Serve, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap, scenario: str, reports: list[str],
    code: int,
) -> None:
    bob = sipp(scenario, phone="bob", keys={"peer": "alice", "offer_dir": "sendrecv", "target": "carol"})
    alice = sipp("uac_call_wait_bye.xml", phone="alice", call="bob")
    got: dict[str, list[FlowReport]] = {}

    async def body(control: AsyncControl, b2bua: B2bua) -> None:
        call = await a_call(b2bua)
        got["transfer"] = await control.run(CallBlindTransfer(call.id, "callee", rig_ports.uri("carol")))
        assert [c.id for c in b2bua.table] == [call.id] and call.state is CallState.ANSWERED
        got["end"] = await control.run(CallEnd(call.id))
        await table_empty(b2bua)

    serve(body, "--refer-notify-timeout", "2", phones=[alice, bob], proxy=kamailio)
    assert names(got["transfer"]) == reports
    assert_failure(got["transfer"], code)
    assert names(got["end"]) == ["FlowEnded"]


@pytest.mark.parametrize(("scenario", "reports", "code"), [
    ("uas_transferee_refuse.xml", ["CALL_ANSWER", "FlowError", "FlowEnded"], 603),
    ("uas_transferee_busy.xml", ["CALL_ANSWER", "TRANSFER_ACCEPT", "FlowError", "FlowEnded"], 486),
    ("uas_transferee_silent.xml", ["CALL_ANSWER", "TRANSFER_ACCEPT", "FlowError", "FlowEnded"], 408),
])
def test_call_start_fails_and_hangs_up_the_caller(
    serve: Serve, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap, scenario: str, reports: list[str],
    code: int,
) -> None:
    alice = sipp(scenario, phone="alice", keys={"peer": "bob", "offer_dir": "inactive", "target": "bob"})
    got: list[FlowReport] = []

    async def body(control: AsyncControl, b2bua: B2bua) -> None:
        got.extend(await control.run(CallStart(rig_ports.uri("alice"), rig_ports.uri("bob"))))
        await table_empty(b2bua)

    serve(body, "--refer-notify-timeout", "2", phones=[alice], proxy=kamailio)
    assert names(got) == reports
    assert_failure(got, code)
