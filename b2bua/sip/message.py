"""SIP requests and responses: the header collection, typed access, serialization (RFC 3261 section 7).

Headers keep their raw text: a header that arrived is written back byte for byte (its name's spelling,
its folding and spacing included) unless the code replaces it; headers the code creates get their
canonical names. Structured access (Via, From, CSeq ...) parses on first use and is cached until the
headers change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from .headers import (
    CSeq,
    MediaType,
    NameAddr,
    Via,
    branch_of,
    parse_cseq,
    parse_media_type,
    parse_name_addr,
    parse_name_addr_list,
    parse_tokens,
    parse_top_via,
    parse_uint,
    parse_via,
    tag_of,
)
from .uri import Uri, parse_uri

T = TypeVar("T")

#: Cache key of the first value of each header, filled by the parser (see :meth:`Message.raw`).
_FIRST = "\0first"
#: The headers the parser records under :data:`_FIRST` (absent there means absent from the message).
_FIRST_KEYS = frozenset(("via", "from", "to", "call-id", "cseq", "max-forwards", "content-length", "content-type"))
_MISSING = object()
#: Cache keys of the From and To tags (not header names: those never start with NUL).
_FROM_TAG = "\0from-tag"
_TO_TAG = "\0to-tag"

#: RFC 3261 section 7.3.3 and the IANA registry: compact form -> canonical long name (lower case).
COMPACT_FORMS: dict[str, str] = {
    "a": "accept-contact",
    "b": "referred-by",
    "c": "content-type",
    "d": "request-disposition",
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",
    "o": "event",
    "r": "refer-to",
    "s": "subject",
    "t": "to",
    "u": "allow-events",
    "v": "via",
    "x": "session-expires",
    "y": "identity",
}

_CANONICAL_SPECIAL = {
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "www-authenticate": "WWW-Authenticate",
    "mime-version": "MIME-Version",
    "rack": "RAck",
    "rseq": "RSeq",
    "sip-etag": "SIP-ETag",
    "sip-if-match": "SIP-If-Match",
    "identity-info": "Identity-Info",
    "min-se": "Min-SE",
}
_canonical_cache: dict[str, str] = {}


_key_memo: dict[str, str] = {}


def header_key(name: str) -> str:
    """The lookup key of a header name: lower case, compact forms expanded (remembered for the first
    thousand spellings: the code asks for a dozen names, dozens of times per message)."""
    key = _key_memo.get(name)
    if key is None:
        key = name.lower()
        key = COMPACT_FORMS.get(key, key)
        if len(_key_memo) < 1000:
            _key_memo[name] = key
    return key


def canonical_name(name: str) -> str:
    """The conventional spelling of a header name (``call-id`` -> ``Call-ID``, ``v`` -> ``Via``)."""
    key = header_key(name)
    canon = _canonical_cache.get(key)
    if canon is None:
        canon = _CANONICAL_SPECIAL.get(key) or "-".join(part.capitalize() for part in key.split("-"))
        _canonical_cache[key] = canon
    return canon


#: One header field: (key, value, raw). ``value`` is unfolded with surrounding whitespace removed;
#: ``raw`` is the exact line(s) as received, or ``None`` for a header the code created.
Field = tuple[str, str, "str | None"]


class Headers:
    """An ordered, case-insensitive multi-map of header fields that keeps duplicates and raw text."""

    __slots__ = ("_cache", "_fields")

    def __init__(self, fields: list[Field] | None = None) -> None:
        self._fields: list[Field] = fields if fields is not None else []
        self._cache: dict[str, Any] = {}

    @classmethod
    def of(cls, *pairs: tuple[str, str]) -> Headers:
        """Headers from (name, value) pairs, as the code creates them."""
        return cls([(header_key(n), v, None) for n, v in pairs])

    # -- reading ------------------------------------------------------------------------------------

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of the first field called ``name``."""
        key = header_key(name)
        for f in self._fields:
            if f[0] == key:
                return f[1]
        return default

    def get_all(self, name: str) -> list[str]:
        """The values of every field called ``name``, in order (one per header line)."""
        key = header_key(name)
        return [f[1] for f in self._fields if f[0] == key]

    def count(self, name: str) -> int:
        key = header_key(name)
        return sum(1 for f in self._fields if f[0] == key)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = header_key(name)
        return any(f[0] == key for f in self._fields)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        """(canonical name, value) pairs in order."""
        return ((canonical_name(f[0]), f[1]) for f in self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def fields(self) -> list[Field]:
        """The raw fields, for the serializer and for byte-exact relaying."""
        return list(self._fields)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(f[0], f[1]) for f in self._fields] == [(f[0], f[1]) for f in other._fields]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({[(f[0], f[1]) for f in self._fields]!r})"

    def typed(self, key: str, parse: Callable[[], T]) -> T:
        """Return ``parse()``, cached under ``key`` until the headers change."""
        cache = self._cache
        value = cache.get(key, _MISSING)
        if value is _MISSING:
            value = cache[key] = parse()
        return value  # type: ignore[no-any-return]

    def cached(self, key: str) -> Any:
        """The cached typed view under ``key``, or ``None`` (a fast path for the hottest views)."""
        return self._cache.get(key)

    # -- changing ------------------------------------------------------------------------------------

    def add(self, name: str, value: str) -> None:
        """Append a field."""
        self._fields.append((header_key(name), value, None))
        self._cache.clear()

    def set(self, name: str, value: str) -> None:
        """Replace the first field called ``name`` in place and drop the others; append if absent."""
        key = header_key(name)
        out: list[Field] = []
        done = False
        for f in self._fields:
            if f[0] == key:
                if not done:
                    out.append((key, value, None))
                    done = True
            else:
                out.append(f)
        if not done:
            out.append((key, value, None))
        self._fields = out
        self._cache.clear()

    def remove(self, name: str) -> int:
        """Drop every field called ``name``; returns how many there were."""
        key = header_key(name)
        before = len(self._fields)
        self._fields = [f for f in self._fields if f[0] != key]
        self._cache.clear()
        return before - len(self._fields)

    def copy(self) -> Headers:
        return Headers(list(self._fields))


