"""Typed views of the headers a B2BUA reads (RFC 3261 section 20, RFC 3515, RFC 3891, RFC 6665).

Each ``parse_*`` function takes a header's raw value (already unfolded) and returns a frozen value
object, raising :class:`ParseError` when the value breaks the grammar. Each value object's ``str()``
is its wire form, so a changed header can be written back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from ..errors import ParseError
from .grammar import (
    EMPTY_PARAMS,
    PARAMS_PATTERN,
    PLAIN_PARAMS_PATTERN,
    WS,
    Params,
    find_closing_quote,
    is_token,
    quote,
    split_commas,
    unquote,
)
from .uri import Uri, parse_host, parse_uri, split_hostport, unescape

MAX_CSEQ = 2**32 - 1
MAGIC_COOKIE = "z9hG4bK"


# --- Via (RFC 3261 section 20.42, 18.2.1, RFC 3581) ---------------------------------------------------


class Via(NamedTuple):
    """One Via value: ``SIP/2.0/UDP host:port;branch=...;received=...;rport``."""

    transport: str
    host: str
    port: int | None = None
    params: Params = EMPTY_PARAMS
    protocol: str = "SIP/2.0"

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def rfc3261(self) -> bool:
        """Whether the branch carries RFC 3261's magic cookie (section 8.1.1.7); without it the sender
        follows RFC 2543."""
        branch = self.params.get("branch")
        return branch is not None and branch.startswith(MAGIC_COOKIE)

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        """The rport value filled in by the server (``None`` when absent or empty)."""
        value = self.params.get("rport")
        return int(value) if value else None

    @property
    def wants_rport(self) -> bool:
        """The client asked for symmetric response routing (RFC 3581 section 3)."""
        return "rport" in self.params

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    @property
    def sent_by(self) -> tuple[str, int | None]:
        return self.host, self.port

    @property
    def reliable(self) -> bool:
        return self.transport.upper() not in ("UDP", "DTLS-UDP")

    def with_params(self, params: Params) -> Via:
        return Via(self.transport, self.host, self.port, params, self.protocol)

    def __str__(self) -> str:
        host = self.host if self.port is None else f"{self.host}:{self.port}"
        return f"{self.protocol}/{self.transport} {host}{self.params}"


_VIA = re.compile(r"[ \t]*([^/ \t]+)[ \t]*/[ \t]*([^/ \t]+)[ \t]*/[ \t]*([^ \t;]+)[ \t]+([^;]*)(;.*)?\Z", re.S)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
_TOPLABEL = r"[A-Za-z](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
#: RFC 3261 section 25.1 hosts: an IPv4 address (octets in range), a hostname (its last label starts with a
#: letter), an IPv6 reference (checked further by parse_host).
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_HOST = rf"{_OCTET}(?:\.{_OCTET}){{3}}|(?:{_LABEL}\.)*{_TOPLABEL}\.?|\[[0-9A-Fa-f:.]+\]"
#: The common case, ``SIP/2.0/UDP host:port;params``, matched in one step.
_VIA_FAST = re.compile(rf"SIP/2\.0/([A-Za-z]+) ({_HOST})(?::([0-9]{{1,5}}))?({PARAMS_PATTERN})[ \t]*\Z")
#: The same without LWS or quoted values, the spelling nearly every Via has: a subset of :data:`_VIA_FAST`
#: that is quicker to match.
_VIA_PLAIN = re.compile(rf"SIP/2\.0/([A-Za-z]+) ({_HOST})(?::([0-9]{{1,5}}))?({PLAIN_PARAMS_PATTERN})\Z")


_BRANCH = re.compile(r";[ \t]*branch[ \t]*=[ \t]*([^;, \t]+)", re.I)
_TAG = re.compile(r";[ \t]*tag[ \t]*=[ \t]*([^;, \t]+)", re.I)


def branch_of(value: str) -> str | None:
    """The branch of the first Via value in a Via header line, read without parsing the whole value.

    This is what the transaction layer matches on (RFC 3261 section 17.2.3); a Via it cannot read
    this way (quoted parameter values) is parsed in full. It does not validate the rest of the value:
    :func:`b2bua.sip.parser.check_message` does, before a message reaches the layers above.
    """
    if '"' in value:
        return parse_top_via(value).branch
    m = _BRANCH.search(value.partition(",")[0])
    return m.group(1) if m is not None else None


def tag_of(value: str) -> str | None:
    """The tag of a From or To value, read without parsing the whole name-addr (see :func:`branch_of`)."""
    rest = value[value.rfind(">") + 1 :]
    if not rest:
        return None  # nothing after the URI's ``>``: no parameters
    if '"' in rest or ("<" not in value and ("?" in rest or "," in rest)):
        return parse_name_addr(value).tag
    m = _TAG.search(rest)
    return m.group(1) if m is not None else None


def parse_via(value: str) -> list[Via]:
    """All Via values of one header line (several may be comma-separated)."""
    if "," not in value:
        return [_parse_one_via(value)]
    return [_parse_one_via(item) for item in split_commas(value)]


def parse_top_via(value: str) -> Via:
    """The first Via value of a header line, without parsing the values after it."""
    if "," not in value:
        return _parse_one_via(value)
    return _parse_one_via(split_commas(value)[0])


def _parse_one_via(text: str) -> Via:
    m = _VIA_PLAIN.match(text) or _VIA_FAST.match(text)
    if m is not None:
        transport, host, port_text, ptext = m.groups()
        port = int(port_text) if port_text else None
        if port is not None and port > 65535:
            raise ParseError(f"bad port in Via: {text!r}", header="Via")
        if host[0] == "[":
            parse_host(host)
        if _VIA_BAD_PARAM.search(ptext):
            raise ParseError(f"bad Via parameter: {text!r}", header="Via")
        return Via(transport.upper(), host, port, Params.checked(ptext), "SIP/2.0")
    else:
        m = _VIA.match(text)
        if not m:
            raise ParseError(f"bad Via: {text!r}", header="Via")
        name, version, transport, sent_by, ptext = m.groups()
        if not is_token(name) or not is_token(version) or not is_token(transport):
            raise ParseError(f"bad Via sent-protocol: {text!r}", header="Via")
        sent_by = sent_by.rstrip(WS)
        if " " in sent_by or "\t" in sent_by:
            # sent-by = host [ COLON port ] with COLON = SWS ":" SWS (RFC 3261 section 25.1).
            before, colon, after = sent_by.rpartition(":")
            if colon and after.lstrip(WS).isdigit():
                sent_by = before.rstrip(WS) + ":" + after.lstrip(WS)
        host, port = split_hostport(sent_by)
        protocol = f"{name}/{version}"
        if name.upper() == "SIP" and version == "2.0":
            protocol = "SIP/2.0"
    if not ptext:
        return Via(transport.upper(), host, port, EMPTY_PARAMS, protocol)
    params = Params.parse(ptext)
    if _VIA_BAD_PARAM.search(ptext):
        raise ParseError(f"bad Via parameter: {text!r}", header="Via")
    return Via(transport.upper(), host, port, params, protocol)


#: Via parameters that need a value but have none, or an rport that is not a port number (section 20.42).
_VIA_BAD_PARAM = re.compile(
    r";[ \t]*(?:(?:branch|received|maddr|ttl)[ \t]*(?=;|\Z)|rport[ \t]*=[ \t]*+(?![0-9]{1,5}[ \t]*(?:;|\Z)))", re.I
)


# --- name-addr: From, To, Contact, Route, Record-Route, Refer-To, Referred-By (section 20.10) ----------


class NameAddr(NamedTuple):
    """``"Display" <uri>;params`` or ``uri;params``. The URI text is parsed on demand by :attr:`uri`.

    For an addr-spec without angle brackets, parameters after the URI are header parameters
    (RFC 3261 section 20.10), which is why ``tag`` is found in :attr:`params` either way.
    """

    uri_text: str
    display: str | None = None
    params: Params = EMPTY_PARAMS
    #: ``True`` for the ``*`` of a Contact in REGISTER/unregister.
    star: bool = False

    @property
    def uri(self) -> Uri:
        return parse_uri(self.uri_text)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def without_tag(self) -> str:
        """This address for a new dialog: the identity kept, the tag dropped."""
        return str(self.with_params(self.params.remove("tag")))

    def with_tag(self, tag: str) -> NameAddr:
        return NameAddr(self.uri_text, self.display, self.params.replace("tag", tag))

    def with_params(self, params: Params) -> NameAddr:
        return NameAddr(self.uri_text, self.display, params)

    def with_uri(self, uri: Uri | str) -> NameAddr:
        return NameAddr(str(uri), self.display, self.params)

    def __str__(self) -> str:
        if self.star:
            return "*"
        display = "" if self.display is None else _display(self.display) + " "
        return f"{display}<{self.uri_text}>{self.params}"


def _display(text: str) -> str:
    return text if text and all(is_token(word) for word in text.split(" ")) else quote(text)


_QUOTED = r'"(?:[^"\\\r\n]|\\[^\r\n])*"'
"""A quoted-string; CR and LF are in none, escaped or not (RFC 3261 section 25.1: folds are unfolded before)."""
#: ``"Display" <uri>;params`` and ``Display <uri>;params`` in one step.
#: The part up to ``>`` can match in one way only; possessive and atomic matching keeps a failure linear in time.
_NAME_ADDR = re.compile(rf'(?>[ \t]*+(?:({_QUOTED})[ \t]*+|([^"<]*+))<([^<>" \t]+)>)({PARAMS_PATTERN})[ \t]*\Z')


def is_name_addr(value: str) -> bool:
    """A quick check that ``value`` is a well-formed ``name-addr`` (the common form of From and To)."""
    m = _NAME_ADDR.match(value)
    return m is not None and ":" in m.group(3)


def parse_name_addr(value: str) -> NameAddr:
    """One name-addr or addr-spec with its parameters (RFC 3261 section 20.10 and 25.1)."""
    m = _NAME_ADDR.match(value)
    if m is not None:
        quoted, bare, uri_text, ptext = m.groups()
        if quoted is not None:
            display: str | None = quoted[1:-1] if "\\" not in quoted else unquote(quoted)
        else:
            display = " ".join(bare.split()) or None
        if ":" not in uri_text:
            raise ParseError(f"address without a URI scheme: {value!r}")
        return NameAddr(uri_text, display, Params.checked(ptext))
    text = value.strip(WS)
    if text == "*":
        return NameAddr("*", star=True)
    if not text or text[0] == '"' or "<" in text or ">" in text:
        if text[:1] == '"':
            find_closing_quote(text, 0)
        raise ParseError(f"bad address: {value!r}")
    uri_text, semi, ptext = text.partition(";")
    uri_text = uri_text.rstrip(WS)
    if not uri_text or any(c in uri_text for c in ' \t"') or ":" not in uri_text:
        raise ParseError(f"bad URI in address: {value!r}")
    return NameAddr(uri_text, None, Params.parse(semi + ptext) if semi else EMPTY_PARAMS)



def parse_name_addr_list(value: str) -> list[NameAddr]:
    """Comma-separated addresses (Contact, Route, Record-Route)."""
    return [parse_name_addr(item) for item in split_commas(value)]


# --- scalars -------------------------------------------------------------------------------------------


class CSeq(NamedTuple):
    """``CSeq: 4711 INVITE`` (RFC 3261 section 8.1.1.5: the number is at most 2**32-1)."""

    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


_CSEQ = re.compile(r"([0-9]{1,10})[ \t]+([A-Za-z0-9\-.!%*_+`'~]+)\Z")


#: Recently parsed CSeq values (``1 OPTIONS``, ``2 BYE`` ... recur), emptied when full.
_CSEQS: dict[str, CSeq] = {}


def parse_cseq(value: str) -> CSeq:
    cseq = _CSEQS.get(value)
    if cseq is not None:
        return cseq
    m = _CSEQ.match(value)
    if m is None:
        raise ParseError(f"bad CSeq: {value!r}", header="CSeq")
    number = int(m.group(1))
    if number > MAX_CSEQ:
        raise ParseError(f"CSeq number out of range: {value!r}", header="CSeq")
    if len(_CSEQS) >= 256:
        _CSEQS.clear()
    cseq = _CSEQS[value] = CSeq(number, m.group(2))
    return cseq


#: The usual spellings of small numbers (Max-Forwards: 70, Content-Length: 0), looked up instead of converted.
_SMALL_UINTS = {str(n): n for n in range(256)}


def parse_uint(value: str, header: str, limit: int) -> int:
    """A header that is one decimal number no larger than ``limit`` (Max-Forwards, Content-Length, Expires)."""
    number = _SMALL_UINTS.get(value)
    if number is not None and number <= limit:
        return number
    text = value.strip(WS)
    if not text.isdigit() or not text.isascii():
        raise ParseError(f"bad {header}: {value!r}", header=header)
    try:
        number = int(text)
    except ValueError:  # more digits than int() converts (sys.get_int_max_str_digits)
        raise ParseError(f"{header} out of range: {value!r}", header=header) from None
    if number > limit:
        raise ParseError(f"{header} out of range: {value!r}", header=header)
    return number


# --- Content-Type, Accept, Event, Subscription-State (RFC 3261 20.15, RFC 6665 8.2) ----------------------


@dataclass(frozen=True, slots=True)
class MediaType:
    """``type/subtype;params`` in lower case (Content-Type, one Accept entry)."""

    type: str
    subtype: str
    params: Params = field(default_factory=Params)

    @property
    def mime(self) -> str:
        return f"{self.type}/{self.subtype}"

    def matches(self, mime: str) -> bool:
        """Does this (possibly wildcard) range cover ``mime``?"""
        t, _, s = mime.lower().partition("/")
        return self.type in ("*", t) and self.subtype in ("*", s)

    def __str__(self) -> str:
        return f"{self.mime}{self.params}"


def parse_media_type(value: str) -> MediaType:
    text = value.strip(WS)
    mime, semi, ptext = text.partition(";")
    t, slash, s = mime.strip(WS).partition("/")
    t, s = t.strip(WS), s.strip(WS)
    if not slash or not is_token(t) or not is_token(s):
        raise ParseError(f"bad media type: {value!r}", header="Content-Type")
    return MediaType(t.lower(), s.lower(), Params.parse(semi + ptext) if semi else Params())


def parse_accept(value: str) -> list[MediaType]:
    """An Accept header; an empty value means nothing is acceptable (RFC 3261 section 20.1)."""
    return [parse_media_type(item) for item in split_commas(value)] if value.strip(WS) else []


def parse_tokens(value: str) -> list[str]:
    """A list of option tags or methods (Require, Supported, Unsupported, Allow, Proxy-Require)."""
    if not value.strip(WS):
        return []
    items = split_commas(value)
    for item in items:
        if not is_token(item):
            raise ParseError(f"bad token {item!r} in {value!r}")
    return items


@dataclass(frozen=True, slots=True)
class Event:
    """``Event: refer;id=93809824`` (RFC 6665 section 8.2.1; RFC 3515 section 2.4.6 for ``id``)."""

    package: str
    params: Params = field(default_factory=Params)

    @property
    def id(self) -> str | None:
        return self.params.get("id")

    def __str__(self) -> str:
        return f"{self.package}{self.params}"


def parse_event(value: str) -> Event:
    package, semi, ptext = value.strip(WS).partition(";")
    package = package.strip(WS)
    if not all(is_token(part) for part in package.split(".")):
        raise ParseError(f"bad Event: {value!r}", header="Event")
    return Event(package.lower(), Params.parse(semi + ptext) if semi else Params())


@dataclass(frozen=True, slots=True)
class SubscriptionState:
    """``Subscription-State: terminated;reason=noresource`` (RFC 6665 section 8.2.3)."""

    state: str
    params: Params = field(default_factory=Params)

    @property
    def terminated(self) -> bool:
        return self.state == "terminated"

    @property
    def reason(self) -> str | None:
        return self.params.get("reason")

    @property
    def expires(self) -> int | None:
        value = self.params.get("expires")
        if not value or not value.isdigit():
            return None
        try:
            return int(value)
        except ValueError:  # more digits than int() converts (sys.get_int_max_str_digits)
            return None

    def __str__(self) -> str:
        return f"{self.state}{self.params}"


def parse_subscription_state(value: str) -> SubscriptionState:
    state, semi, ptext = value.strip(WS).partition(";")
    state = state.strip(WS)
    if not is_token(state):
        raise ParseError(f"bad Subscription-State: {value!r}", header="Subscription-State")
    return SubscriptionState(state.lower(), Params.parse(semi + ptext) if semi else Params())


# --- Replaces (RFC 3891 section 6.1) --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Replaces:
    """``Replaces: call-id;to-tag=...;from-tag=...[;early-only]``.

    ``to_tag`` and ``from_tag`` are from the point of view of the UA that sends the INVITE
    with Replaces: the dialog to replace is found by (call_id, local tag = to_tag, remote tag = from_tag)
    at the UA that receives it (RFC 3891 section 3).
    """

    call_id: str
    to_tag: str
    from_tag: str
    early_only: bool = False

    def __str__(self) -> str:
        early = ";early-only" if self.early_only else ""
        return f"{self.call_id};to-tag={self.to_tag};from-tag={self.from_tag}{early}"


def parse_replaces(value: str) -> Replaces:
    call_id, semi, ptext = value.strip(WS).partition(";")
    call_id = call_id.strip(WS)
    if not call_id or any(c in call_id for c in " \t"):
        raise ParseError(f"bad Replaces call-id: {value!r}", header="Replaces")
    params = Params.parse(semi + ptext) if semi else Params()
    to_tag, from_tag = params.get("to-tag"), params.get("from-tag")
    if not to_tag or not from_tag:
        raise ParseError(f"Replaces needs to-tag and from-tag: {value!r}", header="Replaces")
    return Replaces(call_id, to_tag, from_tag, "early-only" in params)


# --- message/sipfrag (RFC 3420) as carried in REFER's NOTIFY (RFC 3515 section 2.4.5) ---------------------


@dataclass(frozen=True, slots=True)
class SipFrag:
    """The status line of a message/sipfrag body: ``SIP/2.0 180 Ringing``."""

    status: int
    reason: str

    @property
    def provisional(self) -> bool:
        return 100 <= self.status < 200

    @property
    def success(self) -> bool:
        return 200 <= self.status < 300

    @property
    def failure(self) -> bool:
        return self.status >= 300

    def __str__(self) -> str:
        return f"SIP/2.0 {self.status} {self.reason}"


#: The SIP-Version is case-insensitive (RFC 3261 section 7.1).
_SIPFRAG = re.compile(rb"[ \t\r\n]*(?i:SIP)/2\.0[ \t]+([1-6][0-9][0-9])(?:[ \t]+([^\r\n]*))?(?:\r?\n|\Z)")


def parse_sipfrag(body: bytes) -> SipFrag:
    """The status line of a sipfrag body; bare LF line ends and trailing headers are tolerated."""
    m = _SIPFRAG.match(body)
    if not m:
        raise ParseError(f"bad sipfrag: {body[:60]!r}", header="Content-Type")
    return SipFrag(int(m.group(1)), (m.group(2) or b"").decode("utf-8", "replace").strip())


__all__ = [
    "MAGIC_COOKIE",
    "CSeq",
    "Event",
    "MediaType",
    "NameAddr",
    "Replaces",
    "SipFrag",
    "SubscriptionState",
    "Via",
    "branch_of",
    "is_name_addr",
    "parse_accept",
    "parse_cseq",
    "parse_event",
    "parse_media_type",
    "parse_name_addr",
    "parse_name_addr_list",
    "parse_replaces",
    "parse_sipfrag",
    "parse_subscription_state",
    "parse_tokens",
    "parse_top_via",
    "parse_uint",
    "parse_via",
    "tag_of",
    "unescape",
]
