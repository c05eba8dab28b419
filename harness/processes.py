"""Starting and stopping the processes of a rig or a benchmark run: each in its own session (so a Ctrl-C
on the terminal reaches only the script, which then stops them in order, and a SIGKILL of the group takes
every worker a process forked), stopped with a signal (SIGTERM unless told) and SIGKILLed after a grace
time; their output kept in a file whose end goes into the error when one fails."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO


class RigError(RuntimeError):
    """A rig process could not be started, or a binary it needs is missing."""


def find_binary(name: str, package: str) -> str:
    """The path of ``name``; the error says which Debian package ``scripts/test`` installs for it."""
    path = shutil.which(name)
    if path is None:
        raise RigError(f"{name!r} is not on PATH: `bash scripts/test` installs the Debian package {package}")
    return path


def tail(path: Path, limit: int = 4000) -> str:
    """The end of a log file, for an error message."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"({path.name}: not written)"
    return text if len(text) <= limit else "[...]\n" + text[-limit:]


_PR_SET_PDEATHSIG = 1


def _session_with_parent_death() -> None:
    """In the child: its own session, and SIGTERM should the parent die without cleaning up."""
    os.setsid()
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(command: Sequence[str], *, cwd: Path, stdout: IO[bytes] | int = subprocess.DEVNULL,
          stderr: IO[bytes] | int = subprocess.DEVNULL, env: Mapping[str, str] | None = None,
          parent_death: bool = False) -> subprocess.Popen[bytes]:
    """``command`` in a session of its own, stdin closed; with ``parent_death`` it also gets SIGTERM when
    this process dies (a benchmark killed outright leaves nothing running)."""
    if parent_death:
        return subprocess.Popen(list(command), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=stdout,
                                stderr=stderr, preexec_fn=_session_with_parent_death)
    return subprocess.Popen(list(command), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=stdout,
                            stderr=stderr, start_new_session=True)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group ``proc`` leads (the process alone if that fails) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait(5)


def exited_within(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Whether ``proc`` exits within ``timeout`` seconds (it is left running otherwise)."""
    try:
        proc.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


def stop(proc: subprocess.Popen[bytes], first: signal.Signals = signal.SIGTERM, grace: float = 5.0, *,
         group: bool = False) -> int:
    """Signal ``proc`` with ``first``, then SIGKILL it (with ``group``, its whole group) if it is still
    alive after ``grace`` seconds; returns its exit status (negative: the signal that ended it)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(first)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            if group:
                kill_group(proc)
            else:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait()
    return proc.returncode


class Processes:
    """Every process a benchmark starts, so that each one is stopped at the end whatever happens."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, cmd: list[str], *, cwd: Path, stderr: IO[bytes] | int = subprocess.DEVNULL,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """``cmd`` in its own session, stdout discarded, SIGTERMed should this script die."""
        proc = spawn(cmd, cwd=cwd, stderr=stderr, env=env, parent_death=True)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], first: signal.Signals = signal.SIGTERM,
             grace: float = 5.0) -> int:
        """Signal ``proc`` (by its pid), then SIGKILL it if it is still alive after ``grace`` seconds."""
        status = stop(proc, first, grace)
        with contextlib.suppress(ValueError):
            self.procs.remove(proc)
        return status

    def stop_all(self) -> None:
        """Stop every process still listed, newest first."""
        for proc in reversed(list(self.procs)):
            self.stop(proc, grace=3.0)
