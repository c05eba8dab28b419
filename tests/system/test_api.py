"""The Call API end to end: the service as a process, calls bridged between SIPp phones through Kamailio,
commands sent over WebSocket by a client in this process or by the ``call-api-client`` command."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from harness.kamailio import Kamailio, PortMap
from harness.procfs import is_listening
from harness.service import ROOT, ServiceProcess
from harness.sipp import Sipp, SippLauncher, assert_all_ok, wait_all
from rpc.errors import CALL_NOT_FOUND, CALL_STATE

pytestmark = pytest.mark.system

ServiceFactory = Callable[..., ServiceProcess]
_CALL_ID = r"^(?:Call-ID|i)[ \t]*:[ \t]*(\S+)[ \t]*\r?\n"  # a whole line: the log may be half written


def start_service(call_api: ServiceFactory, ports: PortMap, *flags: str) -> tuple[ServiceProcess, str]:
    """The service bridging through the rig's proxy, its API on a free loopback port; and the API's URL.

    The port is chosen here (a later ``--ws-port`` wins over the fixture's ``--ws-port 0``) rather than read
    from the 'call-api API ready' line, since the API starts after the SIP ready line the fixture waits for."""
    port = free_tcp_port()
    service = call_api("--outbound-proxy", f"sip:127.0.0.1:{ports.proxy};lr", "--ws-host", "127.0.0.1",
                       "--ws-port", str(port), *flags)
    deadline = time.monotonic() + 5
    while not is_listening(port, "tcp"):
        assert time.monotonic() < deadline, f"the API never listened on {port}:\n{service.log_tail()}"
        time.sleep(0.01)
    return service, f"ws://127.0.0.1:{port}/call-api"


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_text(path: Path, pattern: str, timeout: float = 10.0) -> str:
    """The first match of ``pattern`` (its group if it has one) in the SIPp message log at ``path``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            match = re.search(pattern, path.read_text(errors="replace"), re.MULTILINE | re.IGNORECASE)
        except FileNotFoundError:
            match = None
        if match:
            return match[1] if match.groups() else match[0]
        time.sleep(0.02)
    raise AssertionError(f"{pattern!r} never appeared in {path}")


def call_id_of(phone: Sipp) -> str:
    """The Call-ID of the phone's first dialog, from its message log (alice's is SIPp's own 1-<pid>@host)."""
    return wait_for_text(phone.messages_path, _CALL_ID)


async def command(ws: ClientConnection, method: str, params: dict[str, Any], request_id: str) -> list[dict[str, Any]]:
    """Send one request; its response, then (when it started) every notification of it up to Ended."""
    await ws.send(json.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": request_id}))
    response = json.loads(await ws.recv())
    assert response["id"] == request_id
    messages = [response]
    if "result" in response:
        cmd_id = response["result"]["cmd_id"]
        while messages[-1].get("method") != "Ended":
            message = json.loads(await ws.recv())
            assert message["params"]["cmd_id"] == cmd_id
            messages.append(message)
    return messages


async def when_answered(ws: ClientConnection, method: str, params: dict[str, Any], timeout: float = 10.0
                        ) -> list[dict[str, Any]]:
    """``command``, repeated while the call is not found or not set up yet (the phones are still dialling)."""
    deadline = time.monotonic() + timeout
    for attempt in range(1000):
        messages = await command(ws, method, params, f"try-{attempt}")
        code = messages[0].get("error", {}).get("code")
        if code not in (CALL_NOT_FOUND, CALL_STATE) or time.monotonic() > deadline:
            return messages
        await asyncio.sleep(0.05)
    raise AssertionError("unreachable")


def names(messages: list[dict[str, Any]]) -> list[str]:
    return [m["params"].get("data", m["method"]) if "method" in m else ("Started" if "result" in m else "error")
            for m in messages]


def test_hold_then_resume_the_callee_over_websocket(
    call_api: ServiceFactory, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap
) -> None:
    service, url = start_service(call_api, rig_ports)
    bob = sipp("uas_hold.xml", phone="bob")
    alice = sipp("uac_call.xml", phone="alice", call="bob", pause_ms=3000)
    caller_call_id = call_id_of(alice)
    assert re.fullmatch(r"1-\d+@127\.0\.0\.1", caller_call_id)
    callee_call_id = call_id_of(bob)
    got: dict[str, list[dict[str, Any]]] = {}

    async def drive() -> None:
        async with connect(url) as ws:
            got["hold"] = await when_answered(ws, "CallHold", {"callid": caller_call_id, "leg": "callee"})
            got["unhold"] = await command(ws, "CallUnHold", {"callid": callee_call_id, "leg": "callee"}, "unhold")

    asyncio.run(asyncio.wait_for(drive(), 20))
    context = f"caller {caller_call_id}, callee {callee_call_id}: {got}\n{service.log_tail()}"
    assert names(got["hold"]) == ["Started", "CALL_HOLD", "Ended"], context
    assert names(got["unhold"]) == ["Started", "CALL_UNHOLD", "Ended"], context
    hold_cmd, unhold_cmd = got["hold"][0]["result"]["cmd_id"], got["unhold"][0]["result"]["cmd_id"]
    assert got["hold"][1]["params"] == {"cmd_id": hold_cmd, "data": "CALL_HOLD", "callid": callee_call_id,
                                        "leg": "callee", "status": "SIP/2.0 200 OK"}
    assert got["unhold"][1]["params"] == {"cmd_id": unhold_cmd, "data": "CALL_UNHOLD", "callid": callee_call_id,
                                          "leg": "callee", "status": "SIP/2.0 200 OK"}
    assert_all_ok(wait_all([alice, bob], 20), kamailio)
    log = service.log_tail(100_000)
    assert f"cmd {hold_cmd} CallHold call {caller_call_id} from " in log
    assert f"cmd {hold_cmd} CallHold call {caller_call_id}: ended" in log


def test_resume_without_a_leg_resumes_both_parties(
    call_api: ServiceFactory, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap
) -> None:
    _, url = start_service(call_api, rig_ports)
    bob = sipp("uas_hold.xml", phone="bob")
    alice = sipp("uac_call.xml", phone="alice", call="bob", pause_ms=3000)
    caller_call_id = call_id_of(alice)
    callee_call_id = call_id_of(bob)
    got: dict[str, list[dict[str, Any]]] = {}

    async def drive() -> None:
        async with connect(url) as ws:
            got["hold"] = await when_answered(ws, "CallHold", {"callid": callee_call_id, "leg": "callee"})
            got["unhold"] = await command(ws, "CallUnhold", {"callid": caller_call_id}, "unhold")

    asyncio.run(asyncio.wait_for(drive(), 20))
    assert names(got["hold"]) == ["Started", "CALL_HOLD", "Ended"]
    assert names(got["unhold"]) == ["Started", "CALL_UNHOLD", "CALL_UNHOLD", "Ended"]
    assert [m["params"]["leg"] for m in got["unhold"][1:3]] == ["caller", "callee"]
    assert "status" not in got["unhold"][1]["params"]  # the caller was never held: no re-INVITE
    assert got["unhold"][2]["params"]["status"] == "SIP/2.0 200 OK"
    assert_all_ok(wait_all([alice, bob], 20), kamailio)


def run_client(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rpc.client", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=30)


def output(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_client_ends_a_bridged_call(
    call_api: ServiceFactory, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap
) -> None:
    _, url = start_service(call_api, rig_ports)
    bob = sipp("uas_answer.xml", phone="bob")
    alice = sipp("uac_call_wait_bye.xml", phone="alice", call="bob")
    caller_call_id = call_id_of(alice)
    wait_for_text(bob.messages_path, r"^ACK sip:")
    wait_for_text(alice.messages_path, r"^ACK sip:")
    time.sleep(0.2)  # alice's ACK is on its way to the service
    result = run_client("-url", url, "-method", "CallEnd", "-params", json.dumps({"callid": caller_call_id}))
    assert result.returncode == 0, result.stdout + result.stderr
    messages = output(result)
    assert names(messages) == ["Started", "Ended"]
    assert messages[1]["params"]["cmd_id"] == messages[0]["result"]["cmd_id"]
    assert_all_ok(wait_all([alice, bob], 20), kamailio)


def test_client_hold_of_an_unknown_call_exits_2(call_api: ServiceFactory, rig_ports: PortMap) -> None:
    _, url = start_service(call_api, rig_ports)
    client = ROOT / ".venv" / "bin" / "call-api-client"
    command_line = [str(client)] if client.exists() else [sys.executable, "-m", "rpc.client"]
    result = subprocess.run([*command_line, "--url", url, "--method", "CallHold", "--params",
                             '{"callid": "no-such-call@127.0.0.1", "leg": "callee"}', "--id", "q1"],
                            cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result.stderr
    assert output(result) == [{"jsonrpc": "2.0", "id": "q1", "error": {
        "code": CALL_NOT_FOUND, "message": "no call with Call-ID 'no-such-call@127.0.0.1'"}}]


def test_token_and_path_on_the_running_service(call_api: ServiceFactory, rig_ports: PortMap) -> None:
    _, url = start_service(call_api, rig_ports, "--ws-token", "s3cret")

    async def status(target: str, **kwargs: Any) -> int:
        try:
            async with connect(target, **kwargs):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    async def probe() -> list[int]:
        return [await status(url), await status(url + "?token=s3cret"),
                await status(url.replace("/call-api", "/other") + "?token=s3cret")]

    assert asyncio.run(probe()) == [401, 101, 404]
    refused = run_client("--url", url, "--token", "s3cret", "--method", "CallEnd", "--params",
                         '{"callid": "no-such-call@host"}')
    assert refused.returncode == 2
    assert output(refused)[0]["error"]["code"] == -32001


def test_the_ready_line_names_the_api_url_and_sigterm_stops_cleanly(rig_ports: PortMap) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "b2bua", "--sip-listen", f"127.0.0.1:{rig_ports.service}", "--ws-host", "127.0.0.1",
         "--ws-port", "0"],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stderr is not None
        seen: list[str] = []
        while not (seen and "call-api API ready" in seen[-1]):
            line = proc.stderr.readline()
            assert line, "".join(seen)
            seen.append(line)
        match = re.search(r"call-api API ready: ws://127\.0\.0\.1:(\d+)/call-api$", seen[-1].rstrip())
        assert match and int(match[1]) > 0, seen[-1]
        assert any("call-api ready: SIP" in line for line in seen[:-1])

        async def probe() -> list[dict[str, Any]]:
            async with connect(f"ws://127.0.0.1:{match[1]}/call-api") as ws:
                return await command(ws, "CallEnd", {"callid": "nothing"}, "p")

        assert asyncio.run(probe())[0]["error"]["code"] == CALL_NOT_FOUND
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
