"""benchmarks/hostwatch.py: a watcher notes each wake-up later than its threshold and each span whose work
ran slower than the usual, its file reads back, and the watchers run pinned while a block runs and stop
after it."""

from __future__ import annotations

import io
import os
import signal
import time
from pathlib import Path

from benchmarks.hostwatch import HostEvent, Watcher, command, read_events, watch, watching
from harness.processes import Processes


def test_watcher_notes_late_wake_ups_from_the_threshold_on() -> None:
    w = Watcher(min_ms=12.0, span=1000)
    assert w.tick(1.0, 0.0119, 60e-6) == []
    assert w.tick(2.0, 0.012, 60e-6) == [HostEvent(2.0, "late", 12.0)]


def test_watcher_notes_a_span_whose_median_work_is_slow_against_the_usual() -> None:
    w = Watcher(slow=1.25, span=4, history=100, warm=4)
    events = []
    for k in range(4 * 4):  # four spans at 60 us: the usual, but no span is compared before 4 are known
        events += w.tick(float(k), 0.0, 60e-6)
    assert events == []
    # a span of 90, 90, 90 and 30 us: its median 90 us is 1.5 times the usual, a speed of two thirds
    events = [e for t, worked in enumerate((90e-6, 90e-6, 90e-6, 30e-6)) for e in w.tick(100.0 + t, 0.0, worked)]
    assert events == [HostEvent(103.0, "slow", 0.667)]
    # one slow tick in a span moves its median nowhere
    assert [e for t in range(4) for e in w.tick(200.0 + t, 0.0, 900e-6 if t == 0 else 60e-6)] == []


def test_watch_times_the_job_after_each_wake_up_and_writes_what_the_watcher_says() -> None:
    # each sleep of 10 ms takes 10 then 35 ms on the fake clock, each job 60 us
    now = [100.0]
    takes = iter([0.010, 0.035])
    left = [2]

    def sleep(seconds: float) -> None:
        now[0] += next(takes)
        left[0] -= 1

    def job() -> None:
        now[0] += 60e-6

    out = io.StringIO()
    watch(out, Watcher(min_ms=10.0), 0.01, running=lambda: left[0] > 0, clock=lambda: now[0],
          wall=lambda: 1e9, sleep=sleep, job=job)
    assert out.getvalue() == "1000000000.000 late 25\n"


def test_read_events_skips_a_line_cut_short_or_unknown(tmp_path: Path) -> None:
    path = tmp_path / "host.log"
    path.write_text("1796500000.125 late 31.5\n1796500001.000 slow 0.667\n1796500002.000 fast 2\n17965000")
    assert read_events(path) == [HostEvent(1796500000.125, "late", 31.5), HostEvent(1796500001.0, "slow", 0.667)]
    assert read_events(tmp_path / "none.log") == []


def test_command_pins_the_watcher_to_its_cpu(tmp_path: Path) -> None:
    cmd = command(1, tmp_path / "w.log", 0.005, 20.0)
    assert cmd[:3] == ["taskset", "-c", "1"]
    assert cmd[4:7] == ["-m", "benchmarks.hostwatch", "--out"]
    assert cmd[-4:] == ["--tick", "0.005", "--min-ms", "20"]


def test_watching_runs_one_pinned_watcher_per_cpu_that_sees_its_cpu_stop(tmp_path: Path) -> None:
    procs = Processes()
    root = Path(__file__).resolve().parent.parent
    cpu = sorted(os.sched_getaffinity(0))[0]
    try:
        with watching(procs, [cpu], tmp_path, root) as files:
            assert list(files) == [cpu] and files[cpu].name == f"hostwatch-cpu{cpu}.log"
            deadline = time.monotonic() + 10
            while not files[cpu].exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert files[cpu].exists()  # the watcher opened its file: it runs
            watcher = procs.procs[-1]
            os.kill(watcher.pid, signal.SIGSTOP)  # what a host that stops the CPU looks like to it
            time.sleep(0.3)
            os.kill(watcher.pid, signal.SIGCONT)
            while not read_events(files[cpu]) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert max(e.value for e in read_events(files[cpu]) if e.kind == "late") >= 250
        assert all(p.poll() is not None for p in procs.procs)
    finally:
        procs.stop_all()
    with watching(procs, [], tmp_path, root) as none:
        assert none == {}
