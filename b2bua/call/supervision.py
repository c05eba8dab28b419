"""No call outlives its phones: RFC 4028 session timers on each leg, a maximum call duration, and the idle-dialog
reaper for legs without session timers (issue 17).

Each leg is its own dialog with its own :class:`~b2bua.sip.session_timer.SessionTimer` (the service is the UAS
of the caller's INVITE and the UAC of the callee's), so the two legs' intervals and refreshers are independent.
The timers ride on the UA core's deadlines (``UserAgent.schedule``): one scheduled callback per leg, re-armed
lazily when it fires early (a refresh moved the deadline since), so a refresh costs an assignment, not a heap
push. Nothing here runs per message when the features are off (the B2BUA checks one attribute).

A refresh from a party (a re-INVITE or UPDATE whose SDP, if any, is the one that party already sent: same
``o=`` origin and version, RFC 3264 section 8) is answered here, by the service, with the SDP the service
already sent that party: relayed, it would reset the other leg's timer, carry ``Require: timer`` to a party
that may not support it (420), and cost the other phone a transaction for nothing. A re-INVITE that changes
the media is relayed as before, and its 2xx refreshes the leg's timer as any successful re-INVITE or UPDATE
does (RFC 4028 section 10). Kamailio passes either through unchanged (its dialog module only watches).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ..errors import ParseError, SipError
from ..sip import sdp
from ..sip.message import Request, Response
from ..sip.session_timer import (
    RFC_MIN_SE,
    Accept,
    Negotiated,
    Reject422,
    SessionTimer,
    SessionTimerSettings,
    refresh_headers,
    uac_headers,
    uac_on_2xx,
    uas_decide,
)
from ..sip.transaction_server import ServerTransaction
from ..sip.ua import Timer
from .call import Call, CallState
from .events import LegResponse
from .leg import Leg
from .live import LiveCalls

logger = logging.getLogger("call_api.call.supervision")

#: RFC 4028's defaults as the service uses them: 1800 s asked for and granted, Min-SE 90 (section 4).
DEFAULT_SESSION_TIMERS: Final = SessionTimerSettings()

#: Seconds before trying a refresh again when an INVITE transaction is pending in the leg's dialog (RFC 3261
#: section 14.1: one at a time) or a command is running on the call.
REFRESH_RETRY = 2.0
#: Methods that refresh a session (RFC 4028 section 10).
REFRESH_METHODS = frozenset({"INVITE", "UPDATE"})


@dataclass(frozen=True, slots=True)
class SupervisionSettings:
    """Session timers, maximum duration and the idle reaper (``[calls]`` settings, docs/configuration.md)."""

    #: RFC 4028 session timers on each leg; None turns them off (no Session-Expires sent or granted).
    session_timers: SessionTimerSettings | None = DEFAULT_SESSION_TIMERS
    #: Seconds from answer after which the service ends the call on both legs; 0: no limit.
    max_duration: float = 0.0
    #: Seconds without any in-dialog request after which the legs without a session timer are probed with an
    #: in-dialog OPTIONS; 0: no probing.
    idle_probe: float = 0.0

    @property
    def active(self) -> bool:
        """Is anything to do for an answered call?"""
        return self.session_timers is not None or self.max_duration > 0 or self.idle_probe > 0


Schedule = Callable[[float, Callable[[float], None]], Timer]


class Supervisor:
    """Arms and fires the per-call deadlines; the B2BUA calls :meth:`incoming`, :meth:`answered` and the hooks."""

    def __init__(self, settings: SupervisionSettings, schedule: Schedule, live: LiveCalls) -> None:
        self.settings = settings
        self._schedule = schedule
        self._live = live

    def _end(self, call: Call, why: str, now: float) -> None:
        """End ``call`` on both legs (a session timer ran out, the maximum duration, an idle probe unanswered):
        BYE each leg still up, the cause ``timeout`` in the live events."""
        if call.state in (CallState.ENDING, CallState.ENDED):
            return
        logger.info("call %s: ending it: %s", call.id, why)
        self._live.cause(call, "timeout")
        call.end(now)

    # -- setting up -----------------------------------------------------------------------------------------------

    def incoming(self, request: Request) -> Reject422 | Accept | None:
        """How to answer a new INVITE's session-timer request (RFC 4028 section 9), None with timers off."""
        timers = self.settings.session_timers
        return uas_decide(request, timers) if timers is not None else None

    def invite_headers(self) -> list[tuple[str, str]]:
        """The session-timer fields of the INVITE the service sends the callee (section 7.1)."""
        timers = self.settings.session_timers
        if timers is None:
            return []
        return uac_headers(timers)

    def _min_se(self) -> int:
        """The Min-SE of the refreshes the service sends (RFC 4028's floor when timers are off for new calls)."""
        timers = self.settings.session_timers
        return timers.min_se if timers is not None else RFC_MIN_SE

    def answered(self, call: Call, caller: Leg, callee: Leg, response: Response | None, now: float) -> None:
        """The callee answered and the caller got the 2xx: start each leg's timer, the call's duration limit and
        its idle reaper."""
        if self.settings.session_timers is not None:
            answer = caller.timer_answer
            caller.timer_answer = None
            if answer is not None and answer.negotiated is not None:
                caller.session_timer = SessionTimer(answer.negotiated, now)
            negotiated = uac_on_2xx(response) if response is not None else None
            if negotiated is not None:
                callee.session_timer = SessionTimer(negotiated, now)
        self.start(call, now)

    def joined(self, leg: Leg, answer: Accept | None, now: float) -> None:
        """``leg`` joined an answered call (an INVITE with Replaces, RFC 3891) and got its 2xx with ``answer``:
        its own session timer from now, as :meth:`answered` starts a caller's (the call's other timers run on)."""
        if answer is None or answer.negotiated is None or leg.ended:
            return
        leg.session_timer = SessionTimer(answer.negotiated, now)
        self._arm_leg(leg, leg.session_timer.deadline())

    def start(self, call: Call, now: float) -> None:
        """Arm what the call's legs and the settings ask for (at answer, and for a call restored after a restart)."""
        call.last_activity = now
        for leg in call.legs.values():
            if leg.session_timer is not None:
                leg.session_timer.refreshed(now)
                self._arm_leg(leg, leg.session_timer.deadline())
        if self.settings.max_duration > 0:
            call.timers.append(self._schedule(now + self.settings.max_duration,
                                              lambda at: self._end(call, "maximum duration", at)))
        if self.settings.idle_probe > 0:
            self._arm_reaper(call, now + self.settings.idle_probe)

    # -- session timers (RFC 4028 section 10) -------------------------------------------------------------------

    def _arm_leg(self, leg: Leg, deadline: float) -> None:
        call = leg.call
        call.timers.append(self._schedule(deadline, lambda at: self._leg_due(leg, at)))

    def _leg_due(self, leg: Leg, now: float) -> None:
        call, timer = leg.call, leg.session_timer
        if timer is None or leg.ended or call.state is not CallState.ANSWERED:
            return
        _forget_fired(call)
        what = timer.due(now)
        if what is None:
            self._arm_leg(leg, timer.deadline())
        elif what == "expired":
            logger.info("call %s: the %s leg's session timer expired (%ss without a refresh)", call.id, leg.name,
                        timer.negotiated.interval)
            self._end(call, f"session timer of the {leg.name} expired", now)
        elif leg.invite_pending or call.busy is not None or leg.sent_sdp is None:
            self._arm_leg(leg, now + REFRESH_RETRY)
        else:
            self._refresh(leg, timer, now)

    def _refresh(self, leg: Leg, timer: SessionTimer, now: float) -> None:
        """Section 7.4 as the refresher: a re-INVITE offering the SDP the leg already has (same ``o=`` version: no
        change, RFC 3264 section 8), then wait for its answer as long as the timer lets the session live."""
        try:
            leg.call.send(leg, "INVITE", now, self._refresh_answered, body=leg.sent_sdp or b"",
                          content_type="application/sdp", headers=refresh_headers(timer.negotiated, self._min_se()))
        except SipError as error:
            logger.info("call %s: cannot refresh the %s: %s", leg.call.id, leg.name, error)
            self._arm_leg(leg, now + REFRESH_RETRY)
            return
        timer.pending = True
        self._arm_leg(leg, timer.deadline())

    def _refresh_answered(self, leg: Leg, answer: LegResponse, now: float) -> None:
        timer = leg.session_timer
        response = answer.response
        if timer is None or leg.ended:
            return
        timer.pending = False
        if response is not None and 200 <= response.status < 300:
            negotiated = uac_on_2xx(response)
            if negotiated is None:
                leg.session_timer = None  # section 7.2: a 2xx without Session-Expires ends the timer
            else:
                self._refreshed(leg, timer, now, negotiated)
            return
        # A refusal (a 481 or 408, or no answer, ended the session already): the session lives until the
        # interval runs out, then ends (section 10); a refresh from the peer meanwhile saves it.
        status = response.status if response is not None else 408
        logger.info("call %s: the %s refused a session refresh (%d)", leg.call.id, leg.name, status)
        timer.negotiated = Negotiated(timer.negotiated.interval, False)

    def _refreshed(self, leg: Leg, timer: SessionTimer, now: float, negotiated: Negotiated | None = None) -> None:
        changed = negotiated is not None and negotiated != timer.negotiated
        timer.refreshed(now, negotiated)
        if changed:
            leg.call.changed()
            self._arm_leg(leg, timer.deadline())

    def on_response(self, leg: Leg, answer: LegResponse, now: float) -> None:
        """A response on a leg with a session timer: a 2xx to a re-INVITE or UPDATE refreshed the session."""
        timer = leg.session_timer
        response = answer.response
        if timer is not None and response is not None and 200 <= response.status < 300 and \
                answer.outgoing.method in REFRESH_METHODS:
            timer.refreshed(now)

    def on_request(self, leg: Leg, request: Request, transaction: ServerTransaction, now: float) -> bool:
        """A request from a party: activity for the reaper; a refresh of a leg with a session timer answered here
        when it changes nothing (True: handled, not to be relayed)."""
        call = leg.call
        call.last_activity = now
        timer = leg.session_timer
        if timer is None or request.method not in REFRESH_METHODS or not _same_sdp(request, leg):
            if timer is not None and request.method in REFRESH_METHODS:
                timer.refreshed(now)  # a media change, relayed: its arrival keeps the session alive
            return False
        timers = self.settings.session_timers or DEFAULT_SESSION_TIMERS
        decision = uas_decide(request, timers)
        if isinstance(decision, Reject422):
            leg.reply(transaction, 422, now, reason="Session Interval Too Small", headers=decision.headers())
            return True
        negotiated = decision.negotiated
        # An offer (any INVITE: one without SDP gets ours as the offer; an UPDATE with SDP) gets the SDP the party
        # already has from us; a bodiless UPDATE gets none (RFC 3311 section 5.2).
        body = (leg.sent_sdp or b"") if request.method == "INVITE" or request.body else b""
        leg.reply(transaction, 200, now, body=body, content_type="application/sdp" if body else None,
                  headers=decision.headers)
        if negotiated is None:
            leg.session_timer = None  # section 9: the peer refreshed without asking for a timer any more
            call.changed()
        else:
            self._refreshed(leg, timer, now, negotiated)
        return True

    # -- the idle reaper -------------------------------------------------------------------------------------------

    def _arm_reaper(self, call: Call, deadline: float) -> None:
        call.timers.append(self._schedule(deadline, lambda at: self._reaper_due(call, at)))

    def _reaper_due(self, call: Call, now: float) -> None:
        if call.state is not CallState.ANSWERED:
            return
        _forget_fired(call)
        idle = self.settings.idle_probe
        if now < call.last_activity + idle:
            self._arm_reaper(call, call.last_activity + idle)
            return
        for leg in list(call.legs.values()):
            if leg.session_timer is not None or not leg.confirmed or leg.invite_pending:
                continue
            try:
                call.send(leg, "OPTIONS", now, self._probe_answered)
            except SipError as error:
                logger.info("call %s: cannot probe the %s: %s", call.id, leg.name, error)
        call.last_activity = now
        self._arm_reaper(call, now + idle)

    def _probe_answered(self, leg: Leg, answer: LegResponse, now: float) -> None:
        """Any answer but 408 and 481 means the party is there (RFC 3261 section 12.2.1.2: those two end the
        dialog, which the session does, and the call with it); no answer at all is a 408 too."""
        response = answer.response
        status = response.status if response is not None else 408
        if status in (408, 481):
            logger.info("call %s: the %s did not answer the idle probe (%d): ending the call", leg.call.id,
                        leg.name, status)
            self._end(leg.call, f"idle probe of the {leg.name} got {status}", now)


def _same_sdp(request: Request, leg: Leg) -> bool:
    """Is ``request`` a pure refresh: no body (an UPDATE, or a re-INVITE with no offer) or the SDP the party sent
    before (same origin and version: no change, RFC 3264 section 8)?"""
    body = request.body
    if not body:
        return True
    last = leg.received_sdp
    if last is None:
        return False
    try:
        return sdp.origin_of(body) == sdp.origin_of(last)
    except ParseError:
        return False


def _forget_fired(call: Call) -> None:
    """Drop the call's timers that fired or were cancelled (their callback is gone), so the list stays short."""
    call.timers[:] = [timer for timer in call.timers if timer.callback is not None]


__all__ = ["REFRESH_METHODS", "REFRESH_RETRY", "SupervisionSettings", "Supervisor"]
