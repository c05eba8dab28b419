"""Bad TLS refused cleanly, a thousand times (issue 16): the service as a process with a TLS listener that asks
for client certificates, on uvloop and on plain asyncio.

Incoming: 1,000 bad clients at the TLS port, mixed (plain-text SIP, a certificate from a CA not trusted, an
expired certificate, no certificate, a partial ClientHello and then silence, a reset mid-handshake), each
refused with its own log line, while a good TLS client and a stream of UDP calls (SIPp caller -> service ->
SIPp callee) go on. Outgoing: SIPp calls whose Request-URI sends the service over TLS to servers it must
refuse (a certificate for another name, expired, from a CA not trusted) get 503 and one WARNING line each.
After all of it the service holds as many descriptors as before (:data:`FD_SLACK`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.kamailio import PortMap
from harness.ports import LOOPBACK
from harness.procfs import open_fds
from harness.service import ServiceFactory, ServiceProcess
from harness.sipp import Sipp, SippLauncher, assert_all_ok, wait_all
from tests.certs import Authority, Issued

pytestmark = [pytest.mark.system, pytest.mark.timeout(240)]

#: How many bad clients of each kind (1,000 in all).
BAD_CLIENTS = {"plain": 200, "untrusted": 150, "expired": 150, "nocert": 150, "stall": 150, "reset": 200}
#: Bad clients at once.
BATCH = 50
#: The service's handshake timeout: a stalled client is cut off after it.
HANDSHAKE_TIMEOUT = 0.5
#: Descriptors the service may hold above its count before the bad clients: the first TLS refusal of each kind
#: was already made before the count (warm-up), so what OpenSSL or the loop open lazily is in it; the slack
#: covers a connection still closing when the count is read again (the check retries for 10 s) and a
#: descriptor the loop opens on its own (uvloop's or the resolver's), none of which grows with the clients.
FD_SLACK = 2

#: The service's log line for each refusal, as a pattern (``tls:127.0.0.1:PORT`` is the peer).
INCOMING_LINES = {
    "plain": r"INFO call_api\.io: TLS handshake with tls:127\.0\.0\.1:\d+ refused: the peer does not speak TLS "
             r"\(WRONG_VERSION_NUMBER\): plain text on the TLS port\?",
    "untrusted": r"INFO call_api\.io: TLS handshake with tls:127\.0\.0\.1:\d+ refused: certificate not trusted: "
                 r"unable to get local issuer certificate",
    "expired": r"INFO call_api\.io: TLS handshake with tls:127\.0\.0\.1:\d+ refused: certificate not trusted: "
               r"certificate has expired",
    "nocert": r"INFO call_api\.io: TLS handshake with tls:127\.0\.0\.1:\d+ refused: no client certificate, and one is "
              r"required \(sip\.tls_verify_client\)",
    "stall": rf"INFO call_api\.io: TLS handshake with tls:127\.0\.0\.1:\d+ refused: no handshake within "
             rf"{HANDSHAKE_TIMEOUT:g} s",
    "reset": r"INFO call_api\.io: TLS handshake with tls:127\.0\.0\.1:\d+ refused: the peer reset the connection "
             r"mid-handshake",
}
#: Calls placed to each bad TLS server.
OUTGOING_CALLS = 3


@dataclass(frozen=True)
class Pki:
    """The service's certificates and the bad ones."""

    authority: Authority
    service: Issued
    good_client: Issued
    untrusted_client: Issued
    expired_client: Issued
    wrong_name_server: Issued
    expired_server: Issued
    untrusted_server: Issued

    @classmethod
    def make(cls, folder: Path) -> Pki:
        authority = Authority(folder / "pki")
        stranger = Authority(folder / "stranger", "stranger")
        names = [LOOPBACK, "localhost"]
        return cls(authority, authority.issue("service", names), authority.issue("phone", names),
                   stranger.issue("stranger-phone", names), authority.issue("old-phone", names, expired=True),
                   authority.issue("wrong-name", ["wrong.example.com"]),
                   authority.issue("old-server", names, expired=True), stranger.issue("stranger-server", names))

    def client(self, issued: Issued | None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.authority.ca))
        if issued is not None:
            context.load_cert_chain(str(issued.cert), str(issued.key))
        return context


