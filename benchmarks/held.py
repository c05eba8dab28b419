"""Held calls and memory: ramp call-api to 10,000 concurrent answered calls over UDP, hold them, hang
them all up, and report the service's RSS per held call, the INVITE->200 setup latency at 1k, 5k and 10k
held, and whether RSS returns near its start once every call and transaction is gone (nothing leaks).

Run: ``.venv/bin/python -m benchmarks.held`` (``--smoke`` for a 200-call run of about 20 s, ``--help``
for the options). Not a test; the bar (at most 10 KB of RSS per held call, 10,000 calls held at once
with none failed) is marked met or not met in the report, and the exit status is 0 whenever the run
completed and reported, whatever the numbers.

Every process runs on loopback, on UDP ports 16100-16199 only. call-api runs pinned to CPU 0, with the
callee as its outbound proxy and room for the calls (``--loop`` sets ``CALL_API_LOOP``; ``--t1`` and
``--t4`` are passed on when given)::

    CALL_API_LOOP=uvloop taskset -c 0 python -m b2bua --sip-listen 127.0.0.1:16180 \\
        --outbound-proxy 'sip:127.0.0.1:16162;lr' --ws-port 16159 --log-level WARNING \\
        --sip-transport udp --max-calls 20000

and is ready when it answers an OPTIONS from 127.0.0.1:16181. Both SIPp processes run pinned to CPU 1;
the callee answers at once::

    taskset -c 1 sipp -sf sipp-scenarios/bench_uas.xml -i 127.0.0.1 -p 16162 -t u1 -cp 16164 -mp 16174 \\
        -l <calls+100> -nostdin -buff_size 4194304 -trace_stat -stf ... -fd 1 -trace_counts -trace_screen ...

and the caller places ``--calls`` calls at ``--rate`` calls/s, all allowed up at once (``-l``), each
held ``--hold`` seconds after its ACK, then hung up with a BYE::

    taskset -c 1 sipp -sf sipp-scenarios/bench_uac_target.xml -s bench -key callee_host 127.0.0.1 \\
        -key callee_port 16162 -i 127.0.0.1 -p 16161 -t u1 -cp 16163 -mp 16170 -r 500 -rp 1000 \\
        -m 10000 -l 10000 -d <hold ms> -trace_shortmsg -trace_rtt -rtt_freq 1 ... 127.0.0.1:16180

The default hold is the ramp (calls/rate) plus 64*T1 plus ``--margin`` (10 s): every call is up at
once, and the last call's INVITE transactions (kept 64*T1 after its 200 in the RFC 6026 Accepted
state, on both legs) are gone before the first call hangs up, which leaves a plateau with every call
held and no INVITE transaction alive.

Steps, sampling the service's RSS (VmRSS and RssAnon from /proc/<pid>/status) and CPU seconds every
``--interval`` (0.5 s) throughout, with SIPp's CurrentCall from its statistics file (one row a second):

1. idle: one second after the service is ready;
2. warm-up: ``--warmup`` calls (200) held 1 s by a SIPp pair of their own, then max(64*T1, T4) plus a
   settle time (``--margin``/5) for their transactions to expire; RSS then is the *start* every other
   figure is compared with (lazy imports and caches filled by the first calls are not counted per call);
3. held: the caller and callee pair above. The held count at any moment is exact, from the caller's
   ``-trace_shortmsg`` log (microsecond timestamps of each message): 200s to INVITEs received minus
   BYEs sent. RSS at 1k/5k/10k held is the first sample at or after the held count reached that mark
   (INVITE transactions still live then); *end of ramp* is the first sample with every answered call
   up; the *plateau* is the median of the samples from 64*T1 plus the settle time after the last 200
   until the first BYE; RSS per held call = (plateau - start) / held calls;
4. after: once the caller has exited (every call hung up), max(64*T1, T4) plus the settle time for the
   BYE transactions; *after* is the median of the last three samples; its difference from the start,
   divided by the calls placed, is the residue per call (a leak shows as a residue that grows with
   the number of calls; CPython's allocator need not give every freed page back to the system, and
   the service keeps full garbage collections rare, so a residue alone is no proof of one);
5. with ``--rounds N`` (default 1), steps 3 and 4 again, N times in all, against the same service: RSS
   after hang-up that keeps growing round after round is a leak; RSS that stays where round 1 left it
   is memory the allocator kept and the next round reused. The report adds each later round's plateau
   and after-hang-up RSS, and the growth of the latter from round 1 to the last round per later call.

Setup latency at each mark is the INVITE-sent to 200-received time of the 500 calls answered just
before the held count reached the mark (the calls ranked mark-500 to mark by answer time), p50 and p99,
from the same short-message log. SIPp's ``-trace_rtt`` file holds the same response times, but rounded
to SIPp's clock tick (4 ms here: every value is 0 or 4), so its percentiles go only to the JSON.

Failed calls and retransmissions come from both SIPp processes' statistics, counts and screens, read as
benchmarks/calls.py reads them. A Markdown table goes to stdout, every sample and figure to
``benchmarks/results/held-<timestamp>.json``, and the SIPp logs and the service's stderr to
``benchmarks/results/held-<timestamp>/`` (``--results`` names another folder). Every process started is
stopped at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from benchmarks.calls import (
    HOST,
    RESULTS,
    ROOT,
    SCENARIOS,
    SERVICE_CPU,
    SIPP_CPU,
    _raise_exit,
    percentile,
)
from harness.ports import check_free_udp
from harness.processes import Processes, exited_within
from harness.procfs import cpu_seconds, status_kb
from harness.service import call_api_argv
from harness.sip_probe import wait_answering
from harness.sipp_stats import SippSide, read_side, sipp_version

PORT_RANGE = range(16100, 16200)
UAC = "bench_uac_target"
UAS = "bench_uas"
RTD = "setup"
#: The held counts at which RSS and setup latency are reported (those above --calls are skipped, and
#: --calls itself is added when it is none of them).
MARKS = (1000, 5000, 10000)
#: Calls answered just before each mark whose setup times give its percentiles.
MARK_WINDOW = 500
BAR_BYTES_PER_CALL = 10 * 1024
#: Seconds past the caller's nominal end (ramp + hold) before it is stopped: room for SIPp's INVITE
#: timeout (about 32 s of retransmissions) and a BYE's.
TAIL_GRACE = 70.0
WARMUP_HOLD = 1.0


# -- ports and processes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ports:
    service: int
    ws: int
    probe: int
    uac: int
    uas: int
    uac_control: int
    uas_control: int
    uac_media: int
    uas_media: int

    def udp(self) -> list[int]:
        """Every UDP port bound, SIPp's media port + 2 included (the WebSocket port is TCP)."""
        return [self.service, self.probe, self.uac, self.uas, self.uac_control, self.uas_control,
                self.uac_media, self.uac_media + 2, self.uas_media, self.uas_media + 2]


