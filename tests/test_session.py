"""Tests for b2bua.sip.session: the INVITE session state table, API misuse, end() in every state, and the
in-dialog paths (RFC 3261 sections 9, 12-15), over the in-memory network of tests/sipnet.py."""

from __future__ import annotations

import itertools
import json

import pytest

from b2bua.errors import RecordError, SessionError
from b2bua.sip.auth import Credentials
from b2bua.sip.events import RequestReceived
from b2bua.sip.message import Request, Response
from b2bua.sip.session import TRANSITIONS, Role, Session, SessionState
from b2bua.sip.session_host import Outgoing
from b2bua.sip.transaction_server import ServerTransaction
from b2bua.sip.ua import UaSettings
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

from .sipnet import Network, Node

SDP = b"v=0\r\no=a 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
BOB = "sip:bob@127.0.0.3:5060"


def kinds(node: Node) -> list[str]:
    return [type(e).__name__ for e in node.events]


def take(node: Node, kind: type[UaEvent]) -> UaEvent:
    for i, event in enumerate(node.events):
        if isinstance(event, kind):
            return node.events.pop(i)
    raise AssertionError(f"{node.name} has no {kind.__name__}: {kinds(node)}")


def count(node: Node, kind: type[UaEvent]) -> int:
    return sum(isinstance(e, kind) for e in node.events)


def pair(alice_settings: UaSettings | None = None) -> tuple[Network, Node, Node]:
    net = Network()
    return net, net.add("alice", "127.0.0.2", alice_settings), net.add("bob", "127.0.0.3")


def dial(net: Network, alice: Node, bob: Node) -> tuple[Session, Session]:
    """alice INVITEs bob; bob's session is returned unanswered."""
    a = alice.ua.invite(BOB, net.now, from_addr="<sip:alice@127.0.0.2>", to_addr="<sip:bob@127.0.0.3>", body=SDP)
    net.run()
    incoming = take(bob, IncomingCall)
    assert isinstance(incoming, IncomingCall)
    return a, incoming.session


def confirmed(net: Network, alice: Node, bob: Node) -> tuple[Session, Session]:
    a, b = dial(net, alice, bob)
    b.respond(180, net.now)
    net.run()
    b.respond(200, net.now, body=SDP)
    net.run()
    assert a.confirmed and b.confirmed
    alice.events.clear()
    bob.events.clear()
    return a, b


def answer_dialog_requests(net: Network, node: Node, session: Session, status: int = 200) -> None:
    for event in list(node.events):
        if isinstance(event, DialogRequest):
            node.events.remove(event)
            session.reply(event.transaction, status, net.now, body=SDP if event.request.method == "INVITE" else b"")


def finals(node: Node, request: Outgoing) -> list[int]:
    """The final statuses reported to ``node``'s application for ``request``."""
    return [e.response.status for e in node.events
            if isinstance(e, DialogResponse) and e.outgoing is request and e.response.status >= 200]


def step(net: Network) -> None:
    """Deliver what is in flight, short of any retransmission."""
    net.run(until=net.now + 0.1)


def sent_by(net: Network, sender: str, what: str | int) -> list[Request | Response]:
    return net.sent(what, sender=sender)


# -- the state table ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("origin", "target"), list(itertools.product(SessionState, SessionState)))
def test_transitions_table_is_enforced(origin: SessionState, target: SessionState) -> None:
    net, alice, _ = pair()
    request, _ = alice.ua.new_request("INVITE", BOB, from_addr="<sip:alice@127.0.0.2>", to_addr="<sip:bob@x>")
    session = Session(alice.ua, Role.UAC, request, "t1")
    session.state = origin
    if target is origin or target in TRANSITIONS[origin]:
        session._move(target)
        assert session.state is target
    else:
        with pytest.raises(SessionError):
            session._move(target)
        assert session.state is origin


def test_the_table_ends_everywhere_and_ended_is_final() -> None:
    assert TRANSITIONS[SessionState.ENDED] == frozenset()
    for state in SessionState:
        assert state is SessionState.ENDED or SessionState.ENDED in TRANSITIONS[state]


def test_initial_states() -> None:
    net, alice, bob = pair()
    a, b = dial(net, alice, bob)
    assert a.role is Role.UAC and a.state is SessionState.CALLING  # a 100 moves nothing
    assert b.role is Role.UAS and b.state is SessionState.RINGING
    assert "uas" in repr(b) and b.call_id in repr(b)


# -- misuse raises ---------------------------------------------------------------------------------------


def test_respond_on_a_uac_session_raises() -> None:
    net, alice, bob = pair()
    a, _ = dial(net, alice, bob)
    with pytest.raises(SessionError):
        a.respond(200, net.now)


def test_respond_after_the_final_response_raises() -> None:
    net, alice, bob = pair()
    _, b = dial(net, alice, bob)
    b.respond(486, net.now)
    with pytest.raises(SessionError):
        b.respond(200, net.now)
    with pytest.raises(SessionError):
        b.respond(180, net.now)


