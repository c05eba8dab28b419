"""The whole service for one configuration, assembled in one place.

:func:`build_service` is where every setting of a :class:`~b2bua.config.Config` is handed to the component
that uses it: the UA core (identity, routing, trust, credentials, timers, message limit), the SIP shell
(listen addresses, transports, message limit, TCP idle timeout, TLS), the B2BUA (call limits and waits) and the
WebSocket front (the ``[ws]`` section as it is). ``python -m b2bua``, the system tests and the benchmarks
(which run ``python -m b2bua``) all start what it builds; ``tests/test_service.py`` checks that each
setting arrives. The log level is the process's, set by :func:`configure_logging`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
import time
from pathlib import Path

from rpc.server import ApiServer

from .call.b2bua import B2bua, B2buaSettings
from .call.control import Control
from .call.live import LiveCalls
from .config import Config, LogConfig
from .io.ids import RandomIds
from .io.metrics import Metrics
from .io.persistence import Persistence
from .io.runtime import Service
from .io.store import STORE_FILE
from .io.tls import TlsSettings
from .logs import SafeFormatter
from .sip.session_timer import OPTION_TAG
from .sip.timers import TimerSettings
from .sip.ua import SUPPORTED, UaSettings, UserAgent
from .sip.uri import parse_sip_uri

logger = logging.getLogger("call_api")


class CallApi:
    """The running service: the SIP runtime with the B2BUA on it, and the WebSocket front commanding it."""

    def __init__(self, config: Config, runtime: Service, b2bua: B2bua, control: Control, api: ApiServer,
                 metrics: Metrics, persistence: Persistence | None = None) -> None:
        self.config = config
        self.runtime = runtime
        self.b2bua = b2bua
        self.control = control
        self.api = api
        #: What ``GET /metrics`` serves; ``python -m b2bua`` attaches its garbage-collection policy to it.
        self.metrics = metrics
        #: The call store and its wiring, with a state directory.
        self.persistence = persistence

    async def start(self) -> None:
        """Restore the stored calls, open the SIP side, then the API; raises OSError (with the SIP side closed
        again) when either cannot bind."""
        if self.persistence is not None:
            # The restored calls' timers count from now on the core's clock (the loop's, b2bua.io.shell).
            self.persistence.restore(asyncio.get_running_loop().time())
        await self.runtime.start()
        try:
            await self.api.start()
        except OSError as exc:
            await self.runtime.stop()
            ws = self.config.ws
            raise OSError(f"the API on {ws.host} port {ws.port}: {exc}") from exc
        logger.info("call-api API ready: %s", " ".join(self.api.urls))

    async def stop(self) -> None:
        """Stop: ``/healthz`` answers 503 and new WebSocket connections are refused at once (a load balancer
        stops sending work), then the calls are ended (or, with a call store and ``state.on_stop = "keep"``, left
        for the next start: an upgrade-restart, no BYE) and the SIP side closes, then the API: a command still
        running gets Error 503 and Ended before its connection closes. The store is flushed and closed last."""
        self.b2bua.live.closing = True  # the calls ended from now on end with reason 'shutdown'
        self.api.begin_stop()
        keep = self.persistence is not None and self.config.state.on_stop == "keep"
        try:
            await self.runtime.stop(end_calls=not keep)
        finally:
            await self.api.stop()
            if self.persistence is not None:
                self.persistence.close()
                if keep:
                    logger.info("kept %d calls in the store for the next start", len(self.persistence.keeper))


def build_service(config: Config) -> CallApi:
    """The service ``config`` describes, built and not started."""
    sip, calls, timers = config.sip, config.calls, config.timers
    host, port = sip.listen[0]
    ua = UserAgent(
        RandomIds(host),
        UaSettings(
            host=sip.advertised_host or host,
            port=port,
            tls_port=sip.tls_listen[0][1] if sip.tls_listen else None,
            user=sip.user,
            display_name=sip.display_name,
            user_agent=sip.user_agent,
            outbound_proxy=parse_sip_uri(sip.outbound_proxy) if sip.outbound_proxy is not None else None,
            trusted=sip.trusted,
            credentials=config.credentials,
            # RFC 4028 section 7.1: a UA that supports session timers lists timer in Supported; OPTIONS
            # answers then say so too (section 11.2 of RFC 3261).
            supported=SUPPORTED if calls.supervision().session_timers is None else f"{SUPPORTED}, {OPTION_TAG}",
        ),
        TimerSettings(T1=timers.t1, T2=timers.t2, T4=timers.t4),
    )
    ua.layer.limits = dataclasses.replace(ua.layer.limits, max_size=sip.max_message_size)
    b2bua = B2bua(ua, B2buaSettings(max_calls=calls.max_calls, answer_timeout=calls.answer_timeout,
                                    refer_notify_timeout=calls.refer_notify_timeout,
                                    supervision=calls.supervision()),
                  LiveCalls(time.time, config.api.event_buffer))
    tls = TlsSettings(cert=sip.tls_cert, key=sip.tls_key, ca=sip.tls_ca, verify_server=sip.tls_verify_server,
                      verify_client=sip.tls_verify_client, handshake_timeout=sip.tls_handshake_timeout)
    listen = [(t, h, p) for h, p in sip.listen for t in sip.transports] + [("tls", h, p) for h, p in sip.tls_listen]
    runtime = Service(ua, b2bua, listen, advertised_host=sip.advertised_host, max_message_size=sip.max_message_size,
                      tcp_idle_timeout=sip.tcp_idle_timeout, overload=config.overload.settings(), tls=tls)
    persistence = None
    if config.state.dir is not None:
        persistence = Persistence(Path(config.state.dir) / STORE_FILE, ua, b2bua.table, resume=b2bua.resume)
        runtime.core.after = persistence.write
    control = Control(b2bua)
    metrics = Metrics(b2bua.table, ua.layer, runtime.shell)
    api = ApiServer(config.ws, runtime, control, RandomIds().cmd_id, metrics=metrics, trusted=sip.trusted,
                    sip=runtime)
    metrics.api = api
    return CallApi(config, runtime, b2bua, control, api, metrics, persistence)


def configure_logging(config: LogConfig) -> None:
    """Log to stderr at ``config.level`` (the root logger's level, so libraries' records follow it too),
    one line per record whatever the network sent (:class:`b2bua.logs.SafeFormatter`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(handlers=[handler])
    logging.getLogger().setLevel(config.level)
