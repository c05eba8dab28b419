"""The B2BUA bridging calls over the in-memory network: alice -> service -> bob (no sockets)."""

from __future__ import annotations

import pytest

from b2bua.call.b2bua import B2bua, B2buaSettings, strip_correlation
from b2bua.call.call import CallState
from b2bua.sip.message import Response
from b2bua.sip.session import Session
from b2bua.sip.ua import UaSettings
from b2bua.sip.ua_events import (
    CallAcked,
    CallAnswered,
    CallEnded,
    CallFailed,
    CallProgress,
    DialogRequest,
    DialogResponse,
    IncomingCall,
)
from b2bua.sip.uri import parse_sip_uri

from .call_builders import SDP_A, SDP_B, dial, rig, take
from .sipnet import Network, Node


def test_answered_call_is_bridged_and_ends_with_bye_from_the_callee() -> None:
    net, alice, bob, service, app = rig()
    a, b, invite = dial(net, alice, bob)
    assert invite.body == SDP_A
    assert invite.call_id != a.call_id
    assert invite.from_ is not None and invite.from_.display == "Alice" and invite.from_.tag != a.local_tag
    assert len(app.table) == 1 and app.table.find(a.call_id) is app.table.find(invite.call_id or "")
    b.respond(180, net.now)
    net.settle()
    assert isinstance(take(alice, CallProgress), CallProgress)
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    answered = take(alice, CallAnswered)
    assert isinstance(answered, CallAnswered) and answered.response.body == SDP_B
    call = app.table.find(a.call_id)
    assert call is not None and call.state is CallState.ANSWERED
    b.end(net.now)
    net.settle()
    assert isinstance(take(alice, CallEnded), CallEnded)
    assert len(app.table) == 0
    assert service.ua.sessions == []
    net.settle(40.0)  # Timers J, K, L, M let the last transactions go
    assert len(service.ua.layer) == 0 and service.ua.get_timer() is None


def test_bye_from_the_caller() -> None:
    net, alice, bob, service, app = rig()
    a, b, _ = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    a.end(net.now)
    net.settle()
    assert isinstance(take(bob, CallEnded), CallEnded)
    assert len(app.table) == 0


def test_busy_is_relayed() -> None:
    net, alice, bob, service, app = rig()
    a, b, _ = dial(net, alice, bob)
    b.respond(486, net.now)
    net.settle()
    failed = take(alice, CallFailed)
    assert isinstance(failed, CallFailed) and failed.status == 486
    assert len(app.table) == 0


def test_cancel_from_the_caller_cancels_the_callee() -> None:
    net, alice, bob, service, app = rig()
    a, b, _ = dial(net, alice, bob)
    b.respond(180, net.now)
    net.settle()
    a.end(net.now)
    net.settle()
    assert b.ended and a.ended
    assert len(app.table) == 0
    assert 487 in [m.status for m in alice.inbox if isinstance(m, Response)]


def test_no_answer_times_out_with_408_and_cancels_the_callee() -> None:
    net, alice, bob, service, app = rig(answer_timeout=5.0)
    a, b, _ = dial(net, alice, bob)
    b.respond(180, net.now)
    net.run(until=10.0)
    failed = take(alice, CallFailed)
    assert isinstance(failed, CallFailed) and failed.status == 408
    assert b.ended and len(app.table) == 0


def test_reinvite_from_either_side_is_relayed_with_its_sdp() -> None:
    net, alice, bob, service, app = rig()
    a, b, _ = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    new_a = SDP_A.replace(b"10 1", b"10 2").replace(b"4000", b"4002")
    a.request("INVITE", net.now, body=new_a)
    net.settle()
    reinvite = take(bob, DialogRequest)
    assert isinstance(reinvite, DialogRequest) and reinvite.request.body == new_a
    new_b = SDP_B.replace(b"20 1", b"20 2")
    b.reply(reinvite.transaction, 200, net.now, body=new_b)
    net.settle()
    answer = [e for e in alice.events if isinstance(e, DialogResponse) and e.response.status >= 200][0]
    assert answer.response.status == 200 and answer.response.body == new_b
    b.request("INFO", net.now, body=b"Signal=1\r\n", content_type="application/dtmf-relay")
    net.settle()
    info = take(alice, DialogRequest)
    assert isinstance(info, DialogRequest) and info.request.body == b"Signal=1\r\n"
    a.reply(info.transaction, 200, net.now)
    net.settle()
    done = [e for e in bob.events if isinstance(e, DialogResponse) and e.response.status >= 200]
    assert [e.response.status for e in done] == [200]