def test_respond_twice_with_2xx_raises() -> None:
    net, alice, bob = pair()
    _, b = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP)
    with pytest.raises(SessionError):
        b.respond(200, net.now, body=SDP)


def test_request_without_a_dialog_raises() -> None:
    net, alice, bob = pair()
    a = alice.ua.invite(BOB, net.now, from_addr="<sip:alice@127.0.0.2>", to_addr="<sip:bob@127.0.0.3>")
    with pytest.raises(SessionError):
        a.request("INFO", net.now)
    net.run()
    incoming = take(bob, IncomingCall)
    assert isinstance(incoming, IncomingCall)
    with pytest.raises(SessionError):
        incoming.session.request("INFO", net.now)


def test_second_pending_reinvite_raises() -> None:
    net, alice, bob = pair()
    a, b = confirmed(net, alice, bob)
    a.request("INVITE", net.now, body=SDP)
    with pytest.raises(SessionError):
        a.request("INVITE", net.now, body=SDP)
    net.run(until=net.now + 0.01)
    (event,) = [e for e in bob.events if isinstance(e, DialogRequest)]
    with pytest.raises(SessionError):  # the peer's re-INVITE is pending at bob
        b.request("INVITE", net.now, body=SDP)
    answer_dialog_requests(net, bob, b)
    net.run(until=net.now + 1)
    a.request("INVITE", net.now, body=SDP)  # the first one is answered: a new one may go


def test_reinvite_needs_a_confirmed_dialog() -> None:
    net, alice, bob = pair()
    a, b = dial(net, alice, bob)
    b.respond(180, net.now)
    net.run()
    assert a.dialog is not None and a.state is SessionState.RINGING
    with pytest.raises(SessionError):
        a.request("INVITE", net.now, body=SDP)
    a.request("INFO", net.now)  # other requests may use the early dialog


# -- end() in each state -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [487, 486, 603])
def test_end_unanswered_uas_refuses_with_the_status(status: int) -> None:
    net, alice, bob = pair()
    a, b = dial(net, alice, bob)
    b.respond(180, net.now)
    net.run()
    if status == 487:
        b.end(net.now)
    else:
        b.end(net.now, status=status)
    assert b.ended
    net.run()
    failed = take(alice, CallFailed)
    assert isinstance(failed, CallFailed) and failed.status == status
    assert a.ended and alice.ua.sessions == [] and bob.ua.sessions == []


def test_end_calling_uac_waits_for_a_provisional_before_cancel() -> None:
    net, alice, bob = pair()
    net.drop = lambda src, dst, msg: isinstance(msg, Response) and msg.status == 100
    a = alice.ua.invite(BOB, net.now, from_addr="<sip:alice@127.0.0.2>", to_addr="<sip:bob@127.0.0.3>")
    a.end(net.now)
    assert a.state is SessionState.ENDING
    net.run(until=1.0)  # bob's 100 is lost: no provisional, no CANCEL (RFC 3261 section 9.1)
    assert sent_by(net, "alice", "CANCEL") == []
    incoming = take(bob, IncomingCall)
    assert isinstance(incoming, IncomingCall)
    incoming.session.respond(180, net.now)
    net.run()
    assert len(sent_by(net, "alice", "CANCEL")) == 1
    ended = take(alice, CallEnded)
    assert isinstance(ended, CallEnded) and ended.reason == "cancelled" and not ended.by_remote
    assert isinstance(take(bob, CallCancelled), CallCancelled)
    assert count(alice, CallProgress) == 0  # the ringing after end() is not reported


def test_end_ringing_uac_cancels_at_once() -> None:
    net, alice, bob = pair()
    a, b = dial(net, alice, bob)
    b.respond(183, net.now, body=SDP)
    net.run()
    assert a.state is SessionState.RINGING
    a.end(net.now)
    net.run(until=net.now + 0.01)
    assert len(sent_by(net, "alice", "CANCEL")) == 1
    net.run()
    assert a.ended and b.ended


def test_end_confirmed_sends_bye() -> None:
    net, alice, bob = pair()
    a, b = confirmed(net, alice, bob)
    b.end(net.now)
    assert b.state is SessionState.ENDING
    b.end(net.now)  # ENDING: nothing more
    net.run()
    assert len(sent_by(net, "bob", "BYE")) == 1
    ended = take(bob, CallEnded)
    assert isinstance(ended, CallEnded) and ended.reason == "bye answered 200" and not ended.by_remote
    ended = take(alice, CallEnded)
    assert isinstance(ended, CallEnded) and ended.by_remote and ended.request is not None
    assert a.ended and b.ended


def test_end_ended_is_a_no_op() -> None:
    net, alice, bob = pair()
    a, b = confirmed(net, alice, bob)
    a.end(net.now)
    net.run()
    before = len(net.log)
    a.end(net.now)
    b.end(net.now)
    net.run()
    assert len(net.log) == before


