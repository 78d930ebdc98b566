"""Driving the Settings page in Chromium: open it on a daemon, wait for what a person sees."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.support import free_port

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement

    from tests.fixtures.lastfm import SimulatedLastfm

T = TypeVar("T")


class PageDaemon(Protocol):
    """What serves a page: a daemon process, or the services served in the test's process
    (``tests/fixtures/threaded.py``)."""

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any: ...

    def http_login_url(self) -> str: ...


D = TypeVar("D", bound=PageDaemon)

_DAEMON_AT: dict[str, PageDaemon] = {}
"""The daemon serving each page URL ``page_daemon`` made: ``open_page`` logs in there."""


def page_daemon(
    start: Callable[..., D],
    lastfm_sim: SimulatedLastfm,
    lastfm: dict[str, Any] | None = None,
    **http: Any,
) -> tuple[D, str]:
    """musiqued against the simulator with ``[http] listen`` on a free loopback port;
    ``start``: ``start_daemon`` (a process) or ``serve_in_thread`` (no process)."""
    port = free_port()
    daemon = start(
        **lastfm_sim.sections(**(lastfm or {})), http={"listen": f"127.0.0.1:{port}", **http}
    )
    url = f"http://127.0.0.1:{port}"
    serves_page(daemon, url)
    return daemon, url


def serves_page(daemon: PageDaemon, url: str) -> None:
    """``daemon`` serves the page at ``url``: ``log_in`` asks it for the login link."""
    _DAEMON_AT[url] = daemon


def log_in(driver: WebDriver, url: str) -> None:
    """Give the browser a session on the page at ``url`` (made by ``page_daemon``) as a
    person does: through the one-time link ``musiquectl web`` prints."""
    origin = "/".join(url.split("/", 3)[:3])
    port = origin.rsplit(":", 1)[1]
    if driver.current_url.startswith(origin) and driver.get_cookie(f"musiqued_session_{port}"):
        return
    driver.get(_DAEMON_AT[origin].http_login_url())


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], T], timeout: float = 20) -> T:
    """``condition(driver)`` once it is truthy (it is re-read every 50 ms; an element the
    page replaced meanwhile just means "read again")."""
    wait = WebDriverWait(
        driver, timeout, poll_frequency=0.05, ignored_exceptions=[StaleElementReferenceException]
    )
    return wait.until(condition)  # type: ignore[no-any-return]


def open_page(driver: WebDriver, url: str) -> float:
    """Log in, open the page and wait until it shows the daemon's state and follows it
    live; returns the seconds opening it took."""
    log_in(driver, url)
    started = time.monotonic()
    driver.get(url)
    wait_for(
        driver,
        lambda d: (
            body_attribute(d, "data-link") == "live" and body_attribute(d, "data-loaded") == "true"
        ),
    )
    return time.monotonic() - started


@contextmanager
def script_on_every_page(driver: WebDriver, source: str) -> Iterator[None]:
    """Run ``source`` in every document the browser opens from now on, before the page's
    own scripts; the browser is shared between tests, so the script goes when this ends."""
    added = driver.execute_cdp_cmd(  # type: ignore[attr-defined]
        "Page.addScriptToEvaluateOnNewDocument", {"source": source}
    )
    try:
        yield
    finally:
        driver.execute_cdp_cmd(  # type: ignore[attr-defined]
            "Page.removeScriptToEvaluateOnNewDocument", {"identifier": added["identifier"]}
        )


PAGE_CLOCK_SPEED = 10
"""How many times faster than real time the page's timers run under ``page_clock_sped_up``."""

SPEED_UP_PAGE_TIMERS = f"""
(() => {{
  const speed = {PAGE_CLOCK_SPEED};
  const realTimeout = window.setTimeout.bind(window);
  const realInterval = window.setInterval.bind(window);
  window.setTimeout = (handler, ms = 0, ...args) => realTimeout(handler, ms / speed, ...args);
  window.setInterval = (handler, ms = 0, ...args) => realInterval(handler, ms / speed, ...args);
}})();
"""


