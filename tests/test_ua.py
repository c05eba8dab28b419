"""The UA core and INVITE sessions over an in-memory network with a fake clock (no sockets)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from b2bua.errors import SipError
from b2bua.sip.address import Destination
from b2bua.sip.auth import Credentials
from b2bua.sip.message import Request, Response
from b2bua.sip.parser import parse_message
from b2bua.sip.session import Session, SessionState
from b2bua.sip.timers import TimerSettings
from b2bua.sip.ua import UaSettings, UserAgent, destination_for
from b2bua.sip.ua_events import (
    CallAcked,
    CallAnswered,
    CallCancelled,
    CallEnded,
    CallFailed,
    CallProgress,
    DialogRequest,
    DialogResponse,
    IncomingCall,
    UaEvent,
)
from b2bua.sip.uri import parse_sip_uri

from .sipnet import CountingIds, Network, Node

SDP = b"v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"


def kinds(node: Node) -> list[str]:
    return [type(e).__name__ for e in node.events]


def take(node: Node, kind: type[UaEvent]) -> UaEvent:
    for i, event in enumerate(node.events):
        if isinstance(event, kind):
            return node.events.pop(i)
    raise AssertionError(f"{node.name} has no {kind.__name__}: {kinds(node)}")


def pair() -> tuple[Network, Node, Node]:
    net = Network()
    return net, net.add("alice", "127.0.0.2"), net.add("bob", "127.0.0.3")


def call(net: Network, alice: Node, bob: Node, *, answer: int = 200) -> tuple[Session, Session]:
    """alice INVITEs bob, bob rings then answers with ``answer``."""
    a = alice.ua.invite("sip:bob@127.0.0.3:5060", net.now, from_addr="<sip:alice@127.0.0.2>",
                        to_addr="<sip:bob@127.0.0.3>", body=SDP)
    net.run()
    incoming = take(bob, IncomingCall)
    assert isinstance(incoming, IncomingCall)
    b = incoming.session
    b.respond(180, net.now)
    net.run()
    b.respond(answer, net.now, body=SDP if answer < 300 else b"")
    net.run()
    return a, b


def test_options_answered_with_allow_accept_supported() -> None:
    net, alice, bob = pair()
    request, _ = alice.ua.new_request("OPTIONS", "sip:bob@127.0.0.3", from_addr="<sip:alice@x>",
                                      to_addr="<sip:bob@y>")
    alice.ua.layer.send_request(request, bob.address, net.now)
    net.run()
    (ok,) = [m for m in alice.inbox if isinstance(m, Response)]
    assert ok.status == 200
    for header in ("Allow", "Accept", "Supported"):
        assert ok.headers.get(header)


def test_call_answered_acked_and_ended_by_bye() -> None:
    net, alice, bob = pair()
    a, b = call(net, alice, bob)
    assert kinds(alice) == ["CallProgress", "CallAnswered"]
    assert kinds(bob) == ["CallAcked"]
    assert a.state is b.state is SessionState.CONFIRMED
    assert len(net.sent("ACK")) == 1
    a.end(net.now)
    net.run()
    ended_b = take(bob, CallEnded)
    ended_a = take(alice, CallEnded)
    assert isinstance(ended_b, CallEnded) and ended_b.by_remote
    assert isinstance(ended_a, CallEnded) and not ended_a.by_remote
    assert a.ended and b.ended
    assert alice.ua.sessions == [] and bob.ua.sessions == []
    assert len(alice.ua.layer) == 0 and len(bob.ua.layer) == 0


def test_lost_invite_and_lost_200_still_complete() -> None:
    net, alice, bob = pair()
    lost = {"INVITE": 2, 200: 1}

    def drop(src: Node, dst: Node, msg: Request | Response) -> bool:
        key: str | int = msg.method if isinstance(msg, Request) else msg.status
        if lost.get(key, 0) > 0:
            lost[key] -= 1
            return True
        return False

    net.drop = drop
    a, b = call(net, alice, bob)
    assert a.confirmed and b.confirmed
    assert [d for d in net.log if d[2].endswith("(dropped)")]


def test_2xx_retransmitted_until_ack_then_bye_after_64_t1() -> None:
    net, alice, bob = pair()
    net.drop = lambda src, dst, msg: isinstance(msg, Request) and msg.method == "ACK"
    a, b = call(net, alice, bob)
    net.run(until=40)
    oks = [t for t, src, _, m in net.log if src == "bob" and isinstance(m, Response) and m.status == 200
           and m.cseq is not None and m.cseq.method == "INVITE"]
    gaps = [round(y - x, 3) for x, y in zip(oks, oks[1:], strict=False)]
    assert gaps[:4] == [0.5, 1.0, 2.0, 4.0] and all(g == 4.0 for g in gaps[4:])
    ended = take(bob, CallEnded)
    assert isinstance(ended, CallEnded) and ended.reason == "no ACK"
    assert len(net.sent("BYE", sender="bob")) == 1


def test_busy_fails_the_call() -> None:
    net, alice, bob = pair()
    a, b = call(net, alice, bob, answer=486)
    failed = take(alice, CallFailed)
    assert isinstance(failed, CallFailed) and failed.status == 486
    assert a.ended and b.ended
    assert len(net.sent("ACK")) == 1  # the transaction's ACK for the non-2xx


def test_cancel_while_ringing() -> None:
    net, alice, bob = pair()
    a = alice.ua.invite("sip:bob@127.0.0.3", net.now, from_addr="<sip:alice@x>", to_addr="<sip:bob@y>", body=SDP)
    net.run()
    incoming = take(bob, IncomingCall)
    assert isinstance(incoming, IncomingCall)
    incoming.session.respond(180, net.now)
    net.run()
    a.end(net.now)
    net.run()
    assert isinstance(take(bob, CallCancelled), CallCancelled)
    ended = take(alice, CallEnded)
    assert isinstance(ended, CallEnded) and ended.reason == "cancelled"
    assert [m.status for m in bob.inbox if isinstance(m, Response)] == []
    assert sorted(m.status for m in alice.inbox if isinstance(m, Response)) == [100, 180, 200, 487]
    assert alice.ua.sessions == [] and bob.ua.sessions == []


def test_cancel_before_any_provisional_waits_for_one() -> None:
    net, alice, bob = pair()
    a = alice.ua.invite("sip:bob@127.0.0.3", net.now, from_addr="<sip:alice@x>", to_addr="<sip:bob@y>")
    a.end(net.now)  # nothing came back yet: the CANCEL waits for the 100
    net.run()
    assert len(net.sent("CANCEL")) == 1
    assert isinstance(take(alice, CallEnded), CallEnded)


def test_no_answer_times_out_with_408() -> None:
    net, alice, bob = pair()
    net.drop = lambda src, dst, msg: True
    alice.ua.invite("sip:bob@127.0.0.3", net.now, from_addr="<sip:alice@x>", to_addr="<sip:bob@y>")
    net.run()
    failed = take(alice, CallFailed)
    assert isinstance(failed, CallFailed) and failed.status == 408
    assert 32.0 <= net.now < 33.0


def test_reinvite_and_glare_retry() -> None:
    net, alice, bob = pair()
    a, b = call(net, alice, bob)
    a.request("INVITE", net.now, body=SDP)
    b.request("INVITE", net.now, body=SDP)
    net.run(until=net.now + 0.01)
    # each side got the other's INVITE while its own was pending: 491 both ways
    assert len(net.sent(491)) == 2
    for _ in range(5):
        net.run(until=net.now + 1)
        for node, session in ((alice, a), (bob, b)):
            for event in list(node.events):
                if isinstance(event, DialogRequest):
                    node.events.remove(event)
                    session.reply(event.transaction, 200, net.now, body=SDP)
    net.run()
    answers = [e for n in (alice, bob) for e in n.events if isinstance(e, DialogResponse) and e.response.status == 200]
    assert len(answers) == 2
    assert a.confirmed and b.confirmed


def test_request_in_unknown_dialog_gets_481() -> None:
    net, alice, bob = pair()
    a, b = call(net, alice, bob)
    bogus = a.request("INFO", net.now)
    bob.ua._dialogs.clear()
    net.run()
    assert net.sent(481)
    assert bogus.method == "INFO"


def test_untrusted_caller_gets_403() -> None:
    net = Network()
    alice = net.add("alice", "127.0.0.2")
    bob = net.add("bob", "127.0.0.3", UaSettings(trusted=(ipaddress.ip_network("10.0.0.0/8"),)))
    alice.ua.invite("sip:bob@127.0.0.3", net.now, from_addr="<sip:alice@x>", to_addr="<sip:bob@y>")
    net.run()
    failed = take(alice, CallFailed)
    assert isinstance(failed, CallFailed) and failed.status == 403
    assert bob.events == []


def test_digest_challenge_answered_once() -> None:
    net = Network()
    alice = net.add("alice", "127.0.0.2", UaSettings(credentials=(Credentials("alice", "secret"),)))
    bob = net.add("bob", "127.0.0.3")
    alice.ua.invite("sip:bob@127.0.0.3", net.now, from_addr="<sip:alice@x>", to_addr="<sip:bob@y>")
    net.run()
    first = take(bob, IncomingCall)
    assert isinstance(first, IncomingCall)
    first.session.respond(407, net.now, headers=[("Proxy-Authenticate", 'Digest realm="r", nonce="n1", qop="auth"')])
    net.run()
    second = take(bob, IncomingCall)
    assert isinstance(second, IncomingCall)
    auth = second.request.headers.get("Proxy-Authorization")
    assert auth is not None and 'username="alice"' in auth and "nc=00000001" in auth
    assert second.request.cseq is not None and second.request.cseq.number == 2
    second.session.respond(407, net.now, headers=[("Proxy-Authenticate", 'Digest realm="r", nonce="n2"')])
    net.run()
    failed = take(alice, CallFailed)
    assert isinstance(failed, CallFailed) and failed.status == 407


def test_extra_forked_2xx_is_acked_and_byed() -> None:
    net, alice, bob = pair()
    a, b = call(net, alice, bob)
    ok = [m for m in alice.inbox if isinstance(m, Response) and m.status == 200][0]
    fork = ok.serialize().replace(b"tag=" + (ok.to_tag or "").encode(), b"tag=fork-2")
    net.send_raw(fork, bob.address, alice)
    net.run()
    acks = net.sent("ACK", sender="alice")
    byes = net.sent("BYE", sender="alice")
    assert [m.to_tag for m in acks][-1] == "fork-2"
    assert [m.to_tag for m in byes] == ["fork-2"]
    assert a.confirmed


def test_retransmitted_2xx_gets_the_same_ack_again() -> None:
    net, alice, bob = pair()
    a = alice.ua.invite("sip:bob@127.0.0.3:5060", net.now, from_addr="<sip:alice@127.0.0.2>",
                        to_addr="<sip:bob@127.0.0.3>", body=SDP)
    net.run()
    incoming = take(bob, IncomingCall)
    assert isinstance(incoming, IncomingCall)
    incoming.session.respond(200, net.now, body=SDP)
    net.run(until=net.now + 5)
    assert a.confirmed
    ok = [m for m in alice.inbox if isinstance(m, Response) and m.status == 200][0]
    net.send_raw(ok.serialize(), bob.address, alice)
    net.run(until=net.now + 1)
    acks = net.sent("ACK", sender="alice")
    assert len(acks) == 2 and acks[0].serialize() == acks[1].serialize()


def test_progress_event_carries_the_provisional() -> None:
    net, alice, bob = pair()
    call(net, alice, bob)
    progress = take(alice, CallProgress)
    answered = take(alice, CallAnswered)
    assert isinstance(progress, CallProgress) and progress.response.status == 180
    assert isinstance(answered, CallAnswered) and answered.response.body == SDP
    acked = take(bob, CallAcked)
    assert isinstance(acked, CallAcked)


def test_malformed_request_gets_400_and_others_go_on() -> None:
    net, alice, bob = pair()
    a, b = call(net, alice, bob)
    bad = (b"OPTIONS sip:bob@127.0.0.3 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKbad\r\n"
           b"From: <sip:a@x>;tag=1\r\nTo: <sip:b@y\r\nCall-ID: bad\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
    net.send_raw(bad, alice.address, bob)
    net.run()
    assert any(isinstance(m, Response) and m.status == 400 for m in alice.inbox)
    assert a.confirmed and b.confirmed
    assert parse_message(bad, check=False).call_id == "bad"
    assert Destination("udp", "127.0.0.2", 5060) == alice.address


def test_dialog_creating_responses_copy_record_route() -> None:
    net, alice, bob = pair()
    alice.ua.invite("sip:bob@127.0.0.3", net.now, from_addr="<sip:alice@x>", to_addr="<sip:bob@y>",
                    headers=[("Record-Route", "<sip:p1.example.com;lr>"), ("Record-Route", "<sip:p2.example.com;lr>")])
    net.run()
    incoming = take(bob, IncomingCall)
    assert isinstance(incoming, IncomingCall)
    incoming.session.respond(180, net.now)
    incoming.session.respond(200, net.now, body=SDP)
    net.run(until=net.now + 1)
    for status in (180, 200):
        response = next(m for m in alice.inbox if isinstance(m, Response) and m.status == status)
        assert response.headers.get_all("Record-Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]


def test_trusted_verdicts_follow_the_settings_and_stay_bounded() -> None:
    """trusted() remembers its verdicts per host, forgets them when the settings change, and never
    remembers more than a bounded number of hosts."""
    from dataclasses import replace

    from b2bua.sip.ua import _TRUSTED_SEEN_MAX

    net = Network()
    bob = net.add("bob", "127.0.0.3", UaSettings(trusted=(ipaddress.ip_network("10.0.0.0/8"),)))
    ua = bob.ua
    assert ua.trusted("10.1.2.3") and ua.trusted("10.1.2.3") and not ua.trusted("192.0.2.1")
    assert not ua.trusted("not-an-address") and not ua.trusted("[2001:db8::1]")
    ua.settings = replace(ua.settings, trusted=(ipaddress.ip_network("192.0.2.0/24"),))
    assert ua.trusted("192.0.2.1") and not ua.trusted("10.1.2.3")
    for n in range(3 * _TRUSTED_SEEN_MAX):
        ua.trusted(f"10.0.{n // 256}.{n % 256}")
    assert len(ua._trusted_seen[1]) <= _TRUSTED_SEEN_MAX


def test_cancelled_timers_are_swept_from_the_heap_and_the_rest_still_fire() -> None:
    net = Network()
    ua = net.add("bob", "127.0.0.3").ua
    fired: list[int] = []
    for n in range(5000):
        timer = ua.schedule(100.0 + n, lambda at, n=n: fired.append(n))
        if n % 10:
            timer.cancel()  # like a call's answer timer once the call is answered
    assert len(ua._heap) < 2000  # swept as it grew
    ua.handle_timer(10_000.0)
    assert fired == list(range(0, 5000, 10))


# -- SIP over TLS and sips: (RFC 3261 section 26, RFC 5630) ------------------------------------------------------


@pytest.mark.parametrize(("uri", "secure", "expected"), [
    ("sip:bob@example.com", False, Destination("udp", "example.com", 5060)),
    ("sip:bob@example.com;transport=tls", False, Destination("tls", "example.com", 5061)),
    ("sip:bob@example.com:5071;transport=TLS", False, Destination("tls", "example.com", 5071)),
    ("sips:bob@example.com", False, Destination("tls", "example.com", 5061)),
    ("sips:bob@example.com;transport=tcp", False, Destination("tls", "example.com", 5061)),
    ("sips:bob@[::1]:5062", False, Destination("tls", "::1", 5062)),
    ("sip:proxy.example.com;lr", True, Destination("tls", "proxy.example.com", 5061)),
    ("sip:proxy.example.com:5070;transport=tcp;lr", True, Destination("tls", "proxy.example.com", 5070)),
    ("sip:proxy.example.com;maddr=10.0.0.1;transport=tls", False, Destination("tls", "10.0.0.1", 5061)),
])
def test_destination_for_picks_tls_and_never_downgrades_a_sips_request(uri: str, secure: bool,
                                                                        expected: Destination) -> None:
    assert destination_for(uri, secure=secure) == expected


@pytest.mark.parametrize(("uri", "secure", "message"), [
    ("sips:bob@example.com;transport=udp", False, "a sips: request cannot go over UDP"),
    ("sip:proxy.example.com;transport=udp;lr", True, "a sips: request cannot go over UDP"),
    ("sip:bob@example.com;transport=sctp", False, "unsupported transport 'sctp'"),
    ("tel:+15551234", False, "without an outbound proxy"),
])
def test_destination_for_refuses_what_it_cannot_reach(uri: str, secure: bool, message: str) -> None:
    with pytest.raises(SipError, match=message):
        destination_for(uri, secure=secure)


def tls_ua(**settings: Any) -> UserAgent:
    return UserAgent(CountingIds("svc"), UaSettings(host="10.0.0.5", port=5080, tls_port=5081, **settings),
                     TimerSettings())


def test_a_sips_request_goes_over_tls_with_a_tls_via_and_a_sips_contact() -> None:
    ua = tls_ua(outbound_proxy=parse_sip_uri("sip:proxy.example.com;lr"))
    request, destination = ua.new_request("INVITE", "sips:bob@example.com", from_addr="<sips:svc@example.com>",
                                          to_addr="<sips:bob@example.com>")
    assert destination == Destination("tls", "proxy.example.com", 5061)
    assert request.headers.get("Via", "").startswith("SIP/2.0/TLS 10.0.0.5:5081;branch=")
    assert request.headers.get("Contact") == "<sips:call-api@10.0.0.5:5081>"
    assert request.uri == "sips:bob@example.com"


def test_a_sip_request_over_tls_gets_a_transport_tls_contact() -> None:
    ua = tls_ua(outbound_proxy=parse_sip_uri("sip:proxy.example.com;transport=tls;lr"))
    request, destination = ua.new_request("INVITE", "sip:bob@example.com", from_addr="<sip:svc@example.com>",
                                          to_addr="<sip:bob@example.com>")
    assert destination == Destination("tls", "proxy.example.com", 5061)
    assert request.headers.get("Via", "").startswith("SIP/2.0/TLS 10.0.0.5:5081;")
    assert request.headers.get("Contact") == "<sip:call-api@10.0.0.5:5081;transport=tls>"


def test_without_a_tls_listener_the_via_names_the_main_port() -> None:
    ua = UserAgent(CountingIds("svc"), UaSettings(host="10.0.0.5", port=5080), TimerSettings())
    assert ua.port_for("tls") == 5080 and ua.port_for("udp") == 5080
    assert ua.contact_for("tls", True) == "<sips:call-api@10.0.0.5:5080>"
    assert ua.contact_for("tcp") == "<sip:call-api@10.0.0.5:5080;transport=tcp>"
    assert ua.contact_for("udp", True) == "<sip:call-api@10.0.0.5:5080>"


def test_a_sips_call_over_tls_makes_secure_dialogs_on_both_sides() -> None:
    net = Network()
    alice = net.add("alice", "127.0.0.2", UaSettings(tls_port=5061))
    bob = net.add("bob", "127.0.0.3", UaSettings(tls_port=5061))
    a = alice.ua.invite("sips:bob@127.0.0.3", net.now, from_addr="<sips:alice@127.0.0.2>",
                        to_addr="<sips:bob@127.0.0.3>", body=SDP)
    net.run()
    incoming = take(bob, IncomingCall)
    assert isinstance(incoming, IncomingCall)
    b = incoming.session
    invite = bob.inbox[0]
    assert isinstance(invite, Request)
    assert invite.headers.get("Via", "").startswith("SIP/2.0/TLS 127.0.0.2:5061;")
    assert invite.headers.get("Contact") == "<sips:call-api@127.0.0.2:5061>"
    b.respond(200, net.now, body=SDP)
    net.run()
    ok = [m for m in alice.inbox if isinstance(m, Response) and m.status == 200][0]
    assert ok.headers.get("Contact") == "<sips:call-api@127.0.0.3:5061>"
    assert a.dialog is not None and b.dialog is not None
    assert a.dialog.secure and b.dialog.secure
    a.end(net.now)
    net.run()
    bye = [m for m in bob.inbox if isinstance(m, Request) and m.method == "BYE"][0]
    assert bye.uri == "sips:call-api@127.0.0.3:5061"
    assert bye.headers.get("Via", "").startswith("SIP/2.0/TLS 127.0.0.2:5061;")
    assert [name for _, _, name, m in net.log if isinstance(m, Request) and m.method == "BYE"] == ["bob"]
    assert a.state is SessionState.ENDED and b.state is SessionState.ENDED


def test_a_sip_call_over_tls_is_not_secure_but_stays_on_tls() -> None:
    net = Network()
    alice = net.add("alice", "127.0.0.2", UaSettings(tls_port=5061))
    bob = net.add("bob", "127.0.0.3", UaSettings(tls_port=5061))
    a = alice.ua.invite("sip:bob@127.0.0.3;transport=tls", net.now, from_addr="<sip:alice@127.0.0.2>",
                        to_addr="<sip:bob@127.0.0.3>", body=SDP)
    net.run()
    incoming = take(bob, IncomingCall)
    assert isinstance(incoming, IncomingCall)
    incoming.session.respond(200, net.now, body=SDP)
    net.run()
    ok = [m for m in alice.inbox if isinstance(m, Response) and m.status == 200][0]
    assert ok.headers.get("Contact") == "<sip:call-api@127.0.0.3:5061;transport=tls>"
    assert a.dialog is not None and not a.dialog.secure
    a.end(net.now)
    net.run()
    bye = [m for m in bob.inbox if isinstance(m, Request) and m.method == "BYE"][0]
    assert bye.headers.get("Via", "").startswith("SIP/2.0/TLS 127.0.0.2:5061;")
def test_a_2xx_for_an_invite_nobody_knows_is_acked_and_ended() -> None:
    """After a restart the 2xx of a call that was being set up finds no session: ACK it, then BYE it."""
    net, alice, bob = pair()
    lost = (
        b"SIP/2.0 200 OK\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK-before-the-restart\r\n"
        b"From: <sip:call-api@127.0.0.2>;tag=old-tag\r\n"
        b"To: <sip:bob@127.0.0.3>;tag=bob-tag\r\n"
        b"Call-ID: lost-call\r\n"
        b"CSeq: 7 INVITE\r\n"
        b"Record-Route: <sip:127.0.0.3;lr>\r\n"
        b"Contact: <sip:bob@127.0.0.3:5060>\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    net.send_raw(lost, bob.address, alice)
    net.run()
    (ack,) = net.sent("ACK", sender="alice")
    (bye,) = net.sent("BYE", sender="alice")
    for request in (ack, bye):
        assert isinstance(request, Request) and request.call_id == "lost-call"
        assert request.to_tag == "bob-tag" and request.from_tag == "old-tag"
    assert isinstance(ack, Request) and ack.cseq is not None and ack.cseq.number == 7
    assert isinstance(bye, Request) and bye.uri == "sip:bob@127.0.0.3:5060" and bye.routes
    assert alice.ua.sessions == []


def test_a_stray_provisional_or_failure_for_an_unknown_invite_is_dropped() -> None:
    net, alice, bob = pair()
    for status in ("180 Ringing", "486 Busy Here"):
        lost = (
            f"SIP/2.0 {status}\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK-x\r\n"
            "From: <sip:call-api@127.0.0.2>;tag=t\r\nTo: <sip:bob@127.0.0.3>;tag=b\r\nCall-ID: gone\r\n"
            "CSeq: 1 INVITE\r\nContact: <sip:bob@127.0.0.3>\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        net.send_raw(lost, bob.address, alice)
    net.run()
    assert net.sent("ACK", sender="alice") == [] and net.sent("BYE", sender="alice") == []


def test_an_invites_extra_option_tags_join_the_one_supported_line() -> None:
    """RFC 4028's ``timer`` goes on the same Supported line as ours (a peer that reads only the first line sees it)."""
    ua = UserAgent(CountingIds("t"))
    invite, _ = ua.new_request("INVITE", "sip:bob@127.0.0.3", from_addr="<sip:a@b>", to_addr="<sip:bob@c>",
                               headers=[("Supported", "timer"), ("Session-Expires", "1800")])
    assert invite.headers.get_all("Supported") == ["replaces, norefersub, timer"]
    assert invite.headers.get("Session-Expires") == "1800"
    plain, _ = ua.new_request("INVITE", "sip:bob@127.0.0.3", from_addr="<sip:a@b>", to_addr="<sip:bob@c>")
    assert plain.headers.get_all("Supported") == ["replaces, norefersub"]


def test_a_tag_the_ua_already_lists_is_not_repeated_on_the_invite() -> None:
    """With session timers on, ``timer`` is in the UA's own tags too (b2bua/service.py): once, not twice."""
    ua = UserAgent(CountingIds("t"), UaSettings(supported="replaces, norefersub, timer"))
    invite, _ = ua.new_request("INVITE", "sip:bob@127.0.0.3", from_addr="<sip:a@b>", to_addr="<sip:bob@c>",
                               headers=[("Supported", "Timer, 100rel")])
    assert invite.headers.get_all("Supported") == ["replaces, norefersub, timer, 100rel"]
