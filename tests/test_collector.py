"""The garbage-collection policy (b2bua/io/collector.py), and the property that makes freezing safe: the call
path leaves no cyclic garbage behind, whatever the flow."""

from __future__ import annotations

import asyncio
import gc
import inspect
import sys
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from b2bua.io.collector import Collector

from . import test_b2bua, test_control, test_refer_flows
from .sipnet import Network


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    """Each test leaves the interpreter's collector as it found it."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    gc.enable()


def run_for(collector: Collector, seconds: float) -> None:
    async def scenario() -> None:
        collector.start()
        await asyncio.sleep(seconds)
        collector.stop()
        collector.stop()  # twice is harmless

    asyncio.run(scenario())


def test_young_collections_come_on_a_clock_and_every_other_one_takes_gen1() -> None:
    young, middle = gc.get_stats()[0]["collections"], gc.get_stats()[1]["collections"]
    collector = Collector(pace=0.01, gen1_every=2)
    run_for(collector, 0.3)
    young = gc.get_stats()[0]["collections"] - young
    middle = gc.get_stats()[1]["collections"] - middle
    assert middle >= 3 and young >= middle
    assert collector.pauses[1].count >= 3 and collector.pauses[1].longest > 0
    # The same pauses, as the call_api_gc_pause_seconds histogram of GET /metrics reads them.
    buckets = collector.pause_buckets
    assert [b.count for b in buckets] == [p.count for p in collector.pauses]
    assert buckets[1].sum == pytest.approx(collector.pauses[1].total)


def test_survivors_of_gen1_collections_are_frozen() -> None:
    kept: list[list[int]] = []

    async def scenario() -> tuple[int, int]:
        collector = Collector(pace=0.01)
        collector.start()
        before = gc.get_freeze_count()
        kept.extend([i] for i in range(5000))  # long-lived: they outlive two young collections
        await asyncio.sleep(0.2)
        after = gc.get_freeze_count()
        collector.stop()
        return before, after

    before, after = asyncio.run(scenario())
    assert after >= before + 4900  # (other objects come and go meanwhile)


def test_without_freezing_nothing_is_frozen() -> None:
    gc.unfreeze()
    collector = Collector(pace=0.01, freeze=False)
    run_for(collector, 0.1)
    assert gc.get_freeze_count() == 0


class Knot:
    """A reference cycle."""

    def __init__(self) -> None:
        self.me = self


def test_an_audit_comes_once_the_frozen_heap_has_grown_and_reclaims_frozen_cycles() -> None:
    knots: list[Knot] = []

    async def scenario() -> tuple[int, int]:
        collector = Collector(pace=0.01, audit_growth=1.5, audit_floor=1, audit_check=0.02)
        collector.start()
        baseline = sys.getallocatedblocks()
        knots.extend(Knot() for _ in range(max(20_000, baseline)))  # the allocator's blocks at least double
        await asyncio.sleep(0.05)  # frozen by the next gen1 collection
        knots.clear()  # now cyclic garbage, invisible to the collector while frozen
        for _ in range(100):
            await asyncio.sleep(0.01)
            if collector.audits:
                break
        collector.stop()
        return collector.audits, sum(isinstance(o, Knot) for o in gc.get_objects())

    audits, left = asyncio.run(scenario())
    assert audits >= 1 and left == 0


def test_no_audit_while_the_frozen_heap_is_steady() -> None:
    collector = Collector(pace=0.01, audit_floor=1, audit_check=0.02)
    run_for(collector, 0.2)
    assert collector.audits == 0


def test_bad_settings_are_refused() -> None:
    for kwargs in ({"pace": 0}, {"gen1_every": 0}, {"audit_growth": 1.0}, {"audit_check": 0}):
        with pytest.raises(ValueError):
            Collector(**kwargs)  # type: ignore[arg-type]


# -- no cyclic garbage on the call path -----------------------------------------------------------------


def flow_tests() -> list[tuple[str, Callable[[], None]]]:
    found = []
    modules: tuple[ModuleType, ...] = (test_b2bua, test_control, test_refer_flows)
    for module in modules:
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("test_") and fn.__module__ == module.__name__ and not inspect.signature(fn).parameters:
                found.append((f"{module.__name__.rsplit('.', 1)[1]}::{name}", fn))
    return found


#: Objects made once per service (the UA core, its layer and settings, the call logic): cycles among them
#: cost nothing over a service's life. Everything else of ours is made per call or per message.
SINGLETONS = frozenset({"UserAgent", "TransactionLayer", "LayerStats", "UaSettings", "TimerSettings", "Limits",
                        "B2bua", "B2buaSettings", "CallTable", "Control"})


def ours(obj: Any) -> bool:
    module = getattr(type(obj), "__module__", "") or ""
    return module.startswith(("b2bua.", "rpc.")) and type(obj).__qualname__ not in SINGLETONS


def cyclic(garbage: list[Any]) -> list[str]:
    """Our per-call objects that are on a reference cycle among the garbage, not counting cycles that pass
    through an exception, a traceback or a frame (Tarjan's strongly connected components)."""
    import types

    nodes = {id(o): o for o in garbage if not isinstance(o, BaseException | types.TracebackType | types.FrameType)}
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    stack: list[int] = []
    on_stack: set[int] = set()
    found: list[str] = []
    counter = 0

    def edges(key: int) -> list[int]:
        return [id(r) for r in gc.get_referents(nodes[key]) if id(r) in nodes]

    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(edges(root)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            key, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges(child))))
                    break
                if child in on_stack:
                    low[key] = min(low[key], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[key])
                if low[key] == index[key]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == key:
                            break
                    looped = len(component) > 1 or key in edges(key)
                    if looped:
                        found.extend(type(nodes[m]).__qualname__ for m in component if ours(nodes[m]))
    return sorted(found)


#: Flow tests known to leave a cycle, with the defect; strict, so the fix turns them into failures to remove here.
KNOWN_CYCLES: dict[str, str] = {}


def flow_params() -> list[Any]:
    params = []
    for name, test in flow_tests():
        known = KNOWN_CYCLES.get(name)
        marks = [pytest.mark.xfail(strict=True, reason=known)] if known is not None else []
        params.append(pytest.param(name, test, id=name, marks=marks))
    return params


@pytest.mark.parametrize("name,test", flow_params())
def test_a_flow_leaves_no_cyclic_garbage(name: str, test: Callable[[], None], monkeypatch: pytest.MonkeyPatch) -> None:
    """Run a flow test with the collector off, then end whatever it left up and let 64*T1 pass: reference
    counting alone must free every object of the service (what the collector's freezing relies on)."""
    networks: list[Network] = []
    made = Network.__init__

    def recording(self: Network, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        networks.append(self)

    monkeypatch.setattr(Network, "__init__", recording)
    gc.collect()
    gc.disable()
    try:
        test()
        for net in networks:
            for node in net.nodes.values():
                for session in node.ua.sessions:
                    session.end(net.now)
            net.settle(2.0)
            for node in net.nodes.values():
                for session in node.ua.sessions:
                    session.end(net.now)
            net.run(until=net.now + 70.0)
            for node in net.nodes.values():
                node.events.clear()
                node.inbox.clear()
            net.log.clear()
        networks.clear()
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        garbage = cyclic(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert garbage == []
