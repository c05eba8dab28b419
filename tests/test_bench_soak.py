"""benchmarks/soak.py: the spans a run of any length is judged on, and each soak criterion of issue 12
passing and failing on a step's figures."""

from __future__ import annotations

from dataclasses import replace

import pytest

from benchmarks.calls import Step
from benchmarks.series import Window
from benchmarks.soak import Spans, Verdict, cpu_per_call, rss_spread, setup_verdict, soak_verdicts, verdict_table
from benchmarks.watch import Stall
from harness.sipp_stats import SippSide


def _window(k: int, *, cpu_s: float | None = 6.0, created: int = 600, rss: float = 100.0, setup: float = 8.0,
            retrans: int = 0) -> Window:
    cpu_pct = None if cpu_s is None else 10 * cpu_s
    return Window(10.0 * k, 10.0 * (k + 1), retrans, 60, created, cpu_s, cpu_pct, rss, 2.0, setup)


def _step(windows: list[Window], **changes: object) -> Step:
    step = Step(contender="call-api/uvloop", scenarios="bench", rate=60, seconds=60.0, hold=1.0, attempted=3600,
                successful=3600, failed=0, unfinished=0, callee_unfinished=0, retransmissions=0, achieved=60.0,
                creation_seconds=60.0, wall_seconds=62.0, service_cpu=36.0, setup_ms_mean=3.0,
                setup_repartition_ms={}, service_log_lines=[], uac=SippSide("caller", 0),
                uas=SippSide("callee", 0), logs="-", series=windows, gc_max_ms=2.0, setup_ms_max=8.0)
    return replace(step, **changes)  # type: ignore[arg-type]


STEADY = [_window(k) for k in range(6)]
SPANS = Spans(load=60.0, warmup=10.0, span=20.0)


def _by_criterion(verdicts: list[Verdict]) -> dict[str, bool]:
    return {v.criterion.split(",")[0].split(" (")[0]: v.passed for v in verdicts}


def test_spans_keep_what_fits_and_shrink_in_whole_windows_otherwise() -> None:
    assert Spans.fit(1800, 60, 300, 10) == Spans(1800, 60, 300)
    assert Spans.fit(30, 60, 300, 5) == Spans(30, 10, 10)
    assert Spans.fit(30, 60, 300, 10) == Spans(30, 10, 10)
    spans = Spans(1800, 60, 300)
    assert spans.first == (60, 360) and spans.last == (1500, 1800)


def test_cpu_per_call_and_rss_spread_over_whole_windows_only() -> None:
    windows = [_window(0, cpu_s=2.0, created=100, rss=90.0), _window(1, cpu_s=3.0, created=100, rss=95.0),
               _window(2, cpu_s=None, rss=99.0)]
    assert cpu_per_call(windows, 0, 20) == pytest.approx(25.0)
    assert cpu_per_call(windows, 0, 15) == pytest.approx(20.0)  # the 10-20 window is not inside
    assert cpu_per_call(windows, 0, 30) is None  # a window without a CPU sample
    assert cpu_per_call([_window(0, created=0)], 0, 10) is None
    assert rss_spread(windows, 10, 30) == (95.0, 99.0)
    assert rss_spread(windows, 40, 50) is None


def test_a_steady_clean_step_passes_every_criterion() -> None:
    verdicts = soak_verdicts(_step(STEADY), SPANS)
    assert all(v.passed for v in verdicts), verdict_table(verdicts)
    assert len(verdicts) == 7


@pytest.mark.parametrize(("changes", "criterion"), [
    ({"failed": 1, "successful": 3599}, "zero failed calls"),
    ({"unfinished": 2, "successful": 3598}, "zero failed calls"),
    ({"retransmissions": 5}, "zero retransmissions"),
    ({"callee_unfinished": 1}, "no call left unended at the callee"),
    ({"gc_max_ms": 50.0}, "longest GC pause under 50 ms"),
])
def test_each_count_criterion_fails_alone(changes: dict[str, object], criterion: str) -> None:
    results = _by_criterion(soak_verdicts(_step(STEADY, **changes), SPANS))
    assert [name for name, ok in results.items() if not ok] == [criterion]


