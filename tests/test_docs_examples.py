"""The scripts of docs/examples, run as a reader would run them, against the real ApiServer in this process (on a
loop in a thread) with the fake control of tests/api_fakes.py, so the documented code cannot rot."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from itertools import count
from pathlib import Path

from b2bua.call.commands import CallBlindTransfer, Command
from b2bua.config import WsConfig
from rpc.server import ApiServer, Sink
from tests import api_fakes
from tests.api_fakes import Api, Background, FakeControl, FakeService

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"


#: A loop in a thread for the servers the examples connect to.
background = api_fakes.background


def example(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, timeout=30,
                          cwd=ROOT)


def test_click_to_dial_connects_pairs_at_once(background: Background) -> None:
    server = background.serve(token="s3cret")
    result = example("click_to_dial.py", "sip:alice@h", "sip:bob@h", "sip:carol@h", "sip:dave@h",
                     "--url", server.url, "--token", "s3cret")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "sip:alice@h -> sip:bob@h: CALL_ANSWER callee SIP/2.0 200 OK" in lines
    assert "sip:alice@h -> sip:bob@h: connected, Call-ID new:sip:alice@h-callee" in lines
    assert "sip:carol@h -> sip:dave@h: connected, Call-ID new:sip:carol@h-callee" in lines
    assert [s.method for s in server.control.started] == ["CallStart", "CallStart"]


def test_click_to_dial_without_the_token(background: Background) -> None:
    server = background.serve(token="s3cret")
    result = example("click_to_dial.py", "sip:alice@h", "sip:bob@h", "--url", server.url)
    assert result.returncode == 2
    assert result.stderr.startswith(f"click_to_dial: cannot connect to {server.url}") and "401" in result.stderr


def test_crm_holds_resumes_and_transfers(background: Background) -> None:
    server = background.serve()
    result = example("crm.py", "later@h", "sip:colleague@h", "--url", server.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["customer on hold", "customer back", "transfer: TRANSFER_ACCEPT",
                                          "customer transferred to sip:colleague@h"]
    assert [s.method for s in server.control.started] == ["CallHold", "CallUnHold", "CallBlindTransfer"]


def test_crm_when_the_call_is_gone(background: Background) -> None:
    server = background.serve()
    result = example("crm.py", "gone@h", "sip:colleague@h", "--url", server.url)
    assert result.returncode == 1
    assert result.stdout == "hold/resume failed (-32001): no call with Call-ID 'gone@h'\n"


class TransferFails(FakeControl):
    """Holds work; a blind transfer is refused by the party (488)."""

    def start(self, command: Command, now: float, sink: Sink, cmd_id: str = "") -> object:
        if isinstance(command, CallBlindTransfer):
            command = replace(command, callid=f"fail-{command.callid}")
        return super().start(command, now, sink, cmd_id)


@asynccontextmanager
async def transfer_fails() -> AsyncIterator[Api]:
    ids = count(1)
    control, service = TransferFails(), FakeService()
    server = ApiServer(WsConfig(host="127.0.0.1", port=0), service, control, lambda: f"cmd-{next(ids)}")
    await server.start()
    try:
        yield Api(server, control, service)
    finally:
        await server.stop()


def test_crm_ends_the_call_when_the_transfer_fails(background: Background) -> None:
    context = transfer_fails()
    server = background.run(context.__aenter__())
    background.exits.append(lambda: context.__aexit__(None, None, None))
    result = example("crm.py", "later@h", "sip:colleague@h", "--url", server.url)
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1] == "transfer failed (488): not accepted; ending the call"
    assert [s.method for s in server.control.started] == ["CallHold", "CallUnHold", "CallBlindTransfer", "CallEnd"]
