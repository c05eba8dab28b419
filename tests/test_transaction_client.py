"""Tests for b2bua.sip.transaction_client: the INVITE and non-INVITE client transactions on a fake clock
(RFC 3261 sections 17.1.1 and 17.1.2, Figures 5 and 6; RFC 6026 section 7.2)."""

from __future__ import annotations

import pytest

from b2bua.errors import TransactionError
from b2bua.sip.message import Request
from b2bua.sip.parser import parse_message
from b2bua.sip.timers import TimerSettings
from b2bua.sip.transaction_client import (
    INVITE_CLIENT_TABLE,
    NON_INVITE_CLIENT_TABLE,
    InviteClientState,
    InviteClientTransaction,
    NonInviteClientState,
    NonInviteClientTransaction,
    build_ack,
    response_input,
)
from b2bua.sip.transaction_events import ResponseToTU, Terminated, TimedOut, Transmit, TransportFailed
from b2bua.sip.transaction_machine import Input
from b2bua.sip.transaction_matching import ClientKey, client_key

from .transaction_builders import (
    TIMERS,
    TO_SERVER_TCP,
    TO_SERVER_UDP,
    gaps,
    make_request,
    make_response,
    run_timers,
    times_of,
)

ROUTES = ("<sip:p1.example.net;lr>", "<sip:p2.example.net;lr>")


def invite_tx(start: float = 0.0, udp: bool = True, **kw: object) -> InviteClientTransaction:
    request = make_request("INVITE", **kw)  # type: ignore[arg-type]
    tx = InviteClientTransaction(request, TO_SERVER_UDP if udp else TO_SERVER_TCP, TIMERS, start)
    assert tx.start() == [Transmit(request, tx.destination)]
    return tx


def non_invite_tx(method: str = "OPTIONS", start: float = 0.0, udp: bool = True) -> NonInviteClientTransaction:
    request = make_request(method)
    tx = NonInviteClientTransaction(request, TO_SERVER_UDP if udp else TO_SERVER_TCP, TIMERS, start)
    assert tx.start() == [Transmit(request, tx.destination)]
    return tx


# -- INVITE: Calling ------------------------------------------------------------------------------------


def test_invite_over_udp_without_answer_retransmits_on_timer_a_and_times_out_on_timer_b() -> None:
    tx = invite_tx()
    assert tx.state is InviteClientState.CALLING and tx.get_timer() == 0.5
    events = run_timers(tx, until=100)
    assert times_of(events, Transmit) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert all(a.message is tx.request and a.destination == TO_SERVER_UDP for _, a in events if isinstance(a, Transmit))
    assert events[-2:] == [(32.0, TimedOut("no response", "B")), (32.0, Terminated())]
    assert tx.state is InviteClientState.TERMINATED and tx.terminated and tx.get_timer() is None


def test_invite_schedule_is_relative_to_the_start_time() -> None:
    tx = invite_tx(start=1000.0)
    events = run_timers(tx, until=2000)
    assert times_of(events, Transmit) == [1000.5, 1001.5, 1003.5, 1007.5, 1015.5, 1031.5]
    assert times_of(events, TimedOut) == [1032.0]


def test_invite_start_may_take_its_own_time() -> None:
    tx = InviteClientTransaction(make_request(), TO_SERVER_UDP, TIMERS, 5.0)
    tx.start(10.0)
    assert tx.get_timer() == 10.5


def test_a_late_handle_timer_fires_each_due_timer_at_its_own_deadline() -> None:
    tx = invite_tx()
    actions = tx.handle_timer(2.0)
    assert actions == [Transmit(tx.request, TO_SERVER_UDP)] * 2  # A at 0.5 and at 1.5
    assert tx.get_timer() == 3.5
    actions = tx.handle_timer(100.0)
    assert actions == [Transmit(tx.request, TO_SERVER_UDP)] * 4 + [TimedOut("no response", "B"), Terminated()]


def test_handle_timer_before_any_deadline_does_nothing() -> None:
    tx = invite_tx()
    assert tx.handle_timer(0.49) == []
    assert tx.get_timer() == 0.5


def test_invite_over_tcp_sends_once_and_times_out_at_timer_b() -> None:
    tx = invite_tx(udp=False)
    assert tx.get_timer() == 32.0
    events = run_timers(tx, until=100)
    assert events == [(32.0, TimedOut("no response", "B")), (32.0, Terminated())]


def test_timers_scale_with_t1() -> None:
    request = make_request()
    tx = InviteClientTransaction(request, TO_SERVER_UDP, TimerSettings(T1=0.25, T2=4.0), 0.0)
    tx.start()
    events = run_timers(tx, until=100)
    assert times_of(events, Transmit) == [0.25, 0.75, 1.75, 3.75, 7.75, 15.75]
    assert times_of(events, TimedOut) == [16.0]