@contextmanager
def page_clock_sped_up(driver: WebDriver) -> Iterator[None]:
    """Every page opened inside runs its timers (its polls, its reconnection backoff, its
    debounced refreshes) ``PAGE_CLOCK_SPEED`` times faster than real time: the page's
    clock, moved on by the test, as the daemon's services take a clock (the page reads no
    elapsed time, only its timers'). What the page does on that clock is unchanged; a test
    waits on what it shows, never on the time. The ``browser`` fixture runs every test
    inside."""
    with script_on_every_page(driver, SPEED_UP_PAGE_TIMERS):
        yield


def body_attribute(driver: WebDriver, name: str) -> str | None:
    """The page's ``<body>`` attribute ``name``, read in one command: a body found by one
    command and read by the next may belong to a document a reload (the login's, say)
    replaced meanwhile, which chromedriver reports as an unknown error ("Node with given id
    does not belong to the document"), not as a stale element."""
    value = driver.execute_script(
        "return document.body && document.body.getAttribute(arguments[0]);", name
    )
    return None if value is None else str(value)


def by_id(driver: WebDriver, element_id: str) -> WebElement:
    return driver.find_element(By.ID, element_id)


def text_of(driver: WebDriver, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def classes(driver: WebDriver, element_id: str) -> set[str]:
    return set((by_id(driver, element_id).get_attribute("class") or "").split())


def job_row(driver: WebDriver, job_id: int) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, f'#jobs-body tr[data-job-id="{job_id}"]')


def click_job_button(driver: WebDriver, job_id: int, action: str) -> None:
    """Click a job's button (Pause, Resume, Cancel, Log) once it is there."""
    selector = f'#jobs-body button[data-job="{job_id}"][data-action="{action}"]'
    wait_for(driver, lambda d: d.find_element(By.CSS_SELECTOR, selector).click() is None)


PHONE_WIDTH = 390


@contextmanager
def phone_view(driver: WebDriver, width: int = PHONE_WIDTH, height: int = 844) -> Iterator[None]:
    """The page as a phone shows it: a viewport ``width`` CSS pixels wide (the browser is
    shared between tests, so the desktop viewport comes back when this ends)."""
    driver.execute_cdp_cmd(  # type: ignore[attr-defined]
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True},
    )
    try:
        yield
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})  # type: ignore[attr-defined]


WIDER_THAN_THE_SCREEN = """
const width = document.documentElement.clientWidth;
const wide = [];
for (const node of document.querySelectorAll("body *")) {
  if (node.closest(".scroll") || node.closest("[hidden]") || node.closest("dialog:not([open])")) continue;
  const box = node.getBoundingClientRect();
  if (box.width && (box.left < -0.5 || box.right > width + 0.5)) {
    wide.push(`${node.tagName.toLowerCase()}#${node.id}.${node.className}: ${Math.round(box.left)}..${Math.round(box.right)}`);
  }
}
return {
  width: width,
  scrollWidth: document.documentElement.scrollWidth,
  wide: wide.slice(0, 10),
};
"""


def wider_than_the_screen(driver: WebDriver) -> list[str]:
    """Elements that stick out of the viewport sideways (those inside a ``.scroll`` box
    scroll in it), and the page itself if it scrolls sideways."""
    found = driver.execute_script(WIDER_THAN_THE_SCREEN)
    problems = [str(item) for item in found["wide"]]
    if found["scrollWidth"] > found["width"]:
        problems.append(f"the page is {found['scrollWidth']} px wide in {found['width']} px")
    return problems


def console_problems(driver: WebDriver) -> list[str]:
    """Errors and warnings the browser's console got since it was last read."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")  # type: ignore[attr-defined]
        if entry["level"] in ("SEVERE", "WARNING")
    ]
