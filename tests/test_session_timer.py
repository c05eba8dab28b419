"""RFC 4028 negotiation and deadlines (b2bua.sip.session_timer): every row of the UAS table, the UAC side with
its 422 retry, header parsing, and the timer's deadlines on a fake clock."""

from __future__ import annotations

import pytest

from b2bua.errors import ParseError
from b2bua.sip.message import Headers, Request, Response
from b2bua.sip.session_timer import (
    UAS_REFRESHER,
    Accept,
    Negotiated,
    Refresher,
    Reject422,
    SessionExpires,
    SessionTimer,
    SessionTimerSettings,
    min_se_of,
    parse_session_expires,
    refresh_headers,
    session_expires_of,
    supports_timer,
    uac_headers,
    uac_on_2xx,
    uac_on_422,
    uas_decide,
)

SETTINGS = SessionTimerSettings(session_expires=1800, min_se=90)


def invite(*headers: tuple[str, str]) -> Request:
    return Request("INVITE", "sip:bob@127.0.0.3", Headers.of(*headers))


def response(status: int, *headers: tuple[str, str]) -> Response:
    return Response(status, headers=Headers.of(*headers))


@pytest.mark.parametrize(("text", "expected"), [
    ("1800", SessionExpires(1800)),
    ("90;refresher=uac", SessionExpires(90, Refresher.UAC)),
    ("600 ; refresher=UAS", SessionExpires(600, Refresher.UAS)),
    ("120;foo=bar", SessionExpires(120)),
])
def test_session_expires_parses(text: str, expected: SessionExpires) -> None:
    assert parse_session_expires(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "-5", "0", "90;refresher=both", "99999999999999"])
def test_bad_session_expires_is_refused(text: str) -> None:
    with pytest.raises(ParseError):
        parse_session_expires(text)


def test_headers_read_compact_forms_and_ignore_garbage() -> None:
    assert session_expires_of(invite(("x", "300;refresher=uac"))) == SessionExpires(300, Refresher.UAC)
    assert session_expires_of(invite(("Session-Expires", "soon"))) is None
    assert session_expires_of(invite()) is None
    assert min_se_of(invite(("Min-SE", "120"))) == 120 and min_se_of(invite(("Min-SE", "x"))) is None
    assert supports_timer(invite(("k", "replaces, timer")))
    assert supports_timer(invite(("Require", "timer")))
    assert not supports_timer(invite(("Supported", "replaces")))


def test_header_round_trip() -> None:
    assert SessionExpires(90, Refresher.UAS).header() == ("Session-Expires", "90;refresher=uas")
    assert SessionExpires(90).header() == ("Session-Expires", "90")


# --- the UAS side (sections 8.1, 9) -------------------------------------------------------------------------


def test_the_uas_table_covers_every_case() -> None:
    assert set(UAS_REFRESHER) == {(s, r) for s in (True, False) for r in (Refresher.UAC, Refresher.UAS, None)}


@pytest.mark.parametrize(("supported", "refresher"), list(UAS_REFRESHER))
def test_each_row_of_the_uas_table(supported: bool, refresher: Refresher | None) -> None:
    param = f";refresher={refresher.value}" if refresher is not None else ""
    headers = [("Session-Expires", f"600{param}")] + ([("Supported", "timer")] if supported else [])
    decision = uas_decide(invite(*headers), SETTINGS)
    expected_refresher, require = UAS_REFRESHER[(supported, refresher)]
    assert isinstance(decision, Accept)
    assert decision.negotiated == Negotiated(600, expected_refresher is Refresher.UAS)
    assert ("Session-Expires", f"600;refresher={expected_refresher.value}") in decision.headers
    assert (("Require", "timer") in decision.headers) is require


def test_below_our_min_se_gets_422_with_it() -> None:
    decision = uas_decide(invite(("Session-Expires", "60"), ("Supported", "timer")), SETTINGS)
    assert decision == Reject422(90) and decision.headers() == [("Min-SE", "90")]


def test_a_uac_without_timer_and_without_session_expires_is_left_alone() -> None:
    assert uas_decide(invite(), SETTINGS) == Accept(None)


