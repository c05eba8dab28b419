"""Answered calls as records (b2bua/call/record.py): what the keeper writes when, and a call restored in a
new service (a restart on the same address, over the in-memory network) going on as if nothing happened."""

from __future__ import annotations

import json
import logging

import pytest

from b2bua.call.b2bua import B2bua
from b2bua.call.call import Call, CallState
from b2bua.call.commands import CallEnd, CallHold
from b2bua.call.control import Control
from b2bua.call.record import RECORD_VERSION, CallKeeper, call_record, restore_call
from b2bua.errors import RecordError, SipError
from b2bua.sip import sdp
from b2bua.sip.message import Request
from b2bua.sip.refer import ReferState, ReferSubscription
from b2bua.sip.session import Session
from b2bua.sip.ua_events import CallEnded, DialogRequest, DialogResponse

from .call_builders import SDP_A, SDP_B, answer_reinvites, dial, names, reports, restart_service, rig, take
from .sipnet import Network, Node


def kept_call() -> tuple[Network, Node, Node, Node, B2bua, CallKeeper, Session, Session]:
    net, alice, bob, service, app = rig()
    keeper = CallKeeper()
    app.table.keeper = keeper.changed
    a, b, _ = dial(net, alice, bob)
    assert keeper.take_writes() == []  # ringing: nothing kept
    b.respond(200, net.now, body=SDP_B)
    net.settle()
    return net, alice, bob, service, app, keeper, a, b


def test_an_answered_call_is_written_when_the_callers_ack_confirms_it() -> None:
    """The callee's 2xx answers the call while the caller's leg waits for its ACK: nothing to keep yet;
    the ACK alone (no SDP, no state move) must make the call written."""
    net, alice, bob, service, app = rig()
    keeper = CallKeeper()
    app.table.keeper = keeper.changed
    net.drop = lambda src, dst, msg: isinstance(msg, Request) and msg.method == "ACK" and dst is service
    a, b, _ = dial(net, alice, bob)
    b.respond(200, net.now, body=SDP_B)
    net.run(until=net.now + 0.1)
    assert keeper.take_writes() == []  # the caller's ACK was lost: the caller leg is not confirmed
    net.drop = lambda src, dst, msg: False
    net.settle()  # the 2xx is retransmitted, the ACK comes
    assert [name for name, _ in keeper.take_writes()] == [a.call_id]


def test_an_answered_call_is_written_once_per_change_and_deleted_at_its_end() -> None:
    net, alice, bob, service, app, keeper, a, b = kept_call()
    (write,) = keeper.take_writes()
    assert write[0] == a.call_id and write[1] is not None
    record = json.loads(write[1])
    assert record["v"] == RECORD_VERSION and record["state"] == "answered"
    assert set(record["legs"]) == {"caller", "callee"}
    assert record["legs"]["callee"]["answers_to"] == "caller"
    assert record["legs"]["caller"]["sdp"]["received"].startswith("v=0")
    assert keeper.take_writes() == [] and len(keeper) == 1
    a.end(net.now)
    net.settle()
    assert keeper.take_writes() == [(a.call_id, None)]
    assert len(keeper) == 0


def test_a_call_that_ends_before_it_is_answered_is_never_written() -> None:
    net, alice, bob, service, app = rig()
    keeper = CallKeeper()
    app.table.keeper = keeper.changed
    a, b, _ = dial(net, alice, bob)
    b.respond(486, net.now)
    net.settle()
    assert keeper.take_writes() == []


def test_a_restored_call_relays_a_reinvite_and_ends_on_the_callers_bye() -> None:
    net, alice, bob, service, app, keeper, a, b = kept_call()
    ((name, data),) = keeper.take_writes()
    assert data is not None
    service, app = restart_service(net, service)
    call = restore_call(data, service.ua, app.table)
    assert call.id == name and call.state is CallState.ANSWERED and app.table.find(b.call_id) is call
    offer = sdp.set_direction(sdp.bump_version(SDP_A, 2), "sendonly")
    reinvite = a.request("INVITE", net.now, body=offer)
    net.settle(0.5)
    answered = answer_reinvites(net, bob, b)
    net.settle()
    assert answered and sdp.directions(answered[0]) == ["sendonly"]
    finals = [e.response for e in alice.events
              if isinstance(e, DialogResponse) and e.outgoing is reinvite and e.response.status >= 200]
    assert [r.status for r in finals] == [200] and sdp.directions(finals[0].body) == ["recvonly"]
    a.end(net.now)
    net.settle()
    assert isinstance(take(bob, CallEnded), CallEnded)
    assert len(app.table) == 0 and service.ua.sessions == []