def test_end_answered_uas_waits_for_the_ack_before_bye() -> None:
    """RFC 3261 section 15: the callee's UA MUST NOT send a BYE on a confirmed dialog until it has received an
    ACK for its 2xx response or until the server transaction times out."""
    net, alice, bob = pair()
    lost = [1]

    def drop(src: Node, dst: Node, msg: Request | Response) -> bool:
        if isinstance(msg, Request) and msg.method == "ACK" and lost[0]:
            lost[0] -= 1
            return True
        return False

    net.drop = drop
    a, b = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP)
    assert b.state is SessionState.ANSWERED
    b.end(net.now)
    assert b.state.value == "ending"
    net.run()
    order = [(src, m.method) for _, src, dst, m in net.log
             if isinstance(m, Request) and m.method in ("ACK", "BYE") and not dst.endswith("(dropped)")]
    assert order == [("alice", "ACK"), ("bob", "BYE")]
    assert isinstance(take(bob, CallAcked), CallAcked)
    assert count(bob, CallEnded) == 1 and count(alice, CallEnded) == 1
    assert a.ended and b.ended


def test_no_ack_ends_the_session_once() -> None:
    net, alice, bob = pair()
    net.drop = lambda src, dst, msg: isinstance(msg, Request) and msg.method == "ACK"
    a, b = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP)
    net.run()
    assert count(bob, CallEnded) == 1
    ended = take(bob, CallEnded)
    assert isinstance(ended, CallEnded) and ended.reason == "no ACK" and ended.by_remote
    assert len(sent_by(net, "bob", "BYE")) == 1
    assert b.ended and bob.ua.sessions == []


def test_end_answered_uas_without_ack_gives_up_with_bye() -> None:
    net, alice, bob = pair()
    net.drop = lambda src, dst, msg: isinstance(msg, Request) and msg.method == "ACK"
    a, b = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP)
    b.end(net.now)
    net.run(until=net.now + 31)
    assert sent_by(net, "bob", "BYE") == []
    net.run()
    assert len(sent_by(net, "bob", "BYE")) == 1
    assert count(bob, CallEnded) == 1 and b.ended


# -- the UAC side ---------------------------------------------------------------------------------------


def test_cancel_crossing_the_2xx_acks_then_byes() -> None:
    net, alice, bob = pair()
    a, b = dial(net, alice, bob)
    b.respond(180, net.now)
    net.run()
    a.end(net.now)
    b.respond(200, net.now, body=SDP)  # the 200 is on its way when the CANCEL arrives
    net.run()
    assert len(sent_by(net, "alice", "ACK")) == 1 and len(sent_by(net, "alice", "BYE")) == 1
    assert isinstance(take(alice, CallAnswered), CallAnswered)
    ended = take(alice, CallEnded)
    assert isinstance(ended, CallEnded) and not ended.by_remote
    assert a.ended and b.ended


def test_timeout_after_cancel_reports_cancelled() -> None:
    net, alice, bob = pair()
    a, b = dial(net, alice, bob)
    b.respond(180, net.now)
    net.run()
    net.drop = lambda src, dst, msg: True
    a.end(net.now)
    net.run()
    ended = take(alice, CallEnded)
    assert isinstance(ended, CallEnded) and a.ended


def test_cancel_answered_but_no_final_response_gives_up_after_64_t1() -> None:
    net, alice, bob = pair()
    a, b = dial(net, alice, bob)
    b.respond(180, net.now)
    net.run()
    net.drop = lambda src, dst, msg: isinstance(msg, Response) and msg.status == 487
    a.end(net.now)
    start = net.now
    net.run(until=start + 40)
    ended = take(alice, CallEnded)
    assert isinstance(ended, CallEnded) and a.ended
    assert alice.ua.sessions == []
    assert all(tx.request.method != "INVITE" for tx in alice.ua.layer._clients.values())  # given up (section 9.1)


def test_transport_failure_fails_the_call_with_503() -> None:
    net, alice, bob = pair()
    a = alice.ua.invite(BOB, net.now, from_addr="<sip:alice@127.0.0.2>", to_addr="<sip:bob@127.0.0.3>")
    alice.ua.transport_error(bob.address, net.now)
    net.flush_all()
    failed = take(alice, CallFailed)
    assert isinstance(failed, CallFailed) and failed.status == 503 and a.ended


def test_provisional_with_a_new_tag_then_2xx_from_another_fork() -> None:
    net, alice, bob = pair()
    a, b = dial(net, alice, bob)
    b.respond(180, net.now)
    net.run()
    ringing = [m for m in alice.inbox if isinstance(m, Response) and m.status == 180][0]
    assert a.dialog is not None and a.dialog.id.remote_tag == ringing.to_tag
    early = ringing.serialize().replace(b"tag=" + (ringing.to_tag or "").encode(), b"tag=fork-1")
    net.send_raw(early, bob.address, alice)
    net.run()
    b.respond(200, net.now, body=SDP)
    net.run()
    assert a.confirmed and a.dialog is not None and a.dialog.id.remote_tag == b.local_tag
    assert isinstance(take(alice, CallAnswered), CallAnswered)


