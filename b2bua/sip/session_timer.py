"""Session timers (RFC 4028): the negotiation of Session-Expires, Min-SE and the refresher, and the deadline
of one dialog's timer. Sans-I/O: messages and ``now`` in, header fields, decisions and deadlines out.

Each leg of a bridged call is its own dialog with its own timer (RFC 7092 section 3: a B2BUA is a UA on
each side). On the caller's leg the service is the UAS of the INVITE (:func:`uas_decide`, section 9); on the
callee's leg it is the UAC (:func:`uac_headers`, :func:`uac_on_2xx`, :func:`uac_on_422`, sections 7.1-7.4).
The outcome is a :class:`Negotiated`: the interval and whether the service refreshes. :class:`SessionTimer`
turns that into one deadline: half the interval for the refresher's next refresh, and ``interval -
min(32, interval/3)`` after the last refresh for the other side's (section 10).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ParseError
from .grammar import Params
from .headers import parse_uint
from .identity_enum import IdentityEnum
from .message import Request, Response

#: The option tag of the extension (section 3), in Supported and Require.
OPTION_TAG = "timer"
#: The smallest Session-Expires and Min-SE the RFC allows (section 4: "MUST NOT be less than 90 seconds").
RFC_MIN_SE = 90
#: The largest delta-seconds read from the network (RFC 3261 section 25.1's 2**31 - 1 limit).
_MAX_INTERVAL = 2**31 - 1


@dataclass(frozen=True, slots=True)
class SessionTimerSettings:
    """What the service asks for and accepts (``[calls]`` settings, docs/configuration.md)."""

    #: The Session-Expires the service requests on the INVITEs it sends and grants on those it answers.
    session_expires: int = 1800
    #: The smallest interval the service accepts: a request asking less gets 422 (section 8.1).
    min_se: int = RFC_MIN_SE


class Refresher(IdentityEnum):
    """The ``refresher`` parameter of Session-Expires: which side of the INVITE transaction refreshes."""

    UAC = "uac"
    UAS = "uas"


@dataclass(frozen=True, slots=True)
class SessionExpires:
    """A Session-Expires header field: ``delta-seconds`` and its refresher, None when absent (section 4)."""

    interval: int
    refresher: Refresher | None = None

    def header(self) -> tuple[str, str]:
        refresher = f";refresher={self.refresher.value}" if self.refresher is not None else ""
        return "Session-Expires", f"{self.interval}{refresher}"


@dataclass(frozen=True, slots=True)
class Negotiated:
    """The timer of one dialog as agreed: its interval, and whether the service is the refresher."""

    interval: int
    we_refresh: bool

    def to_record(self) -> dict[str, object]:
        return {"interval": self.interval, "we_refresh": self.we_refresh}

    @classmethod
    def from_record(cls, record: object) -> Negotiated | None:
        """The :meth:`to_record` form back; None for anything else (the leg then runs without a timer)."""
        if not isinstance(record, dict):
            return None
        interval, we_refresh = record.get("interval"), record.get("we_refresh")
        if isinstance(interval, bool) or not isinstance(interval, int) or not isinstance(we_refresh, bool):
            return None
        if interval < 1:
            return None
        return cls(interval, we_refresh)


@dataclass(frozen=True, slots=True)
class Reject422:
    """Section 8.1/9: the request's Session-Expires is below our Min-SE: answer 422 with this Min-SE."""

    min_se: int

    def headers(self) -> list[tuple[str, str]]:
        return [("Min-SE", str(self.min_se))]


@dataclass(frozen=True, slots=True)
class Accept:
    """Section 9: answer the request; ``headers`` go in the 2xx, ``negotiated`` None: no timer on the dialog."""

    negotiated: Negotiated | None
    headers: tuple[tuple[str, str], ...] = ()


def supports_timer(message: Request | Response) -> bool:
    """Does ``message`` list ``timer`` in Supported or Require (section 7.1, 9)? The raw values are looked at
    first: most INVITEs name no ``timer`` at all and are not worth splitting into tokens."""
    h = message.headers
    if not any(OPTION_TAG in value.lower() for value in (*h.get_all("supported"), *h.get_all("require"))):
        return False
    try:
        return OPTION_TAG in message.tokens("supported") or OPTION_TAG in message.tokens("require")
    except ParseError:
        return False


