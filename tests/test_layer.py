"""Tests for b2bua.sip.layer: the transaction layer fed bytes and a fake clock (RFC 3261 sections 8.2, 9.2,
17, 18; RFC 3581; RFC 6026). No sockets: datagrams come out of ``take_datagrams`` and are parsed back."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from b2bua.errors import TransactionError
from b2bua.io.ids import RandomIds
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
from b2bua.sip.headers import Via, parse_top_via
from b2bua.sip.layer import UDP_SIZE_LIMIT, TransactionLayer, _stamp, _stamp_and_route, response_destination
from b2bua.sip.message import Headers, Request, Response
from b2bua.sip.parser import parse_message
from b2bua.sip.transaction_client import ClientTransaction, InviteClientTransaction
from b2bua.sip.transaction_server import InviteServerState, ServerTransaction
from b2bua.sip.ua import UaSettings, UserAgent
from b2bua.sip.uas import make_response

#: The peer: a phone on loopback with a port of its own.
PEER = Destination("udp", "127.0.0.2", 5062)
PEER_TCP = Destination("tcp", "127.0.0.2", 40123)
#: Where the service sends its own requests in these tests.
NEXT_HOP = Destination("udp", "127.0.0.3", 5060)
VIA = "SIP/2.0/UDP 127.0.0.2:5062"
SDP = b"v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"


# -- builders -------------------------------------------------------------------------------------------


def wire(
    method: str = "INVITE",
    *,
    via: str = f"{VIA};branch=z9hG4bK-inv1",
    more_vias: Sequence[str] = (),
    uri: str = "sip:bob@127.0.0.1",
    from_tag: str = "alice-1",
    to_tag: str | None = None,
    call_id: str = "call-1@127.0.0.2",
    cseq: int = 1,
    cseq_method: str | None = None,
    extra: Sequence[str] = (),
    body: bytes = b"",
) -> bytes:
    """A request as a phone would send it."""
    lines = [f"{method} {uri} SIP/2.0", f"Via: {via}", *(f"Via: {v}" for v in more_vias), "Max-Forwards: 70",
             f"From: <sip:alice@127.0.0.2>;tag={from_tag}",
             "To: <sip:bob@127.0.0.1>" + (f";tag={to_tag}" if to_tag else ""),
             f"Call-ID: {call_id}", f"CSeq: {cseq} {cseq_method or method}",
             *(["Contact: <sip:alice@127.0.0.2:5062>"] if method == "INVITE" else []), *extra,
             f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def new_layer(**kwargs: object) -> TransactionLayer:
    tags = itertools.count(1)
    return TransactionLayer(tag_factory=lambda: f"tag-{next(tags)}", **kwargs)  # type: ignore[arg-type]


def sent(layer: TransactionLayer) -> list[tuple[Request | Response, Destination]]:
    """What the layer queued, parsed back."""
    return [(parse_message(data, check=False), destination) for data, destination in layer.take_datagrams()]


def responses(layer: TransactionLayer) -> list[Response]:
    out = []
    for msg, _ in sent(layer):
        assert isinstance(msg, Response)
        out.append(msg)
    return out


def statuses(layer: TransactionLayer) -> list[int]:
    return [r.status for r in responses(layer)]


def only(events: list[LayerEvent], kind: type) -> list[LayerEvent]:
    return [e for e in events if isinstance(e, kind)]


def receive_request(layer: TransactionLayer, data: bytes, source: Destination = PEER,
                    now: float = 0.0) -> RequestReceived:
    """Feed a request that must reach the TU, and return its event (the 100 Trying stays queued)."""
    layer.receive(data, source, now)
    events = layer.take_events()
    assert [type(e) for e in events] == [RequestReceived], events
    event = events[0]
    assert isinstance(event, RequestReceived)
    return event


def our_request(method: str = "OPTIONS", *, branch: str = "z9hG4bK-out1", body: bytes = b"",
                via_host: str = "127.0.0.1:5080") -> Request:
    """A request the TU sends (built the way the UA core builds one)."""
    h = Headers.of(("Via", f"SIP/2.0/UDP {via_host};branch={branch};rport"), ("Max-Forwards", "70"),
                   ("From", "<sip:call-api@127.0.0.1>;tag=ours-1"), ("To", "<sip:bob@127.0.0.3>"),
                   ("Call-ID", "out-1@127.0.0.1"), ("CSeq", f"1 {method}"))
    if body:
        h.add("Content-Type", "application/sdp")
    return Request(method, "sip:bob@127.0.0.3", h, body)


def answer(request: Request, status: int, *, to_tag: str | None = "peer-tag", headers: Sequence[str] = ()) -> bytes:
    """The peer's response to one of our requests, as bytes."""
    response = make_response(request, status, to_tag=to_tag)
    for line in headers:
        name, _, value = line.partition(":")
        response.headers.add(name, value.strip())
    return response.serialize()


def run_timers(layer: TransactionLayer, until: float) -> list[tuple[float, Request | Response, Destination]]:
    """Step the fake clock from deadline to deadline up to ``until``: what was sent, and when."""
    out: list[tuple[float, Request | Response, Destination]] = []
    while (deadline := layer.get_timer()) is not None and deadline <= until:
        layer.handle_timer(deadline)
        out += [(deadline, msg, dest) for msg, dest in sent(layer)]
    return out


# -- received and rport (RFC 3261 section 18.2.1, RFC 3581 section 4) ----------------------------------


def test_received_added_when_sent_by_host_differs_from_the_source() -> None:
    layer = new_layer()
    event = receive_request(layer, wire(via="SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bK-a"))
    via = event.request.top_via
    assert via is not None
    assert via.received == "127.0.0.2" and "rport" not in via.params
    (trying,) = responses(layer)
    assert trying.top_via == via
    assert trying.headers.get("via") == "SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bK-a;received=127.0.0.2"


def test_received_added_for_a_host_name_in_sent_by() -> None:
    layer = new_layer()
    event = receive_request(layer, wire(via="SIP/2.0/UDP phone.example.com;branch=z9hG4bK-a"))
    assert event.request.top_via is not None and event.request.top_via.received == "127.0.0.2"


@pytest.mark.parametrize(
    "params",
    [";branch=z9hG4bK-a;rport", ";rport;branch=z9hG4bK-a", ";branch=z9hG4bK-a ;rport",
     ";branch=z9hG4bK-a;rport;received=192.0.2.99", ";branch=z9hG4bK-a;RPORT", ";branch=z9hG4bK-a;rport=7"],
)
def test_rport_filled_and_received_added_even_for_the_same_host(params: str) -> None:
    layer = new_layer()
    event = receive_request(layer, wire(via=f"{VIA}{params}"))
    via = event.request.top_via
    assert via is not None
    assert via.rport == 5062 and via.received == "127.0.0.2" and via.branch == "z9hG4bK-a"
    (trying,) = responses(layer)
    assert trying.top_via is not None and trying.top_via.rport == 5062
    assert trying.top_via.received == "127.0.0.2"


def test_neither_received_nor_rport_for_the_same_host_without_rport() -> None:
    layer = new_layer()
    data = wire(via=f"{VIA};branch=z9hG4bK-a")
    event = receive_request(layer, data)
    assert event.request.headers.get("via") == f"{VIA};branch=z9hG4bK-a"
    (trying,) = responses(layer)
    assert trying.headers.get("via") == f"{VIA};branch=z9hG4bK-a"


