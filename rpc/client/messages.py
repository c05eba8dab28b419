"""What the Call API sends a client, read into typed values, sans I/O: one text frame in, one message out.

A frame is a response to a request (:class:`Started`, :class:`Answered` for a query's result, or :class:`Refusal`
for a JSON-RPC error response, section 5.1), a notification of a command (:class:`Event`, :class:`Failed` for
``Error``, :class:`Ended`; docs/API.md, Notifications) or of a subscription (:class:`CallEvent`,
:class:`SubscriptionLost`; docs/API.md, Live call state), or something the client has no use for
(:class:`Ignored`: a batch array, an unknown method, a notification without a ``cmd_id``). Bad input never
raises: a frame that is not JSON is :class:`Unreadable`, a response whose ``result`` or ``error`` is not of the
documented shape is :class:`Malformed`; the caller decides what that does to the connection. Every typed value keeps the
object as received in ``raw``, so a tool can print exactly what the service sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from b2bua.call.leg import LEG_NAMES, LegName

#: A request's id as the client library sends it (JSON-RPC 2.0 allows null and fractions too; it needs neither).
RequestId = str | int


@dataclass(frozen=True, slots=True)
class Event:
    """An ``Event`` notification: a step of command ``cmd_id``; ``data`` names it (``CALL_HOLD``, ...)."""

    cmd_id: str
    data: str
    callid: str | None = None
    """The Call-ID of the dialog the step concerns, when the service gave one."""
    leg: LegName | None = None
    """``"caller"`` or ``"callee"`` when one party is meant."""
    status: str | None = None
    """The SIP status line that caused the step, e.g. ``SIP/2.0 200 OK``."""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The notification object as received."""


@dataclass(frozen=True, slots=True)
class Failed:
    """An ``Error`` notification: command ``cmd_id`` failed; ``code`` is a SIP status or a service code."""

    cmd_id: str
    code: int
    message: str
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Ended:
    """The ``Ended`` notification: command ``cmd_id`` is over, always its last notification."""

    cmd_id: str
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


Notification = Event | Failed | Ended


@dataclass(frozen=True, slots=True)
class Started:
    """The response to request ``request_id``: its command started as ``cmd_id``."""

    request_id: RequestId | None
    cmd_id: str
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Answered:
    """The response to query ``request_id`` (CallList, CallGet, Subscribe, Unsubscribe): its ``result`` object."""

    request_id: RequestId | None
    result: Mapping[str, Any]
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class CallEvent:
    """A ``CallEvent`` notification of ``subscription``: event number ``seq`` (``event`` names it) of call
    ``callid``; ``params`` holds all its members (docs/API.md lists them per event)."""

    subscription: str
    seq: int
    callid: str
    event: str
    params: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class SubscriptionLost:
    """The service dropped ``subscription`` (the client read too slowly); ``seq`` is the last event it was sent."""

    subscription: str
    seq: int


@dataclass(frozen=True, slots=True)
class Refusal:
    """A JSON-RPC error response to request ``request_id`` (null when the service could not read the id)."""

    request_id: RequestId | None
    code: int
    message: str
    data: object = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Malformed:
    """A response to ``request_id`` that is neither a ``Started`` result nor an error object."""

    request_id: object
    reason: str
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A frame that is not JSON (or not UTF-8)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Ignored:
    """Valid JSON that is neither a response nor a notification of a command."""

    reason: str


Message = (Started | Answered | Refusal | Malformed | Event | Failed | Ended | CallEvent | SubscriptionLost | Unreadable
           | Ignored)


def read_message(frame: str | bytes) -> Message:
    """The message in one frame from the service; never raises on what the service sent."""
    try:
        document = json.loads(frame)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return Unreadable(f"the server sent a frame that is not JSON: {frame[:80]!r}")
    if not isinstance(document, dict):
        return Ignored(f"a frame that is not an object: {type(document).__name__}")
    if "method" in document:
        return _notification(document)
    if "id" in document:
        return _response(document)
    return Ignored("an object that is neither a response nor a notification")


def _response(document: dict[str, Any]) -> Message:
    request_id = document["id"]
    if "result" in document:
        result = document["result"]
        if isinstance(result, dict) and isinstance(result.get("cmd_id"), str) and result["cmd_id"]:
            return Started(request_id, result["cmd_id"], document)
        if isinstance(result, dict) and "cmd_id" not in result:
            return Answered(request_id, result, document)
        return Malformed(request_id, "its result has no cmd_id", document)
    error = document.get("error")
    if isinstance(error, dict) and _is_int(error.get("code")) and isinstance(error.get("message"), str):
        return Refusal(request_id, error["code"], error["message"], error.get("data"), document)
    return Malformed(request_id, "it has neither a result nor an error object", document)


def _notification(document: dict[str, Any]) -> Message:
    method, params = document["method"], document.get("params")
    if method in ("CallEvent", "SubscriptionLost"):
        return _live(method, params, document)
    if not isinstance(params, dict) or not isinstance(params.get("cmd_id"), str):
        return Ignored(f"a notification without params.cmd_id: {_cut(method)}")
    cmd_id: str = params["cmd_id"]
    match method:
        case "Event":
            data = params.get("data")
            if not isinstance(data, str):
                return Ignored(f"an Event of {_cut(cmd_id)} without data")
            leg = params.get("leg")
            return Event(cmd_id, data, _text(params.get("callid")), leg if leg in LEG_NAMES else None,
                         _text(params.get("status")), document)
        case "Error":
            code = params.get("code")
            if not _is_int(code):
                return Ignored(f"an Error of {_cut(cmd_id)} without a code")
            message = params.get("message")
            return Failed(cmd_id, code, message if isinstance(message, str) else "", document)
        case "Ended":
            return Ended(cmd_id, document)
        case _:
            return Ignored(f"an unknown notification: {_cut(method)}")


def _live(method: str, params: object, document: dict[str, Any]) -> Message:
    if not (isinstance(params, dict) and isinstance(params.get("subscription"), str) and _is_int(params.get("seq"))):
        return Ignored(f"a {method} without params.subscription and params.seq")
    if method == "SubscriptionLost":
        return SubscriptionLost(params["subscription"], params["seq"])
    callid, event = params.get("callid"), params.get("event")
    if not (isinstance(callid, str) and isinstance(event, str)):
        return Ignored("a CallEvent without callid and event")
    return CallEvent(params["subscription"], params["seq"], callid, event, params)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    return None if value is None or isinstance(value, bool) else str(value)


def _cut(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
