"""Framing and parsing: datagrams, the TCP stream reader, limits, and arbitrary bytes."""

from __future__ import annotations

import contextlib
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from b2bua.errors import ParseError
from b2bua.sip.message import Request, Response
from b2bua.sip.parser import Limits, StreamReader, parse_message

from .rfc4475 import TORTURES

INVITE = (
    b"INVITE sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: \"Alice\" <sip:alice@example.com>;tag=a1\r\n"
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: c1@192.0.2.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"v=0\n"
)
OK = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc;rport=5060\r\n"
    b"From: \"Alice\" <sip:alice@example.com>;tag=a1\r\n"
    b"To: <sip:bob@example.com>;tag=b1\r\n"
    b"Call-ID: c1@192.0.2.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)


def test_request_and_keys() -> None:
    msg = parse_message(INVITE)
    assert isinstance(msg, Request)
    assert (msg.method, msg.uri, msg.version) == ("INVITE", "sip:bob@example.com", "SIP/2.0")
    assert (msg.branch, msg.call_id, msg.from_tag, msg.cseq) == ("z9hG4bKabc", "c1@192.0.2.1", "a1", (1, "INVITE"))
    assert msg.body == b"v=0\n"
    assert msg.max_forwards == 70


def test_response() -> None:
    msg = parse_message(OK)
    assert isinstance(msg, Response)
    assert (msg.status, msg.reason, msg.to_tag) == (200, "OK", "b1")
    assert msg.top_via is not None and msg.top_via.rport == 5060


def test_leading_crlf_is_ignored() -> None:
    assert isinstance(parse_message(b"\r\n\r\n" + INVITE), Request)


def test_udp_without_content_length_takes_the_rest() -> None:
    data = INVITE.replace(b"Content-Length: 4\r\n", b"")
    assert parse_message(data).body == b"v=0\n"


def test_udp_extra_octets_after_body_are_ignored() -> None:
    assert parse_message(INVITE + b"garbage").body == b"v=0\n"


def test_content_length_beyond_datagram_is_400() -> None:
    with pytest.raises(ParseError) as e:
        parse_message(INVITE[:-1])
    assert e.value.status == 400


def test_bare_lf_messages_are_tolerated() -> None:
    msg = parse_message(INVITE.replace(b"\r\n", b"\n"))
    assert isinstance(msg, Request) and msg.call_id == "c1@192.0.2.1"


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"", 400),
        (b"\r\n", 400),
        (b"INVITE sip:bob@example.com SIP/2.0\r\n", 400),
        (INVITE.replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1), 505),
        (INVITE.replace(b"SIP/2.0\r\n", b"HTTP/1.1\r\n", 1), 400),
        (INVITE.replace(b"Call-ID: c1@192.0.2.1\r\n", b""), 400),
        (INVITE.replace(b"Call-ID: c1@192.0.2.1", b"Call-ID: c 1"), 400),
        (INVITE.replace(b"Via: ", b"Vi a: "), 400),
        (INVITE.replace(b"Max-Forwards: 70", b"Max-Forwards: 256"), 400),
        (INVITE.replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE"), 400),
        (INVITE.replace(b"To: <sip:bob@example.com>", b"To: <sip:bob@example.com"), 400),
        (INVITE.replace(b"Max-Forwards: 70\r\n", b"Max-Forwards 70\r\n"), 400),
        (OK.replace(b"200 OK", b"2000 OK"), 400),
        (OK.replace(b"200 OK", b"700 Odd"), 400),
    ],
)
def test_malformed(data: bytes, status: int) -> None:
    with pytest.raises(ParseError) as e:
        parse_message(data)
    assert e.value.status == status


def test_limits() -> None:
    with pytest.raises(ParseError) as e:
        parse_message(INVITE, Limits(max_size=100))
    assert e.value.status == 513
    with pytest.raises(ParseError):
        parse_message(INVITE, Limits(max_headers=5))
    with pytest.raises(ParseError):
        parse_message(INVITE, Limits(max_line=30))


def test_folded_header_lines_are_joined() -> None:
    data = INVITE.replace(b"To: <sip:bob@example.com>\r\n", b"To:\r\n  <sip:bob@example.com>\r\n\t;tag=x\r\n")
    msg = parse_message(data)
    assert msg.headers.get("to") == "<sip:bob@example.com> ;tag=x"
    assert msg.to_tag == "x"
    assert msg.serialize() == data


