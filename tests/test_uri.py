"""SIP, SIPS, tel and other URIs (RFC 3261 sections 19.1 and 25.1, RFC 3966, RFC 4475)."""

from __future__ import annotations

from datetime import timedelta
from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from b2bua.errors import ParseError
from b2bua.sip.grammar import Params
from b2bua.sip.uri import (
    _PARSED,
    _PARSED_MAX,
    SUPPORTED_SCHEMES,
    AbsoluteUri,
    SipUri,
    TelUri,
    _parse_sip_fast,
    _parse_uri_full,
    escape_header_value,
    parse_host,
    parse_sip_uri,
    parse_uri,
    split_hostport,
    unescape,
    uri_equal,
)

INTMETH_URI = (  # RFC 4475 section 3.1.1.2
    "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com"
)


def sip(text: str) -> SipUri:
    return parse_sip_uri(text)


# --- parsing ----------------------------------------------------------------------------------------------


def test_sip_uri_parts() -> None:
    uri = sip("sip:alice:secret@atlanta.com:5061;transport=TCP;lr;maddr=[2001:db8::1]?subject=x&priority=urgent")
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == ("sip", "alice", "secret", "atlanta.com", 5061)
    assert uri.params.items == (("transport", "TCP"), ("lr", None), ("maddr", "[2001:db8::1]"))
    assert uri.transport == "tcp" and uri.lr and uri.maddr == "[2001:db8::1]"
    assert uri.headers == "subject=x&priority=urgent"
    assert uri.header_items() == [("subject", "x"), ("priority", "urgent")]
    assert uri.hostport == "atlanta.com:5061"
    assert not uri.secure


def test_minimal_sip_uri() -> None:
    uri = sip("sip:example.com")
    assert (uri.user, uri.password, uri.port, uri.headers) == (None, None, None, None)
    assert not uri.params and uri.transport is None and not uri.lr and uri.maddr is None
    assert uri.header_items() == [] and uri.hostport == "example.com"


def test_sips_and_scheme_case() -> None:
    uri = sip("SIPS:bob@Biloxi.Example.COM")
    assert uri.scheme == "sips" and uri.secure
    assert uri.host == "Biloxi.Example.COM"
    assert str(uri) == "SIPS:bob@Biloxi.Example.COM"


def test_user_with_escapes_semicolons_and_question_marks() -> None:
    uri = sip("sip:user;par=u%40example.net@example.com")  # RFC 4475 section 3.1.1.9
    assert (uri.user, uri.host, uri.params) == ("user;par=u%40example.net", "example.com", Params())
    assert sip("sip:what?user@example.com").user == "what?user"
    assert sip("sip:sips%3Auser%40example.com@example.net").user == "sips%3Auser%40example.com"  # 3.1.1.3
    assert sip("sip:null-%00-null@example.com").user == "null-%00-null"  # 3.1.1.4
    assert sip("sip:+1-212-555-1212;isub=1411;postd=pp22@gw.example.com;user=phone").params.get("user") == "phone"


def test_rfc4475_unusual_uri() -> None:
    uri = sip(INTMETH_URI)
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert uri.host == "example.com" and uri.port is None and not uri.params
    assert str(uri) == INTMETH_URI


def test_empty_password() -> None:
    uri = sip("sip:alice:@example.com")
    assert uri.user == "alice" and uri.password == ""


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("sip:192.0.2.4", "192.0.2.4", None),
        ("sip:bob@255.255.255.255:0", "255.255.255.255", 0),
        ("sip:[2001:db8::10]:5070", "[2001:db8::10]", 5070),
        ("sip:[2001:db8::10]", "[2001:db8::10]", None),
        ("sip:alice@[::ffff:192.0.2.1]:65535", "[::ffff:192.0.2.1]", 65535),
        ("sip:example.com.:5060", "example.com.", 5060),
        ("sip:a-b.c9.example", "a-b.c9.example", None),
        ("sip:x:00080", "x", 80),
    ],
)
def test_hosts_and_ports(text: str, host: str, port: int | None) -> None:
    uri = sip(text)
    assert (uri.host, uri.port) == (host, port)
    assert str(uri) == text


def test_uri_headers_carry_replaces() -> None:
    uri = sip("sip:bob@example.com?Replaces=12345%40192.168.118.3%3Bto-tag%3D12345%3Bfrom-tag%3D5FFE-3994")
    assert uri.header_items() == [("Replaces", "12345@192.168.118.3;to-tag=12345;from-tag=5FFE-3994")]
    assert sip("sip:h?a=1&b=%20&c=").header_items() == [("a", "1"), ("b", " "), ("c", "")]


