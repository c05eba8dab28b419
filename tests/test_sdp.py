"""Tests for b2bua.sip.sdp: the line-based SDP editor used for hold and resume (RFC 3264 section 8.4)."""

from __future__ import annotations

from typing import Any

import pytest
import sdp_transform
from hypothesis import given
from hypothesis import strategies as st

from b2bua.errors import ParseError
from b2bua.sip.sdp import (
    DIRECTIONS,
    answer_mismatches,
    bump_version,
    directions,
    hold_offer,
    inactive_offer,
    origin_of,
    parse,
    resume_offer,
    set_direction,
)

HEAD = ["v=0", "o=alice 2890844526 2890844527 IN IP4 192.0.2.10", "s=-", "c=IN IP4 192.0.2.10", "t=0 0"]
AUDIO = ["m=audio 49170 RTP/AVP 0 8 101", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
         "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15", "a=ptime:20"]
VIDEO = ["m=video 51372 RTP/AVP 99", "b=AS:512", "a=rtpmap:99 H264/90000", "a=fmtp:99 profile-level-id=42e01f"]
HELD = {"sendrecv": "sendonly", "sendonly": "sendonly", "recvonly": "inactive", "inactive": "inactive"}


def body(*lines: str, eol: str = "\r\n") -> bytes:
    return "".join(line + eol for line in lines).encode()


def raw_lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def st_directions(data: bytes) -> list[str]:
    """Effective directions as sdp_transform reads them, to check our output independently."""
    parsed: dict[str, Any] = sdp_transform.parse(data.decode())
    session = parsed.get("direction") or "sendrecv"
    return [m.get("direction") or session for m in parsed["media"]]


# -- the parsed view ---------------------------------------------------------------------------------


def test_parse_view() -> None:
    data = body(*HEAD, "a=recvonly", *AUDIO, "a=sendonly", "m=video 0 RTP/AVP 99", *VIDEO)
    sdp = parse(data)
    assert sdp.to_bytes() == data
    assert sdp.origin.username == "alice"
    assert sdp.origin.sess_id == "2890844526"
    assert sdp.origin.sess_version == sdp.version == 2890844527
    assert sdp.origin.rest == "IN IP4 192.0.2.10"
    assert sdp.session_direction == "recvonly"
    assert sdp.session_end == len(HEAD) + 1
    assert [(m.media, m.port, m.active) for m in sdp.media] == [
        ("audio", 49170, True), ("video", 0, False), ("video", 51372, True)]
    assert sdp.media[0].proto == "RTP/AVP"
    assert sdp.media[0].formats == ("0", "8", "101")
    assert [m.own_direction for m in sdp.media] == ["sendonly", None, None]
    assert sdp.directions == ["sendonly", "recvonly", "recvonly"]
    assert sdp.media[0].start == len(HEAD) + 1
    assert sdp.media[-1].end == len(sdp.lines)


def test_port_with_count_and_big_version() -> None:
    version = 2**64 + 5
    sdp = parse(body("v=0", f"o=- 1 {version} IN IP6 ::1", "s=-", "t=0 0", "m=audio 49170/2 RTP/AVP 0"))
    assert sdp.version == version
    assert sdp.media[0].port == 49170


@pytest.mark.parametrize(("session", "media", "expected"), [
    (None, None, "sendrecv"),
    ("inactive", None, "inactive"),
    (None, "recvonly", "recvonly"),
    ("sendonly", "recvonly", "recvonly"),
])
def test_directions(session: str | None, media: str | None, expected: str) -> None:
    lines = [*HEAD, *([f"a={session}"] if session else []), *AUDIO, *([f"a={media}"] if media else [])]
    assert directions(body(*lines)) == [expected]
    assert st_directions(body(*lines)) == [expected]


def test_no_media() -> None:
    assert directions(body(*HEAD)) == []


# -- hold and resume ---------------------------------------------------------------------------------


@pytest.mark.parametrize("before", DIRECTIONS)
def test_hold_replaces_media_direction_in_place(before: str) -> None:
    data = body(*HEAD, AUDIO[0], f"a={before}", *AUDIO[1:])
    held = hold_offer(data)
    expected = raw_lines(data)
    expected[len(HEAD) + 1] = f"a={HELD[before]}\r\n".encode()
    assert raw_lines(held) == expected
    assert directions(held) == st_directions(held) == [HELD[before]]


def test_hold_implicit_sendrecv_appends_at_end_of_section() -> None:
    data = body(*HEAD, *AUDIO, *VIDEO)
    held = hold_offer(data)
    assert raw_lines(held) == raw_lines(body(*HEAD, *AUDIO, "a=sendonly", *VIDEO, "a=sendonly"))
    assert st_directions(held) == ["sendonly", "sendonly"]


