"""What the transaction layer spends on one INVITE: new, retransmitted, refused 503 under overload.

Run::

    .venv/bin/python -m benchmarks.layer_costs [--count 20000]

Not a test; prints microseconds per INVITE (best of five rounds) for:

- **new**: a new out-of-dialog INVITE (1.2 kB with SDP): parsed, checked, a server transaction made,
  100 Trying sent;
- **retransmission**: the same INVITE again, absorbed by its transaction (the 100 resent);
- **shed**: a new INVITE while the overload controller admits none (b2bua.sip.overload): parsed,
  checked, answered with a stateless 503 and Retry-After, nothing kept;
- **shed ACK**: the ACK to that 503, which matches nothing and goes up to be dropped;
- **UDP receive, probe check**: ``UdpEndpoint.datagram_received`` with a core that does nothing, with and
  without overload probes watched (the per-datagram cost of recognising a probe);
- **count**: what ``GET /metrics`` costs per message (issue 14): the layer's count of a request by method,
  and of a response by CSeq method and status class with its CSeq parsed (every response the layer receives
  is, by matching), plus parsing a CSeq, which a response the TU built pays on its first read.

Issue 12 asks that retransmissions be absorbed as cheaply as possible and that refusing a call cost far
less than carrying it; these are the numbers (docs/RELIABILITY.md).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from b2bua.io.ids import RandomIds
from b2bua.io.udp import UdpEndpoint
from b2bua.sip.address import Destination
from b2bua.sip.headers import parse_cseq
from b2bua.sip.layer import LayerStats, TransactionLayer, count_request, count_response
from b2bua.sip.message import Response
from b2bua.sip.parser import parse_message
from benchmarks.messages import INVITE

PEER = Destination("udp", "192.0.2.1", 5060)


def best(run: Callable[[int], None], count: int, rounds: int = 5) -> float:
    """Microseconds per item, best of ``rounds`` runs of ``count`` items."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run(count)
        times.append(time.perf_counter() - start)
    return min(times) / count * 1e6


def invites(count: int) -> list[bytes]:
    """``count`` distinct INVITEs (own branch and Call-ID each)."""
    return [INVITE.replace(b"z9hG4bK776asdhds", b"z9hG4bK776-%d" % n).replace(b"a84b4c76e66710", b"c%d" % n)
            for n in range(count)]


def layer(admit: float = 1.0) -> TransactionLayer:
    ids = RandomIds("127.0.0.1")
    out = TransactionLayer(tag_factory=ids.tag, stable_tag=ids.stable_tag)
    out.admit = admit
    out.shed_retry_after = 2
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20000, help="INVITEs per round (default 20000)")
    count = parser.parse_args(argv).count
    messages = invites(count)

    def new(n: int) -> None:
        target = layer()
        for data in messages[:n]:
            target.receive(data, PEER, 0.0)
            target.take_events()
            target.take_datagrams()

    primed = layer()
    primed.receive(messages[0], PEER, 0.0)
    primed.take_events()
    primed.take_datagrams()

    def retransmission(n: int) -> None:
        for _ in range(n):
            primed.receive(messages[0], PEER, 0.1)
            primed.take_datagrams()

    def shed(n: int) -> None:
        target = layer(admit=0.0)
        for data in messages[:n]:
            target.receive(data, PEER, 0.0)
            target.take_datagrams()

    refusing = layer(admit=0.0)
    refusing.receive(messages[0], PEER, 0.0)
    ((answer, _),) = refusing.take_datagrams()
    to_line = next(line for line in answer.split(b"\r\n") if line.lower().startswith(b"to:"))
    head = messages[0].split(b"\r\n\r\n")[0]
    ack = (head.replace(b"INVITE sip:", b"ACK sip:", 1).replace(b" INVITE\r\n", b" ACK\r\n")
           .replace(b"Content-Length: ", b"X-Old-Length: "))
    ack = b"\r\n".join(to_line if line.lower().startswith(b"to:") else line for line in ack.split(b"\r\n"))
    ack += b"\r\nContent-Length: 0\r\n\r\n"

    def shed_ack(n: int) -> None:
        for _ in range(n):
            refusing.receive(ack, PEER, 0.1)
            refusing.take_events()

    def udp(watch: bool) -> Callable[[int], None]:
        endpoint = UdpEndpoint(lambda data, source, now: None, time.monotonic, lambda: None, {})
        if watch:
            endpoint.watch_probes(("127.0.0.1", 5080), lambda data, now: None)

        def run(n: int) -> None:
            receive = endpoint.datagram_received
            addr = ("192.0.2.1", 5060)
            data = messages[0]
            for _ in range(n):
                receive(data, addr)

        return run

    stats = LayerStats()
    trying = parse_message(answer, check=False)
    assert isinstance(trying, Response)
    assert trying.cseq is not None  # parsed once: cached from now on

    def count_requests(n: int) -> None:
        counts = stats.requests_in
        for _ in range(n):
            count_request(counts, "INVITE")

    def count_responses(n: int) -> None:
        counts = stats.responses_out
        for _ in range(n):
            count_response(counts, trying)

    cseq_text = trying.headers.get("cseq") or ""

    def parse_cseqs(n: int) -> None:
        for _ in range(n):
            parse_cseq(cseq_text)

    rows = [("new INVITE (transaction, 100 Trying)", best(new, count)),
            ("retransmitted INVITE, absorbed", best(retransmission, count)),
            ("new INVITE refused 503 (overload)", best(shed, count)),
            ("ACK to that 503, dropped", best(shed_ack, count)),
            ("UDP receive, no probe watched", best(udp(False), count)),
            ("UDP receive, probes watched", best(udp(True), count)),
            ("count a request by method", best(count_requests, count)),
            ("count a response, CSeq parsed", best(count_responses, count)),
            ("parse a CSeq (a response's first read)", best(parse_cseqs, count))]
    print(f"{'':44} us per message (best of 5 x {count})")
    for name, value in rows:
        print(f"{name:44} {value:8.2f}")


if __name__ == "__main__":
    main()
