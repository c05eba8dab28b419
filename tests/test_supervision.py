"""Session timers on each leg, the maximum duration and the idle reaper (b2bua.call.supervision), over the
in-memory network on a fake clock: alice -> service -> bob, with alice and bob played by the test."""

from __future__ import annotations

from b2bua.call.b2bua import B2bua, B2buaSettings
from b2bua.call.call import CallState
from b2bua.call.live import LiveCalls
from b2bua.call.record import CallKeeper, call_record, restore_call
from b2bua.call.supervision import SupervisionSettings
from b2bua.sip.message import Request
from b2bua.sip.session import Session
from b2bua.sip.session_timer import SessionTimerSettings
from b2bua.sip.ua import UaSettings
from b2bua.sip.ua_events import CallAnswered, CallEnded, CallFailed, DialogRequest, DialogResponse, IncomingCall
from b2bua.sip.uri import parse_sip_uri

from .call_builders import SDP_A, SDP_B, restart_service, take
from .sipnet import Network, Node

TIMER = [("Supported", "timer")]
SHORT = SessionTimerSettings(session_expires=90, min_se=90)


def rig(supervision: SupervisionSettings) -> tuple[Network, Node, Node, Node, B2bua]:
    net = Network()
    proxy = parse_sip_uri("sip:127.0.0.1:5080;lr")
    alice = net.add("alice", "127.0.0.2", UaSettings(outbound_proxy=proxy))
    bob = net.add("bob", "127.0.0.3", UaSettings(outbound_proxy=proxy))
    service = net.add("service", "127.0.0.1", port=5080)
    app = B2bua(service.ua, B2buaSettings(supervision=supervision), LiveCalls(lambda: 0.0))
    service.app = app
    return net, alice, bob, service, app


def call(net: Network, alice: Node, bob: Node, *, caller: list[tuple[str, str]],
         callee: list[tuple[str, str]]) -> tuple[Session, Session, Request]:
    """alice calls bob with ``caller`` headers; bob answers 200 with ``callee`` headers."""
    a = alice.ua.invite("sip:bob@127.0.0.3:5060", net.now, from_addr="<sip:alice@127.0.0.2>",
                        to_addr="<sip:bob@127.0.0.3>", body=SDP_A, headers=caller)
    net.settle()
    incoming = take(bob, IncomingCall)
    assert isinstance(incoming, IncomingCall)
    sent = net.sent("INVITE", sender="service")[-1]  # as it went (the session sheds its INVITE once confirmed)
    assert isinstance(sent, Request)
    incoming.session.respond(200, net.now, body=SDP_B, headers=callee)
    net.settle(0.1)  # the answer at now - 0.1: the tests count from there
    return a, incoming.session, sent


def end_reasons(app: B2bua) -> list[object]:
    """The ``reason`` of each ``ended`` event the live-state API reported."""
    return [event.get("reason") for event in app.live.buffer if event.event == "ended"]


def requests(node: Node, method: str) -> list[DialogRequest]:
    out = [e for e in node.events if isinstance(e, DialogRequest) and e.request.method == method]
    for event in out:
        node.events.remove(event)
    return out


def answer_all(net: Network, node: Node, session: Session, method: str, status: int = 200,
               headers: list[tuple[str, str]] | None = None) -> int:
    """Answer every ``method`` ``node`` got (re-INVITEs with the SDP the node has); how many there were."""
    got = requests(node, method)
    for event in got:
        body = event.request.body and (SDP_A if node.name == "alice" else SDP_B)
        session.reply(event.transaction, status, net.now, body=body if status == 200 else b"", headers=headers or ())
    net.settle(0.5)
    return len(got)


