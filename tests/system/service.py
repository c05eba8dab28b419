"""Run the call-api service as a real process for system tests, and stop it cleanly."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class ServiceProcess:
    """``python -m b2bua`` with the given flags; ``start()`` waits for the ready line on stderr."""

    def __init__(self, args: Sequence[str], log_path: Path) -> None:
        self.args = [sys.executable, "-m", "b2bua", *args]
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_line = ""

    def start(self, timeout: float = 10.0) -> ServiceProcess:
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
                if b"call-api ready" in buffer:
                    self.ready_line = next(line for line in buffer.decode(errors="replace").splitlines()
                                           if "call-api ready" in line)
                    self._drain_in_background()
                    return self
        self.stop()
        raise RuntimeError(f"call-api did not start: {self.log_tail()}")

    def _drain_in_background(self) -> None:
        """Keep writing the service's stderr to the log so a full pipe never blocks it."""
        assert self.proc is not None and self.proc.stderr is not None
        os.set_blocking(self.proc.stderr.fileno(), True)
        log = self.log_path.open("ab")
        self._tee = subprocess.Popen(["cat"], stdin=self.proc.stderr, stdout=log)
        log.close()

    def log_tail(self, limit: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-limit:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then wait; SIGKILL if it does not exit in time. Returns the exit status."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        tee = getattr(self, "_tee", None)
        if tee is not None:
            tee.wait(5)
        return proc.returncode
