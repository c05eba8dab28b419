"""Which transaction a message belongs to (RFC 3261 sections 17.1.3, 17.2.3 and 9.2).

Keys are frozen dataclasses, so the layer keeps ``dict[ClientKey, ClientTransaction]`` and
``dict[ServerKey, ServerTransaction]`` and finds a transaction with one lookup.

* A response matches a client transaction by its top Via branch and its CSeq method (section 17.1.3):
  a CANCEL shares its INVITE's branch, so the method keeps the two apart.
* A request matches a server transaction by branch, sent-by and method when the branch starts with the
  magic cookie, ACK counting as INVITE (section 17.2.3). A CANCEL keeps its own method, so it gets a
  transaction of its own; :func:`cancel_target_key` gives the INVITE transaction it cancels (section 9.2).
* Without the cookie the RFC 2543 rules apply: Request-URI, From tag, Call-ID, CSeq number, top Via and
  method, plus the To tag. The To tag an ACK carries is the one of the response the server sent, which
  the INVITE that created the transaction did not have, so :class:`ServerKey2543` leaves the To tag out
  for INVITE and ACK (and for a CANCEL's target) and :func:`to_tag_matches` compares it afterwards.
  The other methods keep the To tag in the key.

Header values compare as received (host names in sent-by lowercased): retransmissions repeat them byte
for byte, and RFC 3261 section 17.1.1.3 has the ACK repeat the INVITE's Request-URI and Via.
Branches compare case-sensitively, as every deployed stack does.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ParseError
from .headers import MAGIC_COOKIE, Via
from .message import Message, Request, Response


@dataclass(frozen=True, slots=True)
class ClientKey:
    """A client transaction's key: the branch it put in its Via and the CSeq method (section 17.1.3)."""

    branch: str
    method: str


@dataclass(frozen=True, slots=True)
class ServerKey3261:
    """A server transaction's key when the branch has the magic cookie (section 17.2.3)."""

    branch: str
    #: The sent-by host of the top Via, in lower case.
    host: str
    #: The sent-by port of the top Via (``None`` when absent).
    port: int | None
    #: The request's method, ACK counted as INVITE.
    method: str


@dataclass(frozen=True, slots=True)
class ServerKey2543:
    """A server transaction's key for a request from an RFC 2543 element (no magic cookie, section 17.2.3)."""

    request_uri: str
    from_tag: str | None
    call_id: str
    cseq_number: int
    #: The whole top Via value (sent-by and parameters), normalized.
    via: str
    #: The request's method, ACK counted as INVITE.
    method: str
    #: The To tag; ``None`` for INVITE and ACK, whose tags :func:`to_tag_matches` compares.
    to_tag: str | None


#: The key of a server transaction.
ServerKey = ServerKey3261 | ServerKey2543


def client_key(msg: Message) -> ClientKey:
    """The key of the client transaction a response belongs to (or of the one a request creates).

    A message without a branch gets the empty branch, which no client transaction has.
    """
    cseq = msg.cseq
    if cseq is None:
        raise ParseError("no CSeq", header="CSeq")
    return ClientKey(msg.branch or "", cseq.method)


def server_key(request: Request) -> ServerKey:
    """The key of the server transaction ``request`` belongs to (section 17.2.3)."""
    return _server_key(request, "INVITE" if request.method == "ACK" else request.method)


def cancel_target_key(cancel: Request) -> ServerKey:
    """The key of the INVITE server transaction ``cancel`` refers to (section 9.2: the INVITE's rules)."""
    return _server_key(cancel, "INVITE")


def _server_key(request: Request, method: str) -> ServerKey:
    via = request.top_via
    if via is None:
        raise ParseError("no Via", header="Via")
    branch = via.branch
    if branch is not None and branch.startswith(MAGIC_COOKIE):
        return ServerKey3261(branch, via.host.lower(), via.port, method)
    cseq = request.cseq
    call_id = request.call_id
    if cseq is None or call_id is None:
        raise ParseError("no CSeq or Call-ID")
    return ServerKey2543(
        request_uri=request.uri.strip(),
        from_tag=request.from_tag,
        call_id=call_id,
        cseq_number=cseq.number,
        via=_via_text(via),
        method=method,
        to_tag=None if method == "INVITE" else request.to_tag,
    )


def _via_text(via: Via) -> str:
    port = "" if via.port is None else f":{via.port}"
    return f"{via.protocol.upper()}/{via.transport.upper()} {via.host.lower()}{port}{via.params}"


def to_tag_matches(request: Request, original: Request, last_response: Response | None) -> bool:
    """The To-tag half of RFC 2543 matching, for a request whose :func:`server_key` (or, for a CANCEL,
    :func:`cancel_target_key`) equals an INVITE transaction's key.

    An ACK matches when its To tag is the tag of the response the transaction sent (``last_response``);
    an INVITE retransmission or a CANCEL matches when its To tag is the original INVITE's. With a magic
    cookie branch the key already decides and this returns ``True``.
    """
    branch = request.branch
    if branch is not None and branch.startswith(MAGIC_COOKIE):
        return True
    if request.method == "ACK" and last_response is not None:
        return request.to_tag == last_response.to_tag
    return request.to_tag == original.to_tag


__all__ = [
    "ClientKey",
    "ServerKey",
    "ServerKey2543",
    "ServerKey3261",
    "cancel_target_key",
    "client_key",
    "server_key",
    "to_tag_matches",
]
