"""Bridged-call throughput over UDP: SIPp caller -> the service -> SIPp callee, on uvloop and on plain asyncio.

Run: ``.venv/bin/python -m benchmarks.calls`` (``--help`` for the steps). Not a test.

Every process runs on loopback, on ports 16000-16999 only. The service is started as its own process,
pinned to CPU 0, with the callee as its outbound proxy (so no proxy process competes for the two cores)::

    taskset -c 0 python -m b2bua --sip-listen 127.0.0.1:16080 --outbound-proxy 'sip:127.0.0.1:16062;lr' \\
        --ws-port 16059 --log-level WARNING --sip-transport udp

Both SIPp processes run pinned to CPU 1: ``sipp-scenarios/bench_uas.xml`` on 16062 answers at once
(180, then 200 with SDP, ACK, BYE, 200); ``sipp-scenarios/bench_uac.xml`` on 16061 sends its INVITE to
the service (the remote host 127.0.0.1:16080) with a Request-URI naming the callee
(``sip:bench@127.0.0.1:16062``), holds the call ``--hold`` seconds and hangs up.

Each step places ``rate * seconds`` calls at ``rate`` calls per second with a fresh pair of SIPp
processes (so each step's counters are its own) against one service per event loop. A step is clean
when every call succeeded on both sides and nobody retransmitted anything: SIPp's per-message counts
of requests and responses it resent and of retransmissions it received from the service, plus the
messages it got for calls already over (late retransmissions). Steps stop at the first unclean one;
the headline is the highest clean rate.

Per step: calls attempted and successful, failed (caller or callee side, plus calls never finished),
retransmissions, the achieved rate (successful calls over the time SIPp took to create them, at least
the step's length), the service's CPU seconds (utime+stime from /proc), and SIPp's response-time
repartition from the INVITE to its 200 (``rtd`` on the 200, millisecond resolution).
A Markdown table goes to stdout, the raw numbers to ``benchmarks/results/calls-<timestamp>.json``, and
the SIPp logs (screens, statistics, counts, unexpected messages) and the service's stderr to
``benchmarks/results/calls-<timestamp>/``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "sipp-scenarios"
RESULTS = ROOT / "benchmarks" / "results"
HOST = "127.0.0.1"

PORT_RANGE = range(16000, 17000)
SERVICE_CPU = 0
SIPP_CPU = 1
#: Seconds after the last call is due before the caller is told to stop: room for SIPp's INVITE timeout
#: (0.5 + 1 + 2 + 4 + 8 + 16 s of retransmissions) and a BYE's (about 28 s).
TAIL_GRACE = 70.0


# -- processes ---------------------------------------------------------------------------------------


_PR_SET_PDEATHSIG = 1


def _child_setup() -> None:
    """In the child: its own session (a Ctrl-C on the terminal reaches only this script, which then
    stops the children in order), and SIGTERM should this script die without cleaning up."""
    os.setsid()
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Processes:
    """Every process this script starts, so that each one is stopped at the end whatever happens."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, cmd: list[str], *, cwd: Path, stderr: IO[bytes] | int = subprocess.DEVNULL,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=stderr, preexec_fn=_child_setup)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], first: signal.Signals = signal.SIGTERM,
             grace: float = 5.0) -> int:
        """Signal ``proc`` (by its pid), then SIGKILL it if it is still alive after ``grace`` seconds."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(first)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait()
        with contextlib.suppress(ValueError):
            self.procs.remove(proc)
        return proc.returncode

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs)):
            self.stop(proc, grace=3.0)


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the service -------------------------------------------------------------------------------------


def _options(port: int, target: tuple[str, int], n: int) -> bytes:
    return (f"OPTIONS sip:{target[0]}:{target[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{port};branch=z9hG4bKbenchready{n};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:bench@{HOST}>;tag=ready{n}\r\nTo: <sip:{target[0]}:{target[1]}>\r\n"
            f"Call-ID: bench-ready-{n}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()


def check_free(ports: list[int]) -> None:
    """Refuse to start when another process already holds one of our UDP ports (its answers would be
    counted as ours)."""
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind((HOST, port))
            except OSError as exc:
                raise RuntimeError(f"UDP port {HOST}:{port} is in use: {exc}") from None


def start_service(procs: Processes, args: argparse.Namespace, loop: str, stderr: IO[bytes],
                  ) -> subprocess.Popen[bytes]:
    """The service on CPU 0, once it answers an OPTIONS; raises if it dies or stays silent."""
    env = dict(os.environ, CALL_API_LOOP=loop)
    cmd = ["taskset", "-c", str(SERVICE_CPU), sys.executable, "-m", "b2bua",
           "--sip-listen", f"{HOST}:{args.service_port}",
           "--outbound-proxy", f"sip:{HOST}:{args.uas_port};lr",
           "--ws-port", str(args.ws_port), "--log-level", "WARNING", "--sip-transport", "udp"]
    proc = procs.start(cmd, cwd=ROOT, env=env, stderr=stderr)
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.bind((HOST, args.probe_port))
        probe.settimeout(0.2)
        for n in range(75):
            if proc.poll() is not None:
                raise RuntimeError(f"the service exited with status {proc.returncode} (see {stderr.name})")
            probe.sendto(_options(args.probe_port, (HOST, args.service_port), n), (HOST, args.service_port))
            try:
                answered = probe.recv(65535).startswith(b"SIP/2.0 200")
            except OSError:
                continue
            if answered:
                time.sleep(0.3)
                if proc.poll() is None:
                    return proc
    finally:
        probe.close()
    raise RuntimeError(f"the service did not answer OPTIONS on {HOST}:{args.service_port}")


# -- SIPp --------------------------------------------------------------------------------------------


def _sipp_common(name: str, workdir: Path, port: int, control_port: int, media_port: int) -> list[str]:
    return ["taskset", "-c", str(SIPP_CPU), "sipp", "-sf", str(SCENARIOS / f"{name}.xml"),
            "-i", HOST, "-p", str(port), "-t", "u1", "-cp", str(control_port), "-mp", str(media_port),
            "-nostdin", "-buff_size", str(4 << 20),
            "-trace_stat", "-stf", str(workdir / f"{name}_stat.csv"), "-fd", "1",
            "-trace_counts", "-trace_screen", "-screen_file", str(workdir / f"{name}_screen.log"),
            "-trace_err", "-error_file", str(workdir / f"{name}_errors.log"), "-max_log_size", str(10 << 20)]


def _read_csv_last(path: Path) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The last row of a SIPp CSV file as a dict, and every row."""
    if not path.exists():
        return {}, []
    lines = [line.rstrip("\n").split(";") for line in path.read_text(errors="replace").splitlines() if line]
    if len(lines) < 2:
        return {}, []
    rows = [dict(zip(lines[0], row, strict=False)) for row in lines[1:]]
    return rows[-1], rows


