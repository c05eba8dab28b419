"""One leg of a bridged call: a SIP session plus what the B2BUA remembers about the SDP it exchanged.

The leg is the call logic's only way to its SIP session: a few commands (ring, answer, fail, reply,
send, ack, hang up, detach) and a few read-only facts (ended, confirmed, ringing, a held ACK, an INVITE
pending, the dialog's identity), in the spirit of sippy's ``UA.recvEvent(CCEvent...)``. The session's
events come the other way as :data:`~.events.LegEvent`. An INVITE no call has taken yet is an
:class:`Invitation`. ``tests/test_layering.py`` keeps every other module of the call package off
:class:`~b2bua.sip.session.Session`.

The B2BUA relays SDP untouched. When it sends a leg an SDP of its own making (hold, resume), that
leg has seen an ``o=`` version from us that the other party never sent, so from then on every SDP
relayed to that leg has its version shifted to stay above what the leg already saw (RFC 3264
section 8: each new offer's version is one more than the previous one). Only the version changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Final, Literal, get_args

from ..errors import ParseError, RecordError
from ..sip import sdp
from ..sip.address import Destination
from ..sip.dialog import DialogId
from ..sip.headers import parse_name_addr
from ..sip.message import Request
from ..sip.refer import ReferSubscription
from ..sip.session import Role, Session, SessionState
from ..sip.session_host import Outgoing
from ..sip.session_timer import Accept, Negotiated, SessionTimer
from ..sip.transaction_client import ClientTransaction
from ..sip.transaction_server import ServerTransaction
from ..sip.ua_events import DialogRequest, IncomingCall, UaEvent

if TYPE_CHECKING:
    from .call import Call

#: Which party of a call a leg is: the one called first (``caller``, the A-leg) or second (``callee``).
LegName = Literal["caller", "callee"]
#: Both, in the order a command on "both" acts on them.
LEG_NAMES: Final[tuple[LegName, ...]] = get_args(LegName)

Headers = Iterable[tuple[str, str]]


class Invitation:
    """An INVITE received (:class:`~b2bua.sip.ua_events.IncomingCall`) that no call has taken yet: the B2BUA
    reads it and may refuse it; :meth:`Call.add_leg` or :meth:`Call.replace_leg` makes it a leg. Until
    then its session's events reach no leg (a CANCEL meanwhile is answered 487 by the session)."""

    __slots__ = ("session",)

    def __init__(self, event: IncomingCall) -> None:
        self.session = event.session

    def __repr__(self) -> str:
        return f"<Invitation {self.session.call_id}>"

    @property
    def request(self) -> Request:
        """The INVITE."""
        return self.session.invite

    @property
    def call_id(self) -> str:
        return self.session.call_id

    @property
    def ended(self) -> bool:
        """The party gave up on it (CANCEL) or it was refused."""
        return self.session.ended

    def fail(self, status: int, now: float, *, reason: str | None = None, headers: Headers = ()) -> None:
        """Refuse the INVITE with ``status`` (300-699)."""
        self.session.respond(status, now, reason=reason, headers=headers)


def leg_of(event: UaEvent) -> Leg | None:
    """The leg a session event is about; None when its session is no leg's (an :class:`Invitation`, a
    replaced leg, a call that is over)."""
    owner = event.session.owner
    return owner if isinstance(owner, Leg) else None


def refuse(event: DialogRequest, status: int, now: float) -> None:
    """Answer a request in a dialog that is no leg's any more (481, RFC 3261 section 12.2.2)."""
    event.session.reply(event.transaction, status, now)


