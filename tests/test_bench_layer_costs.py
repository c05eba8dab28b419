"""benchmarks/layer_costs.py runs and prints one row per path it measures (speed is not asserted)."""

from __future__ import annotations

import pytest

from benchmarks import layer_costs


def test_prints_every_path(capsys: pytest.CaptureFixture[str]) -> None:
    layer_costs.main(["--count", "20"])
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 10
    names = [line[:44].strip() for line in out[1:]]
    assert names == ["new INVITE (transaction, 100 Trying)", "retransmitted INVITE, absorbed",
                     "new INVITE refused 503 (overload)", "ACK to that 503, dropped",
                     "UDP receive, no probe watched", "UDP receive, probes watched", "count a request by method",
                     "count a response, CSeq parsed", "parse a CSeq (a response's first read)"]
    assert all(float(line[44:]) > 0 for line in out[1:])


def test_the_ack_matches_the_503() -> None:
    """The shed path really refuses and the ACK built for it carries the 503's To tag."""
    target = layer_costs.layer(admit=0.0)
    target.receive(layer_costs.invites(1)[0], layer_costs.PEER, 0.0)
    ((data, _),) = target.take_datagrams()
    assert data.startswith(b"SIP/2.0 503 ") and b"Retry-After: 2" in data and target.shed == 1