def test_a_uac_with_timer_but_no_session_expires_gets_ours_and_refreshes() -> None:
    decision = uas_decide(invite(("Supported", "timer")), SETTINGS)
    assert isinstance(decision, Accept)
    assert decision.negotiated == Negotiated(1800, False)
    assert decision.headers == (("Session-Expires", "1800;refresher=uac"), ("Require", "timer"))


def test_a_longer_interval_is_reduced_to_ours_but_not_below_the_requests_min_se() -> None:
    long = uas_decide(invite(("Session-Expires", "7200"), ("Supported", "timer")), SETTINGS)
    assert isinstance(long, Accept) and long.negotiated == Negotiated(1800, False)
    floor = uas_decide(invite(("Session-Expires", "7200"), ("Min-SE", "3600"), ("Supported", "timer")), SETTINGS)
    assert isinstance(floor, Accept) and floor.negotiated == Negotiated(3600, False)


# --- the UAC side (sections 7.1-7.4) ------------------------------------------------------------------------


def test_uac_headers_ask_for_ours() -> None:
    assert uac_headers(SETTINGS) == [("Supported", "timer"), ("Session-Expires", "1800"), ("Min-SE", "90")]


@pytest.mark.parametrize(("value", "expected"), [
    ("600;refresher=uac", Negotiated(600, True)),
    ("600;refresher=uas", Negotiated(600, False)),
    ("600", Negotiated(600, True)),
    (None, None),
])
def test_uac_reads_the_2xx(value: str | None, expected: Negotiated | None) -> None:
    headers = [("Session-Expires", value)] if value is not None else []
    assert uac_on_2xx(response(200, *headers)) == expected


def test_a_422_is_retried_once_with_its_min_se() -> None:
    sent = invite(("Session-Expires", "90"), ("Min-SE", "90"))
    assert uac_on_422(response(422, ("Min-SE", "300")), sent) == [("Session-Expires", "300"), ("Min-SE", "300")]
    again = invite(("Session-Expires", "300"), ("Min-SE", "300"))
    assert uac_on_422(response(422, ("Min-SE", "300")), again) is None
    assert uac_on_422(response(422), sent) is None
    assert uac_on_422(response(422, ("Min-SE", "300")), invite()) is None


def test_refresh_headers_keep_the_service_refreshing_and_carry_min_se() -> None:
    assert refresh_headers(Negotiated(600, True), 90) == [("Supported", "timer"),
                                                          ("Session-Expires", "600;refresher=uac"), ("Min-SE", "90")]


def test_the_refresh_min_se_never_exceeds_the_interval_nor_goes_below_the_rfc_floor() -> None:
    assert refresh_headers(Negotiated(120, True), 300)[-1] == ("Min-SE", "120")
    assert refresh_headers(Negotiated(600, True), 30)[-1] == ("Min-SE", "90")


# --- deadlines (section 10) ------------------------------------------------------------------------------------


def test_the_refresher_refreshes_at_half_the_interval() -> None:
    timer = SessionTimer(Negotiated(600, True), 100.0)
    assert timer.deadline() == 400.0
    assert timer.due(399.0) is None and timer.due(400.0) == "refresh"
    timer.pending = True
    assert timer.deadline() == 100.0 + 600 - 32 and timer.due(400.0) is None and timer.due(668.0) == "expired"
    timer.pending = False
    timer.refreshed(400.0)
    assert timer.deadline() == 700.0


def test_the_other_side_expires_before_the_interval() -> None:
    timer = SessionTimer(Negotiated(90, False), 0.0)
    assert timer.deadline() == 60.0 and timer.due(59.9) is None and timer.due(60.0) == "expired"
    timer.refreshed(50.0, Negotiated(1800, False))
    assert timer.deadline() == 50.0 + 1800 - 32
    assert repr(timer) == "<SessionTimer 1800s by peer>"


@pytest.mark.parametrize(("record", "expected"), [
    ({"interval": 90, "we_refresh": True}, Negotiated(90, True)),
    ({"interval": 0, "we_refresh": True}, None),
    ({"interval": True, "we_refresh": True}, None),
    ({"interval": 90}, None),
    (None, None),
    ("90", None),
])
def test_negotiated_record_round_trip(record: object, expected: Negotiated | None) -> None:
    assert Negotiated.from_record(record) == expected
    if expected is not None:
        assert expected.to_record() == record
