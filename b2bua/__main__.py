"""The ``call-api`` command: read flags, start the service, stop cleanly on SIGINT/SIGTERM.

Until the engine lands this starts, logs that it is ready and waits for a signal.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

logger = logging.getLogger("call_api")


def build_parser() -> argparse.ArgumentParser:
    """The public command line (names fixed by the engine issue: operators script them)."""
    parser = argparse.ArgumentParser(prog="call-api", description=__doc__)
    parser.add_argument("--config", metavar="FILE", help="TOML configuration file (default: none)")
    parser.add_argument("--sip-listen", metavar="HOST:PORT", action="append",
                        help="SIP listen address, repeatable (default: 127.0.0.1:5080)")
    parser.add_argument("--sip-transport", choices=["udp", "tcp"], action="append",
                        help="SIP transport, repeatable (default: udp and tcp)")
    parser.add_argument("--outbound-proxy", metavar="URI", help="SIP URI of the outbound proxy (default: none)")
    parser.add_argument("--trusted", metavar="CIDR", action="append",
                        help="network trusted to create calls, repeatable (default: loopback)")
    parser.add_argument("--ws-host", metavar="HOST", help="WebSocket host (default: localhost)")
    parser.add_argument("--ws-port", metavar="PORT", type=int, help="WebSocket port (default: 5059)")
    parser.add_argument("--ws-path", metavar="PATH", help="WebSocket path (default: /call-api)")
    parser.add_argument("--log-level", metavar="LEVEL", default="INFO", help="log level (default: INFO)")
    return parser


async def _serve() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    logger.info("call-api ready")
    await stop.wait()
    logger.info("call-api stopped")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(_serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
