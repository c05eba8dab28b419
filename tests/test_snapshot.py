"""The Call and Leg views (b2bua/call/snapshot.py): SDP direction, next hop, and a leg before its dialog."""

from __future__ import annotations

from b2bua.call.call import Call
from b2bua.call.snapshot import CommandView, command_view, first_direction, hop_text, leg_view
from b2bua.sip import sdp
from b2bua.sip.address import Destination
from b2bua.sip.ua_events import IncomingCall

from .call_builders import SDP_A, rig, take


def test_the_direction_of_the_first_stream() -> None:
    assert first_direction(SDP_A) == "sendrecv"
    assert first_direction(sdp.set_direction(SDP_A, "sendonly")) == "sendonly"
    assert first_direction(None) is first_direction(b"") is None
    assert first_direction(b"not sdp") is None
    assert first_direction(SDP_A.split(b"m=")[0]) is None  # no stream
    session_level = SDP_A.replace(b"t=0 0\r\n", b"t=0 0\r\na=recvonly\r\n")
    two = session_level + b"m=video 0 RTP/AVP 31\r\na=inactive\r\n"
    own = session_level.replace(b"RTP/AVP 0\r\n", b"RTP/AVP 0\r\na=sendonly\r\n")
    for body in (SDP_A, session_level, two, own, sdp.set_direction(SDP_A, "inactive"), SDP_A.replace(b"\r\n", b"\n")):
        assert first_direction(body) == sdp.directions(body)[0], body
    assert (first_direction(session_level), first_direction(two), first_direction(own)) == (
        "recvonly", "recvonly", "sendonly")


def test_the_next_hop_as_text() -> None:
    assert hop_text(None) == ("udp", "")
    assert hop_text(Destination("TCP", "::1", 5060)) == ("tcp", "[::1]:5060")


def test_legs_before_their_dialog_take_the_invites_view() -> None:
    net, alice, bob, _service, _app = rig()
    a = alice.ua.invite("sip:bob@127.0.0.3:5060", net.now, from_addr="<sip:alice@127.0.0.2>",
                        to_addr="<sip:bob@127.0.0.3>", body=SDP_A)
    caller = Call(a.call_id).add_leg("caller", a)
    out = leg_view(a.call_id, caller, False, None, caller.next_hop)
    assert (out.local_uri.split(";")[0], out.remote_uri, out.remote_target) == (
        "<sip:alice@127.0.0.2>", "<sip:bob@127.0.0.3>", "sip:bob@127.0.0.3:5060")
    assert (out.dialog, out.transport) == ("early", "udp")
    net.settle()
    incoming = take(bob, IncomingCall)
    assert isinstance(incoming, IncomingCall)
    b = incoming.session
    callee = Call(b.call_id).add_leg("caller", b)
    view = leg_view(b.call_id, callee, True, "sendrecv", callee.next_hop)
    assert view.local_uri == "<sip:bob@127.0.0.3>" and view.remote_target.startswith("sip:")
    assert view.held and view.direction == "sendrecv"
    b.respond(486, net.now)
    net.settle()
    assert leg_view(b.call_id, callee, False, None, callee.next_hop).dialog == "terminated"
    net.settle(40.0)
    assert callee.next_hop is None  # its transaction is over


def test_the_command_of_a_call() -> None:
    assert command_view(None) is None
    assert CommandView("c", "CallEnd") == CommandView("c", "CallEnd")
