"""``benchmarks/overload.py`` runs end to end against real SIPp and call-api processes: an overload step
from the caller that accepts 503, then a step at the base rate against the same service, each with its
time series, and a verdict per criterion; extra ``--service-arg`` arguments reach the service. The
service does not shed at this rate, so every call is admitted; the figures are the benchmark's business."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.system, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
# Ports 16531-16734 and 16549-16551: clear of a default benchmark run and of the soak smoke test.
PORTS = ["--uac-port", "16531", "--uas-port", "16532", "--service-port", "16550", "--ws-port", "16549",
         "--probe-port", "16551", "--sippy-port", "16540"]


def test_overload_reports_each_multiple_its_steps_and_verdicts(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "benchmarks.overload", "--rate", "20", "--overload", "2",
                          "--seconds", "5", "--after-seconds", "3", "--window", "5", "--pause", "1",
                          "--rss-bound", "4000", "--service-arg=--log-level", "--service-arg=ERROR", *PORTS,
                          "--results", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=100, stdin=subprocess.DEVNULL)
    assert run.returncode in (0, 1), run.stdout + run.stderr
    out = run.stdout

    reports = list(tmp_path.glob("overload-*.json"))
    assert len(reports) == 1, out
    report = json.loads(reports[0].read_text())
    assert report["settings"]["service_args"] == ["--log-level", "ERROR"]
    logs = Path(report["logs"])
    commands = (logs / "overload2x-call-api-uvloop-40" / "commands.txt").read_text()
    assert "bench_uac_overload.xml" in commands
    [outcome] = report["outcomes"]
    assert (outcome["multiple"], outcome["rate"], outcome["offered"], outcome["after_rate"]) == (2.0, 40, 200, 20)
    assert outcome["admitted"] + outcome["rejected"] + outcome["neither"] == 200
    assert outcome["admitted"] > 0 and outcome["rss_max_mb"] > 0
    assert outcome["step"]["scenarios"] == "overload2x" and outcome["after"]["scenarios"] == "after2x"
    assert outcome["after"]["attempted"] == 60
    assert len(outcome["step"]["series"]) >= 2 and len(outcome["after"]["series"]) >= 1
    assert [v["criterion"] for v in outcome["verdicts"]] == [
        "admitted calls without failure, the others got 503", "INVITE->200 p99 of admitted calls under 200 ms",
        "RSS under 4000 MB", "the step after, at 20/s, is clean"]
    assert run.returncode == (0 if all(v["passed"] for v in outcome["verdicts"]) else 1)

    assert re.search(r"^### call-api/uvloop 40/s, 5 s: (clean|NOT clean)$", out, re.MULTILINE), out
    assert re.search(r"^### call-api/uvloop 20/s, 3 s: (clean|NOT clean)$", out, re.MULTILINE), out
    assert out.count("| window s | retrans | in flight |") == 2
    assert re.search(r"^\| call-api/uvloop \| 2x \| 40 \| 200 \| [0-9]+ \| [0-9]+ \| [0-9]+ \| [0-9]+ \| [0-9]+ \| "
                     r"[0-9-]+ / [0-9-]+ \| [0-9.]+ \| 20/s (clean|NOT clean) \|$", out, re.MULTILINE), out
    assert re.search(r"^overload (PASS|FAIL)$", out, re.MULTILINE), out
