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


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_answered_calls_survive_a_restart_and_go_on(
    call_api: ServiceFactory, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap, tmp_path: Path,
    stop: signal.Signals,
) -> None:
    """kill -9 (a crash) or SIGTERM (an upgrade-restart: with a state directory the calls are kept, no BYE)."""
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
    deadline = time.monotonic() + PAUSE_MS / 1000 - 2  # kept before any re-INVITE could write them
    while stored_calls(store) < 2 * CALLS:
        assert time.monotonic() < deadline, f"{stored_calls(store)} calls stored:\n{service.log_tail()}"
        time.sleep(0.05)

    assert service.proc is not None
    service.proc.send_signal(stop)
    assert service.proc.wait(10) == (-signal.SIGKILL if stop is signal.SIGKILL else 0)
    if stop is signal.SIGTERM:
        assert f"kept {2 * CALLS} calls in the store" in service.log_tail(20000)
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


@pytest.mark.parametrize("damage", ["corrupt", "truncated", "newer"])
def test_a_bad_store_file_is_set_aside_and_the_service_starts(
    call_api: ServiceFactory, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap, tmp_path: Path,
    damage: str,
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    store = state / STORE_FILE
    if damage == "corrupt":
        store.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 64)
    else:
        db = sqlite3.connect(store)
        db.execute("CREATE TABLE calls (call_id TEXT PRIMARY KEY, record BLOB, written REAL)")
        db.executemany("INSERT INTO calls VALUES (?, ?, 0)", [(f"c{n}", b"x" * 1000) for n in range(200)])
        db.execute(f"PRAGMA user_version = {99 if damage == 'newer' else 1}")
        db.commit()
        db.close()
        if damage == "truncated":
            store.write_bytes(store.read_bytes()[:20000])
    original = store.read_bytes()
    service = start(call_api, rig_ports, free_tcp_port(), state)
    log = service.log_tail(20000)
    assert "cannot be used" in log and "moved it to" in log, log
    (kept,) = state.glob(f"{STORE_FILE}.bad-*")
    assert kept.read_bytes() == original
    results = wait_all([sipp("uas_answer.xml", phone="bob"), sipp("uac_call.xml", phone="alice", call="bob")])
    assert_all_ok(results, kamailio)
    deadline = time.monotonic() + 5
    while stored_calls(store):  # the new store works: the call was kept, then deleted at its end
        assert time.monotonic() < deadline
        time.sleep(0.05)
