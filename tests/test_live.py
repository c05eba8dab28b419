"""Live call state (b2bua/call/live.py) over the in-memory network: the events of every kind of call, their
order and numbering, the ring buffer, subscriptions, pages, and that the table rebuilt from the events equals
the snapshot after every scenario."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from itertools import count

import pytest

from b2bua.call.b2bua import B2bua
from b2bua.call.commands import CallAttendedTransfer, CallBlindTransfer, CallEnd, CallHold, CallStart, CallUnHold
from b2bua.call.control import Control
from b2bua.call.events import FlowReport
from b2bua.call.live import CallEvent, LiveCalls, Subscription
from b2bua.call.snapshot import CallView
from b2bua.errors import EventsLostError, SinceAheadError
from b2bua.sip import sdp
from b2bua.sip.session import Session
from b2bua.sip.ua_events import DialogRequest

from .call_builders import SDP_A, SDP_B, answer_incoming, answer_reinvites, dial, rig, take, three_phones, transferee
from .sipnet import Network, Node

Table = dict[str, CallView]


def rebuild(events: list[CallEvent], table: Table | None = None) -> Table:
    """A client's table: each event applied by value, as docs/API.md tells."""
    table = dict(table or {})
    for e in events:
        call = table.get(e.callid)
        match e.event:
            case "created":
                view = e.get("call")
                assert isinstance(view, CallView)
                table[e.callid] = view
            case "replaced":
                view = e.get("call")
                assert isinstance(view, CallView)
                table.pop(e.callid, None)
                table[view.callid] = view
            case "ended":
                table.pop(e.callid, None)
            case _ if call is None:
                pass
            case "ringing":
                table[e.callid] = replace(call, state="early")
            case "answered":
                table[e.callid] = replace(call, state="answered", answered=e.time)
            case "ending":
                table[e.callid] = replace(call, state="ending")
            case "media" | "held" | "resumed":
                legs = []
                for name, leg in call.legs:
                    if name == e.get("leg"):
                        if e.event == "media":
                            direction = e.get("direction")
                            assert isinstance(direction, str)
                            leg = replace(leg, direction=direction)
                        else:
                            leg = replace(leg, held=e.event == "held")
                    legs.append((name, leg))
                table[e.callid] = replace(call, legs=tuple(legs))
            case "command":
                from b2bua.call.snapshot import CommandView

                started = e.get("outcome") == "started"
                table[e.callid] = replace(call, command=CommandView(str(e.get("cmd_id")), str(e.get("method")))
                                          if started else None)
            case "transferred":
                pass
            case _:
                raise AssertionError(e.event)
    return table


def comparable(table: Table) -> dict[str, object]:
    """What events carry of each call (a leg's dialog state and target come with the snapshots only)."""
    return {callid: (c.state, c.created, c.answered, c.command,
                     tuple((n, leg.callid, leg.held, leg.direction) for n, leg in c.legs))
            for callid, c in table.items()}


class Recorder:
    """A subscriber that keeps what it gets, and checks the numbering."""

    def __init__(self, live: LiveCalls, since: int | None = None) -> None:
        self.events: list[CallEvent] = []
        self.sub, backlog = live.subscribe(self.deliver, since)
        self.events.extend(backlog)

    def deliver(self, sub: Subscription, event: CallEvent) -> None:
        assert sub is self.sub
        self.events.append(event)

    def names(self, callid: str | None = None) -> list[str]:
        return [e.event for e in self.events if callid is None or e.callid == callid]


def clock() -> Iterator[float]:
    return (1_700_000_000.0 + i for i in count())


def observed(net_rig: tuple[Network, Node, Node, Node, B2bua]) -> tuple[Network, Node, Node, B2bua, Recorder]:
    net, alice, bob, _service, app = net_rig
    ticks = clock()
    app.live.clock = lambda: next(ticks)
    return net, alice, bob, app, Recorder(app.live)


