"""The ``call-api-client`` command (rpc/client/cli.py) against a real ApiServer with the fake control of
test_server.py, run on its own loop in a thread so the command runs as it does from a shell."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve

from rpc.client.cli import build_request, main
from rpc.errors import CALL_NOT_FOUND, INVALID_PARAMS
from tests import api_fakes
from tests.api_fakes import Api, Background
from tests.certs import Authority

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


#: The loop-in-a-thread fixture the command under test connects to.
background = api_fakes.background


@pytest.fixture
def server(background: Background) -> Api:
    return background.serve()


def lines(text: str) -> list[dict[str, Any]]:
    """Every output line: one compact JSON object each."""
    documents = []
    for line in text.splitlines():
        document = json.loads(line)
        assert isinstance(document, dict)
        assert line == json.dumps(document, separators=(",", ":"))
        documents.append(document)
    return documents


def kinds(documents: list[dict[str, Any]]) -> list[str]:
    return [d.get("method") or ("result" if "result" in d else "error") for d in documents]


SPELLINGS: dict[str, Callable[[str], str]] = {
    "double": lambda flag: f"--{flag}",
    "single": lambda flag: f"-{flag}",
}


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_a_command_that_ends_cleanly_exits_0(server: Api, spelling: str, capsys: pytest.CaptureFixture[str]) -> None:
    flag = SPELLINGS[spelling]
    status = main([flag("url"), server.url, flag("method"), "CallHold",
                   flag("params"), '{"callid": "later@host", "leg": "callee"}', flag("id"), "831717ed97e5"])
    out = capsys.readouterr().out
    assert status == 0
    documents = lines(out)
    assert kinds(documents) == ["result", "Event", "Ended"]
    assert documents[0] == {"jsonrpc": "2.0", "id": "831717ed97e5", "result": {"cmd_id": "cmd-1", "status": "Started"}}
    assert documents[1]["params"] == {"cmd_id": "cmd-1", "data": "CALL_HOLD", "callid": "later@host-callee",
                                      "leg": "callee", "status": "SIP/2.0 200 OK"}
    assert server.control.started[0].callid == "later@host"


def test_a_command_that_reports_an_error_exits_1(server: Api, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["--url", server.url, "--method", "CallUnHold", "--params", '{"callid": "fail", "leg": "caller"}'])
    assert status == 1
    documents = lines(capsys.readouterr().out)
    assert kinds(documents) == ["result", "Event", "Error", "Ended"]
    assert documents[2]["params"] == {"cmd_id": "cmd-1", "code": 488, "message": "not accepted"}


@pytest.mark.parametrize(("argv", "code"), [
    (["-method", "CallHold", "-params", '{"callid": "gone@host"}'], CALL_NOT_FOUND),
    (["-method", "CallBlindTransfer", "-params", '{"callid": "gone@h", "leg": "callee", "destination": "sip:c@h"}'],
     CALL_NOT_FOUND),
    (["--method", "CallHold", "--params", '{"callid": "x", "leg": "both"}'], INVALID_PARAMS),
])
def test_a_refused_request_exits_2_after_printing_the_error(
    server: Api, argv: list[str], code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-url", server.url, *argv]) == 2
    documents = lines(capsys.readouterr().out)
    assert len(documents) == 1 and documents[0]["error"]["code"] == code


def test_a_command_that_ends_at_once_prints_response_then_ended(
    server: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--url", server.url, "--method", "CallEnd", "--params", '{"callid": "sync", "cmd_id": "mine"}', "--id", "9"]
    assert main(argv) == 0
    assert lines(capsys.readouterr().out) == [
        {"jsonrpc": "2.0", "id": "9", "result": {"cmd_id": "mine", "status": "Started"}},
        {"jsonrpc": "2.0", "method": "Ended", "params": {"cmd_id": "mine"}},
    ]


def test_token_is_sent_as_bearer(background: Background, capsys: pytest.CaptureFixture[str]) -> None:
    server = background.serve(token="s3cret")
    argv = ["--url", server.url, "--method", "CallEnd", "--params", '{"callid": "sync"}']
    assert main([*argv, "--token", "s3cret"]) == 0
    assert kinds(lines(capsys.readouterr().out)) == ["result", "Ended"]
    assert main([*argv, "-token", "wrong"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "401" in captured.err


def test_wss_with_ca_file(background: Background, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    authority = Authority(tmp_path)
    issued = authority.issue("api", ["127.0.0.1"])
    server = background.serve(tls_cert=str(issued.cert), tls_key=str(issued.key))
    argv = ["--url", server.url, "--method", "CallEnd", "--params", '{"callid": "sync"}']
    assert server.url.startswith("wss://")
    assert main([*argv, "--ca-file", str(authority.ca)]) == 0
    assert kinds(lines(capsys.readouterr().out)) == ["result", "Ended"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "the service's certificate is not trusted" in captured.err and "--ca-file" in captured.err


def test_handshake_refusals_and_bad_urls_exit_2(server: Api, capsys: pytest.CaptureFixture[str]) -> None:
    port = server.server.port
    assert main(["--url", f"ws://127.0.0.1:{port}/nope", "--method", "CallEnd"]) == 2
    assert "404" in capsys.readouterr().err
    assert main(["--url", "http://127.0.0.1/call-api", "--method", "CallEnd"]) == 2
    assert "bad --url" in capsys.readouterr().err


def test_nobody_listening_exits_2(background: Background, capsys: pytest.CaptureFixture[str]) -> None:
    server = background.serve()
    url = server.url
    background.run(server.server.stop())
    assert main(["--url", url, "--method", "CallEnd", "--params", '{"callid": "x"}']) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith(f"call-api-client: cannot connect to {url}")


def test_connection_lost_before_ended_exits_2(background: Background, capsys: pytest.CaptureFixture[str]) -> None:
    server = background.serve()

    async def stop_soon() -> None:
        await asyncio.sleep(0.1)
        for peer in list(server.server.peers):  # the connection drops (a stop would end the command first)
            await peer.connection.close(1011)

    stopping = asyncio.run_coroutine_threadsafe(stop_soon(), background.loop)
    assert main(["--url", server.url, "--method", "CallHold", "--params", '{"callid": "slow"}']) == 2
    stopping.result(5)
    captured = capsys.readouterr()
    assert kinds(lines(captured.out)) == ["result"]
    assert "closed before command cmd-1 ended" in captured.err


@pytest.mark.parametrize(("argv", "message"), [
    (["--method", "CallEnd", "--params", "{nope"], "--params is not valid JSON"),
    (["--method", "CallEnd", "--params", '["x"]'], "--params must be a JSON object"),
])
def test_bad_params_exit_2_without_connecting(argv: list[str], message: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", "ws://127.0.0.1:9/call-api", *argv]) == 2
    assert message in capsys.readouterr().err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--params", "{}"]) == 2
    assert "--method" in capsys.readouterr().err
    assert main(["--help"]) == 0
    assert "-method" in capsys.readouterr().out


def test_request_shape() -> None:
    assert build_request("CallEnd", '{"callid": "x"}', "7") == {"jsonrpc": "2.0", "method": "CallEnd",
                                                               "params": {"callid": "x"}, "id": "7"}
    request = build_request("CallEnd", None, None)
    assert "params" not in request and isinstance(request["id"], str) and len(request["id"]) == 12


def test_runs_as_a_module_with_go_style_flags(server: Api) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rpc.client", "-url", server.url, "-method", "CallHold",
         "-params", '{"callid": "later", "leg": "caller"}'],
        cwd=ROOT, capture_output=True, text=True, timeout=20,
    )
    assert result.returncode == 0, result.stderr
    assert kinds(lines(result.stdout)) == ["result", "Event", "Ended"]
    refused = subprocess.run([sys.executable, "-m", "rpc.client", "-url", server.url, "-method", "CallEnd",
                              "-params", '{"callid": "gone"}'], cwd=ROOT, capture_output=True, text=True, timeout=20)
    assert refused.returncode == 2
    assert kinds(lines(refused.stdout)) == ["error"]


def scripted(background: Background, frames: list[str | bytes]) -> str:
    """A WebSocket server that answers the first message with ``frames`` (``{id}`` is the request's id)
    then closes; its URL."""

    async def handler(connection: ServerConnection) -> None:
        request = json.loads(await connection.recv())
        for frame in frames:
            await connection.send(frame.replace("{id}", request["id"]) if isinstance(frame, str) else frame)

    server = background.run(_serve_scripted(handler))
    background.exits.append(lambda: _close(server))
    return f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"


async def _serve_scripted(handler: Callable[[ServerConnection], Coroutine[Any, Any, None]]) -> Server:
    return await serve(handler, "127.0.0.1", 0)


async def _close(server: Server) -> None:
    server.close()
    await server.wait_closed()


def test_only_the_response_and_notifications_of_the_command_are_printed(
    background: Background, capsys: pytest.CaptureFixture[str]
) -> None:
    url = scripted(background, [
        '[1, 2]',
        '{"jsonrpc":"2.0","method":"Event","params":{"cmd_id":"c","data":"EARLY"}}',
        '{"jsonrpc":"2.0","id":"other","result":{"cmd_id":"x","status":"Started"}}',
        '{"jsonrpc":"2.0","id":"{id}","result":{"cmd_id":"c","status":"Started"}}',
        '{"jsonrpc":"2.0","method":"Event","params":{"cmd_id":"x","data":"NOT_MINE"}}',
        '{"jsonrpc":"2.0","method":"Event","params":"odd"}',
        '{"jsonrpc": "2.0", "method": "Event", "params": {"cmd_id": "c", "data": "CALL_HOLD"}}',
        '{"jsonrpc":"2.0","method":"Ended","params":{"cmd_id":"c"}}',
    ])
    assert main(["--url", url, "--method", "CallHold", "--id", "r"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        '{"jsonrpc":"2.0","id":"r","result":{"cmd_id":"c","status":"Started"}}',
        '{"jsonrpc":"2.0","method":"Event","params":{"cmd_id":"c","data":"CALL_HOLD"}}',
        '{"jsonrpc":"2.0","method":"Ended","params":{"cmd_id":"c"}}',
    ]


@pytest.mark.parametrize(("frames", "message"), [
    (["not json"], "the server sent a frame that is not JSON: 'not json'"),
    ([b"\xff"], "the server sent a frame that is not JSON"),
    ([], "the connection closed before the response (code 1000)"),
    (['{"jsonrpc":"2.0","id":"{id}","result":{"status":"Started"}}'],
     "the server answered request '{id}' badly: its result has no cmd_id"),
])
def test_a_server_that_misbehaves_exits_2(background: Background, frames: list[str | bytes], message: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    url = scripted(background, frames)
    assert main(["--url", url, "--method", "CallEnd", "--id", "r1"]) == 2
    captured = capsys.readouterr()
    assert message.replace("{id}", "r1") in captured.err and captured.out == ""


def test_follow_and_method_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--follow", "--method", "CallList"]) == 2
    assert main([]) == 2
    assert main(["--method", "CallList", "--since", "3"]) == 2
    assert "--since goes with --follow" in capsys.readouterr().err
    assert main(["--follow", "--url", "nope"]) == 2
