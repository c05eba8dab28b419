"""The SIP runtime: the SIP shell, the UA core and the application wired together.

:class:`Service` owns the :class:`~b2bua.io.shell.SipShell` over the :class:`~b2bua.sip.ua.UserAgent`; every
call into the core goes through :class:`ServiceCore`, which hands the UA's events to the application
right after, so the application acts within the same loop iteration. It takes built components, not
the configuration: :func:`b2bua.service.build_service` makes them from the settings.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
from collections.abc import Sequence
from typing import Protocol

from ..sip.address import Destination
from ..sip.ua import UserAgent
from ..sip.ua_events import UaEvent
from .loop import loop_name
from .shell import ListenAddress, SipShell

logger = logging.getLogger("call_api")


class Application(Protocol):
    """What sits on the UA core: it receives every UA event and acts on the sessions (sans-I/O)."""

    def handle(self, event: UaEvent, now: float) -> None: ...


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
#: Of the pacer's young collections, every this many is a gen1 collection (gen0 and gen1).
GC_PACE_GEN1_EVERY = 2


class GcPacer:
    """Collect the youngest generation every :data:`GC_PACE` seconds, whatever the allocation count says.

    CPython starts a young collection when allocations minus deallocations of tracked objects pass the
    first threshold. Under steady load a B2BUA frees about as much as it allocates (each call's
    transactions end 64*T1 after the call), so that count barely moves: measured at 200 CallStarts/s,
    from 32 s into the load the young generations held 35,000-100,000 objects when collected, gen0
    pauses of 3-13 ms and gen1 pauses of 25-63 ms every few seconds, each stalling a dozen API requests
    (request -> first INVITE p99 5.2-7.7 ms, max 65-97 ms). Collected on a clock, gen0 stays a few
    thousand objects.

    ``gc.collect(0)`` never moves on to gen1 by itself: CPython escalates to an older generation only in
    the collections it starts, and under steady load it starts almost none. With gen0 alone collected on
    the clock, gen1 took every survivor until an automatic collection came, seconds later: measured at
    250 CallStarts/s over 120 s, gen1 pauses of 100-140 ms every 5 s and one of 658 ms (p99 64 ms). So
    every :data:`GC_PACE_GEN1_EVERY`-th paced collection takes gen1 too (200 ms apart, a few ms each:
    CPython's own cadence under allocation is 10 gen0 collections of 700 objects, about 160 ms here).
    Full collections keep CPython's rule and their rare schedule (:func:`tune_gc`): gen1 collections
    past the third threshold and a quarter of the long-lived objects new since the last one, checked
    by the next automatic collection.

    The pace trades CPU for pauses: a young collection visits the young objects still alive, so the more
    often it runs, the more of a bridged call's short-lived objects (alive about as long as the call) it
    visits before they die; the less often, the bigger each gen0 and gen1. Measured before gen1 was paced
    too, CallStart request -> first INVITE p99 / max at 225/s and service CPU at 1,200 bridged calls/s:
    every 200 ms 4.1 / 107 ms, 76 %; every 20 ms 1.3 / 19 ms, 84 %; every 50 ms (the default) 1.5 / 23
    ms, 79 % (docs/PERFORMANCE.md).
    """

    def __init__(self, interval: float = GC_PACE, gen1_every: int = GC_PACE_GEN1_EVERY) -> None:
        self.interval = interval
        self.gen1_every = gen1_every
        self._handle: asyncio.TimerHandle | None = None
        self._seen = -1

    def start(self) -> None:
        self._handle = asyncio.get_running_loop().call_later(self.interval, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        done = _collections()
        if done == self._seen:  # none came by itself since the last tick
            gc.collect(1 if gc.get_count()[1] >= self.gen1_every else 0)
            done += 1  # a collection of gen1 counts once, as one of gen0 does
        self._seen = done
        self._handle = asyncio.get_running_loop().call_later(self.interval, self._tick)


def _collections() -> int:
    """Collections of any generation so far (automatic or not)."""
    return sum(stats["collections"] for stats in gc.get_stats())


class Service:
    """The SIP side of the service: ``await start()``, ``await stop()``.

    ``listen`` is every (transport, host, port) to open; ``advertised_host``, when given, is written in Via
    and Contact instead of the first bound host. ``max_message_size`` and ``tcp_idle_timeout`` go to the
    shell (the UA's parser takes its own limits)."""

    def __init__(self, ua: UserAgent, app: Application, listen: Sequence[ListenAddress], *,
                 advertised_host: str | None, max_message_size: int, tcp_idle_timeout: float) -> None:
        self.ua = ua
        self.advertised_host = advertised_host
        self.core = ServiceCore(ua, app)
        self.shell = SipShell(self.core, listen, max_message_size=max_message_size,
                              tcp_idle_timeout=tcp_idle_timeout)

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
        self.ua.settings = dataclasses.replace(self.ua.settings, host=host, port=first.port)
        addresses = " ".join(str(d) for d in self.shell.bound)
        proxy = self.ua.settings.outbound_proxy or "none"
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
