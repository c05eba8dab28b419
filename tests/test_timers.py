"""Tests for b2bua.sip.timers: T1, T2, T4 and timers A to M (RFC 3261 Table 4, RFC 6026)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from b2bua.sip.timers import TIMER_NAMES, TimerSettings


def test_defaults_are_the_rfc_values() -> None:
    t = TimerSettings()
    assert (t.T1, t.T2, t.T4) == (0.5, 4.0, 5.0)


def test_table_4_for_udp() -> None:
    t = TimerSettings()
    assert {name: getattr(t, name) for name in TIMER_NAMES} == {
        "A": 0.5, "B": 32.0, "D": 32.0, "E": 0.5, "F": 32.0, "G": 0.5, "H": 32.0, "I": 5.0, "J": 32.0,
        "K": 5.0, "L": 32.0, "M": 32.0,
    }


def test_durations_on_each_transport() -> None:
    t = TimerSettings()
    udp = {name: t.duration(name, reliable=False) for name in TIMER_NAMES}
    tcp = {name: t.duration(name, reliable=True) for name in TIMER_NAMES}
    assert udp == {name: getattr(t, name) for name in TIMER_NAMES}
    assert tcp == {
        "A": None, "B": 32.0, "D": 0.0, "E": None, "F": 32.0, "G": None, "H": 32.0, "I": 0.0, "J": 0.0,
        "K": 0.0, "L": 32.0, "M": 32.0,
    }


def test_timers_derive_from_t1_and_t4() -> None:
    t = TimerSettings(T1=0.1, T2=2.0, T4=3.0)
    assert (t.A, t.B, t.E, t.F, t.G, t.H, t.J, t.L, t.M) == (0.1, 6.4, 0.1, 6.4, 0.1, 6.4, 6.4, 6.4, 6.4)
    assert (t.I, t.K) == (3.0, 3.0)


def test_timer_d_is_at_least_32_seconds_and_outlasts_timer_h() -> None:
    assert TimerSettings(T1=0.1).D == 32.0
    assert TimerSettings(T1=1.0, T2=4.0).D == 64.0


@given(t1=st.floats(0.01, 10), extra=st.floats(0, 10), t4=st.floats(0, 30))
def test_every_derived_timer_is_positive_and_d_covers_h(t1: float, extra: float, t4: float) -> None:
    t = TimerSettings(T1=t1, T2=t1 + extra, T4=t4)
    assert t.D >= 32.0 and t.D >= t.H
    assert all(getattr(t, name) >= 0 for name in TIMER_NAMES)


@pytest.mark.parametrize("kwargs", [{"T1": 0.0}, {"T1": -1.0}, {"T1": 5.0, "T2": 4.0}, {"T4": -1.0}])
def test_nonsense_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        TimerSettings(**kwargs)


def test_settings_are_frozen_and_slotted() -> None:
    t = TimerSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.T1 = 1.0  # type: ignore[misc]
    assert not hasattr(t, "__dict__")
    assert all(field.name in ("T1", "T2", "T4") for field in dataclasses.fields(t))
