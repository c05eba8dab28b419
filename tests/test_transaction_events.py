"""Tests for b2bua.sip.transaction_events: the outputs of the transaction machines."""

from __future__ import annotations

import dataclasses
from typing import assert_never

import pytest

from b2bua.sip.address import Destination
from b2bua.sip.transaction_events import (
    AckToTU,
    Action,
    ResponseToTU,
    Terminated,
    TimedOut,
    Transmit,
    TransportFailed,
)

from .transaction_builders import make_request, make_response

INVITE = make_request()
EVERY_ACTION: list[Action] = [
    Transmit(INVITE, Destination("udp", "192.0.2.20", 5060)),
    ResponseToTU(make_response(INVITE, 180)),
    AckToTU(make_request("ACK")),
    TimedOut("no ACK", "H"),
    TransportFailed("refused"),
    Terminated(),
]


def describe(action: Action) -> str:
    """A dispatcher the way the layer writes it: ``match`` with ``assert_never`` catching a new event."""
    match action:
        case Transmit(message=message, destination=destination):
            return f"send {message.start_line()} to {destination}"
        case ResponseToTU(response=response):
            return f"TU gets {response.status}"
        case AckToTU():
            return "TU gets ACK"
        case TimedOut(reason=reason, timer=timer):
            return f"timeout ({reason}, Timer {timer})"
        case TransportFailed(reason=reason):
            return f"transport failed: {reason}"
        case Terminated():
            return "terminated"
        case _:
            assert_never(action)


def test_every_action_dispatches() -> None:
    assert [describe(a) for a in EVERY_ACTION] == [
        "send INVITE sip:bob@example.com SIP/2.0 to udp:192.0.2.20:5060",
        "TU gets 180",
        "TU gets ACK",
        "timeout (no ACK, Timer H)",
        "transport failed: refused",
        "terminated",
    ]


@pytest.mark.parametrize("action", EVERY_ACTION, ids=lambda a: type(a).__name__)
def test_actions_are_frozen_and_slotted(action: Action) -> None:
    assert not hasattr(action, "__dict__")
    for field in dataclasses.fields(action):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(action, field.name, None)


def test_defaults_and_equality() -> None:
    assert TimedOut("no response") == TimedOut("no response", "")
    assert TransportFailed() == TransportFailed("")
    assert Terminated() == Terminated()
