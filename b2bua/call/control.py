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

from ..errors import CallBusyError, CallNotFoundError, CallStateError, SipError
from ..sip.headers import parse_name_addr
from .b2bua import B2bua
from .call import Call, CallState
from .commands import (
    CallAttendedTransfer,
    CallBlindTransfer,
    CallEnd,
    CallHold,
    CallStart,
    CallUnHold,
    Command,
)
from .flows.attended_transfer import AttendedTransferFlow
from .flows.base import Flow, Sink
from .flows.blind_transfer import BlindTransferFlow, identity_of
from .flows.end import EndFlow
from .flows.hold import HoldFlow
from .flows.start import CallStartFlow
from .leg import LEG_NAMES, Leg, LegName


class Control:
    """Starts commands on the B2BUA's calls."""

    def __init__(self, b2bua: B2bua) -> None:
        self.b2bua = b2bua

    def start(self, command: Command, now: float, sink: Sink, cmd_id: str = "") -> Flow:
        """Start ``command``'s flow, which then reports through ``sink``; raise ControlError when it cannot."""
        row = BY_TYPE.get(type(command))
        if row is None:
            raise TypeError(f"{type(command).__name__} is not a command")
        return row.run(self, command, now, sink, cmd_id)

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


C = TypeVar("C", bound=Command)


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


#: Every command, in the order docs/API.md lists them.
COMMANDS: Final[tuple[Row[Any], ...]] = (
    row(CallStart, Control.dial),
    row(CallBlindTransfer, Control.blind_transfer),
    row(CallAttendedTransfer, Control.attended_transfer),
    row(CallHold, Control.hold),
    row(CallUnHold, Control.unhold, "CallUnhold"),
    row(CallEnd, Control.end),
)

#: The row of each command type.
BY_TYPE: Final[Mapping[type[Command], Row[Any]]] = {row.command: row for row in COMMANDS}
