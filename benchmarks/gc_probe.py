"""A ``gc.callbacks`` probe for a benchmarked Python process: copied as ``sitecustomize.py`` into a
folder put first on the contender's ``PYTHONPATH``, so it loads at the interpreter's start without a
change to the program measured (call-api or Sippy alike).

It appends one line per collection that took at least ``$BENCH_GC_PROBE_MIN_MS`` milliseconds (default
1) to the file named by ``$BENCH_GC_PROBE``: ``epoch generation duration_ms collected``, epoch the
wall-clock second the collection ended (so the line lines up with SIPp's statistics and the /proc
samples of the benchmark), duration from ``time.perf_counter``. A threshold rather than every
collection: young collections come hundreds of times a second under load and take microseconds; the
pauses that make SIP retransmit are the long ones. The file is line-buffered so that a process stopped
by SIGTERM or SIGKILL has written every pause before it; writing costs one short line per long pause.
Without ``$BENCH_GC_PROBE`` it does nothing.
"""

from __future__ import annotations

import gc
import os
import time
from typing import IO, Any

PATH_ENV = "BENCH_GC_PROBE"
MIN_MS_ENV = "BENCH_GC_PROBE_MIN_MS"


class Probe:
    """Times each collection between its ``start`` and ``stop`` callbacks and writes the long ones."""

    def __init__(self, out: IO[str], min_ms: float) -> None:
        self.out = out
        self.min_ms = min_ms
        self.started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
            return
        duration_ms = (time.perf_counter() - self.started) * 1000
        if duration_ms >= self.min_ms:
            self.out.write(f"{time.time():.3f} {info['generation']} {duration_ms:.3f} {info['collected']}\n")


def install(environ: dict[str, str] | os._Environ[str] = os.environ) -> Probe | None:
    """Register the probe when ``$BENCH_GC_PROBE`` names a file; the probe, or None."""
    path = environ.get(PATH_ENV)
    if not path:
        return None
    probe = Probe(open(path, "a", buffering=1), float(environ.get(MIN_MS_ENV, "1")))  # noqa: SIM115
    gc.callbacks.append(probe)
    return probe


install()
