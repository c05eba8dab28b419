"""Reading what a command run through the awaitable control API reported (``AsyncControl.run``), for the
system tests that build the service in this process (the ``serve`` fixture)."""

from __future__ import annotations

from b2bua.call.events import FlowEvent, FlowReport


def names(reports: list[FlowReport]) -> list[str]:
    """Each report's name: an event's data (CALL_ANSWER, ...), else its class (FlowEnded, FlowError)."""
    return [r.data if isinstance(r, FlowEvent) else type(r).__name__ for r in reports]


def event(reports: list[FlowReport], data: str) -> FlowEvent:
    """The one event ``data`` among ``reports``."""
    (found,) = [r for r in reports if isinstance(r, FlowEvent) and r.data == data]
    return found