def parse_session_expires(value: str) -> SessionExpires:
    """``Session-Expires: 1800;refresher=uac`` (section 4, compact form ``x``); raises :class:`ParseError`."""
    number, _, params = value.partition(";")
    interval = parse_uint(number, "Session-Expires", _MAX_INTERVAL)
    refresher = None
    if params:
        text = Params.parse(";" + params).get("refresher")
        if text is not None:
            lowered = text.lower()
            if lowered not in ("uac", "uas"):
                raise ParseError(f"bad Session-Expires refresher: {text!r}", header="Session-Expires")
            refresher = Refresher(lowered)
    if interval < 1:
        raise ParseError("Session-Expires of zero", header="Session-Expires")
    return SessionExpires(interval, refresher)


def session_expires_of(message: Request | Response) -> SessionExpires | None:
    """The message's Session-Expires, None when absent or unreadable (then the dialog has no timer)."""
    value = message.headers.get("session-expires")
    if value is None:
        return None
    try:
        return parse_session_expires(value)
    except ParseError:
        return None


def min_se_of(message: Request | Response) -> int | None:
    """The message's Min-SE (section 5), None when absent or unreadable."""
    value = message.headers.get("min-se")
    if value is None:
        return None
    try:
        return parse_uint(value.split(";", 1)[0], "Min-SE", _MAX_INTERVAL)
    except ParseError:
        return None


#: Section 9 as a table: (the UAC supports timer, the refresher its request asked for) -> (the refresher of
#: the 2xx, Require: timer in it). A UAC without support cannot refresh: the UAS does, and must not require
#: what the UAC lacks. A UAC with support that left the choice to us refreshes itself: the phone keeps its
#: dialog alive, the service only watches (less traffic through it).
UAS_REFRESHER: dict[tuple[bool, Refresher | None], tuple[Refresher, bool]] = {
    (True, Refresher.UAC): (Refresher.UAC, True),
    (True, Refresher.UAS): (Refresher.UAS, True),
    (True, None): (Refresher.UAC, True),
    (False, Refresher.UAC): (Refresher.UAS, False),
    (False, Refresher.UAS): (Refresher.UAS, False),
    (False, None): (Refresher.UAS, False),
}


def uas_decide(request: Request, settings: SessionTimerSettings) -> Reject422 | Accept:
    """The service answering an INVITE (or a refresh) it received (sections 8.1 and 9).

    A Session-Expires below our Min-SE gets 422 with our Min-SE. A request with Session-Expires gets a timer:
    the interval is the request's, or ours when ours is shorter but still at least the request's Min-SE
    (section 9 lets the UAS reduce it), the refresher from :data:`UAS_REFRESHER`. A request without
    Session-Expires from a UAC that supports timer gets one in the 2xx with the UAC as refresher (section 9
    lets the UAS start the timer); one from a UAC without support is bridged unchanged: no timer on this leg
    (the idle reaper watches it instead)."""
    asked = session_expires_of(request)
    supported = supports_timer(request)
    if asked is None:
        if not supported:
            return Accept(None)
        interval = max(settings.session_expires, min_se_of(request) or 0)
        refresher, require = UAS_REFRESHER[(True, None)]
        return _accept(interval, refresher, require)
    if asked.interval < settings.min_se:
        return Reject422(settings.min_se)
    interval = asked.interval
    if settings.session_expires < interval:
        interval = max(settings.session_expires, min_se_of(request) or 0, settings.min_se)
    refresher, require = UAS_REFRESHER[(supported, asked.refresher)]
    return _accept(interval, refresher, require)


def _accept(interval: int, refresher: Refresher, require: bool) -> Accept:
    headers = [SessionExpires(interval, refresher).header()]
    if require:
        headers.append(("Require", OPTION_TAG))
    return Accept(Negotiated(interval, refresher is Refresher.UAS), tuple(headers))


