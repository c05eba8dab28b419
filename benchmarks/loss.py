"""Every flow under packet loss at the issue's full counts (issue 17): 100 runs per flow, 1,000 bridged
calls, at 10 % and 20 % loss on both sides of each call, and a table of what happened.

Run (under the shared lock, on the rig's ports shifted as the system tests are)::

    CALL_API_RIG_PORT_OFFSET=600 flock /tmp/callapi-heavy.lock .venv/bin/python -m benchmarks.loss

``--flow bridged --loss 0.2 --calls 50`` narrows it; ``--workdir`` keeps the logs (SIPp traces, the
service log, Kamailio's) for a failed run.  The flows, the relays and the loss-tolerant scenarios are
the system tests' own (``tests/system/loss.py``), so the suite's short run and this one cannot drift.
It lives here, not in ``scripts/``, because it is a long run with real processes that prints a table,
like ``benchmarks/soak.py``, and is linted with the benchmarks; it measures no time that matters (the
seconds column only says how long a run took on a shared machine).  Exit status 0 when every run is
clean, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from harness.kamailio import PortMap
from tests.system.loss import FLOWS, LossRun

FULL_COUNTS = {flow: 1000 if flow == "bridged" else 100 for flow in FLOWS}
"""Calls per flow and loss rate in the full run (the issue's counts: 1,000 bridged calls, 100 runs of
every other flow), for every flow ``FLOWS`` has."""


def table(runs: list[LossRun]) -> str:
    """One row per flow and loss rate."""
    rows = [f"{'flow':<24} {'loss':>5} {'calls':>6} {'failed':>6} {'commands':>8} {'bad':>4} "
            f"{'dropped':>8} {'errors':>6} {'seconds':>8}  verdict"]
    for run in runs:
        rows.append(f"{run.flow:<24} {run.loss:>5.0%} {run.calls:>6} {run.failed_calls:>6} {run.commands:>8} "
                    f"{len(run.bad_commands):>4} {run.dropped:>8} {len(run.service_errors):>6} {run.seconds:>8.1f}  "
                    f"{'clean' if run.ok else 'FAILED'}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loss", description=__doc__.split("\n\n")[0])
    parser.add_argument("--flow", choices=sorted(FLOWS), action="append", help="a flow to run (default: all)")
    parser.add_argument("--loss", type=float, action="append", help="a loss rate, 0..1 (default: 0.1 and 0.2)")
    parser.add_argument("--calls", type=int, help="calls per flow and rate (default: the issue's counts)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the relays' drops and delays")
    parser.add_argument("--workdir", type=Path, help="where the logs go (default: a temporary folder)")
    args = parser.parse_args(argv)
    flows = args.flow or sorted(FLOWS)
    losses = args.loss or [0.10, 0.20]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="call-api-loss-"))
    ports = PortMap.from_env()
    runs: list[LossRun] = []
    for flow in flows:
        for loss in losses:
            calls = args.calls or FULL_COUNTS[flow]
            run = FLOWS[flow](ports, workdir / f"{flow}-{loss:g}", loss, calls, seed=args.seed)
            runs.append(run)
            print(run.report().splitlines()[0], flush=True)
            if not run.ok:
                print(run.report(), flush=True)
    print()
    print(table(runs))
    print(f"logs: {workdir}")
    return 0 if all(run.ok for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
