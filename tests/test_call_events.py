"""Tests for b2bua.call.events: a leg's session events in the call layer's words, and what a command (flow)
reports; all frozen and slotted."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from b2bua.call.events import (
    TIMEOUT,
    WRONG_ANSWER,
    FlowEnded,
    FlowError,
    FlowEvent,
    FlowReport,
    LegAcked,
    LegAnswered,
    LegCancelled,
    LegEnded,
    LegEvent,
    LegFailed,
    LegRequest,
    LegResponse,
    LegRinging,
    leg_event,
)
from b2bua.sip.message import Headers, Response
from b2bua.sip.ua_events import CallAnswered, DialogRequestFailed, DialogResponse, IncomingCall

from .call_builders import every_event


def test_every_leg_event_of_the_session_is_translated() -> None:
    translated = [leg_event(e) for e in every_event() if not isinstance(e, IncomingCall)]
    assert [type(e) for e in translated] == [LegRinging, LegAnswered, LegFailed, LegAcked, LegCancelled, LegRequest,
                                            LegResponse, LegResponse, LegEnded]
    assert {type(e) for e in translated} == set(typing.get_args(LegEvent))


def test_the_sip_facts_cross() -> None:
    session = every_event()[0].session
    ok = Response(200, "OK", Headers.of(("Content-Type", "application/sdp")), b"v=0\r\n")
    events = every_event()
    answered = leg_event(CallAnswered(session, ok))
    assert answered == LegAnswered(200, "OK", b"v=0\r\n", "application/sdp")
    failed = leg_event(events[3])
    assert failed == LegFailed(486, "Busy Here")
    response = next(e for e in events if isinstance(e, DialogResponse))
    assert leg_event(response) == LegResponse(response.outgoing, response.response)
    timed_out = next(e for e in events if isinstance(e, DialogRequestFailed))
    assert leg_event(timed_out) == LegResponse(timed_out.outgoing, None)
    assert leg_event(events[-1]) == LegEnded("bye", by_remote=True)


def test_an_incoming_call_is_no_legs_event() -> None:
    with pytest.raises(TypeError):
        leg_event(every_event()[0])


@pytest.mark.parametrize("event", [leg_event(e) for e in every_event()[1:]], ids=lambda e: type(e).__name__)
def test_leg_events_are_frozen_and_slotted(event: LegEvent) -> None:
    assert dataclasses.is_dataclass(event) and not hasattr(event, "__dict__")
    field = dataclasses.fields(event)[0].name if dataclasses.fields(event) else "x"
    with pytest.raises((dataclasses.FrozenInstanceError, AttributeError, TypeError)):
        setattr(event, field, None)


# -- what a command reports ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", typing.get_args(FlowReport))
def test_flow_reports_are_frozen_slotted_dataclasses(kind: type) -> None:
    assert dataclasses.is_dataclass(kind) and "__slots__" in vars(kind)
    assert kind.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_a_report_cannot_change_once_made() -> None:
    event = FlowEvent("CALL_HOLD", "c1", "callee", "SIP/2.0 200 OK")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.data = "CALL_UNHOLD"  # type: ignore[misc]
    assert FlowEvent("CALL_START") == FlowEvent("CALL_START", None, None, None)
    assert FlowEnded() == FlowEnded() and FlowError(488, "x") != FlowError(408, "x")


def describe(report: FlowReport) -> str:
    match report:
        case FlowEvent(data, callid, leg, _):
            return f"{data} {callid} {leg}"
        case FlowError(code, message):
            return f"error {code} {message}"
        case FlowEnded():
            return "ended"
        case _:
            typing.assert_never(report)


def test_reports_match_by_position() -> None:
    assert describe(FlowEvent("CALL_ANSWER", "c1", "caller")) == "CALL_ANSWER c1 caller"
    assert describe(FlowError(TIMEOUT, "no answer")) == "error 408 no answer"
    assert describe(FlowEnded()) == "ended"


def test_service_codes_are_the_sip_statuses_they_stand_for() -> None:
    assert (TIMEOUT, WRONG_ANSWER) == (408, 488)  # Request Timeout, Not Acceptable Here
    assert set(typing.get_args(FlowReport)) == {FlowEvent, FlowError, FlowEnded}
