"""The service's Prometheus metrics: read from the counters the layers already keep, when scraped.

``GET /metrics`` (rpc.http) answers with :meth:`Metrics.render`: ``prometheus_client``'s
:func:`~prometheus_client.generate_latest` over a private :class:`~prometheus_client.CollectorRegistry`
(never the global one, so two services in one process, as in the tests, never mix). Nothing here is
incremented per SIP message: :class:`Metrics` is a custom collector that, at scrape time, reads the
transaction layer's :class:`~b2bua.sip.layer.LayerStats` (one dictionary add per message in the layer),
walks the call table for the active calls by state, reads the call table's outcome counts, the shell's
loop-lag and the collector's pause :class:`Buckets`, and the API server's command counts and connection
gauges. A scrape costs 0.4 ms plus a walk of the call table, 1.2 ms more with 10,000 calls (timeit of
:meth:`Metrics.render` in process, 2026-12-04, a shared host).

The sans-I/O layers never import this module (tests/test_layering.py): they keep plain integers, and
the histograms they need (loop lag in the shell, GC pauses in the collector, command durations in the
API server) are :class:`Buckets`, a list of integers and a sum, turned into Prometheus histograms here.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..call.call import CallOutcome, CallState
from ..sip.layer import LayerStats

__all__ = ["COMMAND_SECONDS", "CONTENT_TYPE", "GC_SECONDS", "LAG_SECONDS", "Buckets", "Metrics"]

#: The Content-Type of :meth:`Metrics.render` (Prometheus text format 0.0.4).
CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Upper bounds (seconds) of the event-loop lag histogram: a healthy loop answers within a millisecond or
#: two; past T1 (0.5 s) peers retransmit (RFC 3261 section 17.1.1.2).
LAG_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: Upper bounds (seconds) of the garbage-collection pause histogram (young collections take 0.1-5 ms).
GC_SECONDS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
#: Upper bounds (seconds) of the command duration histogram: a hold is one re-INVITE round trip, a transfer
#: waits for the far end's NOTIFY (32 s by default), a CallStart for a phone to be picked up.
COMMAND_SECONDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
#: The call states a call in the table can be in (an ended call has left it).
_ACTIVE_STATES = tuple(s for s in CallState if s is not CallState.ENDED)
_STATUS_CLASS = {n: f"{n}xx" for n in range(1, 7)}


@dataclass(slots=True)
class Buckets:
    """A histogram as plain numbers: ``counts[i]`` observations at most ``bounds[i]`` (the last: above all),
    and their ``sum``. :meth:`observe` is a bisection and two adds, cheap enough for a loop timer."""

    bounds: tuple[float, ...]
    counts: list[int] = field(init=False)
    sum: float = 0.0

    def __post_init__(self) -> None:
        if list(self.bounds) != sorted(set(self.bounds)) or not self.bounds:
            raise ValueError("bounds must be increasing and not empty")
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, float]]:
        """``(le, count)`` pairs as a Prometheus histogram has them, ``+Inf`` last."""
        out, total = [], 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            total += count
            out.append((bound, float(total)))
        return out


# -- what is read at scrape time: each source a protocol, so tests hand in what they built ----------------------


class CallSource(Protocol):
    """The call table (:class:`b2bua.call.table.CallTable`)."""

    @property
    def ended(self) -> Mapping[tuple[CallOutcome, int], int]: ...

    def states(self) -> Iterable[CallState]: ...


class LayerSource(Protocol):
    """The transaction layer (:class:`b2bua.sip.layer.TransactionLayer`)."""

    @property
    def stats(self) -> LayerStats: ...

    @property
    def shed(self) -> int: ...

    def __len__(self) -> int: ...


class ShellSource(Protocol):
    """The SIP shell (:class:`b2bua.io.shell.SipShell`): its one loop timer's lateness, and the overload
    monitor's queue delay when overload control runs."""

    @property
    def lag(self) -> Buckets: ...

    @property
    def queue_delay(self) -> float | None: ...


class ApiSource(Protocol):
    """The API server (:class:`rpc.server.ApiServer`)."""

    @property
    def connections(self) -> int: ...

    @property
    def subscribers(self) -> int: ...

    @property
    def commands(self) -> Mapping[tuple[str, str], int]: ...

    @property
    def durations(self) -> Mapping[str, Buckets]: ...


class PauseSource(Protocol):
    """The garbage-collection policy (:class:`b2bua.io.collector.Collector`): pause buckets by generation."""

    @property
    def pause_buckets(self) -> tuple[Buckets, Buckets, Buckets]: ...


