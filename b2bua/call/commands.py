"""The commands of the Call API as data: one frozen dataclass per command, named as the API method.

A :class:`Query` is a command that answers in the response itself (``CallList``, ``CallGet``, ``Subscribe``,
``Unsubscribe``): no ``Started``, no ``Ended``; it reads the live call state (:mod:`.live`).

Each field is a named parameter of the method, with its docstring, and :func:`arg` metadata that says what
its value must be (:class:`Kind`), whether it may be left out, and its upstream camelCase spelling. The
JSON-RPC schema (:mod:`rpc.methods`) is derived from these fields; the table that pairs each command with
the handler that starts its flow is :data:`b2bua.call.control.COMMANDS`.
"""

from __future__ import annotations

from dataclasses import Field, dataclass, field, fields
from enum import Enum
from typing import Any, Final, TypeVar, dataclass_transform

from .leg import LegName


class Kind(Enum):
    """What a parameter's value must be; the value says it in words for error messages."""

    TEXT = "a non-empty string"
    LEG = 'either "caller" or "callee"'
    URI = "a SIP, SIPS or tel URI"
    STATE = 'one of "setup", "early", "answered", "ending"'
    LIMIT = "an integer from 1 to 1000"
    SEQ = "a non-negative integer"
    CURSOR = "a next_cursor from a previous CallList"
    CALLIDS = "an array of non-empty strings"


@dataclass(frozen=True, slots=True)
class Arg:
    """How a command's parameter is given."""

    kind: Kind
    """What the value must be."""
    required: bool = True
    """Whether the parameter must be present (and not null); an optional one absent is None."""
    alias: str | None = None
    """Another accepted spelling (the upstream camelCase one)."""


_META: Final = "call_api.arg"


def arg(kind: Kind, *, required: bool = True, upstream: str | None = None) -> Any:
    """A command field: a named parameter of its method, of ``kind``, spelled ``upstream`` too. It has no
    default: every field is an argument of the command's constructor (an optional one is passed as None).
    :func:`command` names this a field specifier (PEP 681), so mypy reads it as a field without default,
    where a bare ``Any`` made it look defaulted and ``CallHold()`` type-checked. (``upstream``, not
    ``alias``: a field specifier's ``alias`` renames the constructor's parameter.)"""
    return field(metadata={_META: Arg(kind, required, upstream)})


_C = TypeVar("_C")


@dataclass_transform(frozen_default=True, field_specifiers=(arg,))
def command(cls: type[_C]) -> type[_C]:
    """Make ``cls`` a command: a frozen, slotted dataclass whose fields are made by :func:`arg`."""
    return dataclass(frozen=True, slots=True)(cls)


def args(command: type[Command]) -> tuple[tuple[str, Arg], ...]:
    """The parameters of ``command`` in order: each field's name and its :class:`Arg`."""
    return tuple((f.name, _arg(f)) for f in fields(command))


def _arg(f: Field[Any]) -> Arg:
    spec = f.metadata[_META]
    assert isinstance(spec, Arg)
    return spec


@dataclass(frozen=True, slots=True)
class Command:
    """The validated parameters of a command; the subclass, named as the method, says which command."""


@command
class CallStart(Command):
    """Call ``caller``, and once it answers, connect it to ``callee``."""

    caller: str = arg(Kind.URI)
    """SIP, SIPS or tel URI of the first party, as the client sent it."""
    callee: str = arg(Kind.URI)
    """SIP, SIPS or tel URI of the second party, as the client sent it."""


@command
class CallBlindTransfer(Command):
    """Transfer one leg of a call to ``destination`` (RFC 5359 section 2.4)."""

    callid: str = arg(Kind.TEXT)
    """SIP Call-ID of the call."""
    leg: LegName = arg(Kind.LEG)
    """The party to transfer."""
    destination: str = arg(Kind.URI)
    """SIP, SIPS or tel URI of the transfer target."""


@command
class CallAttendedTransfer(Command):
    """Join leg ``leg_a`` of call A with leg ``leg_b`` of call B (RFC 5359 section 2.5)."""

    callid_a: str = arg(Kind.TEXT, upstream="callidA")
    """SIP Call-ID of call A."""
    leg_a: LegName = arg(Kind.LEG, upstream="legA")
    """The party of call A to transfer."""
    callid_b: str = arg(Kind.TEXT, upstream="callidB")
    """SIP Call-ID of call B."""
    leg_b: LegName = arg(Kind.LEG, upstream="legB")
    """The party of call B that the transferred party is connected to."""
    destination: str | None = arg(Kind.URI, required=False)
    """SIP, SIPS or tel URI of the destination; None means the URI of ``leg_b``."""


@command
class CallHold(Command):
    """Put one party of a call, or both, on hold (RFC 3264 section 8.4)."""

    callid: str = arg(Kind.TEXT)
    """SIP Call-ID of the call."""
    leg: LegName | None = arg(Kind.LEG, required=False)
    """The party to put on hold; None means both."""


@command
class CallUnHold(Command):
    """Resume one party of a held call, or both."""

    callid: str = arg(Kind.TEXT)
    """SIP Call-ID of the call."""
    leg: LegName | None = arg(Kind.LEG, required=False)
    """The party to resume; None means both."""


@command
class CallEnd(Command):
    """Hang up both legs of a call."""

    callid: str = arg(Kind.TEXT)
    """SIP Call-ID of the call."""


@dataclass(frozen=True, slots=True)
class Query(Command):
    """A method answered at once, in its response (no flow, no notifications of its own but a subscription's)."""


@dataclass(frozen=True, slots=True)
class CallList(Query):
    """The calls in progress, a page at a time, oldest first, and the event ``seq`` the page is consistent with."""

    state: str | None = arg(Kind.STATE, required=False)
    """Only calls in this state; None: all."""
    limit: int | None = arg(Kind.LIMIT, required=False)
    """Most calls in the page; None: 100."""
    cursor: str | None = arg(Kind.CURSOR, required=False)
    """The ``next_cursor`` of the previous page; None: the first page."""


@dataclass(frozen=True, slots=True)
class CallGet(Query):
    """One call, by the Call-ID of either of its legs."""

    callid: str = arg(Kind.TEXT)
    """SIP Call-ID of either leg."""


@dataclass(frozen=True, slots=True)
class Subscribe(Query):
    """Follow the calls' events (``CallEvent`` notifications), from the event after ``since`` if given."""

    since: int | None = arg(Kind.SEQ, required=False)
    """The ``seq`` of the last event the client has (a CallList's ``seq``); None: from now on."""
    calls: tuple[str, ...] | None = arg(Kind.CALLIDS, required=False)
    """Follow only these calls (either leg's Call-ID); None: every call."""


@dataclass(frozen=True, slots=True)
class Unsubscribe(Query):
    """Stop a subscription of this connection."""

    subscription: str = arg(Kind.TEXT)
    """The id ``Subscribe`` answered with."""


#: The most calls one CallList page holds, and how many when the client does not say.
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
