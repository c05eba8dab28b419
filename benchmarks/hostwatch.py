"""The host's own pauses, per CPU: a tiny process pinned to a CPU sleeps ``TICK`` at a time and writes down
each wake-up later than ``MIN_MS`` past its deadline, so that a slow call in a benchmark can be told apart
from a slow service.

Why. On a virtual machine the hypervisor can take a virtual CPU away for tens of milliseconds (steal
time, a noisy neighbour); every process on that CPU then stops, and the host does not say so in any counter
a benchmark reads per call (``/proc/stat``'s steal counts jiffies, too coarse for a 100 ms burst). The
soak of issue 12 wants INVITE->200 under 100 ms for every call over 30 minutes; its first run failed
that on four windows of 180 with no stall, no starvation and no long collection seen by the service
(docs/RELIABILITY.md). A watcher on the service's CPU and one on SIPp's answer the question "was the
machine itself paused then, and on which CPU": a process that only sleeps is woken within a millisecond or
two by the kernel even beside a busy process of the same priority (CFS wakes a sleeper ahead of a task
that has run), so a wake-up 20 ms late means the CPU itself did not run. It costs each CPU 100 wake-ups
a second (about 0.3 % of a core, measured with ``taskset -c 1 python -m benchmarks.hostwatch`` and
``ps -o %cpu``), which is why ``benchmarks.calls`` leaves it off unless asked (``--host-watch``) and the
soak, whose question it answers, turns it on.

Run by the benchmarks, one per CPU::

    taskset -c 0 python -m benchmarks.hostwatch --out FILE [--tick 0.01] [--min-ms 10]

Each line of FILE: the epoch of the late wake-up and how late it was, in ms.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

from harness.processes import Processes

TICK = 0.01
MIN_MS = 10.0


def watch(out: IO[str], tick: float = TICK, min_ms: float = MIN_MS, *, running: Callable[[], bool] = lambda: True,
          clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
          sleep: Callable[[float], None] = time.sleep) -> None:
    """Sleep ``tick`` at a time while ``running()``; write ``"<epoch> <ms late>"`` for each wake-up at
    least ``min_ms`` after its deadline, flushed at once (the process is stopped with a signal)."""
    while running():
        due = clock() + tick
        sleep(tick)
        late_ms = (clock() - due) * 1000
        if late_ms >= min_ms:
            out.write(f"{wall():.3f} {late_ms:.1f}\n")
            out.flush()


def read_late(path: Path) -> list[tuple[float, float]]:
    """``(epoch, ms)`` of each late wake-up in a watcher's file; a line cut short is skipped."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(errors="replace").splitlines():
        cells = line.split()
        if len(cells) != 2:
            continue
        try:
            out.append((float(cells[0]), float(cells[1])))
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
        watch(out, args.tick, args.min_ms, running=lambda: not stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
