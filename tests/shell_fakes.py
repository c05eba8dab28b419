"""Fakes for the asyncio shell's socket tests (test_io_shell, test_io_tcp): a core that records every call and
answers through a reply function, framable SIP bytes, a polling wait, and the ``run`` fixture that runs a
scenario on a fresh loop of each kind (plain asyncio and uvloop). A test module takes the fixture with
``run = shell_fakes.run``."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from b2bua.io.loop import loop_name, new_event_loop
from b2bua.sip.address import Destination

T = TypeVar("T")
TIMEOUT = 10.0
HAVE_UVLOOP = sys.platform in ("linux", "darwin") and importlib.util.find_spec("uvloop") is not None
Reply = Callable[[bytes, Destination], list[tuple[bytes, Destination]]]
Run = Callable[[Callable[[], Awaitable[T]]], T]


def have_ipv6() -> bool:
    """Whether this host can bind ::1 (the IPv6 tests skip otherwise)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


class FakeCore:
    """Records every call; answers through ``reply``; its timer is whatever the test sets."""

    def __init__(self, reply: Reply | None = None) -> None:
        self.reply = reply
        self.received: list[tuple[bytes, Destination, float]] = []
        self.errors: list[tuple[Destination, float]] = []
        self.timer_calls: list[float] = []
        self.deadline: float | None = None
        #: When set, receive() arms the timer this many seconds after ``now``.
        self.timer_after: float | None = None
        self.outbox: list[tuple[bytes, Destination]] = []
        self.fail_next = False

    def receive(self, data: bytes, source: Destination, now: float) -> None:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("core bug")
        self.received.append((data, source, now))
        if self.timer_after is not None and self.deadline is None:
            self.deadline = now + self.timer_after
        if self.reply is not None:
            self.outbox += self.reply(data, source)

    def handle_timer(self, now: float) -> None:
        self.timer_calls.append(now)
        if self.deadline is not None and now >= self.deadline:
            self.deadline = None

    def get_timer(self) -> float | None:
        return self.deadline

    def take_datagrams(self) -> list[tuple[bytes, Destination]]:
        out, self.outbox = self.outbox, []
        return out

    def transport_error(self, destination: Destination, now: float) -> None:
        self.errors.append((destination, now))

    def send(self, data: bytes, destination: Destination) -> None:
        self.outbox.append((data, destination))


def echo(data: bytes, source: Destination) -> list[tuple[bytes, Destination]]:
    """A FakeCore reply: the datagram back to its sender, prefixed ``re:``."""
    return [(b"re:" + data, source)]


def sip(n: int, body: bytes = b"") -> bytes:
    """A framable SIP message; the fake core never parses it."""
    return (f"OPTIONS sip:{n}@127.0.0.1 SIP/2.0\r\nCall-ID: {n}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


async def until(condition: Callable[[], object], timeout: float = 3.0, what: str = "condition") -> None:
    """Wait for ``condition()`` to be true, polling; fail (never hang) after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Iterator[Run[Any]]:
    """Run a scenario on a fresh loop of each kind, bounded by ``TIMEOUT`` seconds."""
    kind = request.param
    if kind == "uvloop" and not HAVE_UVLOOP:
        pytest.skip("uvloop not installed")

    def runner(scenario: Callable[[], Awaitable[T]]) -> T:
        with asyncio.Runner(loop_factory=lambda: new_event_loop(kind)) as asyncio_runner:
            assert loop_name(asyncio_runner.get_loop()) == kind

            async def bounded() -> T:
                return await asyncio.wait_for(scenario(), TIMEOUT)

            return asyncio_runner.run(bounded())

    yield runner
