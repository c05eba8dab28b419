"""The WebSocket front (rpc/server.py) with real WebSocket clients on loopback and a fake control whose flows
report synchronously while they start, or later from the loop; no SIP."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import re
import ssl
import weakref
from collections.abc import Callable
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosedError, InvalidHandshake

from b2bua.call.events import FlowEnded, FlowEvent
from b2bua.config import WsConfig
from b2bua.errors import TlsFileError
from rpc.errors import (
    BUSY,
    CALL_NOT_FOUND,
    CALL_STATE,
    INTERNAL,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    NOT_AVAILABLE,
    PARSE_ERROR,
)
from rpc.server import ApiServer, Peer

from .api_fakes import FakeControl, FakeService, Json, Started, api, receive, request, run, send, status_of
from .certs import Authority


async def until_ended(ws: ClientConnection, cmd_ids: set[str]) -> list[Json]:
    """Every message until each of ``cmd_ids`` has Ended."""
    seen: list[Json] = []
    waiting = set(cmd_ids)
    while waiting:
        message = await receive(ws)
        seen.append(message)
        if message.get("method") == "Ended":
            waiting.discard(message["params"]["cmd_id"])
    return seen


def shape(messages: list[Json]) -> list[str]:
    """``result``/``error`` for responses, the method for notifications (with Event's data)."""
    out = []
    for m in messages:
        if "method" in m:
            out.append(f"Event {m['params']['data']}" if m["method"] == "Event" else m["method"])
        else:
            out.append("result" if "result" in m else f"error {m['error']['code']}")
    return out


# -- commands -------------------------------------------------------------------------------------------------


def test_hold_answers_started_then_reports_event_then_ended() -> None:
    async def body() -> None:
        async with api() as a, connect(a.url) as ws:
            await send(ws, request("CallHold", {"callid": "abc@host", "leg": "callee"}, "831717ed97e5"))
            response = await receive(ws)
            assert response == {"jsonrpc": "2.0", "id": "831717ed97e5",
                                "result": {"cmd_id": "cmd-1", "status": "Started"}}
            assert await until_ended(ws, {"cmd-1"}) == [
                {"jsonrpc": "2.0", "method": "Event",
                 "params": {"cmd_id": "cmd-1", "data": "CALL_HOLD", "callid": "abc@host-callee", "leg": "callee",
                            "status": "SIP/2.0 200 OK"}},
                {"jsonrpc": "2.0", "method": "Ended", "params": {"cmd_id": "cmd-1"}},
            ]
            assert a.control.started == [Started("CallHold", "abc@host", "callee", 1001.0, "cmd-1")]
            assert a.service.pokes == 1
            assert a.server.running == {}

    run(body)


@pytest.mark.parametrize(("method", "params", "expected"), [
    ("CallHold", {"callid": "x"}, ["result", "Event CALL_HOLD", "Event CALL_HOLD", "Ended"]),
    ("CallUnHold", {"callid": "x", "leg": "caller"}, ["result", "Event CALL_UNHOLD", "Ended"]),
    ("CallUnhold", {"callid": "x", "leg": None}, ["result", "Event CALL_UNHOLD", "Event CALL_UNHOLD", "Ended"]),
    ("CallEnd", {"callid": "x"}, ["result", "Ended"]),
])
@pytest.mark.parametrize("timing", ["sync", "later", "fail"])
def test_response_comes_before_every_notification_and_ended_once_last(
    method: str, params: Json, expected: list[str], timing: str
) -> None:
    params = {**params, "callid": f"{timing}-{params['callid']}"}
    if timing == "fail":  # the first event comes, then the failure
        expected = ["result", *expected[1:-1][:1], "Error", "Ended"]

    async def body() -> None:
        async with api() as a, connect(a.url) as ws:
            await send(ws, request(method, params))
            messages = [await receive(ws)]
            messages += await until_ended(ws, {messages[0]["result"]["cmd_id"]})
            assert shape(messages) == expected
            assert [m.get("method") for m in messages].count("Ended") == 1
            await asyncio.sleep(0.05)
            assert a.server.running == {}
            assert a.control.started[0].method == ("CallUnHold" if method == "CallUnhold" else method)

    run(body)


def test_error_notification_carries_code_and_message() -> None:
    async def body() -> None:
        async with api() as a, connect(a.url) as ws:
            await send(ws, request("CallHold", {"callid": "fail-1", "leg": "caller"}))
            await receive(ws)
            messages = await until_ended(ws, {"cmd-1"})
            assert messages[1] == {"jsonrpc": "2.0", "method": "Error",
                                   "params": {"cmd_id": "cmd-1", "code": 488, "message": "not accepted"}}

    run(body)


def test_a_second_ended_or_any_later_report_is_dropped() -> None:
    async def body() -> None:
        async with api() as a, connect(a.url) as ws:
            await send(ws, request("CallEnd", {"callid": "twice"}))
            assert shape([await receive(ws), await receive(ws)]) == ["result", "Ended"]
            await asyncio.sleep(0.05)
            await send(ws, request("CallEnd", {"callid": "sync"}, 2))
            assert shape([await receive(ws), await receive(ws)]) == ["result", "Ended"]

    run(body)


# -- refusals -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "params", "code", "message"), [
    ("CallHold", {"callid": "gone@host"}, CALL_NOT_FOUND, "no call with Call-ID 'gone@host'"),
    ("CallUnHold", {"callid": "early@host"}, CALL_STATE, "call 'early@host' is not answered (early)"),
    ("CallEnd", {"callid": "crash@host"}, INTERNAL, "internal error: CallEnd could not start"),
    ("CallBlindTransfer", {"callid": "gone@h", "leg": "callee", "destination": "sip:carol@localhost"},
     CALL_NOT_FOUND, "no call with Call-ID 'gone@h'"),
    ("CallAttendedTransfer", {"callid_a": "early@h", "leg_a": "caller", "callid_b": "b", "leg_b": "callee"},
     CALL_STATE, "call 'early@h' is not answered (early)"),
    ("CallHold", {"callid": "x", "leg": "both"}, INVALID_PARAMS, 'params.leg must be "caller" or "callee", got "both"'),
    ("CallStart", {"caller": "sip:alice@localhost"}, INVALID_PARAMS, "params.callee is missing"),
    ("CallDance", {}, METHOD_NOT_FOUND, 'method "CallDance" not found'),
])
def test_refusals_are_error_responses(method: str, params: Json, code: int, message: str) -> None:
    async def body() -> None:
        async with api() as a, connect(a.url) as ws:
            await send(ws, request(method, params, "r1"))
            response = await receive(ws)
            assert response["id"] == "r1"
            assert (response["error"]["code"], response["error"]["message"]) == (code, message)
            assert a.server.running == {}
            await send(ws, request("CallEnd", {"callid": "sync"}, "r2"))
            assert (await receive(ws))["id"] == "r2"

    run(body)


