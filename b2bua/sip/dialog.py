"""SIP dialogs: their state, and the requests sent inside them (RFC 3261 section 12).

A :class:`Dialog` holds what section 12 says a dialog is (the dialog ID, local and remote sequence numbers,
local and remote URIs, remote target, route set and secure flag) and builds in-dialog requests from it:
section 12.2.1.1 for the To/From/Call-ID/CSeq and the loose or strict routing of the Request-URI and Route,
section 13.2.2.4 for the ACK of a 2xx. :func:`build_cancel` (section 9.1) builds the request that copies an
INVITE instead of using a dialog (the ACK of a 300-699 is the client transaction's:
:func:`~b2bua.sip.transaction_client.build_ack`).

Nothing here draws random numbers: branches, tags and initial CSeq numbers are passed in by the caller.
Misusing the API raises :class:`ValueError`; a malformed Contact from the network raises the message
layer's :class:`~b2bua.errors.ParseError`, which carries the status to answer with.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import ParseError, RecordError
from .grammar import split_commas
from .headers import MAGIC_COOKIE, MAX_CSEQ, NameAddr, parse_name_addr
from .identity_enum import IdentityEnum
from .message import Headers, Message, Request, Response
from .uri import SipUri, Uri, host_reference, parse_uri

logger = logging.getLogger("call_api.sip.dialog")

#: Max-Forwards of every request built here (RFC 3261 section 8.1.1.6).
DEFAULT_MAX_FORWARDS = 70

#: Methods whose request (or 2xx) may carry a new remote target; requests of these methods carry our
#: Contact. RFC 3261 section 12.2 (re-INVITE), RFC 3311 (UPDATE), RFC 6665 (SUBSCRIBE, NOTIFY) and
#: REFER, as collected in RFC 5057 section 5.4.
TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})

#: Largest CSeq number a UA may start a sequence with (RFC 3261 section 8.1.1.5).
_MAX_INITIAL_CSEQ = 2**31 - 1


class Role(IdentityEnum):
    """Which side of the dialog-creating transaction we were on (RFC 3261 sections 12.1.1 and 12.1.2)."""

    UAC = "uac"
    UAS = "uas"


class DialogState(IdentityEnum):
    """RFC 3261 section 12: a dialog is early after a 1xx with a To tag, confirmed after a 2xx."""

    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


#: The allowed moves between :class:`DialogState` values (section 12.1, 12.3, 13.2.2.4).
TRANSITIONS: dict[DialogState, frozenset[DialogState]] = {
    DialogState.EARLY: frozenset({DialogState.CONFIRMED, DialogState.TERMINATED}),
    DialogState.CONFIRMED: frozenset({DialogState.TERMINATED}),
    DialogState.TERMINATED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class DialogId:
    """Call-ID, local tag and remote tag, from our point of view (RFC 3261 section 12).

    A peer that sends no tag (RFC 2543) has a null tag, kept here as ``""`` (sections 12.1.1, 12.1.2).
    """

    call_id: str
    local_tag: str
    remote_tag: str

    @classmethod
    def of_request(cls, request: Request) -> DialogId | None:
        """The ID of the dialog an incoming request belongs to: its To tag is ours (section 12.2.2)."""
        local = request.to_tag
        call_id = request.call_id
        if local is None or call_id is None:
            return None
        return cls(call_id, local, request.from_tag or "")

    @classmethod
    def of_response(cls, response: Response) -> DialogId | None:
        """The ID of the dialog a response to our request belongs to: its From tag is ours."""
        local = response.from_tag
        call_id = response.call_id
        if local is None or call_id is None:
            return None
        return cls(call_id, local, response.to_tag or "")


@dataclass(slots=True, eq=False)
class Dialog:
    """The state of one dialog (RFC 3261 section 12) and the requests built from it.

    Create one with :meth:`from_uac` or :meth:`from_uas`; keep it current with :meth:`confirm`,
    :meth:`update_target`, :meth:`check_remote_cseq` and :meth:`terminate`.
    """

    #: The side we took in the transaction that created the dialog.
    role: Role
    #: Call-ID, local tag, remote tag.
    id: DialogId
    state: DialogState
    #: Our From header value in requests we send, tag included (section 12.2.1.1).
    local_uri: str
    #: The To header value of requests we send: the peer's URI with its tag (section 12.2.1.1).
    remote_uri: str
    #: The URI text requests go to: the peer's Contact (sections 12.1.1, 12.1.2, 12.2).
    remote_target: str
    #: Our Contact header value, sent in target refresh requests.
    local_contact: str
    #: The CSeq number of the last request we sent in the dialog; ``None`` until we send one.
    local_seq: int | None = None
    #: The highest CSeq number the peer has used in the dialog; ``None`` until it sends a request.
    remote_seq: int | None = None
    #: Route header values in the order requests carry them: name-addr text as the proxies sent it.
    route_set: list[str] = field(default_factory=list)
    #: True when the dialog-creating request went over TLS to a SIPS Request-URI (section 12.1).
    secure: bool = False

    # -- keeping across a restart --------------------------------------------------------------------------

    def to_record(self) -> dict[str, object]:
        """Every fact of the dialog as JSON-ready values, for :meth:`from_record` after a restart."""
        return {
            "role": self.role.value, "call_id": self.id.call_id, "local_tag": self.id.local_tag,
            "remote_tag": self.id.remote_tag, "state": self.state.value, "local_uri": self.local_uri,
            "remote_uri": self.remote_uri, "remote_target": self.remote_target, "local_contact": self.local_contact,
            "local_seq": self.local_seq, "remote_seq": self.remote_seq, "route_set": list(self.route_set),
            "secure": self.secure,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, object], *, cseq_jump: int = 0) -> Dialog:
        """The dialog :meth:`to_record` kept, confirmed. ``cseq_jump`` moves our CSeq past any number sent
        after the record was written (RFC 3261 section 12.2.1.1: our CSeq must go on increasing; a gap is
        allowed). Raises :class:`RecordError` on a record that is not a confirmed dialog's."""
        fields = _RecordFields(record, "dialog")
        if fields.text("state") != DialogState.CONFIRMED.value:
            raise RecordError(f"dialog record in state {record.get('state')!r}: only confirmed dialogs are kept")
        local_seq = fields.optional_int("local_seq")
        if local_seq is not None or cseq_jump:  # with no request sent yet, the sequence would start at 1
            local_seq = min((local_seq or 0) + cseq_jump, MAX_CSEQ)
        role = fields.text("role")
        if role not in (Role.UAC.value, Role.UAS.value):
            raise RecordError(f"dialog record: 'role' is {role!r}")
        return cls(
            role=Role.UAC if role == Role.UAC.value else Role.UAS,
            id=DialogId(fields.text("call_id"), fields.text("local_tag"), fields.text("remote_tag")),
            state=DialogState.CONFIRMED,
            local_uri=fields.text("local_uri"),
            remote_uri=fields.text("remote_uri"),
            remote_target=fields.text("remote_target"),
            local_contact=fields.text("local_contact"),
            local_seq=local_seq,
            remote_seq=fields.optional_int("remote_seq"),
            route_set=fields.texts("route_set"),
            secure=fields.flag("secure"),
        )

    # -- creation -------------------------------------------------------------------------------------

    @classmethod
    def from_uac(
        cls, request: Request, response: Response, *, tls: bool = False, local_contact: str | None = None
    ) -> Dialog:
        """The dialog a 101-199 response with a To tag, or a 2xx, creates at the UAC (section 12.1.2).

        The route set is the response's Record-Route in reverse order; the remote target is its Contact.
        A response without a Contact (common in 18x) leaves the request's Request-URI as the target,
        until a 2xx or target refresh brings one. ``local_contact`` defaults to the request's Contact.
        """
        status = response.status
        if not 100 < status < 300:
            raise ValueError(f"a {status} response creates no dialog")
        remote_tag = response.to_tag
        if remote_tag is None:
            if status < 200:
                raise ValueError("a provisional response without a To tag creates no dialog")
            remote_tag = ""
        call_id = _required(request, "Call-ID")
        local_tag = request.from_tag
        if local_tag is None:
            raise ValueError("the request has no From tag")
        if response.call_id != call_id:
            raise ValueError("the response has another Call-ID than the request")
        cseq = request.cseq
        if cseq is None:
            raise ValueError("the request has no CSeq")
        if local_contact is None:
            contact = request.contact
            if contact is None:
                raise ValueError("the request has no Contact: pass local_contact")
            local_contact = str(contact)
        target = _contact_target(response)
        dialog = cls(
            role=Role.UAC,
            id=DialogId(call_id, local_tag, remote_tag),
            state=DialogState.CONFIRMED if status >= 200 else DialogState.EARLY,
            local_uri=_required(request, "From"),
            remote_uri=_required(response, "To"),
            remote_target=target if target is not None else request.uri,
            local_contact=local_contact,
            local_seq=cseq.number,
            route_set=_route_set(response, reverse=True),
            secure=tls and _is_sips(request.uri),
        )
        dialog._log("created", dialog.state)
        return dialog

    @classmethod
    def from_uas(cls, request: Request, local_tag: str, local_contact: str, *, tls: bool = False) -> Dialog:
        """The dialog our response to ``request`` creates at the UAS (section 12.1.1), in the early state.

        The route set is the request's Record-Route in order; the remote target is its Contact. Call
        :meth:`confirm` with the 2xx when it is sent. A request without a usable Contact raises
        :class:`ParseError` (status 400): section 8.1.1.8 requires one in a dialog-creating request.
        """
        call_id = _required(request, "Call-ID")
        to = request.to
        cseq = request.cseq
        if to is None or cseq is None:
            raise ValueError("the request has no To or CSeq")
        target = _contact_target(request)
        via = request.top_via
        if target is None and (via is None or not via.rfc3261):
            # RFC 2543 did not require a Contact; RFC 4475 section 3.4.1 asks an RFC 3261 element to accept
            # such an INVITE, and RFC 2543 sent later requests to the From URI: that is the target then.
            from_ = request.from_
            target = from_.uri_text if from_ is not None else None
        if target is None:
            raise ParseError("a dialog-creating request needs a Contact", 400, header="Contact")
        dialog = cls(
            role=Role.UAS,
            id=DialogId(call_id, local_tag, request.from_tag or ""),
            state=DialogState.EARLY,
            local_uri=str(to.with_tag(local_tag)),
            remote_uri=_required(request, "From"),
            remote_target=target,
            local_contact=local_contact,
            remote_seq=cseq.number,
            route_set=_route_set(request, reverse=False),
            secure=tls and _is_sips(request.uri),
        )
        dialog._log("created", dialog.state)
        return dialog

    # -- updates ----------------------------------------------------------------------------------------

    def confirm(self, response: Response) -> None:
        """Move an early dialog to confirmed on a 2xx (RFC 3261 section 13.2.2.4).

        At the UAC the route set is recomputed from the 2xx's Record-Route, as section 13.2.2.4 requires
        (its pointer to section 12.2.1.2 means the procedure of section 12.1.2), and the remote target is
        taken from the 2xx's Contact, the 2xx being the answer to a target refresh method (section
        12.2.1.2). Sequence numbers are kept. At the UAS ``response`` is the 2xx we send and only the
        state changes. A 2xx for an already confirmed dialog (a retransmission) changes nothing.
        """
        if not 200 <= response.status < 300:
            raise ValueError(f"only a 2xx confirms a dialog, not {response.status}")
        tag = self.id.remote_tag if self.role is Role.UAC else self.id.local_tag
        if response.call_id != self.id.call_id or (response.to_tag or "") != tag:
            raise ValueError("the 2xx belongs to another dialog")
        if self.state is DialogState.CONFIRMED:
            return
        self._move(DialogState.CONFIRMED)
        if self.role is Role.UAC:
            self.route_set = _route_set(response, reverse=True)
            target = _contact_target(response)
            if target is not None:
                self.remote_target = target

    def terminate(self) -> None:
        """End the dialog: a BYE sent or received, a non-2xx final answer to the creating INVITE of an
        early dialog (section 12.3), or a 481/408 to an in-dialog request (section 12.2.1.2)."""
        if self.state is not DialogState.TERMINATED:
            self._move(DialogState.TERMINATED)

    def update_target(self, message: Request | Response) -> bool:
        """Take the remote target from a target refresh request or its 2xx (sections 12.2.1.2, 12.2.2).

        Returns whether the remote target was replaced: a message without Contact, a method that is not
        a target refresh, or a non-2xx response leaves it alone. A malformed Contact raises
        :class:`ParseError`.
        """
        if isinstance(message, Request):
            method = message.method
        else:
            cseq = message.cseq
            if not 200 <= message.status < 300 or cseq is None:
                return False
            method = cseq.method
        if method not in TARGET_REFRESH_METHODS:
            return False
        target = _contact_target(message)
        if target is None:
            return False
        self.remote_target = target
        return True

    def check_remote_cseq(self, request: Request) -> int | None:
        """Apply section 12.2.2's CSeq rule to an incoming in-dialog request.

        Returns ``None`` when the request is in order (and records its number as the remote sequence
        number), or the status to answer with: 500 when the number is lower than the remote sequence
        number, 400 without a CSeq. ACK and CANCEL reuse their INVITE's number, so they are not checked.
        An equal number is accepted: retransmissions never get here, the transaction layer absorbs them,
        and section 12.2.2 rejects only a lower one.
        """
        if request.method in ("ACK", "CANCEL"):
            return None
        cseq = request.cseq
        if cseq is None:
            return 400
        if self.remote_seq is not None and cseq.number < self.remote_seq:
            return 500
        self.remote_seq = cseq.number
        return None

    def _move(self, new: DialogState) -> None:
        if new not in TRANSITIONS[self.state]:
            raise ValueError(f"dialog cannot go from {self.state.value} to {new.value}")
        old, self.state = self.state, new
        self._log(old.value, new)

    def _log(self, old: str, new: DialogState) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("dialog %s (%s): %s -> %s", self.id.call_id, self.role.value, old, new.value)

    # -- building requests ------------------------------------------------------------------------------

    def next_hop(self) -> str:
        """The URI a request of this dialog is sent to, for the transport layer to resolve (sections
        8.1.2, 18.1.1): the first route when the route set's first element is a loose router, the
        Request-URI otherwise (no route set, or a strict router in the Request-URI)."""
        uri, _, loose = self._routing()
        return parse_name_addr(self.route_set[0]).uri_text if loose else uri

    def new_request(
        self,
        method: str,
        *,
        branch: str,
        via_host: str,
        via_port: int,
        body: bytes = b"",
        content_type: str | None = None,
        extra_headers: Sequence[tuple[str, str]] = (),
        cseq: int | None = None,
        transport: str = "UDP",
        user_agent: str | None = None,
        max_forwards: int = DEFAULT_MAX_FORWARDS,
    ) -> Request:
        """A request inside the dialog (RFC 3261 section 12.2.1.1); its CSeq number becomes ``local_seq``.

        The CSeq number is ``local_seq + 1``, or ``cseq`` when given (it must then be higher than
        ``local_seq``). With neither (a UAS that has not sent a request yet) the sequence starts at 1, a
        valid initial value under section 8.1.1.5; pass ``cseq`` to start elsewhere. The dialog's state is
        not checked, so a BYE challenged with 401 can be sent again after :meth:`terminate`. ACK and
        CANCEL have their own builders, :meth:`ack_for` and :func:`build_cancel`.
        """
        if method in ("ACK", "CANCEL"):
            raise ValueError(f"build {method} with ack_for() or build_cancel()")
        number = self._next_cseq(cseq)
        uri, routes, _ = self._routing()
        via = _via(transport, via_host, via_port, branch)
        headers = self._base_headers(via, max_forwards, routes, f"{number} {method}")
        if method in TARGET_REFRESH_METHODS:
            headers.add("Contact", self.local_contact)
        if user_agent is not None:
            headers.add("User-Agent", user_agent)
        for name, value in extra_headers:
            headers.add(name, value)
        _add_body(headers, body, content_type)
        self.local_seq = number
        return Request(method, uri, headers, body)

    def ack_for(
        self, invite: Request, response: Response, branch: str, *, body: bytes = b"",
        content_type: str | None = None,
    ) -> Request:
        """The ACK for a 2xx to ``invite`` (RFC 3261 section 13.2.2.4).

        Built like any in-dialog request, with a new branch, except that the CSeq number is the
        INVITE's (with method ACK, ``local_seq`` unchanged) and the INVITE's Authorization and
        Proxy-Authorization are copied. The Via sent-by is the INVITE's. ``body`` carries an answer
        when the 2xx had the offer. For an early dialog call :meth:`confirm` first, so the ACK follows
        the route set of the 2xx.
        """
        if invite.method != "INVITE" or not 200 <= response.status < 300:
            raise ValueError("ack_for() acknowledges a 2xx to an INVITE")
        if self.state is DialogState.EARLY:
            raise ValueError("confirm() the dialog with the 2xx before acknowledging it")
        invite_cseq, response_cseq, via = invite.cseq, response.cseq, invite.top_via
        if invite_cseq is None or via is None:
            raise ValueError("the INVITE has no CSeq or Via")
        if response_cseq is None or response_cseq.number != invite_cseq.number:
            raise ValueError("the 2xx does not answer this INVITE")
        if (response.to_tag or "") != self.id.remote_tag or response.call_id != self.id.call_id:
            raise ValueError("the 2xx belongs to another dialog")
        uri, routes, _ = self._routing()
        new_via = _via(via.transport, via.host, via.port, branch)
        headers = self._base_headers(new_via, DEFAULT_MAX_FORWARDS, routes, f"{invite_cseq.number} ACK")
        for name in ("Authorization", "Proxy-Authorization"):
            for value in invite.headers.get_all(name):
                headers.add(name, value)
        _add_body(headers, body, content_type)
        return Request("ACK", uri, headers, body)

    def _next_cseq(self, cseq: int | None) -> int:
        last = self.local_seq
        if cseq is None:
            number = 1 if last is None else last + 1
        elif last is None:
            if not 0 <= cseq <= _MAX_INITIAL_CSEQ:
                raise ValueError(f"an initial CSeq must be below 2**31, not {cseq}")
            number = cseq
        elif cseq <= last:
            raise ValueError(f"CSeq {cseq} is not above the last one sent, {last}")
        else:
            number = cseq
        if number > MAX_CSEQ:
            raise ValueError("the dialog's CSeq numbers are used up")
        return number

    def _base_headers(self, via: str, max_forwards: int, routes: list[str], cseq: str) -> Headers:
        if not 0 <= max_forwards <= 255:
            raise ValueError(f"Max-Forwards must be 0..255, not {max_forwards}")
        return _headers(via, max_forwards, routes, self.local_uri, self.remote_uri, self.id.call_id, cseq)

    def _routing(self) -> tuple[str, list[str], bool]:
        """(Request-URI, Route values, first route is a loose router) per section 12.2.1.1."""
        if not self.route_set:
            return self.remote_target, [], False
        first = parse_name_addr(self.route_set[0]).uri
        if isinstance(first, SipUri) and first.lr:
            return self.remote_target, list(self.route_set), True
        return _request_uri_form(first), [*self.route_set[1:], f"<{self.remote_target}>"], False


