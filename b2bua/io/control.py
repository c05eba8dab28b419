"""The awaitable call-control API: ``await control.call_hold(callid, leg, on_event)`` runs a command on
the running service and returns its reports once it has Ended.

The flows are sans-I/O (:mod:`b2bua.call.control`); this wraps them with the service's clock and loop:
each command starts inside the loop, the shell is poked so its SIP goes out at once, and reports are
handed to ``on_event`` in order as the flow produces them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..call.control import Control
from ..call.events import FlowEnded, FlowReport
from ..call.flows.base import Flow
from .runtime import Service

OnEvent = Callable[[FlowReport], None]


class AsyncControl:
    """Commands on a running :class:`Service` whose application is a B2BUA."""

    def __init__(self, service: Service, control: Control) -> None:
        self.service = service
        self.control = control

    async def _run(self, start: Callable[[float, Callable[[FlowReport], None]], Flow],
                   on_event: OnEvent | None) -> list[FlowReport]:
        reports: list[FlowReport] = []
        ended = asyncio.Event()

        def sink(report: FlowReport) -> None:
            reports.append(report)
            if on_event is not None:
                on_event(report)
            if isinstance(report, FlowEnded):
                ended.set()

        start(self.service.shell.time(), sink)  # raises ControlError when the command cannot start
        self.service.poke()
        await ended.wait()
        return reports

    async def call_hold(self, callid: str, leg: str | None = None, on_event: OnEvent | None = None,
                        cmd_id: str = "") -> list[FlowReport]:
        return await self._run(lambda now, sink: self.control.call_hold(callid, leg, now, sink, cmd_id), on_event)

    async def call_unhold(self, callid: str, leg: str | None = None, on_event: OnEvent | None = None,
                          cmd_id: str = "") -> list[FlowReport]:
        return await self._run(lambda now, sink: self.control.call_unhold(callid, leg, now, sink, cmd_id), on_event)

    async def call_start(self, caller: str, callee: str, on_event: OnEvent | None = None,
                         cmd_id: str = "") -> list[FlowReport]:
        return await self._run(lambda now, sink: self.control.call_start(caller, callee, now, sink, cmd_id), on_event)

    async def call_blind_transfer(self, callid: str, leg: str, destination: str, on_event: OnEvent | None = None,
                                  cmd_id: str = "") -> list[FlowReport]:
        return await self._run(
            lambda now, sink: self.control.call_blind_transfer(callid, leg, destination, now, sink, cmd_id), on_event
        )

    async def call_attended_transfer(self, callid_a: str, leg_a: str, callid_b: str, leg_b: str,
                                     destination: str | None = None, on_event: OnEvent | None = None,
                                     cmd_id: str = "") -> list[FlowReport]:
        return await self._run(
            lambda now, sink: self.control.call_attended_transfer(callid_a, leg_a, callid_b, leg_b, destination, now,
                                                                  sink, cmd_id),
            on_event,
        )

    async def call_end(self, callid: str, on_event: OnEvent | None = None, cmd_id: str = "") -> list[FlowReport]:
        return await self._run(lambda now, sink: self.control.call_end(callid, now, sink, cmd_id), on_event)
