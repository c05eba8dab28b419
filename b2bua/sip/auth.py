"""SIP digest authentication, client side (RFC 3261 section 22, RFC 8760, RFC 7616, RFC 2617).

Parses WWW-Authenticate / Proxy-Authenticate challenges, builds Authorization / Proxy-Authorization
values, and :class:`DigestClient` decides whether a 401/407 deserves a retry. Sans-I/O: the cnonce
comes from an injected factory, so every output is reproducible.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..errors import ParseError
from .grammar import TOKEN_CHARS, WS, is_token, quote, split_commas, unquote

#: Digest hash algorithms (RFC 7616 section 6.1) mapped to hashlib names, strongest first.
_HASHES = {"SHA-512-256": "sha512_256", "SHA-256": "sha256", "MD5": "md5"}
_CANONICAL = {name.upper(): name for base in _HASHES for name in (base, base + "-sess")}
_TOKEN68 = re.compile(r"[A-Za-z0-9._~+/-]+=*")
_NC = re.compile(r"[0-9a-fA-F]{8}")
#: Unquoted auth-param values: a token, leniently widened with characters servers send bare.
_BARE_VALUE_CHARS = TOKEN_CHARS | frozenset("/:@[]?=")

#: The qop values this client can compute, in order of preference (RFC 7616 section 3.4.3).
SUPPORTED_QOP = ("auth", "auth-int")


def _hash_name(algorithm: str) -> str | None:
    """The hashlib name behind a Digest algorithm (``-sess`` variants included), None if unsupported."""
    canonical = _CANONICAL.get(algorithm.upper())
    if canonical is None:
        return None
    name = _HASHES[canonical.removesuffix("-sess")]
    return name if name in hashlib.algorithms_available else None


def _rank(algorithm: str) -> int:
    """Lower is stronger; unknown algorithms sort last."""
    base = _CANONICAL.get(algorithm.upper(), "").removesuffix("-sess")
    return list(_HASHES).index(base) if base in _HASHES else len(_HASHES)


def _h(hash_name: str, data: str | bytes) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.new(hash_name, raw).hexdigest()


@dataclass(frozen=True, slots=True)
class Challenge:
    """One WWW-Authenticate / Proxy-Authenticate challenge (RFC 7616 section 3.3, RFC 3261 section 22.4).

    Non-Digest schemes keep only ``scheme``, ``realm`` (when given), ``params`` and ``token68``.
    """

    scheme: str
    #: The protection space; credentials are chosen by it (RFC 3261 section 22.1).
    realm: str = ""
    nonce: str = ""
    #: Echoed unchanged in the answer.
    opaque: str | None = None
    #: Canonical spelling when known (``MD5``, ``SHA-256-sess``...), else as received.
    algorithm: str = "MD5"
    #: The offered qop values, lower-cased, in the server's order; empty means RFC 2069 mode.
    qop: tuple[str, ...] = ()
    #: The previous nonce was merely too old: retry with this one (RFC 7616 section 3.3).
    stale: bool = False
    domain: tuple[str, ...] = ()
    #: The server wants ``username`` hashed (RFC 7616 section 3.4.4).
    userhash: bool = False
    #: Every parameter as received: lower-cased name, unquoted value.
    params: tuple[tuple[str, str], ...] = ()
    token68: str | None = None

    @property
    def is_digest(self) -> bool:
        return self.scheme.lower() == "digest"

    @property
    def supported(self) -> bool:
        """True when :func:`build_authorization` can answer this challenge."""
        qop_ok = not self.qop or any(q in self.qop for q in SUPPORTED_QOP)
        return self.is_digest and _hash_name(self.algorithm) is not None and qop_ok

    def param(self, name: str) -> str | None:
        """The unquoted value of parameter ``name`` (case-insensitive), None when absent."""
        lname = name.lower()
        return next((value for key, value in self.params if key == lname), None)


@dataclass(frozen=True, slots=True)
class Credentials:
    """A username and password, for one ``realm`` or (``None``) for any realm (RFC 3261 section 22.1)."""

    username: str
    password: str = field(repr=False)
    realm: str | None = None


@dataclass(frozen=True, slots=True)
class DigestAuthorization:
    """A parsed Authorization / Proxy-Authorization Digest value (RFC 7616 section 3.4)."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    cnonce: str | None = None
    #: The single qop chosen by the client, lower-cased; None in RFC 2069 mode.
    qop: str | None = None
    #: The nonce count as written: 8 hex digits.
    nc: str | None = None
    opaque: str | None = None
    userhash: bool = False
    params: tuple[tuple[str, str], ...] = ()


_AuthItem = tuple[str, str | None, list[tuple[str, str]]]


