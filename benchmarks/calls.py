"""Bridged-call throughput over UDP: SIPp caller -> a B2BUA -> SIPp callee, for call-api (on uvloop and on
plain asyncio) and, side by side, for the Sippy B2BUA.

Run: ``.venv/bin/python -m benchmarks.calls`` (``--help`` for the steps). Not a test.

Every process runs on loopback, on ports 16000-16999 only. Each contender is started as its own process,
pinned to CPU 0, with the callee as its next hop (so no proxy process competes for the two cores).
call-api, once per event loop, with the callee as its outbound proxy::

    taskset -c 0 python -m b2bua --sip-listen 127.0.0.1:16080 --outbound-proxy 'sip:127.0.0.1:16062;lr' \\
        --ws-port 16059 --log-level WARNING --sip-transport udp

(the second loop on 16090 with its WebSocket on 16069). Sippy, the ``sippy`` package from PyPI installed
on first use into its own virtual environment ``benchmarks/.venv-sippy`` (git-ignored) and run there as a
separate program, with the callee as its static route, no RADIUS (``-u``, ``-A 0``), no SIP log
(``SIPLOG_BEND=none``) and its command socket in the step logs' folder::

    SIPLOG_BEND=none taskset -c 0 benchmarks/.venv-sippy/bin/b2bua -f -l 127.0.0.1 -p 16070 \\
        -s 127.0.0.1:16062 -u -A 0 -c unix:benchmarks/results/calls-<timestamp>/sippy-bench.sock

Both SIPp processes run pinned to CPU 1: ``sipp-scenarios/bench_uas.xml`` on 16062 answers at once
(180, then 200 with SDP, ACK, BYE, 200; its Contact has no ``;transport=UDP``, which Sippy 2.5 refuses
in upper case); ``sipp-scenarios/bench_uac_target.xml`` on 16061 sends its INVITE to the contender with
a Request-URI naming the callee (``sip:bench@127.0.0.1:16062``), holds the call ``--hold`` seconds and
hangs up. It takes a 180 arriving after the 200 as expected: above about 100 calls/s Sippy's receive
threads can let a callee's 180 overtake its 200. It is ``bench_uac.xml`` with the ACK and BYE sent to
the URI inside the 200's Contact rather than to SIPp's ``[next_url]``, which keeps the display name
of Sippy's ``Contact: Anonymous <sip:...>`` in the Request-URI (Sippy drops such an ACK and retransmits
its 200); call-api's Contact has no display name, so its messages are the same with either scenario.
With ``--stock`` a second pass runs SIPp's stock scenarios instead (``-sn uac`` against the contender,
``-sn uas`` as the callee), reported in a table of its own: the callee's Contact carries
``;transport=UDP`` (Sippy then never sends the callee its BYE: the caller's calls succeed, the callee's
never end), the caller sends its ACK and BYE to the contender's address as Request-URI, and it fails a
call on a late 180.

Each step places ``rate * seconds`` calls at ``rate`` calls per second with a fresh pair of SIPp
processes (so each step's counters are its own) against a contender process started afresh for each
step and stopped after it (SIGTERM), so that no
contender shares the core with the one measured: a B2BUA keeps each call's last transactions 64*T1
(32 s) after the call ends, and their expiry and the freeing of their memory come as a burst 32 s later
(measured with the contenders all kept running: 2.4 CPU seconds of the idle call-api during the next
30 s step, about 8 % of the core, enough to fail 1,000/s). The steps are
interleaved so that a noisy machine hits the contenders alike: for each step index, call-api's step
(per event loop), then Sippy's, each on its own list of rates (Sippy fails far below call-api); past
the end of the shorter list the other goes on alone. A step is clean when every call succeeded on both
sides and nobody retransmitted anything: SIPp's per-message counts of requests and responses it resent
and of retransmissions it received from the contender, plus the messages it got for calls already
over (late retransmissions). Each contender stops at its first unclean step; its headline is its
highest clean rate, and the summary gives the ratio call-api/Sippy of the headlines.

Per step: calls attempted and successful, failed (caller or callee side, plus calls the caller never
finished, plus calls the callee took and never saw end: a BYE that never reached it),
retransmissions, the achieved rate (successful calls over the time SIPp took to create them, at least
the step's length), the contender's CPU seconds (utime+stime of all its threads, from /proc), and
SIPp's response-time repartition from the INVITE to its 200 (millisecond resolution).
Each step is also a time series (``benchmarks/series.py``), one row per ``--window`` seconds (10):
retransmissions (the same three sources as the step's total, dated by SIPp's per-second dumps), the
caller's calls in flight, the contender's CPU % and RSS (``benchmarks/watch.py`` samples /proc at each
window's end) and its longest garbage collection (``benchmarks/gc_probe.py``, loaded into the contender
as ``sitecustomize``, records each collection of ``--gc-min-ms`` or more; ``<1`` when none), and the
longest INVITE->200 of the calls answered in it. INVITE->200 p99 and max per step come from the caller's
``-trace_rtt -rtt_freq 1`` file (each call's ``setup`` time, to SIPp's clock tick). ``--stall-at S
--stall-for D`` SIGSTOPs the contender S seconds into each step and SIGCONTs it D seconds later; the
step then reports how long after the resume the last retransmission came (to a second: a SIPp dump
dates it), i.e. how long it took to recover. ``--host-watch`` adds two columns: the longest late
wake-up and the lowest speed in the window of a watcher on the contender's CPU and of one on SIPp's
(``benchmarks/hostwatch.py``), i.e. whether the host itself stopped or slowed that CPU, to tell a slow
call of the host's from one of the contender's. ``--service-arg=ARG`` (repeated) appends ARG to call-api's
command line. Each step is printed under its own heading (verdict, row, series, stall), then every
step's row in one table. The raw numbers go to ``benchmarks/results/calls-<timestamp>.json``, and
the SIPp logs (screens, statistics, counts, unexpected messages, rtt), the GC probe's pauses and the
contenders' stderr to ``benchmarks/results/calls-<timestamp>/``. Every process started is stopped at
the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

from benchmarks import gc_probe, hostwatch, series, subscriber
from benchmarks.scrape import Scraper
from benchmarks.series import WINDOW, Window
from benchmarks.series import percentile as percentile  # api.py and held.py import it from here
from benchmarks.watch import Stall, Watch
from harness import sipp_stats
from harness.ports import check_free_udp
from harness.processes import Processes, exited_within
from harness.procfs import cpu_seconds
from harness.service import call_api_argv
from harness.sip_probe import wait_answering
from harness.sipp_stats import SippSide, int_field, last_file, read_side

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


def shown(path: Path) -> str:
    """``path`` relative to the repository when inside it (results elsewhere are shown whole)."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


