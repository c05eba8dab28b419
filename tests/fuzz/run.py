"""Run one fuzz target under atheris, coverage-guided (issue 17); the long runs are this script.

    .venv/bin/python -m tests.fuzz.run parser -runs=1000000
    .venv/bin/python -m tests.fuzz.run sdp -max_total_time=600 corpus-dir/

The first argument names the target (tests/fuzz/targets.py: parser, framing, sdp, jsonrpc); the rest
are libFuzzer's options. The seed corpus (tests/fuzz/corpus.py) is written to a temporary directory
given to libFuzzer before any directory of yours, so every run starts from real messages. A crash or a
broken invariant stops the run with libFuzzer's report and the input saved as ``crash-<sha1>``; hold it
as a regression test in tests/test_fuzz.py.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path


def main(argv: list[str]) -> None:
    import atheris

    with atheris.instrument_imports():
        from tests.fuzz import targets
    from tests.fuzz.corpus import seeds

    if len(argv) < 2 or argv[1] not in targets.TARGETS:
        raise SystemExit(f"usage: python -m tests.fuzz.run {{{','.join(targets.TARGETS)}}} [libFuzzer options]")
    name = argv[1]
    target = targets.TARGETS[name]
    seed_dir = Path(tempfile.mkdtemp(prefix=f"call-api-fuzz-{name}-"))
    for i, data in enumerate(seeds(name)):
        (seed_dir / f"seed-{i}").write_bytes(data)
    options = [a for a in argv[2:] if a.startswith("-")]
    dirs = [a for a in argv[2:] if not a.startswith("-")]
    atheris.Setup([argv[0], *options, *dirs, str(seed_dir)], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
