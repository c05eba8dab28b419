"""The call-control commands as a sans-I/O API: find the call, check the command fits, start its flow.

A command that cannot start raises a :class:`~b2bua.errors.ControlError` (the API answers it as a JSON-RPC error);
once started, a flow reports :class:`~.events.FlowEvent` steps, at most one
:class:`~.events.FlowError`, and exactly one :class:`~.events.FlowEnded`, through its sink.
"""

from __future__ import annotations

from ..errors import CallBusyError, CallNotFoundError, CallStateError, SipError
from ..sip.headers import parse_name_addr
from .b2bua import B2bua
from .call import Call, CallState
from .flows.attended_transfer import AttendedTransferFlow
from .flows.base import Flow, Sink
from .flows.blind_transfer import BlindTransferFlow, identity_of
from .flows.end import EndFlow
from .flows.hold import HoldFlow
from .flows.start import CallStartFlow
from .leg import Leg


class Control:
    """Starts commands on the B2BUA's calls."""

    def __init__(self, b2bua: B2bua) -> None:
        self.b2bua = b2bua

    def find(self, callid: str) -> Call:
        call = self.b2bua.table.find(callid)
        if call is None or call.ended:
            raise CallNotFoundError(f"no call with Call-ID {callid!r}")
        return call

    def _free(self, call: Call) -> None:
        busy = call.busy
        if isinstance(busy, Flow) and not busy.done:
            raise CallBusyError(f"call {call.id!r} is busy with {busy.name} ({busy.cmd_id})")

    def _legs(self, call: Call, leg: str | None) -> list[Leg]:
        names = ["caller", "callee"] if leg is None else [leg]
        legs = []
        for name in names:
            found = call.legs.get(name)  # type: ignore[call-overload]
            if found is None:
                raise CallStateError(f"call {call.id!r} has no {name} leg")
            legs.append(found)
        return legs

    def call_hold(self, callid: str, leg: str | None, now: float, sink: Sink, cmd_id: str = "") -> Flow:
        return self._hold(callid, leg, now, sink, cmd_id, hold=True)

    def call_unhold(self, callid: str, leg: str | None, now: float, sink: Sink, cmd_id: str = "") -> Flow:
        return self._hold(callid, leg, now, sink, cmd_id, hold=False)

    def _hold(self, callid: str, leg: str | None, now: float, sink: Sink, cmd_id: str, *, hold: bool) -> Flow:
        call = self.find(callid)
        self._free(call)
        if call.state is not CallState.ANSWERED:
            raise CallStateError(f"call {callid!r} is not answered ({call.state.value})")
        legs = self._legs(call, leg)
        if not all(x.session.confirmed for x in legs):
            raise CallStateError(f"call {callid!r} is not fully set up yet")
        flow = HoldFlow(call, sink, legs, hold=hold, cmd_id=cmd_id)
        flow.start(now)
        return flow

    def call_start(self, caller: str, callee: str, now: float, sink: Sink, cmd_id: str = "") -> Flow:
        """Click-to-dial: call ``caller``, then REFER it to ``callee``."""
        try:
            return CallStartFlow(self.b2bua, sink, caller, callee, now, cmd_id)
        except SipError as error:
            raise CallStateError(f"cannot call {caller!r}: {error}") from error

    def call_blind_transfer(self, callid: str, leg: str, destination: str, now: float, sink: Sink,
                            cmd_id: str = "") -> Flow:
        call = self.find(callid)
        self._free(call)
        if call.state is not CallState.ANSWERED:
            raise CallStateError(f"call {callid!r} is not answered ({call.state.value})")
        (transferee,) = self._legs(call, leg)
        if not transferee.session.confirmed:
            raise CallStateError(f"the {leg} of call {callid!r} is not connected")
        if call.busy_with_reinvite(transferee):
            raise CallBusyError(f"the {leg} of call {callid!r} has an INVITE transaction pending")
        flow = BlindTransferFlow(call, sink, self.b2bua, transferee, destination, cmd_id)
        flow.start(now)
        return flow

    def call_attended_transfer(self, callid_a: str, leg_a: str, callid_b: str, leg_b: str, destination: str | None,
                               now: float, sink: Sink, cmd_id: str = "") -> Flow:
        call_a, call_b = self.find(callid_a), self.find(callid_b)
        if call_a is call_b:
            raise CallStateError("the two Call-IDs name the same call")
        for call in (call_a, call_b):
            self._free(call)
            if call.state is not CallState.ANSWERED:
                raise CallStateError(f"call {call.id!r} is not answered ({call.state.value})")
        (transferee,) = self._legs(call_a, leg_a)
        (target,) = self._legs(call_b, leg_b)
        if not (transferee.session.confirmed and target.session.confirmed):
            raise CallStateError("both legs must be connected")
        if destination is None:
            identity = identity_of(target)
            if identity is None:
                raise CallStateError(f"no URI known for the {leg_b} of call {callid_b!r}")
            destination = parse_name_addr(identity).uri_text
        flow = AttendedTransferFlow(call_a, sink, self.b2bua, transferee, call_b, target, destination, cmd_id)
        flow.start(now)
        return flow

    def call_end(self, callid: str, now: float, sink: Sink, cmd_id: str = "") -> Flow:
        call = self.find(callid)
        self._free(call)
        flow = EndFlow(call, sink, cmd_id)
        flow.start(now)
        return flow
