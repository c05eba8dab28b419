"""The ``call-api-client`` command: send one request to the Call API and follow its command to the end.

It connects, sends the request, and prints the response and every notification of the command it started,
one compact JSON object per line, until ``Ended``. Exit status: 0 when the command ended without an
``Error``, 1 when it reported one, 2 when the request was refused (a JSON-RPC error response), the
connection failed or closed before ``Ended``, or the command line was wrong. Flags may be spelled
``--method`` or, as the upstream Go client does, ``-method``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
from typing import Final

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from b2bua.errors import ClientError

DEFAULT_URL: Final = "ws://localhost:5059/call-api"

OK: Final = 0
FAILED: Final = 1
REFUSED: Final = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="call-api-client", allow_abbrev=False,
        description="Send one JSON-RPC 2.0 request to the Call API and print the response and the command's "
                    "notifications, one JSON object per line, until Ended.",
        epilog="Exit status: 0 the command ended without an Error, 1 it reported an Error, 2 the request was "
               "refused or the connection failed.")
    parser.add_argument("--method", "-method", required=True,
                        help="method to call: CallStart, CallBlindTransfer, CallAttendedTransfer, CallHold, "
                             "CallUnHold, CallEnd")
    parser.add_argument("--params", "-params", metavar="JSON", default=None,
                        help='named parameters as a JSON object, e.g. \'{"callid": "abc@host"}\'')
    parser.add_argument("--url", "-url", default=DEFAULT_URL, help=f"API endpoint (default: {DEFAULT_URL})")
    parser.add_argument("--id", "-id", dest="request_id", metavar="ID", default=None,
                        help="request id (default: 12 random hex digits)")
    parser.add_argument("--token", "-token", default=None, help="send 'Authorization: Bearer TOKEN'")
    return parser


def build_request(method: str, params: str | None, request_id: str | None) -> dict[str, object]:
    """The Request object; raises ClientError when ``params`` is not a JSON object."""
    request: dict[str, object] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        try:
            value = json.loads(params)
        except json.JSONDecodeError as exc:
            raise ClientError(f"--params is not valid JSON: {exc.msg} at column {exc.colno}") from None
        if not isinstance(value, dict):
            raise ClientError("--params must be a JSON object")
        request["params"] = value
    request["id"] = secrets.token_hex(6) if request_id is None else request_id
    return request


def _emit(document: object) -> None:
    print(json.dumps(document, separators=(",", ":")), flush=True)


async def follow(connection: ClientConnection, request: dict[str, object]) -> int:
    """Send ``request``, print what belongs to it, and return the exit status once its command Ended."""
    await connection.send(json.dumps(request, separators=(",", ":")))
    cmd_id: str | None = None
    failed = False
    async for message in connection:
        try:
            document = json.loads(message)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ClientError(f"the server sent a frame that is not JSON: {message[:80]!r}") from None
        if not isinstance(document, dict):
            continue
        if cmd_id is None:
            if "method" in document or document.get("id") != request["id"]:
                continue
            _emit(document)
            result = document.get("result")
            if not isinstance(result, dict) or not isinstance(result.get("cmd_id"), str):
                return REFUSED
            cmd_id = result["cmd_id"]
            continue
        params = document.get("params")
        if not isinstance(params, dict) or params.get("cmd_id") != cmd_id:
            continue
        _emit(document)
        method = document.get("method")
        if method == "Error":
            failed = True
        elif method == "Ended":
            return FAILED if failed else OK
    reason = "before the response" if cmd_id is None else f"before command {cmd_id} ended"
    raise ClientError(f"the connection closed {reason} (code {connection.close_code})")


async def run(url: str, request: dict[str, object], token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else None
    try:
        async with connect(url, additional_headers=headers, open_timeout=10) as connection:
            return await follow(connection, request)
    except InvalidURI as exc:
        raise ClientError(f"bad --url: {exc}") from None
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        raise ClientError(f"cannot connect to {url}: {exc}") from None
    except ConnectionClosed as exc:
        raise ClientError(f"the connection to {url} failed: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit status (argparse's usage errors too, as 2)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else REFUSED
    try:
        request = build_request(args.method, args.params, args.request_id)
        return asyncio.run(run(args.url, request, args.token))
    except ClientError as exc:
        print(f"call-api-client: {exc}", file=sys.stderr)
        return REFUSED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
