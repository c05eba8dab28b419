"""The client transactions: INVITE (RFC 3261 section 17.1.1, Figure 5, with RFC 6026 section 7.2 and
Figure 3's Accepted state) and non-INVITE (section 17.1.2, Figure 6).

Create one per request sent, call :meth:`ClientTransaction.start`, feed it the responses whose
:func:`~b2bua.sip.transaction_matching.client_key` equals its :attr:`~ClientTransaction.key`, and call
:meth:`~ClientTransaction.handle_timer` at :meth:`~ClientTransaction.get_timer`.
"""

from __future__ import annotations

from typing import ClassVar, Final

from ..errors import TransactionError
from .address import Destination
from .grammar import split_commas
from .headers import MAGIC_COOKIE
from .identity_enum import IdentityEnum
from .message import Headers, Request, Response
from .timers import TimerSettings
from .transaction_events import Action, ResponseToTU, Transmit
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
from .transaction_matching import ClientKey, client_key


class InviteClientState(IdentityEnum):
    """The states of RFC 3261 Figure 5, with Accepted from RFC 6026 Figure 3."""

    CALLING = "Calling"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class NonInviteClientState(IdentityEnum):
    """The states of RFC 3261 Figure 6."""

    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


_IC = InviteClientState
_NC = NonInviteClientState

#: The INVITE client transaction, RFC 3261 section 17.1.1.2 (Figure 5) as RFC 6026 section 7.2 and
#: Figure 3 amend it: a 2xx leads to Accepted, which passes every further 2xx (retransmissions and other
#: forks) to the TU until Timer M; the TU, not the transaction, sends the ACK for a 2xx. Timer B runs in
#: Calling only. The transaction itself acknowledges every 300-699 (section 17.1.1.3).
INVITE_CLIENT_TABLE: Final[Table] = {
    (_IC.CALLING, Input.START): go(_IC.CALLING, Do.SEND_REQUEST, Arm("A"), Arm("B")),
    (_IC.CALLING, Input.TIMER_A): go(_IC.CALLING, Do.SEND_REQUEST, Arm("A", Interval.DOUBLED)),
    (_IC.CALLING, Input.TIMER_B): go(_IC.TERMINATED, Do.TIMED_OUT),
    (_IC.CALLING, Input.TRANSPORT_ERROR): go(_IC.TERMINATED, Do.TRANSPORT_FAILED),
    (_IC.CALLING, Input.RESPONSE_1XX): go(_IC.PROCEEDING, Do.RESPONSE_TO_TU),
    (_IC.CALLING, Input.RESPONSE_2XX): go(_IC.ACCEPTED, Do.RESPONSE_TO_TU, Arm("M")),
    (_IC.CALLING, Input.RESPONSE_3XX_6XX): go(_IC.COMPLETED, Do.SEND_ACK, Do.RESPONSE_TO_TU, Arm("D")),
    (_IC.PROCEEDING, Input.RESPONSE_1XX): go(_IC.PROCEEDING, Do.RESPONSE_TO_TU),
    (_IC.PROCEEDING, Input.RESPONSE_2XX): go(_IC.ACCEPTED, Do.RESPONSE_TO_TU, Arm("M")),
    (_IC.PROCEEDING, Input.RESPONSE_3XX_6XX): go(_IC.COMPLETED, Do.SEND_ACK, Do.RESPONSE_TO_TU, Arm("D")),
    (_IC.COMPLETED, Input.RESPONSE_3XX_6XX): go(_IC.COMPLETED, Do.SEND_ACK),
    (_IC.COMPLETED, Input.TIMER_D): go(_IC.TERMINATED),
    (_IC.COMPLETED, Input.TRANSPORT_ERROR): go(_IC.TERMINATED, Do.TRANSPORT_FAILED),
    (_IC.ACCEPTED, Input.RESPONSE_2XX): go(_IC.ACCEPTED, Do.RESPONSE_TO_TU),
    (_IC.ACCEPTED, Input.TIMER_M): go(_IC.TERMINATED),
}
INVITE_CLIENT_TIMER_STATES: Final[TimerStates] = {
    "A": frozenset({_IC.CALLING}),
    "B": frozenset({_IC.CALLING}),
    "D": frozenset({_IC.COMPLETED}),
    "M": frozenset({_IC.ACCEPTED}),
}

