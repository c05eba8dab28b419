"""The network fuzzer (issue 17): seeded, mutated SIP over UDP and TCP and mutated WebSocket frames and
JSON-RPC requests against the running service, then the checks a VoIP engineer makes after a scanner
hit a box: it still answers OPTIONS over UDP and TCP, completes a real call (SIPp), its log holds no
traceback, its open file descriptors are back to where they were, and its RSS stops growing.

Corpus: the RFC 4475 torture messages (``/work/shared/conformance/rfc4475``, as ``tests/rfc4475.py``
loads them) and captures of our own flows (``tests/data/netfuzz/*.sip``: INVITE, 1xx, 200, ACK, hold
re-INVITE, BYE as a phone and the service sent them under the loss tests).  Half the time a message
gets a fresh Call-ID, branch and From tag before it is mutated, so it opens new transactions and calls
rather than only retransmitting old ones; its top Via always names the fuzzer's own socket, so answers
come back and are counted.  Mutations (each input gets one to three, by ``random.Random(seed)``): bit
flips, truncation, header duplication, huge values (up to 60 KB), CRLF games (bare LF, bare CR, CR/LF
inside a value, extra or missing blank lines), Content-Length lies, byte insertion and deletion, and
splicing two messages.

The service runs with its outbound proxy on a port where nothing listens while the fuzzer runs, so
what it forwards is refused by the kernel (ICMP) instead of reaching another process on this shared
machine; the real call afterwards starts a SIPp callee on that port.  ``--t1 0.1`` makes its
transactions end within 6.4 s (64*T1), so a settled RSS can be read within the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import socket
import struct
import time
from base64 import b64encode
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.kamailio import PortMap
from harness.ports import LOOPBACK
from harness.service import ServiceProcess
from harness.sip_probe import sip_options
from harness.sipp import SippLauncher
from tests import rfc4475

CAPTURES = Path(__file__).resolve().parents[1] / "data" / "netfuzz"
WS_PATH = "/call-api"
T1 = 0.1


def corpus() -> list[bytes]:
    """Every seed message: RFC 4475's, then our flows' captures."""
    return [t.data for t in rfc4475.load()] + [p.read_bytes() for p in sorted(CAPTURES.glob("*.sip"))]


_VIA = re.compile(rb"(?im)^(Via|v)[ \t]*:[ \t]*SIP/2\.0/[A-Za-z]+[ \t]+[^;\r\n]+")


def aim_at(message: bytes, transport: str, port: int) -> bytes:
    """``message`` with its top Via's sent-by naming the fuzzer's socket, so answers come back to it."""
    return _VIA.sub(lambda m: m[1] + f": SIP/2.0/{transport} {LOOPBACK}:{port}".encode(), message, count=1)


def freshen(message: bytes, rng: random.Random) -> bytes:
    """New Call-ID, branch and From tag: a new transaction (and for an INVITE, a new call)."""
    tag = f"{rng.getrandbits(48):012x}".encode()
    message = re.sub(rb"(?im)^(Call-ID|i)([ \t]*:[ \t]*)[^\r\n]*", lambda m: m[1] + m[2] + tag + b"@fuzz", message,
                     count=1)
    message = re.sub(rb"branch=[^;,\s]+", b"branch=z9hG4bK" + tag, message, count=1)
    return re.sub(rb"(?im)^((From|f)[ \t]*:[^\r\n]*;tag=)[^;\s]+", lambda m: m[1] + tag, message, count=1)


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n")


def _bit_flips(data: bytes, rng: random.Random, corpus: list[bytes]) -> bytes:
    buf = bytearray(data or b"\0")
    for _ in range(rng.randint(1, 8)):
        buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
    return bytes(buf)


def _truncate(data: bytes, rng: random.Random, corpus: list[bytes]) -> bytes:
    return data[:rng.randrange(len(data) + 1)]


def _duplicate_header(data: bytes, rng: random.Random, corpus: list[bytes]) -> bytes:
    lines = _lines(data)
    head = [i for i, line in enumerate(lines[1:], 1) if b":" in line]
    if not head:
        return data
    i = rng.choice(head)
    lines[i:i] = [lines[i]] * rng.choice([1, 2, 10, 200])
    return b"\r\n".join(lines)


def _huge_value(data: bytes, rng: random.Random, corpus: list[bytes]) -> bytes:
    lines = _lines(data)
    size = rng.choice([256, 4096, 20_000, 60_000])
    filler = rng.choice([b"a", b"\xff", b";x=", b",", b"<sip:", b"%", b"\"", b"9"]) * (size // 2)
    i = rng.randrange(len(lines))
    at = rng.randrange(len(lines[i]) + 1)
    lines[i] = lines[i][:at] + filler + lines[i][at:]
    return b"\r\n".join(lines)


def _crlf_games(data: bytes, rng: random.Random, corpus: list[bytes]) -> bytes:
    game = rng.randrange(6)
    if game == 0:
        return data.replace(b"\r\n", b"\n")
    if game == 1:
        return data.replace(b"\r\n", b"\r")
    if game == 2:
        at = rng.randrange(len(data) + 1)
        return data[:at] + rng.choice([b"\r\n", b"\r", b"\n", b"\r\n\r\n", b"\r\n "]) + data[at:]
    if game == 3:
        return b"\r\n" * rng.randint(1, 5) + data
    if game == 4:
        return data.replace(b"\r\n\r\n", b"\r\n", 1)
    return data + b"\r\n" * rng.randint(1, 4)


def _content_length(data: bytes, rng: random.Random, corpus: list[bytes]) -> bytes:
    value = rng.choice([b"0", b"-1", b"99999999999999999999", b"1", b"65536", b"abc", b"", b"4294967296"])
    return re.sub(rb"(?im)^(Content-Length|l)([ \t]*:[ \t]*)[^\r\n]*", lambda m: m[1] + m[2] + value, data, count=1)


def _insert_delete(data: bytes, rng: random.Random, corpus: list[bytes]) -> bytes:
    at = rng.randrange(len(data) + 1)
    if rng.random() < 0.5:
        return data[:at] + bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 16))) + data[at:]
    return data[:at] + data[at + rng.randint(1, 16):]


def _splice(data: bytes, rng: random.Random, corpus: list[bytes]) -> bytes:
    other = rng.choice(corpus)
    return data[:rng.randrange(len(data) + 1)] + other[rng.randrange(len(other) + 1):]


Mutation = Callable[[bytes, random.Random, list[bytes]], bytes]
MUTATIONS: dict[str, Mutation] = {
    "bit flips": _bit_flips, "truncation": _truncate, "header duplication": _duplicate_header,
    "huge value": _huge_value, "CRLF games": _crlf_games, "Content-Length": _content_length,
    "insert/delete": _insert_delete, "splice": _splice,
}


def mutate(data: bytes, rng: random.Random, corpus: list[bytes]) -> bytes:
    """One to three mutations of ``data``."""
    for _ in range(rng.randint(1, 3)):
        data = rng.choice(list(MUTATIONS.values()))(data, rng, corpus)
    return data


# -- the service's health ------------------------------------------------------------------------------------


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass
class NetFuzzReport:
    """What the fuzzer sent, what came back, and the verdicts."""

    seed: int
    sent: Counter[str] = field(default_factory=Counter)
    """Inputs by channel: ``udp``, ``tcp connections``, ``tcp messages``, ``ws frames``, ``ws raw``."""
    back: Counter[str] = field(default_factory=Counter)
    """What came back: SIP status codes over UDP, ``tcp bytes``, ``ws responses``, ``ws closed``."""
    ws_duplicate_ids: int = 0
    ws_missing: int = 0
    """JSON-RPC requests (still JSON objects with their own id after mutation) that got no answer."""
    """JSON-RPC responses carrying an id another response already carried (each request has its own)."""
    options_udp: int | None = None
    options_tcp: int | None = None
    api_answers: bool = False
    call_ok: bool = False
    call_report: str = ""
    tracebacks: list[str] = field(default_factory=list)
    fds_before: int = 0
    fds_after: int = 0
    rss_kb: list[tuple[str, int]] = field(default_factory=list)
    """(when, VmRSS) samples: start, during the run, after it settled."""
    seconds: float = 0.0

    @property
    def rss_settled(self) -> bool:
        """The last three samples (taken while the service is idle, 1 s apart) do not grow."""
        tail = [kb for _, kb in self.rss_kb[-3:]]
        return len(tail) == 3 and tail[2] <= tail[0]

    @property
    def ok(self) -> bool:
        return (self.options_udp == 200 and self.options_tcp == 200 and self.api_answers and self.call_ok
                and not self.tracebacks and self.fds_after == self.fds_before and self.rss_settled
                and self.ws_duplicate_ids == 0 and self.ws_missing == 0)

    def report(self) -> str:
        codes = sorted((k, v) for k, v in self.back.items() if k.isdigit())
        other = sorted((k, v) for k, v in self.back.items() if not k.isdigit())
        lines = [
            f"seed {self.seed}, {self.seconds:.1f} s",
            "sent: " + ", ".join(f"{v} {k}" for k, v in sorted(self.sent.items())),
            "SIP answers over UDP: " + (", ".join(f"{v} x {k}" for k, v in codes) or "none"),
            "other answers: " + (", ".join(f"{v} {k}" for k, v in other) or "none"),
            f"JSON-RPC requests unanswered: {self.ws_missing}; response ids answered twice: {self.ws_duplicate_ids}",
            f"afterwards: OPTIONS udp {self.options_udp}, tcp {self.options_tcp}; API answers: {self.api_answers}; "
            f"real call: {'completed' if self.call_ok else 'FAILED'}",
            f"tracebacks in the log: {len(self.tracebacks)}",
            f"open fds: {self.fds_before} before, {self.fds_after} after",
            "RSS KB: " + ", ".join(f"{when} {kb}" for when, kb in self.rss_kb),
            f"verdict: {'clean' if self.ok else 'FAILED'}",
        ]
        if not self.call_ok:
            lines.append(self.call_report)
        lines += self.tracebacks[:5]
        return "\n".join(lines)


# -- the channels --------------------------------------------------------------------------------------------


def _status(data: bytes) -> str:
    first = data.split(b"\r\n", 1)[0].split(b" ", 2)
    if len(first) >= 2 and first[0] == b"SIP/2.0" and first[1].isdigit():
        return first[1].decode()
    return "not a response"


def fuzz_udp(port: int, count: int, rng: random.Random, seeds: list[bytes], report: NetFuzzReport,
             rate: float) -> None:
    """``count`` mutated datagrams to the service's UDP port, at most ``rate`` per second."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.setblocking(False)
        own = sock.getsockname()[1]
        started = time.monotonic()
        for n in range(count):
            message = rng.choice(seeds)
            if rng.random() < 0.5:
                message = freshen(message, rng)
            data = mutate(aim_at(message, "UDP", own), rng, seeds)[:65_000]
            with contextlib.suppress(OSError):
                sock.sendto(data, (LOOPBACK, port))
                report.sent["udp"] += 1
            _drain_udp(sock, report)
            ahead = n / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            _drain_udp(sock, report)
            time.sleep(0.01)


