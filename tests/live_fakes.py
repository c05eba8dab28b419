"""The live-state API in this process for tests: a real ApiServer and Control over the in-memory network's
B2BUA, and small helpers to ask it and read its events (tests/test_live_api.py, test_client_follow.py,
test_bench_subscriber.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from itertools import count

from websockets.asyncio.client import ClientConnection

from b2bua.call.b2bua import B2bua
from b2bua.call.control import Control
from b2bua.call.live import LiveCalls
from b2bua.config import WsConfig
from b2bua.sip.session import Session
from rpc.server import ApiServer

from .api_fakes import FakeService, Json, receive, request, send
from .call_builders import SDP_B, dial, rig
from .sipnet import Network, Node


@dataclass
class Live:
    server: ApiServer
    net: Network
    alice: Node
    bob: Node
    app: B2bua

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.server.port}/call-api"

    def call(self, answer: bool = False) -> tuple[Session, Session]:
        a, b, _ = dial(self.net, self.alice, self.bob)
        if answer:
            b.respond(200, self.net.now, body=SDP_B)
            self.net.settle()
        return a, b


@asynccontextmanager
async def live(subscriber_queue: int = 10_000, buffer: int = 10_000) -> AsyncIterator[Live]:
    net, alice, bob, _service, app = rig()
    ticks = count()
    app.live = LiveCalls(lambda: 1_780_000_000.0 + next(ticks) / 1000, buffer)
    server = ApiServer(WsConfig(host="127.0.0.1", port=0), FakeService(), Control(app), lambda: "cmd",
                       subscriber_queue=subscriber_queue)
    await server.start()
    try:
        yield Live(server, net, alice, bob, app)
    finally:
        await server.stop()


async def ask(ws: ClientConnection, method: str, params: Json | None = None, request_id: object = 1) -> Json:
    await send(ws, request(method, params, request_id))
    answer: Json = await receive(ws)
    return answer


async def error_of(ws: ClientConnection, method: str, params: Json) -> Json:
    answer = await ask(ws, method, params)
    assert "result" not in answer, answer
    error: Json = answer["error"]
    return error


async def events(ws: ClientConnection, n: int) -> list[Json]:
    out = []
    for _ in range(n):
        message = await receive(ws)
        assert message["method"] == "CallEvent", message
        out.append(message["params"])
    return out
