"""Reading the service's frames (rpc/client/messages.py): responses, notifications, and what is neither, from the
exact text the server's own builders (rpc/jsonrpc.py) make; bad frames become values, never exceptions."""

from __future__ import annotations

import json

import pytest

from rpc.client.messages import (
    Ended,
    Event,
    Failed,
    Ignored,
    Malformed,
    Message,
    Refusal,
    Started,
    Unreadable,
    read_message,
)
from rpc.errors import CALL_NOT_FOUND, INVALID_PARAMS
from rpc.jsonrpc import (
    ended_notification,
    error_notification,
    error_response,
    event_notification,
    started_response,
)


@pytest.mark.parametrize(("frame", "expected"), [
    (started_response("831717ed97e5", "cmd-1"), Started("831717ed97e5", "cmd-1")),
    (started_response(7, "cmd-1"), Started(7, "cmd-1")),
    (error_response(1, CALL_NOT_FOUND, "no call"), Refusal(1, CALL_NOT_FOUND, "no call")),
    (error_response("r", INVALID_PARAMS, "params.leg is missing", {"param": "leg"}),
     Refusal("r", INVALID_PARAMS, "params.leg is missing", {"param": "leg"})),
    (event_notification("c", "CALL_HOLD", callid="a@h", leg="callee", status="SIP/2.0 200 OK"),
     Event("c", "CALL_HOLD", "a@h", "callee", "SIP/2.0 200 OK")),
    (event_notification("c", "CALL_START"), Event("c", "CALL_START")),
    (error_notification("c", 488, "the callee did not accept the hold"),
     Failed("c", 488, "the callee did not accept the hold")),
    (ended_notification("c"), Ended("c")),
])
def test_what_the_server_sends_is_read_typed(frame: str, expected: Message) -> None:
    message = read_message(frame)
    assert message == expected
    assert not isinstance(message, Unreadable | Ignored)
    assert message.raw == json.loads(frame)
    assert read_message(frame.encode()) == expected


def test_raw_keeps_the_object_as_received() -> None:
    frame = '{"jsonrpc": "2.0", "method": "Event", "params": {"cmd_id": "c", "data": "X", "extra": [1]}, "x": 1}'
    message = read_message(frame)
    assert message == Event("c", "X")
    assert isinstance(message, Event) and message.raw == json.loads(frame)


@pytest.mark.parametrize(("params", "expected"), [
    ({"cmd_id": "c", "data": "X", "leg": "both", "callid": None}, Event("c", "X")),
    ({"cmd_id": "c", "data": "X", "status": 200, "callid": True}, Event("c", "X", status="200")),
])
def test_an_event_keeps_only_well_typed_details(params: dict[str, object], expected: Event) -> None:
    assert read_message(json.dumps({"jsonrpc": "2.0", "method": "Event", "params": params})) == expected


def test_an_error_without_a_message_still_fails_the_command() -> None:
    frame = json.dumps({"jsonrpc": "2.0", "method": "Error", "params": {"cmd_id": "c", "code": 408}})
    assert read_message(frame) == Failed("c", 408, "")


@pytest.mark.parametrize("frame", ["not json", "{", b"\xff", "[" * 100_000])
def test_a_frame_that_is_not_json_is_unreadable(frame: str | bytes) -> None:
    message = read_message(frame)
    assert isinstance(message, Unreadable)
    assert message.reason.startswith("the server sent a frame that is not JSON: ")
    assert len(message.reason) < 150


@pytest.mark.parametrize("document", [
    {"jsonrpc": "2.0", "id": 1, "result": {"cmd_id": ""}},
    {"jsonrpc": "2.0", "id": 1, "result": "Started"},
    {"jsonrpc": "2.0", "id": 1, "error": {"code": "x", "message": "m"}},
    {"jsonrpc": "2.0", "id": 1, "error": {"code": True, "message": "m"}},
    {"jsonrpc": "2.0", "id": 1, "error": {"code": 1}},
    {"jsonrpc": "2.0", "id": 1},
])
def test_a_response_of_the_wrong_shape_is_malformed(document: dict[str, object]) -> None:
    message = read_message(json.dumps(document))
    assert isinstance(message, Malformed) and message.request_id == 1 and message.raw == document


@pytest.mark.parametrize("document", [
    [1, 2],
    "Ended",
    {"jsonrpc": "2.0"},
    {"jsonrpc": "2.0", "method": "Event", "params": "odd"},
    {"jsonrpc": "2.0", "method": "Event", "params": {"data": "X"}},
    {"jsonrpc": "2.0", "method": "Event", "params": {"cmd_id": 1, "data": "X"}},
    {"jsonrpc": "2.0", "method": "Event", "params": {"cmd_id": "c"}},
    {"jsonrpc": "2.0", "method": "Error", "params": {"cmd_id": "c", "code": "488"}},
    {"jsonrpc": "2.0", "method": "Progress", "params": {"cmd_id": "c"}},
    {"jsonrpc": "2.0", "method": ["x" * 200], "params": {"cmd_id": "c"}},
])
def test_what_is_neither_is_ignored_with_a_short_reason(document: object) -> None:
    message = read_message(json.dumps(document))
    assert isinstance(message, Ignored)
    assert len(message.reason) < 120


def test_a_query_result_and_the_subscription_notifications() -> None:
    from rpc.client.messages import Answered, CallEvent, SubscriptionLost

    answered = read_message('{"jsonrpc":"2.0","id":4,"result":{"seq":3,"calls":[],"next_cursor":null}}')
    assert answered == Answered(4, {"seq": 3, "calls": [], "next_cursor": None})
    event = read_message('{"jsonrpc":"2.0","method":"CallEvent","params":{"subscription":"s","seq":7,'
                         '"time":"t","callid":"a@h","event":"media","leg":"caller"}}')
    assert event == CallEvent("s", 7, "a@h", "media") and isinstance(event, CallEvent)
    assert event.params["leg"] == "caller"
    lost = read_message('{"jsonrpc":"2.0","method":"SubscriptionLost","params":{"subscription":"s","seq":9}}')
    assert lost == SubscriptionLost("s", 9)
    for bad in ('{"jsonrpc":"2.0","method":"CallEvent","params":{"subscription":"s"}}',
                '{"jsonrpc":"2.0","method":"CallEvent","params":{"subscription":"s","seq":1,"callid":1}}',
                '{"jsonrpc":"2.0","method":"SubscriptionLost","params":"x"}'):
        assert type(read_message(bad)).__name__ == "Ignored"
