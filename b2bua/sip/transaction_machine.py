"""The table runner the four transaction machines share (RFC 3261 section 17).

A machine is an :class:`~enum.Enum` of states plus a transition table: ``(state, Input) -> Go``, where
:class:`Go` names the next state and the steps to take: :class:`Do` steps that produce output and
:class:`Arm` steps that (re)start a timer. The runner keeps every timer as a deadline; it never
schedules anything. :meth:`TransactionMachine.get_timer` reports the earliest deadline and
:meth:`TransactionMachine.handle_timer` fires what is due, each timer at its own deadline, so a
retransmission schedule is exact however late the caller is.

Leaving a state stops the timers that do not run in the next one (``TIMER_STATES``); entering the
terminal state stops all of them and outputs :class:`~b2bua.sip.transaction_events.Terminated`.
A network input with no row in the table is absorbed (the figures draw no arrow for it); a transaction
user's input with no row is a misuse and raises :class:`TransactionError`.

How a transaction layer drives a machine (:mod:`.transaction_client`, :mod:`.transaction_server`)::

    tx = InviteClientTransaction(request, destination, timers, now)
    actions = tx.start()                        # [Transmit(request, destination)]
    actions = tx.receive_response(resp, now)    # when client_key(resp) == tx.key
    deadline = tx.get_timer()                   # arm one loop timer for it...
    actions = tx.handle_timer(now)              # ...and call this when it fires

Every call returns a list of :data:`~b2bua.sip.transaction_events.Action` to carry out in order; after
:class:`~b2bua.sip.transaction_events.Terminated` the layer drops the transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar, Final, assert_never

from ..errors import TransactionError
from .identity_enum import IdentityEnum
from .message import Request, Response
from .timers import TimerName, TimerSettings
from .transaction_events import Action, Terminated, TimedOut, TransportFailed

logger = logging.getLogger("call_api.sip.transaction")


class Input(IdentityEnum):
    """What can happen to a transaction: a message from the network, a call from the TU, a timer."""

    #: A client transaction is told to send its request (RFC 3261 section 17.1.1.2, 17.1.2.2).
    START = "start"
    #: A client transaction receives a response of this class.
    RESPONSE_1XX = "1xx received"
    RESPONSE_2XX = "2xx received"
    RESPONSE_3XX_6XX = "300-699 received"
    #: A server transaction receives a retransmission of its request.
    REQUEST = "request retransmission received"
    #: An INVITE server transaction receives an ACK.
    ACK = "ACK received"
    #: The transaction user hands a server transaction a response of this class.
    TU_1XX = "1xx from TU"
    TU_2XX = "2xx from TU"
    TU_3XX_6XX = "300-699 from TU"
    #: The transport failed to send one of the transaction's messages (section 17.1.4, 17.2.4).
    TRANSPORT_ERROR = "transport error"
    TIMER_A = "Timer A fires"
    TIMER_B = "Timer B fires"
    TIMER_D = "Timer D fires"
    TIMER_E = "Timer E fires"
    TIMER_F = "Timer F fires"
    TIMER_G = "Timer G fires"
    TIMER_H = "Timer H fires"
    TIMER_I = "Timer I fires"
    TIMER_J = "Timer J fires"
    TIMER_K = "Timer K fires"
    TIMER_L = "Timer L fires"
    TIMER_M = "Timer M fires"

    @property
    def from_tu(self) -> bool:
        return self in _TU_INPUTS


_TU_INPUTS: Final = frozenset({Input.START, Input.TU_1XX, Input.TU_2XX, Input.TU_3XX_6XX})

#: The input each timer feeds its machine when it fires.
TIMER_INPUTS: Final[Mapping[TimerName, Input]] = {
    "A": Input.TIMER_A, "B": Input.TIMER_B, "D": Input.TIMER_D, "E": Input.TIMER_E, "F": Input.TIMER_F,
    "G": Input.TIMER_G, "H": Input.TIMER_H, "I": Input.TIMER_I, "J": Input.TIMER_J, "K": Input.TIMER_K,
    "L": Input.TIMER_L, "M": Input.TIMER_M,
}
#: When timers share a deadline, timeouts and terminations fire before retransmissions.
#: The retransmission timers, whose interval doubles (RFC 3261 sections 17.1.1.2, 17.1.2.2, 17.2.1).
_DOUBLING: Final[frozenset[TimerName]] = frozenset({"A", "E", "G"})
_TIE_FIRST: Final[tuple[TimerName, ...]] = ("B", "F", "H", "D", "I", "J", "K", "L", "M", "A", "E", "G")
_TIE_ORDER: Final[Mapping[TimerName, int]] = {name: rank for rank, name in enumerate(_TIE_FIRST)}

#: The timeouts a :attr:`Do.TIMED_OUT` step reports: timer -> reason.
_TIMEOUT_REASONS: Final[Mapping[Input, tuple[str, TimerName]]] = {
    Input.TIMER_B: ("no response", "B"),
    Input.TIMER_F: ("no response", "F"),
    Input.TIMER_H: ("no ACK", "H"),
}


class Do(IdentityEnum):
    """A step of a transition that produces output."""

    #: Client: (re)transmit the request.
    SEND_REQUEST = "send request"
    #: INVITE client: build the ACK for the 300-699 just received and transmit it (section 17.1.1.3).
    SEND_ACK = "send ACK"
    #: Client: pass the response just received to the TU.
    RESPONSE_TO_TU = "response to TU"
    #: Server: transmit the TU's response and remember it as the last one sent.
    SEND_RESPONSE = "send response"
    #: Server: retransmit the last response sent, if there is one.
    RESEND_RESPONSE = "resend last response"
    #: INVITE server in Accepted: pass the ACK just received to the TU (RFC 6026 section 8.7).
    ACK_TO_TU = "ACK to TU"
    #: Tell the TU the transaction timed out (Timer B, F or H).
    TIMED_OUT = "inform TU: timeout"
    #: Tell the TU the transport failed.
    TRANSPORT_FAILED = "inform TU: transport error"


class Interval(IdentityEnum):
    """How an :class:`Arm` step picks the timer's next interval."""

    #: The timer's own value from :class:`~b2bua.sip.timers.TimerSettings` for this transport.
    FIRST = "first"
    #: Twice the last interval, without a cap (Timer A, section 17.1.1.2).
    DOUBLED = "doubled"
    #: Twice the last interval, at most T2 (Timers E and G, sections 17.1.2.2 and 17.2.1).
    DOUBLED_UP_TO_T2 = "doubled, at most T2"
    #: Exactly T2 (Timer E in Proceeding, section 17.1.2.2).
    T2 = "T2"


