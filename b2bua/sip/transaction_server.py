"""The server transactions: INVITE (RFC 3261 section 17.2.1, Figure 7, with RFC 6026 section 7.1 and
Figure 5's Accepted state) and non-INVITE (section 17.2.2, Figure 8).

Create one for each request that matches no transaction (the layer passes the request to the TU), give
it the retransmissions and ACKs whose :func:`~b2bua.sip.transaction_matching.server_key` equals its
:attr:`~ServerTransaction.key`, and the TU's responses through :meth:`~ServerTransaction.send_response`.
The 100 (Trying) of section 17.2.1 is the TU's to send, like any other response.
"""

from __future__ import annotations

from typing import ClassVar, Final

from ..errors import TransactionError
from .address import Destination
from .identity_enum import IdentityEnum
from .message import Request, Response
from .timers import TimerSettings
from .transaction_events import AckToTU, Action, Transmit
from .transaction_machine import (
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
from .transaction_matching import ServerKey, cancel_target_key, server_key, to_tag_matches


class InviteServerState(IdentityEnum):
    """The states of RFC 3261 Figure 7, with Accepted from RFC 6026 Figure 5."""

    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class NonInviteServerState(IdentityEnum):
    """The states of RFC 3261 Figure 8."""

    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


_IS = InviteServerState
_NS = NonInviteServerState

#: The INVITE server transaction, RFC 3261 section 17.2.1 (Figure 7) as RFC 6026 sections 7.1 and 8.7
#: amend it: a 2xx leads to Accepted, where INVITE retransmissions are absorbed (the TU retransmits its
#: 2xx by calling send_response again), ACKs go up to the TU, and Timer L ends the transaction. A 300-699
#: is retransmitted on Timer G until an ACK arrives or Timer H gives up; Confirmed absorbs further ACKs
#: until Timer I. A transport error in Accepted is reported but the transaction stays, to keep absorbing.
INVITE_SERVER_TABLE: Final[Table] = {
    (_IS.PROCEEDING, Input.REQUEST): go(_IS.PROCEEDING, Do.RESEND_RESPONSE),
    (_IS.PROCEEDING, Input.TU_1XX): go(_IS.PROCEEDING, Do.SEND_RESPONSE),
    (_IS.PROCEEDING, Input.TU_2XX): go(_IS.ACCEPTED, Do.SEND_RESPONSE, Arm("L")),
    (_IS.PROCEEDING, Input.TU_3XX_6XX): go(_IS.COMPLETED, Do.SEND_RESPONSE, Arm("G"), Arm("H")),
    (_IS.PROCEEDING, Input.TRANSPORT_ERROR): go(_IS.TERMINATED, Do.TRANSPORT_FAILED),
    (_IS.COMPLETED, Input.REQUEST): go(_IS.COMPLETED, Do.RESEND_RESPONSE),
    (_IS.COMPLETED, Input.TIMER_G): go(_IS.COMPLETED, Do.RESEND_RESPONSE, Arm("G", Interval.DOUBLED_UP_TO_T2)),
    (_IS.COMPLETED, Input.TIMER_H): go(_IS.TERMINATED, Do.TIMED_OUT),
    (_IS.COMPLETED, Input.ACK): go(_IS.CONFIRMED, Arm("I")),
    (_IS.COMPLETED, Input.TRANSPORT_ERROR): go(_IS.TERMINATED, Do.TRANSPORT_FAILED),
    (_IS.CONFIRMED, Input.ACK): go(_IS.CONFIRMED),
    (_IS.CONFIRMED, Input.TIMER_I): go(_IS.TERMINATED),
    (_IS.ACCEPTED, Input.REQUEST): go(_IS.ACCEPTED),
    (_IS.ACCEPTED, Input.ACK): go(_IS.ACCEPTED, Do.ACK_TO_TU),
    (_IS.ACCEPTED, Input.TU_2XX): go(_IS.ACCEPTED, Do.SEND_RESPONSE),
    (_IS.ACCEPTED, Input.TRANSPORT_ERROR): go(_IS.ACCEPTED, Do.TRANSPORT_FAILED),
    (_IS.ACCEPTED, Input.TIMER_L): go(_IS.TERMINATED),
}
INVITE_SERVER_TIMER_STATES: Final[TimerStates] = {
    "G": frozenset({_IS.COMPLETED}),
    "H": frozenset({_IS.COMPLETED}),
    "I": frozenset({_IS.CONFIRMED}),
    "L": frozenset({_IS.ACCEPTED}),
}

#: The non-INVITE server transaction, RFC 3261 section 17.2.2 (Figure 8): retransmissions of the request
#: are discarded in Trying and answered with the last response in Proceeding and Completed; Timer J
#: absorbs them after the final response.
NON_INVITE_SERVER_TABLE: Final[Table] = {
    (_NS.TRYING, Input.REQUEST): go(_NS.TRYING),
    (_NS.TRYING, Input.TU_1XX): go(_NS.PROCEEDING, Do.SEND_RESPONSE),
    (_NS.TRYING, Input.TU_2XX): go(_NS.COMPLETED, Do.SEND_RESPONSE, Arm("J")),
    (_NS.TRYING, Input.TU_3XX_6XX): go(_NS.COMPLETED, Do.SEND_RESPONSE, Arm("J")),
    (_NS.PROCEEDING, Input.REQUEST): go(_NS.PROCEEDING, Do.RESEND_RESPONSE),
    (_NS.PROCEEDING, Input.TU_1XX): go(_NS.PROCEEDING, Do.SEND_RESPONSE),
    (_NS.PROCEEDING, Input.TU_2XX): go(_NS.COMPLETED, Do.SEND_RESPONSE, Arm("J")),
    (_NS.PROCEEDING, Input.TU_3XX_6XX): go(_NS.COMPLETED, Do.SEND_RESPONSE, Arm("J")),
    (_NS.PROCEEDING, Input.TRANSPORT_ERROR): go(_NS.TERMINATED, Do.TRANSPORT_FAILED),
    (_NS.COMPLETED, Input.REQUEST): go(_NS.COMPLETED, Do.RESEND_RESPONSE),
    (_NS.COMPLETED, Input.TIMER_J): go(_NS.TERMINATED),
    (_NS.COMPLETED, Input.TRANSPORT_ERROR): go(_NS.TERMINATED, Do.TRANSPORT_FAILED),
}
NON_INVITE_SERVER_TIMER_STATES: Final[TimerStates] = {
    "J": frozenset({_NS.COMPLETED}),
}

check_table(INVITE_SERVER_TABLE, InviteServerState, _IS.TERMINATED, INVITE_SERVER_TIMER_STATES)
check_table(NON_INVITE_SERVER_TABLE, NonInviteServerState, _NS.TERMINATED, NON_INVITE_SERVER_TIMER_STATES)


def tu_response_input(status: int) -> Input:
    """The input a response of this status from the TU is."""
    if not 100 <= status <= 699:
        raise TransactionError(f"no response has status {status}")
    if status < 200:
        return Input.TU_1XX
    if status < 300:
        return Input.TU_2XX
    return Input.TU_3XX_6XX


class ServerTransaction(TransactionMachine):
    """What both server transactions share: the request, where responses go, the key, the last response."""

    __slots__ = ("_key", "_last_response", "_request", "_source")

    #: The method this kind of transaction is for; ``None`` means any other than INVITE and ACK.
    METHOD: ClassVar[str | None]

    def __init__(self, request: Request, source: Destination, timers: TimerSettings, now: float) -> None:
        method = self.METHOD
        if (request.method != method) if method is not None else request.method in ("INVITE", "ACK"):
            raise TransactionError(f"{type(self).__name__} cannot serve a {request.method}")
        super().__init__(timers, source.reliable)
        self._request = request
        self._source = source
        self._key = server_key(request)
        self._last_response: Response | None = None

    @property
    def key(self) -> ServerKey:
        """The key retransmissions of the request (and ACKs, for INVITE) have (RFC 3261 section 17.2.3)."""
        return self._key

    @property
    def request(self) -> Request:
        return self._request

    @property
    def source(self) -> Destination:
        """Where responses go (RFC 3261 section 18.2.2, computed by the layer)."""
        return self._source

    @property
    def last_response(self) -> Response | None:
        """The response most recently sent; retransmissions of the request get it again."""
        return self._last_response

    def matches(self, request: Request) -> bool:
        """Does ``request`` belong here: a retransmission, an ACK, or (for an INVITE transaction) a CANCEL
        that refers to it (section 9.2)? The key, plus the RFC 2543 To-tag rules."""
        if request.method == "CANCEL" and self.METHOD == "INVITE":
            key = cancel_target_key(request)
        else:
            key = server_key(request)
        return key == self._key and to_tag_matches(request, self._request, self._last_response)

    def receive_request(self, request: Request, now: float) -> list[Action]:
        """A retransmission of the request (or, for INVITE, an ACK) arrived."""
        if request.method == "ACK" and self.METHOD == "INVITE":
            event = Input.ACK
        elif request.method == self._request.method:
            event = Input.REQUEST
        else:
            raise TransactionError(f"{type(self).__name__} for {self._request.method} got a {request.method}")
        return self._input(event, now, request)

    def send_response(self, response: Response, now: float) -> list[Action]:
        """The TU's response: transmit it and move on as the table says; a response the state does not
        take (a second final response, anything after Terminated) raises :class:`TransactionError`."""
        return self._input(tu_response_input(response.status), now, response)

    def transport_error(self, now: float, reason: str = "") -> list[Action]:
        """The transport could not send a response (RFC 3261 section 17.2.4)."""
        return self._input(Input.TRANSPORT_ERROR, now, None, reason)

    def _send_response(self, response: Response) -> list[Action]:
        self._last_response = response
        return [Transmit(response, self._source)]

    def _resend_response(self) -> list[Action]:
        last = self._last_response
        return [] if last is None else [Transmit(last, self._source)]

    def _log_name(self) -> str:
        return f"{type(self).__name__} {self._request.branch} call-id={self._request.call_id}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._request.method} {self._request.branch} {self._state.value}>"


class InviteServerTransaction(ServerTransaction):
    """An INVITE server transaction (RFC 3261 section 17.2.1; RFC 6026 sections 7.1 and 8.7)."""

    __slots__ = ()

    TABLE = INVITE_SERVER_TABLE
    TIMER_STATES = INVITE_SERVER_TIMER_STATES
    INITIAL = InviteServerState.PROCEEDING
    TERMINATED = InviteServerState.TERMINATED
    METHOD = "INVITE"

    @property
    def state(self) -> InviteServerState:
        state = self._state
        assert isinstance(state, InviteServerState)
        return state

    def _ack_to_tu(self, request: Request) -> list[Action]:
        return [AckToTU(request)]


class NonInviteServerTransaction(ServerTransaction):
    """A non-INVITE server transaction (RFC 3261 section 17.2.2); CANCEL gets one of its own."""

    __slots__ = ()

    TABLE = NON_INVITE_SERVER_TABLE
    TIMER_STATES = NON_INVITE_SERVER_TIMER_STATES
    INITIAL = NonInviteServerState.TRYING
    TERMINATED = NonInviteServerState.TERMINATED
    METHOD = None

    @property
    def state(self) -> NonInviteServerState:
        state = self._state
        assert isinstance(state, NonInviteServerState)
        return state
