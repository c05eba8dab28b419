"""Tests for b2bua.sip.ua_events: the application's events are frozen, slotted data, one per session step."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from b2bua.sip import ua_events
from b2bua.sip.address import Destination
from b2bua.sip.message import Response
from b2bua.sip.session import Role, Session
from b2bua.sip.session_host import Outgoing
from b2bua.sip.timers import TimerSettings
from b2bua.sip.transaction_server import NonInviteServerTransaction
from b2bua.sip.ua import UserAgent
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

from .sipnet import CountingIds

SOURCE = Destination("udp", "127.0.0.2", 5062)


def every_event() -> list[UaEvent]:
    ua = UserAgent(CountingIds("t"))
    invite, _ = ua.new_request("INVITE", "sip:bob@127.0.0.3", from_addr="<sip:a@b>", to_addr="<sip:bob@c>")
    info, _ = ua.new_request("INFO", "sip:bob@127.0.0.3", from_addr="<sip:a@b>", to_addr="<sip:bob@c>")
    session = Session(ua, Role.UAS, invite, "tag")
    ringing, ok, busy = Response(180), Response(200), Response(486)
    tx = NonInviteServerTransaction(info, SOURCE, TimerSettings(), 0.0)
    return [
        IncomingCall(session, invite, SOURCE),
        CallProgress(session, ringing),
        CallAnswered(session, ok),
        CallFailed(session, 486, "Busy Here", busy),
        CallAcked(session, invite),
        CallCancelled(session, invite),
        DialogRequest(session, info, tx),
        DialogResponse(session, Outgoing(info), ok),
        DialogRequestFailed(session, Outgoing(info), 408, "no response"),
        CallEnded(session, "bye", by_remote=True),
    ]


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
