"""Every exception call-api raises, in one tree (as ``websockets.exceptions``).

.. code-block:: text

    CallApiError
     +-- ConfigError                a bad setting (flag, TOML key or the file itself)
     +-- TlsFileError               a certificate, key or CA file that cannot be used (also an OSError)
     +-- SipError                   raised by b2bua.sip
     |    +-- ParseError            bad bytes; carries the status to answer with (RFC 3261 section 8.2, 21)
     |    +-- TransactionError      a transaction misused by its user or layer (RFC 3261 section 17)
     |    +-- SessionError          a session method called in a state where it makes no sense
     +-- ControlError               a command that cannot start (b2bua.call.control)
     |    +-- CallNotFoundError     no call has that Call-ID
     |    +-- CallStateError        the call is not in a state for this command
     |    +-- CallBusyError         another command is running on the call
     |    +-- EventsLostError       Subscribe since an event no longer kept (``oldest``)
     |    +-- SinceAheadError       Subscribe since an event that has not happened (``seq``)
     |    +-- SubscriptionNotFoundError  Unsubscribe from a subscription this connection does not have
     +-- RpcError                   a JSON-RPC error response to send (codes: rpc.errors)
 +-- StoreError                 the call store (b2bua.io.store) cannot be used as asked
 |    +-- RecordError           a stored call record this code cannot rebuild a call from
     +-- ClientError                the client library (rpc.client) or call-api-client failed
          +-- ConnectError          the connection could not be opened (HTTP ``status`` when refused)
          +-- ConnectionLostError   the connection ended before an answer or an Ended
          +-- RequestRefusedError   a JSON-RPC error response: no command started (``code``)
          +-- CommandFailedError    a command's Error notification (``code``: SIP status or service code)

Local errors raise; remote errors (bad bytes from the network) become a response to send or a logged drop,
and never leave ``receive()``. :class:`ConfigError` and :class:`ParseError` are also ``ValueError`` s, as
they were before this tree existed. This module imports nothing, so the sans-I/O core may use it.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "CallApiError",
    "CallBusyError",
    "CallNotFoundError",
    "CallStateError",
    "ClientError",
    "CommandFailedError",
    "ConfigError",
    "ConnectError",
    "ConnectionLostError",
    "ControlError",
    "EventsLostError",
    "ParseError",
    "RecordError",
    "RequestRefusedError",
    "RpcError",
    "SessionError",
    "SinceAheadError",
    "SipError",
    "StoreError",
    "SubscriptionNotFoundError",
    "TlsFileError",
    "TransactionError",
]


class CallApiError(Exception):
    """The root: every exception call-api defines derives from it."""


class ConfigError(CallApiError, ValueError):
    """A bad setting. ``setting`` is its flag (``--ws-port``) when the value came from the command line,
    else its TOML key (``ws.port``, ``credentials[0].username``), or ``--config`` for the file itself."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting
        self.message = message


class TlsFileError(CallApiError, OSError):
    """A certificate, key or CA file (``sip.tls_*``, ``ws.tls_*``) missing, unreadable or not what it should be.
    An ``OSError`` too, so starting the service reports it as it reports an address it cannot bind."""


# --- SIP ------------------------------------------------------------------------------------------------------


class SipError(CallApiError):
    """Base of every exception raised by :mod:`b2bua.sip`."""


