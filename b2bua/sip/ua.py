"""The UA core: requests built per RFC 3261 section 8.1, routed (outbound proxy or Request-URI), sessions
dispatched, OPTIONS answered, untrusted callers refused, digest challenges answered.

:class:`UserAgent` sits on the :class:`~.layer.TransactionLayer` and speaks the shell's protocol
(``receive``, ``handle_timer``, ``get_timer``, ``take_datagrams``, ``transport_error``); the application
reads :meth:`UserAgent.take_events` (:mod:`.ua_events`) and drives :class:`~.session.Session` objects.
Randomness (branches, tags, Call-IDs, cnonces, glare delays) comes from an injected :class:`Ids`.
"""

from __future__ import annotations

import heapq
import ipaddress
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, assert_never

from ..errors import ParseError, SipError
from .address import Destination
from .auth import Credentials, DigestClient
from .dialog import Dialog, DialogId
from .events import (
    AckReceived,
    CancelReceived,
    LayerEvent,
    RequestReceived,
    ResponseReceived,
    StrayResponse,
    TransactionEnded,
    TransactionTimedOut,
)
from .layer import TransactionLayer
from .message import Field, Headers, Request, Response, header_key
from .session import Role, Session
from .session_host import Outgoing
from .timers import TimerSettings
from .transaction_client import ClientTransaction
from .transaction_server import InviteServerTransaction, ServerTransaction
from .ua_events import IncomingCall, UaEvent
from .uas import header_fields, make_response
from .uri import SipUri, host_reference, parse_uri

logger = logging.getLogger("call_api.sip.ua")

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Ids(Protocol):
    """The random values the UA core needs, injected so tests can fix them."""

    def branch(self) -> str:
        """A new Via branch, starting with the magic cookie ``z9hG4bK`` (RFC 3261 section 8.1.1.7)."""
        ...

    def tag(self) -> str:
        """A new From/To tag (section 19.3: at least 32 bits of randomness)."""
        ...

    def call_id(self) -> str:
        """A new, globally unique Call-ID (section 8.1.1.4)."""
        ...

    def cnonce(self) -> str:
        """A client nonce for digest authentication (RFC 7616 section 3.4)."""
        ...

    def glare_delay(self, owner: bool) -> float:
        """Section 14.1: 2.1-4 s for the Call-ID's owner (the UAC of the dialog), 0-2 s otherwise."""
        ...

    def retry_after(self) -> int:
        """Seconds for Retry-After on a 500 to an overlapping re-INVITE (section 14.2: 0-10)."""
        ...

    def stable_tag(self, seed: str) -> str:
        """A To tag that is the same for the same ``seed``, for stateless answers (section 8.2.7)."""
        ...


#: The option tags the UA core always supports: Replaces (RFC 3891) and norefersub (RFC 4488).
SUPPORTED = "replaces, norefersub"


def _join_tags(ours: str, added: Iterable[str]) -> str:
    """``ours`` and the tags in ``added`` as one Supported value, each tag once, in order."""
    tags: list[str] = []
    for value in (ours, *added):
        for tag in value.split(","):
            tag = tag.strip()
            if tag and tag.lower() not in (t.lower() for t in tags):
                tags.append(tag)
    return ", ".join(tags)