def test_both_legs_negotiate_independently() -> None:
    net, alice, bob, service, app = rig(SupervisionSettings(session_timers=SessionTimerSettings(1800, 90)))
    a, b, invite = call(net, alice, bob, caller=[*TIMER, ("Session-Expires", "600")],
                        callee=[("Session-Expires", "900;refresher=uac"), ("Require", "timer")])
    assert invite.headers.get("Session-Expires") == "1800" and invite.headers.get("Min-SE") == "90"
    assert "timer" in invite.tokens("supported")
    answered = take(alice, CallAnswered)
    assert isinstance(answered, CallAnswered)
    assert answered.response.headers.get("Session-Expires") == "600;refresher=uac"
    assert answered.response.tokens("require") == ["timer"]
    found = app.table.find(a.call_id)
    assert found is not None
    caller, callee = found.caller, found.callee
    assert callee is not None and caller.session_timer is not None and callee.session_timer is not None
    assert (caller.session_timer.negotiated.interval, caller.session_timer.negotiated.we_refresh) == (600, False)
    assert (callee.session_timer.negotiated.interval, callee.session_timer.negotiated.we_refresh) == (900, True)


def test_the_service_refreshes_its_leg_and_answers_the_callers_refreshes_itself() -> None:
    """Alice refreshes every 45 s (refresher uac on her leg); the service refreshes bob's leg (bob's 2xx named
    the service's side the refresher). The call lives past 3 x Session-Expires; bob never sees alice's refreshes."""
    net, alice, bob, service, app = rig(SupervisionSettings(session_timers=SHORT))
    a, b, _ = call(net, alice, bob, caller=[*TIMER, ("Session-Expires", "90;refresher=uac")],
                   callee=[("Session-Expires", "90;refresher=uac"), ("Require", "timer")])
    bob_refreshes = 0
    for second in range(1, 316):  # 315 s > 3 x 90 s
        if second % 45 == 0:
            a.request("INVITE", net.now, body=SDP_A, content_type="application/sdp",
                      headers=[*TIMER, ("Session-Expires", "90;refresher=uac")])
            net.settle(0.5)
            ok = [e for e in alice.events if isinstance(e, DialogResponse)]
            alice.events.clear()
            assert ok and ok[-1].response.status == 200
            assert ok[-1].response.headers.get("Session-Expires") == "90;refresher=uac"
            assert ok[-1].response.body == SDP_B  # the SDP the service sent her before: no change
        bob_refreshes += answer_all(net, bob, b, "INVITE", headers=[("Session-Expires", "90;refresher=uac")])
        net.run(until=net.now + 0.5)
    assert bob_refreshes >= 6
    found = app.table.find(a.call_id)
    assert found is not None and found.state is CallState.ANSWERED and not a.ended and not b.ended
    offers = [m for m in net.sent("INVITE", sender="service") if isinstance(m, Request) and m.to_tag]
    assert offers and all(m.body == SDP_A for m in offers if m.call_id == b.call_id)


def test_a_caller_that_stops_refreshing_gets_bye_on_both_legs_within_the_interval() -> None:
    net, alice, bob, service, app = rig(SupervisionSettings(session_timers=SHORT))
    a, b, _ = call(net, alice, bob, caller=[*TIMER, ("Session-Expires", "90;refresher=uac")], callee=[])
    net.run(until=net.now + 59.0)
    assert not a.ended and not b.ended
    net.run(until=net.now + 2.0)  # 90 - min(32, 30) = 60 s after the answer
    assert isinstance(take(alice, CallEnded), CallEnded) and isinstance(take(bob, CallEnded), CallEnded)
    assert len(net.sent("BYE", sender="service")) == 2
    assert len(app.table) == 0 and end_reasons(app) == ["timeout"]


def test_a_callee_that_does_not_answer_the_refresh_is_ended_with_the_caller() -> None:
    net, alice, bob, service, app = rig(SupervisionSettings(session_timers=SHORT))
    a, b, _ = call(net, alice, bob, caller=[], callee=[("Session-Expires", "90;refresher=uac")])
    net.run(until=net.now + 46.0)
    refresh = requests(bob, "INVITE")
    assert len(refresh) == 1 and refresh[0].request.body == SDP_A
    b.reply(refresh[0].transaction, 500, net.now)  # refused: the session lives until the interval runs out
    net.run(until=net.now + 30.0)
    assert isinstance(take(alice, CallEnded), CallEnded) and isinstance(take(bob, CallEnded), CallEnded)


