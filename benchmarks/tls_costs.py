"""What SIP over TLS costs the service against TCP, same run, same machine (issue 16).

Run: ``.venv/bin/python -m benchmarks.tls_costs`` (``--quick`` for a few seconds, ``--help``). Not a test.

The service runs pinned to CPU 0 (``taskset -c 0``); everything else (this script, Kamailio, SIPp) on CPU 1.
Certificates are made for the run (``tests/certs.py``: an EC P-256 CA and leaves) in the logs folder.

(a) **Handshakes.** One service with a TCP and a TLS listener; this script opens new connections for
``--handshake-seconds`` each way, ``--concurrency`` at a time: each connection sends one OPTIONS, reads its
200 and closes. Over TLS each is a full handshake (TLS 1.3, no session resumption: no session is kept from
one connection to the next). Printed: connections made per second, failures, the service's CPU seconds
and its CPU milliseconds per connection (the figure that does not depend on the load generator keeping up).

(b) **Bridged calls.** ``sipp-scenarios/bench_uac_target.xml`` on UDP -> the service -> its outbound proxy
over TLS (or TCP) -> Kamailio with its TLS module (``sipp-scenarios/kamailio.cfg -A WITH_TLS``, one TCP/TLS
worker, warnings only) -> UDP -> ``bench_uas.xml``; the Request-URI user ``port<N>`` is what Kamailio routes
to the callee's port. Kamailio record-routes, so the ACK and BYE take the same path; the service keeps one
connection to Kamailio, so this is the cost of TLS records per message, not of handshakes. Each rate runs
over TCP then over TLS, each step against a service started afresh (``benchmarks/calls.py`` ``run_step``:
SIPp's counts of successful and failed calls and retransmissions, the service's CPU seconds).

Every process started is stopped at the end, also on Ctrl-C. The raw numbers go to
``benchmarks/results/tls_costs-<timestamp>.json``, the logs to ``benchmarks/results/tls_costs-<timestamp>/``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks import calls
from benchmarks.calls import HEADER, Contender, Run, Step, run_step
from harness.kamailio import Kamailio, PortMap
from harness.ports import check_free_tcp, check_free_udp
from harness.procfs import cpu_seconds
from harness.service import call_api_argv
from harness.sip_probe import wait_answering
from tests.certs import Authority, Issued

HOST = "127.0.0.1"
PATHS = ("tcp", "tls")


@dataclass(frozen=True)
class Ports:
    """Every port of the run from ``--base-port`` (16900: base+51 to base+81, SIPp's control and media ports 100 and
    200 above its SIP ports, clear of the other benchmarks and their smoke tests)."""

    base: int

    @property
    def service(self) -> int:
        return self.base + 80

    @property
    def service_tls(self) -> int:
        return self.base + 81

    @property
    def ws(self) -> int:
        return self.base + 59

    @property
    def probe(self) -> int:
        return self.base + 51

    @property
    def proxy(self) -> int:
        return self.base + 60

    @property
    def proxy_tls(self) -> int:
        return self.base + 65

    @property
    def uac(self) -> int:
        return self.base + 61

    @property
    def uas(self) -> int:
        return self.base + 62


# -- (a) handshakes ----------------------------------------------------------------------------------


@dataclass
class Handshakes:
    """New connections each making one OPTIONS transaction, over one transport."""

    path: str
    seconds: float
    connections: int
    failed: int
    service_cpu: float

    @property
    def per_second(self) -> float:
        return self.connections / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_ms_per_connection(self) -> float | None:
        return 1000 * self.service_cpu / self.connections if self.connections else None


def options(n: int, path: str, port: int) -> bytes:
    return (f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\nVia: SIP/2.0/{path.upper()} {HOST}:9;branch=z9hG4bKhs{n}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:hs@{HOST}>;tag=hs{n}\r\nTo: <sip:{HOST}>\r\nCall-ID: hs-{n}@bench\r\n"
            "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()


_LENGTH = re.compile(rb"\r\n(?:Content-Length|l) *: *(\d+)", re.IGNORECASE)


async def one_connection(n: int, path: str, port: int, context: ssl.SSLContext | None) -> bool:
    """Connect (a full TLS handshake when ``context``), one OPTIONS, its 200, close; whether it all worked."""
    try:
        reader, writer = await asyncio.open_connection(HOST, port, ssl=context,
                                                       server_hostname=HOST if context else None)
    except (OSError, ssl.SSLError):
        return False
    try:
        writer.write(options(n, path, port))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        length = _LENGTH.search(head)
        if length and int(length[1]):
            await reader.readexactly(int(length[1]))
        return head.startswith(b"SIP/2.0 200 ")
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


async def connect_for(path: str, port: int, context: ssl.SSLContext | None, seconds: float, concurrency: int,
                      first: int) -> tuple[int, int, float]:
    """``concurrency`` workers making connections one after another for ``seconds``: (made, failed, elapsed)."""
    made = failed = 0
    counter = first
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds

    async def worker() -> None:
        nonlocal made, failed, counter
        while loop.time() < end:
            counter += 1
            if await one_connection(counter, path, port, context):
                made += 1
            else:
                failed += 1

    start = loop.time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return made, failed, loop.time() - start


def measure_handshakes(service: subprocess.Popen[bytes], ports: Ports, ca: Path, seconds: float,
                       concurrency: int) -> list[Handshakes]:
    """TCP then TLS against the running ``service``: one row each."""
    context = ssl.create_default_context(cafile=str(ca))
    rows = []
    for n, path in enumerate(PATHS):
        port = ports.service if path == "tcp" else ports.service_tls
        cpu0 = cpu_seconds(service.pid)
        made, failed, elapsed = asyncio.run(connect_for(path, port, context if path == "tls" else None, seconds,
                                                        concurrency, n * 10_000_000))
        time.sleep(0.5)  # the last closes, on the service's side too
        rows.append(Handshakes(path, elapsed, made, failed, cpu_seconds(service.pid) - cpu0))
    return rows


HANDSHAKE_HEADER = ("| transport | seconds | connections | failed | connections/s | service CPU s "
                    "| service CPU ms per connection |\n|---|---:|---:|---:|---:|---:|---:|")


def handshake_row(h: Handshakes) -> str:
    per = "-" if h.cpu_ms_per_connection is None else f"{h.cpu_ms_per_connection:.2f}"
    label = "TLS (full handshake)" if h.path == "tls" else "TCP"
    return (f"| {label} | {h.seconds:.1f} | {h.connections} | {h.failed} | {h.per_second:.0f} | "
            f"{h.service_cpu:.2f} | {per} |")


# -- (b) bridged calls ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    authority: Authority
    service: Issued
    proxy: Issued

    @classmethod
    def make(cls, folder: Path) -> Pki:
        authority = Authority(folder, "bench")
        return cls(authority, authority.issue("service", [HOST, "localhost"]),
                   authority.issue("proxy", [HOST, "localhost"]))


def service_flags(ports: Ports, pki: Pki, outbound: str | None, loop: str, extra: list[str]) -> list[str]:
    flags = ["--sip-listen", f"{HOST}:{ports.service}", "--sip-tls-listen", f"{HOST}:{ports.service_tls}",
             "--sip-tls-cert", str(pki.service.cert), "--sip-tls-key", str(pki.service.key),
             "--sip-tls-ca", str(pki.authority.ca), "--ws-port", str(ports.ws), "--log-level", "WARNING"]
    if outbound is not None:
        flags += ["--outbound-proxy", outbound]
    return [*flags, *extra]


def start_service(run: Run, flags: list[str], loop: str, ports: Ports, name: str,
                  ) -> tuple[subprocess.Popen[bytes], Path]:
    log = run.logdir / f"{name}.stderr"
    with open(log, "wb") as err:
        proc = run.procs.start(call_api_argv(flags, cpu=calls.SERVICE_CPU), cwd=calls.ROOT,
                               env=dict(os.environ, CALL_API_LOOP=loop), stderr=err)
    wait_answering(proc, ports.probe, ports.service, f"call-api ({name})", str(log))
    return proc, log


def start_kamailio(run: Run, ports: Ports, pki: Pki) -> Kamailio:
    config = run.logdir / "kamailio-tls.cfg"
    config.write_text("[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n"
                      f"certificate = {pki.proxy.cert}\nprivate_key = {pki.proxy.key}\nca_list = {pki.authority.ca}\n")
    proxy = Kamailio(run.logdir / "kamailio", PortMap(proxy=ports.proxy, service=ports.service), phone_transport="udp",
                     log_level=1, defines=["WITH_TLS", f"PROXY_TLS_PORT={ports.proxy_tls}",
                                           f"SERVICE_TLS_PORT={ports.service_tls}", f'TLS_CONFIG="{config}"'])
    proxy.start()
    return proxy


def group_cpu(pgid: int) -> float:
    """CPU seconds of every process of the group ``pgid`` (Kamailio's main process and its workers)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    total += cpu_seconds(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return total


def calls_step(run: Run, args: argparse.Namespace, ports: Ports, pki: Pki, proxy: Kamailio, path: str,
               rate: int) -> tuple[Step, float]:
    """One step at ``rate`` with the service's next hop over ``path``; the step and Kamailio's CPU seconds."""
    port = ports.proxy_tls if path == "tls" else ports.proxy
    outbound = f"sip:{HOST}:{port};transport={path};lr"
    name = f"calls-{path}-{rate}"
    proc, log = start_service(run, service_flags(ports, pki, outbound, args.loop, args.service_arg), args.loop,
                              ports, name)
    contender = Contender("call-api", args.loop, ports.service, ports.ws, [rate], proc=proc, log=log)
    assert proxy.pid is not None
    proxy_cpu0 = group_cpu(proxy.pid)
    try:
        step = run_step(run.procs, args, contender, calls.BENCH, rate, run.logdir / name, user=f"port{ports.uas}")
    finally:
        run.procs.stop(proc, signal.SIGTERM, grace=10.0)
    step.contender = f"{path.upper()} call-api/{args.loop}"
    return step, group_cpu(proxy.pid) - proxy_cpu0


COMPARE_HEADER = ("| rate/s | TCP: successful / failed / retrans | TLS: successful / failed / retrans "
                  "| service CPU s TCP | TLS | TLS/TCP | Kamailio CPU s TCP | TLS |\n"
                  "|---:|---|---|---:|---:|---:|---:|---:|")


def compare_row(tcp: Step, tls: Step, tcp_proxy: float, tls_proxy: float) -> str:
    ratio = f"{tls.service_cpu / tcp.service_cpu:.2f}" if tcp.service_cpu > 0 else "-"
    return (f"| {tcp.rate} | {tcp.successful} / {tcp.failed} / {tcp.retransmissions} "
            f"| {tls.successful} / {tls.failed} / {tls.retransmissions} | {tcp.service_cpu:.2f} "
            f"| {tls.service_cpu:.2f} | {ratio} | {tcp_proxy:.2f} | {tls_proxy:.2f} |")


# -- main --------------------------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="a few seconds: --handshake-seconds 2 --rates 20 --seconds 3 --hold 0.5")
    parser.add_argument("--handshake-seconds", type=float, default=15.0, help="(a): seconds per transport")
    parser.add_argument("--concurrency", type=int, default=8, help="(a): connections at once (default 8)")
    parser.add_argument("--rates", default="100,200,300", help="(b): call rates per second, stepped up in order")
    parser.add_argument("--seconds", type=float, default=20.0, help="(b): length of each step (default 20)")
    parser.add_argument("--hold", type=float, default=1.0, help="(b): seconds each call stays up (default 1)")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between steps (default 2)")
    parser.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"], help="the service's event loop")
    parser.add_argument("--base-port", type=int, default=16900, help="ports base+51 to base+81, base+161 to base+264")
    parser.add_argument("--results", type=Path, default=calls.RESULTS, help="folder of the report and logs")
    parser.add_argument("--service-arg", action="append", default=[], metavar="ARG",
                        help="one more argument for the call-api command line (repeat: --service-arg=--flag)")
    args = parser.parse_args(argv)
    if args.quick:
        args.handshake_seconds, args.rates, args.seconds, args.hold, args.pause = 2.0, "20", 3.0, 0.5, 0.5
    try:
        args.rate_list = [int(r) for r in args.rates.split(",") if r.strip()]
    except ValueError:
        parser.error(f"--rates takes comma-separated integers: {args.rates!r}")
    # What benchmarks.calls.run_step reads.
    args.uac_port, args.uas_port = args.base_port + 61, args.base_port + 62
    args.window, args.stall_at, args.stall_for, args.subscriber, args.scrape = 10.0, None, None, False, None
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    ports = Ports(args.base_port)
    check_free_udp([ports.service, ports.proxy, ports.uac, ports.uas, ports.probe, ports.uac + 100, ports.uas + 100,
                    ports.uac + 200, ports.uas + 200, ports.uac + 202, ports.uas + 202])
    check_free_tcp([ports.service, ports.service_tls, ports.ws, ports.proxy, ports.proxy_tls])
    run = Run.create("tls_costs", args.results)
    pki = Pki.make(run.logdir / "pki")
    report: dict[str, Any] = {"command": run.command, "machine": run.machine(None), "settings": {
        k: v for k, v in vars(args).items() if isinstance(v, int | float | str | list)}}
    with run.signals():
        proc, _ = start_service(run, service_flags(ports, pki, None, args.loop, args.service_arg), args.loop, ports,
                                "handshakes")
        handshakes = measure_handshakes(proc, ports, pki.authority.ca, args.handshake_seconds, args.concurrency)
        run.procs.stop(proc, signal.SIGTERM, grace=10.0)
        print(f"## Handshakes: new connections, one OPTIONS each, {args.concurrency} at once "
              f"(call-api/{args.loop} on CPU {calls.SERVICE_CPU}, the client on CPU {calls.SIPP_CPU})\n")
        print(HANDSHAKE_HEADER)
        for h in handshakes:
            print(handshake_row(h))
        print(flush=True)
        report["handshakes"] = [asdict(h) for h in handshakes]

        proxy = start_kamailio(run, ports, pki)
        pairs: list[tuple[Step, Step, float, float]] = []
        try:
            for rate in args.rate_list:
                done = {}
                for path in PATHS:
                    time.sleep(args.pause)
                    done[path] = calls_step(run, args, ports, pki, proxy, path, rate)
                    step = done[path][0]
                    print(f"### {step.contender} {rate}/s, {args.seconds:g} s: "
                          f"{'clean' if step.clean else 'NOT clean'}", flush=True)
                (tcp, tcp_proxy), (tls, tls_proxy) = done["tcp"], done["tls"]
                pairs.append((tcp, tls, tcp_proxy, tls_proxy))
        finally:
            proxy.stop()
        print("\n## Bridged calls: SIPp -UDP-> call-api -TCP or TLS-> Kamailio -UDP-> SIPp\n")
        print(HEADER)
        for tcp, tls, _, _ in pairs:
            print(calls.row(tcp))
            print(calls.row(tls))
        print("\n" + COMPARE_HEADER)
        for pair in pairs:
            print(compare_row(*pair))
        report["calls"] = [{"rate": tcp.rate, "tcp": {**asdict(tcp), "clean": tcp.clean},
                            "tls": {**asdict(tls), "clean": tls.clean},
                            "kamailio_cpu": {"tcp": tcp_proxy, "tls": tls_proxy}}
                           for tcp, tls, tcp_proxy, tls_proxy in pairs]
    out = run.out_json
    out.write_text(json.dumps(report, indent=2, default=str))
    print(f"\n{run.command}\nreport: {calls.shown(out)}; logs: {calls.shown(run.logdir)}")
    clean = all(s.clean for tcp, tls, _, _ in pairs for s in (tcp, tls)) and all(h.failed == 0 for h in handshakes)
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
