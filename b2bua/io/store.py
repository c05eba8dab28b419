"""Where answered calls are kept across a restart: a small key-value interface and its embedded default on
SQLite (the standard library's ``sqlite3``), one file in the state directory.

The interface, :class:`CallStore`, is four operations keyed by the call's name (the caller leg's Call-ID):
:meth:`~CallStore.put` a record, :meth:`~CallStore.delete` it, :meth:`~CallStore.load_all` at start and
:meth:`~CallStore.load_one`. Records are opaque bytes: what a call's record holds and how it is rebuilt is
the call layer's business, so another store (Redis, for several instances acting as one) implements the same
four operations and nothing else.

:class:`SqliteStore` keeps writes off the event loop. ``put`` and ``delete`` only note the newest record of a
call in a pending map (a lock, a dict assignment: about a microsecond); a writer thread wakes when something is
pending, waits :attr:`SqliteStore.flush_interval` (5 ms) so the writes of that window share one transaction,
and commits them. So a call written twice in the window is written once, and a call answered and ended within
it never touches the disk. ``sqlite3`` releases the GIL while SQLite works, so the loop keeps running during a
commit.

**What a crash can lose** (docs/RELIABILITY.md): the file is in WAL mode with ``synchronous=NORMAL``, which
SQLite documents as durable across a crash of the process (the WAL is written before the commit returns) but
not across a power loss or kernel crash, where the last commits since the last checkpoint may roll back. So
after ``kill -9`` the store lacks at most the writes of the last flush window: calls answered, or changed, in
the last :attr:`~SqliteStore.flush_interval` plus the commit in progress (a few milliseconds at the rates the
benchmarks reach; :attr:`StoreStats.longest_flush` says how long a commit took). Chosen over
``synchronous=FULL`` (an fsync per commit) because a B2BUA restarts after a crash of its own far more often
than after a power loss, and an fsync every 5 ms would cost the disk more than the calls are worth.

**A bad file never stops the service.** A store file that SQLite cannot read (corrupt, truncated, not a
database), or whose schema version is newer than this code knows, is moved aside (renamed with a
``.bad-<time>`` suffix, its ``-wal`` and ``-shm`` with it), logged at ERROR with the reason, and a fresh
store is made in its place; :attr:`SqliteStore.moved_aside` names the kept file. The schema version is
SQLite's ``user_version``; :data:`MIGRATIONS` lists the statements that take each older version to the next,
applied in one transaction at open, so a migration is explicit and never guessed.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from ..errors import StoreError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "STORE_FILE", "CallStore", "SqliteStore", "StoreStats"]

logger = logging.getLogger("call_api.io.store")

#: The store's file name inside the state directory.
STORE_FILE: Final = "calls.sqlite3"

#: Version ``n`` -> the statements taking a store of version ``n`` to ``n + 1`` (0 is a new, empty file).
MIGRATIONS: Final[Mapping[int, tuple[str, ...]]] = {
    0: (
        "CREATE TABLE calls (call_id TEXT PRIMARY KEY NOT NULL, record BLOB NOT NULL, written REAL NOT NULL)",
    ),
}

#: Seconds the writer waits after a failed commit before it tries again.
_RETRY_PAUSE: Final = 0.1

#: The schema version this code writes: one past the last migration.
SCHEMA_VERSION: Final = max(MIGRATIONS) + 1


class CallStore(Protocol):
    """What the service needs of a store of calls; every implementation is keyed by the call's name."""

    def put(self, call_id: str, record: bytes) -> None:
        """Keep ``record`` as the newest state of ``call_id`` (may return before it is durable)."""

    def delete(self, call_id: str) -> None:
        """Forget ``call_id`` (may return before it is durable)."""

    def load_all(self) -> dict[str, bytes]:
        """Every kept record, by call name."""

    def load_one(self, call_id: str) -> bytes | None:
        """The kept record of ``call_id``, or None."""

    def flush(self, timeout: float = 10.0) -> bool:
        """Return once everything put or deleted before the call is durable (False: not within ``timeout``)."""

    def close(self) -> None:
        """Flush, then release the store."""