def test_invite_transport_error_in_calling_informs_the_tu() -> None:
    tx = invite_tx()
    assert tx.transport_error(0.1, "ICMP port unreachable") == [TransportFailed("ICMP port unreachable"), Terminated()]
    assert tx.get_timer() is None


# -- INVITE: Proceeding ----------------------------------------------------------------------------------


def test_provisional_stops_retransmissions_and_timer_b() -> None:
    tx = invite_tx()
    assert tx.handle_timer(0.5) == [Transmit(tx.request, TO_SERVER_UDP)]
    ringing = make_response(tx.request, 180)
    assert tx.receive_response(ringing, 0.7) == [ResponseToTU(ringing)]
    assert tx.state is InviteClientState.PROCEEDING
    assert tx.get_timer() is None  # Figure 5: neither A nor B runs in Proceeding
    assert tx.handle_timer(1000.0) == []
    progress = make_response(tx.request, 183)
    assert tx.receive_response(progress, 2.0) == [ResponseToTU(progress)]
    assert tx.state is InviteClientState.PROCEEDING


# -- INVITE: Completed -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [302, 404, 486, 503, 603])
@pytest.mark.parametrize("after_provisional", [False, True])
def test_final_non_2xx_is_acknowledged_by_the_transaction(status: int, after_provisional: bool) -> None:
    tx = invite_tx(routes=ROUTES, extra_vias=["SIP/2.0/UDP 198.51.100.7;branch=z9hG4bK-upstream"],
                   extra=["Contact: <sip:alice@192.0.2.10>", "Content-Type: application/sdp"], body=b"v=0\r\n")
    if after_provisional:
        tx.receive_response(make_response(tx.request, 180), 0.2)
    final = make_response(tx.request, status, to_tag="uas-7")
    actions = tx.receive_response(final, 1.0)
    assert actions[1:] == [ResponseToTU(final)]
    transmit = actions[0]
    assert isinstance(transmit, Transmit) and transmit.destination == TO_SERVER_UDP  # where the INVITE went
    ack = transmit.message
    assert isinstance(ack, Request) and ack is tx.ack
    check_ack(ack, tx.request, to="<sip:bob@example.com>;tag=uas-7")
    assert tx.state is InviteClientState.COMPLETED


def check_ack(ack: Request, invite: Request, to: str) -> None:
    """Every rule of RFC 3261 section 17.1.1.3, header by header."""
    assert ack.method == "ACK" and ack.uri == invite.uri
    assert ack.headers.get_all("via") == ["SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-tx1"]
    assert ack.headers.get_all("route") == list(ROUTES)
    assert ack.headers.get("from") == invite.headers.get("from")
    assert ack.headers.get("call-id") == invite.headers.get("call-id")
    assert ack.headers.get("cseq") == "1 ACK"
    assert ack.headers.get("to") == to
    assert ack.headers.get("max-forwards") == "70"
    assert ack.headers.get("content-length") == "0" and ack.body == b""
    assert [name for name, _ in ack.headers] == ["Via", "Max-Forwards", "Route", "Route", "From", "To", "Call-ID",
                                                 "CSeq", "Content-Length"]
    reparsed = parse_message(ack.serialize())
    assert isinstance(reparsed, Request) and reparsed == ack and reparsed.branch == invite.branch


def test_ack_takes_only_the_first_via_of_a_comma_separated_line() -> None:
    invite = make_request(via="SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-tx1, SIP/2.0/UDP 198.51.100.7", branch=None)
    ack = build_ack(invite, make_response(invite, 404))
    assert ack.headers.get_all("via") == ["SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-tx1"]


def test_ack_without_routes_has_none() -> None:
    invite = make_request()
    ack = build_ack(invite, make_response(invite, 404))
    assert "route" not in ack.headers and ack.headers.get("cseq") == "1 ACK"


def test_build_ack_needs_the_mandatory_headers() -> None:
    invite = make_request()
    response = make_response(invite, 404)
    response.headers.remove("to")
    with pytest.raises(TransactionError):
        build_ack(invite, response)


def test_retransmitted_final_gets_the_ack_again_and_stays_away_from_the_tu() -> None:
    tx = invite_tx()
    final = make_response(tx.request, 486)
    first = tx.receive_response(final, 1.0)
    again = tx.receive_response(make_response(tx.request, 486), 2.0)
    assert again == [first[0]]
    assert tx.receive_response(make_response(tx.request, 180), 2.5) == []  # absorbed
    assert tx.receive_response(make_response(tx.request, 200), 2.6) == []  # absorbed
    assert tx.state is InviteClientState.COMPLETED


