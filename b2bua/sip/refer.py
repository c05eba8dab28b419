"""The transferor side of REFER (RFC 3515): the implicit subscription and its NOTIFYs.

A REFER accepted with 2xx creates a subscription to the ``refer`` event package; the transferee
reports the progress of its new call in NOTIFY requests whose ``message/sipfrag`` body (RFC 3420) is
the status line of that call's latest response. 1xx is progress, 2xx success, 3xx-6xx failure;
``Subscription-State: terminated`` ends the subscription (RFC 3515 section 2.4.5, RFC 6665).
Tolerated on input, as phones send them: bare LF line ends in the sipfrag, a missing Content-Type
parameter, a missing ``id`` on the Event header of the only subscription in the dialog.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from ..errors import ParseError, RecordError, SipError
from .headers import SipFrag, parse_event, parse_sipfrag, parse_subscription_state
from .message import Request, Response
from .parser import parse_message


class ReferState(Enum):
    SENT = "sent"  # the REFER is out
    ACCEPTED = "accepted"  # 2xx to the REFER: the subscription exists
    TERMINATED = "terminated"  # refused, or the subscription ended


#: RFC 3515 sections 2.4.4 to 2.4.7 as a table: a 2xx to the REFER, or a NOTIFY before it (RFC 6665 section
#: 4.1.2.4), accepts; a failure response or ``Subscription-State: terminated`` ends it.
TRANSITIONS: dict[ReferState, frozenset[ReferState]] = {
    ReferState.SENT: frozenset({ReferState.ACCEPTED, ReferState.TERMINATED}),
    ReferState.ACCEPTED: frozenset({ReferState.TERMINATED}),
    ReferState.TERMINATED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class NotifyOutcome:
    """What a NOTIFY meant: the status to answer it with, the progress it carried, and whether it ended
    the subscription."""

    answer: int
    frag: SipFrag | None = None
    terminated: bool = False


class ReferSubscription:
    """One REFER and the subscription it creates (RFC 3515 sections 2.4.4 to 2.4.7)."""

    def __init__(self, refer: Request, *, state: ReferState = ReferState.SENT) -> None:
        cseq = refer.cseq
        if refer.method != "REFER" or cseq is None:
            raise ValueError("a ReferSubscription needs a REFER")
        self.refer = refer
        #: The ``id`` NOTIFYs carry: the REFER's CSeq number (RFC 3515 section 2.4.6).
        self.id = str(cseq.number)
        #: SENT for a new REFER; another state for one rebuilt after a restart (:meth:`from_record`).
        self.state = state
        #: The last sipfrag received, if any.
        self.last: SipFrag | None = None

    @property
    def terminated(self) -> bool:
        return self.state is ReferState.TERMINATED

    def to_record(self) -> dict[str, object]:
        """The subscription as JSON-ready values (the REFER and the state), for :meth:`from_record` after a
        restart: a late NOTIFY for it is then answered by the service, not relayed (issue 15)."""
        return {"refer": self.refer.serialize().decode("utf-8", "surrogateescape"), "state": self.state.value}

    @classmethod
    def from_record(cls, record: object) -> ReferSubscription:
        """The subscription :meth:`to_record` kept; :class:`RecordError` when the record is not one."""
        if not isinstance(record, Mapping):
            raise RecordError("REFER subscription record is not a mapping")
        text, state = record.get("refer"), record.get("state")
        states = {member.value: member for member in ReferState}
        if not isinstance(text, str) or state not in states:
            raise RecordError(f"REFER subscription record with state {state!r}")
        try:
            refer = parse_message(text.encode("utf-8", "surrogateescape"))
            if not isinstance(refer, Request):
                raise ValueError("not a request")
            return cls(refer, state=states[str(state)])
        except (ParseError, ValueError) as exc:
            raise RecordError(f"REFER subscription record: {exc}") from exc

    def _move(self, state: ReferState) -> None:
        if state is self.state:
            return
        if state not in TRANSITIONS[self.state]:
            raise SipError(f"the subscription of REFER {self.id} cannot go from {self.state.value} to {state.value}")
        self.state = state

    def on_response(self, response: Response) -> bool:
        """The REFER's final response: True when accepted (202 or 200, RFC 3515 section 2.4.2)."""
        if response.status < 200:
            return False
        if 200 <= response.status < 300:
            if self.state is ReferState.SENT:
                self._move(ReferState.ACCEPTED)
            return True
        self._move(ReferState.TERMINATED)
        return False

    def matches(self, notify: Request, only_one: bool = True) -> bool:
        """Is ``notify`` for this subscription? ``Event: refer`` with our id; without id when ``only_one``."""
        value = notify.headers.get("event")
        if value is None:
            return False
        try:
            event = parse_event(value)
        except ParseError:
            return False
        if event.package != "refer":
            return False
        return event.id == self.id if event.id is not None else only_one

    def on_notify(self, notify: Request) -> NotifyOutcome:
        """A NOTIFY that :meth:`matches`: read its sipfrag and subscription state.

        A NOTIFY may arrive before the 2xx to the REFER (RFC 6665 section 4.1.2.4): it counts as
        acceptance. A body that is not a sipfrag is answered 200 and carries no progress.
        """
        if self.state is ReferState.TERMINATED:
            return NotifyOutcome(481)
        if self.state is ReferState.SENT:
            self._move(ReferState.ACCEPTED)
        frag: SipFrag | None = None
        if notify.body:
            try:
                frag = parse_sipfrag(notify.body)
            except ParseError:
                frag = None
        if frag is not None:
            self.last = frag
        terminated = False
        value = notify.headers.get("subscription-state")
        if value is not None:
            try:
                terminated = parse_subscription_state(value).terminated
            except ParseError:
                terminated = False
        if terminated:
            self._move(ReferState.TERMINATED)
        return NotifyOutcome(200, frag, terminated)
