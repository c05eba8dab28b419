"""The live call state in JSON, sans I/O: the Call and Leg objects, the query results and the ``CallEvent`` and
``SubscriptionLost`` notifications (docs/API.md, "Live call state").

Times are RFC 3339 in UTC with milliseconds (``2026-12-04T17:20:01.250Z``). A ``CallEvent`` is rendered once and
then given each subscriber's id, so many subscribers cost one encoding per event, not one each.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, assert_never

from b2bua.call.live import Answer, CallEvent, Found, Page, Subscribed, Unsubscribed
from b2bua.call.snapshot import CallView, LegView

from .jsonrpc import VERSION


def rfc3339(seconds: float) -> str:
    """Wall-clock ``seconds`` since the epoch as RFC 3339 UTC with milliseconds. The date and time of the whole
    second are kept from the last call: events come in bursts within a second, and this runs for every one."""
    millis = round(seconds * 1000)
    whole, fraction = divmod(millis, 1000)
    if whole != _last_second[0]:
        _last_second[0] = whole
        _last_second[1] = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{_last_second[1]}.{fraction:03d}Z"


#: The last whole second :func:`rfc3339` rendered, and its text.
_last_second: list[Any] = [None, ""]


def leg_object(leg: LegView) -> dict[str, object]:
    return {"callid": leg.callid, "local_uri": leg.local_uri, "remote_uri": leg.remote_uri,
            "remote_target": leg.remote_target, "dialog": leg.dialog, "held": leg.held, "direction": leg.direction,
            "transport": leg.transport, "peer": leg.peer}


def call_object(call: CallView) -> dict[str, object]:
    """The Call object: ``legs`` holds ``caller`` and ``callee`` while each exists."""
    command = None if call.command is None else {"cmd_id": call.command.cmd_id, "method": call.command.method}
    return {"callid": call.callid, "state": call.state, "created": rfc3339(call.created),
            "answered": None if call.answered is None else rfc3339(call.answered),
            "legs": {name: leg_object(leg) for name, leg in call.legs}, "command": command}


def result_object(answer: Answer) -> dict[str, object]:
    """A query's ``result``."""
    match answer:
        case Page(seq, calls, next_cursor):
            return {"seq": seq, "calls": [call_object(call) for call in calls], "next_cursor": next_cursor}
        case Found(seq, call):
            return {"seq": seq, "call": call_object(call)}
        case Subscribed(subscription, seq, _):
            return {"subscription": subscription, "seq": seq}
        case Unsubscribed(subscription):
            return {"subscription": subscription}
        case _:
            assert_never(answer)


def result_response(request_id: str | int | float | None, answer: Answer) -> str:
    """The response to a query."""
    return _dump({"jsonrpc": VERSION, "id": request_id, "result": result_object(answer)})


def event_params(event: CallEvent) -> dict[str, object]:
    """The params of a ``CallEvent`` notification, but the subscription."""
    params: dict[str, object] = {"seq": event.seq, "time": rfc3339(event.time), "callid": event.callid,
                                 "event": event.event}
    for name, value in event.detail:
        params[name] = call_object(value) if isinstance(value, CallView) else value
    return params


class EventText:
    """``CallEvent`` notifications as text, the event's part encoded once for all its subscribers."""

    __slots__ = ("_event", "_tail")

    def __init__(self) -> None:
        self._event: CallEvent | None = None
        self._tail = ""

    def notification(self, subscription: str, event: CallEvent) -> str:
        if event is not self._event:
            self._event = event
            self._tail = _dump(event_params(event))[1:]
        return f'{_EVENT_HEAD}{json.dumps(subscription)},{self._tail}}}'


#: The start of every ``CallEvent`` notification, up to the subscription's id.
_EVENT_HEAD = json.dumps({"jsonrpc": VERSION, "method": "CallEvent"}, separators=(",", ":"))[:-1] + \
    ',"params":{"subscription":'


def lost_notification(subscription: str, seq: int) -> str:
    """``SubscriptionLost``: the subscriber fell too far behind; ``seq`` is the last event it was sent."""
    return _dump({"jsonrpc": VERSION, "method": "SubscriptionLost", "params": {"subscription": subscription,
                                                                               "seq": seq}})


def _dump(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)