@dataclass(frozen=True, slots=True)
class UaSettings:
    """The UA core's identity and routing."""

    #: Host and port written in Via and Contact (the listening address, or an advertised one).
    host: str = "127.0.0.1"
    port: int = 5080
    #: The port of the TLS listener, written in Via and Contact of what goes over TLS; None: no TLS listener
    #: (an outgoing TLS connection is still possible, and its Via names ``port``, where nothing speaks TLS).
    tls_port: int | None = None
    #: The user part of our Contact and of the From of requests we originate.
    user: str = "call-api"
    display_name: str = "call-api"
    user_agent: str = "call-api"
    #: Every out-of-dialog request goes there with a pre-loaded Route (RFC 3261 section 8.1.2).
    outbound_proxy: SipUri | None = None
    #: Sources allowed to create calls; others get 403.
    trusted: tuple[IpNetwork, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    credentials: tuple[Credentials, ...] = ()
    #: The methods and extensions this UA advertises (Allow, Supported).
    allow: str = "INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, UPDATE, INFO"
    #: Option tags in Supported (section 20.37) of INVITEs, and of 2xx to INVITE and OPTIONS; the service adds
    #: ``timer`` when session timers are on (b2bua/service.py).
    supported: str = SUPPORTED
    accept: str = "application/sdp, message/sipfrag"


class Timer:
    """A callback scheduled with :meth:`UserAgent.schedule`; :meth:`cancel` drops it (and what it holds)."""

    __slots__ = ("callback",)

    def __init__(self, callback: Callable[[float], None]) -> None:
        self.callback: Callable[[float], None] | None = callback

    def cancel(self) -> None:
        self.callback = None


@dataclass(slots=True)
class _Owner:
    session: Session | None
    request: Request
    purpose: str  # "invite", "dialog", "cancel", "orphan"
    #: The application's handle of an in-dialog request ("dialog"), kept across its retries.
    outgoing: Outgoing | None = None


def destination_for(uri_text: str, *, secure: bool = False) -> Destination:
    """The next hop a URI names (RFC 3263 simplified, no NAPTR/SRV: transport param, maddr or host, port).

    TLS when the URI is ``sips:`` or says ``transport=tls``, and when ``secure``: the request's Request-URI
    is ``sips:``, which must travel over TLS on every hop (RFC 3261 section 26.2.2, RFC 5630), so a plain
    ``sip:`` proxy in the route set is reached over TLS too rather than the request being downgraded.
    ``transport=tcp`` in a ``sips:`` URI is TLS over that TCP; ``transport=udp`` cannot carry it and is
    refused. No port: 5061 for TLS, 5060 otherwise (RFC 3263 section 4.2).
    """
    uri = parse_uri(uri_text)
    if not isinstance(uri, SipUri):
        raise SipError(f"cannot route to {uri_text!r} without an outbound proxy")
    transport = uri.transport or "udp"
    if transport not in ("udp", "tcp", "tls"):
        raise SipError(f"unsupported transport {transport!r} in {uri_text!r}")
    if uri.secure or secure:
        if transport == "udp" and uri.transport is not None:
            raise SipError(f"a sips: request cannot go over UDP to {uri_text!r} (RFC 5630)")
        transport = "tls"
    host = uri.maddr or uri.host
    if host.startswith("["):
        host = host[1:-1]
    return Destination(transport, host, uri.port or (5061 if transport == "tls" else 5060))


#: How far a restored dialog's CSeq jumps past the kept one (RFC 3261 section 12.2.1.1 wants it to increase;
#: gaps are allowed): more than the requests the service sends on a call between two writes of its record.
CSEQ_JUMP = 1000

#: The headers of a 2xx that rebuild the INVITE it answers, for its ACK and BYE (_end_unknown_2xx).
_INVITE_KEYS = frozenset({"via", "from", "to", "call-id", "cseq"})

#: The fewest timers the heap holds before cancelled ones are swept out.
_SWEEP_MIN = 1024
#: Hosts whose trusted() verdict is remembered before the memory starts over.
_TRUSTED_SEEN_MAX = 1024


@dataclass(slots=True)
class UserAgent:
    """Sessions, routing and the transaction layer under them; the :class:`~.session_host.SessionHost` of
    its sessions."""

    ids: Ids
    settings: UaSettings = field(default_factory=UaSettings)
    timers: TimerSettings = field(default_factory=TimerSettings)
    layer: TransactionLayer = field(default_factory=TransactionLayer)
    _events: list[UaEvent] = field(default_factory=list)
    _dialogs: dict[DialogId, Session] = field(default_factory=dict)
    _by_call_id: dict[str, Session] = field(default_factory=dict)
    _by_server_tx: dict[ServerTransaction, Session] = field(default_factory=dict)
    _owners: dict[ClientTransaction, _Owner] = field(default_factory=dict)
    #: The digest client of each session that met a challenge (dropped when the session ends).
    _digest: dict[Session, DigestClient] = field(default_factory=dict)
    _heap: list[tuple[float, int, Timer]] = field(default_factory=list)
    _seq: int = 0
    _sweep_at: int = 1024
    #: The settings the extra header fields of the 200 to OPTIONS were made from, and those fields.
    _options_fields: tuple[UaSettings | None, list[Field]] = (None, [])
    #: trusted() verdicts by host text, for the settings they were made with (a few peers send most calls).
    _trusted_seen: tuple[UaSettings | None, dict[str, bool]] = (None, {})

    def __post_init__(self) -> None:
        self.layer.timers = self.timers
        self.layer.tag_factory = self.ids.tag
        self.layer.stateless_options = self._options_response
        self.layer.stable_tag = self.ids.stable_tag

    def _options_response(self, request: Request) -> Response:
        """The 200 to an OPTIONS outside a dialog (section 11.2), the same for every retransmission."""
        made_from, fields = self._options_fields
        if made_from is not self.settings:
            fields = header_fields([*self.identity_headers("OPTIONS", 200), ("Accept", self.settings.accept)])
            self._options_fields = (self.settings, fields)
        return make_response(request, 200, to_tag=self.layer.stateless_tag(request), fields=fields)

    # -- the shell's protocol -------------------------------------------------------------------------

    def receive(self, data: bytes, source: Destination, now: float) -> None:
        self.layer.receive(data, source, now)
        self._drain(now)

    def handle_timer(self, now: float) -> None:
        self.layer.handle_timer(now)
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, timer = heapq.heappop(heap)
            callback = timer.callback
            if callback is not None:
                timer.callback = None
                callback(now)
        self._drain(now)

    def get_timer(self) -> float | None:
        layer = self.layer.get_timer()
        heap = self._heap
        while heap and heap[0][2].callback is None:
            heapq.heappop(heap)
        own = heap[0][0] if heap else None
        if layer is None:
            return own
        return layer if own is None else min(layer, own)

    def take_datagrams(self) -> list[tuple[bytes, Destination]]:
        return self.layer.take_datagrams()

    def transport_error(self, destination: Destination, now: float) -> None:
        self.layer.transport_error(destination, now)
        self._drain(now)

    def take_events(self) -> list[UaEvent]:
        events, self._events = self._events, []
        return events

    # -- for sessions and the application --------------------------------------------------------------

    @property
    def sessions(self) -> list[Session]:
        return list(self._by_call_id.values())

    def emit(self, event: UaEvent) -> None:
        self._events.append(event)

    def schedule(self, deadline: float, callback: Callable[[float], None]) -> Timer:
        """Call ``callback(now)`` at ``deadline`` (the shell learns of it through :meth:`get_timer`)."""
        self._seq += 1
        timer = Timer(callback)
        heap = self._heap
        heapq.heappush(heap, (deadline, self._seq, timer))
        if len(heap) >= self._sweep_at:
            # Cancelled timers wait in the heap until their deadline (a call's 60 s answer timer, cancelled
            # when it is answered): drop them whenever the heap has doubled since the last sweep.
            heap[:] = [entry for entry in heap if entry[2].callback is not None]
            heapq.heapify(heap)
            self._sweep_at = max(_SWEEP_MIN, 2 * len(heap))
        return timer

    @property
    def own_uri(self) -> str:
        """The service's own SIP URI: its user at the host and port it writes in Via and Contact."""
        s = self.settings
        return f"sip:{s.user}@{host_reference(s.host)}:{s.port}"

    def port_for(self, transport: str) -> int:
        """The port written in Via sent-by and Contact for ``transport``: the TLS listener's for TLS."""
        s = self.settings
        return s.tls_port if transport == "tls" and s.tls_port is not None else s.port

    def contact_for(self, transport: str, secure: bool = False) -> str:
        """Our Contact for a dialog or request on ``transport``. A secure dialog (a ``sips:`` Request-URI over
        TLS, RFC 3261 section 12.1) gets a ``sips:`` Contact (section 8.1.1.8); a plain one over TLS gets
        ``;transport=tls``, which Kamailio, OpenSIPS and common phones all route back over TLS (RFC 5630
        deprecates the parameter for ``sips:``, not for this)."""
        s = self.settings
        host = host_reference(s.host)
        if transport == "tls":
            port = self.port_for("tls")
            if secure:
                return f"<sips:{s.user}@{host}:{port}>"
            return f"<sip:{s.user}@{host}:{port};transport=tls>"
        suffix = ";transport=tcp" if transport == "tcp" else ""
        return f"<sip:{s.user}@{host}:{s.port}{suffix}>"

    def identity_headers(self, method: str, status: int) -> list[tuple[str, str]]:
        """Server, and Allow/Supported on 2xx to INVITE and OPTIONS (RFC 3261 sections 11.2, 13.3.1.4)."""
        out = [("Server", self.settings.user_agent)]
        if 200 <= status < 300 and method in ("INVITE", "OPTIONS"):
            out += [("Allow", self.settings.allow), ("Supported", self.settings.supported)]
        return out

    def _via(self, transport: str) -> str:
        s = self.settings
        return (f"SIP/2.0/{transport.upper()} {host_reference(s.host)}:{self.port_for(transport)}"
                f";branch={self.ids.branch()};rport")

    def new_request(
        self, method: str, request_uri: str, *, from_addr: str, to_addr: str, call_id: str | None = None,
        cseq: int = 1, from_tag: str | None = None, body: bytes = b"", content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (), max_forwards: int = 70,
    ) -> tuple[Request, Destination]:
        """An out-of-dialog request (section 8.1.1) and where it goes: the outbound proxy with a pre-loaded
        Route when one is configured, else the Request-URI (section 8.1.2)."""
        proxy = self.settings.outbound_proxy
        secure = request_uri[:5].lower() == "sips:"
        destination = destination_for(str(proxy) if proxy is not None else request_uri, secure=secure)
        h = Headers.of(("Via", self._via(destination.transport)), ("Max-Forwards", str(max_forwards)))
        if proxy is not None:
            route = proxy if proxy.lr else proxy.with_param("lr", None)
            h.add("Route", f"<{route}>")
        h.add("From", f"{from_addr};tag={from_tag or self.ids.tag()}")
        h.add("To", to_addr)
        h.add("Call-ID", call_id or self.ids.call_id())
        h.add("CSeq", f"{cseq} {method}")
        if method in ("INVITE", "REFER", "SUBSCRIBE", "NOTIFY", "UPDATE"):
            h.add("Contact", self.contact_for(destination.transport, secure))
        extra = list(headers)
        if method == "INVITE":
            h.add("Allow", self.settings.allow)
            # Option tags the caller adds (RFC 4028's "timer") join ours in one Supported: some peers read only
            # the first line of a header (SIPp's regexp checks do).
            tags = [value for name, value in extra if header_key(name) == "supported"]
            h.add("Supported", _join_tags(self.settings.supported, tags) if tags else self.settings.supported)
            if tags:
                extra = [(name, value) for name, value in extra if header_key(name) != "supported"]
        h.add("User-Agent", self.settings.user_agent)
        for name, value in extra:
            h.add(name, value)
        if body:
            h.add("Content-Type", content_type or "application/sdp")
        return Request(method, request_uri, h, body), destination

    def invite(
        self, request_uri: str, now: float, *, from_addr: str, to_addr: str, body: bytes = b"",
        content_type: str | None = None, headers: Iterable[tuple[str, str]] = (), call_id: str | None = None,
        max_forwards: int = 70,
    ) -> Session:
        """Place an INVITE; the session reports :class:`~.ua_events.CallProgress`, ``CallAnswered`` or
        ``CallFailed``."""
        tag = self.ids.tag()
        request, destination = self.new_request(
            "INVITE", request_uri, from_addr=from_addr, to_addr=to_addr, call_id=call_id, from_tag=tag,
            body=body, content_type=content_type, headers=headers, max_forwards=max_forwards,
        )
        session = Session(self, Role.UAC, request, tag)
        self._by_call_id[session.call_id] = session
        try:
            tx = self.layer.send_request(request, destination, now)
        except SipError:
            self._by_call_id.pop(session.call_id, None)
            raise
        session.on_invite_transaction(tx)
        self._owners[tx] = _Owner(session, tx.request, "invite")
        return session

    def restore(self, record: Mapping[str, object], *, cseq_jump: int = CSEQ_JUMP) -> Session:
        """A confirmed session rebuilt from its :meth:`Session.to_record` after a restart, indexed so that
        in-dialog requests find it; our next CSeq jumps ``cseq_jump`` past the kept one, since requests sent
        after the record was written are not in it. Raises :class:`~b2bua.errors.RecordError`."""
        session = Session.from_record(self, record, cseq_jump=cseq_jump)
        self._by_call_id[session.call_id] = session
        self.dialog_added(session)
        return session

    def build_in_dialog(
        self, dialog: Dialog, method: str, transport: str, body: bytes, content_type: str | None,
        headers: Iterable[tuple[str, str]],
    ) -> Request:
        s = self.settings
        return dialog.new_request(
            method, branch=self.ids.branch(), via_host=s.host, via_port=self.port_for(transport.lower()), body=body,
            content_type=content_type or ("application/sdp" if body else None), extra_headers=list(headers),
            transport=transport.upper(), user_agent=s.user_agent,
        )

    def send_in_dialog(self, session: Session, request: Request, now: float,
                       outgoing: Outgoing | None = None) -> ClientTransaction:
        dialog = session.dialog
        assert dialog is not None
        tx = self.layer.send_request(request, destination_for(dialog.next_hop(), secure=dialog.secure), now)
        self._owners[tx] = _Owner(session, tx.request, "dialog", outgoing)
        return tx

    def send_response(self, tx: ServerTransaction, response: Response, now: float) -> None:
        self.layer.send_response(tx, response, now)

    def send_stateless(self, message: Request | Response, destination: Destination) -> bytes:
        return self.layer.send_stateless(message, destination)

    def send_again(self, data: bytes, destination: Destination) -> None:
        self.layer.send_again(data, destination)

    def abandon(self, tx: ClientTransaction) -> None:
        """Give up on an INVITE stuck in Proceeding after its CANCEL went unanswered (RFC 3261 section 9.1:
        64*T1 after the CANCEL the UAC considers the INVITE transaction terminated)."""
        self._owners.pop(tx, None)
        self.layer.abandon(tx)

    def send_ack(self, dialog: Dialog, ack: Request) -> tuple[bytes, Destination]:
        """Send the ACK for a 2xx along the dialog's route; returns the datagram and where it went."""
        destination = destination_for(dialog.next_hop(), secure=dialog.secure)
        return self.layer.send_stateless(ack, destination), destination

    def send_orphan(self, request: Request, dialog: Dialog, now: float) -> None:
        """A request whose outcome nobody waits for (the BYE of an extra fork)."""
        tx = self.layer.send_request(request, destination_for(dialog.next_hop(), secure=dialog.secure), now)
        self._owners[tx] = _Owner(None, request, "orphan")

    def send_cancel(self, session: Session, cancel: Request, destination: Destination, now: float) -> None:
        tx = self.layer.send_request(cancel, destination, now)
        self._owners[tx] = _Owner(session, cancel, "cancel")

    def retry_with_auth(self, session: Session, request: Request, response: Response, now: float,
                        outgoing: Outgoing | None = None) -> Request | None:
        """Answer a 401/407 once per challenge (RFC 3261 section 22.2, RFC 7616): the request sent again with
        credentials (its answers reach the session with ``outgoing``), or ``None`` to give up."""
        if not self.settings.credentials:
            return None
        client = self._digest.get(session)
        if client is None:
            client = self._digest[session] = DigestClient(self.settings.credentials, self.ids.cnonce)
        header = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
        auth = client.on_challenge(response.status, response.headers.get_all(header), request.method, request.uri,
                                   request.body)
        if auth is None:
            return None
        return self._resend(session, request, [(item.name, item.value) for item in auth], now, outgoing,
                            drop=("Authorization", "Proxy-Authorization"))

    def retry_with_headers(self, session: Session, request: Request, headers: list[tuple[str, str]],
                           now: float) -> Request:
        """Send the session's ``request`` again with ``headers`` in place of the fields of the same names (RFC 4028
        section 7.4: an INVITE refused with 422 goes again with the Min-SE it asked for); returns what was sent."""
        return self._resend(session, request, headers, now, None, drop=tuple(name for name, _ in headers))

    def _resend(self, session: Session, request: Request, headers: list[tuple[str, str]], now: float,
                outgoing: Outgoing | None, *, drop: tuple[str, ...]) -> Request:
        """``request`` sent again as a new transaction: a new branch and the next CSeq (RFC 3261 section 8.1.3.5),
        the fields named in ``drop`` replaced by ``headers``; its answers reach the session as the first one's."""
        retry = Request(request.method, request.uri, request.headers.copy(), request.body)
        h = retry.headers
        for name in drop:
            h.remove(name)
        for name, value in headers:
            h.add(name, value)
        via = h.get("via") or ""
        h.set("Via", via.replace(f"branch={request.branch}", f"branch={self.ids.branch()}", 1))
        cseq = request.cseq
        assert cseq is not None
        number = cseq.number + 1
        dialog = session.dialog
        if request.to_tag is not None and dialog is not None:
            number = (dialog.local_seq or cseq.number) + 1
            dialog.local_seq = number
        h.set("CSeq", f"{number} {request.method}")
        destination = self._destination_of(retry)
        tx = self.layer.send_request(retry, destination, now)
        purpose = "invite" if request is session.invite else "dialog"
        if purpose == "invite":
            session.on_invite_transaction(tx)
        self._owners[tx] = _Owner(session, tx.request, purpose, outgoing)
        return tx.request

    def _destination_of(self, request: Request) -> Destination:
        routes = request.routes
        return destination_for(routes[0].uri_text if routes else request.uri,
                               secure=request.uri[:5].lower() == "sips:")

    def dialog_added(self, session: Session) -> None:
        if session.dialog is not None:
            self._dialogs[session.dialog.id] = session

    def dialog_removed(self, session: Session) -> None:
        if session.dialog is not None and self._dialogs.get(session.dialog.id) is session:
            del self._dialogs[session.dialog.id]

    def session_ended(self, session: Session) -> None:
        self.dialog_removed(session)
        if self._by_call_id.get(session.call_id) is session:
            del self._by_call_id[session.call_id]
        self._digest.pop(session, None)

    def shutdown(self, now: float) -> None:
        """End every session (BYE, CANCEL, or 503 to unanswered INVITEs) before the service stops."""
        for session in self.sessions:
            try:
                session.end(now, status=503)
            except SipError as error:
                logger.warning("could not end %r: %s", session, error)
        self._drain(now)

    # -- dispatching the layer's events -------------------------------------------------------------

    def _drain(self, now: float) -> None:
        while True:
            events = self.layer.take_events()
            if not events:
                return
            for event in events:
                try:
                    self._dispatch(event, now)
                except ParseError as error:
                    logger.info("dropped a message with a malformed header: %s", error.reason)

    def _dispatch(self, event: LayerEvent, now: float) -> None:
        match event:
            case RequestReceived(request, tx, source):
                self._on_request(request, tx, source, now)
            case AckReceived(request, _):
                dialog_id = DialogId.of_request(request)
                session = self._dialogs.get(dialog_id) if dialog_id is not None else None
                if session is not None:
                    session.on_ack(request, now)
            case CancelReceived(cancel, invite):
                session = self._by_server_tx.get(invite)
                if session is not None:
                    session.on_cancel(cancel, now)
                else:
                    self.layer.send_response(invite, make_response(invite.request, 487, to_tag=self.ids.tag()), now)
                    # A cancelled re-INVITE is no longer pending (sections 9.2, 14.2): the dialog takes new ones.
                    dialog_id = DialogId.of_request(invite.request)
                    session = self._dialogs.get(dialog_id) if dialog_id is not None else None
                    if session is not None:
                        session.on_reinvite_cancelled(invite)
            case ResponseReceived(response, tx):
                self._on_response(response, tx, now)
            case StrayResponse(response):
                self._on_stray(response, now)
            case TransactionTimedOut(tx, reason):
                if isinstance(tx, ClientTransaction):
                    self._on_timeout(tx, reason)
            case TransactionEnded(tx):
                if isinstance(tx, ClientTransaction):
                    owner = self._owners.pop(tx, None)
                    ended = owner.session if owner is not None and owner.purpose == "invite" else None
                else:
                    ended = self._by_server_tx.pop(tx, None)
                if ended is not None:
                    ended.on_invite_transaction_ended(tx)
            case _:
                assert_never(event)

    def _on_request(self, request: Request, tx: ServerTransaction, source: Destination, now: float) -> None:
        if request.to_tag is not None:
            dialog_id = DialogId.of_request(request)
            session = self._dialogs.get(dialog_id) if dialog_id is not None else None
            if session is None:
                self._reply(tx, 481, now)
            else:
                session.on_request(request, tx, now)
            return
        method = request.method
        if method == "OPTIONS":
            self.layer.send_response(tx, self._options_response(request), now)
            return
        if method != "INVITE":
            self._reply(tx, 481, now)
            return
        if not self.trusted(source.host):
            logger.info("refused an INVITE from untrusted %s (call-id %s)", source, request.call_id)
            self._reply(tx, 403, now)
            return
        assert isinstance(tx, InviteServerTransaction)
        session = Session(self, Role.UAS, request, self.ids.tag())
        session.on_invite_transaction(tx)
        self._by_server_tx[tx] = session
        self._by_call_id[session.call_id] = session
        self.emit(IncomingCall(session, request, source))

    def _reply(self, tx: ServerTransaction, status: int, now: float) -> None:
        headers = [("Server", self.settings.user_agent)]
        response = make_response(tx.request, status, to_tag=self.ids.tag(), headers=headers)
        self.layer.send_response(tx, response, now)

    def trusted(self, host: str) -> bool:
        settings, seen = self._trusted_seen
        if settings is not self.settings or len(seen) >= _TRUSTED_SEEN_MAX:
            seen = {}
            self._trusted_seen = (self.settings, seen)
        verdict = seen.get(host)
        if verdict is None:
            try:
                address = ipaddress.ip_address(host.strip("[]"))
            except ValueError:
                verdict = False
            else:
                verdict = any(address in network for network in self.settings.trusted)
            seen[host] = verdict
        return verdict

    def _on_response(self, response: Response, tx: ClientTransaction, now: float) -> None:
        owner = self._owners.get(tx)
        if owner is None or owner.session is None:
            return
        session = owner.session
        if owner.purpose == "invite":
            session.on_invite_response(response, now)
        elif owner.purpose == "dialog":
            session.on_dialog_response(owner.request, response, now, owner.outgoing)

    def _on_stray(self, response: Response, now: float) -> None:
        dialog_id = DialogId.of_response(response)
        session = self._dialogs.get(dialog_id) if dialog_id is not None else None
        if session is not None:
            session.on_stray_2xx(response)
            return
        session = self._by_call_id.get(response.call_id or "")
        if session is not None and session.role is Role.UAC and response.from_tag == session.local_tag:
            if not _answers_invite(response, session.invite):
                return  # answers no INVITE of ours (a garbled CSeq): dropped as a stray (RFC 3261 17.1.3)
            session.on_invite_response(response, now)
            tx = session.invite_tx
            if isinstance(tx, ClientTransaction) and not tx.terminated:
                # The 2xx answered our INVITE outside its transaction (a peer that mangled the Via branch):
                # no final response will match the transaction now, and in Proceeding it has no timer, so it
                # would stay for ever once the call ends (found by the stack fuzz target).
                self.abandon(tx)
            return
        if session is None:
            self._end_unknown_2xx(response, now)

    def _end_unknown_2xx(self, response: Response, now: float) -> None:
        """A 2xx to an INVITE no session knows: the call was being set up when the service restarted (its
        transactions are not kept, issue 15). Nobody can be bridged to it, so it is ACKed (RFC 3261 section
        13.2.2.4: a UAC acknowledges every 2xx; without the ACK the callee retransmits for 32 s, then ends the
        call) and then BYEd at once, as an extra fork's 2xx is. A retransmission of it gets the same again
        (a second BYE draws a 481 at worst). Built from the 2xx alone: its Via is ours, its From tag ours."""
        cseq, via, contact = response.cseq, response.top_via, response.contact
        if (not 200 <= response.status < 300 or cseq is None or cseq.method != "INVITE" or via is None
                or contact is None or response.to_tag is None):
            return
        transport = via.transport.lower()
        kept = [(header_key(name), value, None) for name, value in response.headers]
        invite = Request("INVITE", contact.uri_text, Headers([f for f in kept if f[0] in _INVITE_KEYS]))
        try:
            dialog = Dialog.from_uac(invite, response, local_contact=self.contact_for(transport))
            ack = dialog.ack_for(invite, response, self.ids.branch())
            bye = self.build_in_dialog(dialog, "BYE", transport, b"", None, ())
            self.send_ack(dialog, ack)
            self.send_orphan(bye, dialog, now)
        except (SipError, ValueError) as error:
            logger.info("a 2xx for an unknown INVITE (Call-ID %s) could not be ended: %s", response.call_id, error)
            return
        logger.info("a 2xx for an unknown INVITE (Call-ID %s): ACKed and ended with BYE", response.call_id)

    def _on_timeout(self, tx: ClientTransaction, reason: str) -> None:
        owner = self._owners.get(tx)
        if owner is None or owner.session is None:
            return
        if owner.purpose == "invite":
            owner.session.on_invite_timeout(reason)
        elif owner.purpose == "dialog":
            owner.session.on_dialog_timeout(owner.request, reason, owner.outgoing)
        elif owner.purpose == "cancel" and not owner.session.ended:
            owner.session.on_invite_timeout("cancel timed out")



def _answers_invite(response: Response, invite: Request) -> bool:
    """Does ``response`` carry the CSeq of ``invite`` (number and method)? A 2xx matched to a session by Call-ID
    and From tag alone must, before the session acknowledges it (the stack fuzz target sent a stray 200 with
    another CSeq number: building its ACK raised out of the core)."""
    got, sent = response.cseq, invite.cseq
    return got is not None and sent is not None and got.method == "INVITE" and got.number == sent.number

__all__ = ["Ids", "Timer", "UaSettings", "UserAgent", "destination_for"]
