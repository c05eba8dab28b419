"""What the sans-I/O core spends on a bridged call when it happens, and 64*T1 later when what it kept ends.

Run::

    .venv/bin/python -m benchmarks.core_costs [--calls 2000] [--rounds 3] [--profile live|deferred]

Not a test; prints, best of ``--rounds`` rounds (each a fresh service):

- **live half**: microseconds of the service's UA and B2BUA (``receive``, ``handle_timer``, the B2BUA's
  ``handle`` of each event) per call, over ``--calls`` calls placed back to back and ended at once
  (INVITE, 200, ACK, BYE, 200 through the service) on the unit tests' in-memory network
  (``tests/sipnet.py``: real messages, no sockets, a fake clock);
- **deferred half**: the same service's time per call when the fake clock then moves 40 s on and every
  transaction the calls left behind ends (Timers J, K, L and M of RFC 3261 and RFC 6026: up to 64*T1
  after the call) and is freed;
- **kept for 64*T1**: per ended call, the transactions the layer still holds and the objects the
  collector tracks that are reachable from the service (its UA and B2BUA), counted before the clock moves
  on. These are what a steady load keeps alive (rate x 32 s of them), what every older-generation
  collection walks (issue 12).

Why. Issue 12 asks why the service's CPU per call grows at a constant rate. A step of ``benchmarks.calls``
pays only the live half for its first 32 s; from then on every second also ends the transactions of the
calls of 32 s before, so the sustained cost is the sum of the two halves (docs/RELIABILITY.md, "Why CPU
per call grows after 32 s"). The collector is off while measuring (its cost is the collector's own
clock's, ``b2bua.io.collector``), and the network's own work (the phones, the delivery) is not counted.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from b2bua.call.b2bua import B2bua
from b2bua.sip.ua import UaSettings, UserAgent
from b2bua.sip.ua_events import IncomingCall
from b2bua.sip.uri import parse_sip_uri
from tests.sipnet import Network, Node

SDP_A = b"v=0\r\no=alice 10 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
SDP_B = b"v=0\r\no=bob 20 1 IN IP4 127.0.0.3\r\ns=-\r\nc=IN IP4 127.0.0.3\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n"
#: Fake seconds the clock moves on after the calls: past 64*T1 (32 s), so that every kept transaction ends.
AFTER = 40.0


class _Timed:
    """Stands for the service's UA or B2BUA on the network: the calls named go through the stopwatch
    (and the profiler, when one is set), everything else straight to the object."""

    def __init__(self, inner: Any, names: frozenset[str], meter: _Meter) -> None:
        self._inner, self._names, self._meter = inner, names, meter

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        return self._meter.wrap(attr) if name in self._names else attr


class _Meter:
    def __init__(self) -> None:
        self.seconds = 0.0
        self.profile: cProfile.Profile | None = None

    def wrap(self, f: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                if self.profile is not None:
                    return self.profile.runcall(f, *args, **kwargs)
                return f(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
        return timed


@dataclass(frozen=True, slots=True)
class Round:
    """One round: microseconds per call of each half, and what each ended call left for 64*T1."""

    live_us: float
    deferred_us: float
    transactions: float
    objects: float
    profile: str = ""


def reachable(*roots: object) -> int:
    """How many objects the collector tracks are reachable from ``roots`` (the roots included)."""
    seen: set[int] = set()
    todo = [r for r in roots if gc.is_tracked(r)]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        todo.extend(r for r in gc.get_referents(obj) if gc.is_tracked(r) and id(r) not in seen)
    return len(seen)


def one_round(calls: int, profile: str | None = None) -> Round:
    """``calls`` calls through a fresh service, then the clock moved on by :data:`AFTER`; ``profile``:
    ``"live"`` or ``"deferred"`` to profile that half."""
    net = Network(latency=1e-6)
    proxy = parse_sip_uri("sip:127.0.0.1:5080;lr")
    alice = net.add("alice", "127.0.0.2", UaSettings(outbound_proxy=proxy))
    bob = net.add("bob", "127.0.0.3", UaSettings(outbound_proxy=proxy))
    service = net.add("service", "127.0.0.1", port=5080)
    ua: UserAgent = service.ua
    app = B2bua(ua)
    meter = _Meter()
    service.ua = _Timed(ua, frozenset({"receive", "handle_timer"}), meter)  # type: ignore[assignment]
    service.app = _Timed(app, frozenset({"handle"}), meter)
    _call(net, alice, bob)  # one call first: caches and the allocator's first arenas
    net.run(until=net.now + AFTER)
    gc.collect()
    before = reachable(ua, app)
    meter.seconds = 0.0
    text = ""
    gc.disable()
    try:
        if profile == "live":
            meter.profile = cProfile.Profile()
        for _ in range(calls):
            _call(net, alice, bob)
        live = meter.seconds
        kept = len(ua.layer)
        objects = reachable(ua, app) - before
        meter.seconds = 0.0
        if profile == "deferred":
            meter.profile = cProfile.Profile()
        elif profile == "live":
            text = _top(meter.profile)
            meter.profile = None
        net.run(until=net.now + AFTER, max_steps=10_000_000)
        deferred = meter.seconds
    finally:
        gc.enable()
    if len(ua.layer) or app.table:
        raise RuntimeError(f"the service kept {len(ua.layer)} transactions and {len(app.table)} calls after "
                           f"{AFTER:g} s")
    if profile == "deferred":
        text = _top(meter.profile)
    return Round(live / calls * 1e6, deferred / calls * 1e6, kept / calls, objects / calls, text)


def _top(profile: cProfile.Profile | None, lines: int = 20) -> str:
    if profile is None:
        return ""
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(lines)
    return out.getvalue()


def _call(net: Network, alice: Node, bob: Node) -> None:
    """alice calls bob through the service, bob answers, alice hangs up; the phones forget their events."""
    caller = alice.ua.invite("sip:bob@127.0.0.3:5060", net.now, from_addr='"Alice" <sip:alice@127.0.0.2>',
                             to_addr="<sip:bob@127.0.0.3>", body=SDP_A)
    net.settle(0.001)
    incoming = next(e for e in bob.events if isinstance(e, IncomingCall))
    incoming.session.respond(200, net.now, body=SDP_B)
    net.settle(0.001)
    caller.end(net.now)
    net.settle(0.001)
    alice.events.clear()
    bob.events.clear()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per round (default 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the best of each figure is shown (default 3)")
    parser.add_argument("--profile", choices=("live", "deferred"), default=None,
                        help="also profile that half in the last round (cProfile: slower, so left out of the best)")
    args = parser.parse_args(argv)
    rounds = [one_round(args.calls, args.profile if k == args.rounds - 1 else None) for k in range(args.rounds)]
    live, deferred = min(r.live_us for r in rounds), min(r.deferred_us for r in rounds)
    print(f"{'what (per call, best of ' + str(args.rounds) + ')':<44}{'value':>12}")
    print(f"{'live half, us':<44}{live:>12.1f}")
    print(f"{'deferred half (64*T1 later), us':<44}{deferred:>12.1f}")
    print(f"{'deferred / live':<44}{deferred / live:>12.1%}")
    print(f"{'transactions kept for 64*T1':<44}{rounds[-1].transactions:>12.2f}")
    print(f"{'tracked objects kept for 64*T1':<44}{rounds[-1].objects:>12.1f}")
    if rounds[-1].profile:
        print(rounds[-1].profile)


if __name__ == "__main__":
    main()
