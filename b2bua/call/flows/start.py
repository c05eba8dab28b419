"""CallStart: click-to-dial through REFER (RFC 5359 section 2.18 shape, RFC 3515).

The service INVITEs the caller (Request-URI and To: the caller; From: the callee, so the phone shows whom it
is about to call) with an SDP offer that has no usable media (``a=inactive``). On 2xx it ACKs and reports
CALL_ANSWER (leg caller); then it REFERs the caller to the callee. 2xx to the REFER: TRANSFER_ACCEPT; the
caller's correlated INVITE or first NOTIFY beyond ``100 Trying`` (see refer.py): CALL_START with the new
call's Call-ID; 2xx NOTIFY: CALL_ANSWER (leg callee), the first dialog gets a BYE, Ended. Any failure: one
Error with the SIP status, a BYE (or CANCEL) where a dialog exists, Ended.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

from ...sip import sdp
from ..call import Call, CallState
from ..events import TIMEOUT, LegAnswered, LegEnded, LegEvent, LegFailed
from ..leg import Leg
from .base import Sink, status_text
from .refer import ReferFlow

if TYPE_CHECKING:
    from ..b2bua import B2bua


class CallStartFlow(ReferFlow):
    name = "CallStart"

    def __init__(self, b2bua: B2bua, sink: Sink, caller: str, callee: str, now: float, cmd_id: str = "") -> None:
        ua = b2bua.ua
        host = ua.settings.host.strip("[]")
        offer = sdp.inactive_offer(host, zlib.crc32(ua.ids.tag().encode()), 1, username=ua.settings.user)
        session = ua.invite(caller, now, from_addr=f"<{callee}>", to_addr=f"<{caller}>", body=offer,
                            content_type="application/sdp")
        call = Call(session.call_id)
        leg = call.add_leg("caller", session)
        leg.outgoing_sdp(offer)
        b2bua.table.add(call)
        b2bua.live.created(call)
        # RFC 3515 section 2.1 / RFC 3892: the referrer is the service itself.
        super().__init__(call, sink, b2bua, leg, callee, referred_by=f"<{ua.own_uri}>", cmd_id=cmd_id)
        self._answer_timer = ua.schedule(now + b2bua.settings.answer_timeout, self._no_answer)
        call.timers.append(self._answer_timer)

    def on_leg_event(self, leg: Leg, event: LegEvent, now: float) -> bool:
        if leg is self.transferee:
            match event:
                case LegAnswered(status, reason, body, ctype):
                    self._answer_timer.cancel()
                    leg.remember_received(body, ctype)
                    self.call.move(CallState.ANSWERED)
                    self.event("CALL_ANSWER", callid=leg.call_id, leg="caller", status=status_text(status, reason))
                    self.send_refer(now)
                    return True
                case LegFailed(status, reason):
                    self.fail(status, f"the caller did not answer: {status} {reason}".rstrip())
                    return False
                case LegEnded(reason, _):
                    if not self.done:
                        self.fail(487, f"the caller's call ended before the transfer completed ({reason})")
                    return False
                case _:
                    pass  # the rest as in any transfer: the base flow's
        return super().on_leg_event(leg, event, now)

    def _no_answer(self, now: float) -> None:
        if not self.done and not self.transferee.confirmed:
            if self.call.observer is not None:
                self.call.observer.cause(self.call, "timeout")
            self.fail(TIMEOUT, "the caller did not answer in time")
            self.call.end(now)

    def success(self, status: str, now: float) -> None:
        self.event("CALL_ANSWER", callid=self.new_callid, leg="callee", status=status)
        self.call.end(now)
        self.finish()

    def failure(self, code: int, message: str, now: float) -> None:
        self.fail(code, message)
        self.call.end(now)
