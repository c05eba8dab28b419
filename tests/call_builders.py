"""Calls on the in-memory network (tests/sipnet.py) for the call layer's unit tests: alice, bob (and carol)
behind the B2BUA service, their offers, dialling and answering, and reading what a flow reported. Shared
by test_b2bua, test_control, test_refer_flows, the flows' tests and test_io_control, which import it
rather than each other; and one of each UA event (test_ua_events, test_call_events)."""

from __future__ import annotations

from b2bua.call.b2bua import B2bua, B2buaSettings
from b2bua.call.control import Control
from b2bua.call.events import FlowEvent, FlowReport
from b2bua.sip import sdp
from b2bua.sip.address import Destination
from b2bua.sip.headers import parse_name_addr
from b2bua.sip.message import Request, Response
from b2bua.sip.session import Role, Session
from b2bua.sip.session_host import Outgoing
from b2bua.sip.timers import TimerSettings
from b2bua.sip.transaction_server import NonInviteServerTransaction
from b2bua.sip.ua import UaSettings, UserAgent
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
from b2bua.sip.uri import parse_sip_uri

from .sipnet import CountingIds, Network, Node

SDP_A = b"v=0\r\no=alice 10 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
SDP_B = b"v=0\r\no=bob 20 1 IN IP4 127.0.0.3\r\ns=-\r\nc=IN IP4 127.0.0.3\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n"


def rig(answer_timeout: float = 60.0) -> tuple[Network, Node, Node, Node, B2bua]:
    """alice and bob behind the B2BUA service (their outbound proxy) on the in-memory network."""
    net = Network()
    proxy = parse_sip_uri("sip:127.0.0.1:5080;lr")
    alice = net.add("alice", "127.0.0.2", UaSettings(outbound_proxy=proxy))
    bob = net.add("bob", "127.0.0.3", UaSettings(outbound_proxy=proxy))
    service = net.add("service", "127.0.0.1", port=5080)
    app = B2bua(service.ua, B2buaSettings(answer_timeout=answer_timeout))
    service.app = app
    return net, alice, bob, service, app


def take(node: Node, kind: type[UaEvent]) -> UaEvent:
    """The first event of ``kind`` ``node`` got, removed from its events."""
    for i, event in enumerate(node.events):
        if isinstance(event, kind):
            return node.events.pop(i)
    raise AssertionError(f"{node.name} has no {kind.__name__}: {[type(e).__name__ for e in node.events]}")


def dial(net: Network, alice: Node, bob: Node, body: bytes = SDP_A) -> tuple[Session, Session, Request]:
    """alice INVITEs bob through the service with ``body`` as her offer (none: a late offer)."""
    a = alice.ua.invite("sip:bob@127.0.0.3:5060", net.now, from_addr='"Alice" <sip:alice@127.0.0.2>',
                        to_addr="<sip:bob@127.0.0.3>", body=body)
    net.settle()
    incoming = take(bob, IncomingCall)
    assert isinstance(incoming, IncomingCall)
    return a, incoming.session, incoming.request


def reports() -> tuple[list[FlowReport], object]:
    """A list to collect a flow's reports in, and the sink that appends to it."""
    out: list[FlowReport] = []
    return out, out.append


def names(out: list[FlowReport]) -> list[str]:
    """Each report's name: an event's data, else its class (FlowEnded, FlowError)."""
    return [r.data if isinstance(r, FlowEvent) else type(r).__name__ for r in out]


def answered_call() -> tuple[Network, Node, Node, Control, Session, Session]:
    """alice -> service -> bob, answered by bob with SDP_B: the network, both phones, a Control, both sessions."""
    net, alice, bob, service, app = rig()
    a, b, _ = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    return net, alice, bob, Control(app), a, b


def answer_reinvites(net: Network, node: Node, session: Session, direction: str | None = None) -> list[bytes]:
    """Answer every re-INVITE ``node`` got: with the mirror direction, or ``direction`` when given."""
    offers = []
    for event in list(node.events):
        if isinstance(event, DialogRequest) and event.request.method == "INVITE":
            node.events.remove(event)
            offer = event.request.body
            offers.append(offer)
            mirror = {"sendonly": "recvonly", "inactive": "inactive", "sendrecv": "sendrecv", "recvonly": "sendonly"}
            wanted = direction or mirror[sdp.directions(offer)[0]]
            own = SDP_A if node.name == "alice" else SDP_B
            session.reply(event.transaction, 200, net.now, body=sdp.set_direction(own, wanted))
    return offers


