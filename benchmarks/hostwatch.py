"""The host's own pauses and slowdowns, per CPU: a tiny process pinned to a CPU sleeps ``TICK`` at a time,
writes down each wake-up later than ``MIN_MS`` past its deadline, and after each wake-up times a fixed
piece of work (about 60 us of bytecode), so that a slow call in a benchmark can be told apart from a slow
service.

Why. On a virtual machine the host can take a virtual CPU away for tens of milliseconds (steal time, a
noisy neighbour), and it can also slow one down without taking it away (another guest on the same
physical core's other hyperthread, a lower clock): every process on that CPU then stops or crawls, and
the guest's counters say nothing (``/proc/stat``'s steal stayed at 0-1 jiffy a second while it happened,
2026-12-06). The soak of issue 12 wants INVITE->200 under 100 ms for every call over 30 minutes; its
first run failed that on four windows of 180 with no stall, no starvation and no long collection seen by
the service (docs/RELIABILITY.md). A watcher on the service's CPU and one on SIPp's answer "was the
machine itself paused or slowed then, and on which CPU":

* **late**: a process that only sleeps is woken within a millisecond or two by the kernel even beside a
  busy process of the same priority (CFS wakes a sleeper ahead of a task that has run), so a wake-up
  tens of ms late means the CPU itself did not run;
* **slow**: the median time of the fixed work over ``SPAN`` ticks (100 ms), against its median over the
  last ``HISTORY`` spans (a minute): a loop of integer arithmetic whose data fit in the first-level cache
  runs at the core's speed, so a median 1.5 times the usual means the core ran at two thirds of its
  speed. Written when the speed (usual / median) is at or under ``1 / SLOW``. A hint, not a proof: on a
  CPU shared by several busy processes (SIPp's: two SIPp, the watchers, the network's receive work of
  every datagram SIPp sends, charged to whoever runs) the work is often interrupted, and that CPU's
  readings are noisy (2026-12-06, during a soak at 400 calls/s: the median span's 90th percentile was 1.06
  times its median on the service's CPU, 1.37 times on SIPp's). On the service's CPU it is clean enough
  to name: there, a service queue of 32 ms seen by an OPTIONS ping came with a span at 1.5 times the
  usual, and no late wake-up.

It costs each CPU 100 wake-ups and about 6 ms of work a second (about 1 % of a core, ``ps -o %cpu``),
which is why ``benchmarks.calls`` leaves it off unless asked (``--host-watch``) and the soak, whose
question it answers, turns it on.

Run by the benchmarks, one per CPU::

    taskset -c 0 python -m benchmarks.hostwatch --out FILE [--tick 0.01] [--min-ms 10]

Each line of FILE: the epoch, ``late`` or ``slow``, and the value: ms late, or the speed as a share of the
usual (0.66: two thirds).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from harness.processes import Processes

TICK = 0.01
MIN_MS = 10.0
#: Ticks per speed reading.
SPAN = 10
#: A span whose median work time is at least this many times the usual is written down.
SLOW = 1.25
#: Spans the usual is the median of, and how many it needs before a span is compared with it.
HISTORY = 600
WARM = 10
#: Loop turns of the fixed work (about 60 us on the project's VM).
WORK = 1500

Kind = Literal["late", "slow"]


@dataclass(frozen=True, slots=True)
class HostEvent:
    """One line of a watcher's file: when, which kind, and ms late or the speed's share of the usual."""

    t: float
    kind: Kind
    value: float


def work() -> int:
    """The fixed piece of work: a loop of integer arithmetic, no allocation that lasts."""
    total = 0
    for i in range(WORK):
        total += i * i
    return total


class Watcher:
    """The watcher's arithmetic, without clocks: fed each tick's lateness and work time (seconds), returns
    what to write down."""

    def __init__(self, min_ms: float = MIN_MS, slow: float = SLOW, span: int = SPAN, history: int = HISTORY,
                 warm: int = WARM) -> None:
        self.min_ms, self.slow, self.span, self.warm = min_ms, slow, span, warm
        self._works: list[float] = []
        self._medians: deque[float] = deque(maxlen=history)

    def tick(self, now: float, late: float, worked: float) -> list[HostEvent]:
        out = []
        if late * 1000 >= self.min_ms:
            out.append(HostEvent(now, "late", round(late * 1000, 1)))
        self._works.append(worked)
        if len(self._works) >= self.span:
            median = statistics.median(self._works)
            self._works.clear()
            if len(self._medians) >= self.warm:  # a usual to compare with
                usual = statistics.median(self._medians)
                if median >= usual * self.slow:
                    out.append(HostEvent(now, "slow", round(usual / median, 3)))
            self._medians.append(median)
        return out


def watch(out: IO[str], watcher: Watcher, tick: float = TICK, *, running: Callable[[], bool] = lambda: True,
          clock: Callable[[], float] = time.perf_counter, wall: Callable[[], float] = time.time,
          sleep: Callable[[float], None] = time.sleep, job: Callable[[], object] = work) -> None:
    """Sleep ``tick`` at a time while ``running()``, time ``job`` after each wake-up, and write each event
    ``watcher`` returns as ``"<epoch> <kind> <value>"``, flushed at once (the process is stopped with a
    signal). The job is timed on the wall clock: the thread's CPU time was tried and is worse, since the
    kernel charges the network's receive work (softirqs) to whatever thread it interrupts."""
    while running():
        due = clock() + tick
        sleep(tick)
        woke = clock()
        job()
        worked = clock() - woke
        for event in watcher.tick(wall(), max(0.0, woke - due), worked):
            out.write(f"{event.t:.3f} {event.kind} {event.value:g}\n")
            out.flush()


def read_events(path: Path) -> list[HostEvent]:
    """The events of a watcher's file; a line cut short or unknown is skipped."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(errors="replace").splitlines():
        cells = line.split()
        if len(cells) != 3 or cells[1] not in ("late", "slow"):
            continue
        try:
            out.append(HostEvent(float(cells[0]), "late" if cells[1] == "late" else "slow", float(cells[2])))
        except ValueError:
            continue
    return out


def command(cpu: int, out: Path, tick: float = TICK, min_ms: float = MIN_MS) -> list[str]:
    """The watcher for ``cpu``, pinned there with taskset."""
    return ["taskset", "-c", str(cpu), sys.executable, "-m", "benchmarks.hostwatch", "--out", str(out),
            "--tick", f"{tick:g}", "--min-ms", f"{min_ms:g}"]


@contextlib.contextmanager
def watching(procs: Processes, cpus: Sequence[int], folder: Path, cwd: Path) -> Iterator[dict[int, Path]]:
    """One watcher per CPU of ``cpus`` while the block runs (none when ``cpus`` is empty); yields each
    CPU's file, ``<folder>/hostwatch-cpu<N>.log``."""
    files = {cpu: folder / f"hostwatch-cpu{cpu}.log" for cpu in cpus}
    started = [procs.start(command(cpu, path), cwd=cwd) for cpu, path in files.items()]
    try:
        yield files
    finally:
        for proc in started:
            procs.stop(proc, signal.SIGTERM, grace=2.0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="file of the late wake-ups")
    parser.add_argument("--tick", type=float, default=TICK, help=f"seconds per sleep (default {TICK:g})")
    parser.add_argument("--min-ms", type=float, default=MIN_MS,
                        help=f"shortest lateness written down, ms (default {MIN_MS:g})")
    args = parser.parse_args(argv)
    stop = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    with open(args.out, "w") as out:
        watch(out, Watcher(args.min_ms), args.tick, running=lambda: not stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
