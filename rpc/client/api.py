"""The asyncio client of the Call API: :class:`CallApi`, one connection that runs any number of commands at once.

Each command method (:meth:`CallApi.call_hold`, ...) makes a :class:`Request`. Awaiting it sends the request,
waits for the command's ``Ended`` and returns its events, raising :class:`~b2bua.errors.CommandFailedError`
when the command reported an ``Error``; ``await request.start()`` returns a :class:`CommandHandle` as soon as
the service answered ``Started``, to follow the command step by step with :meth:`CommandHandle.events`. One
task reads the connection and hands each notification to the handle of its ``cmd_id``. When the connection
ends, every request not answered and every command not ended raises
:class:`~b2bua.errors.ConnectionLostError`; there is no reconnection of commands.

The live call state: :meth:`CallApi.calls` (every page of ``CallList``), :meth:`CallApi.get_call`, and
:meth:`CallApi.subscribe`, which follows every call's events on connections of its own, reconnecting and
resyncing by itself (:mod:`.follow`); :meth:`CallApi.subscription` is one ``Subscribe`` on this connection.

The command methods' parameters are those of the command dataclasses (:mod:`b2bua.call.commands`), whose table
is :data:`b2bua.call.control.COMMANDS`; the request's named parameters are read from the dataclass fields, and
a test holds the method signatures to the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import ssl
import warnings
from collections.abc import AsyncIterator, Callable, Generator, Mapping
from dataclasses import fields
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self, assert_never
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.typing import Origin

from b2bua.call.commands import (
    CallAttendedTransfer,
    CallBlindTransfer,
    CallEnd,
    CallHold,
    CallStart,
    CallUnHold,
    Command,
)
from b2bua.call.control import BY_TYPE
from b2bua.call.leg import LegName
from b2bua.errors import CommandFailedError, ConnectError, ConnectionLostError, RequestRefusedError

from .messages import (
    Answered,
    CallEvent,
    Ended,
    Event,
    Failed,
    Ignored,
    Malformed,
    Notification,
    Refusal,
    RequestId,
    Started,
    SubscriptionLost,
    Unreadable,
    read_message,
)

if TYPE_CHECKING:
    from .follow import Follower

logger = logging.getLogger("call_api.rpc.client")

DEFAULT_URL: Final = "ws://localhost:5059/call-api"
#: The WebSocket close code the client sends when the service broke the protocol (RFC 6455 section 7.4.1).
PROTOCOL_BROKEN: Final = 1002
#: The methods answered in the response itself (docs/API.md, Live call state).
QUERIES: Final = frozenset({"CallList", "CallGet", "Subscribe", "Unsubscribe"})
#: Calls per CallList page when the client reads them all.
PAGE: Final = 1000


def new_request_id() -> str:
    """12 random hex digits, as the command-line client has always sent."""
    return secrets.token_hex(6)


class CommandHandle:
    """A started command: its ``cmd_id``, the ``response`` that said so, and its notifications as they come."""

    def __init__(self, cmd_id: str, method: str, response: Mapping[str, Any]) -> None:
        self.cmd_id = cmd_id
        self.method = method
        self.response = response
        """The ``Started`` response object as received."""
        self._notes: list[Notification] = []
        self._lost: ConnectionLostError | None = None
        self._changed = asyncio.Event()

    def __repr__(self) -> str:
        return f"<CommandHandle {self.method} {self.cmd_id}{' ended' if self.done else ''}>"

    @property
    def done(self) -> bool:
        """``Ended`` came, or the connection was lost before it."""
        return self._lost is not None or bool(self._notes and isinstance(self._notes[-1], Ended))

    async def notifications(self) -> AsyncIterator[Notification]:
        """Every notification of the command from the first, ``Error`` included, ending after ``Ended``; raises
        :class:`ConnectionLostError` when the connection ends first. May be iterated more than once."""
        index = 0
        while True:
            if index < len(self._notes):
                note = self._notes[index]
                index += 1
                yield note
                if isinstance(note, Ended):
                    return
            elif self._lost is not None:
                raise ConnectionLostError(str(self._lost), self._lost.close_code)
            else:
                changed = self._changed
                await changed.wait()

    async def events(self) -> AsyncIterator[Event]:
        """The command's ``Event`` s, ending at ``Ended``; at ``Ended`` after an ``Error``, raises
        :class:`CommandFailedError` with that Error's code; raises :class:`ConnectionLostError` when the
        connection ends first."""
        failed: Failed | None = None
        async for note in self.notifications():
            match note:
                case Event():
                    yield note
                case Failed():
                    failed = note
                case Ended():
                    if failed is not None:
                        raise CommandFailedError(self.cmd_id, failed.code, failed.message)
                case _:
                    assert_never(note)

    async def wait(self) -> tuple[Event, ...]:
        """Wait for ``Ended`` and return every ``Event``; raises as :meth:`events` does."""
        return tuple([event async for event in self.events()])

    def _add(self, note: Notification) -> None:
        self._notes.append(note)
        self._wake()

    def _lose(self, error: ConnectionLostError) -> None:
        self._lost = error
        self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()


class Request:
    """A request to send: ``await request`` runs the command to its end and returns its events;
    ``await request.start()`` returns its :class:`CommandHandle` once the service answered. Either, once."""

    def __init__(self, api: CallApi, method: str, params: Mapping[str, object] | None,
                 request_id: RequestId | None = None, cmd_id: str | None = None) -> None:
        self._sent = False
        self.api = api
        self.method = method
        self.params = dict(params) if params is not None else None
        if cmd_id is not None:
            self.params = {**(self.params or {}), "cmd_id": cmd_id}
        self.request_id = request_id

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.params!r}>"

    def __del__(self) -> None:
        if not self._sent:  # as Python warns of a coroutine never awaited
            warnings.warn(f"{self!r} was never sent: await it, or its start()", RuntimeWarning, stacklevel=2)

    async def start(self) -> CommandHandle:
        """Send the request and return the handle of the command it started; raises
        :class:`RequestRefusedError` (a JSON-RPC error response) or :class:`ConnectionLostError`."""
        if self._sent:
            raise RuntimeError(f"{self!r} was already sent")
        self._sent = True
        handle = await self.api._send(self.method, self.params, self.request_id)
        if not isinstance(handle, CommandHandle):
            raise TypeError(f"{self.method} is a query: use CallApi.ask")
        return handle

    async def run(self) -> tuple[Event, ...]:
        """Start the command and wait for its end (what ``await request`` does)."""
        handle = await self.start()
        return await handle.wait()

    def __await__(self) -> Generator[Any, None, tuple[Event, ...]]:
        return self.run().__await__()


class CallApi:
    """A connection to the Call API: ``async with CallApi(url, token=..., origin=...) as api:``.

    ``token`` is sent as ``Authorization: Bearer <token>``, ``origin`` as the ``Origin`` header (the service
    may keep an allow-list). A ``wss://`` URL is TLS: the service's certificate is verified against
    ``ca_file`` (PEM), or the system's trusted CAs when None, and must name the URL's host. Opening raises
    :class:`ConnectError`. ``new_request_id`` makes the JSON-RPC id of each request that names none.
    """

    def __init__(self, url: str = DEFAULT_URL, *, token: str | None = None, origin: str | None = None,
                 ca_file: str | None = None, open_timeout: float | None = 10,
                 new_request_id: Callable[[], RequestId] = new_request_id) -> None:
        self.url = url
        self.token = token
        self.origin = origin
        self.ca_file = ca_file
        self.open_timeout = open_timeout
        self.new_request_id = new_request_id
        self._connection: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._waiting: dict[RequestId, tuple[str, asyncio.Future[Any]]] = {}
        self._running: dict[str, CommandHandle] = {}
        self._subscriptions: dict[str, asyncio.Queue[CallEvent | SubscriptionLost | ConnectionLostError]] = {}
        self._lost: ConnectionLostError | None = None

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect; raises :class:`ConnectError` (with the HTTP status when the handshake was refused)."""
        if self._connection is not None or self._lost is not None:
            raise RuntimeError("a CallApi opens once")
        headers = {"Authorization": f"Bearer {self.token}"} if self.token is not None else None
        origin = Origin(self.origin) if self.origin is not None else None
        tls = self._tls()
        try:
            if tls is None:
                self._connection = await connect(self.url, additional_headers=headers, origin=origin,
                                                 open_timeout=self.open_timeout)
            else:
                self._connection = await connect(self.url, additional_headers=headers, origin=origin,
                                                 open_timeout=self.open_timeout, ssl=tls)
        except InvalidStatus as exc:
            raise ConnectError(f"cannot connect to {self.url}: {exc}", exc.response.status_code) from None
        except ssl.SSLCertVerificationError as exc:
            raise ConnectError(f"cannot connect to {self.url}: the service's certificate is not trusted "
                               f"({exc.verify_message}); give the CA that signed it as ca_file (--ca-file)") from None
        except (InvalidURI, OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as exc:
            raise ConnectError(f"cannot connect to {self.url}: {exc}") from None
        self._reader = asyncio.create_task(self._read(self._connection))

    def _tls(self) -> ssl.SSLContext | None:
        """The TLS context for a ``wss://`` URL (None: websockets' default, or no TLS for ``ws://``)."""
        if self.ca_file is None:
            return None
        if urlsplit(self.url).scheme.lower() != "wss":
            raise ConnectError(f"cannot connect to {self.url}: a CA file is for a wss:// URL")
        try:
            return ssl.create_default_context(cafile=self.ca_file)
        except FileNotFoundError:
            raise ConnectError(f"cannot connect to {self.url}: no such CA file: {self.ca_file}") from None
        except (OSError, ssl.SSLError) as exc:
            raise ConnectError(f"cannot connect to {self.url}: cannot use CA file {self.ca_file}: {exc}") from None

    async def close(self) -> None:
        """Close the connection (1000); commands not ended raise :class:`ConnectionLostError` in their waiters
        but run on in the service."""
        connection = self._connection
        if connection is None:
            return
        self._lose("the connection was closed by the client", 1000)
        await connection.close()
        if self._reader is not None:
            await self._reader

    @property
    def closed(self) -> bool:
        """The connection was closed, by either side, or lost."""
        return self._lost is not None

    # -- requests --------------------------------------------------------------------------------------------

    def request(self, method: str, params: Mapping[str, object] | None = None, *,
                request_id: RequestId | None = None) -> Request:
        """A request for ``method`` with these named ``params`` as given (``None`` sends no ``params``), for a
        method this library has no typed method for; the service validates it."""
        return Request(self, method, params, request_id)

    def command(self, command: Command, *, cmd_id: str | None = None) -> Request:
        """The request for ``command`` (one of the dataclasses of :mod:`b2bua.call.commands`); ``cmd_id``, when
        given, names the command instead of the service."""
        row = BY_TYPE.get(type(command))
        if row is None:
            raise TypeError(f"{type(command).__name__} is not a command of the Call API")
        params = {f.name: getattr(command, f.name) for f in fields(command)}
        return Request(self, row.name, {k: v for k, v in params.items() if v is not None}, None, cmd_id)

    def call_start(self, caller: str, callee: str, *, cmd_id: str | None = None) -> Request:
        """``CallStart``: call ``caller``, and once it answers, connect it to ``callee`` (SIP, SIPS or tel URIs)."""
        return self.command(CallStart(caller, callee), cmd_id=cmd_id)

    def call_blind_transfer(self, callid: str, leg: LegName, destination: str, *,
                            cmd_id: str | None = None) -> Request:
        """``CallBlindTransfer``: transfer the party ``leg`` of call ``callid`` to ``destination``."""
        return self.command(CallBlindTransfer(callid, leg, destination), cmd_id=cmd_id)

    def call_attended_transfer(self, callid_a: str, leg_a: LegName, callid_b: str, leg_b: LegName,
                               destination: str | None = None, *, cmd_id: str | None = None) -> Request:
        """``CallAttendedTransfer``: connect party ``leg_a`` of call A with party ``leg_b`` of call B."""
        return self.command(CallAttendedTransfer(callid_a, leg_a, callid_b, leg_b, destination), cmd_id=cmd_id)

    def call_hold(self, callid: str, leg: LegName | None = None, *, cmd_id: str | None = None) -> Request:
        """``CallHold``: put party ``leg`` of call ``callid`` on hold, or both parties when ``leg`` is None."""
        return self.command(CallHold(callid, leg), cmd_id=cmd_id)

    def call_unhold(self, callid: str, leg: LegName | None = None, *, cmd_id: str | None = None) -> Request:
        """``CallUnHold``: resume party ``leg`` of call ``callid``, or both parties when ``leg`` is None."""
        return self.command(CallUnHold(callid, leg), cmd_id=cmd_id)

    def call_end(self, callid: str, *, cmd_id: str | None = None) -> Request:
        """``CallEnd``: hang up both legs of call ``callid``."""
        return self.command(CallEnd(callid), cmd_id=cmd_id)

    # -- the live call state ----------------------------------------------------------------------------------

    async def ask(self, method: str, params: Mapping[str, object] | None = None, *,
                  request_id: RequestId | None = None) -> Mapping[str, Any]:
        """Send query ``method`` and return its ``result``; raises :class:`RequestRefusedError` or
        :class:`ConnectionLostError`."""
        if method not in QUERIES:
            raise ValueError(f"{method} is not a query; {', '.join(sorted(QUERIES))} are")
        result = await self._send(method, dict(params) if params is not None else None, request_id)
        assert isinstance(result, Mapping)
        return result

    async def snapshot(self, state: str | None = None) -> tuple[int, list[Mapping[str, Any]]]:
        """Every call in progress (every page of ``CallList``) and the ``seq`` of the first page: subscribe
        ``since`` it to keep the table without a gap (docs/API.md, the recovery recipe)."""
        params: dict[str, object] = {"limit": PAGE}
        if state is not None:
            params["state"] = state
        seq: int | None = None
        calls: list[Mapping[str, Any]] = []
        while True:
            page = await self.ask("CallList", params)
            seq = page["seq"] if seq is None else seq
            calls.extend(page["calls"])
            if page.get("next_cursor") is None:
                return seq, calls
            params["cursor"] = page["next_cursor"]

    async def calls(self, state: str | None = None) -> list[Mapping[str, Any]]:
        """Every call in progress (in ``state``, when given), oldest first, as Call objects."""
        return (await self.snapshot(state))[1]

    async def get_call(self, callid: str) -> Mapping[str, Any]:
        """The Call object of the call with this Call-ID (either leg's); -32001 raises RequestRefusedError."""
        result = await self.ask("CallGet", {"callid": callid})
        call: Mapping[str, Any] = result["call"]
        return call

    async def subscription(self, since: int | None = None, calls: list[str] | None = None
                           ) -> AsyncIterator[CallEvent | SubscriptionLost]:
        """One ``Subscribe`` on this connection: its ``CallEvent`` s, ending after a ``SubscriptionLost``;
        raises :class:`RequestRefusedError` (``since`` too old: -32005) or :class:`ConnectionLostError`."""
        params: dict[str, object] = {}
        if since is not None:
            params["since"] = since
        if calls is not None:
            params["calls"] = calls
        result = await self.ask("Subscribe", params)
        queue = self._subscriptions[result["subscription"]]
        try:
            while True:
                item = await queue.get()
                if isinstance(item, ConnectionLostError):
                    raise ConnectionLostError(str(item), item.close_code)
                yield item
                if isinstance(item, SubscriptionLost):
                    return
        finally:
            self._subscriptions.pop(result["subscription"], None)

    def subscribe(self, since: int | None = None, calls: list[str] | None = None) -> Follower:
        """Follow the calls: ``async for item in api.subscribe():`` yields a :class:`~.follow.Resync` with the
        calls from ``CallList``, then every :class:`~.messages.CallEvent`; on its own connections, reconnecting
        with ``since`` the last event, and starting again from ``CallList`` when events were lost. Its
        ``table`` holds the calls as the events left them. With ``since``, no first CallList."""
        from .follow import Follower

        return Follower(self.url, token=self.token, origin=self.origin, since=since, calls=calls)

    # -- the connection --------------------------------------------------------------------------------------

    async def _send(self, method: str, params: dict[str, object] | None, request_id: RequestId | None
                    ) -> CommandHandle | Mapping[str, Any]:
        connection = self._connection
        if self._lost is not None:
            raise ConnectionLostError(str(self._lost), self._lost.close_code)
        if connection is None:
            raise RuntimeError("open the CallApi first: async with CallApi(...) as api")
        if request_id is None:
            request_id = self.new_request_id()
            while request_id in self._waiting:
                request_id = self.new_request_id()
        elif request_id in self._waiting:
            raise ValueError(f"request id {request_id!r} is already waiting for its response")
        document: dict[str, object] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            document["params"] = params
        document["id"] = request_id
        text = _dump(document)
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = (method, answer)
        try:
            with contextlib.suppress(ConnectionClosed):  # the reader sees the end too, and fails the answer
                await connection.send(text)
            result: CommandHandle | Mapping[str, Any] = await answer
            return result
        finally:
            self._waiting.pop(request_id, None)

    async def _read(self, connection: ClientConnection) -> None:
        """Hand each frame to its waiter until the connection ends, which every waiter then hears of."""
        reason: str | None = None
        try:
            async for frame in connection:
                reason = self._receive(frame)
                if reason is not None:
                    break
        except ConnectionClosed:
            pass
        finally:
            self._lose(reason, connection.close_code if reason is None else PROTOCOL_BROKEN)
        if reason is not None:
            await connection.close(PROTOCOL_BROKEN, "protocol error")

    def _receive(self, frame: str | bytes) -> str | None:
        """Hand one frame to its waiter; the reason to drop the connection when the service broke the protocol."""
        message = read_message(frame)
        match message:
            case Started() | Answered() | Refusal() | Malformed():
                waiting = self._waiter(message.request_id)
                if waiting is None:
                    logger.debug("ignored from the server: a response to no request waiting (id %s)",
                                 repr(message.request_id)[:60])
                    return None
                method, answer = waiting
                if isinstance(message, Malformed):
                    return f"the server answered request {message.request_id!r} badly: {message.reason}"
                if isinstance(message, Refusal):
                    answer.set_exception(RequestRefusedError(message.code, message.message, message.data,
                                                             message.raw))
                    return None
                if isinstance(message, Answered) != (method in QUERIES):
                    what = "has no cmd_id" if isinstance(message, Answered) else "is a Started"
                    return f"the server answered request {message.request_id!r} badly: its result {what}"
                if isinstance(message, Answered):
                    if method == "Subscribe":  # before its first event, which may come in the next frame
                        self._subscriptions[str(message.result.get("subscription"))] = asyncio.Queue()
                    answer.set_result(message.result)
                    return None
                handle = CommandHandle(message.cmd_id, method, message.raw)
                self._running[message.cmd_id] = handle
                answer.set_result(handle)
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug("cmd %r %s: started", message.cmd_id[:60], method)
            case Event() | Failed() | Ended():
                running = self._running.get(message.cmd_id)
                if running is None:
                    logger.debug("cmd %r: %s of no command of this connection, ignored",
                                 message.cmd_id[:60], type(message).__name__)
                    return None
                if isinstance(message, Ended):
                    del self._running[message.cmd_id]
                    if logger.isEnabledFor(logging.DEBUG):
                        logger.debug("cmd %r %s: ended", running.cmd_id[:60], running.method)
                running._add(message)
            case CallEvent() | SubscriptionLost():
                queue = self._subscriptions.get(message.subscription)
                if queue is None:
                    logger.debug("ignored from the server: %s of no subscription of this connection",
                                 type(message).__name__)
                    return None
                queue.put_nowait(message)
            case Unreadable(reason=why):
                return why
            case Ignored(reason=why):
                logger.debug("ignored from the server: %s", why)
            case _:
                assert_never(message)
        return None

    def _waiter(self, request_id: object) -> tuple[str, asyncio.Future[Any]] | None:
        """The method and answer future of request ``request_id`` while it waits, else None."""
        if not isinstance(request_id, str | int) or isinstance(request_id, bool):
            return None
        waiting = self._waiting.get(request_id)
        if waiting is None or waiting[1].done():
            return None
        return waiting

    def _lose(self, reason: str | None, close_code: int | None) -> None:
        """The connection is over: every request not answered and every command not ended raises
        :class:`ConnectionLostError`, saying ``reason``, or when None what it was waiting for."""
        if self._lost is None:
            self._lost = ConnectionLostError(reason or f"the connection closed (code {close_code})", close_code)
        for _, answer in self._waiting.values():
            if not answer.done():
                answer.set_exception(ConnectionLostError(
                    reason or f"the connection closed before the response (code {close_code})", close_code))
        for handle in self._running.values():
            handle._lose(ConnectionLostError(
                reason or f"the connection closed before command {handle.cmd_id} ended (code {close_code})",
                close_code))
        self._running.clear()
        for queue in self._subscriptions.values():
            queue.put_nowait(ConnectionLostError(reason or f"the connection closed (code {close_code})", close_code))


def _dump(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))