def test_busy_while_another_command_runs_on_the_call() -> None:
    async def body() -> None:
        async with api() as a, connect(a.url) as ws:
            await send(ws, request("CallHold", {"callid": "slow"}, 1))
            await receive(ws)
            await send(ws, request("CallEnd", {"callid": "slow"}, 2))
            response = await receive(ws)
            assert response["error"] == {"code": BUSY, "message": "call 'slow' is busy"}
            assert shape(await until_ended(ws, {"cmd-1"})) == ["Event CALL_HOLD", "Event CALL_HOLD", "Ended"]

    run(body)


@pytest.mark.parametrize(("frame", "code"), [
    ("{not json", PARSE_ERROR),
    ("[]", INVALID_REQUEST),
    ('{"jsonrpc": "1.0", "method": "CallEnd", "id": 1}', INVALID_REQUEST),
    (b'{"jsonrpc": "2.0", "method": "CallEnd", "params": {"callid": "x"}, "id": 1}', PARSE_ERROR),
])
def test_bad_frames_get_an_error_with_null_id_and_the_connection_stays(frame: str | bytes, code: int) -> None:
    async def body() -> None:
        async with api() as a, connect(a.url) as ws:
            await ws.send(frame)
            response = await receive(ws)
            assert response["error"]["code"] == code
            assert a.control.started == []
            await send(ws, request("CallEnd", {"callid": "sync"}))
            assert "result" in await receive(ws)

    run(body)


# -- cmd_id ---------------------------------------------------------------------------------------------------


