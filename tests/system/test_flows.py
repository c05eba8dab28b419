"""CallHold, CallUnHold and CallEnd through the awaitable control API, on calls bridged between SIPp
phones through Kamailio; the service runs in this process, the phones and the proxy as processes."""

from __future__ import annotations

import asyncio

import pytest

from b2bua.call.b2bua import B2bua
from b2bua.call.call import Call, CallState
from b2bua.call.commands import CallEnd, CallHold, CallUnHold
from b2bua.call.events import FlowEnded, FlowError, FlowEvent, FlowReport
from b2bua.io.control import AsyncControl
from harness.kamailio import Kamailio
from harness.service import Serve
from harness.sipp import SippLauncher, assert_all_ok, wait_all

from .flow_reports import names

pytestmark = pytest.mark.system


async def a_call(b2bua: B2bua, state: CallState, timeout: float = 10.0) -> Call:
    for _ in range(int(timeout / 0.02)):
        for call in b2bua.table:
            if (call.state is state and all(leg.session.confirmed for leg in call.legs.values())) or \
                    (state is not CallState.ANSWERED and call.state is state):
                return call
        await asyncio.sleep(0.02)
    raise AssertionError(f"no call reached {state.value}")


def test_hold_then_resume_the_callee(serve: Serve, kamailio: Kamailio, sipp: SippLauncher) -> None:
    bob = sipp("uas_hold.xml", phone="bob")
    alice = sipp("uac_call.xml", phone="alice", call="bob", pause_ms=3000)
    got: dict[str, list[FlowReport]] = {}

    async def body(control: AsyncControl, b2bua: B2bua) -> None:
        call = await a_call(b2bua, CallState.ANSWERED)
        got["hold"] = await control.run(CallHold(call.id, "callee"))
        got["unhold"] = await control.run(CallUnHold(call.callee.call_id if call.callee else "", "callee"))
        while b2bua.table.find(call.id) is not None:
            await asyncio.sleep(0.05)

    assert len(serve(body, timeout=30).table) == 0
    assert names(got["hold"]) == ["CALL_HOLD", "FlowEnded"]
    assert names(got["unhold"]) == ["CALL_UNHOLD", "FlowEnded"]
    hold = got["hold"][0]
    assert isinstance(hold, FlowEvent) and hold.leg == "callee" and hold.status == "SIP/2.0 200 OK"
    assert_all_ok(wait_all([alice, bob], 20), kamailio)


def test_wrong_hold_answer_is_reported_then_end(serve: Serve, kamailio: Kamailio, sipp: SippLauncher) -> None:
    bob = sipp("uas_hold_wrong.xml", phone="bob")
    alice = sipp("uac_call_wait_bye.xml", phone="alice", call="bob")
    got: dict[str, list[FlowReport]] = {}

    async def body(control: AsyncControl, b2bua: B2bua) -> None:
        call = await a_call(b2bua, CallState.ANSWERED)
        got["hold"] = await control.run(CallHold(call.id, "callee"))
        got["end"] = await control.run(CallEnd(call.id))

    assert len(serve(body, timeout=30).table) == 0
    assert names(got["hold"]) == ["FlowError", "FlowEnded"]
    error = got["hold"][0]
    assert isinstance(error, FlowError) and error.code == 488 and "sendrecv" in error.message
    assert names(got["end"]) == ["FlowEnded"]
    assert_all_ok(wait_all([alice, bob], 20), kamailio)


def test_end_a_ringing_call(serve: Serve, kamailio: Kamailio, sipp: SippLauncher) -> None:
    bob = sipp("uas_ring_no_answer.xml", phone="bob")
    alice = sipp("uac_ringing_ended.xml", phone="alice", call="bob")
    got: dict[str, list[FlowReport]] = {}

    async def body(control: AsyncControl, b2bua: B2bua) -> None:
        call = await a_call(b2bua, CallState.EARLY)
        got["end"] = await control.run(CallEnd(call.id))

    assert len(serve(body, timeout=30).table) == 0
    assert names(got["end"]) == ["FlowEnded"]
    assert isinstance(got["end"][-1], FlowEnded)
    assert_all_ok(wait_all([alice, bob], 20), kamailio)