def test_stamping_keeps_the_other_values_of_the_top_via_line() -> None:
    layer = new_layer()
    proxy = "SIP/2.0/UDP 192.0.2.50;branch=z9hG4bK-proxy"
    event = receive_request(layer, wire(via=f"SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK-a;rport, {proxy}",
                                        more_vias=["SIP/2.0/UDP 192.0.2.60;branch=z9hG4bK-p2"]))
    assert [v.host for v in event.request.vias] == ["192.0.2.7", "192.0.2.50", "192.0.2.60"]
    (trying,) = responses(layer)
    vias = trying.vias
    assert [v.host for v in vias] == ["192.0.2.7", "192.0.2.50", "192.0.2.60"]
    assert vias[0].received == "127.0.0.2" and vias[0].rport == 5062 and vias[1] == parse_top_via(proxy)


def test_stamping_a_via_with_a_quoted_comma_adds_no_empty_value() -> None:
    layer = new_layer()
    event = receive_request(layer, wire(via='SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK-a;x="p,q"'))
    assert event.request.headers.get("via") == 'SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK-a;x="p,q";received=127.0.0.2'
    (trying,) = responses(layer)
    assert len(trying.vias) == 1 and trying.vias[0].params.get("x") == '"p,q"'


@settings(max_examples=200, deadline=None)
@given(
    host=st.sampled_from(["127.0.0.2", "192.0.2.7", "phone.example.com", "[::1]"]),
    port=st.one_of(st.none(), st.integers(1, 65535)),
    params=st.lists(st.sampled_from([";rport", ";branch=z9hG4bK-x", ";ttl=3", ";x=y", ";lr"]), unique=True),
    source_port=st.integers(1, 65535),
)
def test_stamp_property(host: str, port: int | None, params: list[str], source_port: int) -> None:
    text = f"SIP/2.0/UDP {host}" + (f":{port}" if port is not None else "") + "".join(params)
    via = parse_top_via(text)
    source = Destination("udp", "127.0.0.2", source_port)
    stamped = _stamp(via, source)
    again = parse_top_via(str(stamped))  # the stamped Via still parses
    assert again.host == via.host and again.port == via.port and again.branch == via.branch
    if ";rport" in params:
        assert again.rport == source_port and again.received == "127.0.0.2"
    elif host != "127.0.0.2":
        assert again.received == "127.0.0.2" and "rport" not in again.params
    else:
        assert stamped is via


@settings(max_examples=300, deadline=None)
@given(
    transport=st.sampled_from(["UDP", "TCP", "SCTP", "udp"]),
    host=st.sampled_from(["127.0.0.2", "192.0.2.7", "phone.example.com", "[::1]"]),
    port=st.one_of(st.none(), st.integers(1, 65535)),
    params=st.lists(st.sampled_from([";rport", ";branch=z9hG4bK-x", ";maddr=192.0.2.9", ";MADDR=[::9]",
                                     ";received=192.0.2.8", ";rport=7", ";RPORT", ";rportx", " ;x=y", ";lr"]),
                    unique=True),
    source=st.builds(Destination, st.sampled_from(["udp", "tcp", "UDP"]),
                     st.sampled_from(["127.0.0.2", "192.0.2.7", "::1", "[::1]"]), st.integers(1, 65535)),
)
def test_stamp_and_route_agrees_with_stamp_then_response_destination(
    transport: str, host: str, port: int | None, params: list[str], source: Destination
) -> None:
    text = f"SIP/2.0/{transport} {host}" + (f":{port}" if port is not None else "") + "".join(params)
    via = parse_top_via(text)
    stamped, destination = _stamp_and_route(via, source)
    expected = _stamp(via, source)
    assert stamped == expected and str(stamped) == str(expected)
    assert destination == response_destination(expected, source)


# -- where responses go (RFC 3261 section 18.2.2, RFC 3581 section 4) -------------------------------------


def via(text: str) -> Via:
    return parse_top_via(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bK-a;received=127.0.0.2;rport=40000",
         Destination("udp", "127.0.0.2", 40000)),
        ("SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bK-a;received=127.0.0.2", Destination("udp", "127.0.0.2", 5070)),
        ("SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK-a", Destination("udp", "127.0.0.2", 5070)),
        ("SIP/2.0/UDP 127.0.0.2;branch=z9hG4bK-a", Destination("udp", "127.0.0.2", 5060)),
        ("SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bK-a;maddr=127.0.0.9;received=127.0.0.2",
         Destination("udp", "127.0.0.9", 5070)),
        ("SIP/2.0/UDP 192.0.2.7;maddr=[::9];branch=z9hG4bK-a", Destination("udp", "::9", 5060)),
        ("SIP/2.0/TCP 192.0.2.7:5070;branch=z9hG4bK-a;received=127.0.0.2;rport=40000",
         Destination("tcp", "127.0.0.2", 5070)),
        ("SIP/2.0/TCP 127.0.0.2;branch=z9hG4bK-a", Destination("tcp", "127.0.0.2", 5060)),
        ("SIP/2.0/UDP [::1]:5070;branch=z9hG4bK-a", Destination("udp", "::1", 5070)),
        ("SIP/2.0/UDP [2001:db8::7];branch=z9hG4bK-a;received=::1;rport=5099", Destination("udp", "::1", 5099)),
        ("SIP/2.0/SCTP 127.0.0.2:5070;branch=z9hG4bK-a", Destination("udp", "127.0.0.2", 5070)),
        # A TLS Via on a datagram: answered over UDP where it came from (RFC 4475 3.3.5, bext01).
        ("SIP/2.0/TLS pbx.example.com:5071;branch=z9hG4bK-a;received=127.0.0.2;rport=40000",
         Destination("udp", "127.0.0.2", 40000)),
        ("SIP/2.0/TLS [::1];branch=z9hG4bK-a", Destination("udp", "::1", 5060)),
    ],
)
def test_response_destination_over_udp(text: str, expected: Destination) -> None:
    assert response_destination(via(text), PEER) == expected


def test_response_destination_reliable_source_is_the_same_connection() -> None:
    v = via("SIP/2.0/TCP 192.0.2.7:5070;branch=z9hG4bK-a;received=127.0.0.2;maddr=127.0.0.9")
    assert response_destination(v, PEER_TCP) is PEER_TCP


def test_responses_to_a_tcp_via_over_udp_go_over_tcp_to_received_at_the_sent_by_port() -> None:
    layer = new_layer()
    event = receive_request(layer, wire(via="SIP/2.0/TCP 192.0.2.7:5070;branch=z9hG4bK-a"))
    assert event.transaction.source == Destination("tcp", "127.0.0.2", 5070)
    ((trying, destination),) = sent(layer)
    assert isinstance(trying, Response) and trying.status == 100
    assert destination == Destination("tcp", "127.0.0.2", 5070)


def test_responses_over_tcp_go_back_on_the_connection() -> None:
    layer = new_layer()
    event = receive_request(layer, wire(via="SIP/2.0/TCP 192.0.2.7:5070;branch=z9hG4bK-a"), PEER_TCP)
    assert event.source == PEER_TCP and event.transaction.source == PEER_TCP
    ((_, destination),) = sent(layer)
    assert destination == PEER_TCP


def test_ipv6_source_and_sent_by() -> None:
    layer = new_layer()
    source = Destination("udp", "::1", 5062)
    event = receive_request(layer, wire(via="SIP/2.0/UDP [::1]:5062;branch=z9hG4bK-a;rport"), source)
    v = event.request.top_via
    assert v is not None and v.rport == 5062 and v.received == "::1"
    ((_, destination),) = sent(layer)
    assert destination == Destination("udp", "::1", 5062)