def _epoch(value: str) -> float:
    return float(value.split("\t")[-1])


def _int(row: dict[str, str], key: str) -> int:
    value = row.get(key, "")
    return int(value) if value.strip().lstrip("-").isdigit() else 0


def _ms(value: str) -> float | None:
    """SIPp's ``HH:MM:SS:uuuuuu`` as milliseconds."""
    parts = value.split(":")
    if len(parts) != 4:
        return None
    h, m, s, us = (int(p) for p in parts)
    return ((h * 60 + m) * 60 + s) * 1000 + us / 1000


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


def read_side(role: str, name: str, workdir: Path, exit_status: int | None) -> tuple[SippSide, list[dict[str, str]]]:
    last, rows = _read_csv_last(workdir / f"{name}_stat.csv")
    side = SippSide(role, exit_status)
    side.calls = _int(last, "OutgoingCall(C)") + _int(last, "IncomingCall(C)")
    side.successful = _int(last, "SuccessfulCall(C)")
    side.failed = _int(last, "FailedCall(C)")
    side.failed_by_reason = {k[6:-3]: _int(last, k) for k in last
                             if k.startswith("Failed") and k.endswith("(C)") and k != "FailedCall(C)"
                             and _int(last, k)}
    counts = sorted(workdir.glob(f"{name}_*_counts.csv"))
    if counts:
        crow, _ = _read_csv_last(counts[-1])
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