def service_command(args: argparse.Namespace, ports: Ports) -> list[str]:
    cmd = call_api_argv(["--sip-listen", f"{HOST}:{ports.service}", "--outbound-proxy", f"sip:{HOST}:{ports.uas};lr",
                           "--ws-port", str(ports.ws), "--log-level", "WARNING", "--sip-transport", "udp",
                           "--max-calls", str(args.max_calls)], cpu=SERVICE_CPU)
    if args.t1 is not None:
        cmd += ["--t1", f"{args.t1:g}"]
    if args.t4 is not None:
        cmd += ["--t4", f"{args.t4:g}"]
    return cmd


def start_service(procs: Processes, args: argparse.Namespace, ports: Ports,
                  stderr: IO[bytes]) -> subprocess.Popen[bytes]:
    """call-api on CPU 0 once it answers an OPTIONS with a 200; raises if it dies or stays silent."""
    env = dict(os.environ, CALL_API_LOOP=args.loop)
    proc = procs.start(service_command(args, ports), cwd=ROOT, env=env, stderr=stderr)
    wait_answering(proc, ports.probe, ports.service, "call-api", stderr.name)
    return proc


def sipp_command(name: str, workdir: Path, port: int, control: int, media: int, limit: int,
                 shortmsg: bool = False) -> list[str]:
    """SIPp on CPU 1 with statistics every second, message counts, screens, unexpected messages (and with
    ``shortmsg`` the short-message log, microsecond timestamps) in ``workdir``; ``-l`` lets ``limit`` calls
    be up at once."""
    trace = ["-trace_shortmsg", "-shortmessage_file", str(workdir / f"{name}_shortmessages.log")] if shortmsg else []
    return ["taskset", "-c", str(SIPP_CPU), "sipp", "-sf", str(SCENARIOS / f"{name}.xml"),
            "-i", HOST, "-p", str(port), "-t", "u1", "-cp", str(control), "-mp", str(media),
            "-l", str(limit), "-nostdin", "-buff_size", str(4 << 20),
            "-trace_stat", "-stf", str(workdir / f"{name}_stat.csv"), "-fd", "1",
            "-trace_counts", "-trace_screen", "-screen_file", str(workdir / f"{name}_screen.log"),
            "-trace_err", "-error_file", str(workdir / f"{name}_errors.log"),
            *trace, "-max_log_size", str(1 << 30)]


def _rel(path: Path) -> str:
    """``path`` relative to the project when inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


# -- sampling ----------------------------------------------------------------------------------------


class StatTail:
    """The newest row of a SIPp statistics file that SIPp is still writing (read from where it stopped)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.header: list[str] | None = None
        self.last: dict[str, str] = {}
        self.partial = ""

    def poll(self) -> dict[str, str]:
        try:
            with open(self.path, errors="replace") as f:
                f.seek(self.offset)
                chunk = f.read()
                self.offset = f.tell()
        except OSError:
            return self.last
        *lines, self.partial = (self.partial + chunk).split("\n")
        for line in lines:
            if not line:
                continue
            cells = line.split(";")
            if self.header is None:
                self.header = cells
            else:
                self.last = dict(zip(self.header, cells, strict=False))
        return self.last


