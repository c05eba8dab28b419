"""TCP in the shell: framing on real connections, keep-alives, connection reuse both ways, failures, idle close."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from b2bua.errors import TlsFileError
from b2bua.io.shell import SipShell
from b2bua.io.tls import TlsSettings, client_context
from b2bua.sip.address import Destination
from tests.certs import Authority, Issued

from . import shell_fakes
from .shell_fakes import FakeCore, Run, echo, have_ipv6, sip, until

#: The loop fixture of the shell tests: each test runs under plain asyncio and under uvloop.
run = shell_fakes.run
LOCAL = "127.0.0.1"


async def connect(shell: SipShell, index: int = 0) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int]:
    bound = shell.bound[index]
    reader, writer = await asyncio.open_connection(bound.host, bound.port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer, int(writer.get_extra_info("sockname")[1])


async def read_eof(reader: asyncio.StreamReader, timeout: float = 3.0) -> bytes:
    """Everything up to the end of the stream; fails if the shell does not close it in time."""
    return await asyncio.wait_for(reader.read(), timeout)


class Listener:
    """A TCP server on loopback that counts the connections it accepts and keeps what they send."""

    def __init__(self) -> None:
        self.accepts = 0
        self.data = b""
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, LOCAL, 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepts += 1
        self.writers.append(writer)
        while chunk := await reader.read(65536):
            self.data += chunk

    def close(self) -> None:
        for writer in self.writers:
            writer.close()
        if self.server is not None:
            self.server.close()


def free_port() -> int:
    """A loopback port nobody listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind((LOCAL, 0))
        return int(sock.getsockname()[1])


def test_several_messages_in_one_segment(run: Run[None]) -> None:
    async def scenario() -> None:
        core = FakeCore()
        async with SipShell(core, [("tcp", LOCAL, 0)]) as shell:
            _, writer, port = await connect(shell)
            writer.write(sip(1) + sip(2, b"body\r\n\r\n") + b"\r\n" + sip(3))
            await until(lambda: len(core.received) == 3, what="three messages")
            assert [data for data, _, _ in core.received] == [sip(1), sip(2, b"body\r\n\r\n"), sip(3)]
            assert {source for _, source, _ in core.received} == {Destination("tcp", LOCAL, port)}
            writer.close()

    run(scenario)


def test_byte_by_byte(run: Run[None]) -> None:
    async def scenario() -> None:
        core = FakeCore()
        async with SipShell(core, [("tcp", LOCAL, 0)]) as shell:
            _, writer, _ = await connect(shell)
            stream = sip(1, b"abc") + sip(2)
            for i in range(len(stream)):
                writer.write(stream[i : i + 1])
                await writer.drain()
                if i % 8 == 0:
                    await asyncio.sleep(0.001)
            await until(lambda: len(core.received) == 2, what="two messages")
            assert [data for data, _, _ in core.received] == [sip(1, b"abc"), sip(2)]
            writer.close()

    run(scenario)


def test_keepalive_ping_gets_one_crlf_pong(run: Run[None]) -> None:
    async def scenario() -> None:
        core = FakeCore(echo)
        async with SipShell(core, [("tcp", LOCAL, 0)]) as shell:
            reader, writer, _ = await connect(shell)
            writer.write(b"\r\n\r\n")
            assert await asyncio.wait_for(reader.readexactly(2), 3) == b"\r\n"
            writer.write(b"\r\n")
            await asyncio.sleep(0.05)
            writer.write(b"\r\n" + sip(1))
            assert await asyncio.wait_for(reader.readexactly(2 + len(sip(1)) + 3), 3) == b"\r\nre:" + sip(1)
            assert [data for data, _, _ in core.received] == [sip(1)]
            writer.close()

    run(scenario)


def test_response_goes_back_on_the_connection_of_the_request(run: Run[None]) -> None:
    async def scenario() -> None:
        core = FakeCore(echo)
        async with SipShell(core, [("tcp", LOCAL, 0)]) as shell:
            reader, writer, port = await connect(shell)
            reader2, writer2, port2 = await connect(shell)
            writer.write(sip(1))
            writer2.write(sip(2))
            assert await asyncio.wait_for(reader.readexactly(len(sip(1)) + 3), 3) == b"re:" + sip(1)
            assert await asyncio.wait_for(reader2.readexactly(len(sip(2)) + 3), 3) == b"re:" + sip(2)
            # A request the application sends later to the same peer uses that connection too.
            core.send(b"later", Destination("tcp", LOCAL, port))
            shell.poke()
            assert await asyncio.wait_for(reader.readexactly(5), 3) == b"later"
            assert shell.connections == 2
            assert core.errors == []
            writer.close()
            writer2.close()
            assert port != port2

    run(scenario)