# --- the stream reader --------------------------------------------------------------------------------


def _feed_all(chunks: list[bytes]) -> list[Request | Response]:
    reader = StreamReader()
    out: list[Request | Response] = []
    for chunk in chunks:
        out.extend(reader.feed(chunk))
    assert reader.buffered == 0
    return out


def test_stream_whole_message() -> None:
    assert [m.call_id for m in _feed_all([INVITE])] == ["c1@192.0.2.1"]


def test_stream_byte_by_byte() -> None:
    data = INVITE + OK
    msgs = _feed_all([data[i : i + 1] for i in range(len(data))])
    assert [type(m) for m in msgs] == [Request, Response]
    assert msgs[0].body == b"v=0\n"


def test_stream_several_in_one_chunk_with_keepalives() -> None:
    reader = StreamReader()
    msgs = reader.feed(b"\r\n\r\n" + INVITE + b"\r\n\r\n" + OK + INVITE[:50])
    assert [type(m) for m in msgs] == [Request, Response]
    assert reader.pings == 2
    assert reader.buffered == 50
    assert reader.feed(INVITE[50:])[0].body == b"v=0\n"


@given(st.lists(st.integers(min_value=1, max_value=len(INVITE) + len(OK)), max_size=12))
def test_stream_any_chunking(cuts: list[int]) -> None:
    data = INVITE + OK + INVITE
    points = sorted({c % len(data) for c in cuts} | {0, len(data)})
    chunks = [data[a:b] for a, b in pairwise(points)]
    msgs = _feed_all(chunks)
    assert [m.call_id for m in msgs] == ["c1@192.0.2.1"] * 3
    assert [type(m) for m in msgs] == [Request, Response, Request]


def test_stream_requires_content_length() -> None:
    with pytest.raises(ParseError):
        StreamReader().feed(INVITE.replace(b"Content-Length: 4\r\n", b""))


def test_stream_compact_content_length() -> None:
    msgs = StreamReader().feed(INVITE.replace(b"Content-Length: 4", b"l: 4"))
    assert msgs[0].body == b"v=0\n"


def test_stream_bounds_memory() -> None:
    reader = StreamReader(Limits(max_size=1000))
    with pytest.raises(ParseError):
        for _ in range(100):
            reader.feed(b"X" * 100)
    with pytest.raises(ParseError):
        StreamReader(Limits(max_size=1000)).feed(INVITE.replace(b"Content-Length: 4", b"Content-Length: 99999"))


# --- arbitrary input ------------------------------------------------------------------------------------


@settings(max_examples=500, deadline=200)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_parse_or_raise_parse_error(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse_message(data)


@settings(max_examples=300, deadline=200)
@given(st.sampled_from([t.data for t in TORTURES] + [INVITE, OK]), st.data())
def test_mutated_messages_parse_or_raise_parse_error(base: bytes, data: st.DataObject) -> None:
    """Flip, insert and delete bytes in real messages: still only a message or a ParseError."""
    buf = bytearray(base)
    for _ in range(data.draw(st.integers(1, 8))):
        if not buf:
            break
        i = data.draw(st.integers(0, len(buf) - 1))
        op = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        if op == "flip":
            buf[i] = data.draw(st.sampled_from(b' \t\r\n:;,<>"\\=@%/0a\x00\xff'))
        elif op == "insert":
            buf[i:i] = data.draw(st.binary(min_size=1, max_size=8))
        else:
            del buf[i]
    try:
        msg = parse_message(bytes(buf))
    except ParseError:
        return
    for view in ("vias", "contacts", "routes", "record_routes", "content_type", "to"):
        with contextlib.suppress(ParseError):
            getattr(msg, view)


@settings(max_examples=100, deadline=500)
@given(st.binary(max_size=3000), st.lists(st.integers(1, 3000), max_size=10))
def test_stream_reader_arbitrary_bytes(data: bytes, cuts: list[int]) -> None:
    reader = StreamReader(Limits(max_size=4096))
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    try:
        for a, b in pairwise(points):
            reader.feed(data[a:b])
    except ParseError:
        pass
    assert reader.buffered <= 4096 + 3000
