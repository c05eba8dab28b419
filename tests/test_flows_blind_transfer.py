"""Tests for b2bua.call.flows.blind_transfer (and the REFER flow under it, b2bua.call.flows.refer): who the
Referred-By names, and how the transfer fails when the transferee stays silent or reports no final result
(RFC 3515, RFC 5359 section 2.4)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

from b2bua.call.commands import CallBlindTransfer
from b2bua.call.events import FlowError, FlowEvent
from b2bua.call.flows.blind_transfer import identity_of
from b2bua.call.flows.refer import add_correlation
from b2bua.call.leg import Leg
from b2bua.sip.headers import parse_name_addr
from b2bua.sip.session import Session
from b2bua.sip.ua_events import DialogRequest, DialogResponse

from .call_builders import SDP_B, answered_call, dial, names, reports, take, three_phones
from .sipnet import Network, Node

CAROL = "sip:carol@127.0.0.4:5060"


def refer_reaching(net: Network, node: Node) -> DialogRequest:
    net.settle()
    refer = take(node, DialogRequest)
    assert isinstance(refer, DialogRequest) and refer.request.method == "REFER"
    return refer


def notify(net: Network, session: Session, refer: DialogRequest, frag: bytes, state: str) -> None:
    cseq = refer.request.cseq
    session.request("NOTIFY", net.now, body=frag, content_type="message/sipfrag",
                    headers=[("Event", f"refer;id={cseq.number if cseq else 0}"), ("Subscription-State", state)])
    net.settle()


def test_the_referred_by_is_the_other_party_as_its_dialog_names_it() -> None:
    net, alice, bob, control, a, b = answered_call()
    call = control.find(a.call_id)
    assert identity_of(call.legs["caller"]) == "Alice <sip:alice@127.0.0.2>"
    assert identity_of(None) is None
    out, sink = reports()
    control.start(CallBlindTransfer(a.call_id, "callee", CAROL), net.now, sink)  # type: ignore[arg-type]
    refer = refer_reaching(net, bob)
    assert refer.request.headers.get("referred-by") == "Alice <sip:alice@127.0.0.2>"


def test_the_correlation_token_goes_on_sip_uris_only() -> None:
    assert add_correlation(CAROL, "t1") == CAROL + ";osid=t1"
    assert add_correlation("tel:+15551234", "t1") == "tel:+15551234"


def test_a_refer_nobody_answers_fails_the_transfer_and_keeps_the_call() -> None:
    net, alice, bob, control, a, b = answered_call()
    out, sink = reports()
    control.start(CallBlindTransfer(a.call_id, "callee", CAROL), net.now, sink)  # type: ignore[arg-type]
    refer_reaching(net, bob)  # bob never answers it
    net.run(until=net.now + 40.0)
    assert names(out) == ["FlowError", "FlowEnded"]
    assert isinstance(out[0], FlowError) and "did not answer the REFER" in out[0].message


def test_a_subscription_ended_without_a_final_result_fails_the_transfer_487() -> None:
    net, alice, bob, control, a, b = answered_call()
    out, sink = reports()
    control.start(CallBlindTransfer(a.call_id, "callee", CAROL), net.now, sink)  # type: ignore[arg-type]
    refer = refer_reaching(net, bob)
    b.reply(refer.transaction, 202, net.now)
    net.settle()
    notify(net, b, refer, b"SIP/2.0 100 Trying\r\n", "terminated;reason=noresource")
    assert names(out) == ["TRANSFER_ACCEPT", "FlowError", "FlowEnded"]
    error = out[1]
    assert isinstance(error, FlowError) and error.code == 487 and "without a final result" in error.message
    assert a.confirmed and b.confirmed
    answers = [e.response.status for e in bob.events if isinstance(e, DialogResponse) and e.response is not None]
    assert answers[-1] == 200


def test_a_notify_for_another_subscription_is_not_the_transfers() -> None:
    """A NOTIFY whose Event id names no REFER of ours (RFC 3515 section 2.4.6) is relayed, not taken as the
    transfer's progress."""
    net, alice, bob, control, a, b = answered_call()
    out, sink = reports()
    control.start(CallBlindTransfer(a.call_id, "callee", CAROL), net.now, sink)  # type: ignore[arg-type]
    refer = refer_reaching(net, bob)
    b.reply(refer.transaction, 202, net.now)
    net.settle()
    b.request("NOTIFY", net.now, body=b"SIP/2.0 200 OK\r\n", content_type="message/sipfrag",
              headers=[("Event", "refer;id=999"), ("Subscription-State", "terminated;reason=noresource")])
    net.settle()
    assert names(out) == ["TRANSFER_ACCEPT"]
    relayed = take(alice, DialogRequest)
    assert isinstance(relayed, DialogRequest) and relayed.request.method == "NOTIFY"


