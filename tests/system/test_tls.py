"""SIP over TLS with third-party peers (issue 16): Kamailio with its TLS module as the outbound proxy, baresip
phones on TLS, the service between them, and the API over wss://; certificates made here, in a temporary folder.

    baresip alice --TLS--> Kamailio --TLS--> service --TLS--> Kamailio --TLS--> baresip bob
    test (CallApi over wss://, ca_file) ----------> service API

Every port derives from the rig's PortMap (``CALL_API_RIG_PORT_OFFSET`` moves them): the proxy's TLS port, the
service's, and two baresip phones (each takes its SIP port and the next one, for TLS).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from b2bua.call.b2bua import B2bua
from b2bua.call.call import Call, CallState
from b2bua.config import load_config
from b2bua.io.loop import loop_name, new_event_loop
from b2bua.io.shell import SipShell
from b2bua.io.tls import TlsSettings
from b2bua.service import CallApi as Service
from b2bua.service import build_service
from b2bua.sip.address import Destination
from harness.kamailio import Kamailio, KamailioLauncher, PortMap
from rpc.client import CallApi, CommandFailedError
from tests.certs import Authority, Issued

from .baresip import Baresip

pytestmark = pytest.mark.system


@dataclass(frozen=True)
class TlsRig:
    """The ports and certificates of one test."""

    folder: Path
    authority: Authority
    proxy_cert: Issued
    service_cert: Issued
    proxy_tls: int
    service_tls: int
    alice_sip: int
    bob_sip: int
    alice_ctrl: int
    bob_ctrl: int
    carol_sip: int
    carol_ctrl: int

    @classmethod
    def make(cls, folder: Path, ports: PortMap) -> TlsRig:
        authority = Authority(folder / "pki")
        base = ports.proxy + 30
        return cls(folder, authority, authority.issue("proxy", ["127.0.0.1", "localhost"]),
                   authority.issue("service", ["127.0.0.1", "localhost"]),
                   proxy_tls=base, service_tls=base + 1, alice_sip=base + 2, bob_sip=base + 4, alice_ctrl=base + 6,
                   bob_ctrl=base + 7, carol_sip=base + 8, carol_ctrl=base + 10)

    def kamailio(self, factory: KamailioLauncher) -> Kamailio:
        config = self.folder / "kamailio-tls.cfg"
        ca = self.authority.ca
        config.write_text(
            "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n"
            f"certificate = {self.proxy_cert.cert}\nprivate_key = {self.proxy_cert.key}\nca_list = {ca}\n\n"
            "[client:default]\nmethod = TLSv1.2+\nverify_certificate = yes\nrequire_certificate = yes\n"
            f"ca_list = {ca}\n")
        return factory(defines=["WITH_TLS", f"PROXY_TLS_PORT={self.proxy_tls}", f"SERVICE_TLS_PORT={self.service_tls}",
                                f'TLS_CONFIG="{config}"', 'SERVICE_TRANSPORT="tls"', 'PHONE_TRANSPORT="tls"'])

    @property
    def outbound(self) -> str:
        return f"sip:127.0.0.1:{self.proxy_tls};transport=tls;lr"

    def phone(self, user: str) -> Baresip:
        sip, ctrl = {"alice": (self.alice_sip, self.alice_ctrl), "bob": (self.bob_sip, self.bob_ctrl),
                     "carol": (self.carol_sip, self.carol_ctrl)}[user]
        issued = self.authority.issue(user, ["127.0.0.1", "localhost"])
        # The account's user is the one Kamailio's route[PHONE_PORT] maps to its TLS port: baresip answers 404
        # to a Request-URI user none of its accounts has.
        return Baresip(self.folder / user, f"port{sip + 1}", sip, ctrl, f"sip:127.0.0.1:{self.proxy_tls};transport=tls",
                       certificate=issued.cert, key=issued.key, ca=self.authority.ca)

    def flags(self, ports: PortMap) -> list[str]:
        return ["--sip-listen", f"127.0.0.1:{ports.service}", "--sip-tls-listen", f"127.0.0.1:{self.service_tls}",
                "--sip-tls-cert", str(self.service_cert.cert), "--sip-tls-key", str(self.service_cert.key),
                "--sip-tls-ca", str(self.authority.ca), "--outbound-proxy", self.outbound,
                "--ws-host", "127.0.0.1", "--ws-port", "0", "--ws-tls-cert", str(self.service_cert.cert),
                "--ws-tls-key", str(self.service_cert.key), "--ws-token", "s3cret"]


@pytest.fixture
def rig(tmp_path: Path, rig_ports: PortMap) -> TlsRig:
    return TlsRig.make(tmp_path, rig_ports)


async def with_service(rig: TlsRig, ports: PortMap, body: Callable[[Service, B2bua], Awaitable[None]],
                       *flags: str) -> None:
    built = build_service(load_config([*rig.flags(ports), *flags]))
    await built.start()
    try:
        await asyncio.wait_for(body(built, built.b2bua), 60)
    finally:
        await built.stop()


async def answered(b2bua: B2bua, timeout: float = 15.0) -> Call:
    for _ in range(int(timeout / 0.02)):
        for call in b2bua.table:
            if call.state is CallState.ANSWERED and all(leg.session.confirmed for leg in call.legs.values()):
                return call
        await asyncio.sleep(0.02)
    raise AssertionError("no call was answered")


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_phone_calls_a_phone_over_tls_through_kamailio_and_the_service_and_is_held_over_wss(
        rig: TlsRig, kamailio_factory: KamailioLauncher, rig_ports: PortMap, caplog: pytest.LogCaptureFixture,
        loop: str) -> None:
    proxy = rig.kamailio(kamailio_factory)
    seen: dict[str, object] = {}

    async def body(service: Service, b2bua: B2bua) -> None:
        alice = await rig.phone("alice").start()
        bob = await rig.phone("bob").start()
        try:
            reply = await alice.command("dial", f"sip:{bob.user}@127.0.0.1")
            assert reply.get("ok"), reply
            await alice.event("CALL_ESTABLISHED")
            await bob.event("CALL_ESTABLISHED")
            call = await answered(b2bua)
            assert call.caller is not None and call.callee is not None
            seen["transports"] = {leg: session.dialog.remote_target for leg, session in
                                  (("caller", call.caller.session), ("callee", call.callee.session))
                                  if session.dialog is not None}
            url = service.api.urls[0]
            assert url.startswith("wss://")
            async with CallApi(url, token="s3cret", ca_file=str(rig.authority.ca)) as api:
                held = await api.call_hold(call.id, "callee")
                seen["hold"] = [(e.data, e.status) for e in held]
                resumed = await api.call_unhold(call.id, "callee")
                seen["unhold"] = [(e.data, e.status) for e in resumed]
            await alice.command("hangup")
            await alice.event("CALL_CLOSED")
            await bob.event("CALL_CLOSED")
            for _ in range(250):
                if len(b2bua.table) == 0:
                    break
                await asyncio.sleep(0.02)
            assert len(b2bua.table) == 0
        finally:
            await alice.stop()
            await bob.stop()

    with caplog.at_level(logging.INFO, logger="call_api"), \
            asyncio.Runner(loop_factory=lambda: new_event_loop(loop)) as runner:
        assert loop_name(runner.get_loop()) == loop
        runner.run(with_service(rig, rig_ports, body))
    assert seen["hold"] == [("CALL_HOLD", "SIP/2.0 200 OK")], (seen, proxy.log_tail())
    assert seen["unhold"] == [("CALL_UNHOLD", "SIP/2.0 200 OK")]
    targets = seen["transports"]
    assert isinstance(targets, dict) and all("transport=tls" in target.lower() for target in targets.values()), targets
    assert not [r for r in caplog.records if "refused" in r.getMessage() or r.levelno >= logging.ERROR]


def test_callstart_over_tls_rings_the_caller_then_connects_the_callee(
        rig: TlsRig, kamailio_factory: KamailioLauncher, rig_ports: PortMap) -> None:
    """CallStart (click-to-dial by REFER): the service calls alice over TLS, refers her to bob; her INVITE to bob
    crosses the service again, every hop TLS."""
    rig.kamailio(kamailio_factory)
    seen: dict[str, object] = {}

    async def body(service: Service, b2bua: B2bua) -> None:
        alice = await rig.phone("alice").start()
        bob = await rig.phone("bob").start()
        try:
            async with CallApi(service.api.urls[0], token="s3cret", ca_file=str(rig.authority.ca)) as api:
                events = await api.call_start(f"sip:{alice.user}@127.0.0.1", f"sip:{bob.user}@127.0.0.1")
                seen["events"] = [(e.data, e.leg) for e in events]
            await bob.event("CALL_ESTABLISHED")
            await alice.command("hangup")
            await bob.event("CALL_CLOSED")
        finally:
            await alice.stop()
            await bob.stop()

    asyncio.run(with_service(rig, rig_ports, body))
    events = seen["events"]
    assert isinstance(events, list) and events[0] == ("CALL_ANSWER", "caller") and events[-1] == ("CALL_ANSWER",
                                                                                                   "callee"), events


@pytest.mark.parametrize(("names", "reason"), [
    (["wrong.example.com"], "IP address mismatch, certificate is not valid for '127.0.0.1'"),
    (None, "unable to get local issuer certificate"),
])
def test_a_proxy_with_a_wrong_name_or_an_untrusted_ca_fails_the_call_with_a_log_line(
        rig: TlsRig, caplog: pytest.LogCaptureFixture, names: list[str] | None, reason: str) -> None:
    """The outbound proxy is a TLS listener (the shell itself, no process) whose certificate names another host,
    or comes from a CA the service does not trust: CallStart reports an Error, the log says why, and the
    service goes on serving."""
    if names is None:
        stranger = Authority(rig.folder / "stranger", "stranger")
        issued = stranger.issue("proxy-stranger", ["127.0.0.1"])
    else:
        issued = rig.authority.issue("proxy-wrong", names)

    async def scenario() -> None:
        proxy = SipShell(RecordingCore(), [("tls", "127.0.0.1", 0)],
                         tls=TlsSettings(cert=str(issued.cert), key=str(issued.key)))
        await proxy.start()
        try:
            port = proxy.bound[0].port
            flags = ["--sip-listen", "127.0.0.1:0", "--sip-tls-listen", "127.0.0.1:0",
                     "--sip-tls-cert", str(rig.service_cert.cert), "--sip-tls-key", str(rig.service_cert.key),
                     "--sip-tls-ca", str(rig.authority.ca), "--ws-host", "127.0.0.1", "--ws-port", "0",
                     "--outbound-proxy", f"sip:127.0.0.1:{port};transport=tls;lr"]
            built = build_service(load_config(flags))
            await built.start()
            try:
                async with CallApi(built.api.urls[0]) as api:
                    for _ in range(2):
                        with pytest.raises(CommandFailedError) as failed:
                            await asyncio.wait_for(api.call_start("sip:alice@example.com", "sip:bob@example.com"), 20)
                        assert failed.value.code >= 400
                assert len(built.b2bua.table) == 0
            finally:
                await built.stop()
        finally:
            await proxy.stop()

    with caplog.at_level(logging.INFO, logger="call_api"):
        asyncio.run(scenario())
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("TLS to tls:127.0.0.1:")]
    assert lines and all("(as 127.0.0.1) refused: certificate not trusted: " in line and reason in line
                         for line in lines), lines


class RecordingCore:
    """A SIP core that takes what it is given and answers nothing (the proxy never gets a request here)."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    def receive(self, data: bytes, source: Destination, now: float) -> None:
        self.received.append(data)

    def handle_timer(self, now: float) -> None:
        pass

    def get_timer(self) -> float | None:
        return None

    def take_datagrams(self) -> list[tuple[bytes, Destination]]:
        return []

    def transport_error(self, destination: Destination, now: float) -> None:
        pass


