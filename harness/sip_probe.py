"""Readiness by OPTIONS (RFC 3261 section 11): a SIP element is up once it answers one.

:func:`sip_options` (the rig: Kamailio, the service, over UDP or TCP, from an ephemeral port) and
:func:`wait_answering` (the benchmarks: from the fixed probe port each benchmark checked free, for a
process it started) both build their request with :func:`options_request`.
"""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from collections.abc import Callable

from harness.ports import LOOPBACK
from harness.processes import RigError
from harness.procfs import Proto


def options_request(host: str, port: int, transport: Proto, local_port: int, call_id: str, cseq: int,
                    branch: str | None = None) -> bytes:
    """OPTIONS with no user part (addressed to the element itself), from ``LOOPBACK:local_port``."""
    uri_params = ";transport=tcp" if transport == "tcp" else ""
    return (
        f"OPTIONS sip:{host}:{port}{uri_params} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport.upper()} {LOOPBACK}:{local_port};branch={branch or 'z9hG4bK' + uuid.uuid4().hex}"
        "\r\n"
        f"From: <sip:rig@{LOOPBACK}:{local_port}>;tag={cseq}rig\r\n"
        f"To: <sip:{host}:{port}>\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} OPTIONS\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def _status_of(data: bytes, call_id: str) -> int | None:
    status = data.split(b"\r\n", 1)[0].split(b" ", 2)
    if call_id.encode() in data and len(status) >= 2 and status[0] == b"SIP/2.0" and status[1].isdigit():
        return int(status[1])
    return None


def sip_options(
    port: int, *, host: str = LOOPBACK, transport: Proto = "udp", timeout: float = 0.5, interval: float = 0.01
) -> int | None:
    """Send OPTIONS until a reply comes; the status code of the first reply, None when nothing answered
    within ``timeout``.

    Each attempt is a new transaction (over TCP a new connection), retried every ``interval`` seconds,
    since the first ones may reach a socket not bound yet.
    """
    deadline = time.monotonic() + timeout
    call_id = f"{uuid.uuid4().hex}@rig"
    if transport == "tcp":
        return _tcp_options(host, port, call_id, deadline, interval)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        local_port = sock.getsockname()[1]
        cseq = 0
        while True:
            cseq += 1
            sock.sendto(options_request(host, port, "udp", local_port, call_id, cseq), (host, port))
            wait_until = min(deadline, time.monotonic() + interval)
            while (left := wait_until - time.monotonic()) > 0:
                sock.settimeout(left)
                try:
                    data = sock.recv(65535)
                except (TimeoutError, ConnectionRefusedError):
                    break
                if (status := _status_of(data, call_id)) is not None:
                    return status
            if time.monotonic() >= deadline:
                return None


def _tcp_options(host: str, port: int, call_id: str, deadline: float, interval: float) -> int | None:
    cseq = 0
    while (left := deadline - time.monotonic()) > 0:
        cseq += 1
        try:
            with socket.create_connection((host, port), timeout=left) as sock:
                sock.sendall(options_request(host, port, "tcp", sock.getsockname()[1], call_id, cseq))
                data = b""
                while b"\r\n\r\n" not in data and (left := deadline - time.monotonic()) > 0:
                    sock.settimeout(left)
                    chunk = sock.recv(65535)
                    if not chunk:
                        break
                    data += chunk
                if (status := _status_of(data, call_id)) is not None:
                    return status
        except (TimeoutError, ConnectionError):
            pass
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
    return None


def wait_answering(proc: subprocess.Popen[bytes], probe_port: int, port: int, label: str, log: str,
                   ready: bytes = b"SIP/2.0 200", also: Callable[[], bool] | None = None) -> None:
    """Return once ``proc`` answers an OPTIONS sent from ``probe_port`` to ``port`` with a message starting
    with ``ready`` and ``also()`` (if given) holds; raise if it exits first or stays silent (150 tries)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((LOOPBACK, probe_port))
        probe.settimeout(0.2)
        for n in range(150):
            if proc.poll() is not None:
                raise RigError(f"{label} exited with status {proc.returncode} (see {log})")
            request = options_request(LOOPBACK, port, "udp", probe_port, f"bench-ready-{n}", 1,
                                      branch=f"z9hG4bKbenchready{n}")
            probe.sendto(request, (LOOPBACK, port))
            try:
                answered = probe.recv(65535).startswith(ready)
            except OSError:
                continue
            if answered and (also is None or also()):
                return
            if answered:
                time.sleep(0.1)
    raise RigError(f"{label} did not answer OPTIONS on {LOOPBACK}:{port} (see {log})")
