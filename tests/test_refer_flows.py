"""CallStart (click-to-dial) and CallBlindTransfer over the in-memory network, the phones played by
test code that answers REFER, sends NOTIFY with sipfrag, and places the referred call (no sockets)."""

from __future__ import annotations

from b2bua.call.commands import CallAttendedTransfer, CallBlindTransfer, CallEnd, CallHold, CallStart, CallUnHold
from b2bua.call.control import Control
from b2bua.call.events import FlowError, FlowEvent, FlowReport
from b2bua.sip import sdp
from b2bua.sip.headers import parse_name_addr
from b2bua.sip.session import Session
from b2bua.sip.ua_events import CallAnswered, DialogRequest, DialogResponse, IncomingCall

from .call_builders import SDP_A, SDP_B, answer_incoming, dial, names, rig, take, three_phones, transferee
from .sipnet import Network, Node


def callstart_rig() -> tuple[Network, Node, Node, Node, Control]:
    net, alice, bob, service, app = rig()
    return net, alice, bob, service, Control(app)


def test_callstart_success_reports_the_seed_sequence() -> None:
    net, alice, bob, service, control = callstart_rig()
    out: list[FlowReport] = []
    control.start(CallStart("sip:alice@127.0.0.2:5060", "sip:bob@127.0.0.3:5060"), net.now, out.append, "cmd-1")
    net.settle()
    first = take(alice, IncomingCall)
    assert isinstance(first, IncomingCall)
    invite = first.request
    assert invite.from_ is not None and invite.from_.uri_text == "sip:bob@127.0.0.3:5060"
    assert sdp.directions(invite.body) == ["inactive"]
    first.session.respond(200, net.now, body=sdp.set_direction(SDP_A, "inactive"))
    net.settle()
    refer_to, new = transferee(net, alice, first.session)
    assert ";osid=" in refer_to and refer_to.startswith("<sip:bob@127.0.0.3:5060")
    bob_session = answer_incoming(net, bob)
    net.settle()
    assert names(out) == ["CALL_ANSWER", "TRANSFER_ACCEPT", "CALL_START", "CALL_ANSWER", "FlowEnded"]
    start = out[2]
    assert isinstance(start, FlowEvent) and start.callid == (new.call_id if new else None)
    incoming_at_bob = bob_session.invite
    assert "osid" not in incoming_at_bob.uri and "osid" not in (incoming_at_bob.headers.get("to") or "")
    assert first.session.ended  # the first dialog got its BYE
    assert len(control.b2bua.table) == 1  # the new call alice <-> bob remains


def test_callstart_caller_busy() -> None:
    net, alice, bob, service, control = callstart_rig()
    out: list[FlowReport] = []
    control.start(CallStart("sip:alice@127.0.0.2:5060", "sip:bob@127.0.0.3:5060"), net.now, out.append)
    net.settle()
    first = take(alice, IncomingCall)
    assert isinstance(first, IncomingCall)
    first.session.respond(486, net.now)
    net.settle()
    assert names(out) == ["FlowError", "FlowEnded"]
    assert isinstance(out[0], FlowError) and out[0].code == 486
    assert len(control.b2bua.table) == 0


def test_callstart_refer_refused_and_failed_transfer() -> None:
    for refer_status, final in ((603, 200), (202, 486)):
        net, alice, bob, service, control = callstart_rig()
        out: list[FlowReport] = []
        control.start(CallStart("sip:alice@127.0.0.2:5060", "sip:bob@127.0.0.3:5060"), net.now, out.append)
        net.settle()
        first = answer_incoming(net, alice, sdp.set_direction(SDP_A, "inactive"))
        net.settle()
        _, new = transferee(net, alice, first, refer_status=refer_status, final=final)
        if new is not None:
            take(bob, IncomingCall)
        net.settle()
        errors = [r for r in out if isinstance(r, FlowError)]
        assert len(errors) == 1 and errors[0].code in (603, 486)
        assert names(out)[-1] == "FlowEnded"
        assert first.ended


