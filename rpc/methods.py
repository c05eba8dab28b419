"""The Call API's methods and the schema of their named parameters, validated into the command dataclasses.

:data:`METHODS` maps each method name the API accepts (``CallUnhold`` as an alias of ``CallUnHold``) to its
:class:`Method`; it is derived from the command table, :data:`b2bua.call.control.COMMANDS`, and the fields of
each command (:mod:`b2bua.call.commands`). Validation is strict: a parameter the method does not take is
refused, as is a missing, mistyped or empty one, a ``leg`` other than ``"caller"``/``"callee"`` and a URI
that is not ``sip:``, ``sips:`` (RFC 3261 section 19.1) or ``tel:`` (RFC 3966). An optional parameter
given as ``null`` counts as absent. Every refusal is an :class:`~b2bua.errors.RpcError` with code
:data:`~rpc.errors.INVALID_PARAMS` (or :data:`~rpc.errors.METHOD_NOT_FOUND`), a message naming the
parameter as the client spelled it, and ``data={"param": name}``.

Every method also takes ``cmd_id``, the client's choice of id for the command; :func:`requested_cmd_id`
reads it, and the JSON-RPC layer decides whether it is free.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, assert_never

from b2bua.call.call import CallState
from b2bua.call.commands import MAX_LIMIT, Command, Kind, args
from b2bua.call.control import COMMANDS, QueryRow, Row
from b2bua.call.leg import LEG_NAMES
from b2bua.errors import ParseError, RpcError
from b2bua.sip.uri import SipUri, TelUri, parse_uri

from .errors import INVALID_PARAMS, METHOD_NOT_FOUND, describe

#: The parameter, common to all methods, by which a client names the command it starts.
CMD_ID = "cmd_id"


@dataclass(frozen=True, slots=True)
class Param:
    """One named parameter of a method."""

    name: str
    """The documented spelling, also the field name in the parameters dataclass."""
    kind: Kind
    """What the value must be."""
    required: bool = True
    """Whether the parameter must be present (and not null)."""
    alias: str | None = None
    """Another accepted spelling (the upstream camelCase one)."""

    @property
    def spellings(self) -> str:
        return self.name if self.alias is None else f"{self.name}/{self.alias}"


@dataclass(frozen=True, slots=True)
class Method:
    """A method of the API: its canonical name, its parameters and the dataclass they validate into."""

    name: str
    """The documented name (``CallUnHold`` for both spellings)."""
    params: tuple[Param, ...]
    """The parameters other than ``cmd_id``."""
    build: type[Command]
    """The command the validated values make, keyed by :attr:`Param.name`."""

    @classmethod
    def of(cls, row: Row[Any] | QueryRow[Any]) -> Method:
        """The method of a command table row: its name, and a parameter per field of its command."""
        params = tuple(Param(name, spec.kind, spec.required, spec.alias) for name, spec in args(row.command))
        return cls(row.name, params, row.command)

    def validate(self, params: Mapping[str, object]) -> Command:
        """Check the named parameters of a request; raise :class:`RpcError` for the first problem found."""
        by_spelling: dict[str, Param] = {}
        for param in self.params:
            by_spelling[param.name] = param
            if param.alias is not None:
                by_spelling[param.alias] = param
        sent: dict[str, str] = {}
        for key in params:
            if key == CMD_ID:
                continue
            known = by_spelling.get(key)
            if known is None:
                takes = ", ".join([p.spellings for p in self.params] + [CMD_ID])
                raise _invalid(key, f"params.{_name(key)} is not a parameter of {self.name} (it takes {takes})")
            if known.name in sent:
                first = sent[known.name]
                raise _invalid(key, f"params.{first} and params.{key} are two spellings of one parameter; send one")
            sent[known.name] = key
        values: dict[str, object] = {}
        for param in self.params:
            key = sent.get(param.name, param.name)
            value = params.get(key)
            if value is not None:
                values[param.name] = check(param.kind, key, value)
            elif not param.required:
                values[param.name] = None
            elif key in params:
                raise _invalid(key, f"params.{key} must be {param.kind.value}, got null")
            else:
                raise _invalid(key, f"params.{key} is missing")
        requested_cmd_id(params)
        return self.build(**values)


#: The call states a CallList may ask for (an ended call is no longer listed).
LISTED_STATES: Final = frozenset(state.value for state in CallState if state is not CallState.ENDED)


def check(kind: Kind, key: str, value: object) -> Any:
    """``value`` if it is of ``kind`` (an array as a tuple), else raise :class:`RpcError` naming ``params.<key>``."""
    if kind in (Kind.LIMIT, Kind.SEQ):
        return _integer(kind, key, value)
    if kind is Kind.CALLIDS:
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            raise _invalid(key, f"params.{key} must be {kind.value}, got {describe(value)}")
        return tuple(value)
    if not isinstance(value, str):
        raise _invalid(key, f"params.{key} must be {kind.value}, got {describe(value)}")
    if not value:
        raise _invalid(key, f"params.{key} must not be empty")
    match kind:
        case Kind.TEXT:
            return value
        case Kind.STATE:
            if value not in LISTED_STATES:
                raise _invalid(key, f"params.{key} must be {kind.value}, got {describe(value)}")
            return value
        case Kind.CURSOR:
            if not (value.isascii() and value.isdigit() and len(value) < 20):
                raise _invalid(key, f"params.{key} must be {kind.value}, got {describe(value)}")
            return value
        case Kind.LIMIT | Kind.SEQ | Kind.CALLIDS:  # pragma: no cover - answered above
            raise AssertionError(kind)
        case Kind.LEG:
            if value not in LEG_NAMES:
                raise _invalid(key, f'params.{key} must be "caller" or "callee", got {describe(value)}')
            return value
        case Kind.URI:
            try:
                uri = parse_uri(value)
            except ParseError as exc:
                raise _invalid(key, f"params.{key} must be {kind.value}, got {describe(value)}", exc.reason) from None
            if not isinstance(uri, SipUri | TelUri):
                reason = f"unsupported URI scheme {uri.scheme!r}"
                raise _invalid(key, f"params.{key} must be {kind.value}, got {describe(value)}", reason)
            return value
        case _:
            assert_never(kind)


def _integer(kind: Kind, key: str, value: object) -> int:
    """A JSON integer within the range ``kind`` allows (``1.0`` is not an integer here, nor ``true``)."""
    low, high = (1, MAX_LIMIT) if kind is Kind.LIMIT else (0, 2**63 - 1)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _invalid(key, f"params.{key} must be {kind.value}, got {describe(value)}")
    return value


def requested_cmd_id(params: Mapping[str, object]) -> str | None:
    """The ``cmd_id`` the client chose (a non-empty string), or None when it left the choice to the server."""
    value = params.get(CMD_ID)
    return None if value is None else check(Kind.TEXT, CMD_ID, value)


def lookup(method: str) -> Method:
    """The :class:`Method` called ``method``, or an :class:`RpcError` with code ``METHOD_NOT_FOUND``."""
    found = METHODS.get(method)
    if found is None:
        raise RpcError(METHOD_NOT_FOUND, f"method {describe(method)} not found", {"methods": list(METHODS)})
    return found


def validate(method: str, params: Mapping[str, object]) -> Command:
    """The validated parameters of a call to ``method``; raise :class:`RpcError` if either is wrong."""
    return lookup(method).validate(params)


def _name(key: str) -> str:
    """A client's parameter name for a message: as sent when short and plain, else quoted and cut."""
    return key if key.isidentifier() and len(key) <= 40 else describe(key, 40)


def _invalid(key: str, message: str, reason: str | None = None) -> RpcError:
    data: dict[str, object] = {"param": key[:100]}
    if reason is not None:
        data["reason"] = reason
    return RpcError(INVALID_PARAMS, message, data)


def _methods() -> dict[str, Method]:
    methods: dict[str, Method] = {}
    for row in COMMANDS:
        method = Method.of(row)
        for name in (row.name, *row.aliases):
            methods[name] = method
    return methods


#: Every method name the API answers to (a command's name and its aliases), with its schema.
METHODS: Final[dict[str, Method]] = _methods()
