"""Dialogs (RFC 3261 section 12): creation at UAC and UAS, route sets, loose and strict routing, target
refresh, CSeq rules, ACK for 2xx, CANCEL and the non-2xx ACK, matching, and the round trip of every request."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from b2bua.errors import ParseError, RecordError
from b2bua.sip.dialog import (
    TRANSITIONS,
    Dialog,
    DialogId,
    DialogState,
    Role,
    build_cancel,
)
from b2bua.sip.message import Headers, Request, Response
from b2bua.sip.parser import parse_message
from b2bua.sip.uri import parse_uri

CALL_ID = "a84b4c76e66710@pc33.atlanta.com"
ALICE_FROM = '"Alice" <sip:alice@atlanta.com>;tag=1928301774'
ALICE_CONTACT = "<sip:alice@pc33.atlanta.com>"


def parse(*lines: str, body: bytes = b"") -> Request | Response:
    return parse_message(("\r\n".join(lines) + "\r\n\r\n").encode() + body)


def request(*lines: str, body: bytes = b"") -> Request:
    msg = parse(*lines, body=body)
    assert isinstance(msg, Request)
    return msg


def response(*lines: str) -> Response:
    msg = parse(*lines)
    assert isinstance(msg, Response)
    return msg


def alice_invite(*extra: str) -> Request:
    """The INVITE we send as UAC (RFC 3261 section 24.2, F1)."""
    return request(
        "INVITE sip:bob@biloxi.com SIP/2.0",
        "Via: SIP/2.0/UDP pc33.atlanta.com:5060;branch=z9hG4bKnashds8;rport",
        "Max-Forwards: 70",
        "Route: <sip:ss1.atlanta.com;lr>",
        f"From: {ALICE_FROM}",
        "To: Bob <sip:bob@biloxi.com>",
        f"Call-ID: {CALL_ID}",
        "CSeq: 314159 INVITE",
        f"Contact: {ALICE_CONTACT}",
        'Authorization: Digest username="alice", realm="atlanta.com", nonce="n", uri="sip:bob@biloxi.com", '
        'response="0123456789abcdef0123456789abcdef"',
        'Proxy-Authorization: Digest username="alice", realm="proxy", nonce="p", uri="sip:bob@biloxi.com", '
        'response="fedcba9876543210fedcba9876543210"',
        "Content-Type: application/sdp",
        *extra,
        body=b"v=0\r\n",
    )


def bob_response(status: str, *extra: str, to_tag: str | None = "a6c85cf", cseq: str = "314159 INVITE") -> Response:
    tag = f";tag={to_tag}" if to_tag is not None else ""
    return response(
        f"SIP/2.0 {status}",
        "Via: SIP/2.0/UDP pc33.atlanta.com:5060;branch=z9hG4bKnashds8;rport=5060",
        f"From: {ALICE_FROM}",
        f"To: Bob <sip:bob@biloxi.com>{tag}",
        f"Call-ID: {CALL_ID}",
        f"CSeq: {cseq}",
        *extra,
    )


def incoming_invite(*extra: str, contact: str | None = "<sip:alice@pc33.atlanta.com;transport=tcp>") -> Request:
    """An INVITE reaching us as UAS through three record-routing proxies."""
    return request(
        "INVITE sip:b2bua@192.0.2.10:5060 SIP/2.0",
        "Via: SIP/2.0/UDP p3.example.net;branch=z9hG4bK3",
        "Via: SIP/2.0/UDP p2.example.net;branch=z9hG4bK2, SIP/2.0/UDP p1.example.net;branch=z9hG4bK1",
        "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK0",
        "Max-Forwards: 67",
        "Record-Route: <sip:p3.example.net;lr>",
        'Record-Route: "Two" <sip:p2.example.net;lr;transport=tcp>;x=1, <sip:p1.example.net;lr>',
        f"From: {ALICE_FROM}",
        "To: <sip:b2bua@192.0.2.10>",
        f"Call-ID: {CALL_ID}",
        "CSeq: 101 INVITE",
        *([f"Contact: {contact}"] if contact is not None else []),
        *extra,
    )


def uas_dialog(*extra: str) -> Dialog:
    return Dialog.from_uas(incoming_invite(*extra), "b2b-tag", "<sip:b2bua@192.0.2.10:5060>")


def uac_dialog(*record_route: str, contact: str = "<sip:bob@192.0.2.4>") -> Dialog:
    ok = bob_response("200 OK", *(f"Record-Route: {rr}" for rr in record_route), f"Contact: {contact}")
    return Dialog.from_uac(alice_invite(), ok)


def in_dialog(method: str, cseq: int, *extra: str, to_tag: str = "b2b-tag", from_tag: str = "1928301774") -> Request:
    """A request Alice sends in the dialog of :func:`uas_dialog`."""
    return request(
        f"{method} sip:b2bua@192.0.2.10:5060 SIP/2.0",
        "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKin",
        f"From: <sip:alice@atlanta.com>;tag={from_tag}",
        f"To: <sip:b2bua@192.0.2.10>;tag={to_tag}",
        f"Call-ID: {CALL_ID}",
        f"CSeq: {cseq} {method}",
        *extra,
    )


def round_trip(req: Request) -> Request:
    """Serialize, parse again (the parser checks the mandatory headers) and check every URI."""
    again = parse_message(req.serialize())
    assert isinstance(again, Request)
    assert again == req
    parse_uri(again.uri)
    for route in again.routes:
        parse_uri(route.uri_text)
    assert again.headers.get("Content-Length") == str(len(req.body))
    return again


def build(
    dialog: Dialog, method: str, *, branch: str = "z9hG4bKnew1", via_host: str = "192.0.2.10", via_port: int = 5060,
    **kwargs: Any,
) -> Request:
    return round_trip(dialog.new_request(method, branch=branch, via_host=via_host, via_port=via_port, **kwargs))


# -- creation --------------------------------------------------------------------------------------------


def test_uac_route_set_is_the_record_route_of_the_2xx_reversed() -> None:
    dialog = uac_dialog("<sip:p3.biloxi.com;lr>, <sip:p2.biloxi.com;lr;foo=bar>", "<sip:p1.atlanta.com;lr>")
    assert dialog.route_set == ["<sip:p1.atlanta.com;lr>", "<sip:p2.biloxi.com;lr;foo=bar>", "<sip:p3.biloxi.com;lr>"]
    assert dialog.role is Role.UAC
    assert dialog.state is DialogState.CONFIRMED
    assert dialog.id == DialogId(CALL_ID, "1928301774", "a6c85cf")
    assert dialog.local_uri == ALICE_FROM
    assert dialog.remote_uri == "Bob <sip:bob@biloxi.com>;tag=a6c85cf"
    assert dialog.remote_target == "sip:bob@192.0.2.4"
    assert dialog.local_contact == ALICE_CONTACT
    assert (dialog.local_seq, dialog.remote_seq) == (314159, None)
    assert dialog.secure is False


def test_uas_route_set_keeps_the_record_route_order_and_parameters() -> None:
    dialog = uas_dialog()
    assert dialog.route_set == [
        "<sip:p3.example.net;lr>",
        '"Two" <sip:p2.example.net;lr;transport=tcp>;x=1',
        "<sip:p1.example.net;lr>",
    ]
    assert dialog.role is Role.UAS
    assert dialog.state is DialogState.EARLY
    assert dialog.id == DialogId(CALL_ID, "b2b-tag", "1928301774")
    assert dialog.local_uri == "<sip:b2bua@192.0.2.10>;tag=b2b-tag"
    assert dialog.remote_uri == ALICE_FROM
    assert dialog.remote_target == "sip:alice@pc33.atlanta.com;transport=tcp"
    assert dialog.local_contact == "<sip:b2bua@192.0.2.10:5060>"
    assert (dialog.local_seq, dialog.remote_seq) == (None, 101)


def test_no_record_route_means_an_empty_route_set() -> None:
    assert uac_dialog().route_set == []


def test_provisional_with_to_tag_creates_an_early_dialog_the_2xx_confirms() -> None:
    invite = alice_invite()
    ringing = bob_response("180 Ringing", "Record-Route: <sip:p1.atlanta.com;lr>", "Contact: <sip:bob@ringing.host>")
    dialog = Dialog.from_uac(invite, ringing)
    assert dialog.state is DialogState.EARLY
    assert dialog.route_set == ["<sip:p1.atlanta.com;lr>"]
    assert dialog.remote_target == "sip:bob@ringing.host"
    ok = bob_response(
        "200 OK", "Record-Route: <sip:p2.biloxi.com;lr>, <sip:p1.atlanta.com;lr>", "Contact: <sip:bob@192.0.2.4>"
    )
    dialog.confirm(ok)
    # Section 13.2.2.4: the route set is recomputed from the 2xx; the sequence numbers are not.
    assert dialog.state is DialogState.CONFIRMED
    assert dialog.route_set == ["<sip:p1.atlanta.com;lr>", "<sip:p2.biloxi.com;lr>"]
    assert dialog.remote_target == "sip:bob@192.0.2.4"
    assert dialog.local_seq == 314159
    # Once confirmed, the route set is fixed: a later 2xx with other Record-Route changes nothing.
    dialog.confirm(bob_response("200 OK", "Record-Route: <sip:elsewhere;lr>", "Contact: <sip:bob@moved>"))
    assert dialog.route_set == ["<sip:p1.atlanta.com;lr>", "<sip:p2.biloxi.com;lr>"]
    assert dialog.remote_target == "sip:bob@192.0.2.4"


def test_provisional_without_contact_keeps_the_request_uri_as_target_until_the_2xx() -> None:
    dialog = Dialog.from_uac(alice_invite(), bob_response("183 Session Progress"))
    assert dialog.remote_target == "sip:bob@biloxi.com"
    dialog.confirm(bob_response("200 OK"))
    assert dialog.remote_target == "sip:bob@biloxi.com"
    assert dialog.route_set == []


def test_uas_dialog_is_confirmed_by_the_2xx_it_sends_without_touching_the_route_set() -> None:
    dialog = uas_dialog()
    before = list(dialog.route_set)
    ok = response(
        "SIP/2.0 200 OK",
        "Via: SIP/2.0/UDP p3.example.net;branch=z9hG4bK3",
        f"From: {ALICE_FROM}",
        "To: <sip:b2bua@192.0.2.10>;tag=b2b-tag",
        f"Call-ID: {CALL_ID}",
        "CSeq: 101 INVITE",
        "Contact: <sip:b2bua@192.0.2.10:5060>",
    )
    dialog.confirm(ok)
    assert dialog.state is DialogState.CONFIRMED
    assert dialog.route_set == before
    assert dialog.remote_target == "sip:alice@pc33.atlanta.com;transport=tcp"


def test_responses_that_create_no_dialog() -> None:
    invite = alice_invite()
    with pytest.raises(ValueError, match="creates no dialog"):
        Dialog.from_uac(invite, bob_response("100 Trying", to_tag=None))
    with pytest.raises(ValueError, match="without a To tag"):
        Dialog.from_uac(invite, bob_response("180 Ringing", to_tag=None))
    with pytest.raises(ValueError, match="creates no dialog"):
        Dialog.from_uac(invite, bob_response("486 Busy Here"))


def test_2xx_without_to_tag_has_a_null_remote_tag() -> None:
    dialog = Dialog.from_uac(alice_invite(), bob_response("200 OK", "Contact: <sip:bob@192.0.2.4>", to_tag=None))
    assert dialog.id.remote_tag == ""
    bye = build(dialog, "BYE")
    assert bye.headers.get("To") == "Bob <sip:bob@biloxi.com>"
    assert bye.to_tag is None


def test_from_uac_rejects_requests_it_cannot_use() -> None:
    ok = bob_response("200 OK", "Contact: <sip:bob@192.0.2.4>")
    no_tag = request(
        "INVITE sip:bob@biloxi.com SIP/2.0", "Via: SIP/2.0/UDP h;branch=z9hG4bKx",
        "From: <sip:alice@atlanta.com>", "To: <sip:bob@biloxi.com>", f"Call-ID: {CALL_ID}", "CSeq: 1 INVITE",
    )
    with pytest.raises(ValueError, match="no From tag"):
        Dialog.from_uac(no_tag, ok)
    other_call = alice_invite()
    other_call.headers.set("Call-ID", "other")
    with pytest.raises(ValueError, match="another Call-ID"):
        Dialog.from_uac(other_call, ok)
    no_contact = alice_invite()
    no_contact.headers.remove("Contact")
    with pytest.raises(ValueError, match="no Contact"):
        Dialog.from_uac(no_contact, ok)
    assert Dialog.from_uac(no_contact, ok, local_contact="<sip:me@h>").local_contact == "<sip:me@h>"
    no_cseq = alice_invite()
    no_cseq.headers.remove("CSeq")
    with pytest.raises(ValueError, match="no CSeq"):
        Dialog.from_uac(no_cseq, ok)
    no_call_id = alice_invite()
    no_call_id.headers.remove("Call-ID")
    with pytest.raises(ValueError, match="no Call-ID"):
        Dialog.from_uac(no_call_id, ok)


def test_from_uas_needs_a_contact_and_good_uris() -> None:
    with pytest.raises(ParseError) as info:
        Dialog.from_uas(incoming_invite(contact=None), "t", "<sip:me@h>")
    assert info.value.status == 400
    with pytest.raises(ParseError):
        Dialog.from_uas(incoming_invite(contact="*"), "t", "<sip:me@h>")
    with pytest.raises(ParseError):
        Dialog.from_uas(incoming_invite(contact="<sip:bad host>"), "t", "<sip:me@h>")
    with pytest.raises(ParseError):
        Dialog.from_uas(incoming_invite("Record-Route: <sip:p0;bad=>"), "t", "<sip:me@h>")
    no_to = incoming_invite()
    no_to.headers.remove("To")
    with pytest.raises(ValueError, match="no To or CSeq"):
        Dialog.from_uas(no_to, "t", "<sip:me@h>")


def test_secure_only_over_tls_to_a_sips_request_uri() -> None:
    sips_invite = alice_invite()
    sips_invite.uri = "sips:bob@biloxi.com"
    ok = bob_response("200 OK", "Contact: <sips:bob@192.0.2.4>")
    assert Dialog.from_uac(sips_invite, ok, tls=True).secure is True
    assert Dialog.from_uac(sips_invite, ok).secure is False
    assert Dialog.from_uac(alice_invite(), ok, tls=True).secure is False
    incoming = incoming_invite()
    incoming.uri = "SIPS:b2bua@192.0.2.10"
    assert Dialog.from_uas(incoming, "t", "<sips:me@h>", tls=True).secure is True


# -- building requests: routing ---------------------------------------------------------------------------


def test_loose_routing_keeps_the_remote_target_in_the_request_uri() -> None:
    dialog = uac_dialog("<sip:p2.biloxi.com;lr>", "<sip:p1.atlanta.com;lr;ftag=x>")
    bye = build(dialog, "BYE")
    assert bye.uri == "sip:bob@192.0.2.4"
    assert bye.headers.get_all("Route") == ["<sip:p1.atlanta.com;lr;ftag=x>", "<sip:p2.biloxi.com;lr>"]
    assert dialog.next_hop() == "sip:p1.atlanta.com;lr;ftag=x"


def test_strict_routing_puts_the_first_route_in_the_request_uri_and_the_target_last() -> None:
    dialog = uac_dialog("<sip:p2.biloxi.com;lr>", "<sip:p1.atlanta.com;method=INVITE;transport=tcp?X=y>")
    bye = build(dialog, "BYE")
    # Section 12.2.1.1, with the method parameter and headers stripped (section 19.1.1 table).
    assert bye.uri == "sip:p1.atlanta.com;transport=tcp"
    assert bye.headers.get_all("Route") == ["<sip:p2.biloxi.com;lr>", "<sip:bob@192.0.2.4>"]
    assert dialog.next_hop() == "sip:p1.atlanta.com;transport=tcp"


def test_strict_router_uri_without_forbidden_parts_is_kept_verbatim() -> None:
    dialog = uac_dialog("<sip:P1.Atlanta.com:5070;maddr=192.0.2.7>")
    bye = build(dialog, "BYE")
    assert bye.uri == "sip:P1.Atlanta.com:5070;maddr=192.0.2.7"
    assert bye.headers.get_all("Route") == ["<sip:bob@192.0.2.4>"]


def test_no_route_set_sends_to_the_remote_target_without_route() -> None:
    dialog = uac_dialog()
    bye = build(dialog, "BYE")
    assert bye.uri == "sip:bob@192.0.2.4"
    assert "Route" not in bye.headers
    assert dialog.next_hop() == "sip:bob@192.0.2.4"


def test_uas_dialog_routes_through_the_record_route_in_order() -> None:
    dialog = uas_dialog()
    bye = build(dialog, "BYE")
    assert bye.uri == "sip:alice@pc33.atlanta.com;transport=tcp"
    assert [r.uri_text for r in bye.routes] == [
        "sip:p3.example.net;lr", "sip:p2.example.net;lr;transport=tcp", "sip:p1.example.net;lr",
    ]
    assert bye.headers.get("To") == ALICE_FROM
    assert bye.headers.get("From") == "<sip:b2bua@192.0.2.10>;tag=b2b-tag"


# -- building requests: headers and CSeq ------------------------------------------------------------------


def test_new_request_headers() -> None:
    dialog = uac_dialog("<sip:p1.atlanta.com;lr>")
    info = build(
        dialog, "INFO", body=b"Signal=5\r\n", content_type="application/dtmf-relay", user_agent="call-api/0.1",
        extra_headers=[("Info-Package", "dtmf"), ("X-Trace", "1")], transport="tcp", max_forwards=10,
    )
    assert info.serialize().split(b"\r\n")[:15] == [
        b"INFO sip:bob@192.0.2.4 SIP/2.0",
        b"Via: SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bKnew1;rport",
        b"Max-Forwards: 10",
        b"Route: <sip:p1.atlanta.com;lr>",
        b'From: "Alice" <sip:alice@atlanta.com>;tag=1928301774',
        b"To: Bob <sip:bob@biloxi.com>;tag=a6c85cf",
        b"Call-ID: a84b4c76e66710@pc33.atlanta.com",
        b"CSeq: 314160 INFO",
        b"User-Agent: call-api/0.1",
        b"Info-Package: dtmf",
        b"X-Trace: 1",
        b"Content-Type: application/dtmf-relay",
        b"Content-Length: 10",
        b"",
        b"Signal=5",
    ]
    assert "Contact" not in info.headers


@pytest.mark.parametrize("method", ["INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"])
def test_target_refresh_and_subscription_requests_carry_our_contact(method: str) -> None:
    extra = [("Event", "refer")] if method in ("SUBSCRIBE", "NOTIFY") else []
    req = build(uac_dialog(), method, extra_headers=extra)
    assert req.headers.get("Contact") == ALICE_CONTACT
    assert req.cseq is not None and req.cseq.method == method


def test_ipv6_sent_by_is_bracketed() -> None:
    req = build(uac_dialog(), "OPTIONS", via_host="2001:db8::10", via_port=5062)
    assert req.top_via is not None
    assert (req.top_via.host, req.top_via.port, req.top_via.branch) == ("[2001:db8::10]", 5062, "z9hG4bKnew1")
    assert req.top_via.wants_rport


def test_cseq_increments_by_one_and_is_stored() -> None:
    dialog = uac_dialog()
    numbers = [build(dialog, m, branch=f"z9hG4bK{i}").cseq for i, m in enumerate(["INFO", "UPDATE", "BYE"])]
    assert [(c.number, c.method) for c in numbers if c] == [(314160, "INFO"), (314161, "UPDATE"), (314162, "BYE")]
    assert dialog.local_seq == 314162
    assert build(dialog, "INFO", cseq=400000).cseq == (400000, "INFO")
    assert dialog.local_seq == 400000
    with pytest.raises(ValueError, match="not above"):
        dialog.new_request("INFO", branch="z9hG4bKx", via_host="h", via_port=1, cseq=400000)


def test_uas_dialog_starts_its_own_sequence_at_1_or_at_the_value_given() -> None:
    first = uas_dialog()
    assert build(first, "BYE").cseq == (1, "BYE")
    second = uas_dialog()
    assert build(second, "BYE", cseq=9000).cseq == (9000, "BYE")
    assert second.remote_seq == 101
    with pytest.raises(ValueError, match="below 2\\*\\*31"):
        uas_dialog().new_request("BYE", branch="z9hG4bKx", via_host="h", via_port=1, cseq=2**31)


def test_cseq_numbers_can_run_out() -> None:
    dialog = uac_dialog()
    dialog.local_seq = 2**32 - 1
    with pytest.raises(ValueError, match="used up"):
        dialog.new_request("BYE", branch="z9hG4bKx", via_host="h", via_port=1)


def test_bad_arguments_raise_and_use_no_cseq_number() -> None:
    dialog = uac_dialog()
    common: dict[str, Any] = {"via_host": "h", "via_port": 1}
    with pytest.raises(ValueError, match="ack_for"):
        dialog.new_request("ACK", branch="z9hG4bKx", **common)
    with pytest.raises(ValueError, match="build_cancel"):
        dialog.new_request("CANCEL", branch="z9hG4bKx", **common)
    with pytest.raises(ValueError, match="branch"):
        dialog.new_request("BYE", branch="1234", **common)
    with pytest.raises(ValueError, match="branch"):
        dialog.new_request("BYE", branch="z9hG4bK", **common)
    with pytest.raises(ValueError, match="content_type"):
        dialog.new_request("INFO", branch="z9hG4bKx", body=b"x", **common)
    with pytest.raises(ValueError, match="Max-Forwards"):
        dialog.new_request("BYE", branch="z9hG4bKx", max_forwards=256, **common)
    assert dialog.local_seq == 314159


# -- target refresh and remote CSeq -------------------------------------------------------------------------


def test_re_invite_refreshes_the_remote_target() -> None:
    dialog = uas_dialog()
    reinvite = in_dialog("INVITE", 102, "Contact: <sip:alice@198.51.100.7:5070>")
    assert DialogId.of_request(reinvite) == dialog.id
    assert dialog.check_remote_cseq(reinvite) is None
    assert dialog.update_target(reinvite) is True
    assert dialog.remote_target == "sip:alice@198.51.100.7:5070"
    assert build(dialog, "BYE").uri == "sip:alice@198.51.100.7:5070"


def test_requests_that_do_not_refresh_the_target() -> None:
    dialog = uas_dialog()
    target = dialog.remote_target
    assert dialog.update_target(in_dialog("INFO", 102, "Contact: <sip:alice@elsewhere>")) is False
    assert dialog.update_target(in_dialog("UPDATE", 103)) is False
    assert dialog.remote_target == target
    with pytest.raises(ParseError):
        dialog.update_target(in_dialog("UPDATE", 104, "Contact: <sip:alice@bad host>"))


def test_2xx_to_a_re_invite_refreshes_the_remote_target() -> None:
    dialog = uac_dialog()
    dialog.new_request("INVITE", branch="z9hG4bKre", via_host="h", via_port=1)
    ok = bob_response("200 OK", "Contact: <sip:bob@203.0.113.9>", cseq="314160 INVITE")
    assert dialog.update_target(ok) is True
    assert dialog.remote_target == "sip:bob@203.0.113.9"
    assert dialog.update_target(bob_response("200 OK", "Contact: <sip:bob@x>", cseq="314161 INFO")) is False
    assert dialog.update_target(bob_response("180 Ringing", "Contact: <sip:bob@y>", cseq="314160 INVITE")) is False
    assert dialog.update_target(Response(200, headers=Headers.of(("Contact", "<sip:bob@z>")))) is False
    assert dialog.remote_target == "sip:bob@203.0.113.9"


def test_remote_cseq_rules() -> None:
    dialog = uac_dialog()
    assert dialog.remote_seq is None
    bye_from_bob = request(
        "INFO sip:alice@pc33.atlanta.com SIP/2.0", "Via: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKb",
        "From: Bob <sip:bob@biloxi.com>;tag=a6c85cf", f"To: {ALICE_FROM}", f"Call-ID: {CALL_ID}", "CSeq: 7 INFO",
    )
    assert dialog.check_remote_cseq(bye_from_bob) is None  # the first remote CSeq is taken as it is
    assert dialog.remote_seq == 7

    dialog = uas_dialog()
    assert dialog.check_remote_cseq(in_dialog("INFO", 105)) is None  # gaps are fine
    assert dialog.remote_seq == 105
    assert dialog.check_remote_cseq(in_dialog("INFO", 105)) is None  # equal: only lower is out of order
    assert dialog.check_remote_cseq(in_dialog("BYE", 104)) == 500
    assert dialog.remote_seq == 105
    assert dialog.check_remote_cseq(in_dialog("ACK", 101)) is None  # ACK and CANCEL keep the INVITE's number
    assert dialog.check_remote_cseq(in_dialog("CANCEL", 101)) is None
    assert dialog.remote_seq == 105
    assert dialog.check_remote_cseq(Request("BYE", "sip:x@y")) == 400


# -- ACK, CANCEL ---------------------------------------------------------------------------------------------


def test_ack_for_2xx_keeps_the_cseq_number_takes_a_new_branch_routes_and_credentials() -> None:
    invite = alice_invite()
    ok = bob_response("200 OK", "Record-Route: <sip:p2.biloxi.com;lr>, <sip:p1.atlanta.com;lr>",
                      "Contact: <sip:bob@192.0.2.4>")
    dialog = Dialog.from_uac(invite, ok)
    ack = round_trip(dialog.ack_for(invite, ok, "z9hG4bKack1"))
    assert ack.method == "ACK"
    assert ack.uri == "sip:bob@192.0.2.4"
    assert ack.cseq == (314159, "ACK")
    assert ack.branch == "z9hG4bKack1" != invite.branch
    assert ack.top_via is not None and ack.top_via.sent_by == ("pc33.atlanta.com", 5060)
    assert ack.headers.get_all("Route") == ["<sip:p1.atlanta.com;lr>", "<sip:p2.biloxi.com;lr>"]
    assert ack.headers.get("Authorization") == invite.headers.get("Authorization")
    assert ack.headers.get("Proxy-Authorization") == invite.headers.get("Proxy-Authorization")
    assert ack.headers.get("To") == "Bob <sip:bob@biloxi.com>;tag=a6c85cf"
    assert ack.max_forwards == 70
    assert ack.body == b"" and "Content-Type" not in ack.headers and "Contact" not in ack.headers
    assert dialog.local_seq == 314159
    answer = round_trip(dialog.ack_for(invite, ok, "z9hG4bKack2", body=b"v=0\r\n", content_type="application/sdp"))
    assert answer.body == b"v=0\r\n" and answer.headers.get("Content-Type") == "application/sdp"


def test_ack_for_a_re_invite_uses_the_re_invite_cseq() -> None:
    dialog = uac_dialog()
    reinvite = dialog.new_request("INVITE", branch="z9hG4bKre", via_host="192.0.2.10", via_port=5060)
    ok = bob_response("200 OK", "Contact: <sip:bob@192.0.2.4>", cseq="314160 INVITE")
    ack = round_trip(dialog.ack_for(reinvite, ok, "z9hG4bKreack"))
    assert ack.cseq == (314160, "ACK")
    assert ack.top_via is not None and ack.top_via.sent_by == ("192.0.2.10", 5060)
    assert "Authorization" not in ack.headers


def test_ack_for_refuses_what_it_cannot_acknowledge() -> None:
    invite = alice_invite()
    ok = bob_response("200 OK", "Contact: <sip:bob@192.0.2.4>")
    dialog = Dialog.from_uac(invite, ok)
    with pytest.raises(ValueError, match="2xx to an INVITE"):
        dialog.ack_for(invite, bob_response("486 Busy Here"), "z9hG4bKa")
    with pytest.raises(ValueError, match="does not answer"):
        dialog.ack_for(invite, bob_response("200 OK", cseq="1 INVITE"), "z9hG4bKa")
    with pytest.raises(ValueError, match="another dialog"):
        dialog.ack_for(invite, bob_response("200 OK", to_tag="fork2"), "z9hG4bKa")
    no_via = alice_invite()
    no_via.headers.remove("Via")
    with pytest.raises(ValueError, match="no CSeq or Via"):
        dialog.ack_for(no_via, ok, "z9hG4bKa")
    early = Dialog.from_uac(invite, bob_response("180 Ringing"))
    with pytest.raises(ValueError, match="confirm"):
        early.ack_for(invite, ok, "z9hG4bKa")


def test_2xx_after_bye_can_still_be_acknowledged() -> None:
    invite = alice_invite()
    ok = bob_response("200 OK", "Contact: <sip:bob@192.0.2.4>")
    dialog = Dialog.from_uac(invite, ok)
    dialog.terminate()
    assert dialog.ack_for(invite, ok, "z9hG4bKlate").cseq == (314159, "ACK")


def test_cancel_copies_the_invite_as_section_9_1_says() -> None:
    invite = alice_invite("Via: SIP/2.0/UDP extra.host;branch=z9hG4bKsecond", "Route: <sip:ss2.atlanta.com;lr>")
    cancel = round_trip(build_cancel(invite))
    assert cancel.method == "CANCEL"
    assert cancel.uri == invite.uri
    assert cancel.headers.get_all("Via") == ["SIP/2.0/UDP pc33.atlanta.com:5060;branch=z9hG4bKnashds8;rport"]
    assert cancel.branch == invite.branch
    for name in ("From", "To", "Call-ID"):
        assert cancel.headers.get(name) == invite.headers.get(name)
    assert cancel.cseq == (314159, "CANCEL")
    assert cancel.headers.get_all("Route") == ["<sip:ss1.atlanta.com;lr>", "<sip:ss2.atlanta.com;lr>"]
    assert cancel.max_forwards == 70
    assert cancel.body == b""
    for absent in ("Content-Type", "Contact", "Authorization", "Proxy-Authorization"):
        assert absent not in cancel.headers
    ack = Request("ACK", "sip:bob@biloxi.com")
    with pytest.raises(ValueError, match="cannot be cancelled"):
        build_cancel(ack)
    no_cseq = alice_invite()
    no_cseq.headers.remove("CSeq")
    with pytest.raises(ValueError, match="no CSeq or Via"):
        build_cancel(no_cseq)


# -- state, matching, the table ------------------------------------------------------------------------------


def test_state_transitions(caplog: pytest.LogCaptureFixture) -> None:
    assert TRANSITIONS[DialogState.TERMINATED] == frozenset()
    with caplog.at_level(logging.DEBUG, logger="call_api.sip.dialog"):
        dialog = Dialog.from_uac(alice_invite(), bob_response("180 Ringing"))
        dialog.terminate()  # a non-2xx final answer ends the early dialog (section 12.3)
        dialog.terminate()
    assert dialog.state is DialogState.TERMINATED
    assert [r.getMessage() for r in caplog.records] == [
        f"dialog {CALL_ID} (uac): created -> early",
        f"dialog {CALL_ID} (uac): early -> terminated",
    ]
    with pytest.raises(ValueError, match="from terminated to confirmed"):
        dialog.confirm(bob_response("200 OK"))


def test_confirm_takes_only_this_dialogs_2xx() -> None:
    dialog = Dialog.from_uac(alice_invite(), bob_response("180 Ringing"))
    with pytest.raises(ValueError, match="only a 2xx"):
        dialog.confirm(bob_response("183 Session Progress"))
    with pytest.raises(ValueError, match="another dialog"):
        dialog.confirm(bob_response("200 OK", to_tag="fork2"))
    assert dialog.state is DialogState.EARLY


def test_matching_requests() -> None:
    dialog = uas_dialog()
    assert DialogId.of_request(in_dialog("BYE", 102)) == dialog.id
    assert DialogId.of_request(in_dialog("BYE", 102, to_tag="other")) != dialog.id
    assert DialogId.of_request(in_dialog("BYE", 102, from_tag="other")) != dialog.id
    assert DialogId.of_request(incoming_invite()) is None  # no To tag: not in a dialog


def test_dialog_id_needs_tags_and_call_id() -> None:
    no_call_id = Request("BYE", "sip:x@y", Headers.of(("To", "<sip:x@y>;tag=1"), ("From", "<sip:a@b>;tag=2")))
    assert DialogId.of_request(no_call_id) is None
    assert DialogId.of_request(in_dialog("BYE", 1)) == DialogId(CALL_ID, "b2b-tag", "1928301774")
    null_from = request(
        "BYE sip:b2bua@192.0.2.10 SIP/2.0", "Via: SIP/2.0/UDP h;branch=z9hG4bKx", "From: <sip:old@ua>",
        "To: <sip:b2bua@192.0.2.10>;tag=b2b-tag", f"Call-ID: {CALL_ID}", "CSeq: 2 BYE",
    )
    assert DialogId.of_request(null_from) == DialogId(CALL_ID, "b2b-tag", "")


# -- every built request survives the wire -------------------------------------------------------------------


@pytest.mark.parametrize("method", ["INVITE", "BYE", "UPDATE", "INFO", "OPTIONS", "PRACK", "REFER", "MESSAGE"])
@pytest.mark.parametrize(
    "record_route",
    [(), ("<sip:p1.atlanta.com;lr>",), ("<sip:p2;lr>", "<sip:p1.atlanta.com:5070;transport=udp>")],
    ids=["no-routes", "loose", "strict"],
)
def test_round_trip_of_built_requests(method: str, record_route: tuple[str, ...]) -> None:
    dialog = uac_dialog(*record_route)
    req = build(dialog, method)
    assert req.method == method
    assert req.call_id == CALL_ID
    assert req.from_tag == "1928301774" and req.to_tag == "a6c85cf"
    expected_route = list(reversed(record_route))
    if record_route and "lr" not in record_route[-1]:
        expected_route = [*expected_route[1:], "<sip:bob@192.0.2.4>"]
    assert req.headers.get_all("Route") == expected_route


def test_an_rfc_2543_invite_without_contact_targets_its_from() -> None:
    """RFC 4475 section 3.4.1: no magic cookie, no Contact, accepted; RFC 2543 sent later requests to From."""
    invite = request("INVITE sip:b2bua@192.0.2.10:5060 SIP/2.0", "Via: SIP/2.0/UDP pc33.atlanta.com",
                     f"From: {ALICE_FROM}", "To: <sip:b2bua@192.0.2.10>", f"Call-ID: {CALL_ID}",
                     "CSeq: 101 INVITE")
    dialog = Dialog.from_uas(invite, "t", "<sip:me@h>")
    assert invite.from_ is not None and dialog.remote_target == invite.from_.uri_text


# -- keeping a dialog across a restart -------------------------------------------------------------------


def _kept_dialog(local_seq: int | None = 7) -> Dialog:
    return Dialog(
        role=Role.UAS, id=DialogId("c@h", "ours", "theirs"), state=DialogState.CONFIRMED,
        local_uri="<sip:svc@10.0.0.1>;tag=ours", remote_uri="<sip:alice@10.0.0.2>;tag=theirs",
        remote_target="sip:alice@10.0.0.2:5062;transport=tcp", local_contact="<sip:svc@10.0.0.1:5060>",
        local_seq=local_seq, remote_seq=3, route_set=["<sip:p1;lr>", "<sip:p2;lr>"], secure=True,
    )


def test_a_dialog_record_survives_json_and_jumps_its_cseq() -> None:
    dialog = _kept_dialog()
    record = json.loads(json.dumps(dialog.to_record()))
    again = Dialog.from_record(record, cseq_jump=1000)
    assert again.local_seq == 1007
    again.local_seq = 7
    assert again.to_record() == dialog.to_record()
    assert Dialog.from_record(record).local_seq == 7


def test_a_dialog_that_sent_nothing_starts_past_the_jump() -> None:
    record = _kept_dialog(local_seq=None).to_record()
    assert Dialog.from_record(record).local_seq is None
    restored = Dialog.from_record(record, cseq_jump=1000)
    request = restored.new_request("BYE", branch="z9hG4bKx", via_host="10.0.0.1", via_port=5060)
    assert request.cseq is not None and request.cseq.number == 1001


@pytest.mark.parametrize(
    ("field_name", "value"),
    [("state", "early"), ("role", "proxy"), ("call_id", None), ("local_seq", -1), ("local_seq", True),
     ("local_seq", "7"), ("remote_seq", 2**32), ("route_set", "<sip:p1;lr>"), ("route_set", [1]),
     ("secure", 1), ("remote_target", 5)],
)
def test_a_bad_dialog_record_is_refused(field_name: str, value: object) -> None:
    record = _kept_dialog().to_record()
    record[field_name] = value
    with pytest.raises(RecordError, match="dialog record"):
        Dialog.from_record(record)


def test_a_dialog_record_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(RecordError):
        Dialog.from_record(["not", "a", "mapping"])  # type: ignore[arg-type]