def test_callstart_no_final_notify_times_out() -> None:
    net, alice, bob, service, control = callstart_rig()
    out: list[FlowReport] = []
    control.start(CallStart("sip:alice@127.0.0.2:5060", "sip:bob@127.0.0.3:5060"), net.now, out.append)
    net.settle()
    first = answer_incoming(net, alice, sdp.set_direction(SDP_A, "inactive"))
    net.settle()
    transferee(net, alice, first, final_notify=False)
    net.settle(40)
    assert names(out)[:3] == ["CALL_ANSWER", "TRANSFER_ACCEPT", "CALL_START"]
    assert names(out)[-2:] == ["FlowError", "FlowEnded"]
    assert isinstance(out[-2], FlowError) and out[-2].code == 408


def test_blind_transfer_of_the_callee() -> None:
    net, alice, bob, carol, control = three_phones()
    app = control.b2bua
    a, b, _ = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    out: list[FlowReport] = []
    Control(app).start(CallBlindTransfer(a.call_id, "callee", "sip:carol@127.0.0.4:5060"), net.now, out.append)
    net.settle()
    refer_to, new = transferee(net, bob, b)
    carol_session = answer_incoming(net, carol)
    net.settle()
    assert names(out) == ["TRANSFER_ACCEPT", "CALL_START", "FlowEnded"]
    assert refer_to.startswith("<sip:carol@127.0.0.4:5060;osid=")
    assert a.ended and b.ended and carol_session.confirmed
    assert new is not None and new.confirmed
    assert len(app.table) == 1
    referred_by = [e for e in bob.events if isinstance(e, (DialogResponse, CallAnswered))]
    assert referred_by is not None


def test_blind_transfer_failure_keeps_the_call() -> None:
    net, alice, bob, service, app = rig()
    a, b, _ = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    out: list[FlowReport] = []
    Control(app).start(CallBlindTransfer(a.call_id, "callee", "sip:carol@127.0.0.4:5060"), net.now, out.append)
    net.settle()
    transferee(net, bob, b, refer_status=603)
    net.settle()
    assert names(out) == ["FlowError", "FlowEnded"]
    assert a.confirmed and b.confirmed and len(app.table) == 1


def test_attended_transfer_joins_the_transferee_to_the_target_with_replaces() -> None:
    from b2bua.sip.uri import parse_uri

    net, alice, bob, carol, control = three_phones()
    app = control.b2bua
    # call A: alice -> bob; call B: bob -> carol (the consultation call)
    a, b_in_a, _ = dial(net, alice, bob)
    b_in_a.respond(200, net.now, body=SDP_B)
    net.settle()
    b_out = bob.ua.invite("sip:carol@127.0.0.4:5060", net.now, from_addr="<sip:bob@127.0.0.3>",
                          to_addr="<sip:carol@127.0.0.4>", body=SDP_B)
    net.settle()
    carol_session = answer_incoming(net, carol, SDP_A.replace(b"alice", b"carol"))
    net.settle()
    out: list[FlowReport] = []
    Control(app).start(CallAttendedTransfer(a.call_id, "caller", b_out.call_id, "callee", None), net.now, out.append)
    net.settle()
    # alice plays the transferee: 202, NOTIFY 100, INVITE with the Replaces from the Refer-To
    refer = take(alice, DialogRequest)
    assert isinstance(refer, DialogRequest)
    refer_to = parse_name_addr(refer.request.headers.get("Refer-To") or "")
    uri = parse_uri(refer_to.uri_text)
    replaces = dict(uri.header_items())["Replaces"]  # type: ignore[union-attr]
    # the dialog carol has with the service, as carol sees it: her tag is the to-tag
    assert replaces == f"{carol_session.call_id};to-tag={carol_session.local_tag};from-tag=" + \
        (carol_session.dialog.id.remote_tag if carol_session.dialog else "")
    a.reply(refer.transaction, 202, net.now)
    event = f"refer;id={refer.request.cseq.number if refer.request.cseq else 0}"
    a.request("NOTIFY", net.now, body=b"SIP/2.0 100 Trying\r\n", content_type="message/sipfrag",
              headers=[("Event", event), ("Subscription-State", "active")])
    target = str(uri.without_headers())  # type: ignore[union-attr]
    new = alice.ua.invite(target, net.now, from_addr="<sip:alice@127.0.0.2>", to_addr="<sip:carol@127.0.0.4>",
                          body=SDP_A, headers=[("Replaces", replaces)])
    net.settle()
    reinvite = take(carol, DialogRequest)  # carol gets alice's SDP in a re-INVITE of her existing dialog
    assert isinstance(reinvite, DialogRequest) and reinvite.request.method == "INVITE"
    # alice's media, in the session carol knows: bob's o= origin, its version one above the last
    assert b"c=IN IP4 127.0.0.2" in reinvite.request.body and b"m=audio 4000" in reinvite.request.body
    assert b"o=bob 20 2 IN IP4 127.0.0.2" in reinvite.request.body
    carol_session.reply(reinvite.transaction, 200, net.now, body=SDP_A.replace(b"alice", b"carol"))
    net.settle()
    assert new.confirmed and b_out.ended  # alice's new call is up, bob's consultation leg got its BYE
    a.request("NOTIFY", net.now, body=b"SIP/2.0 200 OK\r\n", content_type="message/sipfrag",
              headers=[("Event", event), ("Subscription-State", "terminated")])
    net.settle()
    assert names(out) == ["TRANSFER_ACCEPT", "CALL_START", "FlowEnded"]
    start = out[1]
    assert isinstance(start, FlowEvent) and start.callid == new.call_id
    assert a.ended and b_in_a.ended and carol_session.confirmed
    assert len(app.table) == 1 and app.table.find(new.call_id) is not None


