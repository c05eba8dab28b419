"""The Call API end to end: the service as a process, calls bridged between SIPp phones through Kamailio,
commands sent over WebSocket by a client in this process or by the ``call-api-client`` command."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from harness.kamailio import Kamailio, PortMap
from harness.service import ROOT, ApiFactory
from harness.sipp import SippLauncher, assert_all_ok, wait_all
from rpc.errors import CALL_NOT_FOUND

from .ws_commands import call_id_of, command, names, wait_for_text, when_answered

pytestmark = pytest.mark.system


def test_hold_then_resume_the_callee_over_websocket(
    call_api_ws: ApiFactory, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap
) -> None:
    service, url = call_api_ws()
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
    call_api_ws: ApiFactory, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap
) -> None:
    _, url = call_api_ws()
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
    call_api_ws: ApiFactory, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap
) -> None:
    _, url = call_api_ws()
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


def test_client_hold_of_an_unknown_call_exits_2(call_api_ws: ApiFactory) -> None:
    _, url = call_api_ws()
    client = ROOT / ".venv" / "bin" / "call-api-client"
    command_line = [str(client)] if client.exists() else [sys.executable, "-m", "rpc.client"]
    result = subprocess.run([*command_line, "--url", url, "--method", "CallHold", "--params",
                             '{"callid": "no-such-call@127.0.0.1", "leg": "callee"}', "--id", "q1"],
                            cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result.stderr
    assert output(result) == [{"jsonrpc": "2.0", "id": "q1", "error": {
        "code": CALL_NOT_FOUND, "message": "no call with Call-ID 'no-such-call@127.0.0.1'"}}]


def test_token_and_path_on_the_running_service(call_api_ws: ApiFactory) -> None:
    _, url = call_api_ws("--ws-token", "s3cret")

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
