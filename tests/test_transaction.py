"""Client and server transactions (b2bua/sip/transaction_client.py, transaction_server.py) wired together
over a lossy in-memory link on a fake clock (RFC 3261 section 17, RFC 6026).

The message builders here are shared by the other transaction test modules.
"""

from __future__ import annotations

import functools
import heapq
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from b2bua.sip.message import Request, Response
from b2bua.sip.parser import parse_message
from b2bua.sip.transaction_client import ClientTransaction, InviteClientTransaction, NonInviteClientTransaction
from b2bua.sip.transaction_events import AckToTU, Action, ResponseToTU, Terminated, TimedOut, Transmit, TransportFailed
from b2bua.sip.transaction_matching import client_key, server_key
from b2bua.sip.transaction_server import InviteServerTransaction, NonInviteServerTransaction, ServerTransaction

from .transaction_builders import (
    TIMERS,
    TO_CLIENT_TCP,
    TO_CLIENT_UDP,
    TO_SERVER_TCP,
    TO_SERVER_UDP,
    ack_for_2xx,
    make_request,
    make_response,
)

# -- the builders ---------------------------------------------------------------------------------------


def test_builders_make_what_the_parser_accepts() -> None:
    invite = make_request()
    ok = make_response(invite, 200)
    assert parse_message(ok.serialize()) == ok
    assert ok.to_tag == "bob-tag" and client_key(ok) == client_key(invite)
    assert make_response(invite, 100).to_tag is None


# -- a UAC and a UAS over a lossy in-memory link ----------------------------------------------------------


@dataclass
class Wire:
    """One direction of the link: a fixed delay, and ``drop(n)`` decides the fate of the n-th message."""

    delay: float
    drop: Callable[[int], bool]
    sent: int = 0
    delivered: int = 0


@dataclass(order=True)
class _Event:
    at: float
    seq: int
    run: Callable[[], None] = field(compare=False)