def options(n: int, port: int) -> bytes:
    return (f"OPTIONS sip:{LOOPBACK} SIP/2.0\r\nVia: SIP/2.0/TLS {LOOPBACK}:{port};branch=z9hG4bK-refusals-{n}\r\n"
            f"From: <sip:probe@{LOOPBACK}>;tag=p{n}\r\nTo: <sip:{LOOPBACK}>\r\nCall-ID: refusals-{n}\r\n"
            "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()


#: The first bytes of a TLS ClientHello record (handshake, TLS 1.0 record version, then a length never filled).
PARTIAL_CLIENT_HELLO = b"\x16\x03\x01\x02\x00\x01"


async def bad_client(kind: str, port: int, pki: Pki, n: int) -> bytes:
    """One bad client of ``kind``; returns what it got back that is not TLS refusing it (b"" when refused)."""
    if kind in ("plain", "stall", "reset"):
        reader, writer = await asyncio.open_connection(LOOPBACK, port)
        try:
            if kind == "plain":
                writer.write(options(n, port))
            elif kind == "stall":
                writer.write(PARTIAL_CLIENT_HELLO)
            else:
                # A full ClientHello is sent by a real handshake; here the first bytes, then RST (SO_LINGER 0).
                writer.write(PARTIAL_CLIENT_HELLO)
                await writer.drain()
                await asyncio.sleep(0.05)
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return b""
            await writer.drain()
            data = await asyncio.wait_for(reader.read(), HANDSHAKE_TIMEOUT + 10)
            # A plain-text client may read the TLS alert the server sends as it refuses: bytes, not SIP.
            return b"" if not data.startswith(b"SIP/2.0") else data
        except (ConnectionError, OSError):
            return b""
        finally:
            writer.close()
    issued = {"untrusted": pki.untrusted_client, "expired": pki.expired_client, "nocert": None}[kind]
    try:
        reader, writer = await asyncio.open_connection(LOOPBACK, port, ssl=pki.client(issued),
                                                       server_hostname=LOOPBACK)
    except (ssl.SSLError, ConnectionError, OSError):
        return b""
    try:
        # TLS 1.3: the client's handshake ends before the server has checked its certificate; the server's
        # alert arrives on the first read.
        writer.write(options(n, port))
        return await asyncio.wait_for(reader.read(), 10)
    except (ssl.SSLError, ConnectionError, OSError):
        return b""
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


class GoodClient:
    """A TLS client with a trusted certificate on one connection, asking OPTIONS now and then."""

    def __init__(self, port: int, pki: Pki) -> None:
        self.port = port
        self.pki = pki
        self.answered = 0
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(
            LOOPBACK, self.port, ssl=self.pki.client(self.pki.good_client), server_hostname=LOOPBACK)

    async def ask(self, n: int) -> None:
        assert self.reader is not None and self.writer is not None
        self.writer.write(options(10_000 + n, self.port))
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"SIP/2.0 200 "), head
        length = re.search(rb"\r\nContent-Length: *(\d+)", head, re.IGNORECASE)
        if length and int(length[1]):
            await self.reader.readexactly(int(length[1]))
        self.answered += 1

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()


async def fresh_good_client(port: int, pki: Pki, n: int) -> None:
    """A new connection by a good client between the bad ones: accepted and answered."""
    client = GoodClient(port, pki)
    await client.connect()
    try:
        await client.ask(n)
    finally:
        await client.close()


async def storm(port: int, pki: Pki, kinds: list[str], good: GoodClient) -> list[bytes]:
    """``kinds`` in batches of :data:`BATCH` at once; the good client asks between batches, and a new good
    connection is made each batch. Returns what any bad client got back (nothing, when all were refused)."""
    leaked: list[bytes] = []
    for start in range(0, len(kinds), BATCH):
        batch = kinds[start:start + BATCH]
        answers = await asyncio.gather(*(bad_client(kind, port, pki, start + i) for i, kind in enumerate(batch)),
                                       fresh_good_client(port, pki, start))
        leaked += [a for a in answers[:-1] if a]
        await good.ask(start)
    return leaked


def mixed_kinds() -> list[str]:
    """The 1,000 bad clients, interleaved so every batch holds each kind."""
    queues = {kind: [kind] * count for kind, count in BAD_CLIENTS.items()}
    out: list[str] = []
    while any(queues.values()):
        for queue in queues.values():
            if queue:
                out.append(queue.pop())
    return out


# -- the bad TLS servers the service calls ---------------------------------------------------------------


class BadTlsServer:
    """A TLS server on a thread presenting ``issued``; it accepts, tries the handshake, closes."""

    def __init__(self, issued: Issued, port: int) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(issued.cert), str(issued.key))
        self.sock = socket.create_server((LOOPBACK, port))
        self.sock.settimeout(0.2)
        self.port = port
        self.handshakes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with client:
                client.settimeout(5)
                with contextlib.suppress(ssl.SSLError, OSError):
                    self.handshakes += 1
                    self.context.wrap_socket(client, server_side=True).close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@contextlib.contextmanager
def bad_servers(pki: Pki, base: int) -> Iterator[dict[str, BadTlsServer]]:
    servers: dict[str, BadTlsServer] = {}
    try:
        for i, (kind, issued) in enumerate((("wrong-name", pki.wrong_name_server), ("expired", pki.expired_server),
                                            ("untrusted", pki.untrusted_server))):
            servers[kind] = BadTlsServer(issued, base + i)
        yield servers
    finally:
        for server in servers.values():
            server.close()


