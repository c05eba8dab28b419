"""The call store wired to the call layer: restore at start, write after every turn of the core, flush at stop.

:class:`Persistence` holds the :class:`~b2bua.io.store.CallStore` and the sans-I/O
:class:`~b2bua.call.record.CallKeeper`. :meth:`Persistence.restore` runs before the SIP listeners open (so the
first in-dialog request after a restart finds its call); :meth:`Persistence.write` runs after the core handled
a datagram, a timer or a command (``ServiceCore.after``): it hands the store the records of the calls that
changed, a set lookup when nothing did. What a crash can lose is the store's bound (b2bua/io/store.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..call.call import Call
from ..call.record import CallKeeper, restore_call
from ..call.table import CallTable
from ..errors import RecordError
from ..sip.ua import UserAgent
from .store import CallStore, SqliteStore

__all__ = ["Persistence", "RestoreReport"]

logger = logging.getLogger("call_api.io.store")


@dataclass(slots=True)
class RestoreReport:
    """What a start found in the store."""

    restored: int = 0
    #: Call names whose record could not be rebuilt (deleted from the store, each logged with its reason).
    skipped: list[str] = field(default_factory=list)


class Persistence:
    """Keeps ``table``'s answered calls in the store at ``path``, opened by :meth:`restore` (at start, not when
    the service is built) with ``open_store``."""

    def __init__(self, path: Path, ua: UserAgent, table: CallTable,
                 open_store: Callable[[Path], CallStore] = SqliteStore,
                 resume: Callable[[Call, float], None] | None = None) -> None:
        self.path = path
        #: Told of each restored call with the clock's time, to start its timers again (``B2bua.resume``).
        self.resume = resume
        self.ua = ua
        self.table = table
        self.open_store = open_store
        self.store: CallStore | None = None
        self.keeper = CallKeeper()
        table.keeper = self.keeper.changed

    def restore(self, now: float = 0.0) -> RestoreReport:
        """Open the store and rebuild every stored call (its timers counted from ``now``, the core's clock); a
        record that cannot be rebuilt is logged, deleted and skipped."""
        report = RestoreReport()
        self.store = store = self.open_store(self.path)
        for name, data in sorted(store.load_all().items()):
            try:
                call = restore_call(data, self.ua, self.table, now)
            except RecordError as exc:
                logger.error("call %s: not restored: %s", name, exc)
                report.skipped.append(name)
                store.delete(name)
                continue
            if call.id != name:
                store.delete(name)
            if self.resume is not None:
                self.resume(call, now)
            # Written again at once: the record now holds the CSeq the restore jumped to.
            self.keeper.changed(call)
            report.restored += 1
        self.write()
        if report.restored or report.skipped:
            logger.info("restored %d calls from the store (%d skipped)", report.restored, len(report.skipped))
        return report

    def write(self) -> None:
        """Hand the store what changed since the last call (a no-op when nothing did, or before the start)."""
        store = self.store
        if store is None:
            return
        for name, record in self.keeper.take_writes():
            if record is None:
                store.delete(name)
            else:
                store.put(name, record)

    def close(self) -> None:
        """Write what is left and close the store (if it was opened)."""
        if self.store is not None:
            self.write()
            self.store.close()
            self.store = None
