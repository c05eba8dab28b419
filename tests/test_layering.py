"""The sans-I/O rule: nothing under b2bua.sip or b2bua.call, nor b2bua.errors, imports I/O, clocks or randomness."""

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
