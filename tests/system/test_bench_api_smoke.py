"""The API benchmark (``benchmarks/api.py``) runs end to end in its ``--smoke`` preset: the service, three
SIPp phones and the INVITE capture as real processes. No timing is asserted: benchmarks print numbers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.system,
              pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not on PATH (Debian sip-tester)")]

ROOT = Path(__file__).resolve().parents[2]

STEP_KEYS = {"kind", "rate", "planned", "sent", "completed", "errors", "started_ms", "invite_ms", "ended_ms",
             "service_cpu_pct", "sipp_failed", "clean", "bar_met", "commands", "logs"}


def test_smoke_run_reports_every_command_completed(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "benchmarks.api", "--smoke", "--results", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "| latency | 10 | 20 | 20 | 0 |" in run.stdout, run.stdout
    [report_path] = tmp_path.glob("api-*.json")
    report = json.loads(report_path.read_text())
    assert report["stopped"] is None
    [step] = report["steps"]
    assert step.keys() >= STEP_KEYS
    assert (step["planned"], step["sent"], step["completed"], step["errors"]) == (20, 20, 20, {})
    assert step["clean"] and not any(step["sipp_failed"].values())
    assert [c["outcome"] for c in step["commands"]] == ["completed"] * 20
    for command in step["commands"]:
        assert command["sent"] <= command["started"] <= command["ended"]
        assert [name for _, name in command["events"]] == [
            "CALL_ANSWER", "TRANSFER_ACCEPT", "CALL_START", "CALL_ANSWER", "Ended"]
        if step["invite_capture"]:  # not without the permission to capture on lo
            assert command["invite"] is not None
    logs = Path(report["logs"]) / "latency-10"
    assert (logs / "commands.txt").exists() and list(logs.glob("*_stat.csv"))
