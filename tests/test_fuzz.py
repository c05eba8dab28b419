"""The fuzz targets of tests/fuzz (issue 17) in the suite: the seed corpus, deterministic mutations of
it, and one short coverage-guided run under atheris. The long runs (a million executions per target)
are ``python -m tests.fuzz.run TARGET -runs=1000000``; their numbers are in docs/RELIABILITY.md."""

from __future__ import annotations

import importlib.util
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.corpus import seeds
from tests.fuzz.targets import TARGETS, encode, records, stack

ROOT = Path(__file__).resolve().parent.parent


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to four byte-level edits: flip, insert, delete, duplicate a slice, or splice a CRLF."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        at = rng.randrange(len(out) + 1)
        if op == 0 and out:
            out[min(at, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            out[at:at] = bytes([rng.randrange(256)])
        elif op == 2 and out:
            del out[at:at + rng.randint(1, 16)]
        elif op == 3 and out:
            start = rng.randrange(len(out))
            out[at:at] = out[start:start + rng.randint(1, 64)]
        else:
            out[at:at] = rng.choice([b"\r\n", b"\r\n\r\n", b"\n", b"\x00", b";", b":", b",", b"\""])
    return bytes(out)


@pytest.mark.parametrize("name", list(TARGETS))
def test_the_seeds_hold_the_invariants(name: str) -> None:
    for data in seeds(name):
        TARGETS[name](data)


@pytest.mark.parametrize("name", list(TARGETS))
def test_mutations_of_the_seeds_hold_the_invariants(name: str) -> None:
    rng = random.Random(f"call-api-{name}")
    corpus = seeds(name)
    target = TARGETS[name]
    for _ in range(3000):
        data = mutate(rng.choice(corpus), rng)
        try:
            target(data)
        except Exception as exc:  # the failing input in the report, to hold as a regression case
            raise AssertionError(f"{name} failed on {data!r}") from exc


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris is not installed")
@pytest.mark.timeout(120)
def test_a_short_coverage_guided_run(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "tests.fuzz.run", "sdp", "-runs=5000"], cwd=tmp_path,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, capture_output=True,
                            text=True, timeout=110)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Done 5000 runs" in result.stderr
    assert not list(tmp_path.glob("crash-*"))


#: Inputs the fuzz targets found, rebuilt from the seed calls with the one edit that broke an invariant
#: (seed, record, old bytes, new bytes, what broke before the fix).
REGRESSIONS = [
    (2, 2, b"To: <sip:bob@127.0.0.3>;tag=bob-tag-1", b"To: \x00\x00\x00\x00:bob@127.0.0.3>;tag=bob-tag-1",
     "the 486's garbage To was copied into the ACK the transaction sent"),
    (0, 2, b"Call-ID: service-call-4", b"Call-ID: service-call-1",
     "a 200 matching by branch with another Call-ID built an impossible dialog; the error escaped the core"),
    (0, 0, b"Contact: <sip:call-api@127.0.0.2:5060>", b"Contact: <sip:call-api@127H0.0.2:5060>",
     "an INVITE whose Contact could not be a target was forwarded; relaying the 180 raised"),
    (0, 1, b"Via: SIP/2.0/UDP", b"Via: SIP\xbe/2.0/UDP",
     "a garbled 100 moved the INVITE to Proceeding unseen by the session: never cancelled, never freed"),
    (0, 2, b"branch=z9hG4bK-service-3", b"branch=r9hG4bK-service-3",
     "a 200 outside its transaction confirmed the call and left the INVITE transaction for ever"),
    (0, 2, b"Contact: <sip:call-api@127.0.0.3:5060>", b"Contact: <s.0.0.3:5060>",
     "a 200 whose Contact is not a SIP URI: its ACK could not be routed and the error escaped"),
]


@pytest.mark.parametrize(("seed", "record", "old", "new", "what"), REGRESSIONS, ids=[r[4][:40] for r in REGRESSIONS])
def test_what_the_fuzzers_found_stays_fixed(seed: int, record: int, old: bytes, new: bytes, what: str) -> None:
    items = records(seeds("stack")[seed])
    peer, delay, data = items[record]
    assert old in data
    items[record] = (peer, delay, data.replace(old, new))
    stack(encode(items))


def test_a_stray_2xx_with_another_cseq_is_dropped_not_acknowledged() -> None:
    """Found by the stack target (2026-12-05): a 200 outside its transaction (mangled branch) whose CSeq number is
    not the INVITE's reached the session by Call-ID and From tag, and building its ACK raised out of the core."""
    items = records(seeds("stack")[0])
    peer, delay, data = items[2]
    assert b"branch=z9hG4bK-service-3" in data and b"CSeq: 1 INVITE" in data
    items[2] = (peer, delay, data.replace(b"branch=z9hG4bK-service-3", b"branch=zyhG4bK-service-3")
                .replace(b"CSeq: 1 INVITE", b"CSeq: 0 INVITE"))
    stack(encode(items))


def test_a_stray_2xx_whose_contact_is_no_sip_uri_is_dropped() -> None:
    """Found by the stack target (2026-12-05): a 200 outside its transaction whose Contact was not a SIP URI
    reached the session, and routing its ACK raised out of the core (in a transaction the layer drops it)."""
    items = records(seeds("stack")[0])
    peer, delay, data = items[2]
    old_contact = b"Contact: <sip:call-api@127.0.0.3:5060>"
    assert b"branch=z9hG4bK-service-3" in data and old_contact in data
    items[2] = (peer, delay, data.replace(b"branch=z9hG4bK-service-3", b"branch=zyhG4bK-service-3")
                .replace(old_contact, b"Contact: <sir:call-api@127.0.0.3:5060>"))
    stack(encode(items))


def test_an_invite_whose_answer_cannot_be_built_leaves_no_transaction() -> None:
    """Found by the stack target (2026-12-05), the datagram as it found it: an INVITE that parses but fails its
    checks, and whose 400 cannot be built through its transaction (the To opens a quote it never closes). The
    stateless 400 went out, and the INVITE transaction stayed in Proceeding, with no timer, for ever."""
    datagram = (b"INVITE sip:job\x00127.0.0.3:5060 SIP/2.0\r\nVia: SIP/2.m/UDP 127.0.0.2:5060;branch=z9hG4bK-alice-2;"
                b"rport\r\nMax-Forwards: 70\r\nRoute: <sip:126.0.0.1:5080;lr>\r\nFrom: <sip:alice@127.0.0.2>;"
                b"tag=alice-tag-1\r\nTo:\"<sip:bob@127.0.0.3\xbe\r\nCall-ID: alice-call-3\r\n"
                b"CSeq: 1 INVITEpi@127.0.0.2:5060>\r\nAllow: INVITE, ACK, CANCE\nContent-Length: 0\r\n\r\n")
    stack(encode([(0, 0.001, datagram)]))


def test_a_bare_cr_in_a_quoted_display_name_is_refused_not_relayed() -> None:
    """Found by the network fuzzer (2026-12-05, a million inputs): an INVITE whose To display name (RFC 4475's
    long one) held a bare CR inside its quotes parsed, and the B2BUA's copy of the To for the callee could not
    quote it back: ValueError out of the loop's handler, a traceback per such INVITE. It gets a 400 now."""
    items = records(seeds("stack")[0])
    peer, delay, data = items[0]
    assert data.startswith(b"INVITE ") and b"\r\nTo: <sip:bob@" in data
    to = b'\r\nTo: "I have a user name of extreme\rproportion" <sip:bob@'
    items[0] = (peer, delay, data.replace(b"\r\nTo: <sip:bob@", to))
    stack(encode(items))
