"""benchmarks/live_costs.py runs (a smoke: no timing asserted) and measures what it says: calls observed or not."""

from __future__ import annotations

import pytest

from benchmarks.layer_costs import invites
from benchmarks.live_costs import PEER, Unobserved, main, service, subscribed


@pytest.mark.parametrize(("make", "events"), [(Unobserved, 0), (subscribed, 2)])
def test_each_row_makes_its_calls_observed_or_not(make: type, events: int) -> None:
    live = make()
    ua, b2bua = service(live)
    for data in invites(2):
        ua.receive(data, PEER, 0.0)
        for event in ua.take_events():
            b2bua.handle(event, 0.0)
    assert len(b2bua.table) == 2 and live.seq == events


def test_it_prints_three_rows(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--count", "5"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and "us per call" in lines[0]
