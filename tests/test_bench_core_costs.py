"""benchmarks/core_costs.py runs both halves of a call through a fresh service, which keeps nothing after
64*T1, and prints each figure (speed is not asserted)."""

from __future__ import annotations

import pytest

from benchmarks import core_costs


def test_reachable_counts_each_tracked_object_once() -> None:
    shared: list[object] = []
    root = {"a": shared, "b": [shared, "text", 3], "c": (shared,)}
    assert core_costs.reachable(root) == 4  # the dict, shared, the list and the tuple; not the str nor the int
    assert core_costs.reachable("untracked") == 0


def test_a_round_measures_both_halves_and_what_each_call_kept() -> None:
    r = core_costs.one_round(10, profile="deferred")
    assert r.live_us > 0 and r.deferred_us > 0
    assert r.transactions == 4.0  # the INVITE and the BYE, on each leg, kept for Timers J, K, L and M
    assert r.objects > 0
    assert "layer.py" in r.profile
    assert "parser.py" in core_costs.one_round(5, profile="live").profile
    assert core_costs.one_round(5).profile == ""


def test_prints_every_row(capsys: pytest.CaptureFixture[str]) -> None:
    core_costs.main(["--calls", "5", "--rounds", "1"])
    out = capsys.readouterr().out.splitlines()
    assert [line[:44].strip() for line in out[1:6]] == [
        "live half, us", "deferred half (64*T1 later), us", "deferred / live", "transactions kept for 64*T1",
        "tracked objects kept for 64*T1"]
