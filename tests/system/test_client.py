"""The client library (``rpc.client.CallApi``) against the running service (issue 16): the service as a process,
Kamailio as its proxy, SIPp phones. Every command through the library's own methods, an ``Error`` raised as
:class:`CommandFailedError` with its SIP code, a refused request as :class:`RequestRefusedError` with its
JSON-RPC code, and the service killed under a running command surfacing as :class:`ConnectionLostError` in the
command's waiter (``asyncio.wait_for`` around each test turns a hang into a failure)."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import pytest

from harness.kamailio import Kamailio, PortMap
from harness.service import ApiFactory
from harness.sipp import SippLauncher, assert_all_ok, wait_all
from rpc.client import CallApi, CommandFailedError, ConnectionLostError, RequestRefusedError
from rpc.errors import CALL_NOT_FOUND

from .ws_commands import call_id_of, wait_for_text

pytestmark = pytest.mark.system


def answered(sipp_phone: Any) -> None:
    """Wait until the phone's call is answered and acknowledged (its ACK logged)."""
    wait_for_text(sipp_phone.messages_path, r"^ACK sip:")


def test_hold_unhold_and_end_through_the_library(
    call_api_ws: ApiFactory, kamailio: Kamailio, sipp: SippLauncher
) -> None:
    service, url = call_api_ws()
    bob = sipp("uas_hold.xml", phone="bob")
    alice = sipp("uac_call_wait_bye.xml", phone="alice", call="bob")
    callid = call_id_of(alice)
    answered(bob)
    answered(alice)
    got: dict[str, Any] = {}

    async def drive() -> None:
        async with CallApi(url) as api:
            got["hold"] = await api.call_hold(callid, "callee", cmd_id="hold")
            got["unhold"] = await api.call_unhold(callid, "callee", cmd_id="unhold")
            got["end"] = await api.call_end(callid, cmd_id="end")

    asyncio.run(asyncio.wait_for(drive(), 30))
    context = f"{got}\n{service.log_tail()}"
    assert [(e.cmd_id, e.data, e.leg, e.status) for e in got["hold"]] == [
        ("hold", "CALL_HOLD", "callee", "SIP/2.0 200 OK")], context
    assert [(e.cmd_id, e.data, e.leg, e.status) for e in got["unhold"]] == [
        ("unhold", "CALL_UNHOLD", "callee", "SIP/2.0 200 OK")], context
    assert got["end"] == (), context
    assert_all_ok(wait_all([alice, bob], 20), kamailio)


def test_call_start_through_the_library(
    call_api_ws: ApiFactory, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap
) -> None:
    service, url = call_api_ws()
    bob = sipp("uas_answer.xml", phone="bob")
    alice, alice_new = sipp.transferee("alice", "uas_transferee.xml", "uac_transferee_call.xml",
                                       twin_port=rig_ports.proxy + 11,
                                       keys={"peer": "bob", "offer_dir": "inactive", "target": "bob"})
    got: dict[str, Any] = {}

    async def drive() -> None:
        async with CallApi(url) as api:
            handle = await api.call_start(rig_ports.uri("alice"), rig_ports.uri("bob"), cmd_id="start").start()
            got["cmd_id"] = handle.cmd_id
            got["events"] = await handle.wait()

    asyncio.run(asyncio.wait_for(drive(), 30))
    assert got["cmd_id"] == "start"
    assert [e.data for e in got["events"]] == ["CALL_ANSWER", "TRANSFER_ACCEPT", "CALL_START", "CALL_ANSWER"], (
        got, service.log_tail())
    assert_all_ok(wait_all([alice, alice_new, bob], 20), kamailio)


def test_blind_transfer_through_the_library(
    call_api_ws: ApiFactory, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap
) -> None:
    service, url = call_api_ws()
    carol = sipp("uas_answer.xml", phone="carol")
    bob = sipp.transferee("bob", "uas_transferee.xml", "uac_transferee_call.xml", twin_port=rig_ports.proxy + 11,
                          keys={"peer": "alice", "offer_dir": "sendrecv", "target": "carol"})
    alice = sipp("uac_call_wait_bye.xml", phone="alice", call="bob")
    callid = call_id_of(alice)
    answered(alice)
    got: dict[str, Any] = {}

    async def drive() -> None:
        async with CallApi(url) as api:
            got["events"] = await api.call_blind_transfer(callid, "callee", rig_ports.uri("carol"))

    asyncio.run(asyncio.wait_for(drive(), 30))
    events = got["events"]
    assert [e.data for e in events] == ["TRANSFER_ACCEPT", "CALL_START"], (got, service.log_tail())
    assert events[0].status == "SIP/2.0 202 Accepted" and events[1].callid == f"xfer-{events[0].callid}"
    assert_all_ok(wait_all([alice, *bob, carol], 20), kamailio)