def _current(tail: StatTail | None) -> int | None:
    if tail is None:
        return None
    value = tail.poll().get("CurrentCall", "")
    return int(value) if value.isdigit() else None


@dataclass
class Sample:
    """The service's memory and CPU at one moment, with SIPp's last reported CurrentCall per side and
    (filled in afterwards, from the caller's short-message log) the exact number of held calls."""

    t: float  # epoch seconds
    phase: str
    rss_kb: int | None
    rss_anon_kb: int | None
    cpu_s: float | None
    uac_current: int | None = None
    uas_current: int | None = None
    held: int | None = None


class Sampler:
    """Samples the service every ``interval`` seconds while the script waits for something."""

    def __init__(self, pid: int, interval: float) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[Sample] = []
        self.uac: StatTail | None = None
        self.uas: StatTail | None = None
        self.hwm_kb: int | None = None
        self._next_progress = 0.0

    def sample(self, phase: str) -> Sample:
        try:
            mem: dict[str, int] = status_kb(self.pid)
            cpu: float | None = cpu_seconds(self.pid)
        except (OSError, IndexError, ValueError):
            mem, cpu = {}, None
        self.hwm_kb = mem.get("VmHWM", self.hwm_kb)
        s = Sample(time.time(), phase, mem.get("VmRSS"), mem.get("RssAnon"), cpu,
                   _current(self.uac), _current(self.uas))
        self.samples.append(s)
        if s.t >= self._next_progress:
            self._next_progress = s.t + 5.0
            rss = f"{s.rss_kb / 1024:.1f} MiB" if s.rss_kb is not None else "gone"
            print(f"  [{time.strftime('%H:%M:%S')}] {phase}: RSS {rss}, SIPp current calls "
                  f"caller {s.uac_current if s.uac_current is not None else '-'} "
                  f"callee {s.uas_current if s.uas_current is not None else '-'}", file=sys.stderr, flush=True)
        return s

    def until(self, phase: str, done: Callable[[], bool], deadline: float) -> bool:
        """Sample until ``done()`` or the monotonic ``deadline``; whether ``done()`` came true."""
        while True:
            self.sample(phase)
            if done():
                return True
            now = time.monotonic()
            if now >= deadline:
                return False
            time.sleep(min(self.interval, deadline - now))

    def wait(self, phase: str, seconds: float) -> None:
        end = time.monotonic() + seconds
        self.until(phase, lambda: time.monotonic() >= end, end)


# -- one SIPp pair -----------------------------------------------------------------------------------


@dataclass
class Phase:
    """One SIPp pair's run: what each side reported, and the caller's start and end (epoch seconds)."""

    name: str
    calls: int
    rate: int
    hold: float
    started: float
    ended: float
    completed: bool
    uac: SippSide
    uas: SippSide
    logs: str


def run_pair(procs: Processes, sampler: Sampler, ports: Ports, name: str, calls: int, rate: int, hold: float,
             logdir: Path) -> Phase:
    """A fresh callee and caller in ``logdir/name``, sampling the service until the caller has exited
    (stopped after ramp + hold + TAIL_GRACE), then the callee stopped."""
    workdir = logdir / name
    workdir.mkdir(parents=True)
    uas_cmd = sipp_command(UAS, workdir, ports.uas, ports.uas_control, ports.uas_media, calls + 100)
    uac_cmd = [*sipp_command(UAC, workdir, ports.uac, ports.uac_control, ports.uac_media, calls, shortmsg=True),
               "-s", "bench", "-key", "callee_host", HOST, "-key", "callee_port", str(ports.uas),
               "-r", str(rate), "-rp", "1000", "-m", str(calls), "-d", str(round(hold * 1000)),
               "-trace_rtt", "-rtt_freq", "1", f"{HOST}:{ports.service}"]
    (workdir / "commands.txt").write_text(f"{shlex.join(uas_cmd)}\n{shlex.join(uac_cmd)}\n")
    with open(workdir / f"{UAS}.stderr", "wb") as uas_err, open(workdir / f"{UAC}.stderr", "wb") as uac_err:
        uas = procs.start(uas_cmd, cwd=workdir, stderr=uas_err)
        time.sleep(0.5)
        if uas.poll() is not None:
            raise RuntimeError(f"SIPp callee exited with status {uas.returncode} (see {workdir})")
        sampler.uas = StatTail(workdir / f"{UAS}_stat.csv")
        sampler.uac = StatTail(workdir / f"{UAC}_stat.csv")
        started = time.time()
        uac = procs.start(uac_cmd, cwd=workdir, stderr=uac_err)
        timeout = calls / rate + hold + TAIL_GRACE
        completed = sampler.until(name, lambda: uac.poll() is not None, time.monotonic() + timeout)
        if not completed:
            print(f"  {name}: the caller is still running after {timeout:.0f} s: stopping it", file=sys.stderr)
            procs.stop(uac, signal.SIGUSR1, grace=5.0)
        uac_status = procs.stop(uac)
        ended = time.time()
        sampler.sample(name)
        exited_within(uas, 1.0)
        uas_status = procs.stop(uas, signal.SIGUSR1, grace=5.0)
        sampler.uac = sampler.uas = None
    uac_side, _ = read_side("caller", UAC, workdir, uac_status)
    uas_side, _ = read_side("callee", UAS, workdir, uas_status)
    return Phase(name, calls, rate, hold, started, ended, completed, uac_side, uas_side,
                 _rel(workdir))


