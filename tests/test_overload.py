"""The overload controller (b2bua/sip/overload.py): its table, and the monitor driven with a fake clock."""

from __future__ import annotations

import pytest

from b2bua.sip.overload import (
    OVERLOAD_TABLE,
    PROBE_MARK,
    OverloadInput,
    OverloadMonitor,
    OverloadSettings,
    OverloadState,
)

S = OverloadState
#: Standing queue above 300 ms for 0.2 s; steer under 50 ms; calm 1 s; periods of 100 ms; probes every 20 ms;
#: a stall is a timer 50 ms late, excused for 5x its length (at least 2 s). The first version's defaults: round
#: numbers that keep the timelines below easy to follow. The shipped ones are tighter (checked at the end).
SETTINGS = OverloadSettings(high=0.3, sustain=0.2, low=0.05, calm=1.0, period=0.1, decrease=0.7, increase=0.1)


class Rig:
    """A monitor whose probes come back after ``delay`` seconds, ticked every ``interval``."""

    def __init__(self, settings: OverloadSettings = SETTINGS) -> None:
        self.now = 0.0
        #: The loop thread's CPU seconds: it runs flat out unless ``run`` is told otherwise.
        self.cpu = 0.0
        self.monitor = OverloadMonitor(settings, self.now)
        self.moves: list[OverloadState] = []
        self.pending: list[tuple[float, bytes]] = []

    def run(self, seconds: float, delay: float, busy: float = 1.0) -> None:
        """Probe on time for ``seconds``; each probe's echo arrives ``delay`` later; the loop runs ``busy``
        of the time."""
        pending = self.pending
        end = self.now + seconds
        while self.now < end:
            due = self.monitor.get_timer()
            while pending and pending[0][0] <= due:
                at, data = pending.pop(0)
                self._note(self.monitor.echo(data, at))
            now = max(due, self.now)
            self.cpu += (now - self.now) * busy
            self.now = now
            data, moved = self.monitor.probe(self.now, self.cpu)
            self._note(moved)
            pending.append((self.now + delay, data))
            pending.sort()

    def stall(self, seconds: float) -> bytes:
        """The process does not run for ``seconds``; returns the probe sent just before."""
        data, moved = self.monitor.probe(self.now)
        self._note(moved)
        self.now += seconds
        return data

    def _note(self, moves: tuple[OverloadState, ...]) -> None:
        self.moves += moves


def test_the_table_has_a_row_for_every_state_and_input() -> None:
    assert set(OVERLOAD_TABLE) == {(s, i) for s in OverloadState for i in OverloadInput}
    assert OVERLOAD_TABLE[S.ADMITTING, OverloadInput.BEHIND] is S.SHEDDING
    assert OVERLOAD_TABLE[S.ADMITTING, OverloadInput.STALL] is S.EXCUSED
    assert OVERLOAD_TABLE[S.EXCUSED, OverloadInput.BEHIND] is S.EXCUSED
    assert OVERLOAD_TABLE[S.EXCUSED, OverloadInput.EXCUSE_OVER] is S.SHEDDING
    assert OVERLOAD_TABLE[S.SHEDDING, OverloadInput.CALM] is S.ADMITTING


@pytest.mark.parametrize("kwargs", [{"low": 0.2, "high": 0.15}, {"low": 0}, {"calm": 0}, {"interval": -1},
                                    {"retry_after": -1}, {"gap": 0}, {"period": 0}, {"decrease": 1},
                                    {"increase": 0}, {"busy": 0}, {"busy": 1.1}])
def test_settings_refuse_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        OverloadSettings(**kwargs)  # type: ignore[arg-type]


def test_a_prompt_queue_admits() -> None:
    rig = Rig()
    rig.run(5, delay=0.001)
    assert rig.moves == [] and not rig.monitor.shedding and rig.monitor.admit == 1.0
    assert rig.monitor.delay == pytest.approx(0.001) and rig.monitor.standing < 0.002


def test_a_standing_queue_sheds_after_sustain() -> None:
    rig = Rig()
    rig.run(0.45, delay=0.4)
    assert rig.moves == [], "the queue has stood above 300 ms for less than 0.2 s"
    rig.run(0.4, delay=0.4)
    assert rig.moves == [S.SHEDDING] and rig.monitor.sheds == 1 and rig.monitor.admit == 0.0, "drain first"


