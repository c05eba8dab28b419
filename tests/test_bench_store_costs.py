"""benchmarks/store_costs.py runs and prints each cost it measures and the restore (speed is not asserted)."""

from __future__ import annotations

import re

import pytest

from benchmarks import store_costs


def test_prints_every_row_and_restores_every_call(capsys: pytest.CaptureFixture[str]) -> None:
    store_costs.main(["--count", "20", "--calls", "30"])
    out = capsys.readouterr().out.splitlines()
    names = [line[:44].strip() for line in out[1:4]]
    assert names == ["record (JSON of an answered call)", "keeper + put (one changed call)",
                     "delete (a call that ended)"]
    assert all(float(line[44:]) > 0 for line in out[1:4])
    assert re.fullmatch(r"restore 30 calls: \d+\.\d\d s \(\d+ us per call\)", out[-1])


def test_the_records_are_distinct_calls() -> None:
    _, _, _, call = store_costs.answered_call()
    records = store_costs.records(store_costs.call_record(call), call, 3)
    assert len(set(records.values())) == 3
