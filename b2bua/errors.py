"""Every exception call-api raises, in one tree (as ``websockets.exceptions``).

.. code-block:: text

    CallApiError
     +-- ConfigError                a bad setting (flag, TOML key or the file itself)
     +-- SipError                   raised by b2bua.sip
     |    +-- ParseError            bad bytes; carries the status to answer with (RFC 3261 section 8.2, 21)
     |    +-- TransactionError      a transaction misused by its user or layer (RFC 3261 section 17)
     |    +-- SessionError          a session method called in a state where it makes no sense
     +-- ControlError               a command that cannot start (b2bua.call.control)
     |    +-- CallNotFoundError     no call has that Call-ID
     |    +-- CallStateError        the call is not in a state for this command
     |    +-- CallBusyError         another command is running on the call
     +-- RpcError                   a JSON-RPC error response to send (codes: rpc.errors)
     +-- ClientError                call-api-client could not make or follow its request

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
    "ConfigError",
    "ControlError",
    "ParseError",
    "RpcError",
    "SessionError",
    "SipError",
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


class ClientError(CallApiError):
    """``call-api-client`` could not make its request or follow it to its end (exit status 2)."""
