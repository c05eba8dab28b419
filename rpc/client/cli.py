"""The ``call-api-client`` command: send one request to the Call API and follow its command to the end.

It connects, sends the request, and prints the response and every notification of the command it started,
one compact JSON object per line, until ``Ended``; a query (``CallList`` ...) prints its response alone.
``--follow`` prints every ``CallEvent`` of every call, one per line, until Ctrl-C, reconnecting by itself
(``--since N`` starts after event N). Exit status: 0 when the command ended without an
``Error``, 1 when it reported one, 2 when the request was refused (a JSON-RPC error response), the
connection failed or closed before ``Ended``, or the command line was wrong. Flags may be spelled
``--method`` or, as the upstream Go client does, ``-method``. It is a thin user of :class:`rpc.client.CallApi`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Final

from websockets.exceptions import InvalidURI
from websockets.uri import parse_uri

from b2bua.errors import ClientError, RequestRefusedError

from .api import DEFAULT_URL, QUERIES, CallApi, new_request_id
from .follow import Follower
from .messages import CallEvent, Failed

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
    parser.add_argument("--method", "-method",
                        help="method to call: CallStart, CallBlindTransfer, CallAttendedTransfer, CallHold, "
                             "CallUnHold, CallEnd, or a query: CallList, CallGet")
    parser.add_argument("--follow", "-follow", action="store_true",
                        help="print every call event, one per line, until Ctrl-C (instead of --method)")
    parser.add_argument("--since", "-since", type=int, metavar="N", default=None,
                        help="with --follow: start after event N (resync after a break)")
    parser.add_argument("--params", "-params", metavar="JSON", default=None,
                        help='named parameters as a JSON object, e.g. \'{"callid": "abc@host"}\'')
    parser.add_argument("--url", "-url", default=DEFAULT_URL, help=f"API endpoint (default: {DEFAULT_URL})")
    parser.add_argument("--id", "-id", dest="request_id", metavar="ID", default=None,
                        help="request id (default: 12 random hex digits)")
    parser.add_argument("--token", "-token", default=None, help="send 'Authorization: Bearer TOKEN'")
    parser.add_argument("--ca-file", "-ca-file", metavar="FILE", default=None,
                        help="for a wss:// URL: PEM file of the CA that signed the service's certificate "
                             "(default: the system's trusted CAs)")
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
    request["id"] = new_request_id() if request_id is None else request_id
    return request


def _emit(document: object) -> None:
    print(json.dumps(document, separators=(",", ":")), flush=True)


async def run(url: str, request: dict[str, object], token: str | None, ca_file: str | None = None) -> int:
    """Send ``request``, print its response and its command's notifications, and return the exit status."""
    try:
        parse_uri(url)
    except InvalidURI as exc:
        raise ClientError(f"bad --url: {exc}") from None
    method, params, request_id = request["method"], request.get("params"), request["id"]
    assert isinstance(method, str) and isinstance(request_id, str)
    assert params is None or isinstance(params, dict)
    async with CallApi(url, token=token, ca_file=ca_file) as api:
        if method in QUERIES:
            try:
                result = await api.ask(method, params, request_id=request_id)
            except RequestRefusedError as exc:
                _emit(exc.response)
                return REFUSED
            _emit({"jsonrpc": "2.0", "id": request_id, "result": result})
            return OK
        try:
            handle = await api.request(method, params, request_id=request_id).start()
        except RequestRefusedError as exc:
            _emit(exc.response)
            return REFUSED
        _emit(handle.response)
        failed = False
        async for note in handle.notifications():
            _emit(note.raw)
            failed = failed or isinstance(note, Failed)
        return FAILED if failed else OK


async def follow(url: str, token: str | None, since: int | None) -> int:
    """Print every ``CallEvent`` as a notification line until cancelled; events lost during a break (the service
    no longer has them) end it with the error response printed, status 2."""
    try:
        parse_uri(url)
    except InvalidURI as exc:
        raise ClientError(f"bad --url: {exc}") from None
    try:
        async for item in Follower(url, token=token, since=since, snapshot=False):
            if isinstance(item, CallEvent):
                _emit({"jsonrpc": "2.0", "method": "CallEvent", "params": item.params})
    except RequestRefusedError as exc:
        _emit(exc.response)
    return REFUSED


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit status (argparse's usage errors too, as 2)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.follow == (args.method is not None):
            parser.error("give either --method or --follow")
        if args.since is not None and not args.follow:
            parser.error("--since goes with --follow")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else REFUSED
    try:
        if args.follow:
            return asyncio.run(follow(args.url, args.token, args.since))
        request = build_request(args.method, args.params, args.request_id)
        return asyncio.run(run(args.url, request, args.token, args.ca_file))
    except ClientError as exc:
        print(f"call-api-client: {exc}", file=sys.stderr)
        return REFUSED
    except KeyboardInterrupt:
        return 130
