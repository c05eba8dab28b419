"""Log lines that network input cannot forge or flood.

Values from the network (Call-IDs, URIs, header values, JSON-RPC parameters) reach log records as
arguments, and some as text inside a message. :class:`SafeFormatter`, the formatter of the handler
:func:`b2bua.service.configure_logging` installs, makes each line safe before it is written:

* control characters (CR and LF first: a forged second log line) are written as escapes, ``\\r``,
  ``\\n``, ``\\x1b``, so one record is one line;
* each argument is cut to :data:`MAX_ARG` characters and the whole message to :data:`MAX_MESSAGE`, with
  the number of characters left out, so a 60 kB Call-ID costs a line of a few hundred characters, not
  130,000 (issue 17 measured 260 MB of log in ten minutes of fuzzing before this).

A traceback (``exc_info``) is kept as it is: its line breaks are its structure, and its text comes from
the code. Choice: escaping (as ``repr`` does) rather than dropping, so the log still shows what arrived.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Final

__all__ = ["MAX_ARG", "MAX_MESSAGE", "SafeFormatter", "safe_text"]

#: Longest argument written, in characters.
MAX_ARG: Final = 256
#: Longest message written (after the arguments are merged), in characters.
MAX_MESSAGE: Final = 4096

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


_NAMED: Final = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def safe_text(text: str, limit: int) -> str:
    """``text`` with control characters escaped and cut to ``limit`` characters."""
    if len(text) > limit:
        text = f"{text[:limit]}...[{len(text) - limit} more]"
    return _CONTROL.sub(_escape, text)


def _safe_arg(value: object) -> object:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value  # keeps %d and %.1f working
    if isinstance(value, bytes | bytearray):
        value = repr(bytes(value[: MAX_ARG + 1]))
    return safe_text(str(value), MAX_ARG)


class SafeFormatter(logging.Formatter):
    """A :class:`logging.Formatter` whose message part is one line of bounded length (module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        args = record.args
        try:
            if isinstance(args, Mapping):
                record.args = {key: _safe_arg(value) for key, value in args.items()}
            elif args:
                record.args = tuple(_safe_arg(value) for value in args)
            return super().format(record)
        finally:
            record.args = args  # other handlers see the record as it was logged

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = safe_text(record.message, MAX_MESSAGE)
        return super().formatMessage(record)