def test_client_cmd_id_is_used_and_taken_until_ended() -> None:
    async def body() -> None:
        async with api() as a, connect(a.url) as ws:
            await send(ws, request("CallHold", {"callid": "slow", "cmd_id": "mine"}, 1))
            assert (await receive(ws))["result"] == {"cmd_id": "mine", "status": "Started"}
            assert a.control.started[0].cmd_id == "mine"
            await send(ws, request("CallEnd", {"callid": "other", "cmd_id": "mine"}, 2))
            refused = await receive(ws)
            assert refused["id"] == 2
            assert refused["error"]["code"] == INVALID_PARAMS and "already running" in refused["error"]["message"]
            messages = await until_ended(ws, {"mine"})
            assert {m["params"]["cmd_id"] for m in messages} == {"mine"}
            await send(ws, request("CallEnd", {"callid": "sync", "cmd_id": "mine"}, 3))
            assert (await receive(ws))["result"]["cmd_id"] == "mine"

    run(body)


def test_cmd_id_of_another_connection_is_taken_too() -> None:
    async def body() -> None:
        async with api() as a, connect(a.url) as one, connect(a.url) as two:
            await send(one, request("CallHold", {"callid": "slow", "cmd_id": "shared"}))
            assert "result" in await receive(one)
            await send(two, request("CallEnd", {"callid": "other", "cmd_id": "shared"}))
            assert (await receive(two))["error"]["code"] == INVALID_PARAMS

    run(body)


def test_a_new_cmd_id_never_repeats_a_running_one() -> None:
    async def body() -> None:
        async with api() as a, connect(a.url) as ws:
            await send(ws, request("CallHold", {"callid": "slow", "cmd_id": "cmd-1"}))
            await receive(ws)
            await send(ws, request("CallEnd", {"callid": "sync"}, 2))
            assert (await receive(ws))["result"]["cmd_id"] == "cmd-2"

    run(body)


# -- batches and notifications (requests without id) ----------------------------------------------------------


def test_batch_answers_in_one_array_before_any_notification() -> None:
    async def body() -> None:
        async with api() as a, connect(a.url) as ws:
            await send(ws, [
                request("CallHold", {"callid": "sync-a", "leg": "caller"}, "a"),
                request("CallEnd", {"callid": "gone"}, "b"),
                request("CallUnHold", {"callid": "later-c", "leg": "callee"}, None),
                {"jsonrpc": "2.0", "id": "d"},
                request("CallEnd", {"callid": "sync-e", "cmd_id": "e"}, "e"),
                request("CallEnd", {"callid": "sync-f", "cmd_id": "e"}, "f"),
            ])
            batch = await receive(ws)
            assert [(r["id"], r.get("result", r.get("error", {}).get("code"))) for r in batch] == [
                ("a", {"cmd_id": "cmd-1", "status": "Started"}),
                ("b", CALL_NOT_FOUND),
                ("d", INVALID_REQUEST),
                ("e", {"cmd_id": "e", "status": "Started"}),
                ("f", INVALID_PARAMS),
            ]
            messages = await until_ended(ws, {"cmd-1", "cmd-3", "e"})
            by_cmd: dict[str, list[str]] = {}
            for m in messages:
                by_cmd.setdefault(m["params"]["cmd_id"], []).append(shape([m])[0])
            assert by_cmd == {"cmd-1": ["Event CALL_HOLD", "Ended"], "e": ["Ended"],
                              "cmd-3": ["Event CALL_UNHOLD", "Ended"]}
            assert [s.callid for s in a.control.started] == ["sync-a", "later-c", "sync-e"]

    run(body)


def test_batch_of_notifications_only_gets_no_response() -> None:
    async def body() -> None:
        async with api() as a, connect(a.url) as ws:
            await send(ws, [request("CallEnd", {"callid": "gone"}, None),
                            request("CallStart", {"caller": "sip:a@b", "callee": "sip:c@d"}, None),
                            request("CallHold", {"callid": "sync", "leg": "callee"}, None)])
            assert shape(await until_ended(ws, {"cmd-3"})) == ["Event CALL_HOLD", "Ended"]
            await send(ws, request("CallEnd", {"callid": "x"}, None))
            await send(ws, request("CallEnd", {"callid": "sync"}, "last"))
            messages = [await receive(ws)]
            while "method" in messages[-1]:
                messages.append(await receive(ws))
            assert messages[-1]["id"] == "last"
            assert [s.callid for s in a.control.started] == ["new:sip:a@b", "sync", "x", "sync"]

    run(body)


