"""Stream framing for TCP: every stream fed whole, byte by byte, in random pieces, and with trailing bytes."""

from __future__ import annotations

import gc

from hypothesis import given
from hypothesis import strategies as st

from b2bua.errors import ParseError
from b2bua.io.framing import StreamFramer


def message(n: int, body: bytes = b"", length_header: str = "Content-Length") -> bytes:
    return (
        f"OPTIONS sip:{n}@example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK{n}\r\n"
        f"Call-ID: {n}\r\n"
        f"CSeq: {n} OPTIONS\r\n"
        f"{length_header}: {len(body)}\r\n"
        "\r\n"
    ).encode() + body


BODY = b"v=0\r\n\r\nnot a header end\r\n\r\n"
STREAM = message(1) + b"\r\n" + message(2, BODY) + b"\r\n\r\n" + message(3, b"x", "l")
EXPECTED = [message(1), message(2, BODY), message(3, b"x", "l")]


def feed_in_pieces(framer: StreamFramer, data: bytes, cuts: list[int]) -> list[bytes]:
    out: list[bytes] = []
    previous = 0
    for cut in [*sorted(cuts), len(data)]:
        out += framer.feed(data[previous:cut])
        previous = cut
    return out


def test_whole_stream() -> None:
    framer = StreamFramer()
    assert framer.feed(STREAM) == EXPECTED
    assert framer.pings == 1
    assert framer.buffered == 0
    assert framer.error is None


def test_byte_by_byte() -> None:
    framer = StreamFramer()
    assert feed_in_pieces(framer, STREAM, list(range(len(STREAM)))) == EXPECTED
    assert framer.pings == 1
    assert framer.buffered == 0


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=30))
def test_any_split(cuts: list[int]) -> None:
    framer = StreamFramer()
    assert feed_in_pieces(framer, STREAM, cuts) == EXPECTED
    assert framer.pings == 1


def test_trailing_bytes_wait_for_the_rest() -> None:
    framer = StreamFramer()
    second = message(2, b"body")
    assert framer.feed(message(1) + second[:10]) == [message(1)]
    assert framer.buffered == 10
    assert framer.feed(second[10:-2]) == []
    assert framer.feed(second[-2:]) == [second]
    assert framer.buffered == 0


def test_header_names_are_case_insensitive_and_compact() -> None:
    for name in ("content-length", "CONTENT-LENGTH", "L", "l", "Content-Length "):
        data = message(1, b"abc", name)
        assert StreamFramer().feed(data) == [data]


def test_body_may_contain_an_empty_line() -> None:
    data = message(1, b"\r\n\r\n\r\n\r\n")
    assert StreamFramer().feed(data + data) == [data, data]


def test_keepalive_pings_counted_even_when_split() -> None:
    framer = StreamFramer()
    for piece in (b"\r", b"\n", b"\r", b"\n"):
        assert framer.feed(piece) == []
    assert framer.pings == 1
    assert framer.feed(b"\r\n\r\n\r\n\r\n") == []
    assert framer.pings == 3
    assert framer.buffered == 0


def test_single_crlf_before_a_message_is_not_a_ping() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n" + message(1) + b"\r\n" + message(2)) == [message(1), message(2)]
    assert framer.pings == 0


def test_missing_content_length_is_an_error() -> None:
    framer = StreamFramer()
    data = message(1).replace(b"Content-Length: 0\r\n", b"")
    assert framer.feed(message(2) + data) == [message(2)]
    assert framer.error is not None and "Content-Length" in framer.error.reason
    assert framer.feed(message(3)) == []


def test_bad_content_length_is_an_error() -> None:
    for value in (b"abc", b"-1", b"1" * 40, b""):
        framer = StreamFramer()
        framer.feed(message(1).replace(b"Content-Length: 0", b"Content-Length: " + value))
        assert framer.error is not None, value


def test_a_framing_error_leaves_no_reference_cycle() -> None:
    """The error keeps no traceback, whose frames would hold the framer: a TCP connection that ended on a
    framing error goes by reference counting, as the service's collector needs (b2bua/io/collector.py)."""
    gc.collect()
    gc.disable()
    try:
        for data in (message(1).replace(b"Content-Length: 0\r\n", b""), b"X" * 200):
            framer = StreamFramer(max_size=100)
            framer.feed(data)
            assert framer.error is not None and framer.error.__traceback__ is None
            del framer
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        assert [o for o in gc.garbage if isinstance(o, StreamFramer | ParseError)] == []
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_oversize_header_is_an_error_before_its_end() -> None:
    framer = StreamFramer(max_size=100)
    assert framer.feed(b"OPTIONS sip:a SIP/2.0\r\n" + b"X" * 50) == []
    assert framer.error is None
    framer.feed(b"X" * 50)
    assert framer.error is not None and framer.error.status == 513
    assert framer.buffered == 0


def test_oversize_body_is_an_error_before_it_arrives() -> None:
    framer = StreamFramer(max_size=300)
    framer.feed(message(1).replace(b"Content-Length: 0", b"Content-Length: 290"))
    assert framer.error is not None


def test_a_message_exactly_at_the_limit_passes() -> None:
    data = message(1, b"x" * 10)
    assert StreamFramer(max_size=len(data)).feed(data) == [data]
    framer = StreamFramer(max_size=len(data) - 1)
    assert framer.feed(data) == []
    assert framer.error is not None