def _drain_udp(sock: socket.socket, report: NetFuzzReport) -> None:
    while True:
        try:
            data = sock.recv(65_535)
        except (BlockingIOError, ConnectionRefusedError):
            return
        report.back[_status(data)] += 1


def fuzz_tcp(port: int, count: int, rng: random.Random, seeds: list[bytes], report: NetFuzzReport) -> None:
    """``count`` TCP connections: mutated messages in random chunks, some reset at once or half-way."""
    for _ in range(count):
        try:
            sock = socket.create_connection((LOOPBACK, port), timeout=1.0)
        except OSError:
            report.back["tcp connect failed"] += 1
            continue
        report.sent["tcp connections"] += 1
        with sock:
            own = sock.getsockname()[1]
            how = rng.random()
            if how < 0.1:  # connect and reset (issue 17, defect 3)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                continue
            stream = b"".join(mutate(aim_at(rng.choice(seeds), "TCP", own), rng, seeds)
                              for _ in range(rng.randint(1, 3)))
            report.sent["tcp messages"] += 1
            try:
                while stream:
                    cut = rng.randint(1, len(stream))
                    sock.sendall(stream[:cut])
                    stream = stream[cut:]
                if how < 0.2:  # reset after sending
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    continue
                sock.settimeout(0.05)
                with contextlib.suppress(TimeoutError):
                    while chunk := sock.recv(65_535):
                        report.back["tcp bytes"] += len(chunk)
            except OSError:
                report.back["tcp reset by the service"] += 1


