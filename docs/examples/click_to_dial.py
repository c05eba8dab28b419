"""Click-to-dial with the Call API: ring each first party, and once it answers, connect it to its second party.
Several pairs are dialled at once on one connection; every step is printed as it comes.

    python docs/examples/click_to_dial.py sip:alice@example.com sip:bob@example.com \\
        [sip:carol@example.com sip:dave@example.com ...] [--url ws://localhost:5059/call-api] [--token TOKEN]

Exit status: 0 when every call was connected, 1 when one was not, 2 when the service could not be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from rpc.client import DEFAULT_URL, CallApi, ClientError, CommandFailedError, RequestRefusedError


async def dial(api: CallApi, caller: str, callee: str) -> str | None:
    """Connect ``caller`` to ``callee``; the Call-ID of their call, or None when it failed."""
    try:
        handle = await api.call_start(caller, callee).start()
    except RequestRefusedError as exc:
        print(f"{caller} -> {callee}: refused ({exc.code}): {exc.message}")
        return None
    callid = None
    try:
        async for event in handle.events():
            print(f"{caller} -> {callee}: {event.data} {event.leg or ''} {event.status or ''}".rstrip())
            if event.callid is not None:
                callid = event.callid  # CALL_START, then the callee's CALL_ANSWER, name the new call
    except CommandFailedError as exc:
        print(f"{caller} -> {callee}: failed ({exc.code}): {exc.message}")
        return None
    print(f"{caller} -> {callee}: connected, Call-ID {callid}")
    return callid


async def dial_all(url: str, token: str | None, pairs: list[tuple[str, str]]) -> int:
    async with CallApi(url, token=token) as api:
        callids = await asyncio.gather(*(dial(api, caller, callee) for caller, callee in pairs))
    return 0 if all(callids) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Connect pairs of parties through the Call API.")
    parser.add_argument("parties", nargs="+", metavar="URI", help="caller, callee, [caller, callee, ...]")
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--token", default=None)
    args = parser.parse_args(argv)
    if len(args.parties) % 2:
        parser.error("give the parties in pairs: caller callee [caller callee ...]")
    pairs = list(zip(args.parties[::2], args.parties[1::2], strict=True))
    try:
        return asyncio.run(dial_all(args.url, args.token, pairs))
    except ClientError as exc:
        print(f"click_to_dial: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