def test_hold_audio_and_video_with_different_directions() -> None:
    data = body(*HEAD, *AUDIO, "a=recvonly", *VIDEO)
    held = hold_offer(data)
    assert directions(held) == st_directions(held) == ["inactive", "sendonly"]


def test_session_level_direction_is_moved_down() -> None:
    data = body(*HEAD, "a=recvonly", *AUDIO, "m=video 0 RTP/AVP 99", "a=rtpmap:99 H264/90000", *VIDEO, "a=sendrecv")
    held = hold_offer(data)
    parsed = sdp_transform.parse(held.decode())
    assert "direction" not in parsed
    assert parse(held).session_direction is None
    # audio inherited recvonly -> inactive; the rejected video keeps its meaning; explicit sendrecv -> sendonly
    assert directions(held) == st_directions(held) == ["inactive", "recvonly", "sendonly"]
    assert raw_lines(held) == raw_lines(body(*HEAD, *AUDIO, "a=inactive", "m=video 0 RTP/AVP 99",
                                             "a=rtpmap:99 H264/90000", "a=recvonly", *VIDEO, "a=sendonly"))


def test_session_level_sendrecv_is_dropped_without_adding_lines() -> None:
    data = body(*HEAD, "a=sendrecv", *AUDIO)
    assert resume_offer(data) == body(*HEAD, *AUDIO)


def test_port_zero_stream_is_left_alone() -> None:
    rejected = ["m=video 0 RTP/AVP 99", "a=rtpmap:99 H264/90000", "a=recvonly"]
    data = body(*HEAD, *AUDIO, *rejected)
    for edited in (hold_offer(data), resume_offer(data), set_direction(data, "inactive")):
        assert raw_lines(edited)[-len(rejected):] == raw_lines(body(*rejected))
        assert parse(edited).media[1].port == 0
        assert directions(edited)[1] == "recvonly"


def test_resume_after_hold() -> None:
    data = body(*HEAD, *AUDIO, "a=sendrecv", *VIDEO)
    held = hold_offer(data)
    resumed = resume_offer(held)
    assert directions(resumed) == st_directions(resumed) == ["sendrecv", "sendrecv"]
    assert raw_lines(resumed) == raw_lines(body(*HEAD, *AUDIO, "a=sendrecv", *VIDEO, "a=sendrecv"))


def test_resume_of_implicit_sendrecv_is_byte_identical() -> None:
    data = body(*HEAD, *AUDIO, *VIDEO)
    assert resume_offer(data) == data


def test_set_direction() -> None:
    data = body(*HEAD, *AUDIO, "a=sendonly", *VIDEO)
    out = set_direction(data, "recvonly")
    assert directions(out) == st_directions(out) == ["recvonly", "recvonly"]
    with pytest.raises(ValueError, match="unknown direction"):
        set_direction(data, "hold")


def test_lf_only_input_keeps_lf() -> None:
    data = body(*HEAD, *AUDIO, "a=recvonly", *VIDEO, eol="\n")
    held = hold_offer(data)
    assert b"\r" not in held
    assert raw_lines(held) == raw_lines(body(*HEAD, *AUDIO, "a=inactive", *VIDEO, "a=sendonly", eol="\n"))
    assert st_directions(held) == ["inactive", "sendonly"]


def test_mixed_endings_are_kept_per_line() -> None:
    data = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\ns=-\r\nt=0 0\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\n"
    held = hold_offer(data)
    assert held == data + b"a=sendonly\n"


def test_missing_final_line_ending() -> None:
    data = body(*HEAD, *AUDIO).rstrip(b"\r\n")
    held = hold_offer(data)
    assert held == body(*HEAD, *AUDIO) + b"a=sendonly"
    assert directions(held) == ["sendonly"]


def test_trailing_empty_line_is_tolerated_and_kept() -> None:
    data = body(*HEAD, *AUDIO) + b"\r\n"
    held = hold_offer(data)
    assert held == body(*HEAD, *AUDIO, "a=sendonly") + b"\r\n"


def test_direction_with_trailing_space_is_recognised() -> None:
    data = body(*HEAD, *AUDIO, "a=recvonly ")
    assert directions(data) == ["recvonly"]
    assert hold_offer(data) == body(*HEAD, *AUDIO, "a=inactive")


# -- o= version --------------------------------------------------------------------------------------


