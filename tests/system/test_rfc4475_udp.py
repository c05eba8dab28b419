"""RFC 4475 against the running service over UDP, in a network namespace of its own.

Every torture message is sent as one datagram; each must get the verdict of EXPECTED.tsv (for
``accept`` requests any answer but 400/505: an INVITE's 100 Trying counts, its B-leg goes to an
outbound proxy that is not there), responses must get no reply, and the service must still
answer an OPTIONS afterwards. Messages that reuse another's transaction key (same branch, sent-by
and method) are sent after that transaction has ended (Timer J, shortened with ``--t1 0.05``), since
RFC 3261 section 17.2.3 rightly treats them as retransmissions before. The namespace keeps the
probe's listeners on 5060 (where section 18.2.2 sends the answers) clear of anything else on the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..rfc4475 import TORTURES

pytestmark = pytest.mark.system
PROBE = Path(__file__).with_name("rfc4475_probe.py")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail("this test needs root and iproute2 (ip netns) to isolate its ports")
    name = f"callapi4475-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_torture_messages_get_their_verdicts_over_udp(netns: str) -> None:
    service = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-m", "b2bua", "--sip-listen", "127.0.0.1:5080",
         "--sip-transport", "udp", "--sip-transport", "tcp", "--ws-port", "0", "--log-level", "WARNING",
         "--t1", "0.05", "--outbound-proxy", "sip:127.0.0.1:5099;lr"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        probe = subprocess.run(["ip", "netns", "exec", netns, sys.executable, str(PROBE), "5080"],
                               capture_output=True, timeout=180, cwd=ROOT)
    finally:
        service.terminate()
        _, err = service.communicate(timeout=10)
    assert probe.returncode == 0, probe.stderr.decode()
    results: dict[str, list[int]] = json.loads(probe.stdout)
    assert "error" not in results, err.decode()[-2000:]
    problems = []
    for t in TORTURES:
        got = results[t.name]
        finals = [s for s in got if s >= 200]
        if t.kind == "response" or t.expect == "drop":
            if got:
                problems.append(f"{t.name}: expected no reply, got {got}")
            continue
        if t.expect in ("accept", "either"):
            if not got:
                problems.append(f"{t.name}: expected an answer, got none")
            elif t.expect == "accept" and {400, 505} & set(got):
                problems.append(f"{t.name}: well-formed, but answered {got}")
            continue
        if not finals:
            problems.append(f"{t.name}: expected {t.expect}, got no final response ({got})")
            continue
        final = finals[0]
        if t.statuses and final not in t.statuses:
            problems.append(f"{t.name}: expected {t.expect}, got {final}")
        if t.name == "dblreq.dat" and len(finals) != 1:
            problems.append(f"dblreq.dat: the first request must be answered once, got {finals}")
    assert not problems, "\n".join(problems)
    assert 200 in results["__options__"], "the service no longer answers OPTIONS"
    assert service.returncode == 0, err.decode()[-2000:]
