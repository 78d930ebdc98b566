"""The Settings page in a real headless Chromium, against musiqued and the simulated Last.fm.

Each test drives the page as a person would (clicks, dialogs) and checks what the page
shows; a screenshot of each state goes to build/screenshots/.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By

from tests.page_support import (
    body_attribute,
    by_id,
    classes,
    click_job_button,
    job_row,
    open_page,
    page_daemon,
    script_on_every_page,
    text_of,
    wait_for,
)

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

    from tests.fixtures.daemon import StartDaemon
    from tests.fixtures.lastfm import SimulatedLastfm
    from tests.fixtures.threaded import ServeInThread

Screenshot = Callable[[str], Path]


def test_tracker_turns_green_and_new_scrobbles_appear_live(
    browser: WebDriver,
    screenshot: Screenshot,
    serve_in_thread: ServeInThread,
    lastfm_sim: SimulatedLastfm,
) -> None:
    """Start on the tracker card turns it green (the daemon agrees); a scrobble added to
    Last.fm shows up as the last track without reloading the page."""
    lastfm_sim.reset(size=300, seed=4)
    daemon, url = page_daemon(serve_in_thread, lastfm_sim)
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
    serve_in_thread: ServeInThread,
    lastfm_sim: SimulatedLastfm,
) -> None:
    """A track named ``<img src=x onerror=alert(1)>`` shows those characters, runs nothing;
    control characters and bidi overrides are shown as visible symbols."""
    lastfm_sim.reset(size=20, seed=5)
    daemon, url = page_daemon(serve_in_thread, lastfm_sim)
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
    # Had markup been parsed, the broken image's onerror would have opened an alert.
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 (reading it is the check)
    screenshot("hostile-names")


def test_import_dialog_shows_progress_and_the_final_figures(
    browser: WebDriver,
    screenshot: Screenshot,
    serve_in_thread: ServeInThread,
    lastfm_sim: SimulatedLastfm,
) -> None:
    """The dialog starts an import of 2,000 scrobbles; the bar moves while it runs; the
    notification at the end gives the original's figures, the same as the daemon's job."""
    lastfm_sim.reset(size=3000, seed=6)
    daemon, url = page_daemon(
        serve_in_thread, lastfm_sim, lastfm={"requests_per_second": 5.0, "max_in_flight": 1}
    )
    open_page(browser, url)
    by_id(browser, "import-open").click()
    wait_for(browser, lambda d: by_id(d, "import-dialog").get_attribute("open") is not None)
    assert by_id(browser, "import-limit").get_attribute("value") == "1000"
    assert by_id(browser, "import-skip").is_selected()
    limit = by_id(browser, "import-limit")
    limit.clear()
    limit.send_keys("2000")
    screenshot("import-dialog")
    by_id(browser, "import-start").click()

    seen: set[float] = set()

    def progressed(driver: WebDriver) -> bool:
        seen.add(float(by_id(driver, "import-bar").get_attribute("value") or 0))
        return any(0 < value < 1 for value in seen)

    wait_for(browser, progressed, timeout=30)
    assert "running" in text_of(browser, "import-title-line")
    assert "scrobbles/s" in text_of(browser, "import-rate")
    screenshot("import-running")
    notice = wait_for(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, "#notices .notice.success"),
        timeout=60,
    )[0]
    job = daemon.call("jobs.list")[0]
    assert job["state"] == "done"
    assert float(by_id(browser, "import-bar").get_attribute("value") or 0) == 1.0
    figures = dict(
        zip(
            [dt.text for dt in notice.find_elements(By.TAG_NAME, "dt")],
            [dd.text for dd in notice.find_elements(By.TAG_NAME, "dd")],
            strict=True,
        )
    )
    assert f"Import #{job['job_id']} finished" in notice.text
    assert figures["Imported"] == "2,000"
    assert figures["Refreshed"] == "0"
    assert figures["Skipped"] == "0"
    assert figures["Errors"] == "0"
    assert figures["Total Last.fm scrobbles"] == "3,000"
    assert figures["Albums enriched"].endswith(f"/ {job['total_albums_to_enrich']} to enrich")
    assert figures["Duration"].endswith(" s")
    assert (job["tracks_imported"], job["total_scrobbles"]) == (2000, 3000)
    assert "done" in by_id(browser, "jobs-body").text
    screenshot("import-done")


def test_pause_resume_and_log_of_a_job(
    browser: WebDriver,
    screenshot: Screenshot,
    start_daemon: StartDaemon,
    lastfm_sim: SimulatedLastfm,
) -> None:
    """Pause on a running job pauses it (the daemon says so), Resume resumes it, Cancel
    ends it; Log shows the daemon's records for that job."""
    lastfm_sim.reset(size=4000, seed=7)
    daemon, url = page_daemon(
        start_daemon, lastfm_sim, lastfm={"requests_per_second": 2.0, "max_in_flight": 1}
    )
    open_page(browser, url)
    job_id = daemon.call("import.start", {"all": True})["job_id"]
    click_job_button(browser, job_id, "pause")
    wait_for(browser, lambda d: job_state(d, job_id) == "paused")
    assert daemon.call("jobs.get", {"job_id": job_id})["state"] == "paused"
    screenshot("job-paused")
    click_job_button(browser, job_id, "resume")
    wait_for(browser, lambda d: job_state(d, job_id) == "running")
    assert daemon.call("jobs.get", {"job_id": job_id})["state"] == "running"
    click_job_button(browser, job_id, "cancel")
    wait_for(browser, lambda d: job_state(d, job_id) == "cancelled")
    assert daemon.call("jobs.get", {"job_id": job_id})["state"] == "cancelled"
    assert browser.find_elements(By.CSS_SELECTOR, f'#notices .notice[data-job-id="{job_id}"]')

    click_job_button(browser, job_id, "log")
    wait_for(browser, lambda d: by_id(d, "log-dialog").get_attribute("open") is not None)
    lines = [line.text for line in browser.find_elements(By.CSS_SELECTOR, "#log-lines .log-line")]
    events = " | ".join(lines)
    for expected in ("job created", "job running", "job halted"):
        assert expected in events, events
    assert "state: paused" in events
    assert "state: cancelled" in events
    assert "=" not in events
    assert f"MUSIQUE_JOB_ID={job_id}" in text_of(browser, "log-note")
    screenshot("job-log")
    by_id(browser, "log-close").click()


