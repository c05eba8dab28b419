"""The benchmark's eye on a contender process during a step: a thread that samples its CPU seconds and
RSS from /proc at each window's end, and optionally stalls it (SIGSTOP, then SIGCONT after a while) to
show whether the service recovers (issue 12).

One thread for both so that nothing else in the benchmark schedules on its own; it reads /proc a few
times per window, which costs the machine nothing measurable. The process is always sent SIGCONT when
the watch stops, so an interrupted run never leaves a contender frozen.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from dataclasses import dataclass

from benchmarks.series import WINDOW, Sample
from harness.procfs import cpu_seconds, rss_kb


def sample(pid: int) -> Sample | None:
    """The process now, None once it is gone."""
    try:
        return Sample(time.time(), cpu_seconds(pid), rss_kb(pid))
    except (OSError, IndexError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class Stall:
    """SIGSTOP ``at`` seconds after the watch starts, SIGCONT ``length`` seconds later."""

    at: float
    length: float


class Watch:
    """Samples ``pid`` every ``interval`` seconds from ``t0`` (an epoch) until stopped, and applies
    ``stall`` if given; ``stopped_at``/``resumed_at`` are the epochs of the signals actually sent."""

    def __init__(self, pid: int, t0: float, interval: float = WINDOW, stall: Stall | None = None) -> None:
        self.pid = pid
        self.t0 = t0
        self.interval = interval
        self.stall = stall
        self.samples: list[Sample] = []
        self.stopped_at: float | None = None
        self.resumed_at: float | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{pid}", daemon=True)

    def __enter__(self) -> Watch:
        self._take()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self._resume()
        self._take()

    def _take(self) -> None:
        s = sample(self.pid)
        if s is not None:
            self.samples.append(s)

    def _signal(self, sig: signal.Signals) -> bool:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)
            return True
        return False

    def _resume(self) -> None:
        if self.stopped_at is not None and self.resumed_at is None and self._signal(signal.SIGCONT):
            self.resumed_at = time.time()

    def _events(self) -> list[tuple[float, str]]:
        return ([(self.t0 + self.stall.at, "stop"), (self.t0 + self.stall.at + self.stall.length, "resume")]
                if self.stall is not None else [])

    def _run(self) -> None:
        events = self._events()
        k = 1
        while True:
            next_sample = self.t0 + k * self.interval
            due = min([next_sample, *(t for t, _ in events)])
            if self._done.wait(max(0.0, due - time.time())):
                return
            if events and events[0][0] <= time.time():
                _, what = events.pop(0)
                if what == "stop":
                    if self._signal(signal.SIGSTOP):
                        self.stopped_at = time.time()
                else:
                    self._resume()
            if next_sample <= time.time():
                self._take()
                k += 1