def test_a_burst_that_drains_is_not_overload() -> None:
    """A process descheduled for 200 ms on a busy host: the delay jumps, then drains."""
    rig = Rig()
    rig.run(0.15, delay=0.4)
    rig.run(2, delay=0.001)
    assert rig.moves == [] and rig.monitor.stalls == 0


def test_a_queue_between_the_thresholds_neither_sheds_nor_calms() -> None:
    rig = Rig()
    rig.run(3, delay=0.1)
    assert rig.moves == []
    rig.run(1, delay=0.5)
    assert rig.moves == [S.SHEDDING]
    rig.run(3, delay=0.1)
    assert rig.moves == [S.SHEDDING] and rig.monitor.admit < 0.01, "steered down while above low"


def test_probes_that_do_not_come_back_count_as_delay() -> None:
    rig = Rig()
    rig.run(1, delay=100)  # none returns within the run
    assert rig.moves == [S.SHEDDING]


def test_shedding_steers_the_admitted_share_down_while_queued_and_up_while_not() -> None:
    rig = Rig()
    rig.run(1, delay=0.5)
    assert rig.moves == [S.SHEDDING] and rig.monitor.admit == 0.0
    rig.pending.clear()
    rig.run(0.5, delay=0.001)
    grown = rig.monitor.admit
    assert 0.3 <= grown <= 0.6, "additive increase, 0.1 a period"
    rig.run(0.5, delay=0.08)
    assert 0 < rig.monitor.admit < grown * 0.6, "multiplicative decrease, 30 % a period above low"
    rig.run(1.0, delay=0.001)
    assert rig.monitor.admit == 1.0 and rig.monitor.shedding, "all admitted, not yet calm for a second"
    rig.run(1.2, delay=0.001)
    assert rig.moves == [S.SHEDDING, S.ADMITTING] and rig.monitor.admit == 1.0


def test_a_stall_is_excused_and_a_drained_backlog_admits_at_once() -> None:
    rig = Rig()
    rig.run(1, delay=0.001)
    before = rig.stall(2.0)
    rig.pending.clear()
    data, moves = rig.monitor.probe(rig.now)  # the loop runs its timer first
    assert moves == (S.EXCUSED,) and rig.monitor.stalls == 1
    assert rig.monitor.last_stall == pytest.approx(2.0, abs=0.03)
    assert rig.monitor.echo(before, rig.now + 0.005) == (), "a 2 s old probe while excused"
    rig.monitor.echo(data, rig.now + 0.006)
    rig.run(0.3, delay=0.001)
    assert rig.moves == [S.ADMITTING] and rig.monitor.admit == 1.0


def test_a_stall_seen_first_by_an_echo_is_excused_too() -> None:
    rig = Rig()
    rig.run(1, delay=0.001)
    before = rig.stall(1.0)
    assert rig.monitor.echo(before, rig.now) == (S.EXCUSED,), "the socket was read before the timer ran"
    assert rig.monitor.stalls == 1
    _, moves = rig.monitor.probe(rig.now)
    assert moves == () and rig.monitor.stalls == 1, "one stall is counted once"


def test_a_backlog_still_there_when_the_excuse_ends_sheds() -> None:
    rig = Rig()
    rig.stall(1.0)  # excused for max(2, 5 * 1) = 5 s
    rig.run(4.5, delay=0.4)
    assert rig.moves == [S.EXCUSED] and rig.monitor.admit == 1.0
    rig.run(0.6, delay=0.4)
    assert rig.moves == [S.EXCUSED, S.SHEDDING]


def test_stalls_while_excused_do_not_extend_the_window() -> None:
    rig = Rig()
    rig.stall(0.2)  # excused for 2 s
    rig.run(1.5, delay=0.4)
    rig.stall(0.2)
    rig.run(0.6, delay=0.4)
    assert rig.moves == [S.EXCUSED, S.SHEDDING] and rig.monitor.stalls == 2


def test_a_stall_with_no_backlog_is_excused_and_over_at_once() -> None:
    rig = Rig()
    rig.run(1, delay=0.001)
    rig.stall(0.5)
    rig.pending.clear()
    rig.run(0.2, delay=0.001)
    assert rig.moves == [S.EXCUSED, S.ADMITTING] and rig.monitor.stalls == 1


