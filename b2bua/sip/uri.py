"""SIP, SIPS and tel URIs: parsing, serialization and comparison (RFC 3261 sections 19.1 and 25.1, RFC 3966).

A parsed URI keeps the text it came from: ``str(uri)`` gives it back unchanged until the code edits a
part, so a B2BUA relays URIs it does not touch exactly as they arrived. Other schemes (``http:``,
``urn:``, ``isbn:`` ...) parse to :class:`AbsoluteUri`, which keeps the text only; the UAS core answers
416 when such a URI is a Request-URI (RFC 3261 section 8.2.2.1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from ..errors import ParseError
from .grammar import EMPTY_PARAMS, Params

# RFC 3261 section 25.1 character classes.
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_UNRESERVED = frozenset(_ALNUM + "-_.!~*'()")
_USER_CHARS = _UNRESERVED | frozenset("&=+$,;?/%")
_PASSWORD_CHARS = _UNRESERVED | frozenset("&=+$,%")
_PARAM_CHARS = _UNRESERVED | frozenset("[]/:&+$%")
_HEADER_CHARS = _UNRESERVED | frozenset("[]/?:+$%")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*\Z")
_HOSTNAME = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)*[A-Za-z](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.?\Z")
_IPV4 = re.compile(r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}\Z")
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.]+\]\Z")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
#: The required digit is the first one, so a failing match takes linear time.
_TEL_NUMBER = re.compile(r"(?:\+[\-.()]*[0-9][0-9\-.()]*|[\-.()]*[0-9A-Fa-f*#][0-9A-Fa-f*#\-.()]*)\Z")
_ESCAPES = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
#: RFC 2396 reserved characters, and ``%`` itself: their escapes are not equivalent to the characters.
_RESERVED = frozenset(";/?:@&=+$,%")

#: Schemes the service can route to; any other Request-URI scheme gets 416.
SUPPORTED_SCHEMES = frozenset({"sip", "sips", "tel"})


def unescape(text: str) -> str:
    """Resolve ``%XX`` escapes; the octets are UTF-8 (RFC 3261 section 19.1.1), as escape_header_value writes them."""
    if "%" not in text:
        return text
    return _ESCAPES.sub(lambda m: bytes.fromhex(m.group().replace("%", "")).decode("utf-8", "surrogateescape"), text)


def _canonical(text: str) -> str:
    """``text`` for comparison: escapes of unreserved characters resolved, reserved ones kept (RFC 3261 19.1.4)."""
    if "%" not in text:
        return text
    return _ESCAPE.sub(_canonical_escape, text)


def _canonical_escape(m: re.Match[str]) -> str:
    c = chr(int(m.group(1), 16))
    return m.group().upper() if c in _RESERVED else c


_CLASS_PATTERNS: dict[frozenset[str], re.Pattern[str]] = {}


def _check_chars(text: str, allowed: frozenset[str], what: str) -> None:
    pattern = _CLASS_PATTERNS.get(allowed)
    if pattern is None:
        chars = re.escape("".join(sorted(allowed - {"%"})))
        escape = "|%[0-9A-Fa-f]{2}" if "%" in allowed else ""
        pattern = _CLASS_PATTERNS[allowed] = re.compile(f"(?:[{chars}]{escape})*")
    if pattern.fullmatch(text) is not None:
        return
    for i, c in enumerate(text):
        if c not in allowed:
            raise ParseError(f"bad character {c!r} in URI {what}: {text!r}")
        if c == "%" and not _ESCAPE.match(text, i):
            raise ParseError(f"bad escape in URI {what}: {text!r}")


def _parse_uri_params(text: str) -> Params:
    """``;name[=value]`` URI parameters; names and values may carry escapes (RFC 3261 section 19.1.1)."""
    items: list[tuple[str, str | None]] = []
    for raw in text.split(";"):
        name, eq, value = raw.partition("=")
        if not name:
            raise ParseError(f"empty URI parameter in {text!r}")
        _check_chars(name, _PARAM_CHARS, "parameter")
        if eq:
            if not value:
                raise ParseError(f"empty value for URI parameter {name!r}")
            _check_chars(value, _PARAM_CHARS, "parameter")
            items.append((name, value))
        else:
            items.append((name, None))
    return Params(tuple(items))


def host_reference(host: str) -> str:
    """``host`` as a URI or a Via sent-by writes it: an IPv6 address in brackets (RFC 3261 section 25.1)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def parse_host(text: str) -> str:
    """Validate a host: a hostname, an IPv4 address, or an IPv6 reference in brackets."""
    if not text:
        raise ParseError("empty host")
    if text[0] == "[":
        if not _IPV6.match(text) or text.count(":") < 2:
            raise ParseError(f"bad IPv6 reference: {text!r}")
    elif not (_IPV4.match(text) or _HOSTNAME.match(text)):
        raise ParseError(f"bad host: {text!r}")
    return text


