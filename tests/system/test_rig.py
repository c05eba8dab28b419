"""The rig on its own: Kamailio routes between SIPp phones and a SIPp playing the service on its port.

These prove the proxy config and the phone scenarios before the service
exists, so a later failing system test points at the service, not the rig.
"""

from __future__ import annotations

import re

import pytest

from harness.kamailio import Kamailio, KamailioLauncher, PortMap, Transport
from harness.ports import port_is_free
from harness.sip_probe import sip_options
from harness.sipp import SippLauncher, SippResult, assert_all_ok, wait_all

pytestmark = [pytest.mark.system, pytest.mark.timeout(60)]

PAUSE_MS = 100


def received_requests(result: SippResult, method: str) -> list[str]:
    """Request lines of ``method`` that a SIPp run received (from its message trace)."""
    found = []
    for block in re.split(r"^-{20,}.*$", result.messages_path.read_text(), flags=re.MULTILINE):
        lines = [line for line in block.splitlines() if line.strip()]
        if len(lines) >= 2 and "message received" in lines[0] and lines[1].startswith(f"{method} "):
            found.append(lines[1])
    return found


def test_port_map_mirrors_the_proxy_table() -> None:
    ports = PortMap()
    assert [ports.port_of(user) for user in ("alice", "bob", "carol", "dave", "eve")] == list(range(5061, 5066))
    assert ports.port_of("alice200") == 5061
    assert ports.port_of("port5070") == 5070
    assert ports.port_of("service") == 5080
    with pytest.raises(KeyError):
        ports.port_of("mallory")
    assert ports.shifted(1000).port_of("bob7") == 6062


def test_proxy_answers_options_stops_and_releases_its_port(kamailio_factory: KamailioLauncher) -> None:
    port = kamailio_factory.ports.proxy
    for _ in range(2):
        proxy = kamailio_factory()
        assert proxy.pid is not None
        assert sip_options(port) == 200
        assert proxy.stop() == 0, proxy.log_tail()
        assert port_is_free(port), f"port {port} still bound after kamailio stopped"
        assert sip_options(port, timeout=0.05) is None


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_phone_call_goes_to_the_service(kamailio: Kamailio, sipp: SippLauncher, transport: Transport) -> None:
    service = sipp("uas_answer.xml", phone="service", transport=transport)
    alice = sipp("uac_call.xml", phone="alice", call="bob", transport=transport, pause_ms=PAUSE_MS)
    results = wait_all([alice, service])
    assert_all_ok(results, kamailio)
    # The service sees the Request-URI the phone dialled, and every in-dialog request.
    assert received_requests(results[1], "INVITE") == [f"INVITE sip:bob@{kamailio.ports.proxy_address} SIP/2.0"]
    assert len(received_requests(results[1], "BYE")) == 1
    assert f"{transport.upper()} message received" in results[1].messages_path.read_text()


@pytest.mark.parametrize(("user", "phone"), [("bob", "bob"), ("bob42", "bob"), ("port5070", "port5070")])
def test_service_call_goes_to_the_phone_named_by_the_uri(
    kamailio: Kamailio, sipp: SippLauncher, user: str, phone: str
) -> None:
    answering = sipp("uas_answer.xml", phone=phone)
    service = sipp("uac_call.xml", phone="service", call=user, pause_ms=PAUSE_MS)
    results = wait_all([service, answering])
    assert_all_ok(results, kamailio)
    assert received_requests(results[1], "INVITE") == [f"INVITE sip:{user}@{kamailio.ports.proxy_address} SIP/2.0"]


def test_one_phone_answers_many_calls(kamailio: Kamailio, sipp: SippLauncher) -> None:
    bob = sipp("uas_answer.xml", phone="bob", calls=10)
    service = sipp("uac_call.xml", phone="service", call="bob", calls=10, rate=100, pause_ms=PAUSE_MS)
    assert_all_ok(wait_all([service, bob]), kamailio)


def test_service_call_to_an_unknown_user_is_refused(kamailio: Kamailio, sipp: SippLauncher) -> None:
    service = sipp("uac_busy.xml", phone="service", call="mallory", timeout_s=5)
    result = service.wait()
    assert result.returncode == 1, result.report()
    assert "404 No Such Phone" in result.messages_path.read_text()


@pytest.mark.parametrize(
    ("caller", "callee", "service_transport", "phone_transport"),
    [("alice", "service", "tcp", None), ("service", "bob", None, "tcp")],
    ids=["to-service", "to-phone"],
)
def test_forced_tcp_next_hop_bridges_udp_and_tcp(
    kamailio_factory: KamailioLauncher, sipp: SippLauncher, caller: str, callee: str,
    service_transport: Transport | None, phone_transport: Transport | None,
) -> None:
    proxy = kamailio_factory(service_transport=service_transport, phone_transport=phone_transport)
    answering = sipp("uas_answer.xml", phone=callee, transport="tcp")
    calling = sipp("uac_call.xml", phone=caller, call="bob", transport="udp", pause_ms=PAUSE_MS)
    results = wait_all([calling, answering])
    assert_all_ok(results, proxy)
    assert "TCP message received" in results[1].messages_path.read_text()
    assert "UDP message received" in results[0].messages_path.read_text()


def test_busy(kamailio: Kamailio, sipp: SippLauncher) -> None:
    service = sipp("uas_busy.xml", phone="service")
    alice = sipp("uac_busy.xml", phone="alice", call="bob")
    assert_all_ok(wait_all([alice, service]), kamailio)


def test_cancel(kamailio: Kamailio, sipp: SippLauncher) -> None:
    bob = sipp("uas_ring_no_answer.xml", phone="bob")
    service = sipp("uac_cancel.xml", phone="service", call="bob", pause_ms=PAUSE_MS)
    assert_all_ok(wait_all([service, bob]), kamailio)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_hold_and_resume(kamailio: Kamailio, sipp: SippLauncher, transport: Transport) -> None:
    bob = sipp("uas_hold.xml", phone="bob", transport=transport)
    service = sipp("uac_hold_unhold.xml", phone="service", call="bob", transport=transport, pause_ms=PAUSE_MS)
    results = wait_all([service, bob])
    assert_all_ok(results, kamailio)
    assert len(received_requests(results[1], "INVITE")) == 3


def test_wrong_hold_answer_gets_the_call_hung_up(kamailio: Kamailio, sipp: SippLauncher) -> None:
    bob = sipp("uas_hold_wrong.xml", phone="bob")
    service = sipp("uac_hold_unhold.xml", phone="service", call="bob", pause_ms=PAUSE_MS)
    results = wait_all([service, bob])
    assert_all_ok(results, kamailio)
    # The caller saw the sendrecv answer to its hold, skipped the resume and hung up.
    assert len(received_requests(results[1], "INVITE")) == 2
    assert len(received_requests(results[1], "BYE")) == 1


def test_a_wrong_hold_offer_fails_the_phone(kamailio: Kamailio, sipp: SippLauncher) -> None:
    bob = sipp("uas_hold.xml", phone="bob")
    service = sipp("uac_hold_unhold.xml", phone="service", call="bob", pause_ms=PAUSE_MS,
                   keys={"hold_dir": "sendrecv"})
    phone_result = bob.wait()
    service.wait()
    assert phone_result.returncode == 1, phone_result.report()
    assert "with regexp 'a=sendonly'" in phone_result.errors_path.read_text()
