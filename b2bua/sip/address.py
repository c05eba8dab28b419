"""Where a message goes: a transport, a host and a port (RFC 3261 section 18).

The transaction machines never resolve or open anything; they hand a :class:`Destination` to the
layer with each message to send (RFC 3261 section 18.1.1 for requests, section 18.2.2 for responses).
"""

from __future__ import annotations

from dataclasses import dataclass

from .uri import host_reference


@dataclass(frozen=True, slots=True)
class Destination:
    """A resolved next hop: ``transport`` is ``"udp"``, ``"tcp"`` (or another reliable transport)."""

    #: The transport name in lower case: ``"udp"`` is the only unreliable one the service speaks.
    transport: str
    #: An IP address or host name, as the layer will hand it to the socket.
    host: str
    #: The port number.
    port: int

    @property
    def reliable(self) -> bool:
        """Does the transport retransmit by itself? Decides which timers run (RFC 3261 section 17, Table 4)."""
        return self.transport.lower() != "udp"

    def __str__(self) -> str:
        host = host_reference(self.host)
        return f"{self.transport}:{host}:{self.port}"