# -- analysis ----------------------------------------------------------------------------------------


@dataclass
class CallTimes:
    """One caller-side call from the short-message log (epoch seconds)."""

    invite: float | None = None
    answered: float | None = None
    bye: float | None = None


def read_shortmsg(path: Path) -> dict[str, CallTimes]:
    """Per Call-ID: its first INVITE sent, first 200 to that INVITE received and first BYE sent.
    Lines are ``date<TAB>time<TAB>epoch<TAB>S|R<TAB>Call-ID<TAB>CSeq:N METHOD<TAB>first line``."""
    calls: dict[str, CallTimes] = {}
    if not path.exists():
        return calls
    with open(path, errors="replace") as f:
        for line in f:
            cells = line.rstrip("\n").split("\t")
            if len(cells) < 7:
                continue
            try:
                t = float(cells[2])
            except ValueError:
                continue
            direction, call_id, cseq, first = cells[3], cells[4], cells[5], cells[6]
            c = calls.setdefault(call_id, CallTimes())
            if direction == "S" and first.startswith("INVITE ") and c.invite is None:
                c.invite = t
            elif direction == "R" and first.startswith("SIP/2.0 200") and cseq.endswith(" INVITE") \
                    and c.answered is None:
                c.answered = t
            elif direction == "S" and first.startswith("BYE ") and c.bye is None:
                c.bye = t
    return calls


class Held:
    """The caller's held-call count over time: +1 at each 200 received, -1 at each BYE sent."""

    def __init__(self, calls: dict[str, CallTimes]) -> None:
        steps = sorted([(c.answered, 1) for c in calls.values() if c.answered is not None]
                       + [(c.bye, -1) for c in calls.values() if c.bye is not None and c.answered is not None])
        self.times = [t for t, _ in steps]
        self.counts: list[int] = []
        n = 0
        for _, d in steps:
            n += d
            self.counts.append(n)

    def at(self, t: float) -> int:
        i = bisect.bisect_right(self.times, t)
        return self.counts[i - 1] if i else 0

    def reached(self, k: int) -> float | None:
        """When the count first reached ``k``."""
        return next((t for t, n in zip(self.times, self.counts, strict=True) if n >= k), None)

    @property
    def peak(self) -> int:
        return max(self.counts, default=0)


def _rtt_setups(workdir: Path) -> list[float]:
    """SIPp's own ``setup`` response times (ms, its clock tick's resolution), in answer order."""
    files = sorted(workdir.glob(f"{UAC}_*_rtt.csv"))
    if not files:
        return []
    out = []
    for line in files[-1].read_text(errors="replace").splitlines()[1:]:
        cells = line.split(";")
        if len(cells) >= 3 and cells[2] == RTD:
            with contextlib.suppress(ValueError):
                out.append(float(cells[1]))
    return out


def _kb(samples: list[Sample]) -> float | None:
    values = [s.rss_kb for s in samples if s.rss_kb is not None]
    return statistics.median(values) if values else None


def _point(name: str, samples: list[Sample], **extra: Any) -> dict[str, Any]:
    rss = _kb(samples)
    held = [s.held for s in samples if s.held is not None]
    return {"name": name, "rss_kb": rss, "held": round(statistics.median(held)) if held else None,
            "samples": len(samples), "t": samples[0].t if samples else None, **extra}


def start_points(args: argparse.Namespace, samples: list[Sample]) -> tuple[dict[str, Any], dict[str, Any]]:
    """RSS idle after start-up, and the start every figure is compared with (after the warm-up if any)."""
    idle = [s for s in samples if s.phase == "idle"]
    if not args.warmup:
        return _point("idle after start-up", idle), _point("start: idle after start-up (no warm-up)", idle)
    start = [s for s in samples if s.phase == "warmup-expire"][-3:]
    return (_point("idle after start-up", idle),
            _point(f"start: after a {args.warmup}-call warm-up, its transactions expired", start))


