"""JSON-RPC 2.0 framing of the Call API, sans I/O: a text frame in, per-request outcomes and response text out.

:func:`parse_frame` takes one WebSocket frame (a Request object or a batch array, JSON-RPC 2.0 sections 4
and 6) and never raises on what the client sent: every request becomes :class:`Accepted` (the caller
starts the command) or :class:`Refused` (an error response, section 5.1). The caller then gathers one reply
per outcome, since some refusals (:data:`~rpc.errors.CALL_NOT_FOUND` ...) are only known once the call
logic has seen the command, and :meth:`Frame.reply` assembles what to send, if anything. A notification
(a request without ``id``) is started all the same but never answered, not even with an error (section 4.1).

The other builders make the server's notifications: ``Event``, ``Error`` and ``Ended``. All output is
compact, ASCII-only JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Final, TypeGuard

from b2bua.call.commands import Command
from b2bua.call.leg import LegName
from b2bua.errors import RpcError

from .errors import INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR, describe
from .methods import lookup, requested_cmd_id

#: A request's ``id``: a string, a number (a float is discouraged but allowed) or null.
RequestId = str | int | float | None
#: A reply for one request as given to :meth:`Frame.reply`: response text, a response object, or None for none.
Reply = str | Mapping[str, object] | None

VERSION: Final = "2.0"
_MEMBERS: Final = ("jsonrpc", "method", "params", "id")


class NoId(Enum):
    """The id of a notification, a request without an ``id`` member: it gets no response."""

    NO_ID = "NO_ID"


NO_ID: Final = NoId.NO_ID


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid request: the caller starts the command, then sends :meth:`reply` (or :meth:`error_reply`)."""

    request_id: RequestId | NoId
    """The request's ``id``, or :data:`NO_ID` for a notification."""
    method: str
    """The method's documented name (``CallUnHold`` also for ``CallUnhold``)."""
    params: Command
    """The validated parameters; their type tells the command."""
    cmd_id: str
    """The command's id: the client's ``params.cmd_id`` if it gave one, else a new one."""

    @property
    def notification(self) -> bool:
        return isinstance(self.request_id, NoId)

    def reply(self) -> str | None:
        """The ``Started`` response, or None for a notification."""
        if isinstance(self.request_id, NoId):
            return None
        return started_response(self.request_id, self.cmd_id)

    def error_reply(self, error: RpcError) -> str | None:
        """The error response for a command the call logic refused, or None for a notification."""
        if isinstance(self.request_id, NoId):
            return None
        return error_response(self.request_id, error.code, error.message, error.data)


@dataclass(frozen=True, slots=True)
class Refused:
    """A request refused before it started: an error to answer with, unless it was a notification."""

    request_id: RequestId | NoId
    """The request's ``id`` (null when it could not be read), or :data:`NO_ID` for a notification."""
    code: int
    message: str
    data: Mapping[str, object] | None = None

    def reply(self) -> str | None:
        """The error response, or None for a notification."""
        if isinstance(self.request_id, NoId):
            return None
        return error_response(self.request_id, self.code, self.message, self.data)


Outcome = Accepted | Refused


@dataclass(frozen=True, slots=True)
class Frame:
    """What one frame asked for: one outcome per request, in order, and whether it came as a batch."""

    outcomes: tuple[Outcome, ...]
    batch: bool

    def reply(self, replies: Sequence[Reply]) -> str | None:
        """The text to send back given one reply per outcome (None for none), or None to send nothing."""
        if len(replies) != len(self.outcomes):
            raise ValueError(f"{len(replies)} replies for {len(self.outcomes)} outcomes")
        if self.batch:
            return batch_response(replies)
        reply = replies[0]
        return reply if reply is None or isinstance(reply, str) else _dump(reply)


