"""UDP: listening sockets that hand every datagram to the core and send what it queues (RFC 3261 section 18).

The receive path is the hot one: a datagram becomes one ``core.receive`` call and one flush, with the
source :class:`Destination` taken from a cache instead of built per packet.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, cast

from ..sip.address import Destination
from ..sip.overload import PROBE_MARK

__all__ = ["UdpEndpoint", "UdpSockets"]

logger = logging.getLogger("call_api.io")

Receive = Callable[[bytes, Destination, float], None]

_MAX_SOURCES = 65536


class UdpEndpoint(asyncio.DatagramProtocol):
    """One listening UDP socket: datagrams go to ``receive``, then ``flush`` sends the answers."""

    __slots__ = ("_clock", "_echo", "_flush", "_probe_from", "_receive", "_sources", "transport")

    def __init__(self, receive: Receive, clock: Callable[[], float], flush: Callable[[], None],
                 sources: dict[Any, Destination]) -> None:
        self._receive = receive
        self._clock = clock
        self._flush = flush
        self._sources = sources
        self.transport: asyncio.DatagramTransport | None = None
        self._probe_from: tuple[str, int] | None = None
        self._echo: Callable[[bytes, float], None] | None = None

    def watch_probes(self, source: tuple[str, int], echo: Callable[[bytes, float], None]) -> None:
        """Datagrams from ``source`` that start with :data:`~b2bua.sip.overload.PROBE_MARK` are the
        shell's own overload probes: they go to ``echo`` instead of the core."""
        self._probe_from = source
        self._echo = echo

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's selector transport does not subclass DatagramTransport (3.11), hence no isinstance check.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if data[:1] == PROBE_MARK and self._echo is not None and self._probe_from == addr[:2]:
            self._echo(data, self._clock())
            self._flush()
            return
        source = self._sources.get(addr)
        if source is None:
            source = self._source(addr)
        try:
            self._receive(data, source, self._clock())
        except Exception:
            logger.exception("the core failed on a datagram from %s", source)
        self._flush()

    def _source(self, addr: tuple[str | Any, int]) -> Destination:
        sources = self._sources
        if len(sources) >= _MAX_SOURCES:
            sources.clear()
        source = sources[addr] = Destination("udp", str(addr[0]), int(addr[1]))
        return source

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: UDP has no connection to fail, the transaction timers decide.
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("UDP error ignored: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


class UdpSockets:
    """The UDP endpoints, and per address family the one that sends."""

    __slots__ = ("endpoints", "senders")

    def __init__(self) -> None:
        self.endpoints: list[UdpEndpoint] = []
        #: Address family -> the transport that sends to addresses of that family (the first bound).
        self.senders: dict[int, asyncio.DatagramTransport] = {}

    def add(self, family: int, endpoint: UdpEndpoint) -> None:
        self.endpoints.append(endpoint)
        if endpoint.transport is not None:
            self.senders.setdefault(family, endpoint.transport)

    def send(self, data: bytes, family: int, ip: str, port: int) -> bool:
        """Send from the first socket of ``family``; ``False`` when there is none to send from."""
        transport = self.senders.get(family)
        if transport is None or transport.is_closing():
            return False
        transport.sendto(data, (ip, port))
        return True

    def close(self) -> None:
        for endpoint in self.endpoints:
            if endpoint.transport is not None:
                endpoint.transport.close()
        self.endpoints.clear()
        self.senders.clear()

