"""Tracker latency: from a scrobble added to the simulated Last.fm to its ``scrobble`` event.

The daemon runs as a real process with ``interval_seconds = 1``; a subscriber on the control
socket timestamps each ``scrobble`` event. With a 1 s interval the expected median is about
half the interval plus one request and one page write.

    .venv/bin/python tests/bench/tracker_bench.py [--samples 20]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from musiquectl.client import Client, ClientError
from musiqued.sim.lastfm import API_PATH, LastfmSim, make_app
from musiqued.sim.server import ThreadedServer
from tests.support import DaemonProcess, base_sections, short_tmp, write_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()

    sim = LastfmSim()
    sim.reset(size=200, seed=42)
    server = ThreadedServer(lambda: make_app(sim)).start()
    seen: dict[int, float] = {}
    arrived = threading.Condition()
    try:
        with short_tmp() as workdir:
            sections = base_sections(
                workdir,
                lastfm={
                    "api_url": server.base_url + API_PATH,
                    "api_key": sim.settings.api_key,
                    "username": sim.settings.username,
                },
                tracker={"interval_seconds": 1, "autostart": True},
            )
            config = write_config(workdir / "musiqued.toml", sections)
            daemon = DaemonProcess(workdir, config, workdir / "d.sock").start()
            try:
                daemon.wait_until(lambda: daemon.call("daemon.status")["listens"] == 200)
                subscriber = Client(daemon.socket_path, timeout=None)
                subscriber.connect()
                subscriber.call("events.subscribe", {"topics": ["scrobble"]})

                def listen() -> None:
                    with contextlib.suppress(ClientError):  # closed at the end
                        for event in subscriber.notifications():
                            with arrived:
                                seen[int(event["data"]["timestamp"])] = time.monotonic()
                                arrived.notify_all()

                threading.Thread(target=listen, daemon=True).start()
                delays = [_sample(sim, seen, arrived) for _ in range(args.samples)]
                subscriber.close()
            finally:
                daemon.stop()
    finally:
        server.stop()
    delays.sort()
    print(
        f"tracker scrobble→event delay, interval_seconds=1, {len(delays)} samples: "
        f"median {statistics.median(delays) * 1000:.0f} ms, "
        f"min {delays[0] * 1000:.0f} ms, max {delays[-1] * 1000:.0f} ms"
    )


def _sample(sim: LastfmSim, seen: dict[int, float], arrived: threading.Condition) -> float:
    # A random phase against the poll clock, then one scrobble stamped now (a new second).
    time.sleep(1.0 + random.random())
    added = sim.add_scrobbles(n=1)
    began = time.monotonic()
    timestamp = added[0].timestamp
    with arrived:
        if not arrived.wait_for(lambda: timestamp in seen, timeout=10):
            raise TimeoutError(f"no scrobble event for {timestamp}")
        return seen[timestamp] - began


if __name__ == "__main__":
    main()
