"""The Settings page in a real headless Chromium, against musiqued and the simulated Last.fm.

Each test drives the page as a person would (clicks, dialogs) and checks what the page
shows; a screenshot of each state goes to build/screenshots/.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from selenium.webdriver.common.by import By

from tests.page_support import (
    by_id,
    classes,
    open_page,
    page_daemon,
    text_of,
    wait_for,
)

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

    from tests.fixtures.daemon import StartDaemon
    from tests.fixtures.lastfm import SimulatedLastfm

Screenshot = Callable[[str], Path]


def test_tracker_turns_green_and_new_scrobbles_appear_live(
    browser: WebDriver,
    screenshot: Screenshot,
    start_daemon: StartDaemon,
    lastfm_sim: SimulatedLastfm,
) -> None:
    """Start on the tracker card turns it green (the daemon agrees); a scrobble added to
    Last.fm shows up as the last track without reloading the page."""
    lastfm_sim.reset(size=300, seed=4)
    daemon, url = page_daemon(start_daemon, lastfm_sim)
    load_s = open_page(browser, url + "/settings")
    print(f"page load: {load_s * 1000:.0f} ms")
    assert "tracker-stopped" in classes(browser, "tracker")
    assert "Stopped" in text_of(browser, "tracker-state")
    screenshot("tracker-stopped")

    interval = by_id(browser, "interval-input")
    interval.clear()
    interval.send_keys("1")
    by_id(browser, "tracker-toggle").click()
    wait_for(browser, lambda d: "tracker-running" in classes(d, "tracker"))
    assert "Running" in text_of(browser, "tracker-state")
    assert text_of(browser, "tracker-interval") == "1 s"
    assert text_of(browser, "tracker-toggle") == "Stop the tracker"
    status = daemon.call("tracker.status")
    assert (status["running"], status["interval_seconds"]) == (True, 1)
    newest = lastfm_sim.scrobbles()[0]
    wait_for(browser, lambda d: newest.title in text_of(d, "tracker-last"))
    screenshot("tracker-running")

    reload_marker = browser.execute_script("return window.performance.timeOrigin")
    (added,) = lastfm_sim.add_scrobbles(1, at=int(time.time()))
    added_at = time.monotonic()
    wait_for(browser, lambda d: f"{added.artist} — {added.title}" in text_of(d, "tracker-last"))
    print(f"scrobble to page: {(time.monotonic() - added_at) * 1000:.0f} ms (interval 1 s)")
    assert browser.execute_script("return window.performance.timeOrigin") == reload_marker
    screenshot("new-scrobble")

    by_id(browser, "tracker-toggle").click()
    wait_for(browser, lambda d: "tracker-stopped" in classes(d, "tracker"))
    assert daemon.call("tracker.status")["running"] is False


def test_hostile_names_are_shown_as_text(
    browser: WebDriver,
    screenshot: Screenshot,
    start_daemon: StartDaemon,
    lastfm_sim: SimulatedLastfm,
) -> None:
    """A track named ``<img src=x onerror=alert(1)>`` shows those characters, runs nothing;
    control characters and bidi overrides are shown as visible symbols."""
    lastfm_sim.reset(size=20, seed=5)
    daemon, url = page_daemon(start_daemon, lastfm_sim)
    daemon.call("tracker.start", {"interval_seconds": 1})
    open_page(browser, url)
    hostile = "<img src=x onerror=alert(1)>"
    lastfm_sim.add_rows(
        [
            {
                "timestamp": int(time.time()),
                "artist": "Bell\x07\x1b[31mRed",
                "title": hostile,
                "album": "<script>alert(2)</script>\u202eevil",
            }
        ]
    )
    lastfm_sim.set_now_playing("<b>bold</b>", hostile, "")
    wait_for(browser, lambda d: hostile in text_of(d, "tracker-last"))
    wait_for(browser, lambda d: hostile in text_of(d, "tracker-now"))
    last = text_of(browser, "tracker-last")
    assert "Bell\u2407\u241b[31mRed" in last
    assert "<script>alert(2)</script><U+202E>evil" in last
    assert "<b>bold</b>" in text_of(browser, "tracker-now")
    assert browser.find_elements(By.CSS_SELECTOR, "#tracker img, #tracker b, #tracker script") == []
    # An alert would have opened by now: an onerror of a broken image fires at once.
    assert browser.execute_script("return typeof window.alert") == "function"
    screenshot("hostile-names")