def test_late_offer_is_bridged_the_callee_ack_carries_the_caller_answer() -> None:
    """RFC 3264 section 4: an INVITE without SDP gets the offer in the 2xx and the answer in the ACK. The
    caller's INVITE reaches the callee without SDP, the callee's offer reaches the caller, and the
    callee's ACK waits for the caller's answer (bob gets no ACK until then, then one with it)."""
    net, alice, bob, service, app = rig()
    a, b, invite = dial(net, alice, bob, body=b"")
    assert invite.body == b""
    b.respond(200, net.now, body=SDP_B)
    net.run(until=net.now + 0.1)
    answered = take(alice, CallAnswered)
    assert isinstance(answered, CallAnswered) and answered.response.body == SDP_B
    assert net.sent("ACK", sender="service") == [] and not b.confirmed
    a.ack(net.now, body=SDP_A, content_type="application/sdp")
    net.run(until=net.now + 0.1)
    acked = take(bob, CallAcked)
    assert isinstance(acked, CallAcked) and acked.request.body == SDP_A
    assert b.confirmed
    call = app.table.find(a.call_id)
    assert call is not None and call.caller.received_sdp == SDP_A and call.state is CallState.ANSWERED
    a.end(net.now)
    net.settle()
    assert b.ended and len(app.table) == 0


def test_late_offer_reinvite_is_relayed_with_the_answer_in_the_ack() -> None:
    net, alice, bob, service, app = rig()
    a, b, _ = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    bob.events.clear()
    b.request("INVITE", net.now)  # bob asks alice for a new offer
    net.run(until=net.now + 0.1)
    reinvite = take(alice, DialogRequest)
    assert isinstance(reinvite, DialogRequest) and reinvite.request.body == b""
    offer = SDP_A.replace(b"10 1", b"10 2").replace(b"4000", b"4002")
    a.reply(reinvite.transaction, 200, net.now, body=offer)
    net.run(until=net.now + 0.1)
    ok = [e for e in bob.events if isinstance(e, DialogResponse) and e.response.status == 200]
    assert [e.response.body for e in ok] == [offer]
    assert not any(isinstance(e, CallAcked) for e in alice.events)
    answer = SDP_B.replace(b"20 1", b"20 2")
    b.ack(net.now, body=answer, content_type="application/sdp")
    net.run(until=net.now + 0.1)
    acked = take(alice, CallAcked)
    assert isinstance(acked, CallAcked) and acked.request.body == answer


def test_late_offer_caller_hanging_up_before_its_answer_ends_both_legs() -> None:
    net, alice, bob, service, app = rig()
    a, b, _ = dial(net, alice, bob, body=b"")
    b.respond(200, net.now, body=SDP_B)
    net.run(until=net.now + 0.1)
    a.end(net.now)  # ACK without an answer, then BYE
    net.settle()
    acked = take(bob, CallAcked)
    assert isinstance(acked, CallAcked) and acked.request.body == b""
    assert isinstance(take(bob, CallEnded), CallEnded)
    assert b.ended and len(app.table) == 0 and service.ua.sessions == []


def test_loop_to_itself_is_refused() -> None:
    net, alice, bob, service, app = rig()
    alice.ua.invite("sip:call-api@127.0.0.1:5080", net.now, from_addr="<sip:alice@x>", to_addr="<sip:s@y>")
    net.settle()
    failed = take(alice, CallFailed)
    assert isinstance(failed, CallFailed) and failed.status == 482


