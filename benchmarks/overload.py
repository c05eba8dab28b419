"""Overload: offer a contender several times the rate it carries cleanly, then that rate again, and judge
against issue 12's overload criteria (exit status 1 on any FAIL).

Run::

    flock /tmp/callapi-heavy.lock .venv/bin/python -m benchmarks.overload --rate 600 --overload 1.5,2,3 \\
        --seconds 60 --sippy-rate 150 --rss-bound 600

Not a test. For each multiple M of ``--overload``, a contender is started afresh (as in
``benchmarks.calls``: same processes, CPUs, ports; ``--hold``, ``--window``, ``--service-arg`` and the
rest apply) and takes two steps back to back, ``--pause`` seconds apart, each with its time series:

1. the overload step: M x ``--rate`` calls per second for ``--seconds``, from
   ``sipp-scenarios/bench_uac_overload.xml``, which takes a 503 to the INVITE as an expected answer
   (it ACKs it and ends the call) rather than a failure; its ``-l`` (most calls in flight) raised to
   rate x (hold + 70 s), so that SIPp keeps offering the rate however many calls pile up (its default,
   3 x rate x call length, slows it down silently: 900/s offered became 470/s);
2. the after step: ``--rate`` for ``--after-seconds`` (default ``--seconds``) with the usual caller
   (``bench_uac_target.xml``), against the same process, so whatever the overload left behind (a
   backlog, transactions kept 64*T1, memory) is still there.

With ``--sippy-rate S`` the Sippy B2BUA takes the same multiples of its own S, interleaved with
call-api by multiple. Per multiple: calls offered; admitted (answered 200); rejected with 503 and a
Retry-After; failed, i.e. neither (timed out, another answer, or a 503 without Retry-After, which is
no load shedding: call-api answers so when it cannot place the callee's INVITE); retransmissions;
INVITE->200 p99 and max among the admitted calls (the caller's ``-trace_rtt``); the contender's highest
RSS; the after step's verdict. The criteria, per multiple:

- the admitted calls have no failure (SIPp counts no failed or unfinished call, and none was left
  unended at the callee) and every other call got a 503 with a Retry-After;
- INVITE->200 p99 of the admitted calls under 200 ms;
- RSS under ``--rss-bound`` MB (reported only when no bound is given);
- the after step is clean (``benchmarks.calls``'s definition: every call succeeded, no retransmission).

call-api's overload control is on by default (docs/RELIABILITY.md); ``--service-arg=--overload-high=0``
turns it off, and the overload steps then show what happens to a service that queues everything. The report
goes to ``benchmarks/results/overload-<timestamp>.json``, the logs to ``benchmarks/results/overload-<timestamp>/``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from benchmarks.calls import (
    BENCH,
    SERVICE_CPU,
    SIPP_CPU,
    TAIL_GRACE,
    Contender,
    Run,
    Scenarios,
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
from benchmarks.soak import Verdict, verdict_table

OVERLOAD = Scenarios("overload", "sipp-scenarios/bench_uac_overload.xml -> contender -> sipp-scenarios/bench_uas.xml",
                     "bench_uac_overload", "bench_uas", "setup", stock=False)
P99_BAR_MS = 200.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """One multiple for one contender: the overload step's figures and the after step's verdict."""

    contender: str
    multiple: float
    rate: int
    offered: int
    admitted: int
    rejected: int
    bare_503: int
    neither: int
    failed: int
    retransmissions: int
    p99_ms: float | None
    max_ms: float | None
    rss_max_mb: float | None
    after_rate: int
    after_clean: bool

    @classmethod
    def of(cls, multiple: float, step: Step, after: Step) -> Outcome:
        """``rejected`` counts the 503s with a Retry-After; one without fails the call in SIPp (its
        regular expression on the header finds nothing) and counts as ``bare_503`` and in ``neither``."""
        bare = min(step.rejected_503, step.uac.failed_by_reason.get("RegexpHdrNotFound", 0))
        rejected = step.rejected_503 - bare
        return cls(contender=step.contender, multiple=multiple, rate=step.rate, offered=step.attempted,
                   admitted=step.answered, rejected=rejected, bare_503=bare,
                   neither=max(0, step.attempted - step.answered - rejected),
                   failed=step.failed + step.unfinished + step.callee_unfinished,
                   retransmissions=step.retransmissions, p99_ms=step.setup_ms_p99, max_ms=step.setup_ms_max,
                   rss_max_mb=max((m for m in (step.rss_max_mb, after.rss_max_mb) if m is not None), default=None),
                   after_rate=after.rate, after_clean=after.clean)


def verdicts(o: Outcome, rss_bound: float | None) -> list[Verdict]:
    """Issue 12's overload criteria for one multiple."""
    out = [
        Verdict("admitted calls without failure, the others got 503", o.failed == 0 and o.neither == 0,
                f"{o.admitted} admitted, {o.rejected} got 503, {o.neither} neither"
                + (f" ({o.bare_503} a 503 without Retry-After)" if o.bare_503 else "") + f", {o.failed} failed"),
        Verdict(f"INVITE->200 p99 of admitted calls under {P99_BAR_MS:g} ms",
                o.p99_ms is not None and o.p99_ms < P99_BAR_MS, _ms(o.p99_ms)),
    ]
    if rss_bound is not None:
        out.append(Verdict(f"RSS under {rss_bound:g} MB", o.rss_max_mb is not None and o.rss_max_mb < rss_bound,
                           "-" if o.rss_max_mb is None else f"{o.rss_max_mb:.1f} MB"))
    out.append(Verdict(f"the step after, at {o.after_rate}/s, is clean", o.after_clean,
                       "clean" if o.after_clean else "not clean"))
    return out


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


