"""The tracker's decisions, with the ``Tracker`` built in the test's process as the daemon
wires it (the Last.fm connection, an importer for long gaps, the event bus), against a
temporary database and the simulated Last.fm: what a poll stores itself, when a gap goes
to an import job, when the late sweep runs, and what stops it.

What crosses processes (``musiquectl watch``, restarts, reloads) stays in
``test_tracker.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from musiqued.config import LastfmConfig, TrackerConfig
from musiqued.services.events import EventBus, Subscription
from musiqued.services.importer import Importer
from musiqued.services.jobs import JobRunner
from musiqued.services.lastfm_session import LastfmConnection
from musiqued.services.tracker import CATCHUP_MAX_PAGES, POLL_OVERLAP_S, Tracker
from musiqued.services.window import WindowPager
from musiqued.storage.db import Database
from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.services import next_event, store_scrobbles
from tests.import_helpers import FINISHED, stored_listens
from tests.tracker_support import identities, stored

QUICK = TrackerConfig(interval_seconds=1, late_sweep_interval_seconds=3600)


@dataclass
class Tracking:
    tracker: Tracker
    jobs: JobRunner
    lastfm: LastfmConnection


@asynccontextmanager
async def tracking(
    database: Database, bus: EventBus, settings: LastfmConfig, config: TrackerConfig = QUICK
) -> AsyncIterator[Tracking]:
    """The tracker and what it uses, wired as ``build_services`` does (the connection tells
    the tracker when the credentials change); opened in the daemon's order, closed in reverse."""
    tracker: Tracker | None = None

    def lastfm_changed() -> None:
        if tracker is not None:
            tracker.lastfm_changed()

    lastfm = LastfmConnection(settings, database, on_change=lastfm_changed)
    jobs = JobRunner(database, bus)
    importer = Importer(
        jobs, database, WindowPager(lastfm), lastfm, settings, on_new_albums=lambda: None
    )
    tracker = Tracker(database, lastfm, importer, bus, config, on_new_albums=lambda: None)
    await lastfm.open()
    await jobs.open()
    await tracker.open()
    try:
        yield Tracking(tracker, jobs, lastfm)
    finally:
        await tracker.close()
        await jobs.close()
        await lastfm.close()


async def scrobbled(events: Subscription, count: int) -> list[dict[str, Any]]:
    return [await next_event(events, "scrobble") for _ in range(count)]


async def test_a_short_gap_is_stored_by_the_tracker_oldest_first(
    lastfm_sim: SimulatedLastfm, database: Database, bus: EventBus
) -> None:
    """A gap of up to three pages is fetched by the poll itself and stored oldest page
    first, each new listen announced once; no import job is involved."""
    page_size = 200
    lastfm_sim.reset(size=CATCHUP_MAX_PAGES * page_size, seed=3)
    events = bus.subscribe(["scrobble"])
    async with tracking(database, bus, lastfm_sim.config(page_size=page_size)) as t:
        assert await t.tracker.start() is True
        recorded = await scrobbled(events, len(lastfm_sim.expected()))
        status = await t.tracker.status()
        assert await t.jobs.recent(5) == []
    assert {r["source"] for r in recorded} == {"tracker"}
    stamps = [r["timestamp"] for r in recorded]
    assert stamps == sorted(stamps)
    assert identities(database.path) == lastfm_sim.expected()
    assert status["scrobbles_recorded"] == 600
    assert status["last_track"]["timestamp"] == lastfm_sim.newest()
    assert status["catching_up_job_id"] is None


