"""The tracker and what it uses, built in the test's own process as ``build_services``
wires them, and a ``FakeClock`` moved on whenever the services wait on it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

from musiqued.clock import SYSTEM_CLOCK, Clock
from musiqued.config import LastfmConfig, TrackerConfig
from musiqued.services.events import EventBus
from musiqued.services.importer import Importer
from musiqued.services.jobs import JobRunner
from musiqued.services.lastfm_session import LastfmConnection
from musiqued.services.tracker import Tracker
from musiqued.services.window import WindowPager
from musiqued.storage.db import Database
from tests.fixtures.clock import FakeClock

T = TypeVar("T")

QUICK = TrackerConfig(interval_seconds=1, late_sweep_interval_seconds=3600)


@dataclass
class Tracking:
    tracker: Tracker
    jobs: JobRunner
    importer: Importer
    lastfm: LastfmConnection


@asynccontextmanager
async def tracking(
    database: Database,
    bus: EventBus,
    settings: LastfmConfig,
    config: TrackerConfig = QUICK,
    clock: Clock = SYSTEM_CLOCK,
) -> AsyncIterator[Tracking]:
    """The tracker and what it uses, wired as ``build_services`` does (the connection tells
    the tracker when the credentials change); opened in the daemon's order, closed in reverse.
    ``clock``: the tracker's and the retries' (a ``FakeClock`` lets the test say when the next
    poll or attempt is due)."""
    tracker: Tracker | None = None

    def lastfm_changed() -> None:
        if tracker is not None:
            tracker.lastfm_changed()

    lastfm = LastfmConnection(settings, database, on_change=lastfm_changed, clock=clock)
    jobs = JobRunner(database, bus)
    importer = Importer(
        jobs, database, WindowPager(lastfm), lastfm, settings, on_new_albums=lambda: None
    )
    tracker = Tracker(
        database, lastfm, importer, bus, config, on_new_albums=lambda: None, clock=clock
    )
    await lastfm.open()
    await jobs.open()
    await tracker.open()
    try:
        yield Tracking(tracker, jobs, importer, lastfm)
    finally:
        await tracker.close()
        await jobs.close()
        await lastfm.close()


async def driving(clock: FakeClock, awaited: Awaitable[T]) -> T:
    """``awaited``'s result, the clock moved on whenever the services all wait on it (so
    that backoffs and intervals pass at once)."""
    goal = asyncio.ensure_future(awaited)
    while not goal.done():
        sleeping = asyncio.ensure_future(clock.sleeping())
        await asyncio.wait({goal, sleeping}, return_when=asyncio.FIRST_COMPLETED)
        if sleeping.done():
            await clock.advance(1)
        else:
            sleeping.cancel()
    return goal.result()


async def polls(clock: FakeClock, count: int, interval: float = 1.0) -> None:
    """Until the tracker's poll under way and ``count`` more have ended: each time it waits
    for its next poll, ``clock`` moves one ``interval`` on."""
    await clock.sleeping()
    for _ in range(count):
        await clock.advance(interval)
        await clock.sleeping()
