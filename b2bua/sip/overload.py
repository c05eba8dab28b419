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
run (a long garbage collection, a SIGSTOP, a noisy neighbour), not that traffic outgrew it. And it hands the
monitor the loop thread's CPU time with every probe, which tells the two causes of a standing queue apart
when no single pause is long enough to be a stall: a queue that stands means a datagram is always waiting,
so a loop that is the cause runs all the time; one that ran less than :attr:`~OverloadSettings.busy` of a
period while its queue stood was **starved** (the host gave its core to something else in slices too short
to see: a noisy neighbour, a VM's steal time, a blocking disk write), and the time it did not run counts as
a stall.

The policy, a table like the transaction machines (:data:`OVERLOAD_TABLE`):

* ``ADMITTING``: every call is admitted. A delay above :attr:`~OverloadSettings.high` in every
  measurement for :attr:`~OverloadSettings.sustain` seconds (a standing queue) while the loop ran flat out
  means the service is behind: ``SHEDDING``. A stall, or a period starved with a queue standing, means the
  backlog is the host's, not the load's: ``EXCUSED``.
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
    #: A standing queue above this for ``sustain`` seconds (one period) while the loop runs flat out is an
    #: overload. Issue 12 wants the admitted calls' INVITE->200 p99 under 200 ms, and a call waits in the
    #: queue twice (its INVITE, then the callee's 200), so the queue must not stand long above 100 ms.
    #: The first version shed at 300 ms held for 0.2 s: 60 s at 1.5x, 2x and 3x the clean rate gave p99s
    #: of 640-744 ms (2026-12-04), most of it the onset and the swings of the share. 2026-12-06, 1.5x and
    #: 3x of 900/s, same host and hour (docs/RELIABILITY.md): 300 ms / 0.2 s / steer under 50 ms, p99
    #: 672 ms at 1.5x (30 s); 100 ms / 0.1 s / 50 ms, 224 and 332 ms (30 s); these defaults, 208 and
    #: 276 ms (20 s), what is left being mostly the first second of the overload. The
    #: price: at the very edge of capacity (a 20 s step whose queue creeps up to 170 ms, p99 344 ms) the
    #: service now refuses 4-5 % of the calls where the first version let the queue grow. The false alarms
    #: that made the first version cautious (a shared host's noise) are the starvation test's (``busy``).
    high: float = 0.1
    sustain: float = 0.05
    #: While overloaded, the standing queue the controller steers under (the admitted calls' setup time
    #: grows by about twice this); under it, with every call admitted again for ``calm`` seconds, the
    #: overload is over. A calm of 3 s keeps the controller steering through a mild overload (a load a few
    #: percent above capacity fills the queue slowly): with 1 s, at 1,000/s on 2026-12-05, it let go a second
    #: after the share reached 1 and the queue crept back up for seconds before ``high`` caught it again.
    low: float = 0.02
    calm: float = 3.0
    #: A probe timer this much later than asked is a stall of the whole process. Under overload the
    #: loop still runs its timers between batches of datagrams, so the timer stays punctual while the
    #: queue grows.
    gap: float = 0.05
    #: A period whose queue stood above ``low`` while the loop thread ran less than this share of it was
    #: starved by the host, not overloaded: the time it did not run counts as a stall. Measured on
    #: 2026-12-04 (docs/RELIABILITY.md, the 30-minute soak): at 60 % load on a VM whose speed varies, three
    #: standing queues above ``high`` with no single 50 ms pause refused 2,339 calls. A loop that is the
    #: cause of its own queue runs all the time (a datagram is always waiting), so it shows 97-100 %.
    busy: float = 0.9
    #: A stall of g seconds excuses the backlog for max(excuse_min, excuse * g) seconds.
    excuse: float = 5.0
    excuse_min: float = 2.0
    #: The Retry-After of the 503 (whole seconds, RFC 3261 section 20.33).
    retry_after: int = 2
    #: Seconds between two probes, and between two decisions.
    interval: float = 0.02
    period: float = 0.05
    #: Each period while overloaded: the admitted share is multiplied by ``decrease`` when the standing
    #: queue is above ``low`` and grows by ``increase`` when it is under (AIMD, as TCP's congestion
    #: control). Per second that is about the first version's steps (x0.7 and +0.1 every 100 ms), taken in
    #: halves twice as often, so a queue is seen and cut after 50 ms rather than 100.
    decrease: float = 0.85
    increase: float = 0.05

    def __post_init__(self) -> None:
        if not 0 < self.low <= self.high:
            raise ValueError(f"overload thresholds need 0 < low <= high, got low={self.low} high={self.high}")
        for name in ("sustain", "calm", "gap", "excuse", "excuse_min", "interval", "period"):
            if getattr(self, name) <= 0:
                raise ValueError(f"overload {name} must be positive, got {getattr(self, name)}")
        if not 0 < self.busy <= 1:
            raise ValueError(f"overload busy must be in (0, 1], got {self.busy}")
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
        #: The longest stall seen (seconds), the last one, and how many; of those, how many were periods
        #: starved rather than one pause, and whether the last one was.
        self.longest_stall = 0.0
        self.last_stall = 0.0
        self.stalls = 0
        self.starved = 0
        self.last_starved = False
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
        self._period_start = now
        self._period_cpu: float | None = None
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

    def probe(self, now: float, cpu: float | None = None) -> tuple[bytes, tuple[OverloadState, ...]]:
        """The probe datagram to send now, and the states this tick moved through. ``cpu``: the CPU
        seconds the loop's thread has used so far (any origin; only differences count), or None when
        unknown (no starvation test)."""
        self._stall(now)
        if self._period_cpu is None:
            self._period_cpu = cpu
        self._next = now + self.settings.interval
        self._seq += 1
        out = self._out
        if len(out) >= _MAX_OUT:
            out.pop(next(iter(out)))
        if out:  # the oldest probe still out: the queue is at least that long
            self._period_min = min(self._period_min, now - next(iter(out.values())))
        out[self._seq] = now
        if now >= self._period_end:
            self._close_period(now, cpu)
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
        self._excuse(now, late, starved=False)
        self._period_end = self._period_start = now  # a period that spans a stall says nothing about the load
        self._period_cpu = None
        self._period_min = float("inf")

    def _excuse(self, now: float, late: float, *, starved: bool) -> None:
        self.stalls += 1
        self.starved += starved
        self.last_starved = starved
        self.longest_stall = max(self.longest_stall, late)
        self.last_stall = late
        if self.state is _S.ADMITTING:  # the window opens once; stalls while excused do not extend it
            settings = self.settings
            self._excused_until = now + max(settings.excuse_min, settings.excuse * late)
        self._feed(_I.STALL)

    def _close_period(self, now: float, cpu: float | None) -> None:
        settings = self.settings
        elapsed = settings.period + max(0.0, now - self._period_end)
        standing = self.standing = self._period_min if self._period_min != float("inf") else 0.0
        ran = None if cpu is None or self._period_cpu is None else cpu - self._period_cpu
        wall = now - self._period_start
        self._period_min = float("inf")
        self._period_end = now + settings.period
        self._period_start, self._period_cpu = now, cpu
        state = self.state
        if state is _S.ADMITTING and ran is not None and standing > settings.low and ran < settings.busy * wall:
            # Starved: the queue stood but the loop did not run flat out; the host's doing, not the load's.
            # Only while admitting: once excused, a backlog the window does not drain sheds as after any
            # stall (a host that starves the service for good leaves it less than its load), and while
            # shedding the share is steered by the queue whatever made it.
            self._excuse(now, wall - ran, starved=True)
            return
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
