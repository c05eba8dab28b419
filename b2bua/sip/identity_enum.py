"""An :class:`~enum.Enum` base whose members hash by identity.

``Enum.__hash__`` is a Python function (``hash(self._name_)``); the state machines look up
``(state, input)`` in their tables and check state moves on every message, dozens of times per call.
Members are singletons and compare by identity, so the identity hash is equally correct and costs no
Python call (a table lookup measured 0.33 us against 0.52 us).
"""

from __future__ import annotations

from enum import Enum


class IdentityEnum(Enum):
    """An Enum hashed like a plain object: members are singletons, equal only to themselves."""

    __hash__ = object.__hash__