def _split_list(values: list[str], parse: Callable[[str], list[T]]) -> list[T]:
    out: list[T] = []
    for value in values:
        out.extend(parse(value))
    return out


class Message:
    """What requests and responses share: headers, body and the typed views of RFC 3261 section 20."""

    __slots__ = ("body", "headers", "version")

    def __init__(self, headers: Headers | None = None, body: bytes = b"", version: str = "SIP/2.0") -> None:
        self.headers = headers if headers is not None else Headers()
        self.body = body
        self.version = version

    def start_line(self) -> str:
        raise NotImplementedError

    # -- typed views (parsed on first use, cached until the headers change) --------------------------

    @property
    def vias(self) -> list[Via]:
        h = self.headers
        return h.typed("via", lambda: _split_list(h.get_all("via"), parse_via))

    def raw(self, key: str) -> str | None:
        """The raw value of the first header with this key (a lower-case long name)."""
        h = self.headers
        first = h._cache.get(_FIRST)
        if first is not None:
            value = first.get(key, _MISSING)
            if value is not _MISSING:
                return value  # type: ignore[no-any-return]
            if key in _FIRST_KEYS:
                return None
        return h.get(key)

    def _view(self, key: str, parse: Callable[[str], T], header: str | None = None) -> T | None:
        """``parse`` of the first ``header`` (default: ``key``) header, cached under ``key``."""
        cache = self.headers._cache
        view = cache.get(key, _MISSING)
        if view is _MISSING:
            value = self.raw(header or key)
            view = cache[key] = parse(value) if value is not None else None
        return view  # type: ignore[no-any-return]

    @property
    def top_via(self) -> Via | None:
        return self._view("top-via", parse_top_via, "via")

    @property
    def branch(self) -> str | None:
        """The top Via's branch: the transaction key (RFC 3261 section 17.1.3, 17.2.3)."""
        via = self.headers._cache.get("top-via")
        if via is not None:
            return via.params.get("branch")  # type: ignore[no-any-return]
        value = self.raw("via")
        return branch_of(value) if value is not None else None

    @property
    def from_(self) -> NameAddr | None:
        return self._view("from", parse_name_addr)

    @property
    def to(self) -> NameAddr | None:
        return self._view("to", parse_name_addr)

    @property
    def from_tag(self) -> str | None:
        return self._tag("from", _FROM_TAG)

    @property
    def to_tag(self) -> str | None:
        return self._tag("to", _TO_TAG)

    def _tag(self, key: str, memo: str) -> str | None:
        """The tag of the first ``key`` header, remembered until the headers change (the transaction and
        dialog layers ask for it about fifteen times per message)."""
        cache = self.headers._cache
        tag = cache.get(memo, _MISSING)
        if tag is _MISSING:
            addr = cache.get(key)
            if addr is not None:
                tag = addr.params.get("tag")
            else:
                value = self.raw(key)
                tag = tag_of(value) if value is not None else None
            cache[memo] = tag
        return tag  # type: ignore[no-any-return]

    @property
    def call_id(self) -> str | None:
        return self.raw("call-id")

    @property
    def cseq(self) -> CSeq | None:
        return self.headers._cache.get("cseq") or self._view("cseq", parse_cseq)

    def _addr_list(self, key: str) -> list[NameAddr]:
        h = self.headers
        return h.typed(key, lambda: _split_list(h.get_all(key), parse_name_addr_list))

    @property
    def contacts(self) -> list[NameAddr]:
        return self._addr_list("contact")

    @property
    def contact(self) -> NameAddr | None:
        contacts = self.contacts
        return contacts[0] if contacts else None

    @property
    def routes(self) -> list[NameAddr]:
        return self._addr_list("route")

    @property
    def record_routes(self) -> list[NameAddr]:
        return self._addr_list("record-route")

    @property
    def max_forwards(self) -> int | None:
        h = self.headers

        def parse() -> int | None:
            value = h.get("max-forwards")
            return parse_uint(value, "Max-Forwards", 255) if value is not None else None

        return h.typed("max-forwards", parse)

    @property
    def content_type(self) -> MediaType | None:
        h = self.headers

        def parse() -> MediaType | None:
            value = h.get("content-type")
            return parse_media_type(value) if value is not None else None

        return h.typed("content-type", parse)

    def tokens(self, name: str) -> list[str]:
        """An option-tag or method list header (Require, Supported, Allow ...), all lines joined."""
        h = self.headers
        key = header_key(name)
        tokens = h._cache.get(key)
        if tokens is None:
            tokens = h._cache[key] = _split_list(h.get_all(key), parse_tokens)
        return tokens

    # -- serialization --------------------------------------------------------------------------------

    def serialize(self) -> bytes:
        """The wire form, with a Content-Length that matches the body (RFC 3261 section 20.14)."""
        body = self.body
        length = str(len(body))
        out = [self.start_line()]
        cl_line = None
        canonical = _canonical_cache
        for key, value, raw in self.headers._fields:
            if raw is None:
                if key == "content-length":
                    cl_line = cl_line or "Content-Length: " + length
                    continue
                out.append(f"{canonical.get(key) or canonical_name(key)}: {value}")
            elif key == "content-length":
                # The first Content-Length keeps its spelling when its value is right; the others go.
                cl_line = cl_line or (raw if value == length else "Content-Length: " + length)
            else:
                out.append(raw)
        out.append(cl_line or "Content-Length: " + length)
        out.append("\r\n")
        head = "\r\n".join(out).encode("utf-8", "surrogateescape")
        return head + body if body else head

    __bytes__ = serialize

    def shed(self, keep: frozenset[str]) -> None:
        """Drop, in place, the body, every header whose key is not in ``keep``, the raw text of those kept
        and every parsed view: what a message kept only to be recognised needs (whoever holds it sees the
        slimmer message). Serialized again, its kept headers would take their conventional spelling."""
        self.headers = Headers([(key, value, None) for key, value, _ in self.headers._fields if key in keep])
        self.body = b""

    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other):
            return NotImplemented
        assert isinstance(other, Message)
        return (
            self.start_line() == other.start_line()
            and _without_length(self.headers) == _without_length(other.headers)
            and self.body == other.body
        )

    __hash__ = None  # type: ignore[assignment]


