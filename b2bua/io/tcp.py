"""TCP and TLS: accepted and outgoing connections, indexed by the peer's (IP, port) (RFC 3261 section 18).

A response goes back over the connection its request came on (section 18.2.2) and a request to a peer
reuses any open connection to it, whichever side opened it. Each connection frames its stream with
:class:`~b2bua.io.framing.StreamFramer`, answers keep-alive pings (RFC 5626 section 4.4.1), and is
closed on a framing error or after ``idle_timeout`` seconds without traffic.

TLS (RFC 3261 section 26.2, RFC 5630) is the same framing over an ``ssl`` transport: one pool per
transport name, the TLS pool holding the contexts. An outgoing connection verifies the server's certificate
for the host the URI named (RFC 5922 section 7), before any address lookup. The TLS listener accepts with
``loop.sock_accept`` and hands each socket to ``loop.connect_accepted_socket(ssl=...)`` under a handshake
timeout, which raises when the handshake fails: a client speaking plain text, presenting a certificate not
trusted (when client certificates are asked for), stalling, closing or resetting mid-handshake is refused
with one log line naming it and the reason, on uvloop and asyncio alike (``create_server(ssl=...)`` drops
these silently on both).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable
from typing import cast

from ..sip.address import Destination
from .framing import StreamFramer

__all__ = ["TcpConnection", "TcpConnections"]

logger = logging.getLogger("call_api.io")

Receive = Callable[[bytes, Destination, float], None]
Peer = tuple[str, int]

#: Bytes a peer may leave unread in our send buffer before its connection is dropped.
WRITE_BUFFER_LIMIT = 4 * 1024 * 1024


class TcpConnection(asyncio.Protocol):
    """One TCP connection: frames what arrives for the core, writes what the core sends."""

    __slots__ = ("_pool", "closing", "framer", "last", "paused", "peer", "pending", "source", "task", "transport")

    def __init__(self, pool: TcpConnections, peer: Peer | None) -> None:
        self._pool = pool
        #: (IP, port) of the other side; for an accepted connection known once it is made.
        self.peer = peer
        self.source = Destination(pool.name, peer[0], peer[1]) if peer is not None else None
        self.framer = StreamFramer(pool.max_size)
        self.transport: asyncio.Transport | None = None
        #: What was sent while connecting, with where it was meant to go (for the transport error).
        self.pending: list[tuple[bytes, Destination]] = []
        self.task: asyncio.Task[None] | None = None
        self.last = pool.clock()
        self.closing = False
        self.paused = False

    def __repr__(self) -> str:
        return f"<TcpConnection {self.source}>"

    # -- asyncio callbacks ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)
        pool = self._pool
        self.last = pool.clock()
        if self.peer is None:
            name = transport.get_extra_info("peername")
            if name is None:
                # Reset by the peer before the accept completed (a scanner's connect and RST): there is
                # nobody to serve or to log about; connection_lost follows.
                transport.abort()
                return
            self.peer = (str(name[0]), int(name[1]))
            self.source = Destination(pool.name, self.peer[0], self.peer[1])
            pool.accepted(self)
        if self.pending:
            transport.write(b"".join(data for data, _ in self.pending))
            self.pending.clear()

    def data_received(self, data: bytes) -> None:
        pool = self._pool
        now = pool.clock()
        self.last = now
        framer = self.framer
        pings = framer.pings
        messages = framer.feed(data)
        if framer.pings != pings and self.transport is not None:
            self.transport.write(b"\r\n" * (framer.pings - pings))
        if messages:
            receive = pool.receive
            source = self.source
            assert source is not None
            for message in messages:
                try:
                    receive(message, source, now)
                except Exception:
                    logger.exception("the core failed on a message from %s", source)
            pool.flush()
        if framer.error is not None:
            logger.info("closing connection with %s: %s", self.source, framer.error.reason)
            self.close()

    def eof_received(self) -> bool | None:
        self._detach()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._detach()
        self._pool.lost(self)
        if self.source is not None and logger.isEnabledFor(logging.DEBUG):
            logger.debug("connection with %s closed%s", self.source, f": {exc}" if exc else "")

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False

    # -- the shell's side ---------------------------------------------------------------------------

    def send(self, data: bytes, destination: Destination) -> None:
        """Write ``data``, or hold it until the connection is made."""
        transport = self.transport
        if transport is None:
            self.pending.append((data, destination))
            return
        transport.write(data)
        self.last = self._pool.clock()
        if self.paused and transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT:
            logger.warning("%s does not read what is sent to it: closing the connection", self.source)
            self.close(abort=True)

    def close(self, abort: bool = False) -> None:
        """Stop using the connection at once: new sends to its peer open another one."""
        self._detach()
        if self.transport is not None:
            if abort:
                self.transport.abort()
            else:
                self.transport.close()

    def _detach(self) -> None:
        self.closing = True
        self._pool.unindex(self)


class TcpConnections:
    """Every connection of one stream transport (``"tcp"`` or ``"tls"``, :attr:`name`) of the shell: the
    listening servers, the index by peer and the idle sweep. ``server_ssl`` and ``client_ssl`` make it TLS:
    accepted connections get a handshake within ``handshake_timeout`` seconds, outgoing ones verify the server
    as ``client_ssl`` says."""

    __slots__ = ("_connect_timeout", "_failed", "_handshake_timeout", "_handshakes", "_idle_timeout", "_listeners",
                 "_loop", "_sweeper", "all", "by_peer", "client_ssl", "clock", "flush", "max_size", "name", "receive",
                 "server_ssl", "servers")

    def __init__(self, loop: asyncio.AbstractEventLoop, receive: Receive, flush: Callable[[], None],
                 failed: Callable[[list[Destination]], None], *, max_size: int, idle_timeout: float,
                 connect_timeout: float, name: str = "tcp", server_ssl: ssl.SSLContext | None = None,
                 client_ssl: ssl.SSLContext | None = None, handshake_timeout: float = 10.0) -> None:
        self.name = name
        self.server_ssl = server_ssl
        self.client_ssl = client_ssl
        self._handshake_timeout = handshake_timeout
        #: TLS handshakes of accepted connections in progress.
        self._handshakes: set[asyncio.Task[None]] = set()
        #: The TLS listening sockets and their accept loops.
        self._listeners: list[tuple[socket.socket, asyncio.Task[None]]] = []
        self._loop = loop
        self.clock = loop.time
        self.receive = receive
        self.flush = flush
        self._failed = failed
        self.max_size = max_size
        self._idle_timeout = idle_timeout
        self._connect_timeout = connect_timeout
        self.servers: list[asyncio.AbstractServer] = []
        #: Connections to send on, by peer (IP, port).
        self.by_peer: dict[Peer, TcpConnection] = {}
        #: Every connection not yet lost, connecting ones included.
        self.all: set[TcpConnection] = set()
        self._sweeper: asyncio.TimerHandle | None = None

    def accept(self) -> TcpConnection:
        """The protocol factory of the TCP listening servers."""
        return TcpConnection(self, None)

    def listen_tls(self, sock: socket.socket, backlog: int) -> None:
        """Serve TLS on the bound socket ``sock``: accept, then a handshake per connection (:meth:`_handshake`)."""
        sock.listen(backlog)
        task = self._loop.create_task(self._accept_loop(sock))
        self._listeners.append((sock, task))

    async def _accept_loop(self, sock: socket.socket) -> None:
        loop = self._loop
        while True:
            try:
                client, address = await loop.sock_accept(sock)
            except OSError as exc:
                # Out of descriptors (EMFILE) and the like: say so, let some close, and go on accepting.
                logger.warning("TLS listener %s cannot accept: %s", sock.getsockname()[:2], exc)
                await asyncio.sleep(0.1)
                continue
            peer = Destination(self.name, str(address[0]), int(address[1]))
            task = loop.create_task(self._handshake(client, peer))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    async def _handshake(self, client: socket.socket, peer: Destination) -> None:
        assert self.server_ssl is not None
        conn = TcpConnection(self, None)
        try:
            await self._loop.connect_accepted_socket(lambda: conn, client, ssl=self.server_ssl,
                                                     ssl_handshake_timeout=self._handshake_timeout)
        except asyncio.CancelledError:
            client.close()
            raise
        except Exception as exc:
            client.close()
            logger.info("TLS handshake with %s refused: %s", peer, _tls_reason(exc, self._handshake_timeout))

    def accepted(self, conn: TcpConnection) -> None:
        assert conn.peer is not None
        self.all.add(conn)
        self.by_peer.setdefault(conn.peer, conn)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("TCP connection from %s accepted", conn.source)

    def send(self, data: bytes, destination: Destination, ip: str, port: int) -> None:
        """Send over the open connection to (``ip``, ``port``), or open one (over TLS, verifying the server's
        certificate for ``destination.host``, the name before resolution)."""
        conn = self.by_peer.get((ip, port))
        if conn is None:
            conn = self._open((ip, port), destination.host)
        conn.send(data, destination)

    def _open(self, peer: Peer, hostname: str) -> TcpConnection:
        conn = TcpConnection(self, peer)
        self.by_peer[peer] = conn
        self.all.add(conn)
        conn.task = self._loop.create_task(self._connect(conn, peer, hostname))
        return conn

    async def _connect(self, conn: TcpConnection, peer: Peer, hostname: str) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("connecting to %s", conn.source)
        try:
            async with asyncio.timeout(self._connect_timeout):
                if self.client_ssl is None:
                    await self._loop.create_connection(lambda: conn, peer[0], peer[1])
                else:
                    await self._loop.create_connection(lambda: conn, peer[0], peer[1], ssl=self.client_ssl,
                                                       server_hostname=hostname,
                                                       ssl_handshake_timeout=self._handshake_timeout)
        except asyncio.CancelledError:
            self._drop(conn)
            raise
        except Exception as exc:
            if self.client_ssl is not None and isinstance(exc, ssl.SSLError | ConnectionAbortedError):
                logger.warning("TLS to %s (as %s) refused: %s", conn.source, hostname,
                               _tls_reason(exc, self._handshake_timeout))
            else:
                logger.info("cannot connect to %s: %s", conn.source, exc or type(exc).__name__)
            self._drop(conn)
            failed = list(dict.fromkeys(destination for _, destination in conn.pending))
            conn.pending.clear()
            if failed:
                self._failed(failed)
        finally:
            conn.task = None

    def _drop(self, conn: TcpConnection) -> None:
        conn.closing = True
        self.unindex(conn)
        self.all.discard(conn)

    def unindex(self, conn: TcpConnection) -> None:
        if conn.peer is not None and self.by_peer.get(conn.peer) is conn:
            del self.by_peer[conn.peer]

    def lost(self, conn: TcpConnection) -> None:
        self.all.discard(conn)

    # -- idle connections ---------------------------------------------------------------------------

    def start_sweeping(self) -> None:
        """Close connections idle for ``idle_timeout`` seconds, checking a few times per timeout."""
        interval = min(max(self._idle_timeout / 4, 0.05), 30.0)
        self._sweeper = self._loop.call_later(interval, self._sweep, interval)

    def _sweep(self, interval: float) -> None:
        limit = self.clock() - self._idle_timeout
        for conn in [c for c in self.all if c.transport is not None and c.last <= limit]:
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("closing idle TCP connection with %s", conn.source)
            conn.close()
        self._sweeper = self._loop.call_later(interval, self._sweep, interval)

    # -- shutting down ------------------------------------------------------------------------------

    async def close(self, grace: float = 1.0) -> None:
        """Stop listening, cancel connects, close every connection (aborting those still open after
        ``grace`` seconds)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for server in self.servers:
            server.close()
        for sock, accepting in self._listeners:
            accepting.cancel()
            sock.close()
        tasks = [conn.task for conn in self.all if conn.task is not None] + list(self._handshakes)
        tasks += [accepting for _, accepting in self._listeners]
        self._listeners.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for conn in list(self.all):
            conn.close()
        deadline = self.clock() + grace
        while self.all and self.clock() < deadline:
            await asyncio.sleep(0.01)
        for conn in list(self.all):
            conn.close(abort=True)
        await asyncio.sleep(0)
        for server in self.servers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), grace)
        self.servers.clear()
        self.all.clear()
        self.by_peer.clear()


