"""Answered calls as records, for the call store: which calls changed, their records, and calls rebuilt from them.

Sans-I/O: :class:`CallKeeper` is told when a call changed (:meth:`Call.changed`, called on every state move, SDP
exchanged, leg replaced) and hands the shell the writes to make (:meth:`CallKeeper.take_writes`); the shell
puts them in a :class:`~b2bua.io.store.CallStore`. :func:`restore_call` rebuilds a call from its record after a
restart, its sessions through ``UserAgent.restore``.

What is kept (issue 15): only answered calls whose two legs are confirmed (a call still being set up has
transactions in flight, which no record can carry), each leg's session (dialog with route set, remote
target, CSeqs, tags, secure flag; the shed INVITE; the transport) and SDP memory (last SDP sent and received,
the ``o=`` origins, version offset and last version, held, and its RFC 4028 session timer: interval and who
refreshes), the call's name and state, and the REFER subscriptions the service still follows (so a late
NOTIFY is answered by the service, not relayed). A call that starts ending is deleted at once. Not kept: the
command running on the call (the API connection that ran it is gone with the process; a transfer's flow does
not resume, its NOTIFYs are answered as after its end).

The record is JSON (``{"v": 1, ...}``) in UTF-8: readable with ``sqlite3`` and a text editor when an operator
needs to know what a restart will bring back. SDP and the INVITE are text with surrogate escapes for the odd
non-UTF-8 byte.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Final

from ..errors import RecordError, SipError
from ..sip.ua import UserAgent
from .call import Call, CallState
from .leg import LEG_NAMES
from .table import CallTable

__all__ = ["RECORD_VERSION", "CallKeeper", "call_record", "restore_call"]

logger = logging.getLogger("call_api.call.record")

#: The record format this code writes and reads.
RECORD_VERSION: Final = 1


def call_record(call: Call) -> bytes:
    """The record of an answered call with two confirmed legs; raises :class:`SipError` for any other."""
    legs = {name: leg.to_record() for name, leg in call.legs.items()}
    record = {"v": RECORD_VERSION, "id": call.id, "state": call.state.value, "legs": legs}
    return json.dumps(record, separators=(",", ":")).encode()


def restore_call(data: bytes, ua: UserAgent, table: CallTable, now: float = 0.0) -> Call:
    """The call ``data`` (from :func:`call_record`) keeps, with its sessions restored in ``ua`` and the call
    in ``table``; raises :class:`RecordError` (nothing restored) when the record cannot be a kept call's. Each
    leg's session timer (RFC 4028) comes back counted from ``now``; the B2BUA arms it (``B2bua.resume``)."""
    try:
        record = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise RecordError(f"call record is not JSON: {exc}") from exc
    if not isinstance(record, Mapping) or record.get("v") != RECORD_VERSION:
        version = record.get("v") if isinstance(record, Mapping) else None
        raise RecordError(f"call record of format {version!r}: this code reads {RECORD_VERSION}")
    ident, state, legs = record.get("id"), record.get("state"), record.get("legs")
    if not isinstance(ident, str) or state != CallState.ANSWERED.value or not isinstance(legs, Mapping):
        raise RecordError(f"call record: id {ident!r}, state {state!r}")
    if set(legs) != set(LEG_NAMES) or not all(isinstance(leg, Mapping) for leg in legs.values()):
        raise RecordError(f"call {ident}: record with legs {sorted(legs)!r}")
    for name in LEG_NAMES:
        answers_to = legs[name].get("answers_to")
        if answers_to is not None and answers_to not in LEG_NAMES:
            raise RecordError(f"call {ident}: {name} answers to {answers_to!r}")
    sessions = []
    try:
        for name in LEG_NAMES:
            session_record = legs[name].get("session")
            if not isinstance(session_record, Mapping):
                raise RecordError(f"call {ident}: {name} has no session")
            sessions.append(ua.restore(session_record))
        call = Call(ident)
        for name, session in zip(LEG_NAMES, sessions, strict=True):
            leg = call.add_leg(name, session)
            leg.restore_sdp(legs[name]["sdp"])
            leg.restore_refers(legs[name].get("refers", []))
            leg.restore_timer(legs[name].get("timer"), now)
    except RecordError:
        for session in sessions:  # a half-restored call leaves nothing behind
            ua.session_ended(session)
        raise
    for name in LEG_NAMES:
        answers_to = legs[name].get("answers_to")
        if answers_to is not None:
            call.legs[name].answers_to = call.legs[answers_to]
    call.move(CallState.ANSWERED)
    table.add(call)
    return call


class CallKeeper:
    """The calls that changed since the shell last asked, and what each means for the store.

    :meth:`changed` is the table's per-call hook (``CallTable.keeper``): a set insertion. :meth:`take_writes`
    turns the changed calls into writes: the record of an answered call with both legs confirmed, a delete
    for a call written before that is no longer so (ending, ended, a leg gone), and a delete of the old name
    when a call changed its name (Replaces)."""

    __slots__ = ("_changed", "_written", "failures")

    def __init__(self) -> None:
        self._changed: dict[Call, None] = {}
        #: The name each call was last written under.
        self._written: dict[Call, str] = {}
        #: Records that could not be made (logged): a bug, never bad input.
        self.failures = 0

    def changed(self, call: Call) -> None:
        self._changed[call] = None

    def take_writes(self) -> list[tuple[str, bytes | None]]:
        """The writes the changes since the last call mean: ``(name, record)`` or ``(name, None)`` to delete."""
        if not self._changed:
            return []
        changed, self._changed = self._changed, {}
        writes: list[tuple[str, bytes | None]] = []
        written = self._written
        for call in changed:
            before = written.get(call)
            if _keepable(call):
                try:
                    record = call_record(call)
                except SipError:
                    self.failures += 1
                    logger.exception("call %s: could not make its record", call.id)
                    continue
                if before is not None and before != call.id:
                    writes.append((before, None))
                written[call] = call.id
                writes.append((call.id, record))
            elif before is not None:
                del written[call]
                writes.append((before, None))
        return writes

    def __len__(self) -> int:
        """How many calls are written (kept) now."""
        return len(self._written)


def _keepable(call: Call) -> bool:
    if call.state is not CallState.ANSWERED or len(call.legs) != len(LEG_NAMES):
        return False
    return all(leg.confirmed for leg in call.legs.values())
