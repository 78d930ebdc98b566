"""Import jobs through the RPC methods, with the services in the test's process against the
simulated Last.fm, and the database read back with sqlite3 and compared EXACTLY with the
simulator's history each time (``musiquectl import`` end to end: ``test_import_ctl.py``).

The import's planning alone (limits, pages of one, empty windows, a refused page size) is
tested in-process, faster, in ``test_importer_service.py``."""

from __future__ import annotations

import math
import sqlite3
import time

from musiqued import wire
from musiqued.storage.db import Database
from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.services import InProcess, next_event
from tests.import_helpers import assert_exact, expected_listens, stored_listens


async def test_full_import(
    lastfm_sim: SimulatedLastfm, database: Database, in_process: InProcess
) -> None:
    """`import --all` stores every scrobble once, with its album; counters and the
    enrichment queue tell what the job did."""
    lastfm_sim.reset(size=2500, seed=11)
    async with in_process(**lastfm_sim.sections()) as daemon:
        job = await daemon.run_import(all=True)
        history = lastfm_sim.scrobbles()
        assert job["state"] == "done", job
        assert_exact(database.path, history)
        assert job["tracks_imported"] == len(history)
        assert (job["tracks_skipped"], job["tracks_errors"]) == (0, 0)
        assert job["pages_done"] == job["pages_total"] == math.ceil(len(history) / 200)
        assert job["total_scrobbles"] == len(history)
        assert job["rate_per_s"] > 0
        assert job["eta_s"] == 0
        with sqlite3.connect(database.path) as conn:
            albums = conn.execute("SELECT COUNT(*) FROM albums").fetchone()[0]
            tagged = conn.execute(
                "SELECT COUNT(DISTINCT item_id) FROM enrichment_queue "
                "WHERE item_kind = 'album' AND job_id = ?",
                (job["job_id"],),
            ).fetchone()[0]
        conn.close()
        assert albums == tagged == job["total_albums_to_enrich"] > 0
        status = await daemon.call("daemon.status")
        assert status["listens"] == len(history)
        assert status["jobs"] == []


async def test_date_range(
    lastfm_sim: SimulatedLastfm, database: Database, in_process: InProcess
) -> None:
    """since (inclusive) / until (exclusive) import exactly the scrobbles in that window."""
    lastfm_sim.reset(size=3000, seed=14)
    history = lastfm_sim.scrobbles()
    since, until = history[2200].timestamp, history[700].timestamp
    async with in_process(**lastfm_sim.sections()) as daemon:
        job = await daemon.run_import(
            since=since,
            until=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(until)),
        )
        assert job["state"] == "done", job
        window = [s for s in history if since <= s.timestamp < until]
        assert_exact(database.path, window)
        assert job["window"] == {"from": since, "to": until}


async def test_incremental_after_new_scrobbles(
    lastfm_sim: SimulatedLastfm, database: Database, in_process: InProcess
) -> None:
    """After new scrobbles, `--incremental` fetches only what follows the newest stored listen."""
    lastfm_sim.reset(size=1500, seed=15)
    async with in_process(**lastfm_sim.sections()) as daemon:
        await daemon.run_import(all=True)
        newest = lastfm_sim.scrobbles()[0].timestamp
        added = lastfm_sim.add_new_scrobbles(37)
        job = await daemon.run_import(incremental=True)
        assert job["state"] == "done", job
        assert job["window"]["from"] == newest
        assert job["tracks_imported"] == len(added) == 37
        assert job["tracks_skipped"] <= 2  # the newest stored second is fetched again on purpose
        assert_exact(database.path, lastfm_sim.scrobbles())


