"""CallEnd: BYE the confirmed legs, CANCEL the ringing ones, report Ended when every leg is over
(RFC 3261 sections 9 and 15; RFC 5359 section 2.1 for the flow)."""

from __future__ import annotations

from ..call import Call
from .base import Flow, Sink


class EndFlow(Flow):
    """Ends the call; Ended comes when its last leg is over (a BYE answered, or timed out)."""

    name = "CallEnd"

    def __init__(self, call: Call, sink: Sink, cmd_id: str = "") -> None:
        super().__init__(call, sink, cmd_id)

    def start(self, now: float) -> None:
        self.call.ended_listeners.append(lambda call: self.finish())
        self.call.end(now)
        if self.call.ended:  # pragma: no cover - a call already over (its listener never fires); Control refuses those
            self.finish()
