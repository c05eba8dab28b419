"""The service's garbage-collection policy: young collections on a clock, long-lived objects frozen out of
the collector's reach, full collections only when the long-lived heap has really grown.

Why a policy at all. A B2BUA under steady load keeps a large, slowly renewed set of live objects: every
call in progress, and for 64*T1 (32 s) after each call the transactions that absorb retransmissions
(RFC 3261 section 17, RFC 6026). CPython's collector walks every tracked object of a generation when it
collects it, so with its default rules:

* Full collections walk the whole live heap. Measured at 600 bridged calls/s (benchmarks.calls, 240 s):
  the first came at 196-226 s and took 0.99-1.06 s, collecting 0 objects; enough to push SIPp into a
  retransmission storm the service never recovered from (issue 12, docs/RELIABILITY.md). CPython starts
  one when the objects promoted to the oldest generation since the last one exceed a quarter of it; it
  counts promotions, not survivors, so under steady churn (a call's objects promoted, then freed by
  reference counting 32 s later) the count grows without the heap growing and a full walk comes every
  minute or so.
* Young collections come when allocations minus deallocations of tracked objects pass a threshold; under
  steady load the service frees as much as it allocates, the count stalls, and young generations grow to
  tens of thousands of objects before anything collects them (25-63 ms pauses).

The policy:

1. **Young collections on a clock** (:attr:`Collector.pace`, 10 ms): when no collection came by itself
   since the last tick, the collector runs one; every :attr:`Collector.gen1_every`-th (5th) is a gen1 one,
   since ``gc.collect(0)`` never escalates by itself. The clock matters from 64*T1 into a steady load:
   from then on the transactions that end free as many objects as new calls allocate, CPython's own
   trigger (allocations minus deallocations) stalls, and every young collection is the clock's. With a
   50 ms clock and gen1 every second tick (the first version), 60 s at 900 bridged calls/s showed gen0
   pauses of 2-3 ms and gen1 pauses of 15-37 ms from 32 s on (4-5 ms before); with 10 ms and every 5th,
   same host and hour, the longest pause stayed at 5.6 ms and the collector's total time grew from 5.0 %
   to 6.7 % of the core past 32 s (docs/RELIABILITY.md, "Why CPU per call grows after 32 s").
2. **Freeze the survivors.** Right after every collection of gen1 or older (CPython's or ours), its
   survivors (objects that outlived two young collections: long-lived) move to the permanent generation
   with ``gc.freeze()``, an O(1) list splice. The collector never walks them again; reference counting
   still frees them the moment they die, and frees them from the permanent generation too. Gen2 stays
   nearly empty, so a full collection costs next to nothing.
3. **Audit only on runaway growth.** Frozen objects that become *cyclic* garbage would never be
   reclaimed; the call path makes no reference cycles (``tests/test_collector.py`` runs every flow with
   the collector off and checks that nothing is left for it), nor does an ended API connection
   (``tests/test_server.py``; ``rpc.server.untangle`` breaks websockets' own cycles), but libraries may.
   An audit (thaw everything, one full collection, freeze again) walks the whole live heap: about a second
   at 600 bridged calls/s, the very stall this policy exists to avoid. So it is a safety net, not a routine:
   every :attr:`Collector.audit_check` seconds (5) the collector reads how many memory blocks the
   interpreter's allocator holds (``sys.getallocatedblocks()``: a sum over its arenas, microseconds),
   and audits only when that number is above :attr:`Collector.audit_floor` (10,000,000 blocks, about
   a gigabyte of small objects: far above what a loaded service holds, docs/RELIABILITY.md) and has
   grown by :attr:`Collector.audit_growth` since the last audit. The first version read
   ``gc.get_freeze_count()`` instead, once a minute: it walks the frozen list, and with the 2-3 million
   objects of a service at 360 calls/s that walk was itself a 100 ms stall every minute (the overload
   monitor logged each one; docs/RELIABILITY.md). An audit that collects anything is logged as a
   WARNING: it means a reference cycle leaks on some path.

Every collection's pause is recorded per generation in :attr:`Collector.pauses` (for metrics and the
benchmark probe); pauses over :data:`SLOW_PAUSE` are logged at INFO.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from .metrics import GC_SECONDS, Buckets

__all__ = ["Collector", "PauseStats"]

logger = logging.getLogger("call_api.io.collector")

#: The thresholds (gen0, gen1, gen2) the service runs with: CPython's defaults for the young generations;
#: gen2 is kept nearly empty by freezing, so its threshold hardly matters.
THRESHOLDS = (700, 10, 10)
#: Seconds between the collector's ticks.
PACE = 0.01
#: Of the paced young collections, every this many is a gen1 collection.
GEN1_EVERY = 5
#: Seconds between two readings of the allocator's block count.
AUDIT_CHECK = 5.0
#: An audit needs the allocated blocks to have grown by this factor since the last one...
AUDIT_GROWTH = 2.0
#: ... and to number at least this many.
AUDIT_FLOOR = 10_000_000
#: Pauses longer than this (seconds) are logged.
SLOW_PAUSE = 0.05


@dataclass(slots=True)
class PauseStats:
    """Garbage-collection pauses of one generation (audits counted under generation 2)."""

    count: int = 0
    total: float = 0.0
    longest: float = 0.0
    #: Durations in seconds not yet taken by :meth:`Collector.take_pauses` (bounded).
    recent: list[float] = field(default_factory=list)
    #: Every pause, as the ``call_api_gc_pause_seconds`` histogram of ``GET /metrics`` reads it.
    buckets: Buckets = field(default_factory=lambda: Buckets(GC_SECONDS))

    def add(self, seconds: float) -> None:
        self.buckets.observe(seconds)
        self.count += 1
        self.total += seconds
        if seconds > self.longest:
            self.longest = seconds
        if len(self.recent) < 10_000:
            self.recent.append(seconds)


class Collector:
    """Runs the policy in the module docstring on the running event loop: :meth:`start`, :meth:`stop`."""

    def __init__(self, *, pace: float = PACE, gen1_every: int = GEN1_EVERY, audit_growth: float = AUDIT_GROWTH,
                 audit_floor: int = AUDIT_FLOOR, audit_check: float = AUDIT_CHECK, freeze: bool = True) -> None:
        if pace <= 0 or gen1_every < 1 or audit_growth <= 1 or audit_check <= 0:
            raise ValueError("pace > 0, gen1_every >= 1, audit_growth > 1 and audit_check > 0 are required")
        self.pace = pace
        self.gen1_every = gen1_every
        self.audit_growth = audit_growth
        self.audit_floor = audit_floor
        self.audit_check = audit_check
        self.freeze = freeze
        #: Pauses by generation (0, 1, 2).
        self.pauses = (PauseStats(), PauseStats(), PauseStats())
        #: Audits run so far.
        self.audits = 0
        self._handle: asyncio.TimerHandle | None = None
        self._seen = -1
        self._started_at = 0.0
        self._baseline = 0
        self._thresholds: tuple[int, int, int] | None = None
        self._auditing = False
        self._ticks_per_check = max(1, round(audit_check / pace))
        self._ticks = 0

    @property
    def pause_buckets(self) -> tuple[Buckets, Buckets, Buckets]:
        """The pause histogram of each generation (audits under generation 2)."""
        young, middle, old = self.pauses
        return young.buckets, middle.buckets, old.buckets

    # -- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Freeze what start-up made, set the thresholds, start ticking (inside the running loop)."""
        if self._handle is not None:
            return
        self._thresholds = gc.get_threshold()
        gc.collect()
        if self.freeze:
            gc.freeze()
        self._baseline = sys.getallocatedblocks()
        gc.set_threshold(*THRESHOLDS)
        gc.callbacks.append(self._on_gc)
        self._handle = asyncio.get_running_loop().call_later(self.pace, self._tick)

    def stop(self) -> None:
        """Stop ticking and hand the collector back to CPython's own rules (frozen objects stay frozen)."""
        if self._handle is None:
            return
        self._handle.cancel()
        self._handle = None
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        if self._thresholds is not None:
            gc.set_threshold(*self._thresholds)

    # -- what runs -----------------------------------------------------------------------------------------

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        """gc.callbacks hook: time every collection; freeze the survivors of gen1 and older ones."""
        if phase == "start":
            self._started_at = time.perf_counter()
            return
        seconds = time.perf_counter() - self._started_at
        generation = int(info["generation"])
        if not self._auditing:
            self.pauses[generation].add(seconds)
            if seconds > SLOW_PAUSE:
                logger.info("garbage collection of generation %d took %.0f ms", generation, seconds * 1000)
        if generation >= 1 and self.freeze and not self._auditing:
            # The young generations are empty now: what gen2 holds survived two collections.
            gc.freeze()

    def _tick(self) -> None:
        done = _collections()
        if done == self._seen:  # none came by itself since the last tick
            gc.collect(1 if gc.get_count()[1] >= self.gen1_every else 0)
            done += 1  # a collection of gen1 counts once, as one of gen0 does
        self._seen = done
        self._ticks += 1
        if self.freeze and self._ticks >= self._ticks_per_check:
            self._ticks = 0
            blocks = sys.getallocatedblocks()
            if blocks >= self.audit_floor and blocks >= self.audit_growth * self._baseline:
                self.audit()
        self._handle = asyncio.get_running_loop().call_later(self.pace, self._tick)

    def audit(self) -> int:
        """Thaw every frozen object, run one full collection, freeze what survived; the objects collected."""
        frozen = gc.get_freeze_count()
        self._auditing = True
        started = time.perf_counter()
        try:
            gc.unfreeze()
            collected = gc.collect()
            if self.freeze:
                gc.freeze()
        finally:
            self._auditing = False
        seconds = time.perf_counter() - started
        self.pauses[2].add(seconds)
        self.audits += 1
        self._baseline = sys.getallocatedblocks()
        logger.log(logging.WARNING if collected else logging.INFO,
                   "garbage collection audit: %d long-lived objects walked in %.0f ms, %d collected%s", frozen,
                   seconds * 1000, collected, " (a reference cycle leaks somewhere)" if collected else "")
        return collected


def _collections() -> int:
    """Collections of any generation so far (automatic or not)."""
    return sum(stats["collections"] for stats in gc.get_stats())
