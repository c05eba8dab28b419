"""Tests for rpc.jsonrpc (and rpc.errors): JSON-RPC 2.0 frames in, outcomes and response text out."""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from b2bua.call.commands import CallAttendedTransfer, CallEnd, CallHold, CallStart, CallUnHold
from b2bua.errors import CallBusyError, CallNotFoundError, CallStateError, ControlError, RpcError
from rpc import errors
from rpc.errors import (
    BUSY,
    CALL_NOT_FOUND,
    CALL_STATE,
    INTERNAL,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    REFUSAL_CODES,
    describe,
    refusal_code,
)
from rpc.jsonrpc import (
    NO_ID,
    Accepted,
    Frame,
    Refused,
    batch_response,
    ended_notification,
    error_notification,
    error_response,
    event_notification,
    parse_frame,
    started_response,
)

ROOT = Path(__file__).resolve().parent.parent
START = {"caller": "sip:alice@example.com", "callee": "sip:bob@example.com"}


class Ids:
    """A deterministic cmd_id factory that records how often it was asked."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> str:
        self.count += 1
        return f"cmd-{self.count}"


def parse(text: str | bytes, running: frozenset[str] = frozenset(), ids: Callable[[], str] | None = None) -> Frame:
    return parse_frame(text, new_cmd_id=ids or Ids(), is_running=running.__contains__)


def request(method: str = "CallStart", params: object = START, **members: object) -> str:
    return json.dumps({"jsonrpc": "2.0", "method": method, "params": params, **members})


def answer(frame: Frame) -> str | None:
    """What the server sends when every accepted command starts."""
    return frame.reply([outcome.reply() for outcome in frame.outcomes])


def single_error(text: str | bytes) -> dict[str, Any]:
    reply = answer(parse(text))
    assert reply is not None
    response = json.loads(reply)
    assert set(response) == {"jsonrpc", "id", "error"} and response["jsonrpc"] == "2.0"
    error: dict[str, Any] = response["error"]
    error["id"] = response["id"]
    return error


# Accepted requests


def test_readme_call_start() -> None:
    frame = parse(request(id="831717ed97e5"))
    assert frame == Frame((Accepted("831717ed97e5", "CallStart", CallStart(**START), "cmd-1"),), batch=False)
    assert answer(frame) == '{"jsonrpc":"2.0","id":"831717ed97e5","result":{"cmd_id":"cmd-1","status":"Started"}}'


def test_attended_transfer_upstream_spelling() -> None:
    params = {"callidA": "A", "legA": "caller", "callidB": "B", "legB": "callee"}
    (outcome,) = parse(request("CallAttendedTransfer", params, id=1)).outcomes
    assert outcome == Accepted(1, "CallAttendedTransfer", CallAttendedTransfer("A", "caller", "B", "callee", None),
                               "cmd-1")


def test_unhold_alias_is_reported_under_its_documented_name() -> None:
    (outcome,) = parse(request("CallUnhold", {"callid": "c"}, id=1)).outcomes
    assert outcome == Accepted(1, "CallUnHold", CallUnHold("c", None), "cmd-1")


def test_notification_is_started_without_a_response() -> None:
    frame = parse(request("CallHold", {"callid": "c"}))
    (outcome,) = frame.outcomes
    assert outcome == Accepted(NO_ID, "CallHold", CallHold("c", None), "cmd-1")
    assert isinstance(outcome, Accepted) and outcome.notification
    assert outcome.reply() is None
    assert outcome.error_reply(RpcError(CALL_NOT_FOUND, "no call")) is None
    assert answer(frame) is None


@pytest.mark.parametrize(("id_", "shown"), [("abc", '"abc"'), (7, "7"), (-3, "-3"), (None, "null"), (1.5, "1.5"),
                                            (10**30, str(10**30))])
def test_valid_ids_are_echoed(id_: object, shown: str) -> None:
    frame = parse(request(id=id_))
    assert isinstance(frame.outcomes[0], Accepted)
    assert answer(frame) == f'{{"jsonrpc":"2.0","id":{shown},"result":{{"cmd_id":"cmd-1","status":"Started"}}}}'


def test_params_may_be_omitted() -> None:
    error = single_error(json.dumps({"jsonrpc": "2.0", "method": "CallEnd", "id": 1}))
    assert (error["code"], error["message"], error["id"]) == (INVALID_PARAMS, "params.callid is missing", 1)


def test_cmd_id_is_honoured_and_the_factory_not_called() -> None:
    ids = Ids()
    frame = parse(request(params={**START, "cmd_id": "my-call"}, id=1), ids=ids)
    assert frame.outcomes[0] == Accepted(1, "CallStart", CallStart(**START), "my-call")
    assert ids.count == 0


def test_factory_is_not_called_for_refused_requests() -> None:
    ids = Ids()
    parse(request(params={}, id=1), ids=ids)
    assert ids.count == 0


def test_running_cmd_id_is_refused() -> None:
    text = request("CallEnd", {"callid": "c", "cmd_id": "busy-1"}, id=4)
    assert parse(text, running=frozenset({"busy-1"})).outcomes == (
        Refused(4, INVALID_PARAMS, 'params.cmd_id "busy-1" is already running', {"param": "cmd_id"}),)


# Refusals


def test_parse_error() -> None:
    error = single_error('{"jsonrpc": "2.0", "method": "CallEnd"')
    assert error == {"code": PARSE_ERROR, "message": "invalid JSON: Expecting ',' delimiter at line 1 column 39",
                     "id": None}


@pytest.mark.parametrize("text", ["", "   ", "{", "[1,]", '{"a" 1}', "'single'", "NaN", '{"id": Infinity}',
                                  "-Infinity", "1" * 5000, '{"a":1} x', "\ufeff{}"])
def test_not_json(text: str) -> None:
    error = single_error(text)
    assert (error["code"], error["id"]) == (PARSE_ERROR, None)
    assert error["message"].startswith("invalid JSON: ")


@pytest.mark.parametrize("data", [b"\xff", b'{"jsonrpc":"2.0","method":"\xc3("}', b"\xed\xa0\x80", b"\x80abc"])
def test_not_utf8(data: bytes) -> None:
    error = single_error(data)
    assert (error["code"], error["id"]) == (PARSE_ERROR, None)
    assert error["message"].startswith("frame is not valid UTF-8: ")


def test_utf8_bytes_are_accepted() -> None:
    frame = parse(request("CallEnd", {"callid": "caf\u00e9"}, id=1).encode())
    assert frame.outcomes[0] == Accepted(1, "CallEnd", CallEnd("caf\u00e9"), "cmd-1")


@pytest.mark.parametrize("text", ["[" * 100_000, '{"a":' * 100_000, "[" * 100_000 + "]" * 100_000])
def test_deep_nesting(text: str) -> None:
    error = single_error(text)
    assert (error["code"], error["message"]) == (PARSE_ERROR, "invalid JSON: nested too deeply")


def test_moderate_nesting_is_an_invalid_request() -> None:
    assert answer(parse("[" * 200 + "]" * 200)) == (
        '[{"jsonrpc":"2.0","id":null,"error":{"code":-32600,'
        '"message":"a request must be a JSON object, got an array"}}]')


@pytest.mark.parametrize(("text", "message"), [
    ("1", "a request must be a JSON object, got 1"),
    ('"CallEnd"', 'a request must be a JSON object, got "CallEnd"'),
    ("null", "a request must be a JSON object, got null"),
    ('{"method": "CallEnd", "params": {"callid": "c"}, "id": 1}', 'jsonrpc is missing; it must be "2.0"'),
    ('{"jsonrpc": "1.0", "method": "CallEnd", "id": 1}', 'jsonrpc must be "2.0", got "1.0"'),
    ('{"jsonrpc": 2.0, "method": "CallEnd", "id": 1}', 'jsonrpc must be "2.0", got 2.0'),
    ('{"jsonrpc": "2.0", "id": 1}', "method is missing"),
    ('{"jsonrpc": "2.0", "method": 5, "id": 1}', "method must be a string, got 5"),
    ('{"jsonrpc": "2.0", "method": "CallEnd", "params": ["c"], "id": 1}',
     "params must be an object: by-position (array) params are not supported"),
    ('{"jsonrpc": "2.0", "method": "CallEnd", "params": null, "id": 1}', "params must be an object, got null"),
    ('{"jsonrpc": "2.0", "method": "CallEnd", "param": {"callid": "c"}, "id": 1}',
     'unknown member "param": a request has jsonrpc, method, params, id'),
])
def test_invalid_request(text: str, message: str) -> None:
    error = single_error(text)
    assert (error["code"], error["message"]) == (INVALID_REQUEST, message)


def test_invalid_request_echoes_a_readable_id() -> None:
    error = single_error('{"jsonrpc": "1.0", "method": "CallEnd", "id": "x1"}')
    assert (error["code"], error["id"], error["data"]) == (INVALID_REQUEST, "x1", {"member": "jsonrpc"})


def test_invalid_request_without_id_is_answered_with_null_id() -> None:
    error = single_error('{"jsonrpc": "1.0", "method": "CallEnd", "params": {"callid": "c"}}')
    assert (error["code"], error["id"]) == (INVALID_REQUEST, None)


@pytest.mark.parametrize(("text_id", "shown"), [("true", "true"), ("false", "false"), ('{"n": 1}', "an object"),
                                                ("[1]", "an array"), ("1e400", "Infinity")])
def test_invalid_id(text_id: str, shown: str) -> None:
    error = single_error(f'{{"jsonrpc": "2.0", "method": "CallEnd", "params": {{"callid": "c"}}, "id": {text_id}}}')
    assert error == {"code": INVALID_REQUEST, "id": None, "data": {"member": "id"},
                     "message": f"id must be a string, a finite number or null, got {shown}"}


def test_method_not_found() -> None:
    error = single_error(request("CallPark", {}, id=2))
    assert (error["code"], error["message"], error["id"]) == (METHOD_NOT_FOUND, 'method "CallPark" not found', 2)


def test_long_values_are_cut_in_messages() -> None:
    error = single_error(request("x" * 10_000, {}, id=2))
    assert error["message"] == 'method "' + "x" * 55 + '..." not found'


def test_invalid_params() -> None:
    error = single_error(request("CallHold", {"callid": "c", "leg": "bob"}, id=3))
    assert error == {"code": INVALID_PARAMS, "message": 'params.leg must be "caller" or "callee", got "bob"',
                     "data": {"param": "leg"}, "id": 3}


def test_refused_notification_gets_no_response() -> None:
    for text in (request("CallPark", {}), request("CallHold", {"callid": "c", "leg": "bob"}),
                 request("CallEnd", {"callid": "c", "cmd_id": "busy"})):
        frame = parse(text, running=frozenset({"busy"}))
        (outcome,) = frame.outcomes
        assert isinstance(outcome, Refused) and outcome.request_id is NO_ID
        assert answer(frame) is None


# Batches


def test_batch_of_mixed_requests() -> None:
    text = json.dumps([
        {"jsonrpc": "2.0", "method": "CallStart", "params": START, "id": "s"},
        {"jsonrpc": "2.0", "method": "CallEnd", "params": {"callid": "c"}},
        {"foo": "boo"},
        1,
        {"jsonrpc": "2.0", "method": "CallPark", "params": {}, "id": "p"},
        {"jsonrpc": "2.0", "method": "CallPark", "params": {}},
        {"jsonrpc": "2.0", "method": "CallHold", "params": {"callid": "c", "leg": "callee"}, "id": 9},
    ])
    frame = parse(text)
    assert frame.batch
    assert [type(outcome).__name__ for outcome in frame.outcomes] == [
        "Accepted", "Accepted", "Refused", "Refused", "Refused", "Refused", "Accepted"]
    assert json.loads(answer(frame) or "") == [
        {"jsonrpc": "2.0", "id": "s", "result": {"cmd_id": "cmd-1", "status": "Started"}},
        {"jsonrpc": "2.0", "id": None, "error": {"code": INVALID_REQUEST, "message": 'jsonrpc is missing; it must be '
                                                 '"2.0"', "data": {"member": "jsonrpc"}}},
        {"jsonrpc": "2.0", "id": None, "error": {"code": INVALID_REQUEST,
                                                 "message": "a request must be a JSON object, got 1"}},
        {"jsonrpc": "2.0", "id": "p", "error": {"code": METHOD_NOT_FOUND, "message": 'method "CallPark" not found',
                                                "data": {"methods": ["CallStart", "CallBlindTransfer",
                                                                     "CallAttendedTransfer", "CallHold", "CallUnHold",
                                                                     "CallUnhold", "CallEnd", "CallList", "CallGet",
                                                                     "Subscribe", "Unsubscribe"]}}},
        {"jsonrpc": "2.0", "id": 9, "result": {"cmd_id": "cmd-3", "status": "Started"}},
    ]


def test_batch_of_notifications_gets_no_response() -> None:
    text = "[" + ",".join([request("CallEnd", {"callid": "a"}), request("CallEnd", {"callid": "b"})]) + "]"
    frame = parse(text)
    assert [outcome.cmd_id for outcome in frame.outcomes if isinstance(outcome, Accepted)] == ["cmd-1", "cmd-2"]
    assert answer(frame) is None


def test_batch_of_one_is_answered_with_an_array() -> None:
    reply = answer(parse("[" + request(id=1) + "]"))
    assert reply == '[{"jsonrpc":"2.0","id":1,"result":{"cmd_id":"cmd-1","status":"Started"}}]'


def test_empty_batch() -> None:
    frame = parse("[]")
    assert not frame.batch
    assert answer(frame) == ('{"jsonrpc":"2.0","id":null,"error":{"code":-32600,'
                             '"message":"empty batch: a batch array must hold at least one request"}}')


def test_batch_of_non_objects() -> None:
    reply = json.loads(answer(parse("[1,2,3]")) or "")
    assert [(r["id"], r["error"]["code"]) for r in reply] == [(None, INVALID_REQUEST)] * 3


def test_cmd_id_used_twice_in_one_batch() -> None:
    params = {"callid": "c", "cmd_id": "x"}
    frame = parse("[" + request("CallEnd", params, id=1) + "," + request("CallEnd", params, id=2) + "]")
    assert frame.outcomes == (
        Accepted(1, "CallEnd", CallEnd("c"), "x"),
        Refused(2, INVALID_PARAMS, 'params.cmd_id "x" is used twice in this batch', {"param": "cmd_id"}),
    )


def test_server_side_refusals_in_a_batch() -> None:
    frame = parse("[" + ",".join([request("CallEnd", {"callid": "gone"}, id=1), request(id=2),
                                  request("CallEnd", {"callid": "gone"})]) + "]")
    first, second, third = frame.outcomes
    assert isinstance(first, Accepted) and isinstance(second, Accepted) and isinstance(third, Accepted)
    missing = RpcError(CALL_NOT_FOUND, 'no call with Call-ID "gone"', {"param": "callid"})
    reply = frame.reply([first.error_reply(missing), second.reply(), third.error_reply(missing)])
    assert reply == ('[{"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"no call with Call-ID \\"gone\\"",'
                     '"data":{"param":"callid"}}},'
                     '{"jsonrpc":"2.0","id":2,"result":{"cmd_id":"cmd-2","status":"Started"}}]')


def test_frame_reply_takes_objects_and_checks_the_count() -> None:
    frame = parse(request(id=1))
    assert frame.reply([{"jsonrpc": "2.0", "id": 1, "result": {}}]) == '{"jsonrpc":"2.0","id":1,"result":{}}'
    with pytest.raises(ValueError, match="2 replies for 1 outcomes"):
        frame.reply([None, None])


def test_batch_response() -> None:
    assert batch_response([None, None]) is None
    assert batch_response([]) is None
    assert batch_response(['{"a":1}', None, {"b": [1, 2]}]) == '[{"a":1},{"b":[1,2]}]'


# Builders


def test_started_response() -> None:
    assert started_response(2.5, "c") == '{"jsonrpc":"2.0","id":2.5,"result":{"cmd_id":"c","status":"Started"}}'


def test_error_response() -> None:
    assert error_response(None, INTERNAL, "boom") == (
        '{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"boom"}}')
    assert error_response("r", CALL_STATE, "not answered yet", {"state": "ringing"}) == (
        '{"jsonrpc":"2.0","id":"r","error":{"code":-32002,"message":"not answered yet","data":{"state":"ringing"}}}')


def test_event_notification() -> None:
    assert event_notification("c1", "CALL_ANSWER") == (
        '{"jsonrpc":"2.0","method":"Event","params":{"cmd_id":"c1","data":"CALL_ANSWER"}}')
    assert event_notification("c1", "CALL_HOLD", callid="x@h", leg="caller", status=200) == (
        '{"jsonrpc":"2.0","method":"Event","params":{"cmd_id":"c1","data":"CALL_HOLD","callid":"x@h",'
        '"leg":"caller","status":200}}')
    assert event_notification("c1", "TRANSFER_TRYING", status="100 Trying") == (
        '{"jsonrpc":"2.0","method":"Event","params":{"cmd_id":"c1","data":"TRANSFER_TRYING","status":"100 Trying"}}')


def test_error_and_ended_notifications() -> None:
    assert error_notification("c1", BUSY, "another command is running on this call") == (
        '{"jsonrpc":"2.0","method":"Error","params":{"cmd_id":"c1","code":-32003,'
        '"message":"another command is running on this call"}}')
    assert ended_notification("c1") == '{"jsonrpc":"2.0","method":"Ended","params":{"cmd_id":"c1"}}'


def test_output_is_ascii() -> None:
    assert ended_notification("caf\u00e9\ud800") == (
        '{"jsonrpc":"2.0","method":"Ended","params":{"cmd_id":"caf\\u00e9\\ud800"}}')


# Errors


def test_error_codes() -> None:
    assert {name: getattr(errors, name) for name in ("PARSE_ERROR", "INVALID_REQUEST", "METHOD_NOT_FOUND",
                                                     "INVALID_PARAMS", "INTERNAL", "CALL_NOT_FOUND", "CALL_STATE",
                                                     "BUSY")} == {
        "PARSE_ERROR": -32700, "INVALID_REQUEST": -32600, "METHOD_NOT_FOUND": -32601, "INVALID_PARAMS": -32602,
        "INTERNAL": -32603, "CALL_NOT_FOUND": -32001, "CALL_STATE": -32002, "BUSY": -32003}


def test_rpc_error() -> None:
    error = RpcError(CALL_NOT_FOUND, "no such call", {"param": "callid"})
    assert (error.code, error.message, error.data, str(error)) == (-32001, "no such call", {"param": "callid"},
                                                                   "no such call")
    assert repr(error) == "RpcError(-32001, 'no such call', {'param': 'callid'})"


@pytest.mark.parametrize(("value", "shown"), [
    (None, "null"), (False, "false"), (3, "3"), ("a\"b", '"a\\"b"'), ("\u00e9", '"\u00e9"'),
    ([1], "an array"), ({}, "an object"), ({1, 2}, "set"), ("x" * 100, '"' + "x" * 55 + '..."'),
    ("x" * 58, '"' + "x" * 58 + '"'), (10**100, "1" + "0" * 56 + "..."),
])
def test_describe(value: object, shown: str) -> None:
    assert describe(value) == shown


# Properties

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
requests = st.fixed_dictionaries(
    {"jsonrpc": st.sampled_from(["2.0", "1.0", 2]),
     "method": st.sampled_from(["CallStart", "CallBlindTransfer", "CallAttendedTransfer", "CallHold", "CallUnHold",
                                "CallUnhold", "CallEnd", "Nope"]) | json_values},
    optional={
        "id": st.text(max_size=5) | st.integers() | st.none() | st.floats(allow_nan=False) | json_values,
        "params": st.dictionaries(
            st.sampled_from(["caller", "callee", "callid", "leg", "destination", "callid_a", "callidA", "leg_a",
                             "legA", "callid_b", "leg_b", "legB", "cmd_id", "other"]),
            st.sampled_from(["sip:a@h", "tel:+1", "caller", "callee", "", "x", "http://h", "running"]) | json_values,
        ) | json_values,
    },
)
frames = (st.text() | st.binary() | requests.map(json.dumps) | st.lists(requests | json_values, max_size=5).map(
    json.dumps) | json_values.map(json.dumps))


def check_response(response: object) -> None:
    assert isinstance(response, dict) and response["jsonrpc"] == "2.0" and "id" in response
    assert ("result" in response) != ("error" in response)


@given(frames)
def test_parse_frame_never_raises_and_answers_valid_json(text: str | bytes) -> None:
    frame = parse_frame(text, new_cmd_id=Ids(), is_running=lambda cmd_id: cmd_id == "running")
    assert frame.outcomes
    for outcome in frame.outcomes:
        reply = outcome.reply()
        if reply is not None:
            check_response(json.loads(reply))
    reply = answer(frame)
    if reply is None:
        assert all(outcome.request_id is NO_ID for outcome in frame.outcomes)
        return
    document = json.loads(reply)
    if frame.batch:
        assert isinstance(document, list) and document
        for response in document:
            check_response(response)
    else:
        check_response(document)


# Layering


@pytest.mark.parametrize("module", ["jsonrpc.py", "methods.py", "errors.py"])
def test_module_does_no_io(module: str) -> None:
    tree = ast.parse((ROOT / "rpc" / module).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    forbidden = {"asyncio", "websockets", "socket", "uuid", "random", "secrets", "time", "threading"}
    assert not {name.split(".")[0] for name in imported} & forbidden


def test_each_control_refusal_has_its_code() -> None:
    assert refusal_code(CallNotFoundError("x")) == CALL_NOT_FOUND == -32001
    assert refusal_code(CallStateError("x")) == CALL_STATE == -32002
    assert refusal_code(CallBusyError("x")) == BUSY == -32003
    assert set(REFUSAL_CODES) == set(ControlError.__subclasses__())
    with pytest.raises(LookupError):
        refusal_code(ControlError("a refusal without a kind"))
