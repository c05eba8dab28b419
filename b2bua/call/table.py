"""The call table: every call the service owns, found by the Call-ID of any of its legs."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from .call import Call, CallOutcome, CallState


class CallTable:
    """Calls indexed by each leg's Call-ID; a call leaves the table when it ends, counted by its outcome."""

    def __init__(self) -> None:
        self._by_call_id: dict[str, Call] = {}
        self._calls: dict[str, Call] = {}
        #: Calls ended so far by (outcome, status class): what ``call_api_calls_total`` reads when scraped.
        self.ended: dict[tuple[CallOutcome, int], int] = {}
        #: Each call added is told to report its changes here (b2bua.call.record.CallKeeper.changed).
        self.keeper: Callable[[Call], None] | None = None

    def add(self, call: Call) -> None:
        """Index ``call`` under its id and every leg's Call-ID (call again after adding a leg)."""
        self._calls[call.id] = call
        self._by_call_id[call.id] = call
        for leg in call.legs.values():
            self._by_call_id[leg.call_id] = call
        if self._on_ended not in call.ended_listeners:
            call.ended_listeners.append(self._on_ended)
        call.keeper = self.keeper

    def _on_ended(self, call: Call) -> None:
        self.remove(call)
        outcome = call.outcome
        self.ended[outcome] = self.ended.get(outcome, 0) + 1

    def remove(self, call: Call) -> None:
        self._calls.pop(call.id, None)
        for key in [call.id, *(leg.call_id for leg in call.legs.values())]:
            if self._by_call_id.get(key) is call:
                del self._by_call_id[key]

    def find(self, call_id: str) -> Call | None:
        return self._by_call_id.get(call_id)

    def __len__(self) -> int:
        return len(self._calls)

    def states(self) -> Iterator[CallState]:
        """The state of every call (read when ``/metrics`` is scraped)."""
        return (call.state for call in self._calls.values())

    def __iter__(self) -> Iterator[Call]:
        return iter(list(self._calls.values()))

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._by_call_id
