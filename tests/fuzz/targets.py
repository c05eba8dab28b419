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
* ``stack``: datagrams from two phones (a recorded call through the service, mutated) into the UA core
  with the B2BUA on it, on a fake clock: no exception escapes, every datagram the service sends parses
  and passes the checks (error answers to requests missing a mandatory header aside), and once the
  service shuts down and the clock passes 64*T1 and the answer timeout, no transaction, session or call
  is left.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable

from b2bua.call.b2bua import B2bua, B2buaSettings
from b2bua.errors import ParseError
from b2bua.io.framing import StreamFramer
from b2bua.sip import sdp
from b2bua.sip.address import Destination
from b2bua.sip.message import Message
from b2bua.sip.parser import check_message, parse_message
from b2bua.sip.timers import TimerSettings
from b2bua.sip.ua import UaSettings, UserAgent
from rpc import errors as rpc_errors
from rpc.jsonrpc import Accepted, Refused, parse_frame

from ..sipnet import CountingIds

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


# -- the whole stack: transaction layer, UA core and B2BUA on a fake clock ------------------------------------

#: Where the recorded peers sit (tests/fuzz/corpus.py records a flow between them through the service).
PEERS = (Destination("udp", "127.0.0.2", 5060), Destination("udp", "127.0.0.3", 5060))
SERVICE = ("127.0.0.1", 5080)
_RECORD = struct.Struct(">BHH")


def records(data: bytes) -> list[tuple[int, float, bytes]]:
    """``data`` as (peer index, seconds since the previous datagram, datagram) records: one byte of peer,
    two of milliseconds, two of length, then the datagram; a truncated record ends the list."""
    out = []
    at = 0
    while at + _RECORD.size <= len(data):
        peer, millis, length = _RECORD.unpack_from(data, at)
        at += _RECORD.size
        out.append((peer % len(PEERS), millis / 1000, data[at:at + length]))
        at += length
    return out


def encode(items: list[tuple[int, float, bytes]]) -> bytes:
    return b"".join(_RECORD.pack(peer, min(65535, round(delay * 1000)), len(d)) + d for peer, delay, d in items)


def service() -> tuple[UserAgent, B2bua]:
    """The service as the recorded flows met it: deterministic ids, so its branches and tags repeat."""
    ua = UserAgent(CountingIds("service"), UaSettings(host=SERVICE[0], port=SERVICE[1]), TimerSettings())
    return ua, B2bua(ua, B2buaSettings())


def _check_sent(out: bytes) -> None:
    """What the service sends parses and passes the checks, but for an error answer to a request that
    lacked a mandatory header: it can only copy what was there (RFC 4475's insuf.dat gets such a 400)."""
    if out.startswith(b"SIP/2.0 "):
        status = int(out[8:11])
        assert 100 <= status < 700, out[:40]
        if status >= 400:
            return
    check_message(parse_message(out))


def stack(data: bytes) -> None:
    ua, app = service()
    now = 0.0

    def pump() -> None:
        for _ in range(1000):
            events = ua.take_events()
            if not events:
                break
            for event in events:
                app.handle(event, now)
        for out, _ in ua.take_datagrams():
            _check_sent(out)

    def run_timers(until: float) -> None:
        nonlocal now
        while (deadline := ua.get_timer()) is not None and deadline <= until:
            now = max(now, deadline)
            ua.handle_timer(now)
            pump()
        now = max(now, until)

    for peer, delay, datagram in records(data)[:32]:
        run_timers(now + delay)
        ua.receive(datagram, PEERS[peer], now)
        pump()
    ua.shutdown(now)
    pump()
    run_timers(now + 64 * TimerSettings().T1 + B2buaSettings().answer_timeout + 5)
    assert len(ua.layer) == 0, f"{len(ua.layer)} transactions left"
    assert ua.sessions == [], ua.sessions
    assert len(app.table) == 0, "calls left"


TARGETS["stack"] = stack
