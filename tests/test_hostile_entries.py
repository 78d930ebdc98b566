"""Entries Last.fm serves that no client can use as they are: one never costs the rest of
its page, nor a job that cannot end, nor a log line every poll (issue 26, items 9-11). The
services run in the test's process, the tracker's polls on a clock the test moves."""

from __future__ import annotations

import structlog

from musiqued.services.events import EventBus
from musiqued.storage.db import Database
from tests.fixtures.clock import FakeClock
from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.services import InProcess
from tests.import_helpers import assert_exact
from tests.tracker_support import identities
from tests.tracking import QUICK, polls, tracking

LONE_SURROGATE = "Broken \ud800 Title"
UNUSABLE = "unusable entries in a Last.fm page; not stored"


async def test_a_lone_surrogate_costs_only_its_entry_in_an_import(
    in_process: InProcess, database: Database, lastfm_sim: SimulatedLastfm
) -> None:
    """A page whose body holds the JSON escape of a lone surrogate in one entry: the import
    stores the rest of that page and ends done, the entry counted in ``tracks_errors`` with
    its reason (it was "resume later", which never helped)."""
    lastfm_sim.reset(size=300, seed=261)
    newest = lastfm_sim.newest()
    assert newest is not None
    lastfm_sim.add_rows([{"timestamp": newest - 7, "artist": "Someone", "title": LONE_SURROGATE}])
    good = [s for s in lastfm_sim.scrobbles() if s.title != LONE_SURROGATE]
    async with in_process(**lastfm_sim.sections(), enrichment={"enabled": False}) as daemon:
        job = await daemon.run_import(all=True)
    assert job["state"] == "done", job
    assert (job["tracks_imported"], job["tracks_errors"], job["missing"]) == (300, 1, None)
    (reason,) = job["error_reasons"]
    assert "lone surrogate" in reason
    assert_exact(database.path, good)


async def test_a_lone_surrogate_costs_only_its_entry_in_the_tracker(
    database: Database, bus: EventBus, lastfm_sim: SimulatedLastfm, fake_clock: FakeClock
) -> None:
    """The tracker stores every other scrobble of a page holding a lone surrogate, and keeps
    recording new ones after it (it failed every poll before)."""
    lastfm_sim.reset(size=40, seed=262)
    newest = lastfm_sim.newest()
    assert newest is not None
    lastfm_sim.add_rows([{"timestamp": newest - 5, "artist": "Someone", "title": LONE_SURROGATE}])
    good = {i for i in lastfm_sim.expected() if "\ud800" not in i[2]}
    with structlog.testing.capture_logs() as logs:
        async with tracking(database, bus, lastfm_sim.config(), QUICK, fake_clock) as t:
            await t.tracker.start()
            await polls(fake_clock, 0)
            assert identities(database.path) == good
            added = {s.identity for s in lastfm_sim.add_new_scrobbles(3)}
            await polls(fake_clock, 1)
            assert identities(database.path) == good | added
            status = await t.tracker.status()
    assert status["consecutive_failures"] == 0, status
    (said,) = [entry for entry in logs if entry["event"] == UNUSABLE]
    assert "lone surrogate" in said["reasons"][0]


async def test_an_unusable_entry_in_the_trackers_window_warns_once(
    database: Database, bus: EventBus, lastfm_sim: SimulatedLastfm, fake_clock: FakeClock
) -> None:
    """A blank-title scrobble inside the window every poll reads: one warning for it, not
    one per poll (it was 121 lines in 2 minutes at 1 s); a second unusable entry arriving
    later gets its own one warning."""
    lastfm_sim.reset(size=20, seed=263)
    newest = lastfm_sim.newest()
    assert newest is not None
    lastfm_sim.add_rows([{"timestamp": newest - 30, "artist": "Someone", "title": "   "}])
    with structlog.testing.capture_logs() as logs:
        async with tracking(database, bus, lastfm_sim.config(), QUICK, fake_clock) as t:
            await t.tracker.start()
            await polls(fake_clock, 2)
            newer = lastfm_sim.newest()
            assert newer is not None
            lastfm_sim.add_rows([{"timestamp": newer + 1, "artist": "Other", "title": ""}])
            await polls(fake_clock, 2)
    warned = [entry for entry in logs if entry["event"] == UNUSABLE]
    assert [w["count"] for w in warned] == [1, 1], warned
    assert "artist 'Someone'" in warned[0]["reasons"][0]
    assert "artist 'Other'" in warned[1]["reasons"][0]


async def test_same_second_twins_never_fail_an_import(
    in_process: InProcess, database: Database, lastfm_sim: SimulatedLastfm
) -> None:
    """Last.fm serves two scrobbles of one track in one second with different albums (one
    listen stores both), once inside a page and once across a page boundary: the import ends
    done with nothing missing (it failed with "1 missing (pages unknown)", which resume
    never fixes), the twin counted as skipped, every identity stored."""
    lastfm_sim.reset(size=400, seed=2610)
    newest_first = lastfm_sim.scrobbles()
    rows = [
        {
            "timestamp": s.timestamp,
            "artist": s.artist,
            "title": s.title,
            "album": f"{s.album} (Deluxe)",
        }
        for s in (newest_first[50], newest_first[199])  # page 1; last entry of page 1
    ]
    assert len(lastfm_sim.add_rows(rows, twins=True)) == 2
    sections = lastfm_sim.sections(page_size=200)
    async with in_process(**sections, enrichment={"enabled": False}) as daemon:
        job = await daemon.run_import(all=True)
    assert job["state"] == "done", job
    assert job["missing"] is None, job
    counts = ("tracks_imported", "tracks_refreshed", "tracks_skipped", "tracks_errors")
    assert tuple(job[c] for c in counts) == (400, 0, 2, 0)
    assert identities(database.path) == lastfm_sim.expected()
