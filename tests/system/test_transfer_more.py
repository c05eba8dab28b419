"""CallAttendedTransfer (RFC 5359 section 2.5, Replaces of RFC 3891), a chain of commands driven only by
the Call-IDs the events report, and CallStart with every hop over TCP; the service runs in this process,
Kamailio and SIPp phones as processes.

A transferee is two SIPp instances linked with -3pcc: the dialog side gets the REFER and sends the
NOTIFYs, its twin places the new call (SIPp keeps one Call-ID per call) under the Call-ID
``xfer-<the dialog's Call-ID>``. The ``*_keep`` pairs and ``uac_transferee_replaces.xml`` keep that new
call until the service ends it, so a test can go on commanding it.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from b2bua.call.b2bua import B2bua
from b2bua.call.call import Call, CallState
from b2bua.call.commands import CallAttendedTransfer, CallBlindTransfer, CallEnd, CallHold, CallStart, CallUnHold
from b2bua.call.events import FlowEvent, FlowReport
from b2bua.io.control import AsyncControl
from harness.kamailio import Kamailio, KamailioLauncher, PortMap
from harness.ports import LOOPBACK
from harness.service import Serve
from harness.sipp import Sipp, SippLauncher

from .flow_reports import event, names

pytestmark = pytest.mark.system

UDP = ("--sip-transport", "udp")
"""The service over UDP only, its outbound proxy Kamailio over UDP (over TCP it opens no UDP at all)."""


async def until(what: str, condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.02)


async def answered_call(b2bua: B2bua, callee: str, timeout: float = 5.0) -> Call:
    """The answered call, both legs confirmed, whose callee is the phone ``callee``."""
    found: list[Call] = []

    def check() -> bool:
        for call in b2bua.table:
            leg = call.callee
            dialog = leg.session.dialog if leg is not None else None
            if call.state is CallState.ANSWERED and all(x.session.confirmed for x in call.legs.values()) and \
                    dialog is not None and f"sip:{callee}@" in dialog.remote_uri:
                found.append(call)
                return True
        return False

    await until(f"a call to {callee} is answered", check, timeout)
    return found[0]


def table_ids(b2bua: B2bua) -> list[str]:
    return [call.id for call in b2bua.table]


@dataclass
class Attended:
    """What an attended transfer run leaves to check: each command's reports, the Replaces the service
    should have sent, and the phones' logs."""

    got: dict[str, list[FlowReport]]
    seen: dict[str, str]
    phones: dict[str, Sipp]


def attended_transfer(serve: Serve, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap) -> Attended:
    """Call A alice -> bob, call B bob -> carol; alice (A's caller) is REFERred to carol with Replaces
    naming carol's dialog. Carol's dialog stays and gets alice's offer; bob's two legs get BYEs; the
    call left, alice's new dialog with carol's, is ended by the Call-ID CALL_START reported."""
    bob = sipp("uas_answer.xml", phone="bob")
    carol = sipp("uas_answer_replaced.xml", phone="carol", keys={"newcomer": "alice"})
    alice, alice_new = sipp.transferee("alice", "uac_transferee_attended.xml", "uac_transferee_replaces.xml",
                                       twin_port=rig_ports.proxy + 11, call="bob", keys={"target": "carol"})
    # bob's consultation call, from a second SIPp with bob's identity (the proxy sends it to the service)
    bob2 = sipp("uac_call_wait_bye.xml", phone="bob", call="carol", local_port=rig_ports.proxy + 12)
    got: dict[str, list[FlowReport]] = {}
    seen: dict[str, str] = {}

    async def body(control: AsyncControl, b2bua: B2bua) -> None:
        call_a = await answered_call(b2bua, "bob")
        call_b = await answered_call(b2bua, "carol")
        target = call_b.callee
        assert target is not None and target.session.dialog is not None
        tags = target.session.dialog.id
        seen.update(a=call_a.id, replaces=f"{target.call_id};to-tag={tags.remote_tag};from-tag={tags.local_tag}")
        got["transfer"] = await control.run(CallAttendedTransfer(call_a.id, "caller", call_b.id, "callee", None))
        # call A's two legs get their BYEs; call B is now alice's new dialog bridged to carol's old one
        await until("call A is gone", lambda: b2bua.table.find(call_a.id) is None)
        assert list(b2bua.table) == [call_b]
        new = call_b.caller
        assert new.call_id == f"xfer-{call_a.id}" and call_b.callee is target
        assert call_b.state is CallState.ANSWERED and new.session.confirmed and target.session.confirmed
        assert b2bua.table.find(new.call_id) is call_b and b2bua.table.find(target.call_id) is call_b
        start = event(got["transfer"], "CALL_START")
        assert start.callid is not None
        got["end"] = await control.run(CallEnd(start.callid))
        await until("the table is empty", lambda: len(b2bua.table) == 0)

    serve(body, *UDP, phones=[alice, alice_new, bob, bob2, carol], proxy=kamailio, phones_timeout=30)
    return Attended(got, seen, {"alice": alice, "alice_new": alice_new, "carol": carol})


