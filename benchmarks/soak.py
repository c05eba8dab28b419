"""Soak: one long step of bridged calls at a constant rate, its time series, and PASS/FAIL against the
soak criteria of issue 12 (exit status 1 on any FAIL).

Run::

    flock /tmp/callapi-heavy.lock .venv/bin/python -m benchmarks.soak --minutes 30 --rate 360
    flock /tmp/callapi-heavy.lock .venv/bin/python -m benchmarks.soak --minutes 10 --rate 360 \\
        --stall-at 180 --stall-for 2

Not a test. The step is ``benchmarks.calls``'s (same processes, CPUs, ports, scenarios, series; its
options ``--hold``, ``--window``, ``--service-arg`` and the rest apply) with ``--minutes`` as its length,
against one contender (``--contender call-api`` on ``--loop``, or ``sippy``) started for it. The
criteria, each measured over the load phase (the ``--minutes`` during which calls are placed; the tail
that waits for the last calls to end counts only for failures and retransmissions):

- failed calls: none (caller or callee side, nor a call the caller never finished);
- retransmissions: none; with ``--stall-at``, none later than 15 s after the SIGCONT (to SIPp's
  one-second dumps);
- no call left unended at the callee (a BYE that never reached it);
- CPU per call (the contender's CPU seconds over the calls placed) in the last ``--span`` seconds (300)
  within 5 % of the first ``--span`` seconds after a ``--warmup`` (60 s: the first minute fills caches,
  the allocator's arenas and the transactions kept 64*T1, so its cost per call is not the steady one);
- RSS flat within 5 % ((max - min) / min of the window samples) from ``--span`` seconds on;
- the longest GC pause (the probe's, over the whole step) under 50 ms;
- INVITE->200 max under 100 ms; with a stall, over the windows that do not overlap the stall and the
  15 s after it (the calls caught in the stall wait for it by construction). The verdict does not excuse
  the host; it says, for the windows over the bar, how many had the host watchers
  (``benchmarks/hostwatch.py``, on unless ``--no-host-watch``) see their CPU stop for ``HOST_LATE_MS`` or
  more, and how many had the contender's CPU run at ``HOST_SPEED`` of its usual speed or less (SIPp's
  CPU is too busy for that reading to mean much: benchmarks/hostwatch.py), so a FAIL tells whether to
  look at the service or at the machine.

Runs shorter than 2 * span + warmup shrink span and warmup (warmup to a third of the load phase, span
to half of the rest, both whole windows) and say so. The report (settings, the step, the verdicts) goes
to ``benchmarks/results/soak-<timestamp>.json``, the logs to ``benchmarks/results/soak-<timestamp>/``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.calls import (
    BENCH,
    SERVICE_CPU,
    SIPP_CPU,
    Run,
    Step,
    _step_json,
    add_common_arguments,
    build_contenders,
    details,
    ensure_sippy,
    run_step,
    running,
    shown,
    step_report,
)
from benchmarks.series import Window

CPU_TOLERANCE = 0.05
RSS_TOLERANCE = 0.05
GC_BAR_MS = 50.0
SETUP_BAR_MS = 100.0
#: A host watcher's late wake-up this long or longer, or a speed this low, in a window is named beside a
#: slow call in it.
HOST_LATE_MS = 20.0
HOST_SPEED = 0.75
#: Seconds after the SIGCONT by which the retransmissions a stall caused must have stopped.
RECOVERY_S = 15.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """One criterion: its wording, whether it held, and what was measured."""

    criterion: str
    passed: bool
    measured: str


@dataclass(frozen=True, slots=True)
class Spans:
    """Where the soak's comparisons look, in seconds since the step's start: the first CPU span starts
    after ``warmup``; each CPU span is ``span`` long; RSS is checked from ``span`` to ``load``."""

    load: float
    warmup: float
    span: float

    @classmethod
    def fit(cls, load: float, warmup: float, span: float, window: float) -> Spans:
        """``warmup`` and ``span`` as asked, or shrunk (in whole windows) to fit a short load phase."""
        def whole(x: float) -> float:
            return window * math.floor(x / window + 1e-9)
        if warmup + 2 * span > load:
            warmup = whole(min(warmup, load / 3))
            span = whole(min(span, (load - warmup) / 2))
        return cls(load, warmup, span)

    @property
    def first(self) -> tuple[float, float]:
        return self.warmup, self.warmup + self.span

    @property
    def last(self) -> tuple[float, float]:
        return self.load - self.span, self.load


def _inside(windows: Sequence[Window], start: float, end: float) -> list[Window]:
    return [w for w in windows if w.start >= start - 1e-6 and w.end <= end + 1e-6]


def cpu_per_call(windows: Sequence[Window], start: float, end: float) -> float | None:
    """The contender's CPU milliseconds per call placed, over the windows within ``[start, end]``."""
    inside = _inside(windows, start, end)
    if not inside or any(w.cpu_s is None for w in inside):
        return None
    calls = sum(w.created for w in inside)
    return 1000 * sum(w.cpu_s or 0.0 for w in inside) / calls if calls else None


