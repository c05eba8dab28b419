"""benchmarks/tls_costs.py: its client makes connections with one OPTIONS each, over TCP and over TLS with a full
handshake each time, and counts the failures; its rows and options (speed is not asserted)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from benchmarks import tls_costs
from benchmarks.tls_costs import Handshakes, Ports, connect_for, handshake_row, parse
from tests.certs import Authority

OK = b"SIP/2.0 200 OK\r\nContent-Length: 4\r\n\r\nbody"


async def serve(context: ssl.SSLContext | None, answer: bytes) -> tuple[asyncio.Server, list[bool]]:
    """A server answering each connection's first request with ``answer``; the list says, per connection,
    whether its TLS session was resumed."""
    resumed: list[bool] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        obj = writer.get_extra_info("ssl_object")
        resumed.append(bool(obj and obj.session_reused))
        writer.write(answer)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context), resumed


@pytest.mark.parametrize("tls", [False, True])
def test_connections_each_make_one_transaction_without_resumption(tmp_path: Path, tls: bool) -> None:
    authority = Authority(tmp_path)
    issued = authority.issue("server", ["127.0.0.1"])
    server_context = client_context = None
    if tls:
        server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_context.load_cert_chain(str(issued.cert), str(issued.key))
        client_context = ssl.create_default_context(cafile=str(authority.ca))

    async def scenario() -> tuple[int, int, list[bool]]:
        server, resumed = await serve(server_context, OK)
        async with server:
            port = server.sockets[0].getsockname()[1]
            made, failed, elapsed = await connect_for("tls" if tls else "tcp", port, client_context, 0.3, 2, 0)
            assert elapsed >= 0.3
            return made, failed, resumed

    made, failed, resumed = asyncio.run(scenario())
    assert made > 2 and failed == 0
    assert len(resumed) >= made and not any(resumed)


def test_a_refusal_or_no_server_counts_as_failed(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, int]:
        server, _ = await serve(None, b"SIP/2.0 503 Busy\r\nContent-Length: 0\r\n\r\n")
        async with server:
            port = server.sockets[0].getsockname()[1]
            return (await connect_for("tcp", port, None, 0.1, 1, 0))[:2]

    made, failed = asyncio.run(scenario())
    assert made == 0 and failed > 0


def test_rows_and_quick_options() -> None:
    row = handshake_row(Handshakes("tls", 2.0, 1000, 1, 0.5))
    assert row == "| TLS (full handshake) | 2.0 | 1000 | 1 | 500 | 0.50 | 0.50 |"
    assert handshake_row(Handshakes("tcp", 2.0, 0, 3, 0.0)).endswith("| 0 | 3 | 0 | 0.00 | - |")
    args = parse(["--quick"])
    assert (args.handshake_seconds, args.rate_list, args.seconds) == (2.0, [20], 3.0)
    assert (args.uac_port, args.uas_port) == (Ports(args.base_port).uac, Ports(args.base_port).uas)
    assert tls_costs.options(7, "tls", 5061).startswith(b"OPTIONS sip:127.0.0.1:5061 SIP/2.0\r\nVia: SIP/2.0/TLS ")