_FRAMES = [
    {"jsonrpc": "2.0", "method": "CallHold", "params": {"callid": "c@x", "leg": "caller"}},
    {"jsonrpc": "2.0", "method": "CallEnd", "params": {"callid": "x\r\ny", "cmd_id": "t"}},
    {"jsonrpc": "2.0", "method": "CallStart", "params": {"caller": "sip:a@127.0.0.1:9", "callee": "sip:b@127.0.0.1:9"}},
    {"jsonrpc": "2.0", "method": "CallBlindTransfer", "params": {"callid": "c@x", "leg": "callee",
                                                                  "destination": "sip:c@x"}},
    {"jsonrpc": "2.0", "method": "CallAttendedTransfer",
     "params": {"callidA": "c@x", "legA": "caller", "callidB": "d@x", "legB": "callee"}},
    {"jsonrpc": "2.0", "method": "CallUnhold", "params": {"callid": "c@x", "leg": "callee"}},
]

_TEXTS = [json.dumps(frame).encode() for frame in _FRAMES]


def _ws_handshake(port: int) -> socket.socket:
    sock = socket.create_connection((LOOPBACK, port), timeout=2.0)
    key = b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {WS_PATH} HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("the API closed during the handshake")
        data += chunk
    if not data.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(f"no upgrade: {data[:80]!r}")
    return sock


