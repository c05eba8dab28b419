"""Overload control: when the service's own backlog says it cannot keep up, refuse new calls with 503.

Why. A B2BUA over UDP that falls behind does not slow down gracefully: once a message waits longer than
T1 (500 ms) in its receive queue, the peers retransmit it (RFC 3261 section 17.1.1.2), every retransmission
costs work, and the backlog feeds itself. Measured before this module existed (issue 12,
docs/RELIABILITY.md): after a pause of under a second at two thirds of the headline rate, 41 s and in
another run 250 s of retransmission storm. RFC 7339 section 3 describes the remedy in SIP terms: a server
that detects overload rejects new work early and cheaply, with 503 and Retry-After (RFC 3261 section
21.5.4), and keeps serving what it has admitted.

What is measured. The **queue delay**: how long a datagram waits between arriving and being handled. The
shell sends a small probe datagram to its own SIP socket every :attr:`OverloadSettings.interval` seconds;
it queues behind real traffic, so the time until it comes back is exactly the wait a SIP message sees (the
kernel's receive queue and the event loop's lag together). The delay used is the larger of the last probe's
round trip and the age of the oldest probe still out, so a queue that hides a probe counts at once. The
shell also reports **stalls**: its probe timer firing much later than asked means the whole process did not
run (a long garbage collection, a SIGSTOP, a noisy neighbour), not that traffic outgrew it.

The policy, a table like the transaction machines (:data:`OVERLOAD_TABLE`):

* ``ADMITTING``: every call is admitted. A delay above :attr:`~OverloadSettings.high` in every
  measurement for :attr:`~OverloadSettings.sustain` seconds (a standing queue) means the service is
  behind: ``SHEDDING``. A stall means the backlog is the stall's, not the load's: ``EXCUSED``.
* ``EXCUSED``: after a stall of *g* seconds, the backlog it left is given ``max(excuse_min, excuse * g)``
  seconds to drain with every call still admitted; a load the service can carry drains it within that
  (docs/RELIABILITY.md measures a 2 s stall at 60 % load). Calm again: ``ADMITTING``. Still above ``high`` once the
  window closed: ``SHEDDING``. Only a stall while admitting opens the window: a service that stalls again
  and again under its load is overloaded, not unlucky.
* ``SHEDDING``: a fraction of new out-of-dialog INVITEs (:attr:`OverloadMonitor.admit`) is admitted, the
  others get a stateless 503 with Retry-After from the transaction layer (no transaction, no call);
  in-dialog requests, responses, ACK, BYE, CANCEL and retransmissions of admitted INVITEs keep flowing.
  The fraction starts at 0 (the queue drains first), then every :attr:`~OverloadSettings.period`
  shrinks by :attr:`~OverloadSettings.decrease` while the standing queue is above
  :attr:`~OverloadSettings.low` and grows by :attr:`~OverloadSettings.increase` while under it:
  additive increase, multiplicative decrease, which settles near the share of calls the service can
  carry and keeps the queue, and so the admitted calls' setup time, near ``low``. Back at 1 and calm
  (under ``low``) for :attr:`~OverloadSettings.calm` seconds: ``ADMITTING``.

Why a fraction and not on/off. Measured first with on/off (shed everything above ``high``, admit
everything after a calm second): under a steady overload the queue swung between empty and ``high`` plus
what piled up while admitting, and admitted calls near the top of each swing saw their setup time grow
by hundreds of milliseconds. RFC 7339 section 5 (loss-based overload control) lets the server tell its
upstream clients which share of requests to drop; this service applies the share itself, with the 503
each dropped INVITE gets, because the proxies in front (OpenSIPS, Kamailio) do not act on RFC 7339's Via
parameters out of the box and do act on 503 with Retry-After (RFC 3261 section 21.5.4).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from .identity_enum import IdentityEnum

__all__ = ["OVERLOAD_TABLE", "OverloadInput", "OverloadMonitor", "OverloadSettings", "OverloadState"]


@dataclass(frozen=True, slots=True)
class OverloadSettings:
    """The overload controller's thresholds (seconds unless said otherwise).

    Every decision looks at the **smallest** queue delay measured in each ``period``: a standing queue,
    not a burst (CoDel's test for a bad queue, RFC 8289 section 3). Bursts are common and harmless: SIPp
    and proxies send in bursts, and on a shared host a process descheduled for 30-80 ms finds that much
    traffic waiting, which it drains at once.
    """

    #: Off: the probe is not sent and every call is admitted.
    enabled: bool = True
    #: A standing queue above this for ``sustain`` seconds is an overload. 300 ms is under T1 (500 ms), so
    #: a new INVITE still gets its 100 Trying before the caller retransmits it; chosen from the same-run
    #: sweep of 2026-12-04 (docs/RELIABILITY.md), where 150 ms refused 5 % of the calls at 550/s that the
    #: build without overload control carried cleanly.
    high: float = 0.3
    sustain: float = 0.2
    #: While overloaded, the standing queue the controller steers under (the admitted calls' setup time
    #: grows by about twice this); under it, with every call admitted again for ``calm`` seconds, the
    #: overload is over.
    low: float = 0.05
    calm: float = 1.0
    #: A probe timer this much later than asked is a stall of the whole process. Under overload the
    #: loop still runs its timers between batches of datagrams, so the timer stays punctual while the
    #: queue grows.
    gap: float = 0.05
    #: A stall of g seconds excuses the backlog for max(excuse_min, excuse * g) seconds.
    excuse: float = 5.0
    excuse_min: float = 2.0
    #: The Retry-After of the 503 (whole seconds, RFC 3261 section 20.33).
    retry_after: int = 2
    #: Seconds between two probes, and between two decisions.
    interval: float = 0.02
    period: float = 0.1
    #: Each period while overloaded: the admitted share is multiplied by ``decrease`` when the standing
    #: queue is above ``low`` and grows by ``increase`` when it is under (AIMD, as TCP's congestion
    #: control). A period of 100 ms with these steps lets the calls admitted in one period reach the
    #: service (their 200, ACK and BYE) before the next steps far.
    decrease: float = 0.7
    increase: float = 0.1

    def __post_init__(self) -> None:
        if not 0 < self.low <= self.high:
            raise ValueError(f"overload thresholds need 0 < low <= high, got low={self.low} high={self.high}")
        for name in ("sustain", "calm", "gap", "excuse", "excuse_min", "interval", "period"):
            if getattr(self, name) <= 0:
                raise ValueError(f"overload {name} must be positive, got {getattr(self, name)}")
        if not 0 < self.decrease < 1 or not 0 < self.increase <= 1:
            raise ValueError(f"overload decrease must be in (0, 1) and increase in (0, 1], got {self.decrease} "
                             f"and {self.increase}")
        if self.retry_after < 0:
            raise ValueError(f"overload retry_after must not be negative, got {self.retry_after}")


class OverloadState(IdentityEnum):
    ADMITTING = "admitting"
    EXCUSED = "excused"
    SHEDDING = "shedding"


class OverloadInput(IdentityEnum):
    #: The process did not run for a while (a stall): the backlog is the stall's.
    STALL = "stall"
    #: The queue delay is above ``high``.
    BEHIND = "behind"
    #: The queue delay has stayed under ``low`` for ``calm`` seconds.
    CALM = "calm"
    #: The queue delay is above ``high`` after the stall's excuse window closed.
    EXCUSE_OVER = "excuse over"


_S = OverloadState
_I = OverloadInput

#: (state, input) -> next state. Every pair has a row (checked below).
OVERLOAD_TABLE: Final[Mapping[tuple[OverloadState, OverloadInput], OverloadState]] = {
    (_S.ADMITTING, _I.STALL): _S.EXCUSED,
    (_S.ADMITTING, _I.BEHIND): _S.SHEDDING,
    (_S.ADMITTING, _I.CALM): _S.ADMITTING,
    (_S.ADMITTING, _I.EXCUSE_OVER): _S.ADMITTING,
    (_S.EXCUSED, _I.STALL): _S.EXCUSED,
    (_S.EXCUSED, _I.BEHIND): _S.EXCUSED,
    (_S.EXCUSED, _I.CALM): _S.ADMITTING,
    (_S.EXCUSED, _I.EXCUSE_OVER): _S.SHEDDING,
    (_S.SHEDDING, _I.STALL): _S.SHEDDING,
    (_S.SHEDDING, _I.BEHIND): _S.SHEDDING,
    (_S.SHEDDING, _I.CALM): _S.ADMITTING,
    (_S.SHEDDING, _I.EXCUSE_OVER): _S.SHEDDING,
}
assert set(OVERLOAD_TABLE) == {(s, i) for s in OverloadState for i in OverloadInput}, "OVERLOAD_TABLE has gaps"

#: The first byte of a probe datagram: no SIP message (nor a CRLF keep-alive) starts with it.
PROBE_MARK: Final = b"\x00"
_MAX_OUT = 4096


class OverloadMonitor:
    """The controller of the module docstring; sans-I/O: the shell sends what :meth:`probe` returns to its
    own socket, hands back what comes in with :meth:`echo`, and hands :attr:`admit` to the layer.

    :meth:`probe` is due at :meth:`get_timer`; it also detects stalls (the timer late by more than
    ``gap``) and closes a period every ``period`` seconds. Each call returns the states it moved through,
    in order (usually none; a stall with no backlog behind it is ``EXCUSED`` then ``ADMITTING``).
    """

    def __init__(self, settings: OverloadSettings, now: float) -> None:
        self.settings = settings
        self.state = OverloadState.ADMITTING
        #: The last queue delay measured by an echo, and the standing queue of the last period (seconds).
        self.delay = 0.0
        self.standing = 0.0
        #: The longest stall seen (seconds), the last one, and how many.
        self.longest_stall = 0.0
        self.last_stall = 0.0
        self.stalls = 0
        #: How many times the monitor started shedding.
        self.sheds = 0
        #: Probes that came back (with uvloop's millisecond clock a prompt one measures 0.0).
        self.echoes = 0
        #: The share of new calls to admit: 1.0 but while shedding.
        self.admit = 1.0
        self._next = now + settings.interval
        self._seq = 0
        self._out: dict[int, float] = {}
        self._period_end = now + settings.period
        self._period_min = float("inf")
        self._above = 0.0
        self._calm = 0.0
        self._excused_until = now
        self._moves: list[OverloadState] = []

    @property
    def shedding(self) -> bool:
        return self.state is OverloadState.SHEDDING

    def get_timer(self) -> float:
        """When the next probe is due."""
        return self._next

    def probe(self, now: float) -> tuple[bytes, tuple[OverloadState, ...]]:
        """The probe datagram to send now, and the states this tick moved through."""
        self._stall(now)
        self._next = now + self.settings.interval
        self._seq += 1
        out = self._out
        if len(out) >= _MAX_OUT:
            out.pop(next(iter(out)))
        if out:  # the oldest probe still out: the queue is at least that long
            self._period_min = min(self._period_min, now - next(iter(out.values())))
        out[self._seq] = now
        if now >= self._period_end:
            self._close_period(now)
        return PROBE_MARK + self._seq.to_bytes(8, "big"), self._take_moves()

    def echo(self, data: bytes, now: float) -> tuple[OverloadState, ...]:
        """A probe came back (anything else starting with :data:`PROBE_MARK` is ignored); the states
        this moved through."""
        if len(data) != 9:
            return ()
        seq = int.from_bytes(data[1:], "big")
        sent = self._out.get(seq)
        if sent is None:
            return ()
        self._stall(now)
        self.echoes += 1
        out = self._out
        while out:  # the socket keeps order: probes sent before this one are lost, not late
            first = next(iter(out))
            del out[first]
            if first == seq:
                break
        self.delay = now - sent
        self._period_min = min(self._period_min, self.delay)
        return self._take_moves()

    def _take_moves(self) -> tuple[OverloadState, ...]:
        if not self._moves:
            return ()
        moves = tuple(self._moves)
        self._moves.clear()
        return moves

    def _stall(self, now: float) -> None:
        """The probe timer late by ``gap`` or more: the process did not run. Checked by an echo too, since
        after a stall the loop may read the socket before it runs its timers."""
        late = now - self._next
        if late < self.settings.gap:
            return
        self._next = now  # due now: the stall is counted once
        self.stalls += 1
        self.longest_stall = max(self.longest_stall, late)
        self.last_stall = late
        if self.state is _S.ADMITTING:  # the window opens once; stalls while excused do not extend it
            settings = self.settings
            self._excused_until = now + max(settings.excuse_min, settings.excuse * late)
        self._feed(_I.STALL)
        self._period_end = now  # a period that spans a stall says nothing about the load
        self._period_min = float("inf")

    def _close_period(self, now: float) -> None:
        settings = self.settings
        elapsed = settings.period + max(0.0, now - self._period_end)
        standing = self.standing = self._period_min if self._period_min != float("inf") else 0.0
        self._period_min = float("inf")
        self._period_end = now + settings.period
        state = self.state
        if state is _S.SHEDDING:
            if standing > settings.low:
                self.admit *= settings.decrease
                self._calm = 0.0
            else:
                self.admit = min(1.0, self.admit + settings.increase)
                self._calm = self._calm + elapsed if self.admit >= 1.0 else 0.0
                if self._calm >= settings.calm - 1e-9:
                    self._feed(_I.CALM)
            return
        if state is _S.EXCUSED:
            if standing < settings.low:
                self._feed(_I.CALM)
            elif standing > settings.high and now >= self._excused_until:
                self._feed(_I.EXCUSE_OVER)
            return
        self._above = self._above + elapsed if standing > settings.high else 0.0
        if self._above >= settings.sustain - 1e-9:
            self._feed(_I.BEHIND)

    def _feed(self, event: OverloadInput) -> None:
        before = self.state
        after = OVERLOAD_TABLE[before, event]
        if after is not before:
            self.state = after
            self.sheds += after is _S.SHEDDING
            self.admit = 0.0 if after is _S.SHEDDING else 1.0  # drain the queue first, then steer
            self._above = self._calm = 0.0
            self._moves.append(after)