def job_state(driver: WebDriver, job_id: int) -> str:
    row = job_row(driver, job_id)
    return str(row.find_element(By.CSS_SELECTOR, ".job-state").text)


def test_token_asks_for_a_login_first(
    browser: WebDriver,
    screenshot: Screenshot,
    serve_in_thread: ServeInThread,
    lastfm_sim: SimulatedLastfm,
) -> None:
    """With ``[http] token`` the page shows only its login form; a wrong token is refused in
    words; the right one opens the page, whose requests and WebSocket then work."""
    daemon, url = page_daemon(serve_in_thread, lastfm_sim, token="page-token-0123456789")
    browser.get(url)
    form = wait_for(browser, lambda d: d.find_elements(By.ID, "login-form"))[0]
    assert browser.find_elements(By.ID, "tracker") == []
    by_id(browser, "token").send_keys("wrong")
    by_id(browser, "login-submit").click()
    wait_for(browser, lambda d: text_of(d, "login-error") == "wrong token")
    screenshot("login-refused")
    assert form.is_displayed()
    token = by_id(browser, "token")
    token.clear()
    token.send_keys("page-token-0123456789")
    by_id(browser, "login-submit").click()
    wait_for(browser, lambda d: link_mode(d) == "live")
    wait_for(
        browser, lambda d: "listens" in text_of(d, "listens") and "–" not in text_of(d, "listens")
    )
    cookie = browser.get_cookie(f"musiqued_session_{url.rsplit(':', 1)[1]}")
    assert cookie is not None
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert "page-token-0123456789" not in cookie["value"]
    by_id(browser, "tracker-toggle").click()
    wait_for(browser, lambda d: "tracker-running" in classes(d, "tracker"))
    assert daemon.call("tracker.status")["running"] is True


