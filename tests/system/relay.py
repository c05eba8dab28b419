"""A lossy UDP wire between one SIPp phone and the rig's proxy: seeded drop, delay and reorder.

Why a relay and not SIPp's ``-lost``: SIPp's stock ``uas`` kills its call when ``-lost`` drops the
first INVITE (the retransmission is then an "unexpected message", issue 17), and ``-lost`` is not
seeded, so a failing run cannot be replayed.  Why not ``tc netem``: this kernel has no ``sch_netem``.
A relay loses datagrams the way a network does, so every scenario of ``sipp-scenarios/`` runs under
loss unchanged, the -3pcc transferee pairs included, and a seed replays the same losses.

The phone is a SIPp on a private port; the relay owns the phone's rig port (the one kamailio.cfg
routes its user to) and a phone-facing socket that SIPp sends to (its ``remote``).  Like a NAT's SIP
ALG, it rewrites ``127.0.0.1:<private port>`` into ``127.0.0.1:<rig port>`` in the header part of what
the phone sends, and back in what it gets, so the Via, Contact and From the proxy and the service see
name the relay, and in-dialog requests come through it too.  Bodies are left alone (SDP carries no
``host:port``), so Content-Length stays true.  SIPp as a UAS answers the address a request came from,
which is the relay's phone-facing socket.

Each direction has its own ``random.Random(seed, direction)``; a datagram is dropped with probability
``loss``, else held a uniform ``0..jitter`` seconds (datagrams overtake each other: reordering).
"""

from __future__ import annotations

import contextlib
import heapq
import random
import re
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Self

LOOPBACK = "127.0.0.1"
Direction = Literal["to_phone", "from_phone"]


@dataclass(slots=True)
class LinkCounts:
    """What the relay did with the datagrams of one direction."""

    forwarded: int = 0
    dropped: int = 0

    def __str__(self) -> str:
        return f"{self.forwarded} forwarded, {self.dropped} dropped"


@dataclass(frozen=True, slots=True)
class Impairment:
    """How bad the wire is, the same in both directions."""

    loss: float = 0.0
    """Probability that a datagram is dropped, 0..1."""
    jitter: float = 0.0
    """Each datagram kept is held a uniform 0..jitter seconds: with jitter above the gap between two
    datagrams, the later one may overtake (reordering, as a multipath network does)."""
    seed: int = 0
    """Seeds the drops and delays of both directions, so a run can be replayed."""


def address_pattern(port: int) -> re.Pattern[bytes]:
    """``127.0.0.1:<port>`` as a whole port (``:5662`` does not match ``:56620``)."""
    return re.compile(rb"127\.0\.0\.1:" + str(port).encode() + rb"(?![0-9])")


def rewrite_headers(datagram: bytes, pattern: re.Pattern[bytes], replacement: bytes) -> bytes:
    """``datagram`` with ``pattern`` replaced in its start line and headers only (the body keeps its length)."""
    head, sep, body = datagram.partition(b"\r\n\r\n")
    return pattern.sub(replacement, head) + sep + body


@dataclass(order=True, slots=True)
class _Held:
    due: float
    order: int
    direction: Direction = field(compare=False)
    datagram: bytes = field(compare=False)


class LossyRelay:
    """One phone's lossy link: ``rig_port`` faces the proxy, ``phone_side`` faces the SIPp on ``phone_port``.

    Runs in a thread of its own (the service under test may run in this process's event loop).
    """

    def __init__(self, *, rig_port: int, phone_port: int, proxy_port: int, impairment: Impairment) -> None:
        self.rig_port = rig_port
        self.phone_port = phone_port
        self.proxy = (LOOPBACK, proxy_port)
        self.impairment = impairment
        self.counts: dict[Direction, LinkCounts] = {"to_phone": LinkCounts(), "from_phone": LinkCounts()}
        self._random: dict[Direction, random.Random] = {
            "to_phone": random.Random(f"{impairment.seed}:to_phone"),
            "from_phone": random.Random(f"{impairment.seed}:from_phone"),
        }
        self._to_rig = (address_pattern(phone_port), f"{LOOPBACK}:{rig_port}".encode())
        self._to_phone = (address_pattern(rig_port), f"{LOOPBACK}:{phone_port}".encode())
        self._network = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._phone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._held: list[_Held] = []
        self._order = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def phone_side(self) -> str:
        """``host:port`` the phone sends to (its SIPp ``remote``)."""
        return f"{LOOPBACK}:{self._phone.getsockname()[1]}"

    def start(self) -> Self:
        """Bind both sockets and start relaying."""
        self._network.bind((LOOPBACK, self.rig_port))
        self._phone.bind((LOOPBACK, 0))
        self._thread = threading.Thread(target=self._run, name=f"relay-{self.rig_port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop relaying and close both sockets (whatever is still held is dropped)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._network.close()
        self._phone.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __str__(self) -> str:
        return (f"relay :{self.rig_port} <-> phone :{self.phone_port} (loss {self.impairment.loss:.0%}, "
                f"seed {self.impairment.seed}): to phone {self.counts['to_phone']}; "
                f"from phone {self.counts['from_phone']}")

    @property
    def dropped(self) -> int:
        """Datagrams dropped in both directions."""
        return sum(count.dropped for count in self.counts.values())

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._network, selectors.EVENT_READ, "to_phone")
            selector.register(self._phone, selectors.EVENT_READ, "from_phone")
            while not self._stop.is_set():
                now = time.monotonic()
                while self._held and self._held[0].due <= now:
                    held = heapq.heappop(self._held)
                    self._send(held.direction, held.datagram)
                timeout = 0.05 if not self._held else max(0.0, min(0.05, self._held[0].due - now))
                for key, _ in selector.select(timeout):
                    direction: Direction = key.data
                    sock = self._network if direction == "to_phone" else self._phone
                    with contextlib.suppress(BlockingIOError, ConnectionRefusedError):
                        datagram = sock.recv(65535)
                        self._take(direction, datagram)

    def _take(self, direction: Direction, datagram: bytes) -> None:
        rng = self._random[direction]
        if rng.random() < self.impairment.loss:
            self.counts[direction].dropped += 1
            return
        delay = rng.uniform(0.0, self.impairment.jitter) if self.impairment.jitter else 0.0
        if delay <= 0:
            self._send(direction, datagram)
            return
        self._order += 1
        heapq.heappush(self._held, _Held(time.monotonic() + delay, self._order, direction, datagram))

    def _send(self, direction: Direction, datagram: bytes) -> None:
        self.counts[direction].forwarded += 1
        with contextlib.suppress(ConnectionRefusedError, OSError):
            if direction == "to_phone":
                pattern, replacement = self._to_phone
                self._phone.sendto(rewrite_headers(datagram, pattern, replacement), (LOOPBACK, self.phone_port))
            else:
                pattern, replacement = self._to_rig
                self._network.sendto(rewrite_headers(datagram, pattern, replacement), self.proxy)
