"""The call store wired to the call layer (b2bua/io/persistence.py), with the real SQLite store in a temporary
folder and the in-memory network: calls written as they are answered, deleted as they end, restored after a
restart, bad records skipped."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import pytest

from b2bua.call.call import CallState
from b2bua.io.persistence import Persistence
from b2bua.io.store import STORE_FILE, SqliteStore
from b2bua.sip.ua_events import CallEnded

from .call_builders import SDP_B, dial, restart_service, rig, take


def stored(path: Path) -> dict[str, bytes]:
    store = SqliteStore(path)
    try:
        return store.load_all()
    finally:
        store.close()


def test_calls_are_written_answered_and_deleted_ended_then_restored(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILE
    net, alice, bob, service, app = rig()
    persistence = Persistence(path, service.ua, app.table)
    persistence.write()  # before the start: nothing to write to, nothing happens
    assert persistence.restore().restored == 0
    calls = []
    for _ in range(3):
        a, b, _ = dial(net, alice, bob)
        b.respond(200, net.now, body=SDP_B)
        net.settle()
        calls.append((a, b))
    persistence.write()
    calls[0][0].end(net.now)
    net.settle()
    persistence.write()
    persistence.close()
    persistence.close()  # twice is harmless
    kept = stored(path)
    assert set(kept) == {a.call_id for a, _ in calls[1:]}

    service, app = restart_service(net, service)
    again = Persistence(path, service.ua, app.table)
    report = again.restore()
    assert report.restored == 2 and report.skipped == []
    assert all(call.state is CallState.ANSWERED for call in app.table)
    a, b = calls[1]
    b.end(net.now)
    net.settle()
    assert isinstance(take(alice, CallEnded), CallEnded)
    again.write()
    again.close()
    assert set(stored(path)) == {calls[2][0].call_id}


def test_a_record_that_cannot_be_restored_is_skipped_deleted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / STORE_FILE
    net, alice, bob, service, app = rig()
    persistence = Persistence(path, service.ua, app.table)
    persistence.restore()
    a, b, _ = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    persistence.close()
    db = sqlite3.connect(path)
    db.execute("INSERT INTO calls VALUES ('broken@h', X'7B7D', 0)")  # "{}": not a call record
    db.commit()
    db.close()
    service, app = restart_service(net, service)
    again = Persistence(path, service.ua, app.table)
    with caplog.at_level(logging.ERROR, logger="call_api.io.store"):
        report = again.restore()
    assert report.restored == 1 and report.skipped == ["broken@h"]
    assert any("broken@h" in r.getMessage() and "not restored" in r.getMessage() for r in caplog.records)
    again.close()
    assert set(stored(path)) == {a.call_id}


def test_the_restored_calls_are_written_again_with_their_jumped_cseq(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILE
    net, alice, bob, service, app = rig()
    persistence = Persistence(path, service.ua, app.table)
    persistence.restore()
    a, b, _ = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    persistence.close()
    before = stored(path)[a.call_id]
    service, app = restart_service(net, service)
    again = Persistence(path, service.ua, app.table)
    again.restore()
    again.close()
    after = stored(path)[a.call_id]
    seqs = [leg["session"]["dialog"]["local_seq"] for leg in json.loads(after)["legs"].values()]
    assert before != after and all(seq is not None and seq >= 1000 for seq in seqs)


def test_each_restored_call_is_resumed_with_the_clock(tmp_path: Path) -> None:
    """The B2BUA gets every restored call with the core's time, to start its session timers again (RFC 4028)."""
    path = tmp_path / STORE_FILE
    net, alice, bob, service, app = rig()
    persistence = Persistence(path, service.ua, app.table)
    persistence.restore()
    a, b, _ = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    persistence.write()
    persistence.close()
    service, app = restart_service(net, service)
    resumed: list[tuple[str, float]] = []
    again = Persistence(path, service.ua, app.table, resume=lambda call, now: resumed.append((call.id, now)))
    assert again.restore(123.0).restored == 1
    assert resumed == [(a.call_id, 123.0)]
    again.close()
