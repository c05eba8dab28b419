"""Following the live call state without gap or duplicate (docs/API.md, "Live call state"): the recovery recipe
as a loop, and the table a client keeps from the events.

:class:`Follower` opens its own connection, takes every page of ``CallList`` (yielding a :class:`Resync` with the
calls and the first page's ``seq``), then ``Subscribe {"since": seq}``, and yields each ``CallEvent`` after
applying it to :attr:`Follower.table` with :func:`apply`. When the connection is lost it reconnects (after
``retry`` seconds, doubling up to ``max_retry``) and subscribes again ``since`` the last event it yielded;
when the service no longer has the events after it (-32005, or a ``seq`` from another run: -32602), or drops
a subscription that read too slowly and the events after it are gone, it starts again from ``CallList``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from b2bua.errors import ConnectError, ConnectionLostError, RequestRefusedError

from .api import CallApi
from .messages import CallEvent, SubscriptionLost

logger = logging.getLogger("call_api.rpc.client")

#: The error codes after which the events since the last one seen cannot be had: start again from CallList.
RESYNC_CODES: Final = frozenset({-32005, -32602})

Call = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Resync:
    """The table was (re)built from ``CallList``: ``calls`` by name, consistent with event ``seq``."""

    seq: int
    calls: Mapping[str, Call] = field(default_factory=dict)


def apply(table: dict[str, Call], params: Mapping[str, Any]) -> None:
    """Apply one ``CallEvent`` (its params) to ``table`` (Call objects by ``callid``), by value, as docs/API.md
    tells: an event older than the table changes nothing that a later one does not set again."""
    callid, event = params["callid"], params["event"]
    if event == "created":
        table[callid] = dict(params["call"])
        return
    if event == "replaced":
        table.pop(callid, None)
        table[params["call"]["callid"]] = dict(params["call"])
        return
    if event == "ended":
        table.pop(callid, None)
        return
    call = table.get(callid)
    if call is None:
        return
    match event:
        case "ringing":
            call["state"] = "early"
        case "answered":
            call["state"], call["answered"] = "answered", params["time"]
        case "ending":
            call["state"] = "ending"
        case "media" | "held" | "resumed":
            legs = dict(call["legs"])
            leg = legs.get(params["leg"])
            if leg is not None:
                leg = dict(leg)
                if event == "media":
                    leg["direction"] = params["direction"]
                else:
                    leg["held"] = event == "held"
                legs[params["leg"]] = leg
                call["legs"] = legs
        case "command":
            started = params["outcome"] == "started"
            call["command"] = {"cmd_id": params["cmd_id"], "method": params["method"]} if started else None
        case _:
            pass  # transferred, and events a newer service adds: nothing in the Call object changes


class Follower:
    """``async for item in Follower(url):`` a :class:`Resync`, then :class:`CallEvent` s, for as long as it is
    iterated (cancel the task, or break, to stop). ``since`` starts from that event instead of ``CallList``
    (and, with ``snapshot=False``, lost events raise :class:`RequestRefusedError` instead of a resync)."""

    def __init__(self, url: str, *, token: str | None = None, origin: str | None = None, since: int | None = None,
                 calls: list[str] | None = None, snapshot: bool = True, retry: float = 0.1,
                 max_retry: float = 2.0) -> None:
        self.url = url
        self.token = token
        self.origin = origin
        self.calls = calls
        self.snapshot = snapshot
        self.retry = retry
        self.max_retry = max_retry
        #: The calls as the events left them (kept only from a Resync on).
        self.table: dict[str, Call] = {}
        #: The ``seq`` of the last event applied (or of the last Resync); None before the first.
        self.seq = since
        #: Connections opened so far (a test reads it).
        self.connections = 0
        #: The connection in use, while there is one.
        self.api: CallApi | None = None

    def __aiter__(self) -> AsyncIterator[Resync | CallEvent]:
        return self._follow()

    async def _follow(self) -> AsyncIterator[Resync | CallEvent]:
        wait = self.retry
        while True:
            try:
                async with CallApi(self.url, token=self.token, origin=self.origin) as api:
                    self.api = api
                    self.connections += 1
                    wait = self.retry
                    async for item in self._subscribed(api):
                        yield item
            except (ConnectError, ConnectionLostError) as exc:
                logger.info("following %s: %s; again in %.1f s", self.url, exc, wait)
            finally:
                self.api = None
            await asyncio.sleep(wait)
            wait = min(2 * wait, self.max_retry)

    async def _subscribed(self, api: CallApi) -> AsyncIterator[Resync | CallEvent]:
        """On one connection: a resync when needed, then a subscription since the last event, again whenever
        the service drops it."""
        while True:
            if self.seq is None and self.snapshot:
                seq, calls = await api.snapshot()
                self.seq = seq
                self.table = {call["callid"]: dict(call) for call in calls}
                yield Resync(seq, dict(self.table))
            try:
                async for item in api.subscription(self.seq, self.calls):
                    if isinstance(item, SubscriptionLost):
                        logger.info("following %s: subscription lost at %d", self.url, item.seq)
                        break
                    if self.seq is not None and item.seq <= self.seq:
                        continue  # a replayed event already applied
                    apply(self.table, item.params)
                    self.seq = item.seq
                    yield item
            except RequestRefusedError as exc:
                if exc.code not in RESYNC_CODES or not self.snapshot or self.seq is None:
                    raise
                logger.info("following %s: %s; starting again from CallList", self.url, exc.message)
                self.seq = None
