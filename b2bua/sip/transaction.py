"""SIP transactions, sans I/O: the four state machines of RFC 3261 section 17 (with RFC 6026), their
matching rules, and what they output. This module gathers the public names; the machines live in
:mod:`.transaction_client` and :mod:`.transaction_server`, their shared table runner in
:mod:`.transaction_machine`, matching in :mod:`.transaction_matching`, the outputs in
:mod:`.transaction_events`.

How a transaction layer drives them::

    tx = InviteClientTransaction(request, destination, timers, now)
    actions = tx.start()                        # [Transmit(request, destination)]
    actions = tx.receive_response(resp, now)    # when client_key(resp) == tx.key
    deadline = tx.get_timer()                   # arm one loop timer for it...
    actions = tx.handle_timer(now)              # ...and call this when it fires

Every call returns a list of :data:`Action` to carry out in order; after
:class:`Terminated` the layer drops the transaction. Nothing here reads a clock or touches a socket.
"""

from __future__ import annotations

from ..errors import TransactionError
from .address import Destination
from .timers import TimerSettings
from .transaction_client import (
    ClientTransaction,
    InviteClientState,
    InviteClientTransaction,
    NonInviteClientState,
    NonInviteClientTransaction,
    build_ack,
)
from .transaction_events import AckToTU, Action, ResponseToTU, Terminated, TimedOut, Transmit, TransportFailed
from .transaction_matching import (
    ClientKey,
    ServerKey,
    ServerKey2543,
    ServerKey3261,
    cancel_target_key,
    client_key,
    server_key,
    to_tag_matches,
)
from .transaction_server import (
    InviteServerState,
    InviteServerTransaction,
    NonInviteServerState,
    NonInviteServerTransaction,
    ServerTransaction,
)

__all__ = [
    "AckToTU",
    "Action",
    "ClientKey",
    "ClientTransaction",
    "Destination",
    "InviteClientState",
    "InviteClientTransaction",
    "InviteServerState",
    "InviteServerTransaction",
    "NonInviteClientState",
    "NonInviteClientTransaction",
    "NonInviteServerState",
    "NonInviteServerTransaction",
    "ResponseToTU",
    "ServerKey",
    "ServerKey2543",
    "ServerKey3261",
    "ServerTransaction",
    "Terminated",
    "TimedOut",
    "TimerSettings",
    "TransactionError",
    "Transmit",
    "TransportFailed",
    "build_ack",
    "cancel_target_key",
    "client_key",
    "server_key",
    "to_tag_matches",
]
