"""The call-control commands as a sans-I/O API: find the call, check the command fits, start its flow.

:data:`COMMANDS` is the one table of commands: each row pairs a command (its parameters dataclass, named as
the API method, :mod:`.commands`) with the :class:`Control` handler that starts its flow. The JSON-RPC
methods (:mod:`rpc.methods`), the WebSocket server and the awaitable API (:mod:`b2bua.io.control`) read it;
adding a command is a dataclass, a row and its handler.

A command that cannot start raises a :class:`~b2bua.errors.ControlError` (the API answers it as a JSON-RPC
error); once started, a flow reports :class:`~.events.FlowEvent` steps, at most one
:class:`~.events.FlowError`, and exactly one :class:`~.events.FlowEnded`, through its sink.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from ..errors import CallBusyError, CallNotFoundError, CallStateError, SipError, SubscriptionNotFoundError
from ..sip.headers import parse_name_addr
from .b2bua import B2bua
from .call import Call, CallState
from .commands import (
    DEFAULT_LIMIT,
    CallAttendedTransfer,
    CallBlindTransfer,
    CallEnd,
    CallGet,
    CallHold,
    CallList,
    CallStart,
    CallUnHold,
    Command,
    Query,
    Subscribe,
    Unsubscribe,
)
from .flows.attended_transfer import AttendedTransferFlow
from .flows.base import Flow, Sink
from .flows.blind_transfer import BlindTransferFlow, identity_of
from .flows.end import EndFlow
from .flows.hold import HoldFlow
from .flows.start import CallStartFlow
from .leg import LEG_NAMES, Leg, LegName
from .live import Answer, Asker, Found, Page, Subscribed, Unsubscribed


class Control:
    """Starts commands on the B2BUA's calls."""

    def __init__(self, b2bua: B2bua) -> None:
        self.b2bua = b2bua

    def start(self, command: Command, now: float, sink: Sink, cmd_id: str = "") -> Flow:
        """Start ``command``'s flow, which then reports through ``sink``; raise ControlError when it cannot."""
        row = BY_TYPE.get(type(command))
        if not isinstance(row, Row):
            raise TypeError(f"{type(command).__name__} is not a command")
        return row.run(self, command, now, sink, cmd_id)

    def ask(self, query: Query, asker: Asker) -> Answer:
        """Answer ``query`` for ``asker`` (a connection); raise ControlError when it cannot be answered."""
        row = BY_TYPE.get(type(query))
        if not isinstance(row, QueryRow):
            raise TypeError(f"{type(query).__name__} is not a query")
        return row.answer(self, query, asker)

    def find(self, callid: str) -> Call:
        call = self.b2bua.table.find(callid)
        if call is None or call.ended:
            raise CallNotFoundError(f"no call with Call-ID {callid!r}")
        return call

    def _free(self, call: Call) -> None:
        busy = call.busy
        if isinstance(busy, Flow) and not busy.done:
            raise CallBusyError(f"call {call.id!r} is busy with {busy.name} ({busy.cmd_id})")

    def _legs(self, call: Call, leg: LegName | None) -> list[Leg]:
        names = LEG_NAMES if leg is None else (leg,)
        legs = []
        for name in names:
            found = call.legs.get(name)
            if found is None:
                raise CallStateError(f"call {call.id!r} has no {name} leg")
            legs.append(found)
        return legs

    # -- the handlers, one per command -----------------------------------------------------------------------

    def hold(self, command: CallHold, now: float, sink: Sink, cmd_id: str) -> Flow:
        return self._hold(command.callid, command.leg, now, sink, cmd_id, hold=True)

    def unhold(self, command: CallUnHold, now: float, sink: Sink, cmd_id: str) -> Flow:
        return self._hold(command.callid, command.leg, now, sink, cmd_id, hold=False)

    def _hold(self, callid: str, leg: LegName | None, now: float, sink: Sink, cmd_id: str, *, hold: bool) -> Flow:
        call = self.find(callid)
        self._free(call)
        if call.state is not CallState.ANSWERED:
            raise CallStateError(f"call {callid!r} is not answered ({call.state.value})")
        legs = self._legs(call, leg)
        if not all(x.confirmed for x in legs):
            raise CallStateError(f"call {callid!r} is not fully set up yet")
        flow = HoldFlow(call, sink, legs, hold=hold, cmd_id=cmd_id)
        flow.start(now)
        return flow

    def dial(self, command: CallStart, now: float, sink: Sink, cmd_id: str) -> Flow:
        """Click-to-dial: call ``caller``, then REFER it to ``callee``."""
        try:
            return CallStartFlow(self.b2bua, sink, command.caller, command.callee, now, cmd_id)
        except SipError as error:
            raise CallStateError(f"cannot call {command.caller!r}: {error}") from error

    def blind_transfer(self, command: CallBlindTransfer, now: float, sink: Sink, cmd_id: str) -> Flow:
        callid, leg = command.callid, command.leg
        call = self.find(callid)
        self._free(call)
        if call.state is not CallState.ANSWERED:
            raise CallStateError(f"call {callid!r} is not answered ({call.state.value})")
        (transferee,) = self._legs(call, leg)
        if not transferee.confirmed:
            raise CallStateError(f"the {leg} of call {callid!r} is not connected")
        if call.busy_with_reinvite(transferee):
            raise CallBusyError(f"the {leg} of call {callid!r} has an INVITE transaction pending")
        flow = BlindTransferFlow(call, sink, self.b2bua, transferee, command.destination, cmd_id)
        flow.start(now)
        return flow

    def attended_transfer(self, command: CallAttendedTransfer, now: float, sink: Sink, cmd_id: str) -> Flow:
        call_a, call_b = self.find(command.callid_a), self.find(command.callid_b)
        if call_a is call_b:
            raise CallStateError("the two Call-IDs name the same call")
        for call in (call_a, call_b):
            self._free(call)
            if call.state is not CallState.ANSWERED:
                raise CallStateError(f"call {call.id!r} is not answered ({call.state.value})")
        (transferee,) = self._legs(call_a, command.leg_a)
        (target,) = self._legs(call_b, command.leg_b)
        if not (transferee.confirmed and target.confirmed):
            raise CallStateError("both legs must be connected")
        destination = command.destination
        if destination is None:
            identity = identity_of(target)
            if identity is None:
                raise CallStateError(f"no URI known for the {command.leg_b} of call {command.callid_b!r}")
            destination = parse_name_addr(identity).uri_text
        flow = AttendedTransferFlow(call_a, sink, self.b2bua, transferee, call_b, target, destination, cmd_id)
        flow.start(now)
        return flow

    def end(self, command: CallEnd, now: float, sink: Sink, cmd_id: str) -> Flow:
        call = self.find(command.callid)
        self._free(call)
        flow = EndFlow(call, sink, cmd_id)
        flow.start(now)
        return flow

    # -- the queries (live call state) --------------------------------------------------------------------------

    def call_list(self, query: CallList, asker: Asker) -> Page:
        cursor = int(query.cursor) if query.cursor is not None else 0
        return self.b2bua.live.page(query.state, query.limit or DEFAULT_LIMIT, cursor)

    def call_get(self, query: CallGet, asker: Asker) -> Found:
        live = self.b2bua.live
        view = live.view(self.find(query.callid))
        if view is None:
            raise CallNotFoundError(f"no call with Call-ID {query.callid!r}")
        return Found(live.seq, view)

    def subscribe(self, query: Subscribe, asker: Asker) -> Subscribed:
        """Each Call-ID given is followed under the name of the call it belongs to now (the caller leg's
        Call-ID); one no call has yet is followed as given (a call a command is about to make)."""
        names = None
        if query.calls is not None:
            names = []
            for callid in query.calls:
                call = self.b2bua.table.find(callid)
                names.append(call.id if call is not None else callid)
        live = self.b2bua.live
        sub, backlog = live.subscribe(asker.deliver, query.since, names)
        asker.subscriptions[sub.id] = sub
        return Subscribed(sub.id, live.seq, tuple(backlog))

    def unsubscribe(self, query: Unsubscribe, asker: Asker) -> Unsubscribed:
        if asker.subscriptions.pop(query.subscription, None) is None:
            raise SubscriptionNotFoundError(f"no subscription {query.subscription!r} on this connection")
        self.b2bua.live.unsubscribe(query.subscription)
        return Unsubscribed(query.subscription)