def test_ipv6_sent_by_without_rport_is_answered_at_the_sent_by_port() -> None:
    layer = new_layer()
    source = Destination("udp", "::1", 40000)
    event = receive_request(layer, wire(via="SIP/2.0/UDP [::1]:5062;branch=z9hG4bK-a"), source)
    v = event.request.top_via
    assert v is not None and v.host == "[::1]" and v.rport is None
    ((_, destination),) = sent(layer)
    assert destination == Destination("udp", "::1", 5062)


# -- INVITE server side: 100 Trying, retransmissions, ACK (RFC 3261 section 17.2.1, RFC 6026) ------------


def test_new_invite_gets_100_trying_with_timestamp_and_no_to_tag() -> None:
    layer = new_layer()
    event = receive_request(layer, wire(extra=["Timestamp: 54.3"]))
    ((trying, destination),) = sent(layer)
    assert isinstance(trying, Response) and trying.status == 100
    assert trying.to_tag is None and trying.headers.get("timestamp") == "54.3"
    assert destination == Destination("udp", "127.0.0.2", 5062)
    assert event.transaction.last_response is not None and event.transaction.last_response.status == 100
    assert len(layer) == 1


def test_retransmitted_invite_is_absorbed_and_the_100_resent() -> None:
    layer = new_layer()
    receive_request(layer, wire())
    assert statuses(layer) == [100]
    layer.receive(wire(), PEER, 0.4)
    assert layer.take_events() == []
    assert statuses(layer) == [100]
    assert layer.stats.retransmissions == 1 and layer.stats.received == 2


def test_retransmitted_invite_gets_the_latest_provisional() -> None:
    layer = new_layer()
    event = receive_request(layer, wire())
    sent(layer)
    layer.send_response(event.transaction, make_response(event.request, 180, to_tag="b1"), 0.1)
    sent(layer)
    layer.receive(wire(), PEER, 0.5)
    (ringing,) = responses(layer)
    assert ringing.status == 180 and ringing.to_tag == "b1"
    assert layer.take_events() == []


def test_ack_for_a_non_2xx_is_absorbed_by_the_transaction() -> None:
    layer = new_layer()
    event = receive_request(layer, wire())
    sent(layer)
    layer.send_response(event.transaction, make_response(event.request, 486, to_tag="b1"), 0.1)
    assert statuses(layer) == [486]
    ack = wire("ACK", to_tag="b1")
    layer.receive(ack, PEER, 0.2)
    assert layer.take_events() == [] and sent(layer) == []
    tx = event.transaction
    assert tx.state is InviteServerState.CONFIRMED
    layer.receive(ack, PEER, 0.3)  # a retransmitted ACK: absorbed in Confirmed
    assert layer.take_events() == [] and sent(layer) == []
    assert layer.get_timer() == pytest.approx(0.2 + 5.0)  # Timer I = T4
    layer.handle_timer(5.2)
    assert layer.take_events() == [TransactionEnded(tx)]
    assert len(layer) == 0


def test_non_2xx_retransmitted_until_ack_then_timer_h() -> None:
    layer = new_layer()
    event = receive_request(layer, wire())
    sent(layer)
    layer.send_response(event.transaction, make_response(event.request, 486, to_tag="b1"), 0.0)
    sent(layer)
    out = run_timers(layer, 40)
    times = [t for t, msg, _ in out if isinstance(msg, Response) and msg.status == 486]
    assert times[:5] == [0.5, 1.5, 3.5, 7.5, 11.5]
    events = layer.take_events()
    assert events == [TransactionTimedOut(event.transaction, "no ACK"), TransactionEnded(event.transaction)]
    assert len(layer) == 0


def test_ack_for_a_2xx_is_its_own_transaction_and_reaches_the_tu() -> None:
    layer = new_layer()
    event = receive_request(layer, wire())
    sent(layer)
    layer.send_response(event.transaction, make_response(event.request, 200, to_tag="b1"), 0.1)
    assert statuses(layer) == [200]
    layer.receive(wire("ACK", via=f"{VIA};branch=z9hG4bK-ack1", to_tag="b1"), PEER, 0.2)
    (ack,) = layer.take_events()
    assert isinstance(ack, AckReceived) and ack.request.method == "ACK" and ack.source == PEER
    assert sent(layer) == []


def test_ack_with_the_invite_branch_in_accepted_goes_up_too() -> None:
    layer = new_layer()
    event = receive_request(layer, wire())
    sent(layer)
    layer.send_response(event.transaction, make_response(event.request, 200, to_tag="b1"), 0.1)
    sent(layer)
    layer.receive(wire("ACK", to_tag="b1"), PEER, 0.2)
    (ack,) = layer.take_events()
    assert isinstance(ack, AckReceived)
    assert ack.source == event.transaction.source
    layer.receive(wire(), PEER, 0.3)  # an INVITE retransmission in Accepted: absorbed, the TU resends 2xx
    assert layer.take_events() == [] and sent(layer) == []
    layer.handle_timer(0.1 + 32)  # Timer L
    assert layer.take_events() == [TransactionEnded(event.transaction)]


def test_malformed_ack_in_accepted_is_dropped() -> None:
    layer = new_layer()
    event = receive_request(layer, wire())
    layer.send_response(event.transaction, make_response(event.request, 200, to_tag="b1"), 0.1)
    sent(layer)
    bad_ack = wire("ACK", to_tag="b1").replace(b"Max-Forwards: 70", b"Max-Forwards: lots")
    layer.receive(bad_ack, PEER, 0.2)
    assert layer.take_events() == [] and sent(layer) == []


def test_malformed_ack_without_transaction_is_dropped_without_answer() -> None:
    layer = new_layer()
    bad_ack = wire("ACK", to_tag="b1").replace(b"From: <sip:alice@127.0.0.2>", b"From: <sip:alice@127.0.0.2")
    layer.receive(bad_ack, PEER, 0.0)
    assert layer.take_events() == [] and sent(layer) == []
    assert layer.stats.malformed == 1


def test_2543_invite_retransmission_and_ack_without_magic_cookie() -> None:
    layer = new_layer()
    data = wire(via=f"{VIA};branch=old-style-1")
    event = receive_request(layer, data)
    sent(layer)
    layer.receive(data, PEER, 0.3)
    assert layer.take_events() == [] and statuses(layer) == [100]
    layer.send_response(event.transaction, make_response(event.request, 603, to_tag="b1"), 0.4)
    sent(layer)
    layer.receive(wire("ACK", via=f"{VIA};branch=old-style-1", to_tag="b1"), PEER, 0.5)
    assert layer.take_events() == [] and sent(layer) == []
    assert event.transaction.state is InviteServerState.CONFIRMED


# -- CANCEL (RFC 3261 section 9.2) ------------------------------------------------------------------


def test_cancel_for_a_pending_invite_gets_200_with_the_invite_to_tag() -> None:
    layer = new_layer()
    event = receive_request(layer, wire())
    layer.send_response(event.transaction, make_response(event.request, 180, to_tag="b1"), 0.1)
    sent(layer)
    layer.receive(wire("CANCEL"), PEER, 0.2)
    (ok,) = responses(layer)
    assert ok.status == 200 and ok.to_tag == "b1" and ok.cseq is not None and ok.cseq.method == "CANCEL"
    (cancelled,) = layer.take_events()
    assert isinstance(cancelled, CancelReceived)
    assert cancelled.invite is event.transaction and cancelled.request.method == "CANCEL"


