"""What the Settings page says when things go wrong or have gone on: Last.fm failing, the
daemon stopped, a paused or retrying import, a Spotify lane that recovered, the jobs of
earlier sessions. In a real headless Chromium against musiqued and the simulators;
screenshots at 1280 and 390 px go to build/screenshots/.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from selenium.webdriver.common.by import By

from tests.page_support import (
    body_attribute,
    by_id,
    classes,
    click_job_button,
    console_problems,
    job_row,
    open_page,
    page_daemon,
    phone_view,
    script_on_every_page,
    serves_page,
    text_of,
    wait_for,
)
from tests.support import free_port

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

    from tests.fixtures.daemon import StartDaemon
    from tests.fixtures.enrichment import SimulatedSpotify
    from tests.fixtures.lastfm import SimulatedLastfm
    from tests.fixtures.threaded import ServeInThread

Screenshot = Callable[[str], Path]


def both_widths(
    browser: WebDriver, screenshot: Screenshot, state: str, card: str | None = None
) -> None:
    """Screenshots at 1280 px and at 390 px, the phone's scrolled to ``card``."""
    screenshot(state)
    with phone_view(browser):
        if card is not None:
            browser.execute_script("document.getElementById(arguments[0]).scrollIntoView()", card)
        screenshot(f"{state}-phone")
        browser.execute_script("window.scrollTo(0, 0)")


def test_a_tracker_whose_polls_fail_is_not_green(
    browser: WebDriver,
    screenshot: Screenshot,
    serve_in_thread: ServeInThread,
    lastfm_sim: SimulatedLastfm,
) -> None:
    """While every poll fails the tracker card turns red and says how many failed, and
    "Now playing" no longer shows the track from before; once Last.fm answers again the
    card is green and shows what plays."""
    lastfm_sim.reset(size=20, seed=21)
    daemon, url = page_daemon(serve_in_thread, lastfm_sim)
    daemon.call("test.lastfm_retry", {})  # each poll fails after brief retries
    daemon.call("tracker.start", {"interval_seconds": 1})
    lastfm_sim.set_now_playing("Björk", "Jóga", "Homogenic")
    open_page(browser, url)
    wait_for(browser, lambda d: "Jóga" in text_of(d, "tracker-now"))
    assert "tracker-running" in classes(browser, "tracker")

    lastfm_sim.set_faults(rate=1.0, kinds=["http500"])
    wait_for(browser, lambda d: "tracker-failing" in classes(d, "tracker"), timeout=30)
    assert "tracker-running" not in classes(browser, "tracker")
    assert "Last.fm is not answering" in text_of(browser, "tracker-state")
    assert "Jóga" not in text_of(browser, "tracker-now")
    assert text_of(browser, "tracker-error") != "none"
    both_widths(browser, screenshot, "tracker-failing", "tracker")

    lastfm_sim.set_faults(rate=0.0)
    wait_for(browser, lambda d: "tracker-running" in classes(d, "tracker"), timeout=60)
    wait_for(browser, lambda d: "Jóga" in text_of(d, "tracker-now"))
    assert text_of(browser, "tracker-error") == "none"


# Counts the page's requests that got no answer at all.
COUNT_FAILED_FETCHES = """
window.__failedFetches = 0;
const realFetch = window.fetch;
window.fetch = async (...args) => {
  try {
    return await realFetch(...args);
  } catch (error) {
    window.__failedFetches += 1;
    throw error;
  }
};
"""


