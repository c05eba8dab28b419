"""Tests for b2bua.sip.transaction_server: the INVITE and non-INVITE server transactions on a fake clock
(RFC 3261 sections 17.2.1 and 17.2.2, Figures 7 and 8; RFC 6026 sections 7.1 and 8.7)."""

from __future__ import annotations

import pytest

from b2bua.errors import TransactionError
from b2bua.sip.message import Request, Response
from b2bua.sip.transaction_client import build_ack
from b2bua.sip.transaction_events import AckToTU, Terminated, TimedOut, Transmit, TransportFailed
from b2bua.sip.transaction_machine import Input
from b2bua.sip.transaction_matching import server_key
from b2bua.sip.transaction_server import (
    INVITE_SERVER_TABLE,
    InviteServerState,
    InviteServerTransaction,
    NonInviteServerState,
    NonInviteServerTransaction,
    tu_response_input,
)

from .transaction_builders import (
    TIMERS,
    TO_CLIENT_TCP,
    TO_CLIENT_UDP,
    ack_for_2xx,
    gaps,
    make_request,
    make_response,
    run_timers,
    times_of,
)


def invite_server(udp: bool = True, now: float = 0.0, **kw: object) -> InviteServerTransaction:
    request = make_request("INVITE", **kw)  # type: ignore[arg-type]
    tx = InviteServerTransaction(request, TO_CLIENT_UDP if udp else TO_CLIENT_TCP, TIMERS, now)
    assert tx.state is InviteServerState.PROCEEDING and tx.get_timer() is None
    return tx


def non_invite_server(method: str = "BYE", udp: bool = True) -> NonInviteServerTransaction:
    tx = NonInviteServerTransaction(make_request(method), TO_CLIENT_UDP if udp else TO_CLIENT_TCP, TIMERS, 0.0)
    assert tx.state is NonInviteServerState.TRYING and tx.get_timer() is None
    return tx


def retransmission(tx: InviteServerTransaction | NonInviteServerTransaction) -> Request:
    return make_request(tx.request.method)


def ack_for(tx: InviteServerTransaction) -> Request:
    """The ACK the client transaction builds for the last (non-2xx) response."""
    assert tx.last_response is not None
    return build_ack(tx.request, tx.last_response)


# -- INVITE: Proceeding -------------------------------------------------------------------------------


def test_invite_retransmission_in_proceeding_resends_the_last_provisional() -> None:
    tx = invite_server()
    assert tx.receive_request(retransmission(tx), 0.1) == []  # nothing sent yet
    trying = make_response(tx.request, 100)
    ringing = make_response(tx.request, 180)
    assert tx.send_response(trying, 0.1) == [Transmit(trying, TO_CLIENT_UDP)]
    assert tx.send_response(ringing, 0.2) == [Transmit(ringing, TO_CLIENT_UDP)]
    assert tx.state is InviteServerState.PROCEEDING and tx.get_timer() is None
    assert tx.receive_request(retransmission(tx), 0.5) == [Transmit(ringing, TO_CLIENT_UDP)]
    assert tx.last_response is ringing


def test_ack_in_proceeding_is_absorbed() -> None:
    tx = invite_server()
    assert tx.receive_request(make_request("ACK"), 0.1) == []
    assert tx.state is InviteServerState.PROCEEDING


def test_transport_error_in_proceeding_informs_the_tu() -> None:
    tx = invite_server()
    tx.send_response(make_response(tx.request, 180), 0.1)
    assert tx.transport_error(0.2, "reset") == [TransportFailed("reset"), Terminated()]


# -- INVITE: Completed, Confirmed ----------------------------------------------------------------------


def test_final_non_2xx_is_retransmitted_on_timer_g_until_timer_h() -> None:
    tx = invite_server()
    busy = make_response(tx.request, 486)
    assert tx.send_response(busy, 10.0) == [Transmit(busy, TO_CLIENT_UDP)]
    assert tx.state is InviteServerState.COMPLETED
    events = run_timers(tx, until=100)
    sent = [10.0, *times_of(events, Transmit)]
    intervals = gaps(sent)
    assert intervals[:5] == [0.5, 1.0, 2.0, 4.0, 4.0] and set(intervals[3:]) == {4.0}
    assert sent[-1] == 41.5
    assert all(a == Transmit(busy, TO_CLIENT_UDP) for _, a in events if isinstance(a, Transmit))
    assert events[-2:] == [(42.0, TimedOut("no ACK", "H")), (42.0, Terminated())]


def test_ack_stops_retransmissions_and_confirmed_absorbs_until_timer_i() -> None:
    tx = invite_server()
    tx.send_response(make_response(tx.request, 404), 0.0)
    assert len(run_timers(tx, until=4.0)) == 3  # 0.5, 1.5, 3.5
    ack = ack_for(tx)
    assert tx.matches(ack) and server_key(ack) == tx.key
    assert tx.receive_request(ack, 5.0) == []
    assert tx.state is InviteServerState.CONFIRMED
    assert tx.get_timer() == 10.0  # Timer I = T4; G and H stopped
    assert tx.receive_request(ack_for(tx), 6.0) == []
    assert tx.receive_request(retransmission(tx), 6.5) == []
    assert run_timers(tx, until=100) == [(10.0, Terminated())]


