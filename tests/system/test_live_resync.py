"""The resync proof (docs/API.md, "Live call state"): SIPp phones place calls through Kamailio at a modest rate
while a client follows every event (rpc.client.Follower); its connection is killed at random moments, and each
time the table it rebuilt from the events is compared with CallList taken at the same ``seq``. Every check must
hold, and every kill must be followed by a reconnection.

``CALL_API_RESYNC_ROUNDS`` (default 3) sets how many load rounds run; ``scripts/resync-proof`` runs many."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from harness.kamailio import Kamailio, PortMap
from harness.service import ApiFactory, ServiceFactory
from harness.sipp import SippLauncher, assert_all_ok, wait_all
from rpc.client import CallApi, CallEvent, Follower, Resync

pytestmark = pytest.mark.system

ROUNDS = int(os.environ.get("CALL_API_RESYNC_ROUNDS", "3"))
CALLS, RATE, HOLD_MS = 40, 10, 700


def comparable(table: dict[str, Any]) -> dict[str, Any]:
    """What the events carry of each call (a leg's dialog, target and hop come with the snapshots only)."""
    return {callid: (c["state"], c["created"], c["answered"], c["command"],
                     {name: (leg["callid"], leg["held"], leg["direction"]) for name, leg in c["legs"].items()})
            for callid, c in table.items()}


class Proof:
    """A follower consumed by one task, paused while a CallList is taken, and checked at that CallList's seq."""

    def __init__(self, url: str, seed: int) -> None:
        self.url = url
        self.rng = random.Random(seed)
        self.follower = Follower(url, retry=0.02, max_retry=0.2)
        self.items: AsyncIterator[Resync | CallEvent] = aiter(self.follower)
        self.running = asyncio.Event()
        self.running.set()
        self.wanted: dict[int, dict[str, Any]] = {}
        self.seen: dict[int, dict[str, Any]] = {}
        self.kills = 0
        self.resyncs = 0

    async def consume(self) -> None:
        while True:
            await self.running.wait()
            item = await self.items.__anext__()
            if isinstance(item, Resync):
                self.resyncs += 1
            seq = self.follower.seq
            if seq in self.wanted:
                self.seen[seq] = comparable(self.follower.table)

    async def kill(self, stop: asyncio.Event) -> None:
        """Break the follower's connection at random moments (as a network would: no closing handshake)."""
        while not stop.is_set():
            await asyncio.sleep(self.rng.uniform(0.05, 0.4))
            api = self.follower.api
            if api is not None and api._connection is not None:
                api._connection.transport.abort()
                self.kills += 1

    async def check(self, api: CallApi) -> None:
        """Pause the consumer, take CallList (seq S), and have the follower's table compared when it reaches S."""
        self.running.clear()
        await asyncio.sleep(0.01)
        seq, calls = await api.snapshot()
        if self.follower.seq is None or self.follower.seq <= seq:
            self.wanted[seq] = comparable({call["callid"]: call for call in calls})
            if self.follower.seq == seq:  # caught up already: compare now
                self.seen[seq] = comparable(self.follower.table)
        self.running.set()


def test_the_table_rebuilt_from_events_equals_call_list_through_killed_connections(
    call_api: ServiceFactory, call_api_ws: ApiFactory, kamailio: Kamailio, sipp: SippLauncher, rig_ports: PortMap
) -> None:
    service, url = call_api_ws()
    outcome: dict[str, Any] = {}

    async def drive() -> None:
        outcome["seed"] = seed = int.from_bytes(os.urandom(4), "big")
        proof = Proof(url, seed)
        consumer = asyncio.ensure_future(proof.consume())
        stop = asyncio.Event()
        killer = asyncio.ensure_future(proof.kill(stop))
        results = []
        async with CallApi(url) as api:
            for _ in range(ROUNDS):
                bob = sipp("uas_answer.xml", phone="bob", calls=CALLS, timeout_s=60)
                alice = sipp("uac_call.xml", phone="alice", call="bob", calls=CALLS, rate=RATE, pause_ms=HOLD_MS,
                             timeout_s=60)
                while alice.running:
                    await asyncio.sleep(proof.rng.uniform(0.1, 0.5))
                    await proof.check(api)
                results += await asyncio.to_thread(wait_all, [alice, bob], 60)
            stop.set()
            await killer
            for _ in range(200):  # the last calls end; the follower catches up
                if not await api.calls():
                    break
                await asyncio.sleep(0.05)
            await proof.check(api)
            for _ in range(400):
                if set(proof.wanted) <= set(proof.seen) or consumer.done():
                    break
                await asyncio.sleep(0.05)
        consumer.cancel()
        outcome.update(wanted=proof.wanted, seen=proof.seen, kills=proof.kills, resyncs=proof.resyncs,
                       connections=proof.follower.connections, results=results)

    asyncio.run(asyncio.wait_for(drive(), 60 + 30 * ROUNDS))
    assert_all_ok(outcome["results"], kamailio)
    wanted, seen = outcome["wanted"], outcome["seen"]
    print(f"resync proof: {len(seen)} of {len(wanted)} checks at a common seq, {outcome['kills']} kills, "
          f"{outcome['connections']} connections, {outcome['resyncs']} CallList resyncs")
    context = f"seed {outcome['seed']}, {outcome['kills']} kills\n{service.log_tail()}"
    assert len(wanted) >= 3 * ROUNDS, context
    missed = sorted(set(wanted) - set(seen))
    assert len(missed) <= len(wanted) // 10, f"checks never reached: {missed} ({context})"  # a Resync jumped past
    for seq in sorted(seen):
        assert seen[seq] == wanted[seq], f"at seq {seq}: follower {seen[seq]} != CallList {wanted[seq]} ({context})"
    assert outcome["kills"] >= ROUNDS and outcome["connections"] >= outcome["kills"], context
    assert seen[max(seen)] == {}  # every call ended, in both