def test_a_restored_call_takes_commands_and_the_callees_bye() -> None:
    net, alice, bob, service, app, keeper, a, b = kept_call()
    ((_, data),) = keeper.take_writes()
    assert data is not None
    service, app = restart_service(net, service)
    restore_call(data, service.ua, app.table)
    control = Control(app)
    out, sink = reports()
    control.start(CallHold(a.call_id, "callee"), net.now, sink)  # type: ignore[arg-type]
    net.settle(0.5)
    (offer,) = answer_reinvites(net, bob, b)
    net.settle()
    assert sdp.directions(offer) == ["sendonly"] and names(out) == ["CALL_HOLD", "FlowEnded"]
    # bob saw o= version 1 from the service before the restart: the hold offer must go on from there
    assert sdp.parse(offer).version == 2
    out, sink = reports()
    control.start(CallEnd(a.call_id), net.now, sink)
    net.settle()
    assert a.ended and b.ended and names(out)[-1] == "FlowEnded"


def test_the_restored_call_is_written_again_with_its_jumped_cseq() -> None:
    net, alice, bob, service, app, keeper, a, b = kept_call()
    ((_, data),) = keeper.take_writes()
    assert data is not None
    service, app = restart_service(net, service)
    keeper = CallKeeper()
    app.table.keeper = keeper.changed
    call = restore_call(data, service.ua, app.table)
    keeper.changed(call)
    ((_, again),) = keeper.take_writes()
    assert again is not None
    seqs = [leg["session"]["dialog"]["local_seq"] for leg in json.loads(again)["legs"].values()]
    assert all(seq is not None and seq >= 1000 for seq in seqs)


def test_a_name_change_deletes_the_old_name(monkeypatch: pytest.MonkeyPatch) -> None:
    net, alice, bob, service, app, keeper, a, b = kept_call()
    (first,) = keeper.take_writes()
    call = app.table.find(a.call_id)
    assert call is not None
    call.id = "renamed@h"  # as Replaces does when the caller leg is replaced
    call.changed()
    writes = keeper.take_writes()
    assert writes[0] == (first[0], None) and writes[1][0] == "renamed@h"


def test_call_record_refuses_a_call_still_ringing() -> None:
    net, alice, bob, service, app = rig()
    a, _, _ = dial(net, alice, bob)
    call = app.table.find(a.call_id)
    assert call is not None
    with pytest.raises(SipError):
        call_record(call)


