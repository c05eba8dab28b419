"""Requests, responses and the header collection: order, duplicates, compact forms, raw values, serialization."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from b2bua.errors import ParseError
from b2bua.sip.message import COMPACT_FORMS, Headers, Message, Request, Response, canonical_name, header_key
from b2bua.sip.parser import parse_message

RAW = (
    b"OPTIONS sip:svc@127.0.0.1:5080 SIP/2.0\r\n"
    b"v: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK1\r\n"
    b"VIA: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK2\r\n"
    b"f: <sip:a@x>;tag=1\r\n"
    b"t: <sip:b@y>\r\n"
    b"i: abc\r\n"
    b"CSeq: 7 OPTIONS\r\n"
    b"X-Odd   :   keep   this  \r\n"
    b"x-odd: second\r\n"
    b"l: 0\r\n"
    b"\r\n"
)


def test_compact_forms_are_the_long_names() -> None:
    msg = parse_message(RAW)
    assert msg.call_id == "abc"
    assert msg.headers.get("Call-ID") == msg.headers.get("i") == "abc"
    assert [v.branch for v in msg.vias] == ["z9hG4bK1", "z9hG4bK2"]
    assert set(COMPACT_FORMS) >= set("ifvmlcksrboux")
    assert header_key("K") == "supported" and header_key("O") == "event" and header_key("y") == "identity"


def test_duplicates_kept_in_order_and_case_insensitive() -> None:
    h = parse_message(RAW).headers
    assert h.get_all("x-ODD") == ["keep   this", "second"]
    assert h.count("via") == 2
    assert "X-ODD" in h and "nope" not in h


def test_received_headers_serialize_byte_for_byte() -> None:
    assert parse_message(RAW).serialize() == RAW


def test_created_headers_get_canonical_names_and_content_length() -> None:
    req = Request("BYE", "sip:b@y", Headers.of(("call-id", "x"), ("cseq", "2 BYE"), ("www-authenticate", "z")))
    req.headers.add("v", "SIP/2.0/UDP h;branch=z9hG4bKq")
    req.body = b"hello"
    out = req.serialize()
    assert out.startswith(b"BYE sip:b@y SIP/2.0\r\nCall-ID: x\r\nCSeq: 2 BYE\r\nWWW-Authenticate: z\r\nVia: ")
    assert out.endswith(b"Content-Length: 5\r\n\r\nhello")
    assert canonical_name("record-route") == "Record-Route"
    assert canonical_name("m") == "Contact"


def test_wrong_content_length_is_rewritten() -> None:
    msg = parse_message(RAW)
    msg.body = b"abc"
    out = msg.serialize()
    assert b"l: 0" not in out and out.endswith(b"Content-Length: 3\r\n\r\nabc")


def test_set_remove_and_cache_invalidation() -> None:
    msg = parse_message(RAW)
    assert msg.from_tag == "1"
    msg.headers.set("From", "<sip:a@x>;tag=2")
    assert msg.from_tag == "2"
    assert msg.branch == "z9hG4bK1"
    assert msg.headers.remove("x-odd") == 2
    assert msg.headers.get("x-odd") is None
    copy = msg.headers.copy()
    copy.add("X-New", "1")
    assert "x-new" not in msg.headers


def test_response_defaults() -> None:
    r = Response(486)
    assert r.reason == "Busy Here" and r.provisional is False
    assert Response(180).provisional


# --- round trip of generated messages -------------------------------------------------------------------

token = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~", min_size=1,
                max_size=12)
value_text = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E) | st.sampled_from(" é€"),
                     min_size=1, max_size=30).map(str.strip).filter(bool)
host = st.sampled_from(["example.com", "192.0.2.7", "[2001:db8::1]", "a-b.c.example.org"])
method = st.sampled_from(["INVITE", "BYE", "OPTIONS", "NOTIFY", "REFER", "X-CUSTOM"])
reserved = {"via", "from", "to", "call-id", "cseq", "content-length", "max-forwards", "content-type"}
extension = st.tuples(token.filter(lambda t: t.lower() not in reserved and header_key(t) not in reserved), value_text)


@st.composite
def messages(draw: st.DrawFn) -> Request | Response:
    headers = Headers.of(
        ("Via", f"SIP/2.0/UDP {draw(host)}:{draw(st.integers(1, 65535))};branch=z9hG4bK{draw(token)}"),
        ("From", f'"{draw(token)}" <sip:{draw(token)}@{draw(host)}>;tag={draw(token)}'),
        ("To", f"<sip:{draw(token)}@{draw(host)}>"),
        ("Call-ID", draw(token)),
    )
    m = draw(method)
    headers.add("CSeq", f"{draw(st.integers(0, 2**32 - 1))} {m}")
    for name, value in draw(st.lists(extension, max_size=6)):
        headers.add(name, value)
    body = draw(st.binary(max_size=200))
    if body:
        headers.add("Content-Type", "application/octet-stream")
    if draw(st.booleans()):
        return Request(m, f"sip:{draw(token)}@{draw(host)}", headers, body)
    return Response(draw(st.integers(100, 699)), draw(value_text), headers, body)


@settings(max_examples=300)
@given(messages())
def test_parse_of_serialize_is_identity(msg: Request | Response) -> None:
    wire = msg.serialize()
    again = parse_message(wire)
    assert again == msg
    assert parse_message(wire, stream=True) == msg
    assert again.serialize() == wire


@settings(max_examples=300)
@given(messages(), st.sampled_from(["", " ", "  "]), st.booleans())
def test_lazy_keys_agree_with_full_parse(msg: Request | Response, lws: str, quoted_param: bool) -> None:
    """The transaction keys read without parsing whole headers equal those of the full parse."""
    via = msg.headers.get("via")
    assert via is not None
    if quoted_param:
        msg.headers.set("Via", f'{via}{lws};x="a;branch=fake"')
        msg.headers.set("From", (msg.headers.get("from") or "") + f'{lws};y="b;tag=fake"')
    else:
        msg.headers.set("Via", via.replace(";branch", f"{lws};{lws}branch"))
    wire = msg.serialize()
    lazy = parse_message(wire, check=False)
    full = parse_message(wire)
    assert full.top_via is not None and full.from_ is not None and full.to is not None
    assert lazy.branch == full.top_via.branch
    assert lazy.from_tag == full.from_.tag
    assert lazy.to_tag == full.to.tag
    assert lazy.call_id == full.call_id and lazy.cseq == full.cseq


def _reference_serialize(msg: Request) -> bytes:
    """The serializer's rules, written plainly: every field but Content-Length in order, then the first
    Content-Length's own line when its value is right, else a fresh one."""
    length = str(len(msg.body))
    lines = [msg.start_line()]
    first_cl = next((f for f in msg.headers._fields if f[0] == "content-length"), None)
    for key, value, raw in msg.headers._fields:
        if key != "content-length":
            lines.append(raw if raw is not None else f"{canonical_name(key)}: {value}")
    keep = first_cl is not None and first_cl[2] is not None and first_cl[1] == length
    lines.append(first_cl[2] if keep and first_cl[2] is not None else f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + msg.body


_FIELDS = st.lists(st.one_of(
    st.sampled_from([("via", "SIP/2.0/UDP h;branch=z9hG4bKa", None), ("x-custom", "1", None), ("i", "c", None)]),
    st.sampled_from([("via", "SIP/2.0/UDP h;branch=z9hG4bKb", "v: SIP/2.0/UDP h;branch=z9hG4bKb"),
                     ("server", "call-api", "Server: call-api")]),
    st.tuples(st.just("content-length"), st.sampled_from(["0", "3", "7"]),
              st.sampled_from([None, "l: {}", "Content-Length:  {}"])).map(
        lambda f: (f[0], f[1], f[2].format(f[1]) if f[2] else None)),
), max_size=6)


@given(_FIELDS, st.sampled_from([b"", b"abc"]))
def test_serialize_agrees_with_its_rules(fields: list[tuple[str, str, str | None]], body: bytes) -> None:
    msg = Request("OPTIONS", "sip:a@b", Headers(list(fields)), body)
    assert msg.serialize() == _reference_serialize(msg)


# -- the container and the views nothing else reaches ----------------------------------------------------------


def test_headers_as_a_container() -> None:
    headers = Headers.of(("Via", "SIP/2.0/UDP a;branch=z9hG4bK1"), ("v", "SIP/2.0/UDP b;branch=z9hG4bK2"))
    assert len(headers) == 2 and "VIA" in headers and "route" not in headers and 5 not in headers
    assert [f[:2] for f in headers.fields()] == [("via", "SIP/2.0/UDP a;branch=z9hG4bK1"),
                                                 ("via", "SIP/2.0/UDP b;branch=z9hG4bK2")]
    assert repr(headers) == ("Headers([('via', 'SIP/2.0/UDP a;branch=z9hG4bK1'), "
                             "('via', 'SIP/2.0/UDP b;branch=z9hG4bK2')])")
    assert headers == headers.copy() and headers != Headers.of(("Via", "x")) and headers != [("Via", "x")]
    with pytest.raises(TypeError):
        hash(headers)  # they change, so they must not hash


def test_set_replaces_the_first_field_in_place_or_appends() -> None:
    headers = Headers.of(("To", "<sip:b@y>"), ("Route", "<sip:r1>"), ("Route", "<sip:r2>"), ("CSeq", "1 INVITE"))
    headers.set("route", "<sip:r3>")
    assert list(headers) == [("To", "<sip:b@y>"), ("Route", "<sip:r3>"), ("CSeq", "1 INVITE")]
    headers.set("Subject", "hi")
    assert list(headers)[-1] == ("Subject", "hi")


def test_a_typed_view_is_cached_until_the_headers_change() -> None:
    request = Request("INVITE", "sip:b@y", Headers.of(("Max-Forwards", "7")))
    assert request.headers.cached("max-forwards") is None
    assert request.max_forwards == 7 and request.headers.cached("max-forwards") == 7
    request.headers.set("Max-Forwards", "6")
    assert request.headers.cached("max-forwards") is None and request.max_forwards == 6
    assert Request("OPTIONS", "sip:b@y", Headers()).max_forwards is None


def test_a_max_forwards_over_255_is_a_400() -> None:
    with pytest.raises(ParseError) as raised:
        _ = Request("INVITE", "sip:b@y", Headers.of(("Max-Forwards", "256"))).max_forwards
    assert raised.value.status == 400


def test_messages_compare_only_with_their_own_kind_and_show_their_start_and_call_id() -> None:
    request = Request("BYE", "sip:b@y", Headers.of(("Call-ID", "c1")))
    response = Response(200, "OK", Headers.of(("Call-ID", "c1")))
    assert request != response and request != "BYE sip:b@y SIP/2.0"
    assert repr(request) == "<Request BYE sip:b@y call-id='c1'>"
    assert repr(response) == "<Response 200 OK call-id='c1'>"


def test_the_shared_base_has_no_start_line_of_its_own() -> None:
    message = Message()
    assert len(message.headers) == 0 and message.body == b"" and message.version == "SIP/2.0"
    with pytest.raises(NotImplementedError):
        message.start_line()  # Request and Response give it