def _auth_param(text: str) -> tuple[str, str] | None:
    """``name = value`` as (lower-cased name, unquoted value); None when ``text`` is not shaped like one."""
    name, eq, value = text.partition("=")
    name = name.strip(WS)
    if not eq or not is_token(name):
        return None
    value = value.strip(WS)
    if value.startswith('"'):
        return name.lower(), unquote(value)
    if value and all(c in _BARE_VALUE_CHARS for c in value):
        return name.lower(), value
    raise ParseError(f"bad value for auth-param {name!r}: {value!r}")


def _parse_auth_list(value: str) -> list[_AuthItem]:
    """Split a header value into (scheme, token68, params) items (RFC 7235 section 2.1, RFC 3261 section 25.1)."""
    items: list[_AuthItem] = []
    for element in split_commas(value):
        param = _auth_param(element)
        if param is not None:
            if not items:
                raise ParseError(f"auth-param before any scheme: {value!r}")
            items[-1][2].append(param)
            continue
        scheme, *rest = element.split(None, 1)
        if not is_token(scheme):
            raise ParseError(f"bad auth-scheme {scheme!r}")
        token68: str | None = None
        params: list[tuple[str, str]] = []
        if rest:
            if _TOKEN68.fullmatch(rest[0]):
                token68 = rest[0]
            else:
                first = _auth_param(rest[0])
                if first is None:
                    raise ParseError(f"bad auth-param {rest[0]!r}")
                params.append(first)
        items.append((scheme, token68, params))
    return items


def _param_dict(params: list[tuple[str, str]]) -> dict[str, str]:
    found = dict(params)
    if len(found) != len(params):
        raise ParseError("auth-param given twice")
    return found


def _flag(value: str | None) -> bool:
    return value is not None and value.lower() == "true"


def _challenge(item: _AuthItem) -> Challenge:
    scheme, token68, params = item
    found = _param_dict(params)
    if scheme.lower() != "digest":
        return Challenge(scheme, realm=found.get("realm", ""), params=tuple(params), token68=token68)
    if token68 is not None:
        raise ParseError("Digest challenge with a token68")
    if "realm" not in found or "nonce" not in found:
        raise ParseError("Digest challenge without realm or nonce")
    algorithm = found.get("algorithm", "MD5")
    return Challenge(
        "Digest",
        realm=found["realm"],
        nonce=found["nonce"],
        opaque=found.get("opaque"),
        algorithm=_CANONICAL.get(algorithm.upper(), algorithm),
        qop=tuple(q.strip(WS).lower() for q in found.get("qop", "").split(",") if q.strip(WS)),
        stale=_flag(found.get("stale")),
        domain=tuple(found.get("domain", "").split()),
        userhash=_flag(found.get("userhash")),
        params=tuple(params),
    )


def parse_challenges(values: Iterable[str]) -> list[Challenge]:
    """Every challenge in some WWW-Authenticate / Proxy-Authenticate values, in order (RFC 7235 section 4.1)."""
    return [_challenge(item) for value in values for item in _parse_auth_list(value)]


def parse_challenge(value: str) -> Challenge:
    """The single challenge in one header value (RFC 3261 section 25.1 ``challenge``); ParseError otherwise."""
    challenges = parse_challenges([value])
    if len(challenges) != 1:
        raise ParseError(f"expected one challenge, found {len(challenges)}")
    return challenges[0]


def select_challenge(challenges: Iterable[Challenge], realm: str | None = None) -> Challenge | None:
    """The supported Digest challenge to answer, for ``realm`` when given.

    Strongest algorithm first (SHA-512-256, SHA-256, then MD5), server order among equals: RFC 8760
    section 2.4 and RFC 7616 section 3.7 let local policy override the topmost-first rule, and ours
    refuses a downgrade by a reordering middlebox.
    """
    usable = [c for c in challenges if c.supported and (realm is None or c.realm == realm)]
    return min(usable, key=lambda c: _rank(c.algorithm), default=None)


