"""Destination hosts: IP literals recognised without a lookup, names looked up once and cached."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from b2bua.io.loop import new_event_loop
from b2bua.io.resolver import Resolver, pick

V4, V6 = int(socket.AF_INET), int(socket.AF_INET6)


@pytest.fixture
def loop() -> Any:
    loop = new_event_loop("asyncio")
    yield loop
    loop.close()


def test_literals(loop: asyncio.AbstractEventLoop) -> None:
    resolver = Resolver(loop)
    assert resolver.classify("127.0.0.1") == (V4, "127.0.0.1")
    assert resolver.classify("::1") == (V6, "::1")
    assert resolver.classify("[::1]") == (V6, "::1")
    assert resolver.classify("0:0:0:0:0:0:0:1") == (V6, "::1")
    assert resolver.classify("localhost") == (0, "localhost")
    assert resolver.classify("127.1") == (0, "127.1")
    assert resolver.literals["[::1]"] == (V6, "::1")


def test_pick_prefers_the_families_listened_on() -> None:
    both = [(V6, "::1"), (V4, "127.0.0.1")]
    assert pick(both, {V4, V6}, {V4}) == (V4, "127.0.0.1")
    assert pick(both, {V4, V6}, set()) == (V6, "::1")
    assert pick(both, {V4}, {V4}) == (V4, "127.0.0.1")
    assert pick([(V6, "::1")], {V4}, {V4}) is None


def test_lookup_is_cached_for_the_ttl(loop: asyncio.AbstractEventLoop) -> None:
    resolver = Resolver(loop, ttl=60.0)
    addresses = loop.run_until_complete(resolver.lookup("localhost"))
    assert (V4, "127.0.0.1") in addresses or (V6, "::1") in addresses
    now = loop.time()
    assert resolver.cached("localhost", now) == addresses
    assert resolver.cached("localhost", now + 61) is None
    assert resolver.cached("localhost", now) is None


def test_lookup_failure_raises_oserror(loop: Any) -> None:
    async def fail(*args: object, **kwargs: object) -> list[object]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    loop.getaddrinfo = fail
    resolver = Resolver(loop)
    with pytest.raises(OSError):
        loop.run_until_complete(resolver.lookup("nothing.invalid"))
    assert resolver.cached("nothing.invalid", loop.time()) is None


@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
@pytest.mark.parametrize("host", ["a" * 64 + ".example.com", "a..example.com"])
def test_a_name_the_idna_codec_refuses_is_an_oserror(loop_name: str, host: str) -> None:
    """Found by the network fuzzer: the real getaddrinfo of both loops raises UnicodeError for such names."""
    own = new_event_loop(loop_name)
    try:
        resolver = Resolver(own)
        with pytest.raises(OSError, match="not a name that can be looked up"):
            own.run_until_complete(resolver.lookup(host))
        assert resolver.cached(host, own.time()) is None
    finally:
        own.close()