# -- the contenders ---------------------------------------------------------------------------------


SIPPY_VENV = ROOT / "benchmarks" / ".venv-sippy"
SIPPY_RATES = "50,100,125,150,175,200"
CONTENDER_KINDS = ("call-api", "sippy")


@dataclass
class Contender:
    """One B2BUA under test: call-api on one event loop, or Sippy."""

    kind: str
    loop: str
    port: int
    ws_port: int
    rates: list[int]
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    gc_log: Path | None = None
    exit_status: int | None = None

    @property
    def label(self) -> str:
        return f"call-api/{self.loop}" if self.kind == "call-api" else "sippy"

    @property
    def slug(self) -> str:
        return self.label.replace("/", "-")

    def cpu(self) -> float | None:
        """CPU seconds so far, None once the process is gone."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        try:
            return cpu_seconds(self.proc.pid)
        except (OSError, IndexError, ValueError):
            return None


def ensure_sippy(spec: str) -> str:
    """Sippy's ``b2bua`` in its own virtual environment, created and filled from PyPI on first use; the
    installed version. Checks that the options used by ``sippy_command`` are the installed version's."""
    python, b2bua = SIPPY_VENV / "bin" / "python", SIPPY_VENV / "bin" / "b2bua"
    if not python.exists():
        print(f"creating {SIPPY_VENV.relative_to(ROOT)}", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(SIPPY_VENV)], check=True, stdin=subprocess.DEVNULL)
    if not b2bua.exists():
        print(f"installing {spec} into {SIPPY_VENV.relative_to(ROOT)}", file=sys.stderr, flush=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", spec],
                       check=True, stdin=subprocess.DEVNULL)
    version = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('sippy'))"],
        capture_output=True, text=True, check=True, stdin=subprocess.DEVNULL).stdout.strip()
    # The short options (-f -l -p -s -u -A -c) have these long forms in its --help (sippy 2.5).
    usage = subprocess.run([str(b2bua), "--help"], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, SIPLOG_BEND="none"), stdin=subprocess.DEVNULL).stdout
    missing = [o for o in ("--foreground", "--sip_address", "--sip_port", "--static_route", "--auth_enable",
                           "--acct_enable", "--b2bua_socket") if o not in usage]
    if missing:
        raise RuntimeError(f"sippy {version}: its b2bua --help lacks {missing}; adapt sippy_command")
    return version


def call_api_command(args: argparse.Namespace, c: Contender) -> list[str]:
    return call_api_argv(["--sip-listen", f"{HOST}:{c.port}", "--outbound-proxy", f"sip:{HOST}:{args.uas_port};lr",
                            "--ws-port", str(c.ws_port), "--log-level", "WARNING", "--sip-transport", "udp",
                            *args.service_arg], cpu=SERVICE_CPU)


def sippy_command(args: argparse.Namespace, c: Contender, control: Path) -> list[str]:
    """Foreground (-f), listening on -l/-p, every call to the callee (-s static route), no RADIUS
    authentication (-u) nor accounting (-A 0), its command socket (-c) not the default /var/run one."""
    return ["taskset", "-c", str(SERVICE_CPU), str(SIPPY_VENV / "bin" / "b2bua"), "-f", "-l", HOST,
            "-p", str(c.port), "-s", f"{HOST}:{args.uas_port}", "-u", "-A", "0", "-c", f"unix:{control}"]


def gc_probe_env(logdir: Path, gc_log: Path, min_ms: float) -> dict[str, str]:
    """The environment that loads ``benchmarks/gc_probe.py`` as ``sitecustomize`` in a contender (copied
    into ``<logdir>/gc-probe/``, first on its PYTHONPATH) writing its pauses to ``gc_log``."""
    folder = logdir / "gc-probe"
    folder.mkdir(exist_ok=True)
    shutil.copyfile(gc_probe.__file__, folder / "sitecustomize.py")
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, gc_probe.PATH_ENV: str(gc_log), gc_probe.MIN_MS_ENV: f"{min_ms:g}"}


def step_dir(logdir: Path, scenarios: Scenarios, c: Contender, rate: int) -> Path:
    """The folder of one step's logs."""
    return logdir / f"{scenarios.key}-{c.slug}-{rate}"


