"""The network fuzzer's long run (issue 17): 1,000,000 mutated datagrams and frames against the running
service by default, then the same checks as the suite's short run (tests/system/test_netfuzz.py).

Run (under the shared lock, on the rig's ports shifted as the system tests are)::

    CALL_API_RIG_PORT_OFFSET=600 flock /tmp/callapi-heavy.lock .venv/bin/python -m benchmarks.netfuzz

``--datagrams``, ``--tcp`` (connections), ``--ws`` (frames), ``--seed``, ``--rate`` (datagrams per second)
and ``--workdir`` (keeps the service log) change the run.  It prints what it sent, what came back (SIP
status codes over UDP, TCP bytes, JSON-RPC responses), the checks, and the verdict; the exit status is 0
when the verdict is clean.  The fuzzer itself is ``tests/system/netfuzz.py``, shared with the suite.  It
lives with the benchmarks as ``benchmarks/loss.py`` does: a long run with real processes that prints a
report and asserts nothing on time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from harness.kamailio import PortMap
from tests.system.netfuzz import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.netfuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--datagrams", type=int, default=800_000, help="mutated SIP datagrams over UDP")
    parser.add_argument("--tcp", type=int, default=20_000, help="TCP connections, each 1-3 mutated messages")
    parser.add_argument("--ws", type=int, default=200_000, help="WebSocket frames (mutated JSON-RPC, raw)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=1000.0, help="datagrams per second, at most")
    parser.add_argument("--workdir", type=Path, help="where the logs go (default: a temporary folder)")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="call-api-netfuzz-"))
    report = run(PortMap.from_env(), workdir, datagrams=args.datagrams, tcp_connections=args.tcp,
                 ws_frames=args.ws, seed=args.seed, rate=args.rate, progress=lambda line: print(line, flush=True))
    print(report.report())
    print(f"logs: {workdir}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
