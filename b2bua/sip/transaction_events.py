"""What the transaction machines output: frozen, slotted dataclasses the transaction layer dispatches on.

Every entry point of a machine returns a list of these, in the order they must be carried out.
``Transmit`` goes to the transport; ``ResponseToTU``, ``AckToTU``, ``TimedOut`` and ``TransportFailed``
go to the transaction user (RFC 3261 section 17); ``Terminated`` tells the layer to forget the machine.
"""

from __future__ import annotations

from dataclasses import dataclass

from .address import Destination
from .message import Request, Response


@dataclass(frozen=True, slots=True)
class Transmit:
    """Send ``message`` to ``destination`` (a first transmission or a retransmission)."""

    message: Request | Response
    destination: Destination


@dataclass(frozen=True, slots=True)
class ResponseToTU:
    """A client transaction passes a response up (RFC 3261 section 17.1.1.2, 17.1.2.2; RFC 6026 section 8.4)."""

    response: Response


@dataclass(frozen=True, slots=True)
class AckToTU:
    """An INVITE server transaction in Accepted passes an ACK up (RFC 6026 section 8.7)."""

    request: Request


@dataclass(frozen=True, slots=True)
class TimedOut:
    """Timer B or F fired without a final response (``reason`` "no response"), or H without an ACK ("no ACK")."""

    reason: str
    #: The RFC 3261 timer that fired: "B", "F" or "H".
    timer: str = ""


@dataclass(frozen=True, slots=True)
class TransportFailed:
    """The transport could not send one of this transaction's messages (RFC 3261 section 17.1.4, 17.2.4)."""

    reason: str = ""


@dataclass(frozen=True, slots=True)
class Terminated:
    """The transaction reached Terminated: the layer removes it and sends it nothing more."""


#: One output of a transaction machine.
Action = Transmit | ResponseToTU | AckToTU | TimedOut | TransportFailed | Terminated

__all__ = ["AckToTU", "Action", "ResponseToTU", "Terminated", "TimedOut", "Transmit", "TransportFailed"]
