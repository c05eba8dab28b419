"""The ``call-api`` command: read flags and the TOML file, start the service, stop cleanly on SIGINT/SIGTERM.

The event loop is uvloop when it is installed (``CALL_API_LOOP=asyncio`` forces plain asyncio).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from .config import Config, build_parser, load_config
from .errors import ConfigError
from .io.collector import Collector
from .io.loop import new_event_loop
from .service import build_service, configure_logging

__all__ = ["build_parser", "main"]

logger = logging.getLogger("call_api")


async def _serve(config: Config) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    service = build_service(config)
    try:
        await service.start()
    except OSError as exc:
        logger.error("call-api cannot start: %s", exc)
        return 1
    collector = Collector()
    collector.start()
    service.metrics.collector = collector
    try:
        await stop.wait()
    finally:
        collector.stop()
        await service.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the service; a bad setting prints one line naming it and returns 2 before anything starts."""
    try:
        config = load_config(argv)
    except ConfigError as exc:
        print(f"call-api: bad configuration: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(_serve(config))


if __name__ == "__main__":
    sys.exit(main())