# -- connections ----------------------------------------------------------------------------------------------


def test_notifications_go_to_the_connection_that_started_the_command() -> None:
    async def body() -> None:
        async with api() as a, connect(a.url) as one, connect(a.url) as two:
            await send(one, request("CallHold", {"callid": "later-1", "leg": "caller", "cmd_id": "one"}))
            await send(two, request("CallHold", {"callid": "later-2", "leg": "callee", "cmd_id": "two"}))
            got_one = [await receive(one)] + await until_ended(one, {"one"})
            got_two = [await receive(two)] + await until_ended(two, {"two"})
            assert shape(got_one) == shape(got_two) == ["result", "Event CALL_HOLD", "Ended"]
            assert {m.get("params", m.get("result"))["cmd_id"] for m in got_one} == {"one"}
            assert {m.get("params", m.get("result"))["cmd_id"] for m in got_two} == {"two"}
            await send(one, request("CallEnd", {"callid": "sync"}, "ping"))
            assert (await receive(one))["id"] == "ping"

    run(body)


def test_a_client_that_leaves_mid_command_does_not_stop_it(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "call_api.rpc")

    async def body() -> None:
        async with api() as a:
            async with connect(a.url) as ws:
                await send(ws, request("CallHold", {"callid": "slow", "leg": "callee"}))
                assert "result" in await receive(ws)
            assert "slow" in a.control.active
            await asyncio.sleep(0.5)
            assert [type(r) for r in a.control.reported["cmd-1"]] == [FlowEvent, FlowEnded]
            assert a.server.running == {} and a.control.active == set()
            async with connect(a.url) as ws:
                await send(ws, request("CallHold", {"callid": "slow", "leg": "callee"}))
                assert (await receive(ws))["result"]["cmd_id"] == "cmd-2"

    run(body)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    lines = [r.getMessage() for r in caplog.records if r.name == "call_api.rpc"]
    assert re.fullmatch(r"cmd cmd-1 CallHold call slow from 127\.0\.0\.1:\d+: started", lines[0])
    assert lines[1] == "cmd cmd-1 CallHold call slow: ended"


def test_stop_ends_running_commands_with_error_503_then_closes(caplog: pytest.LogCaptureFixture) -> None:
    """A command running at the stop is not silently dropped: Error 503 and Ended reach its client before
    the close (1001); what its flow reports afterwards is dropped without a warning."""
    caplog.set_level(logging.INFO, "call_api.rpc")

    async def body() -> None:
        async with api() as a:
            ws = await connect(a.url)
            await send(ws, request("CallHold", {"callid": "slow"}))
            await receive(ws)
            await a.server.stop()
            frames = [json.loads(frame) async for frame in ws]
            assert [f["method"] for f in frames] == ["Error", "Ended"]
            assert frames[0]["params"] == {"cmd_id": "cmd-1", "code": 503, "message": "the service is stopping"}
            assert ws.close_code == 1001
            assert a.server.running == {}
            await asyncio.sleep(0.5)
            assert type(a.control.reported["cmd-1"][-1]) is FlowEnded  # the flow ran on, unheard

    run(body)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(r.getMessage().endswith("ended by the service stopping") for r in caplog.records)


def test_an_oversized_message_closes_the_connection_with_1009() -> None:
    async def body() -> None:
        async with api(max_frame=1024) as a, connect(a.url) as ws:
            await send(ws, request("CallEnd", {"callid": "x" * 2000}))
            with pytest.raises(ConnectionClosedError):
                await ws.recv()
            assert ws.close_code == 1009
            assert a.control.started == []

    run(body)


def test_the_message_size_limit_is_the_configured_one() -> None:
    async def body() -> None:
        async with api(max_frame=1024) as a, connect(a.url) as ws:
            document = request("CallEnd", {"callid": "sync"}, "x" * 900)
            await send(ws, document)
            assert (await receive(ws))["id"] == "x" * 900

    run(body)