def test_phones_without_timer_support_are_bridged_unchanged() -> None:
    net, alice, bob, service, app = rig(SupervisionSettings(session_timers=SHORT))
    a, b, _ = call(net, alice, bob, caller=[], callee=[])
    answered = take(alice, CallAnswered)
    assert isinstance(answered, CallAnswered) and "Session-Expires" not in answered.response.headers
    assert "Require" not in answered.response.headers
    net.run(until=net.now + 1000.0)
    assert not a.ended and not b.ended and not requests(bob, "INVITE")
    # a re-INVITE is relayed as before
    a.request("INVITE", net.now, body=SDP_A, content_type="application/sdp")
    net.settle(0.5)
    assert len(requests(bob, "INVITE")) == 1


def test_timers_off_send_nothing() -> None:
    net, alice, bob, service, app = rig(SupervisionSettings(session_timers=None))
    assert app.supervisor is None
    _, _, invite = call(net, alice, bob, caller=[*TIMER, ("Session-Expires", "90")], callee=[])
    assert "Session-Expires" not in invite.headers and "Min-SE" not in invite.headers


def test_a_callee_demanding_a_larger_min_se_gets_the_invite_again_with_it() -> None:
    net, alice, bob, service, app = rig(SupervisionSettings(session_timers=SHORT))
    a = alice.ua.invite("sip:bob@127.0.0.3:5060", net.now, from_addr="<sip:alice@127.0.0.2>",
                        to_addr="<sip:bob@127.0.0.3>", body=SDP_A)
    net.settle()
    first = take(bob, IncomingCall)
    assert isinstance(first, IncomingCall) and first.request.headers.get("Min-SE") == "90"
    first.session.respond(422, net.now, headers=[("Min-SE", "300")])
    net.settle()
    second = take(bob, IncomingCall)
    assert isinstance(second, IncomingCall)
    assert second.request.headers.get("Min-SE") == "300" and second.request.headers.get("Session-Expires") == "300"
    assert second.request.call_id == first.request.call_id
    assert second.request.cseq is not None and first.request.cseq is not None
    assert second.request.cseq.number == first.request.cseq.number + 1
    second.session.respond(200, net.now, body=SDP_B, headers=[("Session-Expires", "300;refresher=uas")])
    net.settle()
    assert isinstance(take(alice, CallAnswered), CallAnswered)
    found = app.table.find(a.call_id)
    assert found is not None and found.callee is not None and found.callee.session_timer is not None
    assert found.callee.session_timer.negotiated.interval == 300


def test_a_second_422_fails_the_call() -> None:
    net, alice, bob, service, app = rig(SupervisionSettings(session_timers=SHORT))
    alice.ua.invite("sip:bob@127.0.0.3:5060", net.now, from_addr="<sip:alice@127.0.0.2>",
                    to_addr="<sip:bob@127.0.0.3>", body=SDP_A)
    net.settle()
    for _ in range(2):
        incoming = take(bob, IncomingCall)
        assert isinstance(incoming, IncomingCall)
        incoming.session.respond(422, net.now, headers=[("Min-SE", "300")])
        net.settle()
    failed = take(alice, CallFailed)
    assert isinstance(failed, CallFailed) and failed.status == 422


def test_a_caller_asking_too_short_an_interval_gets_422() -> None:
    net, alice, bob, service, app = rig(SupervisionSettings(session_timers=SHORT))
    alice.ua.invite("sip:bob@127.0.0.3:5060", net.now, from_addr="<sip:alice@127.0.0.2>",
                    to_addr="<sip:bob@127.0.0.3>", body=SDP_A, headers=[*TIMER, ("Session-Expires", "60")])
    net.settle()
    refused = net.sent(422, sender="service")
    assert len(refused) == 1 and refused[0].headers.get("Min-SE") == "90"
    # alice is the service's own UA code: she asks again with the Min-SE (RFC 4028 section 7.4), and gets through
    retried = net.sent("INVITE", sender="alice")
    assert len(retried) == 2 and retried[1].headers.get("Min-SE") == "90"
    assert retried[1].headers.get("Session-Expires") == "90"
    incoming = take(bob, IncomingCall)
    assert isinstance(incoming, IncomingCall)


