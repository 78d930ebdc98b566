"""The enrichment worker: drains the persistent queue in the background, one lane per source.

::

    Enricher (one owned task while [enrichment] enabled)
      ├── lane lastfm   album.getInfo through the shared governor at Priority.ENRICH
      ├── lane spotify  album / artist search; a 429 pauses the lane for its Retry-After
      └── lane ai       chat completion at [ai] requests_per_second, after the album's lastfm row

While an import job runs, each lane pauses ``IMPORT_PACE_S`` between items: imports first.
Each lane takes one due row at a time, never an item another lane is working on, and writes
the outcome with the data in one small transaction. Failures: a transient one (5xx, timeout,
malformed body) puts the row back with exponential backoff (``retry_seconds`` doubling) until
``max_attempts``, then 'failed'; after one, the lane itself pauses a little so a service that
is down is probed, not hammered. A 429 pauses the lane for ``Retry-After`` without counting
an attempt. Rejected credentials stop the lane ("blocked") until a reload or ``enrich.run``:
every row would fail the same way.

Unconfigured sources: their rows are marked 'skipped' ("not configured"). 'skipped' means
only that, so when the source becomes configured (daemon start, reload) those rows go back
to 'pending' by themselves; ``enrich --retry-failed`` does it too, and re-queues 'failed'.

``[enrichment] max_albums_per_import``: while a job is active, only its first N new albums are
enriched; the others wait in the queue until the job ends (the lanes look again every few
seconds while work is held back).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from musiqued.aio import cancel_and_wait
from musiqued.clock import sleep_or_wake
from musiqued.config import AiConfig, EnrichmentConfig, SpotifyConfig
from musiqued.errors import (
    FatalUpstreamError,
    NotConfiguredError,
    RateLimitedError,
    StoreError,
    UpstreamError,
)
from musiqued.services.enrichment.sources import (
    AiDescriptions,
    LastfmAlbums,
    NothingToDo,
    Source,
    SpotifyAlbums,
    SpotifyArtists,
)
from musiqued.services.events import EventBus
from musiqued.services.image_cache import ImageCache
from musiqued.services.lastfm_session import LastfmConnection
from musiqued.storage import enrichment as store
from musiqued.storage.db import Database
from musiqued.storage.enrichment import QueueItem

if TYPE_CHECKING:
    from musiqued.upstream.ai import AiClient
    from musiqued.upstream.spotify import SpotifyClient

log = structlog.get_logger("musiqued.enricher")

IDLE_S = 300.0  # nothing to do: wait for wake() (or this long)
HELD_BACK_S = 2.0  # due work held back (job cap, busy item, ai waiting for lastfm)
MAX_BACKOFF_S = 3600.0
IMPORT_PACE_S = 0.5  # per lane, between items, while an import job runs
LANE_PAUSE_FACTOR = 8  # the lane pauses at most retry_seconds × this after a failure
CREDENTIAL_CODES = frozenset({9, 10, 26})  # Last.fm: bad session, invalid key, suspended key


@dataclass
class Lane:
    source: str
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    busy: tuple[str, int] | None = None
    blocked: str | None = None
    paused_until: float = 0.0  # wall clock
    failures_in_a_row: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    finished: int = 0


def _blocks_lane(exc: FatalUpstreamError) -> bool:
    return (
        exc.kind == "credentials"
        or exc.status in (401, 403, 404)
        or (exc.upstream_code in CREDENTIAL_CODES)
    )


@dataclass(frozen=True, slots=True)
class EnrichmentSections:
    """The configuration the worker reads: its own section and its two optional services."""

    enrichment: EnrichmentConfig
    spotify: SpotifyConfig
    ai: AiConfig


class Enricher:
    """The worker: one lane per source, a row at a time, outcomes stored with the row."""

    def __init__(
        self,
        db: Database,
        lastfm: LastfmConnection,
        events: EventBus,
        sections: EnrichmentSections,
        images: ImageCache,
    ) -> None:
        """``images``: where the images enrichment finds are downloaded to."""
        self._db = db
        self._lastfm = lastfm
        self._events = events
        self._sections = sections
        self._lanes = {source: Lane(source) for source in store.SOURCES}
        self._task: asyncio.Task[None] | None = None
        self._spotify: SpotifyClient | None = None
        self._ai: AiClient | None = None
        self._sources: dict[tuple[str, str], Source] = {}
        self._images = images

    # -- lifecycle -----------------------------------------------------------------------

    async def open(self) -> None:
        await self._build_clients()
        requeued = await store.requeue(
            self._db, configured=self._configured_sources(), interrupted=True
        )
        if requeued:
            log.info("enrichment rows re-queued", rows=requeued)
        await self._apply_enabled()

    async def close(self) -> None:
        await self._stop_task()
        await self._close_clients()

    async def reconfigure(self, sections: EnrichmentSections) -> None:
        """Apply new [spotify] / [ai] / [enrichment] settings (reload)."""
        old, self._sections = self._sections, sections
        if old.spotify != sections.spotify or old.ai != sections.ai:
            await self._stop_task()
            await self._close_clients()
            await self._build_clients()
        for lane in self._lanes.values():
            lane.blocked = None
            lane.failures_in_a_row = 0
        await store.requeue(self._db, configured=self._configured_sources())
        await self._apply_enabled()
        self.wake()

    def wake(self) -> None:
        """New work may be queued (an import page or a tracker poll stored new albums)."""
        for lane in self._lanes.values():
            lane.wake.set()

    async def _apply_enabled(self) -> None:
        if not self._sections.enrichment.enabled:
            if self._task is not None:
                log.info("enrichment worker stopped: [enrichment] enabled = false")
            await self._stop_task()
        elif self._task is None:
            self._task = asyncio.create_task(self._run(), name="enricher")

    async def _stop_task(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)

    async def _build_clients(self) -> None:
        """Clients for the configured optional services (their modules load only then)."""
        sections = self._sections
        if sections.spotify.configured:
            from musiqued.upstream.spotify import SpotifyClient

            self._spotify = SpotifyClient(sections.spotify)
        if sections.ai.configured:
            from musiqued.upstream.ai import AiClient

            self._ai = AiClient(sections.ai)
            await self._ai.open()
        self._sources = {
            ("lastfm", "album"): LastfmAlbums(self._lastfm),
            ("spotify", "album"): SpotifyAlbums(self._spotify),
            ("spotify", "artist"): SpotifyArtists(self._spotify),
            ("ai", "album"): AiDescriptions(self._ai, self._db, sections.ai),
        }

    async def _close_clients(self) -> None:
        spotify, self._spotify = self._spotify, None
        ai, self._ai = self._ai, None
        if spotify is not None:
            await spotify.close()
        if ai is not None:
            await ai.close()

    def _configured_sources(self) -> list[str]:
        flags = {
            "lastfm": self._lastfm.configured,
            "spotify": self._sections.spotify.configured,
            "ai": self._sections.ai.configured,
        }
        return [source for source, on in flags.items() if on]

    # -- the lanes -----------------------------------------------------------------------

    async def _run(self) -> None:
        log.info("enrichment worker started", sources=self._configured_sources())
        try:
            async with asyncio.TaskGroup() as group:
                for lane in self._lanes.values():
                    group.create_task(self._lane(lane), name=f"enricher-{lane.source}")
        finally:
            for lane in self._lanes.values():
                lane.busy = None

    async def _lane(self, lane: Lane) -> None:
        while True:
            lane.wake.clear()
            try:
                delay = await self._step(lane)
            except asyncio.CancelledError:
                raise
            except StoreError as exc:  # no space left, the file gone: say so, no traceback
                log.error("enrichment cannot write; waiting", source=lane.source, error=exc.message)
                delay = HELD_BACK_S * 5
            except Exception:
                # A bug or the database: log it, and do not spin on it (a pause, so that
                # wake-ups from the other lanes cannot cut the wait short).
                log.exception("enrichment step failed", source=lane.source)
                delay = HELD_BACK_S * 5
                lane.paused_until = time.time() + delay
            if delay > 0:
                await sleep_or_wake(asyncio.sleep, delay, lane.wake)

    async def _step(self, lane: Lane) -> float:
        """Process one row; returns how long to wait before the next step."""
        db = self._db
        if lane.blocked:
            return IDLE_S
        now = time.time()
        if lane.paused_until > now:
            return lane.paused_until - now
        if lane.source not in self._configured_sources():
            skipped = await store.skip_pending(db, lane.source)
            if skipped:
                log.info(
                    "enrichment source not configured: rows skipped",
                    source=lane.source,
                    rows=skipped,
                )
            return IDLE_S
        busy = [other.busy for other in self._lanes.values() if other.busy and other is not lane]
        cutoffs = await store.job_cutoffs(db, self._sections.enrichment.max_albums_per_import)
        item = await store.next_item(db, lane.source, now, busy=busy, cutoffs=cutoffs)
        if item is None:
            due = await store.next_due_at(db, lane.source)
            if due is None:
                return IDLE_S
            return max(due - time.time(), 0.0) or HELD_BACK_S
        lane.busy = (item.item_kind, item.item_id)
        try:
            await self._process(lane, item)
        finally:
            lane.busy = None
            for other in self._lanes.values():
                if other is not lane:
                    other.wake.set()  # an item it waited for may be free now
        # An import has the machine first: the worker trickles along beside it.
        return IMPORT_PACE_S if await store.import_running(db) else 0.0

    async def _process(self, lane: Lane, item: QueueItem) -> None:
        db = self._db
        config = self._sections.enrichment
        source = self._sources.get((item.source, item.item_kind), NothingToDo())
        try:
            outcome = await source.fetch(item)
        except NotConfiguredError:
            await store.finish(db, item, "skipped", error=store.NOT_CONFIGURED, attempted=False)
            return
        except RateLimitedError as exc:
            wait = exc.retry_after if exc.retry_after is not None else config.retry_seconds
            lane.paused_until = time.time() + wait
            self._note_error(lane, exc.message)
            log.info(
                "enrichment source asked us to wait", source=lane.source, retry_after=round(wait, 1)
            )
            await store.retry_later(db, item, lane.paused_until, exc.message, attempted=False)
            return
        except FatalUpstreamError as exc:
            self._note_error(lane, exc.message)
            if _blocks_lane(exc):
                lane.blocked = exc.message
                log.error(
                    "enrichment source stopped: needs a human",
                    source=lane.source,
                    error=exc.message,
                )
                await store.retry_later(db, item, 0.0, exc.message, attempted=False)
            else:
                await store.finish(db, item, "failed", error=exc.message)
                self._published(item, "failed")
            return
        except UpstreamError as exc:  # transient, or one of no finer kind: retried later
            await self._transient(lane, item, exc)
            return
        except Exception as exc:
            # A source that could not deal with what it was sent: this item fails with the
            # reason (``enrich --retry-failed`` queues it again), the lane goes on.
            log.exception("enrichment source failed on an item", source=lane.source)
            error = f"internal error: {type(exc).__name__}: {exc}"
            self._note_error(lane, error)
            await store.finish(db, item, "failed", error=error[:500])
            self._published(item, "failed")
            return
        if lane.failures_in_a_row:
            log.info(
                "enrichment source recovered",
                source=lane.source,
                after_failures=lane.failures_in_a_row,
            )
        lane.failures_in_a_row = 0
        lane.finished += 1
        await store.finish(db, item, outcome.state, result=outcome.result, updates=outcome.updates)
        if outcome.image_url:
            # Kept now, while the URL is fresh: the history then shows it offline too.
            await self._images.fetch(outcome.image_url)
        self._published(item, outcome.state, result=outcome.result)

    async def _transient(self, lane: Lane, item: QueueItem, exc: UpstreamError) -> None:
        config = self._sections.enrichment
        db = self._db
        self._note_error(lane, exc.message)
        lane.failures_in_a_row += 1
        if lane.failures_in_a_row == 1:
            log.warning(
                "enrichment source failing; retrying with backoff",
                source=lane.source,
                error=exc.message,
            )
        attempts = item.attempts + 1
        lane.paused_until = time.time() + config.retry_seconds * min(
            2 ** (lane.failures_in_a_row - 1), LANE_PAUSE_FACTOR
        ) * random.uniform(0.1, 0.5)
        if attempts >= config.max_attempts:
            await store.finish(db, item, "failed", error=exc.message)
            self._published(item, "failed")
            return
        backoff = min(MAX_BACKOFF_S, config.retry_seconds * 2 ** (attempts - 1))
        backoff *= random.uniform(0.8, 1.2)
        await store.retry_later(db, item, time.time() + backoff, exc.message)

    def _note_error(self, lane: Lane, message: str) -> None:
        lane.last_error = message
        lane.last_error_at = time.time()

    def _published(self, item: QueueItem, state: str, result: str | None = None) -> None:
        self._events.publish(
            "enrichment",
            item_kind=item.item_kind,
            item_id=item.item_id,
            source=item.source,
            state=state,
            result=result,
            artist=item.artist,
            title=item.title or None,
        )

    # -- what it reports -----------------------------------------------------------------

    async def summary(self) -> dict[str, int]:
        """``daemon.status``'s ``enrichment``: rows pending, failed, done."""
        table = await store.counts(self._db)
        return {
            state: sum(row[state] for row in table.values())
            for state in ("pending", "failed", "done")
        }

    async def status(self) -> dict[str, Any]:
        table = await store.counts(self._db)
        failures = await store.last_failures(self._db)
        configured = set(self._configured_sources())
        by_source: dict[str, Any] = {}
        latest: tuple[float, str] | None = None
        for source, lane in self._lanes.items():
            row = dict(table.get(source, {}))
            row["running"] = 1 if lane.busy else 0
            error, error_at = lane.last_error, lane.last_error_at
            if source in failures and (error_at is None or failures[source][1] > error_at):
                error, error_at = failures[source]
            if error and error_at is not None and (latest is None or error_at > latest[0]):
                latest = (error_at, f"{source}: {error}")
            by_source[source] = {
                "configured": source in configured,
                **row,
                "last_error": error,
                "blocked": lane.blocked,
                "paused_until": lane.paused_until if lane.paused_until > time.time() else None,
            }
        totals = {
            state: sum(int(by_source[s][state]) for s in by_source)
            for state in ("pending", "running", "done", "failed", "skipped")
        }
        return {
            **totals,
            "enabled": self._sections.enrichment.enabled,
            "last_error": latest[1] if latest else None,
            "by_source": by_source,
        }

    def status_line(self) -> str | None:
        working = [lane.source for lane in self._lanes.values() if lane.busy]
        return f"enriching ({', '.join(working)})" if working else None

    async def run(self, *, retry_failed: bool = False, regenerate: bool = False) -> dict[str, Any]:
        """``enrich.run``: re-queue what was asked and wake the worker."""
        if retry_failed:
            for lane in self._lanes.values():
                lane.blocked = None
                lane.failures_in_a_row = 0
                lane.paused_until = 0.0
        requeued = await store.requeue(
            self._db,
            configured=self._configured_sources(),
            failed=retry_failed,
            regenerate=regenerate,
        )
        self.wake()
        pending = (await self.summary())["pending"]
        return {
            "queued": requeued,
            "pending": pending,
            "enabled": self._sections.enrichment.enabled,
        }
