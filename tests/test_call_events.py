"""Tests for b2bua.call.events: what a command reports is frozen, slotted data, matched exhaustively."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from b2bua.call import events
from b2bua.call.events import TIMEOUT, WRONG_ANSWER, FlowEnded, FlowError, FlowEvent, FlowReport


@pytest.mark.parametrize("kind", typing.get_args(FlowReport))
def test_reports_are_frozen_slotted_dataclasses(kind: type) -> None:
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
    assert set(typing.get_args(events.FlowReport)) == {FlowEvent, FlowError, FlowEnded}
