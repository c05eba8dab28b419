"""Tests mirror the code (STYLE.md, convention 10; issue 13): every source module under b2bua/ and rpc/ has its
own test module, found by name, so a new module without tests fails here rather than in review."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
SOURCES = sorted(p for package in ("b2bua", "rpc") for p in (ROOT / package).rglob("*.py") if p.name != "__init__.py")

#: Source modules whose test module goes by another name than the rule in :func:`find_test_module` gives.
TESTED_BY: dict[str, str] = {
    # Both flows/refer.py and sip/refer.py would be test_refer.py; the transfer flows' tests came first.
    "b2bua/call/flows/refer.py": "test_refer_flows.py",
    # The command line is tested with the settings it reads (``main([...])`` returning 2 on a bad one).
    "b2bua/__main__.py": "test_config.py",
    # The error codes are tested with the JSON-RPC frames that carry them (test_error_codes, test_describe, ...).
    "rpc/errors.py": "test_jsonrpc.py",
    # ``python -m rpc.client`` is the console script's entry point, tested with it.
    "rpc/client/__main__.py": "test_client_cli.py",
}

#: Source modules allowed no test module of their own, each with the reason. Keep it empty if you can.
WITHOUT_TESTS: dict[str, str] = {}


def find_test_module(source: Path) -> Path | None:
    """``tests/test_<package>_<name>.py`` (``test_io_udp.py``, ``test_flows_hold.py``), else ``tests/test_<name>.py``
    (``test_dialog.py``), else what :data:`TESTED_BY` names; None when there is none."""
    relative = source.relative_to(ROOT).as_posix()
    if relative in TESTED_BY:
        return TESTS / TESTED_BY[relative]
    for name in (f"test_{source.parent.name}_{source.stem}.py", f"test_{source.stem}.py"):
        if (TESTS / name).exists():
            return TESTS / name
    return None


def test_sources_are_found() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in SOURCES}
    assert {"b2bua/sip/dialog.py", "b2bua/call/flows/hold.py", "b2bua/io/udp.py", "rpc/server.py"} <= names
    assert find_test_module(ROOT / "b2bua" / "io" / "udp.py") == TESTS / "test_io_udp.py"
    assert find_test_module(ROOT / "b2bua" / "sip" / "dialog.py") == TESTS / "test_dialog.py"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_source_module_has_a_test_module(source: Path) -> None:
    relative = source.relative_to(ROOT).as_posix()
    if relative in WITHOUT_TESTS:
        return
    tests = find_test_module(source)
    assert tests is not None, (f"{relative} has no test module: add tests/test_{source.stem}.py (or "
                               f"tests/test_{source.parent.name}_{source.stem}.py when the name is taken)")
    assert tests.exists(), f"{relative}: {tests.name} (named in TESTED_BY) does not exist"


def test_a_test_module_found_by_name_tests_one_source_module() -> None:
    """Two modules with the same name (``events.py`` in sip/ and call/) need two test modules, not one."""
    claims: dict[Path, list[str]] = defaultdict(list)
    for source in SOURCES:
        relative = source.relative_to(ROOT).as_posix()
        tests = find_test_module(source)
        if tests is not None and relative not in TESTED_BY:
            claims[tests].append(relative)
    shared = {tests.name: sources for tests, sources in claims.items() if len(sources) > 1}
    assert not shared, f"test modules claimed by several source modules: {shared}"


def test_the_tables_name_real_modules() -> None:
    for relative in [*TESTED_BY, *WITHOUT_TESTS]:
        assert (ROOT / relative).exists(), f"{relative} is listed in tests/test_layout.py but does not exist"


# -- test modules import helpers, never each other ----------------------------------------------------------

TEST_MODULES = sorted(TESTS.rglob("test_*.py"))

#: Test modules that import others to run *their tests*, not to borrow helpers (importer -> imported, why).
#: Keep it short; a helper shared by two test modules goes into a helper module instead.
RUNS_OTHER_TESTS: dict[str, tuple[set[str], str]] = {
    "tests/test_collector.py": ({"test_b2bua", "test_control", "test_refer_flows"},
                                "runs the call path's tests under a recording Network to find cyclic garbage"),
}


def imported_test_modules(source: str) -> set[str]:
    """The ``test_*`` modules ``source`` imports, by last name: ``from .test_b2bua import dial``,
    ``from tests.system.test_api import x``, ``from . import test_control``, ``import tests.test_server``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(part for alias in node.names for part in alias.name.split(".") if part.startswith("test_"))
        elif isinstance(node, ast.ImportFrom):
            parts = [part for part in (node.module or "").split(".") if part.startswith("test_")]
            found.update(parts or [alias.name for alias in node.names if alias.name.startswith("test_")])
    return found


def test_imported_test_modules_are_found() -> None:
    source = ("from .test_b2bua import dial\nfrom tests.system.test_api import command\n"
              "from . import test_control, sipnet\nimport tests.test_server\nfrom .sipnet import Network\n"
              "from harness.sipp import Sipp\n")
    assert imported_test_modules(source) == {"test_b2bua", "test_api", "test_control", "test_server"}
    assert imported_test_modules("from tests.system import test_rig\nimport pytest\n") == {"test_rig"}


@pytest.mark.parametrize("path", TEST_MODULES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_test_module_imports_another(path: Path) -> None:
    """Shared fakes, builders and rig helpers live in helper modules (``tests/sipnet.py``, ``call_builders.py``,
    ``transaction_builders.py``, ``shell_fakes.py``, ``api_fakes.py``, ``tests/system/``'s ``ws_commands.py`` and
    ``flow_reports.py``, the ``harness`` package): a test module that another imports can no longer change its
    own helpers freely, and a ``test_`` function imported with them is collected and run a second time."""
    relative = path.relative_to(ROOT).as_posix()
    imported = imported_test_modules(path.read_text())
    allowed = RUNS_OTHER_TESTS.get(relative, (set(), ""))[0]
    assert imported <= allowed, f"{relative} imports the test module(s) {sorted(imported - allowed)}: move what it " \
                                "needs into a helper module"
    assert imported == allowed, f"{relative} no longer imports {sorted(allowed - imported)}: shrink RUNS_OTHER_TESTS"
