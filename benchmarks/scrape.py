"""A Prometheus-like scraper for the benchmark: ``GET /metrics`` on the contender every ``every`` seconds during a
step, so ``benchmarks.calls --scrape 1`` measures what a scrape a second costs the service (issue 14).

One thread, one plain HTTP GET at a time, as Prometheus does per target (a scrape that outlasts the interval
delays the next rather than piling up). It counts what it got; the benchmark compares the step's rate and
CPU with and without it. Not a test: nothing here is asserted on.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self


@dataclass(slots=True)
class Scrapes:
    """What the scraper saw during a step."""

    ok: int = 0
    failed: int = 0
    bytes: int = 0
    #: Seconds each successful scrape took, request to last byte.
    seconds: list[float] = field(default_factory=list)

    def text(self) -> str:
        """``20 ok, 0 failed, 9.1 kB each, 2.3 ms mean, 4.0 ms longest``."""
        if not self.ok:
            return f"0 ok, {self.failed} failed"
        mean = sum(self.seconds) / len(self.seconds) * 1000
        return (f"{self.ok} ok, {self.failed} failed, {self.bytes / self.ok / 1000:.1f} kB each, "
                f"{mean:.1f} ms mean, {max(self.seconds) * 1000:.1f} ms longest")


class Scraper:
    """``with Scraper(url, every=1.0) as scraper:`` scrapes ``url`` every ``every`` seconds until the block ends;
    then ``scraper.scrapes`` holds the counts. ``every`` None: does nothing (the benchmark without scraping)."""

    def __init__(self, url: str, every: float | None, headers: dict[str, str] | None = None) -> None:
        if every is not None and every <= 0:
            raise ValueError(f"the scrape interval must be positive, got {every}")
        self.url = url
        self.every = every
        self.headers = headers or {}
        self.scrapes = Scrapes()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        if self.every is not None:
            self._thread = threading.Thread(target=self._run, name="scraper", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        assert self.every is not None
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.scrape()
            next_at = max(next_at + self.every, time.monotonic())
            self._stop.wait(next_at - time.monotonic())

    def scrape(self) -> None:
        """One GET, counted."""
        started = time.monotonic()
        try:
            request = urllib.request.Request(self.url, headers=self.headers)
            with urllib.request.urlopen(request, timeout=max(1.0, self.every or 1.0)) as response:
                size = len(response.read())
        except (OSError, urllib.error.URLError):
            self.scrapes.failed += 1
            return
        self.scrapes.ok += 1
        self.scrapes.bytes += size
        self.scrapes.seconds.append(time.monotonic() - started)
