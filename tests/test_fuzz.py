"""The fuzz targets of tests/fuzz (issue 17) in the suite: the seed corpus, deterministic mutations of
it, and one short coverage-guided run under atheris. The long runs (a million executions per target)
are ``python -m tests.fuzz.run TARGET -runs=1000000``; their numbers are in docs/RELIABILITY.md."""

from __future__ import annotations

import importlib.util
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.corpus import seeds
from tests.fuzz.targets import TARGETS

ROOT = Path(__file__).resolve().parent.parent


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to four byte-level edits: flip, insert, delete, duplicate a slice, or splice a CRLF."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        at = rng.randrange(len(out) + 1)
        if op == 0 and out:
            out[min(at, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            out[at:at] = bytes([rng.randrange(256)])
        elif op == 2 and out:
            del out[at:at + rng.randint(1, 16)]
        elif op == 3 and out:
            start = rng.randrange(len(out))
            out[at:at] = out[start:start + rng.randint(1, 64)]
        else:
            out[at:at] = rng.choice([b"\r\n", b"\r\n\r\n", b"\n", b"\x00", b";", b":", b",", b"\""])
    return bytes(out)


@pytest.mark.parametrize("name", list(TARGETS))
def test_the_seeds_hold_the_invariants(name: str) -> None:
    for data in seeds(name):
        TARGETS[name](data)


@pytest.mark.parametrize("name", list(TARGETS))
def test_mutations_of_the_seeds_hold_the_invariants(name: str) -> None:
    rng = random.Random(f"call-api-{name}")
    corpus = seeds(name)
    target = TARGETS[name]
    for _ in range(3000):
        data = mutate(rng.choice(corpus), rng)
        try:
            target(data)
        except Exception as exc:  # the failing input in the report, to hold as a regression case
            raise AssertionError(f"{name} failed on {data!r}") from exc


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris is not installed")
@pytest.mark.timeout(120)
def test_a_short_coverage_guided_run(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "tests.fuzz.run", "sdp", "-runs=5000"], cwd=tmp_path,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, capture_output=True,
                            text=True, timeout=110)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Done 5000 runs" in result.stderr
    assert not list(tmp_path.glob("crash-*"))
