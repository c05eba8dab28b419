"""Parse benchmark: messages per second on one core, parse only and parse plus transaction keys.

Run: ``.venv/bin/python -m benchmarks.parse`` (add ``--seconds N`` for longer runs). Not a test.
The transaction keys are what the transaction layer reads from every message: the top Via branch,
Call-ID, From tag and CSeq (RFC 3261 section 17.1.3 and 17.2.3).
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

from b2bua.sip.parser import parse_message

from .messages import BYE, INVITE, OK


def _keys(data: bytes) -> object:
    msg = parse_message(data)
    return (msg.branch, msg.call_id, msg.from_tag, msg.cseq)


def rate(fn: Callable[[bytes], object], data: bytes, seconds: float) -> float:
    """Best of three runs of calls per second."""
    best = 0.0
    for _ in range(3):
        n = 0
        start = time.perf_counter()
        deadline = start + seconds / 3
        while True:
            for _ in range(200):
                fn(data)
            n += 200
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, n / (now - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement (default 3)")
    args = parser.parse_args()
    print(f"# {platform.python_implementation()} {platform.python_version()} on {platform.machine()}")
    print(f"{'message':10} {'bytes':>6} {'parse/s':>10} {'parse+keys/s':>13}")
    for name, data in (("INVITE", INVITE), ("200 OK", OK), ("BYE", BYE)):
        parsed = rate(parse_message, data, args.seconds)
        keyed = rate(_keys, data, args.seconds)
        print(f"{name:10} {len(data):6d} {parsed:10,.0f} {keyed:13,.0f}")


if __name__ == "__main__":
    main()
