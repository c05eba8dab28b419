"""Tests for b2bua.call.flows.start: CallStart (click-to-dial, RFC 5359 section 2.18 done with REFER) when
the caller does not answer in time, or hangs up before the transfer completes."""

from __future__ import annotations

from b2bua.call.commands import CallStart
from b2bua.call.control import Control
from b2bua.call.events import FlowError
from b2bua.sip.ua_events import CallFailed, DialogRequest, IncomingCall

from .call_builders import answer_incoming, names, reports, rig, take

CALLER = "sip:alice@127.0.0.2:5060"
CALLEE = "sip:bob@127.0.0.3:5060"


def test_a_caller_who_does_not_answer_in_time_is_cancelled_and_the_command_fails() -> None:
    net, alice, bob, service, app = rig(answer_timeout=5.0)
    out, sink = reports()
    Control(app).start(CallStart(CALLER, CALLEE), net.now, sink)
    net.settle(1.0)
    incoming = take(alice, IncomingCall)
    assert isinstance(incoming, IncomingCall)
    incoming.session.respond(180, net.now)
    net.run(until=net.now + 10.0)
    assert names(out) == ["FlowError", "FlowEnded"]
    assert isinstance(out[0], FlowError) and "did not answer in time" in out[0].message
    assert incoming.session.ended and len(app.table) == 0
    assert not any(isinstance(e, IncomingCall) for e in bob.events)


def test_a_caller_hanging_up_before_the_transfer_completes_fails_the_command_487() -> None:
    net, alice, bob, service, app = rig()
    out, sink = reports()
    Control(app).start(CallStart(CALLER, CALLEE), net.now, sink)
    net.settle(1.0)
    a = answer_incoming(net, alice)
    net.settle()
    refer = take(alice, DialogRequest)
    assert isinstance(refer, DialogRequest) and refer.request.method == "REFER"
    a.reply(refer.transaction, 202, net.now)
    net.settle()
    a.end(net.now)  # alice hangs up instead of calling bob
    net.settle()
    assert names(out)[:1] == ["CALL_ANSWER"] and names(out)[-2:] == ["FlowError", "FlowEnded"]
    error = out[-2]
    assert isinstance(error, FlowError) and error.code == 487 and "ended before the transfer" in error.message
    assert len(app.table) == 0


def test_a_caller_who_refuses_fails_the_command_with_the_status() -> None:
    net, alice, bob, service, app = rig()
    out, sink = reports()
    Control(app).start(CallStart(CALLER, CALLEE), net.now, sink)
    net.settle(1.0)
    incoming = take(alice, IncomingCall)
    assert isinstance(incoming, IncomingCall)
    incoming.session.respond(603, net.now)
    net.settle()
    assert names(out) == ["FlowError", "FlowEnded"]
    assert isinstance(out[0], FlowError) and out[0].code == 603
    assert not any(isinstance(e, CallFailed) for e in bob.events) and len(app.table) == 0