# -- one step ----------------------------------------------------------------------------------------


@dataclass
class Step:
    loop: str
    rate: int
    seconds: float
    hold: float
    attempted: int
    successful: int
    failed: int
    unfinished: int
    retransmissions: int
    achieved: float
    creation_seconds: float
    wall_seconds: float
    service_cpu: float
    setup_ms_mean: float | None
    setup_repartition_ms: dict[str, int]
    service_log_lines: list[str]
    uac: SippSide
    uas: SippSide
    logs: str

    @property
    def clean(self) -> bool:
        return (self.failed == 0 and self.unfinished == 0 and self.retransmissions == 0
                and self.successful == self.attempted and self.attempted > 0)


def _creation_seconds(rows: list[dict[str, str]], total: int) -> float | None:
    """Seconds from SIPp's start until it had created ``total`` calls, interpolated between stat rows."""
    if not rows or total <= 0:
        return None
    start = _epoch(rows[0]["StartTime"])
    prev_t, prev_n = start, 0
    for row in rows:
        t, n = _epoch(row["CurrentTime"]), _int(row, "OutgoingCall(C)")
        if n >= total:
            if n == prev_n:
                return t - start
            return prev_t + (total - prev_n) / (n - prev_n) * (t - prev_t) - start
        prev_t, prev_n = t, n
    return None


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    try:
        proc.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


def run_step(procs: Processes, args: argparse.Namespace, loop: str, rate: int, service: subprocess.Popen[bytes],
             service_log: Path, logdir: Path) -> Step:
    workdir = logdir / f"{loop}-{rate}"
    workdir.mkdir(parents=True, exist_ok=True)
    calls = int(rate * args.seconds)
    uas_cmd = _sipp_common("bench_uas", workdir, args.uas_port, args.uas_port + 100, args.uas_port + 200)
    uac_cmd = [
        *_sipp_common("bench_uac", workdir, args.uac_port, args.uac_port + 100, args.uac_port + 200),
        "-s", "bench", "-key", "callee_host", HOST, "-key", "callee_port", str(args.uas_port),
        "-r", str(rate), "-rp", "1000", "-m", str(calls), "-d", str(int(args.hold * 1000)),
        f"{HOST}:{args.service_port}"]
    (workdir / "commands.txt").write_text(f"{shlex.join(uas_cmd)}\n{shlex.join(uac_cmd)}\n")
    log_mark = service_log.stat().st_size
    with open(workdir / "bench_uas.stderr", "wb") as uas_err, open(workdir / "bench_uac.stderr", "wb") as uac_err:
        uas = procs.start(uas_cmd, cwd=workdir, stderr=uas_err)
        time.sleep(0.5)
        if uas.poll() is not None:
            raise RuntimeError(f"SIPp callee exited with status {uas.returncode} (see {workdir})")
        cpu0, t0 = _cpu_seconds(service.pid), time.monotonic()
        uac = procs.start(uac_cmd, cwd=workdir, stderr=uac_err)
        if not _wait(uac, args.seconds + args.hold + TAIL_GRACE):
            procs.stop(uac, signal.SIGUSR1, grace=5.0)
        uac_status = procs.stop(uac)
        t1 = time.monotonic()
        cpu1 = _cpu_seconds(service.pid) if service.poll() is None else cpu0
        _wait(uas, 1.0)
        uas_status = procs.stop(uas, signal.SIGUSR1, grace=5.0)
    uac_side, uac_rows = read_side("caller", "bench_uac", workdir, uac_status)
    uas_side, _ = read_side("callee", "bench_uas", workdir, uas_status)
    last = uac_rows[-1] if uac_rows else {}
    repartition = {k.removeprefix("ResponseTimeRepartitionsetup_"): _int(last, k) for k in last
                   if k.startswith("ResponseTimeRepartitionsetup_")}
    with open(service_log, "rb") as f:
        f.seek(log_mark)
        service_lines = f.read().decode(errors="replace").splitlines()
    creation = _creation_seconds(uac_rows, uac_side.calls)
    window = max(args.seconds, creation or 0.0)
    unfinished = max(0, calls - uac_side.successful - uac_side.failed)
    return Step(
        loop=loop, rate=rate, seconds=args.seconds, hold=args.hold, attempted=calls,
        successful=uac_side.successful, failed=uac_side.failed + uas_side.failed, unfinished=unfinished,
        retransmissions=uac_side.retransmissions + uas_side.retransmissions,
        achieved=uac_side.successful / window, creation_seconds=creation or 0.0, wall_seconds=t1 - t0,
        service_cpu=cpu1 - cpu0, setup_ms_mean=_ms(last.get("ResponseTimesetup(C)", "")),
        setup_repartition_ms=repartition, service_log_lines=service_lines[:200],
        uac=uac_side, uas=uas_side, logs=str(workdir.relative_to(ROOT)),
    )


