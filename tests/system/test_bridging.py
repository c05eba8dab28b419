"""Calls bridged by the service between SIPp phones, through Kamailio as the proxy.

alice (SIPp) -> Kamailio -> call-api -> Kamailio (its outbound proxy) -> bob (SIPp), and back; every
scenario checks what it receives, and SIPp must report zero failed calls.
"""

from __future__ import annotations

import pytest

from harness.kamailio import Kamailio, KamailioLauncher, PortMap
from harness.service import ServiceFactory, ServiceProcess
from harness.sipp import SippLauncher, assert_all_ok, wait_all

pytestmark = pytest.mark.system


def proxy_flag(ports: PortMap) -> list[str]:
    return ["--outbound-proxy", f"sip:127.0.0.1:{ports.proxy};lr"]


@pytest.fixture
def bridged(call_api: ServiceFactory, kamailio: Kamailio, rig_ports: PortMap) -> ServiceProcess:
    return call_api(*proxy_flag(rig_ports))


def test_answered_call_with_bye_from_the_caller(
    bridged: ServiceProcess, kamailio: Kamailio, sipp: SippLauncher
) -> None:
    bob = sipp("uas_answer.xml", phone="bob")
    alice = sipp("uac_call.xml", phone="alice", call="bob", pause_ms=200)
    assert_all_ok(wait_all([alice, bob], 30), kamailio)


def test_busy_callee(bridged: ServiceProcess, kamailio: Kamailio, sipp: SippLauncher) -> None:
    bob = sipp("uas_busy.xml", phone="bob")
    alice = sipp("uac_busy.xml", phone="alice", call="bob")
    assert_all_ok(wait_all([alice, bob], 30), kamailio)


def test_no_answer_then_cancel(bridged: ServiceProcess, kamailio: Kamailio, sipp: SippLauncher) -> None:
    bob = sipp("uas_ring_no_answer.xml", phone="bob")
    alice = sipp("uac_cancel.xml", phone="alice", call="bob", pause_ms=300)
    assert_all_ok(wait_all([alice, bob], 30), kamailio)


def test_answered_call_over_tcp(
    call_api: ServiceFactory, kamailio_factory: KamailioLauncher, rig_ports: PortMap,
    sipp: SippLauncher,
) -> None:
    proxy = kamailio_factory(service_transport="tcp", phone_transport="tcp")
    call_api("--outbound-proxy", f"sip:127.0.0.1:{rig_ports.proxy};transport=tcp;lr")
    bob = sipp("uas_answer.xml", phone="bob", transport="tcp")
    alice = sipp("uac_call.xml", phone="alice", call="bob", pause_ms=200, transport="tcp")
    assert_all_ok(wait_all([alice, bob], 30), proxy)


def test_many_concurrent_calls(bridged: ServiceProcess, kamailio: Kamailio, sipp: SippLauncher) -> None:
    bob = sipp("uas_answer.xml", phone="bob", calls=200, timeout_s=60)
    alice = sipp("uac_call.xml", phone="alice", call="bob", calls=200, rate=100, pause_ms=2500,
                 timeout_s=60, extra_args=["-l", "250"])
    assert_all_ok(wait_all([alice, bob], 90), kamailio)


def test_reinvite_from_the_caller_is_relayed(bridged: ServiceProcess, kamailio: Kamailio, sipp: SippLauncher) -> None:
    bob = sipp("uas_answer_reinvited.xml", phone="bob")
    alice = sipp("uac_call_reinvite.xml", phone="alice", call="bob", pause_ms=200)
    assert_all_ok(wait_all([alice, bob], 30), kamailio)


def test_reinvite_from_the_callee_is_relayed(bridged: ServiceProcess, kamailio: Kamailio, sipp: SippLauncher) -> None:
    bob = sipp("uas_answer_then_reinvite.xml", phone="bob", pause_ms=200)
    alice = sipp("uac_call_reinvited.xml", phone="alice", call="bob", pause_ms=200)
    assert_all_ok(wait_all([alice, bob], 30), kamailio)


def test_bye_from_the_callee(bridged: ServiceProcess, kamailio: Kamailio, sipp: SippLauncher) -> None:
    bob = sipp("uas_answer_bye.xml", phone="bob", pause_ms=200)
    alice = sipp("uac_call_wait_bye.xml", phone="alice", call="bob")
    assert_all_ok(wait_all([alice, bob], 30), kamailio)


def test_late_offer_is_bridged(bridged: ServiceProcess, kamailio: Kamailio, sipp: SippLauncher) -> None:
    """An INVITE without SDP: bob gets it without SDP, alice gets bob's offer in the 200, and bob's ACK
    carries alice's answer (both scenarios check the bodies)."""
    bob = sipp("uas_answer_late_offer.xml", phone="bob")
    alice = sipp("uac_call_late_offer.xml", phone="alice", call="bob", pause_ms=200)
    assert_all_ok(wait_all([alice, bob], 30), kamailio)
