"""The Prometheus exporter read over real calls on the in-memory network (alice -> service -> bob), and its text
checked by ``promtool check metrics`` (Debian package prometheus, installed by scripts/test)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from b2bua.call.b2bua import B2bua
from b2bua.io.metrics import COMMAND_SECONDS, GC_SECONDS, LAG_SECONDS, Buckets, Metrics
from b2bua.sip.message import Request, Response
from b2bua.sip.ua_events import CallFailed

from .call_builders import SDP_B, dial, rig, take
from .sipnet import Network, Node


@dataclass
class Shell:
    """What the exporter reads of the SIP shell (a real one needs sockets: tests/test_io_shell.py)."""

    lag: Buckets = field(default_factory=lambda: Buckets(LAG_SECONDS))
    queue_delay: float | None = None


@dataclass
class Api:
    """What the exporter reads of the API server (the real counts: tests/test_server.py)."""

    connections: int = 0
    subscribers: int = 0
    commands: dict[tuple[str, str], int] = field(default_factory=dict)
    durations: dict[str, Buckets] = field(default_factory=dict)


@dataclass
class Pauses:
    pause_buckets: tuple[Buckets, Buckets, Buckets] = field(
        default_factory=lambda: (Buckets(GC_SECONDS), Buckets(GC_SECONDS), Buckets(GC_SECONDS)))


def exporter(service: Node, app: B2bua) -> tuple[Metrics, Shell]:
    shell = Shell()
    return Metrics(app.table, service.ua.layer, shell), shell


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the text exposition, by (name, sorted labels): what a scraper would store."""
    text = metrics.render().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return samples(metrics).get((name, tuple(sorted(labels.items()))), 0.0)


def test_values_move_as_a_call_is_set_up_answered_and_ended() -> None:
    net, alice, bob, service, app = rig()
    metrics, _ = exporter(service, app)
    assert [value(metrics, "call_api_calls_active", state=s) for s in ("setup", "early", "answered", "ending")] \
        == [0, 0, 0, 0]
    a, b, _ = dial(net, alice, bob)
    assert value(metrics, "call_api_calls_active", state="setup") == 1
    assert value(metrics, "call_api_sip_requests_received_total", method="INVITE") == 1
    assert value(metrics, "call_api_sip_requests_sent_total", method="INVITE") == 1
    assert value(metrics, "call_api_sip_responses_sent_total", method="INVITE", status_class="1xx") == 1  # 100
    assert value(metrics, "call_api_sip_responses_received_total", method="INVITE", status_class="1xx") == 1
    assert value(metrics, "call_api_sip_transactions") == 2
    b.respond(180, net.now)
    net.settle()
    assert value(metrics, "call_api_calls_active", state="early") == 1
    assert value(metrics, "call_api_sip_responses_sent_total", method="INVITE", status_class="1xx") == 2
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    assert value(metrics, "call_api_calls_active", state="answered") == 1
    assert value(metrics, "call_api_calls_active", state="early") == 0
    assert value(metrics, "call_api_sip_requests_received_total", method="ACK") == 1
    a.end(net.now)
    net.settle()
    assert value(metrics, "call_api_calls_active", state="answered") == 0
    assert value(metrics, "call_api_calls_total", outcome="answered", status_class="2xx") == 1
    assert value(metrics, "call_api_sip_requests_received_total", method="BYE") == 1
    assert value(metrics, "call_api_sip_requests_sent_total", method="BYE") == 1
    assert value(metrics, "call_api_sip_responses_sent_total", method="BYE", status_class="2xx") == 1
    assert value(metrics, "call_api_sip_retransmissions_sent_total") == 0
    net.settle(40.0)
    assert value(metrics, "call_api_sip_transactions") == 0


@pytest.mark.parametrize(("status", "outcome", "status_class"), [
    (486, "busy", "4xx"), (600, "busy", "6xx"), (404, "failed", "4xx"), (503, "failed", "5xx"),
    (603, "failed", "6xx"), (401, "failed", "4xx"),
])
def test_an_unanswered_call_counts_by_the_callee_s_final_status(status: int, outcome: str, status_class: str) -> None:
    net, alice, bob, service, app = rig()
    metrics, _ = exporter(service, app)
    _, b, _ = dial(net, alice, bob)
    b.respond(status, net.now)
    net.settle()
    failed = take(alice, CallFailed)
    assert isinstance(failed, CallFailed)
    assert len(app.table) == 0
    assert value(metrics, "call_api_calls_total", outcome=outcome, status_class=status_class) == 1
    assert sum(v for (name, _), v in samples(metrics).items() if name == "call_api_calls_total") == 1


def test_a_call_the_caller_cancels_counts_as_cancelled() -> None:
    net, alice, bob, service, app = rig()
    metrics, _ = exporter(service, app)
    a, b, _ = dial(net, alice, bob)
    b.respond(180, net.now)
    net.settle()
    a.end(net.now)  # CANCEL
    net.settle()
    assert len(app.table) == 0
    assert value(metrics, "call_api_calls_total", outcome="cancelled", status_class="4xx") == 1
    assert value(metrics, "call_api_sip_requests_received_total", method="CANCEL") == 1
    assert value(metrics, "call_api_sip_requests_sent_total", method="CANCEL") == 1


