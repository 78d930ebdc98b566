"""History import jobs: fetch ``user.getRecentTracks`` pages concurrently, store each exactly once.

The window is frozen when the job is created (``to`` = that second + 1, or ``until``), so a
page number always names the same scrobbles while new ones arrive: pages can be fetched in
any order, by several workers, and a page's rows plus the checkpoint that says "page N is
done" commit in ONE transaction. After a crash the job refetches only the pages the
checkpoint lacks; the unique listen index makes any overlap harmless.

Never a silent gap: every page's size is known from the plan (``import_plan``); a page that
Last.fm serves short is fetched again before it is committed, one that stays short is
recorded in the checkpoint, and at the end the window's stored count is compared with what
Last.fm reports for it. Short pages are walked again; a gap that remains fails the job with
the count and where it is (resumable: ``jobs resume`` tries the short pages again).

Parameters (``import.start``): ``limit`` N takes the N most recent scrobbles in the window;
``all`` takes everything; ``since`` (inclusive) / ``until`` (exclusive, like Last.fm's
``from``/``to``) bound the window; ``incremental`` starts at the newest stored listen
(inclusive: a same-second scrobble of another track is not lost). With none of
limit/all/since/until/incremental the original's default applies: the 1000 most recent.
``skip_existing=false`` refreshes the album and loved flag of listens already stored; they
count as refreshed (``tracks_refreshed``), apart from the imported ones.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import aiosqlite

from musiqued.config import LastfmConfig
from musiqued.errors import TransientUpstreamError, UpstreamError
from musiqued.models import RecentTracksPage, Scrobble, iso_utc
from musiqued.services.import_plan import (
    PageSet,
    Plan,
    ShortPage,
    edges,
    ranges,
    short_page,
    twins_within,
)
from musiqued.services.jobs import JobContext, JobKind, JobRunner, find_error
from musiqued.services.lastfm_session import LastfmConnection
from musiqued.services.window import MAX_REWALKS, WindowPager
from musiqued.storage import jobs as store
from musiqued.storage.db import Database
from musiqued.storage.history import count_window
from musiqued.storage.jobs import PageProgress
from musiqued.storage.listens import count_stored_by_job, newest_listen, write_page

DEFAULT_LIMIT = 1000
MAX_SWEEPS = 3
"""Sweeps of the whole window when back-dated scrobbles change it during the import."""


@dataclass(frozen=True, slots=True)
class ImportRequest:
    limit: int | None = None
    all: bool = False
    skip_existing: bool = True
    since: int | None = None
    until: int | None = None
    incremental: bool = False


@dataclass(frozen=True, slots=True)
class _Ready:
    """A fetched page, validated, waiting for the writer."""

    page: int
    scrobbles: list[Scrobble]
    reasons: list[str]
    short: ShortPage | None
    broken: int = 0
    """How many of ``reasons`` are broken entries (not unstorable scrobbles): the page counts
    as short by them too, so it is fetched again and, if it stays so, ends in the gap."""


def outside_window(
    page: int, scrobbles: list[Scrobble], low: int | None, high: int | None
) -> tuple[list[Scrobble], list[str]]:
    """Split off scrobbles Last.fm served outside the window it was asked for."""
    if low is None and high is None:
        return scrobbles, []
    inside: list[Scrobble] = []
    reasons: list[str] = []
    for s in scrobbles:
        if (low is not None and s.timestamp < low) or (high is not None and s.timestamp >= high):
            reasons.append(
                f"page {page}: scrobble at {iso_utc(s.timestamp)} ({s.artist!r} – {s.title!r}) "
                "is outside the window asked for"
            )
        else:
            inside.append(s)
    return inside, reasons


@dataclass(frozen=True, slots=True)
class _Visit:
    """What committing a page adds to the job's counters besides what it newly stores.

    The first sweep's first commit of a page counts its skipped scrobbles and unusable
    entries. Fetched again in the first sweep (a short page, or one with unusable entries),
    its unusable entries replace the ones it had (the count changes by the difference).
    A later sweep sees the same entries again: not news; only what it newly stores counts.
    """

    first: bool
    new_page: bool
    errors: int = 0
    reasons: tuple[str, ...] = ()
    replaces: str | None = None

    @classmethod
    def of(cls, plan: Plan, ready: _Ready, unusable_before: int) -> _Visit:
        new_page = ready.page not in plan.done
        if plan.sweep != 1:
            return cls(first=False, new_page=new_page)
        reasons = tuple(ready.reasons)
        if new_page:
            return cls(first=True, new_page=True, errors=len(reasons), reasons=reasons)
        return cls(
            first=False,
            new_page=False,
            errors=len(reasons) - unusable_before,
            reasons=reasons,
            replaces=f"page {ready.page}: ",
        )


class Importer:
    """Starts import jobs and runs their body inside the job runner."""

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
        self._lastfm = lastfm
        self._settings = settings
        self._on_new_albums = on_new_albums
        jobs.register(
            JobKind(
                "import",
                self._run,
                label="importing",
                ready=lastfm.require,
                extra=self._live_fields,
            )
        )

    def reconfigure(self, settings: LastfmConfig) -> None:
        """New ``[lastfm]`` settings (page size, fetchers) for the pages still to fetch."""
        self._settings = settings

    # -- requests (the RPC layer calls these) ---------------------------------------------

    async def start_import(self, request: ImportRequest) -> int:
        self._lastfm.require()
        now = int(time.time())
        window_to = now + 1
        if request.until is not None:
            window_to = min(request.until, window_to)
        window_from = request.since
        if request.incremental:
            newest = await newest_listen(self._db)
            if newest is not None:
                window_from = max(window_from or 0, newest.timestamp)
        limit = request.limit
        if (
            limit is None
            and not request.all
            and not request.incremental
            and request.since is None
            and request.until is None
        ):
            limit = DEFAULT_LIMIT
        params = asdict(request) | {"limit": None if request.all else limit}
        return await self._jobs.submit(
            "import", params, window_from=window_from, window_to=window_to
        )

    async def active(self) -> list[dict[str, Any]]:
        """Jobs of every kind that still have work to do."""
        return await self._jobs.active()

    async def job(self, job_id: int) -> dict[str, Any]:
        """A job as ``jobs.get`` shows it."""
        return await self._jobs.get(job_id)

    def _live_fields(self) -> dict[str, Any]:
        governor = self._lastfm.governor
        return {
            "lastfm_rate": round(float(governor.rate), 3),
            "lastfm_nominal_rate": float(governor.nominal_rate),
            "lastfm_penalties": int(governor.penalties),
        }

    # -- the job body ---------------------------------------------------------------------

    async def _run(self, job: JobContext) -> None:
        plan = Plan.load(job.checkpoint)
        if plan is None:
            plan = await self._first_page(job)
        rewalks = 0
        while True:
            await self._sweep_pages(job, plan, plan.todo())
            probe = await self._fetch(job, 1, 1)
            if plan.limit is None and probe.total != plan.window_total and plan.sweep < MAX_SWEEPS:
                # Back-dated scrobbles (Last.fm takes them up to 14 days late) that land
                # inside the frozen window during the import shift every later page: some
                # scrobbles may have moved past a page already fetched. Walk the window
                # again; the unique index makes the second sweep store only what was missed.
                job.log.warning(
                    "the window changed during the import; sweeping it again",
                    was=plan.window_total,
                    now=probe.total,
                )
                plan = plan.again(probe.total)
                await self._save_plan(job, plan)
                continue
            missing = await self._missing(job, plan, probe.total)
            if missing and plan.short and rewalks < MAX_REWALKS:
                # Pages that stayed short or broken: Last.fm may serve them whole now.
                rewalks += 1
                job.log.warning(
                    "scrobbles missing after the sweep; fetching the short pages again",
                    missing=missing,
                    pages=sorted(plan.short),
                )
                await self._sweep_pages(job, plan, sorted(plan.short))
                continue
            if missing:
                raise await self._gap(job, plan, missing)
            if plan.gap is not None or plan.unfetched:
                plan.gap, plan.unfetched = None, PageSet()
                await self._save_plan(job, plan)
            return

    async def _sweep_pages(self, job: JobContext, plan: Plan, todo: list[int]) -> None:
        """``_pages``; when Last.fm fails for good on a page, the pages still not stored are
        recorded as the job's gap before it ends (its ``missing`` says how many and where),
        so a failed import never leaves its gap to be guessed."""
        try:
            await self._pages(job, plan, todo)
        except Exception as exc:
            if find_error(exc, UpstreamError) is None:
                raise
            # The pages committed are those the last checkpoint names: the last page's
            # transaction may have committed just as its task was cancelled.
            row = await store.get(self._db, job.job_id)
            committed = Plan.load(json.loads(row["checkpoint"])) if row is not None else None
            if committed is not None:
                plan.done, plan.short = committed.done, committed.short
                plan.unusable, plan.broken = committed.unusable, committed.broken
            plan.unfetched, lacking = plan.not_fetched()
            plan.gap = plan.missing + lacking
            await self._save_plan(job, plan)
            job.log.error(
                "import stopped with pages not fetched",
                missing=plan.gap,
                pages=ranges(plan.unfetched)[:20],
            )
            raise

    async def _missing(self, job: JobContext, plan: Plan, reported: int) -> int:
        """Scrobbles Last.fm reports for the window that are not stored: neither stored nor
        counted as unusable (``tracks_errors``, each with its reason) nor twins of a stored
        one, plus the broken entries among those counted (Last.fm may serve them whole
        later); 0: none. Only unstorable scrobbles (Last.fm's own data: blank names,
        timestamps out of range) are not missing."""
        if plan.limit is not None:
            # The N newest only: what the short pages lacked is what is missing.
            return plan.missing
        stored = await count_window(self._db, job.window_from, job.window_to)
        row = await store.get(self._db, job.job_id)
        unusable = int(row["tracks_errors"]) if row is not None else 0
        twins = sum(plan.twins.values())
        return max(reported - stored - unusable - twins, 0) + sum(plan.broken.values())

    async def _gap(self, job: JobContext, plan: Plan, missing: int) -> TransientUpstreamError:
        """The error a job ends with when Last.fm kept serving pages short or broken (the gap is
        recorded in the checkpoint first: the job's ``missing`` field shows it)."""
        plan.gap = missing
        await self._save_plan(job, plan)
        where = [
            f"page {s.page}"
            + (
                f" ({iso_utc(s.oldest)} – {iso_utc(s.newest)})"
                if s.newest is not None and s.oldest is not None
                else ""
            )
            for s in sorted(plan.short.values(), key=lambda s: s.page)[:10]
        ]
        place = "; ".join(where) if where else "pages unknown: the window's count differs"
        job.log.error(
            "import ended with a gap", missing=missing, short_pages=sorted(plan.short)[:50]
        )
        return TransientUpstreamError(
            f"{missing} scrobble(s) Last.fm reports for the window could not be fetched "
            f"({place}); Last.fm kept serving them short or broken. "
            f"`musiquectl jobs resume {job.job_id}` tries them again",
            kind="gap",
        )

    async def _save_plan(self, job: JobContext, plan: Plan) -> None:
        async with self._db.transaction() as conn:
            await store.write_plan(
                conn,
                job.job_id,
                checkpoint=plan.dump(plan.done),
                pages_total=plan.base_pages + plan.pages_total,
            )

    async def _pages(self, job: JobContext, plan: Plan, todo: list[int]) -> None:
        """Fetch and store the pages ``todo``.

        ``max_in_flight`` fetchers keep requests going while one writer stores the pages as
        they arrive, each in a transaction of its own with the job's checkpoint. The
        hand-over queue holds at most one page per fetcher, which bounds memory.
        """
        if not todo:
            return
        pages: asyncio.Queue[int] = asyncio.Queue()
        for page in todo:
            pages.put_nowait(page)
        workers = max(1, min(self._settings.max_in_flight, len(todo)))
        fetched: asyncio.Queue[_Ready | None] = asyncio.Queue(workers)

        async def fetch_all() -> None:
            async with asyncio.TaskGroup() as fetchers:
                for _ in range(workers):
                    fetchers.create_task(self._fetcher(job, plan, pages, fetched))
            await fetched.put(None)

        async def write_all() -> None:
            while (ready := await fetched.get()) is not None:
                await self._write(job, plan, ready)

        async with asyncio.TaskGroup() as group:
            group.create_task(fetch_all())
            group.create_task(write_all())

    async def _fetcher(
        self,
        job: JobContext,
        plan: Plan,
        pages: asyncio.Queue[int],
        fetched: asyncio.Queue[_Ready | None],
    ) -> None:
        while not pages.empty():
            page = pages.get_nowait()
            answer = await self._fetch(job, page, plan.per_page, expect=plan.expected_size(page))
            await fetched.put(self._prepare(job, plan, page, answer))

    async def _first_page(self, job: JobContext) -> Plan:
        """Page 1 tells the window's size: plan the job and store the page in one go."""
        lastfm = self._lastfm.require()
        limit = job.params.get("limit")
        page_size = self._settings.page_size
        if limit is not None:
            page_size = min(page_size, max(int(limit), 1))
        first, playcount = await asyncio.gather(self._fetch(job, 1, page_size), lastfm.playcount())
        # Number the pages at the size Last.fm actually served: above 200 it may refuse the
        # limit (the client falls back to 200) or clamp it, and pages counted at the size
        # asked for would skip listens. ``client.page_size`` is what the client settled on.
        per_page = max(min(first.per_page or lastfm.page_size, page_size, lastfm.page_size), 1)
        window_total = max(first.total, len(first.scrobbles))
        plan = Plan.first(
            per_page=per_page,
            window_total=window_total,
            limit=None if limit is None else int(limit),
        )
        if len(first.scrobbles) < plan.expected_size(1):
            first = await self._fetch(job, 1, per_page, expect=plan.expected_size(1))
        job.log.info(
            "import planned",
            window_from=job.window_from,
            window_to=job.window_to,
            scrobbles=plan.expected,
            pages=plan.pages_total,
            per_page=per_page,
            playcount=playcount,
        )
        async with self._db.transaction() as conn:
            await store.write_plan(
                conn,
                job.job_id,
                checkpoint=plan.dump(()),
                pages_total=plan.pages_total,
                total_scrobbles=playcount,
            )
        if plan.pages_total:
            await self._write(job, plan, self._prepare(job, plan, 1, first))
        else:
            await job.published()
        return plan

    async def _fetch(
        self, job: JobContext, page: int, per_page: int, *, expect: int = 0
    ) -> RecentTracksPage:
        return await self._pager.page(
            job,
            page=page,
            limit=per_page,
            from_ts=job.window_from,
            to_ts=job.window_to,
            expect=expect,
        )

    def _prepare(self, job: JobContext, plan: Plan, page: int, fetched: RecentTracksPage) -> _Ready:
        inside, reasons = outside_window(page, fetched.scrobbles, job.window_from, job.window_to)
        reasons = [f"page {page}: {reason}" for reason in fetched.rejected] + reasons
        # Unstorable scrobbles (blank names, timestamps out of range) are Last.fm's own data;
        # anything else refused (no date, wrong types, outside the window) is a broken
        # answer: the page is short by those entries too.
        gap = short_page(page, plan.expected_size(page), inside, fetched.unstorable)
        if gap is not None and plan.limit is not None:
            # Only the part of the page inside the N newest counts (the unstorable entries
            # may lie either side of the cut: no more than the page as a whole lacks).
            lacking = min(gap.missing, plan.kept_size(page) - len(plan.keep(page, inside)))
            gap = ShortPage(gap.page, lacking, gap.newest, gap.oldest) if lacking > 0 else None
        kept = plan.keep(page, inside)
        return _Ready(page, kept, reasons, gap, len(reasons) - fetched.unstorable)

    async def _write(self, job: JobContext, plan: Plan, ready: _Ready) -> None:
        """Store a page with the job's checkpoint and counters in one transaction, and say so.

        ``plan`` records the page as done first: the checkpoint written is the plan as it
        stands once the page commits. If the transaction fails, the job ends and resumes
        from the checkpoint last committed.
        """
        visit = _Visit.of(plan, ready, plan.unusable.get(ready.page, 0))
        self._record(job, plan, ready)
        refresh = not job.params.get("skip_existing", True)
        async with self._db.transaction() as conn:
            if visit.new_page:
                await self._count_twins(conn, job, plan, ready)
            stored = await write_page(
                conn, ready.scrobbles, source="import", job_id=job.job_id, refresh=refresh
            )
            # What the page newly stored counts as imported; on its first visit, the rest
            # (stored before) as skipped, or as refreshed.
            row = await store.write_page_progress(
                conn,
                job.job_id,
                PageProgress(
                    checkpoint=plan.dump(plan.done),
                    imported=stored.imported,
                    skipped=stored.skipped if visit.first else 0,
                    refreshed=stored.refreshed if visit.first else 0,
                    errors=visit.errors,
                    reasons=visit.reasons,
                    replaces=visit.replaces,
                    active_s=job.active_s(),
                    pages=1 if visit.new_page else 0,
                ),
            )
        if stored.new_albums:
            self._on_new_albums()
        await job.published(row)

    @staticmethod
    async def _count_twins(
        conn: aiosqlite.Connection, job: JobContext, plan: Plan, ready: _Ready
    ) -> None:
        """Note in ``plan`` the page's twins: scrobbles whose identity another one on this
        page, or (first sweep) on a page this job stored, holds too. Counted once, when the
        page is first stored: later it would find its own rows."""
        twins = twins_within(ready.scrobbles)
        if plan.sweep == 1:
            twins += await count_stored_by_job(conn, edges(ready.scrobbles), job.job_id)
        if twins:
            plan.twins[ready.page] = twins
            job.log.info("same-second twins on a page; stored once", page=ready.page, twins=twins)
        else:
            plan.twins.pop(ready.page, None)

    @staticmethod
    def _record(job: JobContext, plan: Plan, ready: _Ready) -> None:
        """Note in ``plan`` what storing ``ready`` settles: done, short, unusable entries."""
        plan.done.add(ready.page)
        if ready.short is None:
            plan.short.pop(ready.page, None)
        else:
            plan.short[ready.page] = ready.short
            job.log.warning(
                "page stayed short; recorded", page=ready.page, missing=ready.short.missing
            )
        if ready.reasons:
            plan.unusable[ready.page] = len(ready.reasons)
            job.log.warning(
                "unusable entries in a page; counted as errors",
                page=ready.page,
                count=len(ready.reasons),
                reasons=ready.reasons[:3],
            )
        else:
            plan.unusable.pop(ready.page, None)
        if ready.broken:
            plan.broken[ready.page] = ready.broken
        else:
            plan.broken.pop(ready.page, None)