def parse_frame(
    text: str | bytes, *, new_cmd_id: Callable[[], str], is_running: Callable[[str], bool]
) -> Frame:
    """Read one frame into outcomes. ``new_cmd_id`` makes the id of a command whose request names none;
    ``is_running(cmd_id)`` says whether a client-chosen id is taken. Never raises on bad input."""
    try:
        decoded = text.decode() if isinstance(text, bytes) else text
        document = json.loads(decoded, parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        return _refuse_frame(PARSE_ERROR, f"frame is not valid UTF-8: {exc.reason} at byte {exc.start}")
    except json.JSONDecodeError as exc:
        return _refuse_frame(PARSE_ERROR, f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except ValueError as exc:
        return _refuse_frame(PARSE_ERROR, f"invalid JSON: {exc}")
    except RecursionError:
        return _refuse_frame(PARSE_ERROR, "invalid JSON: nested too deeply")
    if not isinstance(document, list):
        return Frame((_parse_request(document, new_cmd_id, is_running, set()),), batch=False)
    if not document:
        return _refuse_frame(INVALID_REQUEST, "empty batch: a batch array must hold at least one request")
    taken: set[str] = set()
    return Frame(tuple(_parse_request(item, new_cmd_id, is_running, taken) for item in document), batch=True)


def started_response(request_id: RequestId, cmd_id: str) -> str:
    """The immediate response to a request whose command started."""
    return _dump({"jsonrpc": VERSION, "id": request_id, "result": {"cmd_id": cmd_id, "status": "Started"}})


def error_response(request_id: RequestId, code: int, message: str, data: Mapping[str, object] | None = None) -> str:
    """An error response (JSON-RPC 2.0 section 5.1); ``data`` is left out when None."""
    error: dict[str, object] = {"code": code, "message": message}
    if data is not None:
        error["data"] = dict(data)
    return _dump({"jsonrpc": VERSION, "id": request_id, "error": error})


def event_notification(
    cmd_id: str, data: str, *, callid: str | None = None, leg: LegName | None = None, status: int | str | None = None
) -> str:
    """An ``Event`` notification: ``data`` names the event (``CALL_ANSWER`` ...); details left out when None."""
    params: dict[str, object] = {"cmd_id": cmd_id, "data": data}
    for name, value in (("callid", callid), ("leg", leg), ("status", status)):
        if value is not None:
            params[name] = value
    return _notification("Event", params)


def error_notification(cmd_id: str, code: int, message: str) -> str:
    """An ``Error`` notification: the command failed after it started."""
    return _notification("Error", {"cmd_id": cmd_id, "code": code, "message": message})


def ended_notification(cmd_id: str) -> str:
    """The ``Ended`` notification: the command is over and its id is free again."""
    return _notification("Ended", {"cmd_id": cmd_id})


def batch_response(replies: Iterable[Reply]) -> str | None:
    """The array answering a batch (JSON-RPC 2.0 section 6), leaving out the Nones; None if all are None."""
    parts = [reply if isinstance(reply, str) else _dump(reply) for reply in replies if reply is not None]
    return "[" + ",".join(parts) + "]" if parts else None


def _parse_request(
    request: object, new_cmd_id: Callable[[], str], is_running: Callable[[str], bool], taken: set[str]
) -> Outcome:
    if not isinstance(request, dict):
        return Refused(None, INVALID_REQUEST, f"a request must be a JSON object, got {describe(request)}")
    request_id: RequestId | NoId = NO_ID
    if "id" in request:
        value = request["id"]
        if not _valid_id(value):
            message = f"id must be a string, a finite number or null, got {describe(value)}"
            return Refused(None, INVALID_REQUEST, message, {"member": "id"})
        request_id = value
    try:
        method, params = _envelope(request)
    except RpcError as exc:
        return Refused(None if isinstance(request_id, NoId) else request_id, exc.code, exc.message, exc.data)
    try:
        spec = lookup(method)
        command = spec.validate(params)
        cmd_id = requested_cmd_id(params)
        if cmd_id is None:
            cmd_id = new_cmd_id()
        elif cmd_id in taken:
            raise RpcError(INVALID_PARAMS, f"params.cmd_id {describe(cmd_id)} is used twice in this batch",
                           {"param": "cmd_id"})
        elif is_running(cmd_id):
            raise RpcError(INVALID_PARAMS, f"params.cmd_id {describe(cmd_id)} is already running", {"param": "cmd_id"})
    except RpcError as exc:
        return Refused(request_id, exc.code, exc.message, exc.data)
    taken.add(cmd_id)
    return Accepted(request_id, spec.name, command, cmd_id)


def _envelope(request: dict[str, object]) -> tuple[str, dict[str, object]]:
    """The method and named params of a Request object (JSON-RPC 2.0 section 4), or raise INVALID_REQUEST."""
    if "jsonrpc" not in request:
        raise _bad_member("jsonrpc", 'jsonrpc is missing; it must be "2.0"')
    version = request["jsonrpc"]
    if not (isinstance(version, str) and version == VERSION):
        raise _bad_member("jsonrpc", f'jsonrpc must be "2.0", got {describe(version)}')
    if "method" not in request:
        raise _bad_member("method", "method is missing")
    method = request["method"]
    if not isinstance(method, str):
        raise _bad_member("method", f"method must be a string, got {describe(method)}")
    params = request.get("params", {})
    if isinstance(params, list):
        raise _bad_member("params", "params must be an object: by-position (array) params are not supported")
    if not isinstance(params, dict):
        raise _bad_member("params", f"params must be an object, got {describe(params)}")
    for name in request:
        if name not in _MEMBERS:
            raise _bad_member(name, f"unknown member {describe(name, 40)}: a request has jsonrpc, method, params, id")
    return method, params


def _valid_id(value: object) -> TypeGuard[RequestId]:
    if value is None or isinstance(value, str):
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def _bad_member(name: str, message: str) -> RpcError:
    return RpcError(INVALID_REQUEST, message, {"member": name[:40]})


def _refuse_frame(code: int, message: str) -> Frame:
    return Frame((Refused(None, code, message),), batch=False)


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON value")


def _notification(method: str, params: dict[str, object]) -> str:
    return _dump({"jsonrpc": VERSION, "method": method, "params": params})


def _dump(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)