def check_consistent(app: B2bua, rec: Recorder) -> None:
    assert [e.seq for e in rec.events] == list(range(1, app.live.seq + 1))
    page = app.live.page(limit=1000)
    assert comparable(rebuild(rec.events)) == comparable({c.callid: c for c in page.calls})
    by_call: dict[str, list[str]] = {}
    for e in rec.events:
        by_call.setdefault(e.callid, []).append(e.event)
    for names in by_call.values():
        assert names[0] in ("created", "ringing") or names[0] != "ended"


def test_a_phone_call_is_created_rings_is_answered_and_ends_with_the_callees_bye() -> None:
    net, alice, bob, app, rec = observed(rig())
    a, b, invite = dial(net, alice, bob)
    created = rec.events[0]
    assert (created.seq, created.event, created.callid) == (1, "created", a.call_id)
    app.live.created(app.table.find(a.call_id))  # type: ignore[arg-type]
    assert app.live.seq == 1  # once
    view = created.get("call")
    assert isinstance(view, CallView) and view.state == "setup" and view.answered is None
    legs = dict(view.legs)
    assert legs["caller"].callid == a.call_id and legs["callee"].callid == invite.call_id
    assert legs["caller"].direction == "sendrecv" and legs["callee"].direction is None
    assert legs["caller"].transport == "udp" and legs["caller"].peer == "127.0.0.2:5060"
    assert legs["callee"].peer == "127.0.0.3:5060"
    assert "alice" in legs["caller"].remote_uri and legs["caller"].dialog == "early"
    b.respond(180, net.now)
    net.settle()
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    found = app.live.view(app.table.find(a.call_id))  # type: ignore[arg-type]
    assert found is not None and found.state == "answered" and found.answered is not None
    assert dict(found.legs)["callee"].dialog == "confirmed" and dict(found.legs)["callee"].direction == "sendrecv"
    check_consistent(app, rec)
    b.end(net.now)
    net.settle()
    assert rec.names() == ["created", "ringing", "media", "answered", "ending", "ended"]
    ringing = rec.events[1]
    assert ringing.get("status") == "SIP/2.0 180 Ringing"
    ended = rec.events[-1]
    assert ended.get("reason") == "bye" and ended.get("leg") == "callee"
    assert ended.get("duration") == ended.time - rec.events[3].time
    check_consistent(app, rec)
    assert len(app.live) == 0


@pytest.mark.parametrize(("ending", "reason", "detail"), [
    ("cancel", "cancel", None), ("busy", "status", 486), ("timeout", "timeout", None)])
def test_why_an_unanswered_call_ended(ending: str, reason: str, detail: int | None) -> None:
    net, alice, bob, app, rec = observed(rig(answer_timeout=5.0))
    a, b, _ = dial(net, alice, bob)
    b.respond(180, net.now)
    net.settle()
    if ending == "cancel":
        a.end(net.now)
        net.settle()
    elif ending == "busy":
        b.respond(486, net.now)
        net.settle()
    else:
        net.run(until=10.0)
    ended = rec.events[-1]
    assert ended.event == "ended" and ended.get("reason") == reason and ended.get("duration") is None
    assert ended.get("code") == detail
    check_consistent(app, rec)


def test_bye_from_the_caller_names_the_caller() -> None:
    net, alice, bob, app, rec = observed(rig())
    a, b, _ = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    a.end(net.now)
    net.settle()
    assert (rec.events[-1].get("reason"), rec.events[-1].get("leg")) == ("bye", "caller")


def test_a_phones_own_hold_is_a_media_event_by_the_party() -> None:
    net, alice, bob, app, rec = observed(rig())
    a, b, _ = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    a.request("INVITE", net.now, body=sdp.set_direction(SDP_A.replace(b"10 1", b"10 2"), "sendonly"))
    net.settle()
    reinvite = take(bob, DialogRequest)
    assert isinstance(reinvite, DialogRequest)
    b.reply(reinvite.transaction, 200, net.now, body=sdp.set_direction(SDP_B.replace(b"20 1", b"20 2"), "recvonly"))
    net.settle()
    media = [e for e in rec.events if e.event == "media"][1:]
    assert [(e.get("leg"), e.get("direction"), e.get("by")) for e in media] == [
        ("caller", "sendonly", "party"), ("callee", "recvonly", "party")]
    check_consistent(app, rec)


