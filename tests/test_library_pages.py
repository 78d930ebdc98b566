"""The library's pages in a real headless Chromium, at 1280 and 390 px: each view shows the
daemon's answers, hostile names as text, no console error, nothing wider than a phone's
screen, every control labelled and reachable by keyboard. Screenshots go to
build/screenshots/."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from musiqued.models import Scrobble
from tests.history_support import seed
from tests.page_support import (
    PHONE_WIDTH,
    body_attribute,
    console_problems,
    log_in,
    phone_view,
    serves_page,
    wait_for,
    wider_than_the_screen,
)
from tests.support import free_port

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

    from tests.fixtures.threaded import ServeInThread

Screenshot = Callable[[str], Path]
HOSTILE = '<img src=x onerror="document.title=1">'
HEBREW = "להקה עברית"

UNLABELLED = """
const missing = [];
for (const node of document.querySelectorAll("main input, main select, main button, main a, nav a")) {
  const named = node.labels && node.labels.length ? node.labels[0].textContent.trim()
    : (node.getAttribute("aria-label") || node.textContent || "").trim();
  if (!named) missing.push(node.outerHTML.slice(0, 80));
  if (node.tabIndex < 0) missing.push(`not reachable: ${node.outerHTML.slice(0, 80)}`);
}
return missing;
"""


def _listens(now: int) -> list[Scrobble]:
    out = []
    names = ("Sigur Rós", HOSTILE, HEBREW)
    for i in range(400):
        artist = names[i % 3]
        out.append(
            Scrobble(
                timestamp=now - 3600 * 24 * 400 + i * 86400,
                artist=artist,
                title=f"{artist} song {i % 5}",
                album=f"{artist} album",
                loved=i % 7 == 0,
            )
        )
    return out


def test_every_view_at_both_widths(
    browser: WebDriver, screenshot: Screenshot, serve_in_thread: ServeInThread, workdir: Path
) -> None:
    """Overview, Top, Album, Artist, History and Year in review load without a console
    error, show the hostile names as their text, fit 390 px, label every control."""
    now = int(time.time())
    seed(workdir / "musique.db", _listens(now))
    port = free_port()
    daemon = serve_in_thread(http={"listen": f"127.0.0.1:{port}"})
    serves_page(daemon, f"http://127.0.0.1:{port}")
    log_in(browser, f"http://127.0.0.1:{port}")
    base = f"http://127.0.0.1:{port}/library"
    album_id = daemon.call("library.top", {"kind": "albums"})["items"][0]["id"]
    artist_id = daemon.call("library.artist", {"name": HOSTILE})["id"]
    year = time.gmtime(now - 86400 * 200).tm_year
    views = {
        "overview": "#/overview?period=all",
        "top": "#/top?kind=albums&period=all&n=10",
        "album": f"#/album/{album_id}",
        "artist": f"#/artist/{artist_id}",
        "history": "#/history?q=sigur%20ros",
        "year": f"#/year/{year}",
    }
    for width in (1280, PHONE_WIDTH):
        for name, fragment in views.items():
            browser.get("about:blank")
            console_problems(browser)  # read away what came before
            if width == PHONE_WIDTH:
                with phone_view(browser):
                    _check(browser, f"{base}{fragment}", name)
                    screenshot(f"{name}-{width}")
            else:
                browser.set_window_size(1280, 900)
                _check(browser, f"{base}{fragment}", name)
                screenshot(f"{name}-{width}")
    browser.get(f"{base}#/history?q=sigur%20ros")
    wait_for(browser, lambda d: body_attribute(d, "data-loaded") == "history")
    rows = browser.execute_script(
        "return document.querySelectorAll('#history-list tbody tr').length"
    )
    assert rows == 100  # a first page; "More" brings the rest
    browser.execute_script("document.getElementById('history-more').click()")
    wait_for(
        browser,
        lambda d: (
            d.execute_script("return document.querySelectorAll('#history-list tbody tr').length")
            == 134
        ),
    )
    assert browser.execute_script("return document.getElementById('history-more').hidden")


def _check(browser: WebDriver, url: str, name: str) -> None:
    browser.get(url)
    wait_for(browser, lambda d: body_attribute(d, "data-loaded") == name)
    problem = browser.execute_script("return document.getElementById('problem').hidden")
    assert problem, browser.execute_script("return document.getElementById('problem').textContent")
    text = browser.execute_script("return document.querySelector('main').textContent")
    if name in ("top", "artist", "year"):
        assert HOSTILE in text, name
    assert browser.title != "1"
    assert browser.execute_script("return document.querySelectorAll('main img[src=x]').length") == 0
    assert wider_than_the_screen(browser) == [], name
    assert browser.execute_script(UNLABELLED) == [], name
    assert console_problems(browser) == [], name