class Leg:
    """``caller`` (the A-leg, the phone that called or was called first) or ``callee`` (the B-leg)."""

    __slots__ = ("answers_to", "call", "held", "last_source", "name", "received_sdp", "refers", "sent_origin",
                 "sent_sdp", "sent_version", "session", "session_timer", "source_origin", "timer_answer",
                 "version_offset")

    def __init__(self, call: Call, name: LegName, session: Session | Invitation, *,
                 answers_to: Leg | None = None) -> None:
        self.call = call
        self.name: LegName = name
        if isinstance(session, Invitation):
            session = session.session
        #: The SIP session; nothing but this module reads it (a layering rule).
        self.session = session
        #: The session's events reach this leg from now on (:func:`leg_of`).
        session.owner = self
        #: The leg whose INVITE this leg's INVITE forwards (the callee's: the caller): the 1xx, 2xx or failure
        #: this leg gets is that leg's answer. None for a leg nobody waits on (the service's own INVITE, a
        #: leg that received its INVITE).
        self.answers_to = answers_to
        #: The last SDP this party sent us (offer or answer).
        self.received_sdp: bytes | None = None
        #: The last SDP we sent this party, and its ``o=`` version.
        self.sent_sdp: bytes | None = None
        self.sent_version: int | None = None
        #: Added to the version of SDP relayed to this party once we sent one of our own.
        self.version_offset = 0
        #: The o= username and session id this party knows (from the first SDP it got from us), the
        #: origin of the SDP we relay to it now, and that SDP as its author sent it.
        self.sent_origin: tuple[str, str] | None = None
        self.source_origin: tuple[str, str] | None = None
        self.last_source: bytes | None = None
        #: The service put this party on hold (CallHold) and has not resumed it.
        self.held = False
        #: Subscriptions of the REFERs the service sent this party: their NOTIFYs are the service's,
        #: never relayed to the other party, even after the transfer's command is over.
        self.refers: list[ReferSubscription] = []
        #: The leg's RFC 4028 session timer once negotiated (b2bua.call.supervision); None: the dialog has none.
        self.session_timer: SessionTimer | None = None
        #: For a leg that received its INVITE: how the service answers its session-timer request (the 2xx's
        #: Session-Expires and Require, and the timer it sets up), decided when the INVITE came.
        self.timer_answer: Accept | None = None

    def __repr__(self) -> str:
        return f"<Leg {self.name} {self.session.call_id} {self.session.state.value}>"

    @property
    def call_id(self) -> str:
        return self.session.call_id

    @property
    def other(self) -> Leg | None:
        return self.call.other(self)

    # -- facts about the session ---------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        return self.session.ended

    @property
    def confirmed(self) -> bool:
        """The dialog is up: the ACK of its INVITE's 2xx went or came, and no BYE yet."""
        return self.session.confirmed

    @property
    def ringing(self) -> bool:
        """The leg's INVITE has no final answer yet (ours got a provisional; theirs got none from us)."""
        return self.session.state is SessionState.RINGING

    @property
    def ack_held(self) -> bool:
        """A 2xx with a late offer waits for its ACK, which must carry the answer (:meth:`ack`)."""
        return self.session.held_ack is not None

    @property
    def invite_pending(self) -> bool:
        """An INVITE transaction is pending in the dialog, ours or the peer's (RFC 3261 section 14.1)."""
        session = self.session
        return session.pending_reinvite is not None or session.pending_remote_invite is not None

    @property
    def dialog_id(self) -> DialogId | None:
        """Call-ID and tags of the leg's dialog (local: the service's), None before there is one."""
        dialog = self.session.dialog
        return dialog.id if dialog is not None else None

    @property
    def remote_uri(self) -> str | None:
        """The party's name-addr as the dialog shows it (From or To, tag included), None without a dialog."""
        dialog = self.session.dialog
        return dialog.remote_uri if dialog is not None else None

    @property
    def next_hop(self) -> Destination | None:
        """Where the leg's INVITE came from (one it received) or went (one the service sent), while its
        transaction lives; None after (the live-state views keep the last one seen)."""
        tx = self.session.invite_tx
        if isinstance(tx, ServerTransaction):
            return tx.source
        if isinstance(tx, ClientTransaction):
            return tx.destination
        return None

    def parties(self) -> tuple[str, str, str, str]:
        """``(local URI, remote URI, remote target, dialog state)`` as the leg's dialog shows them, or before it
        exists its INVITE (From/To and the Request-URI or Contact); the state ``early``, ``confirmed`` or
        ``terminated`` (the live-state API's Leg object, docs/API.md)."""
        session = self.session
        dialog = session.dialog
        if dialog is not None:
            local, remote, target = dialog.local_uri, dialog.remote_uri, dialog.remote_target
        else:
            invite = session.invite
            sender, receiver = invite.headers.get("from") or "", invite.headers.get("to") or ""
            if session.role is Role.UAC:
                local, remote, target = sender, receiver, invite.uri
            else:
                local, remote, target = receiver, sender, _contact_uri(invite.headers.get("contact")) or ""
        state = "terminated" if session.ended else "confirmed" if session.confirmed else "early"
        return local, remote, target, state

    # -- commands -------------------------------------------------------------------------------------

    def ring(self, status: int, now: float, *, body: bytes = b"", content_type: str | None = None) -> None:
        """A provisional answer (1xx) to the INVITE this leg received."""
        self.session.respond(status, now, body=body, content_type=content_type)

    def answer(self, now: float, *, body: bytes = b"", content_type: str | None = None, headers: Headers = ()) -> None:
        """200 to the INVITE this leg received; the session retransmits it until the ACK."""
        self.session.respond(200, now, body=body, content_type=content_type, headers=headers)

    def fail(self, status: int, now: float, *, reason: str | None = None) -> None:
        """A final failure (300-699) to the INVITE this leg received: the leg is over."""
        self.session.respond(status, now, reason=reason)

    def reply(
        self, transaction: ServerTransaction, status: int, now: float, *, reason: str | None = None,
        body: bytes = b"", content_type: str | None = None, headers: Headers = (),
    ) -> None:
        """Answer a request the party sent in the dialog (:class:`~.events.LegRequest`); a late answer to a
        transaction already answered is dropped."""
        self.session.reply(transaction, status, now, reason=reason, body=body, content_type=content_type,
                           headers=headers)

    def send(
        self, method: str, now: float, *, body: bytes = b"", content_type: str | None = None,
        headers: Headers = (),
    ) -> Outgoing:
        """Send ``method`` in the dialog; its answers come as :class:`~.events.LegResponse` with the handle
        returned here. Raises :class:`~b2bua.errors.SessionError` when the dialog cannot take it."""
        return self.session.request(method, now, body=body, content_type=content_type, headers=headers)

    def ack(self, now: float, *, body: bytes = b"", content_type: str | None = None) -> bool:
        """Send the held ACK (:attr:`ack_held`) with the answer in ``body``; False when none is held."""
        return self.session.ack(now, body=body, content_type=content_type)

    def hang_up(self, now: float, *, status: int = 487) -> None:
        """End the leg whatever its state: BYE a dialog, CANCEL our INVITE, refuse theirs with ``status``."""
        self.session.end(now, status=status)

    def detach(self) -> None:
        """The session's events reach this leg no more (the leg was replaced, or its call is over)."""
        if self.session.owner is self:
            self.session.owner = None

    def remember_received(self, body: bytes, content_type: str | None, *, by_command: bool = False) -> None:
        """The party sent ``body``; ``by_command`` when it answers an offer of the service's own (CallHold)."""
        if body and _is_sdp(content_type):
            self.received_sdp = body
            self.call.changed()
            observer = self.call.observer
            if observer is not None:
                observer.sdp_received(self, by_command=by_command)

    def outgoing_sdp(self, body: bytes) -> bytes:
        """``body`` (SDP from the other party) as this leg must get it: relayed as is, unless the service
        already sent this leg an SDP of its own or one from another party; then the ``o=`` line keeps
        the origin this leg knows and the version goes on from the last one it saw."""
        return self._to_leg(body, own=False)

    def own_offer(self, body: bytes) -> bytes:
        """An SDP of our own making for this leg (hold, resume), built from the other party's SDP as that
        party sent it: the version goes one above the last one this leg saw, and later relays follow."""
        return self._to_leg(body, own=True)

    def _to_leg(self, body: bytes, *, own: bool) -> bytes:
        """Only the ``o=`` line is read: a relayed SDP is the parties' business, and one that cannot be
        rewritten (its ``o=`` line, or the rest where the version must move) goes as is and changes
        nothing here (our own offers were built from a parsed SDP and must parse). The leg's memory is
        written only once the body is made, so a body that fails leaves it as it was (issue 17)."""
        try:
            origin = sdp.parse(body).origin if own else sdp.origin_of(body)
        except ParseError:
            if own:
                raise
            return body
        source = (origin.username, origin.sess_id)
        version = origin.sess_version
        sent_origin = self.sent_origin or source
        source_origin = self.source_origin or source
        offset = self.version_offset
        if source != source_origin:
            # Another party's SDP from now on (transfer, Replaces): continue this leg's session.
            source_origin = source
            offset = (self.sent_version or 0) + 1 - version
        wanted = version + offset
        if self.sent_version is not None and wanted <= self.sent_version and (own or body != self.last_source):
            wanted = self.sent_version + 1
            offset = wanted - version
        try:
            if source != sent_origin:
                out = sdp.set_origin(body, sent_origin[0], sent_origin[1], wanted)
            elif wanted != version:
                out = sdp.bump_version(body, wanted)
            else:
                out = body
        except ParseError:
            if own:
                raise
            return body
        self.sent_origin, self.source_origin, self.version_offset = sent_origin, source_origin, offset
        self.last_source = body
        self.sent_sdp = out
        self.sent_version = wanted
        self.call.changed()
        return out

    # -- keeping across a restart (b2bua.call.record) -----------------------------------------------------

    def to_record(self) -> dict[str, object]:
        """The leg as JSON-ready values (b2bua.call.record): its confirmed session (raises
        :class:`~b2bua.errors.SessionError` when it is not), whose answer it carries, its SDP memory."""
        return {
            "session": self.session.to_record(),
            "answers_to": self.answers_to.name if self.answers_to is not None else None,
            "sdp": self.sdp_record(),
            "refers": [sub.to_record() for sub in self.refers if not sub.terminated],
            "timer": self.session_timer.negotiated.to_record() if self.session_timer is not None else None,
        }

    def restore_timer(self, record: object, now: float) -> None:
        """Take back the session timer :meth:`to_record` kept (None or absent: none), counted from ``now``: the
        refreshes missed while the service was down are the peer's to retry (RFC 4028 section 10)."""
        negotiated = Negotiated.from_record(record)
        self.session_timer = SessionTimer(negotiated, now) if negotiated is not None else None

    def sdp_record(self) -> dict[str, object]:
        """The leg's SDP memory as JSON-ready values, for :meth:`restore_sdp` after a restart."""
        return {
            "received": _text(self.received_sdp), "sent": _text(self.sent_sdp), "sent_version": self.sent_version,
            "offset": self.version_offset, "sent_origin": _pair(self.sent_origin),
            "source_origin": _pair(self.source_origin), "last_source": _text(self.last_source), "held": self.held,
        }

    def restore_refers(self, records: object) -> None:
        """Take back the REFER subscriptions :meth:`to_record` kept (none in a record without them); raises
        :class:`RecordError` when one is not a subscription's record."""
        if not isinstance(records, list):
            raise RecordError(f"{self!r}: REFER subscriptions {records!r}")
        self.refers = [ReferSubscription.from_record(record) for record in records]

    def restore_sdp(self, record: object) -> None:
        """Take back the SDP memory :meth:`sdp_record` kept; raises :class:`RecordError` (the leg unchanged)
        when the record is not one."""
        if not isinstance(record, Mapping):
            raise RecordError(f"{self!r}: no SDP memory in the record")
        version, offset, held = record.get("sent_version"), record.get("offset"), record.get("held")
        if (version is not None and not _is_int(version)) or not _is_int(offset) or not isinstance(held, bool):
            raise RecordError(f"{self!r}: SDP memory with version {version!r}, offset {offset!r}, held {held!r}")
        assert isinstance(offset, int) and (version is None or isinstance(version, int))
        received, sent, last_source = (_bytes(record, name) for name in ("received", "sent", "last_source"))
        sent_origin, source_origin = _origin(record, "sent_origin"), _origin(record, "source_origin")
        self.received_sdp, self.sent_sdp, self.last_source = received, sent, last_source
        self.sent_version, self.version_offset, self.held = version, offset, held
        self.sent_origin, self.source_origin = sent_origin, source_origin


def _text(body: bytes | None) -> str | None:
    return None if body is None else body.decode("utf-8", "surrogateescape")


def _pair(origin: tuple[str, str] | None) -> list[str] | None:
    return None if origin is None else list(origin)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bytes(record: Mapping[str, object], name: str) -> bytes | None:
    value = record.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordError(f"SDP memory: {name!r} is {value!r}")
    return value.encode("utf-8", "surrogateescape")


def _origin(record: Mapping[str, object], name: str) -> tuple[str, str] | None:
    value = record.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 2 or not all(isinstance(part, str) for part in value):
        raise RecordError(f"SDP memory: {name!r} is {value!r}")
    return value[0], value[1]


def _contact_uri(value: str | None) -> str | None:
    """The URI of the first Contact of ``value``, None when absent or unreadable."""
    if value is None:
        return None
    try:
        return parse_name_addr(value.split(",", 1)[0]).uri_text
    except ParseError:
        return None


def _is_sdp(content_type: str | None) -> bool:
    return content_type is not None and content_type.split(";", 1)[0].strip().lower() == "application/sdp"