def test_uac_retries_once_with_credentials_but_not_after_cancel() -> None:
    net, alice, bob = pair(UaSettings(credentials=(Credentials("alice", "secret"),)))
    a, b = dial(net, alice, bob)
    b.respond(180, net.now)
    net.run()
    a.end(net.now)
    net.drop = lambda src, dst, msg: isinstance(msg, Request) and msg.method == "CANCEL"
    b.respond(401, net.now, headers=[("WWW-Authenticate", 'Digest realm="r", nonce="n1"')])
    net.run()
    assert count(bob, IncomingCall) == 0  # no retry for a call being cancelled
    ended = take(alice, CallEnded)
    assert isinstance(ended, CallEnded) and ended.reason == "cancelled"


# -- requests inside the dialog --------------------------------------------------------------------------


def test_in_dialog_request_and_response() -> None:
    net, alice, bob = pair()
    a, b = confirmed(net, alice, bob)
    info = a.request("INFO", net.now, body=b"Signal=1\r\n", content_type="application/dtmf-relay",
                     headers=[("X-Test", "1")])
    step(net)
    request = take(bob, DialogRequest)
    assert isinstance(request, DialogRequest) and request.request.body == b"Signal=1\r\n"
    assert request.request.headers.get("x-test") == "1"
    b.reply(request.transaction, 200, net.now)
    step(net)
    response = take(alice, DialogResponse)
    assert isinstance(response, DialogResponse) and response.outgoing is info and response.response.status == 200


def test_reinvite_answered_acked_and_target_refreshed() -> None:
    net, alice, bob = pair()
    a, b = confirmed(net, alice, bob)
    reinvite = a.request("INVITE", net.now, body=SDP)
    step(net)
    assert a.pending_reinvite is reinvite.request and b.pending_remote_invite is not None
    answer_dialog_requests(net, bob, b)
    step(net)
    assert finals(alice, reinvite) == [200]
    acked = take(bob, CallAcked)
    assert isinstance(acked, CallAcked) and acked.request.cseq is not None and acked.request.cseq.number == 2
    assert a.pending_reinvite is None and b.pending_remote_invite is None


def test_out_of_order_cseq_gets_500() -> None:
    net, alice, bob = pair()
    a, b = confirmed(net, alice, bob)
    a.request("INFO", net.now)
    step(net)
    answer_dialog_requests(net, bob, b)
    assert a.dialog is not None
    a.dialog.local_seq = 0
    a.request("INFO", net.now)  # CSeq 1, below bob's remote sequence number (section 12.2.2)
    step(net)
    assert [e.response.status for e in alice.events if isinstance(e, DialogResponse)] == [200, 500]


def test_reinvite_in_the_early_dialog_gets_500_with_retry_after() -> None:
    """Section 14.2: a second INVITE before the final response to the first gets 500 with Retry-After."""
    net, alice, bob = pair()
    a, b = dial(net, alice, bob)
    b.respond(180, net.now)
    net.run()
    assert a.dialog is not None
    early = alice.ua.build_in_dialog(a.dialog, "INVITE", "udp", SDP, None, ())
    alice.ua.send_in_dialog(a, early, net.now)
    net.run()
    (refusal,) = [m for m in alice.inbox if isinstance(m, Response) and m.status == 500]
    assert refusal.headers.get("retry-after") == "5"


def test_second_remote_reinvite_gets_500() -> None:
    net, alice, bob = pair()
    a, b = confirmed(net, alice, bob)
    a.request("INVITE", net.now, body=SDP)
    net.run(until=net.now + 0.1)
    assert b.pending_remote_invite is not None
    assert a.dialog is not None
    second = alice.ua.build_in_dialog(a.dialog, "INVITE", "udp", SDP, None, ())
    alice.ua.send_in_dialog(a, second, net.now)
    net.run(until=net.now + 0.1)
    assert any(isinstance(m, Response) and m.status == 500 for m in alice.inbox)
    assert count(bob, DialogRequest) == 1


def test_bye_in_the_early_dialog_ends_the_uas_with_487() -> None:
    net, alice, bob = pair()
    a, b = dial(net, alice, bob)
    b.respond(180, net.now)
    net.run()
    a.request("BYE", net.now)
    net.run()
    ended = take(bob, CallEnded)
    assert isinstance(ended, CallEnded) and ended.reason == "bye" and ended.by_remote
    assert [m.status for m in alice.inbox if isinstance(m, Response) and m.cseq and m.cseq.method == "INVITE"][-1] \
        == 487
    assert b.ended and a.ended


def test_request_reaching_an_ended_session_gets_481() -> None:
    net, alice, bob = pair()
    a, b = confirmed(net, alice, bob)
    b.end(net.now)
    net.run()
    assert b.ended and a.dialog is not None
    info = alice.ua.build_in_dialog(a.dialog, "INFO", "udp", b"", None, ())
    bob.ua.layer.receive(info.serialize(), alice.address, net.now)
    (event,) = bob.ua.layer.take_events()
    assert isinstance(event, RequestReceived) and isinstance(event.transaction, ServerTransaction)
    b.on_request(info, event.transaction, net.now)
    ((data, _),) = bob.ua.take_datagrams()
    assert data.startswith(b"SIP/2.0 481 ")