@dataclass(slots=True)
class StoreStats:
    """Counters of the writer, for logs, metrics and the benchmarks."""

    #: Records written and deleted (after coalescing).
    written: int = 0
    deleted: int = 0
    #: Transactions committed, and the most records one carried.
    flushes: int = 0
    largest_flush: int = 0
    #: The longest commit, seconds.
    longest_flush: float = 0.0
    #: Commits that failed (the records stay pending and are tried again).
    failures: int = 0


class SqliteStore:
    """A :class:`CallStore` in one SQLite file, written by its own thread.

    ``path`` is the file (:data:`STORE_FILE` in the state directory); its directory is made if missing.
    ``flush_interval`` is how long the writer waits after the first pending write before it commits, so the
    writes of that window share one transaction: the bound on what a crash of the process can lose.
    """

    def __init__(self, path: Path, flush_interval: float = 0.005) -> None:
        self.path = path
        self.flush_interval = flush_interval
        self.stats = StoreStats()
        #: Where a file that could not be opened was moved to (None when the file was fine or new).
        self.moved_aside: Path | None = None
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = self._open()
        # Taken for every use of the connection: the writer's commits and the loads. Never inside _lock.
        self._db_lock = threading.Lock()
        # The newest record of each call written since the writer last took the batch; None is a delete.
        self._pending: dict[str, bytes | None] = {}
        # Taken for _pending and the flags only, never across I/O: put() and delete() wait for nothing else.
        self._lock = threading.Lock()
        # The writer waits on _wake for a first pending write, then on _hurry for the rest of the window
        # (cut short by flush() and close()); flush() waits on _idle.
        self._wake = threading.Condition(self._lock)
        self._hurry = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)
        self._busy = False
        self._closing = False
        self._writer = threading.Thread(target=self._write_loop, name="call-api-store", daemon=True)
        self._writer.start()

    # -- the interface -------------------------------------------------------------------------------------

    def put(self, call_id: str, record: bytes) -> None:
        self._note(call_id, record)

    def delete(self, call_id: str) -> None:
        self._note(call_id, None)

    def load_all(self) -> dict[str, bytes]:
        with self._db_lock:
            rows = self._db.execute("SELECT call_id, record FROM calls").fetchall()
            stored = {call_id: bytes(record) for call_id, record in rows}
            with self._lock:
                for call_id, record in self._pending.items():
                    if record is None:
                        stored.pop(call_id, None)
                    else:
                        stored[call_id] = record
        return stored

    def load_one(self, call_id: str) -> bytes | None:
        with self._db_lock:
            row = self._db.execute("SELECT record FROM calls WHERE call_id = ?", (call_id,)).fetchone()
            with self._lock:
                if call_id in self._pending:
                    return self._pending[call_id]
        return None if row is None else bytes(row[0])

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every write noted before the call is committed; False if that took over ``timeout``
        seconds (the disk refuses writes: the failures are logged)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._pending or self._busy:
                left = deadline - time.monotonic()
                if left <= 0 or not self._writer.is_alive():
                    return False
                self._wake.notify()
                self._hurry.notify()
                self._idle.wait(min(left, 0.1))
        return True

    def close(self) -> None:
        with self._lock:
            if self._closing:
                return
            self._closing = True
            self._wake.notify()
            self._hurry.notify()
        self._writer.join()
        with self._lock:
            if self._pending:
                logger.error("store %s: %d call records not written before close", self.path, len(self._pending))
        with self._db_lock:
            self._db.close()

    def __len__(self) -> int:
        """How many calls the store holds, pending writes included."""
        return len(self.load_all())

    def _note(self, call_id: str, record: bytes | None) -> None:
        with self._lock:
            if self._closing:
                raise StoreError(f"{self.path}: the store is closed")
            if not self._pending:
                self._wake.notify()  # the first write of a window wakes the writer; the rest join it
            self._pending[call_id] = record

    # -- opening, migrating, setting bad files aside ------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        try:
            return self._connect()
        except (sqlite3.DatabaseError, StoreError) as exc:
            self.moved_aside = self._move_aside()
            logger.error(
                "store %s cannot be used (%s): moved it to %s and started an empty store; "
                "the calls it held are not restored",
                self.path, exc, self.moved_aside,
            )
            return self._connect()

    def _connect(self) -> sqlite3.Connection:
        # Only this process writes the file; a second writer (an operator's sqlite3 shell) waits at most 1 s.
        db = sqlite3.connect(self.path, timeout=1.0, isolation_level=None, check_same_thread=False)
        try:
            # Read-only checks first, so a file we will not use is set aside exactly as it was.
            verdict = db.execute("PRAGMA quick_check").fetchone()[0]
            if verdict != "ok":
                raise StoreError(f"quick_check: {verdict}")
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StoreError(f"schema version {version} is newer than this call-api's {SCHEMA_VERSION}")
            if version < SCHEMA_VERSION:
                self._migrate(db, version)
            db.execute("SELECT call_id, record, written FROM calls LIMIT 0")  # the shape this code reads
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            db.close()
            raise
        return db

    def _migrate(self, db: sqlite3.Connection, version: int) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step]:
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        if version:
            logger.info("store %s: migrated from schema version %d to %d", self.path, version, SCHEMA_VERSION)

    def _move_aside(self) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        target = self.path.with_name(f"{self.path.name}.bad-{stamp}")
        serial = 1
        while target.exists():
            serial += 1
            target = self.path.with_name(f"{self.path.name}.bad-{stamp}-{serial}")
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                side.rename(target.with_name(target.name + suffix))
        if self.path.exists():
            self.path.rename(target)
        return target

    # -- the writer thread ---------------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._closing:
                    self._idle.notify_all()
                    self._wake.wait()
                if not self._pending:  # closing, and nothing is left to write
                    self._idle.notify_all()
                    return
                if not self._closing:  # let the window's writes join this commit
                    self._hurry.wait(self.flush_interval)
                closing = self._closing
            # The connection is taken before the batch leaves _pending, so a load (which takes the connection,
            # then _pending) sees each write either committed or pending, never neither.
            with self._db_lock:
                with self._lock:
                    batch, self._pending = self._pending, {}
                    self._busy = True
                committed = self._commit(batch)
            with self._lock:
                self._busy = False
                if not committed:  # keep the batch, under whatever was written since
                    batch.update(self._pending)
                    self._pending = batch
                self._idle.notify_all()
            if not committed:
                if closing:
                    return
                with self._lock:  # give the disk a moment before trying again (close() cuts it short)
                    self._hurry.wait(_RETRY_PAUSE)

    def _commit(self, batch: dict[str, bytes | None]) -> bool:
        """Write ``batch`` in one transaction (the caller holds the connection); False (logged) when SQLite
        refused it."""
        started = time.perf_counter()
        now = time.time()
        puts = [(call_id, record, now) for call_id, record in batch.items() if record is not None]
        deletes = [(call_id,) for call_id, record in batch.items() if record is None]
        try:
            self._db.execute("BEGIN")
            if puts:
                self._db.executemany("INSERT OR REPLACE INTO calls (call_id, record, written) VALUES (?, ?, ?)", puts)
            if deletes:
                self._db.executemany("DELETE FROM calls WHERE call_id = ?", deletes)
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self.stats.failures += 1
            logger.error("store %s: could not write %d call records (%s); will try again", self.path, len(batch), exc)
            return False
        elapsed = time.perf_counter() - started
        stats = self.stats
        stats.written += len(puts)
        stats.deleted += len(deletes)
        stats.flushes += 1
        stats.largest_flush = max(stats.largest_flush, len(batch))
        stats.longest_flush = max(stats.longest_flush, elapsed)
        return True
