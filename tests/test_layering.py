"""The house rules, walked over the source: nothing under b2bua.sip or b2bua.call, nor b2bua.errors, imports
I/O, clocks or randomness; every logger is named after its layer under one root, ``call_api``; every ``match``
says what happens to the rest, with ``assert_never`` when it is exhaustive."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"asyncio", "socket", "time", "random", "uvloop", "websockets", "selectors", "threading",
             "b2bua.io", "rpc", "secrets", "datetime"}
#: The SIP and call packages, and the exception tree they raise from.
SANS_IO = (sorted((ROOT / "b2bua" / "sip").rglob("*.py")) + sorted((ROOT / "b2bua" / "call").rglob("*.py"))
           + [ROOT / "b2bua" / "errors.py"])


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", SANS_IO, ids=lambda p: str(p.relative_to(ROOT)))
def test_sans_io_modules_import_no_io(path: Path) -> None:
    bad = {name for name in imported_modules(path)
           if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)}
    assert not bad, f"{path.name} imports {sorted(bad)}"


#: What the shipped packages (b2bua, rpc) never import: the test and benchmark rig lives beside them.
NOT_SHIPPED = ("harness", "tests", "benchmarks")


@pytest.mark.parametrize("path", sorted((ROOT / "b2bua").rglob("*.py")) + sorted((ROOT / "rpc").rglob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_the_service_imports_no_rig(path: Path) -> None:
    bad = {name for name in imported_modules(path) if name.split(".")[0] in NOT_SHIPPED}
    assert not bad, f"{path.name} imports {sorted(bad)}, which is not shipped (pyproject packages b2bua and rpc)"


#: The logger name prefix each package's modules use; a top-level module logs as the service, ``call_api``.
LOGGER_ROOTS = {"sip": "call_api.sip", "call": "call_api.call", "io": "call_api.io", "rpc": "call_api.rpc"}
#: Modules that speak for the whole service (``call_api: call-api ready: ...``, as the README shows it).
SERVICE_VOICES = {ROOT / "b2bua" / "io" / "runtime.py"}
PACKAGES = sorted((ROOT / "b2bua").rglob("*.py")) + sorted((ROOT / "rpc").rglob("*.py"))


def logger_names(path: Path) -> list[str | None]:
    """The name given to each ``getLogger(...)`` call in ``path``: the literal, or None for no argument (the root
    logger), or ``"<not a literal>"``."""
    names: list[str | None] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if called != "getLogger":
                continue
            if not node.args and not node.keywords:
                names.append(None)
            elif len(node.args) == 1 and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                names.append(node.args[0].value)
            else:
                names.append("<not a literal>")
    return names


def test_loggers_are_found() -> None:
    assert logger_names(ROOT / "rpc" / "server.py") == ["call_api.rpc"]
    assert logger_names(ROOT / "b2bua" / "service.py") == ["call_api", None]


@pytest.mark.parametrize("path", PACKAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_loggers_are_named_after_their_layer(path: Path) -> None:
    parts = path.relative_to(ROOT).parts
    package = parts[0] if parts[0] == "rpc" else parts[1] if len(parts) > 2 else None
    expected = LOGGER_ROOTS[package] if package is not None and path not in SERVICE_VOICES else "call_api"
    for name in logger_names(path):
        if name is None:
            assert path == ROOT / "b2bua" / "service.py", "only build_service configures the root logger"
            continue
        assert name == expected or name.startswith(expected + "."), f"{name!r} is not under {expected!r}"


def open_matches(path: Path) -> list[int]:
    """The lines of the ``match`` statements in ``path`` whose last arm is not ``case _:``."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Match):
            last = node.cases[-1]
            if not (isinstance(last.pattern, ast.MatchAs) and last.pattern.pattern is None and last.guard is None):
                lines.append(node.lineno)
    return lines