class Metrics:
    """The custom collector behind ``GET /metrics``, registered in its own registry with the process metrics
    (``process_cpu_seconds_total``, ``process_resident_memory_bytes`` ...) of ``prometheus_client``.

    ``api`` and ``collector`` may be attached after construction (the API server is built with this
    object; the garbage-collection policy is started by ``python -m b2bua`` once the service runs). Until
    then their families are exported without samples."""

    def __init__(self, calls: CallSource, layer: LayerSource, shell: ShellSource, api: ApiSource | None = None,
                 collector: PauseSource | None = None) -> None:
        self.calls = calls
        self.layer = layer
        self.shell = shell
        self.api = api
        self.collector = collector
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        ProcessCollector(registry=self.registry)

    #: The Content-Type of :meth:`render`.
    content_type = CONTENT_TYPE

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric, as ``generate_latest`` writes it."""
        return generate_latest(self.registry)

    def describe(self) -> list[Metric]:
        """Nothing: the registry then calls :meth:`collect` only when scraped (prometheus_client's contract)."""
        return []

    def collect(self) -> Iterator[Metric]:
        yield from self._calls()
        yield from self._sip()
        yield from self._api()
        yield from self._runtime()

    def _calls(self) -> Iterator[Metric]:
        active = GaugeMetricFamily("call_api_calls_active", "Calls in the call table, by state.", labels=["state"])
        counts: dict[CallState, int] = dict.fromkeys(_ACTIVE_STATES, 0)
        for state in self.calls.states():
            counts[state] = counts.get(state, 0) + 1
        for state, count in counts.items():
            active.add_metric([state.value], count)
        yield active
        total = CounterMetricFamily(
            "call_api_calls", "Calls ended, by how their setup ended (answered, busy: 486/600, cancelled: 487, "
            "failed) and the class of their final status.", labels=["outcome", "status_class"])
        for (outcome, status_class), count in sorted(self.calls.ended.items()):
            total.add_metric([outcome, _STATUS_CLASS[status_class]], count)
        yield total

    def _sip(self) -> Iterator[Metric]:
        layer = self.layer
        stats = layer.stats
        for direction, counts in (("received", stats.requests_in), ("sent", stats.requests_out)):
            family = CounterMetricFamily(f"call_api_sip_requests_{direction}",
                                         f"SIP requests {direction}, retransmissions included, by method.",
                                         labels=["method"])
            for method, count in sorted(counts.items()):
                family.add_metric([method], count)
            yield family
        for direction, by_class in (("received", stats.responses_in), ("sent", stats.responses_out)):
            family = CounterMetricFamily(f"call_api_sip_responses_{direction}",
                                         f"SIP responses {direction}, retransmissions included, by CSeq method "
                                         "and status class.", labels=["method", "status_class"])
            for (method, status_class), count in sorted(by_class.items()):
                family.add_metric([method, _STATUS_CLASS[status_class]], count)
            yield family
        yield CounterMetricFamily("call_api_sip_retransmissions_sent",
                                  "SIP messages sent again (timers A, E, G; responses to retransmitted requests; "
                                  "2xx and ACK retransmissions).", value=stats.retransmissions_sent)
        yield CounterMetricFamily("call_api_sip_retransmissions_absorbed",
                                  "Retransmitted requests absorbed by their server transaction.",
                                  value=stats.retransmissions)
        yield CounterMetricFamily("call_api_sip_malformed", "SIP messages that could not be parsed or failed the "
                                  "RFC 3261 section 8.2 checks.", value=stats.malformed)
        yield CounterMetricFamily("call_api_sip_overload_rejected",
                                  "New INVITEs answered 503 by overload control.", value=layer.shed)
        yield GaugeMetricFamily("call_api_sip_transactions", "Live SIP transactions (including those kept 32 s "
                                "after their final response to absorb retransmissions).", value=len(layer))
        delay = self.shell.queue_delay
        queue = GaugeMetricFamily("call_api_sip_queue_delay_seconds",
                                  "Last queue delay measured by overload control's probe (absent when it is off).")
        if delay is not None:
            queue.add_metric([], delay)
        yield queue

    def _api(self) -> Iterator[Metric]:
        api = self.api
        connections = GaugeMetricFamily("call_api_websocket_connections", "Open WebSocket connections to the API.")
        subscribers = GaugeMetricFamily("call_api_subscribers", "Live Subscribe streams (CallEvent notifications).")
        commands = CounterMetricFamily("call_api_commands", "Commands ended, by method and outcome (ok, error: an "
                                       "Error was reported, refused: it never started).", labels=["method", "outcome"])
        durations = HistogramMetricFamily("call_api_command_duration_seconds",
                                          "Seconds from a command's start to its Ended, by method.", labels=["method"])
        if api is not None:
            connections.add_metric([], api.connections)
            subscribers.add_metric([], api.subscribers)
            for (method, outcome), count in sorted(api.commands.items()):
                commands.add_metric([method, outcome], count)
            for method, buckets in sorted(api.durations.items()):
                durations.add_metric([method], buckets.cumulative(), buckets.sum)
        yield from (connections, subscribers, commands, durations)

    def _runtime(self) -> Iterator[Metric]:
        lag = self.shell.lag
        family = HistogramMetricFamily("call_api_event_loop_lag_seconds",
                                       "How late the shell's one loop timer fired (every 20 ms with overload "
                                       "control, else at each SIP timer).")
        family.add_metric([], lag.cumulative(), lag.sum)
        yield family
        pauses = HistogramMetricFamily("call_api_gc_pause_seconds", "Garbage-collection pauses, by generation.",
                                       labels=["generation"])
        collector = self.collector
        if collector is not None:
            for generation, buckets in enumerate(collector.pause_buckets):
                pauses.add_metric([str(generation)], buckets.cumulative(), buckets.sum)
        yield pauses
