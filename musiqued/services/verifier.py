"""Verify jobs: compare each UTC day's stored listens with Last.fm's count, repair what differs.

For every day of the window, one ``user.getRecentTracks`` request with ``limit=1`` gives
Last.fm's ``total`` for that day. A day whose count differs from ours is fetched in full
and compared by identity (timestamp, artist, title): what Last.fm has and we lack is added
(unless ``repair`` is off), and what we hold that Last.fm no longer has
(deleted or edited there) is reported in the job's ``result``, never deleted.

Days are committed in order, each with the job's checkpoint (the next day to check) and
the running summary in the same transaction, so a resumed job continues where it stopped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from musiqued.config import LastfmConfig
from musiqued.models import Listen, Scrobble
from musiqued.services.jobs import JobContext, JobKind, JobRunner
from musiqued.services.lastfm_session import LastfmConnection
from musiqued.services.window import WindowPager
from musiqued.storage import history
from musiqued.storage import jobs as store
from musiqued.storage.db import Database
from musiqued.storage.jobs import PageProgress
from musiqued.storage.listens import write_page

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


@dataclass(frozen=True, slots=True)
class DayDiff:
    """How one day differs: what Last.fm has that we lack, what we hold that it lacks."""

    missing: list[Scrobble]
    only_here: list[dict[str, Any]]


def diff_day(remote: list[Scrobble], local: list[tuple[Listen, tuple[int, str, str]]]) -> DayDiff:
    """Compare a day's scrobbles with its stored listens by identity (pure).

    ``local``: each listen with its identity (``history.window_identities``); what is only
    here is returned as the listen's fields.
    """
    local_ids = {identity for _, identity in local}
    remote_ids = {s.identity for s in remote}
    seen: set[tuple[int, str, str]] = set()
    missing: list[Scrobble] = []
    for s in remote:
        if s.identity not in local_ids and s.identity not in seen:
            seen.add(s.identity)
            missing.append(s)
    only_here = [asdict(listen) for listen, identity in local if identity not in remote_ids]
    return DayDiff(missing, only_here)


def day_name(moment: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(moment))


class Verifier:
    """Starts verify jobs and runs their body inside the job runner."""

    def __init__(
        self,
        jobs: JobRunner,
        db: Database,
        pager: WindowPager,
        lastfm: LastfmConnection,
        settings: LastfmConfig,
        *,
        on_new_albums: Callable[[], None],
    ) -> None:
        self._jobs = jobs
        self._db = db
        self._pager = pager
        self._settings = settings
        self._on_new_albums = on_new_albums
        jobs.register(JobKind("verify", self._run, label="verifying", ready=lastfm.require))

    def reconfigure(self, settings: LastfmConfig) -> None:
        self._settings = settings

    async def start_verify(self, request: VerifyRequest) -> int:
        now = int(time.time())
        until = now + 1 if request.until is None else min(request.until, now + 1)
        since = request.since
        if since is None:
            oldest = await history.oldest_timestamp(self._db)
            since = oldest if oldest is not None else until - DEFAULT_DAYS * DAY
            since -= since % DAY  # from the start of that UTC day
        params = {"since": since, "until": until, "repair": request.repair}
        return await self._jobs.submit("verify", params, window_from=since, window_to=until)

    # -- the job body ---------------------------------------------------------------------

    async def _run(self, job: JobContext) -> None:
        assert job.window_from is not None
        assert job.window_to is not None
        windows = day_windows(job.window_from, job.window_to)
        summary = Summary.load(job.checkpoint.get("summary") or {})
        next_start = int(job.checkpoint.get("next", job.window_from))
        if not job.checkpoint:
            summary.days_total = len(windows)
            checkpoint = {"next": next_start, "summary": asdict(summary)}
            async with self._db.transaction() as conn:
                await store.write_plan(
                    conn, job.job_id, checkpoint=checkpoint, pages_total=len(windows)
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
        local_count = await history.count_window(self._db, low, high)
        diff = DayDiff([], [])
        if local_count != remote_count:
            diff = diff_day(
                await self._remote_day(job, window),
                await history.window_identities(self._db, low, high),
            )
            summary.days_different += 1
            if len(summary.different_days) < SAMPLE_SIZE:
                summary.different_days.append(day_name(low))
            job.log.info(
                "day differs",
                day=day_name(low),
                stored=local_count,
                lastfm=remote_count,
                missing=len(diff.missing),
                only_here=len(diff.only_here),
            )
        summary.days_checked += 1
        summary.listens_missing += len(diff.missing)
        summary.listens_only_here += len(diff.only_here)
        room = SAMPLE_SIZE - len(summary.only_here_sample)
        summary.only_here_sample.extend(diff.only_here[: max(room, 0)])
        active_s = job.active_s()
        async with self._db.transaction() as conn:
            result = None
            if repair and diff.missing:
                result = await write_page(conn, diff.missing, source="import", job_id=job.job_id)
            summary.listens_added += result.imported if result is not None else 0
            # The result first: the row the progress returns (the job event) then carries it.
            await store.write_result(conn, job.job_id, self.result(summary, repair=repair))
            row = await store.write_page_progress(
                conn,
                job.job_id,
                PageProgress(
                    checkpoint={"next": high, "summary": asdict(summary)},
                    imported=result.imported if result is not None else 0,
                    active_s=active_s,
                ),
            )
        if result is not None and result.new_albums:
            self._on_new_albums()
        await job.published(row)

    @staticmethod
    def result(summary: Summary, *, repair: bool) -> dict[str, Any]:
        return {"repair": repair, **asdict(summary)}

    # -- Last.fm --------------------------------------------------------------------------

    async def _remote_count(self, job: JobContext, window: tuple[int, int]) -> int:
        page = await self._pager.page(job, page=1, limit=1, from_ts=window[0], to_ts=window[1])
        return page.total

    async def _remote_day(self, job: JobContext, window: tuple[int, int]) -> list[Scrobble]:
        per_page = self._settings.page_size
        low, high = window
        first = await self._pager.page(job, page=1, limit=per_page, from_ts=low, to_ts=high)
        expected = first.total
        scrobbles = list(first.scrobbles)
        if len(scrobbles) < min(per_page, expected):
            first = await self._pager.page(
                job, page=1, limit=per_page, from_ts=low, to_ts=high, expect=min(per_page, expected)
            )
            scrobbles = list(first.scrobbles)
        for number in range(2, first.total_pages + 1):
            size = max(0, min(per_page, expected - (number - 1) * per_page))
            page = await self._pager.page(
                job, page=number, limit=per_page, from_ts=low, to_ts=high, expect=size
            )
            scrobbles.extend(page.scrobbles)
        return [s for s in scrobbles if low <= s.timestamp < high]
