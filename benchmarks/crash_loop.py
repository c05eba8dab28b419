"""A crash loop (issue 15): bridged calls under load while the service is killed with SIGKILL and started again.

Run (root of the checkout; about two and a half minutes)::

    .venv/bin/python -m benchmarks.crash_loop [--rate 200] [--hold 5] [--minutes 2] [--kill-every 20]

SIPp phones through Kamailio (the system tests' rig, ``harness``): a caller places ``--rate`` calls a second,
each held ``--hold`` seconds and ended by the caller's BYE; a callee answers them all. The service runs with a
state directory; every ``--kill-every`` seconds it gets SIGKILL and is started again on the same addresses.

At each kill the script reads the store (the calls it holds are the answered ones the restart will bring back)
and SIPp's own count of calls in progress at the caller; the difference is the calls in setup, whose
transactions no store keeps. At the end it prints, per kill, the calls kept and in setup, SIPp's totals for both
phones, and the verdict: every call that was in the store at a kill must have ended cleanly at both phones (its
BYE reached the other party: SIPp counts it successful), and the calls that failed are listed by their state at
the kill. Exit 0 on that verdict, 1 otherwise.

What happens to a call in setup at a kill, by design (docs/RELIABILITY.md, "Restart"): the caller's INVITE
retransmission reaches the new process, which bridges it as a new call; the callee's 2xx to the old INVITE
reaches the new process, which ACKs and BYEs it. A call whose 2xx the caller had but whose ACK the old process
never saw is lost: its later BYE gets 481.
"""

from __future__ import annotations

import argparse
import re
import signal
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from b2bua.io.store import STORE_FILE
from harness.kamailio import KamailioLauncher, PortMap
from harness.ports import free_tcp_port
from harness.service import ServiceProcess
from harness.sipp import SippLauncher

#: The rig's ports moved out of the system tests' way (benchmarks use 16000-16999).
PORT_OFFSET = 11500


@dataclass
class Kill:
    at: float
    stored: set[str]
    in_progress: int


def stored_call_ids(path: Path) -> set[str]:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)
    except sqlite3.OperationalError:
        return set()
    try:
        return {row[0] for row in db.execute("SELECT call_id FROM calls")}
    except sqlite3.OperationalError:
        return set()
    finally:
        db.close()


def current_calls(stat_file: Path) -> int:
    """SIPp's CurrentCall from the last line of its statistics file (-trace_stat)."""
    try:
        lines = stat_file.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return 0
    if len(lines) < 2:
        return 0
    header = lines[0].split(";")
    row = lines[-1].split(";")
    return int(row[header.index("CurrentCall")]) if "CurrentCall" in header else 0


def failed_call_ids(errors: Path) -> set[str]:
    """The Call-IDs of the calls SIPp logged as failed (its -trace_err file)."""
    try:
        text = errors.read_text(errors="replace")
    except FileNotFoundError:
        return set()
    return set(re.findall(r"Call-Id[: ]+'?([^'\s]+)", text, re.IGNORECASE))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="calls per second")
    parser.add_argument("--hold", type=float, default=5.0, help="seconds each call is held")
    parser.add_argument("--minutes", type=float, default=2.0, help="how long calls are placed")
    parser.add_argument("--kill-every", type=float, default=20.0, help="seconds between kills")
    parser.add_argument("--port-offset", type=int, default=PORT_OFFSET, help="added to the rig's ports")
    parser.add_argument("--keep", type=Path, default=None, help="keep the logs and files in this folder")
    args = parser.parse_args(argv)
    ports = PortMap().shifted(args.port_offset)
    seconds = args.minutes * 60
    calls = int(args.rate * seconds)
    with tempfile.TemporaryDirectory(prefix="call-api-crash-loop-") as folder:
        work = args.keep or Path(folder)
        state = work / "state"
        store = state / STORE_FILE
        proxies = KamailioLauncher(work / "proxy", ports)
        phones = SippLauncher(work / "sipp", ports, timeout_s=seconds + 60)
        flags = ["--sip-listen", f"127.0.0.1:{ports.service}", "--outbound-proxy", f"sip:127.0.0.1:{ports.proxy};lr",
                 "--ws-port", str(free_tcp_port()), "--state-dir", str(state)]
        services: list[ServiceProcess] = []
        kills: list[Kill] = []
        try:
            proxies()
            services.append(ServiceProcess(flags, work / "call-api-0.log").start())
            callee = phones("uas_answer.xml", phone="bob", calls=calls)
            caller = phones("uac_call.xml", phone="alice", call="bob", calls=calls, rate=args.rate,
                            pause_ms=round(args.hold * 1000),
                            extra_args=["-trace_stat", "-fd", "1", "-stf", str(work / "caller_stat.csv")])
            started = time.monotonic()
            while time.monotonic() - started < seconds:
                time.sleep(min(args.kill_every, seconds - (time.monotonic() - started)))
                if time.monotonic() - started >= seconds:
                    break
                proc = services[-1].proc
                assert proc is not None
                kept, in_progress = stored_call_ids(store), current_calls(work / "caller_stat.csv")
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                kills.append(Kill(time.monotonic() - started, kept, in_progress))
                print(f"{kills[-1].at:6.1f} s: killed with {len(kept)} calls kept, ~{max(in_progress - len(kept), 0)}"
                      " in setup", flush=True)
                services.append(ServiceProcess(flags, work / f"call-api-{len(services)}.log").start())
            results = [caller.wait(args.hold + 90), callee.wait(60)]
        finally:
            phones.stop_all()
            for service in services:
                service.stop()
            proxies.stop_all()
        failed = failed_call_ids(results[0].errors_path)
        kept_then_failed = sorted({call for kill in kills for call in kill.stored} & failed)
        print()
        print(f"{'kill at':>8} {'kept':>6} {'in setup':>9} {'kept, failed':>13}")
        for kill in kills:
            print(f"{kill.at:7.1f}s {len(kill.stored):6d} {max(kill.in_progress - len(kill.stored), 0):9d} "
                  f"{len(kill.stored & failed):13d}")
        for result in results:
            print(f"\n{result.name}: exit {result.returncode} ({result.meaning()})\n{result.statistics()}")
        print(f"\nfailed at the caller: {len(failed)}; of them kept at a kill: {len(kept_then_failed)}")
        verdict = not kept_then_failed and all(not result.killed for result in results)
        print("PASS: every call kept at a kill ended cleanly" if verdict else
              f"FAIL: kept calls that failed: {', '.join(kept_then_failed[:10])}")
        return 0 if verdict else 1


if __name__ == "__main__":
    sys.exit(main())
