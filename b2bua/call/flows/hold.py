"""CallHold and CallUnHold: re-INVITE a leg with the other party's SDP turned sendonly, or back to
sendrecv (RFC 3264 section 8.4; RFC 5359 section 2.1 for the call flow; RFC 6337 section 5.3).

Holding offers ``sendonly`` for each stream, ``inactive`` where the other party's stream was already
``recvonly`` or ``inactive``, with the ``o=`` version one above what the leg last saw; the answer must
be ``recvonly`` or ``inactive`` (RFC 3264 section 6.1), else the hold failed (488) and the leg is
left as its answer says. A leg already in the wanted state gets its event again without a re-INVITE.
A 491 is retried by the session after the section 14.1 delay; any other failure ends the command.
"""

from __future__ import annotations

from ...errors import ParseError, SessionError
from ...sip import sdp
from ...sip.message import Response
from ...sip.session_host import Outgoing
from ..call import Call
from ..events import TIMEOUT, WRONG_ANSWER, LegEvent, LegResponse
from ..leg import Leg
from .base import Flow, Sink, status_line


class HoldFlow(Flow):
    """Hold (``hold=True``) or resume the given legs, one after the other."""

    def __init__(self, call: Call, sink: Sink, legs: list[Leg], *, hold: bool, cmd_id: str = "") -> None:
        self.name = "CallHold" if hold else "CallUnHold"
        super().__init__(call, sink, cmd_id)
        self.hold = hold
        self.pending = list(legs)
        self.data = "CALL_HOLD" if hold else "CALL_UNHOLD"
        #: The re-INVITE in flight and the offer it carries.
        self._sent: tuple[Outgoing, bytes] | None = None

    def start(self, now: float) -> None:
        self._next(now)

    def _next(self, now: float) -> None:
        while self.pending and not self.done:
            leg = self.pending[0]
            if leg.held == self.hold:
                self.pending.pop(0)
                self.event(self.data, callid=leg.call_id, leg=leg.name)
                continue
            other = self.call.other(leg)
            base = other.received_sdp if other is not None else None
            if base is None or leg.ended:
                self.fail(WRONG_ANSWER, f"no SDP of the other party to offer the {leg.name}")
                return
            try:
                body = sdp.hold_offer(base) if self.hold else sdp.resume_offer(base)
                offer = leg.own_offer(body)
            except ParseError as error:
                self.fail(WRONG_ANSWER, f"the other party's SDP cannot be edited: {error.reason}")
                return
            try:
                outgoing = self.call.send(leg, "INVITE", now, self.on_leg_event, body=offer,
                                          content_type="application/sdp")
                self._sent = (outgoing, offer)
            except SessionError as error:
                self.fail(491, f"cannot re-INVITE the {leg.name}: {error}")
            return
        self.finish()

    def on_leg_event(self, leg: Leg, event: LegEvent, now: float) -> bool:
        sent = self._sent
        if isinstance(event, LegResponse) and sent is not None and event.outgoing is sent[0]:
            self._sent = None
            self._answered(leg, sent[1], event.response, now)
            return True
        return False

    def _answered(self, leg: Leg, offer: bytes, response: Response | None, now: float) -> None:
        if self.done:
            return
        if response is None:
            if leg.ended or self.call.ended:
                self.fail(487, f"the call ended before the {leg.name} answered the re-INVITE")
            else:
                self.fail(TIMEOUT, f"the {leg.name} did not answer the re-INVITE")
            return
        if response.status >= 300:
            self.fail(response.status, f"the {leg.name} refused the re-INVITE: {status_line(response)}")
            return
        leg.remember_received(response.body, response.headers.get("content-type"), by_command=True)
        if self.hold:
            try:
                wrong = sdp.answer_mismatches(offer, response.body)
            except ParseError as error:
                wrong = [f"unreadable SDP answer: {error.reason}"]
            if wrong:
                self.fail(WRONG_ANSWER, f"the {leg.name} did not accept the hold: {'; '.join(wrong)}")
                return
        leg.held = self.hold
        if self.call.observer is not None:
            self.call.observer.held(leg)
        self.pending.pop(0)
        self.event(self.data, callid=leg.call_id, leg=leg.name, status=status_line(response))
        self._next(now)
