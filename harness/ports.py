"""Whether a port is free or taken, and waiting until a process listens on one.

Taken means "some socket receives on it", read from /proc/net (:func:`harness.procfs.is_listening`);
free means "a server could bind it now", tried with a bind. The rig and the benchmarks refuse to start
on a taken port: another process's answers would be counted as theirs.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterable

from harness.processes import RigError
from harness.procfs import Proto, is_listening

LOOPBACK = "127.0.0.1"


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """Whether both a UDP and a TCP server could bind ``host:port`` now (what a restart needs)."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
                if kind == socket.SOCK_STREAM:
                    sock.listen()
            except OSError:
                return False
    return True


def check_free_udp(ports: Iterable[int], host: str = LOOPBACK) -> None:
    """Raise RuntimeError when another process already holds one of these UDP ports (a bind fails)."""
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind((host, port))
            except OSError as exc:
                raise RuntimeError(f"UDP port {host}:{port} is in use: {exc}") from None


def check_free_tcp(ports: Iterable[int], host: str = LOOPBACK) -> None:
    """Raise RuntimeError when some process listens on one of these TCP ports."""
    for port in ports:
        if is_listening(port, "tcp"):
            raise RuntimeError(f"TCP port {host}:{port} is in use")


def free_tcp_port(host: str = LOOPBACK) -> int:
    """A TCP port the kernel has just found free (for a SIPp -3pcc link or an API port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, proto: Proto, proc: subprocess.Popen[bytes], what: str, timeout: float = 5.0,
                   interval: float = 0.01) -> None:
    """Return once something listens on ``port``; raise :class:`RigError` if ``proc`` exits first or
    ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while not is_listening(port, proto):
        if proc.poll() is not None:
            raise RigError(f"{what} exited with status {proc.returncode}")
        if time.monotonic() > deadline:
            raise RigError(f"{what} did not come up in {timeout:g} s")
        time.sleep(interval)
