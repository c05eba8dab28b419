"""The Call API's Python client (docs/client.md): :class:`CallApi`, one WebSocket connection that runs commands
and follows their notifications, typed; and ``call-api-client`` (:func:`main`), the command line built on it.

.. code-block:: python

    async with CallApi("ws://localhost:5059/call-api", token="s3cret") as api:
        await api.call_hold("1-4242@192.0.2.10", "callee")

The exceptions it raises are :class:`~b2bua.errors.ClientError` and its subclasses, re-exported here.
"""

from b2bua.call.leg import LegName
from b2bua.errors import (
    ClientError,
    CommandFailedError,
    ConnectError,
    ConnectionLostError,
    RequestRefusedError,
)

from .api import DEFAULT_URL, CallApi, CommandHandle, Request
from .cli import main
from .follow import Follower, Resync, apply
from .messages import CallEvent, Ended, Event, Failed, Notification, SubscriptionLost

__all__ = [
    "DEFAULT_URL",
    "CallApi",
    "CallEvent",
    "ClientError",
    "CommandFailedError",
    "CommandHandle",
    "ConnectError",
    "ConnectionLostError",
    "Ended",
    "Event",
    "Failed",
    "Follower",
    "LegName",
    "Notification",
    "Request",
    "RequestRefusedError",
    "Resync",
    "SubscriptionLost",
    "apply",
    "main",
]