def analyse_round(args: argparse.Namespace, samples: list[Sample], phase: Phase, after_phase: str,
                  start_kb: float | None, logdir: Path) -> dict[str, Any]:
    """One ramp-hold-hang-up round's figures, from the samples and the round's SIPp logs."""
    notes = []
    workdir = logdir / phase.name
    calls = read_shortmsg(workdir / f"{UAC}_shortmessages.log")
    held = Held(calls)
    for s in samples:
        if s.phase in (phase.name, after_phase):
            s.held = held.at(s.t)
    t1, settle = args.effective_t1, args.settle
    label = "" if phase.name == "held" else f"round {phase.name.rpartition('-')[2]}: "
    points: dict[str, Any] = {"marks": []}
    answered = sorted((c.answered, c.answered - c.invite) for c in calls.values()
                      if c.answered is not None and c.invite is not None)
    rtt = _rtt_setups(workdir)
    in_phase = [s for s in samples if s.phase == phase.name and s.held is not None]
    marks = [k for k in MARKS if k <= phase.calls]
    if phase.calls not in marks:
        marks.append(phase.calls)
    for k in marks:
        reached = held.reached(k)
        first = next((s for s in in_phase if reached is not None and s.t >= reached), None)
        setups = [d * 1000 for _, d in answered[max(0, k - MARK_WINDOW):k]] if len(answered) >= k else []
        rtt_window = rtt[max(0, k - MARK_WINDOW):k] if len(rtt) >= k else []
        points["marks"].append(_point(
            f"{label}{k:,} held (INVITE transactions live)", [first] if first else [], mark=k, reached=reached,
            setup_calls=len(setups), setup_p50_ms=percentile(setups, 50), setup_p99_ms=percentile(setups, 99),
            setup_max_ms=max(setups, default=None), sipp_rtt_p50_ms=percentile(rtt_window, 50),
            sipp_rtt_p99_ms=percentile(rtt_window, 99)))
        if reached is None:
            notes.append(f"{label}the held count never reached {k:,} (peak {held.peak:,})")

    last_answer = max((c.answered for c in calls.values() if c.answered is not None), default=None)
    first_bye = min((c.bye for c in calls.values() if c.bye is not None), default=None)
    ramp_end = next((s for s in in_phase if last_answer is not None and s.t >= last_answer), None)
    points["ramp_end"] = _point(f"{label}end of ramp: every call up, INVITE transactions live",
                                [ramp_end] if ramp_end else [], last_answer=last_answer)
    plateau: list[Sample] = []
    if last_answer is not None:
        begin, end = last_answer + 64 * t1 + settle, first_bye if first_bye is not None else phase.ended
        plateau = [s for s in in_phase if begin <= s.t < end]
        if not plateau:
            notes.append(f"{label}no plateau: the first BYE came {end - last_answer:.1f} s after the last 200, "
                         f"before its INVITE transactions expired (64*T1 + {settle:g} s = "
                         f"{64 * t1 + settle:.1f} s): raise --hold")
    points["plateau"] = _point(f"{label}plateau: every call held, no INVITE transaction left", plateau,
                               window_s=(plateau[-1].t - plateau[0].t) if plateau else None)
    after = [s for s in samples if s.phase == after_phase][-3:]
    points["after"] = _point(f"{label}after hang-up + {args.expire_wait:g} s (transactions expired; "
                             "per call placed)", after)

    plateau_kb, plateau_held, after_kb = points["plateau"]["rss_kb"], points["plateau"]["held"], \
        points["after"]["rss_kb"]
    per_call = residue = None
    if plateau_kb is not None and start_kb is not None and plateau_held:
        per_call = (plateau_kb - start_kb) * 1024 / plateau_held
    if after_kb is not None and start_kb is not None:
        residue = (after_kb - start_kb) * 1024 / max(1, phase.calls)
    uac, uas = phase.uac, phase.uas
    cpu = {}
    for name in (phase.name, after_phase):
        cpus = [s.cpu_s for s in samples if s.phase == name and s.cpu_s is not None]
        if len(cpus) >= 2:
            cpu[name] = round(cpus[-1] - cpus[0], 3)
    return {
        "round": phase.name, "points": points, "rss_per_held_call_bytes": per_call,
        "residue_per_call_bytes": residue,
        "after_minus_start_kb": after_kb - start_kb if after_kb is not None and start_kb is not None else None,
        "peak_held": held.peak, "answered": len(answered),
        "failed": uac.failed + uas.failed, "unfinished": max(0, phase.calls - uac.successful - uac.failed),
        "callee_unfinished": max(0, uas.calls - uas.successful - uas.failed),
        "retransmissions": {"caller": uac.retransmissions, "callee": uas.retransmissions},
        "service_cpu_s": cpu, "notes": notes,
    }


