"""A line-based SDP view and editor for hold and resume (RFC 4566, RFC 3264).

The B2BUA relays SDP untouched. To hold or resume a leg it re-offers the other party's last SDP with
the direction attributes changed (RFC 3264 section 8.4) and the ``o=`` version incremented
(RFC 3264 section 8). Edits touch only the lines they must: every other line, with its own line
ending (CRLF, or a bare LF tolerated), leaves byte for byte as it came.

Where a direction is written: always at media level, replacing an existing media-level direction line
in place, else appended at the end of the media section. A session-level direction attribute is moved
down: it is removed from the session part and copied into each media section that had no direction of
its own (port-0 sections included), so every stream keeps its meaning (RFC 4566 section 6) and no
receiver has to weigh a session-level value against a media-level one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ParseError

#: The four direction attributes of RFC 4566 section 6 / RFC 3264 section 5.1.
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_DIRECTION_LINES = {b"a=" + d.encode(): d for d in DIRECTIONS}

#: Directions an answer may use for each offered direction (RFC 3264 section 6.1).
ANSWER_DIRECTIONS: dict[str, frozenset[str]] = {
    "sendrecv": frozenset(DIRECTIONS),
    "sendonly": frozenset({"recvonly", "inactive"}),
    "recvonly": frozenset({"sendonly", "inactive"}),
    "inactive": frozenset({"inactive"}),
}

#: o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address> (RFC 4566 section 5.2).
_ORIGIN = re.compile(rb"((\S+)[ \t]+(\S+)[ \t]+)(\d+)((?:[ \t]+\S+){3}[ \t]*)")
_MEDIA = re.compile(rb"(\S+)[ \t]+(\d+)(?:/\d+)?[ \t]+(\S+)((?:[ \t]+\S+)+)[ \t]*")


@dataclass(frozen=True, slots=True)
class Line:
    """One SDP line: its bytes without the line ending, and the ending it had (CRLF, LF or none at EOF)."""

    content: bytes
    ending: bytes

    @property
    def raw(self) -> bytes:
        """The line exactly as it appeared in the body."""
        return self.content + self.ending


@dataclass(frozen=True, slots=True)
class Origin:
    """The ``o=`` fields (RFC 4566 section 5.2); ``sess_version`` may exceed 64 bits."""

    username: str
    sess_id: str
    sess_version: int
    rest: str
    """Network type, address type and unicast address, as written."""


@dataclass(frozen=True, slots=True)
class Media:
    """One media section: the ``m=`` line at ``start`` up to (not including) line ``end``."""

    start: int
    end: int
    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    own_direction: str | None
    """The media-level direction attribute, if any."""
    direction: str
    """Effective direction: media level, else session level, else sendrecv (RFC 3264 section 5.1)."""

    @property
    def active(self) -> bool:
        """False for a rejected or disabled stream, marked by port 0 (RFC 3264 section 8.2)."""
        return self.port != 0


@dataclass(frozen=True, slots=True)
class Sdp:
    """A parsed SDP body: all lines, the session part ``lines[:session_end]`` and the media sections."""

    lines: tuple[Line, ...]
    session_end: int
    origin_index: int
    origin: Origin
    session_direction: str | None
    media: tuple[Media, ...]

    @property
    def version(self) -> int:
        """The ``o=`` sess-version."""
        return self.origin.sess_version

    @property
    def directions(self) -> list[str]:
        """The effective direction of each media section, in order."""
        return [m.direction for m in self.media]

    def to_bytes(self) -> bytes:
        """The body, byte for byte."""
        return b"".join(line.raw for line in self.lines)


def _split(body: bytes) -> list[Line]:
    lines: list[Line] = []
    start = 0
    while start < len(body):
        nl = body.find(b"\n", start)
        end = len(body) if nl < 0 else nl + 1
        raw = body[start:end]
        if raw.endswith(b"\r\n"):
            lines.append(Line(raw[:-2], b"\r\n"))
        elif raw.endswith(b"\n"):
            lines.append(Line(raw[:-1], b"\n"))
        else:
            lines.append(Line(raw, b""))
        start = end
    return lines


def _direction(line: Line) -> str | None:
    return _DIRECTION_LINES.get(line.content.rstrip(b" \t"))


def _direction_of(lines: Sequence[Line]) -> str | None:
    return next((d for d in map(_direction, lines) if d is not None), None)


def parse(body: bytes) -> Sdp:
    """Parse an SDP body (RFC 4566 section 5); raise :class:`ParseError` when it is malformed.

    Trailing empty lines, which some stacks append, are tolerated and kept.
    """
    lines = _split(body)
    count = len(lines)
    while count and not lines[count - 1].content:
        count -= 1
    if not count or lines[0].content != b"v=0":
        raise ParseError("SDP must start with v=0")
    for line in lines[:count]:
        c = line.content
        if len(c) < 2 or c[1:2] != b"=" or not c[:1].isalpha() or b"\r" in c or b"\0" in c:
            raise ParseError(f"malformed SDP line: {c[:40]!r}")
    starts = [i for i in range(count) if lines[i].content.startswith(b"m=")]
    session_end = starts[0] if starts else count
    origins = [i for i in range(session_end) if lines[i].content.startswith(b"o=")]
    if len(origins) != 1:
        raise ParseError("SDP needs exactly one o= line in the session part")
    match = _ORIGIN.fullmatch(lines[origins[0]].content[2:])
    if match is None:
        raise ParseError(f"malformed o= line: {lines[origins[0]].content[:80]!r}")
    origin = Origin(match[2].decode(errors="replace"), match[3].decode(errors="replace"), int(match[4]),
                    match[5].strip().decode(errors="replace"))
    session_direction = _direction_of(lines[:session_end])
    media: list[Media] = []
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        m = _MEDIA.fullmatch(lines[start].content[2:])
        if m is None:
            raise ParseError(f"malformed m= line: {lines[start].content[:80]!r}")
        own = _direction_of(lines[start + 1:end])
        media.append(Media(start, end, m[1].decode(errors="replace"), int(m[2]), m[3].decode(errors="replace"),
                           tuple(m[4].decode(errors="replace").split()), own,
                           own or session_direction or "sendrecv"))
    return Sdp(tuple(lines), session_end, origins[0], origin, session_direction, tuple(media))


_SESSION_ORIGIN = re.compile(rb"\no=([^\r\n]*)")


def origin_of(body: bytes) -> Origin:
    """The ``o=`` line of ``body``, read without parsing the rest (what a relay needs per message): the
    one ``o=`` line of the session part, before the first ``m=`` line; raise :class:`ParseError`
    when the body does not start with ``v=0`` or has no such line, several, or a malformed one. For a
    well-formed SDP it is ``parse(body).origin`` (tests/test_sdp.py checks this on generated bodies)."""
    if not body.startswith(b"v=0"):
        raise ParseError("SDP must start with v=0")
    media = body.find(b"\nm=")
    found = _SESSION_ORIGIN.findall(body if media < 0 else body[:media])
    if len(found) != 1:
        raise ParseError("SDP needs exactly one o= line in the session part")
    match = _ORIGIN.fullmatch(found[0])
    if match is None:
        raise ParseError(f"malformed o= line: {found[0][:80]!r}")
    return Origin(match[2].decode(errors="replace"), match[3].decode(errors="replace"), int(match[4]),
                  match[5].strip().decode(errors="replace"))


def directions(body: bytes) -> list[str]:
    """The effective direction of each media section of ``body``, in order (RFC 3264 section 5.1)."""
    return parse(body).directions


def _default_ending(lines: Sequence[Line]) -> bytes:
    return next((line.ending for line in lines if line.ending), b"\r\n")


def _rewrite(sdp: Sdp, wanted: Sequence[str | None]) -> bytes:
    """Give media section ``i`` direction ``wanted[i]`` (None: keep its meaning), moving session level down."""
    default = _default_ending(sdp.lines)
    moved = sdp.session_direction
    out = [line for line in sdp.lines[:sdp.session_end] if _direction(line) is None]
    for media, target in zip(sdp.media, wanted, strict=True):
        section = list(sdp.lines[media.start:media.end])
        if media.own_direction is not None:
            if target is not None:
                section = [Line(b"a=" + target.encode(), line.ending) if _direction(line) else line
                           for line in section]
            out.extend(section)
            continue
        target = target or moved
        if target is not None and target != "sendrecv":
            last = max(i for i, line in enumerate(section) if line.content)
            before = section[last]
            if before.ending:
                section.insert(last + 1, Line(b"a=" + target.encode(), before.ending))
            else:
                section[last] = Line(before.content, default)
                section.insert(last + 1, Line(b"a=" + target.encode(), b""))
        out.extend(section)
    return b"".join(line.raw for line in out)


def set_direction(body: bytes, direction: str) -> bytes:
    """Give every active stream (port != 0) ``direction`` at media level (RFC 3264 sections 5.1 and 8.4)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}")
    sdp = parse(body)
    return _rewrite(sdp, [direction if m.active else None for m in sdp.media])