def test_a_media_change_is_relayed_and_refreshes_the_leg() -> None:
    net, alice, bob, service, app = rig(SupervisionSettings(session_timers=SHORT))
    a, b, _ = call(net, alice, bob, caller=[*TIMER, ("Session-Expires", "90;refresher=uac")], callee=[])
    net.run(until=net.now + 50.0)
    changed = SDP_A.replace(b"o=alice 10 1", b"o=alice 10 2")
    a.request("INVITE", net.now, body=changed, content_type="application/sdp")
    net.settle(0.5)
    relayed = requests(bob, "INVITE")
    assert len(relayed) == 1
    b.reply(relayed[0].transaction, 200, net.now, body=SDP_B)
    net.run(until=net.now + 50.0)  # 100 s after the answer, 50 s after the refresh
    assert not a.ended


def test_maximum_duration_ends_the_call_on_both_legs() -> None:
    net, alice, bob, service, app = rig(SupervisionSettings(session_timers=None, max_duration=100.0))
    a, b, _ = call(net, alice, bob, caller=[], callee=[])
    net.run(until=net.now + 99.0)
    assert not a.ended
    net.run(until=net.now + 2.0)
    assert isinstance(take(alice, CallEnded), CallEnded) and isinstance(take(bob, CallEnded), CallEnded)
    assert end_reasons(app) == ["timeout"]


def test_the_reaper_probes_idle_legs_and_keeps_calls_whose_phones_answer() -> None:
    net, alice, bob, service, app = rig(SupervisionSettings(session_timers=None, idle_probe=30.0))
    a, b, _ = call(net, alice, bob, caller=[], callee=[])
    net.run(until=net.now + 29.0)
    assert not requests(alice, "OPTIONS")
    net.run(until=net.now + 1.5)
    assert answer_all(net, alice, a, "OPTIONS", 405) == 1  # any answer but 408/481 means alive
    assert answer_all(net, bob, b, "OPTIONS", 200) == 1
    net.run(until=net.now + 20.0)
    a.request("INFO", net.now)  # activity puts the next probe off
    net.settle(0.5)
    answer_all(net, bob, b, "INFO")
    net.run(until=net.now + 15.0)
    assert not requests(alice, "OPTIONS") and not a.ended


def test_the_reaper_ends_a_call_whose_phone_stopped_answering() -> None:
    net, alice, bob, service, app = rig(SupervisionSettings(session_timers=None, idle_probe=30.0))
    a, b, _ = call(net, alice, bob, caller=[], callee=[])
    net.run(until=net.now + 31.0)
    answer_all(net, alice, a, "OPTIONS", 200)
    bob.events.clear()
    net.drop = lambda src, dst, msg: dst.name == "bob"  # bob is gone
    net.run(until=net.now + 40.0)
    assert isinstance(take(alice, CallEnded), CallEnded)
    assert len(app.table) == 0 and end_reasons(app) == ["timeout"]


def test_the_reaper_ends_the_call_on_481() -> None:
    net, alice, bob, service, app = rig(SupervisionSettings(session_timers=None, idle_probe=30.0))
    a, b, _ = call(net, alice, bob, caller=[], callee=[])
    net.run(until=net.now + 31.0)
    answer_all(net, alice, a, "OPTIONS", 200)
    answer_all(net, bob, b, "OPTIONS", 481)
    net.settle()
    assert isinstance(take(alice, CallEnded), CallEnded)
    assert len(app.table) == 0


