"""The tracker's decisions, with the ``Tracker`` built in the test's process as the daemon
wires it (the Last.fm connection, an importer for long gaps, the event bus), against a
temporary database and the simulated Last.fm: what a poll stores itself, when a gap goes
to an import job, when the late sweep runs, and what stops it.

What crosses processes (``musiquectl watch``, restarts, reloads) stays in
``test_tracker.py``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import structlog

from musiqued.config import TrackerConfig
from musiqued.services.events import EventBus, Subscription
from musiqued.services.importer import ImportRequest
from musiqued.services.tracker import CATCHUP_MAX_PAGES, POLL_OVERLAP_S
from musiqued.storage.db import Database
from tests.fixtures.clock import FakeClock
from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.services import next_event, store_scrobbles
from tests.import_helpers import FINISHED, stored_listens
from tests.tracker_support import identities, stored
from tests.tracking import QUICK, driving, tracking


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
    lastfm_sim: SimulatedLastfm, database: Database, bus: EventBus, fake_clock: FakeClock
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
    async with tracking(database, bus, lastfm_sim.config(page_size=10), config, fake_clock) as t:
        await t.tracker.start()
        handed = await next_event(events, "tracker", event="catching_up")
        job_id = handed["job_id"]
        order: list[str] = []

        async def until_swept() -> None:
            while "swept" not in order:
                event = await events.get()
                if event.topic == "job" and event.data["state"] in FINISHED:
                    order.append(event.data["state"])
                elif event.topic == "tracker":
                    order.append(event.data["event"])

        await driving(fake_clock, asyncio.wait_for(until_swept(), 20))
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
    lastfm_sim: SimulatedLastfm, database: Database, bus: EventBus, fake_clock: FakeClock
) -> None:
    """A scrobble back-dated three days, older than anything a poll asks for, is recorded
    by the next sweep of the last ``late_sweep_days``, which says how many it found."""
    lastfm_sim.reset(size=20, seed=8)
    config = TrackerConfig(interval_seconds=1, late_sweep_interval_seconds=1, late_sweep_days=14)
    events = bus.subscribe(["tracker"])
    async with tracking(database, bus, lastfm_sim.config(), config, fake_clock) as t:
        await t.tracker.start()
        await driving(fake_clock, next_event(events, "tracker", event="swept", found=0))
        late = lastfm_sim.add_scrobbles(n=1, back_days=3)
        anchor = lastfm_sim.newest()
        assert anchor is not None
        assert late[0].timestamp < anchor - POLL_OVERLAP_S
        await driving(fake_clock, next_event(events, "tracker", event="swept", found=1))
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


def nothing_yet(events: Subscription) -> bool:
    """No event is waiting on ``events`` (what the services did so far published nothing)."""
    return events.queue.empty()


async def test_a_new_scrobble_is_recorded_at_the_next_poll(
    lastfm_sim: SimulatedLastfm, database: Database, bus: EventBus, fake_clock: FakeClock
) -> None:
    """A scrobble made between two polls is recorded by the poll one interval after the
    previous one, not before; status tells the last track, the interval and the next poll."""
    lastfm_sim.reset(size=40, seed=3)
    events = bus.subscribe(["scrobble"])
    config = TrackerConfig(interval_seconds=2, late_sweep_interval_seconds=3600)
    async with tracking(database, bus, lastfm_sim.config(), config, fake_clock) as t:
        await t.tracker.start()
        await scrobbled(events, 40)
        await fake_clock.sleeping()
        added = lastfm_sim.add_scrobbles(n=1)
        await fake_clock.advance(1.999)
        assert nothing_yet(events)
        await fake_clock.advance(0.001)
        recorded = await next_event(events, "scrobble")
        await fake_clock.sleeping()
        status = await t.tracker.status()
    assert (recorded["timestamp"], recorded["source"]) == (added[0].timestamp, "tracker")
    assert status["running"] is True
    assert status["last_track"] == {
        "artist": recorded["artist"],
        "title": recorded["title"],
        "album": recorded["album"],
        "timestamp": recorded["timestamp"],
    }
    assert status["interval_seconds"] == 2
    assert status["scrobbles_recorded"] == 41
    assert status["next_poll_at"] == round(status["last_poll_at"] + 2, 3)
    assert (status["last_error"], status["consecutive_failures"]) == (None, 0)


async def test_several_scrobbles_between_two_polls_are_all_recorded(
    lastfm_sim: SimulatedLastfm, database: Database, bus: EventBus, fake_clock: FakeClock
) -> None:
    """Short tracks played between two polls (some in the same second) are each recorded
    once, by the tracker."""
    lastfm_sim.reset(size=10, seed=4)
    events = bus.subscribe(["scrobble"])
    async with tracking(database, bus, lastfm_sim.config(), QUICK, fake_clock) as t:
        await t.tracker.start()
        await scrobbled(events, 10)
        await fake_clock.sleeping()
        now = int(fake_clock.now())
        lastfm_sim.add_scrobbles(n=4, at=now - 30)
        lastfm_sim.add_scrobbles(n=3, at=now)
        await fake_clock.advance(QUICK.interval_seconds)
        await scrobbled(events, 7)
        await fake_clock.sleeping()
    rows = stored(database.path)
    assert identities(database.path) == lastfm_sim.expected()
    assert len(rows) == 17
    assert {source for ts, _, _, source in rows if ts >= now - 30} == {"tracker"}


async def test_a_lower_interval_cuts_the_current_wait_short(
    lastfm_sim: SimulatedLastfm, database: Database, bus: EventBus, fake_clock: FakeClock
) -> None:
    """A tracker waiting 600 s for its next poll, given 1 s, polls 1 s after the previous
    poll; it was already running, so ``start`` says so and announces the new interval."""
    lastfm_sim.reset(size=5, seed=13)
    events = bus.subscribe(["scrobble", "tracker"])
    config = TrackerConfig(interval_seconds=600, late_sweep_interval_seconds=3600)
    async with tracking(database, bus, lastfm_sim.config(), config, fake_clock) as t:
        await t.tracker.start()
        await scrobbled(events, 5)
        await fake_clock.sleeping()
        added = lastfm_sim.add_scrobbles(n=1)
        assert await t.tracker.start(1) is False
        await next_event(events, "tracker", event="interval_changed", interval_seconds=1)
        await fake_clock.advance(1)
        recorded = await next_event(events, "scrobble")
    assert recorded["timestamp"] == added[0].timestamp


async def test_a_wall_clock_jump_leaves_the_polls_on_time(
    lastfm_sim: SimulatedLastfm, database: Database, bus: EventBus, fake_clock: FakeClock
) -> None:
    """The wall clock jumping two days ahead, then back three hours, moves no poll: each
    comes one interval after the last, status shows the next one an interval from the
    wall clock's now, nothing scrobbled meanwhile is missed, and each jump is logged."""
    lastfm_sim.reset(size=5, seed=15)
    events = bus.subscribe(["scrobble"])
    config = TrackerConfig(interval_seconds=60, late_sweep_interval_seconds=3600)
    with structlog.testing.capture_logs() as logs:
        async with tracking(database, bus, lastfm_sim.config(), config, fake_clock) as t:
            await t.tracker.start()
            await scrobbled(events, 5)
            await fake_clock.sleeping()
            for jump in (2 * 86400, -3 * 3600):
                fake_clock.jump(jump)
                added = lastfm_sim.add_scrobbles(n=1)
                status = await t.tracker.status()
                assert status["next_poll_at"] == round(fake_clock.now() + 60, 3)
                await fake_clock.advance(60)
                recorded = await next_event(events, "scrobble")
                assert recorded["timestamp"] == added[0].timestamp
                await fake_clock.sleeping()
    assert identities(database.path) == lastfm_sim.expected()
    jumps = [
        entry["seconds"] for entry in logs if entry["event"].startswith("the wall clock jumped")
    ]
    assert jumps == [2 * 86400, -3 * 3600]


