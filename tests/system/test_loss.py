"""Every flow under packet loss (issue 17): SIPp phones behind seeded lossy relays on both sides of the
call, at 10 % and 20 % loss each way; zero failed calls at either phone, every command reports what it
must (no FlowError), the service logs no error, and the relays did drop datagrams.

A handful of calls per flow; ``python -m benchmarks.loss`` runs the issue's full counts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.kamailio import PortMap

from .loss import FLOWS

pytestmark = pytest.mark.system

CALLS = {"bridged": 10, "hold": 3, "start": 3, "blind": 3, "attended": 3}
"""Calls (or commands) per flow and loss rate in the suite: enough that the seeded relays drop several
datagrams.  The phones retransmit a non-INVITE request up to Timer F as RFC 3261 says, not SIPp's shorter
default (``loss.TIMER_F_RETRANS``): with SIPp's 6 sends a twin's BYE once gave up at 20 % here."""


@pytest.mark.parametrize("loss", [0.10, 0.20], ids=["10%", "20%"])
@pytest.mark.parametrize("flow", sorted(CALLS))
def test_flow_survives_loss_on_both_sides(flow: str, loss: float, tmp_path: Path, rig_ports: PortMap) -> None:
    run = FLOWS[flow](rig_ports, tmp_path, loss, CALLS[flow])
    assert run.ok, run.report()
    assert run.failed_calls == 0 and run.dropped > 0
