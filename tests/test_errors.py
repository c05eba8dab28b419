"""The exception tree (b2bua/errors.py): its shape, and that it is the only module defining exceptions."""

from __future__ import annotations

import ast
import builtins
import inspect
from pathlib import Path

import pytest

from b2bua import errors
from b2bua.errors import (
    CallApiError,
    CallBusyError,
    CallNotFoundError,
    CallStateError,
    ClientError,
    CommandFailedError,
    ConfigError,
    ConnectError,
    ConnectionLostError,
    ControlError,
    EventsLostError,
    ParseError,
    RecordError,
    RequestRefusedError,
    RpcError,
    SessionError,
    SinceAheadError,
    SipError,
    StoreError,
    SubscriptionNotFoundError,
    TlsFileError,
    TransactionError,
)

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "b2bua").rglob("*.py")) + sorted((ROOT / "rpc").rglob("*.py"))
HOME = ROOT / "b2bua" / "errors.py"

#: Each exception's parent in the tree (the first base; a second is a builtin kept for callers).
TREE: dict[type[Exception], type[Exception]] = {
    CallApiError: Exception,
    ConfigError: CallApiError,
    TlsFileError: CallApiError,
    SipError: CallApiError,
    ParseError: SipError,
    TransactionError: SipError,
    SessionError: SipError,
    ControlError: CallApiError,
    CallNotFoundError: ControlError,
    CallStateError: ControlError,
    CallBusyError: ControlError,
    StoreError: CallApiError,
    RecordError: StoreError,
    EventsLostError: ControlError,
    SinceAheadError: ControlError,
    SubscriptionNotFoundError: ControlError,
    RpcError: CallApiError,
    ClientError: CallApiError,
    ConnectError: ClientError,
    ConnectionLostError: ClientError,
    RequestRefusedError: ClientError,
    CommandFailedError: ClientError,
}


def test_the_tree_has_one_root() -> None:
    defined = {cls for _, cls in inspect.getmembers(errors, inspect.isclass) if cls.__module__ == errors.__name__}
    assert defined == set(TREE)
    assert set(errors.__all__) == {cls.__name__ for cls in TREE}
    for cls, parent in TREE.items():
        assert cls.__bases__[0] is parent, cls
        assert cls.__doc__, cls


def test_value_errors_stay_value_errors() -> None:
    assert issubclass(ConfigError, ValueError)
    assert issubclass(ParseError, ValueError)


def test_what_the_errors_carry() -> None:
    parse = ParseError("bad Via", 400, "Via")
    assert (parse.reason, parse.status, parse.header, str(parse)) == ("bad Via", 400, "Via", "bad Via")
    assert repr(parse) == "ParseError('bad Via', status=400, header='Via')"
    config = ConfigError("ws.port", "bad")
    assert (config.setting, config.message, str(config)) == ("ws.port", "bad", "ws.port: bad")
    busy = CallBusyError("call 'x' is busy")
    assert (busy.message, str(busy)) == ("call 'x' is busy", "call 'x' is busy")
    rpc = RpcError(-32602, "params.leg is missing", {"param": "leg"})
    assert (rpc.code, rpc.message, rpc.data) == (-32602, "params.leg is missing", {"param": "leg"})
    assert repr(rpc) == "RpcError(-32602, 'params.leg is missing', {'param': 'leg'})"
    refused = RequestRefusedError(-32001, "no call", None, {"id": 1})
    assert (refused.code, refused.message, refused.data, refused.response) == (-32001, "no call", None, {"id": 1})
    assert str(refused) == "no call (-32001)"
    failed = CommandFailedError("cmd-1", 488, "not accepted")
    assert (failed.cmd_id, failed.code, failed.message) == ("cmd-1", 488, "not accepted")
    assert str(failed) == "command cmd-1 failed: not accepted (488)"
    assert (ConnectError("refused", 401).status, ConnectionLostError("gone", 1006).close_code) == (401, 1006)


def test_errors_imports_nothing_of_the_project() -> None:
    tree = ast.parse(HOME.read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "." for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "collections.abc"}


def _base_names(node: ast.ClassDef) -> list[str]:
    names = []
    for base in node.bases:
        if isinstance(base, ast.Name):
            names.append(base.id)
        elif isinstance(base, ast.Attribute):
            names.append(base.attr)
    return names


def exception_classes(path: Path, known: set[str]) -> list[str]:
    """The classes ``path`` defines that derive, by name, from a builtin exception, an exception of the tree
    (``known``), another exception class of the same module, or anything named ``*Error``/``*Exception``."""
    classes = [node for node in ast.walk(ast.parse(path.read_text(), str(path))) if isinstance(node, ast.ClassDef)]
    builtin = {name for name, value in vars(builtins).items()
               if isinstance(value, type) and issubclass(value, BaseException)}
    found: set[str] = set()
    changed = True
    while changed:
        changed = False
        for node in classes:
            if node.name in found:
                continue
            if any(name in builtin or name in known or name in found or name.endswith(("Error", "Exception"))
                   for name in _base_names(node)):
                found.add(node.name)
                changed = True
    return sorted(found)


def test_the_walk_finds_exceptions() -> None:
    assert exception_classes(HOME, set()) == sorted(cls.__name__ for cls in TREE)


@pytest.mark.parametrize("path", [p for p in SOURCES if p != HOME], ids=lambda p: str(p.relative_to(ROOT)))
def test_no_other_module_defines_an_exception(path: Path) -> None:
    defined = exception_classes(path, {cls.__name__ for cls in TREE})
    assert not defined, f"{path.relative_to(ROOT)} defines {defined}: put them in b2bua/errors.py"