def hold_offer(body: bytes) -> bytes:
    """Put every active stream on hold (RFC 3264 section 8.4).

    A stream becomes ``sendonly``, or ``inactive`` when it was ``recvonly`` or ``inactive``.
    The caller still bumps the version with :func:`bump_version`.
    """
    sdp = parse(body)
    held = {"sendrecv": "sendonly", "sendonly": "sendonly", "recvonly": "inactive", "inactive": "inactive"}
    return _rewrite(sdp, [held[m.direction] if m.active else None for m in sdp.media])


def resume_offer(body: bytes) -> bytes:
    """Take every active stream off hold: back to ``sendrecv`` (RFC 3264 section 8.4)."""
    return set_direction(body, "sendrecv")


def bump_version(body: bytes, to: int | None = None) -> bytes:
    """Increment the ``o=`` sess-version by one, or set it to ``to`` (RFC 3264 section 8).

    Only the version digits change; the rest of the line and the body stay byte for byte.
    """
    sdp = parse(body)
    version = sdp.origin.sess_version + 1 if to is None else to
    if version < 0:
        raise ValueError("sess-version must not be negative")
    line = sdp.lines[sdp.origin_index]
    match = _ORIGIN.fullmatch(line.content[2:])
    assert match is not None
    content = b"o=" + match[1] + str(version).encode() + match[5]
    lines = list(sdp.lines)
    lines[sdp.origin_index] = Line(content, line.ending)
    return b"".join(x.raw for x in lines)


