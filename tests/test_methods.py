"""Tests for rpc.methods: the method table and the validation of each method's named parameters."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from b2bua.call.commands import (
    CallAttendedTransfer,
    CallBlindTransfer,
    CallEnd,
    CallHold,
    CallStart,
    CallUnHold,
    Command,
    Kind,
    arg,
    args,
)
from b2bua.call.control import COMMANDS, Control, row
from b2bua.call.flows.base import Flow, Sink
from b2bua.call.leg import LEG_NAMES
from b2bua.errors import RpcError
from rpc.errors import INVALID_PARAMS, METHOD_NOT_FOUND
from rpc.methods import (
    CMD_ID,
    METHODS,
    Method,
    check,
    lookup,
    requested_cmd_id,
    validate,
)

ROOT = Path(__file__).resolve().parent.parent


def refusal(method: str, params: Mapping[str, object]) -> RpcError:
    with pytest.raises(RpcError) as info:
        validate(method, params)
    return info.value


def test_call_start() -> None:
    params = {"caller": "sip:alice@example.com", "callee": "sips:bob@example.com;transport=tls"}
    assert validate("CallStart", params) == CallStart("sip:alice@example.com",
                                                            "sips:bob@example.com;transport=tls")


def test_uris_are_kept_as_sent() -> None:
    params = {"caller": "SIP:Alice@Example.COM:5060", "callee": "tel:+1-555-0100;phone-context=example.com"}
    assert validate("CallStart", params) == CallStart(*params.values())


def test_blind_transfer() -> None:
    params = {"callid": "a84b4c76e66710@pc33", "leg": "callee", "destination": "sip:carol@example.com"}
    assert validate("CallBlindTransfer", params) == CallBlindTransfer("a84b4c76e66710@pc33", "callee",
                                                                        "sip:carol@example.com")


@pytest.mark.parametrize("spelling", [
    {"callid_a": "A", "leg_a": "caller", "callid_b": "B", "leg_b": "callee"},
    {"callidA": "A", "legA": "caller", "callidB": "B", "legB": "callee"},
    {"callidA": "A", "leg_a": "caller", "callid_b": "B", "legB": "callee"},
])
def test_attended_transfer_takes_both_spellings(spelling: dict[str, object]) -> None:
    assert validate("CallAttendedTransfer", spelling) == CallAttendedTransfer("A", "caller", "B", "callee", None)
    with_destination = {**spelling, "destination": "tel:+15550100"}
    assert validate("CallAttendedTransfer", with_destination) == CallAttendedTransfer(
        "A", "caller", "B", "callee", "tel:+15550100")


def test_attended_transfer_refuses_both_spellings_of_one_parameter() -> None:
    error = refusal("CallAttendedTransfer", {"callid_a": "A", "callidA": "A", "leg_a": "caller",
                                             "callid_b": "B", "leg_b": "callee"})
    assert (error.code, error.message, error.data) == (
        INVALID_PARAMS, "params.callid_a and params.callidA are two spellings of one parameter; send one",
        {"param": "callidA"})


def test_attended_transfer_names_the_spelling_used_in_messages() -> None:
    error = refusal("CallAttendedTransfer", {"callidA": "A", "legA": "bob", "callidB": "B", "legB": "callee"})
    assert error.message == 'params.legA must be "caller" or "callee", got "bob"'
    assert error.data == {"param": "legA"}


@pytest.mark.parametrize(("method", "cls"), [("CallHold", CallHold), ("CallUnHold", CallUnHold),
                                             ("CallUnhold", CallUnHold)])
def test_hold_and_unhold_leg_is_optional(method: str, cls: type[CallHold | CallUnHold]) -> None:
    assert validate(method, {"callid": "c1"}) == cls("c1", None)
    assert validate(method, {"callid": "c1", "leg": None}) == cls("c1", None)
    assert validate(method, {"callid": "c1", "leg": "caller"}) == cls("c1", "caller")


def test_unhold_alias_is_the_same_method() -> None:
    assert lookup("CallUnhold") is lookup("CallUnHold")
    assert lookup("CallUnhold").name == "CallUnHold"


def test_call_end() -> None:
    assert validate("CallEnd", {"callid": "c1"}) == CallEnd("c1")


def test_every_method_name_maps_to_its_canonical_method() -> None:
    assert set(METHODS) == {"CallStart", "CallBlindTransfer", "CallAttendedTransfer", "CallHold", "CallUnHold",
                            "CallUnhold", "CallEnd", "CallList", "CallGet", "Subscribe", "Unsubscribe"}
    for name, method in METHODS.items():
        assert METHODS[method.name] is method
        assert name == method.name or name == "CallUnhold"


def test_unknown_method() -> None:
    error = refusal("CallPark", {})
    assert (error.code, error.message) == (METHOD_NOT_FOUND, 'method "CallPark" not found')
    assert error.data == {"methods": list(METHODS)}


def test_method_names_are_case_sensitive() -> None:
    assert refusal("callstart", {}).code == METHOD_NOT_FOUND


def test_missing_parameter() -> None:
    error = refusal("CallStart", {"caller": "sip:alice@example.com"})
    assert (error.code, error.message, error.data) == (INVALID_PARAMS, "params.callee is missing", {"param": "callee"})


def test_null_mandatory_parameter() -> None:
    error = refusal("CallEnd", {"callid": None})
    assert error.message == "params.callid must be a non-empty string, got null"


@pytest.mark.parametrize(("value", "shown"), [(5, "5"), (1.5, "1.5"), (True, "true"), ([], "an array"),
                                              ({"a": 1}, "an object")])
def test_mistyped_parameter(value: object, shown: str) -> None:
    error = refusal("CallEnd", {"callid": value})
    assert (error.code, error.message) == (INVALID_PARAMS, f"params.callid must be a non-empty string, got {shown}")


def test_mistyped_uri_and_leg() -> None:
    assert refusal("CallStart", {"caller": 1, "callee": "sip:b@h"}).message == (
        "params.caller must be a SIP, SIPS or tel URI, got 1")
    assert refusal("CallHold", {"callid": "c", "leg": 0}).message == (
        'params.leg must be either "caller" or "callee", got 0')


@pytest.mark.parametrize(("method", "params", "name"), [
    ("CallEnd", {"callid": ""}, "callid"),
    ("CallHold", {"callid": "c", "leg": ""}, "leg"),
    ("CallStart", {"caller": "sip:a@h", "callee": ""}, "callee"),
])
def test_empty_string_is_refused(method: str, params: dict[str, object], name: str) -> None:
    error = refusal(method, params)
    assert (error.code, error.message, error.data) == (INVALID_PARAMS, f"params.{name} must not be empty",
                                                       {"param": name})


def test_leg_outside_its_domain() -> None:
    error = refusal("CallBlindTransfer", {"callid": "c", "leg": "bob", "destination": "sip:carol@example.com"})
    assert (error.code, error.message, error.data) == (
        INVALID_PARAMS, 'params.leg must be "caller" or "callee", got "bob"', {"param": "leg"})


def test_leg_is_case_sensitive() -> None:
    assert refusal("CallHold", {"callid": "c", "leg": "Caller"}).code == INVALID_PARAMS


@pytest.mark.parametrize("uri", ["http://example.com/", "mailto:alice@example.com", "urn:service:sos"])
def test_uri_of_another_scheme_is_refused(uri: str) -> None:
    error = refusal("CallStart", {"caller": uri, "callee": "sip:bob@example.com"})
    assert error.code == INVALID_PARAMS
    assert error.message == f'params.caller must be a SIP, SIPS or tel URI, got "{uri}"'
    assert error.data is not None and error.data["param"] == "caller"
    assert "unsupported URI scheme" in str(error.data["reason"])


@pytest.mark.parametrize("uri", ["alice", "sip:", "sip:alice@", "sip:alice@exa mple.com", "<sip:alice@example.com>",
                                 "tel:abc+", "sip:alice@example.com:99999"])
def test_malformed_uri_is_refused(uri: str) -> None:
    error = refusal("CallBlindTransfer", {"callid": "c", "leg": "caller", "destination": uri})
    assert error.code == INVALID_PARAMS
    assert error.message.startswith("params.destination must be a SIP, SIPS or tel URI, got ")
    assert error.data is not None and error.data["param"] == "destination" and error.data["reason"]


def test_attended_transfer_destination_is_checked_when_given() -> None:
    params = {"callid_a": "A", "leg_a": "caller", "callid_b": "B", "leg_b": "callee", "destination": "http://x"}
    assert refusal("CallAttendedTransfer", params).message == (
        'params.destination must be a SIP, SIPS or tel URI, got "http://x"')


def test_unknown_parameter() -> None:
    error = refusal("CallHold", {"callid": "c", "legs": "caller"})
    assert (error.code, error.message, error.data) == (
        INVALID_PARAMS, "params.legs is not a parameter of CallHold (it takes callid, leg, cmd_id)", {"param": "legs"})


def test_unknown_parameter_is_reported_before_a_missing_one() -> None:
    error = refusal("CallStart", {"caller": "sip:a@h", "calle": "sip:b@h"})
    assert error.message == "params.calle is not a parameter of CallStart (it takes caller, callee, cmd_id)"


def test_unknown_parameter_lists_both_spellings() -> None:
    error = refusal("CallAttendedTransfer", {"callid": "c"})
    assert error.message == ("params.callid is not a parameter of CallAttendedTransfer (it takes "
                             "callid_a/callidA, leg_a/legA, callid_b/callidB, leg_b/legB, destination, cmd_id)")


def test_odd_unknown_parameter_name_is_quoted_and_cut() -> None:
    error = refusal("CallEnd", {"callid": "c", "x y" * 50: 1})
    assert error.message.startswith('params."x yx y')
    assert len(error.message) < 120


def test_cmd_id_is_accepted_by_every_method() -> None:
    assert validate("CallEnd", {"callid": "c", CMD_ID: "mine"}) == CallEnd("c")
    assert requested_cmd_id({"callid": "c", CMD_ID: "mine"}) == "mine"
    assert requested_cmd_id({"callid": "c"}) is None
    assert requested_cmd_id({CMD_ID: None}) is None


@pytest.mark.parametrize(("value", "message"), [(7, "params.cmd_id must be a non-empty string, got 7"),
                                                ("", "params.cmd_id must not be empty")])
def test_cmd_id_must_be_a_non_empty_string(value: object, message: str) -> None:
    error = refusal("CallEnd", {"callid": "c", CMD_ID: value})
    assert (error.code, error.message, error.data) == (INVALID_PARAMS, message, {"param": "cmd_id"})


def test_check_by_kind() -> None:
    assert check(Kind.TEXT, "x", "anything") == "anything"
    assert [check(Kind.LEG, "x", leg) for leg in LEG_NAMES] == ["caller", "callee"]
    assert check(Kind.URI, "x", "tel:+15550100") == "tel:+15550100"


def test_methods_module_does_no_io() -> None:
    tree = ast.parse((ROOT / "rpc" / "methods.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    forbidden = {"asyncio", "websockets", "socket", "uuid", "random", "secrets", "time", "threading"}
    assert not {name.split(".")[0] for name in imported} & forbidden


def test_methods_are_derived_from_the_command_table() -> None:
    for entry in COMMANDS:
        method = METHODS[entry.name]
        assert method.build is entry.command and all(METHODS[alias] is method for alias in entry.aliases)
        assert [(p.name, p.kind, p.required, p.alias) for p in method.params] == [
            (name, spec.kind, spec.required, spec.alias) for name, spec in args(entry.command)]


def test_a_new_command_row_makes_a_method() -> None:
    @dataclass(frozen=True, slots=True)
    class CallPark(Command):
        callid: str = arg(Kind.TEXT, upstream="callID")
        orbit: str | None = arg(Kind.URI, required=False)

    def park(control: Control, command: CallPark, now: float, sink: Sink, cmd_id: str) -> Flow:
        raise AssertionError("not started here")

    method = Method.of(row(CallPark, park))
    assert method.name == "CallPark"
    assert method.validate({"callID": "c"}) == CallPark("c", None)
    with pytest.raises(RpcError, match=r"params.orbit must be a SIP, SIPS or tel URI"):
        method.validate({"callid": "c", "orbit": "http://x"})