def test_cancel_before_any_tagged_response_gets_a_tag_of_its_own() -> None:
    layer = new_layer()
    receive_request(layer, wire())
    sent(layer)
    layer.receive(wire("CANCEL"), PEER, 0.2)
    (ok,) = responses(layer)
    assert ok.status == 200 and ok.to_tag == "tag-1"
    assert [type(e) for e in layer.take_events()] == [CancelReceived]


def test_retransmitted_cancel_gets_the_same_200() -> None:
    layer = new_layer()
    receive_request(layer, wire())
    sent(layer)
    layer.receive(wire("CANCEL"), PEER, 0.2)
    first = responses(layer)
    layer.receive(wire("CANCEL"), PEER, 0.7)
    assert responses(layer)[0].serialize() == first[0].serialize()
    assert [type(e) for e in layer.take_events()] == [CancelReceived]


def test_cancel_after_the_final_response_is_answered_but_not_reported() -> None:
    layer = new_layer()
    event = receive_request(layer, wire())
    layer.send_response(event.transaction, make_response(event.request, 486, to_tag="b1"), 0.1)
    sent(layer)
    layer.receive(wire("CANCEL"), PEER, 0.2)
    (ok,) = responses(layer)
    assert ok.status == 200 and ok.to_tag == "b1"
    assert layer.take_events() == []


@pytest.mark.parametrize(
    "cancel",
    [wire("CANCEL", via=f"{VIA};branch=z9hG4bK-other"), wire("CANCEL", via=f"{VIA};branch=old-style-9")],
)
def test_cancel_matching_no_invite_gets_481(cancel: bytes) -> None:
    layer = new_layer()
    receive_request(layer, wire())
    sent(layer)
    layer.receive(cancel, PEER, 0.2)
    (refusal,) = responses(layer)
    assert refusal.status == 481 and refusal.to_tag == "tag-1"
    assert layer.take_events() == []


def test_cancel_for_an_ended_invite_gets_481() -> None:
    layer = new_layer()
    event = receive_request(layer, wire(), PEER_TCP)
    layer.send_response(event.transaction, make_response(event.request, 486, to_tag="b1"), 0.1)
    layer.receive(wire("ACK", to_tag="b1"), PEER_TCP, 0.2)  # Timer I is zero over TCP: the INVITE is gone
    sent(layer)
    assert only(layer.take_events(), TransactionEnded)
    layer.receive(wire("CANCEL"), PEER_TCP, 0.3)
    assert statuses(layer) == [481]


# -- merged requests (RFC 3261 section 8.2.2.2) ---------------------------------------------------------


def test_merged_request_gets_482() -> None:
    layer = new_layer()
    receive_request(layer, wire())
    sent(layer)
    layer.receive(wire(via="SIP/2.0/UDP 192.0.2.50;branch=z9hG4bK-forked"), PEER, 0.1)
    (refusal,) = responses(layer)
    assert refusal.status == 482 and refusal.to_tag == "tag-1"
    assert layer.take_events() == []


def test_same_cseq_in_another_dialog_or_with_a_to_tag_is_not_merged() -> None:
    layer = new_layer()
    receive_request(layer, wire())
    receive_request(layer, wire(via=f"{VIA};branch=z9hG4bK-2", from_tag="alice-2"))
    receive_request(layer, wire("INFO", via=f"{VIA};branch=z9hG4bK-3", to_tag="b1"))
    receive_request(layer, wire("INFO", via=f"{VIA};branch=z9hG4bK-4", to_tag="b1"))
    assert 482 not in statuses(layer)


def test_merge_memory_ends_with_the_transaction() -> None:
    layer = new_layer()
    event = receive_request(layer, wire("OPTIONS", to_tag=None), PEER_TCP)
    layer.send_response(event.transaction, make_response(event.request, 200, to_tag="b1"), 0.0)
    assert layer.take_events() == [TransactionEnded(event.transaction)]  # Timer J is zero over TCP
    receive_request(layer, wire("OPTIONS", via=f"{VIA};branch=z9hG4bK-again"), PEER_TCP, 1.0)


def test_merged_request_with_a_method_not_allowed_gets_405_first() -> None:
    """Section 8.2: the method is inspected (8.2.1) before merged requests are looked for (8.2.2.2)."""
    layer = new_layer()
    layer.receive(wire("REGISTER"), PEER, 0.0)
    layer.receive(wire("REGISTER", via="SIP/2.0/UDP 192.0.2.50;branch=z9hG4bK-forked"), PEER, 0.1)
    assert statuses(layer) == [405, 405]


def test_merged_request_with_an_unknown_extension_gets_482_before_420() -> None:
    layer = new_layer()
    receive_request(layer, wire())
    sent(layer)
    layer.receive(wire(via="SIP/2.0/UDP 192.0.2.50;branch=z9hG4bK-forked", extra=["Require: foo"]), PEER, 0.1)
    assert statuses(layer) == [482]


# -- section 8.2 refusals through the layer ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "status", "header", "value"),
    [
        (wire("REGISTER"), 405, "Allow", "INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, UPDATE, INFO, PRACK"),
        (wire("FROBNICATE"), 501, "Allow", "INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, UPDATE, INFO, PRACK"),
        (wire(uri="http://example.com/bob"), 416, None, None),
        (wire(extra=["Require: 100rel, timer"]), 420, "Unsupported", "100rel"),
        (wire(extra=["Content-Type: text/html"], body=b"<p>hi</p>"), 415, "Accept",
         "application/sdp, message/sipfrag, application/dtmf-relay, text/plain, multipart/mixed"),
        (wire(extra=["Accept: text/plain"]), 406, "Accept", "application/sdp"),
    ],
)
def test_section_8_2_refusals_carry_a_to_tag_and_their_header(
    data: bytes, status: int, header: str | None, value: str | None
) -> None:
    layer = new_layer()
    layer.receive(data, PEER, 0.0)
    assert layer.take_events() == []
    ((refusal, destination),) = sent(layer)
    assert isinstance(refusal, Response) and refusal.status == status
    assert refusal.to_tag == "tag-1" and destination == Destination("udp", "127.0.0.2", 5062)
    if header is not None:
        assert refusal.headers.get(header) == value
    assert len(layer) == 1  # the refusal lives in its transaction, to answer retransmissions
    layer.receive(data, PEER, 0.3)
    assert statuses(layer) == [status]


def test_refusal_in_a_dialog_keeps_the_request_to_tag() -> None:
    layer = new_layer()
    layer.receive(wire("INFO", to_tag="b7", extra=["Require: foo"]), PEER, 0.0)
    (refusal,) = responses(layer)
    assert refusal.status == 420 and refusal.to_tag == "b7"


# -- malformed messages (RFC 3261 section 8.2, RFC 4475) --------------------------------------------------


def test_malformed_request_with_a_routable_via_gets_400_with_a_reason() -> None:
    layer = new_layer()
    bad = wire().replace(b"To: <sip:bob@127.0.0.1>", b"To: <sip:bob@127.0.0.1")
    layer.receive(bad, PEER, 0.0)
    ((refusal, destination),) = sent(layer)
    assert isinstance(refusal, Response) and refusal.status == 400
    assert refusal.reason == "Bad Request (bad address: '<sip:bob@127.0.0.1')"
    assert destination == Destination("udp", "127.0.0.2", 5062)
    assert layer.take_events() == [] and layer.stats.malformed == 0  # answered in a transaction of its own
    assert len(layer) == 1
    layer.receive(bad, PEER, 0.3)  # the retransmission gets the same answer
    assert statuses(layer) == [400]
    layer.handle_timer(100.0)
    assert [type(e) for e in layer.take_events()] == [TransactionTimedOut, TransactionEnded]
    assert len(layer) == 0