# -- requests built from an INVITE rather than a dialog ---------------------------------------------------


def build_cancel(request: Request) -> Request:
    """The CANCEL of ``request`` (RFC 3261 section 9.1).

    Request-URI, Call-ID, From, To (tags included) and the CSeq number are the request's; the single
    Via is the request's top Via, so the CANCEL carries the same branch and matches its transaction;
    the Route values are copied. No body, and Max-Forwards 70.
    """
    if request.method in ("ACK", "CANCEL"):
        raise ValueError(f"a {request.method} cannot be cancelled")
    return _copy_of_invite(request, "CANCEL", _required(request, "To"))


def _copy_of_invite(request: Request, method: str, to: str) -> Request:
    cseq, via = request.cseq, request.top_via
    if cseq is None or via is None:
        raise ValueError("the request has no CSeq or Via")
    headers = _headers(
        str(via), DEFAULT_MAX_FORWARDS, request.headers.get_all("Route"), _required(request, "From"), to,
        _required(request, "Call-ID"), f"{cseq.number} {method}",
    )
    return Request(method, request.uri, headers)


# -- helpers -----------------------------------------------------------------------------------------------


def _headers(
    via: str, max_forwards: int, routes: list[str], from_: str, to: str, call_id: str, cseq: str
) -> Headers:
    """The headers every request starts with, in the order of the RFC 3261 examples (one Route per line)."""
    return Headers.of(
        ("Via", via),
        ("Max-Forwards", str(max_forwards)),
        *(("Route", route) for route in routes),
        ("From", from_),
        ("To", to),
        ("Call-ID", call_id),
        ("CSeq", cseq),
    )