def start_contender(procs: Processes, args: argparse.Namespace, c: Contender, stderr: IO[bytes],
                    control: Path, gc_log: Path | None = None) -> subprocess.Popen[bytes]:
    """The contender on CPU 0, once it answers an OPTIONS (call-api with a 200, Sippy with its 501: any
    answer shows it is listening); raises if it dies or stays silent. With ``gc_log``, the GC probe is
    loaded into it (``gc_probe_env``)."""
    if c.kind == "call-api":
        cmd, env, ready = call_api_command(args, c), dict(os.environ, CALL_API_LOOP=c.loop), b"SIP/2.0 200"
    else:
        cmd, env, ready = sippy_command(args, c, control), dict(os.environ, SIPLOG_BEND="none"), b"SIP/2.0 "
    c.gc_log = gc_log
    if gc_log is not None:
        gc_log.parent.mkdir(parents=True, exist_ok=True)
        env.update(gc_probe_env(control.parent, gc_log, args.gc_min_ms))
    proc = procs.start(cmd, cwd=ROOT, env=env, stderr=stderr)
    wait_answering(proc, args.probe_port, c.port, c.label, stderr.name, ready)
    time.sleep(0.3)
    if proc.poll() is not None:
        raise RuntimeError(f"{c.label} exited with status {proc.returncode} (see {stderr.name})")
    return proc


# -- SIPp --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenarios:
    """A pair of SIPp scenarios: the project's benchmark ones (files) or SIPp's stock ones (-sn)."""

    key: str
    title: str
    uac: str
    uas: str
    rtd: str  # the name of the INVITE->200 response time in SIPp's statistics
    stock: bool

    def args(self, name: str) -> list[str]:
        return ["-sn", name] if self.stock else ["-sf", str(SCENARIOS / f"{name}.xml")]


BENCH = Scenarios("bench", "sipp-scenarios/bench_uac_target.xml -> contender -> sipp-scenarios/bench_uas.xml",
                  "bench_uac_target", "bench_uas", "setup", stock=False)
STOCK = Scenarios("stock", "SIPp stock scenarios: sipp -sn uac -> contender -> sipp -sn uas",
                  "uac", "uas", "1", stock=True)


def _sipp_common(scenarios: Scenarios, name: str, workdir: Path, port: int, control_port: int,
                 media_port: int) -> list[str]:
    return ["taskset", "-c", str(SIPP_CPU), "sipp", *scenarios.args(name),
            "-i", HOST, "-p", str(port), "-t", "u1", "-cp", str(control_port), "-mp", str(media_port),
            "-nostdin", "-buff_size", str(4 << 20),
            "-trace_stat", "-stf", str(workdir / f"{name}_stat.csv"), "-fd", "1",
            "-trace_counts", "-trace_screen", "-screen_file", str(workdir / f"{name}_screen.log"),
            "-trace_err", "-error_file", str(workdir / f"{name}_errors.log"), "-max_log_size", str(10 << 20)]


_epoch = series.sipp_epoch


def _ms(value: str) -> float | None:
    """SIPp's ``HH:MM:SS:uuuuuu`` as milliseconds."""
    parts = value.split(":")
    if len(parts) != 4:
        return None
    h, m, s, us = (int(p) for p in parts)
    return ((h * 60 + m) * 60 + s) * 1000 + us / 1000


# -- one step ----------------------------------------------------------------------------------------


@dataclass
class Step:
    contender: str
    scenarios: str
    rate: int
    seconds: float
    hold: float
    attempted: int
    successful: int
    failed: int
    unfinished: int
    callee_unfinished: int
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
    others_cpu: dict[str, float] = field(default_factory=dict)
    setup_ms_p99: float | None = None
    setup_ms_max: float | None = None
    answered: int = 0
    rejected_503: int = 0
    rss_max_mb: float | None = None
    gc_max_ms: float | None = None
    #: The GC probe's threshold, None when the probe was off.
    gc_min_ms: float | None = None
    series: list[Window] = field(default_factory=list)
    stall: Stall | None = None
    #: Epoch seconds of the SIGSTOP and the SIGCONT actually sent, and the seconds from the SIGCONT to
    #: the last SIPp dump after it that counted a retransmission (None: none after the resume).
    stopped_at: float | None = None
    resumed_at: float | None = None
    last_retransmission_after_resume: float | None = None
    #: What ``--scrape`` saw (benchmarks.scrape), None without it.
    scrapes: str | None = None
    #: The CPUs the host watchers ran on (``--host-watch``; the order of each window's ``host_late_ms``),
    #: the longest late wake-up each saw over the step (ms), and the lowest speed (share of the usual).
    host_cpus: tuple[int, ...] = ()
    host_late_max_ms: tuple[float, ...] = ()
    host_speed_min: tuple[float, ...] = ()

    @property
    def clean(self) -> bool:
        return (self.failed == 0 and self.unfinished == 0 and self.callee_unfinished == 0
                and self.retransmissions == 0 and self.successful == self.attempted and self.attempted > 0)


def _creation_seconds(rows: list[dict[str, str]], total: int) -> float | None:
    """Seconds from SIPp's start until it had created ``total`` calls, interpolated between stat rows."""
    if not rows or total <= 0:
        return None
    start = _epoch(rows[0]["StartTime"])
    prev_t, prev_n = start, 0
    for row in rows:
        t, n = _epoch(row["CurrentTime"]), int_field(row, "OutgoingCall(C)")
        if n >= total:
            if n == prev_n:
                return t - start
            return prev_t + (total - prev_n) / (n - prev_n) * (t - prev_t) - start
        prev_t, prev_n = t, n
    return None