@pytest.mark.parametrize("status", [481, 408])
def test_481_or_408_to_an_in_dialog_request_ends_the_session(status: int) -> None:
    net, alice, bob = pair()
    a, b = confirmed(net, alice, bob)
    a.request("INFO", net.now)
    step(net)
    answer_dialog_requests(net, bob, b, status)
    step(net)
    response = take(alice, DialogResponse)
    assert isinstance(response, DialogResponse) and response.response.status == status
    ended = take(alice, CallEnded)
    assert isinstance(ended, CallEnded) and ended.reason == f"{status} to INFO" and ended.by_remote
    assert a.ended


def test_in_dialog_timeout_fails_the_request_and_ends_the_session() -> None:
    net, alice, bob = pair()
    a, b = confirmed(net, alice, bob)
    net.drop = lambda src, dst, msg: True
    info = a.request("INFO", net.now)
    net.run()
    failed = take(alice, DialogRequestFailed)
    assert isinstance(failed, DialogRequestFailed) and failed.outgoing is info and failed.status == 408
    ended = take(alice, CallEnded)
    assert isinstance(ended, CallEnded) and ended.reason == "INFO timed out"


def test_bye_timeout_still_ends_the_session() -> None:
    net, alice, bob = pair()
    a, b = confirmed(net, alice, bob)
    net.drop = lambda src, dst, msg: True
    a.end(net.now)
    net.run()
    ended = take(alice, CallEnded)
    assert isinstance(ended, CallEnded) and ended.reason == "bye timed out" and a.ended


def test_challenged_reinvite_is_retried_and_reported_as_the_original() -> None:
    net, alice, bob = pair(UaSettings(credentials=(Credentials("alice", "secret"),)))
    a, b = confirmed(net, alice, bob)
    reinvite = a.request("INVITE", net.now, body=SDP)
    step(net)
    challenge = take(bob, DialogRequest)
    assert isinstance(challenge, DialogRequest)
    b.reply(challenge.transaction, 401, net.now, headers=[("WWW-Authenticate", 'Digest realm="r", nonce="n1"')])
    step(net)
    retry = take(bob, DialogRequest)
    assert isinstance(retry, DialogRequest) and retry.request.headers.get("authorization")
    assert a.pending_reinvite is not None and a.pending_reinvite is not reinvite.first
    assert reinvite.request is a.pending_reinvite
    b.reply(retry.transaction, 200, net.now, body=SDP)
    step(net)
    assert finals(alice, reinvite) == [200] and a.pending_reinvite is None


def test_glare_retry_gives_up_when_another_reinvite_went_out_meanwhile() -> None:
    """Section 14.1: the retry after a 491 is only sent if no other INVITE transaction is in progress."""
    net, alice, bob = pair()
    a, b = confirmed(net, alice, bob)
    first_a = a.request("INVITE", net.now, body=SDP)
    first_b = b.request("INVITE", net.now, body=SDP)
    start = net.now
    step(net)
    assert len(net.sent(491)) == 2
    second_b = b.request("INVITE", net.now, body=SDP)  # bob's application tries again before its retry (1 s)
    net.run(until=start + 1.5)  # alice holds second_b unanswered past bob's retry time
    assert finals(bob, first_b) == [491]
    answer_dialog_requests(net, alice, a)
    net.run(until=start + 3.5)  # alice's own retry (3 s) goes out and is answered
    answer_dialog_requests(net, bob, b)
    net.run(until=start + 5)
    assert finals(bob, second_b) == [200] and finals(alice, first_a) == [200]
    assert a.confirmed and b.confirmed


def test_glare_retry_gives_up_when_the_call_ended_meanwhile() -> None:
    net, alice, bob = pair()
    a, b = confirmed(net, alice, bob)
    first_b = b.request("INVITE", net.now, body=SDP)
    a.request("INVITE", net.now, body=SDP)
    step(net)
    a.end(net.now)  # alice hangs up while bob waits to retry
    net.run()
    assert finals(bob, first_b) == [491]
    assert b.ended


def test_a_2xx_retransmitted_during_timer_m_gets_the_same_ack_and_a_stray_one_after_it_none() -> None:
    """RFC 6026: the INVITE client transaction passes 2xx retransmissions up until Timer M (64*T1), and
    each gets the ACK sent for the first; after Timer M a 2xx is a stray response, discarded."""
    net, alice, bob = pair()
    a, b = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP)
    answered = net.now
    net.run(until=answered + 20)
    assert a.confirmed and a.invite_tx is not None and not a.invite_tx.terminated
    ok = [m for m in alice.inbox if isinstance(m, Response) and m.status == 200][0]
    net.send_raw(ok.serialize(), bob.address, alice)
    net.run(until=net.now + 0.1)
    acks = sent_by(net, "alice", "ACK")
    assert len(acks) == 2 and acks[0].serialize() == acks[1].serialize()
    net.run(until=answered + 33)  # Timer M ended the transaction
    assert a.invite_tx is None
    net.send_raw(ok.serialize(), bob.address, alice)
    net.run(until=net.now + 0.1)
    assert len(sent_by(net, "alice", "ACK")) == 2


