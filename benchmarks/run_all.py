"""Every benchmark in one run: one Markdown report with the headlines on top, plus the raw numbers.

Run: ``.venv/bin/python -m benchmarks.run_all`` (about 50 minutes; ``--quick`` for a try-out of a few
minutes whose numbers mean little). Not a test. Run it on an otherwise idle machine: the service and
SIPp are pinned to one core each, and anything else running shares them.

What runs, in this order, each as its own process (its exact command line is in the report)::

    python -m benchmarks.parse --seconds 2                      # SIP parser, in process
    python -m benchmarks.options_load --seconds 3 --rates ...   # OPTIONS answered by the engine
    python -m benchmarks.calls --seconds 30 --stock             # bridged calls, call-api and Sippy
    python -m benchmarks.held --rounds 2                        # 10,000 held calls twice, memory
    python -m benchmarks.api --rates ... --seconds 20           # CallStart throughput
    python -m benchmarks.api --count 30000 --rate <half>        # CallStart latency at half its headline

The API latency run takes place at half the highest CallStart rate the throughput steps completed with
no error (the issue asks for the latency "at half the headline rate"; a CallStart is a two-dialog flow
with a REFER, about three times the work of a bridged call, so the CallStart headline is the one that
applies; without a clean step, at the lowest rate tried).

Output: ``benchmarks/results/all-<timestamp>.md`` (the headline table, then each benchmark's own
output) and ``benchmarks/results/all-<timestamp>.json`` (per benchmark: command, exit status, seconds,
stdout, and the raw JSON it wrote, inlined). Each benchmark's logs stay where it put them. A benchmark
that fails is reported as such and the others still run; the exit status is 0 when all of them ran.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
_RAW = re.compile(r"^raw numbers: (\S+\.json)\s*$", re.M)


@dataclass
class Run:
    """One benchmark process: what ran and what it said."""

    key: str
    title: str
    args: list[str]
    exit_status: int | None = None
    seconds: float = 0.0
    stdout: str = ""
    raw_path: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def command(self) -> str:
        return "python -m " + " ".join(self.args)


def run(step: Run, timeout: float) -> Run:
    print(f"== {step.title}: {step.command}", file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", *step.args], cwd=ROOT, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)
        step.exit_status, step.stdout = done.returncode, done.stdout
        if done.returncode != 0:
            step.stdout += "\n" + done.stderr[-4000:]
    except subprocess.TimeoutExpired as exc:
        step.exit_status = None
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        step.stdout = out + f"\n(timed out after {timeout:.0f} s)"
    step.seconds = time.monotonic() - started
    match = _RAW.search(step.stdout)
    if match:
        path = Path(match[1])
        path = path if path.is_absolute() else ROOT / path
        step.raw_path = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
        try:
            step.raw = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            step.raw = {"error": f"cannot read {path}: {exc}"}
    print(f"   exit {step.exit_status}, {step.seconds:.0f} s", file=sys.stderr, flush=True)
    return step


# -- the headline table ------------------------------------------------------------------------------


def _get(data: Any, *keys: str | int) -> Any:
    for key in keys:
        found = (isinstance(data, dict) and key in data) or (
            isinstance(data, list) and isinstance(key, int) and -len(data) <= key < len(data))
        if not found:
            return None
        data = data[key]
    return data


def _num(value: Any, unit: str = "", digits: int = 0) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}{unit}"
    return f"{value}{unit}"


def _lines_matching(text: str, pattern: str) -> list[str]:
    return [line for line in text.splitlines() if re.search(pattern, line)]


def headlines(runs: dict[str, Run]) -> list[str]:
    """The bars of the benchmark issue, each with the measured value and where it comes from."""
    rows = ["| measure | result | bar | from |", "|---|---|---|---|"]
    parse = runs.get("parse")
    if parse:
        invite = _lines_matching(parse.stdout, r"^INVITE\s")
        cells = invite[0].split() if invite else []
        rows.append(f"| INVITE parse+keys per second (one core) | {cells[3] if len(cells) > 3 else 'n/a'} "
                    f"| 60,000 | parse |")
    options = runs.get("options")
    if options:
        for line in _lines_matching(options.stdout, r"^headline"):
            found = re.match(r"headline \((\w+)\): (.*)", line)
            if found:
                rows.append(f"| OPTIONS answered per second, {found[1]} | {found[2]} | 20,000 (uvloop) "
                            f"| options_load |")
    calls = runs.get("calls")
    if calls:
        bench = _get(calls.raw, "passes", "bench") or {}
        for label in ("call-api/uvloop", "call-api/asyncio", "sippy"):
            head = _get(bench, label, "headline")
            bar = "1,000 (zero failed, zero retransmissions, 30 s)" if label != "sippy" else "-"
            rows.append(f"| bridged calls per second, {label} | {_num(head, '/s')} | {bar} | calls |")
        summary = _get(bench, "summary")
        if summary:
            rows.append(f"| ratio call-api / Sippy (same run) | {summary.split('ratio call-api/Sippy: ')[-1]} "
                        f"| 3x | calls |")
    held = runs.get("held")
    if held:
        res = _get(held.raw, "result") or {}
        rows.append(f"| concurrent held calls, failed | {_num(res.get('peak_held'))} held, {_num(res.get('failed'))} "
                    f"failed | 10,000, 0 | held |")
        per_call = res.get("rss_per_held_call_bytes")
        rows.append(f"| RSS per held call | {_num(per_call / 1024 if per_call else None, ' KiB', 2)} "
                    f"| 10 KB | held |")
        marks = _get(res, "rounds", 0, "points", "marks") or []
        setup = ", ".join(f"{_num(m.get('mark'))}: {_num(m.get('setup_p99_ms'), ' ms', 2)}" for m in marks)
        rows.append(f"| setup (INVITE -> 200) p99 at held | {setup or 'n/a'} | - | held |")
        growth = _get(res, "after_growth_over_rounds", "per_call_bytes")
        rows.append(f"| RSS after hang-up vs start; then growth per call of a second round | "
                    f"{_num(res.get('after_minus_start_kb'), ' KiB')} kept by the allocator; "
                    f"{_num(growth, ' B', 0)} | nothing leaks | held |")
    sweep = runs.get("api_sweep")
    if sweep:
        rows.append(f"| CallStart per second, zero errors | {_num(_get(sweep.raw, 'headline'), '/s')} | - | api |")
    latency = runs.get("api_latency")
    if latency:
        step = _get(latency.raw, "steps", 0) or {}
        rows.append(f"| request -> first INVITE p50 / p99 at {_num(step.get('rate'), '/s')} "
                    f"({_num(step.get('sent'))} CallStarts) | {_num(_get(step, 'invite_ms', 'p50'), ' ms', 2)} / "
                    f"{_num(_get(step, 'invite_ms', 'p99'), ' ms', 2)} | p99 < 5 ms | api |")
        rows.append(f"| request -> Started p50 / p99 | {_num(_get(step, 'started_ms', 'p50'), ' ms', 2)} / "
                    f"{_num(_get(step, 'started_ms', 'p99'), ' ms', 2)} | - | api |")
    return rows


# -- main --------------------------------------------------------------------------------------------


def plan(args: argparse.Namespace) -> list[Run]:
    if args.quick:
        return [
            Run("parse", "SIP parser", ["benchmarks.parse", "--seconds", "0.5"]),
            Run("options", "OPTIONS load", ["benchmarks.options_load", "--seconds", "1", "--rates", "5000,10000",
                                            "--loops", "uvloop"]),
            Run("calls", "bridged calls", ["benchmarks.calls", "--seconds", "3", "--rates", "100,400",
                                           "--sippy-rates", "50,100", "--pause", "1"]),
            Run("held", "held calls", ["benchmarks.held", "--smoke"]),
            Run("api_sweep", "CallStart throughput", ["benchmarks.api", "--rates", "20,50", "--seconds", "3"]),
        ]
    return [
        Run("parse", "SIP parser", ["benchmarks.parse", "--seconds", "2"]),
        Run("options", "OPTIONS load", ["benchmarks.options_load", "--seconds", "3", "--rates",
                                        "5000,8000,11000,14000,17000,20000,23000"]),
        Run("calls", "bridged calls", ["benchmarks.calls", "--seconds", "30", "--rates",
                                       "200,600,1000,1200,1400,1600,1800,2000", "--stock"]),
        Run("held", "held calls", ["benchmarks.held", "--rounds", "2"]),
        Run("api_sweep", "CallStart throughput", ["benchmarks.api", "--rates", "100,200,300,400,450,500,550,600",
                                                  "--seconds", "20"]),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few minutes, short steps: to try the tooling")
    parser.add_argument("--only", default="", help="comma-separated keys to run (parse, options, calls, held, "
                                                   "api_sweep, api_latency); default all")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per benchmark")
    args = parser.parse_args()
    only = {k for k in args.only.split(",") if k}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    RESULTS.mkdir(parents=True, exist_ok=True)
    runs: dict[str, Run] = {}
    for step in plan(args):
        if not only or step.key in only:
            runs[step.key] = run(step, args.timeout)
    if not only or "api_latency" in only:
        head = _get(runs["api_sweep"].raw, "headline") if "api_sweep" in runs else None
        rate = max(1, int(head) // 2) if head else (10 if args.quick else 100)
        # 30,000 at half the headline is two minutes: past 64*T1 the calls' transactions expire as fast as
        # new ones come, the steady state a running service lives in (10,000 would be mostly before it).
        count = 200 if args.quick else 30_000
        runs["api_latency"] = run(Run("api_latency", "CallStart latency",
                                      ["benchmarks.api", "--count", str(count), "--rate", str(rate)]), args.timeout)

    md = [f"# call-api benchmarks, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}", "",
          f"Command: `python -m benchmarks.run_all{' --quick' if args.quick else ''}`. Machine: "
          f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
          f"{platform.platform()}.", "", "## Headlines", "", *headlines(runs), ""]
    for step in runs.values():
        status = "ok" if step.exit_status == 0 else f"FAILED (exit {step.exit_status})"
        md += [f"## {step.title}: {status}, {step.seconds:.0f} s", "", f"`{step.command}`", "",
               step.stdout.rstrip(), ""]
    out_md = RESULTS / f"all-{stamp}.md"
    out_json = RESULTS / f"all-{stamp}.json"
    out_md.write_text("\n".join(md) + "\n")
    out_json.write_text(json.dumps({k: {"command": r.command, "exit_status": r.exit_status, "seconds": r.seconds,
                                        "stdout": r.stdout, "raw_path": r.raw_path, "raw": r.raw}
                                    for k, r in runs.items()}, indent=1) + "\n")
    print("\n".join(md))
    print(f"report: {out_md.relative_to(ROOT)}\nraw numbers: {out_json.relative_to(ROOT)}")
    return 0 if all(r.exit_status == 0 for r in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