def _without_length(headers: Headers) -> list[tuple[str, str]]:
    return [(k, v) for k, v, _ in headers._fields if k != "content-length"]


class Request(Message):
    """A SIP request. ``uri`` is the Request-URI text; :attr:`request_uri` parses it."""

    __slots__ = ("method", "uri")

    def __init__(
        self, method: str, uri: str | Uri, headers: Headers | None = None, body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        self.headers = headers if headers is not None else Headers()
        self.body = body
        self.version = version
        self.method = method
        self.uri = uri if type(uri) is str else str(uri)

    @property
    def request_uri(self) -> Uri:
        return parse_uri(self.uri)  # parse_uri remembers the URIs it parsed lately

    def start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri} call-id={self.call_id!r}>"


class Response(Message):
    """A SIP response."""

    __slots__ = ("reason", "status")

    def __init__(
        self, status: int, reason: str = "", headers: Headers | None = None, body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        self.headers = headers if headers is not None else Headers()
        self.body = body
        self.version = version
        self.status = status
        self.reason = reason or REASONS.get(status, "")

    def start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"

    @property
    def provisional(self) -> bool:
        return self.status < 200

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason} call-id={self.call_id!r}>"


#: Reason phrases of RFC 3261 section 21 and its companions.
REASONS: dict[int, str] = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued", 183: "Session Progress",
    199: "Early Dialog Terminated",
    200: "OK", 202: "Accepted", 204: "No Notification",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily", 305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required",
    408: "Request Timeout", 410: "Gone", 413: "Request Entity Too Large", 414: "Request-URI Too Long",
    415: "Unsupported Media Type", 416: "Unsupported URI Scheme", 420: "Bad Extension",
    421: "Extension Required", 423: "Interval Too Brief", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 483: "Too Many Hops",
    484: "Address Incomplete", 485: "Ambiguous", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 489: "Bad Event", 491: "Request Pending", 493: "Undecipherable",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Server Time-out", 505: "Version Not Supported", 513: "Message Too Large",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}