@pytest.mark.parametrize(("compression", "negotiated"), [(False, None), (True, "permessage-deflate")])
def test_permessage_deflate_only_when_the_setting_asks(compression: bool, negotiated: str | None) -> None:
    async def body() -> None:
        async with api(compression=compression) as a, connect(a.url) as ws:  # the client offers deflate
            assert ws.response is not None
            offered = ws.response.headers.get("Sec-WebSocket-Extensions")
            assert (offered.split(";")[0] if offered else None) == negotiated
            await send(ws, request("CallEnd", {"callid": "sync"}))
            assert (await receive(ws))["id"] == 1

    run(body)


def test_port_and_urls_when_port_0() -> None:
    async def body() -> None:
        async with api() as a:
            assert a.server.port > 0
            assert a.server.urls == [f"ws://127.0.0.1:{a.server.port}/call-api"]
        with pytest.raises(RuntimeError):
            _ = a.server.port
        assert a.server.urls == []

    run(body)


# -- handshake: path, token, Origin ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/nothing.html", "/call-api/", "/other", "/call-apix", "/CALL-API", "/static/../x"])
def test_another_path_gets_404(path: str) -> None:
    async def body() -> None:
        async with api() as a:
            status, _ = await status_of(f"ws://127.0.0.1:{a.server.port}{path}")
            assert status == 404
            assert (await status_of(f"ws://127.0.0.1:{a.server.port}/call-api?x=1"))[0] == 101

    run(body)


def test_the_configured_path_is_served() -> None:
    async def body() -> None:
        async with api(path="/v1/calls") as a:
            assert (await status_of(f"ws://127.0.0.1:{a.server.port}/v1/calls"))[0] == 101
            assert (await status_of(f"ws://127.0.0.1:{a.server.port}/call-api"))[0] == 404

    run(body)


@pytest.mark.parametrize(("suffix", "headers", "status", "challenge"), [
    ("", None, 401, 'Bearer realm="call-api"'),
    ("", {"Authorization": "Bearer wrong"}, 401, 'Bearer realm="call-api", error="invalid_token"'),
    ("?token=wrong", None, 401, 'Bearer realm="call-api", error="invalid_token"'),
    ("", {"Authorization": "Basic czNjcmV0"}, 401, 'Bearer realm="call-api"'),
    ("", {"Authorization": "Bearer s3cr+t/=="}, 101, None),
    ("", {"Authorization": "bearer  s3cr+t/== "}, 101, None),
    ("?token=s3cr%2Bt%2F%3D%3D", None, 101, None),
    ("?a=1&token=s3cr+t/==", None, 101, None),
])
def test_token_by_header_or_query(suffix: str, headers: dict[str, str] | None, status: int,
                                  challenge: str | None) -> None:
    async def body() -> None:
        async with api(token="s3cr+t/==") as a:
            got, response_headers = await status_of(a.url + suffix, additional_headers=headers)
            assert got == status
            assert response_headers.get("WWW-Authenticate") == challenge

    run(body)


def test_no_token_configured_means_none_needed() -> None:
    async def body() -> None:
        async with api() as a:
            assert (await status_of(a.url, additional_headers={"Authorization": "Bearer anything"}))[0] == 101

    run(body)


@pytest.mark.parametrize(("origin", "status"), [
    ("https://app.example.com", 101),
    ("http://localhost:8080", 101),
    ("https://evil.example.com", 403),
    ("https://app.example.com:443", 403),
    ("null", 403),
    (None, 101),
])
def test_origin_allow_list(origin: str | None, status: int) -> None:
    async def body() -> None:
        async with api(origins=("https://app.example.com", "http://localhost:8080")) as a:
            assert (await status_of(a.url, origin=origin))[0] == status

    run(body)


def test_wrong_path_is_404_before_the_token_and_origin() -> None:
    async def body() -> None:
        async with api(token="t", origins=("https://a.example",)) as a:
            base = f"ws://127.0.0.1:{a.server.port}"
            assert (await status_of(base + "/nope", origin="https://b.example"))[0] == 404
            assert (await status_of(base + "/call-api", origin="https://b.example"))[0] == 401
            assert (await status_of(base + "/call-api?token=t", origin="https://b.example"))[0] == 403
            assert (await status_of(base + "/call-api?token=t", origin="https://a.example"))[0] == 101

    run(body)


