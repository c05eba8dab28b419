"""Session timers (RFC 4028) and the idle reaper with SIPp phones through Kamailio; the service runs in this process.

The service runs with the lab-only ``--lab-short-session-timers`` and a 10 s interval: "lives past 3 x
Session-Expires" takes 32 s instead of 270 s with the RFC's 90 s floor; the negotiation, refreshes and BYEs are
the same at any interval (tests/test_supervision.py runs them at 90 s and 1800 s on a fake clock).
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from b2bua.call.b2bua import B2bua
from b2bua.call.live import CallEvent
from b2bua.io.control import AsyncControl
from b2bua.io.store import STORE_FILE
from harness.kamailio import Kamailio, PortMap
from harness.service import Serve, ServiceFactory
from harness.sipp import SippLauncher, assert_all_ok, wait_all

pytestmark = pytest.mark.system

INTERVAL = 10
LAB = ("--lab-short-session-timers", "yes", "--session-expires", str(INTERVAL), "--min-se", str(INTERVAL))
KEYS = {"session_expires": str(INTERVAL)}


async def answered_then_gone(b2bua: B2bua, timeout: float) -> CallEvent:
    """Wait for a call to be answered and then to end; its ``ended`` event."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not any(event.event == "answered" for event in b2bua.live.buffer):
        assert loop.time() < deadline, "no call was answered"
        await asyncio.sleep(0.05)
    while True:
        ended = [event for event in b2bua.live.buffer if event.event == "ended"]
        if ended and len(b2bua.table) == 0:
            return ended[0]
        assert loop.time() < deadline, "the call did not end"
        await asyncio.sleep(0.05)


def test_phones_that_refresh_keep_the_call_past_three_intervals(serve: Serve, kamailio: Kamailio,
                                                                sipp: SippLauncher) -> None:
    """Alice refreshes her leg every 4 s (answered by the service itself, never relayed); the service refreshes
    bob's leg (bob named it the refresher); after 32 s alice hangs up."""
    bob = sipp("uas_timer_refreshed.xml", phone="bob", keys=KEYS, timeout_s=60)
    alice = sipp("uac_timer_refresh.xml", phone="alice", call="bob", keys=KEYS, timeout_s=60)
    got: list[CallEvent] = []

    async def body(control: AsyncControl, b2bua: B2bua) -> None:
        got.append(await answered_then_gone(b2bua, 55))

    serve(body, *LAB, phones=[alice, bob], proxy=kamailio, timeout=58, phones_timeout=20)
    ended = got[0]
    assert ended.get("reason") == "bye"
    duration = ended.get("duration")
    assert isinstance(duration, float) and duration > 3 * INTERVAL


def test_a_phone_that_stops_refreshing_gets_bye_on_both_legs(serve: Serve, kamailio: Kamailio,
                                                             sipp: SippLauncher) -> None:
    bob = sipp("uas_answer.xml", phone="bob", timeout_s=30)
    alice = sipp("uac_timer_silent.xml", phone="alice", call="bob", keys=KEYS, timeout_s=30)
    got: list[CallEvent] = []

    async def body(control: AsyncControl, b2bua: B2bua) -> None:
        got.append(await answered_then_gone(b2bua, 25))

    serve(body, *LAB, phones=[alice, bob], proxy=kamailio, timeout=28, phones_timeout=10)
    ended = got[0]
    assert ended.get("reason") == "timeout"  # both phones got the service's BYE (their scenarios wait for it)
    duration = ended.get("duration")
    assert isinstance(duration, float) and duration <= INTERVAL  # RFC 4028 section 10: before the interval ends


