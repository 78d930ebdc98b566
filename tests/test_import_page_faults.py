"""Imports under short, empty and odd Last.fm pages: never a silent gap.

Each fault of the simulator's page kinds is served once for one page of the job's frozen
window, then at a random rate, and the database is compared EXACTLY with the simulator's
history. A fault that never clears on one page ends the job with the gap stated (the
``missing`` field, the error, what ``musiquectl jobs show`` prints, the log), never ``done``
with scrobbles missing. The services run in the test's process; the summary ``musiquectl
import`` prints and its exit status are checked with musiquectl as a process, against their
socket.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import structlog

from musiquectl.jobs_view import render_job
from musiqued.sim.pagefaults import PAGE_FAULTS
from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.services import InProcess, InProcessDaemon
from tests.fixtures.threaded import ServeInThread
from tests.import_helpers import assert_exact

ONCE_KINDS = (*PAGE_FAULTS, "errorbody")


@asynccontextmanager
async def fast_daemon(
    in_process: InProcess, lastfm_sim: SimulatedLastfm
) -> AsyncIterator[InProcessDaemon]:
    """The services, in-process, retrying Last.fm within milliseconds."""
    async with in_process(**lastfm_sim.sections(), enrichment={"enabled": False}) as daemon:
        await daemon.call("test.lastfm_retry", {})
        yield daemon


def stored_count(database: Path) -> int:
    with sqlite3.connect(database) as conn:
        count = int(conn.execute("SELECT COUNT(*) FROM listening_history").fetchone()[0])
    conn.close()
    return count


@pytest.mark.parametrize("page", [1, 3])
@pytest.mark.parametrize("kind", ONCE_KINDS)
async def test_fault_once_on_one_page_is_fetched_again(
    lastfm_sim: SimulatedLastfm, in_process: InProcess, kind: str, page: int
) -> None:
    """A page served once short, empty, without dates, all "now playing", with wrong types,
    malformed as a whole, or as an error without a code is fetched again: the import ends
    done, exact, with no error counted (page 1 plans the job, page 3 is an ordinary page)."""
    lastfm_sim.reset(size=1000, seed=70)
    async with fast_daemon(in_process, lastfm_sim) as daemon:
        lastfm_sim.sim.faults.force(kind, 1, page=page)
        job = await daemon.run_import(all=True)
    assert job["state"] == "done", job
    assert (job["tracks_imported"], job["tracks_errors"], job["missing"]) == (1000, 0, None)
    assert_exact(daemon.db.path, lastfm_sim.scrobbles())
    assert lastfm_sim.stats()[f"fault:{kind}"] == 1
    assert lastfm_sim.sim.faults.forced() == []


async def test_every_page_fault_at_a_random_rate(
    lastfm_sim: SimulatedLastfm, in_process: InProcess
) -> None:
    """A fifth of all requests answered with a page fault of any kind (or an error body):
    the import still ends done and exact."""
    lastfm_sim.reset(size=8000, seed=71)
    async with fast_daemon(in_process, lastfm_sim) as daemon:
        lastfm_sim.set_faults(rate=0.2, kinds=ONCE_KINDS, seed=5)
        job = await daemon.run_import(all=True)
    assert job["state"] == "done", job
    assert (job["tracks_imported"], job["tracks_errors"], job["missing"]) == (8000, 0, None)
    assert_exact(daemon.db.path, lastfm_sim.scrobbles())
    faults = {k: v for k, v in lastfm_sim.stats().items() if k.startswith("fault:")}
    assert sum(faults.values()) >= 8, faults
    assert len(faults) >= 4, faults


@pytest.mark.parametrize(
    ("kind", "lacking", "errors"),
    [
        ("short", 100, 0),
        ("empty", 200, 0),
        ("emptystr", 200, 0),
        ("nodate", 200, 200),
        ("allplaying", 200, 199),  # the first entry passes for the track playing now
        ("badtypes", 120, 200),  # 80 of them out of range or blank: Last.fm's own data
    ],
)
async def test_page_that_stays_short_or_broken_ends_with_the_gap_stated(
    lastfm_sim: SimulatedLastfm, in_process: InProcess, kind: str, lacking: int, errors: int
) -> None:
    """A page Last.fm keeps serving short, empty or broken (no dates, all "now playing",
    wrong types) is fetched again, walked again after the sweep, and then the job FAILS with
    the gap: ``missing`` gives the count and the page (with the span it did hold), the error
    says how many and where, the log records it; entries that could not be used are counted
    in ``tracks_errors`` with their reasons; the rest of the window is stored. Resumed once
    the page is whole again, the job ends exact, its error count back to 0."""
    lastfm_sim.reset(size=1000, seed=72)
    with structlog.testing.capture_logs() as logs:
        async with fast_daemon(in_process, lastfm_sim) as daemon:
            lastfm_sim.sim.faults.force(kind, 10_000, page=3)
            job = await daemon.run_import(all=True)
            stored = stored_count(daemon.db.path)
            lastfm_sim.sim.faults.clear()
            await daemon.call("jobs.resume", {"job_id": job["job_id"]})
            final = await daemon.wait_job(job["job_id"])
    assert job["state"] == "failed", job
    assert job["missing"]["count"] == lacking
    (where,) = job["missing"]["where"]
    assert (where["page"], where["missing"]) == (3, lacking)
    assert (where["from"] is None) == (kind != "short")
    said = f"{lacking} scrobble(s) Last.fm reports for the window could not be fetched"
    assert said in job["error"]
    assert "page 3" in job["error"]
    assert job["tracks_errors"] == errors
    assert len(job["error_reasons"]) == min(errors, 50)
    assert stored == job["tracks_imported"] == (900 if kind == "short" else 800)
    gaps = [entry for entry in logs if entry["event"] == "import ended with a gap"]
    assert gaps
    assert (gaps[0]["missing"], gaps[0]["short_pages"]) == (lacking, [3])
    assert gaps[0]["log_level"] == "error"

    assert final["state"] == "done", final
    assert (final["tracks_errors"], final["error_reasons"], final["missing"]) == (0, [], None)
    assert_exact(daemon.db.path, lastfm_sim.scrobbles())


def test_summary_of_musiquectl_import_states_the_gap(
    lastfm_sim: SimulatedLastfm, serve_in_thread: ServeInThread
) -> None:
    """``musiquectl import --all`` following a job that ends with a gap prints the gap in its
    summary (how many, which page, which span) and exits 1."""
    lastfm_sim.reset(size=1000, seed=73)
    daemon = serve_in_thread(socket=True, **lastfm_sim.sections(), enrichment={"enabled": False})
    daemon.call("test.lastfm_retry", {})
    lastfm_sim.sim.faults.force("short", 10_000, page=2)
    result = daemon.ctl("import", "--all")
    assert result.returncode == 1, result
    assert "FAILED" in result.stdout
    assert "missing" in result.stdout
    assert "100 scrobble(s)" in result.stdout + result.stderr
    assert "page 2" in result.stdout
    assert "jobs resume" in result.stderr


@pytest.mark.parametrize(
    ("kind", "said"),
    [
        ("errorbody", "Last.fm sent an error without a code ('x'"),
        ("badpage", "Last.fm sent a page whose"),
    ],
)
async def test_unusable_body_that_persists_fails_with_what_was_wrong(
    lastfm_sim: SimulatedLastfm,
    in_process: InProcess,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    said: str,
) -> None:
    """A page whose body stays unusable as a whole is retried like any transient fault;
    the job then fails (resumable) with what was wrong with it, never an internal error,
    and with the pages it never stored as its gap (``missing``: how many, which pages;
    ``musiquectl jobs show`` prints both). Resumed once Last.fm answers, it ends exact."""
    lastfm_sim.reset(size=1000, seed=74)
    with structlog.testing.capture_logs() as logs:
        async with fast_daemon(in_process, lastfm_sim) as daemon:
            lastfm_sim.sim.faults.force(kind, 10_000, page=4)
            job = await daemon.run_import(all=True)
            stored = stored_count(daemon.db.path)
            lastfm_sim.sim.faults.clear()
            await daemon.call("jobs.resume", {"job_id": job["job_id"]})
            final = await daemon.wait_job(job["job_id"])
    assert job["state"] == "failed", job
    assert job["error"].startswith("Last.fm kept failing on page 4 (")
    assert said in job["error"]
    assert "internal error" not in job["error"]
    assert "ExceptionGroup" not in repr(logs)
    assert stored == job["tracks_imported"] < 1000
    assert job["missing"]["count"] == 1000 - stored
    never = [w for w in job["missing"]["where"] if w.get("last_page") is not None]
    assert never, job["missing"]
    assert never[0]["page"] <= 4 <= never[-1]["last_page"], job["missing"]
    assert sum(w["missing"] for w in never) == 1000 - stored
    capsys.readouterr()
    render_job(job)
    shown = capsys.readouterr().out
    assert said in shown
    assert f"{1000 - stored:,} listens not stored" in shown
    assert "(never fetched)" in shown

    assert (final["state"], final["missing"], final["tracks_imported"]) == ("done", None, 1000)
    assert_exact(daemon.db.path, lastfm_sim.scrobbles())