@pytest.mark.slow
def test_a_stopped_daemon_is_one_clear_state(
    browser: WebDriver,
    screenshot: Screenshot,
    serve_in_thread: ServeInThread,
    lastfm_sim: SimulatedLastfm,
) -> None:
    """With the daemon stopped (its services, socket and listener closed) the page says so
    once, at the top, and the tracker card no longer says Running; however many of its
    polls fail, no "Failed to fetch" notice piles up. When the daemon is back the page is
    live again by itself."""
    lastfm_sim.reset(size=20, seed=22)
    daemon, url = page_daemon(serve_in_thread, lastfm_sim)
    daemon.call("tracker.start", {"interval_seconds": 5})
    with script_on_every_page(browser, COUNT_FAILED_FETCHES):
        open_page(browser, url)
        assert "Running" in text_of(browser, "tracker-state")
        daemon.stop()
        wait_for(browser, lambda d: body_attribute(d, "data-daemon") == "down", timeout=30)
        # Two rounds of requests (four each: when the live link closed, then a poll) have
        # failed.
        wait_for(
            browser, lambda d: d.execute_script("return window.__failedFetches") >= 8, timeout=30
        )
        assert by_id(browser, "down").is_displayed()
        assert "not answering" in text_of(browser, "down")
        assert "Running" not in text_of(browser, "tracker-state")
        assert "tracker-running" not in classes(browser, "tracker")
        assert browser.find_elements(By.CSS_SELECTOR, "#notices .notice") == []
        assert by_id(browser, "tracker-toggle").get_attribute("disabled") is not None
        both_widths(browser, screenshot, "daemon-stopped")

        daemon.start()
        wait_for(browser, lambda d: body_attribute(d, "data-daemon") == "up", timeout=30)
        wait_for(browser, lambda d: body_attribute(d, "data-link") == "live", timeout=30)
        wait_for(browser, lambda d: "Running" in text_of(d, "tracker-state"))
        assert not by_id(browser, "down").is_displayed()
        assert by_id(browser, "tracker-toggle").get_attribute("disabled") is None


def test_speed_and_time_left_stop_while_paused_or_retrying(
    browser: WebDriver,
    screenshot: Screenshot,
    serve_in_thread: ServeInThread,
    lastfm_sim: SimulatedLastfm,
) -> None:
    """A paused import shows no speed and no time left but says it is paused; one whose
    pages Last.fm keeps failing says it waits for Last.fm instead of a time left."""
    lastfm_sim.reset(size=4000, seed=23)
    daemon, url = page_daemon(
        serve_in_thread, lastfm_sim, lastfm={"requests_per_second": 2.0, "max_in_flight": 1}
    )
    open_page(browser, url)
    job_id = daemon.call("import.start", {"all": True})["job_id"]
    wait_for(browser, lambda d: "scrobbles/s" in text_of(d, "import-rate"))
    click_job_button(browser, job_id, "pause")
    wait_for(browser, lambda d: text_of(d, "import-rate") == "paused")
    assert text_of(browser, "import-eta") == "paused"
    both_widths(browser, screenshot, "import-paused", "import")

    lastfm_sim.set_faults(rate=1.0, kinds=["http503"])
    click_job_button(browser, job_id, "resume")
    wait_for(browser, lambda d: text_of(d, "import-rate") == "waiting for Last.fm", timeout=60)
    assert text_of(browser, "import-eta") == "unknown until Last.fm answers again"
    assert "Last.fm" in text_of(browser, "import-trouble")
    both_widths(browser, screenshot, "import-retrying", "import")
    lastfm_sim.set_faults(rate=0.0)
    daemon.call("jobs.cancel", {"job_id": job_id})


def test_a_second_sweep_says_it_is_re_checking(
    browser: WebDriver,
    screenshot: Screenshot,
    serve_in_thread: ServeInThread,
    lastfm_sim: SimulatedLastfm,
) -> None:
    """Scrobbles back-dated into the window while an import runs make it walk the window
    again; meanwhile "Time left" says it is re-checking instead of counting down to
    nothing ("0 s" while pages remain)."""
    lastfm_sim.reset(size=1000, seed=26)
    daemon, url = page_daemon(
        serve_in_thread, lastfm_sim, lastfm={"requests_per_second": 4.0, "max_in_flight": 1}
    )
    middle = lastfm_sim.scrobbles()[500].timestamp
    open_page(browser, url)
    job_id = daemon.call("import.start", {"all": True})["job_id"]
    wait_for(browser, lambda d: "scrobbles/s" in text_of(d, "import-rate"))
    lastfm_sim.add_scrobbles(3, at=middle)

    wait_for(browser, lambda d: text_of(d, "import-eta").startswith("re-checking"), timeout=60)
    both_widths(browser, screenshot, "import-rechecking", "import")
    wait_for(browser, lambda d: text_of(d, "import-title-line").endswith("done"), timeout=60)
    assert daemon.call("jobs.get", {"job_id": job_id})["tracks_imported"] == 1003