def test_bump_version_increments_by_one_and_keeps_the_rest() -> None:
    data = body(*HEAD, *AUDIO)
    bumped = bump_version(data)
    assert parse(bumped).version == parse(data).version + 1
    before, after = raw_lines(data), raw_lines(bumped)
    assert after[1] == b"o=alice 2890844526 2890844528 IN IP4 192.0.2.10\r\n"
    assert before[:1] + before[2:] == after[:1] + after[2:]
    assert sdp_transform.parse(bumped.decode())["origin"]["sessionVersion"] == 2890844528


def test_bump_version_to_and_odd_spacing() -> None:
    data = b"v=0\no=-  7   0009 IN  IP4 host.example \ns=-\nt=0 0\n"
    assert bump_version(data) == b"v=0\no=-  7   10 IN  IP4 host.example \ns=-\nt=0 0\n"
    assert bump_version(data, to=2**70).split(b"\n")[1] == f"o=-  7   {2**70} IN  IP4 host.example ".encode()
    with pytest.raises(ValueError, match="negative"):
        bump_version(data, to=-1)


def test_bump_version_beyond_64_bits() -> None:
    data = body("v=0", f"o=- 1 {2**63 - 1} IN IP4 192.0.2.1", "s=-", "t=0 0")
    assert parse(bump_version(data)).version == 2**63


# -- answers to a hold offer -------------------------------------------------------------------------


@pytest.mark.parametrize(("offered", "answered", "ok"), [
    ("sendonly", "recvonly", True),
    ("sendonly", "inactive", True),
    ("sendonly", "sendrecv", False),
    ("sendonly", "sendonly", False),
    ("inactive", "inactive", True),
    ("inactive", "recvonly", False),
    ("inactive", "sendrecv", False),
    ("recvonly", "sendonly", True),
    ("recvonly", "recvonly", False),
    ("sendrecv", "sendonly", True),
    ("sendrecv", "sendrecv", True),
])
def test_hold_answers(offered: str, answered: str, ok: bool) -> None:
    offer = body(*HEAD, *AUDIO, f"a={offered}")
    answer = body(*HEAD, *AUDIO, f"a={answered}")
    assert (answer_mismatches(offer, answer) == []) is ok


def test_hold_answer_streams() -> None:
    offer = hold_offer(body(*HEAD, *AUDIO, *VIDEO))
    assert not answer_mismatches(offer, body(*HEAD, *AUDIO, "a=recvonly", "m=video 0 RTP/AVP 99"))
    assert answer_mismatches(offer, body(*HEAD, *AUDIO, "a=recvonly")) == [
        "offer has 2 m= lines, answer has 1"]
    assert answer_mismatches(offer, body(*HEAD, *AUDIO, "a=recvonly", *VIDEO)) == [
        "stream 1: offer sendonly, answer sendrecv"]
    rejected = body(*HEAD, "m=audio 0 RTP/AVP 0")
    assert not answer_mismatches(rejected, rejected)
    assert answer_mismatches(rejected, body(*HEAD, "m=audio 4000 RTP/AVP 0")) == [
        "stream 0: offered with port 0, answered with port 4000"]
    with pytest.raises(ParseError):
        answer_mismatches(offer, b"garbage")


# -- the click-to-dial offer -------------------------------------------------------------------------


@pytest.mark.parametrize(("address", "ip"), [("192.0.2.7", 4), ("2001:db8::7", 6)])
def test_inactive_offer(address: str, ip: int) -> None:
    data = inactive_offer(address, 1234, 1)
    parsed = sdp_transform.parse(data.decode())
    assert parsed["origin"] == {"username": "call-api", "sessionId": 1234, "sessionVersion": 1, "netType": "IN",
                                "ipVer": ip, "address": address}
    assert parsed["connection"] == {"version": ip, "ip": address}
    assert parsed["media"][0]["direction"] == "inactive"
    assert parsed["media"][0]["port"] == 9
    assert directions(data) == ["inactive"]
    assert all(line.endswith(b"\r\n") for line in raw_lines(data))
    assert parse(bump_version(data)).version == 2


def test_inactive_offer_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        inactive_offer("", 1, 1)
    with pytest.raises(ValueError):
        inactive_offer("192.0.2.1\r\nm=video", 1, 1)
    with pytest.raises(ValueError):
        inactive_offer("192.0.2.1", 1, 1, username="two words")
    with pytest.raises(ValueError):
        inactive_offer("192.0.2.1", -1, 1)


