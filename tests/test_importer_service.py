"""Import planning through the ``Importer`` itself, in the test's process: the job runner, the
window pager and the Last.fm connection built as the daemon wires them, against a temporary
database and the simulated Last.fm. The database is compared EXACTLY with the simulator.

What crosses processes (the RPC parameters, ``musiquectl``, a restart) stays in
``test_import_jobs.py`` and ``test_import_resilience.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from musiqued.config import LastfmConfig
from musiqued.services.events import EventBus
from musiqued.services.importer import Importer, ImportRequest
from musiqued.services.jobs import JobRunner
from musiqued.services.lastfm_session import LastfmConnection
from musiqued.services.window import WindowPager
from musiqued.storage.db import Database
from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.services import next_event
from tests.import_helpers import FINISHED, assert_exact


@dataclass
class Imports:
    """An importer and its runner; ``new_albums`` counts the ``on_new_albums`` calls."""

    jobs: JobRunner
    importer: Importer
    bus: EventBus
    new_albums: list[None] = field(default_factory=list)

    async def run(self, request: ImportRequest) -> dict[str, Any]:
        """Start an import and return the job once it has ended."""
        events = self.bus.subscribe(["job"])
        try:
            job_id = await self.importer.start_import(request)
            await next_event(events, "job", lambda job: job["state"] in FINISHED, job_id=job_id)
        finally:
            events.close()
        return await self.jobs.get(job_id)


@asynccontextmanager
async def importer(
    database: Database, bus: EventBus, lastfm: LastfmConnection, settings: LastfmConfig
) -> AsyncIterator[Imports]:
    """The importer wired as ``build_services`` does it; its runner opened, then closed."""
    new_albums: list[None] = []
    jobs = JobRunner(database, bus)
    pager = WindowPager(lastfm)
    service = Importer(
        jobs, database, pager, lastfm, settings, on_new_albums=lambda: new_albums.append(None)
    )
    imports = Imports(jobs, service, bus, new_albums)
    await jobs.open()
    try:
        yield imports
    finally:
        await jobs.close()


async def test_without_a_bound_the_1000_most_recent(
    lastfm_sim: SimulatedLastfm,
    database: Database,
    bus: EventBus,
    lastfm_connection: LastfmConnection,
) -> None:
    """Without limit, all or a window, an import takes the 1000 most recent, like the
    original; the new albums it stored are announced for enrichment."""
    lastfm_sim.reset(size=1300, seed=13)
    async with importer(database, bus, lastfm_connection, lastfm_sim.config()) as imports:
        job = await imports.run(ImportRequest())
    assert (job["state"], job["params"]["limit"]) == ("done", 1000)
    assert (job["tracks_imported"], job["pages_total"]) == (1000, 5)
    assert_exact(database.path, lastfm_sim.scrobbles()[:1000])
    assert imports.new_albums
    assert job["total_albums_to_enrich"] > 0


async def test_a_limit_takes_the_newest_never_the_track_playing_now(
    lastfm_sim: SimulatedLastfm,
    database: Database,
    bus: EventBus,
    lastfm_connection: LastfmConnection,
) -> None:
    """A limit of 450 stores exactly the 450 most recent scrobbles in 3 pages; the track
    playing now is not a scrobble and is not stored."""
    lastfm_sim.reset(size=1200, seed=12)
    lastfm_sim.set_now_playing("Playing Artist", "Playing Now", "Live Album")
    async with importer(database, bus, lastfm_connection, lastfm_sim.config()) as imports:
        job = await imports.run(ImportRequest(limit=450))
    assert (job["state"], job["tracks_imported"], job["pages_total"]) == ("done", 450, 3)
    assert_exact(database.path, lastfm_sim.scrobbles()[:450])


async def test_pages_of_one_scrobble_and_an_empty_window(
    lastfm_sim: SimulatedLastfm,
    database: Database,
    bus: EventBus,
    lastfm_connection: LastfmConnection,
) -> None:
    """A page holding one scrobble (a bare object on the wire, not a list) is stored; a
    window without scrobbles is a job done with nothing to do."""
    lastfm_sim.reset(size=201, seed=18)
    async with importer(database, bus, lastfm_connection, lastfm_sim.config()) as imports:
        job = await imports.run(ImportRequest(all=True))
        assert (job["tracks_imported"], job["pages_total"]) == (201, 2)
        assert_exact(database.path, lastfm_sim.scrobbles())
        empty = await imports.run(ImportRequest(since=1, until=1000))
    assert (empty["state"], empty["pages_total"], empty["tracks_imported"]) == ("done", 0, 0)
    assert empty["window"] == {"from": 1, "to": 1000}


async def test_an_incremental_window_starts_at_the_newest_stored_listen(
    lastfm_sim: SimulatedLastfm,
    database: Database,
    bus: EventBus,
    lastfm_connection: LastfmConnection,
) -> None:
    """``incremental`` plans from the newest stored listen (inclusive) to now: only what
    came after is fetched, the newest stored second again on purpose."""
    lastfm_sim.reset(size=700, seed=15)
    async with importer(database, bus, lastfm_connection, lastfm_sim.config()) as imports:
        await imports.run(ImportRequest(all=True))
        newest = lastfm_sim.newest()
        added = lastfm_sim.add_new_scrobbles(25)
        job = await imports.run(ImportRequest(incremental=True))
    assert job["window"]["from"] == newest
    assert job["tracks_imported"] == len(added) == 25
    assert job["tracks_skipped"] <= 2
    assert_exact(database.path, lastfm_sim.scrobbles())


@pytest.mark.parametrize("refusal", ["error", "clamp"])
async def test_a_refused_page_size_numbers_the_pages_at_the_size_served(
    refusal: str, lastfm_sim: SimulatedLastfm, database: Database, bus: EventBus
) -> None:
    """With ``page_size = 1000`` and a Last.fm that refuses (error 6) or silently clamps any
    limit above 200, the import numbers its pages at the 200 it is served: exact."""
    lastfm_sim.reset(size=1100, seed=31)
    lastfm_sim.configure(max_limit=200, limit_refusal=refusal)
    settings = lastfm_sim.config(page_size=1000)
    lastfm = LastfmConnection(settings, database)
    await lastfm.open()
    try:
        async with importer(database, bus, lastfm, settings) as imports:
            job = await imports.run(ImportRequest(all=True))
    finally:
        await lastfm.close()
    assert job["state"] == "done", job
    assert job["pages_done"] == job["pages_total"] == 6
    assert job["tracks_imported"] == 1100
    assert_exact(database.path, lastfm_sim.scrobbles())


async def test_unusable_scrobbles_are_counted_as_errors_with_a_reason(
    lastfm_sim: SimulatedLastfm,
    database: Database,
    bus: EventBus,
    lastfm_connection: LastfmConnection,
) -> None:
    """A scrobble with an empty title is not stored; it counts in ``tracks_errors`` with its
    reason, and the window is complete without it (no gap)."""
    lastfm_sim.reset(size=50, seed=36)
    bad_at = lastfm_sim.scrobbles()[10].timestamp + 1
    lastfm_sim.add_rows([{"timestamp": bad_at, "artist": "Someone", "title": ""}])
    async with importer(database, bus, lastfm_connection, lastfm_sim.config()) as imports:
        job = await imports.run(ImportRequest(all=True))
    assert (job["state"], job["tracks_imported"], job["tracks_errors"]) == ("done", 50, 1)
    assert "no title" in job["error_reasons"][0]
    assert job["missing"] is None
    assert_exact(database.path, [s for s in lastfm_sim.scrobbles() if s.title])
