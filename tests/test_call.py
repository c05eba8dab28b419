"""Tests for b2bua.call.call: the call's state table, and the relay of in-dialog requests between its legs
over the in-memory network (answers, challenges, timeouts, and a leg ending with a relay in flight)."""

from __future__ import annotations

import logging

import pytest

from b2bua.call.call import TRANSITIONS, Call, CallState, relayed_headers
from b2bua.errors import SipError
from b2bua.sip.message import Headers, Request, Response
from b2bua.sip.session import Session
from b2bua.sip.session_host import Outgoing
from b2bua.sip.ua_events import DialogRequest, DialogResponse

from .call_builders import SDP_A, SDP_B, dial, rig, take
from .sipnet import Network, Node


def answered() -> tuple[Network, Node, Node, Call, Session, Session]:
    net, alice, bob, service, app = rig()
    a, b, _ = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    call = app.table.find(a.call_id)
    assert call is not None and call.state is CallState.ANSWERED
    return net, alice, bob, call, a, b


def final_statuses(node: Node) -> list[int]:
    return [e.response.status for e in node.events
            if isinstance(e, DialogResponse) and e.response is not None and e.response.status >= 200]


def info_answers(node: Node) -> list[int]:
    """Statuses of the responses to INFO that ``node`` received."""
    return [m.status for m in node.inbox
            if isinstance(m, Response) and m.cseq is not None and m.cseq.method == "INFO"]


def test_every_state_can_end_and_none_goes_back() -> None:
    for state, targets in TRANSITIONS.items():
        assert state is CallState.ENDED or CallState.ENDED in targets
        assert state not in targets
    assert TRANSITIONS[CallState.ENDED] == frozenset()


def test_a_move_outside_the_table_raises_and_a_move_to_the_same_state_does_nothing() -> None:
    call = Call("c1")
    call.move(CallState.SETUP)
    assert call.state is CallState.SETUP
    call.move(CallState.ANSWERED)
    with pytest.raises(SipError, match="cannot move to early"):
        call.move(CallState.EARLY)
    assert call.state is CallState.ANSWERED
    assert repr(call) == "<Call c1 answered>"


def test_state_changes_are_logged_at_debug_with_the_call_id(caplog: pytest.LogCaptureFixture) -> None:
    call = Call("c2")
    with caplog.at_level(logging.DEBUG, logger="call_api.call"):
        call.move(CallState.EARLY)
    assert [r.getMessage() for r in caplog.records] == ["call c2 setup -> early"]


def test_ending_runs_the_listeners_once_and_cancels_the_timers() -> None:
    net, alice, bob, call, a, b = answered()
    ended: list[Call] = []
    call.ended_listeners.append(ended.append)
    a.end(net.now)
    net.settle()
    assert ended == [call] and call.ended and call.legs == {}
    call.end(net.now)  # ending an ended call again does nothing
    assert ended == [call] and call.state is CallState.ENDED


def test_relayed_headers_are_the_ones_the_other_party_needs() -> None:
    request = Request("NOTIFY", "sip:a@x", Headers.of(
        ("Via", "SIP/2.0/UDP x;branch=z9hG4bK1"), ("Event", "refer"), ("Subscription-State", "active"),
        ("X-Private", "1"), ("Content-Type", "message/sipfrag")))
    assert relayed_headers(request) == [("Event", "refer"), ("Subscription-State", "active")]


def test_a_challenge_to_a_relayed_request_reaches_the_other_party_as_403() -> None:
    """The 407 was for the B2BUA's own request: the party that asked must not answer it (RFC 3261 22.3)."""
    net, alice, bob, call, a, b = answered()
    a.request("INFO", net.now, body=b"Signal=1\r\n", content_type="application/dtmf-relay")
    net.settle()
    info = take(bob, DialogRequest)
    assert isinstance(info, DialogRequest)
    b.reply(info.transaction, 407, net.now)
    net.settle()
    assert final_statuses(alice) == [403]


