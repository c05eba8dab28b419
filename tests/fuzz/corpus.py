"""Seed inputs for the fuzz targets: real messages (RFC 4475, the benchmark's INVITE, our flows' SDP) and
JSON-RPC frames from docs/API.md's examples."""

from __future__ import annotations

import json

from benchmarks.messages import INVITE, SDP

from .. import rfc4475

_FRAMES = [
    {"jsonrpc": "2.0", "id": 1, "method": "CallStart", "params": {"caller": "sip:a@x", "callee": "sip:b@x"}},
    {"jsonrpc": "2.0", "id": "h", "method": "CallHold", "params": {"callid": "c@x", "leg": "caller"}},
    {"jsonrpc": "2.0", "method": "CallEnd", "params": {"callid": "c@x", "cmd_id": "taken"}},
    {"jsonrpc": "2.0", "id": 3, "method": "CallBlindTransfer",
     "params": {"callid": "c@x", "leg": "callee", "destination": "sip:c@x"}},
    {"jsonrpc": "2.0", "id": 4, "method": "CallAttendedTransfer",
     "params": {"callidA": "c@x", "legA": "caller", "callidB": "d@x", "legB": "callee"}},
    {"jsonrpc": "2.0", "id": None, "method": "CallUnhold", "params": {"callid": "c@x", "leg": "callee"}},
]


def seeds(target: str) -> list[bytes]:
    """The seed corpus of ``target``."""
    sip = [t.data for t in rfc4475.load()] + [INVITE]
    if target == "parser":
        return sip
    if target == "framing":
        return [b"\x05" + INVITE + INVITE, b"\x00\r\n\r\n" + INVITE] + [b"\x07" + m for m in sip]
    if target == "sdp":
        return [SDP, SDP.replace(b"a=sendrecv", b"a=recvonly"), SDP.replace(b"\r\n", b"\n")]
    if target == "jsonrpc":
        return [json.dumps(f).encode() for f in _FRAMES] + [json.dumps(_FRAMES).encode(), b"[]", b"{"]
    if target == "stack":
        return _stack_seeds()
    raise KeyError(target)


def _stack_seeds() -> list[bytes]:
    """Calls through the service on the in-memory network (tests/sipnet.py), recorded as the service
    received them (re-serialized from the network's log): an answered call hung up by the caller, one by
    the callee, a busy callee, a caller who cancels. The fuzz target replays them into an identical
    service (same deterministic ids), so the peers' answers match the branches and tags the service
    makes."""
    from b2bua.call.b2bua import B2bua, B2buaSettings
    from b2bua.sip.ua_events import IncomingCall
    from b2bua.sip.uri import parse_sip_uri

    from ..sipnet import Network
    from .targets import PEERS, SERVICE, encode

    sdp_a = b"v=0\r\no=alice 10 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    sdp_b = b"v=0\r\no=bob 20 1 IN IP4 127.0.0.3\r\ns=-\r\nc=IN IP4 127.0.0.3\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n"
    out = []
    for flow in ("caller hangs up", "callee hangs up", "busy", "cancel"):
        from b2bua.sip.ua import UaSettings

        net = Network()
        proxy = parse_sip_uri(f"sip:{SERVICE[0]}:{SERVICE[1]};lr")
        alice = net.add("alice", PEERS[0].host, UaSettings(outbound_proxy=proxy))
        bob = net.add("bob", PEERS[1].host, UaSettings(outbound_proxy=proxy))
        service = net.add("service", SERVICE[0], port=SERVICE[1])
        service.app = B2bua(service.ua, B2buaSettings())
        a = alice.ua.invite("sip:bob@127.0.0.3:5060", net.now, from_addr="<sip:alice@127.0.0.2>",
                            to_addr="<sip:bob@127.0.0.3>", body=sdp_a)
        net.settle()
        incoming = next(e for e in bob.events if isinstance(e, IncomingCall))
        if flow == "busy":
            incoming.session.respond(486, net.now)
        elif flow == "cancel":
            incoming.session.respond(180, net.now)
            net.settle()
            a.end(net.now)
        else:
            incoming.session.respond(200, net.now, body=sdp_b)
            net.settle()
            (a if flow == "caller hangs up" else incoming.session).end(net.now)
        net.settle(40)
        recorded: list[tuple[int, float, bytes]] = []
        last = 0.0
        for at, sender, target, msg in net.log:
            if target == "service":
                recorded.append((0 if sender == "alice" else 1, at - last, msg.serialize()))
                last = at
        out.append(encode(recorded))
    return out
