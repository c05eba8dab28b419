"""Cutting a SIP byte stream into messages without parsing them (RFC 3261 section 18.3).

The shell hands each message's raw bytes to the core, which parses them once. The rules are those of
:class:`b2bua.sip.parser.StreamReader`: CRLFs before a start line are skipped (section 7.5), each
double CRLF among them is a keep-alive ping (RFC 5626 section 3.5.1), the header ends at the first
empty line, Content-Length (or its compact form ``l``) is mandatory and sizes the body, and no message
may be larger than ``max_size``. After a framing error the stream cannot be resynchronised.
"""

from __future__ import annotations

import re

from ..errors import ParseError

__all__ = ["StreamFramer"]

_CONTENT_LENGTH = re.compile(rb"\r\n(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE)


class StreamFramer:
    """Feed bytes as they arrive, take whole messages; count pings; stop at the first framing error."""

    __slots__ = ("_buf", "_crlfs", "_max", "_need", "_scan", "error", "pings")

    def __init__(self, max_size: int = 65535) -> None:
        self._buf = bytearray()
        self._max = max_size
        #: Length of the message being received once its header is complete, else -1.
        self._need = -1
        #: Where, from the message start, the search for the empty line resumes; 0 between messages.
        self._scan = 0
        #: CRLFs seen between messages since the last ping.
        self._crlfs = 0
        #: Double-CRLF keep-alives seen so far; each wants a single-CRLF pong (RFC 5626 section 4.4.1).
        self.pings = 0
        #: Why the stream is unusable (the caller closes it), or ``None``.
        self.error: ParseError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held: the start of a message not complete yet."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the raw messages they complete, in order.

        Bad framing sets :attr:`error` (the messages completed before it are still returned) and every
        later call returns nothing.
        """
        if self.error is not None:
            return []
        buf = self._buf
        view: bytes | bytearray
        if buf:
            buf += data
            view = buf
        else:
            view = data
        end = len(view)
        start = 0
        need = self._need
        out: list[bytes] = []
        try:
            while True:
                if need < 0:
                    scan = self._scan
                    if not scan:
                        while view.startswith(b"\r\n", start):
                            start += 2
                            self._crlfs += 1
                            if self._crlfs == 2:
                                self._crlfs = 0
                                self.pings += 1
                        if start == end or (start + 1 == end and view[start] == 13):
                            break
                        self._crlfs = 0
                    head_end = view.find(b"\r\n\r\n", start + scan)
                    if head_end < 0:
                        size = end - start
                        if size > self._max:
                            raise ParseError("headers too large", 513)
                        self._scan = max(size - 3, 1)
                        break
                    need = head_end + 4 - start + _content_length(view, start, head_end, self._max)
                    self._scan = 0
                    if need > self._max:
                        raise ParseError("message too large", 513)
                if end - start < need:
                    break
                out.append(bytes(view[start : start + need]))
                start += need
                need = -1
        except ParseError as error:
            # Without its traceback: the traceback's frames hold this framer, which would hold the error, a
            # reference cycle that keeps the connection's objects once they are frozen (b2bua/io/collector.py).
            self.error = error.with_traceback(None)
            buf.clear()
            return out
        self._need = need
        if view is buf:
            if start:
                del buf[:start]
        elif start < end:
            buf += view[start:]
        return out


def _content_length(view: bytes | bytearray, start: int, head_end: int, limit: int) -> int:
    match = _CONTENT_LENGTH.search(view, start, head_end)
    if match is None:
        raise ParseError("Content-Length is required on a stream", header="Content-Length")
    text = match.group(1).strip(b" \t")
    if not text.isdigit() or len(text) > 12 or int(text) > limit:
        raise ParseError(f"bad Content-Length {text[:20]!r}", header="Content-Length")
    return int(text)