def digest_response(
    *, algorithm: str, username: str, password: str, realm: str, nonce: str, method: str, uri: str,
    qop: str | None = None, nc: str = "", cnonce: str = "", body: bytes = b"",
) -> str:
    """The request-digest (RFC 7616 section 3.4.1; RFC 2617 section 3.2.2.1 and RFC 2069 when ``qop`` is None)."""
    hash_name = _hash_name(algorithm)
    if hash_name is None:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    ha1 = _h(hash_name, f"{username}:{realm}:{password}")
    if algorithm.lower().endswith("-sess"):
        ha1 = _h(hash_name, f"{ha1}:{nonce}:{cnonce}")
    if qop is None or qop == "auth":
        ha2 = _h(hash_name, f"{method}:{uri}")
    elif qop == "auth-int":
        ha2 = _h(hash_name, f"{method}:{uri}:{_h(hash_name, body)}")
    else:
        raise ValueError(f"unsupported qop {qop!r}")
    if qop is None:
        return _h(hash_name, f"{ha1}:{nonce}:{ha2}")
    return _h(hash_name, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def _username_field(algorithm: str, username: str, realm: str, userhash: bool) -> str:
    """The ``username`` to send: hashed with the realm when ``userhash`` (RFC 7616 section 3.4.4)."""
    hash_name = _hash_name(algorithm)
    return _h(hash_name, f"{username}:{realm}") if userhash and hash_name else username


def build_authorization(
    challenge: Challenge, credentials: Credentials, method: str, uri: str, *, nc: int, cnonce: str, body: bytes = b""
) -> str:
    """The Authorization / Proxy-Authorization value answering ``challenge`` (RFC 3261 section 22.4, RFC 7616 3.4).

    qop ``auth`` is preferred; ``auth-int`` (hashing ``body``) only when ``auth`` is not offered; no qop when
    none is offered. ``uri`` is the Request-URI; ``nc`` counts the uses of this nonce, from 1.
    """
    if not challenge.supported:
        raise ValueError(f"cannot answer challenge {challenge.scheme} algorithm={challenge.algorithm}")
    if credentials.realm is not None and credentials.realm != challenge.realm:
        raise ValueError(f"credentials for realm {credentials.realm!r}, challenge for {challenge.realm!r}")
    if not 1 <= nc <= 0xFFFFFFFF:
        raise ValueError(f"nonce count out of range: {nc}")
    algorithm = _CANONICAL[challenge.algorithm.upper()]
    qop = next((q for q in SUPPORTED_QOP if q in challenge.qop), None)
    sess = algorithm.endswith("-sess")
    if (qop or sess) and not cnonce:
        raise ValueError("a cnonce is required with qop or a -sess algorithm")
    nc_text = f"{nc:08x}"
    response = digest_response(
        algorithm=algorithm, username=credentials.username, password=credentials.password,
        realm=challenge.realm, nonce=challenge.nonce, method=method, uri=uri, qop=qop, nc=nc_text,
        cnonce=cnonce, body=body,
    )
    username = _username_field(algorithm, credentials.username, challenge.realm, challenge.userhash)
    parts = [
        f"username={quote(username)}", f"realm={quote(challenge.realm)}", f"nonce={quote(challenge.nonce)}",
        f"uri={quote(uri)}", f"response={quote(response)}", f"algorithm={algorithm}",
    ]
    if qop or sess:
        parts.append(f"cnonce={quote(cnonce)}")
    if qop:
        parts += [f"qop={qop}", f"nc={nc_text}"]
    if challenge.opaque is not None:
        parts.append(f"opaque={quote(challenge.opaque)}")
    if challenge.userhash:
        parts.append("userhash=true")
    return "Digest " + ", ".join(parts)


def parse_authorization(value: str) -> DigestAuthorization:
    """Parse an Authorization / Proxy-Authorization Digest value (RFC 3261 section 25.1 ``credentials``)."""
    items = _parse_auth_list(value)
    if len(items) != 1:
        raise ParseError(f"expected one credentials value, found {len(items)}")
    scheme, token68, params = items[0]
    if scheme.lower() != "digest" or token68 is not None:
        raise ParseError(f"not Digest credentials: {scheme!r}")
    found = _param_dict(params)
    missing = [name for name in ("username", "realm", "nonce", "uri", "response") if name not in found]
    if missing:
        raise ParseError(f"Digest credentials without {', '.join(missing)}")
    qop = found["qop"].lower() if "qop" in found else None
    if qop is not None and ("cnonce" not in found or "nc" not in found):
        raise ParseError("Digest credentials with qop need cnonce and nc")
    if "nc" in found and not _NC.fullmatch(found["nc"]):
        raise ParseError(f"bad nonce count {found['nc']!r}")
    algorithm = found.get("algorithm", "MD5")
    return DigestAuthorization(
        username=found["username"], realm=found["realm"], nonce=found["nonce"], uri=found["uri"],
        response=found["response"], algorithm=_CANONICAL.get(algorithm.upper(), algorithm),
        cnonce=found.get("cnonce"), qop=qop, nc=found.get("nc"), opaque=found.get("opaque"),
        userhash=_flag(found.get("userhash")), params=tuple(params),
    )


def verify_authorization(auth: DigestAuthorization, credentials: Credentials, method: str, body: bytes = b"") -> bool:
    """True when ``auth`` proves knowledge of ``credentials`` for this request (RFC 7616 section 3.4.1).

    Checks username, realm and response only; nonce freshness and nc replay are the server's business.
    """
    if _hash_name(auth.algorithm) is None or auth.qop not in (None, *SUPPORTED_QOP):
        return False
    if credentials.realm is not None and credentials.realm != auth.realm:
        return False
    if auth.username != _username_field(auth.algorithm, credentials.username, auth.realm, auth.userhash):
        return False
    expected = digest_response(
        algorithm=auth.algorithm, username=credentials.username, password=credentials.password,
        realm=auth.realm, nonce=auth.nonce, method=method, uri=auth.uri, qop=auth.qop, nc=auth.nc or "",
        cnonce=auth.cnonce or "", body=body,
    )
    return hmac.compare_digest(expected, auth.response)


@dataclass(frozen=True, slots=True)
class AuthHeader:
    """A header to add to a request: ``Authorization`` or ``Proxy-Authorization`` (RFC 3261 section 22.2-22.3)."""

    name: str
    value: str


#: Which header answers which status (RFC 3261 sections 22.2 and 22.3).
ANSWER_HEADER = {401: "Authorization", 407: "Proxy-Authorization"}


@dataclass(slots=True)
class _Session:
    """An answered challenge: reused with a growing nonce count until the server replaces it."""

    challenge: Challenge
    credentials: Credentials
    cnonce: str
    nc: int = 0
    stale_retried: bool = False


class DigestClient:
    """Answers 401/407 challenges for one dialog or registration (RFC 3261 sections 22.2-22.3, RFC 8760).

    Call :meth:`authorize` for every new request and :meth:`on_challenge` for every 401/407. A realm
    whose credentials were already sent and get challenged again means they were refused: give up,
    except once for ``stale=true`` with a fresh nonce (RFC 7616 section 3.3). Answered challenges stay
    cached, so later requests reuse the nonce with nc 00000002, 00000003, ... (RFC 7616 section 3.4).
    """

    def __init__(self, credentials: Iterable[Credentials], cnonce_factory: Callable[[], str]) -> None:
        self._credentials = tuple(credentials)
        self._cnonce_factory = cnonce_factory
        self._sessions: dict[tuple[str, str], _Session] = {}

    def credentials_for(self, realm: str) -> Credentials | None:
        """Credentials for ``realm``: an exact realm match first, else the first realm-less ones."""
        exact = next((c for c in self._credentials if c.realm == realm), None)
        return exact or next((c for c in self._credentials if c.realm is None), None)

    def authorize(self, method: str, uri: str, body: bytes = b"") -> tuple[AuthHeader, ...]:
        """Headers for a new (not retried) request: every cached challenge, answered with its next nc."""
        for session in self._sessions.values():
            session.stale_retried = False
        return self._headers(method, uri, body)

    def on_challenge(
        self, status: int, challenges: Iterable[str], method: str, uri: str, body: bytes = b""
    ) -> tuple[AuthHeader, ...] | None:
        """The headers for the retried request, or None to give up and pass the 401/407 on.

        ``challenges`` are the raw WWW-Authenticate (401) or Proxy-Authenticate (407) values; unparsable
        ones are ignored. ``method``, ``uri`` and ``body`` are those of the retried request.
        """
        name = ANSWER_HEADER.get(status)
        if name is None:
            raise ValueError(f"not an authentication challenge status: {status}")
        parsed: list[Challenge] = []
        for value in challenges:
            try:
                parsed += parse_challenges([value])
            except ParseError:
                continue
        updates: dict[tuple[str, str], _Session] = {}
        for realm in dict.fromkeys(c.realm for c in parsed if c.is_digest):
            challenge = select_challenge(parsed, realm)
            credentials = self.credentials_for(realm)
            if challenge is None or credentials is None:
                continue
            previous = self._sessions.get((name, realm))
            if previous is not None and (
                not challenge.stale or previous.stale_retried or challenge.nonce == previous.challenge.nonce
            ):
                return None
            needs_cnonce = bool(challenge.qop) or challenge.algorithm.upper().endswith("-SESS")
            cnonce = self._cnonce_factory() if needs_cnonce else ""
            updates[(name, realm)] = _Session(challenge, credentials, cnonce, stale_retried=previous is not None)
        if not updates:
            return None
        self._sessions.update(updates)
        return self._headers(method, uri, body)

    def _headers(self, method: str, uri: str, body: bytes) -> tuple[AuthHeader, ...]:
        headers: list[AuthHeader] = []
        for (name, _), session in self._sessions.items():
            session.nc += 1
            value = build_authorization(
                session.challenge, session.credentials, method, uri, nc=session.nc, cnonce=session.cnonce, body=body
            )
            headers.append(AuthHeader(name, value))
        return tuple(headers)
