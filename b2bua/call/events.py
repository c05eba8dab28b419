"""What a command (flow) reports, in the vocabulary of the API's seed: ``Event`` (with ``data`` such as
CALL_ANSWER, TRANSFER_ACCEPT, CALL_START, CALL_HOLD, CALL_UNHOLD), ``Error``, and a final ``Ended``."""

from __future__ import annotations

from dataclasses import dataclass

from .leg import LegName


@dataclass(frozen=True, slots=True)
class FlowEvent:
    """A step of a command: ``data`` is the seed's event name."""

    data: str
    #: The Call-ID the step concerns (a leg's dialog, or the new call a transfer made).
    callid: str | None = None
    #: ``caller`` or ``callee`` when one party is meant.
    leg: LegName | None = None
    #: The SIP status line that caused it, e.g. ``SIP/2.0 200 OK``.
    status: str | None = None


@dataclass(frozen=True, slots=True)
class FlowError:
    """The command failed: ``code`` is the SIP status that caused it, or a service code (see docs/API.md)."""

    code: int
    message: str


@dataclass(frozen=True, slots=True)
class FlowEnded:
    """The command is over; always the last thing it reports, exactly once."""


FlowReport = FlowEvent | FlowError | FlowEnded

#: Service codes for failures that have no SIP status.
TIMEOUT = 408
WRONG_ANSWER = 488
