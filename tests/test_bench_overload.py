"""benchmarks/overload.py: a multiple's outcome counted from its two steps (admitted, 503, neither), and
issue 12's overload criteria passing and failing on it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from benchmarks.calls import Step
from benchmarks.overload import OVERLOAD, Outcome, _multiples, table, verdicts
from benchmarks.soak import Verdict
from harness.sipp_stats import SippSide


def _step(**changes: object) -> Step:
    step = Step(contender="call-api/uvloop", scenarios="overload2x", rate=1200, seconds=60.0, hold=1.0,
                attempted=72000, successful=72000, failed=0, unfinished=0, callee_unfinished=0, retransmissions=0,
                achieved=1200.0, creation_seconds=60.0, wall_seconds=62.0, service_cpu=55.0, setup_ms_mean=3.0,
                setup_repartition_ms={}, service_log_lines=[], uac=SippSide("caller", 0), uas=SippSide("callee", 0),
                logs="-", setup_ms_p99=40.0, setup_ms_max=180.0, answered=40000, rejected_503=32000, rss_max_mb=310.0)
    return replace(step, **changes)  # type: ignore[arg-type]


AFTER = _step(scenarios="after2x", rate=600, attempted=36000, successful=36000, answered=36000, rejected_503=0,
              rss_max_mb=320.0)


def _failing(vs: list[Verdict]) -> list[str]:
    return [v.criterion for v in vs if not v.passed]


def test_outcome_counts_admitted_rejected_and_neither() -> None:
    o = Outcome.of(2.0, _step(answered=39000, failed=700, unfinished=200, callee_unfinished=100), AFTER)
    assert (o.offered, o.admitted, o.rejected, o.neither, o.failed) == (72000, 39000, 32000, 1000, 1000)
    assert o.bare_503 == 0
    assert (o.multiple, o.rate, o.after_rate, o.after_clean) == (2.0, 1200, 600, True)
    assert o.rss_max_mb == 320.0  # the highest of both steps
    assert Outcome.of(2.0, _step(rss_max_mb=None), replace(AFTER, rss_max_mb=None)).rss_max_mb is None


def test_a_503_without_retry_after_is_no_rejection_but_a_failure() -> None:
    caller = SippSide("caller", 1, failed=300, failed_by_reason={"RegexpHdrNotFound": 300})
    o = Outcome.of(2.0, _step(uac=caller, failed=300, successful=71700), AFTER)
    assert (o.admitted, o.rejected, o.bare_503, o.neither, o.failed) == (40000, 31700, 300, 300, 300)
    first = verdicts(o, None)[0]
    assert not first.passed
    assert first.measured == "40000 admitted, 31700 got 503, 300 neither (300 a 503 without Retry-After), 300 failed"


def test_a_shed_overload_and_a_clean_step_after_pass() -> None:
    vs = verdicts(Outcome.of(2.0, _step(), AFTER), rss_bound=400.0)
    assert [v.passed for v in vs] == [True, True, True, True]
    assert vs[0].measured == "40000 admitted, 32000 got 503, 0 neither, 0 failed"
    assert len(verdicts(Outcome.of(2.0, _step(), AFTER), rss_bound=None)) == 3


@pytest.mark.parametrize(("step", "after", "bound", "failing"), [
    (_step(failed=3), AFTER, None, "admitted calls without failure, the others got 503"),
    (_step(answered=39990), AFTER, None, "admitted calls without failure, the others got 503"),
    (_step(setup_ms_p99=200.0), AFTER, None, "INVITE->200 p99 of admitted calls under 200 ms"),
    (_step(setup_ms_p99=None, answered=0, rejected_503=72000), AFTER, None,
     "INVITE->200 p99 of admitted calls under 200 ms"),
    (_step(), AFTER, 300.0, "RSS under 300 MB"),
    (_step(), replace(AFTER, retransmissions=1), None, "the step after, at 600/s, is clean"),
])
def test_each_criterion_fails_alone(step: Step, after: Step, bound: float | None, failing: str) -> None:
    assert _failing(verdicts(Outcome.of(2.0, step, after), bound)) == [failing]


def test_table_has_a_row_per_multiple() -> None:
    lines = table([Outcome.of(2.0, _step(), AFTER), Outcome.of(3.0, _step(rate=1800, setup_ms_p99=None,
                                                                          setup_ms_max=None), replace(AFTER, failed=1))]
                  ).splitlines()
    assert lines[2] == ("| call-api/uvloop | 2x | 1200 | 72000 | 40000 | 32000 | 0 | 0 | 0 | 40 / 180 | 320.0 | "
                        "600/s clean |")
    assert lines[3].endswith("| - / - | 320.0 | 600/s NOT clean |")


def test_multiples_parse_and_refuse_nonsense() -> None:
    assert _multiples("1.5, 2,3") == [1.5, 2.0, 3.0]
    for text in ("", "2,0", "-1"):
        with pytest.raises(ValueError):
            _multiples(text)


def test_the_overload_caller_is_the_scenario_that_accepts_503() -> None:
    assert OVERLOAD.uac == "bench_uac_overload" and OVERLOAD.rtd == "setup"
    assert OVERLOAD.args(OVERLOAD.uac)[1].endswith("sipp-scenarios/bench_uac_overload.xml")