class Link:
    """A client transaction and the server transaction it creates, with the two TUs around them.

    The server TU answers with ``answers`` (delay after the request first arrives, status). For a 2xx the
    UAS core retransmits it (section 13.3.1.4) until the ACK arrives, and the UAC core sends a fresh ACK
    for every 2xx (section 13.2.2.4): both outside the transactions, as RFC 6026 has it.
    """

    def __init__(self, request: Request, answers: Sequence[tuple[float, int]], transport: str = "udp",
                 drop_to_server: Callable[[int], bool] = lambda n: False,
                 drop_to_client: Callable[[int], bool] = lambda n: False, delay: float = 0.01) -> None:
        self.to_server = Wire(delay, drop_to_server)
        self.to_client = Wire(delay, drop_to_client)
        reliable = transport != "udp"
        self.server_address = TO_SERVER_TCP if reliable else TO_SERVER_UDP
        self.client_address = TO_CLIENT_TCP if reliable else TO_CLIENT_UDP
        cls = InviteClientTransaction if request.method == "INVITE" else NonInviteClientTransaction
        self.client: ClientTransaction = cls(request, self.server_address, TIMERS, 0.0)
        self.server: ServerTransaction | None = None
        self.answers = answers
        self.now = 0.0
        self.queue: list[_Event] = []
        self.seq = itertools.count()
        self.client_tu: list[tuple[float, Action]] = []
        self.server_tu: list[tuple[float, Action]] = []
        self.requests_to_server_tu = 0
        self.acks_for_2xx_at_server_core = 0
        self.ok_acked = False
        self.client_done_at: float | None = None
        self.server_done_at: float | None = None

    # the event loop
    def at(self, when: float, run: Callable[[], None]) -> None:
        heapq.heappush(self.queue, _Event(when, next(self.seq), run))

    def run(self, limit: float = 300.0) -> Link:
        self.client_actions(self.client.start())
        while True:
            candidates = [e.at for e in self.queue[:1]]
            for tx in (self.client, self.server):
                if tx is not None and (deadline := tx.get_timer()) is not None:
                    candidates.append(deadline)
            if not candidates:
                return self
            self.now = min(candidates)
            assert self.now <= limit, "the exchange never settles"
            if self.queue and self.queue[0].at == self.now:
                heapq.heappop(self.queue).run()
                continue
            if (deadline := self.client.get_timer()) is not None and deadline == self.now:
                self.client_actions(self.client.handle_timer(self.now))
            elif self.server is not None:
                self.server_actions(self.server.handle_timer(self.now))

    def send(self, wire: Wire, message: Request | Response, deliver: Callable[[Request | Response], None]) -> None:
        wire.sent += 1
        if wire.drop(wire.sent):
            return
        self.at(self.now + wire.delay, lambda: self._arrive(wire, message, deliver))

    def _arrive(self, wire: Wire, message: Request | Response, deliver: Callable[[Request | Response], None]) -> None:
        wire.delivered += 1
        deliver(parse_message(message.serialize()))

    # the client side
    def client_actions(self, actions: list[Action]) -> None:
        for action in actions:
            match action:
                case Transmit(message=message):
                    self.send(self.to_server, message, self.server_receives)
                case ResponseToTU(response=response):
                    self.client_tu.append((self.now, action))
                    if response.status // 100 == 2 and isinstance(self.client, InviteClientTransaction):
                        self.send(self.to_server, ack_for_2xx(self.client.request, response), self.server_receives)
                case TimedOut() | TransportFailed() | AckToTU():
                    self.client_tu.append((self.now, action))
                case Terminated():
                    self.client_done_at = self.now

    def client_receives(self, message: Request | Response) -> None:
        assert isinstance(message, Response)
        if client_key(message) == self.client.key and not self.client.terminated:
            self.client_actions(self.client.receive_response(message, self.now))

    # the server side
    def server_receives(self, message: Request | Response) -> None:
        assert isinstance(message, Request)
        server = self.server
        if server is not None and server.matches(message):
            if not server.terminated:
                self.server_actions(server.receive_request(message, self.now))
        elif message.method == "ACK":
            self.acks_for_2xx_at_server_core += 1
            self.ok_acked = True
        elif server is None:
            cls = InviteServerTransaction if message.method == "INVITE" else NonInviteServerTransaction
            self.server = cls(message, self.client_address, TIMERS, self.now)
            self.requests_to_server_tu += 1
            for delay, status in self.answers:
                self.at(self.now + delay, functools.partial(self.server_tu_answers, status))

    def server_tu_answers(self, status: int) -> None:
        server = self.server
        assert server is not None
        response = make_response(server.request, status)
        self.server_actions(server.send_response(response, self.now))
        if status // 100 == 2 and server.request.method == "INVITE":
            self.retransmit_2xx(response, TIMERS.T1)

    def retransmit_2xx(self, response: Response, interval: float) -> None:
        """The UAS core's 2xx retransmission (section 13.3.1.4), through the Accepted transaction."""
        def again() -> None:
            server = self.server
            if self.ok_acked or server is None or server.terminated or self.now >= 64 * TIMERS.T1:
                return
            self.server_actions(server.send_response(response, self.now))
            self.retransmit_2xx(response, min(2 * interval, TIMERS.T2))
        if not self.server_address.reliable:
            self.at(self.now + interval, again)

    def server_actions(self, actions: list[Action]) -> None:
        for action in actions:
            match action:
                case Transmit(message=message):
                    self.send(self.to_client, message, self.client_receives)
                case Terminated():
                    self.server_done_at = self.now
                case _:
                    self.server_tu.append((self.now, action))

    # what the tests look at
    def finals_to_client_tu(self) -> list[int]:
        return [a.response.status for _, a in self.client_tu
                if isinstance(a, ResponseToTU) and a.response.status >= 200]


def drop_first(n: int) -> Callable[[int], bool]:
    return lambda index: index <= n


def test_lossy_link_non_invite_completes_when_the_first_two_each_way_are_lost() -> None:
    link = Link(make_request("BYE", to_tag="bob-tag"), [(0.0, 200)],
                drop_to_server=drop_first(2), drop_to_client=drop_first(2)).run()
    # BYE sent at 0 and 0.5 (both lost), 1.5 (arrives at 1.51: the 200 goes out and is lost),
    # 3.5 (the 200 is resent and lost), 7.5 (the 200 is resent and arrives at 7.52).
    assert link.finals_to_client_tu() == [200]
    assert link.to_server.sent == 5 and link.to_client.sent == 3
    assert link.requests_to_server_tu == 1
    assert link.client_done_at == pytest.approx(7.52 + TIMERS.K)
    assert link.server_done_at == pytest.approx(1.51 + TIMERS.J)
    assert not [a for _, a in link.client_tu + link.server_tu if isinstance(a, TimedOut)]


