"""What the live call state (b2bua/call/live.py) adds to a new call: a phone's INVITE taken by the B2BUA (call
made, callee INVITE sent), with the observer switched off, on with no subscriber, and on with one subscriber
whose every event is encoded as its CallEvent notification (rpc/views.py).

Run::

    .venv/bin/python -m benchmarks.live_costs [--count 5000]

Not a test; prints microseconds per new call (best of five rounds, the garbage collector off during each round
and run between them: the objects a round leaves make the next one's collections slower, which would measure
the host's memory, not this code). The difference between the first two rows is what every call pays for its
``created`` event (its Call object built, buffered); the third adds the encoding a subscriber costs. Later
events of a call (answered, ending, ended) are small tuples.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from ipaddress import ip_network

from b2bua.call.b2bua import B2bua
from b2bua.call.call import Call
from b2bua.call.live import CallEvent, LiveCalls, Subscription
from b2bua.io.ids import RandomIds
from b2bua.sip.address import Destination
from b2bua.sip.ua import UaSettings, UserAgent
from b2bua.sip.uri import parse_sip_uri
from benchmarks.layer_costs import invites
from rpc.views import EventText

PEER = Destination("udp", "192.0.2.1", 5060)


class Unobserved(LiveCalls):
    """The observer switched off: no call is ever observed, so no event is made."""

    def created(self, call: Call) -> None:
        return


def service(live: LiveCalls) -> tuple[UserAgent, B2bua]:
    ua = UserAgent(RandomIds("127.0.0.1"), UaSettings(host="127.0.0.1", port=5080,
                                                      outbound_proxy=parse_sip_uri("sip:127.0.0.1:5090;lr"),
                                                      trusted=(ip_network("192.0.2.0/24"),)))
    return ua, B2bua(ua, live=live)


def calls(make: Callable[[], LiveCalls], messages: list[bytes]) -> Callable[[int], float]:
    """A round of ``n`` new calls on a fresh service; returns the seconds the calls took (only they)."""
    def run(n: int) -> float:
        ua, b2bua = service(make())
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            for data in messages[:n]:
                ua.receive(data, PEER, 0.0)
                for event in ua.take_events():
                    b2bua.handle(event, 0.0)
                ua.take_datagrams()
            return time.perf_counter() - start
        finally:
            gc.enable()

    return run


def best(run: Callable[[int], float], count: int, rounds: int = 5) -> float:
    """Microseconds per call, best of ``rounds``."""
    return min(run(count) for _ in range(rounds)) / count * 1e6


def subscribed() -> LiveCalls:
    live = LiveCalls(lambda: 1_780_000_000.0)
    text = EventText()
    out: list[str] = []

    def deliver(sub: Subscription, event: CallEvent) -> None:
        out.append(text.notification(sub.id, event))
        if len(out) > 1000:
            out.clear()

    live.subscribe(deliver)
    return live


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=5000, help="new calls per round (default 5000)")
    count = parser.parse_args(argv).count
    messages = invites(count)
    rows = [("new call, observer off", best(calls(Unobserved, messages), count)),
            ("new call, observer on, no subscriber", best(calls(LiveCalls, messages), count)),
            ("new call, one subscriber (JSON encoded)", best(calls(subscribed, messages), count))]
    print(f"{'':44} us per call (best of 5 x {count})")
    for name, value in rows:
        print(f"{name:44} {value:8.2f}")


if __name__ == "__main__":
    main()
