"""A tiny CRM-style script on the Call API: an agent's call with a customer is put on hold while the agent looks
something up, resumed, then handed to a colleague (a blind transfer); if the transfer fails, the call is ended.

    python docs/examples/crm.py CALL-ID sip:colleague@example.com [--url ws://localhost:5059/call-api] [--token T]

CALL-ID is the Call-ID of either leg of the call (click_to_dial.py prints it); the customer is the callee.
Exit status: 0 when the customer reached the colleague, 1 when not, 2 when the service could not be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from rpc.client import DEFAULT_URL, CallApi, ClientError, CommandFailedError, RequestRefusedError


async def look_something_up() -> None:
    await asyncio.sleep(0.1)


async def hand_over(url: str, token: str | None, callid: str, colleague: str) -> int:
    async with CallApi(url, token=token) as api:
        try:
            await api.call_hold(callid, "callee")
            print("customer on hold")
            await look_something_up()
            await api.call_unhold(callid, "callee")
            print("customer back")
        except (RequestRefusedError, CommandFailedError) as exc:
            print(f"hold/resume failed ({exc.code}): {exc.message}")
            return 1
        try:
            for event in await api.call_blind_transfer(callid, "callee", colleague):
                print(f"transfer: {event.data}")
        except (RequestRefusedError, CommandFailedError) as exc:
            print(f"transfer failed ({exc.code}): {exc.message}; ending the call")
            await api.call_end(callid)
            return 1
        print(f"customer transferred to {colleague}")
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Hold, resume, then transfer a customer through the Call API.")
    parser.add_argument("callid")
    parser.add_argument("colleague")
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--token", default=None)
    args = parser.parse_args(argv)
    try:
        return asyncio.run(hand_over(args.url, args.token, args.callid, args.colleague))
    except ClientError as exc:
        print(f"crm: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