#: The service's WARNING line for each bad server (``{port}`` its port).
OUTGOING_LINES = {
    "wrong-name": r"WARNING call_api\.io: TLS to tls:127\.0\.0\.1:{port} \(as 127\.0\.0\.1\) refused: certificate "
                  r"not trusted: IP address mismatch, certificate is not valid for '127\.0\.0\.1'\.",
    "expired": r"WARNING call_api\.io: TLS to tls:127\.0\.0\.1:{port} \(as 127\.0\.0\.1\) refused: certificate not "
               r"trusted: certificate has expired",
    "untrusted": r"WARNING call_api\.io: TLS to tls:127\.0\.0\.1:{port} \(as 127\.0\.0\.1\) refused: certificate "
                 r"not trusted: unable to get local issuer certificate",
}


# -- the test --------------------------------------------------------------------------------------------


def wait_fds(service: ServiceProcess, limit: int, timeout: float = 10.0) -> int:
    assert service.proc is not None
    deadline = time.monotonic() + timeout
    while (count := open_fds(service.proc.pid)) > limit and time.monotonic() < deadline:
        time.sleep(0.1)
    return count


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_a_thousand_bad_tls_clients_and_three_bad_tls_servers_are_refused_cleanly(
        tmp_path: Path, rig_ports: PortMap, call_api: ServiceFactory, sipp: SippLauncher,
        monkeypatch: pytest.MonkeyPatch, loop: str) -> None:
    pki = Pki.make(tmp_path)
    tls_port = rig_ports.proxy + 50
    monkeypatch.setenv("CALL_API_LOOP", loop)
    service = call_api("--sip-tls-listen", f"{LOOPBACK}:{tls_port}", "--sip-tls-cert", str(pki.service.cert),
                       "--sip-tls-key", str(pki.service.key), "--sip-tls-ca", str(pki.authority.ca),
                       "--sip-tls-verify-client", "true", "--sip-tls-handshake-timeout", f"{HANDSHAKE_TIMEOUT:g}",
                       "--log-level", "INFO")
    assert service.proc is not None
    bob = rig_ports.phones["bob"]
    callee = sipp("bench_uas.xml", phone="bob", calls=10_000, timeout_s=300)
    # The UDP call stream (caller -> service -> callee, routed by the Request-URI): 10 calls/s, each held 0.5 s.
    stream = sipp("bench_uac_target.xml", phone="alice", call="bench", remote=f"{LOOPBACK}:{rig_ports.service}",
                  calls=300, rate=10, pause_ms=500, timeout_s=200,
                  keys={"callee_host": LOOPBACK, "callee_port": str(bob)})
    kinds = mixed_kinds()
    assert len(kinds) == 1000

    async def incoming() -> tuple[list[bytes], int, int]:
        good = GoodClient(tls_port, pki)
        await good.connect()
        await good.ask(-1)
        # Warm-up: one refusal of each kind before the count, so what is opened once and kept is in it.
        warm = await asyncio.gather(*(bad_client(kind, tls_port, pki, -2 - i) for i, kind in enumerate(BAD_CLIENTS)))
        assert not any(warm)
        await asyncio.sleep(HANDSHAKE_TIMEOUT + 0.5)
        baseline = await asyncio.to_thread(wait_fds, service, 0, 1.0)
        leaked = await storm(tls_port, pki, kinds, good)
        after = await asyncio.to_thread(wait_fds, service, baseline + FD_SLACK)
        await good.ask(-3)
        await good.close()
        return leaked, baseline, after

    with bad_servers(pki, tls_port + 1) as servers:
        leaked, baseline, after = asyncio.run(incoming())
        refused: list[Sipp] = []
        for kind, server in servers.items():
            refused.append(sipp("uac_invite_tls_refused.xml", phone="carol", call="bench",
                                remote=f"{LOOPBACK}:{rig_ports.service}", calls=OUTGOING_CALLS, timeout_s=30,
                                keys={"callee_host": LOOPBACK, "callee_port": str(server.port)}))
            assert_all_ok(wait_all(refused[-1:], 40))
            assert server.handshakes >= 1, kind
    assert not leaked, leaked[:3]
    assert after <= baseline + FD_SLACK, (baseline, after)
    assert_all_ok(wait_all([stream], 200))
    callee.stop()

    log = service.log_tail(limit=1 << 24)
    for kind, pattern in INCOMING_LINES.items():
        found = len(re.findall(pattern, log))
        # + 1: the warm-up's
        assert found == BAD_CLIENTS[kind] + 1, (kind, found, log[-3000:])
    for kind, server in servers.items():
        found = len(re.findall(OUTGOING_LINES[kind].format(port=server.port), log))
        assert found >= 1, (kind, log[-3000:])
    refusals = [line for line in log.splitlines() if " refused: " in line]
    assert len(refusals) == 1000 + len(BAD_CLIENTS) + sum(
        len(re.findall(OUTGOING_LINES[kind].format(port=server.port), log)) for kind, server in servers.items())
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]
