"""A benchmark step as a time series: what happened in each window (10 s by default) of a step, so that
a collapse after minutes shows where a whole-step total would hide it (issue 12).

Pure functions over what the step's processes left behind, shared by ``benchmarks.calls``,
``benchmarks.soak`` and ``benchmarks.overload`` and fed with small files in the tests:

- SIPp's periodic dumps (``-fd 1``: one row a second, every counter cumulative): the counts file of
  each SIPp (per message: ``_Retrans`` columns, and the second ``<recv>`` of a request, the scenario's
  catch for a retransmission) and the statistics file (``DeadCallMsgs(C)``: messages for a call already
  over, always a late retransmission; ``CurrentCall``: calls in flight at the caller). The same three
  sources as a step's total in ``benchmarks.calls``, so a clean step has a zero in every window. A
  retransmission is dated by the dump that first counts it, so to the second at worst.
- the contender's CPU seconds and RSS, sampled from /proc by ``benchmarks.watch`` at each window's
  end;
- the ``gc.callbacks`` probe's pauses (``benchmarks.gc_probe``);
- SIPp's ``-trace_rtt -rtt_freq 1`` file: each call's INVITE->200 time (the ``setup`` response time
  of the scenario), dated in milliseconds since SIPp started. Chosen over the response-time repartition
  because it gives an exact maximum and percentile rather than a bucket; its values are SIPp's clock
  ticks (whole milliseconds, a few ms of resolution), far below the 100 and 200 ms bars they are held
  against. ``-rtt_freq 1`` because SIPp writes nothing for a last batch smaller than the frequency.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.hostwatch import HostEvent
from harness.sipp_stats import int_field

#: Seconds per window of the series.
WINDOW = 10.0
#: The name of the INVITE->200 response time in the benchmark scenarios (``start_rtd``/``rtd``).
SETUP_RTD = "setup"


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile ``p`` (0-100) of ``values``; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def sipp_epoch(value: str) -> float:
    """The epoch seconds at the end of SIPp's ``date<TAB>time<TAB>epoch`` time cells."""
    return float(value.split("\t")[-1])


# -- counters over time ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Counter:
    """A cumulative counter at increasing epoch times (SIPp's dumps), zero before the first."""

    times: tuple[float, ...]
    values: tuple[int, ...]

    def at(self, t: float) -> int:
        """The value last dumped at or before ``t``."""
        i = bisect.bisect_right(self.times, t)
        return self.values[i - 1] if i else 0

    def between(self, start: float, end: float) -> int:
        """The increase dumped in ``(start, end]``."""
        return self.at(end) - self.at(start)

    def rises(self) -> list[float]:
        """The times of the dumps that counted something new."""
        previous = 0
        out = []
        for t, v in zip(self.times, self.values, strict=True):
            if v > previous:
                out.append(t)
            previous = v
        return out


def retransmission_columns(keys: Iterable[str]) -> list[str]:
    """The columns of a SIPp counts file that count retransmissions: every ``<n>_<msg>_Retrans`` (messages
    it resent, and retransmissions it received of one it had), and the ``_Recv`` of a request the scenario
    receives a second time (bench_uas.xml's catch for a retransmitted BYE or ACK)."""
    out, seen = [], set()
    for key in keys:
        msg, _, kind = key.rpartition("_")
        method = msg.partition("_")[2]
        if kind == "Retrans":
            out.append(key)
        elif kind == "Recv" and method.isalpha():
            if method in seen:
                out.append(key)
            seen.add(method)
    return out


def counts_retransmissions(rows: list[dict[str, str]]) -> Counter:
    """The retransmissions of a SIPp counts file (``-trace_counts -fd 1``) over time."""
    if not rows:
        return Counter((), ())
    columns = retransmission_columns(rows[0])
    return Counter(tuple(sipp_epoch(r["CurrentTime"]) for r in rows),
                   tuple(sum(int_field(r, c) for c in columns) for r in rows))


