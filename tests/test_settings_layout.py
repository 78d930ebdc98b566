"""The Settings page's layout in a real headless Chromium: on a desktop (1280 px) and on a
phone (390 px), with covers from the daemon's image cache and names in any script.

Screenshots of each state, at both widths, go to build/screenshots/.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from selenium.webdriver.common.by import By

from tests.page_support import (
    PHONE_WIDTH,
    by_id,
    console_problems,
    open_page,
    phone_view,
    serves_page,
    text_of,
    wait_for,
    wider_than_the_screen,
)
from tests.support import free_port

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

    from tests.fixtures.enrichment import SimulatedSpotify
    from tests.fixtures.lastfm import SimulatedLastfm
    from tests.fixtures.threaded import ServeInThread

Screenshot = Callable[[str], Path]

COVERS_SHOWN = """
return [...document.querySelectorAll('#albums-list img.cover')]
  .filter((img) => img.complete && img.naturalWidth > 0 && img.src.includes('/images/'))
  .length;
"""


def box(driver: WebDriver, selector: str) -> dict[str, float]:
    found: dict[str, float] = driver.execute_script(
        "const r = document.querySelector(arguments[0]).getBoundingClientRect();"
        "return {left: r.left, right: r.right, top: r.top, bottom: r.bottom};",
        selector,
    )
    return found


def test_the_page_fits_a_phone_and_shows_covers(
    browser: WebDriver,
    screenshot: Screenshot,
    serve_in_thread: ServeInThread,
    lastfm_sim: SimulatedLastfm,
    spotify_sim: SimulatedSpotify,
) -> None:
    """At 1280 px the albums show their covers, served by the daemon; at 390 px the cards
    are one column, nothing is wider than the screen (the jobs table scrolls inside its
    card) and the import dialog fits; no console error at either width."""
    lastfm_sim.reset(size=600, seed=12)
    port = free_port()
    daemon = serve_in_thread(
        **lastfm_sim.sections(),
        **spotify_sim.sections(),
        enrichment={
            "retry_seconds": 0.1,
            "image_url_prefixes": [f"{lastfm_sim.base_url}/i/u/", f"{spotify_sim.base_url}/image/"],
        },
        http={"listen": f"127.0.0.1:{port}"},
    )
    serves_page(daemon, f"http://127.0.0.1:{port}")
    job_id = daemon.call("import.start", {"all": True})["job_id"]
    daemon.wait_until(lambda: daemon.call("jobs.get", {"job_id": job_id})["state"] == "done")

    def settled() -> bool:
        status = daemon.call("enrich.status")
        return bool(status["done"] and status["pending"] == status["running"] == 0)

    daemon.wait_until(settled, timeout=60)
    browser.get_log("browser")  # forget what earlier pages logged
    open_page(browser, f"http://127.0.0.1:{port}")
    wait_for(browser, lambda d: d.execute_script(COVERS_SHOWN) >= 3)
    assert wider_than_the_screen(browser) == []
    screenshot("wide")

    with phone_view(browser):
        assert browser.execute_script("return document.documentElement.clientWidth") == (
            PHONE_WIDTH
        )
        assert wider_than_the_screen(browser) == []
        lefts = {round(box(browser, f"#{card}")["left"]) for card in ("tracker", "import", "jobs")}
        assert len(lefts) == 1, f"cards side by side at {PHONE_WIDTH} px: {lefts}"
        scroller = browser.find_element(By.CSS_SELECTOR, "#jobs .scroll")
        assert browser.execute_script(
            "return arguments[0].scrollWidth > arguments[0].clientWidth", scroller
        ), "the jobs table should scroll inside its card"
        screenshot("phone")
        browser.execute_script("document.getElementById('jobs').scrollIntoView()")
        screenshot("phone-jobs")
        browser.execute_script("window.scrollTo(0, 0)")
        by_id(browser, "import-open").click()
        wait_for(browser, lambda d: by_id(d, "import-dialog").get_attribute("open") is not None)
        dialog = box(browser, "#import-dialog")
        assert dialog["left"] >= 0
        assert dialog["right"] <= PHONE_WIDTH
        start = box(browser, "#import-start")
        assert start["left"] >= 0
        assert start["right"] <= PHONE_WIDTH
        screenshot("phone-import-dialog")
        by_id(browser, "import-cancel").click()
    assert console_problems(browser) == []


def test_right_to_left_and_long_names_stay_in_their_place(
    browser: WebDriver,
    screenshot: Screenshot,
    serve_in_thread: ServeInThread,
    lastfm_sim: SimulatedLastfm,
) -> None:
    """A Hebrew artist and title are each isolated (``<bdi>``), so the separators and the
    time after them keep their order; a line separator in a title is shown as a symbol;
    a name without spaces wraps inside its card, at 1280 px and at 390 px."""
    lastfm_sim.reset(size=20, seed=13)
    port = free_port()
    daemon = serve_in_thread(**lastfm_sim.sections(), http={"listen": f"127.0.0.1:{port}"})
    serves_page(daemon, f"http://127.0.0.1:{port}")
    daemon.call("tracker.start", {"interval_seconds": 1})
    open_page(browser, f"http://127.0.0.1:{port}")
    long_album = "Supercalifragilisticexpialidocious" * 4
    lastfm_sim.add_rows(
        [
            {
                "timestamp": int(time.time()),
                "artist": "הדג נחש",
                "title": "שיר\u2028ראשון",
                "album": long_album,
            }
        ]
    )
    lastfm_sim.set_now_playing("فيروز", "نسم علينا الهوى", "")
    wait_for(browser, lambda d: "<U+2028>" in text_of(d, "tracker-last"))
    wait_for(browser, lambda d: "فيروز" in text_of(d, "tracker-now"))
    # Read in one go: the card is redrawn at each poll, which would leave nodes found
    # one call earlier stale.
    names = browser.execute_script(
        "return [...document.querySelectorAll('#tracker-last .song bdi')]"
        ".map((node) => node.innerText)"
    )
    assert names == ["הדג נחש", "שיר<U+2028>ראשון", long_album]
    when = browser.execute_script(
        "return document.querySelector('#tracker-last > .muted').innerText"
    )
    assert when.startswith("(")
    assert when.endswith(")")
    now_names = browser.execute_script(
        "return [...document.querySelectorAll('#tracker-now bdi')].map((node) => node.innerText)"
    )
    assert now_names == ["فيروز", "نسم علينا الهوى"]
    for width in (1280, PHONE_WIDTH):
        with phone_view(browser, width=width):
            card = box(browser, "#tracker")
            last = box(browser, "#tracker-last")
            assert last["right"] <= card["right"], f"the long name leaves its card at {width} px"
            assert wider_than_the_screen(browser) == []
            screenshot(f"right-to-left-{width}")
