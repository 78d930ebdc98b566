"""The real-time tracker: polls Last.fm and records every new scrobble as it happens.

One owned task runs the loop. Each poll asks ``user.getRecentTracks`` for everything from the
newest stored listen on (``from`` is inclusive and reaches ``POLL_OVERLAP_S`` further back, so
a same-second or slightly late scrobble is not lost; the unique index drops what is already
stored). A small gap is fetched in full, then
stored oldest page first, one transaction per page: the newest stored listen, which anchors
the next poll, never moves past a scrobble that is not stored yet. A gap of more than
``CATCHUP_MAX_PAGES`` pages is handed to an import job; the tracker records the newest page
itself so live tracking goes on while the job fills the hole. A catch-up job that ends done
stored its whole window: later polls start at its end rather than reaching back into it (a
burst of scrobbles within ``POLL_OVERLAP_S`` would otherwise look like a gap every poll).

Last.fm accepts scrobbles back-dated by up to 14 days, which "everything after my newest
listen" cannot see: every ``late_sweep_interval_seconds`` the loop sweeps the window from
``late_sweep_days`` ago up to the anchor and records what is missing.

The running flag and the interval persist in ``daemon_state`` so that a tracker that was
running runs again after a restart; ``[tracker] autostart`` applies only when nothing was
saved. Failures back off and never end the loop, except a fatal upstream error (bad key,
unknown user, suspended key), which needs a human: the tracker stops and says why.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from musiqued.aio import cancel_and_wait
from musiqued.clock import SYSTEM_CLOCK, Clock, sleep_or_wake
from musiqued.config import TrackerConfig
from musiqued.errors import (
    ConflictError,
    DatabaseGoneError,
    FatalUpstreamError,
    MusiqueError,
    NotConfiguredError,
    StoreError,
)
from musiqued.models import NowPlaying, RecentTracksPage
from musiqued.services.events import EventBus
from musiqued.services.importer import Importer, ImportRequest
from musiqued.services.lastfm_session import LastfmConnection
from musiqued.storage.db import Database
from musiqued.storage.listens import newest_listen, store_page
from musiqued.storage.state import get_state, set_state
from musiqued.upstream.ratelimit import Priority

if TYPE_CHECKING:
    from musiqued.upstream.lastfm import LastfmClient

log = structlog.get_logger("musiqued.tracker")

STATE_KEY = "tracker"
CATCHUP_MAX_PAGES = 3
"""A gap of more pages than this goes to an incremental import job."""
MAX_BACKOFF_S = 600.0
POLL_OVERLAP_S = 600
"""Each poll reaches this far behind the newest stored listen: a scrobble submitted a little
late (another device, a player that batches) is recorded at once rather than by the sweep;
the unique index makes the overlap free of duplicates."""
DAY_S = 86400
CLOCK_JUMP_S = 60.0
"""A change of at least this between the wall clock and the monotonic one is logged as a jump."""
MAX_WARNED = 10_000
"""Unusable entries remembered as warned about; past this many the memory starts over."""


def _entry_key(reason: str) -> str:
    """A refused entry's reason without its place in the page ("entry 7: "), which moves as
    new scrobbles arrive: the same entry seen by the next poll has the same key."""
    head, sep, rest = reason.partition(": ")
    return rest if sep and head.startswith("entry ") else reason


def _round(moment: float | None) -> float | None:
    return None if moment is None else round(moment, 3)


class Tracker:
    """The tracker: ``start(interval)``, ``stop()``, ``status()``; ``open``/``close`` for the
    daemon's lifecycle."""

    def __init__(
        self,
        db: Database,
        lastfm: LastfmConnection,
        imports: Importer,
        events: EventBus,
        config: TrackerConfig,
        *,
        on_new_albums: Callable[[], None],
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """``clock``: polls are spaced on its monotonic clock; the times shown are its wall
        clock's."""
        self._db = db
        self._clock = clock
        self._lastfm = lastfm
        self._imports = imports
        self._events = events
        self._config = config
        self._on_new_albums = on_new_albums
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.interval_seconds = config.interval_seconds
        self._config_interval = self.interval_seconds
        self._now_playing: NowPlaying | None = None
        self._last_poll_at: float | None = None
        self._next_poll_due: float | None = None
        """When the next poll is due, on the monotonic clock (shown as wall-clock time)."""
        self._wall_offset: float | None = None
        """The wall clock minus the monotonic one at the last poll: a change is a jump."""
        self._last_error: str | None = None
        self._last_error_at: float | None = None
        self._failures = 0
        self._recorded = 0
        self._last_sweep_at: float | None = None
        self._last_sweep_found: int | None = None
        self._catching_up_job_id: int | None = None
        self._handed_off: set[int] = set()
        """Catch-up jobs this tracker started (not another import it waited for)."""
        self._caught_up_to: int | None = None
        """The end (exclusive) of the last catch-up job's window, once it ended done: every
        scrobble before it is stored."""
        self._warned: set[str] = set()
        """Unusable entries already warned about: each is logged once, not every poll."""
        self._wanted = False
        """The saved running flag: what the user asked for last."""
        self._stopped_for_credentials = False
        """Stopped by missing or refused Last.fm credentials: new ones revive it."""

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # -- lifecycle (the daemon opens and closes it) --------------------------------------

    async def open(self) -> None:
        """Restore the saved state; run again if the tracker was running when we stopped."""
        saved = await get_state(self._db, STATE_KEY)
        wanted = self._config.autostart
        if isinstance(saved, dict):
            wanted = bool(saved.get("running", wanted))
            interval = saved.get("interval_seconds")
            # The last choice wins: tracker.start's interval, unless the file changed since.
            config_unchanged = saved.get("config_interval") == self._config_interval
            if isinstance(interval, int | float) and interval >= 1 and config_unchanged:
                self.interval_seconds = float(interval)
            sweep = saved.get("last_sweep_at")
            if isinstance(sweep, int | float):
                self._last_sweep_at = float(sweep)
            found = saved.get("last_sweep_found")
            if isinstance(found, int):
                self._last_sweep_found = found
        self._wanted = wanted
        if not wanted:
            return
        if not self._lastfm.configured:
            self._stopped_for_credentials = True
            self._last_error = "Last.fm is not configured; the tracker waits for credentials"
            log.warning("tracker not started: Last.fm is not configured")
            return
        self._launch()
        log.info("tracker resumed", interval_seconds=self.interval_seconds)

    async def close(self) -> None:
        """Daemon shutdown: end the loop but keep the saved running flag."""
        await self._cancel()

    async def reconfigure(self, config: TrackerConfig) -> None:
        """After a reload: a new interval applies at once."""
        self._config = config
        if config.interval_seconds != self._config_interval:
            self._config_interval = self.interval_seconds = config.interval_seconds
            self._wake.set()
            await self._save()
            log.info(
                "tracker interval changed by the configuration", interval=self.interval_seconds
            )

    def lastfm_changed(self) -> None:
        """New Last.fm settings or a new session key (reload, login): a tracker that was
        stopped for want of (valid) credentials runs again, its error cleared."""
        if (
            self._wanted
            and self._stopped_for_credentials
            and not self.running
            and self._lastfm.configured
        ):
            self._last_error = None
            self._last_error_at = None
            self._stopped_for_credentials = False
            self._launch()
            log.info("tracker resumed with the new Last.fm credentials")
            self._events.publish("tracker", event="started", interval_seconds=self.interval_seconds)

    # -- control -------------------------------------------------------------------------

    async def start(self, interval_seconds: float | None = None) -> bool:
        """Start polling (or apply a new interval); False if it was already running."""
        self._lastfm.require()
        if interval_seconds is not None:
            self.interval_seconds = float(interval_seconds)
        if self.running:
            if interval_seconds is not None:
                self._wake.set()
                await self._save()
                log.info("tracker interval changed", interval_seconds=self.interval_seconds)
                self._events.publish(
                    "tracker", event="interval_changed", interval_seconds=self.interval_seconds
                )
            return False
        # Saved first: if the running flag cannot be written (a full disk), the call fails
        # and nothing was started; the answer never disagrees with what happens.
        await self._save(running=True)
        self._last_error = None
        self._failures = 0
        self._stopped_for_credentials = False
        self._launch()
        self._wanted = True
        log.info("tracker started", interval_seconds=self.interval_seconds)
        self._events.publish("tracker", event="started", interval_seconds=self.interval_seconds)
        return True

    async def stop(self) -> None:
        """Stop polling and remember that it is stopped."""
        was_running = self.running
        await self._cancel()  # first: the loop saves its own state too
        try:
            await self._save(running=False)
        except MusiqueError:
            # The flag cannot be written (a full disk): the call fails and the tracker goes
            # on as before, rather than coming back unasked at the next start.
            if was_running:
                self._launch()
            raise
        self._wanted = False
        if was_running:
            log.info("tracker stopped")
            self._events.publish("tracker", event="stopped")

    def _launch(self) -> None:
        self._wake.clear()
        self._task = asyncio.create_task(self._run(), name="tracker")

    async def _cancel(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)
        self._next_poll_due = None
        self._set_now_playing(None)

    async def _save(self, *, running: bool | None = None) -> None:
        saved = await get_state(self._db, STATE_KEY)
        previous = saved if isinstance(saved, dict) else {}
        await set_state(
            self._db,
            STATE_KEY,
            {
                "running": previous.get("running", False) if running is None else running,
                "interval_seconds": self.interval_seconds,
                "config_interval": self._config_interval,
                "last_sweep_at": self._last_sweep_at,
                "last_sweep_found": self._last_sweep_found,
            },
        )

    # -- what it reports -----------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        await self._check_catch_up_job()  # stopped or not, the state follows the job's end
        newest = await newest_listen(self._db)
        last_track = (
            {
                "artist": newest.artist,
                "title": newest.title,
                "album": newest.album or None,
                "timestamp": newest.timestamp,
            }
            if newest is not None
            else None
        )
        return {
            "running": self.running,
            "last_track": last_track,
            "interval_seconds": self.interval_seconds,
            "now_playing": self._now_playing.as_dict() if self._now_playing else None,
            "last_poll_at": _round(self._last_poll_at),
            "next_poll_at": _round(self._next_poll_at()),
            "last_error": self._last_error,
            "last_error_at": _round(self._last_error_at),
            "consecutive_failures": self._failures,
            "scrobbles_recorded": self._recorded,
            "last_sweep_at": _round(self._last_sweep_at),
            "last_sweep_found": self._last_sweep_found,
            "catching_up_job_id": self._catching_up_job_id,
        }

    def _next_poll_at(self) -> float | None:
        """The next poll's wall-clock time, as the wall clock reads now."""
        if self._next_poll_due is None:
            return None
        return self._clock.now() + max(self._next_poll_due - self._clock.monotonic(), 0.0)

    def status_line(self) -> str | None:
        if not self.running:
            return f"tracker stopped: {self._last_error}" if self._last_error else None
        interval = f"{self.interval_seconds:g}"
        if self._failures:
            return f"tracker failing ({self._failures}x): {self._last_error}"
        if self._catching_up_job_id is not None:
            return (
                f"tracking every {interval} s, catching up through job {self._catching_up_job_id}"
            )
        return f"tracking every {interval} s"

    # -- the loop ------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            started = self._clock.monotonic()
            self._last_poll_at = self._clock.now()
            self._notice_clock_jump(self._last_poll_at - started)
            try:
                client = self._lastfm.require()
                await self._poll(client)
                if self._sweep_due(self._clock.now()):
                    await self._sweep(client)
            except (FatalUpstreamError, NotConfiguredError, DatabaseGoneError) as exc:
                self._stopped_by(exc)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = self._failed(exc)
            else:
                self._succeeded()
                delay = self.interval_seconds
            await self._sleep_until(started, delay)

    async def _sleep_until(self, started: float, delay: float) -> None:
        """Sleep until ``delay`` after ``started`` (both on the monotonic clock, which a
        wall-clock jump leaves alone); a new interval interrupts and reschedules."""
        while True:
            self._next_poll_due = started + delay
            remaining = self._next_poll_due - self._clock.monotonic()
            if remaining <= 0:
                return
            self._wake.clear()
            if not await sleep_or_wake(self._clock.sleep, remaining, self._wake):
                return
            if not self._failures:
                delay = self.interval_seconds

    def _notice_clock_jump(self, wall_offset: float) -> None:
        previous, self._wall_offset = self._wall_offset, wall_offset
        if previous is not None and abs(wall_offset - previous) >= CLOCK_JUMP_S:
            log.warning(
                "the wall clock jumped; polls keep their pace",
                seconds=round(wall_offset - previous, 3),
            )

    def _failed(self, exc: Exception) -> float:
        self._failures += 1
        message = exc.message if isinstance(exc, MusiqueError) else f"{type(exc).__name__}: {exc}"
        self._last_error = message
        self._last_error_at = self._clock.now()
        if self._failures == 1:
            if isinstance(exc, StoreError):  # e.g. no space left: what it fetched is not kept
                log.error("tracker cannot store its scrobbles; backing off", error=message)
            elif isinstance(exc, MusiqueError):
                log.warning("tracker poll failing; backing off", error=message)
            else:
                log.exception("tracker poll failing; backing off", error=message)
            self._events.publish("tracker", event="failing", error=message)
        interval = self.interval_seconds
        ceiling = max(interval, min(MAX_BACKOFF_S, interval * 32))
        base = min(interval * 2.0 ** min(self._failures - 1, 10), ceiling)
        return base * random.uniform(0.9, 1.1)

    def _succeeded(self) -> None:
        if self._failures:
            log.info("tracker recovered", failures=self._failures, last_error=self._last_error)
            self._events.publish("tracker", event="recovered", failures=self._failures)
        self._failures = 0
        self._last_error = None

    def _stopped_by(self, exc: MusiqueError) -> None:
        # New credentials revive it; a vanished database needs a restart anyway.
        self._stopped_for_credentials = not isinstance(exc, DatabaseGoneError)
        self._last_error = exc.message
        self._last_error_at = self._clock.now()
        self._next_poll_due = None
        self._set_now_playing(None)
        log.error("tracker stopped: needs a human", error=exc.message)
        self._events.publish("tracker", event="stopped", error=exc.message)

    def _set_now_playing(self, playing: NowPlaying | None) -> None:
        """Keep the first ``since`` of a track; publish only when the track changes."""
        current = self._now_playing
        if playing is None:
            if current is None:
                return
            self._now_playing = None
        else:
            if current is not None and current.same_track(playing):
                return
            self._now_playing = dataclasses.replace(
                playing, since=playing.since or self._clock.now()
            )
        state = self._now_playing.as_dict() if self._now_playing else None
        self._events.publish("now_playing", now_playing=state)

    # -- one poll ------------------------------------------------------------------------

    async def _poll(self, client: LastfmClient) -> None:
        await self._check_catch_up_job()
        newest = await newest_listen(self._db)
        from_ts = int(newest.timestamp) - POLL_OVERLAP_S if newest is not None else None
        if from_ts is not None and self._caught_up_to is not None:
            # Stored whole by the catch-up job: only what came after its window is news.
            from_ts = max(from_ts, self._caught_up_to - 1)
        first = await client.recent_tracks(page=1, from_ts=from_ts, priority=Priority.TRACKER)
        self._set_now_playing(first.now_playing)
        if first.total_pages <= 1:
            await self._store([first])
            return
        if first.total_pages > CATCHUP_MAX_PAGES:
            # The job fills the gap; the newest page is ours so live tracking goes on.
            if await self._hand_off(from_ts, first):
                await self._store([first])
            return
        # Later pages within a fixed window, so scrobbles arriving meanwhile do not shift them.
        to_ts = first.scrobbles[0].timestamp + 1 if first.scrobbles else None
        pages = [first]
        for number in range(2, first.total_pages + 1):
            pages.append(
                await client.recent_tracks(
                    page=number, from_ts=from_ts, to_ts=to_ts, priority=Priority.TRACKER
                )
            )
        await self._store(pages)

    async def _store(self, pages: list[RecentTracksPage]) -> int:
        """Store oldest page first, one transaction each; publish one event per new listen."""
        found = 0
        for page in reversed(pages):
            fresh = self._not_warned(page.rejected)
            if fresh:
                log.warning(
                    "unusable entries in a Last.fm page; not stored",
                    count=len(fresh),
                    reasons=fresh[:5],
                )
            if not page.scrobbles:
                continue
            result = await store_page(self._db, page.scrobbles, source="tracker", want_new=True)
            for listen in result.new:
                self._events.publish("scrobble", **dataclasses.asdict(listen))
            self._recorded += len(result.new)
            found += len(result.new)
            if result.new:
                log.debug("scrobbles recorded", count=len(result.new))
            if result.new_albums:
                self._on_new_albums()
        return found

    def _not_warned(self, reasons: list[str]) -> list[str]:
        """The reasons not warned about yet, now remembered as warned."""
        fresh = [r for r in reasons if _entry_key(r) not in self._warned]
        if len(self._warned) + len(fresh) > MAX_WARNED:
            self._warned.clear()
        self._warned.update(_entry_key(r) for r in fresh)
        return fresh

    async def _hand_off(self, from_ts: int | None, first: RecentTracksPage) -> bool:
        """A long gap goes to an import job; False if another job runs (retry next poll)."""
        until = first.scrobbles[0].timestamp + 1 if first.scrobbles else None
        try:
            job_id = await self._imports.start_import(
                ImportRequest(all=True, since=from_ts, until=until)
            )
        except ConflictError:
            # Leave the running job alone; it may move the anchor forward itself (an import
            # stores its newest page first), after which the gap is small again.
            running = await self._imports.active()
            self._catching_up_job_id = int(running[0]["job_id"]) if running else None
            return False
        log.info(
            "tracker gap handed to an import job",
            job_id=job_id,
            pages=first.total_pages,
            scrobbles=first.total,
        )
        self._catching_up_job_id = job_id
        self._handed_off.add(job_id)
        self._events.publish("tracker", event="catching_up", job_id=job_id)
        return True

    async def _check_catch_up_job(self) -> None:
        job_id = self._catching_up_job_id
        if job_id is None:
            return
        active = {job.get("job_id") for job in await self._imports.active()}
        if job_id in active:
            return
        self._catching_up_job_id = None
        try:
            job = await self._imports.job(job_id)
        except MusiqueError:
            job = {}
        until = (job.get("window") or {}).get("to")
        own = job_id in self._handed_off
        self._handed_off.discard(job_id)
        if own and job.get("state") == "done" and isinstance(until, int):
            self._caught_up_to = max(until, self._caught_up_to or 0)
        log.info("tracker catch-up job ended", job_id=job_id, state=job.get("state"))

    # -- late scrobbles ------------------------------------------------------------------

    def _sweep_due(self, now: float) -> bool:
        if self._config.late_sweep_days <= 0 or self._catching_up_job_id is not None:
            # A catch-up job is fetching that window already; sweep once it has ended.
            return False
        last = self._last_sweep_at
        # A last sweep in the future: the wall clock went back; sweep rather than wait for it.
        return last is None or not 0 <= now - last < self._config.late_sweep_interval_seconds

    async def _sweep(self, client: LastfmClient) -> None:
        """Record what reached Last.fm late, between ``late_sweep_days`` ago and the anchor."""
        now = self._clock.now()
        newest = await newest_listen(self._db)
        found = 0
        if newest is not None:
            from_ts = int(now) - self._config.late_sweep_days * DAY_S
            to_ts = int(newest.timestamp) + 1
            page_number, total_pages = 1, 1
            while from_ts < to_ts and page_number <= total_pages:
                # Background work: the live poll's requests go first.
                page = await client.recent_tracks(
                    page=page_number, from_ts=from_ts, to_ts=to_ts, priority=Priority.IMPORT
                )
                found += await self._store([page])
                total_pages = page.total_pages
                page_number += 1
        self._last_sweep_at = now
        self._last_sweep_found = found
        await self._save()
        if found:
            log.info("late scrobbles recorded", found=found, days=self._config.late_sweep_days)
        self._events.publish("tracker", event="swept", found=found)