def _required(message: Message, name: str) -> str:
    value = message.headers.get(name)
    if value is None:
        raise ValueError(f"the message has no {name}")
    return value


def _contact_target(message: Message) -> str | None:
    """The URI of the first Contact, checked to be a URI; ``None`` without one (``*`` counts as none)."""
    contact: NameAddr | None = message.contact
    if contact is None or contact.star:
        return None
    parse_uri(contact.uri_text)
    return contact.uri_text


def _route_set(message: Message, reverse: bool) -> list[str]:
    """The Record-Route values as sent, one per element, all parameters kept (sections 12.1.1, 12.1.2).

    Every element is parsed first, so a malformed one raises :class:`ParseError` here and not later.
    """
    for addr in message.record_routes:
        parse_uri(addr.uri_text)
    values = [item for value in message.headers.get_all("Record-Route") for item in split_commas(value)]
    return values[::-1] if reverse else values


def _is_sips(uri: str) -> bool:
    return uri[:5].lower() == "sips:"


def _request_uri_form(uri: Uri) -> str:
    """A route's URI as a Request-URI: without the ``method`` parameter and headers, which the table of
    RFC 3261 section 19.1.1 does not allow there."""
    if isinstance(uri, SipUri) and ("method" in uri.params or uri.headers):
        return str(uri.without_param("method").without_headers())
    return str(uri)