def test_outgoing_connection_is_reused(run: Run[None]) -> None:
    async def scenario() -> None:
        core = FakeCore()
        listener = Listener()
        port = await listener.start()
        async with SipShell(core, [("tcp", LOCAL, 0)]) as shell:
            target = Destination("tcp", LOCAL, port)
            core.send(sip(1), target)
            core.send(sip(2), target)
            shell.poke()
            core.send(sip(3), target)
            shell.poke()
            await until(lambda: len(listener.data) == len(sip(1) + sip(2) + sip(3)), what="three messages")
            core.send(sip(4), target)
            shell.poke()
            await until(lambda: listener.data.endswith(sip(4)), what="the fourth message")
            assert listener.data == sip(1) + sip(2) + sip(3) + sip(4)
            assert listener.accepts == 1
            assert shell.connections == 1
            # What the peer sends back on that connection reaches the core, from the peer's address.
            listener.writers[0].write(sip(9))
            await until(lambda: core.received, what="the peer's message")
            assert core.received[0][:2] == (sip(9), target)
        listener.close()

    run(scenario)


def test_connect_failure_is_one_transport_error(run: Run[None]) -> None:
    async def scenario() -> None:
        core = FakeCore()
        async with SipShell(core, [("tcp", LOCAL, 0)]) as shell:
            target = Destination("tcp", LOCAL, free_port())
            core.send(sip(1), target)
            core.send(sip(2), target)
            shell.poke()
            await until(lambda: core.errors, what="the transport error")
            await asyncio.sleep(0.05)
            assert [d for d, _ in core.errors] == [target]
            assert shell.connections == 0
            # The next send tries again.
            core.send(sip(3), target)
            shell.poke()
            await until(lambda: len(core.errors) == 2, what="the second transport error")

    run(scenario)


def test_connect_failure_report_is_flushed(run: Run[None]) -> None:
    async def scenario() -> None:
        listener = Listener()
        port = await listener.start()
        target = Destination("tcp", LOCAL, free_port())

        class Failover(FakeCore):
            def transport_error(self, destination: Destination, now: float) -> None:
                super().transport_error(destination, now)
                self.send(b"failover", Destination("tcp", LOCAL, port))

        core = Failover()
        async with SipShell(core, [("tcp", LOCAL, 0)]) as shell:
            core.send(sip(1), target)
            shell.poke()
            await until(lambda: listener.data == b"failover", what="what the core sent after the error")
        listener.close()

    run(scenario)


def test_idle_connections_are_closed(run: Run[None]) -> None:
    async def scenario() -> None:
        core = FakeCore(echo)
        listener = Listener()
        port = await listener.start()
        async with SipShell(core, [("tcp", LOCAL, 0)], tcp_idle_timeout=0.2) as shell:
            reader, writer, _ = await connect(shell)
            core.send(sip(1), Destination("tcp", LOCAL, port))
            shell.poke()
            await until(lambda: shell.connections == 2 and listener.accepts == 1, what="both connections")
            start = asyncio.get_running_loop().time()
            # Traffic keeps a connection open past the timeout.
            for n in range(6):
                await asyncio.sleep(0.05)
                writer.write(sip(n))
            assert await read_eof(reader) == b"".join(b"re:" + sip(n) for n in range(6))
            assert asyncio.get_running_loop().time() - start >= 0.5
            await until(lambda: shell.connections == 0, what="the outgoing connection to close")
            writer.close()
        listener.close()

    run(scenario)


def test_garbage_closes_only_that_connection(run: Run[None]) -> None:
    async def scenario() -> None:
        core = FakeCore(echo)
        async with SipShell(core, [("tcp", LOCAL, 0)], max_message_size=500) as shell:
            good_reader, good, _ = await connect(shell)
            big_reader, big, _ = await connect(shell)
            bad_reader, bad, _ = await connect(shell)
            big.write(b"X" * 600)
            bad.write(sip(1) + b"OPTIONS sip:x SIP/2.0\r\nCall-ID: 1\r\n\r\n" + sip(2))
            assert await read_eof(big_reader) == b""
            # The message framed before the error is answered, then the connection closes.
            assert await read_eof(bad_reader) == b"re:" + sip(1)
            good.write(sip(3))
            assert await asyncio.wait_for(good_reader.readexactly(len(sip(3)) + 3), 3) == b"re:" + sip(3)
            assert shell.connections == 1
            assert [data for data, _, _ in core.received] == [sip(1), sip(3)]
            for writer in (good, big, bad):
                writer.close()

    run(scenario)