# -- malformed input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [
    b"",
    b"\r\n",
    b"v=1\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n",
    b"o=- 1 1 IN IP4 192.0.2.1\r\nv=0\r\n",
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nnot a line\r\n",
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n\r\ns=-\r\n",
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n1=x\r\n",
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=a\rb\r\n",
    b"v=0\r\ns=-\r\n",
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\no=- 1 1 IN IP4 192.0.2.1\r\n",
    b"v=0\r\no=- 1 IN IP4 192.0.2.1\r\n",
    b"v=0\r\no=- 1 x IN IP4 192.0.2.1\r\n",
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.1 extra\r\n",
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nm=audio RTP/AVP 0\r\n",
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP\r\n",
    b"v=0\r\nm=audio 4000 RTP/AVP 0\r\no=- 1 1 IN IP4 192.0.2.1\r\n",
])
def test_malformed_raises_parse_error(data: bytes) -> None:
    for function in (parse, directions, hold_offer, resume_offer, bump_version):
        with pytest.raises(ParseError) as info:
            function(data)
        assert info.value.status == 400


# -- property: edits touch only direction lines ------------------------------------------------------

maybe_direction = st.one_of(st.none(), st.sampled_from(DIRECTIONS))
media_section = st.tuples(st.sampled_from(["audio", "video"]), st.sampled_from([0, 4000, 5002]), maybe_direction,
                          st.booleans())


@given(st.lists(media_section, max_size=4), maybe_direction, st.sampled_from(["\r\n", "\n"]))
def test_hold_and_resume_property(
    sections: list[tuple[str, int, str | None, bool]], session: str | None, eol: str,
) -> None:
    lines = [*HEAD, *([f"a={session}"] if session else [])]
    for kind, port, direction, extra in sections:
        lines.append(f"m={kind} {port} RTP/AVP 0")
        if direction and extra:
            lines.append(f"a={direction}")
        lines += ["a=rtpmap:0 PCMU/8000"] if extra else []
        if direction and not extra:
            lines.append(f"a={direction}")
    data = body(*lines, eol=eol)
    before = parse(data)
    held = hold_offer(data)
    after = parse(held)
    assert st_directions(held) == after.directions
    for old, new in zip(before.media, after.media, strict=True):
        assert new.port == old.port
        assert new.direction == (HELD[old.direction] if old.active else old.direction)
        assert new.own_direction is not None or not new.active or new.direction == "sendrecv"
    assert after.session_direction is None
    not_direction = [line for line in raw_lines(data) if line.rstrip() not in {f"a={d}".encode() for d in DIRECTIONS}]
    assert [line for line in raw_lines(held) if line in not_direction] == not_direction
    assert all(line.endswith(eol.encode()) for line in raw_lines(held))
    assert hold_offer(held) == held
    resumed = parse(resume_offer(held))
    assert [m.direction for m in resumed.media if m.active] == ["sendrecv"] * sum(m.active for m in before.media)
    assert parse(bump_version(held)).version == before.version + 1


# -- origin_of: the o= line alone, as a relay reads it ----------------------------------------------


@given(st.lists(media_section, max_size=3), st.sampled_from(["\r\n", "\n"]),
       st.from_regex(r"[a-z0-9-]{1,12}", fullmatch=True), st.integers(0, 2**70), st.sampled_from([" ", "  ", "\t"]),
       st.booleans())
def test_origin_of_equals_the_full_parse(sections: list[tuple[str, int, str | None, bool]], eol: str, user: str,
                                         version: int, gap: str, media_origin: bool) -> None:
    lines = ["v=0", f"o={user}{gap}2890844526{gap}{version} IN IP4 192.0.2.10", "s=-", "t=0 0"]
    for kind, port, direction, _ in sections:
        lines.append(f"m={kind} {port} RTP/AVP 0")
        lines += [f"a={direction}"] if direction else []
        lines += ["o=media-level 1 1 IN IP4 192.0.2.99"] if media_origin else []
    data = body(*lines, eol=eol)
    assert origin_of(data) == parse(data).origin


@pytest.mark.parametrize("data", [
    b"", b"v=1\r\no=- 1 1 IN IP4 192.0.2.1\r\n", b"v=0\r\ns=-\r\n",
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\no=- 1 1 IN IP4 192.0.2.1\r\n",
    b"v=0\r\no=- 1 IN IP4 192.0.2.1\r\n", b"v=0\r\no=- 1 x IN IP4 192.0.2.1\r\n",
    b"v=0\r\nm=audio 4000 RTP/AVP 0\r\no=- 1 1 IN IP4 192.0.2.1\r\n",
])
def test_origin_of_refuses_what_parse_refuses_for_the_origin(data: bytes) -> None:
    with pytest.raises(ParseError):
        origin_of(data)