def test_a_record_that_cannot_be_made_is_logged_and_counted_not_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The shell writes after every turn of the core: a bug in making one record must not stop the others."""
    net, alice, bob, service, app, keeper, a, b = kept_call()

    def broken(call: Call) -> bytes:
        raise SipError("broken")

    monkeypatch.setattr("b2bua.call.record.call_record", broken)
    with caplog.at_level(logging.ERROR, logger="call_api.call.record"):
        assert keeper.take_writes() == []
    assert keeper.failures == 1 and "could not make its record" in caplog.text


def test_a_call_without_both_legs_is_not_written() -> None:
    keeper = CallKeeper()
    call = Call("x@h")
    call.state = CallState.ANSWERED
    call.legs = {}  # no legs: not keepable, and never written
    keeper.changed(call)
    assert keeper.take_writes() == [] and keeper.failures == 0


def _mangle(record: dict[str, object], path: str, value: object) -> bytes:
    target: object = record
    *parents, last = path.split(".")
    for part in parents:
        assert isinstance(target, dict)
        target = target[part]
    assert isinstance(target, dict)
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return json.dumps(record).encode()


@pytest.mark.parametrize(
    ("path", "value"),
    [("v", 2), ("v", KeyError), ("id", 5), ("state", "ending"), ("legs", []), ("legs.caller", KeyError),
     ("legs.callee", "x"), ("legs.callee.answers_to", "third"), ("legs.callee.session", None),
     ("legs.callee.session.dialog.state", "early"), ("legs.caller.sdp", None), ("legs.caller.sdp.offset", "1"),
     ("legs.caller.sdp.held", 0), ("legs.caller.sdp.sent", 12), ("legs.caller.sdp.sent_origin", ["only-one"]),
     ("legs.caller.sdp.sent_version", 1.5)],
)
def test_a_bad_record_restores_nothing(path: str, value: object) -> None:
    net, alice, bob, service, app, keeper, a, b = kept_call()
    ((_, data),) = keeper.take_writes()
    assert data is not None
    service, app = restart_service(net, service)
    with pytest.raises(RecordError):
        restore_call(_mangle(json.loads(data), path, value), service.ua, app.table)
    assert len(app.table) == 0 and service.ua.sessions == []
    b.end(net.now)  # bob's BYE finds no dialog: 481, as for any unknown dialog
    net.settle()
    assert 481 in [m.status for m in bob.inbox if hasattr(m, "status")]


@pytest.mark.parametrize("data", [b"\xff\xfe", b"[]", b"not json", b'{"v": 1}'])
def test_a_record_that_is_not_one_is_refused(data: bytes) -> None:
    net, alice, bob, service, app = rig()
    with pytest.raises(RecordError):
        restore_call(data, service.ua, app.table)


def test_a_kept_refer_subscription_answers_a_late_notify_after_the_restart() -> None:
    """A transfer's REFER subscription is kept with the call: the transferee's NOTIFY after a restart is the
    service's to answer (200 for the final one), never relayed to the other party (RFC 3515, RFC 6665)."""
    net, alice, bob, service, app, keeper, a, b = kept_call()
    keeper.take_writes()
    call = app.table.find(a.call_id)
    assert call is not None
    callee = call.legs["callee"]
    refer = callee.session.dialog.new_request(  # type: ignore[union-attr]
        "REFER", branch="z9hG4bK-refer", via_host="127.0.0.1", via_port=5080,
        extra_headers=[("Refer-To", "<sip:carol@127.0.0.4>")])
    callee.refers.append(ReferSubscription(refer, state=ReferState.ACCEPTED))
    call.changed()
    ((_, data),) = keeper.take_writes()
    assert data is not None and len(json.loads(data)["legs"]["callee"]["refers"]) == 1
    service, app = restart_service(net, service)
    restored = restore_call(data, service.ua, app.table)
    (sub,) = restored.legs["callee"].refers
    assert sub.id == str(refer.cseq.number if refer.cseq else "") and sub.state is ReferState.ACCEPTED
    final = [("Event", f"refer;id={sub.id}"), ("Subscription-State", "terminated;reason=noresource")]
    notify = b.request("NOTIFY", net.now, body=b"SIP/2.0 200 OK\r\n", content_type="message/sipfrag;version=2.0",
                       headers=final)
    net.settle()
    answers = [e.response.status for e in bob.events if isinstance(e, DialogResponse) and e.outgoing is notify]
    assert answers == [200] and sub.terminated
    assert not [e for e in alice.events if isinstance(e, DialogRequest) and e.request.method == "NOTIFY"]


@pytest.mark.parametrize("refers", [{"refer": "x"}, [{"refer": "INVITE sip:x SIP/2.0\r\n\r\n", "state": "sent"}],
                                    [{"refer": 5, "state": "sent"}], [{"state": "gone"}], ["x"]])
def test_a_bad_refer_subscription_record_restores_nothing(refers: object) -> None:
    net, alice, bob, service, app, keeper, a, b = kept_call()
    ((_, data),) = keeper.take_writes()
    assert data is not None
    record = json.loads(data)
    record["legs"]["callee"]["refers"] = refers
    service, app = restart_service(net, service)
    with pytest.raises(RecordError):
        restore_call(json.dumps(record).encode(), service.ua, app.table)
    assert len(app.table) == 0 and service.ua.sessions == []
