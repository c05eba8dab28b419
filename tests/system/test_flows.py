"""CallHold, CallUnHold and CallEnd through the awaitable control API, on calls bridged between SIPp
phones through Kamailio; the service runs in this process, the phones and the proxy as processes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from b2bua.call.b2bua import B2bua
from b2bua.call.call import Call, CallState
from b2bua.call.commands import CallEnd, CallHold, CallUnHold
from b2bua.call.events import FlowEnded, FlowError, FlowEvent, FlowReport
from b2bua.config import load_config
from b2bua.io.control import AsyncControl
from b2bua.service import build_service
from harness.kamailio import Kamailio, PortMap
from harness.sipp import SippLauncher, assert_all_ok, wait_all

pytestmark = pytest.mark.system


def names(reports: list[FlowReport]) -> list[str]:
    return [r.data if isinstance(r, FlowEvent) else type(r).__name__ for r in reports]


async def with_service(ports: PortMap, body: Callable[[AsyncControl, B2bua], Awaitable[None]]) -> None:
    config = load_config(["--sip-listen", f"127.0.0.1:{ports.service}", "--outbound-proxy",
                          f"sip:127.0.0.1:{ports.proxy};lr"])
    built = build_service(config)
    b2bua = built.b2bua
    await built.runtime.start()
    try:
        await asyncio.wait_for(body(AsyncControl(built.runtime, built.control), b2bua), 30)
    finally:
        await built.runtime.stop()
    assert len(b2bua.table) == 0


async def a_call(b2bua: B2bua, state: CallState, timeout: float = 10.0) -> Call:
    for _ in range(int(timeout / 0.02)):
        for call in b2bua.table:
            if (call.state is state and all(leg.session.confirmed for leg in call.legs.values())) or \
                    (state is not CallState.ANSWERED and call.state is state):
                return call
        await asyncio.sleep(0.02)
    raise AssertionError(f"no call reached {state.value}")


def test_hold_then_resume_the_callee(kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap) -> None:
    bob = sipp("uas_hold.xml", phone="bob")
    alice = sipp("uac_call.xml", phone="alice", call="bob", pause_ms=3000)
    got: dict[str, list[FlowReport]] = {}

    async def body(control: AsyncControl, b2bua: B2bua) -> None:
        call = await a_call(b2bua, CallState.ANSWERED)
        got["hold"] = await control.run(CallHold(call.id, "callee"))
        got["unhold"] = await control.run(CallUnHold(call.callee.call_id if call.callee else "", "callee"))
        while b2bua.table.find(call.id) is not None:
            await asyncio.sleep(0.05)

    asyncio.run(with_service(rig_ports, body))
    assert names(got["hold"]) == ["CALL_HOLD", "FlowEnded"]
    assert names(got["unhold"]) == ["CALL_UNHOLD", "FlowEnded"]
    hold = got["hold"][0]
    assert isinstance(hold, FlowEvent) and hold.leg == "callee" and hold.status == "SIP/2.0 200 OK"
    assert_all_ok(wait_all([alice, bob], 20), kamailio)


def test_wrong_hold_answer_is_reported_then_end(kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap) -> None:
    bob = sipp("uas_hold_wrong.xml", phone="bob")
    alice = sipp("uac_call_wait_bye.xml", phone="alice", call="bob")
    got: dict[str, list[FlowReport]] = {}

    async def body(control: AsyncControl, b2bua: B2bua) -> None:
        call = await a_call(b2bua, CallState.ANSWERED)
        got["hold"] = await control.run(CallHold(call.id, "callee"))
        got["end"] = await control.run(CallEnd(call.id))

    asyncio.run(with_service(rig_ports, body))
    assert names(got["hold"]) == ["FlowError", "FlowEnded"]
    error = got["hold"][0]
    assert isinstance(error, FlowError) and error.code == 488 and "sendrecv" in error.message
    assert names(got["end"]) == ["FlowEnded"]
    assert_all_ok(wait_all([alice, bob], 20), kamailio)


def test_end_a_ringing_call(kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap) -> None:
    bob = sipp("uas_ring_no_answer.xml", phone="bob")
    alice = sipp("uac_ringing_ended.xml", phone="alice", call="bob")
    got: dict[str, list[FlowReport]] = {}

    async def body(control: AsyncControl, b2bua: B2bua) -> None:
        call = await a_call(b2bua, CallState.EARLY)
        got["end"] = await control.run(CallEnd(call.id))

    asyncio.run(with_service(rig_ports, body))
    assert names(got["end"]) == ["FlowEnded"]
    assert isinstance(got["end"][-1], FlowEnded)
    assert_all_ok(wait_all([alice, bob], 20), kamailio)
