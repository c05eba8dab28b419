"""A TLS-capable phone for the system tests: baresip (Debian 1.0) driven over its ``ctrl_tcp`` module.

baresip listens for SIP on UDP and TCP at ``sip_port`` and on TLS at ``sip_port + 1`` (so two phones need
ports at least two apart), answers every call by itself (``answermode=auto``), sends its own calls through
the ``outbound`` proxy, and reports call events as JSON in netstrings on the control port, where it also
takes the menu module's commands (``dial``, ``hangup``). It never sends Replaces. Audio is a sine tone from
the ``ausine`` module (48 kHz stereo, all it makes), played into ``/dev/null``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.ports import LOOPBACK
from harness.processes import RigError

BINARY = "baresip"


def _config(sip_port: int, ctrl_port: int, certificate: Path, ca: Path) -> str:
    return "\n".join([
        "poll_method epoll",
        f"sip_listen {LOOPBACK}:{sip_port}",
        f"sip_certificate {certificate}",
        f"sip_cafile {ca}",
        f"net_interface {LOOPBACK}",
        "call_local_timeout 120",
        "audio_player aufile,/dev/null",
        "audio_source ausine,440",
        "ausrc_srate 48000",
        "ausrc_channels 2",
        "auplay_srate 48000",
        "module_path /usr/lib/baresip/modules",
        "module g711.so",
        "module ausine.so",
        "module aufile.so",
        "module_tmp account.so",
        "module_app menu.so",
        "module_app ctrl_tcp.so",
        f"ctrl_tcp_listen {LOOPBACK}:{ctrl_port}",
        "",
    ])


class Baresip:
    """One baresip process: ``await start()``, ``await command("dial", uri)``, ``await event("CALL_ESTABLISHED")``."""

    def __init__(self, folder: Path, user: str, sip_port: int, ctrl_port: int, outbound: str, *, certificate: Path,
                 key: Path, ca: Path) -> None:
        self.folder = folder
        #: The account's user part: baresip answers 404 to a Request-URI naming another.
        self.user = user
        self.sip_port = sip_port
        self.ctrl_port = ctrl_port
        folder.mkdir(parents=True, exist_ok=True)
        both = folder / "cert.pem"  # baresip wants the certificate and its key in one file
        both.write_bytes(certificate.read_bytes() + key.read_bytes())
        both.chmod(0o600)
        (folder / "config").write_text(_config(sip_port, ctrl_port, both, ca))
        (folder / "accounts").write_text(
            f'<sip:{user}@{LOOPBACK};transport=tls>;regint=0;answermode=auto;outbound="{outbound}"\n')
        self.log_path = folder / "baresip.log"
        self.events: list[dict[str, Any]] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pump: asyncio.Task[None] | None = None
        self._responses: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._changed = asyncio.Event()

    @property
    def tls_port(self) -> int:
        return self.sip_port + 1

    async def start(self, timeout: float = 10.0) -> Baresip:
        binary = shutil.which(BINARY)
        if binary is None:
            raise RigError("'baresip' is not on PATH: `bash scripts/test` installs the Debian package baresip-core")
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen([binary, "-f", str(self.folder)], stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, cwd=self.folder, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._reader, self._writer = await asyncio.open_connection(LOOPBACK, self.ctrl_port)
                break
            except OSError:
                if time.monotonic() > deadline or self._proc.poll() is not None:
                    raise RigError(f"baresip {self.user} did not start: {self.log_tail()}") from None
                await asyncio.sleep(0.05)
        self._pump = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self._reader is not None
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                length = int((await self._reader.readuntil(b":"))[:-1])
                document = json.loads(await self._reader.readexactly(length))
                await self._reader.readexactly(1)  # the netstring's ','
                if document.get("event"):
                    self.events.append(document)
                    self._changed.set()
                elif document.get("response"):
                    self._responses.put_nowait(document)

    async def command(self, command: str, params: str = "") -> dict[str, Any]:
        """Run a command (as the console would); its response."""
        assert self._writer is not None
        body = json.dumps({"command": command, "params": params, "token": command}).encode()
        self._writer.write(b"%d:%s," % (len(body), body))
        await self._writer.drain()
        return await asyncio.wait_for(self._responses.get(), 10)

    async def event(self, kind: str, timeout: float = 15.0, **fields: str) -> dict[str, Any]:
        """The first event of ``kind`` (``CALL_ESTABLISHED``, ``CALL_CLOSED``, ...) with these field values."""

        def match(event: Mapping[str, Any]) -> bool:
            return event.get("type") == kind and all(event.get(k) == v for k, v in fields.items())

        async def wait() -> dict[str, Any]:
            while True:
                found = next((e for e in self.events if match(e)), None)
                if found is not None:
                    return found
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            seen = [e.get("type") for e in self.events]
            raise AssertionError(f"baresip {self.user}: no {kind} in {seen}; log: {self.log_tail()}") from None

    def log_tail(self, limit: int = 3000) -> str:
        try:
            return self.log_path.read_bytes()[-limit:].decode(errors="replace")
        except OSError:
            return ""

    async def stop(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        proc = self._proc
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
