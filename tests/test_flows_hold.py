"""Tests for b2bua.call.flows.hold: CallHold and CallUnHold as re-INVITEs (RFC 3264 section 8.4), and how
the flow fails when a leg cannot be re-INVITEd or answers what it cannot read."""

from __future__ import annotations

from b2bua.call.call import CallState
from b2bua.call.commands import CallHold
from b2bua.call.events import FlowError
from b2bua.call.flows.hold import HoldFlow
from b2bua.sip.ua_events import DialogRequest

from .call_builders import SDP_B, answered_call, names, reports, take


def test_a_leg_with_an_invite_pending_cannot_be_held_491() -> None:
    """RFC 3261 section 14.1: no re-INVITE while another INVITE transaction is in progress in the dialog."""
    net, alice, bob, control, a, b = answered_call()
    b.request("INVITE", net.now, body=SDP_B.replace(b"20 1", b"20 2"))
    net.settle()  # bob's re-INVITE waits for alice's answer
    out, sink = reports()
    control.start(CallHold(a.call_id, "callee"), net.now, sink)  # type: ignore[arg-type]
    assert names(out) == ["FlowError", "FlowEnded"]
    assert isinstance(out[0], FlowError) and out[0].code == 491 and "re-INVITE the callee" in out[0].message


def test_an_unreadable_answer_to_a_hold_is_an_error() -> None:
    net, alice, bob, control, a, b = answered_call()
    out, sink = reports()
    control.start(CallHold(a.call_id, "callee"), net.now, sink)  # type: ignore[arg-type]
    net.settle(0.5)
    reinvite = take(bob, DialogRequest)
    assert isinstance(reinvite, DialogRequest) and reinvite.request.method == "INVITE"
    b.reply(reinvite.transaction, 200, net.now, body=b"this is not SDP")
    net.settle()
    assert names(out) == ["FlowError", "FlowEnded"]
    assert isinstance(out[0], FlowError) and "unreadable SDP answer" in out[0].message


def test_a_hold_with_no_sdp_of_the_other_party_fails_without_a_reinvite() -> None:
    net, alice, bob, control, a, b = answered_call()
    call = control.find(a.call_id)
    call.caller.received_sdp = None  # as if the caller had never sent SDP
    out, sink = reports()
    flow = HoldFlow(call, sink, [call.legs["callee"]], hold=True)
    flow.start(net.now)
    net.settle(0.5)
    assert names(out) == ["FlowError", "FlowEnded"]
    assert isinstance(out[0], FlowError) and "no SDP of the other party" in out[0].message
    assert not any(isinstance(e, DialogRequest) for e in bob.events) and call.state is CallState.ANSWERED


def test_a_hold_when_the_other_partys_sdp_cannot_be_edited_fails() -> None:
    net, alice, bob, control, a, b = answered_call()
    call = control.find(a.call_id)
    call.caller.received_sdp = b"v=0\r\nthis is not SDP\r\n"
    out, sink = reports()
    HoldFlow(call, sink, [call.legs["callee"]], hold=True).start(net.now)
    assert names(out) == ["FlowError", "FlowEnded"]
    assert isinstance(out[0], FlowError) and "cannot be edited" in out[0].message
