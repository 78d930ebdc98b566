"""The Settings page's mirror card in a real headless Chromium, and the endpoints behind it,
against musiqued and the simulated ListenBrainz."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.history_support import generated, seed
from tests.page_support import by_id, open_page, serves_page, text_of, wait_for
from tests.support import HTTP_TOKEN, bearer, free_port

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

    from tests.fixtures.listenbrainz import SimulatedListenBrainz
    from tests.fixtures.threaded import ServeInThread


def post(url: str) -> tuple[int, Any]:
    """POST an empty JSON body: the status and the JSON answer, whatever the status."""
    request = urllib.request.Request(url, data=b"{}", method="POST")  # noqa: S310
    request.add_header("Content-Type", "application/json")
    for name, value in bearer().items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return int(answer.status), json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), json.loads(exc.read())


def test_mirror_card_shows_progress_and_pauses(
    browser: WebDriver,
    serve_in_thread: ServeInThread,
    workdir: Path,
    listenbrainz_sim: SimulatedListenBrainz,
) -> None:
    """Once the backlog is sent the card says so with the count; Pause pauses the daemon's
    mirror and Resume sends again."""
    seed(workdir / "musique.db", generated(1200))
    port = free_port()
    daemon = serve_in_thread(
        **listenbrainz_sim.sections(), http={"listen": f"127.0.0.1:{port}", "token": HTTP_TOKEN}
    )
    serves_page(daemon, f"http://127.0.0.1:{port}")
    daemon.wait_until(lambda: daemon.call("mirror.status")["pending"] == 0, timeout=30)
    open_page(browser, f"http://127.0.0.1:{port}/settings")
    wait_for(browser, lambda d: text_of(d, "mirror-state") == "Up to date")
    assert text_of(browser, "mirror-submitted") == "1,200 listens"
    assert text_of(browser, "mirror-pending") == "0"
    by_id(browser, "mirror-toggle").click()
    wait_for(browser, lambda d: text_of(d, "mirror-state") == "Paused")
    assert daemon.call("mirror.status")["paused"] is True
    assert text_of(browser, "mirror-toggle") == "Resume"
    by_id(browser, "mirror-toggle").click()
    wait_for(browser, lambda d: text_of(d, "mirror-toggle") == "Pause")
    assert daemon.call("mirror.status")["paused"] is False


def test_mirror_card_says_a_refused_token_needs_a_human(
    browser: WebDriver,
    serve_in_thread: ServeInThread,
    listenbrainz_sim: SimulatedListenBrainz,
) -> None:
    """A token the server refuses shows on the card as stopped, with the error in words."""
    port = free_port()
    daemon = serve_in_thread(
        **listenbrainz_sim.sections(token="wrong-token"),
        http={"listen": f"127.0.0.1:{port}", "token": HTTP_TOKEN},
    )
    serves_page(daemon, f"http://127.0.0.1:{port}")
    daemon.wait_until(lambda: daemon.call("mirror.status")["state"] == "stopped", timeout=20)
    open_page(browser, f"http://127.0.0.1:{port}/settings")
    wait_for(browser, lambda d: text_of(d, "mirror-state").startswith("Stopped: needs a human"))
    assert "check listenbrainz.token" in text_of(browser, "mirror-error")
    assert "wrong-token" not in browser.page_source


def test_mirror_endpoints_pause_resume_and_refuse_other_actions(
    serve_in_thread: ServeInThread, listenbrainz_sim: SimulatedListenBrainz
) -> None:
    """POST /api/v1/mirror/pause and /resume answer the mirror's status; another action is a
    404 saying what can be done, and changes nothing."""
    port = free_port()
    daemon = serve_in_thread(
        **listenbrainz_sim.sections(), http={"listen": f"127.0.0.1:{port}", "token": HTTP_TOKEN}
    )
    serves_page(daemon, f"http://127.0.0.1:{port}")
    base = f"http://127.0.0.1:{port}/api/v1/mirror"
    status, body = post(f"{base}/pause")
    assert (status, body["paused"], body["state"]) == (200, True, "paused")
    status, body = post(f"{base}/explode")
    assert (status, body["detail"]) == (404, "the mirror can be paused or resumed")
    assert daemon.call("mirror.status")["paused"] is True
    status, body = post(f"{base}/resume")
    assert (status, body["paused"]) == (200, False)
