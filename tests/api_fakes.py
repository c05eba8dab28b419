"""Fakes for the WebSocket API's unit tests (test_server, test_client_api, test_client_cli, test_docs_examples):
the service and control ApiServer talks to (FakeControl names calls by what they do), a running server on a
free port (``api``), and a loop in a thread for commands that connect to one (``Background``, and its
``background`` fixture, taken with ``background = api_fakes.background``)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from itertools import count
from typing import Any, TypeVar

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from b2bua.call.commands import (
    CallAttendedTransfer,
    CallBlindTransfer,
    CallEnd,
    CallHold,
    CallStart,
    CallUnHold,
    Command,
)
from b2bua.call.events import FlowEnded, FlowError, FlowEvent, FlowReport
from b2bua.config import WsConfig
from b2bua.errors import CallBusyError, CallNotFoundError, CallStateError
from rpc.server import ApiServer, Sink

T = TypeVar("T")

Json = dict[str, Any]

class FakeShell:
    """The clock the server reads through ``service.shell``: each reading a second later."""

    def __init__(self) -> None:
        self.now = 1000.0

    def time(self) -> float:
        self.now += 1
        return self.now


class FakeService:
    """What ApiServer uses of the service: its shell's clock, and ``poke`` (counted)."""

    def __init__(self) -> None:
        self.shell = FakeShell()
        self.pokes = 0

    def poke(self) -> None:
        self.pokes += 1


@dataclass
class Started:
    """One command FakeControl started."""

    method: str
    callid: str
    leg: str | None
    now: float
    cmd_id: str


Plan = Sequence[tuple[float | None, FlowReport]]


@dataclass
class FakeControl:
    """Calls are named by what they do, by Call-ID prefix: ``gone`` is not found, ``early`` is in the wrong
    state, ``crash`` raises a bug; a call with a command running is busy. Reports come ``sync`` (all inside
    start), ``fail`` (Event at once, then Error and Ended), ``slow`` (over 0.4 s), ``twice`` (Ended twice,
    a flow bug) or, by default, shortly after start."""

    started: list[Started] = field(default_factory=list)
    reported: dict[str, list[FlowReport]] = field(default_factory=dict)
    active: set[str] = field(default_factory=set)

    def start(self, command: Command, now: float, sink: Sink, cmd_id: str = "") -> object:
        method = type(command).__name__
        match command:
            case CallHold(callid=callid, leg=leg):
                return self._start(method, callid, leg, now, sink, cmd_id, "CALL_HOLD")
            case CallUnHold(callid=callid, leg=leg):
                return self._start(method, callid, leg, now, sink, cmd_id, "CALL_UNHOLD")
            case CallEnd(callid=callid):
                return self._start(method, callid, None, now, sink, cmd_id, None)
            case CallStart(caller=caller):
                return self._start(method, f"new:{caller}", None, now, sink, cmd_id, "CALL_ANSWER")
            case CallBlindTransfer(callid=callid, leg=leg):
                return self._start(method, callid, leg, now, sink, cmd_id, "TRANSFER_ACCEPT")
            case CallAttendedTransfer(callid_a=callid_a, leg_a=leg_a):
                return self._start(method, callid_a, leg_a, now, sink, cmd_id, "TRANSFER_ACCEPT")
        raise TypeError(method)

    def _start(self, method: str, callid: str, leg: str | None, now: float, sink: Sink, cmd_id: str,
               data: str | None) -> object:
        if callid.startswith("gone"):
            raise CallNotFoundError(f"no call with Call-ID {callid!r}")
        if callid.startswith("early"):
            raise CallStateError(f"call {callid!r} is not answered (early)")
        if callid.startswith("crash"):
            raise RuntimeError("a bug")
        if callid in self.active:
            raise CallBusyError(f"call {callid!r} is busy")
        self.active.add(callid)
        self.started.append(Started(method, callid, leg, now, cmd_id))
        log = self.reported.setdefault(cmd_id, [])

        def report(item: FlowReport) -> None:
            log.append(item)
            if isinstance(item, FlowEnded):
                self.active.discard(callid)
            sink(item)

        for delay, item in self._plan(callid, leg, data):
            if delay is None:
                report(item)
            else:
                asyncio.get_running_loop().call_later(delay, report, item)
        return None

    @staticmethod
    def _plan(callid: str, leg: str | None, data: str | None) -> Plan:
        legs = [leg] if leg else ["caller", "callee"]
        events: list[FlowReport] = [FlowEvent(data, f"{callid}-{x}", x, "SIP/2.0 200 OK") for x in legs] if data \
            else []
        if callid.startswith("sync"):
            return [(None, item) for item in [*events, FlowEnded()]]
        if callid.startswith("fail"):
            return [*[(None, item) for item in events[:1]], (0.02, FlowError(488, "not accepted")), (0.02, FlowEnded())]
        if callid.startswith("slow"):
            return [*[(0.2, item) for item in events], (0.4, FlowEnded())]
        if callid.startswith("twice"):
            return [(None, FlowEnded()), (0.01, FlowEnded()), (0.01, FlowError(500, "late"))]
        return [*[(0.01, item) for item in events], (0.02, FlowEnded())]


