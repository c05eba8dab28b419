"""Following the live call state from the client (rpc/client/follow.py, and CallApi.calls/get_call/subscribe):
against the real ApiServer and Control in this process, calls made by phones on the in-memory network; the
connection killed under the follower, events lost while it was away, a subscription dropped for reading too
slowly; and the table it keeps equal to CallList every time."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from b2bua.errors import RequestRefusedError
from rpc.client import CallApi, CallEvent, Follower, Resync, apply
from rpc.client import api as client_api
from rpc.client.cli import follow, run
from rpc.errors import CALL_NOT_FOUND

from .api_fakes import run as run_async
from .live_fakes import Live, live


async def listed(t: Live) -> dict[str, Any]:
    async with CallApi(t.url) as api:
        return {call["callid"]: call for call in await api.calls()}


def comparable(table: dict[str, Any]) -> dict[str, Any]:
    """What events carry of a call (docs/API.md: a leg's dialog and target come with the snapshots only)."""
    return {callid: (c["state"], c["created"], c["answered"], c["command"],
                     {name: (leg["callid"], leg["held"], leg["direction"]) for name, leg in c["legs"].items()})
            for callid, c in table.items()}


async def until(follower_items: Any, seq: int, follower: Follower) -> None:
    while follower.seq is None or follower.seq < seq:
        await asyncio.wait_for(follower_items.__anext__(), 5)


def test_calls_reads_every_page_and_get_call_either_leg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_api, "PAGE", 2)

    async def body() -> None:
        async with live() as t, CallApi(t.url) as api:
            made = [t.call(answer=i % 2 == 0) for i in range(5)]
            calls = await api.calls()
            assert [c["callid"] for c in calls] == [a.call_id for a, _ in made]
            assert [c["callid"] for c in await api.calls("answered")] == [made[i][0].call_id for i in (0, 2, 4)]
            seq, _ = await api.snapshot()
            assert seq == t.app.live.seq
            a, b = made[1]
            assert (await api.get_call(b.call_id))["callid"] == a.call_id
            with pytest.raises(RequestRefusedError) as refused:
                await api.get_call("nobody")
            assert refused.value.code == CALL_NOT_FOUND
            with pytest.raises(ValueError):
                await api.ask("CallEnd", {"callid": "x"})
            with pytest.raises(TypeError):
                await api.request("CallList").start()

    run_async(body)


def test_the_follower_resyncs_and_keeps_the_table_across_a_killed_connection() -> None:
    async def body() -> None:
        async with live() as t:
            a, b = t.call(answer=True)
            follower = CallApi(t.url).subscribe()
            items = aiter(follower)
            first = await asyncio.wait_for(anext(items), 5)
            assert isinstance(first, Resync) and list(first.calls) == [a.call_id] and first.seq == t.app.live.seq
            c, d = t.call()
            await until(items, t.app.live.seq, follower)
            assert comparable(follower.table) == comparable(await listed(t))
            api = follower.api
            assert api is not None and api._connection is not None
            api._connection.transport.abort()  # the network breaks
            b.end(t.net.now)
            t.net.settle()
            d.respond(200, t.net.now, body=b"v=0\r\no=x 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n"
                                               b"m=audio 1 RTP/AVP 0\r\na=sendonly\r\n")
            t.net.settle()
            await until(items, t.app.live.seq, follower)
            assert follower.connections == 2
            assert comparable(follower.table) == comparable(await listed(t))
            assert list(follower.table) == [c.call_id]
            assert follower.table[c.call_id]["legs"]["callee"]["direction"] == "sendonly"

    run_async(body)


def test_events_lost_while_away_make_the_follower_start_again_from_call_list() -> None:
    async def body() -> None:
        async with live(buffer=3) as t:
            follower = Follower(t.url, retry=0.01)
            items = aiter(follower)
            assert isinstance(await asyncio.wait_for(anext(items), 5), Resync)
            api = follower.api
            assert api is not None and api._connection is not None
            api._connection.transport.abort()
            for _ in range(4):
                t.call()
            again = await asyncio.wait_for(anext(items), 5)
            assert isinstance(again, Resync) and len(again.calls) == 4 and again.seq == 4
            assert comparable(follower.table) == comparable(await listed(t))

    run_async(body)