def test_ack_for_another_cseq_changes_nothing() -> None:
    net, alice, bob = pair()
    a, b = dial(net, alice, bob)
    invite = a.invite
    b.respond(200, net.now, body=SDP)
    net.run()
    assert isinstance(take(bob, CallAcked), CallAcked)
    assert a.dialog is not None
    ack = a.dialog.ack_for(invite, [m for m in alice.inbox if isinstance(m, Response) and m.status == 200][0],
                           "z9hG4bK-extra")
    ack.headers.set("CSeq", "99 ACK")
    b.on_ack(ack, net.now)
    assert count(bob, CallAcked) == 0 and not bob.ua.take_events()


def test_unanswered_reinvite_is_cancelled_after_64_t1_and_the_dialog_takes_new_ones() -> None:
    net, alice, bob = pair()
    a, b = confirmed(net, alice, bob)
    reinvite = a.request("INVITE", net.now, body=SDP)
    start = net.now
    step(net)
    held = take(bob, DialogRequest)
    assert isinstance(held, DialogRequest) and b.pending_remote_invite is held.transaction
    net.run(until=start + 40)
    assert len(sent_by(net, "alice", "CANCEL")) == 1
    assert finals(alice, reinvite) == [487]
    assert b.pending_remote_invite is None and a.pending_reinvite is None
    net.run(until=start + 100)  # the give-up check 64*T1 after the CANCEL finds the re-INVITE answered
    assert a.confirmed and count(alice, DialogRequestFailed) == 0
    again = b.request("INVITE", net.now, body=SDP)  # bob's dialog is not stuck with the cancelled one
    step(net)
    answer_dialog_requests(net, alice, a)
    step(net)
    assert finals(bob, again) == [200] and a.confirmed and b.confirmed


def test_reinvite_given_up_when_its_cancel_goes_unanswered() -> None:
    net, alice, bob = pair()
    a, b = confirmed(net, alice, bob)
    reinvite = a.request("INVITE", net.now, body=SDP)
    step(net)
    net.drop = lambda src, dst, msg: src is bob  # bob goes silent after its 100
    net.run()
    failed = take(alice, DialogRequestFailed)
    assert isinstance(failed, DialogRequestFailed) and failed.outgoing is reinvite
    ended = take(alice, CallEnded)
    assert isinstance(ended, CallEnded) and ended.reason == "INVITE timed out" and a.ended
    assert len({m.branch for m in sent_by(net, "alice", "CANCEL")}) == 1  # one CANCEL, retransmitted


def test_reinvite_without_any_answer_times_out() -> None:
    net, alice, bob = pair()
    a, b = confirmed(net, alice, bob)
    net.drop = lambda src, dst, msg: True
    reinvite = a.request("INVITE", net.now, body=SDP)
    net.run()
    failed = take(alice, DialogRequestFailed)
    assert isinstance(failed, DialogRequestFailed) and failed.outgoing is reinvite
    assert a.pending_reinvite is None and a.ended
    assert net.sent("CANCEL") == []  # no provisional ever came: nothing to CANCEL (section 9.1)


def test_cancelled_before_any_provisional_and_no_answer_reports_cancelled() -> None:
    net, alice, bob = pair()
    net.drop = lambda src, dst, msg: True
    a = alice.ua.invite(BOB, net.now, from_addr="<sip:alice@127.0.0.2>", to_addr="<sip:bob@127.0.0.3>")
    a.end(net.now)
    net.run()
    ended = take(alice, CallEnded)
    assert isinstance(ended, CallEnded) and ended.reason == "cancelled" and count(alice, CallFailed) == 0


def test_2xx_from_another_fork_replaces_an_early_dialog_and_the_late_one_is_byed() -> None:
    net, alice, bob = pair()
    a, b = dial(net, alice, bob)
    b.respond(180, net.now)
    net.run()
    ringing = [m for m in alice.inbox if isinstance(m, Response) and m.status == 180][0]
    ok = ringing.serialize().replace(b"SIP/2.0 180 Ringing", b"SIP/2.0 200 OK").replace(
        b"tag=" + (ringing.to_tag or "").encode(), b"tag=fork-2")
    net.send_raw(ok, bob.address, alice)
    net.run(until=net.now + 0.01)
    assert a.confirmed and a.dialog is not None and a.dialog.id.remote_tag == "fork-2"
    b.respond(200, net.now, body=SDP)  # bob's own answer comes second: ACKed and BYEd (section 13.2.2.4)
    net.run()
    assert [m.to_tag for m in sent_by(net, "alice", "BYE")] == [b.local_tag]
    assert a.confirmed and b.ended


