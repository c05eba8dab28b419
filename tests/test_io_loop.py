"""Choosing the event loop: uvloop by default where installed, plain asyncio on demand."""

from __future__ import annotations

import asyncio
import importlib.util
import sys

import pytest

from b2bua.io import loop as io_loop

HAVE_UVLOOP = sys.platform in ("linux", "darwin") and importlib.util.find_spec("uvloop") is not None


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(io_loop.ENV_VAR, raising=False)


def test_default_prefers_uvloop_when_importable() -> None:
    assert io_loop.choose() == ("uvloop" if HAVE_UVLOOP else "asyncio")
    assert io_loop.choose("auto") == io_loop.choose()


def test_argument_forces_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(io_loop.ENV_VAR, "uvloop" if HAVE_UVLOOP else "auto")
    assert io_loop.choose("asyncio") == "asyncio"
    loop = io_loop.new_event_loop("asyncio")
    try:
        assert io_loop.loop_name(loop) == "asyncio"
    finally:
        loop.close()


def test_environment_forces_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(io_loop.ENV_VAR, " AsyncIO ")
    assert io_loop.choose() == "asyncio"
    assert isinstance(io_loop.new_event_loop_policy(), asyncio.DefaultEventLoopPolicy)


def test_bad_value_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="trio"):
        io_loop.choose("trio")
    monkeypatch.setenv(io_loop.ENV_VAR, "trio")
    with pytest.raises(ValueError):
        io_loop.new_event_loop_policy()


@pytest.mark.skipif(not HAVE_UVLOOP, reason="uvloop not installed")
def test_uvloop_loop() -> None:
    loop = io_loop.new_event_loop("uvloop")
    try:
        assert io_loop.loop_name(loop) == "uvloop"
        assert loop.run_until_complete(_running_name()) == "uvloop"
    finally:
        loop.close()


def test_uvloop_demanded_but_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(io_loop, "_uvloop", lambda: None)
    assert io_loop.choose() == "asyncio"
    with pytest.raises(RuntimeError):
        io_loop.choose("uvloop")


@pytest.mark.parametrize("kind", ["asyncio", "auto"])
def test_loop_name_reads_the_installed_policy(kind: str) -> None:
    old = asyncio.get_event_loop_policy()
    try:
        asyncio.set_event_loop_policy(io_loop.new_event_loop_policy(kind))
        name = io_loop.choose(kind)
        assert io_loop.loop_name() == name
        assert asyncio.run(_running_name()) == name
    finally:
        asyncio.set_event_loop_policy(old)


async def _running_name() -> str:
    return io_loop.loop_name()
