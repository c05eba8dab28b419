"""The call layer's two vocabularies, frozen and slotted.

What happens on a leg (:data:`LegEvent`), in the spirit of sippy's CCEvents: the UA's session events
translated by :func:`leg_event` into ringing, answered, failed, acked, cancelled, a request from the
peer, an answer to a request we sent, and ended, each with the SIP facts the call logic needs. The B2BUA
and every flow read only these.

What a command (flow) reports, in the vocabulary of the API's seed: ``Event`` (with ``data`` such as
CALL_ANSWER, TRANSFER_ACCEPT, CALL_START, CALL_HOLD, CALL_UNHOLD), ``Error``, and a final ``Ended``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import assert_never

from ..sip.message import Request, Response
from ..sip.session_host import Outgoing
from ..sip.transaction_server import ServerTransaction
from ..sip.ua_events import (
    CallAcked,
    CallAnswered,
    CallCancelled,
    CallEnded,
    CallFailed,
    CallProgress,
    DialogRequest,
    DialogRequestFailed,
    DialogResponse,
    IncomingCall,
    UaEvent,
)
from .leg import LegName


@dataclass(frozen=True, slots=True)
class LegRinging:
    """A 101-199 to the leg's INVITE (RFC 3261 section 13.2.2.1), with its SDP if any."""

    status: int
    reason: str
    body: bytes = b""
    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class LegAnswered:
    """A 2xx to the leg's INVITE; the ACK is sent (or held for a late offer's answer)."""

    status: int
    reason: str
    body: bytes = b""
    content_type: str | None = None
    #: The 2xx itself, for what the call layer reads of it beyond the body (RFC 4028 Session-Expires).
    response: Response | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class LegFailed:
    """The leg's INVITE failed: a 3xx-6xx, a timeout (408) or a transport error (503)."""

    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class LegAcked:
    """The ACK for our 2xx came, with the answer of a late offer if it carries one."""

    body: bytes = b""
    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class LegCancelled:
    """The party cancelled its INVITE (it got 487)."""


@dataclass(frozen=True, slots=True)
class LegRequest:
    """The party sent a request in the dialog (re-INVITE, UPDATE, INFO, REFER, NOTIFY ...); answer it on
    ``transaction``."""

    request: Request
    transaction: ServerTransaction


@dataclass(frozen=True, slots=True)
class LegResponse:
    """The answer to a request sent on the leg (``outgoing``, the handle its sending returned): a response
    (provisional ones included), or ``None`` when it timed out or could not be sent."""

    outgoing: Outgoing
    response: Response | None


@dataclass(frozen=True, slots=True)
class LegEnded:
    """The leg is over: a BYE either way, no ACK for our 2xx, or the dialog died."""

    reason: str
    #: The party ended it (its BYE, or a 481/408 to our request).
    by_remote: bool


LegEvent = (
    LegRinging | LegAnswered | LegFailed | LegAcked | LegCancelled | LegRequest | LegResponse | LegEnded
)


def leg_event(event: UaEvent) -> LegEvent:
    """A session event of an existing leg in the call layer's words (:class:`IncomingCall` makes a leg
    and is no leg's event)."""
    match event:
        case CallProgress(_, response):
            return LegRinging(response.status, response.reason, response.body, response.headers.get("content-type"))
        case CallAnswered(_, response):
            return LegAnswered(response.status, response.reason, response.body,
                               response.headers.get("content-type"), response)
        case CallFailed(_, status, reason, _):
            return LegFailed(status, reason)
        case CallAcked(_, ack):
            return LegAcked(ack.body, ack.headers.get("content-type"))
        case CallCancelled():
            return LegCancelled()
        case DialogRequest(_, request, transaction):
            return LegRequest(request, transaction)
        case DialogResponse(_, outgoing, response):
            return LegResponse(outgoing, response)
        case DialogRequestFailed(_, outgoing, _, _):
            return LegResponse(outgoing, None)
        case CallEnded(_, reason, by_remote, _):
            return LegEnded(reason, by_remote)
        case IncomingCall():
            raise TypeError("an incoming call is no leg's event")
        case _:
            assert_never(event)


@dataclass(frozen=True, slots=True)
class FlowEvent:
    """A step of a command: ``data`` is the seed's event name."""

    data: str
    #: The Call-ID the step concerns (a leg's dialog, or the new call a transfer made).
    callid: str | None = None
    #: ``caller`` or ``callee`` when one party is meant.
    leg: LegName | None = None
    #: The SIP status line that caused it, e.g. ``SIP/2.0 200 OK``.
    status: str | None = None


@dataclass(frozen=True, slots=True)
class FlowError:
    """The command failed: ``code`` is the SIP status that caused it, or a service code (see docs/API.md)."""

    code: int
    message: str


@dataclass(frozen=True, slots=True)
class FlowEnded:
    """The command is over; always the last thing it reports, exactly once."""


FlowReport = FlowEvent | FlowError | FlowEnded

#: Service codes for failures that have no SIP status.
TIMEOUT = 408
WRONG_ANSWER = 488