def test_call_hold_and_resume_by_command() -> None:
    net, alice, bob, app, rec = observed(rig())
    a, b, _ = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    control = Control(app)
    out: list[FlowReport] = []
    control.start(CallHold(a.call_id, "callee"), net.now, out.append, "cmd-7")
    running = app.live.view(app.table.find(a.call_id))  # type: ignore[arg-type]
    assert running is not None and running.command is not None and running.command.cmd_id == "cmd-7"
    net.settle(0.5)
    answer_reinvites(net, bob, b)
    net.settle()
    assert rec.names()[-4:] == ["command", "media", "held", "command"]
    first, media, _, last = rec.events[-4:]
    assert (first.get("cmd_id"), first.get("method"), first.get("outcome")) == ("cmd-7", "CallHold", "started")
    assert (media.get("leg"), media.get("direction"), media.get("by")) == ("callee", "recvonly", "command")
    assert last.get("outcome") == "ok"
    check_consistent(app, rec)
    control.start(CallUnHold(a.call_id, "callee"), net.now, out.append, "cmd-8")
    net.settle(0.5)
    answer_reinvites(net, bob, b)
    net.settle()
    assert "resumed" in rec.names()
    check_consistent(app, rec)
    control.start(CallEnd(a.call_id), net.now, out.append, "cmd-9")
    net.settle()
    assert rec.names()[-4:] == ["command", "ending", "command", "ended"]
    assert rec.events[-1].get("reason") == "command"
    check_consistent(app, rec)


def test_a_blind_transfer_is_transferred_to_the_new_call() -> None:
    net, alice, bob, carol, control = three_phones()
    app = control.b2bua
    rec = Recorder(app.live)
    a, b, _ = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    control.start(CallBlindTransfer(a.call_id, "callee", "sip:carol@127.0.0.4:5060"), net.now, lambda r: None)
    net.settle()
    _, new = transferee(net, bob, b)
    answer_incoming(net, carol)
    net.settle()
    assert new is not None
    transferred = [e for e in rec.events if e.event == "transferred"]
    assert len(transferred) == 1
    assert (transferred[0].callid, transferred[0].get("leg"), transferred[0].get("old"),
            transferred[0].get("new")) == (a.call_id, "callee", b.call_id, new.call_id)
    assert rec.names(new.call_id)[:1] == ["created"] and rec.names(a.call_id)[-1] == "ended"
    check_consistent(app, rec)


def test_an_attended_transfer_replaces_the_leg_and_names_the_call_after_it() -> None:
    from b2bua.sip.headers import parse_name_addr
    from b2bua.sip.uri import parse_uri

    net, alice, bob, carol, control = three_phones()
    app = control.b2bua
    rec = Recorder(app.live)
    a, b_in_a, _ = dial(net, alice, bob)
    b_in_a.respond(200, net.now, body=SDP_B)
    net.settle()
    b_out = bob.ua.invite("sip:carol@127.0.0.4:5060", net.now, from_addr="<sip:bob@127.0.0.3>",
                          to_addr="<sip:carol@127.0.0.4>", body=SDP_B)
    net.settle()
    carol_session = answer_incoming(net, carol, SDP_A.replace(b"alice", b"carol"))
    net.settle()
    control.start(CallAttendedTransfer(a.call_id, "caller", b_out.call_id, "callee", None), net.now,
                  lambda r: None)
    assert [e.callid for e in rec.events if e.event == "command"] == [a.call_id, b_out.call_id]
    net.settle()
    refer = take(alice, DialogRequest)
    assert isinstance(refer, DialogRequest)
    uri = parse_uri(parse_name_addr(refer.request.headers.get("Refer-To") or "").uri_text)
    replaces = dict(uri.header_items())["Replaces"]  # type: ignore[union-attr]
    a.reply(refer.transaction, 202, net.now)
    event = f"refer;id={refer.request.cseq.number if refer.request.cseq else 0}"
    new = alice.ua.invite(str(uri.without_headers()), net.now,  # type: ignore[union-attr]
                          from_addr="<sip:alice@127.0.0.2>", to_addr="<sip:carol@127.0.0.4>", body=SDP_A,
                          headers=[("Replaces", replaces)])
    net.settle()
    reinvite = take(carol, DialogRequest)
    assert isinstance(reinvite, DialogRequest)
    carol_session.reply(reinvite.transaction, 200, net.now, body=SDP_A.replace(b"alice", b"carol"))
    net.settle()
    a.request("NOTIFY", net.now, body=b"SIP/2.0 200 OK\r\n", content_type="message/sipfrag",
              headers=[("Event", event), ("Subscription-State", "terminated")])
    net.settle()
    replaced = [e for e in rec.events if e.event == "replaced"]
    assert len(replaced) == 1
    r = replaced[0]
    assert (r.callid, r.get("leg"), r.get("old"), r.get("new")) == (b_out.call_id, "caller", b_out.call_id,
                                                                     new.call_id)
    view = r.get("call")
    assert isinstance(view, CallView) and view.callid == new.call_id
    assert dict(view.legs)["caller"].callid == new.call_id
    assert [e.get("new") for e in rec.events if e.event == "transferred"] == [new.call_id]
    check_consistent(app, rec)
    assert list(comparable(rebuild(rec.events))) == [new.call_id]


