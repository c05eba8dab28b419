"""Hold, resume and end as commands on bridged calls over the in-memory network (no sockets)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from b2bua.call import commands
from b2bua.call.commands import (
    CallAttendedTransfer,
    CallBlindTransfer,
    CallEnd,
    CallHold,
    CallStart,
    CallUnHold,
    Command,
    Kind,
    arg,
)
from b2bua.call.control import BY_TYPE, COMMANDS, Control, row
from b2bua.call.events import FlowEnded, FlowError, FlowEvent, FlowReport
from b2bua.call.flows.base import Flow, Sink
from b2bua.errors import CallBusyError, CallNotFoundError, CallStateError
from b2bua.sip import sdp
from b2bua.sip.session import Session
from b2bua.sip.ua_events import DialogRequest

from .call_builders import SDP_A, SDP_B, answer_reinvites, answered_call, dial, names, reports, rig
from .sipnet import Network, Node


def test_hold_both_then_resume_both() -> None:
    net, alice, bob, control, a, b = answered_call()
    out, sink = reports()
    control.start(CallHold(a.call_id, None), net.now, sink)  # type: ignore[arg-type]
    for _ in range(3):
        net.settle(0.5)
        answer_reinvites(net, alice, a)
        answer_reinvites(net, bob, b)
    net.settle()
    assert names(out) == ["CALL_HOLD", "CALL_HOLD", "FlowEnded"]
    assert [r.leg for r in out if isinstance(r, FlowEvent)] == ["caller", "callee"]
    out2, sink2 = reports()
    control.start(CallUnHold(a.call_id, None), net.now, sink2)  # type: ignore[arg-type]
    offers = []
    for _ in range(3):
        net.settle(0.5)
        offers += answer_reinvites(net, alice, a)
        offers += answer_reinvites(net, bob, b)
    net.settle()
    assert names(out2) == ["CALL_UNHOLD", "CALL_UNHOLD", "FlowEnded"]
    assert all(sdp.directions(o) == ["sendrecv"] for o in offers)


def test_hold_offer_is_the_other_partys_sdp_sendonly_with_the_version_bumped() -> None:
    net, alice, bob, control, a, b = answered_call()
    out, sink = reports()
    control.start(CallHold(a.call_id, "callee"), net.now, sink)  # type: ignore[arg-type]
    net.settle(0.5)
    (offer,) = answer_reinvites(net, bob, b)
    net.settle()
    assert sdp.directions(offer) == ["sendonly"]
    assert sdp.parse(offer).origin.username == "alice" and sdp.parse(offer).version == 2
    stripped = [line for line in offer.split(b"\r\n") if not line.startswith((b"o=", b"a=sendonly"))]
    assert stripped == [line for line in SDP_A.split(b"\r\n") if not line.startswith(b"o=")]
    assert names(out) == ["CALL_HOLD", "FlowEnded"]


def test_holding_a_held_leg_reports_again_without_a_reinvite() -> None:
    net, alice, bob, control, a, b = answered_call()
    out, sink = reports()
    control.start(CallHold(a.call_id, "callee"), net.now, sink)  # type: ignore[arg-type]
    net.settle(0.5)
    answer_reinvites(net, bob, b)
    net.settle()
    out2, sink2 = reports()
    control.start(CallHold(a.call_id, "callee"), net.now, sink2)  # type: ignore[arg-type]
    net.settle()
    assert names(out2) == ["CALL_HOLD", "FlowEnded"]
    assert not [e for e in bob.events if isinstance(e, DialogRequest)]


def test_wrong_hold_answer_is_an_error() -> None:
    net, alice, bob, control, a, b = answered_call()
    out, sink = reports()
    control.start(CallHold(a.call_id, "callee"), net.now, sink)  # type: ignore[arg-type]
    net.settle(0.5)
    answer_reinvites(net, bob, b, direction="sendrecv")
    net.settle()
    assert names(out) == ["FlowError", "FlowEnded"]
    error = out[0]
    assert isinstance(error, FlowError) and error.code == 488


def test_refused_reinvite_is_an_error_with_the_sip_status() -> None:
    net, alice, bob, control, a, b = answered_call()
    out, sink = reports()
    control.start(CallHold(a.call_id, "callee"), net.now, sink)  # type: ignore[arg-type]
    net.settle(0.5)
    event = next(e for e in bob.events if isinstance(e, DialogRequest))
    b.reply(event.transaction, 488, net.now)
    net.settle()
    assert names(out) == ["FlowError", "FlowEnded"]
    assert isinstance(out[0], FlowError) and out[0].code == 488


def test_a_leg_ending_under_a_pending_reinvite_fails_the_hold_with_487() -> None:
    """The flow hears of its re-INVITE once, by its handle, with no response, when the leg is gone."""
    net, alice, bob, control, a, b = answered_call()
    out, sink = reports()
    control.start(CallHold(a.call_id, "callee"), net.now, sink)  # type: ignore[arg-type]
    net.settle(0.5)
    assert any(isinstance(e, DialogRequest) and e.request.method == "INVITE" for e in bob.events)
    b.end(net.now)  # bob hangs up instead of answering the re-INVITE
    net.settle()
    assert names(out) == ["FlowError", "FlowEnded"]
    assert isinstance(out[0], FlowError) and out[0].code == 487


def test_unanswered_reinvite_times_out() -> None:
    net, alice, bob, control, a, b = answered_call()
    out, sink = reports()
    control.start(CallHold(a.call_id, "callee"), net.now, sink)  # type: ignore[arg-type]
    net.settle(40)
    assert names(out)[-2:] == ["FlowError", "FlowEnded"]


def test_end_sends_bye_to_both_and_reports_ended_once_the_legs_are_over() -> None:
    net, alice, bob, control, a, b = answered_call()
    out, sink = reports()
    control.start(CallEnd(b.call_id), net.now, sink)  # type: ignore[arg-type]
    assert names(out) == []
    net.settle()
    assert names(out) == ["FlowEnded"]
    assert a.ended and b.ended and len(control.b2bua.table) == 0


def test_end_of_a_ringing_call_cancels_the_callee() -> None:
    net, alice, bob, service, app = rig()
    a, b, _ = dial(net, alice, bob)
    b.respond(180, net.now)
    net.settle()
    out, sink = reports()
    Control(app).start(CallEnd(a.call_id), net.now, sink)  # type: ignore[arg-type]
    net.settle()
    assert names(out) == ["FlowEnded"]
    assert a.ended and b.ended


def test_refusals() -> None:
    net, alice, bob, service, app = rig()
    control = Control(app)
    out, sink = reports()
    with pytest.raises(CallNotFoundError):
        control.start(CallHold("nope", None), net.now, sink)  # type: ignore[arg-type]
    a, b, _ = dial(net, alice, bob)
    with pytest.raises(CallStateError):
        control.start(CallHold(a.call_id, None), net.now, sink)  # type: ignore[arg-type]
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    control.start(CallHold(a.call_id, "callee"), net.now, sink)  # type: ignore[arg-type]
    with pytest.raises(CallBusyError):
        control.start(CallUnHold(a.call_id, None), net.now, sink)  # type: ignore[arg-type]
    assert out == []
    assert isinstance(FlowEnded(), FlowEnded)


# -- the command table ----------------------------------------------------------------------------------------


def test_one_row_per_command_and_its_handler() -> None:
    assert [row.name for row in COMMANDS] == ["CallStart", "CallBlindTransfer", "CallAttendedTransfer", "CallHold",
                                              "CallUnHold", "CallEnd", "CallList", "CallGet", "Subscribe",
                                              "Unsubscribe"]
    assert [row.aliases for row in COMMANDS] == [(), (), (), (), ("CallUnhold",), (), (), (), (), ()]
    defined = {value for value in vars(commands).values()
               if isinstance(value, type) and issubclass(value, Command) and value not in (Command, commands.Query)}
    assert set(BY_TYPE) == defined == {row.command for row in COMMANDS}


def test_start_refuses_what_is_not_a_command() -> None:
    net, alice, bob, control, a, b = answered_call()
    out, sink = reports()
    with pytest.raises(TypeError, match="Command is not a command"):
        control.start(Command(), net.now, sink)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="CallEnd given to the handler of CallHold"):
        BY_TYPE[CallHold].run(control, CallEnd(a.call_id), net.now, sink, "")  # type: ignore[arg-type]
    assert out == []


def test_a_new_command_is_a_row_and_its_handler() -> None:
    @dataclass(frozen=True, slots=True)
    class CallPark(Command):
        callid: str = arg(Kind.TEXT)

    def park(control: Control, command: CallPark, now: float, sink: Sink, cmd_id: str) -> Flow:
        return control.end(CallEnd(command.callid), now, sink, cmd_id)

    net, alice, bob, control, a, b = answered_call()
    parked = row(CallPark, park)
    out: list[FlowReport] = []
    parked.run(control, CallPark(a.call_id), net.now, out.append, "p1")
    net.settle()
    assert (parked.name, names(out)) == ("CallPark", ["FlowEnded"])


# -- what each command refuses --------------------------------------------------------------------------------


def late_offer_answered_call() -> tuple[Network, Node, Node, Control, Session, Session]:
    """A call the callee answered with its offer, the caller's ACK (with the answer) not yet sent: answered,
    but neither leg is confirmed at the service."""
    net, alice, bob, service, app = rig()
    a, b, _ = dial(net, alice, bob, body=b"")
    b.respond(200, net.now, body=SDP_B)
    net.run(until=net.now + 0.1)
    return net, alice, bob, Control(app), a, b


def test_hold_refuses_a_call_whose_legs_are_not_confirmed() -> None:
    net, alice, bob, control, a, b = late_offer_answered_call()
    out, sink = reports()
    with pytest.raises(CallStateError, match="not fully set up"):
        control.start(CallHold(a.call_id, None), net.now, sink)  # type: ignore[arg-type]
    assert out == []


def test_callstart_refuses_a_caller_it_cannot_call() -> None:
    net, alice, bob, service, app = rig()
    out, sink = reports()
    with pytest.raises(CallStateError, match="cannot call"):
        Control(app).start(CallStart("not a uri", "sip:bob@127.0.0.3"), net.now, sink)  # type: ignore[arg-type]
    assert out == [] and len(app.table) == 0


def test_blind_transfer_refusals() -> None:
    net, alice, bob, service, app = rig()
    control = Control(app)
    out, sink = reports()
    a, b, _ = dial(net, alice, bob)
    with pytest.raises(CallStateError, match="not answered"):
        control.start(CallBlindTransfer(a.call_id, "callee", "sip:carol@127.0.0.4"), net.now, sink)  # type: ignore[arg-type]
    net, alice, bob, control, a, b = late_offer_answered_call()
    with pytest.raises(CallStateError, match="not connected"):
        control.start(CallBlindTransfer(a.call_id, "caller", "sip:carol@127.0.0.4"), net.now, sink)  # type: ignore[arg-type]
    net, alice, bob, control, a, b = answered_call()
    b.request("INVITE", net.now, body=SDP_B.replace(b"20 1", b"20 2"))
    net.settle()  # bob's re-INVITE reaches alice, who does not answer yet
    with pytest.raises(CallBusyError, match="INVITE transaction pending"):
        control.start(CallBlindTransfer(a.call_id, "callee", "sip:carol@127.0.0.4"), net.now, sink)  # type: ignore[arg-type]
    assert out == []


def test_attended_transfer_refusals() -> None:
    net, alice, bob, service, app = rig()
    control = Control(app)
    out, sink = reports()
    a, b, _ = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    with pytest.raises(CallStateError, match="same call"):
        control.start(CallAttendedTransfer(a.call_id, "caller", a.call_id, "callee", None), net.now, sink)  # type: ignore[arg-type]
    a2, b2, _ = dial(net, alice, bob)  # a second call, ringing
    with pytest.raises(CallStateError, match="not answered"):
        control.start(CallAttendedTransfer(a.call_id, "caller", a2.call_id, "callee", None), net.now, sink)  # type: ignore[arg-type]
    assert out == []


def test_attended_transfer_refuses_legs_not_connected() -> None:
    net, alice, bob, service, app = rig()
    control = Control(app)
    out, sink = reports()
    a, b, _ = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    a2, b2, _ = dial(net, alice, bob, body=b"")  # a second call, answered with a late offer, not yet ACKed
    b2.respond(200, net.now, body=SDP_B)
    net.run(until=net.now + 0.1)
    with pytest.raises(CallStateError, match="both legs must be connected"):
        control.start(CallAttendedTransfer(a.call_id, "caller", a2.call_id, "caller", None), net.now, sink)  # type: ignore[arg-type]
    assert out == []
