"""What keeping calls across a restart costs (issue 15): per answered call on the event loop, and a restore.

Run::

    .venv/bin/python -m benchmarks.store_costs [--calls 10000]

Not a test; prints, best of five rounds:

- **record**: ``call_record`` of an answered call (two sessions with their dialogs and shed INVITEs, two SDP
  memories, as JSON): what the loop spends each time a kept call changes (answered, SDP relayed, held ...);
- **keeper + put**: ``CallKeeper.take_writes`` for one changed call plus ``SqliteStore.put`` (a lock and a
  dict assignment: the commit is the writer thread's);
- **delete**: the same for a call that ended;
- **restore N calls**: a store file holding ``--calls`` answered calls (one real call's record, with its
  Call-IDs and tags made unique), opened and every call rebuilt into a fresh UA and call table, each written
  back with its jumped CSeq: what a start after a crash adds before the SIP listeners open. Issue 15 asks
  for 10,000 held calls restored in under 5 s.

The answered call is made over the unit tests' in-memory network (``tests/sipnet.py``): real messages through
the real UA and B2BUA, no sockets.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from b2bua.call.b2bua import B2bua
from b2bua.call.call import Call
from b2bua.call.record import CallKeeper, call_record
from b2bua.io.persistence import Persistence
from b2bua.io.store import STORE_FILE, SqliteStore
from b2bua.sip.ua import UaSettings
from b2bua.sip.ua_events import IncomingCall
from b2bua.sip.uri import parse_sip_uri
from tests.sipnet import Network, Node

SDP_A = b"v=0\r\no=alice 10 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
SDP_B = b"v=0\r\no=bob 20 1 IN IP4 127.0.0.3\r\ns=-\r\nc=IN IP4 127.0.0.3\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n"


def answered_call() -> tuple[Network, Node, B2bua, Call]:
    """alice -> service -> bob over the in-memory network, answered."""
    net = Network()
    proxy = parse_sip_uri("sip:127.0.0.1:5080;lr")
    alice = net.add("alice", "127.0.0.2", UaSettings(outbound_proxy=proxy))
    bob = net.add("bob", "127.0.0.3", UaSettings(outbound_proxy=proxy))
    service = net.add("service", "127.0.0.1", port=5080)
    app = B2bua(service.ua)
    service.app = app
    caller = alice.ua.invite("sip:bob@127.0.0.3:5060", net.now, from_addr='"Alice" <sip:alice@127.0.0.2>',
                             to_addr="<sip:bob@127.0.0.3>", body=SDP_A)
    net.settle()
    incoming = next(e for e in bob.events if isinstance(e, IncomingCall))
    incoming.session.respond(200, net.now, body=SDP_B)
    net.settle()
    call = app.table.find(caller.call_id)
    assert call is not None
    return net, service, app, call


def best(run: Callable[[int], None], count: int, rounds: int = 5) -> float:
    """Microseconds per item, best of ``rounds`` runs of ``count`` items."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        run(count)
        times.append(time.perf_counter() - started)
    return min(times) / count * 1e6


def records(template: bytes, call: Call, count: int) -> dict[str, bytes]:
    """``count`` records like ``template``, each with its own Call-IDs and tags."""
    names = [leg.call_id for leg in call.legs.values()]
    tags = [leg.session.local_tag for leg in call.legs.values()]
    out = {}
    for n in range(count):
        data = template
        for old in (*names, *tags):
            data = data.replace(old.encode(), f"{old}-{n}".encode())
        out[f"{call.id}-{n}"] = data
    return out


def restore_seconds(template: bytes, call: Call, count: int) -> tuple[float, int]:
    """Seconds to open a store of ``count`` calls and rebuild them all (and how many were rebuilt)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / STORE_FILE
        store = SqliteStore(path)
        for name, data in records(template, call, count).items():
            store.put(name, data)
        store.close()
        net = Network()
        service = net.add("service", "127.0.0.1", port=5080)
        app = B2bua(service.ua)
        persistence = Persistence(path, service.ua, app.table)
        started = time.perf_counter()
        report = persistence.restore()
        elapsed = time.perf_counter() - started
        persistence.close()
        return elapsed, report.restored


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=20000, help="records per round of the per-call rows")
    parser.add_argument("--calls", type=int, default=10000, help="calls in the store for the restore row")
    args = parser.parse_args(argv)
    _, _, _, call = answered_call()
    template = call_record(call)
    keeper = CallKeeper()
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStore(Path(folder) / STORE_FILE, flush_interval=3600.0)  # the writer stays out of the way

        def record(n: int) -> None:
            for _ in range(n):
                call_record(call)

        def keep(n: int) -> None:
            for _ in range(n):
                keeper.changed(call)
                for name, data in keeper.take_writes():
                    store.put(name, data or b"")

        def delete(n: int) -> None:
            for _ in range(n):
                store.delete(call.id)

        print(f"{'what':<44}{'us per call':>12}")
        print(f"{'record (JSON of an answered call)':<44}{best(record, args.count):>12.2f}")
        print(f"{'keeper + put (one changed call)':<44}{best(keep, args.count):>12.2f}")
        print(f"{'delete (a call that ended)':<44}{best(delete, args.count):>12.2f}")
        store.close()
    print(f"record size: {len(template)} bytes")
    seconds, restored = restore_seconds(template, call, args.calls)
    print(f"restore {restored} calls: {seconds:.2f} s ({seconds / max(restored, 1) * 1e6:.0f} us per call)")


if __name__ == "__main__":
    main()