@contextlib.contextmanager
def running(procs: Processes, args: argparse.Namespace, c: Contender, scenarios: Scenarios, rate: int,
            logdir: Path) -> Iterator[Contender]:
    """``c`` started for a step of ``scenarios`` at ``rate`` (stderr to ``<logdir>/<key>-<slug>-<rate>.stderr``,
    the GC probe's pauses to the step's folder) and stopped with SIGTERM afterwards; its exit status
    then in ``c.exit_status``."""
    name = f"{scenarios.key}-{c.slug}-{rate}"
    with open(logdir / f"{name}.stderr", "wb") as err:
        c.log = Path(err.name)
        c.proc = start_contender(procs, args, c, err, logdir / f"sippy-{name}.sock",
                                 step_dir(logdir, scenarios, c, rate) / "gc.log" if args.gc_probe else None)
        try:
            yield c
        finally:
            c.exit_status = procs.stop(c.proc, signal.SIGTERM, grace=10.0)
            c.proc = None
            with contextlib.suppress(OSError):
                (logdir / f"sippy-{name}.sock").unlink()


def _stall(args: argparse.Namespace) -> Stall | None:
    return Stall(args.stall_at, args.stall_for) if args.stall_at is not None else None


def _column_total(rows: list[dict[str, str]], suffix: str) -> int:
    """The first column of a SIPp counts file's last row whose name ends with ``suffix`` (0 if none)."""
    last = rows[-1] if rows else {}
    return next((int_field(last, k) for k in last if k.endswith(suffix)), 0)


