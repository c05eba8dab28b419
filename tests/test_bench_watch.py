"""benchmarks/watch.py: samples a process from /proc at each interval and stalls it with SIGSTOP/SIGCONT,
never leaving it stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from benchmarks.watch import Stall, Watch, sample
from harness.procfs import cpu_seconds, process_state, rss_kb


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_proc_readers_see_this_process() -> None:
    assert cpu_seconds(os.getpid()) > 0
    assert rss_kb(os.getpid()) > 1000
    s = sample(os.getpid())
    assert s is not None and s.rss_kb > 1000


def test_sample_of_a_process_gone_is_none(sleeper: subprocess.Popen[bytes]) -> None:
    sleeper.kill()
    sleeper.wait()
    assert sample(sleeper.pid) is None


def test_watch_samples_each_interval_and_stalls_then_resumes(sleeper: subprocess.Popen[bytes]) -> None:
    t0 = time.time()
    with Watch(sleeper.pid, t0, interval=0.1, stall=Stall(at=0.15, length=0.2)) as watch:
        time.sleep(0.25)
        assert process_state(sleeper.pid) == "T"
        time.sleep(0.3)
        assert process_state(sleeper.pid) != "T"
    assert watch.stopped_at is not None and watch.resumed_at is not None
    assert 0.15 <= watch.stopped_at - t0 < 0.3
    assert 0.19 <= watch.resumed_at - watch.stopped_at < 0.35
    assert len(watch.samples) >= 5  # at the start, each 0.1 s, at the end


def test_watch_left_during_a_stall_resumes_the_process(sleeper: subprocess.Popen[bytes]) -> None:
    with Watch(sleeper.pid, time.time(), interval=10.0, stall=Stall(at=0.0, length=60.0)) as watch:
        time.sleep(0.1)
        assert process_state(sleeper.pid) == "T"
    assert process_state(sleeper.pid) != "T"
    assert watch.resumed_at is not None
