"""The running service: configuration in, the SIP shell, the UA core and the application wired together.

:class:`Service` owns the :class:`~b2bua.io.shell.SipShell` and the :class:`~b2bua.sip.ua.UserAgent`; every
call into the core goes through :class:`ServiceCore`, which hands the UA's events to the application
right after, so the application acts within the same loop iteration. Until the B2BUA lands, the
application is :class:`RefuseCalls`: every call gets a clean 480.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
from typing import Protocol

from ..config import Config
from ..sip.address import Destination
from ..sip.ua import UaSettings, UserAgent
from ..sip.ua_events import IncomingCall, UaEvent
from ..sip.uri import parse_sip_uri
from .ids import RandomIds
from .loop import loop_name
from .shell import SipShell

logger = logging.getLogger("call_api")


class Application(Protocol):
    """What sits on the UA core: it receives every UA event and acts on the sessions (sans-I/O)."""

    def handle(self, event: UaEvent, now: float) -> None: ...


class RefuseCalls:
    """The application used when no call logic is plugged in: INVITEs get 480 Temporarily Unavailable."""

    def handle(self, event: UaEvent, now: float) -> None:
        if isinstance(event, IncomingCall):
            event.session.respond(480, now, reason="No Call Logic")


class ServiceCore:
    """The shell's core: the UA, with the application run on the UA's events after every call."""

    def __init__(self, ua: UserAgent, app: Application) -> None:
        self.ua = ua
        self.app = app

    def _pump(self, now: float) -> None:
        ua = self.ua
        for _ in range(1000):
            events = ua.take_events()
            if not events:
                return
            for event in events:
                try:
                    self.app.handle(event, now)
                except Exception:
                    logger.exception("the application failed on %s", type(event).__name__)
        logger.error("the application keeps producing events; stopped after 1000 rounds")

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


def ua_settings(config: Config, host: str, port: int) -> UaSettings:
    sip = config.sip
    return UaSettings(
        host=sip.advertised_host or host,
        port=port,
        user=sip.user,
        display_name=sip.display_name,
        user_agent=sip.user_agent,
        outbound_proxy=parse_sip_uri(sip.outbound_proxy) if sip.outbound_proxy else None,
        trusted=tuple(sip.trusted),
        credentials=tuple(config.credentials),
    )


#: The service's garbage-collection thresholds (gen0, gen1, gen2): see :func:`tune_gc`.
GC_THRESHOLDS = (700, 10, 1000)


def tune_gc() -> None:
    """Keep full collections rare: each call keeps its SIP objects for up to 64*T1 after it ends
    (transactions absorbing retransmissions), so a loaded service holds hundreds of thousands of live
    objects, and every full collection walks them all. With CPython's default third threshold (10) that
    meant pauses of 0.3-0.8 s at 600 bridged calls/s, long enough to trigger retransmissions; with
    1000 (and the start-up objects frozen out of the collector) the benchmark stays clean at 800/s.
    Young generations are collected as usual, and a full collection still runs, only less often.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


#: Seconds between the young collections :class:`GcPacer` runs.
GC_PACE = 0.05


class GcPacer:
    """Collect the youngest generation every :data:`GC_PACE` seconds, whatever the allocation count says.

    CPython starts a young collection when allocations minus deallocations of tracked objects pass the
    first threshold. Under steady load a B2BUA frees about as much as it allocates (each call's
    transactions end 64*T1 after the call), so that count barely moves: measured at 200 CallStarts/s,
    from 32 s into the load the young generations held 35,000-100,000 objects when collected, gen0
    pauses of 3-13 ms and gen1 pauses of 25-63 ms every few seconds, each stalling a dozen API requests
    (request -> first INVITE p99 5.2-7.7 ms, max 65-97 ms). Collected on a clock, gen0 stays a few
    thousand objects and gen1, which follows every tenth gen0 collection, stays small too. Full
    collections keep their own rare schedule (:func:`tune_gc`).

    The pace trades CPU for pauses: a young collection visits the young objects still alive, so the more
    often it runs, the more of a bridged call's short-lived objects (alive about as long as the call) it
    visits before they die, and the more often gen1 runs; the less often, the bigger each gen0 and gen1.
    Measured on one machine (docs/PERFORMANCE.md), CallStart request -> first INVITE p99 / max at 225/s
    and service CPU at 1,200 bridged calls/s: every 200 ms 4.1 / 107 ms (gen0 4-5 ms, gen1 95-104 ms
    from 32 s on), 76 %; every 20 ms 1.3 / 19 ms, 84 % with a longer INVITE -> 200 tail; every 50 ms
    (the default) 1.5 / 23 ms (gen1 at most 5 ms), 79 %.
    """

    def __init__(self, interval: float = GC_PACE) -> None:
        self.interval = interval
        self._handle: asyncio.TimerHandle | None = None
        self._seen = -1

    def start(self) -> None:
        self._handle = asyncio.get_running_loop().call_later(self.interval, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        done = gc.get_stats()[0]["collections"]
        if done == self._seen:  # none came by itself since the last tick
            gc.collect(0)
            done += 1
        self._seen = done
        self._handle = asyncio.get_running_loop().call_later(self.interval, self._tick)


class Service:
    """The whole service for one configuration: ``await start()``, ``await stop()``."""

    def __init__(self, config: Config, app: Application | None = None) -> None:
        self.config = config
        host, port = config.sip.listen[0]
        self.ua = UserAgent(RandomIds(host), ua_settings(config, host, port), config.timers.timer_settings())
        self.ua.layer.limits = dataclasses.replace(self.ua.layer.limits, max_size=config.sip.max_message_size)
        self.core = ServiceCore(self.ua, app or RefuseCalls())
        listen = [(t, h, p) for h, p in config.sip.listen for t in config.sip.transports]
        self.shell = SipShell(self.core, listen, max_message_size=config.sip.max_message_size,
                              tcp_idle_timeout=config.sip.tcp_idle_timeout)

    @property
    def app(self) -> Application:
        return self.core.app

    @app.setter
    def app(self, app: Application) -> None:
        self.core.app = app

    async def start(self) -> None:
        await self.shell.start()
        first = self.shell.bound[0]
        host = self.config.sip.advertised_host or first.host
        self.ua.settings = dataclasses.replace(self.ua.settings, host=host, port=first.port)
        addresses = " ".join(str(d) for d in self.shell.bound)
        proxy = self.config.sip.outbound_proxy or "none"
        logger.info("call-api ready: SIP %s, outbound proxy %s, loop %s", addresses, proxy, loop_name())

    def poke(self) -> None:
        """After the application called the UA directly: run its events, send, re-arm the timer."""
        self.core.run(self.shell.time())
        self.shell.poke()

    async def stop(self, grace: float = 2.0) -> None:
        """End every call with BYE (CANCEL, 503) and wait up to ``grace`` seconds for them to finish."""
        if self.shell.running:
            self.ua.shutdown(self.shell.time())
            self.poke()
            deadline = self.shell.time() + grace
            while self.ua.sessions and self.shell.time() < deadline:
                await asyncio.sleep(0.02)
        await self.shell.stop()
        logger.info("call-api stopped")
