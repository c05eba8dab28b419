"""Tests for b2bua.sip.transaction_machine: the shared table runner and its timer model."""

from __future__ import annotations

import logging
from enum import Enum

import pytest

from b2bua.errors import TransactionError
from b2bua.sip.timers import TimerSettings
from b2bua.sip.transaction_client import (
    INVITE_CLIENT_TABLE,
    INVITE_CLIENT_TIMER_STATES,
    NON_INVITE_CLIENT_TABLE,
    NON_INVITE_CLIENT_TIMER_STATES,
    InviteClientState,
    InviteClientTransaction,
    NonInviteClientTransaction,
)
from b2bua.sip.transaction_events import Terminated, TimedOut, Transmit
from b2bua.sip.transaction_machine import (
    TIMER_INPUTS,
    Arm,
    Do,
    Input,
    Interval,
    Table,
    TimerStates,
    TransactionMachine,
    check_table,
    go,
)
from b2bua.sip.transaction_server import (
    INVITE_SERVER_TABLE,
    INVITE_SERVER_TIMER_STATES,
    NON_INVITE_SERVER_TABLE,
    NON_INVITE_SERVER_TIMER_STATES,
    InviteServerTransaction,
)

from .transaction_builders import (
    TIMERS,
    TO_CLIENT_UDP,
    TO_SERVER_TCP,
    TO_SERVER_UDP,
    make_request,
    make_response,
    run_timers,
)

ALL_TABLES = [
    (INVITE_CLIENT_TABLE, INVITE_CLIENT_TIMER_STATES),
    (NON_INVITE_CLIENT_TABLE, NON_INVITE_CLIENT_TIMER_STATES),
    (INVITE_SERVER_TABLE, INVITE_SERVER_TIMER_STATES),
    (NON_INVITE_SERVER_TABLE, NON_INVITE_SERVER_TIMER_STATES),
]


class Toy(Enum):
    ONE = "One"
    TWO = "Two"
    END = "End"


def test_inputs_from_the_tu() -> None:
    assert {i for i in Input if i.from_tu} == {Input.START, Input.TU_1XX, Input.TU_2XX, Input.TU_3XX_6XX}
    assert set(TIMER_INPUTS.values()) == {i for i in Input if i.name.startswith("TIMER_")}


@pytest.mark.parametrize(("table", "timer_states"), ALL_TABLES)
def test_every_armed_timer_fires_and_every_state_is_used(table: Table, timer_states: TimerStates) -> None:
    states = {state for state, _ in table} | {row.target for row in table.values()}
    states_type = type(next(iter(states)))
    assert states == set(states_type)
    armed = {step.timer for row in table.values() for step in row.steps if isinstance(step, Arm)}
    assert armed == set(timer_states)


def test_check_table_rejects_a_timer_armed_into_a_state_where_it_does_not_run() -> None:
    table: Table = {(Toy.ONE, Input.START): go(Toy.TWO, Arm("K")), (Toy.ONE, Input.TIMER_K): go(Toy.END)}
    with pytest.raises(AssertionError, match="does not run"):
        check_table(table, Toy, Toy.END, {"K": frozenset({Toy.ONE})})


def test_check_table_rejects_a_timer_without_a_row_to_fire() -> None:
    table: Table = {(Toy.ONE, Input.START): go(Toy.TWO, Arm("K"))}
    with pytest.raises(AssertionError, match="no row"):
        check_table(table, Toy, Toy.END, {"K": frozenset({Toy.TWO})})


def test_check_table_rejects_rows_out_of_the_terminal_state() -> None:
    with pytest.raises(AssertionError, match="terminal"):
        check_table({(Toy.END, Input.START): go(Toy.ONE)}, Toy, Toy.END, {})


def test_check_table_rejects_foreign_states() -> None:
    with pytest.raises(AssertionError):
        check_table({(Toy.ONE, Input.START): go(InviteClientState.CALLING)}, Toy, Toy.END, {})


def test_equal_deadlines_fire_the_timeout_before_the_retransmission() -> None:
    """With T2 = T1 Timer E fires every 0.5 s and meets Timer F at 32 s: F wins, nothing more is sent."""
    timers = TimerSettings(T1=0.5, T2=0.5)
    tx = NonInviteClientTransaction(make_request("OPTIONS"), TO_SERVER_UDP, timers, 0.0)
    tx.start()
    events = run_timers(tx, until=100)
    sends = [t for t, a in events if isinstance(a, Transmit)]
    assert sends == [0.5 * n for n in range(1, 64)]
    assert events[-2:] == [(32.0, TimedOut("no response", "F")), (32.0, Terminated())]