def test_invite_retransmission_in_completed_resends_the_final_response() -> None:
    tx = invite_server()
    final = make_response(tx.request, 603)
    tx.send_response(final, 0.0)
    assert tx.receive_request(retransmission(tx), 0.2) == [Transmit(final, TO_CLIENT_UDP)]
    assert tx.get_timer() == 0.5  # the Timer G schedule is unchanged


def test_over_tcp_no_timer_g_and_the_ack_ends_the_transaction_at_once() -> None:
    tx = invite_server(udp=False)
    final = make_response(tx.request, 486)
    tx.send_response(final, 0.0)
    assert tx.get_timer() == 32.0  # only Timer H
    assert tx.receive_request(ack_for(tx), 0.1) == [Terminated()]  # Timer I is zero


def test_over_tcp_timer_h_still_gives_up() -> None:
    tx = invite_server(udp=False)
    tx.send_response(make_response(tx.request, 486), 0.0)
    assert run_timers(tx, until=100) == [(32.0, TimedOut("no ACK", "H")), (32.0, Terminated())]


def test_transport_error_in_completed_ends_it() -> None:
    tx = invite_server()
    tx.send_response(make_response(tx.request, 486), 0.0)
    assert tx.transport_error(0.1) == [TransportFailed(""), Terminated()]
    assert tx.get_timer() is None


# -- INVITE: Accepted (RFC 6026) ------------------------------------------------------------------------


@pytest.mark.parametrize("udp", [True, False])
def test_2xx_leads_to_accepted_until_timer_l(udp: bool) -> None:
    tx = invite_server(udp=udp)
    destination = TO_CLIENT_UDP if udp else TO_CLIENT_TCP
    ok = make_response(tx.request, 200)
    assert tx.send_response(ok, 1.0) == [Transmit(ok, destination)]
    assert tx.state is InviteServerState.ACCEPTED
    assert tx.get_timer() == 33.0  # Timer L = 64*T1 on every transport
    assert tx.receive_request(retransmission(tx), 1.2) == []  # absorbed, not passed up
    assert tx.send_response(ok, 1.5) == [Transmit(ok, destination)]  # the TU's retransmission
    ack = ack_for_2xx(tx.request, ok)
    assert tx.receive_request(ack, 2.0) == [AckToTU(ack)]
    assert tx.receive_request(ack, 2.5) == [AckToTU(ack)]
    assert run_timers(tx, until=100) == [(33.0, Terminated())]


def test_ack_for_2xx_with_a_new_branch_is_not_this_transactions() -> None:
    tx = invite_server()
    ok = make_response(tx.request, 200)
    tx.send_response(ok, 0.0)
    assert not tx.matches(ack_for_2xx(tx.request, ok))


def test_transport_error_in_accepted_is_reported_but_the_transaction_stays() -> None:
    tx = invite_server()
    tx.send_response(make_response(tx.request, 200), 0.0)
    assert tx.transport_error(0.1) == [TransportFailed("")]
    assert tx.state is InviteServerState.ACCEPTED


# -- INVITE: misuse ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("first", "second"), [(486, 486), (486, 200), (486, 180), (200, 180), (200, 486)])
def test_a_response_after_the_final_one_raises(first: int, second: int) -> None:
    tx = invite_server()
    tx.send_response(make_response(tx.request, first), 0.0)
    with pytest.raises(TransactionError):
        tx.send_response(make_response(tx.request, second), 0.1)


def test_responses_after_terminated_raise_and_requests_are_ignored() -> None:
    tx = invite_server(udp=False)
    tx.send_response(make_response(tx.request, 486), 0.0)
    tx.receive_request(ack_for(tx), 0.1)
    assert tx.terminated
    with pytest.raises(TransactionError):
        tx.send_response(make_response(tx.request, 486), 0.2)
    assert tx.receive_request(retransmission(tx), 0.3) == []


def test_invite_server_refuses_other_methods() -> None:
    with pytest.raises(TransactionError):
        InviteServerTransaction(make_request("BYE"), TO_CLIENT_UDP, TIMERS, 0.0)
    tx = invite_server()
    with pytest.raises(TransactionError):
        tx.receive_request(make_request("CANCEL"), 0.1)


@pytest.mark.parametrize("status", [99, 700, 0])
def test_impossible_status_raises(status: int) -> None:
    tx = invite_server()
    with pytest.raises(TransactionError):
        tx.send_response(Response(status), 0.0)


def test_server_properties() -> None:
    tx = invite_server()
    assert tx.source == TO_CLIENT_UDP and tx.key == server_key(tx.request) and not tx.reliable
    assert "INVITE" in repr(tx) and "Proceeding" in repr(tx)


# -- non-INVITE ----------------------------------------------------------------------------------------------