async def test_a_long_gap_goes_to_an_import_job_and_the_sweep_waits_for_it(
    lastfm_sim: SimulatedLastfm, database: Database, bus: EventBus
) -> None:
    """More than three pages after the newest stored listen: an import job gets the window
    (from the poll's overlap before that listen up to the newest scrobble), the tracker
    stores the newest page itself; the late sweep, due at every poll here, waits until
    the job has ended. The history ends up exact."""
    lastfm_sim.reset(size=30, seed=7)
    await store_scrobbles(database, lastfm_sim.scrobbles())
    anchor = lastfm_sim.newest()
    assert anchor is not None
    added = lastfm_sim.add_new_scrobbles(60)
    config = TrackerConfig(interval_seconds=1, late_sweep_interval_seconds=1)
    events = bus.subscribe(["tracker", "job"])
    async with tracking(database, bus, lastfm_sim.config(page_size=10), config) as t:
        await t.tracker.start()
        handed = await next_event(events, "tracker", event="catching_up")
        job_id = handed["job_id"]
        order: list[str] = []
        while "swept" not in order:
            event = await events.get()
            if event.topic == "job" and event.data["state"] in FINISHED:
                order.append(event.data["state"])
            elif event.topic == "tracker":
                order.append(event.data["event"])
        job = await t.jobs.get(job_id)
        status = await t.tracker.status()
    assert order == ["done", "swept"]
    assert job["kind"] == "import"
    assert job["window"] == {"from": anchor - POLL_OVERLAP_S, "to": added[-1].timestamp + 1}
    assert job["tracks_imported"] > 0
    assert status["catching_up_job_id"] is None
    assert identities(database.path) == lastfm_sim.expected()
    assert len(stored_listens(database.path)) == 90


async def test_a_back_dated_scrobble_is_found_by_the_sweep(
    lastfm_sim: SimulatedLastfm, database: Database, bus: EventBus
) -> None:
    """A scrobble back-dated three days, older than anything a poll asks for, is recorded
    by the next sweep of the last ``late_sweep_days``, which says how many it found."""
    lastfm_sim.reset(size=20, seed=8)
    config = TrackerConfig(interval_seconds=1, late_sweep_interval_seconds=1, late_sweep_days=14)
    events = bus.subscribe(["tracker"])
    async with tracking(database, bus, lastfm_sim.config(), config) as t:
        await t.tracker.start()
        await next_event(events, "tracker", event="swept", found=0)
        late = lastfm_sim.add_scrobbles(n=1, back_days=3)
        anchor = lastfm_sim.newest()
        assert anchor is not None
        assert late[0].timestamp < anchor - POLL_OVERLAP_S
        await next_event(events, "tracker", event="swept", found=1)
        status = await t.tracker.status()
    assert status["last_sweep_found"] == 1
    assert (late[0].timestamp, "tracker") in {
        (ts, source) for ts, _, _, source in stored(database.path)
    }


async def test_a_refused_key_stops_the_tracker_until_new_credentials(
    lastfm_sim: SimulatedLastfm, database: Database, bus: EventBus
) -> None:
    """Last.fm refusing the API key stops the tracker (a human must act) and says why;
    new credentials (a reload) start it again by themselves."""
    lastfm_sim.reset(size=5, seed=11)
    events = bus.subscribe(["tracker", "scrobble"])
    async with tracking(database, bus, lastfm_sim.config(api_key="0" * 32)) as t:
        await t.tracker.start()
        stopped = await next_event(events, "tracker", event="stopped")
        status = await t.tracker.status()
        assert status["running"] is False
        assert "key" in stopped["error"].lower()
        assert status["last_error"] == stopped["error"]
        assert status["next_poll_at"] is None
        assert t.tracker.status_line() == f"tracker stopped: {stopped['error']}"

        await t.lastfm.reconfigure(lastfm_sim.config())
        await next_event(events, "tracker", event="started")
        await next_event(events, "scrobble", timestamp=lastfm_sim.newest())
        status = await t.tracker.status()
    assert (status["running"], status["last_error"]) == (True, None)
    assert identities(database.path) == lastfm_sim.expected()


async def test_now_playing_is_announced_not_stored(
    lastfm_sim: SimulatedLastfm, database: Database, bus: EventBus
) -> None:
    """The track playing now is shown (status, a ``now_playing`` event) but is no listen."""
    lastfm_sim.reset(size=5, seed=5)
    lastfm_sim.set_now_playing("Nina Simone", "Sinnerman", "Pastel Blues")
    events = bus.subscribe(["now_playing", "scrobble"])
    async with tracking(database, bus, lastfm_sim.config()) as t:
        await t.tracker.start()
        playing = (await next_event(events, "now_playing"))["now_playing"]
        await scrobbled(events, 5)
        status = await t.tracker.status()
    assert (playing["artist"], playing["title"], playing["album"]) == (
        "Nina Simone",
        "Sinnerman",
        "Pastel Blues",
    )
    assert status["now_playing"]["title"] == "Sinnerman"
    assert "sinnerman" not in {title for _, _, title in identities(database.path)}