def test_tel_uris() -> None:
    uri = parse_uri("tel:+1-201-555-0123;ext=1234")
    assert isinstance(uri, TelUri)
    assert (uri.scheme, uri.number, uri.global_number) == ("tel", "+1-201-555-0123", True)
    assert uri.params.get("ext") == "1234"
    assert str(uri) == "tel:+1-201-555-0123;ext=1234"
    local = parse_uri("TEL:7042;phone-context=example.com")
    assert isinstance(local, TelUri) and not local.global_number
    assert str(local) == "TEL:7042;phone-context=example.com"
    assert isinstance(parse_uri("tel:*21#"), TelUri)
    assert str(TelUri("+12015550123", Params((("ext", "1"),)))) == "tel:+12015550123;ext=1"


@pytest.mark.parametrize("text", ["http://example.com/a?b=c", "urn:service:sos", "soap.beep://192.0.2.1/x", "im:a@b"])
def test_other_schemes_are_kept_as_text(text: str) -> None:
    uri = parse_uri(text)
    assert isinstance(uri, AbsoluteUri)
    assert uri.scheme == text.partition(":")[0] and uri.scheme not in SUPPORTED_SCHEMES
    assert str(uri) == text


def test_scheme_is_lower_cased_for_other_schemes() -> None:
    uri = parse_uri("Mailto:a@example.com")
    assert isinstance(uri, AbsoluteUri) and uri.scheme == "mailto" and str(uri) == "Mailto:a@example.com"


@pytest.mark.parametrize(
    "bad",
    [
        "", "sip", "example.com", ":x", "1sip:x", "s p:x", "<sip:a@b>", "http:",
        "sip:a b@example.com", "sip:alice@example.com ", "sip:alice@example.com;lr ", " sip:a@b", "sip:a@b\r\n",
        'sip:"a"@b', "sip:<a>@b", "sip:a@b\t",
        "sip:a%G1@h", "sip:a%4@h", "sip:a%@h", "sip:a#b@h", "sip:a[b@h", "sip:@h", "sip::pw@h", "sip:a:p#@h",
        "sip:a:p;w@h",
        "sip:", "sip:a@", "sip:-a.com", "sip:a..com", "sip:a_b.com", "sip:1.2.3", "sip:256.1.1.1", "sip:host.123",
        "sip:a@b@c",
        "sip:h:", "sip:h:65536", "sip:h:99999", "sip:h:123456", "sip:h:-1", "sip:h:1a", "sip:h:\u0663",
        "sip:h:\u00b2", "sip:[::1]:", "sip:[::1]:65536", "sip:[::1]x", "sip:[::1", "sip:[1]", "sip:[::g]", "sip:[]",
        "sip:h;", "sip:h;;lr", "sip:h;a=", "sip:h;=a", "sip:h;a=b=c", "sip:h;a=%G1", "sip:h;a=b,c", "sip:h;a%=b",
        "sip:h?", "sip:h?a", "sip:h?=b", "sip:h?a=b&", "sip:h?a=b;c", "sip:h?a=b#", "sip:h?a=%zz", "sip:h?a%=b",
        "tel:", "tel:+", "tel:+-", "tel:+12a", "tel:xyz", "tel:--", "tel:+1;", "tel:+1;a=", "tel:+1;;a",
    ],
)
def test_bad_uris(bad: str) -> None:
    with pytest.raises(ParseError):
        parse_uri(bad)


def test_parse_sip_uri_wants_sip_or_sips() -> None:
    with pytest.raises(ParseError, match="not a SIP URI"):
        parse_sip_uri("tel:+12015550123")
    with pytest.raises(ParseError):
        parse_sip_uri("http://example.com")


def test_host_helpers() -> None:
    assert parse_host("[::1]") == "[::1]"
    assert split_hostport("[::1]:5060") == ("[::1]", 5060)
    assert split_hostport("example.com") == ("example.com", None)
    assert split_hostport("192.0.2.1:0") == ("192.0.2.1", 0)
    for bad in ("", "[::1", "[::1]5060", "a b", "host:port"):
        with pytest.raises(ParseError):
            split_hostport(bad)


# --- serialization and edits ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "sip:%61lice@atlanta.com;transport=TCP",
        "SIP:ALICE@AtLanTa.CoM;Transport=udp",
        "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
        "sips:a:b@[2001:db8::10]:5070;Lr;maddr=[::1]?X=y%20z&Y=",
        INTMETH_URI,
    ],
)
def test_str_gives_back_the_text(text: str) -> None:
    assert str(parse_uri(text)) == text


