"""The dashboard (rpc/static, docs/API.md "The dashboard") in a real browser: Debian's headless Chromium driven by
Selenium through Debian's chromedriver, against the service as a process with Kamailio and SIPp phones. A phone's
call shows up in the table; the page's Hold, Resume and End buttons act on the real phones (the held phone's
scenario checks the ``a=sendonly`` offer); a page reloaded in the middle of a burst of calls rebuilds the table
that CallList gives; a page whose service went away and came back is live again by itself. The page reads the
token from its own URL; the browser's console must stay free of errors (a Content Security Policy that blocked the
page's own script or its WebSocket would show there).

The first two tests save a screenshot, ``dashboard.png``, in their temporary folder; with
``CALL_API_DASHBOARD_SCREENSHOT`` set to a path the held call's screenshot is also written there (docs/dashboard.png
was taken that way, with two more SIPp calls up beside the held one: one answered, one ringing)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from harness.kamailio import Kamailio, PortMap
from harness.service import ApiFactory
from harness.sipp import SippLauncher, assert_all_ok, wait_all
from rpc.client import CallApi

from .ws_commands import call_id_of, wait_for_text

pytestmark = pytest.mark.system

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
TOKEN = "dash-s3cret"
WAIT = 15.0  # seconds for the page to show what the service already did (generous: the rig has 2 cores)

T = TypeVar("T")

#: The page's table as data: per row what the events carry (a leg's dialog and hop come with CallList only).
READ_TABLE = """
return [...document.querySelectorAll('#calls tbody tr[data-callid]')].map(row => ({
  callid: row.dataset.callid, state: row.dataset.state,
  command: row.querySelector('td.command').dataset.command || null,
  legs: Object.fromEntries([...row.querySelectorAll('td.leg')].filter(cell => cell.dataset.present === 'true')
    .map(cell => [cell.dataset.leg, {direction: cell.dataset.direction || null, held: cell.dataset.held === 'true'}]))
}));
"""


def comparable(call: Mapping[str, Any]) -> dict[str, Any]:
    """A Call object of CallList in the shape :data:`READ_TABLE` reads the page's row."""
    return {"callid": call["callid"], "state": call["state"],
            "command": call["command"]["method"] if call["command"] else None,
            "legs": {name: {"direction": leg["direction"], "held": leg["held"]} for name, leg in call["legs"].items()}}


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """Headless Chromium; Selenium Manager is kept offline (Debian's driver and browser, nothing downloaded)."""
    for binary in (CHROMIUM, CHROMEDRIVER):
        assert os.access(binary, os.X_OK), f"{binary} is missing: scripts/test installs chromium chromium-driver"
    monkeypatch.setenv("SE_OFFLINE", "true")
    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1500,900", f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log")),
                              options=options)
    try:
        yield driver
    finally:
        driver.quit()


def page_url(api_url: str) -> str:
    """The dashboard beside the API (``ws://host:port/call-api`` -> ``http://host:port/?token=...``)."""
    return api_url.replace("ws://", "http://").removesuffix("/call-api") + f"/?token={TOKEN}"


def until(driver: webdriver.Chrome, what: str, check: Callable[[webdriver.Chrome], T], timeout: float = WAIT) -> T:
    """``check``'s first truthy answer; on a timeout, fail saying ``what`` with the page's status and console."""
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.05).until(check)
    except TimeoutException:
        raise AssertionError(f"{what} not seen in {timeout} s; {context(driver)}") from None


def context(driver: webdriver.Chrome) -> str:
    status = driver.find_element(By.ID, "status").text
    log = driver.find_element(By.ID, "log").text.splitlines()[:20]
    return f"status {status!r}, console {console(driver)}, log:\n" + "\n".join(log)


