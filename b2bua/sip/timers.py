"""The RFC 3261 timer values: T1, T2, T4 and the timers A to K derived from them (section 17, Table 4).

RFC 6026 adds Timer L (INVITE server, Accepted) and Timer M (INVITE client, Accepted), both 64*T1.
The properties give the value for an unreliable transport (UDP); :meth:`TimerSettings.duration` gives
the value a transaction actually uses on a given transport: retransmission timers (A, E, G) do not run
on reliable transports, and the wait timers D, I, J, K are zero there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

#: The name of one transaction timer.
TimerName = Literal["A", "B", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M"]
TIMER_NAMES: tuple[TimerName, ...] = get_args(TimerName)

#: Timers that only run on unreliable transports (request or response retransmission).
RETRANSMIT_TIMERS: frozenset[TimerName] = frozenset({"A", "E", "G"})
#: Timers whose wait is zero on reliable transports (they only absorb retransmissions).
ABSORB_TIMERS: frozenset[TimerName] = frozenset({"D", "I", "J", "K"})


@dataclass(frozen=True, slots=True)
class TimerSettings:
    """T1, T2 and T4 of RFC 3261 section 17.1.1.1 and Table 4, in seconds; every timer derives from them."""

    #: Round-trip time estimate: the first retransmission interval and the unit of every timeout (64*T1).
    T1: float = 0.5
    #: Longest retransmission interval for non-INVITE requests and INVITE responses.
    T2: float = 4.0
    #: Longest time a message stays in the network; how long Timers I and K absorb retransmissions.
    T4: float = 5.0

    def __post_init__(self) -> None:
        if not (self.T1 > 0 and self.T2 >= self.T1 and self.T4 >= 0):
            raise ValueError(f"need 0 < T1 <= T2 and T4 >= 0, got T1={self.T1} T2={self.T2} T4={self.T4}")

    @property
    def A(self) -> float:
        """INVITE request retransmission, first interval (T1, doubling; unreliable transports only)."""
        return self.T1

    @property
    def B(self) -> float:
        """INVITE transaction timeout (64*T1)."""
        return 64 * self.T1

    @property
    def D(self) -> float:
        """Wait for response retransmissions after a 300-699 (at least 32 s; never below 64*T1)."""
        return max(32.0, 64 * self.T1)

    @property
    def E(self) -> float:
        """Non-INVITE request retransmission, first interval (T1, doubling up to T2)."""
        return self.T1

    @property
    def F(self) -> float:
        """Non-INVITE transaction timeout (64*T1)."""
        return 64 * self.T1

    @property
    def G(self) -> float:
        """INVITE response retransmission, first interval (T1, doubling up to T2)."""
        return self.T1

    @property
    def H(self) -> float:
        """Wait for an ACK after a 300-699 (64*T1)."""
        return 64 * self.T1

    @property
    def I(self) -> float:  # noqa: E743 - the RFC's name for it
        """Wait for ACK retransmissions in Confirmed (T4)."""
        return self.T4

    @property
    def J(self) -> float:
        """Wait for non-INVITE request retransmissions after a final response (64*T1)."""
        return 64 * self.T1

    @property
    def K(self) -> float:
        """Wait for non-INVITE response retransmissions after a final response (T4)."""
        return self.T4

    @property
    def L(self) -> float:
        """INVITE server: wait in Accepted for INVITE retransmissions and ACKs (RFC 6026 section 8.7, 64*T1)."""
        return 64 * self.T1

    @property
    def M(self) -> float:
        """INVITE client: wait in Accepted for 2xx retransmissions and forks (RFC 6026 section 8.4, 64*T1)."""
        return 64 * self.T1

    def duration(self, timer: TimerName, reliable: bool) -> float | None:
        """The interval a transaction arms ``timer`` with on this transport; ``None`` if it does not run."""
        if reliable:
            if timer in RETRANSMIT_TIMERS:
                return None
            if timer in ABSORB_TIMERS:
                return 0.0
        value: float = getattr(self, timer)
        return value
