"""The Call API's methods and the schema of their named parameters, validated into frozen dataclasses.

One table, :data:`METHODS`, maps each method name the API accepts (``CallUnhold`` as an alias of
``CallUnHold``) to its :class:`Method`. Validation is strict: a parameter the method does not take is
refused, as is a missing, mistyped or empty one, a ``leg`` other than ``"caller"``/``"callee"`` and a URI
that is not ``sip:``, ``sips:`` (RFC 3261 section 19.1) or ``tel:`` (RFC 3966). An optional parameter
given as ``null`` counts as absent. Every refusal is an :class:`~b2bua.errors.RpcError` with code
:data:`~rpc.errors.INVALID_PARAMS` (or :data:`~rpc.errors.METHOD_NOT_FOUND`), a message naming the
parameter as the client spelled it, and ``data={"param": name}``.

Every method also takes ``cmd_id``, the client's choice of id for the command; :func:`requested_cmd_id`
reads it, and the JSON-RPC layer decides whether it is free.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Literal, assert_never

from b2bua.errors import ParseError, RpcError
from b2bua.sip.uri import SipUri, TelUri, parse_uri

from .errors import INVALID_PARAMS, METHOD_NOT_FOUND, describe

#: Which party of a call a command acts on: the one called first (``caller``) or second (``callee``).
Leg = Literal["caller", "callee"]
LEGS: tuple[Leg, ...] = ("caller", "callee")

#: The parameter, common to all methods, by which a client names the command it starts.
CMD_ID = "cmd_id"


@dataclass(frozen=True, slots=True)
class CallStartParams:
    """``CallStart``: call ``caller``, and once it answers, connect it to ``callee``."""

    caller: str
    """SIP, SIPS or tel URI of the first party, as the client sent it."""
    callee: str
    """SIP, SIPS or tel URI of the second party, as the client sent it."""


@dataclass(frozen=True, slots=True)
class BlindTransferParams:
    """``CallBlindTransfer``: transfer one leg of a call to ``destination`` (RFC 5359 section 2.4)."""

    callid: str
    """SIP Call-ID of the call."""
    leg: Leg
    """The party to transfer."""
    destination: str
    """SIP, SIPS or tel URI of the transfer target."""


@dataclass(frozen=True, slots=True)
class AttendedTransferParams:
    """``CallAttendedTransfer``: join leg ``leg_a`` of call A with leg ``leg_b`` of call B (RFC 5359 section 2.5)."""

    callid_a: str
    """SIP Call-ID of call A (``callidA`` upstream)."""
    leg_a: Leg
    """The party of call A to transfer (``legA`` upstream)."""
    callid_b: str
    """SIP Call-ID of call B (``callidB`` upstream)."""
    leg_b: Leg
    """The party of call B that the transferred party is connected to (``legB`` upstream)."""
    destination: str | None
    """SIP, SIPS or tel URI of the destination; None means the URI of ``leg_b``."""


@dataclass(frozen=True, slots=True)
class HoldParams:
    """``CallHold``: put one party of a call, or both, on hold (RFC 3264 section 8.4)."""

    callid: str
    """SIP Call-ID of the call."""
    leg: Leg | None
    """The party to put on hold; None means both."""


@dataclass(frozen=True, slots=True)
class UnholdParams:
    """``CallUnHold`` (alias ``CallUnhold``): resume one party of a held call, or both."""

    callid: str
    """SIP Call-ID of the call."""
    leg: Leg | None
    """The party to resume; None means both."""


@dataclass(frozen=True, slots=True)
class EndParams:
    """``CallEnd``: hang up both legs of a call."""

    callid: str
    """SIP Call-ID of the call."""


#: The validated parameters of any command; the type says which command it is.
CommandParams = (
    CallStartParams | BlindTransferParams | AttendedTransferParams | HoldParams | UnholdParams | EndParams
)


class Kind(Enum):
    """What a parameter's value must be; the value says it in words for error messages."""

    TEXT = "a non-empty string"
    LEG = 'either "caller" or "callee"'
    URI = "a SIP, SIPS or tel URI"


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
    build: Callable[..., CommandParams]
    """Makes the parameters object from the validated values, keyed by :attr:`Param.name`."""

    def validate(self, params: Mapping[str, object]) -> CommandParams:
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
        values: dict[str, str | None] = {}
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


def check(kind: Kind, key: str, value: object) -> str:
    """``value`` if it is of ``kind``, else raise :class:`RpcError` naming ``params.<key>``."""
    if not isinstance(value, str):
        raise _invalid(key, f"params.{key} must be {kind.value}, got {describe(value)}")
    if not value:
        raise _invalid(key, f"params.{key} must not be empty")
    match kind:
        case Kind.TEXT:
            return value
        case Kind.LEG:
            if value not in LEGS:
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


def validate(method: str, params: Mapping[str, object]) -> CommandParams:
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


_CALLID = Param("callid", Kind.TEXT)
_UNHOLD = Method("CallUnHold", (_CALLID, Param("leg", Kind.LEG, required=False)), UnholdParams)

#: Every method name the API answers to, with its schema.
METHODS: dict[str, Method] = {
    "CallStart": Method("CallStart", (Param("caller", Kind.URI), Param("callee", Kind.URI)), CallStartParams),
    "CallBlindTransfer": Method(
        "CallBlindTransfer",
        (_CALLID, Param("leg", Kind.LEG), Param("destination", Kind.URI)),
        BlindTransferParams,
    ),
    "CallAttendedTransfer": Method(
        "CallAttendedTransfer",
        (
            Param("callid_a", Kind.TEXT, alias="callidA"),
            Param("leg_a", Kind.LEG, alias="legA"),
            Param("callid_b", Kind.TEXT, alias="callidB"),
            Param("leg_b", Kind.LEG, alias="legB"),
            Param("destination", Kind.URI, required=False),
        ),
        AttendedTransferParams,
    ),
    "CallHold": Method("CallHold", (_CALLID, Param("leg", Kind.LEG, required=False)), HoldParams),
    "CallUnHold": _UNHOLD,
    "CallUnhold": _UNHOLD,
    "CallEnd": Method("CallEnd", (_CALLID,), EndParams),
}