def test_tcp_ipv6(run: Run[None]) -> None:
    if not have_ipv6():
        pytest.skip("no IPv6 loopback")

    async def scenario() -> None:
        core = FakeCore(echo)
        async with SipShell(core, [("tcp", "::1", 0)]) as shell:
            reader, writer, port = await connect(shell)
            writer.write(sip(6))
            assert await asyncio.wait_for(reader.readexactly(len(sip(6)) + 3), 3) == b"re:" + sip(6)
            assert core.received[0][1] == Destination("tcp", "::1", port)
            core.send(b"again", Destination("tcp", "[::1]", port))
            shell.poke()
            assert await asyncio.wait_for(reader.readexactly(5), 3) == b"again"
            assert shell.connections == 1
            writer.close()

    run(scenario)


def test_a_connection_reset_before_accept_is_dropped_quietly(run: Run[None], caplog: pytest.LogCaptureFixture) -> None:
    """Issue 17: connect, RST (SO_LINGER 0) and close without a byte, as a port scanner does; the
    accept then finds no peer name. Nothing is logged above DEBUG and the shell goes on serving."""
    async def scenario() -> None:
        core = FakeCore(echo)
        async with SipShell(core, [("tcp", "127.0.0.1", 0)]) as shell:
            port = shell.bound[0].port
            for _ in range(50):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.connect(("127.0.0.1", port))
                sock.close()
            await asyncio.sleep(0.2)
            reader, writer, _ = await connect(shell)
            writer.write(sip(1))
            await until(lambda: core.received, what="a message after the resets")
            writer.close()
        assert [r.getMessage() for r in caplog.records if r.levelno > logging.INFO] == []

    run(scenario)


# -- TLS (RFC 3261 section 26): the same framing over ssl, certificates made by the test ---------------------------


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    authority = Authority(tmp_path)
    return Pki(authority, authority.issue("sip", ["localhost", LOCAL]), tmp_path)


@dataclass(frozen=True)
class Pki:
    authority: Authority
    server: Issued
    folder: Path

    def settings(self, **kwargs: Any) -> TlsSettings:
        options: dict[str, Any] = {"cert": str(self.server.cert), "key": str(self.server.key),
                                   "ca": str(self.authority.ca), **kwargs}
        return TlsSettings(**options)

    def client(self, **kwargs: Any) -> ssl.SSLContext:
        return client_context(ca=str(self.authority.ca), **kwargs)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def tls_connect(shell: SipShell, pki: Pki, index: int = 0, **kwargs: Any,
                      ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int]:
    bound = shell.bound[index]
    reader, writer = await asyncio.open_connection(bound.host, bound.port, ssl=pki.client(**kwargs),
                                                   server_hostname="localhost")
    return reader, writer, int(writer.get_extra_info("sockname")[1])


def test_tls_listener_frames_and_answers_on_the_same_connection(run: Run[None], pki: Pki) -> None:
    async def scenario() -> None:
        core = FakeCore(echo)
        async with SipShell(core, [("tls", LOCAL, 0)], tls=pki.settings()) as shell:
            assert shell.bound[0].transport == "tls"
            reader, writer, port = await tls_connect(shell, pki)
            writer.write(sip(1) + sip(2)[:20])
            await writer.drain()
            writer.write(sip(2)[20:])
            assert await asyncio.wait_for(reader.readexactly(2 * len(sip(1)) + 6), 3) == b"re:" + sip(1) + b"re:" + \
                sip(2)
            assert {source for _, source, _ in core.received} == {Destination("tls", LOCAL, port)}
            core.send(b"later", Destination("tls", LOCAL, port))
            shell.poke()
            assert await asyncio.wait_for(reader.readexactly(5), 3) == b"later"
            assert shell.connections == 1 and core.errors == []
            writer.close()

    run(scenario)


