"""``benchmarks/held.py --smoke`` runs end to end against real SIPp and call-api processes and reports every
figure; the numbers themselves (memory, latency) are the benchmark's business, not asserted here."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.system, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
NUMBER = r"[+-]?[0-9][0-9,]*(?:\.[0-9]+)?"


def test_smoke_run_reports_every_figure(tmp_path: Path) -> None:
    # Ports 16109-16131: clear of a default run (16159-16181) that may be going on beside the test.
    run = subprocess.run([sys.executable, "-m", "benchmarks.held", "--smoke", "--port-base", "16100",
                          "--results", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stdout + run.stderr

    reports = list(tmp_path.glob("held-*.json"))
    assert len(reports) == 1, run.stdout
    report = json.loads(reports[0].read_text())
    result = report["result"]
    points = result["points"]
    for name in ("idle", "start", "ramp_end", "plateau", "after"):
        assert isinstance(points[name]["rss_kb"], int | float), (name, points[name])
    assert [m["mark"] for m in points["marks"]] == [200]
    mark = points["marks"][0]
    assert mark["setup_calls"] == 200
    assert isinstance(mark["setup_p50_ms"], float) and isinstance(mark["setup_p99_ms"], float)
    assert mark["setup_p50_ms"] <= mark["setup_p99_ms"]
    assert points["plateau"]["held"] == points["ramp_end"]["held"] == result["peak_held"] > 0
    assert points["after"]["held"] == 0
    assert isinstance(result["rss_per_held_call_bytes"], float)
    assert isinstance(result["residue_per_call_bytes"], float)
    assert set(result["bars"]) == {"rss_per_held_call", "held_no_failure"}
    assert all(isinstance(bar["met"], bool) for bar in result["bars"].values())
    assert report["settings"]["calls"] == 200 and report["settings"]["t1"] == 0.05
    phases = report["phases"]
    assert phases["held"]["uac"]["calls"] == 200 and phases["held"]["uas"]["calls"] > 0
    samples = report["samples"]
    assert {"idle", "warmup", "warmup-expire", "held", "after"} <= {s["phase"] for s in samples}
    assert all(s["rss_kb"] > 0 for s in samples)
    logs = Path(report["logs"])
    assert (logs / "held" / "bench_uac_target_shortmessages.log").stat().st_size > 0

    table = run.stdout
    for row in ("idle after start-up", "start: after a 50-call warm-up", "200 held", "end of ramp",
                "plateau: every call held", "after hang-up"):
        assert re.search(rf"^\| {re.escape(row)}[^|]*\| [-0-9]+ \| {NUMBER} \|", table, re.MULTILINE), (row, table)
    assert re.search(rf"^\| RSS per held call <= 10 KB [^|]*\| {NUMBER} KiB [^|]*\| (met|not met) \|$", table,
                     re.MULTILINE), table
    assert re.search(r"^\| 200 calls held at once, 0 failed \| peak [0-9,]+ held[^|]*\| (met|not met) \|$", table,
                     re.MULTILINE), table