def test_timer_d_is_32_seconds_over_udp() -> None:
    tx = invite_tx()
    tx.receive_response(make_response(tx.request, 404), 3.0)
    assert tx.get_timer() == 35.0
    assert run_timers(tx, until=100) == [(35.0, Terminated())]
    assert tx.receive_response(make_response(tx.request, 404), 36.0) == []


def test_timer_d_is_zero_over_tcp() -> None:
    tx = invite_tx(udp=False)
    final = make_response(tx.request, 404)
    actions = tx.receive_response(final, 3.0)
    assert [type(a) for a in actions] == [Transmit, ResponseToTU, Terminated]
    assert tx.state is InviteClientState.TERMINATED and tx.get_timer() is None


def test_transport_error_in_completed_ends_the_transaction() -> None:
    tx = invite_tx()
    tx.receive_response(make_response(tx.request, 404), 3.0)
    assert tx.transport_error(3.1) == [TransportFailed(""), Terminated()]


# -- INVITE: Accepted (RFC 6026) ---------------------------------------------------------------------------


@pytest.mark.parametrize("udp", [True, False])
def test_2xx_goes_to_accepted_and_every_2xx_reaches_the_tu_until_timer_m(udp: bool) -> None:
    tx = invite_tx(udp=udp)
    tx.receive_response(make_response(tx.request, 180), 0.3)
    ok = make_response(tx.request, 200, to_tag="fork-1")
    assert tx.receive_response(ok, 1.0) == [ResponseToTU(ok)]  # no ACK: that is the TU's
    assert tx.state is InviteClientState.ACCEPTED and tx.ack is None
    assert tx.get_timer() == 33.0  # Timer M = 64*T1, on every transport
    again = make_response(tx.request, 200, to_tag="fork-1")
    assert tx.receive_response(again, 1.5) == [ResponseToTU(again)]
    other_fork = make_response(tx.request, 200, to_tag="fork-2")
    assert tx.receive_response(other_fork, 2.0) == [ResponseToTU(other_fork)]
    assert tx.receive_response(make_response(tx.request, 180), 2.1) == []
    assert tx.receive_response(make_response(tx.request, 486), 2.2) == []
    assert run_timers(tx, until=100) == [(33.0, Terminated())]


def test_2xx_in_calling_also_goes_to_accepted() -> None:
    tx = invite_tx()
    ok = make_response(tx.request, 200)
    assert tx.receive_response(ok, 0.2) == [ResponseToTU(ok)]
    assert tx.state is InviteClientState.ACCEPTED
    assert tx.get_timer() == pytest.approx(32.2)  # A and B stopped, M runs


# -- INVITE: misuse ------------------------------------------------------------------------------------------


def test_invite_client_refuses_other_methods_and_branchless_requests() -> None:
    with pytest.raises(TransactionError):
        InviteClientTransaction(make_request("BYE"), TO_SERVER_UDP, TIMERS, 0.0)
    with pytest.raises(TransactionError):
        InviteClientTransaction(make_request(branch="old-style-1"), TO_SERVER_UDP, TIMERS, 0.0)
    with pytest.raises(TransactionError):
        InviteClientTransaction(make_request(branch=None), TO_SERVER_UDP, TIMERS, 0.0)


def test_start_twice_and_responses_before_start_raise() -> None:
    tx = invite_tx()
    with pytest.raises(TransactionError):
        tx.start()
    fresh = InviteClientTransaction(make_request(), TO_SERVER_UDP, TIMERS, 0.0)
    with pytest.raises(TransactionError):
        fresh.receive_response(make_response(fresh.request, 180), 0.1)


def test_a_response_of_another_transaction_raises() -> None:
    tx = invite_tx()
    with pytest.raises(TransactionError):
        tx.receive_response(make_response(make_request(branch="z9hG4bK-other"), 180), 0.1)
    with pytest.raises(TransactionError):
        tx.receive_response(make_response(make_request("CANCEL"), 200), 0.1)


def test_key_is_branch_and_method() -> None:
    tx = invite_tx()
    assert tx.key == ClientKey("z9hG4bK-tx1", "INVITE") == client_key(make_response(tx.request, 100))
    assert "INVITE" in repr(tx) and "Calling" in repr(tx)


# -- non-INVITE ------------------------------------------------------------------------------------------------


def test_non_invite_over_udp_retransmits_on_timer_e_capped_at_t2_and_times_out_on_f() -> None:
    tx = non_invite_tx()
    assert tx.state is NonInviteClientState.TRYING
    events = run_timers(tx, until=100)
    sent = [0.0, *times_of(events, Transmit)]
    assert gaps(sent) == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    assert sent[-1] == 31.5
    assert events[-2:] == [(32.0, TimedOut("no response", "F")), (32.0, Terminated())]


def test_non_invite_over_tcp_sends_once() -> None:
    tx = non_invite_tx(udp=False)
    assert run_timers(tx, until=100) == [(32.0, TimedOut("no response", "F")), (32.0, Terminated())]


