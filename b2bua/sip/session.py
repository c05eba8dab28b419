"""One INVITE session: the dialog an INVITE creates, on either side, and its in-dialog traffic.

A :class:`Session` does what RFC 3261 leaves to the UA core for INVITE usages: early and confirmed
dialogs (section 12), the ACK for a 2xx and its retransmission (13.2.2.4), the 2xx retransmitted until
the ACK comes and the BYE when it never does (13.3.1.4), 487 after CANCEL (9.2), re-INVITE glare with
491 and the retry delays of section 14.1, the ACK and BYE of an extra forked 2xx (13.2.2.4), and
481/408 ending the dialog (12.2.1.2). The application sees :mod:`.ua_events` and calls the methods
here; every method takes ``now``. Nothing here touches a socket or a clock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from ..errors import ParseError, RecordError, SessionError
from .address import Destination
from .dialog import Dialog, DialogState, build_cancel
from .identity_enum import IdentityEnum
from .message import Request, Response
from .parser import parse_message
from .session_host import Outgoing, SessionHost
from .session_timer import uac_on_422
from .transaction_client import ClientTransaction
from .transaction_server import ServerTransaction
from .ua_events import (
    CallAcked,
    CallAnswered,
    CallCancelled,
    CallEnded,
    CallFailed,
    CallProgress,
    DialogRequest,
    DialogRequestFailed,
    DialogResponse,
)
from .uas import make_response

logger = logging.getLogger("call_api.sip.session")

Headers = Iterable[tuple[str, str]]


class Role(IdentityEnum):
    UAC = "uac"
    UAS = "uas"


class SessionState(IdentityEnum):
    """Where an INVITE session stands; the allowed moves are :data:`TRANSITIONS`."""

    CALLING = "calling"  # UAC: INVITE sent, nothing back yet
    RINGING = "ringing"  # UAC: a provisional came; UAS: the INVITE arrived, not answered finally
    ANSWERED = "answered"  # UAS: 2xx sent, waiting for the ACK
    CONFIRMED = "confirmed"  # both sides: the dialog is up
    ENDING = "ending"  # our BYE or CANCEL is out
    ENDED = "ended"


_S = SessionState
#: RFC 3261 sections 13-15 as a table: the states a session may move to from each state. ENDING -> CONFIRMED
#: is the 2xx that crosses our CANCEL: the dialog is established all the same, and is ACKed, then BYEd at
#: once, back to ENDING (sections 9.1 and 15).
TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    _S.CALLING: frozenset({_S.RINGING, _S.CONFIRMED, _S.ENDING, _S.ENDED}),
    _S.RINGING: frozenset({_S.ANSWERED, _S.CONFIRMED, _S.ENDING, _S.ENDED}),
    _S.ANSWERED: frozenset({_S.CONFIRMED, _S.ENDING, _S.ENDED}),
    _S.CONFIRMED: frozenset({_S.ENDING, _S.ENDED}),
    _S.ENDING: frozenset({_S.CONFIRMED, _S.ENDED}),
    _S.ENDED: frozenset(),
}


#: The headers of its INVITE a confirmed session keeps (the Via for the transaction's ACK matching).
_KEPT_HEADERS = frozenset({"via", "call-id", "from", "to", "cseq"})
#: The transports a kept session may name.
_TRANSPORTS = ("udp", "tcp", "tls")
#: Ours also keeps what an ACK to the 2xx of a fork arriving late copies (section 13.2.2.4).
_KEPT_HEADERS_UAC = _KEPT_HEADERS | {"authorization", "proxy-authorization"}


class _Retransmit:
    """A 2xx to an INVITE retransmitted until its ACK (RFC 3261 section 13.3.1.4)."""

    __slots__ = ("cseq", "give_up", "interval", "response", "transaction")

    def __init__(self, transaction: ServerTransaction, response: Response, interval: float, give_up: float) -> None:
        self.transaction = transaction
        self.response = response
        self.cseq = response.cseq.number if response.cseq else 0
        self.interval = interval
        self.give_up = give_up


class Session:
    """An INVITE dialog usage seen from the service: ``role`` says who sent the INVITE."""

    __slots__ = ("__weakref__", "_acks", "_bye_after_ack", "_cancel_wanted", "_final_sent",
                 "_provisional_seen", "_retransmits", "_transport_name", "call_id", "dialog", "held_ack", "host",
                 "invite", "invite_tx", "local_tag", "owner", "pending_reinvite", "pending_remote_invite", "role",
                 "state")

    def __init__(self, host: SessionHost, role: Role, invite: Request, local_tag: str, *,
                 restored: tuple[Dialog, str] | None = None) -> None:
        #: The UA core: all the session uses of it is :class:`~.session_host.SessionHost`.
        self.host = host
        self.role = role
        #: The INVITE that started it (ours after digest retries: the latest one).
        self.invite = invite
        self.call_id = invite.call_id or ""
        self.local_tag = local_tag
        self.state = SessionState.CALLING if role is Role.UAC else SessionState.RINGING
        self.dialog: Dialog | None = None
        #: Free for the application (the B2BUA keeps its leg here).
        self.owner: object = None
        self.invite_tx: ClientTransaction | ServerTransaction | None = None
        #: The transport of the INVITE transaction, kept when :meth:`on_invite_transaction_ended` lets it go.
        self._transport_name = "udp"
        self._final_sent = False
        self._cancel_wanted = False
        self._provisional_seen = False
        #: end() came while our 2xx waited for its ACK: the BYE goes out when the ACK comes (section 15).
        self._bye_after_ack = False
        self._retransmits: list[_Retransmit] = []
        #: The ACK sent for the 2xx to each of our INVITEs, by CSeq: the datagram and where it went, to
        #: send again as it was for a retransmitted 2xx (section 13.2.2.4).
        self._acks: dict[int, tuple[bytes, Destination]] = {}
        #: The 2xx whose ACK waits for the application's answer (late offer, :meth:`ack`), with its INVITE.
        self.held_ack: tuple[Request, Response] | None = None
        #: Our re-INVITE waiting for its final response (glare, section 14.1).
        self.pending_reinvite: Request | None = None
        #: The peer's re-INVITE waiting for our answer.
        self.pending_remote_invite: ServerTransaction | None = None
        if restored is not None:
            # Born confirmed (:meth:`from_record`): the transitions that led here happened before a restart;
            # the table starts at CALLING or RINGING only for a session whose INVITE is in flight.
            self.dialog, self._transport_name = restored
            self.state = SessionState.CONFIRMED
            self._final_sent = True  # its INVITE was answered

    def __repr__(self) -> str:
        return f"<Session {self.role.value} {self.call_id} {self.state.value}>"

    @property
    def ended(self) -> bool:
        return self.state is SessionState.ENDED

    @property
    def confirmed(self) -> bool:
        return self.state is SessionState.CONFIRMED

    # -- keeping across a restart --------------------------------------------------------------------------

    def to_record(self) -> dict[str, object]:
        """What a confirmed session needs to go on after a restart, as JSON-ready values: its dialog, the
        (shed) INVITE that made it and the transport. Raises :class:`SessionError` unless confirmed: a
        session still being set up has transactions in flight, which no record can carry."""
        if self.state is not SessionState.CONFIRMED or self.dialog is None:
            raise SessionError(f"{self!r} is not confirmed: only confirmed sessions are kept")
        return {
            "role": self.role.value, "local_tag": self.local_tag, "transport": self._transport(),
            "invite": self.invite.serialize().decode("utf-8", "surrogateescape"), "dialog": self.dialog.to_record(),
        }

    @classmethod
    def from_record(cls, host: SessionHost, record: Mapping[str, object], *, cseq_jump: int) -> Session:
        """The confirmed session :meth:`to_record` kept, for ``host`` to index (``UserAgent.restore``).
        Raises :class:`RecordError` when the record cannot be a session's."""
        if not isinstance(record, Mapping):
            raise RecordError("session record is not a mapping")
        dialog_record = record.get("dialog")
        if not isinstance(dialog_record, Mapping):
            raise RecordError("session record has no dialog")
        dialog = Dialog.from_record(dialog_record, cseq_jump=cseq_jump)
        role, tag, transport, invite_text = (record.get(name) for name in ("role", "local_tag", "transport", "invite"))
        if role not in (Role.UAC.value, Role.UAS.value) or not isinstance(tag, str) or transport not in _TRANSPORTS:
            raise RecordError(f"session record: role {role!r}, local tag {tag!r}, transport {transport!r}")
        if not isinstance(invite_text, str):
            raise RecordError("session record has no INVITE")
        try:
            invite = parse_message(invite_text.encode("utf-8", "surrogateescape"))
        except ParseError as exc:
            raise RecordError(f"session record: its INVITE does not parse ({exc})") from exc
        if not isinstance(invite, Request) or invite.call_id != dialog.id.call_id:
            raise RecordError("session record: its INVITE is not the dialog's")
        return cls(host, Role.UAC if role == Role.UAC.value else Role.UAS, invite, tag,
                   restored=(dialog, str(transport)))

    def _move(self, state: SessionState) -> None:
        if state is self.state:
            return
        if state not in TRANSITIONS[self.state]:
            raise SessionError(f"{self!r} cannot move to {state.value}")
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("session %s %s -> %s", self.call_id, self.state.value, state.value)
        self.state = state
        if state is SessionState.ENDED:
            self._retransmits.clear()
            self.held_ack = None
            self.host.session_ended(self)

    def _confirmed(self, now: float) -> None:
        self._move(SessionState.CONFIRMED)
        self.invite.shed(_KEPT_HEADERS if self.role is Role.UAS else _KEPT_HEADERS_UAC)

    def on_invite_transaction_ended(self, tx: ClientTransaction | ServerTransaction) -> None:
        """What a held call keeps. At confirmation the INVITE is shed in place (:meth:`Message.shed`: its
        transaction, this session and the UA share the one object) down to the headers that name the
        session and its transaction (and, for ours, what an ACK to a fork's late 2xx copies, section
        13.2.2.4); nothing reads the rest once the session is confirmed (the B2BUA reads an incoming
        INVITE when it arrives, digest retries and CANCEL happen before the final response). When the
        INVITE transaction is over (64*T1 after the 2xx, Timers L and M of RFC 6026) this lets go of it
        and of the ACK kept for retransmitted 2xx: a 2xx arriving later is a stray response, which the
        transport layer discards (RFC 6026 section 8.4); one from another fork is still ACKed and ended.
        16.9 KB -> 6.7 KB of Python objects per held call, most of it at once."""
        if tx is not self.invite_tx:
            return
        self._transport_name = self._transport()
        self.invite_tx = None
        cseq = self.invite.cseq
        if cseq is not None and self._acks.pop(cseq.number, None) is not None:
            self._acks = dict(self._acks)  # a dict keeps its size when emptied

    def respond(
        self, status: int, now: float, *, reason: str | None = None, body: bytes = b"",
        content_type: str | None = None, headers: Headers = (),
    ) -> None:
        """Answer the INVITE that started this session (UAS): 1xx, 2xx (retransmitted until ACK) or a failure."""
        tx = self.invite_tx
        if self.role is not Role.UAS or not isinstance(tx, ServerTransaction):
            raise SessionError("respond() is for the INVITE this session received")
        if self._final_sent:
            raise SessionError("the INVITE already has a final response")
        response = self._response(self.invite, status, reason, body, content_type, headers)
        if 100 < status < 300 and self.dialog is None:
            self.dialog = Dialog.from_uas(self.invite, self.local_tag, self._contact(), tls=self._tls())
            self.host.dialog_added(self)
        if status >= 200:
            self._final_sent = True
        self.host.send_response(tx, response, now)
        if 200 <= status < 300:
            assert self.dialog is not None
            self.dialog.confirm(response)
            self._start_retransmit(tx, response, now)
            self._move(SessionState.ANSWERED)
        elif status >= 300:
            self._move(SessionState.ENDED)

    def reply(
        self, transaction: ServerTransaction, status: int, now: float, *, reason: str | None = None,
        body: bytes = b"", content_type: str | None = None, headers: Headers = (),
    ) -> None:
        """Answer a request the peer sent inside the dialog (see :class:`DialogRequest`).

        A transaction that already has its final response (the peer cancelled its re-INVITE and got 487,
        or the transaction ended) takes no other: the late answer is dropped, not raised, since the
        application could not have known.
        """
        request = transaction.request
        last = transaction.last_response
        if transaction.terminated or (last is not None and last.status >= 200):
            logger.debug("late %d to %s %s dropped: the transaction is answered", status, request.method,
                         self.call_id)
            return
        response = self._response(request, status, reason, body, content_type, headers)
        self.host.send_response(transaction, response, now)
        if request.method == "INVITE" and status >= 200:
            if self.pending_remote_invite is transaction:
                self.pending_remote_invite = None
            if status < 300:
                self._start_retransmit(transaction, response, now)

    def _response(
        self, request: Request, status: int, reason: str | None, body: bytes, content_type: str | None,
        headers: Headers,
    ) -> Response:
        extra = list(headers)
        if request.method in ("INVITE", "UPDATE", "SUBSCRIBE", "REFER") and 100 < status < 300:
            extra.append(("Contact", self._contact()))
        if request.method in ("INVITE", "SUBSCRIBE", "REFER") and 100 < status < 300 and request.to_tag is None:
            # Section 12.1.1: a response that establishes a dialog copies the Record-Route values.
            extra = [("Record-Route", value) for value in request.headers.get_all("record-route")] + extra
        if body:
            extra.append(("Content-Type", content_type or "application/sdp"))
        extra.extend(self.host.identity_headers(request.method, status))
        return make_response(request, status, reason, to_tag=self.local_tag, headers=extra, body=body)

    def _tls(self) -> bool:
        return self._transport() == "tls"

    def _contact(self) -> str:
        """Our Contact for this session: ``sips:`` when it is secure, a ``sips:`` INVITE over TLS (RFC 3261
        sections 12.1.1, 12.1.2; RFC 5630)."""
        tls = self._tls()
        return self.host.contact_for(self._transport(), tls and self.invite.uri[:5].lower() == "sips:")

    def _transport(self) -> str:
        tx = self.invite_tx
        if isinstance(tx, ServerTransaction):
            return tx.source.transport
        if isinstance(tx, ClientTransaction):
            return tx.destination.transport
        return self._transport_name

    def _start_retransmit(self, tx: ServerTransaction, response: Response, now: float) -> None:
        timers = self.host.timers
        entry = _Retransmit(tx, response, timers.T1, now + 64 * timers.T1)
        self._retransmits.append(entry)
        self.host.schedule(now + timers.T1, lambda at: self._retransmit(entry, at))

    def _retransmit(self, entry: _Retransmit, now: float) -> None:
        if entry not in self._retransmits:
            return
        if now >= entry.give_up:
            self._retransmits.remove(entry)
            logger.info("no ACK for the 2xx of %s after %.1f s: ending the session", self.call_id,
                        64 * self.host.timers.T1)
            self.host.emit(CallEnded(self, "no ACK", by_remote=True))
            self._send_bye(now)
            self._move(SessionState.ENDED)  # reported once: the BYE's answer adds nothing
            return
        tx = entry.transaction
        if tx.terminated:
            self.host.send_stateless(entry.response, tx.source)
        else:
            self.host.send_response(tx, entry.response, now)
        entry.interval = min(2 * entry.interval, self.host.timers.T2)
        self.host.schedule(now + entry.interval, lambda at: self._retransmit(entry, at))

    # -- the application's side: both roles --------------------------------------------------------

    def request(
        self, method: str, now: float, *, body: bytes = b"", content_type: str | None = None,
        headers: Headers = (),
    ) -> Outgoing:
        """Send ``method`` inside the dialog; responses come as :class:`DialogResponse` with the handle
        returned here (the same handle after a 491 or digest retry)."""
        return self._request(method, now, body, content_type, headers, None)

    def _request(self, method: str, now: float, body: bytes, content_type: str | None, headers: Headers,
                 outgoing: Outgoing | None) -> Outgoing:
        dialog = self.dialog
        if dialog is None or dialog.state is DialogState.TERMINATED or self.state is SessionState.ENDED:
            raise SessionError(f"no dialog to send {method} in")
        if method == "INVITE":
            if self.pending_reinvite is not None or self.pending_remote_invite is not None:
                raise SessionError("an INVITE transaction is already pending in this dialog")
            if self.state is not SessionState.CONFIRMED:
                raise SessionError("re-INVITE needs a confirmed dialog")
        request = self.host.build_in_dialog(dialog, method, self._transport(), body, content_type, headers)
        if outgoing is None:
            outgoing = Outgoing(request)
        else:
            outgoing.request = request
        if method == "INVITE":
            self.pending_reinvite = request
        tx = self.host.send_in_dialog(self, request, now, outgoing)
        if method == "INVITE":
            handle = outgoing
            self.host.schedule(now + 64 * self.host.timers.T1, lambda at: self._reinvite_overdue(tx, handle, at))
        return outgoing

    def _reinvite_overdue(self, tx: ClientTransaction, outgoing: Outgoing, now: float) -> None:
        """Our re-INVITE got a provisional but no final response for 64*T1: CANCEL it (section 9.1), and
        give up on it 64*T1 after that (the peer's 487 normally ends it first)."""
        if tx.terminated or self.pending_reinvite is not tx.request or self.ended:
            return
        self.host.send_cancel(self, build_cancel(tx.request), tx.destination, now)
        self.host.schedule(now + 64 * self.host.timers.T1, lambda at: self._reinvite_abandoned(tx, outgoing))

    def _reinvite_abandoned(self, tx: ClientTransaction, outgoing: Outgoing) -> None:
        if tx.terminated or self.pending_reinvite is not tx.request or self.ended:
            return
        self.host.abandon(tx)
        self.on_dialog_timeout(tx.request, "no final response to the re-INVITE, even after CANCEL", outgoing)

    def end(self, now: float, *, status: int = 487) -> None:
        """Hang up whatever the state: BYE a dialog, CANCEL our pending INVITE, refuse theirs with ``status``."""
        state = self.state
        if state in (SessionState.ENDING, SessionState.ENDED):
            return
        if self.role is Role.UAS and not self._final_sent:
            self.respond(status, now)
            return
        if self.role is Role.UAC and state in (SessionState.CALLING, SessionState.RINGING):
            self._cancel_wanted = True
            self._move(SessionState.ENDING)
            if self._provisional_seen:
                self._send_cancel(now)
            return
        self._move(SessionState.ENDING)
        if state is SessionState.ANSWERED:
            # Section 15: the callee must not send BYE before the ACK for its 2xx arrives (or it gives up).
            self._bye_after_ack = True
            return
        # A 2xx still waiting for the answer is ACKed without one before the BYE: the peer stops
        # retransmitting it, and the BYE ends the dialog the offer was for (what OpenSIPS's B2B does too).
        self.ack(now)
        self._send_bye(now)

    def _send_bye(self, now: float) -> None:
        dialog = self.dialog
        if dialog is None:
            self._move(SessionState.ENDED)
            return
        request = self.host.build_in_dialog(dialog, "BYE", self._transport(), b"", None, ())
        if self.state is not SessionState.ENDING:
            self._move(SessionState.ENDING)
        self.host.send_in_dialog(self, request, now)

    def _send_cancel(self, now: float) -> None:
        tx = self.invite_tx
        if isinstance(tx, ClientTransaction) and not tx.terminated:
            self.host.send_cancel(self, build_cancel(tx.request), tx.destination, now)
            self.host.schedule(now + 64 * self.host.timers.T1, lambda at: self._cancel_unanswered(tx))

    def _cancel_unanswered(self, tx: ClientTransaction) -> None:
        """Section 9.1: 64*T1 after the CANCEL with still no final response, the INVITE is given up."""
        if self.ended or tx is not self.invite_tx or tx.terminated:
            return
        self.host.abandon(tx)
        self._move(SessionState.ENDED)
        self.host.emit(CallEnded(self, "no final response after CANCEL", by_remote=True))

    # -- what the UA core feeds in -------------------------------------------------------------------

    def on_invite_transaction(self, tx: ClientTransaction | ServerTransaction) -> None:
        """``tx`` carries this session's INVITE: the one received, or ours as the layer sent it (again
        after a digest challenge, RFC 3261 section 22.2, whose answers then come on the new one)."""
        self.invite = tx.request
        self.invite_tx = tx

    def on_reinvite_cancelled(self, tx: ServerTransaction) -> None:
        """The peer cancelled its re-INVITE on ``tx`` (the layer answered 487): no longer pending, so the
        dialog takes new ones (RFC 3261 sections 9.2, 14.2)."""
        if self.pending_remote_invite is tx:
            self.pending_remote_invite = None

    def on_invite_response(self, response: Response, now: float) -> None:
        """A response to the INVITE this session sent (initial or its digest retry)."""
        status = response.status
        if status < 200:
            if status > 100 and response.to_tag and self.dialog is None:
                self.dialog = Dialog.from_uac(self.invite, response, local_contact=self._contact(), tls=self._tls())
                self.host.dialog_added(self)
            if self._cancel_wanted:
                if not self._provisional_seen:
                    self._provisional_seen = True
                    self._send_cancel(now)
                return
            self._provisional_seen = True
            if status > 100:
                if self.state is SessionState.CALLING:
                    self._move(SessionState.RINGING)
                self.host.emit(CallProgress(self, response))
            return
        if 200 <= status < 300:
            self._on_invite_2xx(response, now)
            return
        if status in (401, 407) and not self._cancel_wanted and \
                self.host.retry_with_auth(self, self.invite, response, now) is not None:
            return
        if status == 422 and not self._cancel_wanted:
            retry = uac_on_422(response, self.invite)
            if retry is not None:
                # RFC 4028 section 7.4: the peer wants a longer interval; ask again once with its Min-SE.
                self.host.retry_with_headers(self, self.invite, retry, now)
                return
        if self.dialog is not None:
            self.host.dialog_removed(self)
            self.dialog = None
        cancelled = self._cancel_wanted
        self._move(SessionState.ENDED)
        if cancelled:
            self.host.emit(CallEnded(self, "cancelled", by_remote=False))
        else:
            self.host.emit(CallFailed(self, status, response.reason, response))

    def _on_invite_2xx(self, response: Response, now: float) -> None:
        dialog = self.dialog
        tag = response.to_tag or ""
        if dialog is not None and dialog.id.remote_tag == tag and dialog.state is DialogState.CONFIRMED:
            self._resend_ack(response)
            return
        if dialog is not None and dialog.state is DialogState.CONFIRMED:
            self._end_fork(response, now)
            return
        contact = self._contact()
        if dialog is None or dialog.id.remote_tag != tag:
            if dialog is not None:
                self.host.dialog_removed(self)
            dialog = self.dialog = Dialog.from_uac(self.invite, response, local_contact=contact, tls=self._tls())
            self.host.dialog_added(self)
        else:
            dialog.confirm(response)
        if self._cancel_wanted:
            self._send_ack(self.invite, response)
            self.host.emit(CallAnswered(self, response))
            self._move(SessionState.CONFIRMED)
            self._send_bye(now)
            return
        self._ack_or_hold(self.invite, response)
        self._confirmed(now)
        self.host.emit(CallAnswered(self, response))

    def _ack_or_hold(self, invite: Request, response: Response) -> None:
        """ACK a 2xx to our INVITE at once, unless the INVITE had no offer and the 2xx has one (late offer,
        RFC 3264 section 4 and RFC 3261 section 13.2.2.4): then the ACK must carry the answer, which only
        the application has, and it waits in :attr:`held_ack` for :meth:`ack`. A retransmission of that
        2xx meanwhile gets nothing (the peer keeps retransmitting until the ACK, section 13.3.1.4)."""
        if not invite.body and response.body:
            self.held_ack = (invite, response)
        else:
            self._send_ack(invite, response)

    def ack(self, now: float, *, body: bytes = b"", content_type: str | None = None) -> bool:
        """Send the ACK held for a late offer, with the answer in ``body``; False when none is held."""
        held = self.held_ack
        if held is None or self.dialog is None:
            return False
        self.held_ack = None
        self._send_ack(held[0], held[1], body, content_type)
        return True

    def _send_ack(self, invite: Request, response: Response, body: bytes = b"",
                  content_type: str | None = None) -> None:
        assert self.dialog is not None
        ack = self.dialog.ack_for(invite, response, self.host.ids.branch(), body=body, content_type=content_type)
        cseq = response.cseq
        sent = self.host.send_ack(self.dialog, ack)
        if cseq is not None:
            self._acks[cseq.number] = sent

    def _resend_ack(self, response: Response) -> None:
        cseq = response.cseq
        sent = self._acks.get(cseq.number) if cseq is not None else None
        if sent is not None:
            self.host.send_again(*sent)

    def _end_fork(self, response: Response, now: float) -> None:
        """Another fork answered after we confirmed one: ACK it, then BYE it (section 13.2.2.4)."""
        fork = Dialog.from_uac(self.invite, response, local_contact=self._contact(), tls=self._tls())
        ack = fork.ack_for(self.invite, response, self.host.ids.branch())
        self.host.send_ack(fork, ack)
        bye = self.host.build_in_dialog(fork, "BYE", self._transport(), b"", None, ())
        self.host.send_orphan(bye, fork, now)

    def on_stray_2xx(self, response: Response) -> None:
        """A 2xx retransmission after the INVITE transaction ended: send the same ACK again."""
        self._resend_ack(response)

    def on_invite_timeout(self, reason: str) -> None:
        if self.state is SessionState.ENDED:
            return
        status = 503 if "reach" in reason else 408
        self._move(SessionState.ENDED)
        if self._cancel_wanted:
            self.host.emit(CallEnded(self, "cancelled", by_remote=False))
        else:
            self.host.emit(CallFailed(self, status, reason))

    def on_cancel(self, cancel: Request, now: float) -> None:
        """The peer cancelled its INVITE (the layer answered the CANCEL): 487 unless already answered."""
        if self._final_sent:
            return
        self.respond(487, now)
        self.host.emit(CallCancelled(self, cancel))

    def on_ack(self, ack: Request, now: float) -> None:
        cseq = ack.cseq
        number = cseq.number if cseq is not None else -1
        for entry in list(self._retransmits):
            if entry.cseq == number:
                self._retransmits.remove(entry)
                # Our 2xx is not retransmitted any more; its transaction matches ACKs by its To tag.
                entry.response.shed(_KEPT_HEADERS)
                if self.state is SessionState.ANSWERED:
                    self._confirmed(now)
                self.host.emit(CallAcked(self, ack))
                if self._bye_after_ack:
                    self._bye_after_ack = False
                    self._send_bye(now)
                return

    def on_request(self, request: Request, tx: ServerTransaction, now: float) -> None:
        """A request inside the dialog (not ACK, not CANCEL)."""
        dialog = self.dialog
        assert dialog is not None
        refusal = dialog.check_remote_cseq(request)
        if refusal is not None:
            self.reply(tx, refusal, now)
            return
        method = request.method
        if method == "BYE":
            self.reply(tx, 200, now)
            if self.role is Role.UAS and not self._final_sent:
                self.respond(487, now)
            self._move(SessionState.ENDED)
            self.host.emit(CallEnded(self, "bye", by_remote=True, request=request))
            return
        if self.state is SessionState.ENDED:
            self.reply(tx, 481, now)
            return
        if method == "INVITE":
            if self.pending_reinvite is not None:
                self.reply(tx, 491, now)
                return
            if self.pending_remote_invite is not None or (self.role is Role.UAS and not self._final_sent):
                self.reply(tx, 500, now, headers=[("Retry-After", str(self.host.ids.retry_after()))])
                return
            self.pending_remote_invite = tx
        dialog.update_target(request)
        self.host.emit(DialogRequest(self, request, tx))

    def on_dialog_response(self, request: Request, response: Response, now: float,
                           outgoing: Outgoing | None = None) -> None:
        """A response to ``request``, which this session sent inside the dialog for ``outgoing`` (the
        application's handle; None for the session's own BYE)."""
        status = response.status
        method = request.method
        if status >= 200 and method == "INVITE":
            self.pending_reinvite = None
        if method == "BYE":
            if status >= 200:
                self._finish_bye(request, f"bye answered {status}")
            return
        if status in (401, 407):
            retry = self.host.retry_with_auth(self, request, response, now, outgoing)
            if retry is not None:
                if outgoing is not None:
                    outgoing.request = retry
                if method == "INVITE":
                    self.pending_reinvite = retry
                return
        if method == "INVITE" and status == 491:
            self.host.schedule(now + self.host.ids.glare_delay(self.role is Role.UAC),
                               lambda at: self._retry_reinvite(request, outgoing, at))
            return
        if method == "INVITE" and 200 <= status < 300 and self.dialog is not None:
            cseq = response.cseq
            number = cseq.number if cseq is not None else -1
            held_cseq = self.held_ack[1].cseq if self.held_ack is not None else None
            if number in self._acks or (held_cseq is not None and held_cseq.number == number):
                # A retransmission of a 2xx already handled (RFC 6026 passes them up): the same ACK again.
                self._resend_ack(response)
                return
            self.dialog.update_target(response)
            self._ack_or_hold(request, response)
        self.host.emit(DialogResponse(self, outgoing or Outgoing(request), response))
        if status in (481, 408) and self.state is not SessionState.ENDED:
            self._move(SessionState.ENDED)
            self.host.emit(CallEnded(self, f"{status} to {method}", by_remote=True))

    def _retry_reinvite(self, original: Request, outgoing: Outgoing | None, now: float) -> None:
        """Section 14.1: after a 491, try the same offer again (unless the dialog moved on)."""
        if self.state is not SessionState.CONFIRMED or self.pending_remote_invite is not None or \
                self.pending_reinvite is not None:
            self.host.emit(DialogResponse(self, outgoing or Outgoing(original), make_response(original, 491)))
            return
        content_type = original.headers.get("content-type")
        self._request("INVITE", now, original.body, content_type, (), outgoing)

    def on_dialog_timeout(self, request: Request, reason: str, outgoing: Outgoing | None = None) -> None:
        if request.method == "INVITE":
            self.pending_reinvite = None
        if request.method == "BYE":
            self._finish_bye(request, "bye timed out")
            return
        self.host.emit(DialogRequestFailed(self, outgoing or Outgoing(request), 408, reason))
        if self.state is not SessionState.ENDED:
            self._move(SessionState.ENDED)
            self.host.emit(CallEnded(self, f"{request.method} timed out", by_remote=True))

    def _finish_bye(self, request: Request, reason: str) -> None:
        if self.state is not SessionState.ENDED:
            self._move(SessionState.ENDED)
            self.host.emit(CallEnded(self, reason, by_remote=False, request=request))
