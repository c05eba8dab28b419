"""benchmarks/subscriber.py: the benchmark's event follower reads every event and measures its lag, against
the real ApiServer in this process (no timing asserted: a lag is only checked to be measured)."""

from __future__ import annotations

import asyncio
import io

from benchmarks.subscriber import event_time, follow, following

from .api_fakes import run
from .live_fakes import live


def test_event_time_reads_rfc3339() -> None:
    assert event_time("1970-01-01T00:00:01.500Z") == 1.5


def test_it_follows_every_event_until_stopped() -> None:
    async def body() -> None:
        async with live() as t:
            stop = asyncio.Event()
            task = asyncio.ensure_future(follow(t.url, stop))
            await asyncio.sleep(0.2)
            for _ in range(3):
                t.call()
            await asyncio.sleep(0.2)
            stop.set()
            lag = await asyncio.wait_for(task, 5)
            assert (lag.events, lag.first_seq, lag.last_seq, lag.lost) == (3, 1, 3, False)
            assert lag.max_lag_s >= lag.p99_lag_s  # the live harness's clock is not the wall clock: no sign

    run(body)


def test_without_an_api_it_runs_nothing() -> None:
    out = io.StringIO()
    with following(None, 0, out):
        pass
    assert out.getvalue() == ""