@dataclass(frozen=True, slots=True)
class Arm:
    """A step that (re)starts ``timer``; on reliable transports A, E and G never start."""

    timer: TimerName
    interval: Interval = Interval.FIRST


Step = Do | Arm


@dataclass(frozen=True, slots=True)
class Go:
    """One row's outcome: move to ``target`` after taking ``steps`` in order."""

    target: Enum
    steps: tuple[Step, ...] = ()


def go(target: Enum, *steps: Step) -> Go:
    return Go(target, steps)


#: A transition table: (state, input) -> what to do.
Table = Mapping[tuple[Enum, Input], Go]
#: For each timer a machine uses, the states it keeps running in.
TimerStates = Mapping[TimerName, frozenset[Enum]]


class TransactionMachine:
    """The runner: feeds inputs through ``TABLE`` and keeps the timers as deadlines."""

    #: The transition table (set by each machine).
    TABLE: ClassVar[Table]
    #: For each timer the machine uses, the states it keeps running in.
    TIMER_STATES: ClassVar[TimerStates]
    #: The state a new transaction is in.
    INITIAL: ClassVar[Enum]
    #: The terminal state.
    TERMINATED: ClassVar[Enum]

    __slots__ = ("_deadlines", "_intervals", "_reliable", "_state", "_timers", "queued")

    def __init__(self, timers: TimerSettings, reliable: bool) -> None:
        self._state: Enum = self.INITIAL
        self._timers = timers
        self._reliable = reliable
        self._deadlines: dict[TimerName, float] = {}
        #: The current interval of each retransmission timer (A, E, G: the ones that double); made on the
        #: first one armed and dropped when the machine leaves the states where they run (a held call keeps
        #: its INVITE transactions 64*T1 after the 2xx, with no retransmission timer).
        self._intervals: dict[TimerName, float] | None = None
        #: The deadline under which the owner of this machine last queued it (the transaction layer's heap).
        self.queued: float | None = None

    # -- the timer model --------------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        """The earliest deadline of a running timer, or ``None`` when none runs."""
        return min(self._deadlines.values(), default=None)

    def handle_timer(self, now: float) -> list[Action]:
        """Fire every timer due at or before ``now``, in deadline order (a re-armed timer fires again if due)."""
        out: list[Action] = []
        deadlines = self._deadlines
        while deadlines:
            timer = min(deadlines, key=lambda name: (deadlines[name], _TIE_ORDER[name]))
            at = deadlines[timer]
            if at > now:
                break
            del deadlines[timer]
            out += self._feed(TIMER_INPUTS[timer], at, None)
        return out

    @property
    def state(self) -> Enum:
        """The current state (each machine narrows the type to its own states)."""
        return self._state

    @property
    def terminated(self) -> bool:
        return self._state is self.TERMINATED

    @property
    def reliable(self) -> bool:
        """Is the transport reliable (no retransmission timers; zero waits for D, I, J, K)?"""
        return self._reliable

    # -- the runner ---------------------------------------------------------------------------------------

    def _input(self, event: Input, now: float, message: Request | Response | None, detail: str = "") -> list[Action]:
        """Feed one input, then fire what became due (the zero waits of reliable transports end at once)."""
        out = self._feed(event, now, message, detail)
        deadlines = self._deadlines
        if deadlines and min(deadlines.values()) <= now:
            out += self.handle_timer(now)
        return out

    def _feed(self, event: Input, now: float, message: Request | Response | None, detail: str = "") -> list[Action]:
        state = self._state
        row = self.TABLE.get((state, event))
        if row is None:
            if event.from_tu:
                raise TransactionError(f"{type(self).__name__} in state {state.value} cannot take {event.value}")
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("%s absorbs %s in %s", self._log_name(), event.value, state.value)
            return []
        out: list[Action] = []
        for step in row.steps:
            if isinstance(step, Arm):
                self._arm(step, now)
            else:
                out += self._do(step, event, message, detail)
        target = row.target
        if target is not state:
            self._state = target
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("%s %s -> %s on %s", self._log_name(), state.value, target.value, event.value)
            if target is self.TERMINATED:
                self._deadlines.clear()
                out.append(Terminated())
            else:
                for timer in [t for t in self._deadlines if target not in self.TIMER_STATES[t]]:
                    del self._deadlines[timer]
                if self._intervals is not None and not _DOUBLING.intersection(self._deadlines):
                    self._intervals = None
        return out

    def _arm(self, arm: Arm, now: float) -> None:
        timer = arm.timer
        match arm.interval:
            case Interval.FIRST:
                interval = self._timers.duration(timer, self._reliable)
                if interval is None:
                    return
            case Interval.DOUBLED:
                assert self._intervals is not None
                interval = 2 * self._intervals[timer]
            case Interval.DOUBLED_UP_TO_T2:
                assert self._intervals is not None
                interval = min(2 * self._intervals[timer], self._timers.T2)
            case Interval.T2:
                interval = self._timers.T2
            case _:  # pragma: no cover - every Interval has a case
                assert_never(arm.interval)
        if timer in _DOUBLING:
            if self._intervals is None:
                self._intervals = {}
            self._intervals[timer] = interval
        self._deadlines[timer] = now + interval

    def _do(self, step: Do, event: Input, message: Request | Response | None, detail: str) -> list[Action]:
        match step:
            case Do.SEND_REQUEST:
                return self._send_request()
            case Do.SEND_ACK:
                assert isinstance(message, Response)
                return self._send_ack(message)
            case Do.RESPONSE_TO_TU:
                assert isinstance(message, Response)
                return self._response_to_tu(message)
            case Do.SEND_RESPONSE:
                assert isinstance(message, Response)
                return self._send_response(message)
            case Do.RESEND_RESPONSE:
                return self._resend_response()
            case Do.ACK_TO_TU:
                assert isinstance(message, Request)
                return self._ack_to_tu(message)
            case Do.TIMED_OUT:
                reason, timer = _TIMEOUT_REASONS[event]
                return [TimedOut(reason, timer)]
            case Do.TRANSPORT_FAILED:
                return [TransportFailed(detail)]
            case _:  # pragma: no cover - every Do has a case
                assert_never(step)

    # -- the steps each side implements ---------------------------------------------------------------------

    def _send_request(self) -> list[Action]:
        raise AssertionError(f"{type(self).__name__} sends no request")

    def _send_ack(self, response: Response) -> list[Action]:
        raise AssertionError(f"{type(self).__name__} sends no ACK")

    def _response_to_tu(self, response: Response) -> list[Action]:
        raise AssertionError(f"{type(self).__name__} passes no response up")

    def _send_response(self, response: Response) -> list[Action]:
        raise AssertionError(f"{type(self).__name__} sends no response")

    def _resend_response(self) -> list[Action]:
        raise AssertionError(f"{type(self).__name__} sends no response")

    def _ack_to_tu(self, request: Request) -> list[Action]:
        raise AssertionError(f"{type(self).__name__} passes no ACK up")

    def _log_name(self) -> str:
        return type(self).__name__


def check_table(table: Table, states: type[Enum], terminated: Enum, timer_states: TimerStates) -> None:
    """Sanity rules every table keeps; raises ``AssertionError`` at import when one is broken.

    Every row's state and target belong to ``states``; the terminal state has no rows; every timer a row
    arms has a timer input row in each state it runs in, and runs in the state its row moves to.
    """
    for (state, event), row in table.items():
        assert isinstance(state, states) and isinstance(row.target, states), (state, row)
        assert state is not terminated, f"the terminal state has a row for {event}"
        for step in row.steps:
            if isinstance(step, Arm):
                live = timer_states[step.timer]
                assert row.target in live, f"{step.timer} armed on the way to {row.target}, where it does not run"
                for s in live:
                    assert (s, TIMER_INPUTS[step.timer]) in table, f"no row for Timer {step.timer} in {s}"