def test_with_param_without_param_without_headers() -> None:
    uri = sip("sip:a:pw@h:5070;transport=udp;x=1?h=v")
    assert str(uri.with_param("transport", "tcp")) == "sip:a:pw@h:5070;transport=tcp;x=1?h=v"
    assert str(uri.with_param("lr", None)) == "sip:a:pw@h:5070;transport=udp;x=1;lr?h=v"
    assert str(uri.without_param("TRANSPORT")) == "sip:a:pw@h:5070;x=1?h=v"
    assert str(uri.without_headers()) == "sip:a:pw@h:5070;transport=udp;x=1"
    assert str(uri.with_(port=None, user=None, password=None)) == "sip:h;transport=udp;x=1?h=v"
    assert uri.with_param("transport", "tcp").transport == "tcp"
    assert str(uri) == "sip:a:pw@h:5070;transport=udp;x=1?h=v"  # unchanged
    refer_to = sip("sip:bob@example.com?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2")
    assert str(refer_to.without_headers()) == "sip:bob@example.com"


def test_built_uri_serializes() -> None:
    uri = SipUri("sip", "example.com", "alice", "pw", 5060, Params((("transport", "tcp"),)), "a=b")
    assert str(uri) == "sip:alice:pw@example.com:5060;transport=tcp?a=b"
    assert str(SipUri("sips", "[::1]")) == "sips:[::1]"
    assert sip(str(uri)) == uri


# A generated sip: URI, as parts and as text.
_UNRESERVED = "abcXYZ019-_.!~*'()"
_ESC = st.sampled_from(["%41", "%3b", "%3B", "%25", "%20", "%c3%a9"])
_USER = st.lists(st.one_of(st.sampled_from(list(_UNRESERVED + "&=+$,;?/")), _ESC), min_size=1, max_size=8).map("".join)
_PASSWORD = st.lists(st.one_of(st.sampled_from(list(_UNRESERVED + "&=+$,")), _ESC), max_size=6).map("".join)
_LABEL = st.from_regex(r"[a-z]([a-z0-9\-]{0,6}[a-z0-9])?", fullmatch=True)
_HOST = st.one_of(
    st.builds(lambda labels, top: ".".join([*labels, top]), st.lists(_LABEL, max_size=3), _LABEL),
    st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t))),
    st.sampled_from(["[::1]", "[2001:db8::10]", "[::ffff:192.0.2.1]"]),
)
_PNAME = st.from_regex(r"[a-zA-Z][a-zA-Z0-9\-]{0,5}", fullmatch=True)
_PVALUE = st.lists(st.one_of(st.sampled_from(list(_UNRESERVED + "[]/:&+$")), _ESC), min_size=1, max_size=6).map("".join)
_HVALUE = st.lists(st.one_of(st.sampled_from(list(_UNRESERVED + "[]/?:+$")), _ESC), max_size=6).map("".join)


class Parts(NamedTuple):
    scheme: str
    user: str | None
    password: str | None
    host: str
    port: int | None
    params: list[tuple[str, str | None]]
    headers: list[tuple[str, str]]

    def text(self) -> str:
        out = f"{self.scheme}:"
        if self.user is not None:
            out += self.user + ("" if self.password is None else f":{self.password}") + "@"
        out += self.host + ("" if self.port is None else f":{self.port}")
        out += "".join(f";{k}" if v is None else f";{k}={v}" for k, v in self.params)
        if self.headers:
            out += "?" + "&".join(f"{k}={v}" for k, v in self.headers)
        return out


@st.composite
def sip_uris(draw: st.DrawFn) -> Parts:
    user = draw(st.none() | _USER)
    return Parts(
        scheme=draw(st.sampled_from(["sip", "sips"])),
        user=user,
        password=draw(st.none() | _PASSWORD) if user is not None else None,
        host=draw(_HOST),
        port=draw(st.none() | st.integers(0, 65535)),
        params=draw(st.lists(st.tuples(_PNAME, st.none() | _PVALUE), max_size=3)),
        headers=draw(st.lists(st.tuples(_PNAME, _HVALUE), max_size=3)),
    )


@given(sip_uris())
def test_generated_uris_parse_to_their_parts_and_back(parts: Parts) -> None:
    text = parts.text()
    uri = sip(text)
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (
        parts.scheme, parts.user, parts.password, parts.host, parts.port)
    assert list(uri.params) == parts.params
    assert uri.header_items() == [(unescape(k), unescape(v)) for k, v in parts.headers]
    assert str(uri) == text
    rebuilt = uri.with_()
    assert str(rebuilt) == text and rebuilt == uri and hash(rebuilt) == hash(uri)