def combine(args: argparse.Namespace, sampler: Sampler, phases: list[tuple[Phase, str]],
            logdir: Path) -> dict[str, Any]:
    """Every figure of the report: the start, each round, the bars (RSS per held call from round 1; no
    failure in any round) and, over several rounds, how much 'after' grew from round 1 to the last."""
    idle, start = start_points(args, sampler.samples)
    rounds = [analyse_round(args, sampler.samples, phase, after, start["rss_kb"], logdir) for phase, after in phases]
    first, last = rounds[0], rounds[-1]
    cpu = {}
    for name in ("idle", "warmup", "warmup-expire"):
        cpus = [s.cpu_s for s in sampler.samples if s.phase == name and s.cpu_s is not None]
        if len(cpus) >= 2:
            cpu[name] = round(cpus[-1] - cpus[0], 3)
    for r in rounds:
        cpu.update(r["service_cpu_s"])
    growth = None
    a1, an = first["points"]["after"]["rss_kb"], last["points"]["after"]["rss_kb"]
    if len(rounds) > 1 and a1 is not None and an is not None:
        later_calls = sum(phase.calls for phase, _ in phases[1:])
        growth = {"kb": an - a1, "per_call_bytes": (an - a1) * 1024 / max(1, later_calls)}
    per_call = first["rss_per_held_call_bytes"]
    lost = sum(r["failed"] + r["unfinished"] + r["callee_unfinished"] for r in rounds)
    peak = min(r["peak_held"] for r in rounds)
    return {
        "points": {"idle": idle, "start": start, **first["points"]},
        "rss_per_held_call_bytes": per_call,
        "residue_per_call_bytes": first["residue_per_call_bytes"],
        "after_minus_start_kb": first["after_minus_start_kb"],
        "after_growth_over_rounds": growth,
        "peak_held": first["peak_held"],
        "failed": sum(r["failed"] for r in rounds), "unfinished": sum(r["unfinished"] for r in rounds),
        "callee_unfinished": sum(r["callee_unfinished"] for r in rounds),
        "retransmissions": {side: sum(r["retransmissions"][side] for r in rounds) for side in ("caller", "callee")},
        "service_cpu_s": cpu, "vm_hwm_kb": sampler.hwm_kb, "rounds": rounds,
        "bars": {
            "rss_per_held_call": {"limit_bytes": BAR_BYTES_PER_CALL, "value_bytes": per_call,
                                  "met": per_call is not None and per_call <= BAR_BYTES_PER_CALL},
            "held_no_failure": {"calls": args.calls, "rounds": len(rounds), "peak_held": peak, "failed": lost,
                                "met": lost == 0 and peak == args.calls},
        },
        "notes": [note for r in rounds for note in r["notes"]],
    }


# -- report ------------------------------------------------------------------------------------------


def _mib(kb: float | None) -> str:
    return f"{kb / 1024:.1f}" if kb is not None else "-"


def _num(value: float | None, fmt: str = ".2f") -> str:
    return format(value, fmt) if value is not None else "-"


def markdown(result: dict[str, Any]) -> Iterator[str]:
    points = result["points"]
    start = points["start"]["rss_kb"]
    yield "| point | held calls | RSS MiB | vs start MiB | per held call KiB | setup p50 ms | setup p99 ms |"
    yield "|---|---:|---:|---:|---:|---:|---:|"
    rows = [points["idle"], points["start"]]
    for r in result["rounds"]:
        rp = r["points"]
        rows += [*rp["marks"], rp["ramp_end"], rp["plateau"]] if r is result["rounds"][0] else [rp["plateau"]]
        rows.append({**rp["after"], "residue": r["residue_per_call_bytes"]})
    for p in rows:
        kb = p["rss_kb"]
        diff = kb - start if kb is not None and start is not None else None
        per = diff / p["held"] if diff is not None and p["held"] else None
        if "residue" in p:
            per = p["residue"] / 1024 if p["residue"] is not None else None
        yield (f"| {p['name']} | {p['held'] if p['held'] is not None else '-'} | {_mib(kb)} | "
               f"{_num(diff / 1024 if diff is not None else None, '+.1f')} | {_num(per)} | "
               f"{_num(p.get('setup_p50_ms'))} | {_num(p.get('setup_p99_ms'))} |")
    bars = result["bars"]
    per_call = bars["rss_per_held_call"]["value_bytes"]
    yield ""
    yield "| bar | measured | met |"
    yield "|---|---|---|"
    yield (f"| RSS per held call <= 10 KB (10,240 B) | "
           f"{f'{per_call / 1024:.2f} KiB ({per_call:,.0f} B)' if per_call is not None else 'not measured'} | "
           f"{'met' if bars['rss_per_held_call']['met'] else 'not met'} |")
    hb = bars["held_no_failure"]
    rounds = f" in each of {hb['rounds']} rounds" if hb["rounds"] > 1 else ""
    yield (f"| {hb['calls']:,} calls held at once, 0 failed | peak {hb['peak_held']:,} held{rounds}; failed: "
           f"{result['failed']}, unfinished {result['unfinished']}, never ended at the callee "
           f"{result['callee_unfinished']} | {'met' if hb['met'] else 'not met'} |")
    yield ""
    growth = result["after_growth_over_rounds"]
    if growth is not None:
        yield (f"after hang-up, last round - round 1: {growth['kb']:+,.0f} KiB ({growth['per_call_bytes']:.0f} B "
               "per call of the later rounds; near 0 means the memory freed by a round is reused, not leaked)")
    yield (f"retransmissions: caller {result['retransmissions']['caller']}, callee "
           f"{result['retransmissions']['callee']}; service CPU s per phase: {result['service_cpu_s']}; "
           f"VmHWM {_mib(result['vm_hwm_kb'])} MiB")


