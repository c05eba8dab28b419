"""Framing and parsing: datagrams (RFC 3261 section 18.3) and the TCP stream reader.

:func:`parse_message` turns one datagram into a :class:`Request` or :class:`Response` and checks what
every layer above relies on: the start line, the mandatory headers (From, To, Call-ID, CSeq, Via) present
once each and well formed, CSeq's method equal to the request's, Max-Forwards and Content-Length in
range. Anything else raises :class:`ParseError` with the status to answer. Other headers are only split
into name and value; their structure is parsed when the code asks for it.

Choices where RFC 4475 lets an element pick: extra spaces in the request line (section 3.1.2.9/3.1.2.10)
are rejected with 400, since a B2BUA must never forward them; bare LF line ends are tolerated when a
message uses them throughout, as many phones' stacks do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ParseError
from .grammar import is_token
from .headers import is_name_addr, parse_cseq, parse_name_addr, parse_top_via, parse_uint
from .message import _FIRST, COMPACT_FORMS, Field, Headers, Message, Request, Response, canonical_name

#: Methods defined by RFC 3261 and the extensions the service knows (for 501 vs 400 on a CSeq mismatch).
KNOWN_METHODS = frozenset(
    {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE", "NOTIFY", "PUBLISH",
     "INFO", "REFER", "MESSAGE", "UPDATE"}
)

_VERSION = re.compile(r"SIP/(\d+)\.(\d+)\Z", re.I)
_STATUS = re.compile(r"SIP/(\d+)\.(\d+) ([1-6]\d\d)(?: (.*))?\Z", re.I | re.S)
_FOLD = re.compile(r"\r?\n[ \t]+")
_WSP = (" ", "\t")
_SINGLE = ("from", "to", "call-id", "cseq", "max-forwards", "content-length", "content-type")
_SINGLE_SET = frozenset(_SINGLE)
_COMMON_NAMES = (
    "Via", "From", "To", "Call-ID", "CSeq", "Contact", "Max-Forwards", "Content-Length", "Content-Type",
    "Record-Route", "Route", "Allow", "Supported", "Require", "Proxy-Require", "Unsupported", "Accept",
    "User-Agent", "Server", "Expires", "WWW-Authenticate", "Proxy-Authenticate", "Authorization",
    "Proxy-Authorization", "Subscription-State", "Replaces", "Event", "Refer-To", "Referred-By", "Date",
    "Timestamp", "Session-Expires", "Min-SE", "P-Asserted-Identity", "Allow-Events", "Content-Disposition",
)
#: Header names as phones commonly spell them -> key, so the hot loop skips lower() and checks.
_KEY_OF: dict[str, str] = {}
for _name in _COMMON_NAMES:
    for _spelling in (_name, _name.lower(), _name.upper()):
        _KEY_OF[_spelling] = _name.lower()
for _short, _long in COMPACT_FORMS.items():
    _KEY_OF[_short] = _KEY_OF[_short.upper()] = _long
_KEY_OF["CSeq"] = "cseq"
_KEY_OF["Call-Id"] = "call-id"


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what the parser accepts; past them it raises instead of growing."""

    #: Largest message, start line to end of body (RFC 3261 section 18.1.1 suggests UDP path MTU; TCP allows more).
    max_size: int = 65535
    #: Most header fields (after unfolding).
    max_headers: int = 256
    #: Longest start line or header field, in characters.
    max_line: int = 8192


DEFAULT_LIMITS = Limits()


def parse_message(
    data: bytes, limits: Limits = DEFAULT_LIMITS, *, stream: bool = False, check: bool = True
) -> Request | Response:
    """Parse one whole message: a datagram, or (``stream=True``) one framed by :class:`StreamReader`.

    On UDP the body runs to the end of the datagram when Content-Length is absent, and octets past
    Content-Length are ignored (RFC 3261 section 18.3; RFC 4475 section 3.1.1.8).

    Framing, the start line and the presence and count of the mandatory headers are always checked.
    With ``check=False`` the structure of Via, From, To, CSeq and Max-Forwards is left for
    :func:`check_message` or first use: the transaction layer reads only the keys of a retransmission,
    and calls :func:`check_message` before a message reaches the layers above.
    """
    if len(data) > limits.max_size:
        raise ParseError("message too large", 513)
    start = 0
    while data.startswith(b"\r\n", start):
        start += 2
    end = data.find(b"\r\n\r\n", start)
    if end >= 0:
        head = data[start:end].decode("utf-8", "surrogateescape")
        rest = data[end + 4 :]
        lines = head.split("\r\n")
    else:
        end = data.find(b"\n\n", start)
        if end >= 0:
            head = data[start:end].decode("utf-8", "surrogateescape")
            rest = data[end + 2 :]
            lines = head.replace("\r\n", "\n").split("\n")
        elif data.endswith(b"\r\n") and not stream:
            # A datagram that ends after its last header without the empty line: nothing can follow,
            # so the message is unambiguous; accept it with an empty body.
            head = data[start:-2].decode("utf-8", "surrogateescape")
            rest = b""
            lines = head.split("\r\n")
        else:
            raise ParseError("no empty line after the headers")
    msg = _build(lines, rest, limits, stream, "\n " in head or "\n\t" in head)
    if check:
        check_message(msg)
    return msg


