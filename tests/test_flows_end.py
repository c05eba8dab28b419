"""Tests for b2bua.call.flows.end: CallEnd ends every leg (BYE, or CANCEL and 487 while ringing) and reports
Ended once the last leg is over, not before."""

from __future__ import annotations

from b2bua.call.commands import CallEnd
from b2bua.call.control import Control
from b2bua.sip.message import Response
from b2bua.sip.ua_events import CallEnded, CallFailed

from .call_builders import answered_call, dial, names, reports, rig, take


def test_ending_an_answered_call_byes_both_parties_then_reports_ended() -> None:
    net, alice, bob, control, a, b = answered_call()
    out, sink = reports()
    control.start(CallEnd(a.call_id), net.now, sink)
    assert out == []  # the BYEs are out, not yet answered
    net.settle()
    assert names(out) == ["FlowEnded"]
    assert isinstance(take(alice, CallEnded), CallEnded) and isinstance(take(bob, CallEnded), CallEnded)
    assert len(control.b2bua.table) == 0


def test_a_party_that_never_answers_the_bye_delays_ended_until_the_bye_times_out() -> None:
    net, alice, bob, control, a, b = answered_call()
    net.drop = lambda src, dst, msg: dst is bob and not isinstance(msg, Response)  # bob hears nothing more
    out, sink = reports()
    control.start(CallEnd(a.call_id), net.now, sink)
    net.settle()
    assert out == []
    net.run(until=net.now + 40.0)  # Timer F
    assert names(out) == ["FlowEnded"] and len(control.b2bua.table) == 0


def test_ending_a_ringing_call_answers_the_caller_487_and_cancels_the_callee() -> None:
    net, alice, bob, service, app = rig()
    a, b, _ = dial(net, alice, bob)
    b.respond(180, net.now)
    net.settle()
    out, sink = reports()
    Control(app).start(CallEnd(a.call_id), net.now, sink)
    net.settle()
    failed = take(alice, CallFailed)
    assert isinstance(failed, CallFailed) and failed.status == 487
    assert b.ended and names(out) == ["FlowEnded"] and len(app.table) == 0