def test_no_content_security_policy_violation(
    browser: WebDriver, serve_in_thread: ServeInThread, lastfm_sim: SimulatedLastfm
) -> None:
    """The page runs under its CSP (no inline script, only its own origin) without a
    single violation or script error in the browser's console."""
    _, url = page_daemon(serve_in_thread, lastfm_sim)
    browser.get_log("browser")  # forget what earlier pages logged
    open_page(browser, url)
    by_id(browser, "import-open").click()
    by_id(browser, "import-cancel").click()
    problems = [
        entry["message"]
        for entry in browser.get_log("browser")
        if entry["level"] in ("SEVERE", "WARNING")
    ]
    assert problems == []
    injected = browser.execute_script(
        "const s = document.createElement('script');"
        "s.textContent = 'window.__inline = 1';"
        "document.body.append(s); return window.__inline === undefined;"
    )
    assert injected is True, "an inline script ran despite the CSP"
    refusals = [entry["message"] for entry in browser.get_log("browser")]
    assert any("Content Security Policy" in message for message in refusals), refusals


@pytest.mark.slow
def test_page_polls_while_its_socket_is_down_and_reconnects(
    browser: WebDriver,
    screenshot: Screenshot,
    serve_in_thread: ServeInThread,
    lastfm_sim: SimulatedLastfm,
) -> None:
    """When the daemon restarts (its services, socket and listener closed and opened again)
    the page says it lost the live link and polls every 5 s (a new scrobble still shows
    up); once the WebSocket can open again it is live again."""
    lastfm_sim.reset(size=50, seed=9)
    daemon, url = page_daemon(serve_in_thread, lastfm_sim)
    daemon.call("tracker.start", {"interval_seconds": 1})
    # A network fault for the page's WebSockets only, switched by the test: while
    # window.__cutSockets is set, new ones go to a path without a WebSocket (404), while the
    # rest of the HTTP API stays reachable.
    cut_sockets = (
        "const Real = window.WebSocket;"
        "window.WebSocket = class extends Real {"
        " constructor(u, p) { super(window.__cutSockets ? u + '-cut' : u, p); } };"
    )
    with script_on_every_page(browser, cut_sockets):
        open_page(browser, url)
        browser.execute_script("window.__cutSockets = true")
        daemon.stop()
        daemon.start()
        # While it was stopped the page may have said so (down); back, it polls.
        wait_for(browser, lambda d: "polling every 5 s" in text_of(d, "link"), timeout=30)
        assert link_mode(browser) == "polling"
        (added,) = lastfm_sim.add_scrobbles(1, at=int(time.time()))
        wait_for(browser, lambda d: added.title in text_of(d, "tracker-last"), timeout=30)
        assert link_mode(browser) == "polling"
        screenshot("polling")
        browser.execute_script("window.__cutSockets = false")
        wait_for(browser, lambda d: link_mode(d) == "live", timeout=30)


def link_mode(driver: WebDriver) -> str:
    return str(body_attribute(driver, "data-link"))