def test_salvaged_400_copies_the_routing_headers() -> None:
    layer = new_layer()
    bad = wire(via="SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bK-b").replace(b"Content-Length: 0",
                                                                          b"Content-Length: 40")
    layer.receive(bad, PEER, 0.0)
    ((refusal, destination),) = sent(layer)
    assert isinstance(refusal, Response) and refusal.status == 400
    assert refusal.reason == "Bad Request (Content-Length larger than the message)"
    assert refusal.top_via is not None and refusal.top_via.received == "127.0.0.2"
    assert refusal.call_id == "call-1@127.0.0.2" and refusal.from_tag == "alice-1"
    assert destination == Destination("udp", "127.0.0.2", 5070)
    assert layer.stats.malformed == 1 and len(layer) == 0


def test_unparsable_request_missing_a_header_still_gets_400() -> None:
    layer = new_layer()
    layer.receive(wire().replace(b"Call-ID: call-1@127.0.0.2\r\n", b""), PEER, 0.0)
    ((data, destination),) = layer.take_datagrams()
    assert data.startswith(b"SIP/2.0 400 Bad Request (missing Call-ID header)\r\n")
    assert b"\r\nCall-ID:" not in data and destination == Destination("udp", "127.0.0.2", 5062)


def test_unsupported_version_gets_505() -> None:
    layer = new_layer()
    layer.receive(wire().replace(b"SIP/2.0\r\n", b"SIP/7.0\r\n", 1), PEER, 0.0)
    assert statuses(layer) == [505]


def test_bad_top_via_params_still_routable_gets_400() -> None:
    layer = new_layer()
    layer.receive(wire(via=f"{VIA};branch=z9hG4bK-b;received"), PEER, 0.0)
    ((refusal, destination),) = sent(layer)
    assert isinstance(refusal, Response) and refusal.status == 400
    assert destination == Destination("udp", "127.0.0.2", 5062)


@pytest.mark.parametrize(
    "via_value",
    [f'{VIA};branch="z9hG4bK,x', f'{VIA};branch=z9hG4bK"x, SIP/2.0/UDP 192.0.2.9', f'{VIA},;branch="'],
)
def test_broken_quotes_in_a_via_line_never_raise(via_value: str) -> None:
    layer = new_layer()
    layer.receive(wire(via=via_value), PEER, 0.0)
    for refusal in responses(layer):
        assert refusal.status == 400
    assert layer.take_events() == []


@pytest.mark.parametrize(
    "data",
    [
        wire(via="garbage"),
        wire(via="SIP/2.0/UDP"),
        b"INVITE sip:bob@127.0.0.1 SIP/2.0\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:b@c>\r\nCall-ID: x\r\n"
        b"CSeq: 1 INVITE\r\n\r\n",
        b"\x00\x01\x02",
        b"",
    ],
)
def test_malformed_request_with_an_unroutable_via_gets_nothing(data: bytes) -> None:
    layer = new_layer()
    layer.receive(data, PEER, 0.0)
    assert sent(layer) == [] and layer.take_events() == []
    assert layer.stats.malformed == 1


def test_unparsable_ack_gets_no_answer() -> None:
    """An ACK is never answered (RFC 3261 section 17.1.1.3; section 8.2.7: a stateless UAS ignores ACK)."""
    layer = new_layer()
    for data in (wire("ACK").replace(b"SIP/2.0\r\n", b"SIP/7.0\r\n", 1),
                 wire("ACK").replace(b"Call-ID: call-1@127.0.0.2\r\n", b"")):
        layer.receive(data, PEER, 0.0)
    assert sent(layer) == [] and layer.stats.malformed == 2


@pytest.mark.parametrize(
    "data",
    [
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-x\r\nFrom: <sip:a@b>;tag=1\r\n"
        b"To: <sip:b@c>\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-x\r\nFrom: <sip:a@b>;tag=1\r\n"
        b"To: <sip:b@c>\r\nCall-ID: x\r\nCSeq: one INVITE\r\nContent-Length: 0\r\n\r\n",
        b"SIP/7.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-x\r\n\r\n",
    ],
)
def test_malformed_response_gets_nothing(data: bytes) -> None:
    layer = new_layer()
    layer.receive(data, PEER, 0.0)
    assert sent(layer) == [] and layer.take_events() == []
    assert layer.stats.malformed == 1


_VALID = wire(extra=["Require: timer", "Accept: application/sdp"], body=SDP).replace(
    b"Content-Length", b"Content-Type: application/sdp\r\nContent-Length")


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_receive_never_raises_on_mangled_bytes(data: st.DataObject) -> None:
    """Bad bytes from the network become a response or a dropped message, never an exception."""
    raw = bytearray(_VALID)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["replace", "delete", "insert"]))
        char = data.draw(st.sampled_from(b';,"<>: \t\r\n=@\x00\xffa0'))
        if action == "replace":
            raw[at] = char
        elif action == "delete":
            del raw[at]
        else:
            raw.insert(at, char)
    layer = new_layer()
    for source in (PEER, PEER_TCP):
        layer.receive(bytes(raw), source, 0.0)
        for out, _ in layer.take_datagrams():
            assert out.startswith(b"SIP/2.0 ")
        layer.take_events()
    layer.handle_timer(100.0)


# -- responses to our requests ------------------------------------------------------------------------


def test_response_matched_to_its_client_transaction() -> None:
    layer = new_layer()
    request = our_request()
    tx = layer.send_request(request, NEXT_HOP, 0.0)
    ((msg, destination),) = sent(layer)
    assert isinstance(msg, Request) and destination == NEXT_HOP
    layer.receive(answer(request, 200), NEXT_HOP, 0.1)
    (received, *_) = layer.take_events()
    assert isinstance(received, ResponseReceived) and received.transaction is tx
    assert received.response.status == 200
    layer.receive(answer(request, 200), NEXT_HOP, 0.2)  # a retransmission in Completed: absorbed
    assert layer.take_events() == []
    layer.handle_timer(0.1 + 5.0)  # Timer K = T4
    assert layer.take_events() == [TransactionEnded(tx)]
    assert len(layer) == 0


def test_stray_response_is_dropped_and_counted() -> None:
    layer = new_layer()
    request = our_request()
    layer.receive(answer(request, 200), NEXT_HOP, 0.0)
    layer.receive(answer(our_request("INVITE"), 180), NEXT_HOP, 0.0)
    layer.receive(answer(our_request("INVITE"), 486), NEXT_HOP, 0.0)
    assert layer.take_events() == [] and sent(layer) == []
    assert layer.stats.stray_responses == 3


def test_stray_2xx_to_invite_goes_up() -> None:
    layer = new_layer()
    layer.receive(answer(our_request("INVITE"), 200), NEXT_HOP, 0.0)
    (stray,) = layer.take_events()
    assert isinstance(stray, StrayResponse) and stray.response.status == 200
    assert layer.stats.stray_responses == 0


def test_malformed_stray_2xx_is_dropped() -> None:
    layer = new_layer()
    data = answer(our_request("INVITE"), 200).replace(b"Call-ID: out-1@127.0.0.1", b"Call-ID: two words")
    layer.receive(data, NEXT_HOP, 0.0)
    assert layer.take_events() == [] and layer.stats.malformed == 1


def test_malformed_response_to_a_transaction_is_dropped_but_absorbed() -> None:
    layer = new_layer()
    request = our_request()
    tx = layer.send_request(request, NEXT_HOP, 0.0)
    sent(layer)
    data = answer(request, 200).replace(b"Call-ID: out-1@127.0.0.1", b"Call-ID: two words")
    layer.receive(data, NEXT_HOP, 0.1)
    assert layer.take_events() == []
    assert not tx.terminated


