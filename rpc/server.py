"""The WebSocket front of the Call API: JSON-RPC 2.0 over ``ws://host:port/path`` (the contract: docs/API.md),
or ``wss://`` when ``ws.tls_cert`` and ``ws.tls_key`` are set (the TLS context: :mod:`b2bua.io.tls`).

Each text frame holds one request or a batch (JSON-RPC 2.0 sections 4 and 6). :func:`~rpc.jsonrpc.parse_frame`
reads it; every accepted request starts its command on the control inside the event loop, with the service's
clock as ``now``, and the service is poked so the SIP goes out at once. The response (``Started`` or an
error) is queued before any notification of the command: whatever the flow reports while it starts is held
back until the response is out. Notifications (``Event``, ``Error``, ``Ended``) go to the connection that
started the command, in order, through one queue and one writer task per connection. A command outlives its
connection: when the client goes, the command runs on and its notifications are dropped.

Every method the API validates is a row of the command table (:data:`b2bua.call.control.COMMANDS`); the
server hands the validated command to :meth:`CallControl.start`, or a query (``CallList``, ``CallGet``,
``Subscribe``, ``Unsubscribe``) to :meth:`CallControl.ask`, which answers in the response itself. A
subscription's ``CallEvent`` notifications (the backlog after ``since`` first) follow the response, in order, on
the connection's one queue. That queue is bounded for subscriptions: an event that finds it holding
``subscriber_queue`` frames (a client that does not read) ends the subscription with ``SubscriptionLost``
instead, so a slow client costs memory up to that bound and never stalls the loop, the calls or other clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Final, Protocol, assert_never
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.typing import Origin

from b2bua.call import commands
from b2bua.call.events import FlowEnded, FlowError, FlowEvent, FlowReport
from b2bua.call.live import Answer, Asker, CallEvent, Subscribed, Subscription
from b2bua.config import IPNetwork, WsConfig
from b2bua.errors import ControlError, RpcError
from b2bua.io.metrics import COMMAND_SECONDS, Buckets
from b2bua.io.tls import server_context

from .errors import INTERNAL, NOT_AVAILABLE, PARSE_ERROR, SERVICE_STOPPING, refusal_code, refusal_data
from .http import HttpFront, MetricsSource, SipStatus, token_verdict, unauthorized, websockets_logger
from .jsonrpc import (
    Accepted,
    NoId,
    Refused,
    Reply,
    ended_notification,
    error_notification,
    error_response,
    event_notification,
    parse_frame,
)
from .views import EventText, lost_notification, result_response

logger = logging.getLogger("call_api.rpc")

Sink = Callable[[FlowReport], None]

#: Queued messages above which a connection's next frame is read only once its queue is down to half of it
#: (not empty: a subscription's events may never leave it empty).
HIGH_WATER: Final = 1000
#: Seconds to wait for a client to answer the closing handshake when the server stops.
CLOSE_TIMEOUT: Final = 2.0
#: Seconds the last notifications of the commands running at a stop get to go out before the connections close.
STOP_GRACE: Final = 1.0
#: Frames a connection's queue may hold before its subscriptions are dropped (SubscriptionLost): a few seconds of
#: events at full load, some megabytes.
SUBSCRIBER_QUEUE: Final = 10_000
#: Frames the writer takes from its queue at once and writes with one write to the socket.
WRITE_BATCH: Final = 64
#: Seconds the writer of a connection with a subscription lets its queue fill before writing: a subscriber's
#: events then go out a few dozen to a write, not one each (its lag grows by this much at most).
COALESCE: Final = 0.002


class CallControl(Protocol):
    """What starts the commands (:class:`b2bua.call.control.Control`): ``start`` starts the command's flow and
    returns, or raises :class:`~b2bua.errors.ControlError`; the flow then reports through ``sink``."""

    def start(self, command: commands.Command, now: float, sink: Sink, cmd_id: str = ...) -> object: ...

    def ask(self, query: commands.Query, asker: Asker) -> Answer: ...


class Clock(Protocol):
    def time(self) -> float: ...


class Runtime(Protocol):
    """What the server needs of the running service (:class:`b2bua.io.runtime.Service`)."""

    @property
    def shell(self) -> Clock: ...

    def poke(self) -> None: ...


class Peer:
    """One client connection: its outgoing queue, drained in order by one writer task, and its subscriptions."""

    def __init__(self, connection: ServerConnection, server: ApiServer | None = None) -> None:
        self.connection = connection
        self.server = server
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.open = True
        self.asker = Asker(self.deliver)
        #: Subscription events held while a frame is handled, so they follow its response.
        self.held_events: list[str] | None = None
        #: Set by the writer once the queue is down to half of HIGH_WATER, while the reader waits for it.
        self._drained: asyncio.Event | None = None
        address = connection.remote_address
        self.name = f"[{address[0]}]:{address[1]}" if ":" in str(address[0]) else f"{address[0]}:{address[1]}"

    def send(self, text: str) -> None:
        """Queue ``text``; dropped once the connection is gone."""
        if self.open:
            self.queue.put_nowait(text)

    async def write_all(self) -> None:
        queue = self.queue
        try:
            while True:
                batch = [await queue.get()]
                if self.asker.subscriptions and queue.qsize() < WRITE_BATCH:
                    await asyncio.sleep(COALESCE)
                while len(batch) < WRITE_BATCH and not queue.empty():
                    batch.append(queue.get_nowait())
                try:
                    await self._write(batch)
                finally:
                    for _ in batch:
                        queue.task_done()
                    if self._drained is not None and queue.qsize() <= HIGH_WATER // 2:
                        self._drained.set()
        except ConnectionClosed:
            pass
        finally:
            self.close()

    async def _write(self, batch: list[str]) -> None:
        """Send the frames of ``batch`` in order. Several frames queued together (a subscription's events under
        load) are framed by the connection's own Sans-I/O protocol and written to the socket at once, then the
        writer waits for the transport to drain, as ``send`` would: one write instead of one ``send`` each, which
        was most of what a subscriber cost the service (docs/PERFORMANCE.md, "The costs of issues 14 and 15").
        ``protocol``, ``transport`` and ``drain`` are attributes of websockets' asyncio connection outside its
        documented API, so anything unexpected (another state, a missing attribute) takes ``send``, which
        raises :class:`ConnectionClosed` as the writer expects."""
        connection = self.connection
        protocol = getattr(connection, "protocol", None)
        transport = getattr(connection, "transport", None)
        if len(batch) == 1 or protocol is None or transport is None or protocol.state is not State.OPEN:
            for text in batch:
                await connection.send(text)
            return
        for text in batch:
            protocol.send_text(text.encode())
        transport.write(b"".join(protocol.data_to_send()))
        await connection.drain()

    def deliver(self, sub: Subscription, event: CallEvent) -> None:
        """An event for one of this connection's subscriptions: queued, or the subscription lost when the queue
        is full (its ``seq``: the last event before this one, to resubscribe ``since``)."""
        server = self.server
        if server is None or not self.open:
            return
        if self.queue.qsize() >= server.subscriber_queue:
            logger.info("client %s: subscription %s lost at seq %d (%d frames queued)", self.name, sub.id,
                        event.seq - 1, self.queue.qsize())
            server.drop(self, sub.id)
            self.send(lost_notification(sub.id, event.seq - 1))
            return
        text = server.events.notification(sub.id, event)
        if self.held_events is not None:
            self.held_events.append(text)
        else:
            self.send(text)

    def release_events(self) -> None:
        held, self.held_events = self.held_events or [], None
        for text in held:
            self.send(text)

    async def drain(self) -> None:
        """Wait until the writer has the queue down to half of HIGH_WATER (or the connection is gone)."""
        while self.open and self.queue.qsize() > HIGH_WATER // 2:
            self._drained = asyncio.Event()
            await self._drained.wait()
        self._drained = None

    def close(self) -> None:
        """Drop whatever is queued and everything sent from now on. The asker lets go of this peer too: its
        ``deliver`` is a method of the peer, a reference cycle that would keep the connection's objects alive
        (frozen, b2bua/io/collector.py) after it ends."""
        self.open = False
        self.asker.deliver = _closed
        if self._drained is not None:
            self._drained.set()
        while not self.queue.empty():
            self.queue.get_nowait()
            self.queue.task_done()


@dataclass(eq=False, slots=True)
class Command:
    """A started command: where its notifications go, and those held back until its response is out."""

    cmd_id: str
    method: str
    subject: str
    """What it acts on, for logs: ``call <Call-ID>``."""
    peer: Peer
    started: float = 0.0
    """When it started, on the service's clock."""
    failed: bool = False
    """It reported an Error."""
    held: list[str] | None = field(default_factory=list)
    """Notifications reported before the response was queued; None once released."""
    done: bool = False
    """Ended was reported, or the command never started."""
    logged: bool = False
    """Its start is logged, so its end may be."""

    def emit(self, text: str) -> None:
        if self.held is not None:
            self.held.append(text)
        else:
            self.peer.send(text)

    def release(self) -> None:
        """The response is queued: send the held notifications, and the next ones as they come."""
        held, self.held = self.held or [], None
        for text in held:
            self.peer.send(text)