def test_attended_transfer(serve: Serve, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap) -> None:
    done = attended_transfer(serve, kamailio, sipp, rig_ports)
    got, seen, alice, alice_new, carol = (done.got, done.seen, done.phones["alice"], done.phones["alice_new"],
                                          done.phones["carol"])
    assert names(got["transfer"]) == ["TRANSFER_ACCEPT", "CALL_START", "FlowEnded"]
    accept, start = got["transfer"][:2]
    assert isinstance(accept, FlowEvent) and accept.callid == seen["a"] and accept.leg == "caller"
    assert accept.status == "SIP/2.0 202 Accepted"
    # CALL_START names alice's INVITE with Replaces (her twin's Call-ID), not the dialog it replaced
    assert isinstance(start, FlowEvent) and start.callid == f"xfer-{seen['a']}"
    assert names(got["end"]) == ["FlowEnded"]
    # The Refer-To names carol's dialog as carol sees it (her tag as to-tag), escaped as a URI header ...
    refer_to = re.search(r"^Refer-To: (.*)$", alice.message_log(), re.MULTILINE)
    assert refer_to is not None
    escaped = re.escape(seen["replaces"].replace("@", "%40").replace(";", "%3B").replace("=", "%3D"))
    assert re.fullmatch(rf"<sip:carol@{LOOPBACK}:{rig_ports.proxy};osid=[0-9a-f]+\?Replaces={escaped}>",
                        refer_to[1].strip()), refer_to[1]
    assert "SIPpTag01" in seen["replaces"].split(";")[1], "the to-tag must be carol's own"
    assert "Referred-By: <sip:bob@" in alice.message_log()
    # ... and alice's twin sent it back unescaped; the service kept it (and the osid) away from carol
    assert re.search(rf"^Replaces: {re.escape(seen['replaces'])}\r?$", alice_new.message_log(), re.MULTILINE)
    assert "osid" not in carol.message_log() and not re.search(r"^Replaces:", carol.message_log(), re.MULTILINE)


def test_attended_transfer_offers_the_target_a_newer_sdp_version(
    serve: Serve, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap,
) -> None:
    """RFC 3264 section 8 (and Leg's own rule: SDP relayed to a leg stays above the version it saw): the
    re-INVITE that brings the newcomer's offer into carol's dialog must carry a higher o= version than
    the SDP carol saw before, else carol may take it for the same session description."""
    carol = attended_transfer(serve, kamailio, sipp, rig_ports).phones["carol"]
    offers = re.findall(r"^INVITE .*?^o=(\S+ \S+) (\d+) ", carol.message_log(), re.MULTILINE | re.DOTALL)
    assert len(offers) == 2
    assert int(offers[1][1]) > int(offers[0][1]), f"o= versions of carol's INVITE and re-INVITE: {offers}"
    assert offers[1][0] == offers[0][0], "the origin carol knows stays the same"