def test_a_restored_call_gets_its_timers_back() -> None:
    net, alice, bob, service, app = rig(SupervisionSettings(session_timers=SessionTimerSettings(1800, 90)))
    a, b, _ = call(net, alice, bob, caller=[*TIMER, ("Session-Expires", "150;refresher=uac")],
                   callee=[("Session-Expires", "120;refresher=uac")])
    found = app.table.find(a.call_id)
    assert found is not None
    record = call_record(found)
    assert b'"timer":{"interval":150,"we_refresh":false}' in record
    assert b'"timer":{"interval":120,"we_refresh":true}' in record
    node, new_app = restart_service(net, service)
    new_app.supervisor = app.supervisor and type(app.supervisor)(app.supervisor.settings, node.ua.schedule,
                                                                   new_app.live)
    restored = restore_call(record, node.ua, new_app.table, net.now)
    new_app.resume(restored, net.now)
    callee = restored.callee
    assert callee is not None and callee.session_timer is not None
    assert restored.caller.session_timer is not None and restored.caller.session_timer.negotiated.interval == 150
    net.run(until=net.now + 61.0)
    refreshes = requests(bob, "INVITE")
    assert len(refreshes) == 1  # bob's leg refreshed by the restored service at 60 s
    b.reply(refreshes[0].transaction, 200, net.now, body=SDP_B, headers=[("Session-Expires", "120;refresher=uac")])
    net.run(until=net.now + 56.0)
    assert not a.ended
    net.run(until=net.now + 2.0)
    assert isinstance(take(alice, CallEnded), CallEnded)  # alice never refreshed: ended 150 - 32 s after restore


def test_a_record_without_timer_restores_without_one() -> None:
    net, alice, bob, service, app = rig(SupervisionSettings(session_timers=None))
    a, _, _ = call(net, alice, bob, caller=[], callee=[])
    found = app.table.find(a.call_id)
    assert found is not None
    keeper = CallKeeper()
    keeper.changed(found)
    record = call_record(found)
    assert b'"timer":null' in record
    node, new_app = restart_service(net, service)
    restored = restore_call(record, node.ua, new_app.table)
    assert all(leg.session_timer is None for leg in restored.legs.values())


def test_a_response_to_anything_else_is_no_refresh() -> None:
    net, alice, bob, service, app = rig(SupervisionSettings(session_timers=SHORT))
    a, b, _ = call(net, alice, bob, caller=[*TIMER, ("Session-Expires", "90;refresher=uac")], callee=[])
    net.run(until=net.now + 40.0)
    a.request("INFO", net.now)
    net.settle(0.5)
    answer_all(net, bob, b, "INFO")
    net.run(until=net.now + 21.0)
    assert isinstance(take(alice, CallEnded), CallEnded)


def test_an_update_refresh_is_answered_here_with_or_without_sdp() -> None:
    net, alice, bob, service, app = rig(SupervisionSettings(session_timers=SHORT))
    a, b, _ = call(net, alice, bob, caller=[*TIMER, ("Session-Expires", "90;refresher=uac")], callee=[])
    for body in (b"", SDP_A):
        alice.events.clear()
        a.request("UPDATE", net.now, body=body, content_type="application/sdp" if body else None,
                  headers=[*TIMER, ("Session-Expires", "90;refresher=uac")])
        net.settle(0.5)
        answer = [e for e in alice.events if isinstance(e, DialogResponse)][-1].response
        assert answer.status == 200 and answer.body == (SDP_B if body else b"")
        assert answer.headers.get("Session-Expires") == "90;refresher=uac"
    assert not requests(bob, "UPDATE")
    net.run(until=net.now + 59.0)  # 60 s from the last refresh, not from the answer
    assert not a.ended


def test_a_refresh_asking_too_little_gets_422_and_a_refresh_without_timer_ends_the_timer() -> None:
    net, alice, bob, service, app = rig(SupervisionSettings(session_timers=SHORT))
    a, b, _ = call(net, alice, bob, caller=[*TIMER, ("Session-Expires", "90;refresher=uac")], callee=[])
    a.request("UPDATE", net.now, headers=[*TIMER, ("Session-Expires", "30")])
    net.settle(0.5)
    assert [e for e in alice.events if isinstance(e, DialogResponse)][-1].response.status == 422
    alice.events.clear()
    a.request("UPDATE", net.now)
    net.settle(0.5)
    assert [e for e in alice.events if isinstance(e, DialogResponse)][-1].response.status == 200
    found = app.table.find(a.call_id)
    assert found is not None and found.caller.session_timer is None
    net.run(until=net.now + 300.0)
    assert not a.ended


