"""Builders for the transaction layer's unit tests: requests and responses as they come off the wire, the
two ends' addresses, and a fake clock stepped from deadline to deadline (RFC 3261 section 17). Shared by
test_transaction and the tests of each transaction machine, which import it rather than each other."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from b2bua.sip.address import Destination
from b2bua.sip.message import Headers, Request, Response
from b2bua.sip.parser import parse_message
from b2bua.sip.timers import TimerSettings
from b2bua.sip.transaction_client import ClientTransaction
from b2bua.sip.transaction_events import Action
from b2bua.sip.transaction_server import ServerTransaction

TIMERS = TimerSettings()
#: Where the client sends requests (the server's address) and where the server sends responses.
TO_SERVER_UDP = Destination("udp", "192.0.2.20", 5060)
TO_SERVER_TCP = Destination("tcp", "192.0.2.20", 5060)
TO_CLIENT_UDP = Destination("udp", "192.0.2.10", 5060)
TO_CLIENT_TCP = Destination("tcp", "192.0.2.10", 5060)

# -- message builders ---------------------------------------------------------------------------------


def make_request(
    method: str = "INVITE",
    *,
    branch: str | None = "z9hG4bK-tx1",
    cseq: int = 1,
    uri: str = "sip:bob@example.com",
    via: str = "SIP/2.0/UDP 192.0.2.10:5060",
    extra_vias: Sequence[str] = (),
    routes: Sequence[str] = (),
    from_tag: str = "alice-tag",
    to_tag: str | None = None,
    call_id: str = "call-1@192.0.2.10",
    extra: Sequence[str] = (),
    body: bytes = b"",
) -> Request:
    """A request as it comes off the wire (built from text, so headers keep raw values)."""
    branch_param = f";branch={branch}" if branch is not None else ""
    lines = [f"{method} {uri} SIP/2.0", f"Via: {via}{branch_param}"]
    lines += [f"Via: {v}" for v in extra_vias]
    lines += [f"Route: {r}" for r in routes]
    lines += [
        "Max-Forwards: 69",
        f'From: "Alice" <sip:alice@example.org>;tag={from_tag}',
        f"To: <{uri}>" + (f";tag={to_tag}" if to_tag else ""),
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        *extra,
        f"Content-Length: {len(body)}",
    ]
    msg = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    assert isinstance(msg, Request)
    return msg


def make_response(request: Request, status: int, *, to_tag: str | None = "bob-tag") -> Response:
    """The response a UAS sends to ``request`` (section 8.2.6.2): Vias, From, Call-ID, CSeq copied; To tagged."""
    h = Headers()
    for via in request.headers.get_all("via"):
        h.add("Via", via)
    h.add("From", request.headers.get("from") or "")
    to = request.headers.get("to") or ""
    if status != 100 and to_tag is not None and request.to_tag is None:
        to += f";tag={to_tag}"
    h.add("To", to)
    h.add("Call-ID", request.call_id or "")
    h.add("CSeq", request.headers.get("cseq") or "")
    return Response(status, "", h)


def ack_for_2xx(invite: Request, ok: Response, branch: str = "z9hG4bK-ack2xx") -> Request:
    """The ACK a UAC core sends for a 2xx: a transaction of its own, with a new branch (section 13.2.2.4)."""
    assert invite.cseq is not None
    h = Headers()
    h.add("Via", f"SIP/2.0/UDP 192.0.2.10:5060;branch={branch}")
    h.add("Max-Forwards", "70")
    h.add("From", invite.headers.get("from") or "")
    h.add("To", ok.headers.get("to") or "")
    h.add("Call-ID", invite.call_id or "")
    h.add("CSeq", f"{invite.cseq.number} ACK")
    return Request("ACK", invite.uri, h)


def run_timers(tx: ClientTransaction | ServerTransaction, until: float) -> list[tuple[float, Action]]:
    """Step a fake clock from deadline to deadline up to ``until``; each action with the time it happened."""
    out: list[tuple[float, Action]] = []
    while (deadline := tx.get_timer()) is not None and deadline <= until:
        out += [(deadline, action) for action in tx.handle_timer(deadline)]
    return out


def times_of(events: list[tuple[float, Action]], kind: type) -> list[float]:
    """The times of the actions of ``kind``."""
    return [t for t, action in events if isinstance(action, kind)]


def gaps(times: Sequence[float]) -> list[float]:
    """The intervals between successive times."""
    return [b - a for a, b in itertools.pairwise(times)]