def test_a_dropped_subscription_is_taken_up_again_since_its_last_event() -> None:
    async def body() -> None:
        async with live(subscriber_queue=0) as t:  # every event finds the queue "full"
            follower = Follower(t.url, since=0)
            items = aiter(follower)
            t.call()
            t.call()
            task = asyncio.ensure_future(anext(items))
            await asyncio.sleep(0.2)
            assert not task.done()  # each Subscribe is dropped at its first event, and taken up since 0 again
            task.cancel()

    run_async(body)


def test_a_follower_without_resync_raises_what_it_cannot_recover() -> None:
    async def body() -> None:
        async with live(buffer=2) as t:
            for _ in range(4):
                t.call()
            with pytest.raises(RequestRefusedError):
                async for _ in Follower(t.url, since=0, snapshot=False):
                    pass

    run_async(body)


def test_apply_by_value() -> None:
    leg = {"callid": "b", "held": False, "direction": None}
    table: dict[str, Any] = {}
    apply(table, {"callid": "x", "event": "ringing"})  # a call not in the table: nothing
    apply(table, {"callid": "a", "event": "created",
                  "call": {"callid": "a", "state": "setup", "answered": None, "command": None,
                           "legs": {"callee": leg}}})
    for params in ({"event": "ringing"}, {"event": "answered", "time": "T"}, {"event": "media", "leg": "callee",
                   "direction": "recvonly"}, {"event": "held", "leg": "callee"}, {"event": "media", "leg": "caller",
                   "direction": "sendonly"}, {"event": "command", "outcome": "started", "cmd_id": "c",
                   "method": "CallHold"}, {"event": "transferred"}, {"event": "ending"}):
        apply(table, {"callid": "a", **params})
    assert table["a"]["state"] == "ending" and table["a"]["answered"] == "T"
    assert table["a"]["legs"]["callee"] == {"callid": "b", "held": True, "direction": "recvonly"}
    assert table["a"]["command"] == {"cmd_id": "c", "method": "CallHold"}
    apply(table, {"callid": "a", "event": "resumed", "leg": "callee"})
    apply(table, {"callid": "a", "event": "command", "outcome": "ok", "cmd_id": "c", "method": "CallHold"})
    assert not table["a"]["legs"]["callee"]["held"] and table["a"]["command"] is None
    apply(table, {"callid": "a", "event": "replaced", "call": {"callid": "n", "legs": {}}})
    assert list(table) == ["n"]
    apply(table, {"callid": "n", "event": "ended"})
    assert table == {}


def test_the_command_line_lists_calls_and_follows(capsys: pytest.CaptureFixture[str]) -> None:
    async def body() -> None:
        async with live() as t:
            a, _ = t.call()
            assert await run(t.url, {"jsonrpc": "2.0", "method": "CallList", "params": {}, "id": "l"}, None) == 0
            listed = json.loads(capsys.readouterr().out)
            assert listed["id"] == "l" and [c["callid"] for c in listed["result"]["calls"]] == [a.call_id]
            assert await run(t.url, {"jsonrpc": "2.0", "method": "CallGet", "params": {"callid": "no"}, "id": "g"},
                             None) == 2
            assert json.loads(capsys.readouterr().out)["error"]["code"] == CALL_NOT_FOUND
            following = asyncio.ensure_future(follow(t.url, None, 0))
            await asyncio.sleep(0.2)
            a.end(t.net.now)
            t.net.settle()
            await asyncio.sleep(0.2)
            following.cancel()
            with pytest.raises(asyncio.CancelledError):
                await following
            lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
            assert [line["params"]["event"] for line in lines] == ["created", "ending", "ended"]
            assert all(line["method"] == "CallEvent" for line in lines)
            assert isinstance(CallEvent, type)

    run_async(body)
