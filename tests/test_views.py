"""The live call state in JSON (rpc/views.py): RFC 3339 times, the Call and Leg objects, the query results and
the notifications, each CallEvent encoded once for all its subscribers."""

from __future__ import annotations

import json

from b2bua.call.live import CallEvent, Found, Page, Subscribed, Unsubscribed
from b2bua.call.snapshot import CallView, CommandView, LegView
from rpc.views import EventText, call_object, lost_notification, result_object, result_response, rfc3339

LEG = LegView("b@h", "<sip:svc@h>;tag=1", "<sip:bob@h>;tag=2", "sip:bob@10.0.0.2", "confirmed", True, "recvonly",
              "udp", "127.0.0.1:5060")
CALL = CallView("a@h", "answered", 1_780_000_000.25, 1_780_000_001.0, (("callee", LEG),), CommandView("c1", "CallEnd"))


def test_times_are_rfc3339_utc_with_milliseconds() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339(1_780_000_000.2506) == "2026-05-28T20:26:40.251Z"


def test_rfc3339_rounds_into_the_next_second_and_keeps_no_stale_second() -> None:
    assert rfc3339(1_780_000_000.9996) == "2026-05-28T20:26:41.000Z"
    assert rfc3339(1_780_000_000.5) == "2026-05-28T20:26:40.500Z"
    assert rfc3339(1_780_000_001.0) == "2026-05-28T20:26:41.000Z"
    assert rfc3339(86_399.9994) == "1970-01-01T23:59:59.999Z"
    assert rfc3339(86_400.0) == "1970-01-02T00:00:00.000Z"


def test_the_call_object() -> None:
    assert call_object(CALL) == {
        "callid": "a@h", "state": "answered", "created": "2026-05-28T20:26:40.250Z",
        "answered": "2026-05-28T20:26:41.000Z", "command": {"cmd_id": "c1", "method": "CallEnd"},
        "legs": {"callee": {"callid": "b@h", "local_uri": "<sip:svc@h>;tag=1", "remote_uri": "<sip:bob@h>;tag=2",
                            "remote_target": "sip:bob@10.0.0.2", "dialog": "confirmed", "held": True,
                            "direction": "recvonly", "transport": "udp", "peer": "127.0.0.1:5060"}}}
    bare = call_object(CallView("x", "setup", 0.0, None, (), None))
    assert bare["answered"] is None and bare["command"] is None and bare["legs"] == {}


def test_query_results() -> None:
    assert result_object(Page(7, (CALL,), "3")) == {"seq": 7, "calls": [call_object(CALL)], "next_cursor": "3"}
    assert result_object(Found(7, CALL)) == {"seq": 7, "call": call_object(CALL)}
    assert result_object(Subscribed("sub-1", 7, ())) == {"subscription": "sub-1", "seq": 7}
    assert result_object(Unsubscribed("sub-1")) == {"subscription": "sub-1"}
    assert json.loads(result_response("r", Unsubscribed("s"))) == {"jsonrpc": "2.0", "id": "r",
                                                                   "result": {"subscription": "s"}}


def test_a_call_event_per_subscriber_from_one_encoding() -> None:
    text = EventText()
    created = CallEvent(1, 0.5, "a@h", "created", (("call", CALL),))
    one, two = text.notification("sub-1", created), text.notification("sub-\"2", created)
    assert json.loads(one) == {"jsonrpc": "2.0", "method": "CallEvent", "params": {
        "subscription": "sub-1", "seq": 1, "time": "1970-01-01T00:00:00.500Z", "callid": "a@h", "event": "created",
        "call": call_object(CALL)}}
    assert json.loads(two)["params"]["subscription"] == 'sub-"2'
    ended = CallEvent(2, 1.0, "a@h", "ended", (("reason", "bye"), ("leg", "caller"), ("duration", None)))
    params = json.loads(text.notification("sub-1", ended))["params"]
    assert (params["seq"], params["reason"], params["leg"], params["duration"]) == (2, "bye", "caller", None)


def test_subscription_lost() -> None:
    assert json.loads(lost_notification("sub-1", 41)) == {"jsonrpc": "2.0", "method": "SubscriptionLost",
                                                          "params": {"subscription": "sub-1", "seq": 41}}
