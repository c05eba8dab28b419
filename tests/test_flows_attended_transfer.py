"""Tests for b2bua.call.flows.attended_transfer: the Refer-To with Replaces (RFC 3891, escaped as a URI
header, RFC 3261 section 19.1.1), both calls held busy while the transfer runs, and a refused REFER."""

from __future__ import annotations

import pytest

from b2bua.call.call import Call
from b2bua.call.commands import CallAttendedTransfer, CallHold
from b2bua.call.control import Control
from b2bua.call.events import FlowError
from b2bua.call.flows.attended_transfer import replaces_target
from b2bua.errors import CallBusyError
from b2bua.sip.session import Session
from b2bua.sip.ua_events import DialogRequest

from .call_builders import SDP_A, SDP_B, answer_incoming, dial, names, reports, take, three_phones
from .sipnet import Network, Node


def two_calls() -> tuple[Network, Node, Node, Node, Control, Session, Session, Session]:
    """Call A: alice -> bob; call B: bob -> carol (the consultation call), both answered."""
    net, alice, bob, carol, control = three_phones()
    a, b_in_a, _ = dial(net, alice, bob)
    b_in_a.respond(200, net.now, body=SDP_B)
    net.settle()
    b_out = bob.ua.invite("sip:carol@127.0.0.4:5060", net.now, from_addr="<sip:bob@127.0.0.3>",
                          to_addr="<sip:carol@127.0.0.4>", body=SDP_B)
    net.settle()
    carol_session = answer_incoming(net, carol, SDP_A.replace(b"alice", b"carol"))
    net.settle()
    return net, alice, bob, carol, control, a, b_out, carol_session


def test_the_refer_to_names_the_target_dialog_as_the_target_sees_it() -> None:
    net, alice, bob, carol, control, a, b_out, carol_session = two_calls()
    call_b = control.find(b_out.call_id)
    leg = call_b.legs["callee"]
    assert carol_session.dialog is not None
    target = replaces_target("sip:carol@127.0.0.4", leg)
    assert target == (f"sip:carol@127.0.0.4?Replaces={carol_session.call_id}%3Bto-tag%3D{carol_session.local_tag}"
                      f"%3Bfrom-tag%3D{carol_session.dialog.id.remote_tag}")
    assert replaces_target("sip:carol@127.0.0.4?X=1", leg).startswith("sip:carol@127.0.0.4?X=1&Replaces=")


def test_both_calls_are_busy_while_the_transfer_runs_and_freed_when_it_fails() -> None:
    net, alice, bob, carol, control, a, b_out, carol_session = two_calls()
    out, sink = reports()
    control.start(CallAttendedTransfer(a.call_id, "caller", b_out.call_id, "callee", None), net.now, sink)  # type: ignore[arg-type]
    held, _ = reports()
    with pytest.raises(CallBusyError):
        control.start(CallHold(b_out.call_id, None), net.now, held)  # type: ignore[arg-type]
    net.settle()
    refer = take(alice, DialogRequest)
    assert isinstance(refer, DialogRequest) and refer.request.method == "REFER"
    a.reply(refer.transaction, 603, net.now)
    net.settle()
    assert names(out) == ["FlowError", "FlowEnded"]
    assert isinstance(out[0], FlowError) and out[0].code == 603
    assert a.confirmed and b_out.confirmed and carol_session.confirmed
    call_b = control.find(b_out.call_id)
    assert isinstance(call_b, Call) and call_b.busy is None and control.find(a.call_id).busy is None


def test_a_transferee_with_an_invite_pending_is_not_referred_491() -> None:
    """RFC 3515 section 2.4.1 with RFC 3261 section 14.1: no REFER into a dialog busy with an INVITE."""
    net, alice, bob, carol, control, a, b_out, carol_session = two_calls()
    a.request("INVITE", net.now, body=SDP_A.replace(b"10 1", b"10 2"))
    net.settle()  # alice's re-INVITE reaches bob, who does not answer yet
    out, sink = reports()
    control.start(CallAttendedTransfer(a.call_id, "caller", b_out.call_id, "callee", None), net.now, sink)  # type: ignore[arg-type]
    assert names(out) == ["FlowError", "FlowEnded"]
    assert isinstance(out[0], FlowError) and out[0].code == 491 and "busy with an INVITE" in out[0].message
    assert not any(isinstance(e, DialogRequest) and e.request.method == "REFER" for e in alice.events)
