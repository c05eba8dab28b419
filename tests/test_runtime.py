"""Tests for b2bua.io.runtime: the SIP runtime (as build_service assembles it) on real loopback sockets
(ephemeral ports), driven by a plain UDP socket playing the phone; and ServiceCore's guard around the
application."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar, cast

import pytest

from b2bua.config import load_config
from b2bua.io.runtime import Service, ServiceCore
from b2bua.service import build_service
from b2bua.sip.address import Destination
from b2bua.sip.message import Request, Response
from b2bua.sip.parser import parse_message
from b2bua.sip.ua import UaSettings, UserAgent
from b2bua.sip.ua_events import CallAcked, CallEnded, IncomingCall, UaEvent
from b2bua.sip.uas import make_response

from .sipnet import CountingIds

T = TypeVar("T")
SDP = b"v=0\r\no=phone 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
TIMEOUT = 5.0
_branches = itertools.count(1)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 30))


class Phone(asyncio.DatagramProtocol):
    """A plain UDP socket on loopback that sends SIP text and collects what comes back."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Request | Response] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.port = transport.get_extra_info("sockname")[1]

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.queue.put_nowait(parse_message(data))

    def send(self, data: bytes, service: Destination) -> None:
        assert self.transport is not None
        self.transport.sendto(data, (service.host, service.port))

    async def receive(self, accept: Callable[[Request | Response], bool] = lambda m: True) -> Request | Response:
        """The next message ``accept`` takes (retransmissions and others are skipped)."""
        while True:
            msg = await asyncio.wait_for(self.queue.get(), TIMEOUT)
            if accept(msg):
                return msg

    async def response(self, status: int) -> Response:
        msg = await self.receive(lambda m: isinstance(m, Response) and m.status == status)
        assert isinstance(msg, Response)
        return msg

    async def request(self, method: str) -> Request:
        msg = await self.receive(lambda m: isinstance(m, Request) and m.method == method)
        assert isinstance(msg, Request)
        return msg

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_phone() -> Phone:
    loop = asyncio.get_running_loop()
    _, phone = await loop.create_datagram_endpoint(Phone, local_addr=("127.0.0.1", 0))
    return phone


def request(phone: Phone, method: str, *, call_id: str = "rt-1@127.0.0.1", cseq: int = 1, to_tag: str | None = None,
            branch: str | None = None, extra: Sequence[str] = (), body: bytes = b"") -> bytes:
    lines = [f"{method} sip:call-api@127.0.0.1 SIP/2.0",
             f"Via: SIP/2.0/UDP 127.0.0.1:{phone.port};branch={branch or f'z9hG4bK-rt{next(_branches)}'};rport",
             "Max-Forwards: 70", "From: <sip:phone@127.0.0.1>;tag=phone-1",
             "To: <sip:call-api@127.0.0.1>" + (f";tag={to_tag}" if to_tag else ""), f"Call-ID: {call_id}",
             f"CSeq: {cseq} {method}", f"Contact: <sip:phone@127.0.0.1:{phone.port}>", *extra]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Refusing:
    """An application that refuses every call with 480."""

    def handle(self, event: UaEvent, now: float) -> None:
        if isinstance(event, IncomingCall):
            event.session.respond(480, now, reason="No Call Logic")


async def start(app: Any = None) -> tuple[Service, Destination]:
    """The runtime build_service makes, its application replaced by ``app`` when given."""
    service = build_service(load_config(["--sip-listen", "127.0.0.1:0", "--ws-port", "0"])).runtime
    if app is not None:
        service.app = app
    await asyncio.wait_for(service.start(), TIMEOUT)
    (udp,) = [d for d in service.shell.bound if d.transport == "udp"]
    assert udp.port != 0 and service.ua.settings.port == udp.port
    return service, udp


class Answering:
    """An application that answers every call with 200 and SDP, and records every event."""

    def __init__(self) -> None:
        self.events: list[UaEvent] = []

    def handle(self, event: UaEvent, now: float) -> None:
        self.events.append(event)
        if isinstance(event, IncomingCall):
            event.session.respond(200, now, body=SDP)

    async def wait_for(self, kind: type[UaEvent]) -> UaEvent:
        async def poll() -> UaEvent:
            while True:
                for event in self.events:
                    if isinstance(event, kind):
                        return event
                await asyncio.sleep(0.01)

        return await asyncio.wait_for(poll(), TIMEOUT)