def test_invite_client_non_2xx_is_acked_and_timer_d_ends_it() -> None:
    layer = new_layer()
    request = our_request("INVITE", body=SDP)
    tx = layer.send_request(request, NEXT_HOP, 0.0)
    sent(layer)
    layer.receive(answer(request, 100, to_tag=None), NEXT_HOP, 0.1)
    layer.receive(answer(request, 486), NEXT_HOP, 0.2)
    assert [e.response.status for e in layer.take_events() if isinstance(e, ResponseReceived)] == [100, 486]
    ((ack, destination),) = sent(layer)
    assert isinstance(ack, Request) and ack.method == "ACK" and ack.to_tag == "peer-tag"
    assert destination == NEXT_HOP
    layer.receive(answer(request, 486), NEXT_HOP, 0.3)  # retransmitted 486: the ACK again, nothing for the TU
    assert layer.take_events() == [] and len(sent(layer)) == 1
    layer.handle_timer(0.2 + 32)  # Timer D
    assert layer.take_events() == [TransactionEnded(tx)]


def test_invite_client_2xx_and_retransmissions_until_timer_m() -> None:
    layer = new_layer()
    request = our_request("INVITE", body=SDP)
    tx = layer.send_request(request, NEXT_HOP, 0.0)
    sent(layer)
    layer.receive(answer(request, 200), NEXT_HOP, 0.1)
    layer.receive(answer(request, 200), NEXT_HOP, 0.6)
    events = layer.take_events()
    assert [type(e) for e in events] == [ResponseReceived, ResponseReceived]
    assert sent(layer) == []  # the ACK for a 2xx is the TU's
    layer.handle_timer(0.1 + 32)
    assert layer.take_events() == [TransactionEnded(tx)]
    layer.receive(answer(request, 200), NEXT_HOP, 40)  # now a stray
    assert [type(e) for e in layer.take_events()] == [StrayResponse]


# -- sending ------------------------------------------------------------------------------------------


def test_large_request_to_a_udp_destination_goes_over_tcp() -> None:
    layer = new_layer()
    request = our_request("INVITE", body=SDP + b"a=x-padding:" + b"x" * UDP_SIZE_LIMIT + b"\r\n")
    tx = layer.send_request(request, NEXT_HOP, 0.0)
    ((msg, destination),) = sent(layer)
    assert destination == Destination("tcp", "127.0.0.3", 5060) and tx.destination == destination
    assert isinstance(msg, Request) and msg.top_via is not None and msg.top_via.transport == "TCP"
    assert msg.top_via.branch == "z9hG4bK-out1"
    assert layer.get_timer() == 32.0  # no Timer A over TCP: only B
    layer.receive(answer(request, 200), Destination("tcp", "127.0.0.3", 5060), 0.1)
    assert [type(e) for e in layer.take_events()] == [ResponseReceived]


def test_request_at_the_limit_stays_on_udp_one_byte_more_goes_over_tcp() -> None:
    layer = new_layer()
    for extra, transport in ((0, "udp"), (1, "tcp")):
        request = our_request("MESSAGE", branch=f"z9hG4bK-{transport}")
        request.body = b"x" * 1000
        request.body = b"x" * (UDP_SIZE_LIMIT - len(request.serialize()) + 1000 + extra)
        layer.send_request(request, NEXT_HOP, 0.0)
        ((msg, destination),) = sent(layer)
        assert len(msg.serialize()) == UDP_SIZE_LIMIT + extra and destination.transport == transport


def test_a_branch_can_only_be_used_once() -> None:
    layer = new_layer()
    layer.send_request(our_request(), NEXT_HOP, 0.0)
    with pytest.raises(TransactionError):
        layer.send_request(our_request(), NEXT_HOP, 0.0)


def test_send_stateless_sends_at_once_outside_any_transaction() -> None:
    layer = new_layer()
    ack = our_request("ACK")
    layer.send_stateless(ack, NEXT_HOP)
    ((msg, destination),) = sent(layer)
    assert isinstance(msg, Request) and msg.method == "ACK" and destination == NEXT_HOP
    assert len(layer) == 0 and layer.stats.sent == 1


# -- stateless OPTIONS (RFC 3261 section 8.2.7, 11.2) ---------------------------------------------------


def ua_layer() -> TransactionLayer:
    return UserAgent(RandomIds("127.0.0.1"), UaSettings()).layer


def test_stateless_options_answered_with_200_and_no_transaction() -> None:
    layer = ua_layer()
    options = wire("OPTIONS", via=f"{VIA};branch=z9hG4bK-o1;rport")
    layer.receive(options, PEER, 0.0)
    ((ok, destination),) = sent(layer)
    assert isinstance(ok, Response) and ok.status == 200 and ok.to_tag
    assert ok.headers.get("Allow") and ok.headers.get("Accept")
    assert destination == PEER
    assert len(layer) == 0 and layer.get_timer() is None and layer.take_events() == []
    layer.receive(options, PEER, 1.0)
    ((again, _),) = sent(layer)
    assert isinstance(again, Response) and again.to_tag == ok.to_tag
    layer.receive(wire("OPTIONS", via=f"{VIA};branch=z9hG4bK-o2;rport"), PEER, 2.0)
    ((other, _),) = sent(layer)
    assert isinstance(other, Response) and other.to_tag != ok.to_tag


def test_stateless_options_refusal_has_the_same_stable_to_tag() -> None:
    """A stateless UAS makes its To tags so that the same request always gets the same tag (section 8.2.7),
    refusals included: every final response carries one (section 8.2.6.2)."""
    layer = ua_layer()
    options = wire("OPTIONS", via=f"{VIA};branch=z9hG4bK-o1", extra=["Require: foo"])
    layer.receive(options, PEER, 0.0)
    ((refusal, _),) = sent(layer)
    assert isinstance(refusal, Response) and refusal.status == 420 and refusal.headers.get("Unsupported") == "foo"
    assert refusal.to_tag
    layer.receive(options, PEER, 0.5)
    ((again, _),) = sent(layer)
    assert isinstance(again, Response) and again.to_tag == refusal.to_tag
    assert len(layer) == 0


def test_options_in_a_dialog_is_not_stateless() -> None:
    layer = ua_layer()
    event = receive_request(layer, wire("OPTIONS", to_tag="b1"))
    assert event.request.method == "OPTIONS" and len(layer) == 1


def test_malformed_stateless_options_gets_400() -> None:
    layer = ua_layer()
    layer.receive(wire("OPTIONS").replace(b"CSeq: 1 OPTIONS", b"CSeq: x OPTIONS"), PEER, 0.0)
    assert statuses(layer) == [400]


# -- timers through the layer (RFC 3261 section 17, Table 4) --------------------------------------------


def test_invite_over_udp_retransmitted_on_timer_a_then_timer_b() -> None:
    layer = new_layer()
    tx = layer.send_request(our_request("INVITE"), NEXT_HOP, 0.0)
    sent(layer)
    assert layer.get_timer() == 0.5
    out = run_timers(layer, 100)
    assert [t for t, _, _ in out] == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert all(isinstance(m, Request) and m.method == "INVITE" for _, m, _ in out)
    assert layer.take_events() == [TransactionTimedOut(tx, "no response"), TransactionEnded(tx)]
    assert layer.get_timer() is None and len(layer) == 0