#: The non-INVITE client transaction, RFC 3261 section 17.1.2.2 (Figure 6): Timer E doubles up to T2
#: in Trying and repeats every T2 in Proceeding; Timer F bounds both; Timer K absorbs response
#: retransmissions in Completed.
NON_INVITE_CLIENT_TABLE: Final[Table] = {
    (_NC.TRYING, Input.START): go(_NC.TRYING, Do.SEND_REQUEST, Arm("E"), Arm("F")),
    (_NC.TRYING, Input.TIMER_E): go(_NC.TRYING, Do.SEND_REQUEST, Arm("E", Interval.DOUBLED_UP_TO_T2)),
    (_NC.TRYING, Input.TIMER_F): go(_NC.TERMINATED, Do.TIMED_OUT),
    (_NC.TRYING, Input.TRANSPORT_ERROR): go(_NC.TERMINATED, Do.TRANSPORT_FAILED),
    (_NC.TRYING, Input.RESPONSE_1XX): go(_NC.PROCEEDING, Do.RESPONSE_TO_TU),
    (_NC.TRYING, Input.RESPONSE_2XX): go(_NC.COMPLETED, Do.RESPONSE_TO_TU, Arm("K")),
    (_NC.TRYING, Input.RESPONSE_3XX_6XX): go(_NC.COMPLETED, Do.RESPONSE_TO_TU, Arm("K")),
    (_NC.PROCEEDING, Input.TIMER_E): go(_NC.PROCEEDING, Do.SEND_REQUEST, Arm("E", Interval.T2)),
    (_NC.PROCEEDING, Input.TIMER_F): go(_NC.TERMINATED, Do.TIMED_OUT),
    (_NC.PROCEEDING, Input.TRANSPORT_ERROR): go(_NC.TERMINATED, Do.TRANSPORT_FAILED),
    (_NC.PROCEEDING, Input.RESPONSE_1XX): go(_NC.PROCEEDING, Do.RESPONSE_TO_TU),
    (_NC.PROCEEDING, Input.RESPONSE_2XX): go(_NC.COMPLETED, Do.RESPONSE_TO_TU, Arm("K")),
    (_NC.PROCEEDING, Input.RESPONSE_3XX_6XX): go(_NC.COMPLETED, Do.RESPONSE_TO_TU, Arm("K")),
    (_NC.COMPLETED, Input.TIMER_K): go(_NC.TERMINATED),
}
NON_INVITE_CLIENT_TIMER_STATES: Final[TimerStates] = {
    "E": frozenset({_NC.TRYING, _NC.PROCEEDING}),
    "F": frozenset({_NC.TRYING, _NC.PROCEEDING}),
    "K": frozenset({_NC.COMPLETED}),
}

check_table(INVITE_CLIENT_TABLE, InviteClientState, _IC.TERMINATED, INVITE_CLIENT_TIMER_STATES)
check_table(NON_INVITE_CLIENT_TABLE, NonInviteClientState, _NC.TERMINATED, NON_INVITE_CLIENT_TIMER_STATES)


def response_input(status: int) -> Input:
    """The input a received response of this status is."""
    if status < 200:
        return Input.RESPONSE_1XX
    if status < 300:
        return Input.RESPONSE_2XX
    return Input.RESPONSE_3XX_6XX


def build_ack(invite: Request, response: Response) -> Request:
    """The ACK for a 300-699 response to ``invite`` (RFC 3261 section 17.1.1.3).

    Request-URI, Call-ID and From as in the INVITE; one Via, the INVITE's top one; CSeq with the INVITE's
    number and method ACK; To from the response (with its tag); the INVITE's Route headers; no body.
    """
    h = invite.headers
    via_line, from_, call_id, to = h.get("via"), h.get("from"), h.get("call-id"), response.headers.get("to")
    cseq = invite.cseq
    if via_line is None or from_ is None or call_id is None or to is None or cseq is None:
        raise TransactionError("cannot build an ACK: Via, From, Call-ID, CSeq or To is missing")
    ack = Headers()
    ack.add("Via", split_commas(via_line)[0] if "," in via_line else via_line)
    ack.add("Max-Forwards", "70")
    for route in h.get_all("route"):
        ack.add("Route", route)
    ack.add("From", from_)
    ack.add("To", to)
    ack.add("Call-ID", call_id)
    ack.add("CSeq", f"{cseq.number} ACK")
    ack.add("Content-Length", "0")
    return Request("ACK", invite.uri, ack)


