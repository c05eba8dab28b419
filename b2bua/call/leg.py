"""One leg of a bridged call: a SIP session plus what the B2BUA remembers about the SDP it exchanged.

The B2BUA relays SDP untouched. When it sends a leg an SDP of its own making (hold, resume), that
leg has seen an ``o=`` version from us that the other party never sent, so from then on every SDP
relayed to that leg has its version shifted to stay above what the leg already saw (RFC 3264
section 8: each new offer's version is one more than the previous one). Only the version changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Literal, get_args

from ..errors import ParseError
from ..sip import sdp
from ..sip.refer import ReferSubscription
from ..sip.session import Session

if TYPE_CHECKING:
    from .call import Call

#: Which party of a call a leg is: the one called first (``caller``, the A-leg) or second (``callee``).
LegName = Literal["caller", "callee"]
#: Both, in the order a command on "both" acts on them.
LEG_NAMES: Final[tuple[LegName, ...]] = get_args(LegName)


class Leg:
    """``caller`` (the A-leg, the phone that called or was called first) or ``callee`` (the B-leg)."""

    __slots__ = ("answers_to", "call", "held", "last_source", "name", "received_sdp", "refers", "sent_origin",
                 "sent_sdp", "sent_version", "session", "source_origin", "version_offset")

    def __init__(self, call: Call, name: LegName, session: Session, *, answers_to: Leg | None = None) -> None:
        self.call = call
        self.name: LegName = name
        self.session = session
        #: The leg whose INVITE this leg's INVITE forwards (the callee's: the caller): the 1xx, 2xx or failure
        #: this leg gets is that leg's answer. None for a leg nobody waits on (the service's own INVITE, a
        #: leg that received its INVITE).
        self.answers_to = answers_to
        #: The last SDP this party sent us (offer or answer).
        self.received_sdp: bytes | None = None
        #: The last SDP we sent this party, and its ``o=`` version.
        self.sent_sdp: bytes | None = None
        self.sent_version: int | None = None
        #: Added to the version of SDP relayed to this party once we sent one of our own.
        self.version_offset = 0
        #: The o= username and session id this party knows (from the first SDP it got from us), the
        #: origin of the SDP we relay to it now, and that SDP as its author sent it.
        self.sent_origin: tuple[str, str] | None = None
        self.source_origin: tuple[str, str] | None = None
        self.last_source: bytes | None = None
        #: The service put this party on hold (CallHold) and has not resumed it.
        self.held = False
        #: Subscriptions of the REFERs the service sent this party: their NOTIFYs are the service's,
        #: never relayed to the other party, even after the transfer's command is over.
        self.refers: list[ReferSubscription] = []

    def __repr__(self) -> str:
        return f"<Leg {self.name} {self.session.call_id} {self.session.state.value}>"

    @property
    def call_id(self) -> str:
        return self.session.call_id

    @property
    def other(self) -> Leg | None:
        return self.call.other(self)

    def remember_received(self, body: bytes, content_type: str | None, *, by_command: bool = False) -> None:
        """The party sent ``body``; ``by_command`` when it answers an offer of the service's own (CallHold)."""
        if body and _is_sdp(content_type):
            self.received_sdp = body
            observer = self.call.observer
            if observer is not None:
                observer.sdp_received(self, by_command=by_command)

    def outgoing_sdp(self, body: bytes) -> bytes:
        """``body`` (SDP from the other party) as this leg must get it: relayed as is, unless the service
        already sent this leg an SDP of its own or one from another party; then the ``o=`` line keeps
        the origin this leg knows and the version goes on from the last one it saw."""
        return self._to_leg(body, own=False)

    def own_offer(self, body: bytes) -> bytes:
        """An SDP of our own making for this leg (hold, resume), built from the other party's SDP as that
        party sent it: the version goes one above the last one this leg saw, and later relays follow."""
        return self._to_leg(body, own=True)

    def _to_leg(self, body: bytes, *, own: bool) -> bytes:
        """Only the ``o=`` line is read: a relayed SDP is the parties' business, and one that cannot be
        rewritten (its ``o=`` line, or the rest where the version must move) goes as is and changes
        nothing here (our own offers were built from a parsed SDP and must parse). The leg's memory is
        written only once the body is made, so a body that fails leaves it as it was (issue 17)."""
        try:
            origin = sdp.parse(body).origin if own else sdp.origin_of(body)
        except ParseError:
            if own:
                raise
            return body
        source = (origin.username, origin.sess_id)
        version = origin.sess_version
        sent_origin = self.sent_origin or source
        source_origin = self.source_origin or source
        offset = self.version_offset
        if source != source_origin:
            # Another party's SDP from now on (transfer, Replaces): continue this leg's session.
            source_origin = source
            offset = (self.sent_version or 0) + 1 - version
        wanted = version + offset
        if self.sent_version is not None and wanted <= self.sent_version and (own or body != self.last_source):
            wanted = self.sent_version + 1
            offset = wanted - version
        try:
            if source != sent_origin:
                out = sdp.set_origin(body, sent_origin[0], sent_origin[1], wanted)
            elif wanted != version:
                out = sdp.bump_version(body, wanted)
            else:
                out = body
        except ParseError:
            if own:
                raise
            return body
        self.sent_origin, self.source_origin, self.version_offset = sent_origin, source_origin, offset
        self.last_source = body
        self.sent_sdp = out
        self.sent_version = wanted
        return out


def _is_sdp(content_type: str | None) -> bool:
    return content_type is not None and content_type.split(";", 1)[0].strip().lower() == "application/sdp"