def console(driver: webdriver.Chrome) -> list[str]:
    """The console's warnings and errors since the last call (CSP violations, uncaught exceptions)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] in ("WARNING", "SEVERE")]


def live(driver: webdriver.Chrome) -> bool:
    return driver.find_element(By.ID, "status").get_attribute("data-state") == "live"


def cell(driver: webdriver.Chrome, callid: str, selector: str = "") -> Any:
    """The row of ``callid`` (or the element ``selector`` finds in it); None while there is none."""
    rows = driver.find_elements(By.CSS_SELECTOR, f'#calls tr[data-callid="{callid}"] {selector}'.rstrip())
    return rows[0] if rows else None


def test_a_phone_call_appears_and_the_buttons_hold_resume_and_end_it(
    call_api_ws: ApiFactory, kamailio: Kamailio, sipp: SippLauncher, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    service, url = call_api_ws("--ws-token", TOKEN)
    browser.get(page_url(url))
    until(browser, "the page live", live)
    bob = sipp("uas_hold.xml", phone="bob", timeout_s=60)
    alice = sipp("uac_call_wait_bye.xml", phone="alice", call="bob", timeout_s=60)
    caller, callee = call_id_of(alice), call_id_of(bob)
    placed = time.monotonic()
    until(browser, f"the row of {caller}", lambda d: cell(d, caller))
    print(f"the call was on the page {time.monotonic() - placed:.3f} s after SIPp's INVITE was logged")
    until(browser, "the call answered", lambda d: cell(d, caller).get_attribute("data-state") == "answered")
    row = cell(browser, caller)
    assert row.find_element(By.CSS_SELECTOR, "td.callid").text == caller
    assert "alice" in row.find_element(By.CSS_SELECTOR, "td.parties").text
    wait_for_text(bob.messages_path, r"^ACK sip:")  # the callee's dialog is confirmed: it can be held

    held = 'td.leg[data-leg="callee"]'
    cell(browser, caller, f"{held} button[data-action=hold]").click()
    until(browser, "the callee held", lambda d: cell(d, caller, held).get_attribute("data-held") == "true")
    until(browser, "bob's recvonly answer", lambda d: cell(d, caller, held).get_attribute("data-direction")
          == "recvonly")
    wait_for_text(bob.messages_path, r"^a=sendonly")  # what bob's scenario checked in the re-INVITE
    assert cell(browser, caller, 'td.leg[data-leg="caller"]').get_attribute("data-held") == "false"
    browser.save_screenshot(str(tmp_path / "dashboard.png"))
    if os.environ.get("CALL_API_DASHBOARD_SCREENSHOT"):
        browser.save_screenshot(os.environ["CALL_API_DASHBOARD_SCREENSHOT"])

    until(browser, "the Resume button", lambda d: cell(d, caller, f"{held} button[data-action=resume]")).click()
    until(browser, "the callee resumed", lambda d: cell(d, caller, held).get_attribute("data-held") == "false"
          and cell(d, caller, held).get_attribute("data-direction") == "sendrecv")
    until(browser, "no command running", lambda d: cell(d, caller, "td.command").get_attribute("data-command") == "")
    cell(browser, caller, "button[data-action=end]").click()
    until(browser, "the row gone", lambda d: cell(d, caller) is None)
    assert_all_ok(wait_all([alice, bob], 20), kamailio)
    log = browser.find_element(By.ID, "log").text
    for line in ("CallHold started", "CallHold CALL_HOLD callee", "CallUnHold ended", "CallEnd started",
                 f"{caller} ended command"):
        assert line in log, (line, log, service.log_tail())
    assert callee != caller and console(browser) == []


def test_a_page_reloaded_during_a_burst_of_calls_shows_what_call_list_gives(
    call_api_ws: ApiFactory, kamailio: Kamailio, sipp: SippLauncher, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    """40 calls at 20 a second that stay up until ended; the page is reloaded while they come. Once nothing
    changes (CallList's seq the same before and after the page has caught up with it) the page's table equals
    CallList, call by call; then every call is ended and both are empty."""
    calls, rate = 40, 20
    service, url = call_api_ws("--ws-token", TOKEN)
    browser.get(page_url(url))
    until(browser, "the page live", live)
    bob = sipp("uas_answer.xml", phone="bob", calls=calls, timeout_s=90)
    alice = sipp("uac_call_wait_bye.xml", phone="alice", call="bob", calls=calls, rate=rate, timeout_s=90,
                 extra_args=["-l", str(calls)])
    shown = until(browser, "a quarter of the calls",
                  lambda d: len(d.find_elements(By.CSS_SELECTOR, "#calls tbody tr")) >= calls // 4 and
                  len(d.find_elements(By.CSS_SELECTOR, "#calls tbody tr")))
    browser.refresh()  # mid-load: the calls keep coming while the page starts again from CallList
    until(browser, "the reloaded page live", live)
    assert shown < calls, "the page was reloaded after the burst"

    async def quiet(api: CallApi, count: int) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]]]:
        """CallList and the page at a moment when nothing changed while the page caught up."""
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, f"never quiet at {count} calls; {context(browser)}"
            seq, listed = await api.snapshot()
            if len(listed) == count and all(call["state"] == "answered" for call in listed):
                page_seq = browser.execute_script("return window.callApiDashboard.seq()")
                if page_seq == seq:
                    table = browser.execute_script(READ_TABLE)
                    again, _ = await api.snapshot()
                    if again == seq:
                        return seq, [comparable(call) for call in listed], table
            await asyncio.sleep(0.1)

    async def drive() -> dict[str, Any]:
        async with CallApi(url, token=TOKEN) as api:
            seq, listed, table = await quiet(api, calls)
            browser.save_screenshot(str(tmp_path / "dashboard.png"))
            for call in listed:
                await api.call_end(call["callid"])
            _, after, table_after = await quiet(api, 0)
            return {"seq": seq, "listed": listed, "table": table, "after": after, "table after": table_after}

    got = asyncio.run(asyncio.wait_for(drive(), 150))
    assert_all_ok(wait_all([alice, bob], 30), kamailio)
    assert len(got["listed"]) == calls
    assert got["table"] == got["listed"], f"at seq {got['seq']}\n{service.log_tail()}"
    assert got["after"] == got["table after"] == []
    assert console(browser) == []


def logged(driver: webdriver.Chrome, line: str) -> bool:
    return line in driver.find_element(By.ID, "log").text


def test_the_call_start_form_places_a_click_to_dial_call(
    call_api_ws: ApiFactory, kamailio: Kamailio, sipp: SippLauncher, browser: webdriver.Chrome, rig_ports: PortMap
) -> None:
    """CallStart from the form: alice answers, follows the REFER to bob; the new call shows up and ends."""
    service, url = call_api_ws("--ws-token", TOKEN)
    browser.get(page_url(url))
    until(browser, "the page live", live)
    bob = sipp("uas_answer.xml", phone="bob")
    alice, alice_new = sipp.transferee("alice", "uas_transferee.xml", "uac_transferee_call.xml",
                                       twin_port=rig_ports.proxy + 11,
                                       keys={"peer": "bob", "offer_dir": "inactive", "target": "bob"})
    form = browser.find_element(By.ID, "start")
    form.find_element(By.NAME, "caller").send_keys(rig_ports.uri("alice"))
    form.find_element(By.NAME, "callee").send_keys(rig_ports.uri("bob"))
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    first = call_id_of(alice)
    until(browser, "CallStart's end", lambda d: logged(d, "CallStart ended"))
    until(browser, "the new call's end", lambda d: logged(d, f"xfer-{first} ended bye"))
    assert_all_ok(wait_all([alice, alice_new, bob], 20), kamailio)
    log = browser.find_element(By.ID, "log").text
    assert "CallStart CALL_START" in log and "failed" not in log, (log, service.log_tail())
    assert f"{first} transferred caller to xfer-{first}" in log
    assert browser.find_elements(By.CSS_SELECTOR, "#calls tbody tr") == [] and console(browser) == []


def test_a_rows_transfer_form_transfers_that_party(
    call_api_ws: ApiFactory, kamailio: Kamailio, sipp: SippLauncher, browser: webdriver.Chrome, rig_ports: PortMap
) -> None:
    """Blind transfer from a row: bob, the callee, is REFERred to carol; the old call ends, the new one runs."""
    service, url = call_api_ws("--ws-token", TOKEN)
    browser.get(page_url(url))
    until(browser, "the page live", live)
    carol = sipp("uas_answer.xml", phone="carol")
    bob, bob_new = sipp.transferee("bob", "uas_transferee.xml", "uac_transferee_call.xml",
                                   twin_port=rig_ports.proxy + 12,
                                   keys={"peer": "alice", "offer_dir": "sendrecv", "target": "carol"})
    alice = sipp("uac_call_wait_bye.xml", phone="alice", call="bob")
    caller = call_id_of(alice)
    wait_for_text(bob.messages_path, r"^ACK sip:")
    until(browser, "the call answered", lambda d: cell(d, caller) and cell(d, caller).get_attribute("data-state")
          == "answered")
    Select(cell(browser, caller, "form.blind select")).select_by_value("callee")
    cell(browser, caller, "form.blind input[name=destination]").send_keys(rig_ports.uri("carol"))
    cell(browser, caller, "form.blind button[type=submit]").click()
    until(browser, "CallBlindTransfer's end", lambda d: logged(d, "CallBlindTransfer ended"))
    until(browser, "the old row gone", lambda d: cell(d, caller) is None)
    assert_all_ok(wait_all([alice, bob, bob_new, carol], 20), kamailio)
    log = browser.find_element(By.ID, "log").text
    assert "CallBlindTransfer TRANSFER_ACCEPT callee" in log and "failed" not in log, (log, service.log_tail())
    assert console(browser) == []


def test_the_page_reconnects_by_itself_when_the_service_comes_back(
    call_api_ws: ApiFactory, kamailio: Kamailio, sipp: SippLauncher, browser: webdriver.Chrome
) -> None:
    """The service stops (the page's WebSocket closes) and starts again on the same port: the page says it is
    offline, tries again with backoff, and is live again on its own, following the new run's calls."""
    service, url = call_api_ws("--ws-token", TOKEN)
    browser.get(page_url(url))
    until(browser, "the page live", live)
    service.stop()
    until(browser, "the page offline", lambda d: d.find_element(By.ID, "status").get_attribute("data-state")
          == "offline")
    assert "reconnecting in" in browser.find_element(By.ID, "status").text
    again, _ = call_api_ws("--ws-token", TOKEN, ws_port=urlsplit(url).port)
    until(browser, "the page live again", live)
    bob = sipp("uas_answer.xml", phone="bob")
    alice = sipp("uac_call.xml", phone="alice", call="bob", pause_ms=1000)
    caller = call_id_of(alice)
    until(browser, f"the row of {caller}", lambda d: cell(d, caller))
    until(browser, "the row gone after alice's BYE", lambda d: cell(d, caller) is None)
    assert_all_ok(wait_all([alice, bob], 20), kamailio)
    assert "connection closed (1001" in browser.find_element(By.ID, "log").text, again.log_tail()
