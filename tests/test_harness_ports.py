"""harness/ports.py: a port held by another socket is refused, a free one is found, and waiting for a listener
ends when the process exits or the time is up."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from harness.ports import check_free_tcp, check_free_udp, free_tcp_port, port_is_free, wait_listening
from harness.processes import RigError


def test_a_held_port_is_not_free_and_is_refused() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
        udp.bind(("127.0.0.1", 0))
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        udp_port, tcp_port = udp.getsockname()[1], tcp.getsockname()[1]
        assert not port_is_free(udp_port) and not port_is_free(tcp_port)
        with pytest.raises(RuntimeError, match=f"UDP port 127.0.0.1:{udp_port} is in use"):
            check_free_udp([udp_port])
        with pytest.raises(RuntimeError, match=f"TCP port 127.0.0.1:{tcp_port} is in use"):
            check_free_tcp([tcp_port])
    assert port_is_free(udp_port)
    check_free_udp([udp_port])
    check_free_tcp([tcp_port])


def test_free_tcp_port_can_be_bound() -> None:
    port = free_tcp_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_waiting_for_a_listener_fails_when_the_process_exits_or_time_is_up() -> None:
    port = free_tcp_port()
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    with pytest.raises(RigError, match="exited with status 0"):
        wait_listening(port, "tcp", done, "the quick one")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with pytest.raises(RigError, match=r"did not come up in 0\.1 s"):
            wait_listening(port, "tcp", sleeper, "the sleeper", timeout=0.1)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_waiting_for_a_listener_returns_once_it_listens() -> None:
    script = ("import socket, sys, time\ns = socket.socket()\ns.bind(('127.0.0.1', int(sys.argv[1])))\n"
              "time.sleep(0.2)\ns.listen()\ntime.sleep(30)\n")
    port = free_tcp_port()
    proc = subprocess.Popen([sys.executable, "-c", script, str(port)])
    try:
        wait_listening(port, "tcp", proc, "the listener")
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