def test_two_hundred_calls_at_once_all_end_and_the_table_empties() -> None:
    net, alice, bob, service, app = rig()
    sessions = [alice.ua.invite(f"sip:bob{i}@127.0.0.3", net.now, from_addr="<sip:alice@x>",
                                to_addr=f"<sip:bob{i}@y>", body=SDP_A) for i in range(200)]
    net.settle()
    incoming = [e for e in bob.events if isinstance(e, IncomingCall)]
    assert len(incoming) == 200 and len(app.table) == 200
    for event in incoming:
        event.session.respond(200, net.now, body=SDP_B)
    net.settle()
    assert all(s.confirmed for s in sessions)
    for s in sessions:
        s.end(net.now)
    net.settle()
    assert len(app.table) == 0 and service.ua.sessions == []


def test_an_ended_call_is_freed_by_reference_counting() -> None:
    """No reference cycle keeps a finished call alive until a full garbage collection: once its last
    transactions end (64*T1), nothing of it is left even with the collector off."""
    import gc
    import weakref

    net, alice, bob, service, app = rig()
    a, b, _ = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    call = app.table.find(a.call_id)
    assert call is not None
    call_ref = weakref.ref(call)
    session_refs = [weakref.ref(leg.session) for leg in call.legs.values()]
    del call
    gc.disable()
    try:
        a.end(net.now)
        net.settle()
        for node in (alice, bob, service):
            node.events.clear()
            node.inbox.clear()
        net.log.clear()
        assert call_ref() is None  # gone as soon as it ended
        net.settle(70)
        for node in (alice, bob, service):
            node.events.clear()
        net.log.clear()
        assert [r() for r in session_refs] == [None, None]  # gone with the last transactions
    finally:
        gc.enable()


def test_strip_correlation_takes_the_transfer_token_off_a_sip_uri_only() -> None:
    assert strip_correlation("sip:carol@127.0.0.4;osid=t1") == ("sip:carol@127.0.0.4", "t1")
    assert strip_correlation("sip:carol@127.0.0.4") == ("sip:carol@127.0.0.4", None)
    assert strip_correlation("tel:+15551234;osid=t1") == ("tel:+15551234;osid=t1", None)
    assert strip_correlation("sip:") == ("sip:", None)  # unreadable: left as it is


def test_calls_over_the_limit_get_503_with_retry_after() -> None:
    net, alice, bob, service, app = rig()
    service.app = app = B2bua(service.ua, B2buaSettings(max_calls=1))
    dial(net, alice, bob)
    alice.ua.invite("sip:bob@127.0.0.3:5060", net.now, from_addr="<sip:alice@x>", to_addr="<sip:bob@y>", body=SDP_A)
    net.settle()
    failed = take(alice, CallFailed)
    assert isinstance(failed, CallFailed) and failed.status == 503
    refusal = [m for m in alice.inbox if isinstance(m, Response) and m.status == 503][0]
    assert refusal.headers.get("retry-after") == "5" and len(app.table) == 1


def test_an_invite_with_max_forwards_zero_gets_483() -> None:
    net, alice, bob, service, app = rig()
    alice.ua.invite("sip:bob@127.0.0.3:5060", net.now, from_addr="<sip:alice@x>", to_addr="<sip:bob@y>",
                    body=SDP_A, max_forwards=0)
    net.settle()
    failed = take(alice, CallFailed)
    assert isinstance(failed, CallFailed) and failed.status == 483
    assert not any(isinstance(e, IncomingCall) for e in bob.events) and len(app.table) == 0


def test_the_callee_invite_carries_max_forwards_minus_one() -> None:
    net, alice, bob, service, app = rig()
    alice.ua.invite("sip:bob@127.0.0.3:5060", net.now, from_addr="<sip:alice@x>", to_addr="<sip:bob@y>",
                    body=SDP_A, max_forwards=7)
    net.settle()
    incoming = take(bob, IncomingCall)
    assert isinstance(incoming, IncomingCall) and incoming.request.max_forwards == 6


def test_a_callee_asking_for_credentials_is_reported_to_the_caller_as_403() -> None:
    """The challenge is for the service's own INVITE: the caller cannot answer it, so it hears 403."""
    net, alice, bob, service, app = rig()
    a, b, _ = dial(net, alice, bob)
    b.respond(407, net.now, headers=[("Proxy-Authenticate", 'Digest realm="bob", nonce="n1"')])
    net.settle()
    failed = take(alice, CallFailed)
    assert isinstance(failed, CallFailed) and failed.status == 403
    assert failed.reason == "Callee Requires Credentials" and len(app.table) == 0


