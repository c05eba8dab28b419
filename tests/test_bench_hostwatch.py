"""benchmarks/hostwatch.py: a watcher notes each wake-up later than its threshold, its file reads back, and
the watchers run pinned while a block runs and stop after it."""

from __future__ import annotations

import io
import os
import signal
import time
from pathlib import Path

from benchmarks.hostwatch import command, read_late, watch, watching
from harness.processes import Processes


def test_watch_writes_only_the_wake_ups_late_by_the_threshold_or_more() -> None:
    # each sleep of 10 ms takes 10, 35, 10 and 22 ms on the fake clock: late by 0, 25, 0 and 12 ms
    takes = iter([0.010, 0.035, 0.010, 0.022])
    now = [100.0]
    left = [4]

    def sleep(seconds: float) -> None:
        now[0] += next(takes)
        left[0] -= 1

    out = io.StringIO()
    watch(out, 0.01, 12.0, running=lambda: left[0] > 0, clock=lambda: now[0], wall=lambda: now[0] + 1e9, sleep=sleep)
    lines = out.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == ["25.0", "12.0"]
    assert float(lines[0].split()[0]) == round(1e9 + 100.045, 3)


def test_read_late_skips_a_line_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "late.log"
    path.write_text("1796500000.125 31.5\n1796500001.000 12.0\n17965000")
    assert read_late(path) == [(1796500000.125, 31.5), (1796500001.0, 12.0)]
    assert read_late(tmp_path / "none.log") == []


def test_command_pins_the_watcher_to_its_cpu(tmp_path: Path) -> None:
    cmd = command(1, tmp_path / "w.log", 0.005, 20.0)
    assert cmd[:3] == ["taskset", "-c", "1"]
    assert cmd[4:7] == ["-m", "benchmarks.hostwatch", "--out"]
    assert cmd[-4:] == ["--tick", "0.005", "--min-ms", "20"]


def test_watching_runs_one_pinned_watcher_per_cpu_and_stops_them(tmp_path: Path) -> None:
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
            while not read_late(files[cpu]) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert max(ms for _, ms in read_late(files[cpu])) >= 250
        assert procs.procs == [] or all(p.poll() is not None for p in procs.procs)
    finally:
        procs.stop_all()
    with watching(procs, [], tmp_path, root) as none:
        assert none == {}