def split_hostport(text: str) -> tuple[str, int | None]:
    """``host[:port]`` with the host validated and the port in 0..65535."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ParseError(f"unterminated IPv6 reference: {text!r}")
        host, rest = text[: end + 1], text[end + 1 :]
        if rest and rest[0] != ":":
            raise ParseError(f"junk after IPv6 reference: {text!r}")
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text_ = text.partition(":")
        port_text = port_text_ if colon else None
    parse_host(host)
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not port_text.isascii() or len(port_text) > 5 or int(port_text) > 65535:
        raise ParseError(f"bad port in {text!r}")
    return host, int(port_text)


@dataclass(frozen=True, slots=True, eq=False)
class SipUri:
    """A ``sip:`` or ``sips:`` URI. Equality is the RFC 3261 section 19.1.4 comparison."""

    scheme: str
    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: Params = field(default_factory=Params)
    #: The raw ``?`` headers part (without the ``?``), e.g. ``Replaces=abc%40host%3Bto-tag%3D1``.
    headers: str | None = None
    _text: str | None = field(default=None, repr=False)

    @property
    def secure(self) -> bool:
        return self.scheme == "sips"

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter, lower-cased."""
        value = self.params.get("transport")
        return value.lower() if value else None

    @property
    def lr(self) -> bool:
        return "lr" in self.params

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    def header_items(self) -> list[tuple[str, str]]:
        """The ``?name=value&...`` headers, unescaped (RFC 3261 section 19.1.5)."""
        if not self.headers:
            return []
        items = []
        for part in self.headers.split("&"):
            name, _, value = part.partition("=")
            items.append((unescape(name), unescape(value)))
        return items

    def with_(self, **changes: object) -> SipUri:
        """A copy with some parts changed (serialized afresh)."""
        return replace(self, _text=None, **changes)  # type: ignore[arg-type]

    def with_param(self, name: str, value: str | None) -> SipUri:
        return self.with_(params=self.params.replace(name, value))

    def without_param(self, name: str) -> SipUri:
        return self.with_(params=self.params.remove(name))

    def without_headers(self) -> SipUri:
        return self.with_(headers=None)

    @property
    def hostport(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        if self._text is not None:
            return self._text
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out.append(":" + self.password)
            out.append("@")
        out.append(self.hostport)
        out.append(str(self.params))
        if self.headers:
            out.append("?" + self.headers)
        return "".join(out)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SipUri):
            return NotImplemented
        return uri_equal(self, other)

    def __hash__(self) -> int:
        return hash((self.scheme, self.host.lower(), _canonical(self.user or ""), self.port))


@dataclass(frozen=True, slots=True, eq=False)
class TelUri:
    """A ``tel:`` URI (RFC 3966): the number and its parameters."""

    number: str
    params: Params = field(default_factory=Params)
    _text: str | None = field(default=None, repr=False)

    scheme = "tel"

    @property
    def global_number(self) -> bool:
        return self.number.startswith("+")

    def __str__(self) -> str:
        return self._text if self._text is not None else f"tel:{self.number}{self.params}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TelUri):
            return NotImplemented
        return uri_equal(self, other)

    def __hash__(self) -> int:
        return hash(_tel_digits(self.number))


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """A URI of any other scheme, kept as text (RFC 3261 section 25.1 ``absoluteURI``)."""

    scheme: str
    text: str

    def __str__(self) -> str:
        return self.text


Uri = SipUri | TelUri | AbsoluteUri


#: Recently parsed URIs by text: parsed URIs are immutable, and a UA sees the same few again and again
#: (its own address as Request-URI and To). Emptied when full, so odd traffic cannot grow it.
_PARSED: dict[str, Uri] = {}
_PARSED_MAX = 512


def parse_uri(text: str) -> Uri:
    """Parse a URI; whitespace anywhere in it is an error (RFC 3261 section 25.1)."""
    uri = _PARSED.get(text)
    if uri is None:
        uri = _parse_sip_fast(text) or _parse_uri_full(text)
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[text] = uri
    return uri


#: The usual ``sip:user@host:port;name=value`` (no escapes, password or headers): one match, no per-part checks.
_FAST_CHARS = r"A-Za-z0-9\-_.!~*'()"
_SIP_FAST = re.compile(
    rf"(sips?):(?:([{_FAST_CHARS}&=+$,/]+)@)?([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{{1,5}}))?"
    rf"((?:;[{_FAST_CHARS}\[\]/:&+$]+(?:=[{_FAST_CHARS}\[\]/:&+$]+)?)*)\Z"
)


def _parse_sip_fast(text: str) -> SipUri | None:
    """The :data:`_SIP_FAST` shape parsed in one step, or ``None`` to leave ``text`` to the full parser
    (which also writes the errors). Its character classes are subsets of the full grammar's, so what it
    accepts the full parser accepts the same way (``tests/test_uri.py`` checks the two agree)."""
    m = _SIP_FAST.match(text)
    if m is None:
        return None
    scheme, user, host, port_text, ptext = m.groups()
    if host[0] == "[":
        if host.count(":") < 2:
            return None
    elif not (_IPV4.match(host) or _HOSTNAME.match(host)):
        return None
    port = None
    if port_text is not None:
        port = int(port_text)
        if port > 65535:
            return None
    params = EMPTY_PARAMS
    if ptext:
        params = Params(tuple((name, value or None) for name, _, value in
                              (item.partition("=") for item in ptext[1:].split(";"))))
    return SipUri(scheme, host, user, None, port, params, None, text)


