"""Shared RFC 3261 section 25 grammar pieces: tokens, quoted strings, parameters, comma lists.

Every typed header view is built from these; they raise :class:`ParseError` on bad input.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..errors import ParseError

#: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")
#: word (Call-ID) = token chars plus ( ) < > : \ " / [ ] ? { }
WORD_CHARS = TOKEN_CHARS | frozenset('()<>:\\"/[]?{}')
WS = " \t"

_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
_VALUE = r"[A-Za-z0-9\-.!%*_+`'~:\[\]]+"
_QUOTED = r'"(?:[^"\\\r\n]|\\[^\r\n])*"'
"""A quoted-string; CR and LF are in none, escaped or not (RFC 3261 section 25.1: folds are unfolded before)."""
_is_token = re.compile(_TOKEN).fullmatch
# The alternatives never overlap, so a failing match costs linear time (no catastrophic backtracking).
#: One ``;name[=value]`` with optional LWS; a value is a token, a host (IPv6 too) or a quoted string.
_PARAM = re.compile(rf"[ \t]*;[ \t]*({_TOKEN})(?:[ \t]*=[ \t]*({_VALUE}|{_QUOTED}))?")
#: Any number of parameters, as a regular expression to embed in a header's pattern (no groups).
PARAMS_PATTERN = rf"(?:[ \t]*;[ \t]*{_TOKEN}(?:[ \t]*=[ \t]*(?:{_VALUE}|{_QUOTED}))?)*"
_PARAMS = re.compile(PARAMS_PATTERN)
#: :data:`PARAMS_PATTERN` without LWS or quoted values (a subset of it, quicker to match).
PLAIN_PARAMS_PATTERN = rf"(?:;{_TOKEN}(?:={_VALUE})?)*"


def is_token(text: str) -> bool:
    """True when ``text`` is a non-empty RFC 3261 token."""
    return _is_token(text) is not None


def is_word(text: str) -> bool:
    """True when ``text`` is a non-empty ``word`` (the Call-ID alphabet)."""
    return bool(text) and all(c in WORD_CHARS for c in text)


def unquote(text: str) -> str:
    """The content of a quoted-string (with its quotes), backslash escapes resolved."""
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        raise ParseError(f"not a quoted string: {text!r}")
    body = text[1:-1]
    if "\\" not in body:
        if '"' in body:
            raise ParseError(f"stray quote in quoted string: {text!r}")
        return body
    out: list[str] = []
    i, n = 0, len(body)
    while i < n:
        c = body[i]
        if c == "\\":
            if i + 1 >= n:
                raise ParseError(f"dangling escape in quoted string: {text!r}")
            out.append(body[i + 1])
            i += 2
            continue
        if c == '"':
            raise ParseError(f"stray quote in quoted string: {text!r}")
        out.append(c)
        i += 1
    return "".join(out)


def quote(text: str) -> str:
    """``text`` as a quoted-string, escaping backslashes and quotes.

    CR and LF cannot appear in a quoted-string, not even escaped (RFC 3261 section 25.1): they raise
    ``ValueError`` rather than let a display name inject a header line.
    """
    if "\r" in text or "\n" in text:
        raise ValueError(f"CR or LF cannot be quoted: {text!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def find_closing_quote(text: str, start: int) -> int:
    """Index of the quote closing the quoted-string that opens at ``text[start]``."""
    i, n = start + 1, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i
        i += 1
    raise ParseError(f"unterminated quoted string: {text!r}")


def split_outside_quotes(text: str, sep: str) -> list[str]:
    """Split on ``sep`` where it is outside quoted strings and ``<...>``."""
    if '"' not in text and "<" not in text:
        return text.split(sep)
    parts: list[str] = []
    depth = 0
    begin = 0
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i = find_closing_quote(text, i) + 1
            continue
        if c == "<":
            depth += 1
        elif c == ">":
            depth = max(0, depth - 1)
        elif c == sep and depth == 0:
            parts.append(text[begin:i])
            begin = i + 1
        i += 1
    parts.append(text[begin:])
    return parts


def split_commas(value: str) -> list[str]:
    """The elements of a comma-separated header value (quotes and ``<>`` respected), stripped.

    Empty elements are an error: RFC 3261 section 7.3.1 lists need one value between commas.
    """
    items = [item.strip(WS) for item in split_outside_quotes(value, ",")]
    if any(not item for item in items):
        raise ParseError(f"empty element in list: {value!r}")
    return items


class Params:
    """Ordered ``;name=value`` parameters; names compare case-insensitively, values stay as written.

    A value is ``None`` for a parameter without ``=``; quoted values keep their quotes. Parsed text is
    validated at once but split into items only when needed; ``str()`` gives the text back unchanged
    until a copy is made with :meth:`replace` or :meth:`remove`.
    """

    __slots__ = ("_items", "_text")

    def __init__(self, items: tuple[tuple[str, str | None], ...] = ()) -> None:
        self._items: tuple[tuple[str, str | None], ...] | None = items
        self._text: str | None = None

    @classmethod
    def parse(cls, text: str) -> Params:
        """Parse ``;a=b;c`` (the leading ``;`` included, LWS allowed around ``;`` and ``=``)."""
        if not text:
            return EMPTY_PARAMS
        text = text.rstrip(WS)
        if _PARAMS.fullmatch(text) is None:
            raise ParseError(f"bad parameters: {text!r}")
        params = cls.__new__(cls)
        params._items = None
        params._text = text
        return params

    @classmethod
    def checked(cls, text: str) -> Params:
        """Parameters from text that a pattern built on :data:`PARAMS_PATTERN` has already matched."""
        if not text:
            return EMPTY_PARAMS
        params = cls.__new__(cls)
        params._items = None
        params._text = text
        return params

    @staticmethod
    def is_valid(text: str) -> bool:
        """Would :meth:`parse` accept ``text``?"""
        return _PARAMS.fullmatch(text.rstrip(WS)) is not None

    @property
    def items(self) -> tuple[tuple[str, str | None], ...]:
        items = self._items
        if items is None:
            assert self._text is not None
            items = self._items = tuple((name, value or None) for name, value in _PARAM.findall(self._text))
        return items

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of the first parameter called ``name`` (``None`` if it has no value)."""
        text = self._text
        if self._items is None and text is not None and '"' not in text and " " not in text and "\t" not in text:
            # Fast path for the common spelling: ``;name=value`` with nothing unusual around it; any earlier
            # parameter whose name starts like ``name`` (in any case) sends the lookup to the full parse.
            at = text.find(";" + name + "=")
            if at >= 0 and (at == 0 or ";" + name.lower() not in text[:at].lower()):
                begin = at + len(name) + 2
                end = text.find(";", begin)
                return text[begin:end] if end >= 0 else text[begin:]
            if at < 0 and ";" + name.lower() not in text.lower():
                return default  # no parameter name starts like ``name``: absent
        lname = name.lower()
        for key, value in self.items:
            if key == name or key.lower() == lname:
                return value
        return default

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        text = self._text
        if self._items is None and text is not None and '"' not in text and " " not in text and "\t" not in text:
            # Fast path, as in get(): ``;name`` followed by ``=``, ``;`` or the end.
            needle = ";" + name
            at = text.find(needle)
            while at >= 0:
                end = at + len(needle)
                if end == len(text) or text[end] in "=;":
                    return True
                at = text.find(needle, end)
            if ";" + name.lower() not in text.lower():
                return False
        lname = name.lower()
        return any(key == name or key.lower() == lname for key, _ in self.items)

    def __iter__(self) -> Iterator[tuple[str, str | None]]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __bool__(self) -> bool:
        return bool(self._text) or bool(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Params):
            return NotImplemented
        return self.items == other.items

    def __hash__(self) -> int:
        return hash(self.items)

    def __repr__(self) -> str:
        return f"Params({self.items!r})"

    def replace(self, name: str, value: str | None) -> Params:
        """A copy with ``name`` set to ``value`` (in place if present, appended otherwise)."""
        lname = name.lower()
        items = list(self.items)
        for i, (key, _) in enumerate(items):
            if key.lower() == lname:
                items[i] = (key, value)
                return Params(tuple(items))
        items.append((name, value))
        return Params(tuple(items))

    def remove(self, name: str) -> Params:
        """A copy without any parameter called ``name``."""
        lname = name.lower()
        return Params(tuple(item for item in self.items if item[0].lower() != lname))

    def __str__(self) -> str:
        if self._text is not None:
            return self._text
        return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in self.items)


EMPTY_PARAMS = Params()
