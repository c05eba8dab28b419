"""The error codes of the Call API (the exception that carries one, :class:`~b2bua.errors.RpcError`, lives
in the one exception tree).

The -32700 .. -32603 codes are JSON-RPC 2.0's own (section 5.1); -32001 .. -32005 come from the range the
specification leaves to the server (-32000 .. -32099) and cover refusals that only the call logic can know,
or that say a method is documented but not served yet.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final

from b2bua.errors import (
    CallBusyError,
    CallNotFoundError,
    CallStateError,
    ControlError,
    EventsLostError,
    SinceAheadError,
    SubscriptionNotFoundError,
)

#: The frame is not valid JSON (or not UTF-8, or nested too deeply to parse).
PARSE_ERROR = -32700
#: The JSON is not a valid Request object, or the batch array is empty.
INVALID_REQUEST = -32600
#: No such method.
METHOD_NOT_FOUND = -32601
#: A parameter is missing, of the wrong type, unknown, or outside its domain; or ``cmd_id`` is taken.
INVALID_PARAMS = -32602
#: A bug on the server side.
INTERNAL = -32603
#: No call has the given Call-ID.
CALL_NOT_FOUND = -32001
#: The call is not in a state where this command can run (e.g. not yet answered, already ended).
CALL_STATE = -32002
#: Another command is already running on that call.
BUSY = -32003
#: The service cannot run the method now: it is stopping (its calls are being ended), or the method was added
#: to the protocol before the service implements it (every command of the table has a handler today).
NOT_AVAILABLE = -32004
#: The ``code`` of the Error notification a command running when the service stops gets, before its Ended: the
#: SIP status of a service that cannot serve (RFC 3261 section 21.5.4); Error codes are SIP statuses or service
#: codes (docs/API.md).
SERVICE_STOPPING = 503
#: Subscribe ``since`` an event no longer kept: ``data.oldest`` is the oldest kept; start again from CallList.
EVENTS_LOST = -32005


#: The JSON-RPC code for each reason the call logic gives for not starting a command.
REFUSAL_CODES: Final[Mapping[type[ControlError], int]] = {
    CallNotFoundError: CALL_NOT_FOUND,
    CallStateError: CALL_STATE,
    CallBusyError: BUSY,
    EventsLostError: EVENTS_LOST,
    SinceAheadError: INVALID_PARAMS,
    SubscriptionNotFoundError: INVALID_PARAMS,
}


def refusal_code(error: ControlError) -> int:
    """The code to answer a refused command with: that of the class of ``error`` in :data:`REFUSAL_CODES`."""
    for kind, code in REFUSAL_CODES.items():
        if isinstance(error, kind):
            return code
    raise LookupError(f"no JSON-RPC code for {type(error).__name__}")


def refusal_data(error: ControlError) -> Mapping[str, object] | None:
    """The ``data`` of the error response for ``error``: what the client needs to recover."""
    if isinstance(error, EventsLostError):
        return {"oldest": error.oldest}
    if isinstance(error, SinceAheadError):
        return {"param": "since", "seq": error.seq}
    if isinstance(error, SubscriptionNotFoundError):
        return {"param": "subscription"}
    return None


def describe(value: object, limit: int = 60) -> str:
    """A short rendering of a client's JSON value for an error message: scalars as JSON, cut to ``limit``
    characters (before escaping), arrays and objects by kind only, so a message never echoes a large structure."""
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, str):
        return json.dumps(value if len(value) <= limit - 2 else value[: limit - 5] + "...", ensure_ascii=False)
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = type(value).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
