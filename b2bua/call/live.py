"""Live call state, sans I/O: every change of every call as a numbered event, the last N kept for resync, and
the snapshots the queries answer with (docs/API.md, "Live call state").

:class:`LiveCalls` observes the call layer through a few hooks (the B2BUA, :class:`~.call.Call` and the flows
call it). Each change becomes one :class:`CallEvent` with a service-wide ``seq`` that grows by exactly one,
kept in a ring buffer of the last ``size`` events and handed to each subscriber whose filter takes it. A
snapshot (:meth:`LiveCalls.page`, :meth:`LiveCalls.view`) names the ``seq`` it is consistent with, so
``CallList`` then ``Subscribe {"since": seq}`` rebuilds the table without gap or duplicate.

Events are stamped with an injected wall clock, as ids are injected elsewhere (the shell passes
``time.time``): the hooks sit where the call layer has no ``now`` (:meth:`Call.move` on the end path), and
the API shows wall time. Every event also applies by value (a state, a direction, a flag), so replaying
events over a snapshot newer than their ``seq`` converges on the present.

Where the contract is silent: ``ending`` is an event too (the first leg is over, the other is being ended),
since the call's ``state`` shows it; a call's end reason is its first cause (a BYE, a CANCEL, a failure, the
answer timeout, a command), or ``shutdown`` for calls ended while the service stops.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

from ..errors import EventsLostError, SinceAheadError
from ..sip.address import Destination
from .call import Call, CallState
from .events import LegCancelled, LegEnded, LegEvent, LegFailed
from .leg import LEG_NAMES, Leg
from .snapshot import CallView, command_view, first_direction, leg_view

if TYPE_CHECKING:
    from .flows.base import Flow

logger = logging.getLogger("call_api.call.live")

EventName = Literal["created", "ringing", "answered", "media", "held", "resumed", "transferred", "replaced",
                    "command", "ending", "ended"]
#: A value an event carries besides its envelope.
Detail = str | int | float | bool | None | CallView

#: Events kept for resync when no size is given (``--event-buffer``).
DEFAULT_BUFFER: Final = 10_000


@dataclass(frozen=True, slots=True)
class CallEvent:
    """One change of one call: ``callid`` is the call's name when it happened; ``detail`` the event's fields."""

    seq: int
    time: float
    callid: str
    event: EventName
    detail: tuple[tuple[str, Detail], ...] = ()

    def get(self, name: str) -> Detail:
        """The detail called ``name``, or None."""
        for key, value in self.detail:
            if key == name:
                return value
        return None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of ``CallList``: the calls, the ``seq`` they are consistent with, and the next page's cursor."""

    seq: int
    calls: tuple[CallView, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Found:
    """``CallGet``'s answer: the call, and the ``seq`` it is consistent with."""

    seq: int
    call: CallView


@dataclass(frozen=True, slots=True)
class Subscribed:
    """``Subscribe``'s answer: the subscription, the ``seq`` of the last event now, and the buffered events after
    ``since`` that it gets first (sent right after the answer)."""

    subscription: str
    seq: int
    backlog: tuple[CallEvent, ...]


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    """``Unsubscribe``'s answer."""

    subscription: str


#: What a query answers.
Answer = Page | Found | Subscribed | Unsubscribed

Deliver = Callable[["Subscription", CallEvent], None]


@dataclass(eq=False, slots=True)
class Subscription:
    """A subscriber's filter and where its events go; ``names`` None follows every call."""

    id: str
    names: set[str] | None
    deliver: Deliver

    def wants(self, event: CallEvent) -> bool:
        return self.names is None or event.callid in self.names


@dataclass(eq=False, slots=True)
class Asker:
    """Who asks the queries (one API connection): where its subscriptions' events go, and which are its own."""

    deliver: Deliver
    subscriptions: dict[str, Subscription] = field(default_factory=dict)


@dataclass(slots=True)
class _LegRecord:
    hop: Destination | None
    direction: str | None


@dataclass(slots=True)
class _CallRecord:
    name: str
    created: float
    created_seq: int
    answered: float | None = None
    cause: tuple[tuple[str, Detail], ...] | None = None
    legs: dict[Leg, _LegRecord] = field(default_factory=dict)


def _wall_clock_unset() -> float:
    return 0.0


class LiveCalls:
    """The observer of the call layer: events, their ring buffer, the subscriptions and the snapshots."""

    def __init__(self, clock: Callable[[], float] = _wall_clock_unset, size: int = DEFAULT_BUFFER) -> None:
        if size < 1:
            raise ValueError("the event buffer holds at least one event")
        #: Wall-clock seconds since the epoch (``time.time`` in the service).
        self.clock = clock
        #: The ``seq`` of the last event (0 before the first).
        self.seq = 0
        self.buffer: deque[CallEvent] = deque(maxlen=size)
        #: The calls observed and not ended, in the order they were created.
        self._calls: dict[Call, _CallRecord] = {}
        self._subs: dict[str, Subscription] = {}
        self._next_sub = 0
        #: The service is stopping: calls that end from now on end for that reason.
        self.closing = False

    # -- hooks: the call layer tells what changed ----------------------------------------------------------

    def created(self, call: Call) -> None:
        """A call entered the call table (a phone's INVITE, or a command's own INVITE)."""
        if call in self._calls:
            return
        now = self.clock()
        record = _CallRecord(call.id, now, self.seq + 1)
        for leg in call.legs.values():
            record.legs[leg] = _LegRecord(leg.next_hop, first_direction(leg.received_sdp))
        self._calls[call] = record
        call.observer = self
        self._emit(now, call.id, "created", (("call", self._view(call, record)),))

    def ringing(self, call: Call, status: str) -> None:
        """A provisional answer of the callee reached the caller (``status``: its status line)."""
        record = self._calls.get(call)
        if record is not None:
            self._emit(self.clock(), record.name, "ringing", (("status", status), ("state", call.state.value)))

    def moved(self, call: Call, state: CallState) -> None:
        """The call changed state (:meth:`Call.move`); ``ended`` comes after whatever ended with it."""
        record = self._calls.get(call)
        if record is None:
            return
        now = self.clock()
        if state is CallState.ANSWERED:
            record.answered = now
            self._emit(now, record.name, "answered")
        elif state is CallState.ENDING:
            self._emit(now, record.name, "ending")
        elif state is CallState.ENDED:
            del self._calls[call]
            cause = record.cause or (("reason", "shutdown" if self.closing else "bye"),)
            duration = round(now - record.answered, 3) if record.answered is not None else None
            self._emit(now, record.name, "ended", (*cause, ("duration", duration)))

    def leg_event(self, leg: Leg, event: LegEvent) -> None:
        """A leg's event before the call acts on it: what may end the call, remembered as its cause."""
        if isinstance(event, LegCancelled):
            self.cause(leg.call, "cancel")
        elif isinstance(event, LegFailed):
            self.cause(leg.call, "status", ("code", event.status))
        elif isinstance(event, LegEnded) and event.by_remote:
            reason = event.reason
            if reason == "bye":
                self.cause(leg.call, "bye", ("leg", leg.name))
            elif reason[:3].isdigit():
                self.cause(leg.call, "status", ("code", int(reason[:3])))
            else:
                self.cause(leg.call, "timeout")

    def cause(self, call: Call, reason: str, *detail: tuple[str, Detail]) -> None:
        """Why ``call`` ends, if nothing said so first (a call ending while the service stops: ``shutdown``)."""
        record = self._calls.get(call)
        if record is not None and record.cause is None and not self.closing:
            record.cause = (("reason", reason), *detail)

    def sdp_received(self, leg: Leg, *, by_command: bool = False) -> None:
        """The party of ``leg`` sent an SDP (:meth:`Leg.remember_received`): a ``media`` event when the direction
        of its first stream changed; ``by_command`` when it answers the service's own offer (CallHold)."""
        record = self._calls.get(leg.call)
        if record is None:
            return
        leg_record = record.legs.get(leg)
        if leg_record is None:
            return
        direction = first_direction(leg.received_sdp)
        if direction == leg_record.direction or direction is None:
            return
        leg_record.direction = direction
        self._emit(self.clock(), record.name, "media",
                   (("leg", leg.name), ("direction", direction), ("by", "command" if by_command else "party")))

    def held(self, leg: Leg) -> None:
        """CallHold or CallUnHold changed ``leg.held``."""
        record = self._calls.get(leg.call)
        if record is not None:
            self._emit(self.clock(), record.name, "held" if leg.held else "resumed", (("leg", leg.name),))

    def transferred(self, call: Call, leg: Leg, new: str | None) -> None:
        """A REFER the service sent ``leg`` succeeded: that party now talks in call ``new`` (None when its new
        INVITE did not pass through the service)."""
        record = self._calls.get(call)
        if record is not None:
            self._emit(self.clock(), record.name, "transferred",
                       (("leg", leg.name), ("old", leg.call_id), ("new", new)))

    def replaced(self, call: Call, old_name: str, old: Leg, new: Leg) -> None:
        """An INVITE with Replaces (RFC 3891) put ``new`` in the place of ``old``; the call may have a new name."""
        record = self._calls.get(call)
        if record is None:
            return
        record.legs.pop(old, None)
        record.legs[new] = _LegRecord(new.next_hop, first_direction(new.received_sdp))
        record.name = call.id
        for sub in self._subs.values():
            if sub.names is not None and old_name in sub.names:
                sub.names.add(call.id)
        self._emit(self.clock(), old_name, "replaced",
                   (("leg", new.name), ("old", old.call_id), ("new", new.call_id),
                    ("call", self._view(call, record))))

    def command(self, call: Call, flow: Flow, *, started: bool) -> None:
        """``flow`` started on ``call``, or ended (``started`` False) with its outcome."""
        record = self._calls.get(call)
        if record is None:
            return
        outcome = "started" if started else "failed" if flow.failed else "ok"
        self._emit(self.clock(), record.name, "command",
                   (("cmd_id", flow.cmd_id), ("method", flow.name), ("outcome", outcome)))

    # -- queries -------------------------------------------------------------------------------------------

    def view(self, call: Call) -> CallView | None:
        """``call`` as it is now, if observed and not ended."""
        record = self._calls.get(call)
        return None if record is None else self._view(call, record)

    def page(self, state: str | None = None, limit: int = 100, cursor: int = 0) -> Page:
        """Up to ``limit`` calls created after the one ``cursor`` names (0: from the first), in order of
        creation, with the cursor of the next page (None after the last)."""
        calls: list[CallView] = []
        last = cursor
        more = False
        for call, record in self._calls.items():
            if record.created_seq <= cursor or (state is not None and call.state.value != state):
                continue
            if len(calls) == limit:
                more = True
                break
            calls.append(self._view(call, record))
            last = record.created_seq
        return Page(self.seq, tuple(calls), str(last) if more else None)

    def __len__(self) -> int:
        return len(self._calls)

    # -- the stream ----------------------------------------------------------------------------------------

    @property
    def oldest(self) -> int:
        """The ``seq`` of the oldest event still buffered (the next one when none is)."""
        return self.buffer[0].seq if self.buffer else self.seq + 1

    def subscribe(self, deliver: Deliver, since: int | None = None,
                  names: Iterable[str] | None = None) -> tuple[Subscription, list[CallEvent]]:
        """A new subscription and the buffered events after ``since`` it must get first (none without it).

        Raises :class:`EventsLostError` when event ``since + 1`` is no longer buffered, and
        :class:`SinceAheadError` when ``since`` is past the last event."""
        backlog: list[CallEvent] = []
        if since is not None:
            if since > self.seq:
                raise SinceAheadError(f"since {since} is ahead of the last event ({self.seq})", self.seq)
            if since + 1 < self.oldest:
                raise EventsLostError(f"events after {since} are no longer kept; the oldest is {self.oldest}",
                                      self.oldest)
            backlog = [event for event in self.buffer if event.seq > since]
        self._next_sub += 1
        sub = Subscription(f"sub-{self._next_sub}", None if names is None else set(names), deliver)
        self._subs[sub.id] = sub
        return sub, [event for event in backlog if sub.wants(event)]

    def unsubscribe(self, sub_id: str) -> bool:
        """End a subscription; False when there is none by that id."""
        return self._subs.pop(sub_id, None) is not None

    @property
    def subscriptions(self) -> int:
        return len(self._subs)

    # -- inside ----------------------------------------------------------------------------------------------

    def _view(self, call: Call, record: _CallRecord) -> CallView:
        legs = []
        for name in LEG_NAMES:
            leg = call.legs.get(name)
            if leg is None:
                continue
            known = record.legs.get(leg)
            hop, direction = (known.hop, known.direction) if known is not None else (None, None)
            legs.append((name, leg_view(leg.call_id, leg, leg.held, direction, hop)))
        return CallView(record.name, call.state.value, record.created, record.answered, tuple(legs),
                        command_view(call.busy))

    def _emit(self, now: float, callid: str, name: EventName, detail: tuple[tuple[str, Detail], ...] = ()) -> None:
        self.seq += 1
        event = CallEvent(self.seq, now, callid, name, detail)
        self.buffer.append(event)
        if self._subs:
            for sub in list(self._subs.values()):
                if sub.wants(event) and sub.id in self._subs:
                    sub.deliver(sub, event)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("call %s: event %d %s", callid, event.seq, name)

