"""What the UA core tells the application about INVITE sessions: frozen, slotted dataclasses.

Retransmissions, ACKs, 2xx retransmission, CANCEL/487, glare retries, digest retries and forked 2xx
were handled below; each event is a step of a session the application (the B2BUA) cares about.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .address import Destination
from .message import Request, Response
from .transaction_server import ServerTransaction

if TYPE_CHECKING:
    from .session import Session
    from .session_host import Outgoing


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """A new INVITE from a trusted source; the application answers with :meth:`Session.respond`."""

    session: Session
    request: Request
    source: Destination


@dataclass(frozen=True, slots=True)
class CallProgress:
    """A 101-199 to our INVITE."""

    session: Session
    response: Response


@dataclass(frozen=True, slots=True)
class CallAnswered:
    """A 2xx to our INVITE; the ACK is sent."""

    session: Session
    response: Response


@dataclass(frozen=True, slots=True)
class CallFailed:
    """Our INVITE failed: a 3xx-6xx (``response``), a timeout (408) or a transport error (503)."""

    session: Session
    status: int
    reason: str
    response: Response | None = None


@dataclass(frozen=True, slots=True)
class CallAcked:
    """The ACK for our 2xx to an INVITE (initial or re-INVITE) arrived."""

    session: Session
    request: Request


@dataclass(frozen=True, slots=True)
class CallCancelled:
    """The caller cancelled its INVITE; the UA core answered 487."""

    session: Session
    request: Request


@dataclass(frozen=True, slots=True)
class DialogRequest:
    """A request inside the session's dialog (re-INVITE, UPDATE, INFO, REFER, NOTIFY, OPTIONS ...):
    the application answers it with :meth:`Session.reply`. BYE is answered by the UA core (see
    :class:`CallEnded`)."""

    session: Session
    request: Request
    transaction: ServerTransaction


@dataclass(frozen=True, slots=True)
class DialogResponse:
    """A response to a request the application sent in the dialog (provisional ones included): ``outgoing``
    is the handle :meth:`Session.request` returned for it."""

    session: Session
    outgoing: Outgoing
    response: Response


@dataclass(frozen=True, slots=True)
class DialogRequestFailed:
    """A request the application sent in the dialog (``outgoing``) timed out or could not be sent."""

    session: Session
    outgoing: Outgoing
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The session is over: BYE either way, no ACK for our 2xx, or the dialog died (481/408 to a request)."""

    session: Session
    reason: str
    #: The peer ended it (a BYE arrived, or it answered a request with 481/408).
    by_remote: bool
    request: Request | None = None


UaEvent = (
    IncomingCall | CallProgress | CallAnswered | CallFailed | CallAcked | CallCancelled | DialogRequest
    | DialogResponse | DialogRequestFailed | CallEnded
)
