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
