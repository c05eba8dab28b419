"""CallAttendedTransfer: RFC 5359 section 2.5 (attended transfer), with Replaces (RFC 3891).

REFER ``leg_a`` of call A with ``Refer-To: <destination?Replaces=...>`` naming the dialog of ``leg_b`` in
call B as that party sees it (its tag as to-tag, the service's as from-tag), escaped as a URI header
(RFC 3261 section 19.1.1). The transferee's INVITE with Replaces comes through the service, which
joins it to ``leg_b`` in call B (see :meth:`B2bua._replace`). Events as for the blind transfer:
TRANSFER_ACCEPT, CALL_START, Ended; on success call A's remaining legs are torn down. Both calls are
busy while it runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...sip.uri import escape_header_value
from ..call import Call
from ..leg import Leg
from .base import Sink
from .blind_transfer import identity_of
from .refer import ReferFlow

if TYPE_CHECKING:
    from ..b2bua import B2bua


def replaces_target(destination: str, leg_b: Leg) -> str:
    """``destination`` with ``?Replaces=`` naming ``leg_b``'s dialog from that party's point of view."""
    dialog = leg_b.dialog_id
    assert dialog is not None
    value = f"{leg_b.call_id};to-tag={dialog.remote_tag};from-tag={dialog.local_tag}"
    separator = "&" if "?" in destination else "?"
    return f"{destination}{separator}Replaces={escape_header_value(value)}"


class AttendedTransferFlow(ReferFlow):
    name = "CallAttendedTransfer"

    def __init__(self, call_a: Call, sink: Sink, b2bua: B2bua, leg_a: Leg, call_b: Call, leg_b: Leg,
                 destination: str, cmd_id: str = "") -> None:
        super().__init__(call_a, sink, b2bua, leg_a, replaces_target(destination, leg_b),
                         referred_by=identity_of(call_a.other(leg_a)), cmd_id=cmd_id)
        self.call_b = call_b
        call_b.busy = self
        if call_b.observer is not None:
            call_b.observer.command(call_b, self, started=True)

    def start(self, now: float) -> None:
        self.send_refer(now)

    def success(self, status: str, now: float) -> None:
        self.call.end(now)
        self.finish()

    def failure(self, code: int, message: str, now: float) -> None:
        self.fail(code, message)

    def finish(self) -> None:
        if self.call_b.busy is self:
            self.call_b.busy = None
            if self.call_b.observer is not None:
                self.call_b.observer.command(self.call_b, self, started=False)
        super().finish()