def test_an_enrichment_error_goes_once_the_source_recovers(
    browser: WebDriver,
    screenshot: Screenshot,
    serve_in_thread: ServeInThread,
    lastfm_sim: SimulatedLastfm,
    spotify_sim: SimulatedSpotify,
) -> None:
    """While Spotify asks the daemon to wait, the enrichment card shows its error; once
    Spotify answers again and the queue moves, the error is gone from the card."""
    lastfm_sim.reset(size=400, seed=24)
    spotify_sim.sim.faults.configure(rate=1.0, kinds=["429"], retry_after=60)
    port = free_port()
    daemon = serve_in_thread(
        **lastfm_sim.sections(requests_per_second=20.0),
        **spotify_sim.sections(),
        http={"listen": f"127.0.0.1:{port}"},
    )
    serves_page(daemon, f"http://127.0.0.1:{port}")
    open_page(browser, f"http://127.0.0.1:{port}")
    daemon.call("import.start", {"all": True})
    wait_for(browser, lambda d: "spotify:" in text_of(d, "enrichment-error"), timeout=60)
    assert "warning" in classes(browser, "enrichment-error")
    both_widths(browser, screenshot, "enrichment-failing", "enrichment")

    spotify_sim.sim.faults.configure(rate=0.0)
    daemon.call("enrich.run", {"retry_failed": True})
    wait_for(
        browser,
        lambda d: int(job_cell(d, "enrichment-body", "spotify", 3)) > 0,
        timeout=60,
    )
    wait_for(browser, lambda d: text_of(d, "enrichment-error").startswith("none"))
    assert "warning" not in classes(browser, "enrichment-error")


def job_cell(driver: WebDriver, body_id: str, first: str, column: int) -> str:
    for row in driver.find_elements(By.CSS_SELECTOR, f"#{body_id} tr"):
        cells = row.find_elements(By.TAG_NAME, "td")
        if cells and cells[0].text.startswith(first):
            return str(cells[column].text)
    return "0"


def test_after_a_reload_the_page_shows_past_jobs_as_they_ended(
    browser: WebDriver,
    screenshot: Screenshot,
    start_daemon: StartDaemon,
    lastfm_sim: SimulatedLastfm,
) -> None:
    """A page opened after the jobs ran shows the newest import in the import card as it
    ended, ten jobs at first and the rest on "Show more jobs", a verification's progress
    in days, and each job's log as times and messages."""
    lastfm_sim.reset(size=300, seed=25)
    daemon, url = page_daemon(start_daemon, lastfm_sim)
    ids = []
    for _ in range(11):
        job_id = daemon.call("import.start", {"limit": 20})["job_id"]
        daemon.wait_until(
            lambda j=job_id: daemon.call("jobs.get", {"job_id": j})["state"] == "done"
        )
        ids.append(job_id)
    verify = daemon.call("verify.start", {})["job_id"]
    daemon.wait_until(
        lambda: daemon.call("jobs.get", {"job_id": verify})["state"] in ("done", "failed")
    )
    days = daemon.call("jobs.get", {"job_id": verify})["pages_total"]

    console_problems(browser)  # forget what earlier pages logged
    open_page(browser, url)
    assert text_of(browser, "import-title-line") == f"Import #{ids[-1]}: done"
    assert text_of(browser, "import-eta") == "none: finished"
    rows = browser.find_elements(By.CSS_SELECTOR, "#jobs-body tr")
    assert len(rows) == 10
    assert f"day {days} / {days}" in job_row(browser, verify).text
    more = by_id(browser, "jobs-more")
    assert more.is_displayed()
    both_widths(browser, screenshot, "jobs-after-reload", "jobs")
    more.click()
    wait_for(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#jobs-body tr")) == 12)
    wait_for(browser, lambda d: not by_id(d, "jobs-more").is_displayed())

    click_job_button(browser, ids[0], "log")
    wait_for(browser, lambda d: by_id(d, "log-dialog").get_attribute("open") is not None)
    lines = browser.find_elements(By.CSS_SELECTOR, "#log-lines .log-line")
    assert lines
    for line in lines:
        assert line.find_element(By.TAG_NAME, "time").text
        assert "=" not in line.text
    both_widths(browser, screenshot, "job-log")
    by_id(browser, "log-close").click()
    assert console_problems(browser) == []