def _via(transport: str, host: str, port: int | None, branch: str) -> str:
    """A Via with our sent-by, ``branch`` and ``rport`` (RFC 3261 section 8.1.1.7, RFC 3581)."""
    if not branch.startswith(MAGIC_COOKIE) or len(branch) <= len(MAGIC_COOKIE):
        raise ValueError(f"a branch starts with {MAGIC_COOKIE} and has more after it: {branch!r}")
    host = host_reference(host)
    sent_by = host if port is None else f"{host}:{port}"
    return f"SIP/2.0/{transport.upper()} {sent_by};branch={branch};rport"


def _add_body(headers: Headers, body: bytes, content_type: str | None) -> None:
    if body and content_type is None:
        raise ValueError("a body needs a content_type (RFC 3261 section 7.4.1)")
    if content_type is not None:
        headers.add("Content-Type", content_type)


class _RecordFields:
    """Typed reads of a record's fields, each failure a :class:`RecordError` naming the field."""

    __slots__ = ("_record", "_what")

    def __init__(self, record: Mapping[str, object], what: str) -> None:
        if not isinstance(record, Mapping):
            raise RecordError(f"{what} record is not a mapping")
        self._record = record
        self._what = what

    def _get(self, name: str, kind: type | tuple[type, ...]) -> object:
        value = self._record.get(name)
        if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
            raise RecordError(f"{self._what} record: {name!r} is {value!r}")
        return value

    def text(self, name: str) -> str:
        value = self._get(name, str)
        assert isinstance(value, str)
        return value

    def optional_int(self, name: str) -> int | None:
        if self._record.get(name) is None:
            return None
        value = self._get(name, int)
        assert isinstance(value, int)
        if not 0 <= value <= MAX_CSEQ:
            raise RecordError(f"{self._what} record: {name!r} is {value!r}")
        return value

    def flag(self, name: str) -> bool:
        return bool(self._get(name, bool))

    def texts(self, name: str) -> list[str]:
        value = self._record.get(name)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise RecordError(f"{self._what} record: {name!r} is {value!r}")
        return list(value)