def test_call_start_is_created_by_the_command_and_transferred() -> None:
    net, alice, bob, _service, app = rig()
    rec = Recorder(app.live)
    control = Control(app)
    control.start(CallStart("sip:alice@127.0.0.2:5060", "sip:bob@127.0.0.3:5060"), net.now, lambda r: None, "c1")
    net.settle()
    first = answer_incoming(net, alice, SDP_A)
    net.settle()
    _, new = transferee(net, alice, first)
    answer_incoming(net, bob)
    net.settle()
    assert new is not None
    assert rec.names(first.call_id)[:4] == ["created", "command", "media", "answered"]
    assert rec.names(first.call_id)[-1] == "ended"
    transferred = [e for e in rec.events if e.event == "transferred"][0]
    assert (transferred.get("leg"), transferred.get("old"), transferred.get("new")) == (
        "caller", first.call_id, new.call_id)
    check_consistent(app, rec)


def test_shutdown_is_the_reason_of_calls_ended_while_stopping() -> None:
    net, alice, bob, app, rec = observed(rig())
    a, b, _ = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    app.live.closing = True
    app.ua.shutdown(net.now)
    net.settle()
    assert rec.events[-1].event == "ended" and rec.events[-1].get("reason") == "shutdown"


# -- the buffer, subscriptions, pages ---------------------------------------------------------------------------


def calls(n: int, live_size: int = 10_000) -> tuple[Network, Node, Node, B2bua, list[Session]]:
    net, alice, bob, service, app = rig()
    app.live = LiveCalls(size=live_size)
    sessions = []
    for _ in range(n):
        a, _b, _ = dial(net, alice, bob)
        sessions.append(a)
    return net, alice, bob, app, sessions


def test_since_replays_exactly_the_events_after_it() -> None:
    net, alice, bob, app, _ = calls(3)
    assert app.live.seq == 3
    rec = Recorder(app.live, since=1)
    assert [e.seq for e in rec.events] == [2, 3]
    assert Recorder(app.live, since=3).events == []
    dial(net, alice, bob)
    assert [e.seq for e in rec.events] == [2, 3, 4]


def test_since_too_old_names_the_oldest_kept_and_since_ahead_the_last() -> None:
    net, alice, bob, app, _ = calls(5, live_size=3)
    assert app.live.oldest == 3
    with pytest.raises(EventsLostError) as lost:
        app.live.subscribe(lambda s, e: None, since=1)
    assert lost.value.oldest == 3
    assert [e.seq for e in Recorder(app.live, since=2).events] == [3, 4, 5]
    with pytest.raises(SinceAheadError) as ahead:
        app.live.subscribe(lambda s, e: None, since=6)
    assert ahead.value.seq == 5
    assert LiveCalls().oldest == 1 and Recorder(LiveCalls(), since=0).events == []
    with pytest.raises(ValueError):
        LiveCalls(size=0)


