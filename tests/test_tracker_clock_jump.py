"""The tracker in the daemon process while the machine's wall clock jumps.

Debian's libfaketime, preloaded into the daemon alone, moves its wall clock to the offset
written in a file the test rewrites (``FAKETIME_TIMESTAMP_FILE``, read at every call with
``FAKETIME_NO_CACHE``); its monotonic clock stays the machine's
(``FAKETIME_DONT_FAKE_MONOTONIC``), as when an administrator or NTP sets the time. The
simulated Last.fm and its scrobbles live in the suite's time: if the suite itself runs with
its clock shifted (``faketime -f +N``), the daemon's offsets start from that shift.
"""

from __future__ import annotations

import glob
import itertools
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.browser import missing_tool
from tests.fixtures.daemon import StartDaemon
from tests.fixtures.lastfm import SimulatedLastfm
from tests.support import DaemonProcess
from tests.tracker_support import caught_up, wait_polls

INTERVAL_S = 1
HOUR_S = 3600
DAY_S = 86400
OFFSETS = (2 * DAY_S, -3 * HOUR_S, 0)
"""The daemon's wall clock against the suite's, in seconds, one after the other (the daemon
starts at 0, the suite's time): each is a jump from the one before."""
JUMP_LOGGED = "the wall clock jumped; polls keep their pace"


def faketime_library() -> str | None:
    """libfaketime's variant for programs with threads (the daemon's SQLite connections run
    in threads), wherever the architecture puts it."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    return found[0] if found else None


def suite_shift() -> int:
    """Seconds the suite's clock runs ahead of the machine's (0 unless the suite runs under
    faketime): ``date`` without the preloaded library tells the machine's."""
    machine = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "FAKETIME")}
    real = int(subprocess.run(["date", "+%s"], env=machine, capture_output=True, check=True).stdout)
    return round(time.time()) - real


def set_offset(clock_file: Path, seconds: int) -> None:
    """The daemon's wall clock is now ``seconds`` from the machine's (replaced whole: the
    daemon reads the file at any moment)."""
    staged = clock_file.with_suffix(".new")
    staged.write_text(f"{seconds:+d}\n", encoding="utf-8")
    os.replace(staged, clock_file)


def wait_between_polls(daemon: DaemonProcess) -> None:
    """Until the tracker waits for its next poll: status shows it one interval after the
    last (during a poll it shows the poll as due now, and none before its first wait)."""

    def waiting() -> bool:
        status = daemon.call("tracker.status")
        due, last = status["next_poll_at"], status["last_poll_at"]
        return due is not None and abs(due - last - INTERVAL_S) < 0.01

    daemon.wait_until(waiting, interval=0.02)


def jumps_logged(daemon: DaemonProcess) -> list[float]:
    return [r["seconds"] for r in daemon.log_records() if r.get("event") == JUMP_LOGGED]


@pytest.mark.slow
def test_wall_clock_jumps_leave_the_tracker_polling_on_time(
    start_daemon: StartDaemon,
    lastfm_sim: SimulatedLastfm,
    workdir: Path,
) -> None:
    """The daemon's wall clock jumps 2 days ahead, then back to 3 hours behind, then to the
    right time, each while the tracker waits for its next poll: after each jump the tracker
    polls again at its interval and logs the jump (with its size), records every scrobble
    made after the jump, keeps running without an error, and its status shows the next poll
    one interval after the last, on the new clock."""
    library = faketime_library()
    if library is None:
        missing_tool("the clock-jump test needs Debian's libfaketime: apt-get install faketime")
    clock_file = workdir / "faketime"
    shift = suite_shift()
    set_offset(clock_file, shift)
    lastfm_sim.reset(size=5, seed=23)
    daemon = start_daemon(
        env={
            "LD_PRELOAD": str(library),
            # The suite's own FAKETIME, if it runs under faketime, would take priority over the
            # file. Left out of the daemon's environment only: the suite's libfaketime rereads
            # its environment, and a FAKETIME deleted there would move the suite's clock too.
            "FAKETIME": None,
            "FAKETIME_TIMESTAMP_FILE": str(clock_file),
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "NO_FAKE_STAT": "1",  # file times stay true: only the clock jumps
        },
        **lastfm_sim.sections(),
        tracker={"interval_seconds": INTERVAL_S, "late_sweep_interval_seconds": HOUR_S},
    )
    daemon.call("tracker.start")
    daemon.wait_until(caught_up(daemon, lastfm_sim), timeout=20)

    for number, (before, offset) in enumerate(itertools.pairwise((0, *OFFSETS)), start=1):
        jump = offset - before
        wait_between_polls(daemon)  # the jump comes while the tracker waits
        set_offset(clock_file, shift + offset)
        logged = daemon.wait_until(lambda n=number: len(j := jumps_logged(daemon)) >= n and j)
        # Measured between two polls as the wall clock's change against the monotonic one.
        assert abs(logged[number - 1] - jump) < 60, (offset, logged)
        lastfm_sim.add_new_scrobbles(3)
        daemon.wait_until(caught_up(daemon, lastfm_sim), timeout=20)
        wait_polls(daemon, 1)
        status: dict[str, Any] = daemon.call("tracker.status")
        assert (status["running"], status["last_error"]) == (True, None), (offset, status)
        assert 0 <= status["next_poll_at"] - status["last_poll_at"] <= INTERVAL_S + 0.01, (
            offset,
            status,
        )
    assert len(jumps_logged(daemon)) == len(OFFSETS)
    errors = [r for r in daemon.log_records() if r.get("level") == "error"]
    assert errors == []
