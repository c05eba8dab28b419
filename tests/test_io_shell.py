"""The asyncio shell on real loopback sockets, under uvloop and plain asyncio, with a fake core (the fake core
and the loop runner are in tests/shell_fakes.py, shared with test_io_tcp)."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest

from b2bua.io import resolver as io_resolver
from b2bua.io.shell import SipCore, SipShell
from b2bua.sip.address import Destination
from b2bua.sip.overload import OverloadSettings, OverloadState

from . import shell_fakes
from .shell_fakes import FakeCore, Run, echo, have_ipv6, sip, until

#: The loop fixture: each test runs under plain asyncio and under uvloop.
run = shell_fakes.run


class UdpClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, Any]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait((data, addr))

    async def recv(self, timeout: float = 3.0) -> tuple[bytes, Any]:
        return await asyncio.wait_for(self.queue.get(), timeout)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])


async def udp_client(host: str = "127.0.0.1") -> UdpClient:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_datagram_endpoint(UdpClient, local_addr=(host, 0))
    return client


# -- construction -----------------------------------------------------------------------------------


def test_the_transaction_layer_is_a_core() -> None:
    from b2bua.sip.layer import TransactionLayer

    core: SipCore = TransactionLayer()
    SipShell(core, [("udp", "127.0.0.1", 0)])


@pytest.mark.parametrize(
    "listen", [[], [("sctp", "127.0.0.1", 0)], [("udp", "127.0.0.1", 70000)]], ids=["none", "sctp", "port"]
)
def test_bad_listen_addresses_raise(listen: list[tuple[str, str, int]]) -> None:
    with pytest.raises(ValueError):
        SipShell(FakeCore(), listen)


def test_poke_before_start_raises() -> None:
    with pytest.raises(RuntimeError):
        SipShell(FakeCore(), [("udp", "127.0.0.1", 0)]).poke()


# -- UDP ----------------------------------------------------------------------------------------------


def test_udp_receive_and_reply(run: Run[None]) -> None:
    async def scenario() -> None:
        core = FakeCore(echo)
        async with SipShell(core, [("udp", "127.0.0.1", 0), ("tcp", "127.0.0.1", 0)]) as shell:
            udp, tcp = shell.bound
            assert (udp.transport, udp.host, tcp.transport, tcp.host) == ("udp", "127.0.0.1", "tcp", "127.0.0.1")
            assert udp.port and tcp.port
            client = await udp_client()
            assert client.transport is not None
            for n in range(3):
                client.transport.sendto(sip(n), ("127.0.0.1", udp.port))
                data, addr = await client.recv()
                assert data == b"re:" + sip(n)
                assert addr[1] == udp.port
            assert [source for _, source, _ in core.received] == [Destination("udp", "127.0.0.1", client.port)] * 3
            assert all(abs(now - shell.time()) < 1 for _, _, now in core.received)
            client.transport.close()

    run(scenario)


def test_udp_ipv6(run: Run[None]) -> None:
    if not have_ipv6():
        pytest.skip("no IPv6 loopback")

    async def scenario() -> None:
        core = FakeCore(echo)
        async with SipShell(core, [("udp", "::1", 0), ("udp", "127.0.0.1", 0)]) as shell:
            assert shell.bound[0].host == "::1"
            client = await udp_client("::1")
            assert client.transport is not None
            client.transport.sendto(b"six", ("::1", shell.bound[0].port))
            assert (await client.recv())[0] == b"re:six"
            assert core.received[0][1] == Destination("udp", "::1", client.port)
            core.send(b"bracketed", Destination("udp", "[::1]", client.port))
            shell.poke()
            assert (await client.recv())[0] == b"bracketed"
            client.transport.close()

    run(scenario)


def test_udp_without_a_socket_of_the_family_is_a_transport_error(run: Run[None]) -> None:
    async def scenario() -> None:
        core = FakeCore()
        async with SipShell(core, [("udp", "127.0.0.1", 0)]) as shell:
            target = Destination("udp", "::1", 5060)
            core.send(b"x", target)
            core.send(b"y", target)
            core.send(b"z", Destination("sctp", "127.0.0.1", 5061))
            shell.poke()
            assert [d for d, _ in core.errors] == [target, Destination("sctp", "127.0.0.1", 5061)]

    run(scenario)


def test_core_exception_is_logged_and_the_shell_goes_on(run: Run[None], caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        core = FakeCore(echo)
        async with SipShell(core, [("udp", "127.0.0.1", 0)]) as shell:
            client = await udp_client()
            assert client.transport is not None
            core.fail_next = True
            client.transport.sendto(b"first", ("127.0.0.1", shell.bound[0].port))
            client.transport.sendto(b"second", ("127.0.0.1", shell.bound[0].port))
            assert (await client.recv())[0] == b"re:second"
            client.transport.close()

    with caplog.at_level("ERROR", logger="call_api.io"):
        run(scenario)
    assert "the core failed" in caplog.text


# -- host names ----------------------------------------------------------------------------------------


def test_localhost_is_resolved(run: Run[None]) -> None:
    async def scenario() -> None:
        core = FakeCore()
        async with SipShell(core, [("udp", "127.0.0.1", 0), ("tcp", "127.0.0.1", 0)]) as shell:
            client = await udp_client()
            assert client.transport is not None
            core.send(b"one", Destination("udp", "localhost", client.port))
            core.send(b"two", Destination("udp", "localhost", client.port))
            shell.poke()
            assert (await client.recv())[0] == b"one"
            assert (await client.recv())[0] == b"two"
            core.send(b"three", Destination("udp", "localhost", client.port))
            shell.poke()
            assert (await client.recv())[0] == b"three"
            got: list[bytes] = []

            async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                got.append(await reader.readexactly(len(sip(1))))
                writer.close()

            server = await asyncio.start_server(serve, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            core.send(sip(1), Destination("tcp", "localhost", port))
            shell.poke()
            await until(lambda: got, what="the TCP message to localhost")
            assert got == [sip(1)]
            assert core.errors == []
            server.close()
            client.transport.close()

    run(scenario)


def test_resolution_failure_is_a_transport_error(run: Run[None], monkeypatch: pytest.MonkeyPatch) -> None:
    lookups: list[str] = []

    async def fail(self: io_resolver.Resolver, host: str) -> list[io_resolver.Address]:
        lookups.append(host)
        await asyncio.sleep(0.01)
        raise OSError("no such name")

    monkeypatch.setattr(io_resolver.Resolver, "lookup", fail)

    async def scenario() -> None:
        core = FakeCore()
        async with SipShell(core, [("udp", "127.0.0.1", 0)]) as shell:
            udp, tcp = Destination("udp", "nothing.invalid", 5060), Destination("tcp", "nothing.invalid", 5060)
            core.send(b"a", udp)
            core.send(b"b", tcp)
            core.send(b"c", udp)
            shell.poke()
            await until(lambda: len(core.errors) == 2, what="the transport errors")
            assert [d for d, _ in core.errors] == [udp, tcp]
            assert lookups == ["nothing.invalid"]

    run(scenario)


# -- the timer ------------------------------------------------------------------------------------------


def test_one_timer_fires_once_at_the_deadline(run: Run[None]) -> None:
    async def scenario() -> None:
        core = FakeCore()
        core.timer_after = 0.05
        async with SipShell(core, [("udp", "127.0.0.1", 0)]) as shell:
            client = await udp_client()
            assert client.transport is not None
            for n in range(5):
                client.transport.sendto(b"%d" % n, ("127.0.0.1", shell.bound[0].port))
            await until(lambda: len(core.received) == 5, what="five datagrams")
            handle = shell._handle
            assert handle is not None and core.deadline is not None
            deadline = core.deadline
            # armed for the core's deadline: what the shell asked of call_at, not ``handle.when()``, which
            # uvloop derives from its own millisecond clock (it was 6 ms off once on a loaded host)
            assert shell._deadline == deadline
            await until(lambda: core.timer_calls, what="handle_timer")
            await asyncio.sleep(0.3)
            assert len(core.timer_calls) == 1
            assert core.timer_calls[0] >= deadline
            assert shell._handle is None
            # Its lateness is the loop's lag, as GET /metrics exports it (call_api_event_loop_lag_seconds).
            assert shell.lag.count == 1 and 0 <= shell.lag.sum < 0.25
            client.transport.close()

    run(scenario)


def test_timer_rearmed_when_the_deadline_moves_and_cancelled_when_none(run: Run[None]) -> None:
    async def scenario() -> None:
        core = FakeCore()
        async with SipShell(core, [("udp", "127.0.0.1", 0)]) as shell:
            core.deadline = shell.time() + 0.05
            shell.poke()
            first = shell._handle
            shell.poke()
            assert shell._handle is first
            core.deadline = shell.time() + 0.15
            shell.poke()
            assert first is not None and first.cancelled()
            await asyncio.sleep(0.1)
            assert core.timer_calls == []
            await until(lambda: core.timer_calls, what="the moved timer")
            assert len(core.timer_calls) == 1

            core.deadline = shell.time() + 0.05
            shell.poke()
            core.deadline = None
            shell.poke()
            assert shell._handle is None
            await asyncio.sleep(0.15)
            assert len(core.timer_calls) == 1

    run(scenario)


def test_a_past_deadline_fires_at_once(run: Run[None]) -> None:
    async def scenario() -> None:
        core = FakeCore()
        async with SipShell(core, [("udp", "127.0.0.1", 0)]) as shell:
            core.deadline = shell.time() - 1
            core.send(b"x", Destination("udp", "127.0.0.1", shell.bound[0].port))
            shell.poke()
            await until(lambda: core.timer_calls and core.received, what="timer and loopback datagram")
            assert len(core.timer_calls) == 1

    run(scenario)


def test_timer_armed_at_start_for_work_queued_before(run: Run[None]) -> None:
    async def scenario() -> None:
        core = FakeCore()
        client = await udp_client()
        assert client.transport is not None
        core.send(b"early", Destination("udp", "127.0.0.1", client.port))
        core.deadline = asyncio.get_running_loop().time() + 0.02
        async with SipShell(core, [("udp", "127.0.0.1", 0)]):
            assert (await client.recv())[0] == b"early"
            await until(lambda: core.timer_calls, what="handle_timer")
        client.transport.close()

    run(scenario)


# -- start and stop -------------------------------------------------------------------------------------


def test_stop_releases_the_ports(run: Run[None]) -> None:
    async def scenario() -> None:
        core = FakeCore()
        shell = SipShell(core, [("udp", "127.0.0.1", 0), ("tcp", "127.0.0.1", 0)])
        await shell.start()
        assert shell.running
        udp, tcp = shell.bound
        with pytest.raises(RuntimeError):
            await shell.start()
        _, writer = await asyncio.open_connection("127.0.0.1", tcp.port)
        await until(lambda: shell.connections == 1, what="the accepted connection")
        core.deadline = shell.time() + 60
        shell.poke()
        await shell.stop()
        assert not shell.running and shell.bound == [] and shell.connections == 0
        assert shell._handle is None
        with pytest.raises(RuntimeError):
            shell.poke()
        writer.close()
        again = SipShell(FakeCore(), [("udp", "127.0.0.1", udp.port), ("tcp", "127.0.0.1", tcp.port)])
        async with again:
            assert [d.port for d in again.bound] == [udp.port, tcp.port]

    run(scenario)


def test_start_failure_closes_what_was_opened(run: Run[None]) -> None:
    async def scenario() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
            taken.bind(("127.0.0.1", 0))
            port = taken.getsockname()[1]
            shell = SipShell(FakeCore(), [("tcp", "127.0.0.1", 0), ("udp", "127.0.0.1", port)])
            with pytest.raises(OSError):
                await shell.start()
            assert not shell.running and shell.bound == []

    run(scenario)


# -- with the real transaction layer ----------------------------------------------------------------------


def test_transaction_layer_answers_through_the_shell(run: Run[None]) -> None:
    from b2bua.sip.layer import TransactionLayer

    async def scenario() -> None:
        layer = TransactionLayer()
        async with SipShell(layer, [("udp", "127.0.0.1", 0), ("tcp", "127.0.0.1", 0)]) as shell:
            client = await udp_client()
            assert client.transport is not None
            request = (
                "OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{client.port};branch=z9hG4bK1;rport\r\n"
                "From: <sip:alice@127.0.0.1>;tag=a\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: c1\r\n"
                "CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            ).encode()
            client.transport.sendto(request, ("127.0.0.1", shell.bound[0].port))
            data, _ = await client.recv()
            assert data.startswith(b"SIP/2.0 400 ")
            reader, writer = await asyncio.open_connection("127.0.0.1", shell.bound[1].port)
            writer.write(request.replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP").replace(b"z9hG4bK1", b"z9hG4bK2"))
            assert (await asyncio.wait_for(reader.readuntil(b"\r\n"), 3)).startswith(b"SIP/2.0 400 ")
            writer.close()
            client.transport.close()

    run(scenario)


# -- overload control: the probe to our own socket (b2bua.sip.overload) ----------------------------------


class SlowCore(FakeCore):
    """A core that takes ``cost`` seconds of CPU per datagram, as a saturated service does."""

    def __init__(self, cost: float) -> None:
        super().__init__()
        self.cost = cost

    def receive(self, data: bytes, source: Destination, now: float) -> None:
        self.take(self.cost)
        super().receive(data, source, now)

    @staticmethod
    def take(seconds: float) -> None:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            pass


class BlockedCore(SlowCore):
    """A core that waits ``cost`` seconds per datagram without running, as one blocked on a slow disk."""

    @staticmethod
    def take(seconds: float) -> None:
        time.sleep(seconds)


async def flood(shell: SipShell, count: int) -> UdpClient:
    """Once the overload probe has come back once, ``count`` datagrams sent to ``shell`` at once."""
    monitor = shell.overload
    assert monitor is not None
    await until(lambda: monitor.echoes, what="a probe's echo")
    client = await udp_client()
    assert client.transport is not None
    for n in range(count):
        client.transport.sendto(sip(n), ("127.0.0.1", shell.bound[0].port))
    return client


def test_the_probe_measures_the_queue_and_never_reaches_the_core(run: Run[None]) -> None:
    async def scenario() -> None:
        core = FakeCore(echo)
        core.timer_after = 0.1
        admits: list[float] = []
        async with SipShell(core, [("udp", "0.0.0.0", 0)], overload=OverloadSettings(),
                            on_admit=admits.append) as shell:
            monitor = shell.overload
            assert monitor is not None
            await until(lambda: monitor.echoes, what="a probe's echo")
            client = await udp_client()
            assert client.transport is not None
            client.transport.sendto(sip(1), ("127.0.0.1", shell.bound[0].port))
            assert (await client.recv())[0] == b"re:" + sip(1)
            await until(lambda: core.timer_calls, what="the core's own deadline")
            await asyncio.sleep(0.3)
            assert [data for data, _, _ in core.received] == [sip(1)], "probes stay in the shell"
            assert len(core.timer_calls) == 1, "probe ticks do not call the core's handle_timer"
            assert 0 <= monitor.delay < 0.05 and admits == [] and monitor.state is OverloadState.ADMITTING
            assert shell.queue_delay == monitor.delay
            assert shell.lag.count >= 5, "every probe tick is a lag sample: no timer of its own"
            client.transport.close()
        assert shell.overload is None and shell.queue_delay is None

    run(scenario)


def test_a_blocked_loop_is_a_stall_and_is_excused(run: Run[None], caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        admits: list[float] = []
        async with SipShell(FakeCore(), [("udp", "127.0.0.1", 0)], overload=OverloadSettings(),
                            on_admit=admits.append) as shell:
            monitor = shell.overload
            assert monitor is not None
            await until(lambda: monitor.echoes, what="a probe's echo")
            time.sleep(0.3)  # the whole process stops, as in a long pause or SIGSTOP
            await until(lambda: monitor.stalls, what="a stall")
            await until(lambda: monitor.state is OverloadState.ADMITTING, what="admitting again")
            assert monitor.stalls == 1 and monitor.last_stall >= 0.25 and admits == [], "no call refused"
        assert any(r.levelname == "WARNING" and "stall" in r.getMessage() for r in caplog.records)

    run(scenario)


def test_a_flooded_slow_core_sheds_then_admits_again(run: Run[None], caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        admits: list[float] = []
        core = SlowCore(0.001)
        settings = OverloadSettings(gap=0.2, calm=0.2, busy=0.3)  # a shared CI core still counts as busy
        async with SipShell(core, [("udp", "127.0.0.1", 0)], overload=settings, on_admit=admits.append) as shell:
            monitor = shell.overload
            assert monitor is not None
            client = await flood(shell, 800)  # about 0.8 s of work queued at once
            assert client.transport is not None
            await until(lambda: monitor.shedding, what="shedding")
            await until(lambda: monitor.state is OverloadState.ADMITTING, timeout=5, what="admitting again")
            assert admits[0] == 0.0 and admits[-1] == 1.0 and monitor.sheds == 1 and monitor.stalls == 0
            assert len(core.received) == 800
            client.transport.close()
        assert any(r.levelname == "WARNING" and "overload" in r.getMessage() for r in caplog.records)

    run(scenario)


def test_a_queue_behind_a_blocked_core_is_starvation_and_is_excused(run: Run[None],
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        admits: list[float] = []
        core = BlockedCore(0.001)
        settings = OverloadSettings(gap=0.2, calm=0.2)
        async with SipShell(core, [("udp", "127.0.0.1", 0)], overload=settings, on_admit=admits.append) as shell:
            monitor = shell.overload
            assert monitor is not None
            client = await flood(shell, 800)  # about 0.8 s of waiting queued at once, the loop thread mostly asleep
            assert client.transport is not None
            await until(lambda: monitor.starved, what="starvation")
            await until(lambda: len(core.received) == 800, timeout=5, what="every datagram")
            assert monitor.sheds == 0 and admits == [], "no call refused"
            client.transport.close()
        assert any(r.levelname == "WARNING" and "starved" in r.getMessage() for r in caplog.records)

    run(scenario)