def rss_spread(windows: Sequence[Window], start: float, end: float) -> tuple[float, float] | None:
    """The lowest and highest RSS (MB) of the windows within ``[start, end]``."""
    values = [w.rss_mb for w in _inside(windows, start, end) if w.rss_mb is not None]
    return (min(values), max(values)) if values else None


def _ms(value: float | None, fmt: str = ".0f") -> str:
    return "none" if value is None else f"{value:{fmt}} ms"


def soak_verdicts(step: Step, spans: Spans) -> list[Verdict]:
    """Issue 12's soak criteria (and its stall recovery's, when the step had a stall) for ``step``."""
    out = []
    ok = step.failed == step.unfinished == 0 and step.successful == step.attempted > 0
    out.append(Verdict("zero failed calls", ok,
                       f"{step.attempted} placed, {step.successful} successful, {step.failed} failed, "
                       f"{step.unfinished} unfinished"))
    if step.stall is None:
        out.append(Verdict("zero retransmissions", step.retransmissions == 0, f"{step.retransmissions}"))
    else:
        took = step.last_retransmission_after_resume
        applied = step.resumed_at is not None
        out.append(Verdict(f"no retransmission later than {RECOVERY_S:g} s after the resume",
                           applied and (took is None or took <= RECOVERY_S),
                           "stall not applied" if not applied else
                           f"{step.retransmissions} in all, the last "
                           + ("before the resume" if took is None else f"{took:.1f} s after it")))
    out.append(Verdict("no call left unended at the callee", step.callee_unfinished == 0,
                       f"{step.callee_unfinished}"))
    first, last = cpu_per_call(step.series, *spans.first), cpu_per_call(step.series, *spans.last)
    if first is None or last is None or spans.span <= 0:
        out.append(Verdict(f"CPU per call, last {spans.span:g} s within 5 % of the first", False,
                           "not measured (run too short or no CPU samples)"))
    else:
        change = last / first - 1
        out.append(Verdict(f"CPU per call, last {spans.span:g} s within 5 % of the first {spans.span:g} s "
                           f"after {spans.warmup:g} s of warm-up", abs(change) <= CPU_TOLERANCE,
                           f"{first:.3f} -> {last:.3f} ms/call ({100 * change:+.1f} %)"))
    spread = rss_spread(step.series, spans.span, spans.load)
    if spread is None:
        out.append(Verdict(f"RSS flat within 5 % from {spans.span:g} s", False, "no RSS samples"))
    else:
        low, high = spread
        out.append(Verdict(f"RSS flat within 5 % from {spans.span:g} s", high <= low * (1 + RSS_TOLERANCE),
                           f"{low:.1f}-{high:.1f} MB ({100 * (high / low - 1):+.1f} %)"))
    out.append(Verdict(f"longest GC pause under {GC_BAR_MS:g} ms",
                       step.gc_max_ms is None or step.gc_max_ms < GC_BAR_MS,
                       _ms(step.gc_max_ms, ".1f") if step.gc_max_ms is not None
                       else "none of the probe's threshold (--gc-min-ms) or more"))
    out.append(setup_verdict(step))
    return out


