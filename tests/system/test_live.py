"""The live call state end to end: the service as a process, Kamailio as its proxy, SIPp phones; a client in
this process lists the calls and follows their events over WebSocket. A phone's call is seen in CallList and
as created/answered/ended; a phone's own hold re-INVITE as media events by the party; CallStart and the
transfers as transferred/replaced with the Call-IDs the phones used."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import pytest

from harness.kamailio import Kamailio, PortMap
from harness.service import ApiFactory, ServiceFactory
from harness.sipp import SippLauncher, assert_all_ok, wait_all
from rpc.client import CallApi, CallEvent, ConnectionLostError

from .ws_commands import call_id_of, when_answered

pytestmark = pytest.mark.system


class Collector:
    """Every CallEvent of one subscription from now on, gathered by a task."""

    def __init__(self, api: CallApi) -> None:
        self.events: list[dict[str, Any]] = []
        self.task = asyncio.ensure_future(self._collect(api))

    async def _collect(self, api: CallApi) -> None:
        with contextlib.suppress(ConnectionLostError):
            async for item in api.subscription():
                if isinstance(item, CallEvent):
                    self.events.append(dict(item.params))

    async def until(self, found: Callable[[list[dict[str, Any]]], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not found(self.events):
            assert time.monotonic() < deadline, f"not seen in {len(self.events)} events: {self.events}"
            await asyncio.sleep(0.02)

    def of(self, callid: str) -> list[str]:
        return [e["event"] for e in self.events if e["callid"] == callid]

    def check_numbering(self) -> None:
        seqs = [e["seq"] for e in self.events]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs


def ended(callid: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda events: any(e["callid"] == callid and e["event"] == "ended" for e in events)


def test_a_phone_call_is_listed_and_followed_from_created_to_ended(
    call_api: ServiceFactory, call_api_ws: ApiFactory, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap
) -> None:
    service, url = call_api_ws()
    got: dict[str, Any] = {}

    async def drive() -> None:
        async with CallApi(url) as api:
            collector = Collector(api)
            await asyncio.sleep(0.2)  # subscribed before the phones call
            bob = sipp("uas_answer.xml", phone="bob")
            alice = sipp("uac_call.xml", phone="alice", call="bob", pause_ms=1500)
            caller, callee = call_id_of(alice), call_id_of(bob)
            await collector.until(lambda events: any(e["event"] == "answered" for e in events))
            got["listed"] = await api.calls()
            got["by callee"] = await api.get_call(callee)
            await collector.until(ended(caller))
            got["after"] = await api.calls()
            got["events"], got["ids"] = collector.events, (caller, callee)
            collector.check_numbering()
            collector.task.cancel()
            got["results"] = wait_all([alice, bob], 20)

    asyncio.run(asyncio.wait_for(drive(), 30))
    assert_all_ok(got["results"], kamailio)
    caller, callee = got["ids"]
    (listed,) = got["listed"]
    assert listed["callid"] == caller and listed["state"] == "answered" and listed["answered"] is not None
    assert listed["legs"]["callee"]["callid"] == callee and listed["legs"]["caller"]["direction"] == "sendrecv"
    assert listed["legs"]["caller"]["peer"] == f"127.0.0.1:{rig_ports.proxy}", listed  # the proxy is the next hop
    assert got["by callee"]["callid"] == caller
    assert got["after"] == []
    names = [e["event"] for e in got["events"] if e["callid"] == caller]
    assert names[0] == "created" and names[-1] == "ended" and "answered" in names, (names, service.log_tail())
    created, last = got["events"][0], got["events"][-1]
    assert created["call"]["legs"]["callee"]["callid"] == callee
    assert (last["reason"], last["leg"]) == ("bye", "caller") and last["duration"] > 1.0


def test_a_phones_own_hold_is_seen_as_media_by_the_party(
    call_api: ServiceFactory, call_api_ws: ApiFactory, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap
) -> None:
    service, url = call_api_ws()
    got: dict[str, Any] = {}

    async def drive() -> None:
        async with CallApi(url) as api:
            collector = Collector(api)
            await asyncio.sleep(0.2)
            bob = sipp("uas_hold.xml", phone="bob")
            alice = sipp("uac_hold_unhold.xml", phone="alice", call="bob", pause_ms=800)
            caller = call_id_of(alice)
            await collector.until(ended(caller), timeout=20)
            got["events"], got["caller"] = collector.events, caller
            collector.task.cancel()
            got["results"] = wait_all([alice, bob], 20)

    asyncio.run(asyncio.wait_for(drive(), 40))
    assert_all_ok(got["results"], kamailio)
    media = [(e["leg"], e["direction"], e["by"]) for e in got["events"] if e["event"] == "media"]
    assert media == [("callee", "sendrecv", "party"), ("caller", "sendonly", "party"),
                     ("callee", "recvonly", "party"), ("caller", "sendrecv", "party"),
                     ("callee", "sendrecv", "party")], (media, service.log_tail())
    assert not any(e["event"] in ("held", "resumed") for e in got["events"])  # nobody commanded it


def test_call_start_is_created_and_transferred_to_the_new_call(
    call_api: ServiceFactory, call_api_ws: ApiFactory, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap
) -> None:
    service, url = call_api_ws()
    got: dict[str, Any] = {}

    async def drive() -> None:
        async with CallApi(url) as api:
            collector = Collector(api)
            await asyncio.sleep(0.2)
            bob = sipp("uas_answer.xml", phone="bob")
            alice, alice_new = sipp.transferee("alice", "uas_transferee.xml", "uac_transferee_call.xml",
                                          twin_port=rig_ports.proxy + 11,
                                          keys={"peer": "bob", "offer_dir": "inactive", "target": "bob"})
            await api.call_start(rig_ports.uri("alice"), rig_ports.uri("bob"), cmd_id="start")
            first = call_id_of(alice)
            await collector.until(lambda events: ended(first)(events) and ended(f"xfer-{first}")(events), 20)
            got["events"], got["first"] = collector.events, first
            collector.task.cancel()
            got["results"] = wait_all([alice, alice_new, bob], 20)

    asyncio.run(asyncio.wait_for(drive(), 40))
    assert_all_ok(got["results"], kamailio)
    first, events = got["first"], got["events"]
    old = [e for e in events if e["callid"] == first]
    assert old[0]["event"] == "created" and old[-1]["event"] == "ended", (old, service.log_tail())
    assert not old[0]["call"]["legs"].get("callee")
    commands = [(e["cmd_id"], e["method"], e["outcome"]) for e in old if e["event"] == "command"]
    assert commands == [("start", "CallStart", "started"), ("start", "CallStart", "ok")]
    (moved,) = [e for e in old if e["event"] == "transferred"]
    assert (moved["leg"], moved["old"], moved["new"]) == ("caller", first, f"xfer-{first}")
    new = [e["event"] for e in events if e["callid"] == f"xfer-{first}"]
    assert new[0] == "created" and new[-1] == "ended" and "answered" in new


def test_an_attended_transfer_is_transferred_and_replaced(
    call_api: ServiceFactory, call_api_ws: ApiFactory, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap
) -> None:
    """Call A alice -> bob, call B bob -> carol; alice is REFERred to carol with Replaces naming carol's dialog:
    call A is transferred to alice's new dialog, call B gets it in place of bob's leg and is named after it."""
    service, url = call_api_ws()
    got: dict[str, Any] = {}

    async def drive() -> None:
        async with CallApi(url) as api:
            collector = Collector(api)
            await asyncio.sleep(0.2)
            bob = sipp("uas_answer.xml", phone="bob")
            carol = sipp("uas_answer_replaced.xml", phone="carol", keys={"newcomer": "alice"})
            alice, alice_new = sipp.transferee("alice", "uac_transferee_attended.xml", "uac_transferee_replaces.xml",
                                          twin_port=rig_ports.proxy + 11, call="bob", keys={"target": "carol"})
            bob2 = sipp("uac_call_wait_bye.xml", phone="bob", call="carol", local_port=rig_ports.proxy + 12)
            call_a, call_b = call_id_of(alice), call_id_of(bob2)
            from websockets.asyncio.client import connect

            async with connect(url) as ws:
                got["transfer"] = await when_answered(ws, "CallAttendedTransfer", {
                    "callid_a": call_a, "leg_a": "caller", "callid_b": call_b, "leg_b": "callee",
                    "destination": rig_ports.uri("carol")})
            new = f"xfer-{call_a}"
            await collector.until(lambda events: any(e["event"] == "replaced" for e in events), 20)
            await api.call_end(new)
            await collector.until(lambda events: ended(call_a)(events) and ended(new)(events), 20)
            got["events"], got["ids"] = collector.events, (call_a, call_b)
            collector.check_numbering()
            collector.task.cancel()
            got["results"] = wait_all([alice, alice_new, bob, bob2, carol], 20)

    asyncio.run(asyncio.wait_for(drive(), 60))
    assert_all_ok(got["results"], kamailio)
    call_a, call_b = got["ids"]
    new = f"xfer-{call_a}"
    events = got["events"]
    (moved,) = [e for e in events if e["event"] == "transferred"]
    assert (moved["callid"], moved["leg"], moved["old"], moved["new"]) == (call_a, "caller", call_a, new), moved
    (replaced,) = [e for e in events if e["event"] == "replaced"]
    assert (replaced["callid"], replaced["leg"], replaced["old"], replaced["new"]) == (call_b, "caller", call_b, new)
    assert replaced["call"]["callid"] == new and replaced["call"]["legs"]["caller"]["callid"] == new
    assert [e["event"] for e in events if e["callid"] == new][-1] == "ended", service.log_tail()
    assert [e["event"] for e in events if e["callid"] == call_a][-1] == "ended"
