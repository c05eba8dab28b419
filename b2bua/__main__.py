"""The ``call-api`` command: read flags and the TOML file, start the service, stop cleanly on SIGINT/SIGTERM.

Until the engine lands this starts, logs that it is ready and waits for a signal.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from .config import Config, ConfigError, build_parser, load_config

__all__ = ["build_parser", "main"]

logger = logging.getLogger("call_api")


async def _serve(config: Config) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    logger.info("call-api ready")
    await stop.wait()
    logger.info("call-api stopped")


def main(argv: list[str] | None = None) -> int:
    """Run the service; a bad setting prints one line naming it and returns 2 before anything starts."""
    try:
        config = load_config(argv)
    except ConfigError as exc:
        print(f"call-api: bad configuration: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log.level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(_serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