def test_shutdown_ends_sessions_in_every_state() -> None:
    net = Network()
    alice = net.add("alice", "127.0.0.2")
    bob = net.add("bob", "127.0.0.3")
    carol = net.add("carol", "127.0.0.4")
    a1, b1 = confirmed(net, alice, bob)  # confirmed: BYE
    a2 = alice.ua.invite("sip:carol@127.0.0.4", net.now, from_addr="<sip:alice@127.0.0.2>",
                         to_addr="<sip:carol@127.0.0.4>")
    net.run()
    incoming = take(carol, IncomingCall)
    assert isinstance(incoming, IncomingCall)
    c2 = incoming.session
    c2.respond(180, net.now)
    net.run()
    carol.ua.shutdown(net.now)  # carol's unanswered INVITE: 503
    bob.ua.shutdown(net.now)
    net.run()
    assert [m.cseq.method for m in net.sent(503) if m.cseq is not None] == ["INVITE"]
    assert len(sent_by(net, "bob", "BYE")) == 1
    assert a1.ended and b1.ended and a2.ended and c2.ended
    assert bob.ua.sessions == [] and carol.ua.sessions == [] and alice.ua.sessions == []


def test_state_changes_are_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    net, alice, bob = pair()
    with caplog.at_level("DEBUG", logger="call_api.sip.session"):
        confirmed(net, alice, bob)
    assert any("ringing -> answered" in r.getMessage() for r in caplog.records)
    assert any("calling -> ringing" in r.getMessage() for r in caplog.records)


def test_a_2xx_crossing_our_cancel_moves_through_the_table(caplog: pytest.LogCaptureFixture) -> None:
    """Sections 9.1 and 15: the dialog the late 2xx confirms is ACKed, then BYEd; both moves are the table's."""
    net, alice, bob = pair()
    a, b = dial(net, alice, bob)
    b.respond(180, net.now)
    net.run()
    with caplog.at_level("DEBUG", logger="call_api.sip.session"):
        a.end(net.now)
        b.respond(200, net.now, body=SDP)
        net.run()
    moves = iter(r.getMessage() for r in caplog.records)  # both sessions' moves (one Call-ID), in order
    ours = ["ringing -> ending", "ending -> confirmed", "confirmed -> ending", "ending -> ended"]
    assert all(any(m == f"session {a.call_id} {move}" for m in moves) for move in ours)
    assert a.ended and len(sent_by(net, "alice", "BYE")) == 1


def test_a_held_session_lets_its_invite_transaction_go_and_keeps_working() -> None:
    """At confirmation both sides shed their INVITE down to the headers naming it; 66*T1 later they drop
    the finished INVITE transaction and the ACK kept for stray 2xx; in-dialog requests still go out,
    over the INVITE's transport."""
    net, alice, bob = pair()
    a, b = confirmed(net, alice, bob)
    net.run(until=net.now + 34)
    for session in (a, b):
        assert session.invite_tx is None and not session._acks
        assert [f[0] for f in session.invite.headers._fields] == ["via", "from", "to", "call-id", "cseq"]
        assert session.invite.body == b"" and session._transport() == "udp"
    ok = [m for m in alice.inbox if isinstance(m, Response) and m.status == 200][0]
    net.send_raw(ok.serialize(), bob.address, alice)  # a 2xx this late is not answered any more
    net.run()
    assert len(sent_by(net, "alice", "ACK")) == 1
    a.end(net.now)
    net.run()
    assert a.ended and b.ended and len(sent_by(net, "alice", "BYE")) == 1


# -- late offer: the offer in the 2xx, the answer in the ACK (RFC 3264 section 4, RFC 3261 13.2.2.4) ---


def late_offer(net: Network, alice: Node, bob: Node) -> tuple[Session, Session]:
    """alice INVITEs bob without SDP and bob answers 200 with the offer."""
    a = alice.ua.invite(BOB, net.now, from_addr="<sip:alice@127.0.0.2>", to_addr="<sip:bob@127.0.0.3>")
    net.run()
    incoming = take(bob, IncomingCall)
    assert isinstance(incoming, IncomingCall) and incoming.request.body == b""
    b = incoming.session
    b.respond(200, net.now, body=SDP)
    step(net)
    return a, b


def test_late_offer_ack_waits_for_the_answer_and_carries_it() -> None:
    net, alice, bob = pair()
    a, b = late_offer(net, alice, bob)
    answered = take(alice, CallAnswered)
    assert isinstance(answered, CallAnswered) and answered.response.body == SDP
    assert a.confirmed and a.held_ack is not None and sent_by(net, "alice", "ACK") == []
    net.run(until=net.now + 1.0)  # bob retransmits his 2xx: nothing goes back until the answer
    assert sent_by(net, "alice", "ACK") == [] and len(sent_by(net, "bob", 200)) > 1
    answer = SDP.replace(b"o=a 1 1", b"o=a 2 1")
    assert a.ack(net.now, body=answer, content_type="application/sdp")
    step(net)
    acked = take(bob, CallAcked)
    assert isinstance(acked, CallAcked) and acked.request.body == answer
    assert acked.request.headers.get("content-type") == "application/sdp"
    assert b.confirmed and a.held_ack is None and not a.ack(net.now)
    ok = [m for m in alice.inbox if isinstance(m, Response) and m.status == 200][0]
    net.send_raw(ok.serialize(), bob.address, alice)  # a late retransmission: the same ACK, answer and all
    step(net)
    acks = sent_by(net, "alice", "ACK")
    assert len(acks) == 2 and acks[0].serialize() == acks[1].serialize()


