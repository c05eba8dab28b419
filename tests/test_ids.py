"""Tests for b2bua.io.ids: the random identifiers the sans-I/O core is given (RFC 3261 sections 8.1.1.4,
8.1.1.7, 14.1, 14.2, 19.3)."""

from __future__ import annotations

import re
import uuid

from hypothesis import given
from hypothesis import strategies as st

from b2bua.io.ids import RandomIds
from b2bua.sip.ua import Ids


def test_random_ids_meet_the_protocol_the_ua_expects() -> None:
    ids: Ids = RandomIds("127.0.0.1")
    assert ids.branch() and ids.tag() and ids.call_id() and ids.cnonce()


def test_branch_has_the_magic_cookie_and_is_unique() -> None:
    ids = RandomIds()
    branches = [ids.branch() for _ in range(10_000)]
    assert all(b.startswith("z9hG4bK") for b in branches)
    assert len(set(branches)) == len(branches)
    assert all(re.fullmatch(r"z9hG4bK[0-9a-f]+", b) for b in branches)  # a token, safe in a Via parameter
    assert all(len(b) - len("z9hG4bK") >= 8 for b in branches)


def test_tags_carry_at_least_32_random_bits() -> None:
    ids = RandomIds()
    tags = [ids.tag() for _ in range(10_000)]
    assert all(re.fullmatch(r"[0-9a-f]+", t) and len(t) * 4 >= 32 for t in tags)
    assert len(set(tags)) == len(tags)


def test_call_id_contains_the_host_and_is_unique() -> None:
    ids = RandomIds("192.0.2.10")
    call_ids = [ids.call_id() for _ in range(1000)]
    assert all(c.endswith("@192.0.2.10") for c in call_ids)
    assert all(" " not in c and len(c.split("@")[0]) >= 16 for c in call_ids)
    assert len(set(call_ids)) == len(call_ids)
    assert RandomIds().call_id().endswith("@call-api")


def test_cnonce_is_random_hex() -> None:
    ids = RandomIds()
    cnonces = {ids.cnonce() for _ in range(1000)}
    assert len(cnonces) == 1000 and all(re.fullmatch(r"[0-9a-f]{16}", c) for c in cnonces)


@given(st.text(max_size=200))
def test_stable_tag_is_the_same_for_the_same_seed(seed: str) -> None:
    ids = RandomIds()
    tag = ids.stable_tag(seed)
    assert tag == ids.stable_tag(seed)
    assert re.fullmatch(r"[0-9a-f]{12}", tag)


def test_stable_tag_differs_across_seeds_and_instances() -> None:
    one, two = RandomIds(), RandomIds()
    assert one.stable_tag("call|tag|branch") != two.stable_tag("call|tag|branch")  # keyed per instance
    tags = {one.stable_tag(f"call|tag|branch-{i}") for i in range(10_000)}
    assert len(tags) == 10_000
    assert one.stable_tag("\udcff surrogate") == one.stable_tag("\udcff surrogate")  # bytes off the wire


def test_glare_delay_for_the_call_id_owner_is_2_1_to_4_s_in_10_ms_steps() -> None:
    """RFC 3261 section 14.1: the owner of the Call-ID waits 2.1 to 4 s, in units of 10 ms."""
    ids = RandomIds()
    delays = [ids.glare_delay(True) for _ in range(20_000)]
    assert min(delays) >= 2.1 and max(delays) <= 4.0
    assert all(abs(d * 100 - round(d * 100)) < 1e-9 for d in delays)
    assert min(delays) == 2.1 and max(delays) == 4.0  # the whole range is drawn (191 values, 20 000 draws)


def test_glare_delay_for_the_other_side_is_0_to_2_s_in_10_ms_steps() -> None:
    ids = RandomIds()
    delays = [ids.glare_delay(False) for _ in range(20_000)]
    assert min(delays) == 0.0 and max(delays) == 2.0
    assert all(abs(d * 100 - round(d * 100)) < 1e-9 for d in delays)


def test_retry_after_is_0_to_10_seconds() -> None:
    """RFC 3261 section 14.2: Retry-After on the 500 to an overlapping INVITE is 0 to 10 s."""
    ids = RandomIds()
    values = {ids.retry_after() for _ in range(5000)}
    assert values == set(range(11))


def test_cmd_id_is_a_uuid4() -> None:
    ids = RandomIds()
    values = [ids.cmd_id() for _ in range(1000)]
    for value in values:
        parsed = uuid.UUID(value)
        assert parsed.version == 4 and str(parsed) == value
    assert len(set(values)) == len(values)


def test_identifiers_drawn_across_pool_refills_never_repeat_or_overlap() -> None:
    """The pool is refilled when an identifier would run past its end: every identifier keeps its full
    length and none repeats across many refills."""
    ids = RandomIds()
    values = [f() for _ in range(3000) for f in (ids.branch, ids.tag, ids.cnonce)]
    assert len(set(values)) == len(values)
    assert {len(ids.tag()) for _ in range(2000)} == {12}
    assert all(len(v) == len("z9hG4bK") + 16 for v in values[::3])
