"""The SIP engine against real SIPp peers on loopback: OPTIONS and INVITE over UDP and TCP, with loss,
and requests the service sends itself, direct and through an outbound proxy."""

from __future__ import annotations

import asyncio
import re

import pytest

from b2bua.config import load_config
from b2bua.service import build_service
from b2bua.sip.ua_events import CallAnswered, CallEnded, UaEvent
from harness.kamailio import PortMap
from harness.service import ServiceFactory
from harness.sipp import SippLauncher, assert_all_ok

pytestmark = pytest.mark.system

SDP = (b"v=0\r\no=call-api 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       b"m=audio 40000 RTP/AVP 0\r\na=sendrecv\r\n")


@pytest.mark.parametrize("transport", ["udp", "tcp"])
@pytest.mark.parametrize("scenario", ["uac_options.xml", "uac_invite_refused.xml"])
def test_sipp_traffic_is_answered(
    call_api: ServiceFactory, sipp: SippLauncher, rig_ports: PortMap, transport: str, scenario: str
) -> None:
    call_api()
    run = sipp(scenario, phone="alice", call="call-api", remote=f"127.0.0.1:{rig_ports.service}",
               transport=transport, calls=30, rate=100)  # type: ignore[arg-type]
    assert_all_ok([run.wait(30)])


@pytest.mark.parametrize("scenario", ["uac_options.xml", "uac_invite_refused.xml"])
def test_sipp_traffic_with_loss_completes_by_retransmission(
    call_api: ServiceFactory, sipp: SippLauncher, rig_ports: PortMap, scenario: str
) -> None:
    call_api()
    run = sipp(scenario, phone="alice", call="call-api", remote=f"127.0.0.1:{rig_ports.service}",
               calls=40, rate=40, timeout_s=60, extra_args=["-lost", "10"])
    result = run.wait(90)
    assert_all_ok([result])
    lost, retransmitted = _lost_and_retransmitted(result.output_path.read_text(errors="replace"))
    assert lost > 0 and retransmitted > 0, "SIPp lost nothing: the test proved nothing about retransmission"


def _lost_and_retransmitted(screen: str) -> tuple[int, int]:
    """Sum the Lost and Retrans columns of SIPp's last scenario screen."""
    screen = screen[screen.rfind("Messages  Retrans"):]
    lost = retrans = 0
    for line in screen.splitlines()[1:]:
        m = re.match(r"\s*\S+\s+(?:-+>|<-+)\s+(\d+)\s+(\d+)?\s*(\d+)?\s*(\d+)?\s*(\d+)?", line)
        if not m:
            break
        numbers = [int(g) for g in m.groups()[1:] if g is not None]
        retrans += numbers[0] if numbers else 0
        lost += numbers[-1] if len(numbers) >= 2 else 0
    return lost, retrans


class Recorder:
    """An application that records the UA's events."""

    def __init__(self) -> None:
        self.events: list[UaEvent] = []

    def handle(self, event: UaEvent, now: float) -> None:
        self.events.append(event)

    async def wait_for(self, kind: type[UaEvent], timeout: float = 10.0) -> UaEvent:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            for event in self.events:
                if isinstance(event, kind):
                    return event
            await asyncio.sleep(0.01)
        raise AssertionError(f"no {kind.__name__}; got {[type(e).__name__ for e in self.events]}")


async def _call_and_hang_up(flags: list[str], target: str) -> list[UaEvent]:
    recorder = Recorder()
    service = build_service(load_config(flags)).runtime
    service.app = recorder
    await service.start()
    try:
        session = service.ua.invite(target, service.shell.time(), from_addr="<sip:call-api@127.0.0.1>",
                                    to_addr="<sip:bob@127.0.0.1>", body=SDP)
        service.poke()
        await recorder.wait_for(CallAnswered)
        session.end(service.shell.time())
        service.poke()
        await recorder.wait_for(CallEnded)
    finally:
        await service.stop()
    return recorder.events


def test_service_calls_out_direct(sipp: SippLauncher, rig_ports: PortMap) -> None:
    bob = sipp("uas_answer.xml", phone="bob")
    events = asyncio.run(_call_and_hang_up(
        ["--sip-listen", f"127.0.0.1:{rig_ports.service}"], f"sip:bob@127.0.0.1:{rig_ports.port_of('bob')}"))
    assert [type(e).__name__ for e in events] == ["CallProgress", "CallAnswered", "CallEnded"]
    assert_all_ok([bob.wait(10)])


def test_service_calls_out_through_the_outbound_proxy(sipp: SippLauncher, rig_ports: PortMap) -> None:
    proxy_port = rig_ports.proxy + 10  # 5070, moved with the rig's other ports
    callee_port = rig_ports.port_of("bob")
    proxy = sipp("uas_outbound_proxy.xml", phone=f"port{proxy_port}", local_port=proxy_port,
                 keys={"proxy_port": str(proxy_port), "callee_port": str(callee_port)})
    flags = ["--sip-listen", f"127.0.0.1:{rig_ports.service}", "--outbound-proxy", f"sip:127.0.0.1:{proxy_port};lr"]
    events = asyncio.run(_call_and_hang_up(flags, f"sip:bob@127.0.0.1:{callee_port}"))
    assert [type(e).__name__ for e in events] == ["CallAnswered", "CallEnded"]
    assert_all_ok([proxy.wait(10)])