def uac_headers(settings: SessionTimerSettings) -> list[tuple[str, str]]:
    """The header fields of an INVITE the service sends (section 7.1): Supported: timer, Session-Expires (no
    refresher: the UAS picks, section 7.1) and Min-SE."""
    return [("Supported", OPTION_TAG), ("Session-Expires", str(settings.session_expires)),
            ("Min-SE", str(settings.min_se))]


def uac_on_2xx(response: Response) -> Negotiated | None:
    """The timer a 2xx to the service's INVITE (or refresh) set up (section 7.2): its Session-Expires with the
    refresher it names (the UAC when it names none); no Session-Expires: no timer on the dialog."""
    granted = session_expires_of(response)
    if granted is None:
        return None
    return Negotiated(granted.interval, granted.refresher is not Refresher.UAS)


def uac_on_422(response: Response, request: Request) -> list[tuple[str, str]] | None:
    """Section 7.4: the header fields to send ``request`` again with after the 422 ``response``: Min-SE from the
    422, Session-Expires at least that. None when there is no point: the request had no Session-Expires, the
    422 no Min-SE, or one not above what was sent (a second 422 would follow; so the retry happens once)."""
    asked = session_expires_of(request)
    wanted = min_se_of(response)
    if asked is None or wanted is None or wanted <= (min_se_of(request) or 0):
        return None
    return [("Session-Expires", str(max(asked.interval, wanted))), ("Min-SE", str(wanted))]


def refresh_headers(negotiated: Negotiated, min_se: int) -> list[tuple[str, str]]:
    """The header fields of a refresh the service sends as the refresher (section 7.4): the interval with
    ``refresher=uac`` (the service, the UAC of the refresh, keeps refreshing), Supported: timer, and Min-SE.

    Section 7.4 has a refresh carry Min-SE so a proxy or the peer cannot lower the interval below it on the
    way. Its value here is the service's own Min-SE (the smallest interval it accepts), capped at the agreed
    interval, which a Min-SE must not exceed (section 5); the dialog's earlier 422s are not tracked, since
    the agreed interval already satisfied them and is what the refresh asks for again."""
    return [("Supported", OPTION_TAG), SessionExpires(negotiated.interval, Refresher.UAC).header(),
            ("Min-SE", str(min(max(min_se, RFC_MIN_SE), negotiated.interval)))]


class SessionTimer:
    """One dialog's timer (section 10): :meth:`deadline` is when something must happen, :meth:`due` what.

    The refresher refreshes at half the interval; the other side gives up ``interval - min(32, interval/3)``
    after the last refresh and sends BYE, as does the refresher whose refresh is still unanswered (``pending``)
    by then. :meth:`refreshed` restarts it after any successful refresh (a 2xx to a re-INVITE or UPDATE either
    way)."""

    __slots__ = ("last", "negotiated", "pending")

    def __init__(self, negotiated: Negotiated, now: float) -> None:
        self.negotiated = negotiated
        #: When the dialog was last refreshed (set up, or a 2xx to a refresh).
        self.last = now
        #: The service's refresh is out and unanswered.
        self.pending = False

    def __repr__(self) -> str:
        who = "us" if self.negotiated.we_refresh else "peer"
        return f"<SessionTimer {self.negotiated.interval}s by {who}>"

    def deadline(self) -> float:
        interval = self.negotiated.interval
        if self.negotiated.we_refresh and not self.pending:
            return self.last + interval / 2
        return self.last + interval - min(32, interval / 3)

    def refreshed(self, now: float, negotiated: Negotiated | None = None) -> None:
        if negotiated is not None:
            self.negotiated = negotiated
        self.last = now

    def due(self, now: float) -> str | None:
        """``"refresh"`` (send one), ``"expired"`` (send BYE) or None (not yet: :meth:`deadline` moved)."""
        if now < self.deadline():
            return None
        return "refresh" if self.negotiated.we_refresh and not self.pending else "expired"


__all__ = [
    "OPTION_TAG", "RFC_MIN_SE", "UAS_REFRESHER", "Accept", "Negotiated", "Refresher", "Reject422", "SessionExpires",
    "SessionTimer", "SessionTimerSettings", "min_se_of", "parse_session_expires", "refresh_headers",
    "session_expires_of", "supports_timer", "uac_headers", "uac_on_2xx", "uac_on_422", "uas_decide",
]