def set_origin(body: bytes, username: str, sess_id: str, version: int) -> bytes:
    """Write ``username``, ``sess_id`` and ``version`` into the ``o=`` line, keeping its network part.

    A B2BUA that changes which party's SDP a leg receives (a transfer, a Replaces) keeps that leg's view
    of one session: the same origin, the version one above the last (RFC 3264 section 8).
    """
    if version < 0 or not username or not sess_id or any(c in username + sess_id for c in " \t\r\n"):
        raise ValueError("bad o= username, sess-id or version")
    sdp = parse(body)
    line = sdp.lines[sdp.origin_index]
    match = _ORIGIN.fullmatch(line.content[2:])
    assert match is not None
    content = b"o=" + f"{username} {sess_id} {version}".encode() + match[5]
    lines = list(sdp.lines)
    lines[sdp.origin_index] = Line(content, line.ending)
    return b"".join(x.raw for x in lines)


def answer_mismatches(offer: bytes, answer: bytes) -> list[str]:
    """Why ``answer`` does not fit ``offer`` (RFC 3264 section 6); an empty list when it does.

    The answer needs as many m= lines as the offer (section 6); a stream offered with port 0 must stay
    port 0 (section 8.2); an active stream may be rejected with port 0, else its direction must be one
    allowed for the offered direction (section 6.1), e.g. recvonly or inactive for a sendonly hold offer.
    """
    off, ans = parse(offer), parse(answer)
    if len(off.media) != len(ans.media):
        return [f"offer has {len(off.media)} m= lines, answer has {len(ans.media)}"]
    problems: list[str] = []
    for i, (o, a) in enumerate(zip(off.media, ans.media, strict=True)):
        if not o.active:
            if a.active:
                problems.append(f"stream {i}: offered with port 0, answered with port {a.port}")
        elif a.active and a.direction not in ANSWER_DIRECTIONS[o.direction]:
            problems.append(f"stream {i}: offer {o.direction}, answer {a.direction}")
    return problems


def inactive_offer(address: str, session_id: int, version: int, username: str = "call-api") -> bytes:
    """A minimal offer with no media flowing, for the first INVITE of click-to-dial (RFC 3264 section 5).

    It carries one audio stream on port 9 (discard) marked ``a=inactive``: a port-0 stream would be
    rejected for good (RFC 3264 section 8.2), while an inactive one is accepted and later re-offered
    with the other party's SDP. The address type is IP6 when ``address`` contains ':'.
    """
    if session_id < 0 or version < 0:
        raise ValueError("session id and version must not be negative")
    for name, value in (("address", address), ("username", username)):
        if not value or any(c.isspace() for c in value):
            raise ValueError(f"{name} must be non-empty without whitespace: {value!r}")
    addrtype = "IP6" if ":" in address else "IP4"
    text = (f"v=0\r\no={username} {session_id} {version} IN {addrtype} {address}\r\ns=-\r\n"
            f"c=IN {addrtype} {address}\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\na=inactive\r\n")
    return text.encode()
