"""The REFER subscription: acceptance, NOTIFY matching, sipfrag progress, termination (RFC 3515)."""

from __future__ import annotations

import pytest

from b2bua.errors import SipError
from b2bua.sip.message import Headers, Request, Response
from b2bua.sip.refer import TRANSITIONS, ReferState, ReferSubscription


def refer(cseq: int = 7) -> Request:
    return Request("REFER", "sip:bob@x", Headers.of(("CSeq", f"{cseq} REFER"), ("Refer-To", "<sip:carol@y>")))


def notify(body: bytes, *, event: str = "refer;id=7", state: str = "active;expires=60") -> Request:
    h = Headers.of(("CSeq", "1 NOTIFY"), ("Event", event), ("Subscription-State", state),
                   ("Content-Type", "message/sipfrag"))
    return Request("NOTIFY", "sip:svc@z", h, body)


def test_accepted_then_progress_then_success() -> None:
    sub = ReferSubscription(refer())
    assert sub.on_response(Response(202)) and sub.state is ReferState.ACCEPTED
    out = sub.on_notify(notify(b"SIP/2.0 100 Trying\r\n"))
    assert out.answer == 200 and out.frag is not None and out.frag.provisional and not out.terminated
    out = sub.on_notify(notify(b"SIP/2.0 200 OK\n", state="terminated;reason=noresource"))
    assert out.frag is not None and out.frag.success and out.terminated and sub.terminated
    assert sub.on_notify(notify(b"SIP/2.0 200 OK\r\n")).answer == 481


def test_refused_refer() -> None:
    sub = ReferSubscription(refer())
    assert not sub.on_response(Response(100))
    assert not sub.on_response(Response(603)) and sub.terminated


def test_failure_sipfrag() -> None:
    sub = ReferSubscription(refer())
    out = sub.on_notify(notify(b"SIP/2.0 486 Busy Here\r\nContent-Length: 0\r\n", state="terminated"))
    assert out.frag is not None and out.frag.failure and out.frag.status == 486 and out.terminated
    assert sub.state is ReferState.TERMINATED


@pytest.mark.parametrize(("event", "only_one", "expected"), [
    ("refer;id=7", True, True), ("refer;id=8", True, False), ("refer", True, True), ("refer", False, False),
    ("presence", True, False), ("Refer;ID=7", True, True), (";;", True, False),
])
def test_matching(event: str, only_one: bool, expected: bool) -> None:
    assert ReferSubscription(refer()).matches(notify(b"", event=event), only_one) is expected
    assert not ReferSubscription(refer()).matches(Request("NOTIFY", "sip:x", Headers.of(("CSeq", "1 NOTIFY"))))


def test_garbage_body_and_state_are_tolerated() -> None:
    sub = ReferSubscription(refer())
    out = sub.on_notify(notify(b"hello", state="%%%"))
    assert out.answer == 200 and out.frag is None and not out.terminated
    with pytest.raises(ValueError):
        ReferSubscription(Request("INVITE", "sip:x", Headers.of(("CSeq", "1 INVITE"))))


def test_the_state_table_is_enforced() -> None:
    """Accepted once, terminated for good: a terminated subscription is never accepted again."""
    assert TRANSITIONS[ReferState.TERMINATED] == frozenset()
    sub = ReferSubscription(refer())
    assert not sub.on_response(Response(486)) and sub.terminated
    assert sub.on_response(Response(202)) and sub.terminated  # a late 2xx after the failure changes nothing
    with pytest.raises(SipError):
        sub._move(ReferState.ACCEPTED)
    assert sub.state is ReferState.TERMINATED
