"""``benchmarks/crash_loop.py`` end to end, short: SIPp phones through Kamailio while the service is killed with
SIGKILL and started again twice; every call kept at a kill must end cleanly at both phones (the script's
verdict), and the report names each kill."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.system, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
#: The rig's ports shifted into 16800-16899: clear of the system tests' and a default benchmark run's.
OFFSET = "11800"


def test_a_short_crash_loop_loses_no_kept_call() -> None:
    run = subprocess.run([sys.executable, "-m", "benchmarks.crash_loop", "--minutes", "0.34", "--kill-every", "8",
                          "--rate", "20", "--hold", "3", "--port-offset", OFFSET],
                         cwd=ROOT, capture_output=True, text=True, timeout=170, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stdout + run.stderr
    kills = re.findall(r"^ +\d+\.\d s: killed with (\d+) calls kept", run.stdout, re.MULTILINE)
    assert len(kills) == 2 and all(int(kept) > 0 for kept in kills), run.stdout
    assert "PASS: every call kept at a kill ended cleanly" in run.stdout