def _parse_uri_full(text: str) -> Uri:
    """:func:`parse_uri` for every shape, with the error that names what is wrong."""
    scheme, colon, rest = text.partition(":")
    if not colon or not _SCHEME.match(scheme):
        raise ParseError(f"not a URI: {text!r}")
    lscheme = scheme.lower()
    if any(c in " \t\r\n<>\"" for c in text):
        raise ParseError(f"illegal character in URI: {text!r}")
    if lscheme in ("sip", "sips"):
        return _parse_sip(lscheme, rest, text)
    if lscheme == "tel":
        return _parse_tel(rest, text)
    if not rest:
        raise ParseError(f"empty URI: {text!r}")
    return AbsoluteUri(lscheme, text)


def parse_sip_uri(text: str) -> SipUri:
    """Parse a URI that must be sip: or sips:."""
    uri = parse_uri(text)
    if not isinstance(uri, SipUri):
        raise ParseError(f"not a SIP URI: {text!r}")
    return uri


def _parse_sip(scheme: str, rest: str, text: str) -> SipUri:
    user: str | None = None
    password: str | None = None
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, colon, pw = userinfo.partition(":")
        if not user:
            raise ParseError(f"empty user part: {text!r}")
        _check_chars(user, _USER_CHARS, "user")
        if colon:
            _check_chars(pw, _PASSWORD_CHARS, "password")
            password = pw
    headers: str | None = None
    q = rest.find("?")
    if q >= 0:
        rest, headers = rest[:q], rest[q + 1 :]
        for part in headers.split("&"):
            name, eq, value = part.partition("=")
            if not name or not eq:
                raise ParseError(f"bad URI header {part!r} in {text!r}")
            _check_chars(name, _HEADER_CHARS, "header")
            _check_chars(value, _HEADER_CHARS, "header")
    hostport, semi, ptext = rest.partition(";")
    host, port = split_hostport(hostport)
    params = _parse_uri_params(ptext) if semi else Params()
    return SipUri(scheme, host, user, password, port, params, headers, text)


def _parse_tel(rest: str, text: str) -> TelUri:
    number, semi, ptext = rest.partition(";")
    if not _TEL_NUMBER.match(number):
        raise ParseError(f"bad telephone number: {text!r}")
    params = _parse_uri_params(ptext) if semi else Params()
    return TelUri(number, params, text)


def _tel_digits(number: str) -> str:
    return "".join(c for c in number if c not in "-.()").lower()


def _header_keys(uri: SipUri) -> list[tuple[str, str]]:
    return sorted((name.lower(), value) for name, value in uri.header_items())


_SIGNIFICANT_PARAMS = ("user", "ttl", "method", "maddr", "transport")


def uri_equal(a: Uri, b: Uri) -> bool:
    """URI equivalence of RFC 3261 section 19.1.4 (and RFC 3966 section 4 for tel)."""
    if isinstance(a, SipUri) and isinstance(b, SipUri):
        if a.scheme != b.scheme or a.port != b.port or a.host.lower() != b.host.lower():
            return False
        if _canonical(a.user or "") != _canonical(b.user or "") or (a.user is None) != (b.user is None):
            return False
        if _canonical(a.password or "") != _canonical(b.password or ""):
            return False
        pa = {_canonical(k).lower(): _canonical(v).lower() if v is not None else None for k, v in a.params}
        pb = {_canonical(k).lower(): _canonical(v).lower() if v is not None else None for k, v in b.params}
        for name in _SIGNIFICANT_PARAMS:
            if pa.get(name, "\0") != pb.get(name, "\0"):
                return False
        for name in pa.keys() & pb.keys():
            if pa[name] != pb[name]:
                return False
        # Header names are case-insensitive (RFC 3261 section 7.3.1); values compare as written, unescaped.
        return _header_keys(a) == _header_keys(b)
    if isinstance(a, TelUri) and isinstance(b, TelUri):
        pa = {k.lower(): (v or "").lower() for k, v in a.params}
        pb = {k.lower(): (v or "").lower() for k, v in b.params}
        return _tel_digits(a.number) == _tel_digits(b.number) and pa == pb
    if isinstance(a, AbsoluteUri) and isinstance(b, AbsoluteUri):
        return a.text == b.text
    return False


def escape_header_value(text: str) -> str:
    """Escape a value for a URI ``?header=value`` (RFC 3261 section 19.1.1; used for Replaces in Refer-To)."""
    return "".join(c if c in _HEADER_CHARS and c != "%" else "".join(f"%{b:02X}" for b in c.encode()) for c in text)
