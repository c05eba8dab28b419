"""The SQLite call store (b2bua/io/store.py) on real files: the four operations, coalescing, durability
across a process that dies without closing, and bad files (corrupt, truncated, newer schema) set aside."""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from b2bua.errors import StoreError
from b2bua.io.store import SCHEMA_VERSION, STORE_FILE, CallStore, SqliteStore


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / STORE_FILE


def test_put_load_delete_roundtrip(path: Path) -> None:
    store = SqliteStore(path)
    store.put("a@h", b"one")
    store.put("b@h", b"two")
    assert store.load_one("a@h") == b"one"  # visible before the writer commits
    assert store.flush()
    assert store.load_all() == {"a@h": b"one", "b@h": b"two"}
    store.delete("a@h")
    assert store.load_one("a@h") is None
    assert store.flush()
    assert store.load_all() == {"b@h": b"two"}
    assert len(store) == 1
    store.close()
    again = SqliteStore(path)
    assert again.load_all() == {"b@h": b"two"}
    assert again.moved_aside is None
    again.close()


def test_it_is_a_call_store(path: Path) -> None:
    store: CallStore = SqliteStore(path)
    store.close()


def test_writes_of_one_window_share_one_commit_and_coalesce(path: Path) -> None:
    store = SqliteStore(path, flush_interval=0.2)
    for version in range(50):
        store.put("a@h", f"v{version}".encode())
    store.put("gone@h", b"x")
    store.delete("gone@h")
    assert store.flush()
    assert store.stats.flushes == 1
    assert store.stats.written == 1 and store.stats.deleted == 1
    assert store.load_all() == {"a@h": b"v49"}
    store.close()


def test_the_file_is_in_wal_mode_with_the_schema_version(path: Path) -> None:
    SqliteStore(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


def test_a_closed_store_refuses_writes(path: Path) -> None:
    store = SqliteStore(path)
    store.close()
    store.close()  # twice is harmless
    with pytest.raises(StoreError, match="closed"):
        store.put("a@h", b"x")
    with pytest.raises(StoreError, match="closed"):
        store.delete("a@h")


@pytest.mark.timeout(30)  # a close that waited out the hour-long window would hang here
@pytest.mark.parametrize("settle", [0.0, 0.05])
def test_close_writes_what_is_pending_without_waiting_out_the_window(path: Path, settle: float) -> None:
    store = SqliteStore(path, flush_interval=3600.0)
    store.put("a@h", b"x")
    time.sleep(settle)  # with a pause the writer is inside its window when close() comes
    store.close()
    again = SqliteStore(path)
    assert again.load_all() == {"a@h": b"x"}
    again.close()


def test_what_was_committed_survives_a_kill(path: Path) -> None:
    """A process that dies without closing (os._exit, as kill -9) keeps what the writer committed."""
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from b2bua.io.store import SqliteStore
        store = SqliteStore(Path({str(path)!r}))
        for n in range(100):
            store.put(f"call-{{n}}", b"r" * 500)
        store.delete("call-7")
        assert store.flush()
        os._exit(0)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    store = SqliteStore(path)
    kept = store.load_all()
    assert len(kept) == 99 and "call-7" not in kept
    store.close()


def test_load_sees_writes_while_a_commit_is_in_flight(path: Path) -> None:
    store = SqliteStore(path, flush_interval=0.0)
    stop = threading.Event()
    seen_missing: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            kept = store.load_all()
            if "fixed@h" not in kept:
                seen_missing.append("fixed@h")

    store.put("fixed@h", b"keep")
    thread = threading.Thread(target=reader)
    thread.start()
    for n in range(2000):
        store.put(f"c{n}", b"x")
    stop.set()
    thread.join()
    assert seen_missing == []
    assert store.flush()
    assert len(store) == 2001
    store.close()


def _bad_file(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


@pytest.mark.parametrize(
    "why",
    ["not a database", "truncated", "newer schema", "foreign schema"],
)
def test_a_bad_file_is_moved_aside_and_the_store_starts_empty(
    path: Path, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    if why == "not a database":
        _bad_file(path, b"this is not SQLite at all\n" * 200)
    elif why == "truncated":
        store = SqliteStore(path)
        for n in range(500):
            store.put(f"call-{n}", os.urandom(300))
        store.close()
        db = sqlite3.connect(path)  # fold the WAL into the file, then cut the file in half
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif why == "newer schema":
        SqliteStore(path).close()
        db = sqlite3.connect(path)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        db.commit()
        db.close()
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE calls (other TEXT)")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.commit()
        db.close()
    original = path.read_bytes()
    with caplog.at_level(logging.ERROR, logger="call_api.io.store"):
        store = SqliteStore(path)
    assert store.moved_aside is not None and store.moved_aside.exists()
    assert store.moved_aside.read_bytes() == original  # the bad file is kept as it was
    assert store.moved_aside.name.startswith(f"{STORE_FILE}.bad-")
    assert store.load_all() == {}
    assert any("cannot be used" in record.getMessage() for record in caplog.records)
    store.put("a@h", b"x")
    store.close()
    assert SqliteStore(path).load_all() == {"a@h": b"x"}


def test_two_bad_files_in_one_second_are_both_kept(path: Path) -> None:
    _bad_file(path, b"junk one" * 100)
    first = SqliteStore(path)
    first.close()
    _bad_file(path, b"junk two" * 100)
    second = SqliteStore(path)
    second.close()
    assert first.moved_aside is not None and second.moved_aside is not None
    assert first.moved_aside != second.moved_aside
    assert second.moved_aside.read_bytes() == b"junk two" * 100


def test_an_older_schema_is_migrated(path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A file at version 0 (SQLite's default: made but never set up) takes the migrations, not a move."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sqlite3.connect(path).close()
    store = SqliteStore(path)
    assert store.moved_aside is None
    store.put("a@h", b"x")
    store.close()


def test_a_failed_commit_is_retried(path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = SqliteStore(path, flush_interval=0.0)
    blocker = sqlite3.connect(path, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")  # a writer elsewhere holds the file: commits fail with "locked"
    with caplog.at_level(logging.ERROR, logger="call_api.io.store"):
        store.put("a@h", b"x")
        assert not store.flush(timeout=0.3)
        assert store.load_one("a@h") == b"x"  # waits for the writer's attempt (1 s busy timeout), then fails
    assert store.stats.failures >= 1
    assert store.load_one("a@h") == b"x"  # still pending, still readable
    blocker.execute("ROLLBACK")
    blocker.close()
    assert store.flush()
    store.close()
    assert SqliteStore(path).load_all() == {"a@h": b"x"}