def test_late_offer_ended_before_the_answer_acks_without_body_then_byes() -> None:
    net, alice, bob = pair()
    a, b = late_offer(net, alice, bob)
    a.end(net.now)
    net.run()
    order = [(m.method, m.body) for m in net.sent("ACK", sender="alice") + net.sent("BYE", sender="alice")]
    assert order == [("ACK", b""), ("BYE", b"")]
    sent = [m.method for _, src, _, m in net.log if src == "alice" and isinstance(m, Request)]
    assert sent.index("ACK") < sent.index("BYE")
    assert a.ended and b.ended and a.held_ack is None


def test_late_offer_reinvite_holds_its_ack_and_a_retransmitted_2xx_is_not_reported_twice() -> None:
    net, alice, bob = pair()
    a, b = confirmed(net, alice, bob)
    reinvite = a.request("INVITE", net.now)
    step(net)
    event = take(bob, DialogRequest)
    assert isinstance(event, DialogRequest) and event.request.body == b""
    b.reply(event.transaction, 200, net.now, body=SDP)
    net.run(until=net.now + 1.0)  # bob's 2xx retransmitted meanwhile
    assert finals(alice, reinvite) == [200]
    assert a.held_ack is not None and [m.cseq for m in sent_by(net, "alice", "ACK")][-1].number == 1
    assert a.ack(net.now, body=SDP, content_type="application/sdp")
    step(net)
    acked = take(bob, CallAcked)
    assert isinstance(acked, CallAcked) and acked.request.body == SDP and acked.request.cseq.number == 2


# -- keeping a session across a restart ------------------------------------------------------------------


def restart(net: Network, node: Node) -> Node:
    """A new UA on ``node``'s address, as after a restart: nothing of the old one survives but records."""
    return net.add(node.name, node.address.host, port=node.address.port)


def test_a_restored_session_takes_the_peers_bye() -> None:
    net, alice, bob = pair()
    a, b = confirmed(net, alice, bob)
    record = json.loads(json.dumps(b.to_record()))
    bob = restart(net, bob)
    restored = bob.ua.restore(record)
    assert restored.confirmed and restored.role is Role.UAS and restored.call_id == b.call_id
    a.end(net.now)
    net.run()
    ended = take(bob, CallEnded)
    assert isinstance(ended, CallEnded) and ended.by_remote and restored.ended
    assert take(alice, CallEnded)


def test_a_restored_session_sends_with_a_cseq_past_the_jump_and_the_peer_takes_it() -> None:
    net, alice, bob = pair()
    a, b = confirmed(net, alice, bob)
    kept = b.to_record()
    b.request("INFO", net.now)  # sent after the record was written: the restore must not reuse its CSeq
    step(net)
    answer_dialog_requests(net, alice, a)
    net.run()
    bob = restart(net, bob)
    restored = bob.ua.restore(json.loads(json.dumps(kept)))
    reinvite = restored.request("INVITE", net.now, body=SDP)
    step(net)
    answer_dialog_requests(net, alice, a)
    net.run()
    assert finals(bob, reinvite) == [200]
    sent = sent_by(net, "bob", "INVITE")[-1]
    assert isinstance(sent, Request) and sent.cseq is not None and sent.cseq.number > 1000
    assert restored.confirmed and a.confirmed


def test_a_restored_caller_session_ends_with_its_own_bye() -> None:
    net, alice, bob = pair()
    a, b = confirmed(net, alice, bob)
    record = json.loads(json.dumps(a.to_record()))
    alice = restart(net, alice)
    restored = alice.ua.restore(record)
    assert restored.role is Role.UAC and restored.invite.method == "INVITE"
    restored.end(net.now)
    net.run()
    assert b.ended and restored.ended
    assert take(alice, CallEnded)


def test_only_a_confirmed_session_has_a_record() -> None:
    net, alice, bob = pair()
    a, b = dial(net, alice, bob)
    with pytest.raises(SessionError, match="not confirmed"):
        b.to_record()


@pytest.mark.parametrize(
    ("field_name", "value"),
    [("role", "b2bua"), ("local_tag", 3), ("transport", "sctp"), ("invite", None),
     ("invite", "not a sip message"), ("dialog", None), ("dialog", {"state": "confirmed"})],
)
def test_a_bad_session_record_is_refused(field_name: str, value: object) -> None:
    net, alice, bob = pair()
    _, b = confirmed(net, alice, bob)
    record = b.to_record()
    record[field_name] = value
    with pytest.raises(RecordError):
        bob.ua.restore(record)


def test_a_session_record_whose_invite_is_of_another_call_is_refused() -> None:
    net, alice, bob = pair()
    _, b = confirmed(net, alice, bob)
    record = b.to_record()
    invite = record["invite"]
    assert isinstance(invite, str)
    record["invite"] = invite.replace(b.call_id, "other-call")
    with pytest.raises(RecordError, match="not the dialog's"):
        bob.ua.restore(record)
    with pytest.raises(RecordError, match="not a mapping"):
        bob.ua.restore(["x"])  # type: ignore[arg-type]