def test_phones_without_timer_support_are_bridged_unchanged(serve: Serve, kamailio: Kamailio,
                                                            sipp: SippLauncher) -> None:
    """No Session-Expires or Require: timer reaches alice; bob (uas_answer.xml) gets no re-INVITE: an unexpected
    one fails its scenario; the call lasts alice's 15 s, past the interval, and ends with her BYE."""
    bob = sipp("uas_answer.xml", phone="bob", timeout_s=40)
    alice = sipp("uac_call_no_timer.xml", phone="alice", call="bob", pause_ms=15000, timeout_s=40)
    got: list[CallEvent] = []

    async def body(control: AsyncControl, b2bua: B2bua) -> None:
        got.append(await answered_then_gone(b2bua, 35))

    serve(body, *LAB, phones=[alice, bob], proxy=kamailio, timeout=38, phones_timeout=10)
    assert got[0].get("reason") == "bye"


def test_a_callee_demanding_a_larger_min_se_gets_the_invite_again(serve: Serve, kamailio: Kamailio,
                                                                  sipp: SippLauncher) -> None:
    """Bob answers the first INVITE 422 with Min-SE 20; the service sends it again (CSeq 2) with Min-SE 20 and
    Session-Expires 20, bob answers 200; alice talks 2 s and hangs up."""
    bob = sipp("uas_timer_422.xml", phone="bob", timeout_s=30)
    alice = sipp("uac_call.xml", phone="alice", call="bob", pause_ms=2000, timeout_s=30)
    got: list[CallEvent] = []

    async def body(control: AsyncControl, b2bua: B2bua) -> None:
        got.append(await answered_then_gone(b2bua, 20))

    serve(body, *LAB, phones=[alice, bob], proxy=kamailio, timeout=25, phones_timeout=10)
    assert got[0].get("reason") == "bye"


def test_the_reaper_ends_a_call_whose_phone_stopped_answering(serve: Serve, kamailio: Kamailio,
                                                              sipp: SippLauncher) -> None:
    """No session timers; after 10 s idle both legs get an in-dialog OPTIONS: alice answers, bob does not (T1 of
    0.1 s: the probe times out in 6.4 s, or Kamailio answers 408 first); the service BYEs alice."""
    bob = sipp("uas_answer_then_silent.xml", phone="bob", timeout_s=40)
    alice = sipp("uac_call_probed.xml", phone="alice", call="bob", timeout_s=40)
    got: list[CallEvent] = []

    async def body(control: AsyncControl, b2bua: B2bua) -> None:
        got.append(await answered_then_gone(b2bua, 35))

    serve(body, "--session-timers", "off", "--idle-probe", "10", "--t1", "0.1", "--t2", "0.4",
          phones=[alice, bob], proxy=kamailio, timeout=38, phones_timeout=10)
    assert got[0].get("reason") == "timeout"


def stored(path: Path) -> int:
    """Calls in the service's store now (read beside the running service), 0 before it exists."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)
        try:
            return int(db.execute("SELECT count(*) FROM calls").fetchone()[0])
        finally:
            db.close()
    except sqlite3.OperationalError:
        return 0


def test_a_restored_call_gets_its_session_timer_back(call_api: ServiceFactory, kamailio: Kamailio,
                                                     sipp: SippLauncher, rig_ports: PortMap, tmp_path: Path) -> None:
    """The service keeps a call whose caller asked for session timers and never refreshes, is killed (-9) and
    started again: the restored call's timer runs from the restart and both phones get the service's BYE."""
    state = tmp_path / "state"
    flags = ("--outbound-proxy", f"sip:127.0.0.1:{rig_ports.proxy};lr", "--state-dir", str(state), *LAB)
    service = call_api(*flags)
    bob = sipp("uas_answer.xml", phone="bob", timeout_s=40)
    alice = sipp("uac_timer_silent.xml", phone="alice", call="bob", keys=KEYS, timeout_s=40)
    deadline = time.monotonic() + 5
    while stored(state / STORE_FILE) < 1:
        assert time.monotonic() < deadline, f"the call was not stored:\n{service.log_tail()}"
        time.sleep(0.05)
    assert service.proc is not None
    service.proc.send_signal(signal.SIGKILL)
    service.proc.wait(10)
    restarted = call_api(*flags)
    assert "restored 1 calls" in restarted.log_tail(20000)
    assert_all_ok(wait_all([alice, bob], timeout=30), kamailio)
    assert "session timer of the caller expired" in restarted.log_tail(20000)