def test_tls_outgoing_verifies_the_name_and_reuses_the_connection(run: Run[None], pki: Pki) -> None:
    async def scenario() -> None:
        server_core = FakeCore(echo)
        core = FakeCore()
        async with SipShell(server_core, [("tls", LOCAL, 0)], tls=pki.settings()) as server, \
                SipShell(core, [("udp", LOCAL, 0)], tls=TlsSettings(ca=str(pki.authority.ca))) as shell:
            port = server.bound[0].port
            for n in (1, 2):
                core.send(sip(n), Destination("tls", "localhost", port))
                shell.poke()
            await until(lambda: len(core.received) == 2, what="both echoes")
            assert [data for data, _, _ in core.received] == [b"re:" + sip(1), b"re:" + sip(2)]
            assert len(server_core.received) == 2 and len({s for _, s, _ in server_core.received}) == 1
            assert shell.connections == 1 and core.errors == []

    run(scenario)


@pytest.mark.parametrize(("name", "trusted", "reason"), [
    ("wrong.example.com", True, "Hostname mismatch"),
    ("localhost", False, "unable to get local issuer certificate"),
])
def test_tls_outgoing_to_a_wrong_name_or_untrusted_ca_is_a_transport_error(
        run: Run[None], pki: Pki, caplog: pytest.LogCaptureFixture, name: str, trusted: bool, reason: str) -> None:
    stranger = Authority(pki.folder / "stranger", "stranger")

    async def scenario() -> None:
        core = FakeCore()
        ca = pki.authority.ca if trusted else stranger.ca
        async with SipShell(FakeCore(), [("tls", LOCAL, 0)], tls=pki.settings()) as server, \
                SipShell(core, [("udp", LOCAL, 0)], tls=TlsSettings(ca=str(ca))) as shell:
            resolver_ip = LOCAL
            target = Destination("tls", name, server.bound[0].port)
            shell._literals[name] = (socket.AF_INET, resolver_ip)  # the name, pinned to loopback for the test
            core.send(sip(1), target)
            shell.poke()
            await until(lambda: core.errors, what="the transport error")
            assert [d for d, _ in core.errors] == [target]
            assert shell.connections == 0 and server.connections == 0

    with caplog.at_level(logging.INFO, logger="call_api.io"):
        run(scenario)
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert any(f"TLS to tls:{LOCAL}:" in line and f"(as {name}) refused: certificate not trusted" in line and
               reason in line for line in lines), lines


def test_tls_verification_off_accepts_any_certificate(run: Run[None], pki: Pki, caplog: pytest.LogCaptureFixture,
                                                       ) -> None:
    async def scenario() -> None:
        core = FakeCore()
        server_core = FakeCore()
        async with SipShell(server_core, [("tls", LOCAL, 0)], tls=pki.settings()) as server, \
                SipShell(core, [("udp", LOCAL, 0)], tls=TlsSettings(verify_server=False)) as shell:
            core.send(sip(1), Destination("tls", LOCAL, server.bound[0].port))
            shell.poke()
            await until(lambda: server_core.received, what="the message")
            assert core.errors == []

    with caplog.at_level(logging.WARNING, logger="call_api.io"):
        run(scenario)
    assert any("server certificates are NOT verified" in r.getMessage() for r in caplog.records)