def ws_frame(payload: bytes, opcode: int = 1, rng: random.Random | None = None) -> bytes:
    """A masked client frame (RFC 6455 section 5.2)."""
    mask = bytes(rng.getrandbits(8) for _ in range(4)) if rng else b"\0\0\0\0"
    size = len(payload)
    head = bytes([0x80 | opcode])
    if size < 126:
        head += bytes([0x80 | size])
    elif size < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", size)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", size)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _read_frames(sock: socket.socket, buffer: bytearray) -> list[tuple[int, bytes]]:
    """Whole server frames (unmasked) at the head of ``buffer``, removed from it."""
    frames = []
    while len(buffer) >= 2:
        size, at = buffer[1] & 0x7F, 2
        if size == 126:
            if len(buffer) < 4:
                break
            size, at = struct.unpack("!H", buffer[2:4])[0], 4
        elif size == 127:
            if len(buffer) < 10:
                break
            size, at = struct.unpack("!Q", buffer[2:10])[0], 10
        if len(buffer) < at + size:
            break
        frames.append((buffer[0] & 0x0F, bytes(buffer[at:at + size])))
        del buffer[:at + size]
    return frames


def fuzz_ws(port: int, count: int, rng: random.Random, report: NetFuzzReport, per_connection: int = 200) -> None:
    """``count`` frames: mostly mutated JSON-RPC requests (each with its own id) in text frames, nine in ten
    kept valid UTF-8 so they reach the JSON-RPC layer (the WebSocket layer closes on bad UTF-8, RFC 6455
    section 8.1); one in ten a mutated frame, which ends its connection.  A request that is still a JSON
    object with its id must get exactly one answer with that id (:attr:`NetFuzzReport.ws_missing`);
    no id may be answered more often than requests carrying it were sent (a mutation can turn one request's id
    into another's, and each of the two is owed its answer)."""
    seen_ids: set[object] = set()
    carried: Counter[object] = Counter()
    answered: Counter[object] = Counter()
    sent = 0
    while sent < count:
        try:
            sock = _ws_handshake(port)
        except OSError:
            report.back["ws handshake failed"] += 1
            sent += 1
            continue
        buffer = bytearray()
        expected: set[int] = set()
        open_ = True
        with sock:
            for _ in range(min(per_connection, count - sent)):
                sent += 1
                if rng.random() < 0.1:
                    frame = mutate(ws_frame(json.dumps(rng.choice(_FRAMES)).encode(), rng=rng), rng, _TEXTS)
                    report.sent["ws raw"] += 1
                    with contextlib.suppress(OSError):
                        sock.sendall(frame)
                    open_ = False  # the service may close now (RFC 6455 section 7.1.7): answers owed end
                    break
                request = dict(rng.choice(_FRAMES), id=sent)
                text = json.dumps(request).encode()
                if rng.random() < 0.8:
                    text = mutate(text, rng, _TEXTS)
                    if rng.random() < 0.9:
                        text = text.decode("utf-8", "replace").encode()
                with contextlib.suppress(ValueError, RecursionError):
                    parsed = json.loads(text)
                    if isinstance(parsed, dict) and parsed.get("id") == sent and type(parsed.get("id")) is int:
                        expected.add(sent)
                    for item in parsed if isinstance(parsed, list) else [parsed]:
                        if isinstance(item, dict) and isinstance(item.get("id"), (int, str)):
                            carried[item["id"]] += 1
                report.sent["ws frames"] += 1
                try:
                    sock.sendall(ws_frame(text, rng=rng))
                    open_ = _collect_ws(sock, buffer, report, seen_ids, answered, wait=False)
                except OSError:
                    open_ = False
                if not open_:
                    report.back["ws closed by the service"] += 1
                    break
            with contextlib.suppress(OSError):
                deadline = time.monotonic() + 2.0
                while open_ and expected - seen_ids and time.monotonic() < deadline:
                    open_ = _collect_ws(sock, buffer, report, seen_ids, answered, wait=True)
            if open_:
                report.ws_missing += len(expected - seen_ids)
    report.ws_duplicate_ids += sum(max(0, n - carried[ident]) for ident, n in answered.items())


