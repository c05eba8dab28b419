"""The network fuzzer's short run (issue 17): a few thousand mutated SIP datagrams, TCP connections and
WebSocket frames against the running service; afterwards it answers OPTIONS over UDP and TCP, answers
the API, completes a real call with SIPp phones, logged no traceback, holds as many descriptors as
before and its RSS has stopped growing.  ``python -m benchmarks.netfuzz`` is the long run."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.kamailio import PortMap

from .netfuzz import run

pytestmark = pytest.mark.system


def test_service_survives_fuzzed_input_on_every_socket(tmp_path: Path, rig_ports: PortMap) -> None:
    report = run(rig_ports, tmp_path, datagrams=3000, tcp_connections=200, ws_frames=1000, seed=17)
    assert report.ok, report.report()
    # The run proved something: inputs went out on every channel and the service answered some.
    assert report.sent["udp"] == 3000 and report.sent["tcp connections"] > 100 and report.sent["ws frames"] > 500
    assert sum(v for k, v in report.back.items() if k.isdigit()) > 0 and report.back["ws responses"] > 0