def test_a_party_whose_uri_cannot_be_read_has_no_identity() -> None:
    unreadable = SimpleNamespace(remote_uri="<sip:bob@x")
    assert identity_of(cast(Leg, unreadable)) is None
    without_dialog = SimpleNamespace(remote_uri=None)
    assert identity_of(cast(Leg, without_dialog)) is None


def test_no_final_notify_in_time_fails_the_transfer_and_keeps_the_call() -> None:
    net, alice, bob, control, a, b = answered_call()
    out, sink = reports()
    control.start(CallBlindTransfer(a.call_id, "callee", CAROL), net.now, sink)  # type: ignore[arg-type]
    refer = refer_reaching(net, bob)
    b.reply(refer.transaction, 202, net.now)
    net.settle()
    notify(net, b, refer, b"SIP/2.0 100 Trying\r\n", "active;expires=60")
    net.run(until=net.now + 40.0)  # refer_notify_timeout is 32 s
    # 100 Trying says only that the REFER is being acted on: no CALL_START without the INVITE or more
    assert names(out) == ["TRANSFER_ACCEPT", "FlowError", "FlowEnded"]
    error = out[1]
    assert isinstance(error, FlowError) and error.code == 408 and "no final NOTIFY" in error.message
    assert a.confirmed and b.confirmed


def test_call_start_is_named_when_the_invite_comes_seconds_after_the_first_notify() -> None:
    """The attended transfer under loss: the transferee's INVITE, lost twice or more, passed through the
    service well after its ``100 Trying`` NOTIFY; CALL_START still names the new call."""
    net, alice, bob, carol, control = three_phones()
    a, b, _ = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    out, sink = reports()
    control.start(CallBlindTransfer(a.call_id, "callee", CAROL), net.now, sink)  # type: ignore[arg-type]
    refer = refer_reaching(net, bob)
    b.reply(refer.transaction, 202, net.now)
    notify(net, b, refer, b"SIP/2.0 100 Trying\r\n", "active;expires=60")
    net.run(until=net.now + 7.5)
    assert names(out) == ["TRANSFER_ACCEPT"]
    target = parse_name_addr(refer.request.headers.get("Refer-To") or "").uri_text
    new = bob.ua.invite(target, net.now, from_addr="<sip:bob@127.0.0.3>", to_addr=f"<{target}>", body=SDP_B)
    net.settle()
    assert names(out) == ["TRANSFER_ACCEPT", "CALL_START"]
    start = out[1]
    assert isinstance(start, FlowEvent) and start.callid == new.call_id and start.status is None


