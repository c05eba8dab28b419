"""Tests for b2bua.sip.transaction_matching: client and server keys (RFC 3261 sections 17.1.3, 17.2.3, 9.2)."""

from __future__ import annotations

import pytest

from b2bua.errors import ParseError
from b2bua.sip.message import Headers, Request
from b2bua.sip.transaction_client import InviteClientTransaction, build_ack
from b2bua.sip.transaction_matching import (
    ClientKey,
    ServerKey,
    ServerKey2543,
    ServerKey3261,
    cancel_target_key,
    client_key,
    server_key,
    to_tag_matches,
)
from b2bua.sip.transaction_server import InviteServerTransaction

from .transaction_builders import TIMERS, TO_CLIENT_UDP, TO_SERVER_UDP, make_request, make_response

# -- client side -----------------------------------------------------------------------------------------


def test_response_matches_by_branch_and_cseq_method() -> None:
    invite = make_request("INVITE")
    assert client_key(make_response(invite, 180)) == ClientKey("z9hG4bK-tx1", "INVITE") == client_key(invite)


def test_same_branch_different_method_does_not_match() -> None:
    invite_response = make_response(make_request("INVITE"), 200)
    cancel_response = make_response(make_request("CANCEL"), 200)
    assert invite_response.branch == cancel_response.branch
    assert client_key(invite_response) != client_key(cancel_response)


def test_different_branch_does_not_match() -> None:
    assert client_key(make_response(make_request(branch="z9hG4bK-a"), 200)) != client_key(
        make_response(make_request(branch="z9hG4bK-b"), 200))


def test_branch_compares_case_sensitively() -> None:
    assert client_key(make_request(branch="z9hG4bK-ab")) != client_key(make_request(branch="z9hG4bK-AB"))


def test_response_without_branch_gets_the_empty_branch() -> None:
    assert client_key(make_response(make_request(branch=None), 200)).branch == ""


def test_client_key_needs_cseq() -> None:
    request = make_request()
    request.headers.remove("cseq")
    with pytest.raises(ParseError):
        client_key(request)


# -- server side, RFC 3261 keys -------------------------------------------------------------------------------


def test_server_key_is_branch_sent_by_and_method() -> None:
    key = server_key(make_request(via="SIP/2.0/UDP PC33.Example.COM:5070"))
    assert key == ServerKey3261("z9hG4bK-tx1", "pc33.example.com", 5070, "INVITE")


def test_retransmission_matches_and_host_case_does_not_matter() -> None:
    assert server_key(make_request(via="SIP/2.0/UDP A.example.com")) == server_key(
        make_request(via="SIP/2.0/UDP a.EXAMPLE.com"))


@pytest.mark.parametrize("change", [
    {"branch": "z9hG4bK-other"},
    {"via": "SIP/2.0/UDP 192.0.2.10:5062"},
    {"via": "SIP/2.0/UDP 192.0.2.99:5060"},
])
def test_server_key_differs_with_branch_or_sent_by(change: dict[str, str]) -> None:
    assert server_key(make_request(**change)) != server_key(make_request())  # type: ignore[arg-type]


def test_port_absent_is_not_port_5060() -> None:
    assert server_key(make_request(via="SIP/2.0/UDP 192.0.2.10")) != server_key(make_request())


def test_ack_maps_to_invite_and_cancel_keeps_its_method() -> None:
    invite = make_request("INVITE")
    assert server_key(make_request("ACK")) == server_key(invite)
    cancel = make_request("CANCEL")
    assert server_key(cancel) != server_key(invite)
    assert isinstance(server_key(cancel), ServerKey3261) and server_key(cancel).method == "CANCEL"


def test_cancel_target_key_is_the_invites_key() -> None:
    invite = make_request("INVITE", via="SIP/2.0/UDP Host.example.com:5060")
    cancel = make_request("CANCEL", via="SIP/2.0/UDP host.example.com:5060")
    assert cancel_target_key(cancel) == server_key(invite)
    other = make_request("CANCEL", branch="z9hG4bK-elsewhere")
    assert cancel_target_key(other) != server_key(invite)


def test_ack_for_a_non_2xx_matches_the_invite_server_transaction() -> None:
    """The ACK a client transaction builds (section 17.1.1.3) finds the UAS's INVITE transaction."""
    invite = make_request("INVITE", routes=["<sip:p1.example.net;lr>"])
    client = InviteClientTransaction(invite, TO_SERVER_UDP, TIMERS, 0.0)
    client.start()
    server = InviteServerTransaction(invite, TO_CLIENT_UDP, TIMERS, 0.0)
    server.send_response(make_response(invite, 486, to_tag="uas-tag"), 0.1)
    client.receive_response(make_response(invite, 486, to_tag="uas-tag"), 0.2)
    assert client.ack is not None
    assert server_key(client.ack) == server.key and server.matches(client.ack)


