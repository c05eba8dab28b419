"""The exceptions of the SIP message layer.

A malformed message raises :class:`ParseError` and nothing else; it carries the status a UAS answers
with (RFC 3261 section 8.2 and 21), so the layer above turns bad bytes into a response, never a crash.
"""

from __future__ import annotations


class SipError(Exception):
    """Base of every exception raised by :mod:`b2bua.sip`."""


class ParseError(SipError, ValueError):
    """Bytes that are not a valid SIP message, header or URI.

    ``status`` is the response a UAS should send when the bad input is a request: 400 for syntax,
    505 for an unknown SIP version, 413 for a message over the size limit, 416 for an unknown
    URI scheme in the Request-URI, 501 for an unknown method whose CSeq disagrees.
    ``header`` names the offending header when there is one, for the reason phrase.
    """

    def __init__(self, reason: str, status: int = 400, header: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.header = header

    def __repr__(self) -> str:
        return f"ParseError({self.reason!r}, status={self.status}, header={self.header!r})"