class ParseError(SipError, ValueError):
    """Bytes that are not a valid SIP message, header or URI.

    ``status`` is the response a UAS should send when the bad input is a request: 400 for syntax,
    505 for an unknown SIP version, 413 for a message over the size limit, 416 for an unknown
    URI scheme in the Request-URI, 501 for an unknown method whose CSeq disagrees.
    ``header`` names the offending header when there is one, for the reason phrase.
    """

    def __init__(self, reason: str, status: int = 400, header: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.header = header

    def __repr__(self) -> str:
        return f"ParseError({self.reason!r}, status={self.status}, header={self.header!r})"


class TransactionError(SipError):
    """The transaction user or layer misused a transaction: a response in a state that takes none,
    a message that belongs to another transaction, a request no transaction can be built for."""


class SessionError(SipError):
    """A session method called in a state where it makes no sense (a local error: it raises)."""


# --- call control ---------------------------------------------------------------------------------------------


class ControlError(CallApiError):
    """A command that cannot start; the subclass says why (the API maps each to its JSON-RPC code,
    :data:`rpc.errors.REFUSAL_CODES`), ``message`` says it in words for the client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CallNotFoundError(ControlError):
    """No call (or no call still up) has the given Call-ID."""


class CallStateError(ControlError):
    """The call is not in a state where this command can run (not answered yet, a leg not connected, ...)."""


class CallBusyError(ControlError):
    """Another command, or an INVITE transaction the command would cross, is running on the call."""


# --- the call store -------------------------------------------------------------------------------------------


class StoreError(CallApiError):
    """The call store (:mod:`b2bua.io.store`) cannot do what was asked: closed, or a file it cannot use."""


class RecordError(StoreError, ValueError):
    """A stored record (of a dialog, a session or a call) that this code cannot rebuild from: a field missing
    or of the wrong type, a state that is not kept. Raised by the ``from_record`` functions; the restore skips
    that call and says so."""
class EventsLostError(ControlError):
    """``Subscribe`` with a ``since`` whose next event has left the ring buffer: ``oldest`` is the oldest kept."""

    def __init__(self, message: str, oldest: int) -> None:
        super().__init__(message)
        self.oldest = oldest


class SinceAheadError(ControlError):
    """``Subscribe`` with a ``since`` past the last event (``seq``): from another run of the service, or a bug."""

    def __init__(self, message: str, seq: int) -> None:
        super().__init__(message)
        self.seq = seq


class SubscriptionNotFoundError(ControlError):
    """``Unsubscribe`` naming no subscription of this connection."""


# --- the API --------------------------------------------------------------------------------------------------


class RpcError(CallApiError):
    """A refusal to answer with a JSON-RPC error response: ``code`` (one of :mod:`rpc.errors`), a ``message``
    saying what was wrong with which member, and optional ``data`` (e.g. ``{"param": "leg"}``) that must be
    JSON-serializable."""

    def __init__(self, code: int, message: str, data: Mapping[str, object] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def __repr__(self) -> str:
        return f"RpcError({self.code}, {self.message!r}, {self.data!r})"


# --- the client -----------------------------------------------------------------------------------------------


class ClientError(CallApiError):
    """The client library (:mod:`rpc.client`) or ``call-api-client`` could not make a request or follow it to its
    end (the command's exit status 2, but 1 for :class:`CommandFailedError`)."""


class ConnectError(ClientError):
    """The connection could not be opened: nobody listening, a timeout, or a refused handshake, whose HTTP
    ``status`` is kept (401 without the right token, 403 for an Origin not allowed, 404 for another path)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ConnectionLostError(ClientError):
    """The connection closed, or the server broke the protocol, before a request was answered or a command
    ended; ``close_code`` is the WebSocket close code when there was one. The command may run on in the service
    (docs/API.md: a command outlives its connection)."""

    def __init__(self, message: str, close_code: int | None = None) -> None:
        super().__init__(message)
        self.close_code = close_code


class RequestRefusedError(ClientError):
    """The service answered a request with a JSON-RPC error response, so no command started: ``code`` (one of
    :mod:`rpc.errors`), ``message``, ``data``, and the ``response`` object as received."""

    def __init__(self, code: int, message: str, data: object = None,
                 response: Mapping[str, object] | None = None) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code
        self.message = message
        self.data = data
        self.response = response


class CommandFailedError(ClientError):
    """A started command reported an ``Error``: ``code`` is the SIP status that caused it or a service code
    (docs/API.md, Notifications). Raised once the command's ``Ended`` came, so the call is free again."""

    def __init__(self, cmd_id: str, code: int, message: str) -> None:
        super().__init__(f"command {cmd_id} failed: {message} ({code})")
        self.cmd_id = cmd_id
        self.code = code
        self.message = message
