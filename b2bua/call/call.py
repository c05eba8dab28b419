"""A bridged call: two legs and the relay between them (the B2BUA of RFC 3261 section 6, "back-to-back
user agent", built the way RFC 7092 describes: each leg a full UA dialog, the call logic in between).

Setup: the caller's INVITE becomes a new INVITE to the same Request-URI with a new Call-ID and tags,
the caller's SDP offer and From/To identities; provisional responses (180/183 with SDP) and the final
response come back to the caller; CANCEL and BYE go across. In-dialog requests (re-INVITE, UPDATE,
INFO, NOTIFY, REFER) are relayed with their bodies and answered with the other side's answer. Each
leg speaks SIP through its own :class:`~b2bua.sip.session.Session`, which only :class:`~.leg.Leg`
touches; no SIP object is shared.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..errors import ParseError, SipError
from ..sip import sdp
from ..sip.identity_enum import IdentityEnum
from ..sip.message import Request, Response
from ..sip.session_host import Outgoing
from ..sip.transaction_server import ServerTransaction
from ..sip.ua import Timer
from .events import LegResponse
from .leg import Invitation, Leg, LegName

if TYPE_CHECKING:
    from ..sip.session import Session

if TYPE_CHECKING:
    from .live import LiveCalls

logger = logging.getLogger("call_api.call")

#: Headers relayed with an in-dialog request or its response besides the body (the rest is per leg).
RELAYED_HEADERS = frozenset(
    {"refer-to", "referred-by", "event", "subscription-state", "info-package", "content-disposition", "replaces",
     "refer-sub", "require", "supported", "allow-events", "recv-info"}
)


def relayed_headers(message: Request | Response) -> list[tuple[str, str]]:
    """The headers of ``message`` that cross to the other leg with its body."""
    return [(name, value) for name, value in message.headers if name.lower() in RELAYED_HEADERS]


#: How a call's setup ended (:attr:`Call.outcome`).
CallOutcome = Literal["answered", "busy", "cancelled", "failed"]


class CallState(IdentityEnum):
    SETUP = "setup"  # the callee's INVITE is out
    EARLY = "early"  # the callee rings
    ANSWERED = "answered"  # both legs are up (or coming up)
    ENDING = "ending"  # one leg ended: the other is being ended
    ENDED = "ended"


#: The call states as a table (what each may move to).
TRANSITIONS: dict[CallState, frozenset[CallState]] = {
    CallState.SETUP: frozenset({CallState.EARLY, CallState.ANSWERED, CallState.ENDING, CallState.ENDED}),
    CallState.EARLY: frozenset({CallState.ANSWERED, CallState.ENDING, CallState.ENDED}),
    CallState.ANSWERED: frozenset({CallState.ENDING, CallState.ENDED}),
    CallState.ENDING: frozenset({CallState.ENDED}),
    CallState.ENDED: frozenset(),
}

#: Who takes the final answer to a request the service sent on a leg: ``(leg, LegResponse, now)``, the
#: response None when it timed out or the leg ended (a flow's :meth:`~.flows.base.Flow.on_leg_event`).
ResponseHandler = Callable[[Leg, LegResponse, float], object]


@dataclass(slots=True)
class _Relay:
    """An in-dialog request relayed from ``source`` to ``target``; its answer goes back on ``transaction``."""

    source: Leg
    target: Leg
    transaction: ServerTransaction


class Call:
    """Two legs, the relays in flight, and the command (flow) running on the call, if any."""

    def __init__(self, ident: str) -> None:
        #: The call's name in logs and in the table: the caller leg's Call-ID.
        self.id = ident
        self.state = CallState.SETUP
        self.legs: dict[LegName, Leg] = {}
        #: The command currently driving this call (hold, transfer ...); others are refused meanwhile.
        self.busy: object | None = None
        #: Requests in flight on a leg, by the handle their answer comes back with: relayed ones, and the
        #: service's own (a command's) with what to do with the answer.
        self._relays: dict[Outgoing, _Relay] = {}
        self._handlers: dict[Outgoing, tuple[Leg, ResponseHandler]] = {}
        #: Called once each when the call ends (the table removes it, a CallEnd reports Ended).
        self.ended_listeners: list[Callable[[Call], None]] = []
        #: Timers that must not outlive the call (cancelled when it ends).
        self.timers: list[Timer] = []
        #: When a party last sent an in-dialog request (b2bua.call.supervision's idle reaper reads it).
        self.last_activity = 0.0
        #: The final status of the call's setup, once known: 200 once answered, else what ended it (the
        #: callee's failure, 408 without answer in time, 487 for a CANCEL or any other end before an answer:
        #: a command, the service's shutdown). Read by :attr:`outcome`.
        self.status: int | None = None
        #: Told of every change that matters to the call's stored record (b2bua.call.record); set by the table.
        self.keeper: Callable[[Call], None] | None = None
        #: Who reports the call's changes to the live-state API (set when it observes the call), if anyone.
        self.observer: LiveCalls | None = None

    def __repr__(self) -> str:
        return f"<Call {self.id} {self.state.value}>"

    # -- structure ----------------------------------------------------------------------------------

    def add_leg(self, name: LegName, session: Session | Invitation, *, answers_to: Leg | None = None) -> Leg:
        leg = Leg(self, name, session, answers_to=answers_to)
        self.legs[name] = leg
        return leg

    def replace_leg(self, old: Leg, session: Session | Invitation) -> Leg:
        """``session`` takes ``old``'s place (RFC 3891): same name, the old leg detached from the call."""
        leg = self.add_leg(old.name, session)
        self.changed()
        for other in self.legs.values():
            if other.answers_to is old:
                other.answers_to = leg
        for key, relay in list(self._relays.items()):
            if old in (relay.source, relay.target):
                del self._relays[key]
        return leg

    def busy_with_reinvite(self, leg: Leg) -> bool:
        """Is an INVITE transaction pending in ``leg``'s dialog (ours or the peer's)?"""
        return leg.invite_pending

    def other(self, leg: Leg) -> Leg | None:
        return self.legs.get("callee" if leg.name == "caller" else "caller")

    @property
    def caller(self) -> Leg:
        return self.legs["caller"]

    @property
    def callee(self) -> Leg | None:
        return self.legs.get("callee")

    @property
    def ended(self) -> bool:
        return self.state is CallState.ENDED

    def settle(self, status: int) -> None:
        """Record the final status of the call's setup; the first one recorded stands."""
        if self.status is None:
            self.status = status

    @property
    def outcome(self) -> tuple[CallOutcome, int]:
        """How the call's setup ended, and the class (2-6) of its final status (counted by the call table).

        ``busy`` is 486 Busy Here and 600 Busy Everywhere (RFC 3261 sections 21.4.24, 21.6.1), ``cancelled``
        is 487 (the caller's CANCEL, or the call ended before an answer), anything else unanswered ``failed``.
        A call ended before any status was known counts as cancelled: nobody answered or refused it."""
        status = self.status if self.status is not None else 487
        if 200 <= status < 300:
            return "answered", 2
        kind: CallOutcome = "busy" if status in (486, 600) else "cancelled" if status == 487 else "failed"
        return kind, max(3, min(status // 100, 6))
    def changed(self) -> None:
        """Something the call's stored record holds changed (state, SDP memory, a leg)."""
        if self.keeper is not None:
            self.keeper(self)

    def move(self, state: CallState) -> None:
        if state is self.state:
            return
        if state not in TRANSITIONS[self.state]:
            raise SipError(f"{self!r} cannot move to {state.value}")
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("call %s %s -> %s", self.id, self.state.value, state.value)
        self.state = state
        if state is CallState.ANSWERED:
            self.settle(200)
        self.changed()
        if state is CallState.ENDED:
            for timer in self.timers:
                timer.cancel()
            self.timers.clear()
            for listener in list(self.ended_listeners):
                listener(self)
            if self.observer is not None:
                self.observer.moved(self, state)  # last: after what ended with the call (a CallEnd's Ended)
            self._release()
        elif self.observer is not None:
            self.observer.moved(self, state)

    def _release(self) -> None:
        """Break the call's reference cycles (session -> leg -> call -> legs -> session) once it is over,
        so its objects go with reference counting when its last transactions end (64*T1 later), not at
        the next full garbage collection."""
        for leg in self.legs.values():
            leg.detach()
            leg.refers.clear()
        self.legs.clear()
        self.ended_listeners.clear()
        self.busy = None

    # -- requests the B2BUA sends on a leg ------------------------------------------------------------

    def send(
        self, leg: Leg, method: str, now: float, handler: ResponseHandler, *, body: bytes = b"",
        content_type: str | None = None, headers: list[tuple[str, str]] | None = None,
    ) -> Outgoing:
        """Send ``method`` in ``leg``'s dialog; ``handler`` gets its final answer, by the handle returned."""
        outgoing = leg.send(method, now, body=body, content_type=content_type, headers=headers or [])
        self._handlers[outgoing] = (leg, handler)
        return outgoing

    def relay_request(self, source: Leg, request: Request, transaction: ServerTransaction, now: float) -> None:
        """Send the other leg the same request (body and relayed headers); its answer goes back to ``source``."""
        target = self.other(source)
        ctype = request.headers.get("content-type")
        if request.body and ctype and ctype.lower().startswith("application/sdp"):
            try:
                sdp.parse(request.body)
            except ParseError as error:
                # A final answer and the call as it was (issue 17): relayed, it would reach a phone that
                # may never answer it, or fail the o= rewrite half-way.
                logger.info("call %s: refused a %s with unreadable SDP: %s", self.id, request.method, error.reason)
                source.reply(transaction, 400, now, reason="Bad SDP")
                return
        source.remember_received(request.body, ctype)
        if target is None or target.dialog_id is None or target.ended:
            source.reply(transaction, 481 if target is None else 480, now)
            return
        body = request.body
        if body and ctype and ctype.lower().startswith("application/sdp"):
            body = target.outgoing_sdp(body)
        headers = relayed_headers(request)
        try:
            ours = target.send(request.method, now, body=body, content_type=ctype, headers=headers)
        except SipError as error:
            logger.info("call %s: cannot relay %s to the %s: %s", self.id, request.method, target.name, error)
            source.reply(transaction, 491 if request.method == "INVITE" else 500, now)
            return
        self._relays[ours] = _Relay(source, target, transaction)

    def on_response(self, leg: Leg, outgoing: Outgoing, response: Response | None, now: float) -> bool:
        """A final (or provisional) response to a request we sent on ``leg``; False when not ours."""
        key = outgoing
        relay = self._relays.get(key)
        if relay is not None:
            if response is not None and response.status < 200:
                return True
            del self._relays[key]
            self._answer_relay(relay, leg, response, now)
            return True
        entry = self._handlers.get(key)
        if entry is not None:
            if response is not None and response.status < 200:
                return True
            del self._handlers[key]
            entry[1](leg, LegResponse(outgoing, response), now)
            return True
        return False

    def _answer_relay(self, relay: _Relay, answered_by: Leg, response: Response | None, now: float) -> None:
        source = relay.source
        if source.ended:
            return
        if response is None:
            source.reply(relay.transaction, 408, now)
            return
        ctype = response.headers.get("content-type")
        answered_by.remember_received(response.body, ctype)
        body = response.body
        if body and ctype and ctype.lower().startswith("application/sdp"):
            body = source.outgoing_sdp(body)
        headers = relayed_headers(response)
        status = response.status
        if status in (401, 407):
            status = 403  # the challenge was for us, not for the other party
        source.reply(relay.transaction, status, now, reason=response.reason, body=body,
                             content_type=ctype, headers=headers)

    def drop_pending(self, leg: Leg, now: float) -> None:
        """``leg`` ended: what it had relayed is moot; what was relayed to it gets 481 at its source, and
        the handlers of requests sent on it get ``None``."""
        for key, relay in list(self._relays.items()):
            if relay.source is leg:
                del self._relays[key]
            elif relay.target is leg:
                del self._relays[key]
                if not relay.source.ended and not relay.transaction.terminated:
                    relay.source.reply(relay.transaction, 481, now)
        for key, (target, handler) in list(self._handlers.items()):
            if target is leg:
                del self._handlers[key]
                handler(leg, LegResponse(key, None), now)

    # -- ending -------------------------------------------------------------------------------------

    def end(self, now: float, *, status: int = 487) -> None:
        """End every leg still up (BYE, CANCEL, or ``status`` to an unanswered INVITE)."""
        if self.state in (CallState.ENDING, CallState.ENDED):
            self._maybe_ended()
            return
        self.settle(status)
        if self.observer is not None:
            self.observer.cause(self, "command")
        self.move(CallState.ENDING)
        for leg in list(self.legs.values()):
            if not leg.ended:
                leg.hang_up(now, status=status)
        self._maybe_ended()

    def leg_ended(self, leg: Leg, now: float, *, status: int = 487) -> None:
        """``leg`` is over; end the other one too, and the call when both are."""
        self.settle(status)
        self.drop_pending(leg, now)
        other = self.other(leg)
        if self.state is not CallState.ENDED and self.state is not CallState.ENDING:
            self.move(CallState.ENDING)
        if other is not None and not other.ended:
            other.hang_up(now, status=status)
        self._maybe_ended()

    def _maybe_ended(self) -> None:
        if all(leg.ended for leg in self.legs.values()) and self.state is not CallState.ENDED:
            self._relays.clear()
            self._handlers.clear()
            self.move(CallState.ENDED)
