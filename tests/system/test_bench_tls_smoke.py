"""``benchmarks/tls_costs.py --quick`` runs end to end against real call-api, Kamailio (with its TLS module) and
SIPp processes and prints its tables: the handshake rows for TCP and TLS, and a bridged-call step over each
transport. The figures are the benchmark's business; only that every row is there, and every call succeeded."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.system, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
#: Ports 17151-17181 and 17261-17364: clear of a default run (base 16900) and of the other smoke tests.
BASE_PORT = "17100"


def test_tls_costs_quick_prints_the_handshakes_and_the_calls_over_tcp_and_tls(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "benchmarks.tls_costs", "--quick", "--base-port", BASE_PORT,
                          "--results", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=110, stdin=subprocess.DEVNULL)
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    number = r"[0-9]+(?:\.[0-9]+)?"
    for label in ("TCP", r"TLS \(full handshake\)"):
        assert re.search(rf"^\| {label} \| {number} \| [1-9][0-9]* \| 0 \| {number} \| {number} \| {number} \|$", out,
                         re.MULTILINE), out
    for path in ("TCP", "TLS"):
        assert re.search(rf"^\| {path} call-api/uvloop \| 20 \| 60 \| 60 \| 0 \| 0 \| ", out, re.MULTILINE), out
    assert re.search(rf"^\| 20 \| 60 / 0 / 0 \| 60 / 0 / 0 \| {number} \| {number} \| [0-9.-]+ \| {number} \| "
                     rf"{number} \|$", out, re.MULTILINE), out
    assert len(list(tmp_path.glob("tls_costs-*.json"))) == 1