def _build(lines: list[str], rest: bytes, limits: Limits, stream: bool, folded: bool) -> Request | Response:
    start_line = lines[0]
    if len(start_line) > limits.max_line:
        raise ParseError("start line too long", 414 if not start_line.startswith("SIP/") else 400)
    fields = _split_fields(lines, limits, folded)
    headers = Headers(fields)
    msg = _response(start_line, headers) if start_line[:4].upper() == "SIP/" else _request(start_line, headers)
    length_text = _check(fields, headers._cache)
    if length_text is None:
        if stream:
            raise ParseError("Content-Length is required on a stream", header="Content-Length")
        msg.body = rest
    else:
        length = 0 if length_text == "0" else parse_uint(length_text, "Content-Length", limits.max_size)
        if length > len(rest):
            raise ParseError("Content-Length larger than the message", header="Content-Length")
        msg.body = rest[:length] if length != len(rest) else rest
    return msg


def _split_fields(lines: list[str], limits: Limits, folded: bool) -> list[Field]:
    """Header lines -> (key, value, raw) fields; folded lines (RFC 3261 section 7.3.1) are joined first."""
    del lines[0]
    if folded:
        lines = _unfold(lines)
    if len(lines) > limits.max_headers:
        raise ParseError("too many headers")
    if sum(map(len, lines)) > limits.max_line and max(map(len, lines), default=0) > limits.max_line:
        raise ParseError("header line too long")
    keys = _KEY_OF
    if folded:
        return [
            (keys.get((p := line.partition(":"))[0]) or _key(p, line), _FOLD.sub(" ", p[2]).strip(" \t"), line)
            for line in lines
        ]
    return [(keys.get((p := line.partition(":"))[0]) or _key(p, line), p[2].strip(" \t"), line) for line in lines]


