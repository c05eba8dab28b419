"""Tests for b2bua.call.flows.base: a flow holds its call busy while it runs, reports at most one Error and
exactly one Ended, and says nothing once it is done."""

from __future__ import annotations

from b2bua.call.call import Call
from b2bua.call.events import FlowEnded, FlowError, FlowEvent, LegEnded
from b2bua.call.flows.base import Flow, status_line
from b2bua.sip.message import Headers, Response

from .call_builders import reports


def test_a_flow_holds_the_call_busy_until_it_finishes_once() -> None:
    call = Call("c1")
    out, sink = reports()
    flow = Flow(call, sink, "cmd-1")
    assert call.busy is flow and not flow.done
    flow.event("CALL_HOLD", callid="c1", leg="caller", status="SIP/2.0 200 OK")
    flow.finish()
    flow.finish()
    assert out == [FlowEvent("CALL_HOLD", "c1", "caller", "SIP/2.0 200 OK"), FlowEnded()]
    assert call.busy is None and flow.done and not flow.failed


def test_a_flow_fails_once_and_then_says_nothing() -> None:
    call = Call("c2")
    out, sink = reports()
    flow = Flow(call, sink)
    flow.fail(408, "the callee did not answer the re-INVITE")
    flow.fail(500, "a second failure")
    flow.event("CALL_HOLD")
    assert out == [FlowError(408, "the callee did not answer the re-INVITE"), FlowEnded()]
    assert flow.failed and call.busy is None


def test_finishing_leaves_a_call_busy_with_another_flow_alone() -> None:
    call = Call("c3")
    out, sink = reports()
    first = Flow(call, sink)
    second = Flow(call, sink)
    first.finish()
    assert call.busy is second


def test_a_flow_consumes_no_leg_event_unless_it_says_so() -> None:
    out, sink = reports()
    assert Flow(Call("c4"), sink).on_leg_event(None, LegEnded("bye", by_remote=True), 0.0) is False  # type: ignore[arg-type]


def test_status_line() -> None:
    assert status_line(Response(180, "Ringing", Headers())) == "SIP/2.0 180 Ringing"
    assert status_line(Response(599, "", Headers())) == "SIP/2.0 599"