def test_an_answer_crossing_the_callers_cancel_is_ended_with_bye() -> None:
    """RFC 3261 section 9.1: the callee's 200 crosses the CANCEL; the caller's call is over (487), so the
    service ends the callee's fresh dialog with a BYE."""
    net, alice, bob, service, app = rig()
    a, b, _ = dial(net, alice, bob)
    b.respond(180, net.now)
    net.settle()
    a.end(net.now)
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    assert isinstance(take(bob, CallEnded), CallEnded)
    assert a.ended and b.ended and len(app.table) == 0
    assert 487 in [m.status for m in alice.inbox if isinstance(m, Response)]


def test_a_notify_in_a_bridged_dialog_is_relayed() -> None:
    net, alice, bob, service, app = rig()
    a, b, _ = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    b.request("NOTIFY", net.now, body=b"SIP/2.0 200 OK\r\n", content_type="message/sipfrag",
              headers=[("Event", "refer"), ("Subscription-State", "terminated;reason=noresource")])
    net.settle()
    notify = take(alice, DialogRequest)
    assert isinstance(notify, DialogRequest) and notify.request.method == "NOTIFY"
    assert notify.request.headers.get("event") == "refer" and notify.request.body == b"SIP/2.0 200 OK\r\n"


def test_an_in_dialog_request_for_a_session_no_call_owns_gets_481() -> None:
    """A dialog the service's UA made without the B2BUA (no leg owns it): the B2BUA does not know it."""
    net, alice, bob, service, app = rig()
    service.ua.invite("sip:bob@127.0.0.3:5060", net.now, from_addr="<sip:svc@127.0.0.1>", to_addr="<sip:bob@y>",
                      body=SDP_A)
    net.settle()
    incoming = take(bob, IncomingCall)
    assert isinstance(incoming, IncomingCall)
    incoming.session.respond(200, net.now, body=SDP_B)
    net.settle()
    incoming.session.request("INFO", net.now, body=b"Signal=1\r\n", content_type="application/dtmf-relay")
    net.settle()
    answers = [e.response.status for e in bob.events if isinstance(e, DialogResponse) and e.response is not None]
    assert answers == [481]


# -- INVITE with Replaces (RFC 3891) ------------------------------------------------------------------------


def bobs_dialog(b: Session, *params: str) -> str:
    """The Replaces value naming bob's dialog with the service as bob sees it."""
    assert b.dialog is not None
    return ";".join([f"{b.call_id};to-tag={b.local_tag};from-tag={b.dialog.id.remote_tag}", *params])


def replacing_invite(net: Network, alice: Node, replaces: str, body: bytes = SDP_A) -> Session:
    """alice, as a newcomer, INVITEs the service with ``Replaces: replaces``."""
    return alice.ua.invite("sip:bob@127.0.0.3", net.now, from_addr="<sip:alice@127.0.0.2>", to_addr="<sip:bob@y>",
                           body=body, headers=[("Replaces", replaces)])


def replace_refused_with(net: Network, alice: Node, newcomer: Session) -> int:
    net.settle()
    assert newcomer.ended
    failed = [e for e in alice.events if isinstance(e, CallFailed) and e.session is newcomer]
    assert len(failed) == 1
    return failed[0].status


def test_replaces_that_cannot_be_read_gets_400() -> None:
    net, alice, bob, service, app = rig()
    assert replace_refused_with(net, alice, replacing_invite(net, alice, ";;;")) == 400


def test_replaces_early_only_naming_a_confirmed_dialog_gets_486() -> None:
    net, alice, bob, service, app = rig()
    a, b, _ = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    newcomer = replacing_invite(net, alice, bobs_dialog(b, "early-only"))
    assert replace_refused_with(net, alice, newcomer) == 486
    assert a.confirmed and b.confirmed


def test_replaces_naming_a_dialog_not_yet_confirmed_gets_486() -> None:
    net, alice, bob, service, app = rig()
    a, b, _ = dial(net, alice, bob)
    b.respond(180, net.now)
    net.settle()
    assert replace_refused_with(net, alice, replacing_invite(net, alice, bobs_dialog(b))) == 486


