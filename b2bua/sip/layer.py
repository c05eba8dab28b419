"""The transaction layer: bytes in, transactions matched, events and datagrams out (RFC 3261 sections 17, 18).

:class:`TransactionLayer` is sans-I/O. The shell feeds it what arrives (:meth:`~TransactionLayer.receive`),
fires :meth:`~TransactionLayer.handle_timer` at :meth:`~TransactionLayer.get_timer`, and sends what
:meth:`~TransactionLayer.take_datagrams` returns. The TU (the UA core) reads
:meth:`~TransactionLayer.take_events` and calls :meth:`send_request` / :meth:`send_response`.

On the way in it: parses (answering 400/505 where a response can be routed, dropping the rest),
stamps ``received``/``rport`` on the top Via (section 18.2.1, RFC 3581), absorbs retransmissions in
their transactions, answers CANCEL (section 9.2), answers merged requests with 482 (section 8.2.2.2)
and the section 8.2 checks, and sends 100 Trying for every new INVITE (section 17.2.1).
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import assert_never

from ..errors import ParseError, TransactionError
from .address import Destination
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
from .grammar import Params, split_outside_quotes
from .headers import Via, parse_top_via
from .message import _FIRST, Request, Response
from .parser import DEFAULT_LIMITS, Limits, check_message, parse_message
from .timers import TimerSettings
from .transaction_client import ClientTransaction, InviteClientTransaction, NonInviteClientTransaction
from .transaction_events import AckToTU, Action, ResponseToTU, Terminated, TimedOut, Transmit, TransportFailed
from .transaction_matching import ClientKey, ServerKey, cancel_target_key, client_key, server_key
from .transaction_server import InviteServerTransaction, NonInviteServerTransaction, ServerTransaction
from .uas import (
    DEFAULT_POLICY,
    UasPolicy,
    check_extensions_and_body,
    check_method_and_uri,
    check_request,
    contact_is_target,
    make_response,
    salvage_response,
)

logger = logging.getLogger("call_api.sip.layer")

#: RFC 3261 section 18.1.1: a request within 200 bytes of the path MTU (1500) goes over a congestion
#: controlled transport; 1300 is the figure the RFC gives when the MTU is unknown.
UDP_SIZE_LIMIT = 1300

Transaction = ClientTransaction | ServerTransaction


#: The methods :class:`LayerStats` counts by name (RFC 3261 and the extensions a B2BUA meets); any other is
#: counted as ``"other"``, so a peer inventing methods cannot grow the counters, nor a scraper's series.
COUNTED_METHODS = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "UPDATE", "INFO",
                             "REFER", "NOTIFY", "SUBSCRIBE", "MESSAGE", "PUBLISH"})


@dataclass(slots=True)
class LayerStats:
    """Counters the shell can log or expose (``GET /metrics`` reads them when scraped: b2bua.io.metrics).

    Each message costs one dictionary add here; the labels are bounded (:data:`COUNTED_METHODS`, status
    classes 1-6), so the dictionaries stay small whatever arrives."""

    received: int = 0
    malformed: int = 0
    #: Retransmitted requests absorbed by their server transaction (ACKs for non-2xx not counted).
    retransmissions: int = 0
    stray_responses: int = 0
    sent: int = 0
    #: Messages sent again: timer A/E/G retransmissions, a response re-sent for an absorbed retransmission,
    #: the TU's 2xx retransmissions (section 13.3.1.4) and an ACK re-sent for a retransmitted 2xx.
    retransmissions_sent: int = 0
    #: Requests received (parsed, or absorbed as a retransmission) and sent, by method.
    requests_in: dict[str, int] = field(default_factory=dict)
    requests_out: dict[str, int] = field(default_factory=dict)
    #: Responses received (matched or not) and sent, by (CSeq method, status class 1-6).
    responses_in: dict[tuple[str, int], int] = field(default_factory=dict)
    responses_out: dict[tuple[str, int], int] = field(default_factory=dict)


def count_request(counts: dict[str, int], method: str) -> None:
    """Count a request of ``method`` in ``counts`` (a :class:`LayerStats` dictionary): what each message costs."""
    if method not in COUNTED_METHODS:
        method = "other"
    counts[method] = counts.get(method, 0) + 1


def count_response(counts: dict[tuple[str, int], int], response: Response) -> None:
    """Count ``response`` by its CSeq method (parsed already on every path but a salvaged 400's) and class."""
    try:
        cseq = response.cseq
    except ParseError:
        cseq = None
    method = cseq.method if cseq is not None else "other"
    if method not in COUNTED_METHODS:
        method = "other"
    status_class = response.status // 100
    key = (method, status_class if status_class < 7 else 6)
    counts[key] = counts.get(key, 0) + 1


@dataclass(slots=True)
class TransactionLayer:
    """Every live transaction, keyed for matching, plus the queues of what to send and what to tell the TU."""

    timers: TimerSettings = field(default_factory=TimerSettings)
    limits: Limits = DEFAULT_LIMITS
    policy: UasPolicy = DEFAULT_POLICY
    #: Makes the To tag of responses the layer sends on its own (400, 420 ...). Injected: no randomness here.
    tag_factory: Callable[[], str] = lambda: "call-api"
    #: When set, out-of-dialog OPTIONS are answered statelessly with what this returns (RFC 3261 section
    #: 8.2.7): the answer never changes, so no transaction needs to live 64*T1 per keep-alive ping.
    stateless_options: Callable[[Request], Response] | None = None
    #: Makes the To tag of stateless answers from a seed: the same tag for every copy of a request (8.2.7).
    stable_tag: Callable[[str], str] = lambda seed: "call-api"
    #: The share of new out-of-dialog INVITEs admitted (b2bua.sip.overload): 1.0 but under overload. The
    #: others get a stateless 503 (RFC 3261 section 21.5.4, RFC 7339 section 3) instead of a transaction;
    #: the admitted ones are spread evenly among them.
    admit: float = 1.0
    #: Retry-After of that 503 in seconds; 0 for none.
    shed_retry_after: int = 0
    #: INVITEs answered 503 because of overload.
    shed: int = 0
    _credit: float = 0.0
    stats: LayerStats = field(default_factory=LayerStats)
    _clients: dict[ClientKey, ClientTransaction] = field(default_factory=dict)
    _servers: dict[ServerKey, ServerTransaction] = field(default_factory=dict)
    #: (From tag, Call-ID, CSeq number, method) of requests without To tag -> their transaction (section 8.2.2.2).
    _merge: dict[tuple[str | None, str, int, str], ServerKey] = field(default_factory=dict)
    _heap: list[tuple[float, int, Transaction]] = field(default_factory=list)
    _seq: int = 0
    _out: list[tuple[bytes, Destination]] = field(default_factory=list)
    _events: list[LayerEvent] = field(default_factory=list)
    #: The exact datagram (and source) that made each live server transaction over UDP -> the transaction:
    #: a retransmission over UDP is the same bytes again, absorbed here without parsing it (see receive).
    _raw: dict[tuple[bytes, Destination], ServerTransaction] = field(default_factory=dict)
    _raw_keys: dict[ServerTransaction, tuple[bytes, Destination]] = field(default_factory=dict)

    # -- what goes out ------------------------------------------------------------------------------

    def take_datagrams(self) -> list[tuple[bytes, Destination]]:
        """The messages to send, serialized, in order; the queue is emptied."""
        out, self._out = self._out, []
        return out

    def take_events(self) -> list[LayerEvent]:
        """The events for the TU, in order; the queue is emptied."""
        events, self._events = self._events, []
        return events

    def get_timer(self) -> float | None:
        """The earliest deadline of any transaction, or ``None``."""
        heap = self._heap
        while heap:
            deadline, _, tx = heap[0]
            if tx.get_timer() == deadline and not tx.terminated:
                return deadline
            heapq.heappop(heap)
            if tx.queued == deadline:
                tx.queued = None
        return None

    def handle_timer(self, now: float) -> None:
        """Fire every transaction timer due at ``now``."""
        heap = self._heap
        stats = self.stats
        sent = stats.sent
        while heap and heap[0][0] <= now:
            deadline, _, tx = heapq.heappop(heap)
            if tx.queued == deadline:
                tx.queued = None
            if tx.terminated or tx.get_timer() != deadline:
                continue
            self._run(tx, tx.handle_timer(now))
        stats.retransmissions_sent += stats.sent - sent  # timers A, E and G: the only timers that send

    def __len__(self) -> int:
        return len(self._clients) + len(self._servers)

    # -- the TU's side --------------------------------------------------------------------------------

    def send_request(self, request: Request, destination: Destination, now: float) -> ClientTransaction:
        """Start a client transaction for ``request`` (its top Via and branch already set by the TU).

        A request too large for UDP goes over TCP instead, its Via saying so (section 18.1.1).
        """
        if destination.transport == "udp" and len(request.serialize()) > UDP_SIZE_LIMIT:
            destination = Destination("tcp", destination.host, destination.port)
            via = request.top_via
            if via is not None:
                _replace_top_via(request, via._replace(transport="TCP"))
        tx: ClientTransaction
        if request.method == "INVITE":
            tx = InviteClientTransaction(request, destination, self.timers, now)
        else:
            tx = NonInviteClientTransaction(request, destination, self.timers, now)
        if tx.key in self._clients:
            raise TransactionError(f"a client transaction with branch {tx.key.branch} already exists")
        self._clients[tx.key] = tx
        self._run(tx, tx.start(now))
        return tx

    def send_response(self, tx: ServerTransaction, response: Response, now: float) -> None:
        """The TU's response on a server transaction (2xx retransmissions to INVITE included: the same
        response again, counted as a retransmission sent)."""
        if response is tx.last_response:
            self.stats.retransmissions_sent += 1
        self._run(tx, tx.send_response(response, now))

    def send_stateless(self, message: Request | Response, destination: Destination) -> bytes:
        """Send outside any transaction: the ACK for a 2xx (section 13.2.2.4), a response nobody retransmits.
        Returns the datagram, for :meth:`send_again`."""
        data = message.serialize()
        self._count_out(message)
        self._out.append((data, destination))
        return data

    def send_again(self, data: bytes, destination: Destination) -> None:
        """Send a datagram :meth:`send_stateless` sent before, as it was (the ACK for a retransmitted 2xx)."""
        stats = self.stats
        stats.sent += 1
        stats.retransmissions_sent += 1
        if not data.startswith(b"SIP/"):
            count_request(stats.requests_out, data[:data.find(b" ")].decode("ascii", "replace"))
        self._out.append((data, destination))

    def abandon(self, tx: ClientTransaction) -> None:
        """Forget a client transaction its TU gave up on (an INVITE whose CANCEL was never answered)."""
        if self._clients.get(tx.key) is tx:
            del self._clients[tx.key]

    def transport_error(self, destination: Destination, now: float) -> None:
        """The shell could not reach ``destination``: fail the client transactions waiting on it."""
        for tx in list(self._clients.values()):
            if tx.destination == destination and not tx.terminated:
                self._run(tx, tx.transport_error(now, f"cannot reach {destination}"))

    # -- what comes in ------------------------------------------------------------------------------

    def receive(self, data: bytes, source: Destination, now: float) -> None:
        """One datagram, or one message framed by a stream transport, from ``source``.

        A UDP request byte for byte equal to one that made a live server transaction, from the same
        source, is its retransmission (RFC 3261 section 17.2.1 and 17.2.2 match it by branch; equal bytes
        carry the same branch): it goes to that transaction without being parsed again. Parsing is most
        of what a message costs, and after a stall the peers' retransmissions arrive by the thousand
        (issue 12: ``benchmarks.layer_costs`` measures both paths)."""
        stats = self.stats
        stats.received += 1
        tx = self._raw.get((data, source))
        if tx is not None:
            count_request(stats.requests_in, tx.request.method)
            self._absorb(tx, tx.request, now)
            return
        try:
            msg = parse_message(data, self.limits, stream=source.reliable, check=False)
        except ParseError as error:
            self.stats.malformed += 1
            self._answer_unparsable(data, error, source)
            return
        try:
            if isinstance(msg, Response):
                self._receive_response(msg, now)
            else:
                self._receive_request(msg, source, now, data)
        except ParseError as error:
            self.stats.malformed += 1
            if isinstance(msg, Request) and msg.method != "ACK":
                self._answer_unparsable(data, error, source)
            else:
                logger.debug("dropped a malformed message from %s: %s", source, error.reason)

    def _answer_unparsable(self, data: bytes, error: ParseError, source: Destination) -> None:
        response = salvage_response(data, error)
        if response is None:
            logger.info("dropped an unparsable message from %s: %s", source, error.reason)
            return
        via = response.top_via
        if via is None:
            return
        via = _stamp(via, source)
        _replace_top_via(response, via)
        logger.info("answered %d to an unparsable request from %s: %s", response.status, source, error.reason)
        self._transmit(response, response_destination(via, source))

    def _absorb(self, tx: ServerTransaction, request: Request, now: float) -> None:
        """A retransmission of ``tx``'s request (or the ACK of its non-2xx answer), absorbed by it; what it
        sends again (its last response) counts as retransmitted."""
        stats = self.stats
        stats.retransmissions += request.method != "ACK"
        sent = stats.sent
        self._run(tx, tx.receive_request(request, now))
        stats.retransmissions_sent += stats.sent - sent

    def _receive_response(self, response: Response, now: float) -> None:
        key = client_key(response)
        count_response(self.stats.responses_in, response)
        tx = self._clients.get(key)
        if tx is None:
            cseq = response.cseq
            if cseq is not None and cseq.method == "INVITE" and 200 <= response.status < 300:
                check_message(response)
                if not contact_is_target(response):
                    # Its ACK goes to that Contact (section 13.2.2.4): one that is not a SIP URI cannot be
                    # acknowledged, as in a transaction (found by the stack fuzz target on the stray path).
                    raise ParseError("the Contact of a dialog-creating answer is not a SIP URI", header="Contact")
                self._events.append(StrayResponse(response))
            else:
                self.stats.stray_responses += 1
                logger.debug("dropped a response that matches no transaction: %r", response)
            return
        request = tx.request
        cseq, asked = response.cseq, request.cseq
        if response.call_id != request.call_id or response.from_tag != request.from_tag or \
                cseq is None or asked is None or cseq.number != asked.number:
            # Section 8.2.6.2: a response copies its request's Call-ID, From (tag included) and CSeq; one
            # that matched by branch but not these answers nothing we sent (found by the stack fuzz target:
            # a 200 with another Call-ID built a dialog that could not be, and the error escaped).
            self.stats.stray_responses += 1
            logger.info("dropped a response whose Call-ID, From tag or CSeq is not its request's: %r", response)
            return
        try:
            # Checked before the transaction sees it: a response the TU would drop must not move the
            # transaction either (found by the stack fuzz target: a garbled 100 put our INVITE in Proceeding,
            # where no timer runs, while the session never saw it and so could never CANCEL; and a garbled
            # 486 made the transaction send an ACK copying its To, section 17.1.1.3). Dropped as if lost.
            check_message(response)
            if cseq.method == "INVITE" and 100 < response.status < 300 and not contact_is_target(response):
                raise ParseError("the Contact of a dialog-creating answer is not a SIP URI", header="Contact")
        except ParseError as error:
            self.stats.malformed += 1
            logger.info("dropped a malformed response %r: %s", response, error.reason)
            return
        self._run(tx, tx.receive_response(response, now))

    def _receive_request(self, request: Request, source: Destination, now: float, data: bytes) -> None:
        via = request.top_via
        if via is None:
            raise ParseError("missing Via header", header="Via")
        stamped, reply_to = _stamp_and_route(via, source)
        if stamped is not via:
            _replace_top_via(request, stamped)
        method = request.method
        count_request(self.stats.requests_in, method)
        if method == "OPTIONS" and self.stateless_options is not None and request.to_tag is None:
            check_message(request)
            refusal = check_request(request, self.policy)
            response = self.stateless_options(request)
            if refusal is not None:
                # Section 8.2.7: a stateless answer's To tag is the same for every copy of the request.
                response = make_response(request, refusal.status, refusal.reason, to_tag=response.to_tag,
                                         headers=_extra_headers(refusal))
            self._transmit(response, reply_to)
            return
        key = server_key(request)
        tx = self._servers.get(key)
        if tx is not None and tx.matches(request) and request.method in ("ACK", tx.request.method):
            self._absorb(tx, request, now)
            return
        if method == "ACK":
            check_message(request)
            self._events.append(AckReceived(request, source))
            return
        if method == "INVITE" and self.admit < 1.0 and request.to_tag is None:
            credit = self._credit + self.admit
            if credit < 1.0:
                self._credit = credit
                self._shed(request, reply_to)
                return
            self._credit = credit - 1.0
        tx = InviteServerTransaction(request, reply_to, self.timers, now) if method == "INVITE" else \
            NonInviteServerTransaction(request, reply_to, self.timers, now)
        self._servers[tx.key] = tx
        if not source.reliable:
            raw = (data, source)
            self._raw[raw] = tx
            self._raw_keys[tx] = raw
        try:
            self._serve(tx, request, source, now)
        except ParseError:
            # Nothing went out through it (building the answer is what failed: a To that does not parse); the
            # caller answers statelessly from the raw bytes instead, so the transaction must not stay, in
            # Proceeding with no timer, for ever (found by the stack fuzz target).
            self._forget(tx)
            raise

    def _serve(self, tx: ServerTransaction, request: Request, source: Destination, now: float) -> None:
        """Check a new request its transaction ``tx`` now holds: answer a refusal through it, or hand the request
        to the TU (an INVITE with 100 Trying first)."""
        method = request.method
        try:
            check_message(request)
        except ParseError as error:
            self._reply(tx, make_response(request, error.status, _reason(error), to_tag=self.tag_factory()), now)
            return
        refusal = check_method_and_uri(request, self.policy)
        if refusal is None and request.to_tag is None:
            cseq = request.cseq
            assert cseq is not None and request.call_id is not None
            merge_key = (request.from_tag, request.call_id, cseq.number, method)
            other = self._merge.get(merge_key)
            if other is not None and other != tx.key and other in self._servers:
                self._reply(tx, make_response(request, 482, to_tag=self.tag_factory()), now)
                return
            self._merge[merge_key] = tx.key
        if refusal is None:
            refusal = check_extensions_and_body(request, self.policy)
        if refusal is not None:
            if refusal.status > 100 and request.to_tag is None:
                refusal = make_response(request, refusal.status, refusal.reason, to_tag=self.tag_factory(),
                                        headers=_extra_headers(refusal))
            self._reply(tx, refusal, now)
            return
        if method == "CANCEL":
            self._receive_cancel(request, tx, now)
            return
        if method == "INVITE":
            self._reply(tx, make_response(request, 100), now)
        self._events.append(RequestReceived(request, tx, source))

    def _shed(self, invite: Request, reply_to: Destination) -> None:
        """A stateless 503 (section 8.2.7): nothing is kept, so a retransmission gets the same answer (same To
        tag) and the ACK for it matches no transaction and is dropped by the TU. A malformed INVITE still gets
        its 400 (check_message raises the ParseError :meth:`receive` answers)."""
        check_message(invite)
        self.shed += 1
        retry_after = self.shed_retry_after
        headers = [("Retry-After", str(retry_after))] if retry_after else []
        self._transmit(make_response(invite, 503, to_tag=self.stateless_tag(invite), headers=headers), reply_to)

    def stateless_tag(self, request: Request) -> str:
        """The To tag of a stateless answer to ``request`` (section 8.2.7): the same for every copy of it."""
        return self.stable_tag(f"{request.call_id}|{request.from_tag}|{request.branch}")

    def _receive_cancel(self, cancel: Request, tx: ServerTransaction, now: float) -> None:
        """Section 9.2: 200 to the CANCEL when it matches a pending INVITE, 481 otherwise."""
        invite = self._servers.get(cancel_target_key(cancel))
        if invite is None or not invite.matches(cancel) or invite.terminated:
            self._reply(tx, make_response(cancel, 481, to_tag=self.tag_factory()), now)
            return
        last = invite.last_response
        to_tag = last.to_tag if last is not None else None
        self._reply(tx, make_response(cancel, 200, to_tag=to_tag or self.tag_factory()), now)
        if last is None or last.status < 200:
            self._events.append(CancelReceived(cancel, invite))

    def _reply(self, tx: ServerTransaction, response: Response, now: float) -> None:
        self._run(tx, tx.send_response(response, now))

    # -- running transactions -----------------------------------------------------------------------

    def _run(self, tx: Transaction, actions: list[Action]) -> None:
        for action in actions:
            match action:
                case Transmit(message, destination):
                    self._transmit(message, destination)
                case ResponseToTU(response):
                    assert isinstance(tx, ClientTransaction)
                    self._events.append(ResponseReceived(response, tx))  # checked in _receive_response
                case AckToTU(request):
                    try:
                        check_message(request)
                    except ParseError:
                        continue
                    self._events.append(AckReceived(request, _source_of(tx)))
                case TimedOut(reason, _) | TransportFailed(reason):
                    self._events.append(TransactionTimedOut(tx, reason))
                case Terminated():
                    self._forget(tx)
                case _:
                    assert_never(action)
        deadline = tx.get_timer()
        if deadline is not None and deadline != tx.queued and not tx.terminated:
            # One heap entry per deadline: a transaction whose timers did not change is not queued again.
            tx.queued = deadline
            self._seq += 1
            heapq.heappush(self._heap, (deadline, self._seq, tx))

    def _forget(self, tx: Transaction) -> None:
        if isinstance(tx, ClientTransaction):
            if self._clients.get(tx.key) is tx:
                del self._clients[tx.key]
        else:
            if self._servers.get(tx.key) is tx:
                del self._servers[tx.key]
            raw = self._raw_keys.pop(tx, None)
            if raw is not None and self._raw.get(raw) is tx:
                del self._raw[raw]
            request = tx.request
            try:
                if request.to_tag is None and request.cseq is not None and request.call_id is not None:
                    merge_key = (request.from_tag, request.call_id, request.cseq.number, request.method)
                    if self._merge.get(merge_key) == tx.key:
                        del self._merge[merge_key]
            except ParseError:
                pass  # a request whose From, To or CSeq is malformed was answered 400 before it was registered
        self._events.append(TransactionEnded(tx))

    def _transmit(self, message: Request | Response, destination: Destination) -> None:
        self._count_out(message)
        self._out.append((message.serialize(), destination))

    def _count_out(self, message: Request | Response) -> None:
        stats = self.stats
        stats.sent += 1
        if isinstance(message, Request):
            count_request(stats.requests_out, message.method)
        else:
            count_response(stats.responses_out, message)


def _source_of(tx: Transaction) -> Destination:
    return tx.source if isinstance(tx, ServerTransaction) else tx.destination


def _reason(error: ParseError) -> str:
    if error.status != 400:
        return ""
    text = "".join(c if c.isprintable() else "?" for c in error.reason)[:80]
    return f"Bad Request ({text})"


def _extra_headers(response: Response) -> list[tuple[str, str]]:
    copied = {"via", "from", "to", "call-id", "cseq"}
    return [(name, value) for name, value in response.headers if name.lower() not in copied]


def _stamp(via: Via, source: Destination) -> Via:
    """Section 18.2.1 and RFC 3581 section 4: ``received`` when sent-by differs from the source address,
    ``rport`` filled in when the client asked for it."""
    params = via.params
    wants_rport = "rport" in params
    if via.host == source.host and not wants_rport:
        return via
    text = str(params)
    if wants_rport and _plain_rport(text):
        return via.with_params(_stamped_params(text, source))
    if wants_rport:
        params = params.replace("rport", str(source.port))
    return via.with_params(params.replace("received", source.host))


def _plain_rport(text: str) -> bool:
    """The usual Via parameters, ``;branch=...;rport``: one empty ``rport``, no ``received``, no LWS."""
    lowered = text.lower()
    return (lowered.count(";rport") == 1 and "received" not in lowered and " " not in text
            and (text.endswith(";rport") or ";rport;" in text))


def _stamped_params(text: str, source: Destination) -> Params:
    """:func:`_stamp` of :func:`_plain_rport` parameters, as a text edit so the result stays cheap to read."""
    return Params.checked(text.replace(";rport", f";rport={source.port}", 1) + f";received={source.host}")


def _stamp_and_route(via: Via, source: Destination) -> tuple[Via, Destination]:
    """:func:`_stamp`, and :func:`response_destination` of the stamped Via, in one step.

    In the usual case (a datagram whose Via asks for ``rport`` and has no ``maddr``) the response goes to
    ``source`` itself: the stamp writes its address into ``received`` and ``rport``.
    """
    if source.transport == "udp" and via.transport != "TCP" and source.host[:1] != "[":
        text = str(via.params)
        if _plain_rport(text) and ";maddr" not in text.lower():
            return via.with_params(_stamped_params(text, source)), source
    stamped = _stamp(via, source)
    return stamped, response_destination(stamped, source)


def response_destination(via: Via, source: Destination) -> Destination:
    """Where a response goes (section 18.2.2, RFC 3581 section 4).

    A request that came over a connection (TCP or TLS) is answered over it. Otherwise the top Via
    decides: a TCP sent-protocol means a connection to ``received`` (else the sent-by host) at the
    sent-by port (5060 by default); over UDP, ``maddr`` first, then ``received`` at ``rport`` or the
    sent-by port. A datagram whose Via claims TLS, and transports the service does not speak (SCTP,
    ...), are answered over UDP like a UDP Via: section 18.2.2 would have a TLS connection opened to
    the sent-by name, which a peer that sent a plain datagram cannot be assumed to serve (and whose
    certificate would be checked against a name it chose), while its UDP source demonstrably
    receives; RFC 4475 section 3.3.5 (bext01, a TLS Via on a datagram) expects its 420 to arrive, and
    answering where the request came from is what proxies do with a Via they cannot honour.
    """
    if source.reliable:
        return source
    host = via.received or via.host
    if host.startswith("["):
        host = host[1:-1]
    if via.transport == "TCP":
        return Destination("tcp", host, via.port or 5060)
    maddr = via.maddr
    if maddr:
        return Destination("udp", maddr.strip("[]"), via.port or 5060)
    return Destination("udp", host, via.rport or via.port or 5060)


def _replace_top_via(msg: Request | Response, via: Via) -> None:
    """Write ``via`` over the first Via value, keeping any further values of that header line.

    Only the views of the Via change, so the other cached views (From, CSeq ...) stay.
    """
    headers = msg.headers
    fields = headers._fields
    for i, (key, value, _) in enumerate(fields):
        if key == "via":
            text = str(via)
            if "," in value:
                try:
                    parts = split_outside_quotes(value, ",")
                except ParseError:  # an unterminated quote (a salvaged 400): keep the routable top value only
                    parts = [value]
                text += "".join("," + part for part in parts[1:])
            fields[i] = ("via", text, None)
            break
    cache = headers._cache
    cache.pop("via", None)
    cache["top-via"] = via
    first = cache.get(_FIRST)
    if first is not None:
        first["via"] = fields[i][1]


__all__ = ["COUNTED_METHODS", "UDP_SIZE_LIMIT", "LayerStats", "TransactionLayer", "count_request", "count_response",
           "parse_top_via", "response_destination"]