def test_blind_transfer_over_tls(rig: TlsRig, kamailio_factory: KamailioLauncher, rig_ports: PortMap) -> None:
    """alice calls bob over TLS; CallBlindTransfer REFERs bob to carol: bob's INVITE to carol crosses the service,
    every hop TLS, and alice's call with bob ends."""
    rig.kamailio(kamailio_factory)
    seen: dict[str, object] = {}

    async def body(service: Service, b2bua: B2bua) -> None:
        alice = await rig.phone("alice").start()
        bob = await rig.phone("bob").start()
        carol = await rig.phone("carol").start()
        try:
            await alice.command("dial", f"sip:{bob.user}@127.0.0.1")
            await bob.event("CALL_ESTABLISHED")
            call = await answered(b2bua)
            async with CallApi(service.api.urls[0], token="s3cret", ca_file=str(rig.authority.ca)) as api:
                events = await api.call_blind_transfer(call.id, "callee", f"sip:{carol.user}@127.0.0.1")
                seen["events"] = [e.data for e in events]
            await carol.event("CALL_ESTABLISHED")
            await alice.event("CALL_CLOSED")
            await bob.command("hangup")
            await carol.event("CALL_CLOSED")
        finally:
            for phone in (alice, bob, carol):
                await phone.stop()

    asyncio.run(with_service(rig, rig_ports, body))
    events = seen["events"]
    assert isinstance(events, list) and events[0] == "TRANSFER_ACCEPT", events
