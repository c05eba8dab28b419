"""Readings from ``/proc`` (Linux): sockets bound on this host, a process's CPU seconds and memory, the
machine's CPU time. The one reader of each file, for the rig's readiness checks and the benchmarks' samples."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

Proto = Literal["udp", "tcp"]

#: The ``st`` column of /proc/net/{udp,tcp}: an unconnected UDP socket ("07", TCP_CLOSE) and a TCP listener.
_RECEIVING_STATE = {"udp": "07", "tcp": "0A"}


def net_sockets(proto: Proto) -> Iterator[tuple[int, str]]:
    """(local port, state) of every IPv4/IPv6 socket of ``proto`` in this network namespace."""
    for name in (proto, f"{proto}6"):
        try:
            lines = Path("/proc/net", name).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            yield int(fields[1].rsplit(":", 1)[1], 16), fields[3]


def is_listening(port: int, proto: Proto) -> bool:
    """Whether some socket is bound to ``port`` to receive: an unconnected UDP socket or a TCP listener."""
    state = _RECEIVING_STATE[proto]
    return any(p == port and s == state for p, s in net_sockets(proto))


def _stat_fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_state(pid: int) -> str:
    """The state letter of ``pid`` (/proc/<pid>/stat field 3): R running, S sleeping, T stopped, Z zombie."""
    return _stat_fields(pid)[0]


def cpu_seconds(pid: int) -> float:
    """utime+stime of every thread of ``pid`` so far (/proc/<pid>/stat fields 14 and 15)."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_kb(pid: int, keys: tuple[str, ...] = ("VmRSS", "RssAnon", "VmHWM")) -> dict[str, int]:
    """The ``keys`` of /proc/<pid>/status that it gives, in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in keys:
            out[key] = int(value.split()[0])
    return out


def rss_kb(pid: int) -> int:
    """VmRSS of ``pid`` in KiB (0 when /proc does not give it, e.g. a zombie)."""
    return status_kb(pid, ("VmRSS",)).get("VmRSS", 0)


def cpu_times() -> dict[str, tuple[int, int]]:
    """(busy, total) jiffies of each CPU since boot, from /proc/stat."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            ticks = [int(v) for v in values]
            idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
            out[name] = (sum(ticks[:8]) - idle, sum(ticks[:8]))
    return out


def open_fds(pid: int) -> int:
    """How many descriptors ``pid`` has open (the entries of /proc/<pid>/fd): the leak check of the system
    tests that open and drop many connections."""
    return len(os.listdir(f"/proc/{pid}/fd"))