def test_a_call_nobody_answers_in_time_fails_with_408() -> None:
    net, alice, bob, service, app = rig(answer_timeout=5.0)
    metrics, _ = exporter(service, app)
    dial(net, alice, bob)
    net.settle(10.0)
    assert value(metrics, "call_api_calls_total", outcome="failed", status_class="4xx") == 1


def test_retransmissions_sent_and_absorbed_are_counted() -> None:
    net, alice, bob, service, app = rig()
    metrics, _ = exporter(service, app)
    lost: list[str] = []

    def drop(src: Node, dst: Node, msg: Request | Response) -> bool:
        """The service's first INVITE to bob and its first 100 to alice are lost."""
        kind = msg.method if isinstance(msg, Request) else str(msg.status)
        if src is service and kind in ("INVITE", "100") and kind not in lost:
            lost.append(kind)
            return True
        return False

    net.drop = drop
    dial(net, alice, bob)
    assert sorted(lost) == ["100", "INVITE"]
    # alice's INVITE came again (absorbed; its 100 sent again); the service sent its own INVITE again (timer A).
    assert value(metrics, "call_api_sip_retransmissions_absorbed_total") >= 1
    assert value(metrics, "call_api_sip_retransmissions_sent_total") >= 2
    assert value(metrics, "call_api_sip_requests_received_total", method="INVITE") >= 2


def test_the_api_the_loop_and_the_collector_are_exported() -> None:
    net, alice, bob, service, app = rig()
    metrics, shell = exporter(service, app)
    text = metrics.render().decode()
    assert "# TYPE call_api_gc_pause_seconds histogram" in text and "call_api_gc_pause_seconds_bucket" not in text
    assert "\ncall_api_websocket_connections " not in text  # no API attached: the family has no sample
    shell.lag.observe(0.003)
    shell.queue_delay = 0.002
    api = Api(connections=2, commands={("CallHold", "ok"): 3, ("CallEnd", "refused"): 1})
    api.durations["CallHold"] = Buckets(COMMAND_SECONDS)
    api.durations["CallHold"].observe(0.04)
    metrics.api = api
    pauses = Pauses()
    pauses.pause_buckets[1].observe(0.0007)
    metrics.collector = pauses
    assert value(metrics, "call_api_websocket_connections") == 2
    assert value(metrics, "call_api_subscribers") == 0
    assert value(metrics, "call_api_commands_total", method="CallHold", outcome="ok") == 3
    assert value(metrics, "call_api_commands_total", method="CallEnd", outcome="refused") == 1
    assert value(metrics, "call_api_command_duration_seconds_bucket", method="CallHold", le="0.025") == 0
    assert value(metrics, "call_api_command_duration_seconds_bucket", method="CallHold", le="0.05") == 1
    assert value(metrics, "call_api_command_duration_seconds_count", method="CallHold") == 1
    assert value(metrics, "call_api_event_loop_lag_seconds_bucket", le="0.005") == 1
    assert value(metrics, "call_api_event_loop_lag_seconds_sum") == pytest.approx(0.003)
    assert value(metrics, "call_api_sip_queue_delay_seconds") == 0.002
    assert value(metrics, "call_api_gc_pause_seconds_bucket", generation="1", le="0.001") == 1
    assert value(metrics, "call_api_gc_pause_seconds_count", generation="0") == 0
    assert value(metrics, "process_resident_memory_bytes") > 0


def test_each_exporter_has_its_own_registry() -> None:
    _, _, _, service, app = rig()
    first, _ = exporter(service, app)
    other_net = Network()
    other = other_net.add("other", "127.0.0.9", port=5080)
    second = Metrics(B2bua(other.ua).table, other.ua.layer, Shell())
    assert first.registry is not second.registry
    assert not any(name.startswith("call_api") for name in REGISTRY._names_to_collectors)
    assert b"call_api_calls_active" in first.render() and b"call_api_calls_active" in second.render()


def test_buckets() -> None:
    buckets = Buckets((0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 3.0):
        buckets.observe(v)
    assert buckets.counts == [2, 1, 1] and buckets.count == 4 and buckets.sum == pytest.approx(3.65)
    assert buckets.cumulative() == [("0.1", 2.0), ("1.0", 3.0), ("+Inf", 4.0)]
    for bad in ((), (1.0, 0.5), (1.0, 1.0)):
        with pytest.raises(ValueError):
            Buckets(bad)


def test_promtool_accepts_the_output(tmp_path: object) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not on PATH: `bash scripts/test` installs the Debian package prometheus")
    net, alice, bob, service, app = rig()
    metrics, shell = exporter(service, app)
    metrics.api = Api(connections=1, commands={("CallHold", "error"): 1},
                      durations={"CallHold": Buckets(COMMAND_SECONDS)})
    metrics.collector = Pauses()
    shell.lag.observe(0.0001)
    dial(net, alice, bob)
    text = metrics.render()
    assert b"call_api_calls_active{state=\"setup\"} 1.0" in text
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=60)
    assert result.returncode == 0, (result.stdout + result.stderr).decode()
    assert result.stdout.strip() == b"" and result.stderr.strip() == b"", "promtool has remarks (lint)"

