"""The service under test: ``python -m b2bua`` as a process (its command line, started, ready, stopped),
or the same service built in this process for tests that drive its B2BUA through the awaitable API.

A process is ready once it logs ``call-api ready`` (the rig's fixtures), or once it answers OPTIONS
(the benchmarks, :func:`harness.sip_probe.wait_answering`, which also see Sippy answer); either way
its stderr is kept in a log whose end goes into the error when it does not come up.
"""

from __future__ import annotations

import asyncio
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Protocol

from b2bua.call.b2bua import B2bua
from b2bua.config import load_config
from b2bua.io.control import AsyncControl
from b2bua.service import build_service
from harness.kamailio import Kamailio
from harness.processes import RigError, stop
from harness.sipp import Sipp

ROOT = Path(__file__).resolve().parents[1]

READY_LINE = b"call-api ready"


def call_api_argv(flags: Sequence[str], *, cpu: int | None = None) -> list[str]:
    """``python -m b2bua FLAGS`` with this interpreter; pinned to ``cpu`` with taskset when given."""
    pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
    return [*pin, sys.executable, "-m", "b2bua", *flags]


class ServiceProcess:
    """``python -m b2bua`` with the given flags; ``start()`` waits for the ready line on stderr."""

    def __init__(self, args: Sequence[str], log_path: Path) -> None:
        self.args = call_api_argv(args)
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_line = ""
        self._tee: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> ServiceProcess:
        """Start it and wait (``timeout`` seconds at most) for its ready line; raise with its log if it never comes."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(self.args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        assert self.proc.stderr is not None
        os.set_blocking(self.proc.stderr.fileno(), False)
        selector = selectors.DefaultSelector()
        selector.register(self.proc.stderr, selectors.EVENT_READ)
        buffer = b""
        deadline = time.monotonic() + timeout
        with self.log_path.open("wb", buffering=0) as log:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                for _ in selector.select(0.05):
                    chunk = self.proc.stderr.read() or b""
                    log.write(chunk)
                    buffer += chunk
                if READY_LINE in buffer:
                    self.ready_line = next(line for line in buffer.decode(errors="replace").splitlines()
                                           if READY_LINE.decode() in line)
                    self._drain_in_background()
                    return self
        self.stop()
        raise RigError(f"call-api did not start: {self.log_tail()}")

    def _drain_in_background(self) -> None:
        """Keep writing the service's stderr to the log so a full pipe never blocks it."""
        assert self.proc is not None and self.proc.stderr is not None
        os.set_blocking(self.proc.stderr.fileno(), True)
        log = self.log_path.open("ab")
        self._tee = subprocess.Popen(["cat"], stdin=self.proc.stderr, stdout=log)
        log.close()

    def log_tail(self, limit: int = 4000) -> str:
        """The end of the service's stderr."""
        try:
            return self.log_path.read_bytes()[-limit:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then wait; SIGKILL if it does not exit in time. Returns the exit status."""
        if self.proc is None:
            return None
        status = stop(self.proc, grace=timeout)
        if self._tee is not None:
            self._tee.wait(5)
        return status


ServiceFactory = Callable[..., ServiceProcess]
"""The system tests' ``call_api(*flags)`` fixture: starts a ServiceProcess on the rig's service port."""
ApiFactory = Callable[..., tuple[ServiceProcess, str]]
"""The system tests' ``call_api_ws(*flags)`` fixture: a ServiceProcess with its API, and the API's URL."""

Body = Callable[[AsyncControl, B2bua], Awaitable[None]]
"""What a test does with a service built in this process: commands through the control API, reading its B2BUA."""


async def serve_in_process(flags: Sequence[str], body: Body, timeout: float) -> B2bua:
    """The service built from ``flags`` (as the command line takes them) in this event loop, started,
    ``body`` run against it (``timeout`` seconds at most), stopped; returns its B2BUA for a last look."""
    built = build_service(load_config(list(flags)))
    await built.runtime.start()
    try:
        await asyncio.wait_for(body(AsyncControl(built.runtime, built.control), built.b2bua), timeout)
    finally:
        await built.runtime.stop()
    return built.b2bua


class Serve(Protocol):
    """The system tests' ``serve(body, *flags, phones=..., proxy=...)`` fixture: ``body`` against the service
    built in this process, then every phone must have succeeded; returns the B2BUA."""

    def __call__(self, body: Body, *flags: str, phones: Sequence[Sipp] = (), proxy: Kamailio | None = None,
                 timeout: float = 15.0, phones_timeout: float = 12.0) -> B2bua: ...
