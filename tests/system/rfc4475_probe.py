"""Send the RFC 4475 torture messages to a running service over UDP and report what came back.

Run inside the network namespace that also runs the service (see test_rfc4475_udp.py): it listens where
RFC 3261 section 18.2.2 sends the answers (UDP and TCP on every sent-by port of the corpus, 5060 when
absent), sends each message from 127.0.0.1:5060, collects the responses by Call-ID, and prints one JSON
object: {file: [statuses...]}, plus "__options__" for a final OPTIONS.
"""

from __future__ import annotations

import json
import re
import select
import socket
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "rfc4475"
SERVICE = ("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 5080)
WAIT = 0.6
#: Seconds to wait before the second pass: more than Timer J (64*T1) of the service under test.
SECOND_PASS_WAIT = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0


def ports_of_corpus() -> set[int]:
    ports = {5060}
    for path in DATA.glob("*.dat"):
        for m in re.finditer(rb"(?im)^(?:via|v)\s*:\s*SIP\s*/\s*2\.0\s*/\s*\w+\s+[^\s;:,]+:(\d+)", path.read_bytes()):
            ports.add(int(m.group(1)))
    return ports


def call_id_of(data: bytes) -> str:
    m = re.search(rb"(?im)^(?:call-id|i)\s*:\s*(\S+)", data)
    return m.group(1).decode("latin-1") if m else ""


def status_of(data: bytes) -> int | None:
    m = re.match(rb"SIP/2\.0 (\d{3})", data)
    return int(m.group(1)) if m else None


def split_stream(buffers: dict[socket.socket, bytes], sock: socket.socket) -> list[bytes]:
    """Whole messages framed by Content-Length from a connection's buffer (RFC 3261 section 18.3)."""
    out = []
    buf = buffers[sock].lstrip(b"\r\n")
    while (end := buf.find(b"\r\n\r\n")) >= 0:
        m = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", buf[:end])
        total = end + 4 + (int(m.group(1)) if m else 0)
        if len(buf) < total:
            break
        out.append(buf[:total])
        buf = buf[total:].lstrip(b"\r\n")
    buffers[sock] = buf
    return out


def send_order() -> tuple[list[Path], list[Path]]:
    """Two passes: the second holds messages whose server transaction key (RFC 3261 section 17.2.3) repeats
    one of the first pass; sent earlier, they would rightly be absorbed as retransmissions."""
    from b2bua.errors import ParseError
    from b2bua.sip.message import Request
    from b2bua.sip.parser import parse_message
    from b2bua.sip.transaction_matching import server_key

    first: list[Path] = []
    second: list[Path] = []
    keys: set[object] = set()
    for path in sorted(DATA.glob("*.dat")):
        try:
            msg = parse_message(path.read_bytes(), check=False)
            key = server_key(msg) if isinstance(msg, Request) else path
        except ParseError:
            key = path
        (second if key in keys else first).append(path)
        keys.add(key)
    return first, second


def main() -> None:
    udp: list[socket.socket] = []
    tcp: list[socket.socket] = []
    for port in sorted(ports_of_corpus()):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", port))
        udp.append(u)
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind(("127.0.0.1", port))
        t.listen(16)
        tcp.append(t)
    sender = next(u for u in udp if u.getsockname()[1] == 5060)
    conns: list[socket.socket] = []
    buffers: dict[socket.socket, bytes] = {}
    seen: dict[str, list[int]] = {}

    def pump(until: float, final_for: str | None = None) -> None:
        """Collect responses until ``until``, or shortly after a final response for ``final_for``."""
        while True:
            left = until - time.monotonic()
            if final_for is not None and any(s >= 200 for s in seen.get(final_for, ())):
                until = min(until, time.monotonic() + 0.05)
                final_for = None
                continue
            if left <= 0:
                return
            ready, _, _ = select.select(udp + tcp + conns, [], [], left)
            for sock in ready:
                if sock in tcp:
                    conn, _ = sock.accept()
                    conns.append(conn)
                    continue
                if sock in conns:
                    chunk = sock.recv(65535)
                    if not chunk:
                        conns.remove(sock)
                        continue
                    buffers[sock] = buffers.get(sock, b"") + chunk
                    messages = split_stream(buffers, sock)
                else:
                    messages = [sock.recvfrom(65535)[0]]
                for data in messages:
                    status = status_of(data)
                    if status is not None:
                        seen.setdefault(call_id_of(data), []).append(status)

    # wait for the service
    deadline = time.monotonic() + 10
    options = ("OPTIONS sip:svc@{h}:{p} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK{b}\r\n"
               "From: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:svc@127.0.0.1>\r\nCall-ID: {c}\r\nCSeq: 1 OPTIONS\r\n"
               "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
    n = 0
    while time.monotonic() < deadline:
        n += 1
        sender.sendto(options.format(h=SERVICE[0], p=SERVICE[1], b=f"ready{n}", c=f"ready-{n}").encode(), SERVICE)
        pump(time.monotonic() + 0.2)
        if any(k.startswith("ready-") for k in seen):
            break
    else:
        print(json.dumps({"error": "service not ready"}))
        return
    results: dict[str, list[int]] = {}
    first, second = send_order()
    for path in first + second:
        if path is (second or [None])[0]:
            pump(time.monotonic() + SECOND_PASS_WAIT)
        data = path.read_bytes()
        cid = call_id_of(data)
        seen.pop(cid, None)
        sender.sendto(data, SERVICE)
        pump(time.monotonic() + WAIT, cid)
        results[path.name] = seen.get(cid, [])
    sender.sendto(options.format(h=SERVICE[0], p=SERVICE[1], b="after", c="after-all").encode(), SERVICE)
    pump(time.monotonic() + 1.0)
    results["__options__"] = seen.get("after-all", [])
    print(json.dumps(results))


if __name__ == "__main__":
    main()