TABLE_HEADER = ("| contender | multiple | offered/s | offered | admitted | 503 | failed (neither) | SIPp failed "
                "| retrans | INVITE→200 p99 / max ms | RSS max MB | after step |\n"
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")


def table(outcomes: Sequence[Outcome]) -> str:
    rows = [TABLE_HEADER]
    for o in outcomes:
        latency = f"{'-' if o.p99_ms is None else f'{o.p99_ms:.0f}'} / {'-' if o.max_ms is None else f'{o.max_ms:.0f}'}"
        rss = "-" if o.rss_max_mb is None else f"{o.rss_max_mb:.1f}"
        rows.append(f"| {o.contender} | {o.multiple:g}x | {o.rate} | {o.offered} | {o.admitted} | {o.rejected} | "
                    f"{o.neither} | {o.failed} | {o.retransmissions} | {latency} | {rss} | "
                    f"{o.after_rate}/s {'clean' if o.after_clean else 'NOT clean'} |")
    return "\n".join(rows)


def _multiples(text: str) -> list[float]:
    values = [float(m) for m in text.split(",") if m.strip()]
    if not values or any(m <= 0 for m in values):
        raise ValueError(f"no multiples or one not above 0: {text!r}")
    return values


def measure(run: Run, args: argparse.Namespace, c: Contender, base: int, multiple: float) -> tuple[Step, Step]:
    """The overload step at ``multiple`` x ``base`` and the after step at ``base``, one contender process."""
    rate = max(1, round(multiple * base))
    over = replace(OVERLOAD, key=f"overload{multiple:g}x")
    after = replace(BENCH, key=f"after{multiple:g}x")
    with running(run.procs, args, c, over, rate, run.logdir):
        step = run_step(run.procs, args, c, over, rate, run.logdir, call_limit=rate * int(args.hold + TAIL_GRACE))
        print(step_report(step), *details(step), sep="\n", flush=True)
        time.sleep(args.pause)
        after_step = run_step(run.procs, args, c, after, base, run.logdir, args.after_seconds or args.seconds)
        print(step_report(after_step), *details(after_step), sep="\n", flush=True)
    return step, after_step


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, required=True, help="call-api's clean rate, calls per second")
    parser.add_argument("--overload", default="1.5,2,3", help="comma-separated multiples of the rate (default 1.5,2,3)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each overload step (default 60)")
    parser.add_argument("--after-seconds", type=float, default=None,
                        help="length of each step after an overload (default --seconds)")
    parser.add_argument("--sippy-rate", type=int, default=None, help="also measure Sippy, at multiples of this rate")
    parser.add_argument("--rss-bound", type=float, default=None, metavar="MB", help="RSS every step must stay under")
    parser.add_argument("--loop", default="uvloop", help="call-api's event loop (CALL_API_LOOP)")
    add_common_arguments(parser)
    args = parser.parse_args()
    try:
        multiples = _multiples(args.overload)
    except ValueError as exc:
        parser.error(str(exc))
    if args.rate <= 0 or (args.sippy_rate is not None and args.sippy_rate <= 0):
        parser.error("--rate and --sippy-rate must be above 0")
    kinds = "call-api" + (",sippy" if args.sippy_rate is not None else "")
    contenders = build_contenders(parser, args, kinds, args.loop, [args.rate], [args.sippy_rate or 0])
    sippy_version = ensure_sippy(args.sippy_spec) if args.sippy_rate is not None else None
    run = Run.create("overload", args.results)
    report: dict[str, Any] = {
        "command": run.command, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": {"rate": args.rate, "sippy_rate": args.sippy_rate, "multiples": multiples,
                     "seconds": args.seconds, "after_seconds": args.after_seconds or args.seconds,
                     "hold": args.hold, "window": args.window, "rss_bound_mb": args.rss_bound,
                     "service_args": args.service_arg, "service_cpu": SERVICE_CPU, "sipp_cpu": SIPP_CPU},
        "machine": run.machine(sippy_version), "logs": shown(run.logdir), "outcomes": [],
    }
    print(f"# Overload: {', '.join(c.label for c in contenders)} at {', '.join(f'{m:g}x' for m in multiples)} "
          f"their clean rate ({args.rate}/s" + (f", Sippy {args.sippy_rate}/s" if args.sippy_rate else "")
          + f") for {args.seconds:g} s, each followed by a step at the clean rate")
    print(f"# command: {run.command}")
    print(f"# logs: {shown(run.logdir)}/\n", flush=True)
    outcomes: list[Outcome] = []
    status = 0
    try:
        with run.signals():
            for multiple in multiples:
                for c in contenders:
                    if outcomes:
                        time.sleep(args.pause)
                    step, after = measure(run, args, c, c.rates[0], multiple)
                    o = Outcome.of(multiple, step, after)
                    outcomes.append(o)
                    judged = [asdict(v) for v in verdicts(o, args.rss_bound)]
                    report["outcomes"].append({**asdict(o), "verdicts": judged, "step": _step_json(step),
                                               "after": _step_json(after)})
    except (KeyboardInterrupt, SystemExit) as exc:
        print(f"\ninterrupted ({type(exc).__name__}): stopping every process", file=sys.stderr)
        status = 130
    finally:
        with contextlib.suppress(OSError):
            run.out_json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"## Overload\n\n{table(outcomes)}\n")
    failed = False
    for o in outcomes:
        vs = verdicts(o, args.rss_bound)
        failed = failed or not all(v.passed for v in vs)
        print(f"### {o.contender} at {o.multiple:g}x ({o.rate}/s)\n\n{verdict_table(vs)}\n")
    if status == 0:
        print(f"overload {'FAIL' if failed else 'PASS'}")
        status = 1 if failed else 0
    print(f"raw numbers: {shown(run.out_json)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