def test_a_refresh_waits_for_a_pending_reinvite_whose_2xx_then_refreshes() -> None:
    """RFC 3261 section 14.1: one INVITE transaction at a time. Bob's refresh falls due (45 s) while alice's
    relayed re-INVITE waits for bob's answer: it is tried again 2 s later, and bob's 2xx to the relayed one
    refreshes his leg (RFC 4028 section 10), so the next refresh comes 45 s after that."""
    net, alice, bob, service, app = rig(SupervisionSettings(session_timers=SHORT))
    a, b, _ = call(net, alice, bob, caller=[], callee=[("Session-Expires", "90;refresher=uac")])
    net.run(until=net.now + 43.9)
    changed = SDP_A.replace(b"o=alice 10 1", b"o=alice 10 2")
    a.request("INVITE", net.now, body=changed, content_type="application/sdp")
    net.run(until=net.now + 3.0)  # past 45 s: bob has not answered yet
    relayed = requests(bob, "INVITE")
    assert len(relayed) == 1 and relayed[0].request.body != SDP_A
    b.reply(relayed[0].transaction, 200, net.now, body=SDP_B)
    answered_at = net.now
    net.run(until=answered_at + 44.0)
    assert not requests(bob, "INVITE")
    net.run(until=answered_at + 46.0)
    refresh = requests(bob, "INVITE")
    assert len(refresh) == 1 and refresh[0].request.headers.get("Session-Expires") == "90;refresher=uac"


def test_a_refresh_answered_without_session_expires_ends_the_legs_timer() -> None:
    """RFC 4028 section 7.2: a 2xx without Session-Expires means no session expiration from then on."""
    net, alice, bob, service, app = rig(SupervisionSettings(session_timers=SHORT))
    a, b, _ = call(net, alice, bob, caller=[], callee=[("Session-Expires", "90;refresher=uac")])
    net.run(until=net.now + 45.5)
    assert answer_all(net, bob, b, "INVITE") == 1  # answered with no Session-Expires
    found = app.table.find(a.call_id)
    assert found is not None and found.callee is not None and found.callee.session_timer is None
    net.run(until=net.now + 500.0)
    assert not requests(bob, "INVITE") and not a.ended


def test_the_reaper_leaves_legs_with_session_timers_alone() -> None:
    net, alice, bob, service, app = rig(SupervisionSettings(session_timers=SHORT, idle_probe=30.0))
    a, b, _ = call(net, alice, bob, caller=[], callee=[("Session-Expires", "90;refresher=uas")])
    net.run(until=net.now + 31.0)
    assert len(requests(alice, "OPTIONS")) == 1 and not requests(bob, "OPTIONS")


def test_a_refresh_with_a_new_interval_is_taken_for_the_leg() -> None:
    net, alice, bob, service, app = rig(SupervisionSettings(session_timers=SessionTimerSettings(1800, 90)))
    a, b, _ = call(net, alice, bob, caller=[*TIMER, ("Session-Expires", "90;refresher=uac")], callee=[])
    a.request("INVITE", net.now, body=SDP_A, content_type="application/sdp",
              headers=[*TIMER, ("Session-Expires", "300;refresher=uac")])
    net.settle(0.5)
    answer = [e for e in alice.events if isinstance(e, DialogResponse)][-1].response
    assert answer.status == 200 and answer.headers.get("Session-Expires") == "300;refresher=uac"
    found = app.table.find(a.call_id)
    assert found is not None and found.caller.session_timer is not None
    assert found.caller.session_timer.negotiated.interval == 300
    net.run(until=net.now + 120.0)  # past the old 90 s interval: the new one holds
    assert not a.ended and not requests(bob, "INVITE")


def test_a_refresh_whose_sdp_cannot_be_read_is_no_refresh_and_gets_400() -> None:
    net, alice, bob, service, app = rig(SupervisionSettings(session_timers=SHORT))
    a, b, _ = call(net, alice, bob, caller=[*TIMER, ("Session-Expires", "90;refresher=uac")], callee=[])
    a.request("INVITE", net.now, body=b"v=0\r\no=broken\r\ns=-\r\n", content_type="application/sdp",
              headers=[*TIMER, ("Session-Expires", "90;refresher=uac")])
    net.settle(0.5)
    answer = [e for e in alice.events if isinstance(e, DialogResponse)][-1].response
    assert answer.status == 400
    assert not requests(bob, "INVITE")