def test_non_invite_after_a_provisional_retransmits_every_t2() -> None:
    tx = non_invite_tx("BYE")
    trying = make_response(tx.request, 100)
    assert tx.receive_response(trying, 0.2) == [ResponseToTU(trying)]
    assert tx.state is NonInviteClientState.PROCEEDING
    assert tx.get_timer() == 0.5  # Timer E keeps running; F too
    events = run_timers(tx, until=100)
    assert times_of(events, Transmit) == [0.5, 4.5, 8.5, 12.5, 16.5, 20.5, 24.5, 28.5]
    assert events[-2:] == [(32.0, TimedOut("no response", "F")), (32.0, Terminated())]


def test_non_invite_provisional_mid_backoff_switches_to_t2() -> None:
    tx = non_invite_tx()
    tx.handle_timer(0.5)  # next E at 1.5
    tx.receive_response(make_response(tx.request, 100), 1.0)
    events = run_timers(tx, until=10)
    assert times_of(events, Transmit) == [1.5, 5.5, 9.5]


@pytest.mark.parametrize("status", [200, 202, 404, 481, 500])
def test_non_invite_final_completes_and_timer_k_absorbs_retransmissions(status: int) -> None:
    tx = non_invite_tx()
    tx.receive_response(make_response(tx.request, 100), 0.1)
    final = make_response(tx.request, status)
    assert tx.receive_response(final, 2.0) == [ResponseToTU(final)]
    assert tx.state is NonInviteClientState.COMPLETED
    assert tx.get_timer() == 7.0  # Timer K = T4; E and F stopped
    assert tx.receive_response(make_response(tx.request, status), 3.0) == []
    assert tx.receive_response(make_response(tx.request, 100), 3.0) == []
    assert run_timers(tx, until=100) == [(7.0, Terminated())]


def test_non_invite_final_in_trying() -> None:
    tx = non_invite_tx()
    ok = make_response(tx.request, 200)
    assert tx.receive_response(ok, 0.1) == [ResponseToTU(ok)]
    assert tx.get_timer() == pytest.approx(5.1)


def test_non_invite_timer_k_is_zero_over_tcp() -> None:
    tx = non_invite_tx(udp=False)
    ok = make_response(tx.request, 200)
    assert tx.receive_response(ok, 0.1) == [ResponseToTU(ok), Terminated()]


def test_non_invite_provisionals_in_proceeding_reach_the_tu() -> None:
    tx = non_invite_tx()
    for t in (0.1, 0.2):
        trying = make_response(tx.request, 100)
        assert tx.receive_response(trying, t) == [ResponseToTU(trying)]


@pytest.mark.parametrize("provisional", [False, True])
def test_non_invite_transport_error(provisional: bool) -> None:
    tx = non_invite_tx()
    if provisional:
        tx.receive_response(make_response(tx.request, 100), 0.1)
    assert tx.transport_error(0.2, "connection refused") == [TransportFailed("connection refused"), Terminated()]


def test_non_invite_refuses_invite_and_ack() -> None:
    for method in ("INVITE", "ACK"):
        with pytest.raises(TransactionError):
            NonInviteClientTransaction(make_request(method), TO_SERVER_UDP, TIMERS, 0.0)


def test_cseq_must_name_the_method() -> None:
    request = make_request("BYE")
    request.headers.set("CSeq", "1 OPTIONS")
    with pytest.raises(TransactionError):
        NonInviteClientTransaction(request, TO_SERVER_UDP, TIMERS, 0.0)


def test_cancel_has_its_own_key_beside_the_invite() -> None:
    invite = invite_tx()
    cancel = non_invite_tx("CANCEL")
    assert cancel.key == ClientKey("z9hG4bK-tx1", "CANCEL") != invite.key
    with pytest.raises(TransactionError):
        invite.receive_response(make_response(cancel.request, 200), 0.1)


# -- the tables ------------------------------------------------------------------------------------------


def test_response_classes() -> None:
    assert [response_input(s) for s in (100, 199, 200, 299, 300, 699)] == [
        Input.RESPONSE_1XX, Input.RESPONSE_1XX, Input.RESPONSE_2XX, Input.RESPONSE_2XX,
        Input.RESPONSE_3XX_6XX, Input.RESPONSE_3XX_6XX]


def test_timer_b_runs_in_calling_only() -> None:
    rows = {state for (state, event) in INVITE_CLIENT_TABLE if event is Input.TIMER_B}
    assert rows == {InviteClientState.CALLING}


def test_no_client_table_row_leaves_terminated() -> None:
    for table in (INVITE_CLIENT_TABLE, NON_INVITE_CLIENT_TABLE):
        assert all(state.value != "Terminated" for state, _ in table)
