"""Verify jobs: compare each UTC day's stored listens with Last.fm's count, repair what differs.

For every day of the window, one ``user.getRecentTracks`` request with ``limit=1`` gives
Last.fm's ``total`` for that day. A day whose count differs from ours is fetched in full
and compared by identity (timestamp, artist, title): what Last.fm has and we lack is added
(``store_page``, unless ``repair`` is off), and what we hold that Last.fm no longer has
(deleted or edited there) is reported in the job's ``result``, never deleted.

Days are committed in order, each with the job's checkpoint (the next day to check) and
the running summary in the same transaction, so a resumed job continues where it stopped.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from musiqued.models import RecentTracksPage, Scrobble
from musiqued.services.jobs import JobContext, JobKind
from musiqued.storage import history
from musiqued.storage import jobs as store
from musiqued.storage.jobs import PageProgress
from musiqued.storage.listens import store_page

if TYPE_CHECKING:
    from musiqued.app.daemon import Daemon

DAY = 86400
DEFAULT_DAYS = 30
"""Without ``since`` and with nothing stored yet, verify the last 30 days."""
SAMPLE_SIZE = 50
COUNT_BATCH = 8
"""Days whose Last.fm counts are asked for together (the governor paces them)."""


@dataclass(slots=True)
class Summary:
    """The job's running result; stored in ``jobs.result`` and its checkpoint."""

    days_total: int = 0
    days_checked: int = 0
    days_different: int = 0
    listens_added: int = 0
    listens_missing: int = 0
    listens_only_here: int = 0
    only_here_sample: list[dict[str, Any]] = field(default_factory=list)
    different_days: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, data: dict[str, Any]) -> Summary:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(frozen=True, slots=True)
class VerifyRequest:
    since: int | None = None
    until: int | None = None
    repair: bool = True


def day_windows(since: int, until: int) -> list[tuple[int, int]]:
    """``[since, until)`` cut at UTC midnights."""
    windows = []
    start = since
    while start < until:
        end = min((start // DAY + 1) * DAY, until)
        windows.append((start, end))
        start = end
    return windows


class Verifier:
    """``daemon.verifier``: starts verify jobs and runs their body inside the job runner."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon
        daemon.jobs.register(
            JobKind("verify", self._run, label="verifying", ready=daemon.require_lastfm)
        )

    async def start_verify(self, request: VerifyRequest) -> int:
        self._daemon.require_lastfm()
        now = int(time.time())
        until = now + 1 if request.until is None else min(request.until, now + 1)
        since = request.since
        if since is None:
            oldest = await self._daemon.db.scalar("SELECT MIN(timestamp) FROM listening_history")
            since = int(oldest) if isinstance(oldest, int) else until - DEFAULT_DAYS * DAY
            since -= since % DAY  # from the start of that UTC day
        params = {"since": since, "until": until, "repair": request.repair}
        return await self._daemon.jobs.submit("verify", params, window_from=since, window_to=until)

    # -- the job body ---------------------------------------------------------------------

    async def _run(self, job: JobContext) -> None:
        assert job.window_from is not None
        assert job.window_to is not None
        windows = day_windows(job.window_from, job.window_to)
        summary = Summary.load(job.checkpoint.get("summary") or {})
        next_start = int(job.checkpoint.get("next", job.window_from))
        if not job.checkpoint:
            summary.days_total = len(windows)
            async with job.db.transaction() as conn:
                await store.update_plan(
                    conn,
                    job.job_id,
                    checkpoint={"next": next_start, "summary": asdict(summary)},
                    pages_total=len(windows),
                )
        todo = [w for w in windows if w[0] >= next_start]
        job.log.info("verify planned", days=len(windows), days_left=len(todo))
        repair = bool(job.params.get("repair", True))
        for offset in range(0, len(todo), COUNT_BATCH):
            batch = todo[offset : offset + COUNT_BATCH]
            remote = await asyncio.gather(*(self._remote_count(job, w) for w in batch))
            for window, remote_count in zip(batch, remote, strict=True):
                await self._check_day(job, summary, window, remote_count, repair=repair)

    async def _check_day(
        self,
        job: JobContext,
        summary: Summary,
        window: tuple[int, int],
        remote_count: int,
        *,
        repair: bool,
    ) -> None:
        low, high = window
        local_count = await history.count_window(job.db, low, high)
        missing: list[Scrobble] = []
        only_here: list[dict[str, Any]] = []
        if local_count != remote_count:
            remote = await self._remote_day(job, window)
            local = await history.window_identities(job.db, low, high)
            local_ids = {x["identity"] for x in local}
            remote_ids = {s.identity for s in remote}
            seen: set[tuple[int, str, str]] = set()
            for s in remote:
                if s.identity not in local_ids and s.identity not in seen:
                    seen.add(s.identity)
                    missing.append(s)
            only_here = [
                {k: v for k, v in x.items() if k != "identity"}
                for x in local
                if x["identity"] not in remote_ids
            ]
            summary.days_different += 1
            if len(summary.different_days) < SAMPLE_SIZE:
                summary.different_days.append(time.strftime("%Y-%m-%d", time.gmtime(low)))
            job.log.info(
                "day differs",
                day=time.strftime("%Y-%m-%d", time.gmtime(low)),
                stored=local_count,
                lastfm=remote_count,
                missing=len(missing),
                only_here=len(only_here),
            )
        summary.days_checked += 1
        summary.listens_missing += len(missing)
        summary.listens_only_here += len(only_here)
        room = SAMPLE_SIZE - len(summary.only_here_sample)
        summary.only_here_sample.extend(only_here[: max(room, 0)])
        added = new_albums = 0
        async with job.db.transaction() as conn:
            if repair and missing:
                # New albums are tagged with the job and counted on it by the albums trigger.
                result = await store_page(conn, missing, source="import", job_id=job.job_id)
                added = result.imported
                new_albums = result.new_albums
            summary.listens_added += added
            await store.record_page(
                conn,
                job.job_id,
                PageProgress(
                    checkpoint={"next": high, "summary": asdict(summary)},
                    imported=added,
                    active_s=job.active_s(),
                ),
            )
            await conn.execute(
                "UPDATE jobs SET result = ? WHERE id = ?",
                (json.dumps(self.result(summary, repair=repair)), job.job_id),
            )
        if new_albums:
            enricher = getattr(self._daemon, "enricher", None)
            if enricher is not None:
                enricher.wake()
        await job.published()

    @staticmethod
    def result(summary: Summary, *, repair: bool) -> dict[str, Any]:
        return {"repair": repair, **asdict(summary)}

    # -- Last.fm --------------------------------------------------------------------------

    async def _remote_count(self, job: JobContext, window: tuple[int, int]) -> int:
        page = await self._retrying(job, window, page=1, limit=1)
        return page.total

    async def _remote_day(self, job: JobContext, window: tuple[int, int]) -> list[Scrobble]:
        per_page = self._daemon.config.lastfm.page_size
        first = await self._retrying(job, window, page=1, limit=per_page)
        scrobbles = list(first.scrobbles)
        for number in range(2, first.total_pages + 1):
            page = await self._retrying(job, window, page=number, limit=per_page)
            scrobbles.extend(page.scrobbles)
        low, high = window
        return [s for s in scrobbles if low <= s.timestamp < high]

    async def _retrying(
        self, job: JobContext, window: tuple[int, int], *, page: int, limit: int
    ) -> RecentTracksPage:
        return await job.recent_tracks(page=page, limit=limit, from_ts=window[0], to_ts=window[1])
