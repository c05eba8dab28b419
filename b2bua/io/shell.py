"""The asyncio shell around a sans-I/O SIP core: sockets in, ``core.receive``; ``core.take_datagrams``, sockets out.

The shell owns the loop, the clock and the sockets; the core owns every decision. After each call
into the core (a datagram, a framed TCP message, a timer, a transport error, or :meth:`SipShell.poke`
after the application called the core itself) the shell sends what the core queued and re-arms its
single ``loop.call_at`` handle at ``core.get_timer()``, as aioquic's asyncio adapter does.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Iterable
from functools import partial
from types import TracebackType
from typing import Any, Protocol, assert_never

from ..sip.address import Destination
from ..sip.overload import OverloadMonitor, OverloadSettings, OverloadState
from .loop import loop_name
from .metrics import LAG_SECONDS, Buckets
from .resolver import Address, Resolver, pick
from .tcp import TcpConnections
from .tls import TlsSettings
from .udp import UdpEndpoint, UdpSockets

__all__ = ["ListenAddress", "SipCore", "SipShell"]

logger = logging.getLogger("call_api.io")

#: Where to listen: (``"udp"``, ``"tcp"`` or ``"tls"``, host, port); port 0 picks a free port.
ListenAddress = tuple[str, str, int]

_TRANSPORTS = {"udp": socket.SOCK_DGRAM, "tcp": socket.SOCK_STREAM, "tls": socket.SOCK_STREAM}
_IP_FAMILIES = frozenset({int(socket.AF_INET), int(socket.AF_INET6)})
#: A loop with millisecond timers (uvloop) may wake this much early: a deadline that close counts as due.
_EARLY = 0.001
#: Where a wildcard listen address is reached from the host itself (the overload probe's target).
_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1"}


class SipCore(Protocol):
    """What the shell drives: the transaction layer, or a UA core exposing the same five methods."""

    def receive(self, data: bytes, source: Destination, now: float) -> None:
        """One datagram, or one message framed from a stream, from ``source``."""

    def handle_timer(self, now: float) -> None:
        """Fire whatever is due at ``now``."""

    def get_timer(self) -> float | None:
        """The next deadline (on the loop's clock), or ``None``."""

    def take_datagrams(self) -> list[tuple[bytes, Destination]]:
        """What to send, in order; the queue is emptied."""

    def transport_error(self, destination: Destination, now: float) -> None:
        """``destination`` could not be reached (connect or name resolution failed)."""


class SipShell:
    """Listens on UDP, TCP and TLS addresses and moves bytes between them and ``core``.

    Use as ``async with SipShell(core, [("udp", "127.0.0.1", 5060)]) as shell: ...`` or call
    :meth:`start` and :meth:`stop`. Call :meth:`poke` after calling the core directly, and pass it
    :meth:`time` as ``now``.
    """

    def __init__(
        self,
        core: SipCore,
        listen: Iterable[ListenAddress | Destination],
        *,
        max_message_size: int = 65535,
        tcp_idle_timeout: float = 300.0,
        connect_timeout: float = 10.0,
        dns_ttl: float = 60.0,
        udp_receive_buffer: int = 4 * 1024 * 1024,
        backlog: int = 1024,
        overload: OverloadSettings | None = None,
        on_admit: Callable[[float], None] | None = None,
        tls: TlsSettings | None = None,
    ) -> None:
        """``max_message_size`` bounds a message framed from TCP (larger ones close the connection);
        ``tcp_idle_timeout`` closes a connection after that many seconds without traffic either way;
        ``connect_timeout`` bounds an outgoing connect; ``dns_ttl`` is how long a name's addresses are
        cached; ``udp_receive_buffer`` is the SO_RCVBUF asked for (0: the system default).

        With ``overload`` (enabled) the shell runs a :class:`~b2bua.sip.overload.OverloadMonitor`: it sends
        the monitor's probe to its first UDP socket on the same loop timer as the core's, hands the echo
        back, logs every change of state and calls ``on_admit`` with the share of new calls to admit
        whenever it changes (the service hands it to the transaction layer, which answers the others
        503). Without a UDP socket there is no probe.

        ``tls`` gives the certificate a ``"tls"`` listen address presents and what outgoing TLS connections
        verify (without it: no TLS listener, and servers verified against the system's CAs)."""
        self._core = core
        self._listen: list[ListenAddress] = []
        for item in listen:
            transport, host, port = (item.transport, item.host, item.port) if isinstance(item, Destination) else item
            transport = transport.lower()
            if transport not in _TRANSPORTS:
                raise ValueError(f"cannot listen on {transport!r}: expected udp, tcp or tls")
            if not 0 <= port <= 65535:
                raise ValueError(f"bad port {port}")
            self._listen.append((transport, host, port))
        if not self._listen:
            raise ValueError("nothing to listen on")
        for name, value in (("max_message_size", max_message_size), ("tcp_idle_timeout", tcp_idle_timeout),
                            ("connect_timeout", connect_timeout)):
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        self._max_size = max_message_size
        self._idle_timeout = tcp_idle_timeout
        self._connect_timeout = connect_timeout
        self._dns_ttl = dns_ttl
        self._receive_buffer = udp_receive_buffer
        self._backlog = backlog
        #: The addresses actually listened on, in the order given (ports filled in), once started.
        self.bound: list[Destination] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = False
        self._in_flush = False
        self._handle: asyncio.TimerHandle | None = None
        self._deadline: float | None = None
        self._core_deadline: float | None = None
        self._overload = overload if overload is not None and overload.enabled else None
        self._on_admit = on_admit
        self._monitor: OverloadMonitor | None = None
        self._probe_to: tuple[str, int] = ("", 0)
        self._failed: list[Destination] = []
        self._tls_settings = tls or TlsSettings()
        self._tls: TcpConnections | None = None
        self._udp = UdpSockets()
        self._udp_senders = self._udp.senders
        self._udp_families: frozenset[int] = frozenset()
        self._families: frozenset[int] = frozenset()
        self._tcp: TcpConnections | None = None
        self._resolver: Resolver | None = None
        self._literals: dict[str, Address] = {}
        self._waiting: dict[str, list[tuple[bytes, Destination]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: How late the one loop timer fired, each time it fired: the event loop's lag, measured without a
        #: timer of its own (every 20 ms while overload control probes; ``GET /metrics`` reads it).
        self.lag = Buckets(LAG_SECONDS)

    # -- public API ---------------------------------------------------------------------------------

    @property
    def core(self) -> SipCore:
        return self._core

    @property
    def running(self) -> bool:
        return self._running

    @property
    def listen(self) -> tuple[ListenAddress, ...]:
        """The (transport, host, port) to listen on, as given (port 0 still 0; see :attr:`bound`)."""
        return tuple(self._listen)

    @property
    def max_message_size(self) -> int:
        """Largest message framed from a TCP stream."""
        return self._max_size

    @property
    def tcp_idle_timeout(self) -> float:
        """Seconds without traffic after which a TCP connection is closed."""
        return self._idle_timeout

    @property
    def overload(self) -> OverloadMonitor | None:
        """The overload monitor while running with overload control, else ``None``."""
        return self._monitor

    @property
    def queue_delay(self) -> float | None:
        """The overload monitor's last measured queue delay (seconds), or None without overload control."""
        return self._monitor.delay if self._monitor is not None else None

    @property
    def connections(self) -> int:
        """Open or opening TCP and TLS connections."""
        return sum(len(pool.all) for pool in (self._tcp, self._tls) if pool is not None)

    @property
    def tls(self) -> TlsSettings:
        """What TLS listeners present and outgoing TLS connections verify."""
        return self._tls_settings

    def time(self) -> float:
        """The clock the core is given as ``now`` (the loop's)."""
        if self._loop is None:
            raise RuntimeError("the shell is not started")
        return self._loop.time()

    async def start(self) -> None:
        """Bind every listen address (raising :class:`OSError` if one cannot be bound), then serve."""
        if self._running:
            raise RuntimeError("the shell is already started")
        loop = self._loop = asyncio.get_running_loop()
        self._resolver = Resolver(loop, self._dns_ttl)
        self._literals = self._resolver.literals
        core = self._core
        self._tcp = TcpConnections(loop, core.receive, self._flush, self._fail, max_size=self._max_size,
                                   idle_timeout=self._idle_timeout, connect_timeout=self._connect_timeout)
        tls = self._tls_settings
        server_ssl, client_ssl = tls.contexts(listening=any(t == "tls" for t, _, _ in self._listen))
        self._tls = TcpConnections(loop, core.receive, self._flush, self._fail, max_size=self._max_size,
                                   idle_timeout=self._idle_timeout, connect_timeout=self._connect_timeout,
                                   name="tls", server_ssl=server_ssl, client_ssl=client_ssl,
                                   handshake_timeout=tls.handshake_timeout)
        self._running = True
        families: set[int] = set()
        sources: dict[Any, Destination] = {}
        try:
            for transport, host, port in self._listen:
                kind = _TRANSPORTS[transport]
                infos = await loop.getaddrinfo(host, port, type=kind, flags=socket.AI_PASSIVE)
                family, _, _, _, sockaddr = infos[0]
                sock = _bind(family, kind, sockaddr, self._receive_buffer if transport == "udp" else 0)
                try:
                    name = sock.getsockname()
                    if transport == "udp":
                        _, endpoint = await loop.create_datagram_endpoint(
                            partial(UdpEndpoint, core.receive, loop.time, self._flush, sources), sock=sock)
                        self._udp.add(int(family), endpoint)
                    elif transport == "tls":
                        self._tls.listen_tls(sock, self._backlog)
                    else:
                        server = await loop.create_server(self._tcp.accept, sock=sock, backlog=self._backlog)
                        self._tcp.servers.append(server)
                except BaseException:
                    sock.close()
                    raise
                families.add(int(family))
                self.bound.append(Destination(transport, str(name[0]), int(name[1])))
        except BaseException:
            await self.stop()
            raise
        self._udp_families = frozenset(self._udp_senders)
        self._families = frozenset(families)
        self._tcp.start_sweeping()
        self._tls.start_sweeping()
        self._watch_overload(loop)
        logger.info("SIP listening on %s (%s loop)", ", ".join(map(str, self.bound)), loop_name(loop))
        self._flush()

    async def stop(self) -> None:
        """Stop listening and close every socket and connection; what the core still queues is dropped."""
        self._running = False
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._deadline = self._core_deadline = None
        self._monitor = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._waiting.clear()
        self._failed.clear()
        self._udp.close()
        for pool in (self._tcp, self._tls):
            if pool is not None:
                await pool.close()
        await asyncio.sleep(0)  # transports close their sockets on the next loop iteration
        self.bound.clear()

    def poke(self) -> None:
        """Send what the core queued and re-arm the timer: call after calling the core directly."""
        if not self._running:
            raise RuntimeError("the shell is not running")
        self._flush()

    async def __aenter__(self) -> SipShell:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    # -- after every call into the core ---------------------------------------------------------------

    def _flush(self) -> None:
        if self._in_flush or not self._running:
            return
        self._in_flush = True
        core = self._core
        try:
            while True:
                if self._failed:
                    self._report_failures()
                out = core.take_datagrams()
                if not out:
                    break
                send = self._send
                for data, destination in out:
                    try:
                        send(data, destination)
                    except Exception:
                        logger.exception("cannot send to %s", destination)
                if not self._failed:
                    break  # sending never calls the core: only failures to report can queue more
        finally:
            self._in_flush = False
        deadline = self._core_deadline = core.get_timer()
        monitor = self._monitor
        if monitor is not None:
            due = monitor.get_timer()
            if deadline is None or due < deadline:
                deadline = due
        if deadline != self._deadline:
            if self._handle is not None:
                self._handle.cancel()
            self._deadline = deadline
            if deadline is None:
                self._handle = None
            else:
                assert self._loop is not None
                self._handle = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        deadline = self._deadline
        self._handle = self._deadline = None
        assert self._loop is not None and deadline is not None
        now = self._loop.time()
        self.lag.observe(now - deadline if now > deadline else 0.0)
        monitor = self._monitor
        if monitor is not None and now >= monitor.get_timer() - _EARLY:
            self._probe(monitor, now)
        core_deadline = self._core_deadline
        if core_deadline is not None and core_deadline <= max(now, deadline) + _EARLY:
            # A loop with millisecond timers (uvloop) may wake a little early: the core must see its deadline.
            try:
                self._core.handle_timer(max(now, core_deadline))
            except Exception:
                logger.exception("the core failed in handle_timer")
        self._flush()

    # -- overload control (b2bua.sip.overload) ----------------------------------------------------------

    def _watch_overload(self, loop: asyncio.AbstractEventLoop) -> None:
        settings = self._overload
        if settings is None:
            return
        first = next((d for d in self.bound if d.transport == "udp"), None)
        if first is None or not self._udp.endpoints:
            logger.info("overload control off: no UDP socket to probe")
            return
        self._probe_to = (_LOOPBACK.get(first.host, first.host), first.port)
        self._udp.endpoints[0].watch_probes(self._probe_to, self._echo)
        self._monitor = OverloadMonitor(settings, loop.time())

    def _probe(self, monitor: OverloadMonitor, now: float) -> None:
        admit = monitor.admit
        data, moves = monitor.probe(now, time.thread_time())
        transport = self._udp.endpoints[0].transport if self._udp.endpoints else None
        if transport is not None and not transport.is_closing():
            transport.sendto(data, self._probe_to)
        self._overload_moved(monitor, moves, admit)

    def _echo(self, data: bytes, now: float) -> None:
        monitor = self._monitor
        if monitor is not None:
            admit = monitor.admit
            self._overload_moved(monitor, monitor.echo(data, now), admit)

    def _overload_moved(self, monitor: OverloadMonitor, moves: tuple[OverloadState, ...], admit: float) -> None:
        settings = monitor.settings
        for state in moves:
            match state:
                case OverloadState.SHEDDING:
                    logger.warning("overload: queue delay %.0f ms (above %.0f ms); new calls get 503 Retry-After "
                                   "%d until it drains", monitor.delay * 1000, settings.high * 1000,
                                   settings.retry_after)
                case OverloadState.EXCUSED if monitor.last_starved:
                    logger.warning("starved: with %.0f ms of queue standing, the loop did not run for %.0f ms of "
                                   "the last period (the host's doing); admitting calls while the backlog drains",
                                   monitor.standing * 1000, monitor.last_stall * 1000)
                case OverloadState.EXCUSED:
                    logger.warning("stall: the process did not run for %.0f ms; admitting calls while the "
                                   "backlog drains", monitor.last_stall * 1000)
                case OverloadState.ADMITTING:
                    logger.info("overload over: queue delay %.0f ms; admitting every new call", monitor.delay * 1000)
                case _:
                    assert_never(state)
        if monitor.admit != admit and self._on_admit is not None:
            try:
                self._on_admit(monitor.admit)
            except Exception:
                logger.exception("the overload callback failed")

    def _fail(self, destinations: list[Destination]) -> None:
        self._failed.extend(destinations)
        self._flush()

    def _report_failures(self) -> None:
        failed, self._failed = self._failed, []
        now = self.time()
        for destination in dict.fromkeys(failed):
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("transport error for %s", destination)
            try:
                self._core.transport_error(destination, now)
            except Exception:
                logger.exception("the core failed in transport_error")

    # -- sending --------------------------------------------------------------------------------------

    def _send(self, data: bytes, destination: Destination) -> None:
        address = self._literals.get(destination.host)
        if address is None:
            assert self._resolver is not None
            address = self._resolver.classify(destination.host)
        if address[0]:
            if destination.transport == "udp":
                sender = self._udp_senders.get(address[0])
                if sender is not None:
                    sender.sendto(data, (address[1], destination.port))
                    return
            self._route(data, destination, address)
        else:
            self._send_to_name(data, destination)

    def _route(self, data: bytes, destination: Destination, address: Address) -> None:
        family, ip = address
        transport = destination.transport
        if transport != "udp" and transport != "tcp":
            transport = transport.lower()
        if transport == "udp":
            if not self._udp.send(data, family, ip, destination.port):
                logger.info("cannot send to %s: no UDP socket of its address family", destination)
                self._failed.append(destination)
        elif transport == "tcp":
            assert self._tcp is not None
            self._tcp.send(data, destination, ip, destination.port)
        elif transport == "tls":
            assert self._tls is not None
            self._tls.send(data, destination, ip, destination.port)
        else:
            logger.warning("cannot send to %s: transport not supported", destination)
            self._failed.append(destination)

    def _send_to_name(self, data: bytes, destination: Destination) -> None:
        assert self._resolver is not None and self._loop is not None
        host = destination.host
        addresses = self._resolver.cached(host, self._loop.time())
        if addresses is not None:
            self._route_named(data, destination, addresses)
            return
        waiting = self._waiting.get(host)
        if waiting is None:
            waiting = self._waiting[host] = []
            task = self._loop.create_task(self._resolve(host))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        waiting.append((data, destination))

    def _route_named(self, data: bytes, destination: Destination, addresses: list[Address]) -> None:
        if destination.transport.lower() == "udp":
            address = pick(addresses, self._udp_families, self._udp_families)
        else:
            address = pick(addresses, _IP_FAMILIES, self._families)
        if address is None:
            logger.info("cannot send to %s: no address of a family the shell can send from", destination)
            self._failed.append(destination)
        else:
            self._route(data, destination, address)

    async def _resolve(self, host: str) -> None:
        assert self._resolver is not None
        try:
            addresses: list[Address] | None = await self._resolver.lookup(host)
        except OSError as exc:
            logger.info("cannot resolve %s: %s", host, exc)
            addresses = None
        waiting = self._waiting.pop(host, [])
        if not self._running:
            return
        for data, destination in waiting:
            if addresses is None:
                self._failed.append(destination)
            else:
                self._route_named(data, destination, addresses)
        self._flush()


def _bind(family: int, kind: int, sockaddr: tuple[Any, ...], receive_buffer: int) -> socket.socket:
    """A non-blocking socket bound to ``sockaddr``. IPv6 sockets are IPv6-only so that ``::`` and
    ``0.0.0.0`` can share a port; SO_RCVBUF is asked for and a refusal ignored."""
    sock = socket.socket(family, kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if receive_buffer:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            except OSError as exc:
                logger.info("SO_RCVBUF of %d bytes refused: %s", receive_buffer, exc)
        sock.bind(sockaddr)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