def run_step(procs: Processes, args: argparse.Namespace, c: Contender, scenarios: Scenarios, rate: int,
             logdir: Path, seconds: float | None = None, call_limit: int | None = None, user: str = "bench") -> Step:
    """One step at ``rate`` for ``seconds`` (default ``args.seconds``) against the running contender,
    watched (the series of ``benchmarks.series``) and stalled as ``--stall-at``/``--stall-for`` say.
    ``call_limit`` is the caller's ``-l``, its most calls in flight; SIPp's default, 3 x rate x call
    length, makes it slow down (silently) once that many are up, which a step meant to offer a rate
    whatever happens must raise. ``user`` is the callee's user part in the Request-URI (``-s``; a proxy
    between the contender and the callee may route by it)."""
    seconds = args.seconds if seconds is None else seconds
    assert c.proc is not None and c.log is not None
    service, service_log = c.proc, c.log
    workdir = step_dir(logdir, scenarios, c, rate)
    workdir.mkdir(parents=True, exist_ok=True)
    calls = int(rate * seconds)
    uas_cmd = _sipp_common(scenarios, scenarios.uas, workdir, args.uas_port, args.uas_port + 100,
                           args.uas_port + 200)
    keys = [] if scenarios.stock else ["-key", "callee_host", HOST, "-key", "callee_port", str(args.uas_port)]
    uac_cmd = [
        *_sipp_common(scenarios, scenarios.uac, workdir, args.uac_port, args.uac_port + 100, args.uac_port + 200),
        "-s", user, *keys,
        "-r", str(rate), "-rp", "1000", "-m", str(calls), "-d", str(int(args.hold * 1000)),
        "-trace_rtt", "-rtt_freq", "1", *(["-l", str(call_limit)] if call_limit else []), f"{HOST}:{c.port}"]
    (workdir / "commands.txt").write_text(f"{shlex.join(uas_cmd)}\n{shlex.join(uac_cmd)}\n")
    log_mark = service_log.stat().st_size
    uas_err_path, uac_err_path = workdir / f"{scenarios.uas}.stderr", workdir / f"{scenarios.uac}.stderr"
    with open(uas_err_path, "wb") as uas_err, open(uac_err_path, "wb") as uac_err:
        uas = procs.start(uas_cmd, cwd=workdir, stderr=uas_err)
        time.sleep(0.5)
        if uas.poll() is not None:
            raise RuntimeError(f"SIPp callee exited with status {uas.returncode} (see {workdir})")
        follower_url = f"ws://{HOST}:{c.ws_port}/call-api" if args.subscriber and c.kind == "call-api" else None
        scrape = getattr(args, "scrape", None) if c.kind == "call-api" else None
        host_cpus = (SERVICE_CPU, SIPP_CPU) if getattr(args, "host_watch", False) else ()
        with subscriber.following(follower_url, SIPP_CPU), \
                hostwatch.watching(procs, host_cpus, workdir, ROOT) as host_files:
            cpu0, t0, epoch0 = cpu_seconds(service.pid), time.monotonic(), time.time()
            with Watch(service.pid, epoch0, args.window, _stall(args)) as watch, \
                    Scraper(f"http://{HOST}:{c.ws_port}/metrics", scrape) as scraper:
                uac = procs.start(uac_cmd, cwd=workdir, stderr=uac_err)
                if not exited_within(uac, seconds + args.hold + TAIL_GRACE + (args.stall_for or 0.0)):
                    procs.stop(uac, signal.SIGUSR1, grace=5.0)
                uac_status = procs.stop(uac)
            t1, epoch1 = time.monotonic(), time.time()
        cpu1 = c.cpu()
        exited_within(uas, 1.0)
        uas_status = procs.stop(uas, signal.SIGUSR1, grace=5.0)
    uac_side, uac_rows = read_side("caller", scenarios.uac, workdir, uac_status)
    uas_side, uas_rows = read_side("callee", scenarios.uas, workdir, uas_status)
    uac_counts, uas_counts = (sipp_stats.read_sipp_csv(f) for f in (
        last_file(workdir, f"{scenarios.uac}_*_counts.csv"), last_file(workdir, f"{scenarios.uas}_*_counts.csv")))
    retrans = series.Retransmissions.of([uac_counts, uas_counts], [uac_rows, uas_rows])
    sipp_start = _epoch(uac_rows[0]["StartTime"]) if uac_rows else epoch0
    setups = series.read_rtt(last_file(workdir, f"{scenarios.uac}_*_rtt.csv"), sipp_start, scenarios.rtd)
    pauses = series.read_gc(c.gc_log) if c.gc_log is not None else []
    host = [[e for e in hostwatch.read_events(host_files[cpu]) if epoch0 <= e.t <= epoch1] for cpu in host_cpus]
    windows = series.windows(epoch0, epoch1, retrans, series.stat_counter(uac_rows, "CurrentCall"),
                             series.stat_counter(uac_rows, "OutgoingCall(C)"), watch.samples, pauses, setups,
                             args.window, host)
    setup_ms = [ms for _, ms in setups]
    last = uac_rows[-1] if uac_rows else {}
    prefix = f"ResponseTimeRepartition{scenarios.rtd}_"
    repartition = {k.removeprefix(prefix): int_field(last, k) for k in last if k.startswith(prefix)}
    with open(service_log, "rb") as f:
        f.seek(log_mark)
        service_lines = f.read().decode(errors="replace").splitlines()
    creation = _creation_seconds(uac_rows, uac_side.calls)
    window = max(seconds, creation or 0.0)
    unfinished = max(0, calls - uac_side.successful - uac_side.failed)
    # calls the callee took that it never saw end (no BYE reached it), though the caller's may have
    callee_unfinished = max(0, uas_side.calls - uas_side.successful - uas_side.failed)
    return Step(
        contender=c.label, scenarios=scenarios.key, rate=rate, seconds=seconds, hold=args.hold,
        attempted=calls, successful=uac_side.successful, failed=uac_side.failed + uas_side.failed,
        unfinished=unfinished, callee_unfinished=callee_unfinished,
        retransmissions=uac_side.retransmissions + uas_side.retransmissions,
        achieved=uac_side.successful / window, creation_seconds=creation or 0.0, wall_seconds=t1 - t0,
        service_cpu=(cpu1 if cpu1 is not None else cpu0) - cpu0,
        setup_ms_mean=_ms(last.get(f"ResponseTime{scenarios.rtd}(C)", "")),
        setup_repartition_ms=repartition, service_log_lines=service_lines[:200],
        uac=uac_side, uas=uas_side, logs=shown(workdir),
        setup_ms_p99=percentile(setup_ms, 99), setup_ms_max=max(setup_ms, default=None),
        answered=_column_total(uac_counts, "_200_Recv"), rejected_503=_column_total(uac_counts, "_503_Recv"),
        rss_max_mb=max((s.rss_kb / 1024 for s in watch.samples), default=None),
        gc_max_ms=max((p.ms for p in pauses if epoch0 <= p.t <= epoch1), default=None),
        gc_min_ms=args.gc_min_ms if c.gc_log is not None else None,
        series=windows, stall=watch.stall, stopped_at=watch.stopped_at, resumed_at=watch.resumed_at,
        last_retransmission_after_resume=(retrans.last_after(watch.resumed_at)
                                          if watch.resumed_at is not None else None),
        scrapes=f"GET /metrics every {scrape:g} s: {scraper.scrapes.text()}" if scrape else None,
        host_cpus=host_cpus,
        host_late_max_ms=tuple(max((e.value for e in cpu if e.kind == "late"), default=0.0) for cpu in host),
        host_speed_min=tuple(min((e.value for e in cpu if e.kind == "slow"), default=1.0) for cpu in host),
    )


# -- report ------------------------------------------------------------------------------------------


def _repartition_text(rep: dict[str, int]) -> str:
    return " ".join(f"{k}:{v}" for k, v in rep.items() if v) or "-"


HEADER = ("| contender | rate/s | attempted | successful | failed | retrans | achieved/s | CPU s | CPU % "
          "| INVITE→200 p99 / max ms | INVITE→200: calls per ms bucket (SIPp repartition, `<N` = below N ms) |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")


def _ms_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def row(step: Step) -> str:
    failed = f"{step.failed}" + (f" (+{step.unfinished} unfinished)" if step.unfinished else "")
    if step.callee_unfinished:
        failed += f" (+{step.callee_unfinished} never ended at the callee)"
    cpu_pct = 100 * step.service_cpu / step.wall_seconds if step.wall_seconds > 0 else 0.0
    return (f"| {step.contender} | {step.rate} | {step.attempted} | {step.successful} | {failed} | "
            f"{step.retransmissions} | {step.achieved:.1f} | {step.service_cpu:.2f} | "
            f"{cpu_pct:.0f} | {_ms_text(step.setup_ms_p99)} / {_ms_text(step.setup_ms_max)} | "
            f"{_repartition_text(step.setup_repartition_ms)} |")


