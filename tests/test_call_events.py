"""Tests for b2bua.call.events: a leg's session events in the call layer's words, frozen and slotted."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from b2bua.call.events import (
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

from .test_ua_events import every_event


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