async def test_faults_while_polling_show_then_recover_with_nothing_lost(
    lastfm_sim: SimulatedLastfm, database: Database, bus: EventBus, fake_clock: FakeClock
) -> None:
    """Upstream faults on every request are shown (the ``failing`` event, status, the
    status line) while the tracker backs off; once Last.fm answers again it recovers,
    says so once, and nothing scrobbled meanwhile is lost."""
    lastfm_sim.reset(size=20, seed=10)
    events = bus.subscribe(["scrobble", "tracker"])
    with structlog.testing.capture_logs() as logs:
        async with tracking(database, bus, lastfm_sim.config(), QUICK, fake_clock) as t:
            await t.tracker.start()
            await scrobbled(events, 20)
            await fake_clock.sleeping()
            lastfm_sim.set_faults(
                rate=1.0, kinds=["http500", "http503", "error8", "error11", "malformed"]
            )
            lastfm_sim.add_scrobbles(n=1)
            failing = await driving(fake_clock, next_event(events, "tracker", event="failing"))
            status = await t.tracker.status()
            line = t.tracker.status_line()
            lastfm_sim.set_faults(rate=0.0)
            lastfm_sim.add_scrobbles(n=2)
            recovered = await driving(
                fake_clock, next_event(events, "tracker", event="recovered", within=120)
            )
            after = await t.tracker.status()  # the recovering poll stored what it found
    assert status["running"] is True
    assert status["consecutive_failures"] >= 1
    assert status["last_error"] == failing["error"]
    assert line == f"tracker failing ({status['consecutive_failures']}x): {failing['error']}"
    assert recovered["failures"] >= 1
    assert (after["consecutive_failures"], after["last_error"]) == (0, None)
    assert identities(database.path) == lastfm_sim.expected()
    said = [entry["event"] for entry in logs]
    assert said.count("tracker poll failing; backing off") == 1
    assert said.count("tracker recovered") == 1