def _details(phase: Phase) -> Iterator[str]:
    for side in (phase.uac, phase.uas):
        bits = side.problems()
        if bits:
            yield f"  - {phase.name} {side.role} (exit {side.exit_status}): " + "; ".join(bits)


def _phase_json(phase: Phase) -> dict[str, Any]:
    return {**asdict(phase), "uac": {**asdict(phase.uac), "retransmissions": phase.uac.retransmissions},
            "uas": {**asdict(phase.uas), "retransmissions": phase.uas.retransmissions}}


# -- main --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=None, help="calls held at once (default 10000)")
    parser.add_argument("--rate", type=int, default=None, help="calls per second during the ramp (default 500)")
    parser.add_argument("--hold", type=float, default=None,
                        help="seconds each call is held (default calls/rate + 64*T1 + --margin)")
    parser.add_argument("--margin", type=float, default=None,
                        help="seconds of plateau beyond 64*T1 in the default hold (default 10); a fifth of "
                             "it is the settle time after 64*T1 before the plateau and after the hang-up")
    parser.add_argument("--warmup", type=int, default=None,
                        help="calls placed (held 1 s) and let expire before the start RSS, 0 for none "
                             "(default 200)")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="call-api's event loop (CALL_API_LOOP, default uvloop)")
    parser.add_argument("--t1", type=float, default=None, help="passed to the service (default: its own, 0.5)")
    parser.add_argument("--t4", type=float, default=None, help="passed to the service (default: its own, 5)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="ramp-hold-hang-up rounds against the same service (default 1); with more, the "
                             "report shows whether RSS after hang-up keeps growing round after round (a leak) "
                             "or the memory freed by a round is reused")
    parser.add_argument("--interval", type=float, default=None, help="seconds between samples (default 0.5)")
    parser.add_argument("--max-calls", type=int, default=20000, help="the service's --max-calls (default 20000)")
    parser.add_argument("--smoke", action="store_true",
                        help="a short run: 200 calls at 200/s, T1 0.05 s, T4 0.5 s, margin 1.5 s, 50 warm-up "
                             "calls, samples every 0.25 s (explicit options still win)")
    parser.add_argument("--port-base", type=int, default=16150,
                        help="ports used: base+9 (WebSocket, TCP), +11..+14 (SIPp caller, callee, their control "
                             "ports), +20..+27 (SIPp media), +30 (service), +31 (probe); default 16150, all "
                             "within 16100-16199")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="folder for held-<timestamp>.json and its logs (default benchmarks/results)")
    args = parser.parse_args(argv)
    preset = ({"calls": 200, "rate": 200, "margin": 1.5, "warmup": 50, "t1": 0.05, "t4": 0.5, "interval": 0.25}
              if args.smoke else {"calls": 10000, "rate": 500, "margin": 10.0, "warmup": 200, "interval": 0.5})
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if min(args.calls, args.rate, args.rounds, args.interval) <= 0 or min(args.warmup, args.margin) < 0:
        parser.error("--calls, --rate, --rounds and --interval must be above 0, --warmup and --margin not below 0")
    args.effective_t1 = args.t1 if args.t1 is not None else 0.5
    args.effective_t4 = args.t4 if args.t4 is not None else 5.0
    args.settle = args.margin / 5
    args.expire_wait = max(64 * args.effective_t1, args.effective_t4) + args.settle
    if args.hold is None:
        args.hold = round(args.calls / args.rate + 64 * args.effective_t1 + args.margin, 3)
    if args.hold <= 0:
        parser.error("--hold must be above 0")
    b = args.port_base
    args.ports = Ports(service=b + 30, ws=b + 9, probe=b + 31, uac=b + 11, uas=b + 12, uac_control=b + 13,
                       uas_control=b + 14, uac_media=b + 20, uas_media=b + 24)
    used = [*args.ports.udp(), args.ports.ws]
    if any(p not in PORT_RANGE for p in used) or len(set(used)) != len(used):
        parser.error(f"ports must be distinct and within {PORT_RANGE.start}-{PORT_RANGE.stop - 1}: {used}")
    return args


