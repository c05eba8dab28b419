"""Tests for b2bua.io.control: the awaitable API starts a command at the shell's time, pokes the shell so the
command's SIP goes out at once, hands each report to ``on_event`` in order, and returns them once Ended.

The service is stood in for by the in-memory network (no sockets): its poke runs the network."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from b2bua.call.commands import CallEnd
from b2bua.call.events import FlowEnded, FlowReport
from b2bua.errors import CallNotFoundError
from b2bua.io.control import AsyncControl

from .call_builders import answered_call
from .sipnet import Network


@dataclass
class Shell:
    net: Network
    asked: list[float] = field(default_factory=list)

    def time(self) -> float:
        self.asked.append(self.net.now)
        return self.net.now


@dataclass
class Service:
    """What AsyncControl uses of the running service: ``shell.time()`` and ``poke()``."""

    shell: Shell
    pokes: int = 0

    def poke(self) -> None:
        self.pokes += 1
        self.shell.net.settle()


def test_run_returns_the_reports_once_ended_and_hands_each_to_on_event() -> None:
    net, alice, bob, control, a, b = answered_call()
    service = Service(Shell(net))
    seen: list[FlowReport] = []
    api = AsyncControl(cast(Any, service), control)
    reports = asyncio.run(api.run(CallEnd(a.call_id), seen.append, "cmd-7"))
    assert reports == seen == [FlowEnded()]
    assert service.pokes == 1 and len(service.shell.asked) == 1
    assert a.ended and b.ended and len(control.b2bua.table) == 0


def test_a_command_that_cannot_start_raises_before_anything_is_sent() -> None:
    net, alice, bob, control, a, b = answered_call()
    service = Service(Shell(net))
    api = AsyncControl(cast(Any, service), control)
    with pytest.raises(CallNotFoundError):
        asyncio.run(api.run(CallEnd("no-such-call")))
    assert service.pokes == 0 and a.confirmed and b.confirmed
