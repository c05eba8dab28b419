"""What CallStart and the transfers share: REFER a leg to a target and follow the transfer through the
implicit subscription's NOTIFYs (RFC 3515; RFC 5359 sections 2.4 and 2.5 for the service flows).

The Refer-To URI carries an ``osid`` parameter, as OpenSIPS callops does: when the transferee's new
INVITE comes through the service, the B2BUA recognises it by that token, strips it before it forwards,
and tells the flow the new call's Call-ID. Progress: 2xx to the REFER is TRANSFER_ACCEPT; the correlated
INVITE, or the first NOTIFY whose sipfrag reports more than ``100 Trying``, is CALL_START; a 2xx NOTIFY
is success; a 3xx-6xx NOTIFY, a refused REFER, or no final NOTIFY within the configured time is failure.

CALL_START and ``100 Trying``: RFC 3515 section 2.4.5 has the transferee send its first NOTIFY at once,
and a ``100 Trying`` sipfrag says only that the REFER is being acted on; the new INVITE may not have left
yet, and under loss it may come seconds later (Timer A doubles from 0.5 s). A NOTIFY reporting 18x or a
final response comes causally after the INVITE reached its UAS, so if the INVITE passed through the
service, it was correlated first. CALL_START therefore waits for the correlated INVITE or such a NOTIFY
and is then named whenever the INVITE came through the service. (Until 2026-12 a 1 s grace after the first
``100 Trying`` reported CALL_START unnamed; the attended transfer under 10 % loss showed it in 5 of 20.)
A transfer that fails after only ``100 Trying`` reports no CALL_START.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import SipError
from ...sip.headers import SipFrag
from ...sip.message import Request, Response
from ...sip.refer import ReferSubscription
from ...sip.session_host import Outgoing
from ...sip.transaction_server import ServerTransaction
from ...sip.ua import Timer
from ...sip.uri import SipUri, parse_uri
from ..call import Call
from ..events import TIMEOUT, LegEvent, LegRequest, LegResponse
from ..leg import Leg
from .base import Flow, Sink, status_line

if TYPE_CHECKING:
    from ..b2bua import B2bua

#: The Refer-To URI parameter that lets the service recognise the transferee's INVITE.
CORRELATION_PARAM = "osid"
#: The sipfrag status of a NOTIFY that says only that the REFER is being acted on (RFC 3515 section 2.4.5).
TRYING = 100


def add_correlation(target: str, token: str) -> str:
    """``target`` with ``;osid=token`` (URI headers such as ``?Replaces=`` kept after it)."""
    uri = parse_uri(target)
    if not isinstance(uri, SipUri):
        return target
    return str(uri.with_param(CORRELATION_PARAM, token))


class ReferFlow(Flow):
    """REFER ``transferee`` to ``target``; subclasses say what success and failure do."""

    def __init__(self, call: Call, sink: Sink, b2bua: B2bua, transferee: Leg, target: str, *,
                 referred_by: str | None, cmd_id: str = "") -> None:
        super().__init__(call, sink, cmd_id)
        self.b2bua = b2bua
        self.transferee = transferee
        self.target = target
        self.referred_by = referred_by
        self.sub: ReferSubscription | None = None
        self._refer: Outgoing | None = None
        self.accepted = False
        self.started = False
        self.new_call: Call | None = None
        self.new_callid: str | None = None
        self._token = ""
        self._timer: Timer | None = None

    def send_refer(self, now: float) -> None:
        """REFER in a confirmed dialog with no INVITE transaction pending (RFC 3515 section 2.4.1 and
        RFC 3261 section 14.1), exactly one Refer-To and a Referred-By (RFC 3892)."""
        if not self.transferee.confirmed or self.call.busy_with_reinvite(self.transferee):
            self.failure(491, f"the {self.transferee.name}'s dialog is busy with an INVITE", now)
            return
        self._token = self.b2bua.ua.ids.tag()
        self.b2bua.correlations[self._token] = self._correlated
        headers = [("Refer-To", f"<{add_correlation(self.target, self._token)}>")]
        if self.referred_by:
            headers.append(("Referred-By", self.referred_by))
        try:
            refer = self.call.send(self.transferee, "REFER", now, self.on_leg_event, headers=headers)
        except SipError as error:
            self.failure(500, f"cannot send REFER to the {self.transferee.name}: {error}", now)
            return
        self._refer = refer
        self.sub = ReferSubscription(refer.first)
        self.transferee.refers.append(self.sub)
        self.call.changed()

    def _refer_answered(self, response: Response | None, now: float) -> None:
        if self.done:
            return
        if response is None:
            self.failure(TIMEOUT, f"the {self.transferee.name} did not answer the REFER", now)
            return
        assert self.sub is not None
        if not self.sub.on_response(response):
            self.failure(response.status, f"the {self.transferee.name} refused the REFER: {status_line(response)}",
                         now)
            return
        self._accept(now, status_line(response))

    def _accept(self, now: float, status: str | None) -> None:
        if self.accepted:
            return
        self.accepted = True
        self.event("TRANSFER_ACCEPT", callid=self.transferee.call_id, leg=self.transferee.name, status=status)
        timeout = self.b2bua.settings.refer_notify_timeout
        self._timer = self.b2bua.ua.schedule(now + timeout, self._notify_timeout)
        self.call.timers.append(self._timer)
        if self.new_call is not None:
            self._start(None)

    def _start(self, status: str | None) -> None:
        if self.started or not self.accepted:
            return
        self.started = True
        self.event("CALL_START", callid=self.new_callid, status=status)

    def _correlated(self, new_call: Call, callid: str) -> None:
        """The transferee's INVITE came through the service: ``new_call`` is the call it joined, ``callid``
        the Call-ID of its dialog with us (the Call-ID to report)."""
        self.new_call = new_call
        self.new_callid = callid
        self._start(None)

    def on_leg_event(self, leg: Leg, event: LegEvent, now: float) -> bool:
        if isinstance(event, LegRequest):
            return self.on_request(leg, event.request, event.transaction, now)
        if isinstance(event, LegResponse) and self._refer is not None and event.outgoing is self._refer:
            self._refer = None
            self._refer_answered(event.response, now)
            return True
        return False

    def on_request(self, leg: Leg, request: Request, transaction: ServerTransaction, now: float) -> bool:
        sub = self.sub
        if self.done or leg is not self.transferee or request.method != "NOTIFY" or sub is None:
            return False
        if not sub.matches(request):
            return False
        outcome = sub.on_notify(request)
        leg.reply(transaction, outcome.answer, now)
        if outcome.answer != 200:
            return True
        self._accept(now, None)
        frag = outcome.frag
        if frag is not None:
            self._progress(frag, now)
        if outcome.terminated and not self.done:
            last = sub.last
            if last is None or last.provisional:
                self.failure(487, "the transfer ended without a final result", now)
        return True

    def _progress(self, frag: SipFrag, now: float) -> None:
        if frag.provisional:
            if self.new_call is not None or frag.status != TRYING:
                self._start(str(frag))
        elif frag.success:
            self._start(str(frag))
            if self.call.observer is not None:
                self.call.observer.transferred(self.call, self.transferee, self.new_callid)
            self.success(str(frag), now)
        else:
            self.failure(frag.status, f"the transfer failed: {frag}", now)

    def _notify_timeout(self, now: float) -> None:
        if not self.done:
            self.failure(TIMEOUT, "no final NOTIFY for the transfer in time", now)

    def finish(self) -> None:
        self.b2bua.correlations.pop(self._token, None)
        if self._timer is not None:
            self._timer.cancel()
        super().finish()

    # -- what subclasses decide ----------------------------------------------------------------------

    def success(self, status: str, now: float) -> None:
        raise NotImplementedError

    def failure(self, code: int, message: str, now: float) -> None:
        raise NotImplementedError

