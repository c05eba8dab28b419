"""Fuzz targets (issue 17): each takes bytes, exercises one input surface, and checks invariants.

A target returns normally for any input the code handles as it should (accepted, or refused with the
documented exception) and raises ``AssertionError`` (or lets an undocumented exception escape) when an
invariant breaks. ``tests/fuzz/run.py`` drives them with atheris (coverage-guided) for the long runs;
``tests/test_fuzz.py`` replays the seed corpus and a few thousand deterministic mutations in the suite.

Invariants:

* ``parser``: :func:`parse_message` raises only :class:`ParseError`; a message it accepts and
  :func:`check_message` passes serializes to bytes that parse and check again, to the same start line,
  header fields (Content-Length aside: it is written for the body sent) and body.
* ``framing``: the TCP framer gives the same messages and the same error whether the bytes arrive at
  once or split anywhere; every message it frames is no longer than its limit.
* ``sdp``: :func:`sdp.parse` raises only :class:`ParseError`; the line editor's hold, resume and version
  bump of a body that parses give bodies that parse, with the directions asked for and the version moved.
* ``jsonrpc``: :func:`parse_frame` never raises; every reply it makes is JSON with the JSON-RPC 2.0
  envelope, and every error code is one docs/API.md lists.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from b2bua.errors import ParseError
from b2bua.io.framing import StreamFramer
from b2bua.sip import sdp
from b2bua.sip.message import Message
from b2bua.sip.parser import check_message, parse_message
from rpc import errors as rpc_errors
from rpc.jsonrpc import Accepted, Refused, parse_frame

#: Every JSON-RPC error code the service may send (docs/API.md).
CODES = frozenset({rpc_errors.PARSE_ERROR, rpc_errors.INVALID_REQUEST, rpc_errors.METHOD_NOT_FOUND,
                   rpc_errors.INVALID_PARAMS, rpc_errors.INTERNAL, rpc_errors.CALL_NOT_FOUND,
                   rpc_errors.CALL_STATE, rpc_errors.BUSY, rpc_errors.NOT_AVAILABLE})


def parser(data: bytes) -> None:
    try:
        msg = parse_message(data, check=False)
        check_message(msg)
    except ParseError:
        return
    out = msg.serialize()
    again = parse_message(out)
    check_message(again)
    assert type(again) is type(msg), (msg, again)
    assert again.start_line() == msg.start_line(), (msg.start_line(), again.start_line())
    assert _fields(again) == _fields(msg), out
    assert again.body == msg.body


def _fields(msg: Message) -> list[tuple[str, str]]:
    """The header fields but Content-Length, which serializing writes for the body it sends."""
    return [(f[0].lower(), f[1]) for f in msg.headers.fields() if f[0].lower() not in ("content-length", "l")]


def framing(data: bytes) -> None:
    if not data:
        return
    limit = 2048
    cut = data[0] % max(1, len(data))
    whole = StreamFramer(limit)
    at_once = whole.feed(data[1:])
    split = StreamFramer(limit)
    in_parts = split.feed(data[1:cut + 1]) + split.feed(data[cut + 1:])
    assert at_once == in_parts, (at_once, in_parts)
    assert (whole.error is None) == (split.error is None), (whole.error, split.error)
    assert whole.pings == split.pings
    assert all(len(m) <= limit for m in at_once)


def sdp_editor(data: bytes) -> None:
    try:
        parsed = sdp.parse(data)
    except ParseError:
        return
    assert parsed.to_bytes() == data
    held = sdp.parse(sdp.hold_offer(data))
    assert all(m.direction in ("sendonly", "inactive") for m in held.media if m.active), held.directions
    resumed = sdp.parse(sdp.resume_offer(data))
    assert all(m.direction == "sendrecv" for m in resumed.media if m.active), resumed.directions
    bumped = sdp.parse(sdp.bump_version(data))
    assert bumped.version == parsed.version + 1, (parsed.version, bumped.version)


def jsonrpc(data: bytes) -> None:
    frame = parse_frame(data, new_cmd_id=lambda: "cmd-1", is_running=lambda cmd_id: cmd_id == "taken")
    replies: list[str | None] = []
    for outcome in frame.outcomes:
        assert isinstance(outcome, Accepted | Refused)
        if isinstance(outcome, Refused):
            assert outcome.code in CODES, outcome
        reply = outcome.reply()
        if reply is not None:
            document = json.loads(reply)
            assert document["jsonrpc"] == "2.0" and "id" in document, document
            assert ("result" in document) != ("error" in document), document
            if "error" in document:
                assert document["error"]["code"] in CODES and isinstance(document["error"]["message"], str)
        replies.append(reply)
    text = frame.reply(replies)
    if text is not None:
        json.loads(text)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "parser": parser, "framing": framing, "sdp": sdp_editor, "jsonrpc": jsonrpc}
