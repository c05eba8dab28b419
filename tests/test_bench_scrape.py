"""benchmarks/scrape.py: scrapes a real HTTP server on loopback at its interval and counts what it got."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from benchmarks.scrape import Scraper, Scrapes


class Metrics(BaseHTTPRequestHandler):
    paths: list[str] = []

    def do_GET(self) -> None:
        self.paths.append(self.path)
        body = b"call_api_up 1\n" if self.path == "/metrics" else b"no"
        self.send_response(200 if self.path == "/metrics" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    Metrics.paths = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_scrapes_at_its_interval_until_the_block_ends(server: str) -> None:
    with Scraper(f"{server}/metrics", 0.1) as scraper:
        time.sleep(0.55)
    got = scraper.scrapes
    assert 3 <= got.ok <= 8 and got.failed == 0 and got.bytes == got.ok * len(b"call_api_up 1\n")
    assert Metrics.paths == ["/metrics"] * got.ok
    assert got.text().startswith(f"{got.ok} ok, 0 failed, 0.0 kB each")


def test_failures_are_counted_and_none_means_off(server: str) -> None:
    with Scraper(f"{server}/other", 0.1) as scraper:
        time.sleep(0.25)
    assert scraper.scrapes.ok == 0 and scraper.scrapes.failed >= 2
    assert scraper.scrapes.text() == f"0 ok, {scraper.scrapes.failed} failed"
    with Scraper(f"{server}/metrics", None) as off:
        time.sleep(0.1)
    assert off.scrapes == Scrapes() and Metrics.paths.count("/metrics") == 0
    with pytest.raises(ValueError):
        Scraper(server, 0)
