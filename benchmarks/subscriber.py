"""One WebSocket client following every call event during a benchmark step (``benchmarks/calls.py --subscriber``),
and how far behind the service it fell.

``python -m benchmarks.subscriber URL`` subscribes to all calls (``Subscribe``, no filter) and reads until
SIGINT/SIGTERM, then prints one JSON line: events received, the largest and the 99th-percentile lag (the
moment it read an event minus the event's ``time``, both wall clock on this machine: the service's queueing
and the socket included), and whether the service dropped the subscription (SubscriptionLost). It reads as a
client would, decoding each notification. ``calls.py --subscriber`` starts it pinned to the SIPp CPU for each
call-api step and prints its line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from websockets.asyncio.client import connect


@dataclass
class Lag:
    """What the subscriber saw."""

    events: int = 0
    max_lag_s: float = 0.0
    p99_lag_s: float = 0.0
    lost: bool = False
    first_seq: int | None = None
    last_seq: int | None = None


def event_time(text: str) -> float:
    """An event's RFC 3339 ``time`` as epoch seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def follow(url: str, stop: asyncio.Event) -> Lag:
    """Follow every event at ``url`` until ``stop`` is set (or the subscription is lost)."""
    lag = Lag()
    lags: list[float] = []
    async with connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"jsonrpc": "2.0", "method": "Subscribe", "params": {}, "id": 1}))
        answer = json.loads(await ws.recv())
        if "result" not in answer:
            raise RuntimeError(f"Subscribe refused: {answer}")
        stopping = asyncio.ensure_future(stop.wait())
        while True:
            receiving = asyncio.ensure_future(ws.recv())
            done, _ = await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if receiving not in done:
                receiving.cancel()
                break
            message = json.loads(receiving.result())
            now = time.time()
            params = message.get("params", {})
            if message.get("method") == "SubscriptionLost":
                lag.lost = True
                break
            if message.get("method") != "CallEvent":
                continue
            lags.append(now - event_time(params["time"]))
            lag.events += 1
            lag.first_seq = params["seq"] if lag.first_seq is None else lag.first_seq
            lag.last_seq = params["seq"]
    if lags:
        lags.sort()
        lag.max_lag_s = round(lags[-1], 4)
        lag.p99_lag_s = round(lags[min(len(lags) - 1, int(0.99 * len(lags)))], 4)
    return lag


async def _main(url: str) -> Lag:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return await follow(url, stop)


@contextlib.contextmanager
def following(url: str | None, cpu: int, out: IO[str] | None = None) -> Iterator[None]:
    """Run the subscriber (pinned to ``cpu``) while the block runs, then print its line to ``out`` (stdout);
    ``url`` None runs nothing (a contender without the API)."""
    if url is None:
        yield
        return
    command = ["taskset", "-c", str(cpu), sys.executable, "-m", "benchmarks.subscriber", url]
    proc = subprocess.Popen(command, cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        time.sleep(0.3)  # subscribed before the step's first call
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            stdout, stderr = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        line = stdout.strip().splitlines()[-1] if stdout.strip() else f"failed: {stderr.strip()[-300:]}"
        print(f"  subscriber: {line}", file=out or sys.stdout, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.subscriber", description=__doc__.split("\n")[0])
    parser.add_argument("url", help="the Call API, e.g. ws://127.0.0.1:16059/call-api")
    args = parser.parse_args(argv)
    lag = asyncio.run(_main(args.url))
    print(json.dumps(asdict(lag)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
