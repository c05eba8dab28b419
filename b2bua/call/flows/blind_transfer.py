"""CallBlindTransfer: RFC 5359 section 2.4. REFER the party named by ``leg`` to the destination (Referred-By: the
other party); TRANSFER_ACCEPT on 2xx, CALL_START when the transferee's INVITE passes through the service (with
the new call's Call-ID) or on its first NOTIFY beyond ``100 Trying`` (see refer.py), and on the 2xx NOTIFY the
old call is torn down and the command Ends. On failure the original call stays up."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import ParseError
from ...sip.headers import parse_name_addr
from ..call import Call
from ..leg import Leg
from .base import Sink
from .refer import ReferFlow

if TYPE_CHECKING:
    from ..b2bua import B2bua


def identity_of(leg: Leg | None) -> str | None:
    """The party's own name-addr (without tag) as its dialog with us shows it."""
    remote = leg.remote_uri if leg is not None else None
    if remote is None:
        return None
    try:
        addr = parse_name_addr(remote)
    except ParseError:
        return None
    return addr.without_tag()


class BlindTransferFlow(ReferFlow):
    name = "CallBlindTransfer"

    def __init__(self, call: Call, sink: Sink, b2bua: B2bua, transferee: Leg, destination: str,
                 cmd_id: str = "") -> None:
        super().__init__(call, sink, b2bua, transferee, destination, referred_by=identity_of(call.other(transferee)),
                         cmd_id=cmd_id)

    def start(self, now: float) -> None:
        self.send_refer(now)

    def success(self, status: str, now: float) -> None:
        self.call.end(now)
        self.finish()

    def failure(self, code: int, message: str, now: float) -> None:
        self.fail(code, message)