def answer_incoming(net: Network, node: Node, body: bytes = SDP_B) -> Session:
    """Answer the INVITE ``node`` got with 200 and ``body``; its session."""
    incoming = take(node, IncomingCall)
    assert isinstance(incoming, IncomingCall)
    incoming.session.respond(200, net.now, body=body)
    return incoming.session


def three_phones() -> tuple[Network, Node, Node, Node, Control]:
    """alice, bob and carol behind the service (its proxy): the network, the phones, a Control."""
    net = Network()
    proxy = parse_sip_uri("sip:127.0.0.1:5080;lr")
    alice = net.add("alice", "127.0.0.2", UaSettings(outbound_proxy=proxy))
    bob = net.add("bob", "127.0.0.3", UaSettings(outbound_proxy=proxy))
    carol = net.add("carol", "127.0.0.4", UaSettings(outbound_proxy=proxy))
    service = net.add("service", "127.0.0.1", port=5080)
    app = B2bua(service.ua)
    service.app = app
    return net, alice, bob, carol, Control(app)


SOURCE = Destination("udp", "127.0.0.2", 5062)


def every_event() -> list[UaEvent]:
    """One of each UA event (ua_events.UaEvent), on one UAS session."""
    ua = UserAgent(CountingIds("t"))
    invite, _ = ua.new_request("INVITE", "sip:bob@127.0.0.3", from_addr="<sip:a@b>", to_addr="<sip:bob@c>")
    info, _ = ua.new_request("INFO", "sip:bob@127.0.0.3", from_addr="<sip:a@b>", to_addr="<sip:bob@c>")
    session = Session(ua, Role.UAS, invite, "tag")
    ringing, ok, busy = Response(180), Response(200), Response(486)
    tx = NonInviteServerTransaction(info, SOURCE, TimerSettings(), 0.0)
    return [
        IncomingCall(session, invite, SOURCE),
        CallProgress(session, ringing),
        CallAnswered(session, ok),
        CallFailed(session, 486, "Busy Here", busy),
        CallAcked(session, invite),
        CallCancelled(session, invite),
        DialogRequest(session, info, tx),
        DialogResponse(session, Outgoing(info), ok),
        DialogRequestFailed(session, Outgoing(info), 408, "no response"),
        CallEnded(session, "bye", by_remote=True),
    ]


def restart_service(net: Network, service: Node) -> tuple[Node, B2bua]:
    """A new service on ``service``'s address, as after a restart: nothing survives but what the test hands it."""
    node = net.add(service.name, service.address.host, port=service.address.port)
    app = B2bua(node.ua)
    node.app = app
    return node, app


def transferee(net: Network, node: Node, session: Session, *, final: int = 200,
               refer_status: int = 202, final_notify: bool = True) -> tuple[str, Session | None]:
    """Play the transferee: answer the REFER, NOTIFY 100, INVITE the Refer-To target, NOTIFY the result."""
    refer = take(node, DialogRequest)
    assert isinstance(refer, DialogRequest) and refer.request.method == "REFER"
    refer_to = refer.request.headers.get("Refer-To") or ""
    assert refer.request.headers.count("Refer-To") == 1 and refer.request.headers.get("Referred-By")
    session.reply(refer.transaction, refer_status, net.now)
    if refer_status >= 300:
        return refer_to, None
    event = f"refer;id={refer.request.cseq.number if refer.request.cseq else 0}"
    frag_headers = [("Event", event), ("Subscription-State", "active;expires=60")]
    session.request("NOTIFY", net.now, body=b"SIP/2.0 100 Trying\r\n", content_type="message/sipfrag",
                    headers=frag_headers)
    target = parse_name_addr(refer_to).uri_text
    new = node.ua.invite(target, net.now, from_addr="<sip:transferee@127.0.0.2>", to_addr=f"<{target}>", body=SDP_A)
    net.settle()
    if final_notify:
        status = "200 OK" if final == 200 else f"{final} Busy Here"
        session.request("NOTIFY", net.now, body=f"SIP/2.0 {status}\r\n".encode(), content_type="message/sipfrag",
                        headers=[("Event", event), ("Subscription-State", "terminated;reason=noresource")])
    return refer_to, new
