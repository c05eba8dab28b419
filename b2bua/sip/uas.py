"""The UAS core's request checks and response construction (RFC 3261 section 8.2).

:func:`check_request` applies the section 8.2 checks in the RFC's order and returns the response the
request deserves when it fails one (405, 416, 482 is the layer's since it needs transaction state,
420, 415, 406), or ``None`` when the request may proceed. :func:`make_response` builds a response per
section 8.2.6, and :func:`salvage_response` answers 400/505 to a request that did not parse, when enough
of it survives to route the answer (RFC 4475 section 3.1.2).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import ParseError
from .headers import Via, parse_accept, parse_top_via
from .message import COMPACT_FORMS, REASONS, Field, Headers, Request, Response, canonical_name, header_key
from .parser import KNOWN_METHODS
from .uri import SUPPORTED_SCHEMES, AbsoluteUri, parse_uri

#: Headers a response copies from its request (section 8.2.6.2), in the order they are written.
_COPIED = ("via", "from", "to", "call-id", "cseq")
_COPIED_KEYS = frozenset(_COPIED)


@dataclass(frozen=True, slots=True)
class UasPolicy:
    """What this UAS handles: the methods it allows, the extensions it supports, the bodies it reads."""

    #: Methods answered by the service; others get 405 (known) or 501 (unknown), section 8.2.1.
    allowed: frozenset[str] = frozenset(
        {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "UPDATE", "INFO", "REFER", "NOTIFY", "PRACK"}
    )
    #: Option tags understood in Require (section 8.2.2.3).
    supported: frozenset[str] = frozenset({"replaces", "norefersub", "timer"})
    #: Body types read (section 8.2.3); a body of another type gets 415 with Accept.
    accepted: tuple[str, ...] = ("application/sdp", "message/sipfrag", "application/dtmf-relay", "text/plain",
                                 "multipart/mixed")

    @property
    def allow_header(self) -> str:
        order = ("INVITE", "ACK", "CANCEL", "OPTIONS", "BYE", "REFER", "NOTIFY", "UPDATE", "INFO", "PRACK")
        return ", ".join([m for m in order if m in self.allowed] + sorted(self.allowed.difference(order)))

    @property
    def accept_header(self) -> str:
        return ", ".join(self.accepted)


DEFAULT_POLICY = UasPolicy()


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    fields: Iterable[Field] = (),
) -> Response:
    """A response to ``request`` (section 8.2.6): Via, From, To, Call-ID and CSeq copied, a To tag added
    when the request had none and the status is above 100, Timestamp echoed on 100 (section 8.2.6.1).

    ``headers`` are added by name and value; ``fields``, after them, as they are (see :func:`header_fields`)."""
    tagged = to_tag is not None and status > 100 and request.to_tag is None
    seen_to = False
    out: list[Field] = []
    for f in request.headers._fields:
        key = f[0]
        if key in _COPIED_KEYS:
            if key == "to" and tagged:
                if seen_to:
                    continue  # one To in the response, the first one, tagged in its place
                seen_to = True
                f = ("to", f"{f[1]};tag={to_tag}", None)
            out.append(f)
    if tagged and not seen_to:
        out.append(("to", f";tag={to_tag}", None))
    if status == 100:
        stamp = request.headers.get("timestamp")
        if stamp is not None:
            out.append(("timestamp", stamp, None))
    for name, value in headers:
        out.append((header_key(name), value, None))
    out.extend(fields)
    return Response(status, reason or REASONS.get(status, ""), Headers(out), body)


def header_fields(headers: Iterable[tuple[str, str]]) -> list[Field]:
    """Header fields rendered once, for headers added to many responses (Server, Allow ...): each field's
    line is written out ahead, so serializing it is a copy."""
    return [(header_key(name), value, f"{canonical_name(name)}: {value}") for name, value in headers]


def check_request(request: Request, policy: UasPolicy = DEFAULT_POLICY) -> Response | None:
    """The checks of section 8.2.1 to 8.2.3 in order; the failing check's response, or ``None``.

    ACK never gets a response (section 17.2.3); CANCEL skips the Require check (section 8.2.2.3).
    The transaction layer runs the two halves itself, with the merged-request check (section 8.2.2.2,
    which needs transaction state) between them.
    """
    return check_method_and_uri(request, policy) or check_extensions_and_body(request, policy)


def check_method_and_uri(request: Request, policy: UasPolicy = DEFAULT_POLICY) -> Response | None:
    """Sections 8.2.1 (405/501 with Allow) and 8.2.2.1 (416): the checks that come before section 8.2.2.2."""
    method = request.method
    if method == "ACK":
        return None
    if method not in policy.allowed:
        if method in KNOWN_METHODS:
            return make_response(request, 405, headers=[("Allow", policy.allow_header)])
        return make_response(request, 501, headers=[("Allow", policy.allow_header)])
    try:
        uri = request.request_uri
    except ParseError:
        return make_response(request, 400, "Bad Request-URI")
    if isinstance(uri, AbsoluteUri) or uri.scheme not in SUPPORTED_SCHEMES:
        return make_response(request, 416)
    return None


def check_extensions_and_body(request: Request, policy: UasPolicy = DEFAULT_POLICY) -> Response | None:
    """Sections 8.2.2.3 (420 with Unsupported) and 8.2.3 (415 with Accept or Accept-Encoding), then 406 for an
    INVITE whose Accept rules out SDP: the checks that come after section 8.2.2.2."""
    method = request.method
    if method == "ACK":
        return None
    if method != "CANCEL":
        try:
            required = request.tokens("require")
        except ParseError:
            return make_response(request, 400, "Bad Require")
        unknown = [tag for tag in required if tag.lower() not in policy.supported]
        if unknown:
            return make_response(request, 420, headers=[("Unsupported", ", ".join(unknown))])
    if request.body:
        try:
            ctype = request.content_type
        except ParseError:
            return make_response(request, 400, "Bad Content-Type")
        if ctype is None or ctype.mime not in policy.accepted:
            return make_response(request, 415, headers=[("Accept", policy.accept_header)])
        encoding = request.headers.get("content-encoding")
        if encoding and encoding.lower() != "identity":
            return make_response(request, 415, headers=[("Accept-Encoding", "identity")])
    refusal = _check_contact(request)
    if refusal is not None:
        return refusal
    if method == "INVITE" and "accept" in request.headers:
        try:
            accepted = parse_accept(",".join(request.headers.get_all("accept")))
        except ParseError:
            return make_response(request, 400, "Bad Accept")
        if not any(m.matches("application/sdp") for m in accepted):
            return make_response(request, 406, headers=[("Accept", "application/sdp")])
    return None


def _check_contact(request: Request) -> Response | None:
    """400 for a Contact that is not a name-addr with a SIP or SIPS URI (section 8.1.1.8), and
    for a new INVITE without one: the Contact becomes the dialog's remote target (section 12.1.1), and a
    B2BUA that forwarded such a request would only find out once the callee answered (issue 17)."""
    if "contact" not in request.headers:
        # RFC 2543 required none (RFC 4475 section 3.4.1 asks that such an INVITE be accepted; its dialog
        # then targets its From URI), so only a sender that claims RFC 3261 (magic cookie) is refused.
        via = request.top_via
        return make_response(request, 400, "Missing Contact") if request.method == "INVITE" and \
            request.to_tag is None and via is not None and via.rfc3261 else None
    return None if contact_is_target(request) else make_response(request, 400, "Bad Contact")


def contact_is_target(message: Request | Response) -> bool:
    """Whether the first Contact can be a dialog's remote target: a SIP or SIPS URI (sections 8.1.1.8,
    12.1), or no Contact at all. ``*`` is REGISTER's alone (section 10.2.2), and the service takes no
    REGISTER (405 before this check), so it is refused too."""
    try:
        contact = message.contact
        if contact is None:
            return True
        if contact.star:
            return False
        uri = parse_uri(contact.uri_text)
    except ParseError:
        return False
    return not isinstance(uri, AbsoluteUri) and uri.scheme in ("sip", "sips")


def salvage_response(data: bytes, error: ParseError) -> Response | None:
    """A 400/505 (``error.status``) for a request that failed to parse, or ``None`` when it cannot be routed.

    The response needs a usable top Via; From, To, Call-ID and CSeq are copied raw when present.
    Responses and ACKs never get an answer (sections 18.1.2, 17.1.1.3): they return ``None``.
    """
    data = data.lstrip(b"\r\n")  # CRLFs before the start line are ignored (section 7.5)
    end = data.find(b"\r\n\r\n")
    head = (data[:end] if end >= 0 else data).decode("utf-8", "replace")
    lines = head.replace("\r\n", "\n").split("\n")
    while lines and not lines[0]:
        del lines[0]
    if not lines or lines[0][:4].upper() == "SIP/" or lines[0][:4] == "ACK ":
        return None  # a response, or an ACK: neither is ever answered (sections 17.1.1.3, 8.2.7)
    fields: list[Field] = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            continue
        key = name.strip().lower()
        key = COMPACT_FORMS.get(key, key)
        if key in _COPIED:
            fields.append((key, value.strip(), None))
    vias = [f for f in fields if f[0] == "via"]
    top = _routable_via(vias[0][1]) if vias else None
    if top is None:
        return None
    status = error.status if 400 <= error.status < 700 else 400
    reason = REASONS.get(status, "Bad Request")
    if status == 400 and error.reason:
        reason = f"Bad Request ({_safe_reason(error.reason)})"
    response = Response(status, reason, Headers(fields))
    response.headers._cache["top-via"] = top
    return response


def _routable_via(value: str) -> Via | None:
    """The top Via, or, when its parameters are broken, its sent-protocol and sent-by alone: enough to
    route a 400 back (section 18.2.2) for a request whose Via is what is wrong (RFC 4475 section 3.1.2.1)."""
    for text in (value, value.split(";", 1)[0].split(",", 1)[0]):
        try:
            return parse_top_via(text)
        except ParseError:
            continue
    return None


def _safe_reason(text: str) -> str:
    """A reason phrase without control characters, short enough for one line."""
    return "".join(c if c.isprintable() else "?" for c in text)[:80]
