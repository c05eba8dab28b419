"""benchmarks/gc_probe.py: installed only when told where to write, it writes the collections that took at
least the threshold, one parseable line each."""

from __future__ import annotations

import gc
import io
import os
import subprocess
import sys
from pathlib import Path

from benchmarks import gc_probe
from benchmarks.series import read_gc


def test_probe_writes_long_collections_only() -> None:
    out = io.StringIO()
    probe = gc_probe.Probe(out, min_ms=0.0)
    probe("start", {"generation": 2, "collected": 0, "uncollectable": 0})
    probe("stop", {"generation": 2, "collected": 7, "uncollectable": 0})
    epoch, generation, ms, collected = out.getvalue().split()
    assert (generation, collected) == ("2", "7") and float(ms) >= 0 and float(epoch) > 1e9

    quiet = io.StringIO()
    strict = gc_probe.Probe(quiet, min_ms=60_000.0)
    strict("start", {"generation": 0, "collected": 0, "uncollectable": 0})
    strict("stop", {"generation": 0, "collected": 1, "uncollectable": 0})
    assert quiet.getvalue() == ""


def test_install_does_nothing_without_a_file() -> None:
    before = list(gc.callbacks)
    assert gc_probe.install({}) is None
    assert gc.callbacks == before


def test_as_sitecustomize_it_records_a_collection_of_another_interpreter(tmp_path: Path) -> None:
    folder = tmp_path / "probe"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(Path(gc_probe.__file__).read_text())
    log = tmp_path / "gc.log"
    env = dict(os.environ, PYTHONPATH=str(folder), **{gc_probe.PATH_ENV: str(log), gc_probe.MIN_MS_ENV: "0"})
    subprocess.run([sys.executable, "-c", "import gc; gc.collect()"], env=env, check=True, timeout=30)
    pauses = read_gc(log)
    assert any(p.generation == 2 for p in pauses)