def test_non_invite_retransmissions_capped_at_t2_then_timer_f() -> None:
    layer = new_layer()
    tx = layer.send_request(our_request("OPTIONS"), NEXT_HOP, 0.0)
    sent(layer)
    out = run_timers(layer, 100)
    times = [t for t, _, _ in out]
    assert times[:6] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5]
    assert all(b - a == 4.0 for a, b in itertools.pairwise(times[3:]))
    assert layer.take_events() == [TransactionTimedOut(tx, "no response"), TransactionEnded(tx)]


def test_late_handle_timer_fires_everything_due() -> None:
    layer = new_layer()
    layer.send_request(our_request("INVITE"), NEXT_HOP, 0.0)
    sent(layer)
    layer.handle_timer(10.0)
    assert len(sent(layer)) == 4  # Timer A at 0.5, 1.5, 3.5 and 7.5
    assert layer.get_timer() == 15.5


def test_handle_timer_before_any_deadline_does_nothing() -> None:
    layer = new_layer()
    layer.send_request(our_request("INVITE"), NEXT_HOP, 0.0)
    sent(layer)
    layer.handle_timer(0.4)
    assert sent(layer) == [] and layer.get_timer() == 0.5


def test_provisional_moves_the_deadline_and_stale_entries_are_skipped() -> None:
    layer = new_layer()
    request = our_request("OPTIONS")
    tx = layer.send_request(request, NEXT_HOP, 0.0)
    sent(layer)
    layer.receive(answer(request, 180), NEXT_HOP, 0.2)  # Proceeding: E keeps running, a new heap entry
    layer.receive(answer(request, 180), NEXT_HOP, 0.3)
    assert layer.get_timer() == 0.5
    layer.receive(answer(request, 200), NEXT_HOP, 0.4)  # Completed: only K
    assert layer.get_timer() == pytest.approx(5.4)
    layer.handle_timer(1.0)
    assert sent(layer) == []
    layer.handle_timer(5.4)
    assert layer.take_events()[-1] == TransactionEnded(tx)
    assert layer.get_timer() is None


def test_server_non_invite_ends_after_timer_j() -> None:
    layer = new_layer()
    event = receive_request(layer, wire("INFO", to_tag="b1"))
    layer.send_response(event.transaction, make_response(event.request, 200), 1.0)
    assert statuses(layer) == [200]
    layer.receive(wire("INFO", to_tag="b1"), PEER, 2.0)  # retransmission: the 200 again
    assert statuses(layer) == [200]
    assert layer.get_timer() == 33.0
    layer.handle_timer(33.0)
    assert layer.take_events() == [TransactionEnded(event.transaction)]


def test_transport_error_fails_the_transactions_to_that_destination() -> None:
    layer = new_layer()
    first = layer.send_request(our_request("INVITE", branch="z9hG4bK-a"), NEXT_HOP, 0.0)
    second = layer.send_request(our_request("OPTIONS", branch="z9hG4bK-b"), NEXT_HOP, 0.0)
    elsewhere = layer.send_request(our_request("OPTIONS", branch="z9hG4bK-c"), Destination("udp", "127.0.0.4", 5060),
                                   0.0)
    sent(layer)
    layer.transport_error(NEXT_HOP, 0.1)
    events = layer.take_events()
    reason = "cannot reach udp:127.0.0.3:5060"
    assert events == [TransactionTimedOut(first, reason), TransactionEnded(first),
                      TransactionTimedOut(second, reason), TransactionEnded(second)]
    assert not elsewhere.terminated and len(layer) == 1


def test_every_transaction_kind_is_a_client_or_server_one() -> None:
    layer = new_layer()
    tx = layer.send_request(our_request("INVITE"), NEXT_HOP, 0.0)
    event = receive_request(layer, wire())
    assert isinstance(tx, InviteClientTransaction) and isinstance(tx, ClientTransaction)
    assert isinstance(event.transaction, ServerTransaction)
    assert len(layer) == 2


# -- overload: stateless 503 for new INVITEs (RFC 3261 sections 8.2.7, 21.5.4; RFC 7339 section 3) ---------


def shedding_layer(retry_after: int = 2, admit: float = 0.0) -> TransactionLayer:
    layer = new_layer(stable_tag=RandomIds("127.0.0.1").stable_tag)
    layer.shed_retry_after = retry_after
    layer.admit = admit
    return layer


def test_an_overloaded_layer_answers_a_new_invite_503_with_retry_after_and_keeps_nothing() -> None:
    layer = shedding_layer()
    layer.receive(wire(), PEER, 0.0)
    assert layer.take_events() == [] and len(layer) == 0
    ((response, destination),) = sent(layer)
    assert isinstance(response, Response) and response.status == 503
    assert response.headers.get("retry-after") == "2" and response.to_tag
    assert destination == PEER and layer.shed == 1 and layer.get_timer() is None


def test_a_retransmitted_shed_invite_gets_the_same_503_and_its_ack_is_dropped() -> None:
    layer = shedding_layer()
    layer.receive(wire(), PEER, 0.0)
    layer.receive(wire(), PEER, 0.5)
    first, second = responses(layer)
    assert first.serialize() == second.serialize(), "a stateless answer is the same for every copy (8.2.7)"
    ack = wire("ACK", to_tag=first.to_tag)
    layer.receive(ack, PEER, 0.6)
    assert [type(e).__name__ for e in layer.take_events()] == ["AckReceived"], "the TU drops it: no dialog"
    assert layer.take_datagrams() == [] and len(layer) == 0


def test_retry_after_zero_sheds_without_the_header() -> None:
    layer = shedding_layer(retry_after=0)
    layer.receive(wire(), PEER, 0.0)
    (response,) = responses(layer)
    assert response.status == 503 and response.headers.get("retry-after") is None


def test_while_shedding_admitted_work_goes_on() -> None:
    """Retransmissions of an INVITE admitted before, in-dialog requests, CANCEL, BYE and OPTIONS are
    handled as usual: only new calls are refused."""
    layer = new_layer(stable_tag=RandomIds("127.0.0.1").stable_tag)
    receive_request(layer, wire())
    assert statuses(layer) == [100]
    layer.admit = 0.0
    layer.receive(wire(), PEER, 0.3)
    assert statuses(layer) == [100] and layer.take_events() == [], "the admitted INVITE's retransmission"
    layer.receive(wire("CANCEL", cseq_method="CANCEL"), PEER, 0.4)
    assert [type(e).__name__ for e in layer.take_events()] == ["CancelReceived"]
    assert statuses(layer) == [200]
    receive_request(layer, wire(via=f"{VIA};branch=z9hG4bK-re", to_tag="ours", cseq=2), now=0.5)
    receive_request(layer, wire("BYE", via=f"{VIA};branch=z9hG4bK-bye", to_tag="ours", cseq=3), now=0.6)
    receive_request(layer, wire("OPTIONS", via=f"{VIA};branch=z9hG4bK-opt", call_id="o@x"), now=0.7)
    assert layer.shed == 0


def test_a_malformed_invite_still_gets_its_400_while_shedding() -> None:
    layer = shedding_layer()
    layer.receive(wire(extra=["Max-Forwards: x"]).replace(b"Max-Forwards: 70\r\n", b""), PEER, 0.0)
    (response,) = responses(layer)
    assert response.status == 400 and layer.shed == 0


def test_admitting_again_creates_transactions_again() -> None:
    layer = shedding_layer()
    layer.receive(wire(), PEER, 0.0)
    layer.take_datagrams()
    layer.admit = 1.0
    receive_request(layer, wire(via=f"{VIA};branch=z9hG4bK-inv2", call_id="call-2@127.0.0.2"), now=1.0)
    assert statuses(layer) == [100] and layer.shed == 1