def _collect_ws(sock: socket.socket, buffer: bytearray, report: NetFuzzReport, seen: set[object],
                answered: Counter[object], wait: bool) -> bool:
    """Read what the service sent; False once it closed the connection."""
    sock.settimeout(0.2 if wait else 0.0)
    while True:
        try:
            chunk = sock.recv(65_535)
        except (TimeoutError, BlockingIOError):
            return True
        if not chunk:
            return False
        buffer += chunk
        for opcode, payload in _read_frames(sock, buffer):
            if opcode == 8:
                report.back["ws close frames"] += 1
                return False
            report.back["ws responses"] += 1
            with contextlib.suppress(ValueError):
                answer = json.loads(payload)
                ident = answer.get("id") if isinstance(answer, dict) else None
                if ident is not None and ("result" in answer or "error" in answer):
                    answered[ident] += 1
                    seen.add(ident)


def api_answers(port: int) -> bool:
    """A clean request gets its one JSON-RPC answer: CallHold of an unknown call, refused with an error."""
    with _ws_handshake(port) as sock:
        sock.sendall(ws_frame(json.dumps({"jsonrpc": "2.0", "id": "probe", "method": "CallHold",
                                          "params": {"callid": "nobody@x", "leg": "caller"}}).encode()))
        buffer = bytearray()
        deadline = time.monotonic() + 3
        sock.settimeout(0.2)
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                buffer += sock.recv(65_535)
            for _, payload in _read_frames(sock, buffer):
                with contextlib.suppress(ValueError):
                    answer = json.loads(payload)
                    if isinstance(answer, dict) and answer.get("id") == "probe" and "error" in answer:
                        return True
    return False