def _unfold(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        if line[:1] in _WSP:
            if not out:
                raise ParseError("continuation line before the first header")
            out[-1] = out[-1] + "\r\n" + line
        else:
            out.append(line)
    return out


def _key(parts: tuple[str, str, str], line: str) -> str:
    name, colon, _ = parts
    if not colon:
        raise ParseError(f"header line without a colon: {line[:40]!r}")
    key = name.rstrip(" \t").lower()
    if len(key) == 1:
        return COMPACT_FORMS.get(key, key)
    if not is_token(key):
        raise ParseError(f"bad header name {name[:40]!r}")
    return key


def _check_version(version: str) -> str:
    if version == "SIP/2.0":
        return version
    m = _VERSION.match(version)
    if not m:
        raise ParseError(f"bad SIP version {version!r}")
    if (m.group(1), m.group(2)) != ("2", "0"):
        raise ParseError(f"unsupported SIP version {version!r}", 505)
    return "SIP/2.0"


def _request(start_line: str, headers: Headers) -> Request:
    parts = start_line.split(" ")
    if len(parts) != 3:
        raise ParseError(f"bad request line {start_line[:80]!r}")
    method, uri, version = parts
    if method not in KNOWN_METHODS and not is_token(method):
        raise ParseError(f"bad method {method[:40]!r}")
    if not uri or uri[0] == "<" or ":" not in uri or "\t" in uri:
        raise ParseError(f"bad Request-URI {uri[:80]!r}")
    return Request(method, uri, headers, b"", version if version == "SIP/2.0" else _check_version(version))


def _response(start_line: str, headers: Headers) -> Response:
    m = _STATUS.match(start_line)
    if not m:
        raise ParseError(f"bad status line {start_line[:80]!r}")
    if (m.group(1), m.group(2)) != ("2", "0"):
        raise ParseError(f"unsupported SIP version in {start_line[:40]!r}", 505)
    return Response(int(m.group(3)), m.group(4) or "", headers, b"")


def _check(fields: list[Field], cache: dict[str, object]) -> str | None:
    """The mandatory headers present, and the single-valued ones only once (RFC 3261 section 8.1.1, 20;
    RFC 4475 sections 3.3.1, 3.3.8, 3.3.9). Returns the Content-Length value, if any."""
    single = [(key, value) for key, value, _ in fields if key in _SINGLE_SET]
    seen = dict(single)
    if len(single) != len(seen) or not ("from" in seen and "to" in seen and "call-id" in seen and "cseq" in seen):
        _check_counts(fields)
    first = fields[0]
    via = first[1] if first[0] == "via" else next((f[1] for f in fields if f[0] == "via"), None)
    if via is None:
        raise ParseError("missing Via header", header="Via")
    seen["via"] = via
    cache[_FIRST] = seen
    return seen.get("content-length")


def check_message(msg: Message) -> None:
    """Parse and check the headers every layer relies on: the top Via, From, To, Call-ID, CSeq (whose method
    must be the request's) and Max-Forwards. Raises :class:`ParseError` with the status to answer."""
    cache = msg.headers._cache
    raw = msg.raw
    if "top-via" not in cache:
        value = raw("via")
        if value is None:
            raise ParseError("missing Via header", header="Via")
        cache["top-via"] = parse_top_via(value)
    call_id = raw("call-id") or ""
    if " " in call_id or "\t" in call_id or not call_id:
        raise ParseError(f"bad Call-ID {call_id!r}", header="Call-ID")
    if "from" not in cache:
        from_ = raw("from") or ""
        if not is_name_addr(from_):  # the usual form is checked here and parsed on first use
            cache["from"] = parse_name_addr(from_)
    if "to" not in cache:
        to = raw("to") or ""
        if not is_name_addr(to):
            cache["to"] = parse_name_addr(to)
    cseq = cache.get("cseq") or parse_cseq(raw("cseq") or "")
    cache["cseq"] = cseq
    max_forwards = raw("max-forwards")
    if max_forwards is not None and "max-forwards" not in cache:
        cache["max-forwards"] = parse_uint(max_forwards, "Max-Forwards", 255)
    if isinstance(msg, Request) and cseq.method != msg.method:
        raise ParseError(
            f"CSeq method {cseq.method} differs from {msg.method[:40]}",
            400 if msg.method in KNOWN_METHODS else 501,
            header="CSeq",
        )


def _check_counts(fields: list[Field]) -> None:
    """Mandatory headers missing, or single-valued headers repeated (RFC 4475 section 3.3.1, 3.3.8, 3.3.9)."""
    counts: dict[str, int] = {}
    for key, _, _ in fields:
        counts[key] = counts.get(key, 0) + 1
    for key in ("from", "to", "call-id", "cseq", "via"):
        if key not in counts:
            raise ParseError(f"missing {canonical_name(key)} header", header=canonical_name(key))
    for key in _SINGLE:
        if counts.get(key, 0) > 1:
            raise ParseError(f"several {canonical_name(key)} headers", header=canonical_name(key))


class StreamReader:
    """Incremental framing for stream transports (RFC 3261 section 18.3): feed bytes, take messages.

    Content-Length is mandatory. CRLFs between messages are keep-alives (RFC 5626 section 3.5.1):
    a double CRLF ping is reported through :attr:`pings` so the transport can answer with a CRLF pong.
    After a :class:`ParseError` the stream cannot be resynchronised; the transport must close it.
    """

    def __init__(self, limits: Limits = DEFAULT_LIMITS, *, check: bool = True) -> None:
        self._check = check
        self._buf = bytearray()
        self._limits = limits
        self._head_end = -1
        self._need = -1
        self.pings = 0

    def feed(self, data: bytes) -> list[Request | Response]:
        """Add received bytes; return the messages they complete, in order."""
        self._buf += data
        out: list[Request | Response] = []
        while True:
            msg = self._next()
            if msg is None:
                return out
            out.append(msg)

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def _next(self) -> Request | Response | None:
        buf = self._buf
        if self._head_end < 0:
            skip = 0
            while buf[skip : skip + 2] == b"\r\n":
                skip += 2
            if skip:
                if skip >= 4 or buf[skip:skip + 2] == b"\r\n":
                    self.pings += skip // 4
                del buf[:skip]
            if len(buf) == 1 and buf[:1] == b"\r":
                return None
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > self._limits.max_size:
                    raise ParseError("headers too large", 513)
                return None
            self._head_end = end + 4
            head = bytes(buf[:end])
            m = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*)", head)
            if m is None:
                raise ParseError("Content-Length is required on a stream", header="Content-Length")
            self._need = self._head_end + parse_uint(m.group(1).decode("latin-1"), "Content-Length",
                                                     self._limits.max_size)
            if self._need > self._limits.max_size:
                raise ParseError("message too large", 513)
        if len(buf) < self._need:
            return None
        data = bytes(buf[: self._need])
        del buf[: self._need]
        self._head_end = self._need = -1
        return parse_message(data, self._limits, stream=True, check=self._check)
