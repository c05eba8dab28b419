"""Tests for b2bua.sip.uas: the section 8.2 checks in order, responses built per section 8.2.6, and
400/505 salvaged from requests that do not parse (RFC 3261 section 8.2, RFC 4475 section 3.1.2)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from b2bua.errors import ParseError
from b2bua.sip.message import Headers, Request
from b2bua.sip.parser import parse_message
from b2bua.sip.uas import (
    DEFAULT_POLICY,
    UasPolicy,
    check_extensions_and_body,
    check_method_and_uri,
    check_request,
    header_fields,
    make_response,
    salvage_response,
)

from .rfc4475 import DATA

SDP = b"v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"


def request(
    method: str = "INVITE",
    *,
    uri: str = "sip:bob@127.0.0.1",
    to_tag: str | None = None,
    extra: Sequence[str] = (),
    body: bytes = b"",
    vias: Sequence[str] = ("SIP/2.0/UDP 127.0.0.2:5062;branch=z9hG4bK-1",),
    contact: bool = True,
) -> Request:
    to = "To: <sip:bob@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    lines = [f"{method} {uri} SIP/2.0", *(f"Via: {v}" for v in vias), "Max-Forwards: 70",
             "From: Alice <sip:alice@127.0.0.2>;tag=a1", to, "Call-ID: c1@127.0.0.2", f"CSeq: 7 {method}",
             *(["Contact: <sip:alice@127.0.0.2:5062>"] if method == "INVITE" and contact else []), *extra,
             f"Content-Length: {len(body)}"]
    msg = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    assert isinstance(msg, Request)
    return msg


# -- make_response (section 8.2.6) ---------------------------------------------------------------------


def test_make_response_adds_pre_rendered_fields_after_the_headers() -> None:
    req = request("OPTIONS", to_tag="t0")
    fields = header_fields([("server", "call-api"), ("Allow", "INVITE, ACK")])
    assert fields == [("server", "call-api", "Server: call-api"), ("allow", "INVITE, ACK", "Allow: INVITE, ACK")]
    response = make_response(req, 200, to_tag="ignored", headers=[("Accept", "application/sdp")], fields=fields)
    assert [name for name, _ in response.headers][-3:] == ["Accept", "Server", "Allow"]
    assert response.to_tag == "t0"
    same = make_response(req, 200, headers=[("Accept", "application/sdp"), ("Server", "call-api"),
                                             ("Allow", "INVITE, ACK")])
    assert response.serialize() == same.serialize()


def test_make_response_copies_exactly_the_five_headers_in_order() -> None:
    req = request(vias=["SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-p1, SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK-p2",
                        "SIP/2.0/UDP 127.0.0.2:5062;branch=z9hG4bK-1;received=127.0.0.2"],
                  extra=["Contact: <sip:alice@127.0.0.2>", "Record-Route: <sip:p1;lr>", "Timestamp: 1",
                         "Content-Type: application/sdp", "Subject: hi"], body=SDP)
    response = make_response(req, 486, to_tag="b1")
    assert [name for name, _ in response.headers] == ["Via", "Via", "From", "To", "Call-ID", "CSeq"]
    assert response.headers.get_all("via") == req.headers.get_all("via")
    assert [v.host for v in response.vias] == ["192.0.2.1", "192.0.2.2", "127.0.0.2"]
    assert response.headers.get("from") == "Alice <sip:alice@127.0.0.2>;tag=a1"
    assert response.headers.get("to") == "<sip:bob@127.0.0.1>;tag=b1"
    assert response.call_id == "c1@127.0.0.2" and str(response.cseq) == "7 INVITE"
    assert response.body == b"" and response.reason == "Busy Here"
    assert parse_message(response.serialize()) == response


def test_make_response_keeps_raw_header_spellings() -> None:
    data = (b"OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\nv: SIP/2.0/UDP 127.0.0.2;branch=z9hG4bK-1\r\n"
            b"f: <sip:a@b>;tag=1\r\nt: <sip:b@c>\r\ni: x@y\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n")
    req = parse_message(data)
    assert isinstance(req, Request)
    response = make_response(req, 200)
    assert response.serialize().startswith(b"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP 127.0.0.2;branch=z9hG4bK-1\r\n"
                                           b"f: <sip:a@b>;tag=1\r\nt: <sip:b@c>\r\ni: x@y\r\nCSeq: 1 OPTIONS\r\n")


@pytest.mark.parametrize(
    ("status", "to_tag", "request_tag", "expected"),
    [
        (100, "b1", None, None),  # section 8.2.6.1: 100 Trying carries no tag
        (180, "b1", None, "b1"),
        (200, "b1", None, "b1"),
        (699, "b1", None, "b1"),
        (200, None, None, None),  # the caller did not ask for one
        (200, "b1", "a-dialog", "a-dialog"),  # the request already had one: kept, never replaced
        (180, "b1", "a-dialog", "a-dialog"),
    ],
)
def test_make_response_adds_a_to_tag_only_when_absent_and_above_100(
    status: int, to_tag: str | None, request_tag: str | None, expected: str | None
) -> None:
    response = make_response(request(to_tag=request_tag), status, to_tag=to_tag)
    assert response.to_tag == expected
    assert response.headers.count("to") == 1


def test_make_response_echoes_timestamp_on_100_only() -> None:
    req = request(extra=["Timestamp: 54.3 0.2"])
    trying = make_response(req, 100)
    assert trying.headers.get("timestamp") == "54.3 0.2" and trying.reason == "Trying"
    assert "timestamp" not in make_response(req, 180, to_tag="b1").headers
    assert "timestamp" not in make_response(request(), 100).headers


def test_make_response_reason_headers_and_body() -> None:
    response = make_response(request(), 200, "Fine", to_tag="b1", headers=[("Contact", "<sip:b@h>"), ("X-A", "1")],
                             body=SDP)
    assert response.reason == "Fine" and response.body == SDP
    assert [name for name, _ in response.headers][-2:] == ["Contact", "X-A"]
    assert make_response(request(), 299).reason == ""


# -- the section 8.2 checks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("req", "status", "header", "value"),
    [
        (request("REGISTER"), 405, "Allow", DEFAULT_POLICY.allow_header),
        (request("SUBSCRIBE"), 405, "Allow", DEFAULT_POLICY.allow_header),
        (request("FROB"), 501, "Allow", DEFAULT_POLICY.allow_header),
        (request(uri="http://example.com/x"), 416, None, None),
        (request(uri="mailto:bob@example.com"), 416, None, None),
        (request(extra=["Require: 100rel, replaces", "Require: gruu"]), 420, "Unsupported", "100rel, gruu"),
        (request(extra=["Content-Type: text/html"], body=b"<p/>"), 415, "Accept", DEFAULT_POLICY.accept_header),
        (request(body=SDP), 415, "Accept", DEFAULT_POLICY.accept_header),  # a body without a Content-Type
        (request(extra=["Content-Type: application/sdp", "Content-Encoding: gzip"], body=SDP), 415,
         "Accept-Encoding", "identity"),
        (request(extra=["Accept: text/plain, message/sipfrag"]), 406, "Accept", "application/sdp"),
        (request(extra=["Accept:"]), 406, "Accept", "application/sdp"),  # empty: nothing is acceptable
        (request(uri="sip:[::1"), 400, None, None),
        (request(extra=["Require: a b"]), 400, None, None),
        (request(extra=["Content-Type: sdp"], body=SDP), 400, None, None),
        (request(extra=["Accept: text"]), 400, None, None),
    ],
)
def test_check_request_refusals(req: Request, status: int, header: str | None, value: str | None) -> None:
    refusal = check_request(req)
    assert refusal is not None and refusal.status == status
    if header is not None:
        assert refusal.headers.get(header) == value
    assert refusal.to_tag is None  # the caller adds the tag (the layer, or a stateless answer)
    assert refusal.call_id == req.call_id


@pytest.mark.parametrize(
    "req",
    [
        request(),
        request(extra=["Require: Timer, replaces"]),
        request("OPTIONS", extra=["Accept: text/plain"]),  # 406 is only about the SDP of an INVITE
        request(extra=["Accept: application/*"]),
        request(extra=["Accept: */*;q=0.5"]),
        request(extra=["Content-Type: Application/SDP", "Content-Encoding: Identity"], body=SDP),
        request(uri="tel:+15551234"),
        request(uri="sips:bob@127.0.0.1"),
        request("CANCEL", extra=["Require: foo"]),  # section 8.2.2.3: CANCEL's Require is not checked
        request("ACK", uri="http://x", extra=["Require: foo", "Content-Type: text/html"], body=b"x"),
        request("INFO", extra=["Content-Type: application/dtmf-relay"], body=b"Signal=1\r\nDuration=100\r\n"),
    ],
)
def test_check_request_passes(req: Request) -> None:
    assert check_request(req) is None


def test_ack_is_never_refused_even_by_a_policy_without_it() -> None:
    policy = UasPolicy(allowed=frozenset({"INVITE"}), supported=frozenset(), accepted=())
    ack = request("ACK", uri="http://x", extra=["Require: foo"], body=b"x")
    assert check_request(ack, policy) is None
    assert check_method_and_uri(ack, policy) is None and check_extensions_and_body(ack, policy) is None


#: The failures a request can carry, in the order section 8.2 checks them, with the status each gets.
_FAILURES: list[tuple[str, int]] = [("method", 405), ("scheme", 416), ("require", 420), ("body", 415),
                                    ("accept", 406)]


@given(st.sets(st.sampled_from([name for name, _ in _FAILURES]), min_size=1))
def test_the_earliest_failing_check_wins(failures: set[str]) -> None:
    """Section 8.2: method (8.2.1), then the Request-URI (8.2.2.1), Require (8.2.2.3), the body (8.2.3)."""
    extra = []
    if "require" in failures:
        extra.append("Require: foo")
    if "accept" in failures:
        extra.append("Accept: text/plain")
    body = b""
    if "body" in failures:
        extra.append("Content-Type: text/html")
        body = b"<p/>"
    method = "REGISTER" if "method" in failures else "INVITE"
    req = request(method, uri="http://x" if "scheme" in failures else "sip:bob@127.0.0.1", extra=extra, body=body)
    refusal = check_request(req)
    expected = next(status for name, status in _FAILURES if name in failures)
    if method == "REGISTER" and expected == 406:
        expected = 405
    assert refusal is not None and refusal.status == expected


def test_the_two_halves_split_at_the_merged_request_check() -> None:
    both = request("REGISTER", extra=["Require: foo"])
    assert check_method_and_uri(both) is not None and check_method_and_uri(both).status == 405  # type: ignore[union-attr]
    late = request(extra=["Require: foo"])
    assert check_method_and_uri(late) is None
    refusal = check_extensions_and_body(late)
    assert refusal is not None and refusal.status == 420


def test_policy_headers() -> None:
    policy = UasPolicy(allowed=frozenset({"BYE", "INVITE", "MESSAGE", "ACK", "FOO"}),
                       supported=frozenset({"timer", "100rel"}), accepted=("application/sdp",))
    assert policy.allow_header == "INVITE, ACK, BYE, FOO, MESSAGE"
    assert policy.accept_header == "application/sdp"
    refusal = check_request(request("OPTIONS"), policy)
    assert refusal is not None and refusal.status == 405 and refusal.headers.get("Allow") == policy.allow_header
    refusal = check_request(request(extra=["Require: replaces"]), policy)
    assert refusal is not None and refusal.status == 420


# -- salvage_response (RFC 4475 section 3.1.2) -------------------------------------------------------------


def test_salvage_unparsable_start_line_with_a_good_via_gets_400() -> None:
    data = (b"INVITE  sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5062;branch=z9hG4bK-1\r\n"
            b"From: <sip:a@b>;tag=1\r\nTo: <sip:b@c>\r\nCall-ID: x@y\r\nCSeq: 1 INVITE\r\nContact: <sip:a@b>\r\n"
            b"Content-Length: 0\r\n\r\n")
    with pytest.raises(ParseError) as caught:
        parse_message(data)
    response = salvage_response(data, caught.value)
    assert response is not None and response.status == 400
    assert response.reason.startswith("Bad Request (bad request line")
    assert [name for name, _ in response.headers] == ["Via", "From", "To", "Call-ID", "CSeq"]
    assert response.top_via is not None and response.top_via.branch == "z9hG4bK-1"
    assert response.to_tag is None


def test_salvage_unsupported_version_gets_505() -> None:
    data = (DATA / "badvers.dat").read_bytes()
    with pytest.raises(ParseError) as caught:
        parse_message(data)
    response = salvage_response(data, caught.value)
    assert response is not None and response.status == 505 and response.reason == "Version Not Supported"
    assert response.top_via is not None and response.top_via.host == "c.example.com"


def test_salvage_broken_via_params_with_a_good_sent_by_gets_400() -> None:
    """RFC 4475 section 3.1.2.1 (badinv01): the Via is what is wrong, but its sent-by still routes a 400."""
    data = (DATA / "badinv01.dat").read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    with pytest.raises(ParseError) as caught:
        parse_message(data)
    response = salvage_response(data, caught.value)
    assert response is not None and response.status == 400
    via = response.top_via
    assert via is not None and (via.transport, via.host, via.port) == ("UDP", "192.0.2.15", None)
    assert response.call_id == "badinv01.0ha0isndaksdjasdf3234nas"


def test_salvage_reads_compact_forms_and_bare_lf() -> None:
    data = b"\r\n\r\nINVITE sip:b@c SIP/3.0\nv: SIP/2.0/UDP 127.0.0.2;branch=z9hG4bK-1\nf: <sip:a@b>;tag=1\nbad line\n"
    response = salvage_response(data, ParseError("unsupported SIP version", 505))
    assert response is not None and response.status == 505
    assert response.headers.get("via") == "SIP/2.0/UDP 127.0.0.2;branch=z9hG4bK-1"
    assert response.from_tag == "1"


@pytest.mark.parametrize(
    "data",
    [
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.2;branch=z9hG4bK-1\r\n\r\n",  # a response
        b"sip/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.2;branch=z9hG4bK-1\r\n\r\n",
        b"ACK sip:b@c SIP/7.0\r\nVia: SIP/2.0/UDP 127.0.0.2;branch=z9hG4bK-1\r\n\r\n",  # an ACK is never answered
        b"INVITE sip:b@c SIP/2.0\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:b@c>\r\n\r\n",  # no Via
        b"INVITE sip:b@c SIP/2.0\r\nVia: nonsense\r\n\r\n",  # no usable Via
        b"INVITE sip:b@c SIP/2.0\r\nVia: SIP/2.0/UDP\r\n\r\n",
        b"",
        b"\r\n\r\n",
    ],
)
def test_salvage_gives_up(data: bytes) -> None:
    assert salvage_response(data, ParseError("whatever")) is None


def test_salvage_reason_phrase_is_sanitized() -> None:
    data = b"INVITE sip:b@c SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2;branch=z9hG4bK-1\r\n\r\n"
    response = salvage_response(data, ParseError("bad \r\nX-Injected: 1\x00\x7f\tend" + "x" * 200))
    assert response is not None
    assert response.reason.startswith("Bad Request (bad ??X-Injected: 1???end")
    assert all(c.isprintable() for c in response.reason) and len(response.reason) <= len("Bad Request ()") + 80
    assert b"\r\nX-Injected" not in response.serialize()


@pytest.mark.parametrize(("status", "expected"), [(400, 400), (413, 413), (414, 414), (200, 400), (999, 400)])
def test_salvage_status_comes_from_the_error(status: int, expected: int) -> None:
    data = b"INVITE sip:b@c SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2;branch=z9hG4bK-1\r\n\r\n"
    response = salvage_response(data, ParseError("", status))
    assert response is not None and response.status == expected
    if expected == 400:
        assert response.reason == "Bad Request"


@given(st.binary(max_size=300))
def test_salvage_never_raises(data: bytes) -> None:
    response = salvage_response(b"INVITE sip:b@c SIP/2.0\r\nVia: SIP/2.0/UDP h;" + data, ParseError("x"))
    if response is not None:
        assert response.top_via is not None
        assert response.serialize().startswith(b"SIP/2.0 400 ")


def test_headers_built_by_hand_work_too() -> None:
    headers = Headers.of(("Via", "SIP/2.0/TCP h;branch=z9hG4bK-9"), ("From", "<sip:a@b>;tag=x"), ("To", "<sip:b@c>"),
                         ("Call-ID", "id"), ("CSeq", "2 OPTIONS"))
    req = Request("OPTIONS", "sip:b@c", headers)
    response = make_response(req, 200, to_tag="t")
    assert response.to_tag == "t" and response.serialize().startswith(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h;")
    assert check_request(req) is None


# -- Contact (section 8.1.1.8; issue 17) -------------------------------------------------------------------


def test_a_new_invite_without_contact_gets_400_before_anything_is_forwarded() -> None:
    refusal = check_request(request(contact=False))
    assert refusal is not None and (refusal.status, refusal.reason) == (400, "Missing Contact")
    assert check_request(request(contact=False, to_tag="b1")) is None, "a re-INVITE keeps its dialog's target"
    assert check_request(request("OPTIONS")) is None


@pytest.mark.parametrize("contact", ["<sip:alice@127H0.0.2>", "<tel:+123>", "<sip:alice@[::1>", "garbage <<", "*"])
def test_a_contact_that_cannot_be_a_target_gets_400(contact: str) -> None:
    refusal = check_request(request(contact=False, extra=[f"Contact: {contact}"]))
    assert refusal is not None and (refusal.status, refusal.reason) == (400, "Bad Contact")
    refusal = check_request(request("BYE", to_tag="b1", extra=[f"Contact: {contact}"]))
    assert refusal is not None and refusal.status == 400


def test_an_rfc_2543_invite_without_contact_is_accepted() -> None:
    """RFC 4475 section 3.4.1 (inv2543.dat): no magic cookie, no Contact; RFC 2543 required none."""
    assert check_request(request(contact=False, vias=("SIP/2.0/UDP 127.0.0.2:5062",))) is None
