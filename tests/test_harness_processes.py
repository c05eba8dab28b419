"""harness/processes.py: a process stopped with a signal it ignores is killed after the grace time, with its
whole group when asked; every process a benchmark started is stopped at the end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.processes import Processes, RigError, exited_within, find_binary, spawn, stop, tail
from harness.procfs import process_state

#: A Python child that ignores SIGTERM and (with an argument) forks a grandchild that does too, printing its pid.
STUBBORN = ("import os, signal, sys, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "if len(sys.argv) > 1 and os.fork() == 0:\n    time.sleep(60)\n"
            "print(os.getpid(), flush=True)\ntime.sleep(60)\n")


def _gone(pid: int) -> bool:
    try:
        return process_state(pid) == "Z"
    except FileNotFoundError:
        return True


def test_sigterm_ends_a_process_that_heeds_it() -> None:
    proc = spawn([sys.executable, "-c", "import time; time.sleep(60)"], cwd=Path.cwd())
    assert stop(proc, grace=5.0) == -signal.SIGTERM


def test_a_process_ignoring_sigterm_is_killed_after_the_grace_time() -> None:
    proc = spawn([sys.executable, "-c", STUBBORN], cwd=Path.cwd(), stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline()
    assert not exited_within(proc, 0.05)
    assert stop(proc, grace=0.2) == -signal.SIGKILL


def test_group_stop_takes_the_grandchildren_too() -> None:
    proc = spawn([sys.executable, "-c", STUBBORN, "fork"], cwd=Path.cwd(), stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline()
    children = [int(pid) for pid in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
    assert len(children) == 1 and os.getpgid(children[0]) == proc.pid, "its own session, its children in it"
    assert stop(proc, grace=0.2, group=True) == -signal.SIGKILL
    assert exited_within(proc, 0)
    deadline = time.monotonic() + 5  # a bound on the wait, not a timing assertion
    while not _gone(children[0]) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _gone(children[0]), "the grandchild survived the group's SIGKILL"


def test_processes_stops_everything_still_running_newest_first() -> None:
    procs = Processes()
    first = procs.start([sys.executable, "-c", "import time; time.sleep(60)"], cwd=Path.cwd())
    second = procs.start([sys.executable, "-c", "import time; time.sleep(60)"], cwd=Path.cwd())
    assert procs.stop(first) == -signal.SIGTERM
    assert procs.procs == [second]
    procs.stop_all()
    assert procs.procs == [] and second.returncode == -signal.SIGTERM


def test_find_binary_says_which_package_to_install() -> None:
    assert Path(find_binary("sh", "dash")).name == "sh"
    with pytest.raises(RigError, match="installs the Debian package no-such-package"):
        find_binary("no-such-binary-here", "no-such-package")


def test_tail_keeps_the_end(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    assert tail(log) == "(x.log: not written)"
    log.write_text("a" * 10 + "b" * 10)
    assert tail(log, 10) == "[...]\n" + "b" * 10
    assert tail(log) == "a" * 10 + "b" * 10