def test_replaces_naming_no_dialog_gets_481() -> None:
    net, alice, bob, service, app = rig()
    failed_session = alice.ua.invite("sip:bob@127.0.0.3", net.now, from_addr="<sip:alice@x>", to_addr="<sip:b@y>",
                                     body=SDP_A, headers=[("Replaces", "nope@x;to-tag=1;from-tag=2")])
    net.settle()
    assert failed_session.ended
    assert 481 in [m.status for m in alice.inbox if hasattr(m, "status")]


def test_chain_callstart_hold_resume_blind_transfer_end() -> None:
    from .call_builders import answer_reinvites

    net, alice, bob, carol, control = three_phones()
    out: list[FlowReport] = []
    control.start(CallStart("sip:alice@127.0.0.2:5060", "sip:bob@127.0.0.3:5060"), net.now, out.append)
    net.settle()
    first = answer_incoming(net, alice, sdp.set_direction(SDP_A, "inactive"))
    net.settle()
    _, alice_call = transferee(net, alice, first)
    bob_session = answer_incoming(net, bob)
    net.settle()
    start = next(r for r in out if isinstance(r, FlowEvent) and r.data == "CALL_START")
    assert start.callid is not None and alice_call is not None
    callid = start.callid
    # hold and resume the new call, found by the Call-ID the events reported
    for command in (CallHold, CallUnHold):
        got: list[FlowReport] = []
        control.start(command(callid, None), net.now, got.append)
        for _ in range(3):
            net.settle(0.5)
            answer_reinvites(net, alice, alice_call)
            answer_reinvites(net, bob, bob_session)
        net.settle()
        assert names(got)[-1] == "FlowEnded" and "FlowError" not in names(got)
    # blind-transfer bob to carol, then end the call that transfer made
    moved: list[FlowReport] = []
    control.start(CallBlindTransfer(callid, "callee", "sip:carol@127.0.0.4:5060"), net.now, moved.append)
    net.settle()
    _, bob_to_carol = transferee(net, bob, bob_session)
    answer_incoming(net, carol)
    net.settle()
    assert names(moved) == ["TRANSFER_ACCEPT", "CALL_START", "FlowEnded"]
    new_start = moved[1]
    assert isinstance(new_start, FlowEvent) and new_start.callid is not None
    assert bob_to_carol is not None and new_start.callid == bob_to_carol.call_id
    ended: list[FlowReport] = []
    control.start(CallEnd(new_start.callid), net.now, ended.append)
    net.settle()
    assert names(ended) == ["FlowEnded"]
    assert len(control.b2bua.table) == 0