def test_a_ringing_notify_without_an_invite_through_the_service_reports_call_start_unnamed() -> None:
    """An 18x sipfrag comes after the INVITE reached its UAS; none came through the service, so it went
    another way and CALL_START is reported at once, with the NOTIFY's status and no Call-ID."""
    net, alice, bob, control, a, b = answered_call()
    out, sink = reports()
    control.start(CallBlindTransfer(a.call_id, "callee", CAROL), net.now, sink)  # type: ignore[arg-type]
    refer = refer_reaching(net, bob)
    b.reply(refer.transaction, 202, net.now)
    net.settle()
    notify(net, b, refer, b"SIP/2.0 100 Trying\r\n", "active;expires=60")
    assert names(out) == ["TRANSFER_ACCEPT"]
    notify(net, b, refer, b"SIP/2.0 180 Ringing\r\n", "active;expires=60")
    assert names(out) == ["TRANSFER_ACCEPT", "CALL_START"]
    start = out[1]
    assert isinstance(start, FlowEvent) and start.callid is None and start.status == "SIP/2.0 180 Ringing"



def test_a_notify_without_a_sipfrag_is_answered_200_and_reports_no_progress() -> None:
    net, alice, bob, control, a, b = answered_call()
    out, sink = reports()
    control.start(CallBlindTransfer(a.call_id, "callee", CAROL), net.now, sink)  # type: ignore[arg-type]
    refer = refer_reaching(net, bob)
    b.reply(refer.transaction, 202, net.now)
    net.settle()
    bob.events.clear()
    notify(net, b, refer, b"not a status line", "active;expires=60")
    answers = [e.response.status for e in bob.events if isinstance(e, DialogResponse) and e.response is not None]
    assert answers == [200] and names(out) == ["TRANSFER_ACCEPT"]


def test_other_requests_during_a_transfer_are_relayed_as_usual() -> None:
    net, alice, bob, control, a, b = answered_call()
    out, sink = reports()
    control.start(CallBlindTransfer(a.call_id, "callee", CAROL), net.now, sink)  # type: ignore[arg-type]
    refer_reaching(net, bob)
    a.request("INFO", net.now, body=b"Signal=5\r\n", content_type="application/dtmf-relay")
    net.settle()
    info = take(bob, DialogRequest)
    assert isinstance(info, DialogRequest) and info.request.method == "INFO" and info.request.body == b"Signal=5\r\n"
    assert names(out) == []


def test_a_final_notify_before_the_202_completes_the_transfer_and_the_late_202_changes_nothing() -> None:
    """RFC 6665 section 4.1.2.4: a NOTIFY may overtake the 2xx to the REFER; it counts as acceptance."""
    net, alice, bob, control, a, b = answered_call()
    out, sink = reports()
    control.start(CallBlindTransfer(a.call_id, "callee", CAROL), net.now, sink)  # type: ignore[arg-type]
    refer = refer_reaching(net, bob)
    notify(net, b, refer, b"SIP/2.0 200 OK\r\n", "terminated;reason=noresource")
    assert names(out) == ["TRANSFER_ACCEPT", "CALL_START", "FlowEnded"]
    b.reply(refer.transaction, 202, net.now)
    net.settle()
    assert names(out) == ["TRANSFER_ACCEPT", "CALL_START", "FlowEnded"] and a.ended


def test_call_start_names_the_new_call_once_when_its_invite_comes_before_the_first_notify() -> None:
    net, alice, bob, carol, control = three_phones()
    a, b, _ = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    out, sink = reports()
    control.start(CallBlindTransfer(a.call_id, "callee", CAROL), net.now, sink)  # type: ignore[arg-type]
    refer = refer_reaching(net, bob)
    b.reply(refer.transaction, 202, net.now)
    target = parse_name_addr(refer.request.headers.get("Refer-To") or "").uri_text
    new = bob.ua.invite(target, net.now, from_addr="<sip:bob@127.0.0.3>", to_addr=f"<{target}>", body=SDP_B)
    net.settle()
    notify(net, b, refer, b"SIP/2.0 180 Ringing\r\n", "active;expires=60")
    assert names(out) == ["TRANSFER_ACCEPT", "CALL_START"]
    start = out[1]
    # reported once, as soon as the INVITE came through (no status yet); the NOTIFY adds nothing
    assert isinstance(start, FlowEvent) and start.callid == new.call_id and start.status is None
