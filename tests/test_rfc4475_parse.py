"""RFC 4475 at the message layer: each torture message parses, or raises ParseError with the right status.

Messages whose verdict needs application logic (416, 420, 415, 406) must parse, and what decides the
verdict must be reachable through the typed views; the engine's UDP test checks the answers themselves.
"""

from __future__ import annotations

import pytest

from b2bua.errors import ParseError
from b2bua.sip.message import Request, Response
from b2bua.sip.parser import parse_message
from b2bua.sip.uri import SUPPORTED_SCHEMES, AbsoluteUri

from .rfc4475 import TORTURES, Torture

ids = [t.name for t in TORTURES]


def test_all_49_messages_are_here() -> None:
    assert len(TORTURES) == 49


@pytest.mark.parametrize("t", [t for t in TORTURES if t.expect == "accept"], ids=lambda t: t.name)
def test_accepted_messages_parse_and_round_trip(t: Torture) -> None:
    msg = parse_message(t.data)
    assert isinstance(msg, Request if t.kind == "request" else Response)
    again = parse_message(msg.serialize())
    assert again == msg
    assert again.serialize() == msg.serialize()


@pytest.mark.parametrize("t", [t for t in TORTURES if t.expect in ("400", "505", "501|400")], ids=lambda t: t.name)
def test_malformed_requests_raise_with_the_status_to_answer(t: Torture) -> None:
    with pytest.raises(ParseError) as info:
        parse_message(t.data)
    assert info.value.status in t.statuses


@pytest.mark.parametrize("t", [t for t in TORTURES if t.expect == "either"], ids=lambda t: t.name)
def test_either_verdicts_parse_or_raise_400(t: Torture) -> None:
    try:
        msg = parse_message(t.data)
    except ParseError as e:
        assert e.status == 400
    else:
        assert parse_message(msg.serialize()) == msg


@pytest.mark.parametrize("t", [t for t in TORTURES if t.kind == "response"], ids=lambda t: t.name)
def test_responses_parse_or_are_recognised_as_malformed(t: Torture) -> None:
    if t.name in ("scalarlg.dat", "bigcode.dat"):
        with pytest.raises(ParseError):
            parse_message(t.data)
    else:
        assert isinstance(parse_message(t.data), Response)


def _request(name: str) -> Request:
    msg = parse_message(next(t for t in TORTURES if t.name == name).data)
    assert isinstance(msg, Request)
    return msg


def test_unknown_scheme_is_visible_for_416() -> None:
    for name in ("unkscm.dat", "novelsc.dat"):
        uri = _request(name).request_uri
        assert isinstance(uri, AbsoluteUri) and uri.scheme not in SUPPORTED_SCHEMES


def test_unknown_option_tags_are_visible_for_420() -> None:
    msg = _request("bext01.dat")
    assert msg.tokens("Require") or msg.tokens("Proxy-Require")
    assert msg.tokens("Require") == ["nothingSupportsThis", "nothingSupportsThisEither"]


def test_unknown_content_type_is_visible_for_415() -> None:
    ct = _request("invut.dat").content_type
    assert ct is not None and ct.mime != "application/sdp"


def test_accept_without_sdp_is_visible_for_406() -> None:
    from b2bua.sip.headers import parse_accept

    msg = _request("sdp01.dat")
    accepted = parse_accept(",".join(msg.headers.get_all("Accept")))
    assert accepted and not any(m.matches("application/sdp") for m in accepted)


def test_double_request_datagram_keeps_only_the_first() -> None:
    msg = _request("dblreq.dat")
    assert msg.method == "REGISTER"
    assert len(msg.body) == 0


def test_escaped_method_is_not_register() -> None:
    assert _request("esc02.dat").method == "RE%47IST%45R"


def test_wsinv_folding_and_lws() -> None:
    msg = _request("wsinv.dat")
    assert msg.to_tag == "1918181833n"
    assert msg.from_tag == "98asjd8"
    assert msg.from_ is not None and msg.from_.display == 'J Rosenberg \\"'
    assert msg.cseq == (9, "INVITE")
    assert msg.max_forwards == 68
    assert [v.branch for v in msg.vias] == ["390skdjuw", "z9hG4bK9ikj8", "z9hG4bK30239"]
    assert msg.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
