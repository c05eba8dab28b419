"""The client library (rpc/client/api.py) against the real ApiServer in this process, with the fake control of
test_server.py: every command, concurrent commands on one connection, Error as CommandFailedError, refusals as
RequestRefusedError, a lost connection as ConnectionLostError, the token and the Origin."""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import typing
from collections.abc import Awaitable, Callable
from itertools import chain, count
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from b2bua.call import commands
from b2bua.call.commands import CallHold, args
from b2bua.call.control import COMMANDS, Row
from b2bua.call.events import FlowEnded
from rpc.client import (
    CallApi,
    ClientError,
    CommandFailedError,
    ConnectError,
    ConnectionLostError,
    Ended,
    Event,
    Failed,
    RequestRefusedError,
)
from rpc.errors import BUSY, CALL_NOT_FOUND, CALL_STATE, INVALID_PARAMS, METHOD_NOT_FOUND
from tests.api_fakes import Started, api, run
from tests.certs import Authority

# -- the methods follow the command table ---------------------------------------------------------------------


def method_name(command: str) -> str:
    """``CallBlindTransfer`` -> ``call_blind_transfer``; ``CallUnHold`` -> ``call_unhold``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", command.replace("UnHold", "Unhold")).lower()


@pytest.mark.parametrize("row", [row for row in COMMANDS if isinstance(row, Row)], ids=lambda row: row.name)
def test_every_command_has_a_method_with_its_parameters(row: Any) -> None:
    method = getattr(CallApi, method_name(row.name))
    signature = inspect.signature(method)
    params = [p for p in signature.parameters.values() if p.name != "self"]
    assert [p.name for p in params] == [name for name, _ in args(row.command)] + ["cmd_id"]
    hints, field_hints = typing.get_type_hints(method), typing.get_type_hints(row.command)
    for param, (name, spec) in zip(params, args(row.command), strict=False):
        assert hints[name] == field_hints[name], name
        assert param.default is (inspect.Parameter.empty if spec.required else None), name
        assert param.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert params[-1].kind is inspect.Parameter.KEYWORD_ONLY and params[-1].default is None
    assert hints["return"].__name__ == "Request"


def test_no_method_for_a_command_outside_the_table() -> None:
    names = {method_name(row.name) for row in COMMANDS if isinstance(row, Row)}
    assert {name for name in vars(CallApi) if name.startswith("call_")} == names


# -- commands -------------------------------------------------------------------------------------------------


def test_await_a_command_to_run_it_to_its_end() -> None:
    async def body() -> None:
        async with api() as a, CallApi(a.url) as client:
            events = await client.call_hold("abc@host", "callee")
            assert events == (Event("cmd-1", "CALL_HOLD", "abc@host-callee", "callee", "SIP/2.0 200 OK"),)
            assert a.control.started == [Started("CallHold", "abc@host", "callee", 1001.0, "cmd-1")]
            assert a.server.running == {}

    run(body)


CALLS: list[tuple[Callable[[CallApi], Any], str, str, list[str]]] = [
    (lambda c: c.call_start("sip:alice@h", "sip:bob@h"), "CallStart", "new:sip:alice@h", ["CALL_ANSWER"] * 2),
    (lambda c: c.call_blind_transfer("x@h", "callee", "sip:carol@h"), "CallBlindTransfer", "x@h",
     ["TRANSFER_ACCEPT"]),
    (lambda c: c.call_attended_transfer("a@h", "caller", "b@h", "callee"), "CallAttendedTransfer", "a@h",
     ["TRANSFER_ACCEPT"]),
    (lambda c: c.call_attended_transfer("a@h", "caller", "b@h", "callee", "sip:carol@h"), "CallAttendedTransfer",
     "a@h", ["TRANSFER_ACCEPT"]),
    (lambda c: c.call_hold("x@h"), "CallHold", "x@h", ["CALL_HOLD"] * 2),
    (lambda c: c.call_unhold("x@h", "caller"), "CallUnHold", "x@h", ["CALL_UNHOLD"]),
    (lambda c: c.call_end("x@h"), "CallEnd", "x@h", []),
]


@pytest.mark.parametrize(("call", "method", "callid", "data"), CALLS)
def test_every_command_method_starts_its_command(call: Callable[[CallApi], Any], method: str, callid: str,
                                                 data: list[str]) -> None:
    async def body() -> None:
        async with api() as a, CallApi(a.url) as client:
            request = call(client)
            assert request.method == method
            handle = await request.start()
            assert (handle.cmd_id, handle.method) == ("cmd-1", method)
            assert handle.response == {"jsonrpc": "2.0", "id": handle.response["id"],
                                       "result": {"cmd_id": "cmd-1", "status": "Started"}}
            assert [event.data for event in await handle.wait()] == data
            assert [(s.method, s.callid) for s in a.control.started] == [(method, callid)]
            assert handle.done

    run(body)


def test_the_request_carries_the_command_fields_without_the_absent_ones() -> None:
    async def body() -> None:
        async with api() as a, CallApi(a.url) as client:
            with pytest.warns(RuntimeWarning, match="was never sent: await it") as unsent:
                assert client.call_hold("x@h").params == {"callid": "x@h"}
                request = client.call_attended_transfer("a@h", "caller", "b@h", "callee", cmd_id="mine")
                assert request.params == {"callid_a": "a@h", "leg_a": "caller", "callid_b": "b@h",
                                          "leg_b": "callee", "cmd_id": "mine"}
                assert client.command(CallHold("x@h", None)).params == client.call_hold("x@h").params
                del request
            assert len(unsent) == 4
            with pytest.raises(TypeError, match="Command is not a command"):
                client.command(commands.Command())
            assert len(a.control.started) == 0

    run(body)


def test_events_come_one_by_one_and_the_notifications_end_with_ended() -> None:
    async def body() -> None:
        async with api() as a, CallApi(a.url) as client:
            handle = await client.call_hold("slow@h").start()
            assert not handle.done and repr(handle) == "<CommandHandle CallHold cmd-1>"
            seen = []
            async for event in handle.events():
                seen.append(event.leg)
                assert a.server.running
            assert seen == ["caller", "callee"]
            assert [type(n) for n in [n async for n in handle.notifications()]] == [Event, Event, Ended]
            assert [e.leg for e in await handle.wait()] == ["caller", "callee"]
            assert handle.done and repr(handle) == "<CommandHandle CallHold cmd-1 ended>"

    run(body)


def test_a_command_named_by_the_client() -> None:
    async def body() -> None:
        async with api() as a, CallApi(a.url) as client:
            handle = await client.call_hold("slow@h", cmd_id="mine").start()
            assert handle.cmd_id == "mine"
            with pytest.raises(RequestRefusedError) as refused:
                await client.call_end("other@h", cmd_id="mine")
            assert refused.value.code == INVALID_PARAMS and refused.value.data == {"param": "cmd_id"}
            await handle.wait()
            assert await client.call_end("sync@h", cmd_id="mine") == ()

    run(body)


def test_commands_run_concurrently_on_one_connection() -> None:
    async def body() -> None:
        async with api() as a, CallApi(a.url) as client:
            results = await asyncio.gather(
                client.call_hold("slow-1@h"), client.call_unhold("later@h", "callee"), client.call_end("sync@h"),
                client.call_start("sip:alice@h", "sip:bob@h"), client.call_hold("slow-2@h", "caller"),
            )
            assert [[(e.data, e.callid) for e in events] for events in results] == [
                [("CALL_HOLD", "slow-1@h-caller"), ("CALL_HOLD", "slow-1@h-callee")],
                [("CALL_UNHOLD", "later@h-callee")],
                [],
                [("CALL_ANSWER", "new:sip:alice@h-caller"), ("CALL_ANSWER", "new:sip:alice@h-callee")],
                [("CALL_HOLD", "slow-2@h-caller")],
            ]
            cmd_ids = {e.cmd_id for events in results for e in events}
            assert len(cmd_ids) == 4 and len(a.control.started) == 5

    run(body)


def test_handles_followed_in_any_order() -> None:
    async def body() -> None:
        async with api() as a, CallApi(a.url) as client:
            slow = await client.call_hold("slow@h").start()
            quick = await client.call_end("later@h").start()
            assert await slow.wait() and await quick.wait() == ()
            assert a.server.running == {}

    run(body)


# -- failures -------------------------------------------------------------------------------------------------


def test_an_error_is_raised_with_its_code_once_the_command_ended() -> None:
    async def body() -> None:
        async with api() as a, CallApi(a.url) as client:
            handle = await client.call_unhold("fail@h", "caller").start()
            seen = []
            with pytest.raises(CommandFailedError) as failed:
                async for event in handle.events():
                    seen.append(event.data)
            assert seen == ["CALL_UNHOLD"]
            assert (failed.value.cmd_id, failed.value.code, failed.value.message) == ("cmd-1", 488, "not accepted")
            assert handle.done and a.server.running == {}
            notes = [n async for n in handle.notifications()]
            assert [type(n) for n in notes] == [Event, Failed, Ended]
            with pytest.raises(CommandFailedError):
                await client.call_hold("fail@h")
            assert await client.call_hold("later@h") != ()

    run(body)


@pytest.mark.parametrize(("callid", "code"), [("gone@h", CALL_NOT_FOUND), ("early@h", CALL_STATE)])
def test_a_refused_command_raises_with_its_code(callid: str, code: int) -> None:
    async def body() -> None:
        async with api() as a, CallApi(a.url) as client:
            with pytest.raises(RequestRefusedError) as refused:
                await client.call_hold(callid, "callee")
            assert refused.value.code == code and callid in refused.value.message
            assert refused.value.response is not None and refused.value.response["error"]["code"] == code
            assert isinstance(refused.value, ClientError)
            assert a.control.started == []
            assert await client.call_end("sync@h") == ()

    run(body)


def test_a_second_command_on_a_busy_call_is_refused() -> None:
    async def body() -> None:
        async with api() as a, CallApi(a.url) as client:
            first = await client.call_hold("slow@h").start()
            with pytest.raises(RequestRefusedError) as refused:
                await client.call_unhold("slow@h")
            assert refused.value.code == BUSY
            await first.wait()

    run(body)


def test_requests_the_library_has_no_method_for_are_checked_by_the_service() -> None:
    async def body() -> None:
        async with api() as a, CallApi(a.url) as client:
            with pytest.raises(RequestRefusedError) as bad_leg:
                await client.request("CallHold", {"callid": "x", "leg": "both"})
            assert (bad_leg.value.code, bad_leg.value.data) == (INVALID_PARAMS, {"param": "leg"})
            with pytest.raises(RequestRefusedError) as unknown:
                await client.request("CallPark", {"callid": "x"}, request_id=7)
            assert unknown.value.code == METHOD_NOT_FOUND and unknown.value.response is not None
            assert unknown.value.response["id"] == 7
            assert await client.request("CallUnhold", {"callid": "sync"}) != ()

    run(body)


def test_the_service_stopping_mid_command_raises_its_error_503() -> None:
    """A stop ends the running command with Error 503 then Ended (issue 15): raised as a failure with that
    code, not as a lost connection."""
    async def body() -> None:
        async with api() as a, CallApi(a.url) as client:
            handle = await client.call_hold("slow@h").start()
            waiting = asyncio.ensure_future(handle.wait())
            await asyncio.sleep(0.05)
            await a.server.stop()
            with pytest.raises(CommandFailedError) as failed:
                await waiting
            assert failed.value.code == 503 and handle.done

    run(body)


def test_the_connection_dropping_mid_command_raises_connection_lost() -> None:
    async def body() -> None:
        async with api() as a, CallApi(a.url) as client:
            handle = await client.call_hold("slow@h").start()
            waiting = asyncio.ensure_future(handle.wait())
            await asyncio.sleep(0.05)
            for peer in list(a.server.peers):  # the connection drops (not a stop, which ends the command first)
                await peer.connection.close(1011)
            with pytest.raises(ConnectionLostError) as lost:
                await waiting
            assert lost.value.close_code == 1011
            assert str(lost.value) == "the connection closed before command cmd-1 ended (code 1011)"
            assert client.closed and handle.done
            with pytest.raises(ConnectionLostError):
                await client.call_end("sync@h")
            with pytest.raises(ConnectionLostError):
                [e async for e in handle.events()]

    run(body)


async def serve_script(handler: Callable[[ServerConnection], Awaitable[None]]) -> Any:
    return await serve(handler, "127.0.0.1", 0)


def test_the_server_closing_before_the_response_raises_connection_lost() -> None:
    async def handler(connection: ServerConnection) -> None:
        await connection.recv()
        await connection.close(1011, "going")

    async def body() -> None:
        server = await serve_script(handler)
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        try:
            async with CallApi(url) as client:
                with pytest.raises(ConnectionLostError) as lost:
                    await client.call_end("x@h")
                assert lost.value.close_code == 1011
                assert str(lost.value) == "the connection closed before the response (code 1011)"
        finally:
            server.close()
            await server.wait_closed()

    run(body)


@pytest.mark.parametrize("frames", [
    ["not json"],
    ['{"jsonrpc":"2.0","id":"{id}","result":{"status":"Started"}}'],
])
def test_a_server_that_breaks_the_protocol_is_left(frames: list[str]) -> None:
    closed: list[int | None] = []

    async def handler(connection: ServerConnection) -> None:
        request = await connection.recv()
        assert isinstance(request, str)
        request_id = request.rsplit('"id":"', 1)[1].split('"')[0]
        for frame in frames:
            await connection.send(frame.replace("{id}", request_id))
        await connection.wait_closed()
        closed.append(connection.close_code)

    async def body() -> None:
        server = await serve_script(handler)
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        try:
            async with CallApi(url) as client:
                with pytest.raises(ConnectionLostError) as lost:
                    await client.call_end("x@h")
                assert lost.value.close_code == 1002
                assert "not JSON" in str(lost.value) or "has no cmd_id" in str(lost.value)
            await asyncio.sleep(0.05)
            assert closed == [1002]
        finally:
            server.close()
            await server.wait_closed()

    run(body)


def test_closing_the_client_mid_command_leaves_the_command_running() -> None:
    async def body() -> None:
        async with api() as a:
            client = CallApi(a.url)
            await client.open()
            handle = await client.call_hold("slow@h").start()
            await client.close()
            with pytest.raises(ConnectionLostError, match="closed by the client"):
                await handle.wait()
            await client.close()
            while a.server.running:
                await asyncio.sleep(0.05)
            assert isinstance(a.control.reported["cmd-1"][-1], FlowEnded)

    run(body)


def test_misuse_raises() -> None:
    async def body() -> None:
        async with api() as a:
            client = CallApi(a.url)
            with pytest.raises(RuntimeError, match="open the CallApi first"):
                await client.call_end("x")
            async with client:
                request = client.call_end("sync@h")
                await request
                with pytest.raises(RuntimeError, match="already sent"):
                    await request.start()
            with pytest.raises(RuntimeError, match="opens once"):
                await client.open()
            await CallApi(a.url).close()

    run(body)


def test_request_ids_are_made_fresh_and_given_ones_must_be_free() -> None:
    async def body() -> None:
        ids = chain([5, 5, 6], count(7))
        async with api() as a, CallApi(a.url, new_request_id=lambda: next(ids)) as client:
            first, second = await asyncio.gather(client.call_hold("slow-1@h").start(),
                                                 client.call_hold("slow-2@h").start())
            assert (first.response["id"], second.response["id"]) == (5, 6)
            pending = asyncio.ensure_future(client.request("CallHold", {"callid": "slow-3@h"}, request_id="r").run())
            await asyncio.sleep(0)
            with pytest.raises(ValueError, match="'r' is already waiting"):
                await client.request("CallEnd", {"callid": "x"}, request_id="r").start()
            await asyncio.gather(first.wait(), second.wait(), pending)
            with pytest.raises(TypeError, match="not JSON serializable"):
                await client.request("CallEnd", {"callid": object()}, request_id="r").start()
            try:
                async with asyncio.timeout(0.05):
                    await client.call_hold("slow-4@h", cmd_id="given-up")
            except TimeoutError:
                pass
            assert await client.request("CallEnd", {"callid": "sync@h"}, request_id="r") == ()
            assert await client.call_end("sync@h") == ()

    run(body)


def test_what_belongs_to_no_request_or_command_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    frames = [
        '{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"not yours"}}',
        '{"jsonrpc":"2.0","id":"other","result":{"cmd_id":"x","status":"Started"}}',
        '{"jsonrpc":"2.0","id":"other","result":{}}',
        '{"jsonrpc":"2.0","method":"Event","params":{"cmd_id":"c","data":"EARLY"}}',
        '[1, 2]',
        '{"jsonrpc":"2.0","id":"{id}","result":{"cmd_id":"c","status":"Started"}}',
        '{"jsonrpc":"2.0","method":"Event","params":{"cmd_id":"x","data":"NOT_MINE"}}',
        '{"jsonrpc":"2.0","method":"Event","params":{"cmd_id":"c","data":"CALL_HOLD"}}',
        '{"jsonrpc":"2.0","method":"Ended","params":{"cmd_id":"c"}}',
        '{"jsonrpc":"2.0","method":"Event","params":{"cmd_id":"c","data":"LATE"}}',
    ]

    async def handler(connection: ServerConnection) -> None:
        request = await connection.recv()
        assert isinstance(request, str)
        request_id = request.rsplit('"id":"', 1)[1].split('"')[0]
        for frame in frames:
            await connection.send(frame.replace("{id}", request_id))
        await connection.wait_closed()

    async def body() -> None:
        server = await serve_script(handler)
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        try:
            async with CallApi(url) as client:
                assert await client.call_hold("x@h") == (Event("c", "CALL_HOLD"),)
                await asyncio.sleep(0.05)
                assert not client.closed
        finally:
            server.close()
            await server.wait_closed()

    caplog.set_level(logging.DEBUG, logger="call_api.rpc.client")
    run(body)
    assert [r.getMessage() for r in caplog.records] == [
        "ignored from the server: a response to no request waiting (id None)",
        "ignored from the server: a response to no request waiting (id 'other')",
        "ignored from the server: a response to no request waiting (id 'other')",
        "cmd 'c': Event of no command of this connection, ignored",
        "ignored from the server: a frame that is not an object: list",
        "cmd 'c' CallHold: started",
        "cmd 'x': Event of no command of this connection, ignored",
        "cmd 'c' CallHold: ended",
        "cmd 'c': Event of no command of this connection, ignored",
    ]


# -- the connection: token, Origin, nobody there --------------------------------------------------------------


def test_the_token_is_sent_as_bearer() -> None:
    async def body() -> None:
        async with api(token="s3cret") as a:
            async with CallApi(a.url, token="s3cret") as client:
                assert await client.call_end("sync@h") == ()
            for token in ("wrong", None):
                with pytest.raises(ConnectError) as refused:
                    async with CallApi(a.url, token=token):
                        pass
                assert refused.value.status == 401 and "HTTP 401" in str(refused.value)

    run(body)


def test_the_origin_is_sent() -> None:
    async def body() -> None:
        async with api(origins=("https://crm.example",)) as a:
            async with CallApi(a.url, origin="https://crm.example") as client:
                assert await client.call_end("sync@h") == ()
            with pytest.raises(ConnectError) as refused:
                async with CallApi(a.url, origin="https://evil.example"):
                    pass
            assert refused.value.status == 403

    run(body)


def test_nobody_listening_or_another_path() -> None:
    async def body() -> None:
        async with api() as a:
            url, port = a.url, a.server.port
            with pytest.raises(ConnectError) as not_found:
                async with CallApi(f"ws://127.0.0.1:{port}/nope"):
                    pass
            assert not_found.value.status == 404
        with pytest.raises(ConnectError) as nobody:
            async with CallApi(url):
                pass
        assert nobody.value.status is None and str(nobody.value).startswith(f"cannot connect to {url}: ")
        with pytest.raises(ConnectError, match="cannot connect to http://h/"):
            await CallApi("http://h/").open()

    run(body)


# -- wss:// and the CA file ------------------------------------------------------------------------------------


def test_wss_with_the_ca_file_runs_commands(tmp_path: Path) -> None:
    authority = Authority(tmp_path)
    issued = authority.issue("api", ["localhost", "127.0.0.1"])

    async def body() -> None:
        async with api(tls_cert=str(issued.cert), tls_key=str(issued.key), token="s3cret") as a:
            for host in ("127.0.0.1", "localhost"):
                url = f"wss://{host}:{a.server.port}/call-api"
                async with CallApi(url, token="s3cret", ca_file=str(authority.ca)) as client:
                    events = await client.call_hold("abc@host", "callee")
                    assert [e.data for e in events] == ["CALL_HOLD"]
            with pytest.raises(ConnectError) as refused:
                await CallApi(a.url, token="wrong", ca_file=str(authority.ca)).open()
            assert refused.value.status == 401

    run(body)


def test_wss_refuses_a_certificate_from_another_ca_or_for_another_host(tmp_path: Path) -> None:
    authority = Authority(tmp_path)
    stranger = Authority(tmp_path / "stranger", "stranger")
    issued = authority.issue("api", ["api.example.com"])

    async def body() -> None:
        async with api(tls_cert=str(issued.cert), tls_key=str(issued.key)) as a:
            url = f"wss://127.0.0.1:{a.server.port}/call-api"
            cases = [(stranger.ca, "unable to get local issuer certificate"),
                     (authority.ca, "IP address mismatch"),
                     (None, "unable to get local issuer certificate")]
            for ca, reason in cases:
                with pytest.raises(ConnectError) as refused:
                    await CallApi(url, ca_file=None if ca is None else str(ca)).open()
                message = str(refused.value)
                assert "the service's certificate is not trusted" in message, message
                assert reason in message, message
                assert refused.value.status is None

    run(body)


def test_wss_expired_certificate_is_refused(tmp_path: Path) -> None:
    authority = Authority(tmp_path)
    issued = authority.issue("api", ["127.0.0.1"], expired=True)

    async def body() -> None:
        async with api(tls_cert=str(issued.cert), tls_key=str(issued.key)) as a:
            with pytest.raises(ConnectError, match="certificate has expired"):
                await CallApi(a.url, ca_file=str(authority.ca)).open()

    run(body)


def test_plain_ws_on_a_wss_port_and_wss_on_a_ws_port_are_refused(tmp_path: Path) -> None:
    authority = Authority(tmp_path)
    issued = authority.issue("api", ["127.0.0.1"])

    async def body() -> None:
        async with api(tls_cert=str(issued.cert), tls_key=str(issued.key)) as secure, api() as plain:
            with pytest.raises(ConnectError, match=f"cannot connect to ws://127.0.0.1:{secure.server.port}/"):
                await CallApi(f"ws://127.0.0.1:{secure.server.port}/call-api", open_timeout=5).open()
            with pytest.raises(ConnectError, match="cannot connect to wss://"):
                await CallApi(f"wss://127.0.0.1:{plain.server.port}/call-api", ca_file=str(authority.ca)).open()

    run(body)


def test_a_ca_file_that_cannot_be_used_is_a_connect_error(tmp_path: Path) -> None:
    (tmp_path / "junk.pem").write_text("not a certificate\n")

    async def body() -> None:
        for url, ca, message in [("wss://127.0.0.1:1/call-api", tmp_path / "none.pem", "no such CA file"),
                                 ("wss://127.0.0.1:1/call-api", tmp_path / "junk.pem", "cannot use CA file"),
                                 ("ws://127.0.0.1:1/call-api", tmp_path / "junk.pem", "a CA file is for a wss:// URL")]:
            with pytest.raises(ConnectError, match=message):
                await CallApi(url, ca_file=str(ca)).open()

    run(body)