def test_the_reaper_of_a_call_that_ended_first_does_nothing() -> None:
    net, alice, bob, service, app = rig(SupervisionSettings(session_timers=None, idle_probe=30.0))
    a, b, _ = call(net, alice, bob, caller=[], callee=[])
    net.run(until=net.now + 29.0)
    a.end(net.now)
    net.run(until=net.now + 5.0)
    assert not requests(alice, "OPTIONS") and not requests(bob, "OPTIONS")
    assert len(app.table) == 0


def test_a_refresh_still_unanswered_when_the_call_ends_changes_nothing() -> None:
    """The service's refresh of bob's leg is pending when alice hangs up: its late end (Timer B) finds the leg
    over and leaves it be."""
    net, alice, bob, service, app = rig(SupervisionSettings(session_timers=SHORT))
    a, b, _ = call(net, alice, bob, caller=[], callee=[("Session-Expires", "90;refresher=uac"), ("Require", "timer")])
    net.drop = lambda src, dst, msg: dst.name == "bob" and isinstance(msg, Request) and msg.method == "INVITE"
    net.run(until=net.now + 46.0)  # the refresh went out at 45 s and is lost
    a.end(net.now)
    net.run(until=net.now + 40.0)  # past Timer B of the refresh
    assert len(app.table) == 0 and end_reasons(app) == ["bye"]


def replacing(net: Network, alice: Node, b: Session, headers: list[tuple[str, str]]) -> Session:
    """alice, as a newcomer, INVITEs the service with Replaces naming bob's dialog as bob sees it."""
    assert b.dialog is not None
    replaces = f"{b.call_id};to-tag={b.local_tag};from-tag={b.dialog.id.remote_tag}"
    return alice.ua.invite("sip:bob@127.0.0.3", net.now, from_addr="<sip:alice@127.0.0.2>", to_addr="<sip:bob@y>",
                           body=SDP_A, headers=[("Replaces", replaces), *headers])


def test_a_replaces_newcomer_gets_its_own_session_timer_and_is_ended_when_it_stops_refreshing() -> None:
    """RFC 3891 and RFC 4028 section 9: the INVITE with Replaces makes a new dialog, whose timer is negotiated
    as any caller's; bob (no timer support) is left as he was."""
    net, alice, bob, service, app = rig(SupervisionSettings(session_timers=SHORT))
    a, b, _ = call(net, alice, bob, caller=[], callee=[])
    take(alice, CallAnswered)
    newcomer = replacing(net, alice, b, [*TIMER, ("Session-Expires", "90;refresher=uac")])
    net.settle()
    (reinvite,) = requests(bob, "INVITE")
    b.reply(reinvite.transaction, 200, net.now, body=SDP_B)
    net.settle(0.1)
    answered = [e for e in alice.events if isinstance(e, CallAnswered) and e.session is newcomer]
    assert len(answered) == 1 and answered[0].response.headers.get("Session-Expires") == "90;refresher=uac"
    assert a.ended and not newcomer.ended
    net.run(until=net.now + 58.0)
    assert not newcomer.ended and not b.ended
    net.run(until=net.now + 3.0)  # 90 - min(32, 30) = 60 s after the newcomer's answer, no refresh came
    assert newcomer.ended and b.ended and len(app.table) == 0


def test_a_replaces_newcomer_asking_too_short_an_interval_gets_422_before_anything_is_sent_on() -> None:
    net, alice, bob, service, app = rig(SupervisionSettings(session_timers=SessionTimerSettings(1800, 300)))
    a, b, _ = call(net, alice, bob, caller=[], callee=[])
    newcomer = replacing(net, alice, b, [*TIMER, ("Session-Expires", "120")])
    net.settle()
    refused = net.sent(422, sender="service")
    assert len(refused) == 1 and refused[0].headers.get("Min-SE") == "300"
    # alice (the service's own UA code) asks again with that Min-SE and gets through: bob is re-INVITEd once
    retried = [m for m in net.sent("INVITE", sender="alice") if m.headers.get("Replaces")]
    assert len(retried) == 2 and retried[1].headers.get("Min-SE") == "300"
    assert len(requests(bob, "INVITE")) == 1 and not newcomer.ended