def ack_for(phone: Phone, ok: Response) -> bytes:
    return request(phone, "ACK", to_tag=ok.to_tag, cseq=ok.cseq.number if ok.cseq else 1)


# -- the service on loopback ----------------------------------------------------------------------------


def test_service_answers_options_over_udp() -> None:
    async def scenario() -> None:
        service, address = await start()
        phone = await open_phone()
        try:
            phone.send(request(phone, "OPTIONS"), address)
            ok = await phone.response(200)
            assert ok.to_tag and ok.headers.get("Allow") and ok.headers.get("Accept")
            assert ok.top_via is not None and ok.top_via.rport == phone.port and ok.top_via.received == "127.0.0.1"
            assert len(service.ua.layer) == 0  # answered statelessly
        finally:
            phone.close()
            await service.stop()
        assert not service.shell.running

    run(scenario())


def test_invite_gets_100_then_the_applications_answer() -> None:
    async def scenario() -> None:
        service, address = await start(Refusing())
        phone = await open_phone()
        try:
            phone.send(request(phone, "INVITE", branch="z9hG4bK-refused", body=SDP), address)
            trying = await phone.receive()
            assert isinstance(trying, Response) and trying.status == 100 and trying.to_tag is None
            refused = await phone.receive(lambda m: isinstance(m, Response) and m.status != 100)
            assert isinstance(refused, Response) and refused.status == 480 and refused.reason == "No Call Logic"
            assert refused.to_tag
            phone.send(request(phone, "ACK", branch="z9hG4bK-refused", to_tag=refused.to_tag), address)
            await asyncio.sleep(0.05)
            assert service.ua.sessions == []
        finally:
            phone.close()
            await service.stop()

    run(scenario())


def test_stop_ends_a_confirmed_call_with_bye() -> None:
    async def scenario() -> None:
        app = Answering()
        service, address = await start(app)
        phone = await open_phone()
        try:
            phone.send(request(phone, "INVITE", body=SDP), address)
            ok = await phone.response(200)
            assert ok.body == SDP and ok.to_tag
            phone.send(ack_for(phone, ok), address)
            await app.wait_for(CallAcked)
            stopping = asyncio.create_task(service.stop())
            bye = await phone.request("BYE")
            assert bye.to_tag == "phone-1" and bye.from_tag == ok.to_tag and bye.call_id == "rt-1@127.0.0.1"
            phone.send(make_response(bye, 200).serialize(), address)
            await asyncio.wait_for(stopping, TIMEOUT)
            assert service.ua.sessions == [] and not service.shell.running
            ended = await app.wait_for(CallEnded)
            assert isinstance(ended, CallEnded) and not ended.by_remote
        finally:
            phone.close()
            await service.stop()

    run(scenario())


def test_stop_before_the_ack_sends_the_bye_after_it() -> None:
    """RFC 3261 section 15: no BYE from the callee before the ACK for its 2xx."""
    async def scenario() -> None:
        app = Answering()
        service, address = await start(app)
        phone = await open_phone()
        try:
            phone.send(request(phone, "INVITE", body=SDP), address)
            ok = await phone.response(200)
            stopping = asyncio.create_task(service.stop())
            with pytest.raises(TimeoutError):  # the 2xx is retransmitted; no BYE comes while the ACK is missing
                await asyncio.wait_for(phone.request("BYE"), 0.3)
            phone.send(ack_for(phone, ok), address)
            bye = await phone.request("BYE")
            phone.send(make_response(bye, 200).serialize(), address)
            await asyncio.wait_for(stopping, TIMEOUT)
            assert service.ua.sessions == []
        finally:
            phone.close()
            await service.stop()

    run(scenario())


def test_stop_refuses_a_ringing_call_with_503() -> None:
    class Ringing:
        def handle(self, event: UaEvent, now: float) -> None:
            if isinstance(event, IncomingCall):
                event.session.respond(180, now)

    async def scenario() -> None:
        service, address = await start(Ringing())
        phone = await open_phone()
        try:
            phone.send(request(phone, "INVITE", body=SDP), address)
            await phone.response(180)
            await asyncio.wait_for(service.stop(), TIMEOUT)
            refused = await phone.response(503)
            assert refused.cseq is not None and refused.cseq.method == "INVITE"
        finally:
            phone.close()

    run(scenario())