C = TypeVar("C", bound=Command)
Q = TypeVar("Q", bound=Query)


@dataclass(frozen=True, slots=True)
class Row(Generic[C]):
    """One command: its parameters dataclass (whose class name is the API method) and its handler."""

    command: type[C]
    """The command's parameters; the class name is the method's documented name."""
    handler: Callable[[Control, C, float, Sink, str], Flow]
    """Starts the command's flow on a :class:`Control`, or raises ControlError."""
    aliases: tuple[str, ...] = ()
    """Other accepted spellings of the method name."""

    @property
    def name(self) -> str:
        return self.command.__name__

    def run(self, control: Control, command: Command, now: float, sink: Sink, cmd_id: str) -> Flow:
        if not isinstance(command, self.command):
            raise TypeError(f"{type(command).__name__} given to the handler of {self.name}")
        return self.handler(control, command, now, sink, cmd_id)


def row(command: type[C], handler: Callable[[Control, C, float, Sink, str], Flow], *aliases: str) -> Row[Any]:
    """A row of :data:`COMMANDS`, checked by the type checker: ``handler`` takes ``command``."""
    return Row(command, handler, aliases)


@dataclass(frozen=True, slots=True)
class QueryRow(Generic[Q]):
    """One query: its parameters dataclass (named as the method) and the handler that answers it at once."""

    command: type[Q]
    """The query's parameters; the class name is the method's documented name."""
    handler: Callable[[Control, Q, Asker], Answer]
    """Answers the query on a :class:`Control` for an :class:`~.live.Asker`, or raises ControlError."""
    aliases: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.command.__name__

    def answer(self, control: Control, query: Query, asker: Asker) -> Answer:
        if not isinstance(query, self.command):
            raise TypeError(f"{type(query).__name__} given to the handler of {self.name}")
        return self.handler(control, query, asker)


def query_row(command: type[Q], handler: Callable[[Control, Q, Asker], Answer]) -> QueryRow[Any]:
    """A query row of :data:`COMMANDS`, checked by the type checker: ``handler`` takes ``command``."""
    return QueryRow(command, handler)


#: Every method, in the order docs/API.md lists them: the commands, then the queries.
COMMANDS: Final[tuple[Row[Any] | QueryRow[Any], ...]] = (
    row(CallStart, Control.dial),
    row(CallBlindTransfer, Control.blind_transfer),
    row(CallAttendedTransfer, Control.attended_transfer),
    row(CallHold, Control.hold),
    row(CallUnHold, Control.unhold, "CallUnhold"),
    row(CallEnd, Control.end),
    query_row(CallList, Control.call_list),
    query_row(CallGet, Control.call_get),
    query_row(Subscribe, Control.subscribe),
    query_row(Unsubscribe, Control.unsubscribe),
)

#: The row of each command and query type.
BY_TYPE: Final[Mapping[type[Command], Row[Any] | QueryRow[Any]]] = {row.command: row for row in COMMANDS}
