"""TLS contexts for the SIP transport and the WebSocket front (RFC 3261 section 26.2, RFC 5630; issue 16).

One place decides what is verified, so SIP over TLS and WSS cannot drift: TLS 1.2 at least, the ``ssl``
module's default ciphers, and for a client the peer's certificate checked against the system store or a
configured CA, hostname included (RFC 5922: the name we connect to must be in the certificate's
subjectAltName). Turning verification off is a lab switch only: it is logged at WARNING on every start.

A file that cannot be read or does not hold what it should raises :class:`TlsFileError` (an ``OSError``, so
the service's start reports it like a port already taken) naming the file.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass

from ..errors import TlsFileError

__all__ = ["TlsSettings", "client_context", "server_context"]

logger = logging.getLogger("call_api.io")


def _load_chain(context: ssl.SSLContext, cert: str, key: str) -> None:
    try:
        context.load_cert_chain(cert, key)
    except FileNotFoundError as exc:
        raise TlsFileError(f"no such file: {exc.filename or cert}") from None
    except (OSError, ssl.SSLError) as exc:
        raise TlsFileError(f"cannot use certificate {cert} with key {key}: {exc}") from None


def _load_ca(context: ssl.SSLContext, ca: str) -> None:
    try:
        context.load_verify_locations(cafile=ca)
    except FileNotFoundError:
        raise TlsFileError(f"no such CA file: {ca}") from None
    except (OSError, ssl.SSLError) as exc:
        raise TlsFileError(f"cannot use CA file {ca}: {exc}") from None


def server_context(cert: str, key: str, *, ca: str | None = None, verify_client: bool = False) -> ssl.SSLContext:
    """What a TLS listener presents: ``cert`` (PEM, the chain after the leaf) and ``key``. With
    ``verify_client`` a client must present a certificate that ``ca`` (or the system store) vouches for
    (mutual TLS, RFC 5630 section 3.1.3 for SIP); without it none is asked for."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(context, cert, key)
    if verify_client:
        context.verify_mode = ssl.CERT_REQUIRED
        if ca is not None:
            _load_ca(context, ca)
        else:
            context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    return context


def client_context(*, ca: str | None = None, verify: bool = True, cert: str | None = None,
                   key: str | None = None) -> ssl.SSLContext:
    """What an outgoing TLS connection checks: the server's certificate against ``ca`` (or the system store
    when None) and its name against the host connected to. ``verify=False`` checks nothing (labs only).
    ``cert`` and ``key``, when given, are presented to servers that ask for a client certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if verify:
        if ca is not None:
            _load_ca(context, ca)
        else:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert is not None and key is not None:
        _load_chain(context, cert, key)
    return context


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """SIP over TLS for the shell (the ``sip.tls_*`` settings): what a TLS listener presents and asks for, and
    what an outgoing connection verifies. The files are read when the shell starts (:meth:`contexts`)."""

    #: PEM certificate chain and key a TLS listener presents (and offered as a client certificate); None:
    #: no TLS listener is possible, outgoing TLS still is.
    cert: str | None = None
    key: str | None = None
    #: CA file that verifies servers connected to and, with ``verify_client``, clients; None: the system store.
    ca: str | None = None
    #: Check a server's certificate and its name (RFC 5922); False is for labs only.
    verify_server: bool = True
    #: Ask clients of a TLS listener for a certificate and refuse those without a trusted one.
    verify_client: bool = False
    #: Seconds a TLS handshake may take, either way.
    handshake_timeout: float = 10.0

    def contexts(self, listening: bool) -> tuple[ssl.SSLContext | None, ssl.SSLContext]:
        """(server context or None when not ``listening``, client context); raises :class:`TlsFileError`."""
        server = None
        if listening:
            if self.cert is None or self.key is None:
                raise TlsFileError("a TLS listener needs a certificate and its key (sip.tls_cert, sip.tls_key)")
            server = server_context(self.cert, self.key, ca=self.ca, verify_client=self.verify_client)
        if not self.verify_server:
            logger.warning("SIP over TLS: server certificates are NOT verified (sip.tls_verify_server = false); "
                           "for labs only")
        client = client_context(ca=self.ca, verify=self.verify_server, cert=self.cert, key=self.key)
        return server, client
