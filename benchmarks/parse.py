"""Parse benchmark: messages per second on one core, parse only and parse plus transaction keys.

Run: ``.venv/bin/python -m benchmarks.parse`` (add ``--seconds N`` for longer runs). Not a test.
The transaction keys are what the transaction layer reads from every message: the top Via branch,
Call-ID, From tag and CSeq (RFC 3261 section 17.1.3 and 17.2.3).

Columns: ``parse`` is framing, start line, header split and the mandatory-header counts
(``parse_message(data, check=False)``, what the transaction layer does first with every datagram);
``parse+keys`` adds the transaction keys (top Via, Call-ID, From tag, CSeq, parsed on first use);
``checked+keys`` is ``parse_message(data)`` with every mandatory header's structure checked, what a
message costs before it reaches the layers above the transactions.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

from b2bua.sip.parser import parse_message

from .messages import BYE, INVITE, OK


def _lazy(data: bytes) -> object:
    return parse_message(data, check=False)


def _keys(data: bytes) -> object:
    msg = parse_message(data, check=False)
    return (msg.branch, msg.call_id, msg.from_tag, msg.cseq)


def _checked(data: bytes) -> object:
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
    print(f"{'message':10} {'bytes':>6} {'parse/s':>10} {'parse+keys/s':>13} {'checked+keys/s':>15}")
    for name, data in (("INVITE", INVITE), ("200 OK", OK), ("BYE", BYE)):
        parsed = rate(_lazy, data, args.seconds)
        keyed = rate(_keys, data, args.seconds)
        checked = rate(_checked, data, args.seconds)
        print(f"{name:10} {len(data):6d} {parsed:10,.0f} {keyed:13,.0f} {checked:15,.0f}")


if __name__ == "__main__":
    main()
