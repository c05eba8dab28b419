"""The awaitable call-control API: ``await control.run(CallHold(callid, leg), on_event)`` runs a command on
the running service and returns its reports once it has Ended.

The flows are sans-I/O (:mod:`b2bua.call.control`); this wraps them with the service's clock and loop:
each command starts inside the loop, the shell is poked so its SIP goes out at once, and reports are
handed to ``on_event`` in order as the flow produces them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..call.commands import Command
from ..call.control import Control
from ..call.events import FlowEnded, FlowReport
from .runtime import Service

OnEvent = Callable[[FlowReport], None]


class AsyncControl:
    """Commands on a running :class:`Service` whose application is a B2BUA."""

    def __init__(self, service: Service, control: Control) -> None:
        self.service = service
        self.control = control

    async def run(self, command: Command, on_event: OnEvent | None = None, cmd_id: str = "") -> list[FlowReport]:
        """Run ``command`` (``CallHold(callid, "callee")``, any of :data:`~b2bua.call.control.COMMANDS`) to its
        end and return its reports; raises ControlError when it cannot start."""
        reports: list[FlowReport] = []
        ended = asyncio.Event()

        def sink(report: FlowReport) -> None:
            reports.append(report)
            if on_event is not None:
                on_event(report)
            if isinstance(report, FlowEnded):
                ended.set()

        self.control.start(command, self.service.shell.time(), sink, cmd_id)
        self.service.poke()
        await ended.wait()
        return reports