def test_a_share_of_new_invites_is_admitted_evenly() -> None:
    layer = shedding_layer(admit=0.25)
    admitted = []
    for n in range(12):
        layer.receive(wire(via=f"{VIA};branch=z9hG4bK-share{n}", call_id=f"share-{n}@127.0.0.2"), PEER, 0.0)
        admitted.append(bool(layer.take_events()))
        layer.take_datagrams()
    assert admitted == [False, False, False, True] * 3 and layer.shed == 9


# -- retransmissions absorbed without parsing (issue 12) ---------------------------------------------------


def test_a_byte_identical_retransmission_is_absorbed_without_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    layer = new_layer()
    receive_request(layer, wire())
    assert statuses(layer) == [100]

    def no_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr("b2bua.sip.layer.parse_message", no_parse)
    layer.receive(wire(), PEER, 0.4)
    assert layer.take_events() == [] and statuses(layer) == [100]
    assert layer.stats.retransmissions == 1


def test_the_same_bytes_from_another_source_are_parsed_and_matched_as_usual() -> None:
    layer = new_layer()
    receive_request(layer, wire())
    layer.take_datagrams()
    layer.receive(wire(), Destination("udp", "127.0.0.9", 5062), 0.4)
    assert layer.take_events() == [] and statuses(layer) == [100], "still the same transaction (by branch)"


def test_the_bytes_are_forgotten_with_their_transaction() -> None:
    layer = new_layer()
    event = receive_request(layer, wire("OPTIONS", call_id="o-1@127.0.0.2", to_tag="t"))
    layer.send_response(event.transaction, make_response(event.request, 200), 0.0)
    layer.take_datagrams()
    run_timers(layer, 40.0)  # Timer J: the transaction ends 64*T1 after its answer
    assert len(layer) == 0
    layer.take_events()
    layer.receive(wire("OPTIONS", call_id="o-1@127.0.0.2", to_tag="t"), PEER, 41.0)
    assert [type(e).__name__ for e in layer.take_events()] == ["RequestReceived"], "a new transaction"


def test_over_tcp_the_same_bytes_are_parsed() -> None:
    layer = new_layer()
    receive_request(layer, wire(via="SIP/2.0/TCP 127.0.0.2:5062;branch=z9hG4bK-t1"), source=PEER_TCP)
    layer.take_datagrams()
    layer.receive(wire(via="SIP/2.0/TCP 127.0.0.2:5062;branch=z9hG4bK-t1"), PEER_TCP, 0.4)
    assert layer.take_events() == [] and layer.stats.retransmissions == 1


def test_a_malformed_final_answer_to_our_invite_is_dropped_before_its_ack_is_built() -> None:
    """Found by the stack fuzz target: a 486 whose To was garbage made the transaction send an ACK with that
    To (section 17.1.1.3 copies it). Dropped first, as if lost, it gets no ACK and no event."""
    layer = new_layer()
    invite = our_request("INVITE", branch="z9hG4bK-inv-out")
    layer.send_request(invite, NEXT_HOP, 0.0)
    layer.take_datagrams()
    bad = answer(invite, 486).replace(b"To: <sip:bob@127.0.0.3>", b"To: \x00\x00:bob@127.0.0.3>")
    layer.receive(bad, NEXT_HOP, 0.1)
    assert layer.take_datagrams() == [] and layer.take_events() == [] and layer.stats.malformed == 1
    layer.receive(answer(invite, 486), NEXT_HOP, 0.2)
    ((ack, _),) = sent(layer)
    assert isinstance(ack, Request) and ack.method == "ACK"


@pytest.mark.parametrize(("old", "new"), [(b"Call-ID: out-1@127.0.0.1", b"Call-ID: other@127.0.0.1"),
                                          (b"tag=ours-1", b"tag=theirs-9"), (b"CSeq: 1 INVITE", b"CSeq: 7 INVITE")])
def test_a_response_that_does_not_copy_its_request_is_dropped(old: bytes, new: bytes) -> None:
    """Found by the stack fuzz target: a 200 matching our INVITE by branch but with another Call-ID."""
    layer = new_layer()
    invite = our_request("INVITE", branch="z9hG4bK-inv-copy")
    layer.send_request(invite, NEXT_HOP, 0.0)
    layer.take_datagrams()
    layer.receive(answer(invite, 200).replace(old, new), NEXT_HOP, 0.1)
    assert layer.take_events() == [] and layer.take_datagrams() == [] and layer.stats.stray_responses == 1
    layer.receive(answer(invite, 200), NEXT_HOP, 0.2)
    assert [type(e).__name__ for e in layer.take_events()] == ["ResponseReceived"]


# -- LayerStats: what GET /metrics reads (b2bua/io/metrics.py) -------------------------------------------------


def test_messages_are_counted_by_method_and_status_class_with_unknown_methods_as_other() -> None:
    layer = ua_layer()
    layer.receive(wire("OPTIONS", via=f"{VIA};branch=z9hG4bK-o1;rport"), PEER, 0.0)  # stateless 200
    for n in range(3):
        layer.receive(wire(f"FOO{n}", via=f"{VIA};branch=z9hG4bK-f{n}"), PEER, 0.0)  # 501 each
    receive_request(layer, wire())  # INVITE: 100 Trying
    layer.take_datagrams()
    stats = layer.stats
    assert stats.requests_in == {"OPTIONS": 1, "other": 3, "INVITE": 1}
    assert stats.responses_out == {("OPTIONS", 2): 1, ("other", 5): 3, ("INVITE", 1): 1}
    assert stats.requests_out == {} and stats.responses_in == {}


def test_retransmissions_sent_by_timers_and_for_absorbed_requests() -> None:
    layer = new_layer()
    request = parse_message(wire("OPTIONS", via=f"{VIA};branch=z9hG4bK-c1"), check=False)
    assert isinstance(request, Request)
    layer.send_request(request, NEXT_HOP, 0.0)
    layer.handle_timer(0.5)  # timer E
    layer.handle_timer(1.5)
    assert layer.stats.requests_out == {"OPTIONS": 3} and layer.stats.retransmissions_sent == 2
    event = receive_request(layer, wire())
    layer.send_response(event.transaction, make_response(event.request, 180, to_tag="t"), 0.1)
    layer.take_datagrams()
    layer.receive(wire(), PEER, 0.4)  # absorbed, the 180 sent again
    assert statuses(layer) == [180]
    assert layer.stats.retransmissions == 1 and layer.stats.retransmissions_sent == 3
    assert layer.stats.requests_in == {"INVITE": 2}
    layer.send_again(b"ACK sip:bob@127.0.0.3 SIP/2.0\r\n\r\n", NEXT_HOP)
    layer.send_again(b"SIP/2.0 200 OK\r\n\r\n", NEXT_HOP)
    assert layer.stats.retransmissions_sent == 5 and layer.stats.requests_out == {"OPTIONS": 3, "ACK": 1}


def test_a_tu_sending_the_same_final_response_again_is_a_retransmission() -> None:
    layer = new_layer()
    event = receive_request(layer, wire())
    ok = make_response(event.request, 200, to_tag="t")
    layer.send_response(event.transaction, ok, 0.1)
    layer.send_response(event.transaction, ok, 0.6)  # the TU's 2xx retransmission (section 13.3.1.4)
    assert layer.stats.retransmissions_sent == 1
    assert layer.stats.responses_out == {("INVITE", 1): 1, ("INVITE", 2): 2}
