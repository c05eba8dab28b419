"""Tests for b2bua.io.udp: a datagram becomes one call into the core and one flush, its source a cached
:class:`Destination`; a core that raises loses that datagram only; the shell's own overload probes go to
their echo; one socket per address family sends (RFC 3261 section 18), on real loopback sockets."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from b2bua.io.udp import UdpEndpoint, UdpSockets
from b2bua.sip.address import Destination
from b2bua.sip.overload import PROBE_MARK

LOCAL = "127.0.0.1"


class Core:
    """What the endpoint calls: ``receive`` (raising on ``b"boom"``) and ``flush``, recorded in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes, Destination | None]] = []
        self.got = asyncio.Event()

    def receive(self, data: bytes, source: Destination, now: float) -> None:
        self.calls.append(("receive", data, source))
        if data == b"boom":
            raise ValueError("the core failed")

    def flush(self) -> None:
        self.calls.append(("flush", b"", None))
        self.got.set()

    def echo(self, data: bytes, now: float) -> None:
        self.calls.append(("echo", data, None))


async def endpoint(core: Core) -> tuple[UdpEndpoint, int]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: UdpEndpoint(core.receive, loop.time, core.flush, {}), local_addr=(LOCAL, 0))
    return protocol, int(transport.get_extra_info("sockname")[1])


async def send_and_wait(core: Core, sock: socket.socket, data: bytes, port: int) -> None:
    core.got.clear()
    sock.sendto(data, (LOCAL, port))
    await asyncio.wait_for(core.got.wait(), 3.0)


def phone() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LOCAL, 0))
    return sock


def test_each_datagram_is_one_receive_and_one_flush_with_a_cached_source() -> None:
    async def main() -> None:
        core = Core()
        ep, port = await endpoint(core)
        with phone() as sock:
            await send_and_wait(core, sock, b"OPTIONS 1", port)
            await send_and_wait(core, sock, b"OPTIONS 2", port)
            sender = sock.getsockname()
        assert [(kind, data) for kind, data, _ in core.calls] == [
            ("receive", b"OPTIONS 1"), ("flush", b""), ("receive", b"OPTIONS 2"), ("flush", b"")]
        first, second = core.calls[0][2], core.calls[2][2]
        assert first == Destination("udp", LOCAL, sender[1]) and first is second
        assert ep.transport is not None
        ep.transport.close()
        await asyncio.sleep(0)
        assert ep.transport is None

    asyncio.run(main())


def test_a_core_that_raises_loses_that_datagram_only(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        core = Core()
        ep, port = await endpoint(core)
        with phone() as sock, caplog.at_level(logging.ERROR, logger="call_api.io"):
            await send_and_wait(core, sock, b"boom", port)
            await send_and_wait(core, sock, b"OPTIONS", port)
        assert [(kind, data) for kind, data, _ in core.calls] == [
            ("receive", b"boom"), ("flush", b""), ("receive", b"OPTIONS"), ("flush", b"")]
        assert any("the core failed on a datagram" in r.getMessage() for r in caplog.records)
        assert ep.transport is not None
        ep.transport.close()

    asyncio.run(main())


def test_probes_from_the_watched_source_go_to_the_echo_and_others_to_the_core() -> None:
    async def main() -> None:
        core = Core()
        ep, port = await endpoint(core)
        with phone() as prober, phone() as stranger:
            ep.watch_probes(prober.getsockname(), core.echo)
            await send_and_wait(core, prober, PROBE_MARK + b"1", port)
            await send_and_wait(core, stranger, PROBE_MARK + b"2", port)
        assert [(kind, data) for kind, data, _ in core.calls] == [
            ("echo", PROBE_MARK + b"1"), ("flush", b""), ("receive", PROBE_MARK + b"2"), ("flush", b"")]
        assert ep.transport is not None
        ep.transport.close()

    asyncio.run(main())


def test_a_network_error_is_ignored_and_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    core = Core()
    ep = UdpEndpoint(core.receive, lambda: 0.0, core.flush, {})
    with caplog.at_level(logging.DEBUG, logger="call_api.io"):
        ep.error_received(ConnectionRefusedError("port unreachable"))
    assert core.calls == [] and "UDP error ignored: port unreachable" in caplog.text


def test_the_first_socket_of_a_family_sends_and_none_after_close() -> None:
    async def main() -> None:
        core = Core()
        sockets = UdpSockets()
        assert sockets.send(b"x", socket.AF_INET, LOCAL, 9) is False  # nothing to send from yet
        first, _ = await endpoint(core)
        second, _ = await endpoint(core)
        sockets.add(socket.AF_INET, first)
        sockets.add(socket.AF_INET, second)
        assert sockets.senders[socket.AF_INET] is first.transport
        with phone() as sock:
            sock.settimeout(3.0)
            assert sockets.send(b"hello", socket.AF_INET, LOCAL, sock.getsockname()[1]) is True
            data, source = await asyncio.get_running_loop().run_in_executor(None, sock.recvfrom, 100)
        assert data == b"hello" and first.transport is not None
        assert source[1] == first.transport.get_extra_info("sockname")[1]
        sockets.close()
        assert sockets.endpoints == [] and sockets.send(b"x", socket.AF_INET, LOCAL, 9) is False

    asyncio.run(main())
