"""GET /metrics and GET /healthz of the running service, read by a real Prometheus server and a plain HTTP client,
with SIPp phones calling through Kamailio (issue 14).

alice (SIPp) -> Kamailio -> call-api -> Kamailio -> bob (SIPp); Prometheus (Debian package prometheus) scrapes the
service every second on its API port and answers PromQL over its own HTTP API.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.kamailio import Kamailio, PortMap
from harness.ports import free_tcp_port, port_is_free
from harness.processes import RigError
from harness.procfs import is_listening
from harness.service import ApiFactory, ServiceFactory
from harness.sipp import SippLauncher, assert_all_ok, wait_all

pytestmark = pytest.mark.system

TOKEN = "s3cret"
#: Prometheus listens this far above the rig's service port (so CALL_API_RIG_PORT_OFFSET moves it too).
PROMETHEUS_OFFSET = 40



def fetch(url: str, headers: dict[str, str] | None = None, timeout: float = 5) -> tuple[int, bytes]:
    """Status and body of ``GET url`` (an HTTP error status is an answer too)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def http_base(api_url: str) -> str:
    """``http://127.0.0.1:PORT`` of the API's ``ws://127.0.0.1:PORT/call-api``."""
    return "http" + api_url[2:].rsplit("/", 1)[0]


def sample(text: str, line_start: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[-1])
    return None


def start_alone(call_api: ServiceFactory, sip_port: int, *flags: str) -> str:
    """A service with no proxy on ``sip_port`` and its API on a free loopback port; the API's ``http://`` base."""
    port = free_tcp_port()
    service = call_api("--ws-host", "127.0.0.1", "--ws-port", str(port), *flags, port=sip_port)
    until(lambda: is_listening(port, "tcp"), 5, f"the API to listen on {port}:\n{service.log_tail()}")
    return f"http://127.0.0.1:{port}"