def test_cpu_growth_rss_growth_and_a_slow_answer_fail() -> None:
    growing = [_window(k, cpu_s=6.0 + 0.2 * k, rss=100.0 + 2 * k, setup=8.0 if k < 5 else 150.0) for k in range(6)]
    results = _by_criterion(soak_verdicts(_step(growing), SPANS))
    assert [name for name, ok in results.items() if not ok] == [
        "CPU per call", "RSS flat within 5 % from 20 s", "INVITE->200 max under 100 ms"]


def test_a_run_too_short_to_compare_fails_the_cpu_criterion() -> None:
    verdicts = soak_verdicts(_step(STEADY[:1]), Spans(10.0, 0.0, 0.0))
    cpu = next(v for v in verdicts if v.criterion.startswith("CPU per call"))
    assert not cpu.passed and "not measured" in cpu.measured


def test_with_a_stall_retransmissions_within_15_s_of_the_resume_pass() -> None:
    stalled = [*STEADY[:2], _window(2, setup=2000.0, retrans=80), _window(3, setup=300.0), *STEADY[4:]]
    step = _step(stalled, stall=Stall(20.0, 2.0), stopped_at=1020.0, resumed_at=1022.0, retransmissions=80,
                 last_retransmission_after_resume=9.0)
    verdicts = soak_verdicts(step, SPANS)
    assert all(v.passed for v in verdicts), verdict_table(verdicts)
    late = replace(step, last_retransmission_after_resume=16.0)
    assert not _by_criterion(soak_verdicts(late, SPANS))["no retransmission later than 15 s after the resume"]
    never = replace(step, stopped_at=None, resumed_at=None)
    assert not _by_criterion(soak_verdicts(never, SPANS))["no retransmission later than 15 s after the resume"]


def test_setup_verdict_leaves_out_only_the_windows_the_stall_touches() -> None:
    stalled = [*STEADY[:2], _window(2, setup=2000.0), _window(3, setup=300.0), _window(4, setup=120.0)]
    verdict = setup_verdict(_step(stalled, stall=Stall(20.0, 2.0)))
    assert not verdict.passed and verdict.measured == "120 ms"  # 40-50 s starts after 37 s
    assert "outside 20-37 s" in verdict.criterion


def test_setup_verdict_names_the_slow_windows_the_host_paused_and_still_fails() -> None:
    slow = [*STEADY[:2], replace(_window(2, setup=130.0), host_late_ms=(0.0, 85.0), host_speed=(1.0, 1.0)),
            replace(_window(3, setup=120.0), host_late_ms=(0.0, 0.0), host_speed=(0.6, 1.0)),
            replace(_window(4, setup=110.0), host_late_ms=(12.0, 0.0), host_speed=(0.8, 1.0)),
            replace(_window(5), host_late_ms=(90.0, 0.0), host_speed=(0.5, 0.5))]
    verdict = setup_verdict(_step(slow, host_cpus=(0, 1)))
    assert not verdict.passed
    assert verdict.measured == ("130 ms; 3 window(s) at or over 100 ms: in 1 the host stopped CPU 0 or 1 for 20 ms or "
                                "more, in 1 it slowed the contender's CPU 0 to 75 % or less")
    assert setup_verdict(_step(slow)).measured == "130 ms"  # no watchers: nothing said of the host
    assert setup_verdict(_step(STEADY, host_cpus=(0, 1))).measured == "8 ms"


def test_verdict_table_says_pass_or_fail() -> None:
    table = verdict_table([Verdict("a", True, "1"), Verdict("b", False, "2")])
    assert table.splitlines()[2:] == ["| a | 1 | PASS |", "| b | 2 | FAIL |"]