def test_import_errors_are_said_in_words(
    browser: WebDriver,
    screenshot: Screenshot,
    serve_in_thread: ServeInThread,
    lastfm_sim: SimulatedLastfm,
) -> None:
    """A private profile fails the import: the notification says why, as the daemon does;
    a second import while one runs is refused in the dialog with the daemon's reason."""
    lastfm_sim.reset(size=4000, seed=10)
    daemon, url = page_daemon(
        serve_in_thread, lastfm_sim, lastfm={"requests_per_second": 2.0, "max_in_flight": 1}
    )
    lastfm_sim.configure(private=True)
    open_page(browser, url)
    by_id(browser, "import-open").click()
    by_id(browser, "import-start").click()
    notice = wait_for(
        browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#notices .notice.failure"), timeout=60
    )[0]
    job = daemon.call("jobs.list")[0]
    assert job["state"] == "failed"
    assert f"Import #{job['job_id']} failed" in notice.text
    # The command the daemon names is shown as code, without its backticks.
    assert "`musiquectl lastfm login`" in job["error"]
    assert job["error"].replace("`", "") in notice.text
    assert "hides its recent tracks" in job["error"]
    assert job["error"].replace("`", "") in text_of(browser, "import-trouble")
    assert "`" not in text_of(browser, "import-trouble")
    screenshot("import-failed")

    lastfm_sim.configure(private=False, rate_limit=0.0)
    running = daemon.call("import.start", {"all": True})["job_id"]
    by_id(browser, "import-open").click()
    by_id(browser, "import-start").click()
    problem = wait_for(browser, lambda d: text_of(d, "import-form-error"))
    assert f"job {running}" in problem
    # The daemon's "`musiquectl jobs cancel N`" is the button beside the job on this page.
    assert "`" not in problem
    assert "Cancel (in the jobs table)" in problem
    assert by_id(browser, "import-dialog").get_attribute("open") is not None
    screenshot("import-refused")
    daemon.call("jobs.cancel", {"job_id": running})


# The page's answers to GET /api/v1/jobs/<id> are held until the page has handled a job's
# "failed" event (released a task later, once every listener of that event has run).
HOLD_JOB_ANSWERS_PAST_FAILURE = """
window.__failureSeen = new Promise((resolve) => {
  const Real = window.WebSocket;
  window.WebSocket = class extends Real {
    constructor(u, p) {
      super(u, p);
      this.addEventListener("message", (event) => {
        const message = JSON.parse(event.data);
        if (message.topic === "job" && message.data.state === "failed") setTimeout(resolve, 0);
      });
    }
  };
});
const realFetch = window.fetch;
window.fetch = async (url, init) => {
  const answer = await realFetch(url, init);
  if (/\\/api\\/v1\\/jobs\\/\\d+$/.test(String(url))) {
    await window.__failureSeen;
    document.body.dataset.lateAnswer = "delivered";
  }
  return answer;
};
"""


def test_an_answer_older_than_the_failure_does_not_undo_it(
    browser: WebDriver,
    serve_in_thread: ServeInThread,
    lastfm_sim: SimulatedLastfm,
) -> None:
    """The page asks for the import it started while the job still runs; the answer
    ("running") reaches it only after the event saying the job failed. The page keeps
    showing the failure and its reason."""
    lastfm_sim.reset(size=400, seed=10)
    daemon, url = page_daemon(serve_in_thread, lastfm_sim)
    lastfm_sim.configure(private=True)
    # Every Last.fm answer takes a second: the job is still running when the page asks.
    lastfm_sim.set_faults(rate=1.0, kinds=["slow"], slow_seconds=1.0)
    with script_on_every_page(browser, HOLD_JOB_ANSWERS_PAST_FAILURE):
        open_page(browser, url)
        by_id(browser, "import-open").click()
        by_id(browser, "import-start").click()
        wait_for(browser, lambda d: body_attribute(d, "data-late-answer") == "delivered", 60)
    job = daemon.call("jobs.list")[0]
    assert job["state"] == "failed"
    assert "hides its recent tracks" in job["error"]
    assert text_of(browser, "import-title-line") == f"Import #{job['job_id']}: failed"
    assert job["error"].replace("`", "") in text_of(browser, "import-trouble")
    assert "failed" in job_row(browser, job["job_id"]).text
