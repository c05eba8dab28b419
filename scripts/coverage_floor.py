"""Fail when a module of the measured packages is under the line-coverage floor (issue 13).

Reads the data ``coverage run`` left (``.coverage``) and the settings in pyproject.toml: the packages are
``[tool.coverage.run] source``, the floor is ``[tool.coverage.report] fail_under``, checked for each
module and for each package as a whole (coverage.py itself only checks the total). Prints one line per
package and one per module under 100 %.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import coverage

ROOT = Path(__file__).resolve().parent.parent

#: Modules allowed under the floor, each with the lines no test can reach and why. The source is the place for
#: ``# pragma: no cover - why`` on such a line; an entry here stands in until the module's owner adds it.
UNDER_THE_FLOOR: dict[str, str] = {}


def main() -> int:
    cov = coverage.Coverage(config_file=str(ROOT / "pyproject.toml"))
    cov.load()
    floor = float(str(cov.get_option("report:fail_under")))
    sources = [ROOT / str(s) for s in cov.get_option("run:source") or []]  # type: ignore[union-attr]
    by_package: dict[Path, list[tuple[Path, int, int]]] = defaultdict(list)
    for source in sources:
        for path in sorted(source.rglob("*.py")):
            _, statement_lines, _, missing_lines, _ = cov.analysis2(str(path))
            by_package[source].append((path, len(statement_lines), len(missing_lines)))
    failed = []
    for source in sources:
        modules = by_package[source]
        total = sum(n for _, n, _ in modules)
        missed = sum(m for _, _, m in modules)
        percent = 100.0 * (total - missed) / total if total else 100.0
        print(f"{source.relative_to(ROOT)}: {percent:.1f} % of {total} lines")
        if percent < floor:
            failed.append(f"{source.relative_to(ROOT)} ({percent:.1f} %)")
        for path, statements, missing in modules:
            relative = path.relative_to(ROOT).as_posix()
            module_percent = 100.0 * (statements - missing) / statements if statements else 100.0
            allowed = relative in UNDER_THE_FLOOR
            if allowed and module_percent >= floor:
                failed.append(f"{relative} (at {module_percent:.1f} %, its UNDER_THE_FLOOR entry can go)")
            if missing:
                under = module_percent < floor and not allowed
                mark = "  UNDER THE FLOOR" if under else "  (allowed: UNDER_THE_FLOOR)" if allowed else ""
                print(f"  {relative}: {module_percent:.1f} % ({missing} lines missed){mark}")
                if under:
                    failed.append(f"{relative} ({module_percent:.1f} %)")
    for relative in UNDER_THE_FLOOR:
        if not (ROOT / relative).exists():
            failed.append(f"{relative} (listed in UNDER_THE_FLOOR, no longer exists)")
    if failed:
        print(f"the {floor:g} % line-coverage floor is not met (`coverage report -m` names the lines): "
              f"{', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
