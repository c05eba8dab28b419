"""The lossy relay of the loss tests (relay.py) on real loopback sockets: it rewrites the phone's address
in headers only, both ways, and its losses are a function of its seed."""

from __future__ import annotations

import socket
import time

import pytest

from .relay import Impairment, LossyRelay, address_pattern, rewrite_headers

pytestmark = pytest.mark.system

MESSAGE = (b"INVITE sip:bob@127.0.0.1:40000 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK1\r\n"
           b"Contact: <sip:bob@127.0.0.1:400001>\r\nContent-Length: 20\r\n\r\nc=IN IP4 127.0.0.1:40000")


def test_rewrite_touches_the_headers_only_and_whole_ports() -> None:
    out = rewrite_headers(MESSAGE, address_pattern(40000), b"127.0.0.1:5662")
    head, body = out.split(b"\r\n\r\n")
    assert head.count(b"127.0.0.1:5662") == 2 and b"127.0.0.1:400001" in head
    assert body == b"c=IN IP4 127.0.0.1:40000"


def udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(1.0)
    return sock


def test_relay_carries_both_ways_with_the_addresses_translated() -> None:
    with udp() as proxy, udp() as phone, udp() as spare:
        rig_port = spare.getsockname()[1]
        spare.close()
        phone_port = phone.getsockname()[1]
        with LossyRelay(rig_port=rig_port, phone_port=phone_port, proxy_port=proxy.getsockname()[1],
                        impairment=Impairment()) as relay:
            proxy.sendto(f"BYE sip:bob@127.0.0.1:{rig_port} SIP/2.0\r\n\r\n".encode(), ("127.0.0.1", rig_port))
            data, source = phone.recvfrom(65535)
            assert data == f"BYE sip:bob@127.0.0.1:{phone_port} SIP/2.0\r\n\r\n".encode()
            assert f"{source[0]}:{source[1]}" == relay.phone_side
            phone.sendto(f"SIP/2.0 200 OK\r\nContact: <sip:127.0.0.1:{phone_port}>\r\n\r\n".encode(), source)
            data, source = proxy.recvfrom(65535)
            assert data == f"SIP/2.0 200 OK\r\nContact: <sip:127.0.0.1:{rig_port}>\r\n\r\n".encode()
            assert source[1] == rig_port
            assert relay.dropped == 0 and relay.counts["to_phone"].forwarded == 1


def drops(seed: int) -> list[int]:
    """Which of 100 datagrams towards the phone a relay at 30 % loss lets through."""
    with udp() as proxy, udp() as phone, udp() as spare:
        rig_port = spare.getsockname()[1]
        spare.close()
        phone.settimeout(0.3)
        with LossyRelay(rig_port=rig_port, phone_port=phone.getsockname()[1], proxy_port=proxy.getsockname()[1],
                        impairment=Impairment(loss=0.3, seed=seed)):
            for n in range(100):
                proxy.sendto(b"%d" % n, ("127.0.0.1", rig_port))
                time.sleep(0.001)
            got = []
            try:
                while True:
                    got.append(int(phone.recv(100)))
            except TimeoutError:
                return got


def test_losses_follow_the_seed() -> None:
    first, again, other = drops(7), drops(7), drops(8)
    assert first == again and first != other
    assert 50 < len(first) < 90