class ApiServer:
    """The Call API on WebSocket: ``await start()``, ``await stop()``; ``port`` is the bound port.

    The same port answers plain HTTP (rpc.http): ``/metrics`` from ``metrics``, ``/healthz`` from ``sip``
    and :attr:`stopping`, the dashboard's files; ``trusted`` are the networks ``ws.metrics_public`` opens
    ``/metrics`` and ``/healthz`` to without the token."""

    def __init__(self, config: WsConfig, service: Runtime, control: CallControl, new_cmd_id: Callable[[], str], *,
                 metrics: MetricsSource | None = None, trusted: Sequence[IPNetwork] = (),
                 sip: SipStatus | None = None, subscriber_queue: int = SUBSCRIBER_QUEUE) -> None:
        self.config = config
        self.service = service
        self.control = control
        self.new_cmd_id = new_cmd_id
        self.subscriber_queue = subscriber_queue
        self.events = EventText()
        self.running: dict[str, Command] = {}
        """The commands that have not Ended, by cmd_id (a client's cmd_id must not be one of them)."""
        self.peers: set[Peer] = set()
        """The open WebSocket connections."""
        self.stopping = False
        """Set by :meth:`begin_stop`: ``/healthz`` answers 503 and new WebSocket connections are refused."""
        self.commands: dict[tuple[str, str], int] = {}
        """Commands over, by (method, outcome): ``ok``, ``error`` (an Error was reported) or ``refused``."""
        self.durations: dict[str, Buckets] = {}
        """Seconds from start to Ended of the commands that started, by method."""
        self.http = HttpFront(config, trusted=trusted, metrics=metrics, sip=sip, stopping=lambda: self.stopping,
                              connections=lambda: len(self.peers))
        self._server: Server | None = None

    @property
    def connections(self) -> int:
        """Open WebSocket connections (``call_api_websocket_connections``)."""
        return len(self.peers)

    @property
    def subscribers(self) -> int:
        """Live Subscribe streams over every open connection (``call_api_subscribers``)."""
        return sum(len(peer.asker.subscriptions) for peer in self.peers)

    async def start(self) -> None:
        """Listen; raises OSError when the address cannot be bound, or the certificate or key cannot be used
        (:class:`~b2bua.errors.TlsFileError`). The token and Origin checks are the same over TLS."""
        config = self.config
        ping = config.ping_interval or None
        tls = server_context(config.tls_cert, config.tls_key) if config.tls_cert and config.tls_key else None
        self._server = await serve(
            self._serve_connection, config.host, config.port, process_request=self._check_request, ssl=tls,
            origins=[*map(Origin, config.origins), None] if config.origins else None, max_size=config.max_frame,
            ping_interval=ping, ping_timeout=ping, close_timeout=CLOSE_TIMEOUT, logger=websockets_logger,
            compression="deflate" if config.compression else None,
        )

    def begin_stop(self) -> None:
        """The service is stopping: ``/healthz`` says 503 and new WebSocket connections get 503, while the
        open ones stay for what their commands still report as the calls end."""
        self.stopping = True

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Tell the client of every running command that it is over, give those frames up to ``grace`` seconds
        to go out, then close every connection (1001) and stop listening.

        A command running when the service stops gets ``Error`` with code 503 ("the service is stopping", the
        SIP status for a service that cannot serve, RFC 3261 section 21.5.4) and then ``Ended``, so no client
        is left waiting on a command that silently vanished (issue 15); its flow may still run while the
        calls are ended or kept, and what it reports after that is dropped unlogged."""
        stopping = list(self.running.values())
        for command in stopping:
            logger.info("cmd %s %s %s: ended by the service stopping", command.cmd_id, command.method,
                        command.subject)
            self._report(command, FlowError(SERVICE_STOPPING, "the service is stopping"))
            self._report(command, FlowEnded())
            command.logged = False  # what its flow reports from now on is dropped without a warning
        peers = {command.peer for command in stopping if command.peer.open}
        if peers:
            try:
                await asyncio.wait_for(asyncio.gather(*(peer.queue.join() for peer in peers)), grace)
            except TimeoutError:
                logger.warning("%d clients did not take their last notifications within %.1f s", len(peers), grace)
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    @property
    def port(self) -> int:
        """The port listened on (the one picked when the configured port is 0)."""
        if self._server is None:
            raise RuntimeError("the API server is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def urls(self) -> list[str]:
        """``ws://host:port/path`` (``wss://`` over TLS) for every bound socket."""
        if self._server is None:
            return []
        urls = []
        scheme = "wss" if self.config.secure else "ws"
        for sock in self._server.sockets:
            host, port = sock.getsockname()[:2]
            urls.append(f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}{self.config.path}")
        return urls

    # -- handshake -------------------------------------------------------------------------------------------

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Another path is plain HTTP (rpc.http: /metrics, /healthz, the dashboard, else 404); the API's path
        needs the token (401) and a service not stopping (503); the Origin allow-list is websockets' (403)."""
        target = urlsplit(request.path)
        if target.path != self.config.path:
            return self.http.answer(connection, target.path, target.query, request.headers)
        if self.stopping:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "Service Unavailable: call-api is stopping\n")
        token = self.config.token
        if token is None:
            return None
        verdict = token_verdict(token, request.headers, target.query)
        return None if verdict is None else unauthorized(verdict)

    # -- frames ----------------------------------------------------------------------------------------------

    async def _serve_connection(self, connection: ServerConnection) -> None:
        peer = Peer(connection, self)
        self.peers.add(peer)
        writer = asyncio.create_task(peer.write_all())
        logger.debug("client %s connected", peer.name)
        try:
            async for message in connection:
                self.handle_frame(peer, message)
                if peer.queue.qsize() > HIGH_WATER:
                    await peer.drain()
        except ConnectionClosed:
            pass
        finally:
            self.peers.discard(peer)
            for sub_id in list(peer.asker.subscriptions):
                self.drop(peer, sub_id)
            peer.close()
            writer.cancel()
            logger.debug("client %s gone (%s)", peer.name, connection.close_code)
            untangle(connection)

    def handle_frame(self, peer: Peer, message: str | bytes) -> None:
        """Start the frame's commands, queue its reply, then release their notifications."""
        if isinstance(message, bytes):
            peer.send(error_response(None, PARSE_ERROR, "binary frames are not accepted: send JSON in a text frame"))
            return
        frame = parse_frame(message, new_cmd_id=self._fresh_cmd_id, is_running=self.running.__contains__)
        peer.held_events = []
        replies: list[Reply] = []
        started: list[Command] = []
        for outcome in frame.outcomes:
            if isinstance(outcome, Refused):
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug("client %s: request refused: %d %s", peer.name, outcome.code, outcome.message)
                replies.append(outcome.reply())
                continue
            if isinstance(outcome.params, commands.Query):
                replies.append(self._ask(peer, outcome))
                continue
            command, reply = self._start(peer, outcome)
            replies.append(reply)
            if command is not None:
                started.append(command)
        text = frame.reply(replies)
        if text is not None:
            peer.send(text)
        for command in started:
            command.release()
        peer.release_events()

    def _ask(self, peer: Peer, request: Accepted) -> str | None:
        """Answer a query; a Subscribe's backlog is held with the frame's other notifications."""
        query = request.params
        assert isinstance(query, commands.Query)
        try:
            answer = self.control.ask(query, peer.asker)
        except ControlError as exc:
            code = refusal_code(exc)
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("client %s: %s refused: %d %s", peer.name, request.method, code, exc.message)
            return request.error_reply(RpcError(code, exc.message, refusal_data(exc)))
        except Exception:
            logger.exception("%s from %s failed", request.method, peer.name)
            return request.error_reply(RpcError(INTERNAL, f"internal error: {request.method} failed"))
        if isinstance(answer, Subscribed):
            logger.info("client %s: subscription %s from seq %d", peer.name, answer.subscription,
                        answer.seq - len(answer.backlog))
            sub = peer.asker.subscriptions[answer.subscription]
            for event in answer.backlog:
                peer.deliver(sub, event)
        if isinstance(request.request_id, NoId):
            return None
        return result_response(request.request_id, answer)

    def drop(self, peer: Peer, sub_id: str) -> None:
        """End one of ``peer``'s subscriptions (it went away, or fell behind)."""
        with contextlib.suppress(ControlError):
            self.control.ask(commands.Unsubscribe(sub_id), peer.asker)

    def _fresh_cmd_id(self) -> str:
        cmd_id = self.new_cmd_id()
        while cmd_id in self.running:
            cmd_id = self.new_cmd_id()
        return cmd_id

    def _start(self, peer: Peer, request: Accepted) -> tuple[Command | None, str | None]:
        """Start one accepted request's command; the reply to send, and the command if it started."""
        cmd_id, method = request.cmd_id, request.method
        if self.stopping:
            # The calls are being ended: a new one, or a transfer, would be cut off half-way by the shutdown.
            self._count(method, "refused")
            return None, request.error_reply(RpcError(NOT_AVAILABLE, f"call-api is stopping: {method} is not "
                                                                     "available"))
        now = self.service.shell.time()
        command = Command(cmd_id, method, _subject(request.params), peer, started=now)
        self.running[cmd_id] = command
        try:
            self.control.start(request.params, now, lambda r: self._report(command, r), cmd_id)
        except ControlError as exc:
            self._drop(command, "refused")
            code = refusal_code(exc)
            logger.info("cmd %s %s %s from %s: refused: %d %s", cmd_id, method, command.subject, peer.name, code,
                        exc.message)
            return None, request.error_reply(RpcError(code, exc.message))
        except Exception:
            self._drop(command, "error")
            logger.exception("cmd %s %s %s from %s: failed to start", cmd_id, method, command.subject, peer.name)
            return None, request.error_reply(RpcError(INTERNAL, f"internal error: {method} could not start"))
        finally:
            self.service.poke()
        logger.info("cmd %s %s %s from %s: started", cmd_id, method, command.subject, peer.name)
        command.logged = True
        if command.done:
            self._log_end(command)
        return command, request.reply()

    def _drop(self, command: Command, outcome: str) -> None:
        """A command that did not start: forget it and ignore whatever its flow may still report."""
        self._count(command.method, outcome)
        command.done = True
        command.held = None
        if self.running.get(command.cmd_id) is command:
            del self.running[command.cmd_id]

    def _report(self, command: Command, report: FlowReport) -> None:
        if command.done:
            if command.logged:
                logger.warning("cmd %s: %s after Ended, dropped", command.cmd_id, type(report).__name__)
            return
        command.emit(_notification(command.cmd_id, report))
        if isinstance(report, FlowError):
            command.failed = True
        elif isinstance(report, FlowEnded):
            self._count(command.method, "error" if command.failed else "ok")
            buckets = self.durations.get(command.method)
            if buckets is None:
                buckets = self.durations[command.method] = Buckets(COMMAND_SECONDS)
            buckets.observe(max(0.0, self.service.shell.time() - command.started))
            command.done = True
            if self.running.get(command.cmd_id) is command:
                del self.running[command.cmd_id]
            if command.logged:
                self._log_end(command)

    def _count(self, method: str, outcome: str) -> None:
        key = (method, outcome)
        self.commands[key] = self.commands.get(key, 0) + 1

    @staticmethod
    def _log_end(command: Command) -> None:
        logger.info("cmd %s %s %s: ended", command.cmd_id, command.method, command.subject)