def test_service_survives_an_application_that_raises(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def handle(self, event: UaEvent, now: float) -> None:
            raise RuntimeError("application bug")

    async def scenario() -> None:
        service, address = await start(Broken())
        phone = await open_phone()
        try:
            phone.send(request(phone, "INVITE", body=SDP), address)
            await phone.response(100)
            await asyncio.sleep(0.05)
            phone.send(request(phone, "OPTIONS", call_id="rt-2@127.0.0.1"), address)
            await phone.response(200)  # still serving
            service.app = Refusing()
            phone.send(request(phone, "INVITE", call_id="rt-3@127.0.0.1", body=SDP), address)
            await phone.response(480)
        finally:
            phone.close()
            await asyncio.wait_for(service.stop(grace=0.1), TIMEOUT)

    with caplog.at_level(logging.ERROR, logger="call_api"):
        run(scenario())
    assert any("the application failed on IncomingCall" in r.getMessage() for r in caplog.records)


# -- ServiceCore without sockets ---------------------------------------------------------------------------


PEER = Destination("udp", "127.0.0.2", 5062)


def invite_bytes(call_id: str) -> bytes:
    return (f"INVITE sip:call-api@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5062;branch=z9hG4bK-{call_id}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.2>;tag=a\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: {call_id}\r\n"
            f"CSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.2:5062>\r\nContent-Length: 0\r\n\r\n").encode()


def test_service_core_logs_a_failing_application_and_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []

    class FailsOnFirst:
        def handle(self, event: UaEvent, now: float) -> None:
            seen.append(type(event).__name__)
            if len(seen) == 1:
                raise ValueError("first event")
            if isinstance(event, IncomingCall):
                event.session.respond(486, now)

    core = ServiceCore(UserAgent(CountingIds("svc"), UaSettings()), FailsOnFirst())
    with caplog.at_level(logging.ERROR, logger="call_api"):
        core.receive(invite_bytes("one"), PEER, 0.0)
        core.receive(invite_bytes("two"), PEER, 0.1)
    assert seen == ["IncomingCall", "IncomingCall"]
    assert [r.getMessage() for r in caplog.records] == ["the application failed on IncomingCall"]
    statuses = [parse_message(d).status for d, _ in core.take_datagrams()]  # type: ignore[union-attr]
    assert statuses == [100, 100, 486]
    assert core.get_timer() is not None
    core.handle_timer(100.0)
    core.transport_error(PEER, 100.0)
    core.run(100.0)


def test_service_core_stops_an_application_that_keeps_producing_events(caplog: pytest.LogCaptureFixture) -> None:
    ua = UserAgent(CountingIds("svc"), UaSettings())

    class Echo:
        def handle(self, event: UaEvent, now: float) -> None:
            ua.emit(event)

    core = ServiceCore(ua, Echo())
    with caplog.at_level(logging.ERROR, logger="call_api"):
        core.receive(invite_bytes("loop"), PEER, 0.0)
    assert any("keeps producing events" in r.getMessage() for r in caplog.records)
    ua.take_events()


# -- overload control (b2bua.sip.overload) ---------------------------------------------------------------


def test_while_overloaded_new_calls_get_503_and_calls_in_progress_go_on() -> None:
    async def scenario() -> None:
        app = Answering()
        service, address = await start(app)
        phone = await open_phone()
        try:
            assert service.overload is not None and service.shell.overload is not None, "on by default"
            phone.send(request(phone, "INVITE", call_id="admitted@127.0.0.1", body=SDP), address)
            ok = await phone.response(200)
            phone.send(request(phone, "ACK", call_id="admitted@127.0.0.1", to_tag=ok.to_tag), address)
            await app.wait_for(CallAcked)
            service.admit(0.0)
            phone.send(request(phone, "INVITE", call_id="shed@127.0.0.1", body=SDP), address)
            refused = await phone.response(503)
            assert refused.headers.get("Retry-After") == "2" and refused.call_id == "shed@127.0.0.1"
            phone.send(request(phone, "BYE", call_id="admitted@127.0.0.1", cseq=2, to_tag=ok.to_tag), address)
            bye_ok = await phone.response(200)
            assert bye_ok.cseq is not None and bye_ok.cseq.method == "BYE"
            service.admit(1.0)
            phone.send(request(phone, "INVITE", call_id="later@127.0.0.1", body=SDP), address)
            assert (await phone.response(200)).call_id == "later@127.0.0.1"
            assert service.ua.layer.shed == 1
        finally:
            phone.close()
            await service.stop()

    run(scenario())