def stall_text(step: Step) -> str | None:
    """The stall of a step and how long the retransmissions it caused went on after the SIGCONT."""
    if step.stall is None:
        return None
    if step.stopped_at is None or step.resumed_at is None:
        return f"stall at {step.stall.at:g} s for {step.stall.length:g} s: not applied (the step ended first)"
    took = step.last_retransmission_after_resume
    length = step.resumed_at - step.stopped_at
    return (f"stall: SIGSTOP at {step.stall.at:g} s for {length:.1f} s; "
            + ("no retransmission after the resume (recovered in 0 s)" if took is None
               else f"last retransmission {took:.1f} s after the resume (recovered in {took:.1f} s)"))


def step_report(step: Step) -> str:
    """One step under its own heading: its verdict, its row, its time series, its stall."""
    verdict = "clean" if step.clean else "NOT clean"
    lines = [f"### {step.contender} {step.rate}/s, {step.seconds:g} s: {verdict}", "", HEADER, row(step), "",
             series.series_table(step.series, step.gc_min_ms, step.host_cpus)]
    stall = stall_text(step)
    if stall:
        lines += ["", stall]
    if step.scrapes:
        lines += ["", step.scrapes]
    return "\n".join(lines) + "\n"


def details(step: Step) -> Iterator[str]:
    for side in (step.uac, step.uas):
        bits = side.problems()
        if bits:
            yield f"  - {step.contender} {step.rate}/s {side.role} (exit {side.exit_status}): " + "; ".join(bits)
    if step.callee_unfinished:
        yield (f"  - {step.contender} {step.rate}/s callee: {step.callee_unfinished} call(s) it took never ended "
               "there (no BYE reached it)")
    if step.service_log_lines:
        yield (f"  - {step.contender} {step.rate}/s stderr: {len(step.service_log_lines)} line(s), first: "
               f"{step.service_log_lines[0][:200]}")


def _step_json(step: Step) -> dict[str, Any]:
    return {**asdict(step), "clean": step.clean,
            "uac": {**asdict(step.uac), "retransmissions": step.uac.retransmissions},
            "uas": {**asdict(step.uas), "retransmissions": step.uas.retransmissions}}


def summary(contenders: list[Contender], results: dict[str, Any]) -> str:
    """Each contender's headline (``>=`` when its top step was clean: the list of rates ended before
    it did) and the ratio call-api/Sippy of the headlines, per event loop (``>=`` when call-api's
    headline is a bound and Sippy's is not, ``~`` when Sippy's is a bound)."""
    parts, heads, tops = [], {}, {}
    for c in contenders:
        data = results[c.label]
        head = data["headline"]
        heads[c.label] = head
        tops[c.label] = bool(data["steps"]) and data["steps"][-1]["clean"] and data["steps"][-1]["rate"] == c.rates[-1]
        parts.append(f"{c.label} {'>=' if tops[c.label] else ''}{head}/s" if head is not None
                     else f"{c.label} no clean step")
    text = ", ".join(parts)
    sippy = heads.get("sippy")
    ratios = []
    for c in contenders:
        if c.kind == "call-api" and "sippy" in heads:
            head = heads[c.label]
            mark = "~" if tops["sippy"] else ">=" if tops[c.label] else ""
            ratios.append(f"{c.loop} {mark}{head / sippy:.1f}x" if head is not None and sippy
                          else f"{c.loop} n/a (a contender had no clean step)")
    if ratios:
        text += "; ratio call-api/Sippy: " + ", ".join(ratios)
    return text


def run_pass(procs: Processes, args: argparse.Namespace, contenders: list[Contender], scenarios: Scenarios,
             logdir: Path, results: dict[str, Any]) -> None:
    """One pass over the scenario pair: every contender started, the steps interleaved by index, each
    contender stopping at its first unclean step, every contender stopped at the end."""
    print(f"\n## {scenarios.title}\n", flush=True)
    rows: list[str] = []
    for c in contenders:
        results[c.label] = {"steps": [], "headline": None, "notes": [], "stopped": None}
    with contextlib.ExitStack() as stack:
        try:
            errs = {c.label: stack.enter_context(open(logdir / f"{scenarios.key}-{c.slug}.stderr", "wb"))
                    for c in contenders}
            for c in contenders:
                c.log = Path(errs[c.label].name)
            steps: dict[str, list[Step]] = {c.label: [] for c in contenders}
            first = True
            for i in range(max(len(c.rates) for c in contenders)):
                for c in contenders:
                    data = results[c.label]
                    if i >= len(c.rates) or data["stopped"]:
                        continue
                    if not first:
                        time.sleep(args.pause)
                    first = False
                    gc_log = step_dir(logdir, scenarios, c, c.rates[i]) / "gc.log" if args.gc_probe else None
                    c.proc = start_contender(procs, args, c, errs[c.label], logdir / f"sippy-{scenarios.key}.sock",
                                             gc_log)
                    step = run_step(procs, args, c, scenarios, c.rates[i], logdir)
                    steps[c.label].append(step)
                    data["steps"].append(_step_json(step))
                    data["headline"] = max((s.rate for s in steps[c.label] if s.clean), default=None)
                    data["notes"] = [line for s in steps[c.label] for line in details(s)]
                    rows.append(row(step))
                    print(step_report(step), flush=True)
                    assert c.proc is not None
                    if c.proc.poll() is not None:
                        data["stopped"] = f"exited with status {c.proc.returncode} during the {step.rate}/s step"
                        print(f"{c.label} {data['stopped']}", file=sys.stderr, flush=True)
                    elif not step.clean:
                        data["stopped"] = f"first unclean step at {step.rate}/s"
                    data["exit_status"] = procs.stop(c.proc, signal.SIGTERM, grace=10.0)
                    c.proc = None
        finally:
            for c in contenders:
                if c.proc is not None:
                    results[c.label]["exit_status"] = procs.stop(c.proc, signal.SIGTERM, grace=10.0)
                    c.proc = None
            with contextlib.suppress(OSError):
                (logdir / f"sippy-{scenarios.key}.sock").unlink()
            print(f"### every step\n\n{HEADER}\n" + "\n".join(rows), flush=True)


