"""Which event loop runs the service: uvloop where it is installed (Linux, macOS), plain asyncio otherwise.

The choice comes from an argument, else the ``CALL_API_LOOP`` environment variable, else ``auto``:

* ``auto``: uvloop when importable on this platform, asyncio otherwise;
* ``uvloop``: uvloop, and an error when it cannot be imported;
* ``asyncio``: the standard library loop even where uvloop is installed (for debugging, or to compare).
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from types import ModuleType
from typing import Literal

__all__ = ["ENV_VAR", "LoopKind", "choose", "loop_name", "new_event_loop", "new_event_loop_policy"]

#: The environment variable read when no argument says which loop to use.
ENV_VAR = "CALL_API_LOOP"

LoopKind = Literal["auto", "uvloop", "asyncio"]
_KINDS = ("auto", "uvloop", "asyncio")


def _uvloop() -> ModuleType | None:
    if sys.platform not in ("linux", "darwin"):
        return None
    try:
        return importlib.import_module("uvloop")
    except ImportError:
        return None


def choose(kind: str | None = None) -> Literal["uvloop", "asyncio"]:
    """The loop that ``kind`` (or ``$CALL_API_LOOP``, or ``auto``) selects here; raises on a bad value."""
    wanted = (kind if kind is not None else os.environ.get(ENV_VAR, "")).strip().lower() or "auto"
    if wanted not in _KINDS:
        raise ValueError(f"unknown event loop {wanted!r}: expected one of {', '.join(_KINDS)}")
    if wanted == "asyncio":
        return "asyncio"
    if _uvloop() is not None:
        return "uvloop"
    if wanted == "uvloop":
        raise RuntimeError("uvloop was asked for but cannot be imported on this platform")
    return "asyncio"


def new_event_loop_policy(kind: str | None = None) -> asyncio.AbstractEventLoopPolicy:
    """A fresh policy for the chosen loop (see :func:`choose`)."""
    if choose(kind) == "uvloop":
        uvloop = _uvloop()
        assert uvloop is not None
        policy: asyncio.AbstractEventLoopPolicy = uvloop.EventLoopPolicy()
        return policy
    return asyncio.DefaultEventLoopPolicy()


def new_event_loop(kind: str | None = None) -> asyncio.AbstractEventLoop:
    """A new loop of the chosen kind, for ``asyncio.Runner(loop_factory=...)`` without touching the policy."""
    return new_event_loop_policy(kind).new_event_loop()


def loop_name(loop: asyncio.AbstractEventLoop | None = None) -> str:
    """``"uvloop"`` or ``"asyncio"``: for ``loop``, else the running loop, else the installed policy."""
    if loop is None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return _name_of(type(asyncio.get_event_loop_policy()))
    return _name_of(type(loop))


def _name_of(cls: type) -> str:
    return "uvloop" if cls.__module__.split(".")[0] == "uvloop" else "asyncio"
