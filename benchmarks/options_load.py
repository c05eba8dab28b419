"""OPTIONS throughput of the running engine over UDP, on uvloop and on plain asyncio.

Run: ``.venv/bin/python -m benchmarks.options_load`` (``--help`` for the steps). Not a test.

The service runs as its own process pinned to CPU 0 (one core, as the bar asks); this load generator
runs pinned to CPU 1. SIPp tops out below the rates measured here on this machine, so the generator is
our own: pre-built OPTIONS with distinct branches and Call-IDs, sent in 1 ms bursts at the step's rate
from one UDP socket, answers counted by Call-ID. A step passes when every request got its 200 at
first try, within one second after the step (the generator never retransmits, so a loss shows as a
missing answer). Rates step up until a step fails; the headline is the last clean step.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from harness.processes import stop
from harness.procfs import cpu_seconds
from harness.service import call_api_argv
from harness.sip_probe import sip_options

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Step:
    rate: int
    sent: int
    answered: int
    seconds: float
    cpu: float

    @property
    def lost(self) -> int:
        return self.sent - self.answered

    @property
    def achieved(self) -> float:
        return self.answered / self.seconds


def _requests(port: int, target: tuple[str, int], count: int, prefix: str) -> list[bytes]:
    out = []
    for i in range(count):
        out.append(
            (f"OPTIONS sip:call-api@{target[0]}:{target[1]} SIP/2.0\r\n"
             f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{prefix}{i};rport\r\n"
             f"Max-Forwards: 70\r\nFrom: <sip:load@127.0.0.1>;tag={prefix}{i}\r\nTo: <sip:call-api@127.0.0.1>\r\n"
             f"Call-ID: {prefix}-{i}@load\r\nCSeq: 1 OPTIONS\r\nAccept: application/sdp\r\n"
             f"User-Agent: options-load\r\nContent-Length: 0\r\n\r\n").encode()
        )
    return out


_CALL_ID = re.compile(rb"\r\nCall-ID: ([^\r]+)\r\n")


def run_step(sock: socket.socket, target: tuple[str, int], rate: int, seconds: float, pid: int, tag: str) -> Step:
    count = int(rate * seconds)
    requests = _requests(sock.getsockname()[1], target, count, tag)
    answered: set[bytes] = set()
    cpu0 = cpu_seconds(pid)
    start = time.perf_counter()
    sent = 0
    sendto = sock.sendto
    while sent < count:
        due = min(count, int((time.perf_counter() - start) * rate) + 1)
        while sent < due:
            try:
                sendto(requests[sent], target)
            except BlockingIOError:
                break
            sent += 1
        _drain(sock, answered)
        if sent < due:
            continue
        time.sleep(0.0005)
    end = time.perf_counter()
    deadline = end + 1.0
    while time.perf_counter() < deadline and len(answered) < count:
        _drain(sock, answered)
        time.sleep(0.001)
    cpu = cpu_seconds(pid) - cpu0
    return Step(rate, count, len(answered), end - start, cpu)


def _drain(sock: socket.socket, answered: set[bytes]) -> None:
    while True:
        try:
            data = sock.recv(65535)
        except BlockingIOError:
            return
        if data.startswith(b"SIP/2.0 200"):
            m = _CALL_ID.search(data)
            if m:
                answered.add(m.group(1))


def start_service(loop: str, port: int) -> subprocess.Popen[bytes]:
    """call-api on CPU 0, once it answers an OPTIONS (or after 10 s of silence)."""
    env = dict(os.environ, CALL_API_LOOP=loop)
    cmd = call_api_argv(["--sip-listen", f"127.0.0.1:{port}", "--sip-transport", "udp", "--ws-port", "0",
                           "--log-level", "WARNING"], cpu=0)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sip_options(port, timeout=10.0, interval=0.2)
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=5099)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each step (default 5)")
    parser.add_argument("--rates", default="5000,10000,15000,20000,25000,30000,35000,40000",
                        help="comma-separated request rates per second")
    parser.add_argument("--loops", default="uvloop,asyncio")
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    target = ("127.0.0.1", args.port)
    print(f"# OPTIONS over UDP; service pinned to CPU 0, generator to CPU 1; {args.seconds:g} s per step")
    for loop in args.loops.split(","):
        proc = start_service(loop, args.port)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        print(f"\n## {loop}")
        print(f"{'rate/s':>8} {'sent':>8} {'answered':>9} {'lost':>6} {'achieved/s':>11} {'cpu s':>6} {'cpu %':>6}")
        best = 0
        try:
            for n, rate in enumerate(int(r) for r in args.rates.split(",")):
                step = run_step(sock, target, rate, args.seconds, proc.pid, f"{loop[0]}{n}x")
                print(f"{rate:8d} {step.sent:8d} {step.answered:9d} {step.lost:6d} {step.achieved:11,.0f} "
                      f"{step.cpu:6.2f} {100 * step.cpu / step.seconds:6.0f}")
                if step.lost:
                    break
                best = rate
                time.sleep(1.0)
        finally:
            stop(proc, grace=10.0)
            sock.close()
        print(f"headline ({loop}): {best:,} OPTIONS/s with no loss")


if __name__ == "__main__":
    main()