#: OpenSSL's reasons when the first bytes are not a TLS record: plain SIP, HTTP, or anything else.
_NOT_TLS = frozenset({"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "HTTPS_PROXY_REQUEST", "UNKNOWN_PROTOCOL",
                      "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE"})


#: OpenSSL's reasons when the peer closed the connection before the handshake ended.
_EOF = frozenset({"UNEXPECTED_EOF_WHILE_READING", "EOF_OCCURRED_IN_VIOLATION_OF_PROTOCOL"})


def _tls_reason(exc: BaseException, timeout: float) -> str:
    """Why a handshake failed, for the log line: the certificate check's own words when that was it."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate not trusted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLEOFError) or (isinstance(exc, ssl.SSLError) and exc.reason in _EOF):
        return "the peer closed the connection mid-handshake"
    if isinstance(exc, ConnectionResetError):
        # asyncio and uvloop report an end of stream during the handshake as a ConnectionResetError without
        # an errno; a TCP reset has ECONNRESET.
        return "the peer reset the connection mid-handshake" if exc.errno else \
            "the peer closed the connection mid-handshake"
    if isinstance(exc, ssl.SSLError):
        if exc.reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE":
            return "no client certificate, and one is required (sip.tls_verify_client)"
        if exc.reason in _NOT_TLS:
            return f"the peer does not speak TLS ({exc.reason}): plain text on the TLS port?"
        return str(exc.reason or exc)
    if isinstance(exc, ConnectionAbortedError | TimeoutError):
        return f"no handshake within {timeout:g} s"
    return str(exc) or type(exc).__name__
