"""Calls survive a restart (issue 15): SIPp phones through Kamailio, the service with a state directory killed
with SIGKILL while every call is answered and held, started again on the same addresses; the restored calls
relay the callers' re-INVITEs, end by the callers' BYE or by CallEnd over the API, and take a CallHold."""

from __future__ import annotations

import asyncio
import re
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from b2bua.io.store import STORE_FILE
from harness.kamailio import Kamailio, PortMap
from harness.ports import free_tcp_port
from harness.procfs import is_listening
from harness.service import ServiceFactory, ServiceProcess
from harness.sipp import SippLauncher, assert_all_ok, wait_all
from rpc.client import CallApi

pytestmark = pytest.mark.system

#: Calls per half: the callers of one half end their calls with BYE, the other half's are ended by CallEnd.
CALLS = 100
#: How long each caller waits after the answer before its re-INVITE (SIPp -d), and again before its BYE.
PAUSE_MS = 7000


def start(call_api: ServiceFactory, ports: PortMap, ws_port: int, state: Path) -> ServiceProcess:
    """The service with a state directory, bridging through the rig's proxy, its API on ``ws_port`` (the same
    port again after the restart: the address a client reconnects to)."""
    service = call_api("--outbound-proxy", f"sip:127.0.0.1:{ports.proxy};lr", "--ws-host", "127.0.0.1",
                       "--ws-port", str(ws_port), "--state-dir", str(state))
    deadline = time.monotonic() + 5
    while not is_listening(ws_port, "tcp"):
        assert time.monotonic() < deadline, f"the API never listened on {ws_port}:\n{service.log_tail()}"
        time.sleep(0.01)
    return service


def stored_calls(path: Path) -> int:
    """How many calls the service's store holds now (read beside the running service: WAL allows it)."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)
    except sqlite3.OperationalError:
        return 0
    try:
        return int(db.execute("SELECT count(*) FROM calls").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


def sent_call_ids(messages: Path) -> list[str]:
    """The Call-IDs of the INVITEs a SIPp caller sent, in order, from its message log."""
    text = messages.read_text(errors="replace")
    found = re.findall(r"^INVITE sip:[^\n]*\n(?:[^\n]+\n)*?Call-ID: *(\S+)", text, re.MULTILINE)
    return list(dict.fromkeys(found))


def test_answered_calls_survive_sigkill_and_go_on(
    call_api: ServiceFactory, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap, tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    ws_port = free_tcp_port()
    url = f"ws://127.0.0.1:{ws_port}/call-api"
    service = start(call_api, rig_ports, ws_port, state)
    timeout = 60.0
    callees = [
        sipp("uas_answer_reinvited.xml", phone="bob", calls=CALLS, timeout_s=timeout),
        sipp("uas_answer_reinvited_or_held.xml", phone="carol", calls=CALLS, timeout_s=timeout),
    ]
    ending_by_bye = sipp("uac_call_reinvite.xml", phone="alice", call="bob", calls=CALLS, rate=100,
                         pause_ms=PAUSE_MS, timeout_s=timeout)
    ended_by_api = sipp("uac_call_reinvite_wait_bye.xml", phone="dave", call="carol", calls=CALLS, rate=100,
                        pause_ms=PAUSE_MS, timeout_s=timeout)
    store = state / STORE_FILE
    deadline = time.monotonic() + 10
    while stored_calls(store) < 2 * CALLS:
        assert time.monotonic() < deadline, f"{stored_calls(store)} calls stored:\n{service.log_tail()}"
        time.sleep(0.05)

    assert service.proc is not None
    service.proc.send_signal(signal.SIGKILL)
    service.proc.wait(5)
    restarted = start(call_api, rig_ports, ws_port, state)
    assert f"restored {2 * CALLS} calls" in restarted.log_tail(20000)

    # The callers' re-INVITEs come PAUSE_MS after their answers; wait them out, then command the other half.
    time.sleep(PAUSE_MS / 1000 + 2)
    call_ids = sent_call_ids(ended_by_api.messages_path)
    assert len(call_ids) == CALLS

    async def command() -> None:
        async with CallApi(url) as api:
            await api.call_hold(call_ids[0], "callee")
            await asyncio.gather(*(api.call_end(call_id) for call_id in call_ids))

    asyncio.run(asyncio.wait_for(command(), 30))
    results = wait_all([ending_by_bye, ended_by_api, *callees], timeout=timeout + 10)
    assert_all_ok(results, kamailio)
    deadline = time.monotonic() + 5
    while stored_calls(store):
        assert time.monotonic() < deadline, f"{stored_calls(store)} calls left in the store"
        time.sleep(0.05)
    assert "Traceback" not in restarted.log_tail(200000)
