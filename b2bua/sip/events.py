"""What the transaction layer tells its user (the UA core): frozen, slotted dataclasses.

The layer has already absorbed retransmissions, answered malformed requests and the section 8.2
checks, and matched responses to their transactions; each event here is news for the TU.
"""

from __future__ import annotations

from dataclasses import dataclass

from .address import Destination
from .message import Request, Response
from .transaction_client import ClientTransaction
from .transaction_server import ServerTransaction


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request that passed the section 8.2 checks; the TU answers it through ``transaction``."""

    request: Request
    transaction: ServerTransaction
    #: Where it came from (the connection or datagram source, RFC 3261 section 18.2.1).
    source: Destination


@dataclass(frozen=True, slots=True)
class AckReceived:
    """An ACK for a 2xx (RFC 3261 section 17.1.1.3: its own transaction, end to end), or one that an INVITE
    server transaction in Accepted passed up (RFC 6026 section 8.7)."""

    request: Request
    source: Destination


@dataclass(frozen=True, slots=True)
class CancelReceived:
    """A CANCEL for a pending INVITE; the layer already answered 200 to the CANCEL (section 9.2).

    The TU sends 487 on ``invite`` if it has not sent a final response yet.
    """

    request: Request
    invite: ServerTransaction


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response for one of the TU's client transactions (retransmitted 2xx to INVITE included)."""

    response: Response
    transaction: ClientTransaction


@dataclass(frozen=True, slots=True)
class StrayResponse:
    """A 2xx to INVITE that matches no transaction any more (a late retransmission, or another fork's):
    the UA core re-sends its ACK or ends the extra dialog (RFC 3261 section 13.2.2.4)."""

    response: Response


@dataclass(frozen=True, slots=True)
class TransactionTimedOut:
    """A transaction gave up: Timer B/F (no final response) or H (no ACK); or the transport failed."""

    transaction: ClientTransaction | ServerTransaction
    reason: str


@dataclass(frozen=True, slots=True)
class TransactionEnded:
    """A transaction reached Terminated and was forgotten (for the TU's own bookkeeping)."""

    transaction: ClientTransaction | ServerTransaction


LayerEvent = (
    RequestReceived | AckReceived | CancelReceived | ResponseReceived | StrayResponse | TransactionTimedOut
    | TransactionEnded
)
