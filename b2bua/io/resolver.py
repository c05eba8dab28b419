"""Turning a destination host into an address to send to: IP literals at once, names through getaddrinfo.

RFC 3263 (NAPTR and SRV) is not done here: a name is looked up for A and AAAA records only, as
RFC 3263 section 4.2 does once a port is known. Answers are cached for ``ttl`` seconds.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Collection, Sequence

__all__ = ["Address", "Resolver", "pick"]

#: (address family, canonical IP text); family 0 marks a host name.
Address = tuple[int, str]

_MAX_ENTRIES = 4096


class Resolver:
    """IP literals recognised once and remembered; names looked up on the loop's resolver and cached."""

    __slots__ = ("_loop", "_names", "_ttl", "literals")

    def __init__(self, loop: asyncio.AbstractEventLoop, ttl: float = 60.0) -> None:
        self._loop = loop
        self._ttl = ttl
        #: host as written -> (family, canonical IP), or (0, host) for a name. Read directly on the hot path.
        self.literals: dict[str, Address] = {}
        self._names: dict[str, tuple[float, list[Address]]] = {}

    def classify(self, host: str) -> Address:
        """``(family, canonical IP)`` for an IP literal (brackets allowed), ``(0, host)`` for a name."""
        found = self.literals.get(host)
        if found is None:
            if len(self.literals) >= _MAX_ENTRIES:
                self.literals.clear()
            found = self.literals[host] = _classify(host)
        return found

    def cached(self, host: str, now: float) -> list[Address] | None:
        """The unexpired addresses of a name, or ``None`` when it has to be looked up."""
        entry = self._names.get(host)
        if entry is None:
            return None
        if entry[0] <= now:
            del self._names[host]
            return None
        return entry[1]

    async def lookup(self, host: str) -> list[Address]:
        """Ask the system resolver for ``host``'s addresses (raises :class:`OSError`) and cache them. A name the
        IDNA codec refuses (an empty label, one over 63 characters: a hostile Via or Contact) raises
        :class:`UnicodeError` out of ``getaddrinfo``; it is a name that cannot be resolved, so it raises
        :class:`OSError` like any other (found by the network fuzzer: it escaped the shell's lookup task, logged
        a traceback and left the messages waiting for that name queued for ever)."""
        try:
            infos = await self._loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except UnicodeError as error:
            raise OSError(f"not a name that can be looked up ({error})") from error
        addresses: list[Address] = []
        for family, _, _, _, sockaddr in infos:
            if family in (socket.AF_INET, socket.AF_INET6):
                address = (int(family), _classify(str(sockaddr[0]))[1])
                if address not in addresses:
                    addresses.append(address)
        if not addresses:
            raise OSError(f"no IPv4 or IPv6 address for {host}")
        if len(self._names) >= _MAX_ENTRIES:
            self._names.clear()
        self._names[host] = (self._loop.time() + self._ttl, addresses)
        return addresses


def pick(addresses: Sequence[Address], usable: Collection[int], preferred: Collection[int]) -> Address | None:
    """The first address of a family in ``preferred``, else the first in ``usable``, else ``None``."""
    for address in addresses:
        if address[0] in preferred:
            return address
    for address in addresses:
        if address[0] in usable:
            return address
    return None


def _classify(host: str) -> Address:
    text = host[1:-1] if host[:1] == "[" and host[-1:] == "]" else host
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return (0, host)
    return (socket.AF_INET6 if ip.version == 6 else socket.AF_INET, ip.compressed)
