"""Verify jobs: per-day counts against the simulated Last.fm, repairs, and what is only here
(in-process); ``musiquectl verify`` and ``jobs show`` of a verify job end to end, against
the services' socket served in the test's process."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from musiqued import wire
from musiqued.models import Scrobble
from musiqued.storage.db import Database
from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.services import InProcess
from tests.fixtures.threaded import ServeInThread, ThreadedDaemon
from tests.history_support import seed, store
from tests.tracker_support import stored

Identity = tuple[int, str, str]


def _stored(database: Path) -> set[Identity]:
    """Every stored listen's identity, read with plain sqlite3."""
    return {(ts, artist, title) for ts, artist, title, _ in stored(database)}


def _listed(daemon: ThreadedDaemon) -> set[Identity]:
    out: set[Identity] = set()
    after = None
    while True:
        params: dict[str, Any] = {"limit": 5000}
        if after:
            params["after"] = after
        page = daemon.call("history.list", params)
        out |= {
            (x["timestamp"], x["artist"].casefold(), x["title"].casefold()) for x in page["listens"]
        }
        after = page["next"]
        if after is None:
            return out


def _prepare(
    sim: SimulatedLastfm,
) -> tuple[list[Scrobble], list[Scrobble], list[Scrobble]]:
    """The simulator's history minus a few listens, plus a few it never had, to store:
    (removed, extras, what to store)."""
    history = sim.scrobbles()
    removed = [history[i] for i in (5, 6, 300, 301, 302, 900)]
    extras = [
        Scrobble(history[10].timestamp + 7, "Ghost Artist", "Deleted On Last.fm", "Nowhere"),
        Scrobble(history[500].timestamp + 3, "Ghost Artist", "Edited Title", ""),
        Scrobble(history[501].timestamp + 2, history[501].artist, "Edited Title", ""),
    ]
    kept = [s for s in history if s not in removed]
    return removed, extras, [*reversed(kept), *extras]


def _ident(s: Scrobble) -> Identity:
    return s.identity


async def test_verify_repairs_missing_and_reports_only_here(
    database: Database, in_process: InProcess, lastfm_sim: SimulatedLastfm
) -> None:
    """Removed listens are re-added; listens Last.fm lacks are reported, not deleted; a
    second verify finds nothing to add."""
    removed, extras, rows = _prepare(lastfm_sim)
    await store(database, rows)
    async with in_process(**lastfm_sim.sections()) as daemon:
        job = await daemon.run_job("verify")
        again = await daemon.run_job("verify")
    assert job["kind"] == "verify"
    assert job["state"] == "done"
    result = job["result"]
    days = {s.timestamp // 86400 for s in [*removed, *extras]}
    assert result["days_checked"] == result["days_total"] == job["pages_total"] >= 20
    assert result["days_different"] == len(days)
    assert (
        result["listens_added"]
        == result["listens_missing"]
        == len(removed)
        == job["tracks_imported"]
    )
    assert result["listens_only_here"] == len(extras)
    sample = {
        (x["timestamp"], x["artist"].casefold(), x["title"].casefold())
        for x in result["only_here_sample"]
    }
    assert sample == {_ident(s) for s in extras}
    assert _stored(database.path) == lastfm_sim.expected() | {_ident(s) for s in extras}
    assert again["result"]["listens_added"] == 0
    assert again["result"]["listens_only_here"] == len(extras)
    assert again["result"]["days_different"] == len({s.timestamp // 86400 for s in extras})


def test_verify_without_repair_and_human_summary(
    workdir: Path, serve_in_thread: ServeInThread, lastfm_sim: SimulatedLastfm
) -> None:
    """``--no-repair`` only reports. Piped, ``verify`` prints progress lines like an import,
    then what it found: the days that differ (named), the listens missing here and those
    only here; ``jobs show`` of the job shows the same verify fields with local dates, not
    an import's fields or Unix seconds."""
    removed, extras, rows = _prepare(lastfm_sim)
    seed(workdir / "musique.db", rows)
    daemon = serve_in_thread(socket=True, **lastfm_sim.sections())
    before = _listed(daemon)
    shown = daemon.ctl("verify", "--no-repair", timeout=120)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout.splitlines()
    assert out[0] == "verify job 1 started (Ctrl-C detaches, the job goes on)"
    assert any(line.startswith("verify job 1: running, day ") for line in out)
    days = sorted(
        {time.strftime("%Y-%m-%d", time.gmtime(s.timestamp)) for s in [*removed, *extras]}
    )
    assert "Verify job 1 finished" in out
    summary = {
        key.strip(): value.strip()
        for key, _, value in (
            line.partition(": ") for line in out[out.index("Verify job 1 finished") + 1 :]
        )
        if value
    }
    assert summary["days different"] == f"{len(days)}: {', '.join(days)} (UTC days)"
    assert summary["listens missing"] == f"{len(removed)} (Last.fm has them, they were not here)"
    assert summary["listens added"] == "0 (--no-repair: reported only)"
    assert summary["listens only here"] == f"{len(extras)} (Last.fm no longer has them; kept)"
    assert "Ghost Artist" in shown.stdout
    assert _listed(daemon) == before
    job = daemon.call("jobs.list", {"limit": 1})[0]
    assert job["result"]["listens_missing"] == len(removed)

    again = daemon.ctl("jobs", "show", "1")
    assert again.returncode == 0, again.stderr
    fields = dict(line.split(": ", 1) for line in again.stdout.splitlines() if ": " in line)
    assert fields["job"].strip() == "1 (verify)"
    assert fields["days checked"].strip() == f"{job['pages_total']} of {job['pages_total']}"
    assert fields["days different"].strip() == summary["days different"]
    assert re.fullmatch(
        r" *\d{4}-\d\d-\d\d \d\d:\d\d:\d\d → \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", fields["window"]
    )
    for import_field in ("pages", "imported", "skipped", "params"):
        assert import_field not in fields
    assert str(job["params"]["since"]) not in again.stdout


async def test_verify_pause_resume_continues_from_checkpoint(
    database: Database, in_process: InProcess, lastfm_sim: SimulatedLastfm
) -> None:
    """A paused verify job resumes at the next unchecked day: every day is counted once."""
    removed, _, rows = _prepare(lastfm_sim)
    await store(database, rows)
    sections = lastfm_sim.sections(requests_per_second=25.0, max_in_flight=1)
    async with in_process(**sections) as daemon:
        job_id = (await daemon.call("verify.start", {}))["job_id"]
        await daemon.wait_pages(job_id, 2)
        paused = await daemon.call("jobs.pause", {"job_id": job_id})
        await daemon.call("jobs.resume", {"job_id": job_id})
        job = await daemon.wait_job(job_id)
    assert paused["state"] == "paused"
    assert paused["pages_done"] < paused["pages_total"]
    assert job["state"] == "done"
    assert job["result"]["days_checked"] == job["pages_done"] == job["pages_total"]
    assert job["result"]["listens_added"] == len(removed)


async def test_verify_needs_lastfm(database: Database, in_process: InProcess) -> None:
    """Without Last.fm credentials ``verify.start`` is -32001 and no job is created."""
    async with in_process() as daemon:
        refused = await daemon.call_error("verify.start", {})
        assert await daemon.call("jobs.list", {"limit": 5}) == []
    assert refused.code == wire.NOT_CONFIGURED
    assert "last.fm" in refused.message.lower()