def test_tls_client_certificates_when_asked_for(run: Run[None], pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    phone = pki.authority.issue("phone", ["phone.example.com"])

    async def scenario() -> None:
        core = FakeCore(echo)
        async with SipShell(core, [("tls", LOCAL, 0)], tls=pki.settings(verify_client=True)) as shell:
            reader, writer, _ = await tls_connect(shell, pki, cert=str(phone.cert), key=str(phone.key))
            writer.write(sip(1))
            assert await asyncio.wait_for(reader.readexactly(len(sip(1)) + 3), 3) == b"re:" + sip(1)
            writer.close()
            with contextlib.suppress(ssl.SSLError, ConnectionError, asyncio.IncompleteReadError):
                reader, writer, _ = await tls_connect(shell, pki)
                writer.write(sip(2))
                assert await asyncio.wait_for(reader.read(), 3) == b""
            await until(lambda: any("TLS handshake with" in r.getMessage() for r in caplog.records),
                        what="the log line")
            assert len(core.received) == 1

    with caplog.at_level(logging.INFO, logger="call_api.io"):
        run(scenario)
    assert [r.getMessage().split(" refused: ")[1] for r in caplog.records if "TLS handshake with" in r.getMessage()] \
        == ["no client certificate, and one is required (sip.tls_verify_client)"]


def test_bad_tls_clients_are_refused_with_a_log_line_and_leak_nothing(
        run: Run[None], pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    """Plain text on the TLS port, a client that stalls mid-handshake, one that hangs up at once: each refused
    with one log line, none disturbing a good client, no descriptor left open after a few hundred."""

    async def scenario() -> None:
        core = FakeCore(echo)
        async with SipShell(core, [("tls", LOCAL, 0)], tls=pki.settings(handshake_timeout=0.3)) as shell:
            port = shell.bound[0].port
            good_reader, good_writer, _ = await tls_connect(shell, pki)
            baseline = open_fds()
            for round_ in range(10):
                plain = [await asyncio.open_connection(LOCAL, port) for _ in range(20)]
                for _, writer in plain:
                    writer.write(sip(round_))
                stalled = [await asyncio.open_connection(LOCAL, port) for _ in range(5)]
                for _, writer in stalled:
                    writer.write(b"\x16\x03\x01\x00")  # the first bytes of a ClientHello, then nothing
                for reader, _ in plain + stalled:
                    assert await asyncio.wait_for(reader.read(), 5) is not None
                for _, writer in plain + stalled:
                    writer.close()
                good_writer.write(sip(100 + round_))
                assert await asyncio.wait_for(good_reader.readexactly(len(sip(100 + round_)) + 3), 3) == \
                    b"re:" + sip(100 + round_)
            await until(lambda: shell.connections == 1 and open_fds() <= baseline, timeout=5, what="descriptors")
            assert [data for data, _, _ in core.received] == [sip(100 + n) for n in range(10)]
            good_writer.close()

    with caplog.at_level(logging.INFO, logger="call_api.io"):
        run(scenario)
    refused = [r.getMessage() for r in caplog.records if r.getMessage().startswith("TLS handshake with tls:")]
    assert len(refused) == 250, len(refused)
    assert sum("no handshake within 0.3 s" in line for line in refused) == 50, refused[:3]
    assert sum("the peer does not speak TLS (WRONG_VERSION_NUMBER): plain text on the TLS port?" in line
               for line in refused) == 200, refused[:3]
    assert all(" refused: " in line for line in refused)


@pytest.mark.parametrize(("reset", "reason"), [
    (True, "the peer reset the connection mid-handshake"),
    (False, "the peer closed the connection mid-handshake"),
])
def test_a_client_that_resets_or_closes_mid_handshake_is_named_as_such(
        run: Run[None], pki: Pki, caplog: pytest.LogCaptureFixture, reset: bool, reason: str) -> None:
    """A partial ClientHello, then a TCP reset (or a FIN): the log line says so, not ``[Errno 104]`` or an
    OpenSSL EOF code, and the descriptor is closed."""

    async def scenario() -> None:
        async with SipShell(FakeCore(), [("tls", LOCAL, 0)], tls=pki.settings(handshake_timeout=5)) as shell:
            baseline = 0
            for n in range(6):
                if n == 1:
                    # After the first: uvloop opens /dev/null once, lazily, on a first connection.
                    await until(lambda: sum(reason in r.getMessage() for r in caplog.records) == 1, timeout=5,
                                what="the first log line")
                    baseline = open_fds()
                _, writer = await asyncio.open_connection(LOCAL, shell.bound[0].port)
                writer.write(b"\x16\x03\x01\x02\x00\x01")  # the first bytes of a ClientHello
                await writer.drain()
                await asyncio.sleep(0.05)
                if reset:
                    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                               struct.pack("ii", 1, 0))
                    writer.transport.abort()
                else:
                    writer.close()
            await until(lambda: sum(reason in r.getMessage() for r in caplog.records) == 6, timeout=5,
                        what="the log lines")
            await until(lambda: open_fds() <= baseline, timeout=5, what="descriptors")

    with caplog.at_level(logging.INFO, logger="call_api.io"):
        run(scenario)
    refused = [r.getMessage() for r in caplog.records if r.getMessage().startswith("TLS handshake with tls:")]
    assert len(refused) == 6 and all(line.endswith(f" refused: {reason}") for line in refused), refused


def test_tls_listener_without_a_certificate_cannot_start(run: Run[None], pki: Pki) -> None:
    async def scenario() -> None:
        shell = SipShell(FakeCore(), [("tls", LOCAL, 0)])
        with pytest.raises(TlsFileError, match="a TLS listener needs a certificate"):
            await shell.start()
        assert not shell.running
        missing = SipShell(FakeCore(), [("tls", LOCAL, 0)], tls=TlsSettings(cert=str(pki.folder / "x"), key="y"))
        with pytest.raises(OSError, match="no such file"):
            await missing.start()

    run(scenario)
