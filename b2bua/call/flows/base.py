"""What every flow shares: its call, its report sink, and the rule that it ends exactly once."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ...sip.message import Response
from ..call import Call
from ..events import FlowEnded, FlowError, FlowEvent, FlowReport, LegEvent
from ..leg import Leg, LegName

logger = logging.getLogger("call_api.call.flow")

Sink = Callable[[FlowReport], None]


def status_line(response: Response) -> str:
    return status_text(response.status, response.reason)


def status_text(status: int, reason: str) -> str:
    """The status line of a response, e.g. ``SIP/2.0 200 OK``."""
    return f"SIP/2.0 {status} {reason}".rstrip()


class Flow:
    """A command running on one call (or two, for an attended transfer). It holds ``call.busy`` while it
    runs, so a second command on the same call is refused instead of interleaved."""

    name = "flow"

    def __init__(self, call: Call, sink: Sink, cmd_id: str = "") -> None:
        self.call = call
        self.sink = sink
        self.cmd_id = cmd_id
        self.done = False
        self.failed = False
        call.busy = self
        if call.observer is not None:
            call.observer.command(call, self, started=True)

    def on_leg_event(self, leg: Leg, event: LegEvent, now: float) -> bool:
        """The one way into a flow: something happened on one of the call's legs while it runs, or a request
        it sent with :meth:`Call.send` (``handler=self.on_leg_event``) got its final answer, a
        :class:`~b2bua.call.events.LegResponse` with the handle ``send`` returned (even after the flow is done).
        True when consumed (the B2BUA then does not relay or act on it)."""
        return False

    def event(self, data: str, *, callid: str | None = None, leg: LegName | None = None,
              status: str | None = None) -> None:
        if not self.done:
            logger.info("cmd %s call %s: %s %s", self.cmd_id, self.call.id, data, leg or "")
            self.sink(FlowEvent(data, callid, leg, status))

    def fail(self, code: int, message: str) -> None:
        """Report one Error, then end."""
        if self.done:
            return
        logger.info("cmd %s call %s: %s failed: %d %s", self.cmd_id, self.call.id, self.name, code, message)
        self.failed = True
        self.sink(FlowError(code, message))
        self.finish()

    def finish(self) -> None:
        """Report Ended (once) and free the call for the next command."""
        if self.done:
            return
        self.done = True
        if self.call.busy is self:
            self.call.busy = None
            if self.call.observer is not None:
                self.call.observer.command(self.call, self, started=False)
        self.sink(FlowEnded())
