"""An in-memory SIP network with a fake clock, for sans-I/O tests of the UA core and the call logic.

Each :class:`Node` is a :class:`~b2bua.sip.ua.UserAgent` at a loopback address; :meth:`Network.run`
delivers datagrams and fires timers in time order until nothing is left or a time limit is reached.
A drop rule can lose datagrams to show retransmissions at work.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from b2bua.sip.address import Destination
from b2bua.sip.message import Request, Response
from b2bua.sip.parser import parse_message
from b2bua.sip.timers import TimerSettings
from b2bua.sip.ua import UaSettings, UserAgent
from b2bua.sip.ua_events import UaEvent


class CountingIds:
    """Deterministic ids: ``z9hG4bK-<prefix>-1``, ``<prefix>-tag-2`` ..."""

    def __init__(self, prefix: str, glare: float = 0.0) -> None:
        self.prefix = prefix
        self.counter = itertools.count(1)
        self.glare = glare

    def branch(self) -> str:
        return f"z9hG4bK-{self.prefix}-{next(self.counter)}"

    def tag(self) -> str:
        return f"{self.prefix}-tag-{next(self.counter)}"

    def call_id(self) -> str:
        return f"{self.prefix}-call-{next(self.counter)}"

    def cnonce(self) -> str:
        return f"{self.prefix}-cnonce-{next(self.counter)}"

    def glare_delay(self, owner: bool) -> float:
        return self.glare or (3.0 if owner else 1.0)

    def retry_after(self) -> int:
        return 5

    def stable_tag(self, seed: str) -> str:
        return f"{self.prefix}-stable-{zlib.crc32(seed.encode()):08x}"


class Application(Protocol):
    def handle(self, event: UaEvent, now: float) -> None: ...


@dataclass
class Node:
    name: str
    ua: UserAgent
    address: Destination
    events: list[UaEvent] = field(default_factory=list)
    #: Every message this node received, parsed, in order.
    inbox: list[Request | Response] = field(default_factory=list)
    #: An application run on the UA's events (the B2BUA); without one, events collect in ``events``.
    app: Application | None = None


DropRule = Callable[[Node, Node, Request | Response], bool]



class Network:
    """Nodes on 127.0.0.x:5060 exchanging datagrams instantly (or after ``latency``), on a fake clock."""

    def __init__(self, latency: float = 0.001, timers: TimerSettings | None = None) -> None:
        self.now = 0.0
        self.latency = latency
        self.timers = timers or TimerSettings()
        self.nodes: dict[tuple[str, int], Node] = {}
        self.queue: list[tuple[float, int, bytes, Destination, Destination]] = []
        self.seq = itertools.count()
        self.drop: DropRule = lambda src, dst, msg: False
        self.log: list[tuple[float, str, str, Request | Response]] = []

    def add(self, name: str, host: str, settings: UaSettings | None = None, port: int = 5060) -> Node:
        base = settings or UaSettings()
        ua = UserAgent(CountingIds(name), replace(base, host=host, port=port), self.timers)
        node = Node(name, ua, Destination("udp", host, port))
        self.nodes[(host, port)] = node
        if base.tls_port is not None:
            self.nodes[(host, base.tls_port)] = node  # its TLS listener: the same node
        return node

    def flush(self, node: Node) -> None:
        if node.app is not None:
            for _ in range(1000):
                events = node.ua.take_events()
                if not events:
                    break
                node.events.extend(events)
                for event in events:
                    node.app.handle(event, self.now)
        for data, dest in node.ua.take_datagrams():
            self.queue.append((self.now + self.latency, next(self.seq), data, node.address, dest))
        if node.app is None:
            node.events.extend(node.ua.take_events())

    def flush_all(self) -> None:
        for node in self.nodes.values():
            self.flush(node)

    def step(self) -> bool:
        """Deliver the next datagram or fire the next timer; False when nothing is left."""
        self.flush_all()
        next_timer = min(
            ((t, n) for n in self.nodes.values() if (t := n.ua.get_timer()) is not None),
            default=None, key=lambda x: x[0],
        )
        next_packet = min(self.queue, default=None)
        if next_packet is None and next_timer is None:
            return False
        if next_packet is not None and (next_timer is None or next_packet[0] <= next_timer[0]):
            self.queue.remove(next_packet)
            at, _, data, src, dst = next_packet
            self.now = max(self.now, at)
            sender = self.nodes[(src.host, src.port)]
            target = self.nodes.get((dst.host, dst.port))
            if dst.transport != src.transport:
                # Over a connection (TCP, TLS) the receiver sees the sender's transport as the one it came on.
                src = Destination(dst.transport, src.host, src.port)
            msg = parse_message(data, check=False)
            if target is None:
                return True
            if self.drop(sender, target, msg):
                self.log.append((self.now, sender.name, f"{target.name} (dropped)", msg))
                return True
            self.log.append((self.now, sender.name, target.name, msg))
            target.inbox.append(msg)
            target.ua.receive(data, src, self.now)
            self.flush(target)
        else:
            assert next_timer is not None
            self.now = max(self.now, next_timer[0])
            next_timer[1].ua.handle_timer(self.now)
            self.flush(next_timer[1])
        return True

    def run(self, until: float | None = None, max_steps: int = 100_000) -> None:
        """Run until nothing is left to do, or until the clock passes ``until``."""
        for _ in range(max_steps):
            if until is not None:
                t = self._next_time()
                if t is None or t > until:
                    self.now = max(self.now, until)
                    self.flush_all()
                    return
            if not self.step():
                return
        raise AssertionError("the network did not settle")

    def settle(self, seconds: float = 2.0) -> None:
        """Run for ``seconds`` of fake time: long enough for exchanges, short of call timeouts."""
        self.run(until=self.now + seconds)

    def _next_time(self) -> float | None:
        self.flush_all()
        times = [q[0] for q in self.queue] + [t for n in self.nodes.values() if (t := n.ua.get_timer()) is not None]
        return min(times, default=None)

    def send_raw(self, data: bytes, src: Destination, dst: Node) -> None:
        """Inject bytes as if ``src`` had sent them."""
        self.queue.append((self.now, next(self.seq), data, src, dst.address))

    def sent(self, method_or_status: str | int, sender: str | None = None) -> list[Request | Response]:
        """Messages delivered (not dropped), by request method or response status."""
        out = []
        for _, src, dst, msg in self.log:
            if dst.endswith("(dropped)") or (sender is not None and src != sender):
                continue
            if isinstance(method_or_status, int):
                if isinstance(msg, Response) and msg.status == method_or_status:
                    out.append(msg)
            elif isinstance(msg, Request) and msg.method == method_or_status:
                out.append(msg)
        return out