class ClientTransaction(TransactionMachine):
    """What both client transactions share: the request, where it goes, the key, start and responses."""

    __slots__ = ("_created", "_destination", "_key", "_request", "_started")

    #: The method(s) this kind of transaction is for; ``None`` means any other than INVITE and ACK.
    METHOD: ClassVar[str | None]

    def __init__(self, request: Request, destination: Destination, timers: TimerSettings, now: float) -> None:
        method = self.METHOD
        if (request.method != method) if method is not None else request.method in ("INVITE", "ACK"):
            raise TransactionError(f"{type(self).__name__} cannot carry a {request.method}")
        branch = request.branch
        if branch is None or not branch.startswith(MAGIC_COOKIE):
            raise TransactionError(f"a client transaction needs a {MAGIC_COOKIE} branch, got {branch!r}")
        cseq = request.cseq
        if cseq is None or cseq.method != request.method:
            raise TransactionError("the request's CSeq is missing or names another method")
        super().__init__(timers, destination.reliable)
        self._request = request
        self._destination = destination
        self._key = ClientKey(branch, request.method)
        self._started = False
        self._created = now

    @property
    def key(self) -> ClientKey:
        """What responses to this transaction have: (top Via branch, CSeq method)."""
        return self._key

    @property
    def request(self) -> Request:
        return self._request

    @property
    def destination(self) -> Destination:
        return self._destination

    def start(self, now: float | None = None) -> list[Action]:
        """Send the request and start the timers (A and B, or E and F; no A or E on a reliable transport)."""
        if self._started:
            raise TransactionError(f"{type(self).__name__} already started")
        self._started = True
        return self._input(Input.START, self._created if now is None else now, None)

    def receive_response(self, response: Response, now: float) -> list[Action]:
        """A response whose key matched this transaction's arrived."""
        if not self._started:
            raise TransactionError(f"{type(self).__name__} got a response before start()")
        if client_key(response) != self._key:
            raise TransactionError(f"response {client_key(response)} does not belong to {self._key}")
        return self._input(response_input(response.status), now, response)

    def transport_error(self, now: float, reason: str = "") -> list[Action]:
        """The transport could not send the request or ACK (RFC 3261 section 17.1.4)."""
        return self._input(Input.TRANSPORT_ERROR, now, None, reason)

    def _send_request(self) -> list[Action]:
        return [Transmit(self._request, self._destination)]

    def _response_to_tu(self, response: Response) -> list[Action]:
        return [ResponseToTU(response)]

    def _log_name(self) -> str:
        return f"{type(self).__name__} {self._key.branch} call-id={self._request.call_id}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._key.method} {self._key.branch} {self._state.value}>"


class InviteClientTransaction(ClientTransaction):
    """An INVITE client transaction (RFC 3261 section 17.1.1; RFC 6026 section 7.2)."""

    __slots__ = ("_ack",)

    TABLE = INVITE_CLIENT_TABLE
    TIMER_STATES = INVITE_CLIENT_TIMER_STATES
    INITIAL = InviteClientState.CALLING
    TERMINATED = InviteClientState.TERMINATED
    METHOD = "INVITE"

    def __init__(self, request: Request, destination: Destination, timers: TimerSettings, now: float) -> None:
        super().__init__(request, destination, timers, now)
        self._ack: Request | None = None

    @property
    def state(self) -> InviteClientState:
        state = self._state
        assert isinstance(state, InviteClientState)
        return state

    @property
    def ack(self) -> Request | None:
        """The ACK this transaction last sent for a 300-699, if any."""
        return self._ack

    def _send_ack(self, response: Response) -> list[Action]:
        ack = self._ack
        if ack is None or ack.headers.get("to") != response.headers.get("to"):
            ack = self._ack = build_ack(self._request, response)
        return [Transmit(ack, self._destination)]


class NonInviteClientTransaction(ClientTransaction):
    """A non-INVITE client transaction (RFC 3261 section 17.1.2); not for ACK, which has none."""

    __slots__ = ()

    TABLE = NON_INVITE_CLIENT_TABLE
    TIMER_STATES = NON_INVITE_CLIENT_TIMER_STATES
    INITIAL = NonInviteClientState.TRYING
    TERMINATED = NonInviteClientState.TERMINATED
    METHOD = None

    @property
    def state(self) -> NonInviteClientState:
        state = self._state
        assert isinstance(state, NonInviteClientState)
        return state
