"""Tests for b2bua.sip.events: the layer's events are frozen, slotted data the TU dispatches on with match."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from b2bua.sip import events
from b2bua.sip.address import Destination
from b2bua.sip.events import (
    AckReceived,
    CancelReceived,
    LayerEvent,
    RequestReceived,
    ResponseReceived,
    StrayResponse,
    TransactionEnded,
    TransactionTimedOut,
)
from b2bua.sip.message import Headers, Request, Response
from b2bua.sip.timers import TimerSettings
from b2bua.sip.transaction_client import NonInviteClientTransaction
from b2bua.sip.transaction_server import InviteServerTransaction, NonInviteServerTransaction

SOURCE = Destination("udp", "127.0.0.2", 5062)


def message(method: str) -> Request:
    return Request(method, "sip:bob@127.0.0.1", Headers.of(
        ("Via", "SIP/2.0/UDP 127.0.0.2:5062;branch=z9hG4bK-1"), ("From", "<sip:a@b>;tag=1"), ("To", "<sip:b@c>"),
        ("Call-ID", "c1"), ("CSeq", f"1 {method}")))


def every_event() -> list[LayerEvent]:
    invite, cancel, options = message("INVITE"), message("CANCEL"), message("OPTIONS")
    server = InviteServerTransaction(invite, SOURCE, TimerSettings(), 0.0)
    client = NonInviteClientTransaction(options, SOURCE, TimerSettings(), 0.0)
    ok = Response(200, "OK", Headers.of(("CSeq", "1 OPTIONS")))
    return [
        RequestReceived(invite, server, SOURCE),
        AckReceived(message("ACK"), SOURCE),
        CancelReceived(cancel, server),
        ResponseReceived(ok, client),
        StrayResponse(ok),
        TransactionTimedOut(client, "no response"),
        TransactionEnded(NonInviteServerTransaction(cancel, SOURCE, TimerSettings(), 0.0)),
    ]


def describe(event: LayerEvent) -> str:
    """A dispatcher the way the UA core writes one: exhaustive, checked by mypy through assert_never."""
    match event:
        case RequestReceived(request, _, _):
            return f"request {request.method}"
        case AckReceived():
            return "ack"
        case CancelReceived(_, invite):
            return f"cancel of {invite.request.method}"
        case ResponseReceived(response, _):
            return f"response {response.status}"
        case StrayResponse():
            return "stray"
        case TransactionTimedOut(_, reason):
            return f"timeout: {reason}"
        case TransactionEnded():
            return "ended"
        case _:
            typing.assert_never(event)


def test_every_event_is_in_the_union_and_dispatches() -> None:
    members = set(typing.get_args(LayerEvent))
    found = every_event()
    assert {type(e) for e in found} == members
    assert [describe(e) for e in found] == ["request INVITE", "ack", "cancel of INVITE", "response 200", "stray",
                                            "timeout: no response", "ended"]


@pytest.mark.parametrize("event", every_event(), ids=lambda e: type(e).__name__)
def test_events_are_frozen_and_slotted(event: LayerEvent) -> None:
    assert dataclasses.is_dataclass(event) and not hasattr(event, "__dict__")
    field = dataclasses.fields(event)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(event, field, None)


def test_events_compare_by_value() -> None:
    first, second = every_event(), every_event()
    assert first[1] == second[1]  # the same ACK from the same source
    assert first[0] != second[0]  # a different transaction object


def test_module_names_every_event() -> None:
    for name in ("RequestReceived", "AckReceived", "CancelReceived", "ResponseReceived", "StrayResponse",
                 "TransactionTimedOut", "TransactionEnded"):
        assert isinstance(getattr(events, name), type)