def test_attended_transfer_through_the_library(
    call_api_ws: ApiFactory, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap
) -> None:
    """Call A alice -> bob, call B bob -> carol; alice is REFERred to carol with Replaces naming carol's dialog,
    and the new call alice -> carol is ended through the library."""
    service, url = call_api_ws()
    bob = sipp("uas_answer.xml", phone="bob")
    carol = sipp("uas_answer_replaced.xml", phone="carol", keys={"newcomer": "alice"})
    alice, alice_new = sipp.transferee("alice", "uac_transferee_attended.xml", "uac_transferee_replaces.xml",
                                       twin_port=rig_ports.proxy + 11, call="bob", keys={"target": "carol"})
    bob2 = sipp("uac_call_wait_bye.xml", phone="bob", call="carol", local_port=rig_ports.proxy + 12)
    call_a, call_b = call_id_of(alice), call_id_of(bob2)
    answered(alice)
    answered(bob2)
    got: dict[str, Any] = {}

    async def drive() -> None:
        async with CallApi(url) as api:
            got["transfer"] = await api.call_attended_transfer(call_a, "caller", call_b, "callee",
                                                               rig_ports.uri("carol"), cmd_id="attended")
            new = f"xfer-{call_a}"
            for _ in range(100):  # the REFER's new INVITE with Replaces may still be on its way
                try:
                    got["end"] = await api.call_end(new)
                    break
                except RequestRefusedError as error:
                    assert error.code == CALL_NOT_FOUND, error
                    await asyncio.sleep(0.1)

    asyncio.run(asyncio.wait_for(drive(), 40))
    assert [e.cmd_id for e in got["transfer"]] and {e.cmd_id for e in got["transfer"]} == {"attended"}, got
    assert "TRANSFER_ACCEPT" in [e.data for e in got["transfer"]], (got, service.log_tail())
    assert got.get("end") == (), (got, service.log_tail())
    assert_all_ok(wait_all([alice, alice_new, bob, bob2, carol], 20), kamailio)


def test_an_error_is_raised_with_its_code_and_a_refusal_with_its_json_rpc_code(
    call_api_ws: ApiFactory, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap
) -> None:
    service, url = call_api_ws("--refer-notify-timeout", "2")
    bob = sipp("uas_transferee_refuse.xml", phone="bob", keys={"peer": "alice", "offer_dir": "sendrecv",
                                                              "target": "carol"})
    alice = sipp("uac_call_wait_bye.xml", phone="alice", call="bob")
    callid = call_id_of(alice)
    answered(alice)
    got: dict[str, Any] = {}

    async def drive() -> None:
        async with CallApi(url) as api:
            with pytest.raises(RequestRefusedError) as refused:
                await api.call_hold("no-such-call@nowhere")
            got["refused"] = refused.value
            with pytest.raises(CommandFailedError) as failed:
                await api.call_blind_transfer(callid, "callee", rig_ports.uri("carol"), cmd_id="refused")
            got["failed"] = failed.value
            got["end"] = await api.call_end(callid)

    asyncio.run(asyncio.wait_for(drive(), 30))
    assert got["refused"].code == CALL_NOT_FOUND, got
    assert (got["failed"].cmd_id, got["failed"].code) == ("refused", 603), (got, service.log_tail())
    assert got["end"] == ()
    assert_all_ok(wait_all([alice, bob], 20), kamailio)


def test_the_service_killed_under_a_command_raises_connection_lost_not_a_hang(
    call_api_ws: ApiFactory, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap
) -> None:
    service, url = call_api_ws()
    alice = sipp("uas_ring_no_answer.xml", phone="alice")
    got: dict[str, Any] = {}

    async def drive() -> None:
        async with CallApi(url) as api:
            handle = await api.call_start(rig_ports.uri("alice"), rig_ports.uri("bob"), cmd_id="doomed").start()
            await asyncio.to_thread(wait_for_text, alice.messages_path, r"^SIP/2.0 180 Ringing")
            assert not handle.done
            assert service.proc is not None
            service.proc.send_signal(signal.SIGKILL)
            with pytest.raises(ConnectionLostError) as lost:
                await handle.wait()
            got["lost"] = lost.value
            with pytest.raises(ConnectionLostError):
                await api.call_end("anything")

    asyncio.run(asyncio.wait_for(drive(), 20))
    assert isinstance(got["lost"], ConnectionLostError)