def _closed(sub: Subscription, event: CallEvent) -> None:
    """What a closed peer's asker delivers to: nothing."""


def untangle(connection: ServerConnection) -> None:
    """Break the reference cycles websockets leaves in a connection that has ended, so that reference counting
    frees its objects: its protocol's parser, a generator suspended in its last ``yield`` whose frame holds the
    protocol, is closed; the exceptions it keeps (``parser_exc`` of the protocol: a bad frame, an unexpected
    EOF; ``connection_exc``: bad UTF-8, a reset) lose their tracebacks, whose frames hold the protocol or the
    connection. The service's collector freezes long-lived objects (b2bua/io/collector.py), so a cycle there is
    never collected: every ended connection kept its protocol and buffers for good, and the network fuzzer saw
    the RSS grow with each. The exceptions stay, for ``close_exc``. These attributes are outside websockets'
    documented API, hence ``getattr``; a connection not closed yet is left alone."""
    protocol = getattr(connection, "protocol", None)
    if getattr(protocol, "state", None) is not State.CLOSED:
        return
    parser = getattr(protocol, "parser", None)
    if isinstance(parser, Generator):
        parser.close()
    for exc in (getattr(protocol, "parser_exc", None), getattr(connection, "connection_exc", None)):
        for _ in range(8):  # the exception and what it was raised from, a short chain
            if not isinstance(exc, BaseException):
                break
            exc.__traceback__ = None
            exc = exc.__cause__ or exc.__context__


def _notification(cmd_id: str, report: FlowReport) -> str:
    match report:
        case FlowEvent(data=data, callid=callid, leg=leg, status=status):
            return event_notification(cmd_id, data, callid=callid, leg=leg, status=status)
        case FlowError(code=code, message=message):
            return error_notification(cmd_id, code, message)
        case FlowEnded():
            return ended_notification(cmd_id)
        case _:
            assert_never(report)


def _subject(params: commands.Command) -> str:
    callid = getattr(params, "callid", None) or getattr(params, "callid_a", None)
    return f"call {callid}" if callid else "new call"