def test_keys_work_as_dict_keys() -> None:
    table: dict[ServerKey, str] = {server_key(make_request()): "invite",
                                   server_key(make_request("INVITE", branch=None)): "legacy"}
    assert table[server_key(make_request("ACK"))] == "invite"
    assert table[server_key(make_request("ACK", branch=None))] == "legacy"
    assert len({ClientKey("b", "INVITE"), ClientKey("b", "INVITE"), ClientKey("b", "CANCEL")}) == 2


def test_server_key_needs_a_via() -> None:
    request = Request("OPTIONS", "sip:x@example.com", Headers.of(("CSeq", "1 OPTIONS"), ("Call-ID", "c")))
    with pytest.raises(ParseError):
        server_key(request)


def test_legacy_key_needs_call_id() -> None:
    request = make_request(branch=None)
    request.headers.remove("call-id")
    with pytest.raises(ParseError):
        server_key(request)


# -- server side, the RFC 2543 fallback ------------------------------------------------------------------------


@pytest.mark.parametrize("branch", [None, "1234-old", "Z9HG4BK-not-the-cookie"])
def test_without_the_magic_cookie_the_rfc2543_key_applies(branch: str | None) -> None:
    key = server_key(make_request("INVITE", branch=branch, via="SIP/2.0/udp Old.Example.com:5060"))
    assert isinstance(key, ServerKey2543)
    params = "" if branch is None else f";branch={branch}"
    assert key == ServerKey2543(
        request_uri="sip:bob@example.com", from_tag="alice-tag", call_id="call-1@192.0.2.10", cseq_number=1,
        via=f"SIP/2.0/UDP old.example.com:5060{params}", method="INVITE", to_tag=None)


def legacy(method: str = "INVITE", **kw: object) -> Request:
    return make_request(method, branch=None, **kw)  # type: ignore[arg-type]


def test_legacy_retransmission_matches() -> None:
    assert server_key(legacy()) == server_key(legacy())


@pytest.mark.parametrize("change", [
    {"uri": "sip:carol@example.com"},
    {"from_tag": "someone-else"},
    {"call_id": "call-2@192.0.2.10"},
    {"cseq": 2},
    {"via": "SIP/2.0/UDP 192.0.2.11:5060"},
])
def test_legacy_key_fields(change: dict[str, object]) -> None:
    assert server_key(legacy("INVITE", **change)) != server_key(legacy())


def test_legacy_ack_shares_the_invite_key_and_its_to_tag_decides() -> None:
    invite = legacy()
    busy = make_response(invite, 486, to_tag="uas-tag")
    ack = build_ack(invite, busy)
    assert ack.branch is None and ack.to_tag == "uas-tag"
    assert server_key(ack) == server_key(invite)  # the key leaves the To tag out for INVITE and ACK
    assert to_tag_matches(ack, invite, busy)
    stray = legacy("ACK", to_tag="another-tag")
    assert server_key(stray) == server_key(invite) and not to_tag_matches(stray, invite, busy)


def test_legacy_invite_retransmission_compares_to_tag_with_the_original() -> None:
    invite = legacy()
    busy = make_response(invite, 486, to_tag="uas-tag")
    assert to_tag_matches(legacy(), invite, busy)
    assert not to_tag_matches(legacy(to_tag="x"), invite, busy)


def test_legacy_ack_before_any_response_compares_with_the_invite() -> None:
    invite = legacy()
    assert to_tag_matches(legacy("ACK"), invite, None)


def test_legacy_matching_through_the_server_transaction() -> None:
    invite = legacy()
    server = InviteServerTransaction(invite, TO_CLIENT_UDP, TIMERS, 0.0)
    busy = make_response(invite, 486, to_tag="uas-tag")
    server.send_response(busy, 0.0)
    assert server.matches(build_ack(invite, busy))
    assert not server.matches(legacy("ACK", to_tag="other"))
    assert server.matches(legacy())


def test_legacy_non_invite_key_keeps_the_to_tag() -> None:
    bye = legacy("BYE", to_tag="uas-tag")
    key = server_key(bye)
    assert isinstance(key, ServerKey2543) and key.to_tag == "uas-tag" and key.method == "BYE"
    assert server_key(legacy("BYE", to_tag="other")) != key


def test_legacy_cancel_target_key_is_the_invites() -> None:
    invite = legacy()
    cancel = legacy("CANCEL")
    assert server_key(cancel) != server_key(invite)
    assert cancel_target_key(cancel) == server_key(invite)
    assert to_tag_matches(cancel, invite, None)


def test_rfc3261_requests_always_pass_the_to_tag_check() -> None:
    invite = make_request()
    assert to_tag_matches(make_request("ACK", to_tag="whatever"), invite, make_response(invite, 486))
