"""What every flow shares: its call, its report sink, and the rule that it ends exactly once."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ...sip.message import Response
from ...sip.ua_events import UaEvent
from ..call import Call
from ..events import FlowEnded, FlowError, FlowEvent, FlowReport
from ..leg import Leg, LegName

logger = logging.getLogger("call_api.call.flow")

Sink = Callable[[FlowReport], None]


def status_line(response: Response) -> str:
    return f"SIP/2.0 {response.status} {response.reason}".rstrip()


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

    def on_session_event(self, leg: Leg, event: UaEvent, now: float) -> bool:
        """A SIP session event on one of the call's legs while this flow runs; True when consumed
        (the B2BUA then does not relay or act on it)."""
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
        self.sink(FlowEnded())