def test_chain_by_reported_callids(
    serve: Serve, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap
) -> None:
    """CallStart(alice, bob), CallHold and CallUnHold of bob, CallBlindTransfer of bob to carol, CallEnd:
    each command names its call only by a Call-ID an earlier command reported."""
    carol = sipp("uas_answer.xml", phone="carol")
    bob, bob_new = sipp.transferee("bob", "uas_hold_transferee_keep.xml", "uac_transferee_keep.xml",
                                   twin_port=rig_ports.proxy + 12,
                                   keys={"peer": "alice", "offer_dir": "sendrecv", "target": "carol"})
    alice, alice_new = sipp.transferee("alice", "uas_transferee_keep.xml", "uac_transferee_keep.xml",
                                       twin_port=rig_ports.proxy + 11,
                                       keys={"peer": "bob", "offer_dir": "inactive", "target": "bob"})
    got: dict[str, list[FlowReport]] = {}

    async def body(control: AsyncControl, b2bua: B2bua) -> None:
        got["start"] = await control.run(CallStart(rig_ports.uri("alice"), rig_ports.uri("bob")))
        callid = event(got["start"], "CALL_START").callid
        assert callid is not None
        # the click-to-dial dialog is hung up: only the new call alice -> bob is left
        await until("only the new call is left", lambda: table_ids(b2bua) == [callid])
        got["hold"] = await control.run(CallHold(callid, "callee"))
        got["unhold"] = await control.run(CallUnHold(callid, "callee"))
        got["transfer"] = await control.run(CallBlindTransfer(callid, "callee", rig_ports.uri("carol")))
        moved = event(got["transfer"], "CALL_START").callid
        assert moved is not None
        await until("only the transferred call is left", lambda: table_ids(b2bua) == [moved])
        got["end"] = await control.run(CallEnd(moved))
        await until("the table is empty", lambda: len(b2bua.table) == 0)

    serve(body, *UDP, phones=[alice, alice_new, bob, bob_new, carol], proxy=kamailio, phones_timeout=30)
    assert names(got["start"]) == ["CALL_ANSWER", "TRANSFER_ACCEPT", "CALL_START", "CALL_ANSWER", "FlowEnded"]
    first, _, start, answer = got["start"][:4]
    assert isinstance(first, FlowEvent) and isinstance(start, FlowEvent) and isinstance(answer, FlowEvent)
    assert start.callid == f"xfer-{first.callid}" and answer.callid == start.callid
    assert answer.leg == "callee" and answer.status == "SIP/2.0 200 OK"
    assert names(got["hold"]) == ["CALL_HOLD", "FlowEnded"]
    assert names(got["unhold"]) == ["CALL_UNHOLD", "FlowEnded"]
    hold, unhold = got["hold"][0], got["unhold"][0]
    assert isinstance(hold, FlowEvent) and isinstance(unhold, FlowEvent)
    assert hold.leg == unhold.leg == "callee" and hold.status == unhold.status == "SIP/2.0 200 OK"
    assert names(got["transfer"]) == ["TRANSFER_ACCEPT", "CALL_START", "FlowEnded"]
    accept, moved = got["transfer"][:2]
    assert isinstance(accept, FlowEvent) and isinstance(moved, FlowEvent)
    # bob's leg is the one held, resumed and REFERred; the new call is bob's twin's, to carol
    assert accept.leg == "callee" and accept.callid == hold.callid == unhold.callid
    assert moved.callid == f"xfer-{accept.callid}"
    assert names(got["end"]) == ["FlowEnded"]
    assert "Referred-By: <sip:alice@" in bob.message_log()
    assert "osid" not in carol.message_log()


def test_call_start_over_tcp(
    serve: Serve, kamailio_factory: KamailioLauncher, sipp: SippLauncher, rig_ports: PortMap
) -> None:
    """test_refer_flows.py's CallStart with every hop over TCP; the service opens no UDP socket."""
    proxy = kamailio_factory(service_transport="tcp", phone_transport="tcp")
    bob = sipp("uas_answer.xml", phone="bob", transport="tcp")
    alice, alice_new = sipp.transferee("alice", "uas_transferee.xml", "uac_transferee_call.xml",
                                       twin_port=rig_ports.proxy + 11, transport="tcp",
                                       keys={"peer": "bob", "offer_dir": "inactive", "target": "bob"})
    got: list[FlowReport] = []

    async def body(control: AsyncControl, b2bua: B2bua) -> None:
        got.extend(await control.run(CallStart(rig_ports.uri("alice"), rig_ports.uri("bob"))))
        await until("the table is empty", lambda: len(b2bua.table) == 0, 8.0)

    serve(body, "--sip-transport", "tcp", "--outbound-proxy", f"sip:{LOOPBACK}:{rig_ports.proxy};transport=tcp;lr",
          phones=[alice, alice_new, bob], proxy=proxy, phones_timeout=30)
    assert names(got) == ["CALL_ANSWER", "TRANSFER_ACCEPT", "CALL_START", "CALL_ANSWER", "FlowEnded"]
    first, accept, start, answer = got[:4]
    assert isinstance(first, FlowEvent) and first.leg == "caller" and first.status == "SIP/2.0 200 OK"
    assert isinstance(accept, FlowEvent) and accept.callid == first.callid
    assert isinstance(start, FlowEvent) and start.callid == f"xfer-{first.callid}"
    assert isinstance(answer, FlowEvent) and answer.leg == "callee" and answer.callid == start.callid
    for phone in (alice, alice_new, bob):
        log = phone.message_log()
        assert "SIP/2.0/TCP" in log and "SIP/2.0/UDP" not in log, f"{phone.name} saw UDP"
