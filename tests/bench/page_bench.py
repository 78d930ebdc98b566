"""The Settings page in headless Chromium: how long it takes to open, and how long a new
scrobble takes from the simulated Last.fm to the page.

The daemon runs as a real process (``[http] listen`` on loopback, tracker interval 1 s);
Chromium (Debian's, through chromedriver) opens the page. "Open" is from ``driver.get`` to
the page showing the daemon's state and following it live (WebSocket open, first reads
done). For a scrobble: the time from adding it to the simulator to its title on the page,
and the part of it after the tracker's poll started (``tracker.status.last_poll_at``),
i.e. Last.fm request + write + event + WebSocket + rendering; the rest is waiting for
the next poll (half the interval on average).

    .venv/bin/python tests/bench/page_bench.py [--samples 10]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from musiqued.sim.lastfm import API_PATH, LastfmSim, make_app
from musiqued.sim.server import ThreadedServer
from tests.page_support import open_page, text_of, wait_for
from tests.support import DaemonProcess, base_sections, free_port, short_tmp, write_config


def chromium() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return f"median {statistics.median(values) * 1000:.0f} ms, p90 {p90 * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10)
    args = parser.parse_args()

    sim = LastfmSim()
    sim.reset(size=2000, seed=42)
    server = ThreadedServer(lambda: make_app(sim)).start()
    driver = chromium()
    port = free_port()
    try:
        with short_tmp() as workdir:
            sections = base_sections(
                workdir,
                lastfm={
                    "api_url": server.base_url + API_PATH,
                    "api_key": sim.settings.api_key,
                    "username": sim.settings.username,
                    "requests_per_second": 100.0,
                },
                tracker={"interval_seconds": 1, "autostart": True},
                http={"listen": f"127.0.0.1:{port}"},
            )
            config = write_config(workdir / "musiqued.toml", sections)
            daemon = DaemonProcess(workdir, config, workdir / "d.sock").start()
            try:
                daemon.wait_until(lambda: daemon.call("daemon.status")["listens"] == 2000)
                url = f"http://127.0.0.1:{port}/"
                driver.get(daemon.http_login_url())  # as `musiquectl web` does
                open_page(driver, url)  # warm: the first start of a renderer is slower
                loads = [open_page(driver, url) for _ in range(args.samples)]
                total: list[float] = []
                after_poll: list[float] = []
                for _ in range(args.samples):
                    (added,) = sim.add_scrobbles(1, at=int(time.time()))
                    added_at = time.time()
                    wait_for(driver, lambda d, a=added: a.title in text_of(d, "tracker-last"))
                    shown_at = time.time()
                    poll = daemon.call("tracker.status")["last_poll_at"]
                    total.append(shown_at - added_at)
                    after_poll.append(shown_at - max(poll, added_at))
                    # At a random phase of the next poll interval, so the wait is unbiased.
                    time.sleep(random.uniform(1.0, 2.0))
            finally:
                daemon.stop()
    finally:
        driver.quit()
        server.stop()
    print(f"page open (get → state shown, live): {ms(loads)} over {len(loads)} loads")
    print(f"scrobble → page (interval 1 s): {ms(total)} over {len(total)} scrobbles")
    print(f"  of which after the poll started: {ms(after_poll)}")


if __name__ == "__main__":
    main()
