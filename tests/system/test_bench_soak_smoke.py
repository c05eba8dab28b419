"""``benchmarks/soak.py`` runs end to end against real SIPp and call-api processes, with a one-second stall,
and reports the step's time series and a verdict for every soak criterion; whether the timing criteria
pass is the benchmark's business, not asserted here (a run this short cannot judge CPU or RSS drift)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.system, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
# Ports 16501-16704 and 16519-16521: clear of a default benchmark run (16059-16262) going on beside it.
PORTS = ["--uac-port", "16501", "--uas-port", "16502", "--service-port", "16520", "--ws-port", "16519",
         "--probe-port", "16521", "--sippy-port", "16510"]


def test_soak_with_a_stall_reports_its_series_and_verdicts(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "benchmarks.soak", "--minutes", "0.5", "--rate", "20",
                          "--window", "5", "--stall-at", "10", "--stall-for", "1", *PORTS,
                          "--results", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=100, stdin=subprocess.DEVNULL)
    assert run.returncode in (0, 1), run.stdout + run.stderr
    out = run.stdout

    reports = list(tmp_path.glob("soak-*.json"))
    assert len(reports) == 1, out
    report = json.loads(reports[0].read_text())
    step = report["step"]
    assert step["attempted"] == 600 and step["successful"] == 600
    assert step["stall"] == {"at": 10.0, "length": 1.0}
    assert step["resumed_at"] - step["stopped_at"] == pytest.approx(1.0, abs=0.3)
    series = step["series"]
    assert len(series) >= 6 and [w["start"] for w in series[:3]] == [0.0, 5.0, 10.0]
    assert sum(w["created"] for w in series) == 600
    assert all(w["rss_mb"] > 0 and w["cpu_pct"] is not None for w in series)
    assert sum(w["retransmissions"] for w in series) == step["retransmissions"]
    verdicts = {v["criterion"].split(",")[0].split(" (")[0]: v["passed"] for v in report["verdicts"]}
    assert list(verdicts) == ["zero failed calls", "no retransmission later than 15 s after the resume",
                              "no call left unended at the callee", "CPU per call",
                              "RSS flat within 5 % from 10 s", "longest GC pause under 50 ms",
                              "INVITE->200 max under 100 ms"]
    assert verdicts["zero failed calls"] and verdicts["no call left unended at the callee"]
    assert run.returncode == (0 if all(verdicts.values()) else 1)

    # the soak runs the host watchers (benchmarks/hostwatch.py): two more columns, one cell per CPU each
    assert ("| window s | retrans | in flight | CPU % | RSS MB | longest GC ms | INVITE→200 max ms | "
            "host late ms (CPU 0 / 1) | host speed % (CPU 0 / 1) |") in out
    host = r"(-|[0-9]+) / (-|[0-9]+)"
    row = rf"^\| 0-5 \| [0-9]+ \| [0-9]+ \| [0-9]+ \| [0-9.]+ \| (<1|[0-9.]+) \| [0-9]+ \| {host} \| {host} \|$"
    assert re.search(row, out, re.MULTILINE), out
    assert (Path(report["logs"]) / "bench-call-api-uvloop-20" / "hostwatch-cpu0.log").exists()
    assert re.search(r"^stall: SIGSTOP at 10 s for 1\.[0-9] s; ", out, re.MULTILINE), out
    assert re.search(r"^soak (PASS|FAIL)$", out, re.MULTILINE), out
    assert (Path(report["logs"]) / "bench-call-api-uvloop-20" / "gc.log").exists()