@dataclass
class Api:
    """A running ApiServer on a free loopback port with its fakes."""

    server: ApiServer
    control: FakeControl
    service: FakeService

    @property
    def url(self) -> str:
        return f"{'wss' if self.server.config.secure else 'ws'}://127.0.0.1:{self.server.port}/call-api"


@asynccontextmanager
async def api(**ws: Any) -> AsyncIterator[Api]:
    """ApiServer with the ``[ws]`` settings ``ws`` over FakeControl, on a free port, stopped on the way out."""
    config = WsConfig(host="127.0.0.1", port=0, **ws)
    ids = count(1)
    control = FakeControl()
    service = FakeService()
    server = ApiServer(config, service, control, lambda: f"cmd-{next(ids)}")
    await server.start()
    try:
        yield Api(server, control, service)
    finally:
        await server.stop()


def run(body: Callable[[], Awaitable[None]]) -> None:
    """Run ``body`` on a fresh loop, 10 s at most."""
    async def bounded() -> None:
        await asyncio.wait_for(body(), 10)

    asyncio.run(bounded())


class Background:
    """An event loop in a thread, for servers the command under test connects to."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.exits: list[Callable[[], Coroutine[Any, Any, object]]] = []

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """``coroutine`` run on the thread's loop; its result (10 s at most)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    def serve(self, **ws: Any) -> Api:
        """An ApiServer (``api(**ws)``) on the thread's loop, stopped by ``close``."""
        context = api(**ws)
        server = self.run(context.__aenter__())
        self.exits.append(lambda: context.__aexit__(None, None, None))
        return server

    def close(self) -> None:
        """Stop every server, then the loop and its thread."""
        for exit_ in reversed(self.exits):
            self.run(exit_())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def background() -> Iterator[Background]:
    """A Background loop for one test, closed after it."""
    runner = Background()
    try:
        yield runner
    finally:
        runner.close()


async def status_of(url: str, **kwargs: Any) -> tuple[int, Any]:
    """The HTTP status a handshake gets (101 when it succeeds) and the response headers."""
    try:
        async with connect(url, **kwargs) as ws:
            assert ws.response is not None
            return 101, ws.response.headers
    except InvalidStatus as exc:
        return exc.response.status_code, exc.response.headers


def request(method: str, params: Json | None = None, request_id: object = 1) -> Json:
    document: Json = {"jsonrpc": "2.0", "method": method, "params": params or {}}
    if request_id is not None:
        document["id"] = request_id
    return document


async def send(ws: ClientConnection, document: object) -> None:
    await ws.send(json.dumps(document))


async def receive(ws: ClientConnection) -> Any:
    return json.loads(await ws.recv())