# -- report ------------------------------------------------------------------------------------------


def _repartition_text(rep: dict[str, int]) -> str:
    return " ".join(f"{k}:{v}" for k, v in rep.items() if v) or "-"


HEADER = ("| loop | rate/s | attempted | successful | failed | retrans | achieved/s | service CPU s | CPU % "
          "| INVITE→200: calls per ms bucket (SIPp repartition, `<N` = below N ms) |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")


def row(step: Step) -> str:
    failed = f"{step.failed}" + (f" (+{step.unfinished} unfinished)" if step.unfinished else "")
    return (f"| {step.loop} | {step.rate} | {step.attempted} | {step.successful} | {failed} | "
            f"{step.retransmissions} | {step.achieved:.1f} | {step.service_cpu:.2f} | "
            f"{100 * step.service_cpu / step.wall_seconds:.0f} | {_repartition_text(step.setup_repartition_ms)} |")


def _details(step: Step) -> Iterator[str]:
    for side in (step.uac, step.uas):
        bits = []
        if side.failed_by_reason:
            bits.append(f"failed {side.failed_by_reason}")
        if side.retrans_sent:
            bits.append(f"resent {side.retrans_sent}")
        if side.retrans_received:
            bits.append(f"received retransmissions {side.retrans_received}")
        if side.timeouts:
            bits.append(f"timeouts {side.timeouts}")
        if side.unexpected:
            bits.append(f"unexpected {side.unexpected}")
        if side.dead_call_msgs or side.out_of_call_msgs:
            bits.append(f"dead-call msgs {side.dead_call_msgs}, out-of-call msgs {side.out_of_call_msgs}")
        if any(side.udp_errors):
            bits.append(f"UDP errors send/recv/cong {side.udp_errors}")
        if bits:
            yield f"  - {side.role} (exit {side.exit_status}): " + "; ".join(bits)
    if step.service_log_lines:
        yield f"  - service stderr: {len(step.service_log_lines)} line(s), first: {step.service_log_lines[0][:200]}"


