"""API latency and throughput of CallStart over the WebSocket JSON-RPC front, with SIPp phones that answer
at once: request -> ``Started`` response, request -> the first INVITE on the wire, request -> ``Ended``.

Run: ``.venv/bin/python -m benchmarks.api`` (``--help`` for the options). Not a test.

Every process runs on loopback, on ports 16200-16299 only (``--base-port`` shifts them all): the service
on base+80 (SIP, UDP only) and base+59 (WebSocket), its readiness OPTIONS from base+81, the caller's two
SIPp on base+61 and base+62 linked by -3pcc on TCP base+90, the callee's SIPp on base+63 (control ports
+10, media ports base+30, +34, +38 and each +2). The service runs pinned to CPU 0, with no proxy in the
path (it sends each request to its Request-URI's host and port)::

    CALL_API_LOOP=uvloop taskset -c 0 python -m b2bua --sip-listen 127.0.0.1:16280 --sip-transport udp \\
        --ws-host 127.0.0.1 --ws-port 16259 --log-level WARNING

Per run of commands (a step), fresh SIPp processes pinned to CPU 1, so each step's counters are its own
(``-m`` the step's command count; common options as in ``benchmarks/calls.py``)::

    taskset -c 1 sipp -sf sipp-scenarios/bench_uas.xml -i 127.0.0.1 -p 16263 -m N ...          # callee
    taskset -c 1 sipp -sf sipp-scenarios/bench_api_transferee_call.xml -i 127.0.0.1 -p 16262 \\
        -3pcc 127.0.0.1:16290 -m N ... 127.0.0.1:16280                                          # caller, new call
    taskset -c 1 sipp -sf sipp-scenarios/bench_api_transferee_dialog.xml -i 127.0.0.1 -p 16261 \\
        -3pcc 127.0.0.1:16290 -m N ...                                                          # caller, dialog

Each CallStart names caller ``sip:alice-<n>@127.0.0.1:16261`` (``n`` unique over the whole run) and callee
``sip:bob@127.0.0.1:16263``. The flow: the service INVITEs alice-<n> (inactive offer); the dialog SIPp
answers at once, takes the REFER (its Refer-To must carry ``osid``), answers 202 and NOTIFYs ``100 Trying``,
and tells its twin, which INVITEs the Refer-To URI (osid kept) through the service; the service bridges it
to the callee, which answers at once; the twin reports the 200 back, the dialog SIPp NOTIFYs it, the
service BYEs the first dialog and ends the command; the twin then hangs its call up (BYE relayed to the
callee), so every SIPp call ends and SIPp's counts are exact. A service running more than T1 (500 ms)
behind retransmits; the dialog scenario takes the REFER and ACK retransmissions that then come while it
waits for the 200 to its first NOTIFY (seen at 400/s), any other stray message fails that SIPp call (and
so, usually, the command: SIPp never hangs up a call it answered, so the service waits for the final
NOTIFY until ``--refer-notify-timeout``, 32 s, past ``--drain``).

The load client is this script's process (asyncio, uvloop when installed), pinned to CPU 1 unless
``--client-cpu -1``: ``--connections`` WebSocket connections (default one, no compression), requests
built in advance and sent round-robin on a fixed schedule (request i at t0 + i/rate; a late send does not
shift the next ones), no ``cmd_id`` given (the server makes one). It stamps ``time.time()`` just before
each send, on the response and on every notification. A command is completed when it ``Ended`` without
an ``Error``; a refused request, an ``Error`` (by code) or no ``Ended`` within ``--drain`` seconds after
the last send count as errors.

The first INVITE's time comes from a capture, not from SIPp's message log (SIPp stamps a message when
its loop reads it, and its log costs SIPp a write per message): a separate process (this module with
``--capture-invites``, pinned to CPU 1) opens an AF_PACKET socket on ``lo`` (root or CAP_NET_RAW), with a
classic BPF filter that keeps only incoming IPv4 UDP datagrams to the caller's dialog port whose payload
starts with ``INVI``, and reads the kernel's receive timestamp of each (SO_TIMESTAMPNS, the same
CLOCK_REALTIME as ``time.time()``). On loopback that is when the service's datagram is handed to the
receive path, i.e. the moment the INVITE is on the wire, before SIPp reads it. The Request-URI user
``alice-<n>`` names the command; the earliest INVITE per user counts (later ones are retransmissions).
Without the capture permission the INVITE columns read n/a.

Modes: by default one steady-rate latency run of ``--count`` commands (10,000) at ``--rate`` per second
(400, half the bridged-call headline); the bar is request -> first INVITE p99 under 5 ms. With
``--rates`` a throughput sweep instead (add ``--count`` to run the latency run first): ``rate * --seconds``
commands per step, stepping up until the first step that is not clean; the headline is the highest
clean rate. A step is clean when every command completed and no SIPp call failed or was left unfinished
(SIPp retransmissions are reported, not counted). ``--smoke``: 20 commands at 10/s (for the smoke test).

Per step: commands sent, completed, errors by kind, the achieved send rate, the completion rate (commands
completed over the time from the first send to the last ``Ended``: below the send rate when the service
falls behind, which a zero-error step can hide), request -> Started, request -> first INVITE and
request -> Ended in ms (p50, p99 nearest rank, max), the service's CPU (utime+stime
from /proc over the time from the first send to the last ``Ended``) and the load client's (its own
rusage), SIPp failed or unfinished calls and retransmissions; the JSON adds each CPU's busy share over
the step from /proc/stat (machine-wide: other processes included). Started and Ended are stamped by the
client, which shares CPU 1 with SIPp, so their tails include its scheduling delays; the first INVITE's
time is the kernel's and does not. A Markdown table to stdout; the raw per-command timestamps to
``benchmarks/results/api-<timestamp>.json``; the SIPp logs (screens, statistics, counts, errors), the
captures, the command lines and the service's stderr to ``benchmarks/results/api-<timestamp>/``. Every
process started is stopped at the end, also on Ctrl-C. Exit status 0 when it ran and reported.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import platform
import re
import resource
import shlex
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from benchmarks.calls import (
    HOST,
    PORT_RANGE,
    RESULTS,
    ROOT,
    SERVICE_CPU,
    SIPP_CPU,
    Scenarios,
    _raise_exit,
    _sipp_common,
    percentile,
)
from harness.ports import check_free_tcp, check_free_udp, wait_listening
from harness.processes import Processes, exited_within
from harness.procfs import cpu_seconds, cpu_times, is_listening
from harness.service import call_api_argv
from harness.sip_probe import wait_answering
from harness.sipp_stats import SippSide, read_side, sipp_version

CALLER_USER = "alice"
CALLEE_USER = "bob"
BAR_MS = 5.0
WS_PATH = "/call-api"
#: The scenarios, for ``calls._sipp_common`` (only their file names matter there).
SCENARIOS_API = Scenarios("api", "CallStart", uac="bench_api_transferee_call", uas="bench_api_transferee_dialog",
                          rtd="setup", stock=False)
CALLEE_SCENARIO = "bench_uas"


# -- ports -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Phone:
    """One SIPp process: its role, scenario and ports (SIP, control, media; SIPp also binds media + 2)."""

    role: str
    scenario: str
    sip: int
    control: int
    media: int


@dataclass(frozen=True)
class Ports:
    """Every port of a run, derived from one base."""

    service: int
    ws: int
    probe: int
    twin_cmd: int
    caller: Phone
    twin: Phone
    callee: Phone

    @classmethod
    def from_base(cls, base: int) -> Ports:
        return cls(service=base + 80, ws=base + 59, probe=base + 81, twin_cmd=base + 90,
                   caller=Phone("caller", SCENARIOS_API.uas, base + 61, base + 71, base + 30),
                   twin=Phone("caller-new-call", SCENARIOS_API.uac, base + 62, base + 72, base + 34),
                   callee=Phone("callee", CALLEE_SCENARIO, base + 63, base + 73, base + 38))

    @property
    def phones(self) -> tuple[Phone, Phone, Phone]:
        return self.caller, self.twin, self.callee

    def udp(self) -> list[int]:
        return [self.service, self.probe, *(p for ph in self.phones for p in (ph.sip, ph.control, ph.media,
                                                                                ph.media + 2))]

    def tcp(self) -> list[int]:
        return [self.ws, self.twin_cmd]


# -- the INVITE capture (a process of its own) -------------------------------------------------------


ETH_P_IP = 0x0800
SO_ATTACH_FILTER = 26
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SO_RCVBUFFORCE = 33
PACKET_OUTGOING = 4
SNAPLEN = 192
INVITE_USER = re.compile(rb"INVITE sip:" + CALLER_USER.encode() + rb"-(\d+)@")


def _invite_filter(port: int) -> list[tuple[int, int, int, int]]:
    """Classic BPF on a SOCK_DGRAM packet socket (offset 0 is the IPv4 header): incoming, UDP, not a
    fragment tail, destination ``port``, payload starting with ``INVI``; the first SNAPLEN bytes."""
    drop = 12
    return [
        (0x20, 0, 0, 0xFFFFF000 + 4),            # 0: A = pkttype (SKF_AD_OFF + SKF_AD_PKTTYPE)
        (0x15, drop - 2, 0, PACKET_OUTGOING),    # 1: the sender's copy: drop
        (0x30, 0, 0, 9),                         # 2: A = IP protocol
        (0x15, 0, drop - 4, socket.IPPROTO_UDP),  # 3
        (0x28, 0, 0, 6),                         # 4: A = flags and fragment offset
        (0x45, drop - 6, 0, 0x1FFF),             # 5: a fragment after the first: drop
        (0xB1, 0, 0, 0),                         # 6: X = IP header length
        (0x48, 0, 0, 2),                         # 7: A = UDP destination port
        (0x15, 0, drop - 9, port),               # 8
        (0x40, 0, 0, 8),                         # 9: A = first four payload bytes
        (0x15, 0, drop - 11, int.from_bytes(b"INVI", "big")),  # 10
        (0x06, 0, 0, SNAPLEN),                   # 11: accept
        (0x06, 0, 0, 0),                         # 12: drop
    ]


def capture_main(port: int, out: Path) -> int:
    """Write ``<kernel receive time in ns> <n>`` for every INVITE to alice-<n> sent to ``port`` on ``lo``,
    until SIGTERM; the first line is ``# ready`` once the socket is set up, or ``# error ...``."""
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, _raise_exit)
    with open(out, "w") as f:
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
            program = b"".join(struct.pack("HBBI", *insn) for insn in _invite_filter(port))
            buf = ctypes.create_string_buffer(program)
            fprog = struct.pack("HL", len(program) // 8, ctypes.addressof(buf))
            sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
            sock.bind(("lo", 0))
        except OSError as exc:
            f.write(f"# error {exc}\n")
            return 1
        f.write("# ready\n")
        f.flush()
        ancillary = socket.CMSG_SPACE(16)
        with contextlib.suppress(SystemExit, KeyboardInterrupt):
            while True:
                data, anc, _flags, _addr = sock.recvmsg(SNAPLEN, ancillary)
                stamp = next((struct.unpack("qq", d[:16]) for level, kind, d in anc
                              if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS), None)
                if stamp is None or len(data) < 20:
                    continue
                found = INVITE_USER.match(data, (data[0] & 0x0F) * 4 + 8)
                if found:
                    f.write(f"{stamp[0] * 1_000_000_000 + stamp[1]} {int(found.group(1))}\n")
    return 0


def start_capture(procs: Processes, port: int, out: Path, stderr: IO[bytes]) -> subprocess.Popen[bytes] | None:
    """The capture process on CPU 1, once its socket is ready; None (with the reason in ``out``) when it
    cannot capture."""
    proc = procs.start(["taskset", "-c", str(SIPP_CPU), sys.executable, "-m", "benchmarks.api",
                        "--capture-invites", str(port), "--capture-out", str(out)], cwd=ROOT, stderr=stderr)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        head = out.read_text(errors="replace") if out.exists() else ""
        if head.startswith("# ready"):
            return proc
        if head.startswith("# error") or proc.poll() is not None:
            break
        time.sleep(0.02)
    procs.stop(proc)
    return None


def read_capture(path: Path) -> tuple[dict[int, float], int]:
    """The earliest INVITE time per caller number, and how many INVITEs were captured in all."""
    first: dict[int, float] = {}
    total = 0
    if not path.exists():
        return first, total
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        ns, n = (int(v) for v in line.split())
        total += 1
        t = ns / 1e9
        if n not in first or t < first[n]:
            first[n] = t
    return first, total


# -- the service -------------------------------------------------------------------------------------


def service_command(args: argparse.Namespace, ports: Ports) -> list[str]:
    return call_api_argv(["--sip-listen", f"{HOST}:{ports.service}", "--sip-transport", "udp",
                            "--ws-host", HOST, "--ws-port", str(ports.ws), "--log-level", "WARNING"], cpu=SERVICE_CPU)


def start_service(procs: Processes, args: argparse.Namespace, ports: Ports,
                  stderr: IO[bytes]) -> subprocess.Popen[bytes]:
    """The service on CPU 0, once it answers an OPTIONS with a 200 and its WebSocket port listens."""
    proc = procs.start(service_command(args, ports), cwd=ROOT, env=dict(os.environ, CALL_API_LOOP=args.loop),
                       stderr=stderr)
    wait_answering(proc, ports.probe, ports.service, "the service", stderr.name,
                   also=lambda: is_listening(ports.ws, "tcp"))
    return proc


def sipp_command(args: argparse.Namespace, ports: Ports, phone: Phone, workdir: Path, count: int) -> list[str]:
    cmd = [*_sipp_common(SCENARIOS_API, phone.scenario, workdir, phone.sip, phone.control, phone.media),
           "-m", str(count)]
    if args.trace_msg:
        cmd += ["-trace_msg", "-message_file", str(workdir / f"{phone.scenario}_messages.log")]
    if phone is ports.twin:
        cmd += ["-3pcc", f"{HOST}:{ports.twin_cmd}", f"{HOST}:{ports.service}"]
    elif phone is ports.caller:
        cmd += ["-3pcc", f"{HOST}:{ports.twin_cmd}"]
    return cmd


# -- the load client ---------------------------------------------------------------------------------


@dataclass
class Command:
    """One CallStart: what was sent and every time stamp (``time.time()``; ``invite`` from the capture)."""

    n: int
    conn: int
    request_id: int
    text: str
    sent: float | None = None
    started: float | None = None
    cmd_id: str | None = None
    refused: dict[str, Any] | None = None
    events: list[tuple[float, str]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    ended: float | None = None
    callid: str | None = None
    invite: float | None = None

    @property
    def outcome(self) -> str:
        if self.sent is None:
            return "not sent"
        if self.refused is not None:
            return f"refused {self.refused.get('code')}"
        if self.error is not None:
            return f"Error {self.error.get('code')}"
        if self.started is None:
            return "no response"
        if self.ended is None:
            return "no Ended"
        return "completed"

    def as_json(self) -> dict[str, Any]:
        return {"n": self.n, "conn": self.conn, "cmd_id": self.cmd_id, "outcome": self.outcome,
                "sent": self.sent, "started": self.started, "invite": self.invite, "ended": self.ended,
                "callid": self.callid, "events": self.events, "error": self.error, "refused": self.refused}


class Client:
    """The WebSocket side of a step: sends the commands on schedule and files what comes back."""

    def __init__(self, commands: list[Command]) -> None:
        self.commands = commands
        self.by_id = {c.request_id: c for c in commands}
        self.by_cmd: dict[str, Command] = {}
        self.open = len(commands)
        self.all_done = asyncio.Event()
        self.strays: list[str] = []

    def _finish(self, cmd: Command) -> None:
        self.open -= 1
        if self.open == 0:
            self.all_done.set()

    def on_message(self, raw: str | bytes, now: float) -> None:
        msg = json.loads(raw)
        if "id" in msg:
            cmd = self.by_id.get(msg["id"])
            if cmd is None:
                self.strays.append(str(raw)[:200])
                return
            cmd.started = now
            if "error" in msg:
                cmd.refused = msg["error"]
                self._finish(cmd)
            else:
                cmd.cmd_id = msg["result"]["cmd_id"]
                self.by_cmd[cmd.cmd_id] = cmd
            return
        params = msg.get("params", {})
        cmd = self.by_cmd.get(params.get("cmd_id", ""))
        if cmd is None:
            self.strays.append(str(raw)[:200])
            return
        method = msg.get("method")
        if method == "Event":
            cmd.events.append((now, str(params.get("data"))))
            if cmd.callid is None:
                cmd.callid = params.get("callid")
        elif method == "Error":
            cmd.events.append((now, "Error"))
            cmd.error = {"code": params.get("code"), "message": params.get("message")}
        elif method == "Ended":
            cmd.events.append((now, "Ended"))
            cmd.ended = now
            self._finish(cmd)

    async def _read(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                self.on_message(raw, time.time())

    async def run(self, url: str, connections: int, rate: float, drain: float) -> tuple[float, float]:
        """Send every command at its time, then wait up to ``drain`` seconds after the last send for the
        last ``Ended``; the time (``time.time()``) of the first send and of the end of the wait."""
        conns = [await connect(url, compression=None, ping_interval=None, max_size=None)
                 for _ in range(connections)]
        readers = [asyncio.create_task(self._read(ws)) for ws in conns]
        loop = asyncio.get_running_loop()
        first = time.time()
        try:
            t0 = loop.time() + 0.02
            for i, cmd in enumerate(self.commands):
                delay = t0 + i / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                cmd.sent = time.time()
                if i == 0:
                    first = cmd.sent
                try:
                    await conns[cmd.conn].send(cmd.text)
                except ConnectionClosed:
                    cmd.sent = None
                    break
            self.open -= sum(1 for c in self.commands if c.sent is None)
            if self.open <= 0:
                self.all_done.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.all_done.wait(), drain)
            return first, time.time()
        finally:
            for ws in conns:
                with contextlib.suppress(Exception):
                    await ws.close()
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)


def _run_async(coro: Coroutine[Any, Any, tuple[float, float]]) -> tuple[float, float]:
    try:
        import uvloop  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return asyncio.run(coro)
    result: tuple[float, float] = uvloop.run(coro)
    return result


# -- one step ----------------------------------------------------------------------------------------


def _busy_pct(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> dict[str, float]:
    return {cpu: round(100 * (after[cpu][0] - b[0]) / max(1, after[cpu][1] - b[1]), 1)
            for cpu, b in before.items() if cpu in after}


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _latency(values: list[float]) -> dict[str, Any]:
    ms = [v * 1000 for v in values]
    return {"n": len(ms), "p50": percentile(ms, 50), "p99": percentile(ms, 99), "max": max(ms) if ms else None}


def _stop_phone(procs: Processes, proc: subprocess.Popen[bytes], wait: float) -> int:
    """Let SIPp finish its ``-m`` calls, else stop it softly (SIGUSR1: no new calls, exit when the
    running ones end), and kill it after 5 s."""
    exited_within(proc, wait)
    return procs.stop(proc, signal.SIGUSR1, grace=5.0)


def run_step(procs: Processes, args: argparse.Namespace, ports: Ports, service: subprocess.Popen[bytes],
             kind: str, rate: int, count: int, first_n: int, logdir: Path) -> dict[str, Any]:
    """``count`` CallStart commands at ``rate`` per second against fresh SIPp phones and a fresh capture."""
    workdir = logdir / f"{kind}-{rate}"
    workdir.mkdir(parents=True, exist_ok=True)
    caller_uri = f"sip:{CALLER_USER}-{{n}}@{HOST}:{ports.caller.sip}"
    callee_uri = f"sip:{CALLEE_USER}@{HOST}:{ports.callee.sip}"
    commands = [
        Command(n, i % args.connections, n, json.dumps(
            {"jsonrpc": "2.0", "method": "CallStart", "id": n,
             "params": {"caller": caller_uri.format(n=n), "callee": callee_uri}}, separators=(",", ":")))
        for i, n in enumerate(range(first_n, first_n + count))]
    cmds = {ph.role: sipp_command(args, ports, ph, workdir, count) for ph in ports.phones}
    (workdir / "commands.txt").write_text("".join(shlex.join(c) + "\n" for c in cmds.values()))
    capture_path = workdir / "invites.txt"
    status: dict[str, int | None] = {}
    with contextlib.ExitStack() as stack:
        errs = {ph.role: stack.enter_context(open(workdir / f"{ph.scenario}.stderr", "wb")) for ph in ports.phones}
        cap_err = stack.enter_context(open(workdir / "capture.stderr", "wb"))
        capture = start_capture(procs, ports.caller.sip, capture_path, cap_err)
        running = {}
        for ph in (ports.callee, ports.twin, ports.caller):
            running[ph.role] = proc = procs.start(cmds[ph.role], cwd=workdir, stderr=errs[ph.role])
            if ph is ports.twin:
                wait_listening(ports.twin_cmd, "tcp", proc, "SIPp (caller, new-call side)")
            wait_listening(ph.sip, "udp", proc, f"SIPp ({ph.role})")
        cpu0, client0, busy0 = cpu_seconds(service.pid), _self_cpu(), cpu_times()
        client = Client(commands)
        url = f"ws://{HOST}:{ports.ws}{WS_PATH}"
        first, waited = _run_async(client.run(url, args.connections, rate, args.drain))
        cpu1 = cpu_seconds(service.pid) if service.poll() is None else cpu0
        usage = StepUsage(cpu1 - cpu0, _self_cpu() - client0, _busy_pct(busy0, cpu_times()))
        # the twin's calls end last (its BYE after the dialog's "done"); give each SIPp a moment
        for ph in (ports.twin, ports.caller, ports.callee):
            status[ph.role] = _stop_phone(procs, running[ph.role], 5.0 if ph is ports.twin else 1.0)
        if capture is not None:
            procs.stop(capture)
    invites, invites_total = read_capture(capture_path)
    for cmd in commands:
        cmd.invite = invites.get(cmd.n)
    sides = {ph.role: read_side(ph.role, ph.scenario, workdir, status[ph.role])[0] for ph in ports.phones}
    return summarize_step(kind, rate, count, commands, client.strays, first, waited, usage, sides,
                          capture is not None, invites_total, workdir)


def _sipp_unclean(side: SippSide, count: int) -> int:
    """Failed calls, plus calls SIPp took or placed and never finished, plus calls never placed."""
    return side.failed + max(0, count - side.successful - side.failed)


@dataclass(frozen=True)
class StepUsage:
    """CPU over a step: the service's and the load client's seconds, and each CPU's busy % machine-wide
    (other processes on the machine included)."""

    service: float
    client: float
    busy_pct: dict[str, float]


def summarize_step(kind: str, rate: int, count: int, commands: list[Command], strays: list[str], first: float,
                   waited: float, usage: StepUsage, sides: dict[str, SippSide], captured: bool, invites_total: int,
                   workdir: Path) -> dict[str, Any]:
    sent = [c for c in commands if c.sent is not None]
    outcomes = Counter(c.outcome for c in commands)
    errors = {k: v for k, v in outcomes.items() if k != "completed"}
    last_end = max((c.ended for c in commands if c.ended is not None), default=waited)
    wall = max(1e-9, (last_end if not errors else waited) - first)
    send_span = (sent[-1].sent or 0.0) - (sent[0].sent or 0.0) if len(sent) > 1 else 0.0
    started = [c.started - c.sent for c in sent if c.started is not None and c.sent is not None and not c.refused]
    invite = [c.invite - c.sent for c in sent if c.invite is not None and c.sent is not None]
    ended = [c.ended - c.sent for c in sent if c.ended is not None and c.sent is not None]
    sipp_failed = {role: _sipp_unclean(side, count if sent else 0) for role, side in sides.items()}
    retrans = {role: side.retransmissions for role, side in sides.items()}
    messages = Counter(f"{c.outcome}: {c.error.get('message')}" for c in commands if c.error)
    invite_ms = _latency(invite) if captured else None
    step: dict[str, Any] = {
        "kind": kind, "rate": rate, "planned": count, "sent": len(sent), "completed": outcomes.get("completed", 0),
        "errors": errors, "error_messages": dict(messages.most_common(10)), "strays": strays[:20],
        "send_rate": (len(sent) - 1) / send_span if send_span > 0 else None, "wall_seconds": wall,
        "completed_rate": outcomes.get("completed", 0) / max(1e-9, last_end - first),
        "service_cpu": usage.service, "service_cpu_pct": 100 * usage.service / wall,
        "client_cpu": usage.client, "client_cpu_pct": 100 * usage.client / max(1e-9, waited - first),
        "cpu_busy_pct": usage.busy_pct,
        "started_ms": _latency(started), "invite_ms": invite_ms,
        "ended_ms": _latency(ended), "invite_capture": captured, "invites_captured": invites_total,
        "invite_missing": sum(1 for c in sent if c.invite is None) if captured else None,
        "sipp_failed": sipp_failed, "sipp_retransmissions": retrans,
        "sipp": {role: {**asdict(side), "retransmissions": side.retransmissions, "problems": side.problems()}
                 for role, side in sides.items()},
        "logs": _show(workdir), "commands": [c.as_json() for c in commands],
    }
    step["clean"] = bool(sent) and not errors and not any(sipp_failed.values())
    invite_p99 = invite_ms["p99"] if invite_ms else None
    step["bar_met"] = None if invite_p99 is None else invite_p99 < BAR_MS
    return step


# -- report ------------------------------------------------------------------------------------------


HEADER = ("| run | rate/s | sent | completed | errors | sent/s | completed/s | req→Started ms p50 / p99 / max "
          "| req→first INVITE ms p50 / p99 / max | req→Ended ms p50 / p99 | service CPU % | client CPU % "
          "| SIPp failed | SIPp retrans | INVITE p99 < 5 ms |\n"
          "|---|---:|---:|---:|---|---:|---:|---|---|---|---:|---:|---:|---:|---|")


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def row(step: dict[str, Any]) -> str:
    errors = sum(step["errors"].values())
    err_text = "0" if not errors else f"{errors} (" + ", ".join(f"{k}: {v}" for k, v in step["errors"].items()) + ")"
    s, i, e = step["started_ms"], step["invite_ms"], step["ended_ms"]
    inv = "n/a (no capture)" if i is None else f"{_f(i['p50'])} / {_f(i['p99'])} / {_f(i['max'])}"
    if i is not None and step["invite_missing"]:
        inv += f" ({step['invite_missing']} not seen)"
    bar = {None: "n/a", True: "met", False: "not met"}[step["bar_met"]]
    send_rate = "-" if step["send_rate"] is None else f"{step['send_rate']:.1f}"
    return (f"| {step['kind']} | {step['rate']} | {step['sent']} | {step['completed']} | {err_text} | {send_rate} "
            f"| {step['completed_rate']:.1f} "
            f"| {_f(s['p50'])} / {_f(s['p99'])} / {_f(s['max'])} | {inv} | {_f(e['p50'])} / {_f(e['p99'])} "
            f"| {step['service_cpu_pct']:.0f} | {step['client_cpu_pct']:.0f} | {sum(step['sipp_failed'].values())} "
            f"| {sum(step['sipp_retransmissions'].values())} | {bar} |")


def notes(step: dict[str, Any]) -> list[str]:
    out = []
    where = f"{step['kind']} {step['rate']}/s"
    for message, n in step["error_messages"].items():
        out.append(f"  - {where}: {n} x {message}")
    for role, side in step["sipp"].items():
        bits = []
        if step["sipp_failed"][role]:
            bits.append(f"{step['sipp_failed'][role]} failed or unfinished of {side['calls']} calls")
        bits += side["problems"]
        if bits:
            out.append(f"  - {where} SIPp {role} (exit {side['exit_status']}): " + "; ".join(bits))
    if step["strays"]:
        out.append(f"  - {where}: {len(step['strays'])} message(s) for no command of ours, first: {step['strays'][0]}")
    return out


def _show(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def _rates(text: str) -> list[int]:
    rates = [int(r) for r in text.split(",") if r.strip()]
    if not rates or any(r <= 0 for r in rates):
        raise ValueError(f"no rates or a rate not above 0: {text!r}")
    return rates


def _plan(args: argparse.Namespace) -> list[tuple[str, int, int]]:
    """(kind, rate, commands) of every step, in order; throughput steps stop at the first unclean one."""
    plan: list[tuple[str, int, int]] = []
    if args.count:
        plan.append(("latency", args.rate, args.count))
    for rate in args.rate_list:
        plan.append(("throughput", rate, max(1, round(rate * args.seconds))))
    return plan


def run(procs: Processes, args: argparse.Namespace, ports: Ports, logdir: Path, report: dict[str, Any]) -> None:
    print(HEADER, flush=True)
    with open(logdir / "service.stderr", "wb") as err:
        service = start_service(procs, args, ports, err)
        try:
            n = 1
            for i, (kind, rate, count) in enumerate(_plan(args)):
                if i:
                    time.sleep(args.pause)
                step = run_step(procs, args, ports, service, kind, rate, count, n, logdir)
                n += count
                report["steps"].append(step)
                print(row(step), flush=True)
                if service.poll() is not None:
                    report["stopped"] = f"the service exited with status {service.returncode} during {kind} {rate}/s"
                    break
                if kind == "throughput" and not step["clean"]:
                    report["stopped"] = f"first unclean throughput step at {rate}/s"
                    break
        finally:
            report["service_exit_status"] = procs.stop(service, signal.SIGTERM, grace=10.0)


def summary(args: argparse.Namespace, report: dict[str, Any]) -> list[str]:
    lines = []
    for step in report["steps"]:
        if step["kind"] == "latency":
            p99 = step["invite_ms"]["p99"] if step["invite_ms"] else None
            verdict = {None: "n/a (no capture)", True: "met", False: "not met"}[step["bar_met"]]
            lines.append(f"bar: request→first INVITE p99 < {BAR_MS:g} ms at {step['rate']}/s over {step['sent']} "
                         f"commands: {verdict} (p99 {_f(p99)} ms)")
    sweep = [s for s in report["steps"] if s["kind"] == "throughput"]
    if sweep:
        clean = [s["rate"] for s in sweep if s["clean"]]
        top = sweep[-1]["clean"] and sweep[-1]["rate"] == args.rate_list[-1]
        head = f"{'>=' if top else ''}{max(clean)}/s" if clean else "no clean step"
        report["headline"] = max(clean) if clean else None
        lines.append(f"headline: highest CallStart rate with every command completed and no SIPp call failed: {head}")
        if clean:
            best = max((s for s in sweep if s["clean"]), key=lambda s: s["completed_rate"])
            slow = best["completed_rate"] < 0.95 * best["rate"]
            behind = ": below the rate sent, the service fell behind" if slow else ""
            lines.append(f"  commands completed per second (first send to last Ended), best clean step: "
                         f"{best['completed_rate']:.0f}/s at {best['rate']}/s (req→Ended p99 "
                         f"{_f(best['ended_ms']['p99'])} ms){behind}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=None,
                        help="commands in the steady-rate latency run (default 10000; 0 skips it; with --rates "
                             "it is skipped unless given)")
    parser.add_argument("--rate", type=int, default=400, help="CallStart per second of the latency run (default 400)")
    parser.add_argument("--rates", default="", help="comma-separated CallStart rates of a throughput sweep, stepped "
                                                    "up until the first unclean step, e.g. 100,200,400,600,800")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each throughput step (default 10)")
    parser.add_argument("--drain", type=float, default=15.0,
                        help="seconds after the last send to wait for the last Ended (default 15)")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between steps (default 2)")
    parser.add_argument("--connections", type=int, default=1, help="WebSocket connections, used round-robin")
    parser.add_argument("--loop", default="uvloop", help="the service's event loop (CALL_API_LOOP, default uvloop)")
    parser.add_argument("--client-cpu", type=int, default=SIPP_CPU,
                        help=f"CPU to pin the load client to (default {SIPP_CPU}, with SIPp; -1: not pinned)")
    parser.add_argument("--trace-msg", action="store_true", help="also keep SIPp's message logs (costly at rate)")
    parser.add_argument("--base-port", type=int, default=16200,
                        help="ports used: base .. base+99 (default 16200)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the JSON and the logs")
    parser.add_argument("--smoke", action="store_true", help="a quick check: 20 commands at 10/s, no sweep")
    parser.add_argument("--capture-invites", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--capture-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.capture_invites is not None:
        return capture_main(args.capture_invites, args.capture_out)
    if args.smoke:
        args.count, args.rate, args.rates, args.drain = 20, 10, "", 5.0
    try:
        args.rate_list = _rates(args.rates) if args.rates else []
    except ValueError as exc:
        parser.error(str(exc))
    if args.count is None:
        args.count = 0 if args.rate_list else 10_000
    if args.count < 0 or args.rate <= 0 or args.connections < 1 or (not args.count and not args.rate_list):
        parser.error("nothing to run, or a count, rate or connection number out of range")
    ports = Ports.from_base(args.base_port)
    every = [*ports.udp(), *ports.tcp()]
    if any(p not in PORT_RANGE for p in every) or len(set(every)) != len(every):
        parser.error(f"ports must be distinct and within {PORT_RANGE.start}-{PORT_RANGE.stop - 1}: {every}")

    check_free_udp(ports.udp())
    check_free_tcp(ports.tcp())
    if args.client_cpu >= 0:
        os.sched_setaffinity(0, {args.client_cpu})
    stamp = time.strftime("%Y%m%d-%H%M%S")
    args.results.mkdir(parents=True, exist_ok=True)
    logdir = args.results / f"api-{stamp}"
    logdir.mkdir()
    out_json = args.results / f"api-{stamp}.json"
    command = shlex.join([Path(sys.executable).name, "-m", "benchmarks.api", *sys.argv[1:]])
    report: dict[str, Any] = {
        "command": command, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": {"count": args.count, "rate": args.rate, "rates": args.rate_list, "seconds": args.seconds,
                     "drain": args.drain, "connections": args.connections, "loop": args.loop,
                     "service_cpu": SERVICE_CPU, "sipp_cpu": SIPP_CPU,
                     "client_cpu": args.client_cpu if args.client_cpu >= 0 else None, "transport": "udp",
                     "ports": asdict(ports), "bar_ms": BAR_MS, "smoke": args.smoke,
                     "service_command": shlex.join(service_command(args, ports))},
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "sipp": sipp_version(),
                    "cpus": os.cpu_count()},
        "logs": _show(logdir), "steps": [], "stopped": None, "headline": None,
    }

    procs = Processes()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_exit)
    print(f"# CallStart over WebSocket JSON-RPC, SIPp phones answering at once, no proxy ({args.loop})")
    print(f"# service on CPU {SERVICE_CPU}, SIPp and the capture on CPU {SIPP_CPU}, load client "
          + (f"on CPU {args.client_cpu}" if args.client_cpu >= 0 else "unpinned")
          + f", {args.connections} connection(s); {report['machine']['sipp']}")
    print(f"# command: {command}")
    print(f"# SIPp logs, captures and the service's stderr: {_show(logdir)}/\n", flush=True)
    status = 0
    try:
        run(procs, args, ports, logdir, report)
    except (KeyboardInterrupt, SystemExit) as exc:
        print(f"\ninterrupted ({type(exc).__name__}): stopping every process", file=sys.stderr)
        report["stopped"] = f"interrupted ({type(exc).__name__})"
        status = 130
    except (RuntimeError, OSError, InvalidHandshake) as exc:
        print(f"\nfailed: {exc}", file=sys.stderr)
        report["stopped"] = f"failed: {exc}"
        status = 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # let the children be stopped in order
        procs.stop_all()
        lines = summary(args, report)
        out_json.write_text(json.dumps(report, indent=1) + "\n")

    print()
    for line in lines:
        print(line)
    if report["stopped"]:
        print(f"stopped: {report['stopped']}")
    for step in report["steps"]:
        for line in notes(step):
            print(line)
    print(f"\nraw numbers: {_show(out_json)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