def _rates(text: str) -> list[int]:
    rates = [int(r) for r in text.split(",") if r.strip()]
    if not rates or any(r <= 0 for r in rates):
        raise ValueError(f"no rates or a rate not above 0: {text!r}")
    return rates


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every step-based benchmark (calls, soak, overload) shares: ports, hold, the series
    window, the stall, the GC probe's threshold and extra arguments for the call-api command."""
    parser.add_argument("--hold", type=float, default=1.0, help="seconds each call stays up (default 1)")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="folder of the reports and logs (default benchmarks/results)")
    parser.add_argument("--pause", type=float, default=3.0, help="seconds between steps (default 3)")
    parser.add_argument("--window", type=float, default=WINDOW,
                        help=f"seconds per window of each step's time series (default {WINDOW:g})")
    parser.add_argument("--stall-at", type=float, default=None, metavar="SECONDS",
                        help="SIGSTOP the contender this many seconds after each step's start")
    parser.add_argument("--stall-for", type=float, default=None, metavar="SECONDS",
                        help="seconds before the SIGCONT that ends the stall (with --stall-at)")
    parser.add_argument("--gc-min-ms", type=float, default=1.0,
                        help="shortest collection the contender's GC probe records, ms (default 1)")
    parser.add_argument("--gc-probe", action=argparse.BooleanOptionalAction, default=True,
                        help="load the GC probe into the contender (default on; off to measure its cost)")
    parser.add_argument("--service-arg", action="append", default=[], metavar="ARG",
                        help="one more argument for the call-api command line (repeat: --service-arg=--flag)")
    parser.add_argument("--service-port", type=int, default=16080,
                        help="call-api's SIP port (the next event loop's 10 higher)")
    parser.add_argument("--sippy-port", type=int, default=16070, help="Sippy's SIP port")
    parser.add_argument("--sippy-spec", default="sippy",
                        help="pip requirement installed into benchmarks/.venv-sippy when it has no b2bua yet")
    parser.add_argument("--uac-port", type=int, default=16061, help="caller port; +100 control, +200 and +202 media")
    parser.add_argument("--uas-port", type=int, default=16062, help="callee port; +100 control, +200 and +202 media")
    parser.add_argument("--ws-port", type=int, default=16059, help="call-api's WebSocket port (next loop's 10 higher)")
    parser.add_argument("--probe-port", type=int, default=16081, help="local port of the readiness OPTIONS")
    parser.add_argument("--scrape", type=float, default=None, metavar="SECONDS",
                        help="GET call-api's /metrics every SECONDS during each step, as Prometheus would (issue 14)")
    parser.add_argument("--host-watch", action=argparse.BooleanOptionalAction, default=False,
                        help="a watcher on the contender's CPU and one on SIPp's note when the host itself did not "
                             "run them (benchmarks/hostwatch.py; a column of the series; default off, the soak's on)")
    parser.add_argument("--subscriber", action="store_true",
                        help="one WebSocket client follows every call event of each call-api step and prints its "
                             "largest lag behind the service (benchmarks/subscriber.py)")


def build_contenders(parser: argparse.ArgumentParser, args: argparse.Namespace, kinds_text: str, loops_text: str,
                     rates: list[int], sippy_rates: list[int]) -> list[Contender]:
    """The contenders named, their ports checked (distinct, in range, free); exits through ``parser`` on a
    bad option, and checks the stall options alongside."""
    if (args.stall_at is None) != (args.stall_for is None) or (args.stall_for is not None and args.stall_for <= 0):
        parser.error("--stall-at and --stall-for go together, --stall-for above 0")
    kinds = [k.strip() for k in kinds_text.split(",") if k.strip()]
    if not kinds or any(k not in CONTENDER_KINDS for k in kinds) or len(set(kinds)) != len(kinds):
        parser.error(f"--contenders takes distinct names among {', '.join(CONTENDER_KINDS)}: {kinds_text!r}")
    loops = [loop.strip() for loop in loops_text.split(",") if loop.strip()]
    contenders: list[Contender] = []
    if "call-api" in kinds:
        if not loops:
            parser.error("--loops names no event loop")
        contenders += [Contender("call-api", loop, args.service_port + 10 * k, args.ws_port + 10 * k, rates)
                       for k, loop in enumerate(loops)]
    if "sippy" in kinds:
        contenders.append(Contender("sippy", "", args.sippy_port, 0, sippy_rates))
    ports = [args.uac_port, args.uac_port + 100, args.uac_port + 200, args.uas_port, args.uas_port + 100,
             args.uas_port + 200, args.probe_port]
    ports += [p for c in contenders for p in ((c.port, c.ws_port) if c.kind == "call-api" else (c.port,))]
    if any(p not in PORT_RANGE for p in ports) or len(set(ports)) != len(ports):
        parser.error(f"ports must be distinct and within {PORT_RANGE.start}-{PORT_RANGE.stop - 1}: {ports}")
    check_free_udp([*ports, args.uac_port + 202, args.uas_port + 202])  # SIPp also binds media port + 2
    return contenders