def setup_verdict(step: Step) -> Verdict:
    """INVITE->200 max under the bar; with a stall, outside the windows it and the recovery touch."""
    windows = step.series
    criterion = f"INVITE->200 max under {SETUP_BAR_MS:g} ms"
    if step.stall is not None:
        a, b = step.stall.at, step.stall.at + step.stall.length + RECOVERY_S
        windows = [w for w in windows if w.end <= a or w.start >= b]
        criterion += f" (outside {a:g}-{b:g} s: the stall and {RECOVERY_S:g} s after it)"
    values = [w.setup_max_ms for w in windows if w.setup_max_ms is not None]
    worst = max(values, default=None)
    measured = _ms(worst)
    over = [w for w in windows if w.setup_max_ms is not None and w.setup_max_ms >= SETUP_BAR_MS]
    if over and step.host_cpus:
        cpus = " or ".join(map(str, step.host_cpus))
        paused = sum(1 for w in over if max(w.host_late_ms, default=0.0) >= HOST_LATE_MS)
        slowed = sum(1 for w in over if w.host_speed and w.host_speed[0] <= HOST_SPEED)
        measured += (f"; {len(over)} window(s) at or over {SETUP_BAR_MS:g} ms: in {paused} the host stopped CPU {cpus} "
                     f"for {HOST_LATE_MS:g} ms or more, in {slowed} it slowed the contender's CPU "
                     f"{step.host_cpus[0]} to {100 * HOST_SPEED:.0f} % or less")
    return Verdict(criterion, worst is not None and worst < SETUP_BAR_MS, measured)


def verdict_table(verdicts: Sequence[Verdict]) -> str:
    lines = ["| criterion | measured | verdict |", "|---|---|---|"]
    lines += [f"| {v.criterion} | {v.measured} | {'PASS' if v.passed else 'FAIL'} |" for v in verdicts]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, required=True, help="length of the load phase")
    parser.add_argument("--rate", type=int, required=True, help="calls per second")
    parser.add_argument("--contender", choices=("call-api", "sippy"), default="call-api")
    parser.add_argument("--loop", default="uvloop", help="call-api's event loop (CALL_API_LOOP)")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before the first CPU span (default 60)")
    parser.add_argument("--span", type=float, default=300.0,
                        help="seconds of each CPU-per-call span, and of the start left out of RSS (default 300)")
    add_common_arguments(parser)
    parser.set_defaults(host_watch=True)  # the question of a slow call, the host's or the service's
    args = parser.parse_args()
    if args.minutes <= 0 or args.rate <= 0:
        parser.error("--minutes and --rate must be above 0")
    args.seconds = args.minutes * 60
    contenders = build_contenders(parser, args, args.contender, args.loop, [args.rate], [args.rate])
    c = contenders[0]
    sippy_version = ensure_sippy(args.sippy_spec) if c.kind == "sippy" else None
    spans = Spans.fit(args.seconds, args.warmup, args.span, args.window)
    run = Run.create("soak", args.results)
    report: dict[str, Any] = {
        "command": run.command, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": {"minutes": args.minutes, "rate": args.rate, "contender": c.label, "hold": args.hold,
                     "window": args.window, "stall_at": args.stall_at, "stall_for": args.stall_for,
                     "gc_min_ms": args.gc_min_ms, "service_args": args.service_arg, "spans": asdict(spans),
                     "service_cpu": SERVICE_CPU, "sipp_cpu": SIPP_CPU},
        "machine": run.machine(sippy_version), "logs": shown(run.logdir), "step": None, "verdicts": [],
    }
    print(f"# Soak: {c.label}, {args.rate} calls/s for {args.minutes:g} min, {args.hold:g} s hold"
          + (f", SIGSTOP at {args.stall_at:g} s for {args.stall_for:g} s" if args.stall_at is not None else ""))
    print(f"# CPU per call: {spans.first[0]:g}-{spans.first[1]:g} s against {spans.last[0]:g}-{spans.last[1]:g} s; "
          f"RSS from {spans.span:g} s")
    print(f"# command: {run.command}")
    print(f"# logs: {shown(run.logdir)}/\n", flush=True)
    status = 0
    try:
        with run.signals(), running(run.procs, args, c, BENCH, args.rate, run.logdir):
            step = run_step(run.procs, args, c, BENCH, args.rate, run.logdir)
        report["step"] = _step_json(step)
        report["exit_status"] = c.exit_status
        print(step_report(step), *details(step), sep="\n")
        verdicts = soak_verdicts(step, spans)
        report["verdicts"] = [asdict(v) for v in verdicts]
        print(f"## Verdicts\n\n{verdict_table(verdicts)}\n")
        passed = all(v.passed for v in verdicts)
        print(f"soak {'PASS' if passed else 'FAIL'}")
        status = 0 if passed else 1
    except (KeyboardInterrupt, SystemExit) as exc:
        print(f"\ninterrupted ({type(exc).__name__}): stopping every process", file=sys.stderr)
        status = 130
    finally:
        with contextlib.suppress(OSError):
            run.out_json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"raw numbers: {shown(run.out_json)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