def test_a_relayed_request_nobody_answers_gets_408() -> None:
    net, alice, bob, call, a, b = answered()
    a.request("INFO", net.now, body=b"Signal=1\r\n", content_type="application/dtmf-relay")
    net.settle()
    assert isinstance(take(bob, DialogRequest), DialogRequest)  # bob never answers it
    net.run(until=net.now + 40)  # Timer F (64*T1) ends the service's INFO
    assert 408 in [m.status for m in alice.inbox if isinstance(m, Response)]


def test_a_leg_ending_with_a_request_relayed_to_it_answers_the_source_481() -> None:
    net, alice, bob, call, a, b = answered()
    a.request("INFO", net.now, body=b"Signal=1\r\n", content_type="application/dtmf-relay")
    net.settle()
    assert isinstance(take(bob, DialogRequest), DialogRequest)
    b.end(net.now)  # bob hangs up instead of answering the INFO
    net.settle()
    assert 481 in info_answers(alice)
    assert call.ended


def test_a_leg_ending_with_its_own_request_in_flight_drops_the_relay() -> None:
    net, alice, bob, call, a, b = answered()
    a.request("INFO", net.now, body=b"Signal=1\r\n", content_type="application/dtmf-relay")
    net.settle()
    info = take(bob, DialogRequest)
    assert isinstance(info, DialogRequest)
    a.end(net.now)  # alice hangs up before bob answers her INFO
    net.settle()
    b.reply(info.transaction, 200, net.now)
    net.settle()
    assert call.ended
    assert info_answers(alice) == []


def test_crossing_reinvites_meet_at_the_b2bua_and_one_gets_491() -> None:
    """Glare across the B2BUA (RFC 3261 section 14.1): alice's and bob's re-INVITEs cross; the first is
    relayed, and the second meets a leg with an INVITE pending, so it is answered 491."""
    net, alice, bob, call, a, b = answered()
    a.request("INVITE", net.now, body=SDP_A.replace(b"10 1", b"10 2"))
    b.request("INVITE", net.now, body=SDP_B.replace(b"20 1", b"20 2"))
    net.run(until=net.now + 0.01)
    statuses = [m.status for m in alice.inbox + bob.inbox if isinstance(m, Response)]
    assert 491 in statuses


def test_a_response_to_a_request_the_call_did_not_send_is_not_its_own() -> None:
    net, alice, bob, call, a, b = answered()
    stranger = Outgoing(Request("INFO", "sip:bob@127.0.0.3", Headers.of(("CSeq", "9 INFO"))))
    ok = Response(200, "OK", Headers.of(("CSeq", "9 INFO")))
    assert call.on_response(call.legs["callee"], stranger, ok, net.now) is False
    assert call.state is CallState.ANSWERED


def test_a_request_crossing_the_other_partys_bye_is_answered_not_left_hanging() -> None:
    net, alice, bob, call, a, b = answered()
    b.end(net.now)
    a.request("INFO", net.now, body=b"Signal=3\r\n", content_type="application/dtmf-relay")
    net.settle()
    assert info_answers(alice) in ([480], [481])
    assert a.ended and b.ended and call.ended


def test_a_request_reaching_the_service_after_the_other_party_hung_up_gets_480() -> None:
    """bob's BYE is in and the service's BYE to alice is on its way when alice's INFO arrives: there is no one
    to relay it to (RFC 3261 section 21.4.18, Temporarily Unavailable)."""
    net, alice, bob, call, a, b = answered()
    b.end(net.now)
    net.run(until=net.now + 0.0015)  # the service has bob's BYE; its BYE to alice is in flight
    assert call.state is CallState.ENDING and call.legs["callee"].session.ended
    a.request("INFO", net.now, body=b"Signal=3\r\n", content_type="application/dtmf-relay")
    net.settle()
    assert info_answers(alice) == [480]
    assert a.ended and call.ended
