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
from .messages import Ended, Event, Failed, Notification

__all__ = [
    "DEFAULT_URL",
    "CallApi",
    "ClientError",
    "CommandFailedError",
    "CommandHandle",
    "ConnectError",
    "ConnectionLostError",
    "Ended",
    "Event",
    "Failed",
    "LegName",
    "Notification",
    "Request",
    "RequestRefusedError",
    "main",
]
