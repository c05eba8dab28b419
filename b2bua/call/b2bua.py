"""The B2BUA: the application on the UA core that turns incoming INVITEs into bridged calls.

It reads the UA's session events and moves each call along: a new INVITE makes a call with a
callee leg towards the same Request-URI; the callee's answers go back to the caller; in-dialog
requests are relayed; when one leg ends the other is ended. The call table holds every call until
its last leg is over. Commands (hold, resume, end, transfers) run as flows on these calls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Final, assert_never

from ..errors import ParseError, SipError
from ..sip.headers import parse_replaces
from ..sip.message import Request, Response
from ..sip.session_timer import Accept, Reject422
from ..sip.transaction_server import ServerTransaction
from ..sip.ua import UserAgent
from ..sip.ua_events import DialogRequest, IncomingCall, UaEvent
from ..sip.uri import SipUri, parse_uri
from .call import Call, CallState
from .events import (
    LegAcked,
    LegAnswered,
    LegCancelled,
    LegEnded,
    LegEvent,
    LegFailed,
    LegRequest,
    LegResponse,
    LegRinging,
    leg_event,
)
from .flows.base import Flow, status_text
from .flows.refer import CORRELATION_PARAM
from .leg import Invitation, Leg, leg_of, refuse
from .live import LiveCalls
from .supervision import SupervisionSettings, Supervisor
from .table import CallTable

logger = logging.getLogger("call_api.call")

#: Session timers on (1800 s, Min-SE 90), no maximum duration, no idle probing.
DEFAULT_SUPERVISION: Final = SupervisionSettings()


@dataclass(frozen=True, slots=True)
class B2buaSettings:
    """Limits of the call logic."""

    #: Calls in progress at once; more get 503 (RFC 3261 section 21.5.4).
    max_calls: int = 10000
    #: Seconds a callee may ring before the B2BUA cancels it and answers the caller 408.
    answer_timeout: float = 60.0
    #: Seconds a transfer waits for its final NOTIFY (RFC 3515) before it is reported failed.
    refer_notify_timeout: float = 32.0
    #: Session timers (RFC 4028), maximum duration and the idle reaper (b2bua.call.supervision).
    supervision: SupervisionSettings = DEFAULT_SUPERVISION


def strip_correlation(uri_text: str) -> tuple[str, str | None]:
    """A Request-URI without the transfer correlation parameter, and the token it carried."""
    try:
        uri = parse_uri(uri_text)
    except SipError:
        return uri_text, None
    if not isinstance(uri, SipUri) or CORRELATION_PARAM not in uri.params:
        return uri_text, None
    return str(uri.without_param(CORRELATION_PARAM)), uri.params.get(CORRELATION_PARAM)


class B2bua:
    """The call logic on top of a :class:`UserAgent`."""

    def __init__(self, ua: UserAgent, settings: B2buaSettings | None = None, live: LiveCalls | None = None) -> None:
        self.ua = ua
        self.settings = settings or B2buaSettings()
        self.table = CallTable()
        #: Every change of every call, for the live-state API.
        self.live = live if live is not None else LiveCalls()
        #: Correlation tokens of transfers in flight (the ``osid`` of their Refer-To) -> who to tell.
        self.correlations: dict[str, Callable[[Call, str], None]] = {}
        supervision = self.settings.supervision
        #: Session timers, maximum duration and the idle reaper; None when all are off (nothing runs per message).
        self.supervisor = Supervisor(supervision, ua.schedule, self.live) if supervision.active else None

    # -- dispatch -----------------------------------------------------------------------------------

    def handle(self, event: UaEvent, now: float) -> None:
        """The one way in for the UA's events: a new INVITE makes a call; a session event of a leg becomes a
        :data:`~.events.LegEvent`, offered to the command running on the call, then acted on here."""
        if isinstance(event, IncomingCall):
            self._incoming(Invitation(event), now)
            return
        leg = leg_of(event)
        if leg is None:
            if isinstance(event, DialogRequest):
                refuse(event, 481, now)
            return
        self.on_leg_event(leg, leg_event(event), now)

    def on_leg_event(self, leg: Leg, event: LegEvent, now: float) -> None:
        call = leg.call
        if isinstance(event, LegResponse):
            if leg.session_timer is not None and self.supervisor is not None:
                self.supervisor.on_response(leg, event, now)
            # An answer goes to whoever sent the request, by its handle: the relay, or the command.
            call.on_response(leg, event.outgoing, event.response, now)
            return
        if isinstance(event, LegAcked):
            call.changed()  # the leg's dialog is confirmed now: an answered call becomes worth keeping
        self.live.leg_event(leg, event)
        flow = call.busy
        if isinstance(flow, Flow) and not flow.done and flow.on_leg_event(leg, event, now):
            return
        match event:
            case LegRinging(status, reason, body, ctype):
                if leg.answers_to is not None:
                    self._relay_progress(call, leg, leg.answers_to, status, reason, body, ctype, now)
            case LegAnswered(_, _, body, ctype, response):
                if leg.answers_to is not None:
                    self._callee_answered(call, leg, leg.answers_to, body, ctype, now, response)
            case LegFailed(status, reason):
                call.settle(403 if status in (401, 407) else status)
                if leg.answers_to is not None:
                    self._callee_failed(call, leg, leg.answers_to, status, reason, now)
                else:
                    call.leg_ended(leg, now)
            case LegAcked(body, ctype):
                self._relay_late_answer(call, leg, body, ctype, now)
            case LegCancelled():
                call.leg_ended(leg, now)
            case LegRequest(request, transaction):
                if request.method == "NOTIFY" and self._own_notify(leg, request, transaction, now):
                    return
                if self.supervisor is not None and self.supervisor.on_request(leg, request, transaction, now):
                    return
                call.relay_request(leg, request, transaction, now)
            case LegEnded(reason, _):
                logger.info("call %s: %s leg ended (%s)", call.id, leg.name, reason)
                call.leg_ended(leg, now)
            case _:
                assert_never(event)

    # -- setting a call up ---------------------------------------------------------------------------

    def _incoming(self, invitation: Invitation, now: float) -> None:
        request = invitation.request
        if len(self.table) >= self.settings.max_calls:
            invitation.fail(503, now, reason="Too Many Calls", headers=[("Retry-After", "5")])
            return
        max_forwards = request.max_forwards
        if max_forwards == 0:
            invitation.fail(483, now)
            return
        replaces = request.headers.get("replaces")
        if replaces is not None:
            self._replace(invitation, replaces, now)
            return
        if self._is_ourselves(request.uri):
            invitation.fail(482, now, reason="Loop Detected")
            return
        timer_answer = self.supervisor.incoming(request) if self.supervisor is not None else None
        if isinstance(timer_answer, Reject422):
            invitation.fail(422, now, reason="Session Interval Too Small", headers=timer_answer.headers())
            return
        ctype = request.headers.get("content-type")
        from_, to = request.from_, request.to
        assert from_ is not None and to is not None
        target, token = strip_correlation(request.uri)
        to_addr = to.without_tag()
        if token is not None:
            to_addr = to.with_uri(strip_correlation(to.uri_text)[0]).without_tag()
        try:
            callee_session = self.ua.invite(
                target, now, from_addr=from_.without_tag(), to_addr=to_addr, body=request.body,
                content_type=ctype, max_forwards=(max_forwards if max_forwards is not None else 70) - 1,
                headers=self.supervisor.invite_headers() if self.supervisor is not None else (),
            )
        except SipError as error:
            # Before any Call exists: a call made first and dropped here kept Call -> Leg -> Session -> Leg
            # alive for a full collection, which the collector's freezing never runs (test_collector).
            logger.info("call %s: cannot place the callee's INVITE: %s", invitation.call_id, error)
            invitation.fail(503, now, reason="Cannot Reach Callee")
            return
        call = Call(invitation.call_id)
        caller = call.add_leg("caller", invitation)
        caller.timer_answer = timer_answer
        caller.remember_received(request.body, ctype)
        callee = call.add_leg("callee", callee_session, answers_to=caller)
        if request.body:
            callee.outgoing_sdp(request.body)
        self.table.add(call)
        self.live.created(call)
        logger.info("call %s: %s -> %s (callee call-id %s)", call.id, from_.uri_text, target, callee.call_id)
        if token is not None:
            correlated = self.correlations.pop(token, None)
            if correlated is not None:
                correlated(call, call.id)
        timeout = self.ua.schedule(now + self.settings.answer_timeout, lambda at: self._answer_timeout(call, at))
        call.timers.append(timeout)

    def _own_notify(self, leg: Leg, request: Request, transaction: ServerTransaction, now: float) -> bool:
        """A NOTIFY for a REFER the service sent, after its command is over: answered here, never relayed
        (RFC 6665 section 4.1.3: 481 asks the notifier to end a subscription nobody follows any more)."""
        only_one = len(leg.refers) == 1
        for sub in leg.refers:
            if sub.matches(request, only_one):
                outcome = sub.on_notify(request)
                leg.reply(transaction, 200 if outcome.terminated else 481, now)
                leg.call.changed()
                return True
        return False

    # -- INVITE with Replaces (RFC 3891) ------------------------------------------------------------

    def _replace(self, invitation: Invitation, value: str, now: float) -> None:
        """An INVITE whose Replaces names one of the service's own dialogs, handled here (RFC 3891 section 3).

        The Replaces comes as the party on the far side of that dialog would read it (its own tag as
        to-tag: an attended transfer aims at that party), or as the service itself would (our tag as
        to-tag): both are accepted. The service stands in for the party it bridges: the named leg stays,
        is re-INVITEd with the newcomer's SDP, and the newcomer takes the place of the leg it was bridged
        to, which gets a BYE. No such dialog: 481; ``early-only`` on a confirmed dialog: 486.
        """
        try:
            replaces = parse_replaces(value)
        except ParseError:
            invitation.fail(400, now, reason="Bad Replaces")
            return
        call = self.table.find(replaces.call_id)
        kept = None
        if call is not None:
            for leg in call.legs.values():
                dialog = leg.dialog_id
                if leg.call_id != replaces.call_id or dialog is None or leg.ended:
                    continue
                tags = {(dialog.local_tag, dialog.remote_tag)}
                if (replaces.from_tag, replaces.to_tag) in tags or (replaces.to_tag, replaces.from_tag) in tags:
                    kept = leg
        if call is None or kept is None:
            invitation.fail(481, now, reason="No Dialog To Replace")
            return
        if replaces.early_only and kept.confirmed:
            invitation.fail(486, now, reason="Dialog Already Confirmed")
            return
        replaced = call.other(kept)
        if not kept.confirmed or replaced is None or call.busy_with_reinvite(kept):
            invitation.fail(486 if replaced is not None else 481, now)
            return
        request = invitation.request
        ctype = request.headers.get("content-type")
        if not request.body:
            invitation.fail(488, now, reason="Replaces Needs An Offer")
            return
        # The newcomer's dialog is new: it negotiates its own session timer, as any caller's (RFC 4028 section 9).
        timer_answer = self.supervisor.incoming(request) if self.supervisor is not None else None
        if isinstance(timer_answer, Reject422):
            invitation.fail(422, now, reason="Session Interval Too Small", headers=timer_answer.headers())
            return
        _, token = strip_correlation(request.uri)
        logger.info("call %s: %s replaces the %s (Replaces %s)", call.id, invitation.call_id, replaced.name,
                    replaces.call_id)
        handler = partial(self._replaced, call, kept, replaced, invitation, timer_answer)
        try:
            call.send(kept, "INVITE", now, handler, body=kept.outgoing_sdp(request.body), content_type=ctype)
        except SipError:
            invitation.fail(491, now)
            return
        correlated = self.correlations.pop(token, None) if token is not None else None
        if correlated is not None:
            correlated(call, invitation.call_id)

    def _replaced(self, call: Call, kept: Leg, replaced: Leg, invitation: Invitation, timer_answer: Accept | None,
                  _leg: Leg, answer: LegResponse, now: float) -> None:
        response = answer.response
        if invitation.ended:
            return
        if response is None or response.status >= 300:
            invitation.fail(response.status if response is not None else 408, now)
            return
        ctype = response.headers.get("content-type")
        kept.remember_received(response.body, ctype)
        self.table.remove(call)
        old_name = call.id
        newcomer = call.replace_leg(replaced, invitation)
        if call.id == replaced.call_id:
            call.id = invitation.call_id  # the call is named after a dialog that still exists
        self.table.add(call)
        request = invitation.request
        newcomer.remember_received(request.body, request.headers.get("content-type"))
        body = newcomer.outgoing_sdp(response.body) if response.body else b""
        newcomer.answer(now, body=body, content_type=ctype if body else None,
                        headers=timer_answer.headers if timer_answer is not None else ())
        if self.supervisor is not None:
            self.supervisor.joined(newcomer, timer_answer, now)
        self.live.replaced(call, old_name, replaced, newcomer)
        replaced.detach()
        replaced.hang_up(now)

    def _is_ourselves(self, uri_text: str) -> bool:
        """A Request-URI naming this service's own address: forwarding it would loop back here."""
        if self.ua.settings.outbound_proxy is not None:
            return False
        try:
            uri = parse_uri(uri_text)
        except SipError:
            return False
        if not isinstance(uri, SipUri):
            return False
        s = self.ua.settings
        return uri.host.strip("[]") == s.host.strip("[]") and (uri.port or 5060) == s.port

    def _relay_progress(self, call: Call, callee: Leg, caller: Leg, status: int, reason: str, body: bytes,
                        ctype: str | None, now: float) -> None:
        if not caller.ringing:
            return
        if call.state is CallState.SETUP:
            call.move(CallState.EARLY)
        callee.remember_received(body, ctype)
        out = caller.outgoing_sdp(body) if body else b""
        caller.ring(status, now, body=out, content_type=ctype if out else None)
        self.live.ringing(call, status_text(status, reason))

    def _callee_answered(self, call: Call, callee: Leg, caller: Leg, body: bytes, ctype: str | None,
                         now: float, response: Response | None = None) -> None:
        callee.remember_received(body, ctype)
        if caller.ended or call.state in (CallState.ENDING, CallState.ENDED):
            callee.hang_up(now)
            return
        out = caller.outgoing_sdp(body) if body else b""
        timer_answer = caller.timer_answer
        caller.answer(now, body=out, content_type=ctype if out else None,
                      headers=timer_answer.headers if timer_answer is not None else ())
        if self.supervisor is not None:
            self.supervisor.answered(call, caller, callee, response, now)
        call.move(CallState.ANSWERED)

    def _relay_late_answer(self, call: Call, leg: Leg, body: bytes, ctype: str | None, now: float) -> None:
        """Late offer (RFC 3264 section 4, RFC 3261 section 13.2.2.4): an INVITE or re-INVITE relayed
        without SDP got the offer in the other leg's 2xx, whose ACK is held until this leg's ACK brings
        the answer; it crosses like any SDP (the other leg's o= line continuity kept)."""
        other = call.other(leg)
        if other is None or not other.ack_held:
            return
        leg.remember_received(body, ctype)
        out = other.outgoing_sdp(body) if body else b""
        other.ack(now, body=out, content_type=ctype if out else None)

    def _callee_failed(self, call: Call, callee: Leg, caller: Leg, status: int, reason: str, now: float) -> None:
        if not caller.ended:
            if status in (401, 407):
                status, reason = 403, "Callee Requires Credentials"
            caller.fail(status, now, reason=reason or None)
        call.leg_ended(callee, now)

    def _answer_timeout(self, call: Call, now: float) -> None:
        if call.state in (CallState.SETUP, CallState.EARLY):
            logger.info("call %s: no answer within %.0f s", call.id, self.settings.answer_timeout)
            self.live.cause(call, "timeout")
            callee = call.callee
            call.settle(408)
            if not call.caller.ended:
                call.caller.fail(408, now, reason="No Answer")
            if callee is not None:
                call.leg_ended(call.caller, now)

    # -- supervision (b2bua.call.supervision) ------------------------------------------------------------------

    def resume(self, call: Call, now: float) -> None:
        """A call restored after a restart (b2bua.call.record): its session timers, duration limit and reaper
        start again from ``now``."""
        if self.supervisor is not None:
            self.supervisor.start(call, now)
