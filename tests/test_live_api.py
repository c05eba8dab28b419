"""The live-state methods over WebSocket (the contract of docs/API.md, "Live call state"): real WebSocket clients
against the real ApiServer and Control in this process, the calls made by phones on the in-memory network.
Every method, error and edge: pages and cursors, CallGet by either leg, Subscribe since (replayed, too old, in
the future), two subscribers, a filter, Unsubscribe, and a subscriber that does not read dropped with
SubscriptionLost while one that reads keeps up."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.client import connect

from rpc.errors import CALL_NOT_FOUND, EVENTS_LOST, INVALID_PARAMS

from .api_fakes import Json, receive, request, run, send
from .live_fakes import ask, error_of, events, live


def test_call_list_pages_with_a_cursor_and_a_consistent_seq() -> None:
    async def body() -> None:
        async with live() as t, connect(t.url) as ws:
            calls = [t.call()[0].call_id for _ in range(5)]
            first = (await ask(ws, "CallList", {"limit": 2}))["result"]
            assert first["seq"] == 5 and [c["callid"] for c in first["calls"]] == calls[:2]
            assert isinstance(first["next_cursor"], str)
            second = (await ask(ws, "CallList", {"limit": 2, "cursor": first["next_cursor"]}))["result"]
            third = (await ask(ws, "CallList", {"limit": 2, "cursor": second["next_cursor"]}))["result"]
            assert [c["callid"] for c in second["calls"] + third["calls"]] == calls[2:]
            assert third["next_cursor"] is None
            everything = (await ask(ws, "CallList"))["result"]
            assert len(everything["calls"]) == 5 and everything["next_cursor"] is None
            call = everything["calls"][0]
            assert set(call) == {"callid", "state", "created", "answered", "legs", "command"}
            assert call["state"] == "setup" and call["answered"] is None and call["command"] is None
            assert call["created"] == "2026-05-28T20:26:40.000Z"
            assert set(call["legs"]) == {"caller", "callee"}
            assert set(call["legs"]["caller"]) == {"callid", "local_uri", "remote_uri", "remote_target", "dialog",
                                                   "held", "direction", "transport", "peer"}
            past = (await ask(ws, "CallList", {"cursor": "999999"}))["result"]
            assert past == {"seq": 5, "calls": [], "next_cursor": None}
            assert (await ask(ws, "CallList", {"state": "answered"}))["result"]["calls"] == []
            assert len((await ask(ws, "CallList", {"state": "setup"}))["result"]["calls"]) == 5

    run(body)


def test_call_list_refuses_bad_parameters() -> None:
    async def body() -> None:
        async with live() as t, connect(t.url) as ws:
            for params, param in [({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"limit": "5"}, "limit"),
                                  ({"limit": True}, "limit"), ({"cursor": "abc"}, "cursor"),
                                  ({"cursor": 5}, "cursor"), ({"state": "ended"}, "state"), ({"nope": 1}, "nope")]:
                error = await error_of(ws, "CallList", params)
                assert error["code"] == INVALID_PARAMS and error["data"]["param"] == param, (params, error)

    run(body)


def test_call_get_by_either_legs_call_id() -> None:
    async def body() -> None:
        async with live() as t, connect(t.url) as ws:
            a, b = t.call(answer=True)
            by_caller = (await ask(ws, "CallGet", {"callid": a.call_id}))["result"]
            by_callee = (await ask(ws, "CallGet", {"callid": b.call_id}))["result"]
            assert by_caller == by_callee and by_caller["seq"] == t.app.live.seq
            call = by_caller["call"]
            assert call["callid"] == a.call_id and call["state"] == "answered"
            assert call["legs"]["callee"]["callid"] == b.call_id and call["legs"]["callee"]["dialog"] == "confirmed"
            assert call["legs"]["caller"]["direction"] == call["legs"]["callee"]["direction"] == "sendrecv"
            assert call["answered"].endswith("Z")
            error = await error_of(ws, "CallGet", {"callid": "nobody@nowhere"})
            assert error["code"] == CALL_NOT_FOUND
            assert (await error_of(ws, "CallGet", {}))["code"] == INVALID_PARAMS

    run(body)


def test_subscribe_then_events_in_order_to_two_subscribers() -> None:
    async def body() -> None:
        async with live() as t, connect(t.url) as one, connect(t.url) as two:
            first = (await ask(one, "Subscribe"))["result"]
            second = (await ask(two, "Subscribe"))["result"]
            assert first["seq"] == second["seq"] == 0 and first["subscription"] != second["subscription"]
            a, b = t.call(answer=True)
            b.end(t.net.now)
            t.net.settle()
            got_one, got_two = await events(one, 5), await events(two, 5)
            assert [e["event"] for e in got_one] == ["created", "media", "answered", "ending", "ended"]
            assert [e["seq"] for e in got_one] == [1, 2, 3, 4, 5]
            assert {e["subscription"] for e in got_one} == {first["subscription"]}
            assert [{**e, "subscription": None} for e in got_one] == [{**e, "subscription": None} for e in got_two]
            created, media, _, _, ended = got_one
            assert created["callid"] == a.call_id and created["call"]["legs"]["callee"]["callid"] == b.call_id
            assert (media["leg"], media["direction"], media["by"]) == ("callee", "sendrecv", "party")
            assert (ended["reason"], ended["leg"]) == ("bye", "callee") and ended["duration"] >= 0
            assert created["time"].endswith("Z")

    run(body)


def test_since_replays_the_events_after_it_right_after_the_answer() -> None:
    async def body() -> None:
        async with live() as t, connect(t.url) as ws:
            t.call()
            t.call()
            snapshot = (await ask(ws, "CallList"))["result"]
            t.call()
            answer = await ask(ws, "Subscribe", {"since": snapshot["seq"]})
            assert answer["result"]["seq"] == 3
            replayed = await events(ws, 1)
            assert [e["seq"] for e in replayed] == [3]
            nothing = await ask(ws, "Subscribe", {"since": 3}, request_id=2)
            assert nothing["result"]["seq"] == 3
            t.call()
            new = await events(ws, 2)  # both subscriptions get call 4's created
            assert {e["seq"] for e in new} == {4} and len({e["subscription"] for e in new}) == 2

    run(body)


def test_since_too_old_and_since_ahead() -> None:
    async def body() -> None:
        async with live(buffer=3) as t, connect(t.url) as ws:
            for _ in range(5):
                t.call()
            old = await error_of(ws, "Subscribe", {"since": 1})
            assert old["code"] == EVENTS_LOST and old["data"] == {"oldest": 3}
            ahead = await error_of(ws, "Subscribe", {"since": 6})
            assert ahead["code"] == INVALID_PARAMS and ahead["data"] == {"param": "since", "seq": 5}
            assert (await error_of(ws, "Subscribe", {"since": -1}))["code"] == INVALID_PARAMS
            assert (await error_of(ws, "Subscribe", {"calls": "x"}))["code"] == INVALID_PARAMS
            assert (await error_of(ws, "Subscribe", {"calls": [""]}))["code"] == INVALID_PARAMS
            ok = await ask(ws, "Subscribe", {"since": 2})
            assert ok["result"]["seq"] == 5
            assert [e["seq"] for e in await events(ws, 3)] == [3, 4, 5]

    run(body)


def test_a_filtered_subscription_and_unsubscribe() -> None:
    async def body() -> None:
        async with live() as t, connect(t.url) as ws:
            a, b = t.call()
            other, _ = t.call()
            sub = (await ask(ws, "Subscribe", {"calls": [b.call_id]}))["result"]["subscription"]  # the callee's
            other.end(t.net.now)
            a.end(t.net.now)
            t.net.settle()
            got = await events(ws, 2)
            assert [(e["callid"], e["event"]) for e in got] == [(a.call_id, "ending"), (a.call_id, "ended")]
            assert got[-1]["reason"] == "cancel"
            assert (await ask(ws, "Unsubscribe", {"subscription": sub}))["result"] == {"subscription": sub}
            error = await error_of(ws, "Unsubscribe", {"subscription": sub})
            assert error["code"] == INVALID_PARAMS and error["data"] == {"param": "subscription"}
            assert t.app.live.subscriptions == 0

    run(body)


def test_a_connection_that_goes_takes_its_subscriptions_with_it() -> None:
    async def body() -> None:
        async with live() as t:
            async with connect(t.url) as ws:
                await ask(ws, "Subscribe")
                await ask(ws, "Subscribe", request_id=2)
                assert t.app.live.subscriptions == 2
            for _ in range(100):
                if t.app.live.subscriptions == 0:
                    break
                await asyncio.sleep(0.01)
            assert t.app.live.subscriptions == 0
            t.call()  # no one to deliver to

    run(body)


def test_a_subscriber_that_does_not_read_is_dropped_and_one_that_reads_keeps_up() -> None:
    async def body() -> None:
        async with live(subscriber_queue=20) as t, connect(t.url) as reader, \
                connect(t.url, max_queue=1, compression=None) as sleeper:
            await ask(sleeper, "Subscribe")
            await ask(reader, "Subscribe")
            a, _ = t.call()
            call = t.app.table.find(a.call_id)
            assert call is not None
            big = "SIP/2.0 180 " + "x" * 60_000
            got = 0
            for _ in range(400):
                t.app.live.ringing(call, big)
                await asyncio.sleep(0)
                while got < t.app.live.seq:  # the reader reads as it goes
                    message = await receive(reader)
                    assert message["method"] == "CallEvent" and message["params"]["seq"] == got + 1
                    got += 1
                if t.app.live.subscriptions == 1:
                    break
            assert t.app.live.subscriptions == 1, "the subscriber that does not read was never dropped"
            lost_at = t.app.live.seq
            t.call()
            assert (await receive(reader))["params"]["seq"] == lost_at + 1
            last: Json = {}
            while last.get("method") != "SubscriptionLost":
                last = json.loads(await asyncio.wait_for(sleeper.recv(), 5))
            assert last["params"]["seq"] < lost_at and set(last["params"]) == {"subscription", "seq"}

    run(body)


def test_queries_in_a_batch_are_answered_together_and_the_backlog_follows() -> None:
    async def body() -> None:
        async with live() as t, connect(t.url) as ws:
            t.call()
            await send(ws, [request("CallList", {}, 1), request("Subscribe", {"since": 0}, 2),
                            request("Subscribe", {}, None)])
            answers = await receive(ws)
            assert [a["id"] for a in answers] == [1, 2]
            assert answers[0]["result"]["seq"] == 1 and answers[1]["result"]["seq"] == 1
            replayed = await events(ws, 1)
            assert replayed[0]["event"] == "created"
            assert t.app.live.subscriptions == 2

    run(body)
