"""``musiquectl jobs undo`` through the daemon: refused, with why, for a Last.fm import."""

from __future__ import annotations

import asyncio
from pathlib import Path

from musiqued.storage import jobs as job_store
from musiqued.storage.db import Database
from tests.fixtures.whole_daemon import StartWholeDaemon
from tests.history_support import generated, seed


def _lastfm_job(database: Path) -> int:
    async def create() -> int:
        db = Database(database)
        await db.open()
        try:
            return await job_store.create(db, "import", {}, state="done")
        finally:
            await db.close()

    return asyncio.run(create())


def test_undo_of_a_lastfm_import_is_refused_saying_why(
    workdir: Path, start_in_thread: StartWholeDaemon
) -> None:
    """One line saying the listens are Last.fm's own history; nothing is removed."""
    seed(workdir / "musique.db", generated(30))
    job_id = _lastfm_job(workdir / "musique.db")
    daemon = start_in_thread()
    refused = daemon.ctl("jobs", "undo", str(job_id))
    assert refused.returncode != 0
    assert "Last.fm's own history" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
