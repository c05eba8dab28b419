"""Driving the service's WebSocket JSON-RPC API from a system test: one command and its notifications up
to Ended, a command retried until the phones' call is up, the names of what came back, and the Call-ID a
SIPp phone's message log shows (the tests address calls by the Call-IDs the phones see)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection

from harness.sipp import Sipp
from rpc.errors import CALL_NOT_FOUND, CALL_STATE

_CALL_ID = r"^(?:Call-ID|i)[ \t]*:[ \t]*(\S+)[ \t]*\r?\n"  # a whole line: the log may be half written


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
    """What each message is: the response (Started or error), then each notification's data or method."""
    return [m["params"].get("data", m["method"]) if "method" in m else ("Started" if "result" in m else "error")
            for m in messages]