def test_leaving_a_state_stops_its_timers() -> None:
    tx = InviteServerTransaction(make_request(), TO_CLIENT_UDP, TIMERS, 0.0)
    tx.send_response(make_response(tx.request, 486), 0.0)
    assert set(tx._deadlines) == {"G", "H"}
    tx.receive_request(make_request("ACK"), 1.0)
    assert set(tx._deadlines) == {"I"}


def test_interval_rules() -> None:
    tx = InviteClientTransaction(make_request(), TO_SERVER_UDP, TimerSettings(T1=1.0, T2=3.0), 0.0)
    tx.start()
    for interval, expected in [(Interval.DOUBLED, 2.0), (Interval.DOUBLED, 4.0), (Interval.DOUBLED_UP_TO_T2, 3.0),
                               (Interval.T2, 3.0), (Interval.FIRST, 1.0)]:
        tx._arm(Arm("A", interval), 10.0)
        assert tx._intervals["A"] == expected and tx._deadlines["A"] == 10.0 + expected


def test_retransmission_timers_never_start_on_reliable_transports() -> None:
    tx = InviteClientTransaction(make_request(), TO_SERVER_TCP, TIMERS, 0.0)
    tx.start()
    assert set(tx._deadlines) == {"B"}


def test_unhandled_network_input_is_absorbed_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    tx = InviteClientTransaction(make_request(), TO_SERVER_UDP, TIMERS, 0.0)
    tx.start()
    with caplog.at_level(logging.DEBUG, logger="call_api.sip.transaction"):
        tx.receive_response(make_response(tx.request, 404), 1.0)
        assert tx.receive_response(make_response(tx.request, 200), 1.1) == []
    messages = [r.getMessage() for r in caplog.records]
    assert any("Calling -> Completed" in m and "call-1@192.0.2.10" in m for m in messages)
    assert any("absorbs 2xx received in Completed" in m for m in messages)


def test_unhandled_tu_input_raises_with_the_state_in_the_message() -> None:
    tx = InviteServerTransaction(make_request(), TO_CLIENT_UDP, TIMERS, 0.0)
    tx.send_response(make_response(tx.request, 486), 0.0)
    with pytest.raises(TransactionError, match="Completed cannot take 2xx from TU"):
        tx.send_response(make_response(tx.request, 200), 0.1)


def test_steps_a_side_lacks_are_programming_errors() -> None:
    tx = InviteServerTransaction(make_request(), TO_CLIENT_UDP, TIMERS, 0.0)
    with pytest.raises(AssertionError):
        tx._do(Do.SEND_REQUEST, Input.START, None, "")
    with pytest.raises(AssertionError):
        TransactionMachine._send_ack(tx, make_response(tx.request, 486))
    with pytest.raises(AssertionError):
        TransactionMachine._response_to_tu(tx, make_response(tx.request, 486))
    with pytest.raises(AssertionError):
        TransactionMachine._ack_to_tu(tx, make_request("ACK"))
    client = InviteClientTransaction(make_request(), TO_SERVER_UDP, TIMERS, 0.0)
    with pytest.raises(AssertionError):
        TransactionMachine._send_response(client, make_response(client.request, 486))
    with pytest.raises(AssertionError):
        TransactionMachine._resend_response(client)


def test_state_on_the_base_class_is_the_same_state() -> None:
    tx = InviteServerTransaction(make_request(), TO_CLIENT_UDP, TIMERS, 0.0)
    machine: TransactionMachine = tx
    assert TransactionMachine.state.fget(machine) is tx.state  # type: ignore[attr-defined]
    assert TransactionMachine._log_name(machine) == "InviteServerTransaction"


def test_server_transitions_are_logged_with_the_call_id(caplog: pytest.LogCaptureFixture) -> None:
    tx = InviteServerTransaction(make_request(), TO_CLIENT_UDP, TIMERS, 0.0)
    with caplog.at_level(logging.DEBUG, logger="call_api.sip.transaction"):
        tx.send_response(make_response(tx.request, 486), 0.0)
    assert [r.getMessage() for r in caplog.records] == [
        "InviteServerTransaction z9hG4bK-tx1 call-id=call-1@192.0.2.10 Proceeding -> Completed on 300-699 from TU"]


def test_nothing_is_logged_when_debug_is_off(caplog: pytest.LogCaptureFixture) -> None:
    tx = InviteServerTransaction(make_request(), TO_CLIENT_UDP, TIMERS, 0.0)
    with caplog.at_level(logging.INFO, logger="call_api.sip.transaction"):
        tx.send_response(make_response(tx.request, 486), 0.0)
        tx.receive_request(make_request("INVITE"), 0.1)
    assert caplog.records == []
