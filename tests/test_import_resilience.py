"""Import jobs under failure: faults on the wire, rate limiting, fatal Last.fm errors (the
services in-process), and the daemon killed with SIGKILL or stopped mid-import (a real
process). The database is compared EXACTLY with the simulator."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from musiqued.storage.db import Database
from tests.fixtures.daemon import StartDaemon
from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.services import InProcess, eventually, next_event
from tests.import_helpers import FINISHED, assert_exact, wait_job, wait_pages


async def test_faults_of_every_kind(
    lastfm_sim: SimulatedLastfm, database: Database, in_process: InProcess
) -> None:
    """With 10% of requests failing in every way the simulator knows (5xx, errors 8/11/16/29,
    malformed bodies, slow answers, resets), the import still ends exact."""
    lastfm_sim.reset(size=3000, seed=31)
    lastfm_sim.set_faults(rate=0.1, slow_seconds=0.2, seed=7)
    async with in_process(**lastfm_sim.sections(timeout_seconds=2.0)) as daemon:
        job = await daemon.run_import(all=True)
        assert job["state"] == "done", job
        assert job["tracks_imported"] == 3000
        assert_exact(database.path, lastfm_sim.scrobbles())
        counts = lastfm_sim.stats()
        assert sum(v for k, v in counts.items() if k.startswith("fault:")) > 0


async def test_error_29_bursts_slow_then_recover(
    lastfm_sim: SimulatedLastfm, database: Database, in_process: InProcess
) -> None:
    """Bursts of error 29 slow the shared governor down (visible in daemon.status and on the
    running job); the job finishes exact and the rate climbs back to nominal."""
    lastfm_sim.reset(size=3000, seed=32)
    lastfm_sim.set_faults(rate=0.15, kinds=["error29"], seed=3)
    async with in_process(**lastfm_sim.sections(requests_per_second=40.0)) as daemon:
        events = daemon.events.subscribe(["job"])
        job_id = (await daemon.call("import.start", {"all": True}))["job_id"]
        rates = []
        while (event := await next_event(events, "job", job_id=job_id))["state"] not in FINISHED:
            # Each page's progress event carries the running job's Last.fm request rate.
            rates.append(event.get("lastfm_rate", 40.0))
        job = await daemon.call("import.status", {"job_id": job_id})
        assert job["state"] == "done", job
        assert_exact(database.path, lastfm_sim.scrobbles())
        assert min(rates) < 40.0
        governor = daemon.services.lastfm.governor
        assert governor.penalties > 0
        lastfm_sim.set_faults(rate=0.0)  # Last.fm calms down (enrichment still calls it)

        async def recovered() -> bool:
            return governor.rate == 40.0

        await eventually(recovered, within=30)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"username": "nobody-here"}, "Last.fm user 'nobody-here' not found"),
        ({"api_key": "not-the-key"}, "the Last.fm API key is invalid"),
        ({"private": True}, "this profile hides its recent tracks: run `musiquectl lastfm login`"),
    ],
    ids=["error6", "error10", "error17"],
)
async def test_fatal_errors_fail_the_job_clearly(
    lastfm_sim: SimulatedLastfm,
    database: Database,
    in_process: InProcess,
    change: dict[str, object],
    message: str,
) -> None:
    """Errors 6, 10 and 17 fail the job at its first page with a message saying what to fix."""
    lastfm_sim.reset(size=300, seed=33)
    if "private" in change:
        lastfm_sim.configure(private=True)
        sections = lastfm_sim.sections(session_key="")
    else:
        sections = lastfm_sim.sections(**change)
    async with in_process(**sections) as daemon:
        job = await daemon.run_import(all=True)
    assert job["state"] == "failed"
    assert message in job["error"]
    assert job["pages_done"] == 0


STOPS = (
    ("kill", 0),
    ("kill", 2),
    ("kill", 5),
    ("term", 7),
    ("kill", 9),
    ("kill", 13),
    ("kill", 17),
)
"""Where the import is stopped (after how many pages) and how: SIGKILL, or SIGTERM."""


def _job_state(database: Path, job_id: int) -> str:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        state = str(conn.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()[0])
    conn.close()
    return state


@pytest.mark.slow
def test_stopped_at_many_points_then_resume(
    lastfm_sim: SimulatedLastfm, start_daemon: StartDaemon
) -> None:
    """SIGKILL at six points of an import (before the first page, then ever later) and a
    clean stop (SIGTERM, exit 0) once between them, which marks the job interrupted; each
    restart resumes the job by itself from its checkpoint, and the end is exact: nothing
    lost, nothing duplicated, counters equal to the history."""
    lastfm_sim.reset(size=4000, seed=34)
    daemon = start_daemon(**lastfm_sim.sections(requests_per_second=25.0, max_in_flight=3))
    database = daemon.workdir / "musique.db"
    job_id = daemon.call("import.start", {"all": True})["job_id"]
    seen: list[int] = []
    for how, pages in STOPS:
        if pages:
            wait_pages(daemon, job_id, pages)
        if how == "kill":
            daemon.kill()
        else:
            assert daemon.stop() == 0
            assert _job_state(database, job_id) == "interrupted"
        daemon.start()
        job = daemon.call("import.status", {"job_id": job_id})
        seen.append(job["pages_done"])
        assert job["state"] in ("running", "queued", "done"), job
    job = wait_job(daemon, job_id)
    assert job["state"] == "done", job
    assert seen == sorted(seen)
    assert seen[-1] < job["pages_total"]
    assert job["pages_done"] == job["pages_total"] == 20
    assert (job["tracks_imported"], job["tracks_skipped"]) == (4000, 0)
    assert_exact(database, lastfm_sim.scrobbles())
    resumed = [r for r in daemon.log_records() if r.get("event") == "resuming job"]
    assert len(resumed) >= len(STOPS) - 1
