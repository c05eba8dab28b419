"""SDP version continuity per leg: relayed SDP untouched until the B2BUA sends one of its own."""

from __future__ import annotations

from typing import get_args

import pytest

from b2bua.call.call import Call
from b2bua.call.leg import LEG_NAMES, Invitation, Leg, LegName, leg_of
from b2bua.errors import ParseError
from b2bua.sip import sdp
from b2bua.sip.ua_events import CallAnswered, IncomingCall

from .sipnet import Network

SDP = b"v=0\r\no=alice 10 {v} IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"


def offer(version: int, port: int = 4000) -> bytes:
    return SDP.replace(b"{v}", str(version).encode()).replace(b"4000", str(port).encode())


def a_leg() -> Leg:
    net = Network()
    node = net.add("x", "127.0.0.9")
    session = node.ua.invite("sip:y@127.0.0.8", 0.0, from_addr="<sip:x@x>", to_addr="<sip:y@y>")
    return Call("c").add_leg("callee", session)


def test_relayed_sdp_is_untouched_until_we_send_our_own() -> None:
    leg = a_leg()
    assert leg.outgoing_sdp(offer(1)) == offer(1)
    assert leg.outgoing_sdp(offer(2, 4002)) == offer(2, 4002)
    assert leg.sent_version == 2


def test_our_hold_offer_goes_one_above_and_later_relays_follow() -> None:
    leg = a_leg()
    leg.outgoing_sdp(offer(1))
    held = leg.own_offer(sdp.hold_offer(offer(1)))
    assert sdp.parse(held).version == 2 and sdp.directions(held) == ["sendonly"]
    resumed = leg.own_offer(sdp.resume_offer(offer(1)))
    assert sdp.parse(resumed).version == 3
    # the other party changes its SDP (its version 2): this leg must see 4, not 2
    relayed = leg.outgoing_sdp(offer(2, 4002))
    assert sdp.parse(relayed).version == 4
    assert relayed.replace(b" 4 IN", b" 2 IN") == offer(2, 4002)


def test_a_retransmitted_identical_sdp_keeps_its_version() -> None:
    leg = a_leg()
    first = leg.outgoing_sdp(offer(5))
    assert leg.outgoing_sdp(offer(5)) == first


def test_unparsable_sdp_is_relayed_as_is() -> None:
    leg = a_leg()
    assert leg.outgoing_sdp(b"not sdp") == b"not sdp"
    leg.remember_received(b"v=0\r\n", "application/sdp; charset=x")
    assert leg.received_sdp == b"v=0\r\n"
    leg.remember_received(b"other", "text/plain")
    assert leg.received_sdp == b"v=0\r\n"


def test_leg_names_are_the_literal() -> None:
    assert LEG_NAMES == get_args(LegName) == ("caller", "callee")


def test_an_offer_of_our_own_must_have_a_readable_origin() -> None:
    """A relayed SDP without a readable o= line goes as is; one the service makes itself must have one."""
    leg = a_leg()
    with pytest.raises(ParseError):
        leg.own_offer(b"v=0\r\nnot sdp\r\n")
    assert leg.sent_version is None


def test_a_leg_knows_its_call_its_peer_and_shows_its_dialog() -> None:
    leg = a_leg()
    assert leg.other is None  # no caller leg yet
    caller = leg.call.add_leg("caller", leg.session)
    assert leg.other is caller and caller.other is leg
    assert repr(leg) == f"<Leg callee {leg.session.call_id} {leg.session.state.value}>"


def test_a_leg_says_whose_answer_it_carries_and_a_replacement_takes_that_over() -> None:
    net = Network()
    node = net.add("x", "127.0.0.9")
    call = Call("c")
    sessions = [node.ua.invite(f"sip:{u}@127.0.0.8", 0.0, from_addr="<sip:x@x>", to_addr=f"<sip:{u}@y>")
                for u in ("a", "b", "c")]
    caller = call.add_leg("caller", sessions[0])
    callee = call.add_leg("callee", sessions[1], answers_to=caller)
    assert caller.answers_to is None and callee.answers_to is caller
    newcomer = call.replace_leg(caller, sessions[2])
    assert callee.answers_to is newcomer and newcomer.answers_to is None and call.caller is newcomer


def test_a_body_whose_version_cannot_be_moved_goes_as_is_and_changes_nothing() -> None:
    """Its o= line reads, but a bad line elsewhere stops the rewrite the leg needs (issue 17): the body
    goes as it came and the leg's memory stays as it was, so the next good SDP continues the numbering."""
    leg = a_leg()
    leg.outgoing_sdp(offer(1))
    leg.own_offer(sdp.hold_offer(offer(1)))  # the leg saw version 2 from us
    state = (leg.sent_origin, leg.source_origin, leg.version_offset, leg.sent_version, leg.sent_sdp, leg.last_source)
    bad = offer(2).replace(b"s=-\r\n", b"s=-\r\ngarbage\r\n")
    assert leg.outgoing_sdp(bad) == bad
    assert (leg.sent_origin, leg.source_origin, leg.version_offset, leg.sent_version, leg.sent_sdp,
            leg.last_source) == state
    assert sdp.parse(leg.outgoing_sdp(offer(2, 4002))).version == 3


def test_an_invitation_becomes_a_leg_that_answers_and_tells_its_dialog() -> None:
    """The commands and facts the call logic has of a leg, on a real INVITE over the in-memory network."""
    net = Network()
    alice, bob = net.add("alice", "127.0.0.2"), net.add("bob", "127.0.0.3")
    alice.ua.invite("sip:bob@127.0.0.3", net.now, from_addr="<sip:alice@a>", to_addr="<sip:bob@b>", body=offer(1))
    net.run()
    incoming = next(e for e in bob.events if isinstance(e, IncomingCall))
    invitation = Invitation(incoming)
    assert invitation.request.body == offer(1) and not invitation.ended
    assert repr(invitation) == f"<Invitation {invitation.call_id}>" and leg_of(incoming) is None
    leg = Call(invitation.call_id).add_leg("caller", invitation)
    assert leg_of(incoming) is leg and leg.call_id == invitation.call_id
    assert leg.ringing and leg.dialog_id is None and leg.remote_uri is None
    leg.ring(180, net.now)
    leg.answer(net.now, body=offer(1))
    assert not leg.ringing and not leg.confirmed and leg.dialog_id is not None
    assert leg.remote_uri is not None and leg.remote_uri.startswith("<sip:alice@a>;tag=")
    net.run()
    assert any(isinstance(e, CallAnswered) for e in alice.events)
    assert leg.confirmed and not leg.ack_held and not leg.invite_pending and not leg.ack(net.now)
    reinvite = leg.send("INVITE", net.now, body=offer(2))
    assert leg.invite_pending and reinvite.method == "INVITE"
    leg.detach()
    assert leg_of(incoming) is None
    leg.hang_up(net.now)
    net.run()
    assert leg.ended