@pytest.mark.slow
async def test_tracker_and_full_import_at_once_give_the_exact_history(
    lastfm_sim: SimulatedLastfm, database: Database, bus: EventBus
) -> None:
    """A full import and the tracker write at the same time: no duplicate, nothing lost,
    nothing logged at error; what was scrobbled after the job's window closed is the
    tracker's."""
    lastfm_sim.reset(size=3000, seed=9)
    # 60 pages at 25 requests/s: the import lasts more than 2 s, one request every 40 ms.
    settings = lastfm_sim.config(page_size=50, requests_per_second=25)
    events = bus.subscribe(["job", "scrobble"])
    added = []
    with structlog.testing.capture_logs() as logs:
        async with tracking(database, bus, settings) as t:
            job_id = await t.importer.start_import(ImportRequest(all=True))
            window_end = (await t.jobs.get(job_id))["window"]["to"]
            await t.tracker.start()
            # Scrobbles keep coming while the import runs: two more every 12 pages it
            # commits. Page 48 is at least 1.9 s after the job began (the governor spaces
            # requests evenly), past its window's end: the last ones at least are outside.
            for pages in (12, 24, 36, 48):
                await next_event(events, "job", lambda job, p=pages: job["pages_done"] >= p)
                added += lastfm_sim.add_scrobbles(n=2)
            done = await next_event(
                events, "job", lambda job: job["state"] in FINISHED, job_id=job_id, within=60
            )
            late = {s.identity for s in added if s.timestamp >= window_end}
            while not late <= identities(database.path):
                await next_event(events, "scrobble")
    assert done["state"] == "done"
    rows = stored(database.path)
    assert len(rows) == len(lastfm_sim.expected())
    assert identities(database.path) == lastfm_sim.expected()
    assert late
    assert {source for ts, a, t, source in rows if (ts, a, t) in late} == {"tracker"}
    assert not [entry for entry in logs if entry["log_level"] in ("error", "critical")]