async def test_second_full_import_skips_everything(
    lastfm_sim: SimulatedLastfm, database: Database, in_process: InProcess
) -> None:
    """Importing the same history again adds nothing: every scrobble counts as skipped; with
    skip_existing=false they are refreshed instead, still without a duplicate."""
    lastfm_sim.reset(size=1000, seed=16)
    async with in_process(**lastfm_sim.sections()) as daemon:
        await daemon.run_import(all=True)
        again = await daemon.run_import(all=True)
        assert (again["tracks_imported"], again["tracks_skipped"]) == (0, 1000)
        assert again["total_albums_to_enrich"] == 0
        refreshed = await daemon.run_import(all=True, skip_existing=False)
        counts = ("tracks_imported", "tracks_refreshed", "tracks_skipped", "tracks_errors")
        assert tuple(refreshed[c] for c in counts) == (0, 1000, 0, 0)
        assert_exact(database.path, lastfm_sim.scrobbles())


async def test_window_frozen_while_scrobbles_arrive(
    lastfm_sim: SimulatedLastfm, database: Database, in_process: InProcess
) -> None:
    """Scrobbles made after the import started are not in that job (its window ended when it
    was created); back-dated ones landing inside the window shift its pages, yet not one
    scrobble of the window is lost."""
    lastfm_sim.reset(size=4000, seed=17)
    before = lastfm_sim.scrobbles()
    async with in_process(
        **lastfm_sim.sections(requests_per_second=40.0, max_in_flight=2)
    ) as daemon:
        job_id = (await daemon.call("import.start", {"all": True}))["job_id"]
        await daemon.wait_pages(job_id, 3)
        later = lastfm_sim.add_scrobbles(20, at=int(time.time()) + 20 * 30 + 60)
        backdated = lastfm_sim.add_scrobbles(150, back_days=0.5)
        job = await daemon.wait_job(job_id)
        assert job["state"] == "done", job
        stored = set(stored_listens(database.path))
        assert set(expected_listens(before)) <= stored
        assert not set(expected_listens(later)) & stored
        assert stored <= set(expected_listens(before + backdated))
        assert job["tracks_imported"] == len(stored) >= len(before)


async def test_conflict_pause_resume_cancel(
    lastfm_sim: SimulatedLastfm, database: Database, in_process: InProcess
) -> None:
    """A second import while one is active gets -32003; pause stops at a committed page and
    resume finishes exactly; cancel ends a job for good."""
    lastfm_sim.reset(size=4000, seed=21)
    async with in_process(
        **lastfm_sim.sections(requests_per_second=40.0, max_in_flight=2)
    ) as daemon:
        job_id = (await daemon.call("import.start", {"all": True}))["job_id"]
        error = await daemon.call_error("import.start", {"limit": 10})
        assert error.code == wire.CONFLICT
        assert f"job {job_id}" in error.message
        await daemon.wait_pages(job_id, 2)
        events = daemon.events.subscribe(["job"])
        paused = await daemon.call("import.pause", {"job_id": job_id})
        assert paused["state"] == "paused"
        still = await daemon.call("import.status", {"job_id": job_id})
        assert still["state"] == "paused"
        assert still["pages_done"] == paused["pages_done"] < still["pages_total"]
        assert (await daemon.call_error("import.start", {"all": True})).code == wire.CONFLICT
        resumed = await daemon.call("import.resume", {"job_id": job_id})
        assert resumed["state"] in ("queued", "running")
        # Between the pause and the resume, not one more page was committed.
        while (event := await next_event(events, "job", job_id=job_id))["state"] == "paused":
            assert event["pages_done"] == paused["pages_done"]
        assert event["pages_done"] == paused["pages_done"]
        job = await daemon.wait_job(job_id)
        assert job["state"] == "done"
        assert job["tracks_imported"] == 4000
        assert_exact(database.path, lastfm_sim.scrobbles())

        lastfm_sim.add_scrobbles(3000, back_days=0)
        second = (await daemon.call("import.start", {"all": True}))["job_id"]
        await daemon.wait_pages(second, 1)
        cancelled = await daemon.call("import.cancel", {"job_id": second})
        assert cancelled["state"] == "cancelled"
        assert cancelled["finished_at"] is not None
        assert (await daemon.call_error("import.resume", {"job_id": second})).code == wire.CONFLICT
        assert (await daemon.call_error("import.status", {"job_id": 999})).code == wire.NOT_FOUND
        jobs = await daemon.call("import.list", {"limit": 5})
        assert [j["job_id"] for j in jobs] == [second, job_id]
