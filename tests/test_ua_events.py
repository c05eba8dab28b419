"""Tests for b2bua.sip.ua_events: the application's events are frozen, slotted data, one per session step."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from b2bua.sip import ua_events
from b2bua.sip.ua_events import (
    CallAcked,
    CallAnswered,
    CallCancelled,
    CallEnded,
    CallFailed,
    CallProgress,
    DialogRequest,
    DialogRequestFailed,
    DialogResponse,
    IncomingCall,
    UaEvent,
)

from .call_builders import every_event


def name_of(event: UaEvent) -> str:
    match event:
        case IncomingCall() | CallProgress() | CallAnswered() | CallAcked() | CallCancelled():
            return "setup"
        case CallFailed(_, status, _, _):
            return f"failed {status}"
        case DialogRequest() | DialogResponse() | DialogRequestFailed():
            return "dialog"
        case CallEnded(_, reason, by_remote, request):
            return f"ended {reason} {by_remote} {request}"
        case _:
            typing.assert_never(event)


def test_every_event_is_in_the_union_and_dispatches() -> None:
    events = every_event()
    assert {type(e) for e in events} == set(typing.get_args(UaEvent))
    assert [name_of(e) for e in events] == ["setup"] * 3 + ["failed 486"] + ["setup"] * 2 + ["dialog"] * 3 + [
        "ended bye True None"]


@pytest.mark.parametrize("event", every_event(), ids=lambda e: type(e).__name__)
def test_events_are_frozen_and_slotted(event: UaEvent) -> None:
    assert dataclasses.is_dataclass(event) and not hasattr(event, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(event, "session", None)  # noqa: B010 - mypy rejects the plain assignment


def test_defaults() -> None:
    failed = CallFailed(every_event()[0].session, 408, "no response")
    assert failed.response is None
    ended = CallEnded(failed.session, "no ACK", by_remote=True)
    assert ended.request is None


def test_module_exports_the_union() -> None:
    assert ua_events.UaEvent is UaEvent
