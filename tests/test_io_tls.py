"""The TLS contexts (b2bua/io/tls.py): what a listener presents and asks for, what a client verifies, and files
that cannot be used, each handshake done for real on loopback with certificates made here."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from b2bua.errors import TlsFileError
from b2bua.io.tls import client_context, server_context
from tests.certs import Authority


async def _handshake(server: ssl.SSLContext, client: ssl.SSLContext, hostname: str) -> str:
    """Connect ``client`` to a listener using ``server``; the peer certificate's subject the server saw,
    or "none"."""
    seen: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peercert")
        if not seen.done():
            seen.set_result(dict(x[0] for x in peer["subject"])["commonName"] if peer else "none")
        writer.close()

    listener = await asyncio.start_server(accepted, "127.0.0.1", 0, ssl=server)
    try:
        port = listener.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client, server_hostname=hostname)
        writer.close()
        return await asyncio.wait_for(seen, 5)
    finally:
        listener.close()
        await listener.wait_closed()


def test_a_client_trusting_the_ca_connects_by_name_and_by_address(tmp_path: Path) -> None:
    authority = Authority(tmp_path)
    issued = authority.issue("sip", ["sip.example.com", "127.0.0.1"])
    server = server_context(str(issued.cert), str(issued.key))
    client = client_context(ca=str(authority.ca))
    assert client.check_hostname and client.verify_mode == ssl.CERT_REQUIRED
    assert client.minimum_version == server.minimum_version == ssl.TLSVersion.TLSv1_2
    assert asyncio.run(_handshake(server, client, "sip.example.com")) == "none"
    assert asyncio.run(_handshake(server, client, "127.0.0.1")) == "none"


@pytest.mark.parametrize(("hostname", "expired", "other_ca", "reason"), [
    ("other.example.com", False, False, "Hostname mismatch"),
    ("sip.example.com", True, False, "certificate has expired"),
    ("sip.example.com", False, True, "unable to get local issuer certificate"),
])
def test_a_client_refuses_a_wrong_name_an_expired_or_an_untrusted_certificate(
        tmp_path: Path, hostname: str, expired: bool, other_ca: bool, reason: str) -> None:
    authority = Authority(tmp_path)
    issued = authority.issue("sip", ["sip.example.com"], expired=expired)
    trusted = Authority(tmp_path / "other", "other").ca if other_ca else authority.ca
    with pytest.raises(ssl.SSLCertVerificationError, match=reason):
        asyncio.run(_handshake(server_context(str(issued.cert), str(issued.key)), client_context(ca=str(trusted)),
                               hostname))


def test_verification_off_accepts_anything(tmp_path: Path) -> None:
    issued = Authority(tmp_path).issue("sip", ["sip.example.com"], expired=True)
    client = client_context(verify=False)
    assert not client.check_hostname and client.verify_mode == ssl.CERT_NONE
    assert asyncio.run(_handshake(server_context(str(issued.cert), str(issued.key)), client, "wrong.name")) == "none"


def test_the_system_store_is_the_default_trust(tmp_path: Path) -> None:
    issued = Authority(tmp_path).issue("sip", ["sip.example.com"])
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer certificate"):
        asyncio.run(_handshake(server_context(str(issued.cert), str(issued.key)), client_context(), "sip.example.com"))


def test_client_certificates_are_asked_for_and_checked_when_configured(tmp_path: Path) -> None:
    authority = Authority(tmp_path)
    server_cert = authority.issue("sip", ["127.0.0.1"])
    phone = authority.issue("phone", ["phone.example.com"])
    stranger = Authority(tmp_path / "stranger", "stranger").issue("stranger", ["stranger.example.com"])
    mutual = server_context(str(server_cert.cert), str(server_cert.key), ca=str(authority.ca), verify_client=True)
    assert mutual.verify_mode == ssl.CERT_REQUIRED
    with_cert = client_context(ca=str(authority.ca), cert=str(phone.cert), key=str(phone.key))
    assert asyncio.run(_handshake(mutual, with_cert, "127.0.0.1")) == "phone.example.com"
    for client in (client_context(ca=str(authority.ca)),
                   client_context(ca=str(authority.ca), cert=str(stranger.cert), key=str(stranger.key))):
        with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError, TimeoutError)):
            asyncio.run(_handshake(mutual, client, "127.0.0.1"))
    plain = server_context(str(server_cert.cert), str(server_cert.key))
    assert plain.verify_mode == ssl.CERT_NONE
    assert server_context(str(server_cert.cert), str(server_cert.key), verify_client=True).verify_mode == \
        ssl.CERT_REQUIRED


def test_files_that_cannot_be_used_name_themselves(tmp_path: Path) -> None:
    issued = Authority(tmp_path).issue("sip", ["127.0.0.1"])
    other = Authority(tmp_path / "other", "other").issue("other", ["127.0.0.1"])
    junk = tmp_path / "junk.pem"
    junk.write_text("not PEM\n")
    missing = tmp_path / "missing.pem"
    with pytest.raises(TlsFileError, match=f"no such file: {missing}"):
        server_context(str(missing), str(issued.key))
    with pytest.raises(TlsFileError, match=f"cannot use certificate {issued.cert} with key {other.key}"):
        server_context(str(issued.cert), str(other.key))
    with pytest.raises(TlsFileError, match=f"no such CA file: {missing}"):
        client_context(ca=str(missing))
    with pytest.raises(TlsFileError, match=f"cannot use CA file {junk}"):
        server_context(str(issued.cert), str(issued.key), ca=str(junk), verify_client=True)
    assert issubclass(TlsFileError, OSError)