def test_a_short_lag_is_not_a_stall() -> None:
    rig = Rig()
    rig.stall(0.03)
    rig.run(1, delay=0.001)
    assert rig.monitor.stalls == 0 and rig.moves == []


def test_echoes_that_are_not_probes_or_unknown_are_ignored() -> None:
    rig = Rig()
    data, _ = rig.monitor.probe(rig.monitor.get_timer())
    assert data[:1] == PROBE_MARK and len(data) == 9
    assert rig.monitor.echo(PROBE_MARK + b"x", 0.1) == ()
    assert rig.monitor.echo(PROBE_MARK + (999).to_bytes(8, "big"), 0.1) == ()
    assert rig.monitor.delay == 0.0 and rig.monitor.echoes == 0


def test_a_later_echo_drops_the_lost_probes_before_it() -> None:
    monitor = OverloadMonitor(SETTINGS, 0.0)
    first, _ = monitor.probe(0.02)
    second, _ = monitor.probe(0.04)
    monitor.echo(second, 0.041)
    assert monitor.delay == pytest.approx(0.001)
    assert monitor.echo(first, 0.5) == () and monitor.delay == pytest.approx(0.001), "lost, not late"


def test_a_standing_queue_while_the_loop_was_starved_is_excused_not_shed() -> None:
    rig = Rig()
    rig.run(1, delay=0.001)
    rig.run(0.5, delay=0.4, busy=0.6)  # the host gave the core away in slices no timer saw
    assert rig.moves == [S.EXCUSED] and rig.monitor.admit == 1.0
    assert rig.monitor.stalls == rig.monitor.starved == 1 and rig.monitor.last_starved
    assert rig.monitor.last_stall == pytest.approx(0.04, abs=0.005), "40 % of a 100 ms period"
    rig.pending.clear()
    rig.run(0.3, delay=0.001)
    assert rig.moves == [S.EXCUSED, S.ADMITTING]


def test_a_starved_backlog_that_outlasts_the_excuse_sheds() -> None:
    rig = Rig()
    rig.run(3.5, delay=0.4, busy=0.6)  # excused for 2 s, then a standing queue all the same
    assert rig.moves == [S.EXCUSED, S.SHEDDING]


def test_a_standing_queue_with_the_loop_busy_sheds_as_before() -> None:
    rig = Rig()
    rig.run(1, delay=0.4, busy=0.95)
    assert rig.moves == [S.SHEDDING] and rig.monitor.starved == 0


def test_a_starved_period_with_no_standing_queue_is_nothing() -> None:
    rig = Rig()
    rig.run(2, delay=0.01, busy=0.3)  # an idle service runs little: no queue, no starvation
    assert rig.moves == [] and rig.monitor.stalls == 0


def test_without_cpu_time_there_is_no_starvation_test() -> None:
    monitor = OverloadMonitor(SETTINGS, 0.0)
    now = 0.0
    while now < 1.0:
        now = monitor.get_timer()
        monitor.probe(now)  # echoes never come back: the queue stands and grows
    assert monitor.shedding and monitor.starved == 0


def test_the_shipped_thresholds_shed_a_120_ms_queue_within_a_quarter_second_and_steer_it_under_20_ms() -> None:
    """Issue 12's overload criterion (admitted calls' INVITE->200 p99 under 200 ms) needs a queue that never
    stands long above 100 ms: a call waits in it twice, its INVITE and its 200."""
    rig = Rig(OverloadSettings())
    rig.run(1, delay=0.015)
    assert rig.moves == [], "a short queue is not an overload"
    rig.run(0.25, delay=0.12)  # the first echo 120 ms late comes back 120 ms in
    assert rig.moves == [S.SHEDDING]
    rig.run(0.5, delay=0.03)
    assert rig.monitor.admit < 0.01, "above low (20 ms): steered down"
    rig.run(2.0, delay=0.005)  # +0.05 a period of 50 ms: all admitted after 1 s
    assert rig.monitor.admit == 1.0 and rig.monitor.shedding, "admitting all again, calm for less than 3 s"
    rig.run(2.5, delay=0.005)
    assert rig.moves == [S.SHEDDING, S.ADMITTING]