@given(sip_uris(), _PNAME, _PVALUE)
def test_with_param_then_parse(parts: Parts, name: str, value: str) -> None:
    uri = sip(parts.text())
    edited = sip(str(uri.with_param(name, value)))
    assert edited.params.get(name) == value
    assert name not in sip(str(uri.without_param(name))).params
    assert (edited.user, edited.host, edited.port, edited.headers) == (uri.user, uri.host, uri.port, uri.headers)


# --- comparison (RFC 3261 section 19.1.4, RFC 3966 section 4) -----------------------------------------------

EQUIVALENT = [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
    ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
    ("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
     "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"),
    ("sip:alice@atlanta.com?subject=project%20x&priority=urgent",
     "sip:alice@atlanta.com?priority=urgent&subject=project%20x"),
    # Beyond the RFC's list: escapes of unreserved characters, header and parameter name case.
    ("sip:%75se%72@example.com", "sip:user@example.com"),
    ("sip:a%3bb@example.com", "sip:a%3Bb@example.com"),
    ("sip:h?Subject=x", "sip:h?subject=x"),
    ("sip:h;%6Cr", "sip:h;lr"),
    ("sip:a:%70w@h", "sip:a:pw@h"),
    ("sip:h;maddr=%31.2.3.4", "sip:h;maddr=1.2.3.4"),
]
NOT_EQUIVALENT = [
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
    ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
    # Beyond the RFC's list.
    ("sip:a@h", "sips:a@h"),
    ("sip:a@h", "sip:h"),
    ("sip:a:x@h", "sip:a:y@h"),
    ("sip:a%3Bb@example.com", "sip:a;b@example.com"),  # a reserved character is not its escape
    ("sip:h;user=phone", "sip:h"),
    ("sip:h;ttl=1", "sip:h"),
    ("sip:h;method=INVITE", "sip:h"),
    ("sip:h;maddr=1.2.3.4", "sip:h"),
    ("sip:h;lr", "sip:h;lr=on"),
    ("sip:h?a=1", "sip:h?a=2"),
    ("sip:h?a=1", "sip:h?a=1&b=2"),
]


@pytest.mark.parametrize(("a", "b"), EQUIVALENT)
def test_equivalent_uris(a: str, b: str) -> None:
    ua, ub = parse_uri(a), parse_uri(b)
    assert ua == ub and ub == ua and uri_equal(ua, ub)
    assert hash(ua) == hash(ub)


@pytest.mark.parametrize(("a", "b"), NOT_EQUIVALENT)
def test_different_uris(a: str, b: str) -> None:
    ua, ub = parse_uri(a), parse_uri(b)
    assert ua != ub and ub != ua and not uri_equal(ua, ub)


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        ("tel:+1-212-555-0100", "tel:+1.212.555.0100", True),
        ("tel:+1-212-555-0100", "tel:+1(212)5550100", True),
        ("tel:7042;phone-context=Example.com", "tel:7042;PHONE-CONTEXT=example.com", True),
        ("tel:7a;phone-context=x;b", "tel:7A;b;phone-context=x", True),
        ("tel:+12125550100", "tel:12125550100", False),
        ("tel:+12125550100", "tel:+12125550101", False),
        ("tel:7042;phone-context=a.example", "tel:7042;phone-context=b.example", False),
        ("tel:+1", "tel:+1;ext=1", False),
    ],
)
def test_tel_comparison(a: str, b: str, equal: bool) -> None:
    ua, ub = parse_uri(a), parse_uri(b)
    assert (ua == ub) is equal and uri_equal(ua, ub) is equal
    if equal:
        assert hash(ua) == hash(ub)


def test_different_kinds_never_match() -> None:
    s, t, other = parse_uri("sip:1@h"), parse_uri("tel:1"), parse_uri("http://h/1")
    assert s != t and t != s and s != other and t != other
    assert not uri_equal(s, t) and not uri_equal(t, other) and not uri_equal(other, s)
    assert uri_equal(other, parse_uri("http://h/1")) and not uri_equal(other, parse_uri("http://h/2"))
    assert s != "sip:1@h" and t != "tel:1"


# --- escaping -----------------------------------------------------------------------------------------------


def test_unescape() -> None:
    assert unescape("%61lice") == "alice"
    assert unescape("plain") == "plain"
    assert unescape("100%") == "100%" and unescape("%G1") == "%G1"
    assert unescape("%C3%A9t%c3%a9") == "été"  # escaped octets are UTF-8
    assert unescape("%FF") == "\udcff"  # an octet that is not UTF-8 stays distinct


