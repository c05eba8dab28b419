"""The ``call-api`` command: read flags and the TOML file, start the service, stop cleanly on SIGINT/SIGTERM.

The event loop is uvloop when it is installed (``CALL_API_LOOP=asyncio`` forces plain asyncio).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from rpc.server import ApiServer

from .call.b2bua import B2bua, B2buaSettings
from .call.control import Control
from .config import Config, ConfigError, build_parser, load_config
from .io.collector import Collector
from .io.ids import RandomIds
from .io.loop import new_event_loop
from .io.runtime import Service

__all__ = ["build_parser", "main"]

logger = logging.getLogger("call_api")


async def _serve(config: Config) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    service = Service(config)
    calls = config.calls
    b2bua = B2bua(service.ua, B2buaSettings(max_calls=calls.max_calls, answer_timeout=calls.answer_timeout))
    service.app = b2bua
    try:
        await service.start()
    except OSError as exc:
        logger.error("call-api cannot start: %s", exc)
        return 1
    collector = Collector()
    collector.start()
    api = ApiServer(config.ws, service, Control(b2bua), RandomIds().cmd_id)
    try:
        await api.start()
    except OSError as exc:
        logger.error("call-api cannot start the API on %s port %d: %s", config.ws.host, config.ws.port, exc)
        await service.stop()
        return 1
    logger.info("call-api API ready: %s", " ".join(api.urls))
    try:
        await stop.wait()
    finally:
        collector.stop()
        await api.stop()
        await service.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the service; a bad setting prints one line naming it and returns 2 before anything starts."""
    try:
        config = load_config(argv)
    except ConfigError as exc:
        print(f"call-api: bad configuration: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log.level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(_serve(config))


if __name__ == "__main__":
    sys.exit(main())