def stat_counter(rows: list[dict[str, str]], key: str) -> Counter:
    """One column of a SIPp statistics file (``-trace_stat -fd 1``) over time."""
    return Counter(tuple(sipp_epoch(r["CurrentTime"]) for r in rows), tuple(int_field(r, key) for r in rows))


@dataclass(frozen=True, slots=True)
class Retransmissions:
    """Every retransmission counter of a step: both SIPp's counts and their dead-call messages."""

    counters: tuple[Counter, ...]

    @classmethod
    def of(cls, counts: Iterable[list[dict[str, str]]], stats: Iterable[list[dict[str, str]]]) -> Retransmissions:
        return cls((*(counts_retransmissions(rows) for rows in counts),
                    *(stat_counter(rows, "DeadCallMsgs(C)") for rows in stats)))

    def between(self, start: float, end: float) -> int:
        return sum(c.between(start, end) for c in self.counters)

    def last_after(self, t: float) -> float | None:
        """Seconds from ``t`` to the last dump after it that counted a retransmission; None if none did."""
        later = [r for c in self.counters for r in c.rises() if r > t]
        return max(later) - t if later else None


# -- the other sources -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    """The contender at one moment, from /proc: CPU seconds so far (utime+stime) and VmRSS."""

    t: float
    cpu: float
    rss_kb: int


@dataclass(frozen=True, slots=True)
class GcPause:
    """One collection reported by the probe: when it ended, its generation, how long, objects freed."""

    t: float
    generation: int
    ms: float
    collected: int


