"""Typed header views (RFC 3261 section 20, RFC 3581, RFC 3891, RFC 3515, RFC 6665, RFC 3420)."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from b2bua.errors import ParseError
from b2bua.sip.grammar import Params
from b2bua.sip.headers import (
    _VIA_FAST,
    _VIA_PLAIN,
    MAGIC_COOKIE,
    CSeq,
    Event,
    MediaType,
    NameAddr,
    Replaces,
    SipFrag,
    SubscriptionState,
    Via,
    branch_of,
    is_name_addr,
    parse_accept,
    parse_cseq,
    parse_event,
    parse_media_type,
    parse_name_addr,
    parse_name_addr_list,
    parse_replaces,
    parse_sipfrag,
    parse_subscription_state,
    parse_tokens,
    parse_top_via,
    parse_uint,
    parse_via,
    tag_of,
)
from b2bua.sip.uri import SipUri, parse_uri

TOKENS = st.from_regex(r"[A-Za-z0-9\-.!%*_+`'~]{1,10}", fullmatch=True)

# --- Via ----------------------------------------------------------------------------------------------------


def test_via_parts() -> None:
    via = parse_top_via(
        "SIP/2.0/UDP pc33.atlanta.com:5060;branch=z9hG4bK776asdhds;received=192.0.2.1;maddr=[::1];ttl=1")
    assert (via.protocol, via.transport, via.host, via.port) == ("SIP/2.0", "UDP", "pc33.atlanta.com", 5060)
    assert via.branch == "z9hG4bK776asdhds" and via.branch.startswith(MAGIC_COOKIE)
    assert (via.received, via.maddr, via.params.get("ttl")) == ("192.0.2.1", "[::1]", "1")
    assert via.sent_by == ("pc33.atlanta.com", 5060)
    assert via.rport is None and not via.wants_rport and not via.reliable


def test_rport() -> None:
    asked = parse_top_via("SIP/2.0/UDP 192.0.2.1;rport;branch=z9hG4bK1")
    assert asked.wants_rport and asked.rport is None
    filled = parse_top_via("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1;rport=5070;received=198.51.100.1")
    assert filled.wants_rport and filled.rport == 5070
    assert parse_top_via("SIP/2.0/UDP h ; rport = 1 ").rport == 1  # EQUAL = SWS "=" SWS
    assert parse_top_via("SIP/2.0/UDP h;rport= 5060;branch=z9hG4bK1").rport == 5060


def test_several_values_per_line() -> None:
    vias = parse_via("SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/TCP b.example.com:5061;branch=z9hG4bK2")
    assert [(v.transport, v.host, v.port, v.branch) for v in vias] == [
        ("UDP", "a.example.com", None, "z9hG4bK1"), ("TCP", "b.example.com", 5061, "z9hG4bK2")]
    assert parse_top_via("SIP/2.0/UDP a.example.com;branch=z9hG4bK1,SIP/2.0/UDP b") == vias[0]


def test_lws_everywhere() -> None:  # RFC 4475 section 3.1.1.1, after unfolding
    vias = parse_via("SIP  / 2.0  / TCP     spindle.example.com   ;   branch  =   z9hG4bK9ikj8  ,"
                     "  SIP  /    2.0   / UDP  192.168.255.111   ; branch=  z9hG4bK30239")
    assert [(v.protocol, v.transport, v.host, v.branch) for v in vias] == [
        ("SIP/2.0", "TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("SIP/2.0", "UDP", "192.168.255.111", "z9hG4bK30239")]
    assert parse_top_via("SIP  /   2.0  /UDP     192.0.2.2;branch=390skdjuw").host == "192.0.2.2"
    assert parse_top_via("\tSIP/2.0/UDP\th\t:\t5060\t;branch=z9hG4bK1").sent_by == ("h", 5060)  # COLON = SWS ":" SWS


def test_sent_protocol() -> None:  # SIP/2.0 in any case is normalized; another protocol is kept as written
    cases = ["sip/2.0/udp h", "SIP/3.0/UDP h", "sip/3.0/udp h", "FOO/1.0/TLS-SCTP h", "SIP/2.0/ws h"]
    assert [(v.protocol, v.transport) for v in map(parse_top_via, cases)] == [
        ("SIP/2.0", "UDP"), ("SIP/3.0", "UDP"), ("sip/3.0", "UDP"), ("FOO/1.0", "TLS-SCTP"), ("SIP/2.0", "WS")]


@pytest.mark.parametrize(
    ("value", "host", "port"),
    [
        ("SIP/2.0/UDP [2001:db8::9:1]:5070;branch=z9hG4bK1", "[2001:db8::9:1]", 5070),
        ("SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bK1", "[2001:db8::9:1]", None),
        ("SIP/2.0/UDP  [2001:db8::9:1] : 5070 ;branch=z9hG4bK1", "[2001:db8::9:1]", 5070),
        ("SIP/2.0/TCP 192.0.2.1:0", "192.0.2.1", 0), ("SIP/2.0/TCP host1:65535", "host1", 65535),
        ("SIP/2.0/TCP 1.2.3.4.example.com", "1.2.3.4.example.com", None), ("SIP/2.0/TCP a.b.", "a.b.", None),
    ],
)
def test_sent_by(value: str, host: str, port: int | None) -> None:
    assert parse_top_via(value).sent_by == (host, port)


@pytest.mark.parametrize("transport", ["UDP", "udp", "DTLS-UDP", "TCP", "TLS", "SCTP", "WS", "WSS", "TLS-SCTP"])
def test_reliable_transports(transport: str) -> None:
    assert parse_top_via(f"SIP/2.0/{transport} h").reliable == (transport.upper() not in ("UDP", "DTLS-UDP"))


@pytest.mark.parametrize(
    "bad",
    [
        "", "SIP/2.0/UDP", "SIP/2.0/UDP ", "SIP/2.0 UDP h", "SIP/2.0/UDP/x h", "SIP//UDP h", "SIP/2.0/U@P h",
        "SIP/2@0/UDP h", "S\"P/2.0/UDP h", "SIP/2.0/UDP h x", "SIP/2.0/UDP ;branch=z9hG4bK1", "SIP/2.0/UDP h,",
        ", SIP/2.0/UDP h", "SIP/2.0/UDP h,,SIP/2.0/UDP i",
        "SIP/2.0/UDP h:99999", "SIP/2.0/UDP h:65536", "SIP/2.0/UDP  h:65536", "SIP/2.0/UDP h:", "SIP/2.0/UDP h:x",
        "SIP/2.0/UDP 1.2.3.256", "SIP/2.0/UDP 01.2.3.4", "SIP/2.0/UDP 123", "SIP/2.0/UDP a.1b", "SIP/2.0/UDP -h",
        "SIP/2.0/UDP h_x", "SIP/2.0/UDP [1]", "SIP/2.0/UDP  [1]", "SIP/2.0/UDP [::1", "SIP/2.0/UDP h : x",
        "SIP/2.0/UDP h;;branch=z9hG4bK1", "SIP/2.0/UDP h;branch", "SIP/2.0/UDP h;branch;rport",
        "SIP/2.0/UDP h;received", "SIP/2.0/UDP h;maddr", "SIP/2.0/UDP h;TTL ", "SIP/2.0/UDP h ; branch ;x",
        "SIP/2.0/UDP h;rport=", "SIP/2.0/UDP h;rport=abc", "SIP/2.0/UDP h;rport=123456", "SIP/2.0/UDP  h;rport=x",
        "SIP/2.0/UDP h;rport= x", "SIP/2.0/UDP h;branch=a b", "SIP/2.0/UDP h;branch=<x>",
    ],
)
def test_bad_via(bad: str) -> None:
    with pytest.raises(ParseError):
        parse_via(bad)


def test_via_str_and_edits() -> None:
    text = "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport"
    via = parse_top_via(text)
    assert str(via) == text
    assert str(via.with_params(via.params.replace("rport", "5060").replace("received", "198.51.100.7"))) == (
        "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport=5060;received=198.51.100.7")
    assert str(parse_top_via(" sip / 2.0 / tcp  [::1] ; branch = z9hG4bKx ")) == "SIP/2.0/TCP [::1]; branch = z9hG4bKx"
    assert str(Via("TLS", "h")) == "SIP/2.0/TLS h"


# Generated Via values: the common spelling, and the same value with LWS everywhere the grammar allows it.
_HOSTS = st.one_of(
    st.from_regex(r"[a-z]([a-z0-9\-]{0,5}[a-z0-9])?(\.[a-z]([a-z0-9\-]{0,5}[a-z0-9])?){0,2}", fullmatch=True),
    st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t))),
    st.sampled_from(["[::1]", "[2001:db8::9:1]", "123", "a.1b", "1.2.3.256", "01.2.3.4", "[1]", "-a", "a-", "h_1"]),
)
_VIA_PARAMS = st.lists(
    st.one_of(
        st.tuples(st.just("branch"), st.none() | TOKENS.map(lambda t: MAGIC_COOKIE + t)),
        st.tuples(st.just("rport"), st.none() | st.integers(0, 65535).map(str) | st.just("x")),
        st.tuples(st.sampled_from(["received", "maddr"]), st.none() | st.just("192.0.2.1")),
        st.tuples(st.sampled_from(["ttl", "x", "Branch"]), st.none() | TOKENS),
    ),
    max_size=4,
)


@st.composite
def via_values(draw: st.DrawFn) -> tuple[str, str]:
    transport = draw(st.sampled_from(["UDP", "TCP", "TLS", "tls", "WS", "SCTP"]))
    host = draw(_HOSTS)
    port = draw(st.none() | st.integers(0, 70000))
    params = draw(_VIA_PARAMS)
    ws = draw(st.lists(st.sampled_from([" ", "\t", "  "]), min_size=16, max_size=16))
    hostport = host if port is None else f"{host}:{port}"
    plain = f"SIP/2.0/{transport} {hostport}" + "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)
    spaced_hostport = host if port is None else f"{host}{ws[0]}:{ws[1]}{port}"
    spaced = f"{ws[2]}SIP{ws[3]}/{ws[4]}2.0{ws[5]}/{ws[6]}{transport}{ws[7]}{spaced_hostport}" + "".join(
        f"{ws[8]};{ws[9]}{k}" if v is None else f"{ws[10]};{ws[11]}{k}{ws[12]}={ws[13]}{v}" for k, v in params
    ) + ws[14]
    return plain, spaced


def _via_or_error(value: str) -> tuple[object, ...] | None:
    try:
        via = parse_top_via(value)
    except ParseError:
        return None
    assert branch_of(value) == via.branch  # the quick read agrees with the parse
    return via.transport, via.host, via.port, via.params.items, via.protocol


@settings(max_examples=300)
@given(via_values())
def test_common_and_spaced_spellings_agree(values: tuple[str, str]) -> None:
    plain, spaced = values
    assert _via_or_error(plain) == _via_or_error(spaced)


@given(st.lists(via_values(), min_size=1, max_size=3), st.sampled_from([",", " , ", ",\t"]))
def test_top_via_agrees_with_the_whole_line(values: list[tuple[str, str]], comma: str) -> None:
    line = comma.join(plain for plain, _ in values)
    try:
        vias = parse_via(line)
    except ParseError:
        with contextlib.suppress(ParseError):
            assert parse_top_via(line) == parse_via(values[0][0])[0]  # only a later value was bad
        return
    assert parse_top_via(line) == vias[0]
    assert branch_of(line) == vias[0].branch
    assert [parse_top_via(str(v)) for v in vias] == vias


def test_branch_of() -> None:
    assert branch_of("SIP/2.0/UDP h;rport;branch=z9hG4bK1, SIP/2.0/UDP i;branch=z9hG4bK2") == "z9hG4bK1"
    assert branch_of("SIP/2.0/UDP h, SIP/2.0/UDP i;branch=z9hG4bK2") is None
    assert branch_of('SIP/2.0/UDP h;x=";branch=no";BRANCH=z9hG4bK3') == "z9hG4bK3"
    assert branch_of("SIP/2.0/UDP h;xbranch=1;branchx=2") is None


# --- name-addr ----------------------------------------------------------------------------------------------


def test_quoted_display_with_escapes() -> None:  # RFC 4475 section 3.1.1.1
    addr = parse_name_addr('"J Rosenberg \\\\\\""       <sip:jdrosen@example.com>;tag=98asjd8')
    assert addr.display == 'J Rosenberg \\"'
    assert (addr.uri_text, addr.tag) == ("sip:jdrosen@example.com", "98asjd8")
    assert parse_name_addr('"Alice" <sip:alice@atlanta.com>').display == "Alice"
    assert parse_name_addr('"" <sip:a@b>').display == ""
    assert parse_name_addr('"<sip:x>, \\"y\\"" <sip:a@b>').display == '<sip:x>, "y"'
    assert parse_name_addr("Bob  Smith\t<sip:bob@biloxi.com>").display == "Bob Smith"
    assert parse_name_addr("caller<sip:caller@example.com>;tag=323").display == "caller"  # RFC 4475 3.1.1.6
    assert parse_name_addr('"caller"<sip:caller@example.com>').display == "caller"
    addr = parse_name_addr("  <sip:bob@biloxi.com> ; tag = a6c85cf ")
    assert addr.display is None and addr.tag == "a6c85cf"


def test_addr_spec() -> None:
    addr = parse_name_addr("sip:alice@atlanta.com;tag=1928301774;lr")
    assert (addr.uri_text, addr.display, addr.tag) == ("sip:alice@atlanta.com", None, "1928301774")
    assert "lr" in addr.params  # header parameters: without <> the URI cannot have any (section 20.10)
    assert parse_name_addr(" sip:a@b ").params == Params()
    assert str(addr) == "<sip:alice@atlanta.com>;tag=1928301774;lr"
    assert parse_name_addr("tel:+1-201-555-0123").uri_text == "tel:+1-201-555-0123"
    star = parse_name_addr(" * ")  # Contact: * (RFC 3261 section 10.2.2)
    assert star.star and str(star) == "*"
    assert not parse_name_addr("<sip:a@b>").star


@pytest.mark.parametrize(
    "bad",
    ["", "  ", '"unterminated <sip:a@b>', '"a" b <sip:x@y>', "< sip:x@y >", "<sip:x@y", "sip:x@y>", "<bob@example.com>",
     "bob@example.com", "<>", "<sip:x@y>junk", "<sip:x@y>;", "<sip:x@y>;;tag=1", "<sip:x@y>;tag=", "sip:a b@c",
     'sip:a"b@c', "sip:x@y;", "sip:x@y;tag=1;;", "**", "<sip:a@b> <sip:c@d>", "a<b <sip:x@y>", '"a"'],
)
def test_bad_addresses(bad: str) -> None:
    assert not is_name_addr(bad)
    with pytest.raises(ParseError):
        parse_name_addr(bad)


def test_uri_and_edits() -> None:
    addr = parse_name_addr('"Bob" <sip:bob@biloxi.com;transport=tcp>')
    uri = addr.uri
    assert isinstance(uri, SipUri) and uri.transport == "tcp"
    assert str(addr.with_tag("a1")) == "Bob <sip:bob@biloxi.com;transport=tcp>;tag=a1"  # a token needs no quotes
    assert str(addr.with_tag("a1").with_tag("b2")) == "Bob <sip:bob@biloxi.com;transport=tcp>;tag=b2"
    assert str(addr.with_uri(parse_uri("sip:carol@chicago.com"))) == "Bob <sip:carol@chicago.com>"
    assert str(addr.with_uri("tel:+1")) == "Bob <tel:+1>"
    assert str(addr.with_params(Params.parse(";x=1"))) == "Bob <sip:bob@biloxi.com;transport=tcp>;x=1"
    assert str(NameAddr("sip:a@b", "Bob Smith")) == "Bob Smith <sip:a@b>"
    assert str(NameAddr("sip:a@b", "Smith, Bob")) == '"Smith, Bob" <sip:a@b>'
    assert str(NameAddr("sip:a@b", "")) == '"" <sip:a@b>'
    assert str(NameAddr("sip:a@b", 'say "hi"')) == '"say \\"hi\\"" <sip:a@b>'


def test_name_addr_lists() -> None:
    addrs = parse_name_addr_list('"Smith, Bob" <sip:bob@x.com>;q=0.5, <sip:carol@y.com;lr>,sip:d@z.com;expires=60')
    assert [(a.display, a.uri_text) for a in addrs] == [
        ("Smith, Bob", "sip:bob@x.com"), (None, "sip:carol@y.com;lr"), (None, "sip:d@z.com")]
    assert addrs[0].params.get("q") == "0.5" and addrs[2].params.get("expires") == "60"
    with pytest.raises(ParseError):
        parse_name_addr_list("<sip:a@b>,,<sip:c@d>")


def test_tag_of() -> None:
    assert tag_of('"A" <sip:a@b;tag=no>;tag=yes') == "yes"
    assert tag_of("<sip:a@b>") is None
    assert tag_of("sip:a@b;TAG=x") == "x"
    assert tag_of('<sip:a@b>;x="a>b";tag=q') == "q"
    assert tag_of("sip:a@b?h=1;tag=z") == parse_name_addr("sip:a@b?h=1;tag=z").tag


_DISPLAYS = st.one_of(
    st.none(),
    st.text(alphabet=st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]), max_size=10),
    st.lists(TOKENS, min_size=1, max_size=3).map(" ".join),
)
_ADDR_URIS = st.sampled_from(["sip:alice@atlanta.com", "sips:b@[::1]:5061;transport=tls", "tel:+1-201-555-0123",
                              "sip:x@y?Replaces=a%40b%3Bto-tag%3D1", "urn:service:sos", "sip:%61@h;lr"])
_ADDR_PARAMS = st.lists(st.one_of(  # tag-param = "tag" EQUAL token: never without a value
    st.tuples(st.sampled_from(["tag", "TAG"]), TOKENS),
    st.tuples(st.sampled_from(["q", "expires", "x"]), st.none() | TOKENS | st.just('"a;b,c"'))), max_size=3)


@given(_DISPLAYS, _ADDR_URIS, _ADDR_PARAMS, st.sampled_from(["", " ", "\t "]))
def test_name_addr_round_trip(display: str | None, uri: str, params: list[tuple[str, str | None]], ws: str) -> None:
    addr = NameAddr(uri, display, Params(tuple(params)))
    text = str(addr)
    assert is_name_addr(text) and is_name_addr(ws + text + ws)
    again = parse_name_addr(ws + text + ws)
    assert again == addr
    assert tag_of(text) == addr.tag
    tagged = parse_name_addr(str(again.with_tag("t1")))
    assert tagged.tag == "t1" and (tagged.uri_text, tagged.display) == (uri, display)


@given(st.text(alphabet=' \t"<>:;=ab\\,@*', max_size=24))
def test_quick_check_agrees_with_the_parse(text: str) -> None:
    try:
        addr = parse_name_addr(text)
    except ParseError:
        assert not is_name_addr(text)
        return
    assert is_name_addr(text) == ("<" in text)  # a name-addr, not an addr-spec or a star
    assert addr.star == (text.strip(" \t") == "*")


# --- scalars ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "cseq"),
    [("4711 INVITE", CSeq(4711, "INVITE")), ("0 ACK", CSeq(0, "ACK")), ("4294967295 BYE", CSeq(2**32 - 1, "BYE")),
     ("1\tRE%47IST%45R", CSeq(1, "RE%47IST%45R")), ("007  NOTIFY", CSeq(7, "NOTIFY"))],
)
def test_cseq(value: str, cseq: CSeq) -> None:
    assert parse_cseq(value) == cseq
    assert str(cseq) == f"{cseq.number} {cseq.method}"


@pytest.mark.parametrize(
    "bad",
    ["", "1", "INVITE", "4294967296 INVITE", "99999999999 INVITE", "-1 INVITE", "+1 INVITE", "a INVITE", "1 INV@ITE",
     "1 INVITE x", "1INVITE", "\u0661 INVITE", "1 INVITE\r\n"],
)
def test_bad_cseq(bad: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_cseq(bad)
    assert info.value.header == "CSeq"


def test_uint() -> None:
    assert parse_uint("70", "Max-Forwards", 255) == 70
    assert parse_uint(" 0 ", "Max-Forwards", 255) == 0
    assert parse_uint("255", "Max-Forwards", 255) == 255
    for bad in ("256", "", "-1", "7 0", "+1", "0x1", "\u0661", "1" * 5000):
        with pytest.raises(ParseError) as info:
            parse_uint(bad, "Max-Forwards", 255)
        assert info.value.header == "Max-Forwards"


# --- media types, Accept, option tags ---------------------------------------------------------------------


def test_media_type() -> None:
    mt = parse_media_type(" Application/SDP ; charset = UTF-8 ")
    assert (mt.type, mt.subtype, mt.mime) == ("application", "sdp", "application/sdp")
    assert mt.params.get("charset") == "UTF-8"
    assert str(mt) == "application/sdp; charset = UTF-8"
    assert parse_media_type("message / sipfrag;version=2.0").mime == "message/sipfrag"
    assert str(MediaType("text", "plain")) == "text/plain"
    assert parse_media_type('multipart/mixed;boundary="a;b"').params.get("boundary") == '"a;b"'
    for bad in ("", "text", "text/", "/plain", "te xt/plain", "text/pl@in", "text/plain;", "a/b/c"):
        with pytest.raises(ParseError):
            parse_media_type(bad)


def test_accept() -> None:
    accepted = parse_accept("application/sdp;level=1, text/*;q=0.5,*/*;q=0.1")
    assert [m.mime for m in accepted] == ["application/sdp", "text/*", "*/*"]
    assert accepted[0].matches("Application/SDP") and not accepted[0].matches("application/pidf+xml")
    assert accepted[1].matches("text/html") and not accepted[1].matches("application/sdp")
    assert accepted[2].matches("anything/at-all")
    assert parse_accept("") == [] and parse_accept(" \t") == []  # an empty Accept accepts nothing
    with pytest.raises(ParseError):
        parse_accept("application/sdp,,text/plain")


def test_option_tags() -> None:
    assert parse_tokens("100rel, timer,replaces") == ["100rel", "timer", "replaces"]
    assert parse_tokens("") == [] and parse_tokens("  ") == []
    for bad in ("a b", "a,,b", "a;b", "a,"):
        with pytest.raises(ParseError):
            parse_tokens(bad)


# --- Event and Subscription-State (RFC 6665, RFC 3515) --------------------------------------------------------


def test_event() -> None:
    event = parse_event("Refer ; id=93809824")
    assert (event.package, event.id) == ("refer", "93809824")
    assert str(event) == "refer; id=93809824"
    assert parse_event("presence.winfo").package == "presence.winfo"
    assert parse_event("dialog").id is None
    assert str(Event("refer")) == "refer"
    for bad in ("", "refer id", ".x", "a..b", "refer;", "ref@r"):
        with pytest.raises(ParseError):
            parse_event(bad)


def test_subscription_state() -> None:
    active = parse_subscription_state("Active;expires=3600")
    assert (active.state, active.expires, active.reason, active.terminated) == ("active", 3600, None, False)
    ended = parse_subscription_state("terminated; reason=noresource")
    assert ended.terminated and ended.reason == "noresource" and ended.expires is None
    assert str(ended) == "terminated; reason=noresource"
    assert parse_subscription_state("pending;expires=soon").expires is None
    assert parse_subscription_state("active;expires=" + "9" * 5000).expires is None  # never an exception
    assert str(SubscriptionState("active")) == "active"
    for bad in ("", "act ive", "active;;x", "active;expires="):
        with pytest.raises(ParseError):
            parse_subscription_state(bad)


# --- Replaces (RFC 3891) ---------------------------------------------------------------------------------


def test_replaces() -> None:
    r = parse_replaces("12345@192.168.118.3;to-tag=12345;from-tag=54321;early-only")
    assert r == Replaces("12345@192.168.118.3", "12345", "54321", True)
    assert str(r) == "12345@192.168.118.3;to-tag=12345;from-tag=54321;early-only"
    r2 = parse_replaces(" abc ; From-Tag = 2 ; TO-TAG=1 ; x=y ")
    assert (r2.call_id, r2.to_tag, r2.from_tag, r2.early_only) == ("abc", "1", "2", False)
    assert str(r2) == "abc;to-tag=1;from-tag=2"


@pytest.mark.parametrize("bad", ["", ";to-tag=1;from-tag=2", "abc", "abc;to-tag=1", "abc;from-tag=2",
                                 "a b;to-tag=1;from-tag=2", "abc;to-tag;from-tag=2", "abc;to-tag=1;;from-tag=2"])
def test_bad_replaces(bad: str) -> None:
    with pytest.raises(ParseError):
        parse_replaces(bad)


# --- message/sipfrag (RFC 3420, RFC 3515 section 2.4.5) --------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"SIP/2.0 180 Ringing", 180, "Ringing"), (b"SIP/2.0 200 OK\r\n", 200, "OK"),
        (b"SIP/2.0 603 Declined\nContent-Length: 0\n\n", 603, "Declined"),  # bare LF, trailing headers
        (b"SIP/2.0 100 Trying\r\nContact: <sip:a@b>\r\n\r\n", 100, "Trying"),
        (b"SIP/2.0 100", 100, ""), (b"SIP/2.0 100\r\n", 100, ""),
        (b"\r\n  SIP/2.0  486 Busy Here  \r\n", 486, "Busy Here"),
        (b"sip/2.0 503 Service Unavailable", 503, "Service Unavailable"),  # RFC 3261 section 7.1
        ("SIP/2.0 200 Très bien".encode(), 200, "Très bien"), (b"SIP/2.0 200 \xff", 200, "\ufffd"),
    ],
)
def test_sipfrag(body: bytes, status: int, reason: str) -> None:
    assert parse_sipfrag(body) == SipFrag(status, reason)


def test_sipfrag_classes() -> None:
    frags = (SipFrag(180, "Ringing"), SipFrag(200, "OK"), SipFrag(486, "x"))
    assert [(f.provisional, f.success, f.failure) for f in frags] == [(1, 0, 0), (0, 1, 0), (0, 0, 1)]
    assert str(SipFrag(180, "Ringing")) == "SIP/2.0 180 Ringing"


@pytest.mark.parametrize("bad", [b"", b"hello", b"SIP/2.0", b"SIP/2.0 99 Low", b"SIP/2.0 700 High", b"SIP/2.0 1800 x",
                                 b"SIP/3.0 200 OK", b"SIP/2.0 20 OK", b"SIP/2.0 200 OK\rX", b"SIP/2.0200 OK",
                                 b"INVITE sip:a@b SIP/2.0\r\n"])
def test_bad_sipfrag(bad: bytes) -> None:
    with pytest.raises(ParseError):
        parse_sipfrag(bad)


# --- bounded time on hostile input -----------------------------------------------------------------------

_HOSTILE = st.builds(
    lambda head, piece, n, tail: head + piece * n + tail,
    st.sampled_from(["", "a", '"a"', "SIP/2.0/UDP", "SIP/2.0/UDP h", "<sip:a@b>", "<sip:a@b>;a", "sip:a@b"]),
    st.sampled_from([" ", "\t", " a", "a ", ";", ";a ", "; a", "/", " /", ",", '"', "\\", "<", ">", ":", " :", "a."]),
    st.integers(min_value=1, max_value=65535),
    st.sampled_from(["", "x", "<sip:a@b>", ";", " x", '"', "<", ":5060x", ";branch"]),
)


def _top_via_of(text: str) -> Via:
    return parse_top_via("SIP/2.0/UDP " + text)


@settings(deadline=timedelta(seconds=1), max_examples=150)
@given(_HOSTILE)
def test_parsing_takes_linear_time(text: str) -> None:
    is_name_addr(text)
    for parse in (parse_name_addr_list, parse_name_addr, tag_of, parse_via, _top_via_of, branch_of):
        with contextlib.suppress(ParseError):
            parse(text)


@given(via_values(), st.sampled_from(["", ';x="q;r"', " ", "\t"]))
def test_the_plain_via_pattern_is_a_subset_of_the_general_one(values: tuple[str, str], tail: str) -> None:
    text = values[0] + tail
    plain = _VIA_PLAIN.match(text)
    if plain is not None:
        general = _VIA_FAST.match(text)
        assert general is not None and general.groups() == plain.groups()


@pytest.mark.parametrize("text", ["0", "70", "255", "256", "070", " 70", "7\t", "\u0661", "65535"])
def test_small_numbers_are_looked_up_with_the_same_result(text: str) -> None:
    def reference(limit: int) -> int | None:
        stripped = text.strip(" \t")
        if not (stripped.isdigit() and stripped.isascii()) or int(stripped) > limit:
            return None
        return int(stripped)

    for limit in (0, 69, 70, 255, 65535):
        try:
            got: int | None = parse_uint(text, "Max-Forwards", limit)
        except ParseError:
            got = None
        assert got == reference(limit)


def test_a_via_says_whether_its_sender_follows_rfc_3261() -> None:
    assert parse_top_via("SIP/2.0/UDP h;branch=z9hG4bK-1").rfc3261
    assert not parse_top_via("SIP/2.0/UDP h;branch=1").rfc3261
    assert not parse_top_via("SIP/2.0/UDP h").rfc3261