def _sipp_version() -> str:
    try:
        out = subprocess.run(["sipp", "-v"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    found = re.search(r"SIPp v[^\s]+", out)
    return found.group(0) if found else "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each step (default 20)")
    parser.add_argument("--rates", default="50,100,200,300,400,600,800,1000",
                        help="comma-separated call rates per second, stepped up in order")
    parser.add_argument("--loops", default="uvloop,asyncio", help="event loops to measure (CALL_API_LOOP values)")
    parser.add_argument("--hold", type=float, default=1.0, help="seconds each call stays up (default 1)")
    parser.add_argument("--pause", type=float, default=3.0, help="seconds between steps (default 3)")
    parser.add_argument("--service-port", type=int, default=16080)
    parser.add_argument("--uac-port", type=int, default=16061, help="caller port; +100 control, +200 and +202 media")
    parser.add_argument("--uas-port", type=int, default=16062, help="callee port; +100 control, +200 and +202 media")
    parser.add_argument("--ws-port", type=int, default=16059)
    parser.add_argument("--probe-port", type=int, default=16081, help="local port of the readiness OPTIONS")
    args = parser.parse_args()
    ports = [args.service_port, args.uac_port, args.uac_port + 100, args.uac_port + 200, args.uas_port,
             args.uas_port + 100, args.uas_port + 200, args.ws_port, args.probe_port]
    if any(p not in PORT_RANGE for p in ports) or len(set(ports)) != len(ports):
        parser.error(f"ports must be distinct and within {PORT_RANGE.start}-{PORT_RANGE.stop - 1}: {ports}")
    rates = [int(r) for r in args.rates.split(",") if r.strip()]
    loops = [loop.strip() for loop in args.loops.split(",") if loop.strip()]

    os.sched_setaffinity(0, {SIPP_CPU})
    stamp = time.strftime("%Y%m%d-%H%M%S")
    RESULTS.mkdir(parents=True, exist_ok=True)
    logdir = RESULTS / f"calls-{stamp}"
    logdir.mkdir()
    out_json = RESULTS / f"calls-{stamp}.json"
    command = shlex.join([Path(sys.executable).name, "-m", "benchmarks.calls", *sys.argv[1:]])
    report: dict[str, Any] = {
        "command": command, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": {"seconds": args.seconds, "hold": args.hold, "rates": rates, "loops": loops,
                     "service_cpu": SERVICE_CPU, "sipp_cpu": SIPP_CPU, "transport": "udp"},
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "sipp": _sipp_version(),
                    "cpus": os.cpu_count()},
        "logs": str(logdir.relative_to(ROOT)), "loops": {},
    }

    check_free([*ports, args.uac_port + 202, args.uas_port + 202])  # SIPp also binds media port + 2
    procs = Processes()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_exit)
    print(f"# Bridged calls over UDP: SIPp caller -> call-api -> SIPp callee (outbound proxy), {args.hold:g} s hold")
    print(f"# service on CPU {SERVICE_CPU}, both SIPp on CPU {SIPP_CPU}; {args.seconds:g} s per step")
    print(f"# command: {command}")
    print(f"# SIPp logs and service stderr: {logdir.relative_to(ROOT)}/\n")
    print(HEADER, flush=True)
    status = 0
    try:
        for loop in loops:
            steps: list[Step] = []
            report["loops"][loop] = {"steps": [], "headline": None}
            with open(logdir / f"service-{loop}.stderr", "wb") as service_err:
                service = start_service(procs, args, loop, service_err)
                service_log = Path(service_err.name)
                try:
                    for n, rate in enumerate(rates):
                        if n:
                            time.sleep(args.pause)
                        step = run_step(procs, args, loop, rate, service, service_log, logdir)
                        steps.append(step)
                        report["loops"][loop]["steps"].append(
                            {**asdict(step), "clean": step.clean,
                             "uac": {**asdict(step.uac), "retransmissions": step.uac.retransmissions},
                             "uas": {**asdict(step.uas), "retransmissions": step.uas.retransmissions}})
                        entry = report["loops"][loop]
                        entry["headline"] = max((s.rate for s in steps if s.clean), default=None)
                        entry["notes"] = [line for s in steps for line in _details(s)]
                        print(row(step), flush=True)
                        if service.poll() is not None:
                            print(f"service exited with status {service.returncode}", file=sys.stderr)
                            break
                        if not step.clean:
                            break
                finally:
                    service_status = procs.stop(service, signal.SIGTERM, grace=10.0)
                    report["loops"][loop]["service_exit_status"] = service_status
    except (KeyboardInterrupt, SystemExit) as exc:
        print(f"\ninterrupted ({type(exc).__name__}): stopping every process", file=sys.stderr)
        status = 130
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # let the children be stopped in order
        procs.stop_all()
        out_json.write_text(json.dumps(report, indent=2) + "\n")

    print()
    for loop, data in report["loops"].items():
        headline = data["headline"]
        text = f"{headline} calls/s" if headline is not None else "no clean step"
        print(f"headline ({loop}): {text} with no failed call and no retransmission")
        for note in data.get("notes", []):
            print(note)
    print(f"\nraw numbers: {out_json.relative_to(ROOT)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
