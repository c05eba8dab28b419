"""Tests mirror the code (STYLE.md, convention 10; issue 13): every source module under b2bua/ and rpc/ has its
own test module, found by name, so a new module without tests fails here rather than in review."""

from __future__ import annotations

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