def test_replaces_without_an_offer_gets_488() -> None:
    net, alice, bob, service, app = rig()
    a, b, _ = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    assert replace_refused_with(net, alice, replacing_invite(net, alice, bobs_dialog(b), body=b"")) == 488


def test_replaces_refused_by_the_kept_party_is_answered_with_its_status_and_the_call_stays() -> None:
    net, alice, bob, service, app = rig()
    a, b, _ = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    newcomer = replacing_invite(net, alice, bobs_dialog(b))
    net.settle()
    reinvite = take(bob, DialogRequest)
    assert isinstance(reinvite, DialogRequest) and reinvite.request.method == "INVITE"
    b.reply(reinvite.transaction, 488, net.now)
    assert replace_refused_with(net, alice, newcomer) == 488
    assert a.confirmed and b.confirmed and len(app.table) == 1


def test_a_callee_the_service_cannot_call_gets_the_caller_503() -> None:
    """A Request-URI that names no SIP host (RFC 3966 tel:) cannot be forwarded without an outbound proxy."""
    net, alice, bob, service, app = rig()
    alice.ua.invite("tel:+15551234", net.now, from_addr="<sip:alice@127.0.0.2>", to_addr="<tel:+15551234>",
                    body=SDP_A)
    net.settle()
    failed = take(alice, CallFailed)
    assert isinstance(failed, CallFailed) and failed.status == 503 and failed.reason == "Cannot Reach Callee"
    assert len(app.table) == 0


def test_with_an_outbound_proxy_a_uri_naming_the_service_is_sent_on() -> None:
    """Behind a proxy, the service's own address in a Request-URI is the proxy's business (it may rewrite it),
    not a loop the service can see: no 482."""
    net = Network()
    proxy = parse_sip_uri("sip:127.0.0.3:5060;lr")  # bob plays the outbound proxy
    alice = net.add("alice", "127.0.0.2", UaSettings(outbound_proxy=parse_sip_uri("sip:127.0.0.1:5080;lr")))
    bob = net.add("bob", "127.0.0.3")
    service = net.add("service", "127.0.0.1", UaSettings(outbound_proxy=proxy), port=5080)
    service.app = B2bua(service.ua)
    alice.ua.invite("sip:call-api@127.0.0.1:5080", net.now, from_addr="<sip:alice@x>", to_addr="<sip:s@y>",
                    body=SDP_A)
    net.settle()
    incoming = take(bob, IncomingCall)
    assert isinstance(incoming, IncomingCall) and incoming.request.uri == "sip:call-api@127.0.0.1:5080"
    assert not any(isinstance(e, CallFailed) for e in alice.events)


@pytest.mark.parametrize("bad", [
    SDP_A.replace(b"s=-\r\n", b"s=-\r\ngarbage\r\n"),
    SDP_A.replace(b"m=audio 4000 RTP/AVP 0", b"m=audio x"),
    b"x" + SDP_A,
])
@pytest.mark.parametrize("method", ["INVITE", "UPDATE", "INFO"])
def test_an_in_dialog_request_with_unreadable_sdp_gets_400_and_the_call_is_as_it_was(method: str,
                                                                                     bad: bytes) -> None:
    """Issue 17, defect 1: the body kept the call's o= line but one line was bad; the request got no final
    answer (the ParseError escaped the relay). Now 400, nothing reaches bob, and the call goes on."""
    net, alice, bob, service, app = rig()
    a, b, _ = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    bob.events.clear()
    a.request(method, net.now, body=bad.replace(b"10 1", b"10 2"), content_type="application/sdp")
    net.settle()
    answers = [e.response.status for e in alice.events if isinstance(e, DialogResponse) and e.response.status >= 200]
    assert answers == [400] and not [e for e in bob.events if isinstance(e, DialogRequest)]
    assert len(app.table) == 1 and a.confirmed and b.confirmed
    a.request("INVITE", net.now, body=SDP_A.replace(b"10 1", b"10 2").replace(b"4000", b"4002"))
    net.settle()
    reinvite = take(bob, DialogRequest)
    assert isinstance(reinvite, DialogRequest) and b" 2 IN IP4" in reinvite.request.body