def test_fifty_concurrent_callstarts_all_complete() -> None:
    net, alice, bob, service, control = callstart_rig()
    reports: list[list[FlowReport]] = []
    for i in range(50):
        out: list[FlowReport] = []
        reports.append(out)
        command = CallStart(f"sip:alice{i}@127.0.0.2:5060", f"sip:bob{i}@127.0.0.3:5060")
        control.start(command, net.now, out.append, f"c{i}")
    net.settle()
    firsts = [e.session for e in alice.events if isinstance(e, IncomingCall)]
    alice.events.clear()
    assert len(firsts) == 50
    for session in firsts:
        session.respond(200, net.now, body=sdp.set_direction(SDP_A, "inactive"))
    net.settle()
    for session in firsts:
        transferee_in_batch(net, alice, session)
    net.settle()
    for event in [e for e in bob.events if isinstance(e, IncomingCall)]:
        event.session.respond(200, net.now, body=SDP_B)
    net.settle()
    for session in firsts:
        final_notify(net, session)
    net.settle()
    for out in reports:
        assert names(out) == ["CALL_ANSWER", "TRANSFER_ACCEPT", "CALL_START", "CALL_ANSWER", "FlowEnded"]
    assert len(control.b2bua.table) == 50  # the 50 new calls; the click-to-dial dialogs are gone


def transferee_in_batch(net: Network, node: Node, session: Session) -> None:
    """The transferee's first half for one of many calls: 202, NOTIFY 100, INVITE the target."""
    refer = next(e for e in node.events if isinstance(e, DialogRequest) and e.session is session)
    node.events.remove(refer)
    session.reply(refer.transaction, 202, net.now)
    NOTIFY_EVENT[session.call_id] = f"refer;id={refer.request.cseq.number if refer.request.cseq else 0}"
    session.request("NOTIFY", net.now, body=b"SIP/2.0 100 Trying\r\n", content_type="message/sipfrag",
                    headers=[("Event", NOTIFY_EVENT[session.call_id]), ("Subscription-State", "active")])
    target = parse_name_addr(refer.request.headers.get("Refer-To") or "").uri_text
    node.ua.invite(target, net.now, from_addr="<sip:transferee@127.0.0.2>", to_addr=f"<{target}>", body=SDP_A)


def final_notify(net: Network, session: Session) -> None:
    session.request("NOTIFY", net.now, body=b"SIP/2.0 200 OK\r\n", content_type="message/sipfrag",
                    headers=[("Event", NOTIFY_EVENT[session.call_id]), ("Subscription-State", "terminated")])


#: The Event header each transferee session uses in its NOTIFYs (refer;id=<CSeq of the REFER>).
NOTIFY_EVENT: dict[str, str] = {}


def test_late_notify_after_a_failed_transfer_is_answered_not_relayed() -> None:
    net, alice, bob, service, app = rig()
    a, b, _ = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    app.settings = type(app.settings)(refer_notify_timeout=1.0)
    out: list[FlowReport] = []
    Control(app).start(CallBlindTransfer(a.call_id, "callee", "sip:carol@127.0.0.4:5060"), net.now, out.append)
    net.settle()
    transferee(net, bob, b, final_notify=False)
    net.settle(3)
    assert names(out)[-2:] == ["FlowError", "FlowEnded"]
    b.request("NOTIFY", net.now, body=b"SIP/2.0 200 OK\r\n", content_type="message/sipfrag",
              headers=[("Event", "refer;id=2"), ("Subscription-State", "terminated")])
    net.settle()
    assert not [e for e in alice.events if isinstance(e, DialogRequest)]  # alice never sees it
    answers = [e for e in bob.events if isinstance(e, DialogResponse) and e.outgoing.method == "NOTIFY"]
    assert answers and answers[-1].response.status == 200
    assert a.confirmed and b.confirmed