def read_gc(path: Path) -> list[GcPause]:
    """The probe's file; a line cut short (the process killed while writing) is skipped."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(errors="replace").splitlines():
        cells = line.split()
        if len(cells) != 4:
            continue
        try:
            out.append(GcPause(float(cells[0]), int(cells[1]), float(cells[2]), int(cells[3])))
        except ValueError:
            continue
    return out


def read_rtt(path: Path, sipp_start: float, rtd: str = SETUP_RTD) -> list[tuple[float, float]]:
    """``(epoch, ms)`` of each ``rtd`` response time in a SIPp ``-trace_rtt`` file, whose first column is
    milliseconds since ``sipp_start`` (SIPp's StartTime)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(errors="replace").splitlines()[1:]:
        cells = line.split(";")
        if len(cells) >= 3 and cells[2] == rtd:
            try:
                out.append((sipp_start + float(cells[0]) / 1000, float(cells[1])))
            except ValueError:
                continue
    return out


# -- windows -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    """What one window of a step saw. ``start``/``end`` in seconds since the step's start; ``created`` the
    calls the caller placed in it; ``cpu_s`` the contender's CPU seconds in it and ``cpu_pct`` the same
    as a share of one core; ``gc_max_ms`` None when no collection reached the probe's threshold;
    ``setup_max_ms`` None when no call was answered in it."""

    start: float
    end: float
    retransmissions: int
    in_flight: int
    created: int
    cpu_s: float | None
    cpu_pct: float | None
    rss_mb: float | None
    gc_max_ms: float | None
    setup_max_ms: float | None
    #: Per CPU the host watchers (benchmarks.hostwatch) ran on, in the order given (empty when none ran):
    #: the longest late wake-up in the window, ms (0.0: none at or above their threshold), and the lowest
    #: speed, as a share of the CPU's usual (1.0: no slow span).
    host_late_ms: tuple[float, ...] = ()
    host_speed: tuple[float, ...] = ()


def windows(t0: float, t_end: float, retrans: Retransmissions, in_flight: Counter, created: Counter,
            samples: Sequence[Sample], pauses: Sequence[GcPause], setups: Sequence[tuple[float, float]],
            width: float = WINDOW, host: Sequence[Sequence[HostEvent]] = ()) -> list[Window]:
    """The step from ``t0`` to ``t_end`` (epochs) cut into windows of ``width`` seconds, the last one
    shorter. CPU % is the CPU seconds between the samples nearest each window's bounds over the time
    between them; RSS the first sample after the window's start (the one taken at its end); calls in
    flight the caller's highest dump in it; ``host`` the host watchers' events, one list per CPU."""
    out = []
    n = max(1, math.ceil((t_end - t0) / width - 1e-9))
    ordered = sorted(samples, key=lambda s: s.t)
    for k in range(n):
        a, b = t0 + k * width, min(t0 + (k + 1) * width, t_end)
        inside = [s for s in ordered if a - width / 2 < s.t <= b + width / 2]
        first = min(inside, key=lambda s: abs(s.t - a), default=None)
        last = min(inside, key=lambda s: abs(s.t - b), default=None)
        cpu_s: float | None = None
        cpu_pct: float | None = None
        if first is not None and last is not None and last.t > first.t:
            cpu_s = last.cpu - first.cpu
            cpu_pct = 100 * cpu_s / (last.t - first.t)
        rss = [s.rss_kb for s in ordered if a < s.t <= b + width / 2]
        flights = [v for t, v in zip(in_flight.times, in_flight.values, strict=True) if a < t <= b]
        gc_ms = [p.ms for p in pauses if a < p.t <= b]
        setup_ms = [ms for t, ms in setups if a < t <= b]
        out.append(Window(start=a - t0, end=b - t0, retransmissions=retrans.between(a, b),
                          in_flight=max(flights, default=in_flight.at(b)), created=created.between(a, b),
                          cpu_s=cpu_s, cpu_pct=cpu_pct,
                          rss_mb=rss[0] / 1024 if rss else None, gc_max_ms=max(gc_ms, default=None),
                          setup_max_ms=max(setup_ms, default=None),
                          host_late_ms=tuple(max((e.value for e in cpu if e.kind == "late" and a < e.t <= b),
                                                 default=0.0) for cpu in host),
                          host_speed=tuple(min((e.value for e in cpu if e.kind == "slow" and a < e.t <= b),
                                               default=1.0) for cpu in host)))
    return out


def _cell(value: float | None, fmt: str, none: str = "-") -> str:
    return none if value is None else format(value, fmt)


SERIES_HEADER = ("| window s | retrans | in flight | CPU % | RSS MB | longest GC ms | INVITE→200 max ms |\n"
                 "|---|---:|---:|---:|---:|---:|---:|")


def series_table(rows: Sequence[Window], gc_min_ms: float | None, host_cpus: Sequence[int] = ()) -> str:
    """The series as a Markdown table; a window with no collection of ``gc_min_ms`` or more shows
    ``<gc_min_ms``, and every window ``-`` when the probe was off (``gc_min_ms`` None). With
    ``host_cpus`` (the CPUs the host watchers ran on, in the order of each window's ``host_late_ms``), one
    two more columns: the longest late wake-up per CPU and the lowest speed (% of the usual), ``-`` for
    none."""
    header = SERIES_HEADER
    if host_cpus:
        first, rule = SERIES_HEADER.split("\n")
        cpus = " / ".join(map(str, host_cpus))
        header = f"{first} host late ms (CPU {cpus}) | host speed % (CPU {cpus}) |\n{rule}---:|---:|"
    lines = [header]
    no_gc = "-" if gc_min_ms is None else f"<{gc_min_ms:g}"
    for w in rows:
        line = (f"| {w.start:.0f}-{w.end:.0f} | {w.retransmissions} | {w.in_flight} | "
                f"{_cell(w.cpu_pct, '.0f')} | {_cell(w.rss_mb, '.1f')} | "
                f"{_cell(w.gc_max_ms, '.1f', no_gc)} | {_cell(w.setup_max_ms, '.0f')} |")
        if host_cpus:
            late = w.host_late_ms or (0.0,) * len(host_cpus)
            speed = w.host_speed or (1.0,) * len(host_cpus)
            line += (" " + " / ".join(_cell(ms or None, ".0f") for ms in late) + " | "
                     + " / ".join(_cell(100 * x if x < 1 else None, ".0f") for x in speed) + " |")
        lines.append(line)
    return "\n".join(lines)
