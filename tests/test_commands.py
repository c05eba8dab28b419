"""The commands as data (b2bua/call/commands.py): each command's parameters, as docs/API.md lists them."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from b2bua.call.commands import (
    Arg,
    CallAttendedTransfer,
    CallBlindTransfer,
    CallEnd,
    CallGet,
    CallHold,
    CallList,
    CallStart,
    CallUnHold,
    Command,
    Kind,
    Query,
    Subscribe,
    Unsubscribe,
    arg,
    args,
)
from b2bua.call.control import COMMANDS

ROOT = Path(__file__).resolve().parent.parent
ALL = [CallStart, CallBlindTransfer, CallAttendedTransfer, CallHold, CallUnHold, CallEnd, CallList, CallGet,
       Subscribe, Unsubscribe]
QUERIES = [CallList, CallGet, Subscribe, Unsubscribe]


def documented_commands() -> dict[str, str]:
    """docs/API.md's table of commands: the method spelling(s) cell and the params cell, by method name."""
    text = (ROOT / "docs" / "API.md").read_text()
    section = text[text.index("## Commands"):text.index("### CallStart")]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            rows[re.findall(r"`(\w+)`", cells[0])[0]] = line
    return rows


def test_the_six_commands_and_the_four_queries() -> None:
    assert [row.command for row in COMMANDS] == ALL
    assert [command for command in ALL if issubclass(command, Query)] == QUERIES
    for command in ALL:
        assert issubclass(command, Command) and dataclasses.is_dataclass(command)
        assert command.__dataclass_params__.frozen  # type: ignore[attr-defined]
        assert command.__doc__


def test_every_field_is_a_parameter() -> None:
    for command in ALL:
        assert [name for name, _ in args(command)] == [f.name for f in dataclasses.fields(command)]


def test_parameters() -> None:
    assert args(CallStart) == (("caller", Arg(Kind.URI)), ("callee", Arg(Kind.URI)))
    assert args(CallBlindTransfer) == (("callid", Arg(Kind.TEXT)), ("leg", Arg(Kind.LEG)),
                                       ("destination", Arg(Kind.URI)))
    assert args(CallAttendedTransfer) == (
        ("callid_a", Arg(Kind.TEXT, alias="callidA")), ("leg_a", Arg(Kind.LEG, alias="legA")),
        ("callid_b", Arg(Kind.TEXT, alias="callidB")), ("leg_b", Arg(Kind.LEG, alias="legB")),
        ("destination", Arg(Kind.URI, required=False)))
    assert args(CallHold) == args(CallUnHold) == (("callid", Arg(Kind.TEXT)), ("leg", Arg(Kind.LEG, required=False)))
    assert args(CallEnd) == (("callid", Arg(Kind.TEXT)),)
    assert args(CallList) == (("state", Arg(Kind.STATE, required=False)), ("limit", Arg(Kind.LIMIT, required=False)),
                              ("cursor", Arg(Kind.CURSOR, required=False)))
    assert args(CallGet) == (("callid", Arg(Kind.TEXT)),)
    assert args(Subscribe) == (("since", Arg(Kind.SEQ, required=False)), ("calls", Arg(Kind.CALLIDS, required=False)))
    assert args(Unsubscribe) == (("subscription", Arg(Kind.TEXT)),)


def test_the_api_document_lists_each_command_with_its_parameters() -> None:
    rows = documented_commands()
    assert list(rows) == [command.__name__ for command in ALL]
    for row in COMMANDS:
        line = rows[row.name]
        method, params, _ = (c.strip() for c in line.strip().strip("|").split("|"))
        assert re.findall(r"`(\w+)`", method) == [row.name, *row.aliases]
        listed = [f"`{name}`" + ("" if spec.required else "?") for name, spec in args(row.command)]
        assert params == ", ".join(listed)


def test_commands_are_values() -> None:
    assert CallHold("c", None) == CallHold("c", None) != CallUnHold("c", None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        CallEnd("c").callid = "d"  # type: ignore[misc]


def test_a_field_without_arg_metadata_is_a_bug() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Broken(Command):
        callid: str = arg(Kind.TEXT)
        plain: str = ""

    with pytest.raises(KeyError):
        args(Broken)


def test_mypy_rejects_a_command_missing_a_required_argument(tmp_path: Path) -> None:
    """``arg()`` is a field specifier (PEP 681) of :func:`b2bua.call.commands.command`: mypy --strict sees
    each field as a constructor argument without default, as Python does at run time."""
    from mypy import api

    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\n")
    snippet = "from b2bua.call.commands import CallAttendedTransfer, CallHold\nCallHold()\n"
    fine = 'CallHold("c", None)\nCallAttendedTransfer("a", "caller", "b", "callee", None)\n'
    out, err, status = api.run(["--config-file", str(config), "--strict", "--no-error-summary",
                                "--cache-dir", str(tmp_path / "cache"), "-c", snippet + fine])
    assert err == "" and status == 1
    assert out.splitlines() == ['<string>:2: error: Missing positional arguments "callid", "leg" in call to '
                                '"CallHold"  [call-arg]']
