"""benchmarks/calls.py: the parts of a step's report added for long runs (the stall line, the step under
its heading with its series) and the options every step-based benchmark shares."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from benchmarks.calls import (
    RESULTS,
    ROOT,
    Step,
    add_common_arguments,
    shown,
    stall_text,
    step_report,
)
from benchmarks.series import Window
from benchmarks.watch import Stall
from harness.sipp_stats import SippSide


def _step(**changes: object) -> Step:
    fields: dict[str, object] = dict(
        contender="call-api/uvloop", scenarios="bench", rate=20, seconds=10.0, hold=1.0, attempted=200,
        successful=200, failed=0, unfinished=0, callee_unfinished=0, retransmissions=0, achieved=20.0,
        creation_seconds=10.0, wall_seconds=11.0, service_cpu=0.5, setup_ms_mean=3.0, setup_repartition_ms={"<5": 200},
        service_log_lines=[], uac=SippSide("caller", 0), uas=SippSide("callee", 0), logs="-",
        setup_ms_p99=4.0, setup_ms_max=8.0, gc_min_ms=1.0,
        series=[Window(0.0, 10.0, 0, 21, 200, 0.5, 5.0, 31.5, None, 8.0),
                Window(10.0, 11.0, 0, 3, 0, 0.0, 0.0, 31.6, 2.5, None)])
    fields.update(changes)
    return Step(**fields)  # type: ignore[arg-type]


def test_a_step_without_a_stall_has_no_stall_line() -> None:
    assert stall_text(_step()) is None


def test_stall_line_says_how_long_after_the_resume_the_retransmissions_went_on() -> None:
    stalled = _step(stall=Stall(3.0, 1.0), stopped_at=100.0, resumed_at=101.02, last_retransmission_after_resume=4.0)
    assert stall_text(stalled) == ("stall: SIGSTOP at 3 s for 1.0 s; last retransmission 4.0 s after the resume "
                                   "(recovered in 4.0 s)")
    quiet = _step(stall=Stall(3.0, 1.0), stopped_at=100.0, resumed_at=101.0)
    assert stall_text(quiet) == "stall: SIGSTOP at 3 s for 1.0 s; no retransmission after the resume (recovered in 0 s)"
    late = _step(stall=Stall(30.0, 1.0))
    assert stall_text(late) == "stall at 30 s for 1 s: not applied (the step ended first)"


def test_step_report_has_the_verdict_the_row_and_the_series() -> None:
    lines = step_report(_step()).splitlines()
    assert lines[0] == "### call-api/uvloop 20/s, 10 s: clean"
    assert lines[4].startswith("| call-api/uvloop | 20 | 200 | 200 | 0 | 0 | 20.0 | 0.50 | 5 | 4 / 8 | <5:200 |")
    assert lines[8:] == ["| 0-10 | 0 | 21 | 5 | 31.5 | <1 | 8 |", "| 10-11 | 0 | 3 | 0 | 31.6 | 2.5 | - |"]
    unclean = step_report(_step(retransmissions=3, stall=Stall(3.0, 1.0), gc_min_ms=None))
    assert unclean.startswith("### call-api/uvloop 20/s, 10 s: NOT clean")
    assert unclean.rstrip().endswith("not applied (the step ended first)")
    assert "| 0-10 | 0 | 21 | 5 | 31.5 | - | 8 |" in unclean  # no probe, no GC figure


def test_common_arguments_collect_service_arguments_in_order() -> None:
    parser = argparse.ArgumentParser()
    add_common_arguments(parser)
    args = parser.parse_args(["--service-arg=--overload", "--service-arg", "x", "--stall-at", "5", "--stall-for", "2"])
    assert args.service_arg == ["--overload", "x"]
    assert (args.stall_at, args.stall_for, args.window, args.results) == (5.0, 2.0, 10.0, RESULTS)


@pytest.mark.parametrize(("path", "text"), [(ROOT / "benchmarks" / "x.json", "benchmarks/x.json"),
                                            (Path("/elsewhere/x.json"), "/elsewhere/x.json")])
def test_shown_paths_are_relative_to_the_repository_when_inside_it(path: Path, text: str) -> None:
    assert shown(path) == text