def test_non_invite_retransmission_in_trying_is_answered_by_nothing() -> None:
    tx = non_invite_server()
    assert tx.receive_request(retransmission(tx), 0.5) == []
    assert tx.state is NonInviteServerState.TRYING


def test_non_invite_proceeding_and_completed_resend_the_last_response() -> None:
    tx = non_invite_server()
    trying = make_response(tx.request, 100)
    assert tx.send_response(trying, 0.1) == [Transmit(trying, TO_CLIENT_UDP)]
    assert tx.state is NonInviteServerState.PROCEEDING
    assert tx.receive_request(retransmission(tx), 0.5) == [Transmit(trying, TO_CLIENT_UDP)]
    ok = make_response(tx.request, 200)
    assert tx.send_response(ok, 1.0) == [Transmit(ok, TO_CLIENT_UDP)]
    assert tx.state is NonInviteServerState.COMPLETED
    assert tx.receive_request(retransmission(tx), 1.5) == [Transmit(ok, TO_CLIENT_UDP)]
    assert tx.get_timer() == 33.0  # Timer J = 64*T1 over UDP
    assert run_timers(tx, until=100) == [(33.0, Terminated())]


@pytest.mark.parametrize("status", [200, 404, 500])
def test_non_invite_final_from_trying(status: int) -> None:
    tx = non_invite_server("OPTIONS")
    final = make_response(tx.request, status)
    assert tx.send_response(final, 2.0) == [Transmit(final, TO_CLIENT_UDP)]
    assert tx.state is NonInviteServerState.COMPLETED and tx.get_timer() == 34.0


def test_non_invite_timer_j_is_zero_over_tcp() -> None:
    tx = non_invite_server(udp=False)
    ok = make_response(tx.request, 200)
    assert tx.send_response(ok, 1.0) == [Transmit(ok, TO_CLIENT_TCP), Terminated()]


def test_non_invite_second_final_raises() -> None:
    tx = non_invite_server()
    tx.send_response(make_response(tx.request, 200), 0.0)
    with pytest.raises(TransactionError):
        tx.send_response(make_response(tx.request, 500), 0.1)
    with pytest.raises(TransactionError):
        tx.send_response(make_response(tx.request, 100), 0.1)


def test_non_invite_transport_errors() -> None:
    tx = non_invite_server()
    assert tx.transport_error(0.0) == []  # nothing was sent in Trying
    tx.send_response(make_response(tx.request, 100), 0.1)
    assert tx.transport_error(0.2) == [TransportFailed(""), Terminated()]
    done = non_invite_server()
    done.send_response(make_response(done.request, 200), 0.1)
    assert done.transport_error(0.2) == [TransportFailed(""), Terminated()]


def test_non_invite_server_refuses_invite_ack_and_strangers() -> None:
    for method in ("INVITE", "ACK"):
        with pytest.raises(TransactionError):
            NonInviteServerTransaction(make_request(method), TO_CLIENT_UDP, TIMERS, 0.0)
    tx = non_invite_server("BYE")
    with pytest.raises(TransactionError):
        tx.receive_request(make_request("ACK"), 0.1)
    with pytest.raises(TransactionError):
        tx.receive_request(make_request("INFO"), 0.1)


def test_cancel_gets_its_own_non_invite_transaction() -> None:
    invite = invite_server()
    cancel = NonInviteServerTransaction(make_request("CANCEL"), TO_CLIENT_UDP, TIMERS, 0.0)
    assert cancel.key != invite.key
    ok = make_response(cancel.request, 200)
    assert cancel.send_response(ok, 0.1) == [Transmit(ok, TO_CLIENT_UDP)]


# -- the tables ------------------------------------------------------------------------------------------


def test_tu_response_classes() -> None:
    assert [tu_response_input(s) for s in (100, 183, 200, 299, 300, 699)] == [
        Input.TU_1XX, Input.TU_1XX, Input.TU_2XX, Input.TU_2XX, Input.TU_3XX_6XX, Input.TU_3XX_6XX]


def test_accepted_takes_only_2xx_from_the_tu() -> None:
    tu_rows = {event for (state, event) in INVITE_SERVER_TABLE if state is InviteServerState.ACCEPTED and event.from_tu}
    assert tu_rows == {Input.TU_2XX}


def test_an_invite_transaction_matches_the_cancel_that_refers_to_it() -> None:
    tx = invite_server()
    assert tx.matches(make_request("CANCEL"))
    assert not tx.matches(make_request("CANCEL", branch="z9hG4bK-other"))
    legacy = invite_server(branch=None)
    assert legacy.matches(make_request("CANCEL", branch=None))
    assert not legacy.matches(make_request("CANCEL", branch=None, to_tag="stranger"))


def test_a_cancel_transaction_matches_its_retransmissions_not_the_invite() -> None:
    cancel = NonInviteServerTransaction(make_request("CANCEL"), TO_CLIENT_UDP, TIMERS, 0.0)
    assert cancel.matches(make_request("CANCEL"))
    assert not cancel.matches(make_request("INVITE"))
