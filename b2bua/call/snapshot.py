"""What a client sees of a call: the Call and Leg objects of the live-state API (docs/API.md, "Live call state"),
as frozen values built from the call layer's objects, sans I/O.

Times are wall-clock seconds (the observer's clock, :class:`~b2bua.call.live.LiveCalls`); the API renders them
as RFC 3339. A leg's URIs are its dialog's (RFC 3261 section 12.1: From/To as that dialog sees them, the
party's Contact as remote target); before its dialog exists they come from the INVITE that will make it.
Its ``dialog`` state follows RFC 4235's coarse view: ``early`` until the INVITE is answered 2xx (and, for a
leg that received the INVITE, acknowledged), ``confirmed`` then, ``terminated`` once the session is over.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..sip import sdp
from ..sip.address import Destination
from ..sip.uri import host_reference
from .flows.base import Flow
from .leg import Leg, LegName


@dataclass(frozen=True, slots=True)
class LegView:
    """One party of a call as the API shows it."""

    callid: str
    """The Call-ID of this leg's dialog with the service."""
    local_uri: str
    """The From (our side) of requests the service sends in this dialog."""
    remote_uri: str
    """The To of those requests: the party's address with its tag."""
    remote_target: str
    """The party's Contact URI: where in-dialog requests go."""
    dialog: str
    """``early``, ``confirmed`` or ``terminated``."""
    held: bool
    """The service put this party on hold (CallHold) and has not resumed it."""
    direction: str | None
    """Media direction of the last SDP this party sent, first stream; None before it sent any."""
    transport: str
    """``udp`` or ``tcp``: how the dialog's INVITE came or went."""
    peer: str
    """``host:port`` of the next hop of that INVITE (the proxy, when there is one)."""


@dataclass(frozen=True, slots=True)
class CommandView:
    """The command running on a call."""

    cmd_id: str
    method: str


@dataclass(frozen=True, slots=True)
class CallView:
    """A call as the API shows it; ``legs`` in the order caller, callee, each present while it exists."""

    callid: str
    state: str
    created: float
    answered: float | None
    legs: tuple[tuple[LegName, LegView], ...]
    command: CommandView | None


#: The direction attribute lines (RFC 3264 section 5.1).
_DIRECTIONS = {f"a={d}".encode(): d for d in sdp.DIRECTIONS}


def first_direction(body: bytes | None) -> str | None:
    """The effective direction of the first media stream of ``body`` (RFC 3264 section 5.1: its own attribute,
    else the session's, else ``sendrecv``), None when there is no stream. A line scan, not a parse: it runs for
    every SDP a party sends, and the relay never parses a body it passes on (issue 17)."""
    if not body:
        return None
    session: str | None = None
    in_media = False
    for line in body.split(b"\n"):
        line = line.rstrip(b"\r \t")
        if line.startswith(b"m="):
            if in_media:
                break
            in_media = True
            continue
        found = _DIRECTIONS.get(line)
        if found is not None:
            if in_media:
                return found
            session = session or found
    return (session or "sendrecv") if in_media else None


def hop_text(hop: Destination | None) -> tuple[str, str]:
    """``(transport, "host:port")`` of a next hop; unknown ones as ``("udp", "")``."""
    if hop is None:
        return "udp", ""
    return hop.transport.lower(), f"{host_reference(hop.host)}:{hop.port}"


def leg_view(callid: str, leg: Leg, held: bool, direction: str | None, hop: Destination | None) -> LegView:
    """A leg's view from the leg and what the observer remembers of it (``direction``, ``hop``)."""
    local, remote, target, state = leg.parties()
    transport, peer = hop_text(hop)
    return LegView(callid, local, remote, target, state, held, direction, transport, peer)


def command_view(busy: object) -> CommandView | None:
    """The command a call is busy with (its ``busy`` flow), None when none runs."""
    if isinstance(busy, Flow) and not busy.done:
        return CommandView(busy.cmd_id, busy.name)
    return None
