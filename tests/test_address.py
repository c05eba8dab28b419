"""Tests for b2bua.sip.address: where a message goes."""

from __future__ import annotations

import dataclasses

import pytest

from b2bua.sip.address import Destination


@pytest.mark.parametrize(("transport", "reliable"), [("udp", False), ("UDP", False), ("tcp", True), ("tls", True),
                                                     ("ws", True)])
def test_only_udp_is_unreliable(transport: str, reliable: bool) -> None:
    assert Destination(transport, "192.0.2.1", 5060).reliable is reliable


def test_destination_is_a_frozen_hashable_value() -> None:
    d = Destination("udp", "192.0.2.1", 5060)
    assert d == Destination("udp", "192.0.2.1", 5060) and len({d, Destination("udp", "192.0.2.1", 5060)}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.port = 5070  # type: ignore[misc]


def test_str() -> None:
    assert str(Destination("udp", "192.0.2.1", 5060)) == "udp:192.0.2.1:5060"
    assert str(Destination("tcp", "2001:db8::1", 5061)) == "tcp:[2001:db8::1]:5061"
    assert str(Destination("tcp", "[2001:db8::1]", 5061)) == "tcp:[2001:db8::1]:5061"