def test_frames_wait_for_a_full_queue_to_drain(monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr("rpc.server.HIGH_WATER", 0)
    caplog.set_level(logging.DEBUG, "call_api.rpc")

    async def body() -> None:
        async with api() as a, connect(a.url) as ws:
            for n in range(20):
                await send(ws, [request("CallEnd", {"callid": f"sync-{n}"}, n), request("Nope", {}, "x")])
            for n in range(20):
                assert [r["id"] for r in await receive(ws)] == [n, "x"]
                assert shape([await receive(ws)]) == ["Ended"]

    run(body)
    assert any("request refused: -32601" in r.getMessage() for r in caplog.records)


def test_what_is_queued_for_a_closed_connection_is_dropped() -> None:
    async def body() -> None:
        async with api() as a:
            ws = await connect(a.url)
            await send(ws, request("CallHold", {"callid": "later"}))
            await ws.close()
            await asyncio.sleep(0.1)
            assert a.server.running == {}

    run(body)


# -- an ended connection goes by reference counting --------------------------------------------------------

MASK = b"\0\0\0\0"
#: How a client ends its connection after a clean request: what it sends last (then it closes its socket), or
#: None for websockets' own client closing with the closing handshake.
ENDINGS: dict[str, bytes | None] = {
    "closing handshake": None,
    "EOF without a close frame": b"",
    "reserved opcode": bytes([0x83, 0x80]) + MASK,
    "unmasked frame": bytes([0x81, 0x02]) + b"{}",
    "bad UTF-8": bytes([0x81, 0x82]) + MASK + b"\xff\xfe",
    "frame cut by EOF": bytes([0x81, 0x85]) + MASK + b"{",
}


async def raw_client(url: str, last: bytes) -> None:
    """A WebSocket client on a bare socket: the handshake, one request, ``last``, then the socket closed."""
    host, port = url.split("/")[2].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /call-api HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    text = json.dumps(request("CallHold", {"callid": "sync", "leg": "caller"})).encode()
    writer.write(bytes([0x81, 0x80 | len(text)]) + MASK + text + last)
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.close()


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_an_ended_connection_is_freed_without_the_garbage_collector(ending: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The service freezes long-lived objects out of the collector's reach (b2bua/io/collector.py), so a
    connection whose objects end on a reference cycle stays in memory for good: the network fuzzer's RSS grew
    by ~7 KB a WebSocket connection (the peer and its asker; websockets' parser or connection exception with
    the traceback whose frame holds the protocol). With the collector off, reference counting alone must free
    the peer, the connection and its protocol once the connection has ended, however it ended."""
    kept: list[weakref.ref[object]] = []

    class Watched(Peer):
        def __init__(self, connection: ServerConnection, server: ApiServer | None = None) -> None:
            super().__init__(connection, server)
            kept.extend([weakref.ref(self), weakref.ref(connection), weakref.ref(connection.protocol)])

    monkeypatch.setattr("rpc.server.Peer", Watched)

    async def body() -> None:
        async with api() as a:
            gc.disable()
            try:
                last = ENDINGS[ending]
                await (raw_client(a.url, last) if last is not None else clean_client(a.url))
                await until(lambda: len(kept) == 3 and not a.server.peers)
                await until(lambda: all(ref() is None for ref in kept))
            finally:
                gc.enable()

    run(body)


async def clean_client(url: str) -> None:
    async with connect(url) as ws:
        await send(ws, request("CallHold", {"callid": "sync", "leg": "caller"}))
        assert "result" in await receive(ws)


# -- what GET /metrics reads of the server (b2bua/io/metrics.py exports it) ------------------------------------


def test_commands_are_counted_by_method_and_outcome_and_timed() -> None:
    async def body() -> None:
        async with api() as a:
            assert a.server.connections == 0 and a.server.subscribers == 0
            async with connect(a.url) as ws, connect(a.url) as other:
                assert a.server.connections == 2
                await send(ws, request("CallHold", {"callid": "c1"}, 1))
                await send(ws, request("CallHold", {"callid": "fail1"}, 2))
                await send(other, request("CallEnd", {"callid": "gone1"}, 3))
                await send(other, request("CallEnd", {"callid": "crash1"}, 4))
                await until_ended(ws, {"cmd-1", "cmd-2"})
                assert (await receive(other))["error"]["code"] == CALL_NOT_FOUND
                assert (await receive(other))["error"]["code"] == INTERNAL
            assert a.server.commands == {("CallHold", "ok"): 1, ("CallHold", "error"): 1, ("CallEnd", "refused"): 1,
                                         ("CallEnd", "error"): 1}
            durations = a.server.durations
            assert list(durations) == ["CallHold"] and durations["CallHold"].count == 2
            assert durations["CallHold"].sum > 0  # the fake clock moves a second each time it is read
            await until(lambda: a.server.connections == 0)

    run(body)


async def until(condition: Callable[[], object], timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_while_stopping_connected_clients_get_their_reports_but_start_nothing_new() -> None:
    async def body() -> None:
        async with api() as a, connect(a.url) as ws:
            await send(ws, request("CallHold", {"callid": "slow"}, 1))
            assert "result" in await receive(ws)
            a.server.begin_stop()
            await send(ws, request("CallEnd", {"callid": "other"}, 2))
            refused = await receive(ws)
            assert refused["id"] == 2 and refused["error"] == {
                "code": NOT_AVAILABLE, "message": "call-api is stopping: CallEnd is not available"}
            assert shape(await until_ended(ws, {"cmd-1"})) == ["Event CALL_HOLD", "Event CALL_HOLD", "Ended"]
            assert [s.callid for s in a.control.started] == ["slow"]
            assert a.server.commands == {("CallEnd", "refused"): 1, ("CallHold", "ok"): 1}

    run(body)


# -- wss:// (ws.tls_cert, ws.tls_key) ---------------------------------------------------------------------------


def test_wss_serves_the_same_api_with_the_same_token_check(tmp_path: Path) -> None:
    authority = Authority(tmp_path)
    issued = authority.issue("api", ["localhost", "127.0.0.1"])
    trust = ssl.create_default_context(cafile=str(authority.ca))

    async def body() -> None:
        async with api(tls_cert=str(issued.cert), tls_key=str(issued.key), token="s3cret") as a:
            assert a.server.urls == [f"wss://127.0.0.1:{a.server.port}/call-api"]
            assert a.url.startswith("wss://")
            assert (await status_of(a.url, ssl=trust))[0] == 401
            async with connect(a.url, ssl=trust, additional_headers={"Authorization": "Bearer s3cret"}) as ws:
                await send(ws, request("CallHold", {"callid": "abc@host", "leg": "callee"}))
                assert shape(await until_ended(ws, {"cmd-1"})) == ["result", "Event CALL_HOLD", "Ended"]

    run(body)


def test_a_plain_ws_client_on_the_wss_port_is_refused_and_the_server_serves_on(tmp_path: Path) -> None:
    authority = Authority(tmp_path)
    issued = authority.issue("api", ["127.0.0.1"])
    trust = ssl.create_default_context(cafile=str(authority.ca))

    async def body() -> None:
        async with api(tls_cert=str(issued.cert), tls_key=str(issued.key)) as a:
            for _ in range(3):
                with pytest.raises((InvalidHandshake, OSError)):
                    await connect(f"ws://127.0.0.1:{a.server.port}/call-api", open_timeout=5)
            assert (await status_of(a.url, ssl=trust))[0] == 101

    run(body)


def test_an_unusable_certificate_stops_the_start_naming_the_file(tmp_path: Path) -> None:
    issued = Authority(tmp_path).issue("api", ["127.0.0.1"])
    other = Authority(tmp_path / "other").issue("other", ["127.0.0.1"])

    async def body() -> None:
        for cert, key, message in [(tmp_path / "none.pem", issued.key, "no such file"),
                                   (issued.cert, other.key, f"cannot use certificate {issued.cert}")]:
            server = ApiServer(WsConfig(host="127.0.0.1", port=0, tls_cert=str(cert), tls_key=str(key)),
                               FakeService(), FakeControl(), lambda: "cmd")
            with pytest.raises(TlsFileError, match=message):
                await server.start()
            assert server.urls == []

    run(body)