def until(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def prometheus(tmp_path: Path, rig_ports: PortMap) -> Iterator[Callable[[str], str]]:
    """``prometheus(target)`` starts a Prometheus server scraping ``target`` (``host:port``) every second with the
    API token; returns its base URL. Stopped at teardown."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise RigError("'prometheus' is not on PATH: `bash scripts/test` installs the Debian package prometheus")
    procs: list[subprocess.Popen[bytes]] = []

    def start(target: str) -> str:
        port = rig_ports.service + PROMETHEUS_OFFSET
        assert port_is_free(port), f"port {port} (the rig's service port + {PROMETHEUS_OFFSET}) is taken"
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: call-api\n"
            f"    authorization:\n      type: Bearer\n      credentials: {TOKEN}\n"
            f"    static_configs:\n      - targets: ['{target}']\n")
        log = (tmp_path / "prometheus.log").open("wb")
        proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                 f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        until(lambda: proc.poll() is not None or _ready(base), 30, "Prometheus to be ready")
        assert proc.poll() is None, (tmp_path / "prometheus.log").read_text(errors="replace")[-3000:]
        return base

    try:
        yield start
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _ready(base: str) -> bool:
    try:
        return fetch(f"{base}/-/ready", timeout=1)[0] == 200
    except OSError:
        return False


def query(base: str, promql: str) -> float | None:
    """The value of an instant PromQL query with one series, or None when it has none."""
    status, body = fetch(f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}")
    assert status == 200, body
    result = json.loads(body)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_the_active_calls_sipp_placed(
    call_api: ServiceFactory, call_api_ws: ApiFactory, kamailio: Kamailio, rig_ports: PortMap, sipp: SippLauncher,
    prometheus: Callable[[str], str],
) -> None:
    _, url = call_api_ws("--ws-token", TOKEN)
    base = prometheus(url[5:].split("/")[0])
    until(lambda: query(base, 'up{job="call-api"}') == 1, 20, "the first successful scrape")
    assert query(base, 'call_api_calls_active{state="answered"}') == 0
    bob = sipp("uas_answer.xml", phone="bob", calls=3, timeout_s=60)
    alice = sipp("uac_call.xml", phone="alice", call="bob", calls=3, rate=10, pause_ms=12000, timeout_s=60)
    until(lambda: query(base, 'call_api_calls_active{state="answered"}') == 3, 20,
          "Prometheus to see three answered calls")
    assert_all_ok(wait_all([alice, bob], 60), kamailio)
    until(lambda: query(base, 'call_api_calls_total{outcome="answered",status_class="2xx"}') == 3, 20,
          "Prometheus to see three answered calls ended")
    assert query(base, 'call_api_calls_active{state="answered"}') == 0
    assert (query(base, 'call_api_sip_requests_received_total{method="INVITE"}') or 0) >= 3
    assert (query(base, 'call_api_sip_responses_sent_total{method="INVITE",status_class="2xx"}') or 0) >= 3
    assert query(base, "call_api_sip_transactions") is not None


def test_healthz_is_200_then_503_while_the_service_stops(
    call_api: ServiceFactory, call_api_ws: ApiFactory, kamailio: Kamailio, rig_ports: PortMap, sipp: SippLauncher,
) -> None:
    """A callee that vanished (its SIPp killed) never answers the shutdown's BYE: the service waits its grace
    period for it, and /healthz says 503 all that time while the API still answers."""
    service, url = call_api_ws("--ws-token", TOKEN, "--ws-metrics-public", "true")
    base = http_base(url)
    status, body = fetch(f"{base}/healthz")
    assert status == 200, body
    health = json.loads(body)
    assert health["status"] == "ok" and f"udp:127.0.0.1:{rig_ports.service}" in health["sip"]
    bob = sipp("uas_answer.xml", phone="bob", timeout_s=60)
    alice = sipp("uac_call_wait_bye.xml", phone="alice", call="bob", timeout_s=60)

    def answered() -> bool:
        return sample(fetch(f"{base}/metrics")[1].decode(), 'call_api_calls_active{state="answered"}') == 1.0

    until(answered, 15, "the call to be answered")
    bob.stop()
    assert service.proc is not None
    service.proc.send_signal(signal.SIGTERM)
    seen: list[tuple[int, str]] = []
    while service.proc.poll() is None:
        try:
            status, body = fetch(f"{base}/healthz", timeout=1)
        except OSError:
            break  # the API closed
        seen.append((status, json.loads(body)["status"]))
        time.sleep(0.05)
    assert (503, "stopping") in seen, f"/healthz while stopping: {seen}\n{service.log_tail()}"
    assert all(answer == (503, "stopping") for answer in seen[seen.index((503, "stopping")):]), seen
    assert service.proc.wait(10) == 0
    assert_all_ok(wait_all([alice], 30), kamailio)  # alice got the shutdown's BYE and answered it


def test_the_token_guards_metrics_unless_public_from_a_trusted_network(
    call_api: ServiceFactory, rig_ports: PortMap,
) -> None:
    base = start_alone(call_api, rig_ports.service, "--ws-token", TOKEN)
    assert fetch(f"{base}/metrics")[0] == 401
    assert fetch(f"{base}/healthz")[0] == 401
    status, body = fetch(f"{base}/metrics", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and b"call_api_calls_active" in body
    assert fetch(f"{base}/", {})[0] == 200  # the dashboard's page carries no data
    # metrics_public, the scraper on loopback: trusted by default (sip.trusted), so no token needed.
    base = start_alone(call_api, rig_ports.service + 1, "--ws-token", TOKEN, "--ws-metrics-public", "true")
    assert fetch(f"{base}/metrics")[0] == 200 and fetch(f"{base}/healthz")[0] == 200
    # metrics_public, but loopback not among the trusted networks: the token again.
    base = start_alone(call_api, rig_ports.service + 2, "--ws-token", TOKEN, "--ws-metrics-public", "true",
                       "--trusted", "192.0.2.0/24")
    assert fetch(f"{base}/metrics")[0] == 401
    assert fetch(f"{base}/metrics?token={TOKEN}")[0] == 200