def test_a_subscription_to_some_calls_gets_only_theirs_and_unsubscribe_ends_it() -> None:
    net, alice, bob, app, sessions = calls(2)
    got: list[CallEvent] = []
    sub, backlog = app.live.subscribe(lambda s, e: got.append(e), since=0, names=[sessions[1].call_id])
    assert [e.callid for e in backlog] == [sessions[1].call_id]
    sessions[0].end(net.now)
    sessions[1].end(net.now)
    net.settle()
    assert {e.callid for e in got} == {sessions[1].call_id} and got[-1].event == "ended"
    assert app.live.subscriptions == 1
    assert app.live.unsubscribe(sub.id) and not app.live.unsubscribe(sub.id)
    assert app.live.subscriptions == 0


def test_pages_in_order_of_creation_with_a_cursor_and_a_state_filter() -> None:
    net, alice, bob, app, sessions = calls(5)
    first = app.live.page(limit=2)
    assert [c.callid for c in first.calls] == [s.call_id for s in sessions[:2]]
    assert first.seq == 5 and first.next_cursor is not None
    second = app.live.page(limit=2, cursor=int(first.next_cursor))
    third = app.live.page(limit=2, cursor=int(second.next_cursor or 0))
    assert [c.callid for c in second.calls + third.calls] == [s.call_id for s in sessions[2:]]
    assert third.next_cursor is None
    assert app.live.page(cursor=10**6).calls == ()
    assert app.live.page(state="answered").calls == ()
    assert len(app.live.page(state="setup").calls) == 5


def test_an_event_knows_its_details() -> None:
    event = CallEvent(1, 2.0, "x", "ringing", (("status", "SIP/2.0 180 Ringing"),))
    assert event.get("status") == "SIP/2.0 180 Ringing" and event.get("nothing") is None


def test_what_may_end_a_call_is_its_first_cause() -> None:
    from b2bua.call.events import LegEnded

    for reason, expected in (("481 to INFO", ("status", 481)), ("BYE timed out", ("timeout", None)),
                             ("no ACK", ("timeout", None))):
        net, alice, bob, app, rec = observed(rig())
        a, b, _ = dial(net, alice, bob)
        call = app.table.find(a.call_id)
        assert call is not None
        app.live.leg_event(call.callee, LegEnded(reason, by_remote=True))  # type: ignore[arg-type]
        app.live.leg_event(call.caller, LegEnded("bye", by_remote=True))  # too late: the first cause stays
        a.end(net.now)
        net.settle()
        assert (rec.events[-1].get("reason"), rec.events[-1].get("code")) == expected


def test_a_call_nobody_observes_makes_no_event() -> None:
    from b2bua.call.call import Call, CallState

    live = LiveCalls()
    net, alice, bob, _service, app = rig()
    a, _b, _ = dial(net, alice, bob)
    call = app.table.find(a.call_id)
    assert call is not None
    stranger = Call("stranger")
    live.ringing(stranger, "SIP/2.0 180 Ringing")
    live.moved(stranger, CallState.ANSWERED)
    live.sdp_received(call.caller)
    live.held(call.caller)
    live.transferred(stranger, call.caller, None)
    live.replaced(stranger, "x", call.caller, call.caller)
    live.cause(stranger, "bye")
    assert live.view(stranger) is None and live.seq == 0
    from b2bua.call.flows.end import EndFlow

    live.command(stranger, EndFlow(stranger, lambda r: None), started=True)
    assert live.seq == 0


def test_a_subscription_to_a_replaced_call_follows_it_under_its_new_name(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG, "call_api.call.live")
    net, alice, bob, _service, app = rig()
    a, b, _ = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    got: list[CallEvent] = []
    app.live.subscribe(lambda s, e: got.append(e), names=[a.call_id])
    call = app.table.find(a.call_id)
    assert call is not None
    caller = call.caller
    call.id = "renamed@x"
    app.live.replaced(call, a.call_id, caller, caller)
    app.live.ringing(call, "SIP/2.0 180 Ringing")
    assert [(e.event, e.callid) for e in got] == [("replaced", a.call_id), ("ringing", "renamed@x")]
    assert "event 6 ringing" in caplog.text or "ringing" in caplog.text
