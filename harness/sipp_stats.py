"""What a SIPp run leaves in its statistics files (``-trace_stat``, ``-trace_counts``, ``-trace_screen``,
``-trace_err``): the ``;``-separated CSV rows, and per side the calls, failures by reason, retransmissions
sent and received, timeouts, unexpected messages and UDP errors, read once here for every benchmark."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path


def int_field(row: dict[str, str], key: str) -> int:
    """A counter of a SIPp CSV row (0 when absent or not a number)."""
    value = row.get(key, "").strip()
    return int(value) if value.lstrip("-").isdigit() else 0


def read_sipp_csv(path: Path) -> list[dict[str, str]]:
    """Every row of a SIPp ``;``-separated file, as dicts keyed by its header (none when absent)."""
    if not path.exists():
        return []
    lines = [line.rstrip("\n").split(";") for line in path.read_text(errors="replace").splitlines() if line]
    return [dict(zip(lines[0], row, strict=False)) for row in lines[1:]] if len(lines) >= 2 else []


def read_csv_last(path: Path) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The last row of a SIPp CSV file as a dict, and every row."""
    rows = read_sipp_csv(path)
    return (rows[-1] if rows else {}), rows


_SCREEN_COUNTERS = {
    "dead_call_msgs": re.compile(r"(\d+) dead call msg"),
    "out_of_call_msgs": re.compile(r"(\d+) out-of-call msg"),
}
_UDP_ERRORS = re.compile(r"(\d+)/(\d+)/(\d+) UDP errors")


@dataclass
class SippSide:
    """What one SIPp process reported at its exit."""

    role: str
    exit_status: int | None
    calls: int = 0
    successful: int = 0
    failed: int = 0
    failed_by_reason: dict[str, int] = field(default_factory=dict)
    retrans_sent: dict[str, int] = field(default_factory=dict)
    retrans_received: dict[str, int] = field(default_factory=dict)
    timeouts: dict[str, int] = field(default_factory=dict)
    unexpected: dict[str, int] = field(default_factory=dict)
    dead_call_msgs: int = 0
    out_of_call_msgs: int = 0
    udp_errors: tuple[int, int, int] = (0, 0, 0)
    errors_log_bytes: int = 0

    @property
    def retransmissions(self) -> int:
        """Messages this SIPp resent, retransmissions it received, and messages that came in for a call
        already over (on a dialog that completed, always a late retransmission)."""
        return sum(self.retrans_sent.values()) + sum(self.retrans_received.values()) + self.dead_call_msgs

    def problems(self) -> list[str]:
        """What went wrong on this side, one phrase each (empty when nothing did)."""
        bits = []
        if self.failed_by_reason:
            bits.append(f"failed {self.failed_by_reason}")
        if self.retrans_sent:
            bits.append(f"resent {self.retrans_sent}")
        if self.retrans_received:
            bits.append(f"received retransmissions {self.retrans_received}")
        if self.timeouts:
            bits.append(f"timeouts {self.timeouts}")
        if self.unexpected:
            bits.append(f"unexpected {self.unexpected}")
        if self.dead_call_msgs or self.out_of_call_msgs:
            bits.append(f"dead-call msgs {self.dead_call_msgs}, out-of-call msgs {self.out_of_call_msgs}")
        if any(self.udp_errors):
            bits.append(f"UDP errors send/recv/cong {self.udp_errors}")
        return bits


def last_file(workdir: Path, pattern: str) -> Path:
    """The last of the files matching ``pattern`` (SIPp names some after its pid), or a missing path."""
    found = sorted(workdir.glob(pattern))
    return found[-1] if found else workdir / pattern.replace("*", "none")


def read_side(role: str, name: str, workdir: Path, exit_status: int | None) -> tuple[SippSide, list[dict[str, str]]]:
    last, rows = read_csv_last(workdir / f"{name}_stat.csv")
    side = SippSide(role, exit_status)
    side.calls = int_field(last, "OutgoingCall(C)") + int_field(last, "IncomingCall(C)")
    side.successful = int_field(last, "SuccessfulCall(C)")
    side.failed = int_field(last, "FailedCall(C)")
    side.failed_by_reason = {k[6:-3]: int_field(last, k) for k in last
                             if k.startswith("Failed") and k.endswith("(C)") and k != "FailedCall(C)"
                             and int_field(last, k)}
    counts = sorted(workdir.glob(f"{name}_*_counts.csv"))
    if counts:
        crow, _ = read_csv_last(counts[-1])
        sent = {k.rsplit("_", 1)[0] for k in crow if k.endswith("_Sent")}
        requests_seen: set[str] = set()
        for key, value in crow.items():
            msg, _, kind = key.rpartition("_")
            method = msg.partition("_")[2]
            if kind == "Recv" and method.isalpha():
                if method in requests_seen and value.isdigit() and int(value):
                    # a second <recv> of a request already received: the scenario's catch for a retransmission
                    side.retrans_received[msg] = int(value)
                requests_seen.add(method)
            if not value.isdigit() or not int(value):
                continue
            if kind == "Retrans":
                (side.retrans_sent if msg in sent else side.retrans_received)[msg] = int(value)
            elif kind == "Timeout":
                side.timeouts[msg] = int(value)
            elif kind == "Unexp":
                side.unexpected[msg] = int(value)
    screen = workdir / f"{name}_screen.log"
    if screen.exists():
        text = screen.read_text(errors="replace")
        for attr, pattern in _SCREEN_COUNTERS.items():
            found = pattern.findall(text)
            if found:
                setattr(side, attr, int(found[-1]))
        udp = _UDP_ERRORS.findall(text)
        if udp:
            side.udp_errors = tuple(max(int(t[i]) for t in udp) for i in range(3))  # type: ignore[assignment]
    errors = workdir / f"{name}_errors.log"
    side.errors_log_bytes = errors.stat().st_size if errors.exists() else 0
    return side, rows

def sipp_version() -> str:
    try:
        out = subprocess.run(["sipp", "-v"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    found = re.search(r"SIPp v[^\s]+", out)
    return found.group(0) if found else "unknown"