def test_lossy_link_invite_rejected_completes_with_ack() -> None:
    link = Link(make_request(), [(0.0, 100), (1.0, 486)],
                drop_to_server=drop_first(2), drop_to_client=drop_first(2)).run()
    assert link.finals_to_client_tu() == [486]
    assert link.requests_to_server_tu == 1
    assert isinstance(link.server, InviteServerTransaction) and isinstance(link.client, InviteClientTransaction)
    assert link.client.ack is not None and link.client.ack.cseq == (1, "ACK")
    assert link.server_tu == []  # the ACK arrived before Timer H: no TimedOut
    assert link.client_done_at is not None and link.server_done_at is not None


def test_lossy_link_invite_accepted_every_2xx_reaches_the_uac_core() -> None:
    link = Link(make_request(), [(0.0, 180), (2.0, 200)],
                drop_to_server=drop_first(2), drop_to_client=drop_first(2)).run()
    finals = link.finals_to_client_tu()
    assert finals and set(finals) == {200}
    assert link.ok_acked and link.acks_for_2xx_at_server_core >= 1
    assert link.client_done_at is not None and link.server_done_at is not None
    assert link.server_tu == []


def test_reliable_link_invite_rejected_needs_one_message_each_way() -> None:
    link = Link(make_request(), [(0.0, 486)], transport="tcp").run()
    assert link.finals_to_client_tu() == [486]
    assert link.to_server.sent == 2 and link.to_client.sent == 1  # INVITE, ACK; 486
    assert link.client_done_at == pytest.approx(0.02)  # Timer D is zero on TCP
    assert link.server_done_at == pytest.approx(0.03)  # so is Timer I


SCENARIOS = {
    "BYE 200": ("BYE", [(0.0, 200)]),
    "OPTIONS 100 then 404": ("OPTIONS", [(0.0, 100), (6.0, 404)]),
    "INVITE 486": ("INVITE", [(0.0, 100), (1.0, 486)]),
    "INVITE 200": ("INVITE", [(0.0, 180), (2.0, 200)]),
    "INVITE late 603": ("INVITE", [(40.0, 603)]),
}


@settings(max_examples=300, deadline=None)
@given(
    scenario=st.sampled_from(sorted(SCENARIOS)),
    lost_to_server=st.lists(st.booleans(), max_size=30),
    lost_to_client=st.lists(st.booleans(), max_size=30),
)
def test_any_loss_pattern_ends_in_completion_or_timeout(
    scenario: str, lost_to_server: list[bool], lost_to_client: list[bool]
) -> None:
    method, answers = SCENARIOS[scenario]
    request = make_request(method, to_tag="bob-tag" if method == "BYE" else None)
    link = Link(request, answers,
                drop_to_server=lambda n: n <= len(lost_to_server) and lost_to_server[n - 1],
                drop_to_client=lambda n: n <= len(lost_to_client) and lost_to_client[n - 1]).run()
    client = link.client
    timeouts = [a for _, a in link.client_tu if isinstance(a, TimedOut)]
    finals = link.finals_to_client_tu()
    assert link.requests_to_server_tu <= 1
    if client.terminated:
        # Exactly one outcome: a final response (a 2xx may repeat: retransmissions), or a timeout.
        assert bool(finals) != bool(timeouts)
        assert len(timeouts) <= 1
        assert len(finals) <= 1 or set(finals) == {200}
    else:
        # An INVITE client that saw a 1xx waits in Proceeding without a timer (Figure 5): its TU cancels.
        assert isinstance(client, InviteClientTransaction) and client.state.value == "Proceeding"
        assert client.get_timer() is None and not finals
    assert client.get_timer() is None
    if link.server is not None:
        assert link.server.terminated and link.server.get_timer() is None
        for _, action in link.server_tu:
            assert isinstance(action, TimedOut) and action.reason == "no ACK"


def test_server_key_of_what_the_link_delivers_is_stable() -> None:
    invite = make_request()
    assert server_key(parse_message(invite.serialize())) == server_key(invite)  # type: ignore[arg-type]
