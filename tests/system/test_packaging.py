"""The package as a user gets it (issue 16): ``python -m build`` makes an sdist and a wheel, the wheel installs
into a fresh virtual environment and its console scripts run there, away from this source tree; and
``deploy/call-api.service`` passes ``systemd-analyze verify`` with that installed ``call-api`` as its command."""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from b2bua import __version__

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("b2bua", "rpc")
UNIT = ROOT / "deploy" / "call-api.service"


@dataclass(frozen=True, slots=True)
class Installed:
    sdist: Path
    wheel: Path
    venv: Path

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name


def _package_files() -> list[str]:
    """Every file of the packages that git knows (so a new static file is checked as soon as it is committed)."""
    out = subprocess.run(["git", "ls-files", *PACKAGES], cwd=ROOT, capture_output=True, text=True, check=True)
    return [name for name in out.stdout.splitlines() if "__pycache__" not in name]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    work = tmp_path_factory.mktemp("packaging")
    dist = work / "dist"
    build = subprocess.run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    sdist = next(dist.glob("call_api-*.tar.gz"))
    wheel = next(dist.glob("call_api-*-py3-none-any.whl"))
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                          str(wheel)], capture_output=True, text=True, timeout=300, cwd=work)
    assert pip.returncode == 0, pip.stderr[-3000:]
    yield Installed(sdist, wheel, venv)


def _run(installed: Installed, *args: str) -> subprocess.CompletedProcess[str]:
    """A command of the fresh venv, run from a folder outside the source tree, with no path into it."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{installed.venv / 'bin'}:/usr/bin:/bin"
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60, cwd=installed.venv, env=env)


def test_the_wheel_holds_every_module_and_data_file(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    missing = [name for name in _package_files() if name not in names]
    assert not missing, f"not in the wheel: {missing}"
    assert {"b2bua/py.typed", "rpc/py.typed"} <= names
    assert installed.wheel.name == f"call_api-{__version__}-py3-none-any.whl"


def test_the_sdist_holds_the_sources_and_the_unit(installed: Installed) -> None:
    with tarfile.open(installed.sdist) as sdist:
        names = {name.partition("/")[2] for name in sdist.getnames()}
    missing = [name for name in _package_files() if name not in names]
    assert not missing, f"not in the sdist: {missing}"
    assert {"pyproject.toml", "README.md"} <= names


def test_the_console_scripts_run_from_the_fresh_venv(installed: Installed) -> None:
    version = _run(installed, str(installed.bin("call-api")), "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"call-api {__version__}"
    client = _run(installed, str(installed.bin("call-api-client")), "--help")
    assert client.returncode == 0, client.stderr
    assert "usage: call-api-client" in client.stdout
    where = _run(installed, str(installed.bin("python")), "-c",
                 "import b2bua, rpc.client, importlib.resources as r; print(b2bua.__file__); "
                 "print(r.files('rpc').joinpath('py.typed').is_file())")
    assert where.returncode == 0, where.stderr
    location, typed = where.stdout.split()
    assert Path(location).is_relative_to(installed.venv), location
    assert typed == "True"


def test_the_installed_service_starts_and_stops_on_sigterm(installed: Installed) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.Popen([str(installed.bin("call-api")), "--sip-listen", "127.0.0.1:0", "--ws-port", "0"],
                            cwd=installed.venv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    try:
        selector = selectors.DefaultSelector()
        selector.register(proc.stderr, selectors.EVENT_READ)
        seen = b""
        deadline = time.monotonic() + 20
        while b"API ready" not in seen and time.monotonic() < deadline and proc.poll() is None:
            if selector.select(0.1):
                seen += proc.stderr.read1(4096)
        assert b"API ready" in seen, seen.decode(errors="replace")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_systemd_unit_verifies_clean(installed: Installed, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd; scripts/test installs it)")
    text = UNIT.read_text()
    assert "ExecStart=/opt/call-api/bin/call-api " in text
    for option in ("DynamicUser=yes", "ProtectSystem=strict", "StateDirectory=call-api", "NoNewPrivileges=yes",
                   "PrivateTmp=yes", "ProtectHome=yes", "RestrictAddressFamilies=", "CapabilityBoundingSet=",
                   "Restart=on-failure"):
        assert f"\n{option}" in text, option
    # systemd checks that ExecStart names an executable: point it at the call-api the wheel installed.
    unit = tmp_path / "call-api.service"
    unit.write_text(text.replace("/opt/call-api/bin/call-api", str(installed.bin("call-api"))))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "call-api.service" not in result.stderr, result.stderr
