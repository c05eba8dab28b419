"""The call table finds a call by either leg's Call-ID and forgets it when it ends."""

from __future__ import annotations

from b2bua.call.call import Call, CallState
from b2bua.call.table import CallTable

from .sipnet import Network


def test_find_by_either_call_id_and_removal_on_end() -> None:
    net = Network()
    node = net.add("x", "127.0.0.9")
    a = node.ua.invite("sip:y@127.0.0.8", 0.0, from_addr="<sip:x@x>", to_addr="<sip:y@y>")
    b = node.ua.invite("sip:z@127.0.0.7", 0.0, from_addr="<sip:x@x>", to_addr="<sip:z@z>")
    call = Call(a.call_id)
    call.add_leg("caller", a)
    call.add_leg("callee", b)
    table = CallTable()
    table.add(call)
    assert table.find(a.call_id) is call and table.find(b.call_id) is call
    assert len(table) == 1 and a.call_id in table and list(table) == [call]
    call.move(CallState.ENDED)
    assert len(table) == 0 and table.find(b.call_id) is None and b.call_id not in table


def test_states_and_ended_calls_by_outcome_once_each() -> None:
    net = Network()
    node = net.add("x", "127.0.0.9")
    table = CallTable()
    calls = []
    for n in range(3):
        session = node.ua.invite(f"sip:y{n}@127.0.0.8", 0.0, from_addr="<sip:x@x>", to_addr="<sip:y@y>")
        call = Call(session.call_id)
        call.add_leg("caller", session)
        table.add(call)
        table.add(call)  # indexed again after a change (a replaced leg): still counted once when it ends
        calls.append(call)
    calls[0].move(CallState.EARLY)
    calls[1].move(CallState.ANSWERED)
    assert sorted(s.value for s in table.states()) == ["answered", "early", "setup"]
    calls[1].move(CallState.ENDED)
    calls[0].settle(486)
    calls[0].settle(500)  # the first status stands
    calls[0].move(CallState.ENDED)
    calls[2].move(CallState.ENDED)  # ended before any status: nobody answered or refused it
    assert table.ended == {("answered", 2): 1, ("busy", 4): 1, ("cancelled", 4): 1}
    assert list(table.states()) == []


def test_outcome_of_each_final_status() -> None:
    call = Call("c")
    outcomes = {}
    for status in (200, 486, 600, 487, 404, 408, 503, 603, 699):
        call.status = status
        outcomes[status] = call.outcome
    assert outcomes == {200: ("answered", 2), 486: ("busy", 4), 600: ("busy", 6), 487: ("cancelled", 4),
                        404: ("failed", 4), 408: ("failed", 4), 503: ("failed", 5), 603: ("failed", 6),
                        699: ("failed", 6)}