# -- the run ------------------------------------------------------------------------------------------------


TCP_IDLE = 20.0
"""The service's TCP idle timeout in a fuzz run (300 s by default).  Fuzzed requests make the service open
connections of its own (a CallStart to ``transport=tcp`` at a loopback port, its own listener included):
they are not leaks, and are closed once idle this long, within the settle below, so the fd count
before and after compares what the fuzz leaked, not what the default keeps for five minutes (the
million-input run of 2026-12-05 ended with 18 fds for 16 before, under the default)."""


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def run(ports: PortMap, workdir: Path, *, datagrams: int, tcp_connections: int, ws_frames: int, seed: int = 1,
        rate: float = 1000.0, progress: Callable[[str], None] | None = None) -> NetFuzzReport:
    """Start the service, fuzz it on all three channels, then check it (see the module docstring)."""
    report = NetFuzzReport(seed)
    rng = random.Random(seed)
    seeds = corpus()
    callee_port = ports.port_of("bob")
    ws_port = free_tcp_port()
    workdir.mkdir(parents=True, exist_ok=True)
    service = ServiceProcess(["--sip-listen", f"{LOOPBACK}:{ports.service}", "--ws-host", LOOPBACK,
                              "--ws-port", str(ws_port), "--outbound-proxy", f"sip:{LOOPBACK}:{callee_port};lr",
                              "--t1", str(T1), "--tcp-idle-timeout", str(TCP_IDLE)], workdir / "call-api.log")
    service.start()
    assert service.proc is not None
    pid = service.proc.pid
    started = time.monotonic()
    sipp = SippLauncher(workdir / "sipp", ports)
    try:
        sip_options(ports.service, timeout=2)
        sip_options(ports.service, transport="tcp", timeout=2)
        time.sleep(0.5)
        report.fds_before = open_fds(pid)
        report.rss_kb.append(("start", rss_kb(pid)))
        steps = 10
        for step in range(steps):
            fuzz_udp(ports.service, datagrams // steps, rng, seeds, report, rate)
            fuzz_tcp(ports.service, tcp_connections // steps, rng, seeds, report)
            fuzz_ws(ws_port, ws_frames // steps, rng, report)
            report.rss_kb.append((f"{step + 1}/{steps}", rss_kb(pid)))
            if progress is not None:
                progress(f"{step + 1}/{steps}: sent {dict(report.sent)}; RSS {report.rss_kb[-1][1]} KB")
        # Settle: every transaction is over after 64*T1, every fuzzer connection is closed.
        deadline = time.monotonic() + 64 * T1 + TCP_IDLE * 1.25 + 10  # the idle sweep runs every TCP_IDLE/4
        while time.monotonic() < deadline and open_fds(pid) != report.fds_before:
            time.sleep(0.2)
        time.sleep(64 * T1)
        for n in range(3):
            report.rss_kb.append((f"idle {n + 1}", rss_kb(pid)))
            time.sleep(1.0)
        report.fds_after = open_fds(pid)
        report.options_udp = sip_options(ports.service, timeout=3)
        report.options_tcp = sip_options(ports.service, transport="tcp", timeout=3)
        report.api_answers = api_answers(ws_port)
        callee = sipp("bench_uas.xml", phone="bob", timeout_s=20)
        caller = sipp("bench_uac_target.xml", phone="alice", call="bench", remote=f"{LOOPBACK}:{ports.service}",
                      keys={"callee_host": LOOPBACK, "callee_port": str(callee_port)}, pause_ms=200, timeout_s=20)
        results = [caller.wait(30), callee.wait(30)]
        report.call_ok = all(result.ok for result in results)
        report.call_report = "\n".join(result.report(4) for result in results if not result.ok)
    finally:
        sipp.stop_all()
        service.stop()
        report.seconds = time.monotonic() - started
    log = service.log_path.read_text(errors="replace")
    report.tracebacks = [block[:2000] for block in log.split("Traceback (most recent call last):")[1:]]
    return report