def test_escape_header_value() -> None:
    replaces = "12345@192.168.118.3;to-tag=12345;from-tag=5FFE-3994"
    assert escape_header_value(replaces) == "12345%40192.168.118.3%3Bto-tag%3D12345%3Bfrom-tag%3D5FFE-3994"
    assert escape_header_value("a b%&=é") == "a%20b%25%26%3D%C3%A9"


@given(st.text())
def test_escaped_header_values_round_trip(value: str) -> None:
    escaped = escape_header_value(value)
    uri = sip("sip:bob@example.com?Replaces=" + escaped + "&X=1")
    assert uri.header_items() == [("Replaces", value), ("X", "1")]


# --- bounded time on hostile input ----------------------------------------------------------------------

_HOSTILE = st.builds(
    lambda head, piece, n, tail: head + piece * n + tail,
    st.sampled_from(["sip:", "sip:a@", "tel:+", "tel:", "sip:h;", "sip:h?", "sip:[", "sips:u:"]),
    st.sampled_from(["1", "a", "a.", "a-", "1.", "-", "(", "%4", "%41", ";", "a=", "&", ":", "[:", "@"]),
    st.integers(min_value=1, max_value=65535),
    st.sampled_from(["", "x", "!", ";", "?", " ", "@h", "1.2.3.4x", "]"]),
)


@settings(deadline=timedelta(seconds=1), max_examples=80)
@given(_HOSTILE)
def test_parsing_takes_linear_time(text: str) -> None:
    try:
        uri = parse_uri(text)
    except ParseError:
        return
    assert str(uri) == text


# --- the fast path of parse_uri agrees with the full parser ---------------------------------------------------

_FAST_SHAPED = st.builds(
    lambda scheme, user, host, port, params: f"{scheme}:{user}{host}{port}{params}",
    st.sampled_from(["sip", "sips", "SIP", "tel", "http"]),
    st.sampled_from(["", "alice@", "call-api@", "a.b-c_d!~*'()&=+$,/@", "a;b@", "a%41@", "a:pw@", "@", "a@b@"]),
    st.sampled_from(["127.0.0.1", "example.com", "ex-1.example.com.", "[::1]", "[1]", "1.2.3.400", "-bad", "a_b",
                     "", "999.1.1.1", "h"]),
    st.sampled_from(["", ":5060", ":0", ":65535", ":65536", ":99999", ":", ":5060x"]),
    st.lists(st.sampled_from([";lr", ";transport=tcp", ";maddr=[::1]", ";a=b:c/d$&+", ";x=", ";=y", ";;", ";%41",
                              "?h=v", ";a b"]), max_size=3).map("".join),
)
_URI_NOISE = st.text(alphabet="sip:@.;=?&%[]-_1aA ~'", max_size=24).map(lambda t: "sip:" + t)


def _parts_of(uri: object) -> tuple[object, ...]:
    assert isinstance(uri, SipUri)
    return (uri.scheme, uri.user, uri.password, uri.host, uri.port, uri.params.items, uri.headers, str(uri))


@given(st.one_of(_FAST_SHAPED, _URI_NOISE, sip_uris().map(Parts.text)))
def test_fast_path_agrees_with_the_full_parser(text: str) -> None:
    fast = _parse_sip_fast(text)
    try:
        full = _parse_uri_full(text)
    except ParseError:
        assert fast is None
        return
    if fast is not None:
        assert _parts_of(fast) == _parts_of(full) and fast == full and hash(fast) == hash(full)


@pytest.mark.parametrize("text", ["sip:call-api@127.0.0.1:5099", "sip:alice@example.com;transport=tcp",
                                  "sips:[2001:db8::1]:5061;lr", "sip:example.com"])
def test_common_uris_take_the_fast_path(text: str) -> None:
    uri = _parse_sip_fast(text)
    assert uri is not None and _parts_of(uri) == _parts_of(_parse_uri_full(text))


def test_parsed_uris_are_remembered_within_a_bound() -> None:
    text = "sip:remembered@example.com;transport=tcp"
    assert parse_uri(text) is parse_uri(text)  # immutable, so one parse serves every request naming it
    for i in range(2 * _PARSED_MAX):
        parse_uri(f"sip:u{i}@example.com")
    assert len(_PARSED) <= _PARSED_MAX
    assert str(parse_uri(text)) == text
    with pytest.raises(ParseError):
        parse_uri("sip:bad host")
    assert "sip:bad host" not in _PARSED