def test_open_matches_are_found(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text("def f(x: int) -> None:\n    match x:\n        case 1:\n            pass\n"
                      "    match x:\n        case 1:\n            pass\n        case _:\n            pass\n")
    assert open_matches(source) == [2]


@pytest.mark.parametrize("path", PACKAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_match_ends_with_a_catch_all(path: Path) -> None:
    """``case _: assert_never(x)`` where the cases cover the type (mypy then proves it), else an explicit default."""
    assert not open_matches(path), f"match statements without a last 'case _:' at lines {open_matches(path)}"


#: Private names a module may still read of another's, each with its reason; the list only shrinks.
#: The parser, the layer and the section 8.2 checks fill and read the header cache of
#: :class:`b2bua.sip.message.Headers` on the hot path (layer.py is being edited elsewhere).
PRIVATE_PENDING = {
    ROOT / "b2bua" / "sip" / "layer.py": {"_FIRST", "_fields", "_cache"},
    ROOT / "b2bua" / "sip" / "parser.py": {"_FIRST", "_cache"},
    ROOT / "b2bua" / "sip" / "uas.py": {"_fields", "_cache"},
}
#: Public API of the standard library that happens to start with an underscore (``namedtuple._replace``).
STDLIB_UNDERSCORED = {"_replace", "_asdict", "_make"}


def own_names(tree: ast.AST) -> set[str]:
    """The names a module defines: functions, classes, module and class assignments, ``self.x = ...``
    attributes and ``__slots__`` entries."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Name):
                        names.add(sub.id)
                    elif isinstance(sub, ast.Attribute):
                        names.add(sub.attr)
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__slots__"
                                                    for t in node.targets):
                names.update(c.value for c in ast.walk(node.value)
                             if isinstance(c, ast.Constant) and isinstance(c.value, str))
    return names


def foreign_private_names(path: Path) -> set[str]:
    """Private names ``path`` uses that another module defines: ``from m import _x``, or ``obj._x`` on
    anything but ``self``/``cls`` when the module itself defines no ``_x``."""
    tree = ast.parse(path.read_text(), str(path))
    own = own_names(tree)
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            used.update(a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__"))
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            if node.attr not in own and node.attr not in STDLIB_UNDERSCORED:
                used.add(node.attr)
    return used


def test_foreign_private_names_are_found() -> None:
    assert foreign_private_names(ROOT / "b2bua" / "sip" / "parser.py") >= {"_FIRST"}


@pytest.mark.parametrize("path", PACKAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_uses_another_modules_private_names(path: Path) -> None:
    """A private member used from another module means a small interface is missing: add it instead."""
    bad = foreign_private_names(path) - PRIVATE_PENDING.get(path, set())
    assert not bad, f"{path.relative_to(ROOT)} uses private names of another module: {sorted(bad)}"


def id_calls(path: Path) -> list[int]:
    """The lines where ``path`` calls the builtin ``id()``."""
    return [node.lineno for node in ast.walk(ast.parse(path.read_text(), str(path)))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "id"]


@pytest.mark.parametrize("path", SANS_IO, ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_is_keyed_by_id(path: Path) -> None:
    """What comes back for an object is found by a handle or the object itself, never by ``id(obj)`` (an
    id is reused once its object is gone)."""
    assert not id_calls(path), f"id() at lines {id_calls(path)}"


#: The one module of the call package that speaks to a SIP session: the rest command a leg (issue 13).
LEG_MODULE = ROOT / "b2bua" / "call" / "leg.py"
CALL_MODULES = [p for p in sorted((ROOT / "b2bua" / "call").rglob("*.py")) if p != LEG_MODULE]


def _type_checking_block(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def session_reaches(path: Path) -> list[int]:
    """The lines where ``path`` reads an attribute named ``session`` or imports from ``b2bua.sip.session``
    (an import for annotations only, under ``if TYPE_CHECKING:``, is no reach)."""
    lines = []
    for statement in ast.parse(path.read_text(), str(path)).body:
        if _type_checking_block(statement):
            continue
        for node in ast.walk(statement):
            reads = isinstance(node, ast.Attribute) and node.attr == "session"
            imports = isinstance(node, ast.ImportFrom) and node.module is not None and \
                (node.module == "sip.session" or node.module.endswith(".sip.session"))
            if reads or imports:
                lines.append(node.lineno)
    return lines


def test_session_reaches_are_found(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text("from typing import TYPE_CHECKING\nfrom ..sip.session import SessionState\n"
                      "if TYPE_CHECKING:\n    from ..sip.session import Session\n"
                      "def f(leg):\n    return leg.session.ended or leg.ended\n")
    assert session_reaches(source) == [2, 6]


@pytest.mark.parametrize("path", CALL_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_leg_touches_a_session(path: Path) -> None:
    """The call logic commands a :class:`~b2bua.call.leg.Leg` (answer, fail, reply, send, ack, hang up) and
    reads its few facts; reaching through it into the SIP session would bypass that seam."""
    assert not session_reaches(path), f"{path.name} reaches into a session at lines {session_reaches(path)}"


#: Where a state machine may write its state: its constructor (the initial state) and the one method that
#: checks each move against its table (``_move`` of a session, dialog or REFER subscription, ``move`` of a
#: call, ``_feed`` of the transaction and overload machines, whose rows are looked up in their tables).
STATE_WRITERS = {"__init__", "_move", "move", "_feed"}


def state_writes(path: Path) -> list[int]:
    """The lines where ``path`` assigns an attribute ``state`` or ``_state`` outside :data:`STATE_WRITERS`."""
    lines: list[int] = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, child.name)
                continue
            if isinstance(child, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and function not in STATE_WRITERS:
                targets = child.targets if isinstance(child, ast.Assign) else [child.target]
                lines.extend(sub.lineno for target in targets for sub in ast.walk(target)
                             if isinstance(sub, ast.Attribute) and sub.attr in ("state", "_state"))
            visit(child, function)

    visit(ast.parse(path.read_text(), str(path)), "")
    return lines


def test_state_writes_are_found(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text("class A:\n    def __init__(self):\n        self.state = 1\n"
                      "    def _move(self, s):\n        self.state = s\n"
                      "    def cheat(self, other):\n        other.state = 2\n        self._state, x = 3, 4\n")
    assert state_writes(source) == [7, 8]


@pytest.mark.parametrize("path", SANS_IO, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_state_change_goes_through_its_table(path: Path) -> None:
    """A state written anywhere else skips the table check (and the DEBUG line of the move)."""
    assert not state_writes(path), f"{path.name} writes a state outside its move at lines {state_writes(path)}"