@dataclass
class Run:
    """One run of a step-based benchmark: its logs folder, JSON report and the processes it started."""

    name: str
    stamp: str
    logdir: Path
    out_json: Path
    command: str
    procs: Processes = field(default_factory=Processes)

    @classmethod
    def create(cls, name: str, results: Path = RESULTS) -> Run:
        """``<results>/<name>-<timestamp>/`` and ``.json``, this script pinned to SIPp's CPU."""
        os.sched_setaffinity(0, {SIPP_CPU})
        stamp = time.strftime("%Y%m%d-%H%M%S")
        results.mkdir(parents=True, exist_ok=True)
        logdir = results / f"{name}-{stamp}"
        logdir.mkdir()
        command = shlex.join([Path(sys.executable).name, "-m", f"benchmarks.{name}", *sys.argv[1:]])
        return cls(name, stamp, logdir, results / f"{name}-{stamp}.json", command)

    def machine(self, sippy_version: str | None) -> dict[str, Any]:
        return {"platform": platform.platform(), "python": platform.python_version(), "sipp": sipp_stats.sipp_version(),
                "sippy": sippy_version, "cpus": os.cpu_count()}

    @contextlib.contextmanager
    def signals(self) -> Iterator[None]:
        """Ctrl-C, SIGTERM and SIGHUP raise here; on the way out every process started is stopped, in order."""
        signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _raise_exit)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)  # let the children be stopped in order
            self.procs.stop_all()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each step (default 20)")
    parser.add_argument("--contenders", default="call-api,sippy",
                        help="comma-separated B2BUAs to measure: call-api, sippy (default both, interleaved)")
    parser.add_argument("--rates", default="50,100,200,300,400,600,800,1000",
                        help="call-api's comma-separated call rates per second, stepped up in order")
    parser.add_argument("--sippy-rates", default=SIPPY_RATES,
                        help=f"Sippy's call rates per second, stepped up in order (default {SIPPY_RATES})")
    parser.add_argument("--loops", default="uvloop,asyncio",
                        help="call-api's event loops to measure (CALL_API_LOOP values), each a contender")
    parser.add_argument("--stock", action="store_true",
                        help="also run a pass with SIPp's stock scenarios (-sn uac, -sn uas), in a table of its own")
    add_common_arguments(parser)
    args = parser.parse_args()
    try:
        rates, sippy_rates = _rates(args.rates), _rates(args.sippy_rates)
    except ValueError as exc:
        parser.error(str(exc))
    contenders = build_contenders(parser, args, args.contenders, args.loops, rates, sippy_rates)
    passes = [BENCH, STOCK] if args.stock else [BENCH]
    sippy_version = ensure_sippy(args.sippy_spec) if any(c.kind == "sippy" for c in contenders) else None
    run = Run.create("calls", args.results)
    logdir, out_json, command = run.logdir, run.out_json, run.command
    report: dict[str, Any] = {
        "command": command, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": {"seconds": args.seconds, "hold": args.hold, "pause": args.pause,
                     "service_cpu": SERVICE_CPU, "sipp_cpu": SIPP_CPU, "transport": "udp",
                     "scenarios": [s.key for s in passes], "window": args.window,
                     "stall_at": args.stall_at, "stall_for": args.stall_for, "gc_min_ms": args.gc_min_ms,
                     "service_args": args.service_arg},
        "contenders": {c.label: {"kind": c.kind, "loop": c.loop or None, "port": c.port, "rates": c.rates}
                       for c in contenders},
        "machine": run.machine(sippy_version),
        "logs": shown(logdir), "passes": {},
    }

    names = ", ".join(c.label for c in contenders)
    print(f"# Bridged calls over UDP: SIPp caller -> B2BUA -> SIPp callee (its next hop), {args.hold:g} s hold")
    print(f"# contenders, steps interleaved by index: {names}"
          + (f" (Sippy {sippy_version} from PyPI, {SIPPY_VENV.relative_to(ROOT)})" if sippy_version else ""))
    print(f"# contender on CPU {SERVICE_CPU}, both SIPp on CPU {SIPP_CPU}; {args.seconds:g} s per step; "
          f"{report['machine']['sipp']}")
    print(f"# command: {command}")
    print(f"# SIPp logs and contenders' stderr: {shown(logdir)}/", flush=True)
    status = 0
    try:
        with run.signals():
            for scenarios in passes:
                report["passes"][scenarios.key] = {}
                run_pass(run.procs, args, contenders, scenarios, logdir, report["passes"][scenarios.key])
    except (KeyboardInterrupt, SystemExit) as exc:
        print(f"\ninterrupted ({type(exc).__name__}): stopping every process", file=sys.stderr)
        status = 130
    finally:
        for scenarios in passes:
            if scenarios.key in report["passes"]:
                report["passes"][scenarios.key]["summary"] = summary(
                    contenders, report["passes"][scenarios.key])
        out_json.write_text(json.dumps(report, indent=2) + "\n")

    print()
    for scenarios in passes:
        results = report["passes"].get(scenarios.key)
        if results is None:
            continue
        print(f"summary ({scenarios.key}, clean: no failed or unfinished call, no retrans): {results['summary']}")
        for c in contenders:
            data = results[c.label]
            if data["stopped"]:
                print(f"  - {c.label}: stopped, {data['stopped']}")
            for note in data["notes"]:
                print(note)
    print(f"\nraw numbers: {shown(out_json)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
