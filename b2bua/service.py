"""The whole service for one configuration, assembled in one place.

:func:`build_service` is where every setting of a :class:`~b2bua.config.Config` is handed to the component
that uses it: the UA core (identity, routing, trust, credentials, timers, message limit), the SIP shell
(listen addresses, transports, message limit, TCP idle timeout), the B2BUA (call limits and waits) and the
WebSocket front (the ``[ws]`` section as it is). ``python -m b2bua``, the system tests and the benchmarks
(which run ``python -m b2bua``) all start what it builds; ``tests/test_service.py`` checks that each
setting arrives. The log level is the process's, set by :func:`configure_logging`.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time

from rpc.server import ApiServer

from .call.b2bua import B2bua, B2buaSettings
from .call.control import Control
from .call.live import LiveCalls
from .config import Config, LogConfig
from .io.ids import RandomIds
from .io.runtime import Service
from .logs import SafeFormatter
from .sip.timers import TimerSettings
from .sip.ua import UaSettings, UserAgent
from .sip.uri import parse_sip_uri

logger = logging.getLogger("call_api")


class CallApi:
    """The running service: the SIP runtime with the B2BUA on it, and the WebSocket front commanding it."""

    def __init__(self, config: Config, runtime: Service, b2bua: B2bua, control: Control, api: ApiServer) -> None:
        self.config = config
        self.runtime = runtime
        self.b2bua = b2bua
        self.control = control
        self.api = api

    async def start(self) -> None:
        """Open the SIP side, then the API; raises OSError (with the SIP side closed again) when either cannot bind."""
        await self.runtime.start()
        try:
            await self.api.start()
        except OSError as exc:
            await self.runtime.stop()
            ws = self.config.ws
            raise OSError(f"the API on {ws.host} port {ws.port}: {exc}") from exc
        logger.info("call-api API ready: %s", " ".join(self.api.urls))

    async def stop(self) -> None:
        """Close the API, then end every call (their end reason: ``shutdown``) and close the SIP side."""
        self.b2bua.live.closing = True
        await self.api.stop()
        await self.runtime.stop()


def build_service(config: Config) -> CallApi:
    """The service ``config`` describes, built and not started."""
    sip, calls, timers = config.sip, config.calls, config.timers
    host, port = sip.listen[0]
    ua = UserAgent(
        RandomIds(host),
        UaSettings(
            host=sip.advertised_host or host,
            port=port,
            user=sip.user,
            display_name=sip.display_name,
            user_agent=sip.user_agent,
            outbound_proxy=parse_sip_uri(sip.outbound_proxy) if sip.outbound_proxy is not None else None,
            trusted=sip.trusted,
            credentials=config.credentials,
        ),
        TimerSettings(T1=timers.t1, T2=timers.t2, T4=timers.t4),
    )
    ua.layer.limits = dataclasses.replace(ua.layer.limits, max_size=sip.max_message_size)
    b2bua = B2bua(ua, B2buaSettings(max_calls=calls.max_calls, answer_timeout=calls.answer_timeout,
                                    refer_notify_timeout=calls.refer_notify_timeout),
                  LiveCalls(time.time, config.api.event_buffer))
    runtime = Service(ua, b2bua, [(t, h, p) for h, p in sip.listen for t in sip.transports],
                      advertised_host=sip.advertised_host, max_message_size=sip.max_message_size,
                      tcp_idle_timeout=sip.tcp_idle_timeout, overload=config.overload.settings())
    control = Control(b2bua)
    api = ApiServer(config.ws, runtime, control, RandomIds().cmd_id)
    return CallApi(config, runtime, b2bua, control, api)


def configure_logging(config: LogConfig) -> None:
    """Log to stderr at ``config.level`` (the root logger's level, so libraries' records follow it too),
    one line per record whatever the network sent (:class:`b2bua.logs.SafeFormatter`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(handlers=[handler])
    logging.getLogger().setLevel(config.level)
