"""The SIP runtime: the SIP shell, the UA core and the application wired together.

:class:`Service` owns the :class:`~b2bua.io.shell.SipShell` over the :class:`~b2bua.sip.ua.UserAgent`; every
call into the core goes through :class:`ServiceCore`, which hands the UA's events to the application
right after, so the application acts within the same loop iteration. It takes built components, not
the configuration: :func:`b2bua.service.build_service` makes them from the settings.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from ..sip.address import Destination
from ..sip.overload import OverloadSettings
from ..sip.ua import UserAgent
from ..sip.ua_events import UaEvent
from .loop import loop_name
from .shell import ListenAddress, SipShell
from .tls import TlsSettings

logger = logging.getLogger("call_api")


class Application(Protocol):
    """What sits on the UA core: it receives every UA event and acts on the sessions (sans-I/O)."""

    def handle(self, event: UaEvent, now: float) -> None: ...


class ServiceCore:
    """The shell's core: the UA, with the application run on the UA's events after every call."""

    def __init__(self, ua: UserAgent, app: Application) -> None:
        self.ua = ua
        self.app = app
        #: Run once the application handled every event of a turn (the call store's writes).
        self.after: Callable[[], None] | None = None

    def _pump(self, now: float) -> None:
        ua = self.ua
        for _ in range(1000):
            events = ua.take_events()
            if not events:
                break
            for event in events:
                try:
                    self.app.handle(event, now)
                except Exception:
                    logger.exception("the application failed on %s", type(event).__name__)
        else:
            logger.error("the application keeps producing events; stopped after 1000 rounds")
        if self.after is not None:
            self.after()

    def receive(self, data: bytes, source: Destination, now: float) -> None:
        self.ua.receive(data, source, now)
        self._pump(now)

    def handle_timer(self, now: float) -> None:
        self.ua.handle_timer(now)
        self._pump(now)

    def get_timer(self) -> float | None:
        return self.ua.get_timer()

    def take_datagrams(self) -> list[tuple[bytes, Destination]]:
        return self.ua.take_datagrams()

    def transport_error(self, destination: Destination, now: float) -> None:
        self.ua.transport_error(destination, now)
        self._pump(now)

    def run(self, now: float) -> None:
        """Hand pending events to the application (after the application called the UA itself)."""
        self._pump(now)


class Service:
    """The SIP side of the service: ``await start()``, ``await stop()``.

    ``listen`` is every (transport, host, port) to open; ``advertised_host``, when given, is written in Via
    and Contact instead of the first bound host. ``max_message_size``, ``tcp_idle_timeout`` and ``tls`` go to the
    shell (the UA's parser takes its own limits). With ``overload`` the shell measures its backlog and,
    while it is overloaded, the UA's transaction layer answers new INVITEs 503 (b2bua.sip.overload)."""

    def __init__(self, ua: UserAgent, app: Application, listen: Sequence[ListenAddress], *,
                 advertised_host: str | None, max_message_size: int, tcp_idle_timeout: float,
                 overload: OverloadSettings | None = None, tls: TlsSettings | None = None) -> None:
        self.ua = ua
        self.advertised_host = advertised_host
        self.core = ServiceCore(ua, app)
        self.overload = overload
        self.shell = SipShell(self.core, listen, max_message_size=max_message_size,
                              tcp_idle_timeout=tcp_idle_timeout, overload=overload,
                              on_admit=self.admit, tls=tls)
        if overload is not None:
            ua.layer.shed_retry_after = overload.retry_after

    def admit(self, share: float) -> None:
        """Admit this share of new calls (the shell's overload monitor says); the layer answers the rest 503."""
        self.ua.layer.admit = share

    @property
    def app(self) -> Application:
        return self.core.app

    @app.setter
    def app(self, app: Application) -> None:
        self.core.app = app

    async def start(self) -> None:
        await self.shell.start()
        first = self.shell.bound[0]
        host = self.advertised_host or first.host
        tls = next((d.port for d in self.shell.bound if d.transport == "tls"), None)
        self.ua.settings = dataclasses.replace(self.ua.settings, host=host, port=first.port, tls_port=tls)
        addresses = " ".join(str(d) for d in self.shell.bound)
        proxy = self.ua.settings.outbound_proxy or "none"
        logger.info("call-api ready: SIP %s, outbound proxy %s, loop %s", addresses, proxy, loop_name())

    def listening(self) -> list[str]:
        """The SIP addresses served (``udp:127.0.0.1:5080``); empty once stopped (``GET /healthz`` reads it)."""
        return [str(d) for d in self.shell.bound] if self.shell.running else []

    def poke(self) -> None:
        """After the application called the UA directly: run its events, send, re-arm the timer."""
        self.core.run(self.shell.time())
        self.shell.poke()

    async def stop(self, grace: float = 2.0, *, end_calls: bool = True) -> None:
        """End every call with BYE (CANCEL, 503) and wait up to ``grace`` seconds for them to finish; with
        ``end_calls`` False (an upgrade-restart with a call store) close the sockets and leave the calls be."""
        if self.shell.running and end_calls:
            self.ua.shutdown(self.shell.time())
            self.poke()
            deadline = self.shell.time() + grace
            while self.ua.sessions and self.shell.time() < deadline:
                await asyncio.sleep(0.02)
        await self.shell.stop()
        logger.info("call-api stopped")
