"""The seam under a :class:`~.session.Session`: all a session may ask of its UA core (:class:`SessionHost`,
implemented by :class:`~.ua.UserAgent`), and the handle of a request the application sent in a dialog
(:class:`Outgoing`), which routes that request's answer back without keying anything by ``id()``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

from .address import Destination
from .dialog import Dialog
from .message import Request, Response
from .timers import TimerSettings
from .transaction_client import ClientTransaction
from .transaction_server import ServerTransaction

if TYPE_CHECKING:
    from .session import Session
    from .ua import Ids
    from .ua_events import UaEvent


class Outgoing:
    """A request the application sent in a dialog (:meth:`Session.request` returns it). The
    :class:`~.ua_events.DialogResponse` and :class:`~.ua_events.DialogRequestFailed` about it carry this
    same handle, also when the session sent it again after a 491 (RFC 3261 section 14.1) or a digest
    challenge (section 22.2). The application routes the answer by this handle."""

    __slots__ = ("first", "request")

    def __init__(self, request: Request) -> None:
        #: The request as the application sent it.
        self.first = request
        #: The latest request sent for it (the retry after a 491 or a challenge).
        self.request = request

    @property
    def method(self) -> str:
        return self.first.method

    def __repr__(self) -> str:
        return f"<Outgoing {self.first.method} {self.first.call_id}>"


class SessionHost(Protocol):
    """What a session may use of the UA core: sending on the transaction layer, routing, identity,
    timers and reporting. Nothing else of the UA is a session's business."""

    ids: Ids
    timers: TimerSettings

    def emit(self, event: UaEvent) -> None:
        """Report ``event`` to the application."""
        ...

    def schedule(self, deadline: float, callback: Callable[[float], None]) -> object:
        """Call ``callback(now)`` at ``deadline``."""
        ...

    def contact_for(self, transport: str, secure: bool = False) -> str:
        """Our Contact on ``transport``; ``sips:`` for a ``secure`` dialog."""
        ...

    def identity_headers(self, method: str, status: int) -> list[tuple[str, str]]:
        ...

    def build_in_dialog(
        self, dialog: Dialog, method: str, transport: str, body: bytes, content_type: str | None,
        headers: Iterable[tuple[str, str]],
    ) -> Request:
        ...

    def send_in_dialog(self, session: Session, request: Request, now: float,
                       outgoing: Outgoing | None = None) -> ClientTransaction:
        """Send ``request`` along the session's dialog; its answers come back to the session with ``outgoing``."""
        ...

    def send_cancel(self, session: Session, cancel: Request, destination: Destination, now: float) -> None:
        ...

    def send_orphan(self, request: Request, dialog: Dialog, now: float) -> None:
        ...

    def send_ack(self, dialog: Dialog, ack: Request) -> tuple[bytes, Destination]:
        ...

    def send_response(self, tx: ServerTransaction, response: Response, now: float) -> None:
        ...

    def send_stateless(self, message: Request | Response, destination: Destination) -> bytes:
        ...

    def send_again(self, data: bytes, destination: Destination) -> None:
        ...

    def abandon(self, tx: ClientTransaction) -> None:
        ...

    def retry_with_auth(self, session: Session, request: Request, response: Response, now: float,
                        outgoing: Outgoing | None = None) -> Request | None:
        """The request sent again with credentials for the challenge in ``response``; None to give up."""
        ...

    def retry_with_headers(self, session: Session, request: Request, headers: list[tuple[str, str]],
                           now: float) -> Request:
        """The request sent again with ``headers`` replacing its fields of those names (a 422's Min-SE)."""
        ...

    def dialog_added(self, session: Session) -> None:
        """The session's dialog exists now (in-dialog requests and ACKs find the session by it)."""
        ...

    def dialog_removed(self, session: Session) -> None:
        ...

    def session_ended(self, session: Session) -> None:
        ...


__all__ = ["Outgoing", "SessionHost"]