def run(procs: Processes, args: argparse.Namespace, logdir: Path, report: dict[str, Any]) -> None:
    ports: Ports = args.ports
    phases: list[tuple[Phase, str]] = []
    with open(logdir / "call-api.stderr", "wb") as err:
        service = start_service(procs, args, ports, err)
        sampler = Sampler(service.pid, args.interval)
        report["samples"] = sampler.samples  # filled as the run goes, serialised at the end
        print(f"  call-api ready (pid {service.pid})", file=sys.stderr, flush=True)
        sampler.wait("idle", 1.0)
        if args.warmup:
            warm = run_pair(procs, sampler, ports, "warmup", args.warmup, args.rate, WARMUP_HOLD, logdir)
            report["phases"]["warmup"] = _phase_json(warm)
            sampler.wait("warmup-expire", args.expire_wait)
        for r in range(1, args.rounds + 1):
            name, after = ("held", "after") if r == 1 else (f"held-{r}", f"after-{r}")
            phase = run_pair(procs, sampler, ports, name, args.calls, args.rate, args.hold, logdir)
            report["phases"][name] = _phase_json(phase)
            sampler.wait(after, args.expire_wait)
            phases.append((phase, after))
        alive = service.poll() is None
        report["service_exit_status"] = procs.stop(service, signal.SIGTERM, grace=10.0)
    result = combine(args, sampler, phases, logdir)
    if not alive:
        result["notes"].append(f"call-api had exited (status {report['service_exit_status']}) before the end")
    lines = (logdir / "call-api.stderr").read_text(errors="replace").splitlines()
    if lines:
        result["notes"].append(f"call-api stderr: {len(lines)} line(s), first: {lines[0][:200]}")
    result["notes"] += [f"{phase.name}: the caller had not finished after ramp + hold + {TAIL_GRACE:g} s and was "
                        "stopped" for phase, _ in phases if not phase.completed]
    result["notes"] += [line for phase, _ in phases for line in _details(phase)]
    report["result"] = result
    report["markdown"] = list(markdown(result))
    print("\n".join(report["markdown"]))
    for note in result["notes"]:
        print(f"- {note}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    args.results.mkdir(parents=True, exist_ok=True)
    logdir = args.results / f"held-{stamp}"
    out_json = args.results / f"held-{stamp}.json"
    command = shlex.join([Path(sys.executable).name, "-m", "benchmarks.held", *(sys.argv[1:] if argv is None
                                                                                 else argv)])
    try:
        check_free_udp(args.ports.udp())
    except RuntimeError as exc:
        print(f"held: {exc}", file=sys.stderr)
        return 2
    logdir.mkdir()
    os.sched_setaffinity(0, {SIPP_CPU})
    report: dict[str, Any] = {
        "command": command, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": {"calls": args.calls, "rate": args.rate, "hold": args.hold, "margin": args.margin,
                     "settle": args.settle, "rounds": args.rounds, "warmup": args.warmup,
                     "warmup_hold": WARMUP_HOLD, "loop": args.loop,
                     "t1": args.effective_t1, "t4": args.effective_t4, "expire_wait": args.expire_wait,
                     "interval": args.interval, "max_calls": args.max_calls, "mark_window": MARK_WINDOW,
                     "service_cpu": SERVICE_CPU, "sipp_cpu": SIPP_CPU, "transport": "udp",
                     "ports": asdict(args.ports), "service_command": shlex.join(service_command(args, args.ports))},
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "sipp": sipp_version(),
                    "cpus": os.cpu_count()},
        "logs": _rel(logdir), "phases": {}, "samples": [],
    }
    procs = Processes()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_exit)
    total = (args.calls / args.rate + args.hold + args.expire_wait + 2) * args.rounds + args.expire_wait + 3
    print(f"# Held calls over UDP: {args.calls:,} calls at {args.rate}/s, each held {args.hold:g} s "
          f"(call-api on {args.loop}, T1 {args.effective_t1:g} s), then hung up")
    print(f"# call-api on CPU {SERVICE_CPU}, both SIPp on CPU {SIPP_CPU}; {report['machine']['sipp']}; "
          f"about {total:.0f} s")
    print(f"# command: {command}")
    print(f"# SIPp logs and call-api's stderr: {_rel(logdir)}/\n", flush=True)
    status = 0
    try:
        run(procs, args, logdir, report)
    except (KeyboardInterrupt, SystemExit) as exc:
        print(f"\ninterrupted ({type(exc).__name__}): stopping every process", file=sys.stderr)
        status = 130
    except (RuntimeError, OSError) as exc:
        print(f"held: could not run: {exc}", file=sys.stderr)
        status = 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # let the children be stopped in order
        procs.stop_all()
        report["samples"] = [asdict(s) if isinstance(s, Sample) else s for s in report["samples"]]
        out_json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nraw numbers: {_rel(out_json)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
