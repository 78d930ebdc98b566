"""History import jobs: fetch ``user.getRecentTracks`` pages concurrently, store each exactly once.

The window is frozen when the job is created (``to`` = that second + 1, or ``until``), so a
page number always names the same scrobbles while new ones arrive: pages can be fetched in
any order, by several workers, and a page's rows plus the checkpoint that says "page N is
done" commit in ONE transaction. After a crash the job refetches only the pages the
checkpoint lacks; the unique listen index makes any overlap harmless.

Parameters (``import.start``): ``limit`` N takes the N most recent scrobbles in the window;
``all`` takes everything; ``since`` (inclusive) / ``until`` (exclusive, like Last.fm's
``from``/``to``) bound the window; ``incremental`` starts at the newest stored listen
(inclusive: a same-second scrobble of another track is not lost). With none of
limit/all/since/until/incremental the original's default applies: the 1000 most recent.
``skip_existing=false`` refreshes the album and loved flag of listens already stored; they
count as imported, as in the original.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from musiqued.models import RecentTracksPage, Scrobble, iso_utc
from musiqued.services.jobs import JobContext, JobKind
from musiqued.storage import jobs as store
from musiqued.storage.jobs import PageProgress
from musiqued.storage.listens import PreparedPage, StoreResult, newest_listen, prepare_page

if TYPE_CHECKING:
    from musiqued.app.daemon import Daemon

DEFAULT_LIMIT = 1000
MAX_SWEEPS = 3


@dataclass(frozen=True, slots=True)
class ImportRequest:
    limit: int | None = None
    all: bool = False
    skip_existing: bool = True
    since: int | None = None
    until: int | None = None
    incremental: bool = False


@dataclass(slots=True)
class _Plan:
    """The job's checkpoint: what the window holds, and which pages are committed."""

    per_page: int
    pages_total: int
    expected: int
    limit: int | None
    done: set[int]
    sweep: int = 1
    """1 for the import itself; 2+ when back-dated scrobbles shifted the pages (see _run)."""
    base_pages: int = 0
    """Pages counted by earlier sweeps (``pages_total`` adds them up)."""

    @classmethod
    def load(cls, checkpoint: dict[str, Any]) -> _Plan | None:
        if "pages_total" not in checkpoint:
            return None
        done: set[int] = set()
        for first, last in checkpoint.get("done", []):
            done.update(range(first, last + 1))
        return cls(
            per_page=int(checkpoint["per_page"]),
            pages_total=int(checkpoint["pages_total"]),
            expected=int(checkpoint["expected"]),
            limit=checkpoint.get("limit"),
            done=done,
            sweep=int(checkpoint.get("sweep", 1)),
            base_pages=int(checkpoint.get("base_pages", 0)),
        )

    def dump(self, done: Iterable[int]) -> dict[str, Any]:
        return {
            "per_page": self.per_page,
            "pages_total": self.pages_total,
            "expected": self.expected,
            "limit": self.limit,
            "done": _ranges(done),
            "sweep": self.sweep,
            "base_pages": self.base_pages,
        }

    def keep(self, page: int, scrobbles: list[Scrobble]) -> list[Scrobble]:
        """The part of page ``page`` inside the N most recent (all of it without a limit)."""
        if self.limit is None:
            return scrobbles
        room = self.limit - (page - 1) * self.per_page
        return scrobbles[: max(room, 0)]


def _ranges(pages: Iterable[int]) -> list[list[int]]:
    """``{1,2,3,7,8}`` → ``[[1,3],[7,8]]``: a checkpoint stays small for a million listens."""
    ranges: list[list[int]] = []
    for page in sorted(pages):
        if ranges and ranges[-1][1] == page - 1:
            ranges[-1][1] = page
        else:
            ranges.append([page, page])
    return ranges


@dataclass(frozen=True, slots=True)
class _Ready:
    """A fetched page, validated and turned into its statements, waiting for the writer."""

    page: int
    prepared: PreparedPage
    reasons: list[str]


def _split_valid(page: int, scrobbles: list[Scrobble]) -> tuple[list[Scrobble], list[str]]:
    valid: list[Scrobble] = []
    reasons: list[str] = []
    for s in scrobbles:
        missing = [name for name in ("artist", "title") if not getattr(s, name).strip()]
        if missing or s.timestamp <= 0:
            what = " and ".join(missing) or "timestamp"
            reasons.append(
                f"page {page}: scrobble at {iso_utc(max(s.timestamp, 0))} "
                f"({s.artist!r} – {s.title!r}) has no {what}"
            )
        else:
            valid.append(s)
    return valid, reasons


def _page_transaction(
    job_id: int,
    ready: _Ready,
    checkpoint: dict[str, Any],
    *,
    first_sweep: bool,
    active_s: float,
) -> Callable[[sqlite3.Connection], tuple[StoreResult, dict[str, Any]]]:
    """One page and its checkpoint, to run on the writer's thread (values only, no live state)."""

    def transaction(conn: sqlite3.Connection) -> tuple[StoreResult, dict[str, Any]]:
        result = ready.prepared.write(conn)
        row = store.write_page_progress(
            conn,
            job_id,
            PageProgress(
                checkpoint=checkpoint,
                # A later sweep sees the scrobbles of the first again: not news.
                imported=result.imported + (result.refreshed if first_sweep else 0),
                skipped=result.skipped if first_sweep else 0,
                errors=len(ready.reasons) if first_sweep else 0,
                reasons=ready.reasons if first_sweep else (),
                active_s=active_s,
            ),
        )
        return result, row

    return transaction


class Importer:
    """``daemon.importer``: starts import jobs and runs their body inside the job runner."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon
        daemon.jobs.register(
            JobKind(
                "import",
                self._run,
                label="importing",
                ready=daemon.require_lastfm,
                extra=self._live_fields,
            )
        )

    # -- requests (the RPC layer calls these) ---------------------------------------------

    async def start_import(self, request: ImportRequest) -> int:
        self._daemon.require_lastfm()
        now = int(time.time())
        window_to = now + 1
        if request.until is not None:
            window_to = min(request.until, window_to)
        window_from = request.since
        if request.incremental:
            newest = await newest_listen(self._daemon.db)
            if newest is not None:
                window_from = max(window_from or 0, int(newest["timestamp"]))
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
        return await self._daemon.jobs.submit(
            "import", params, window_from=window_from, window_to=window_to
        )

    async def get(self, job_id: int) -> dict[str, Any]:
        return await self._daemon.jobs.get(job_id)

    async def active(self) -> list[dict[str, Any]]:
        return await self._daemon.jobs.active()

    async def cancel(self, job_id: int) -> dict[str, Any]:
        return await self._daemon.jobs.cancel(job_id)

    async def pause(self, job_id: int) -> dict[str, Any]:
        return await self._daemon.jobs.pause(job_id)

    async def resume(self, job_id: int) -> dict[str, Any]:
        return await self._daemon.jobs.resume(job_id)

    def _live_fields(self) -> dict[str, Any]:
        governor = getattr(self._daemon, "governor", None)
        if governor is None:
            return {}
        return {
            "lastfm_rate": round(float(governor.rate), 3),
            "lastfm_nominal_rate": float(governor.nominal_rate),
            "lastfm_penalties": int(getattr(governor, "penalties", 0)),
        }

    # -- the job body ---------------------------------------------------------------------

    async def _run(self, job: JobContext) -> None:
        plan = _Plan.load(job.checkpoint)
        if plan is None:
            plan = await self._first_page(job)
        while True:
            await self._pages(job, plan)
            if plan.limit is not None or plan.sweep >= MAX_SWEEPS:
                return
            # Back-dated scrobbles (Last.fm takes them up to 14 days late) that land inside
            # the frozen window during the import shift every later page: some scrobbles may
            # have moved past a page already fetched. If the window's size changed, walk it
            # again; the unique index makes the second sweep store only what was missed.
            probe = await self._fetch(job, 1, 1)
            if probe.total == plan.expected:
                return
            job.log.warning(
                "the window changed during the import; sweeping it again",
                was=plan.expected,
                now=probe.total,
            )
            plan = _Plan(
                per_page=plan.per_page,
                pages_total=math.ceil(probe.total / plan.per_page),
                expected=probe.total,
                limit=None,
                done=set(),
                sweep=plan.sweep + 1,
                base_pages=plan.base_pages + plan.pages_total,
            )
            async with job.db.transaction() as conn:
                await store.update_plan(
                    conn,
                    job.job_id,
                    checkpoint=plan.dump(()),
                    pages_total=plan.base_pages + plan.pages_total,
                )

    async def _pages(self, job: JobContext, plan: _Plan) -> None:
        """Fetch and store every page of the plan not yet committed.

        ``max_in_flight`` fetchers keep requests going while ONE writer commits the pages
        as they arrive: a fetcher never waits for its page's transaction (writes are
        serialised anyway), so Last.fm and SQLite both stay busy. The hand-over queue holds
        at most one page per fetcher, which bounds memory.
        """
        todo = [p for p in range(1, plan.pages_total + 1) if p not in plan.done]
        if not todo:
            return
        pages: asyncio.Queue[int] = asyncio.Queue()
        for page in todo:
            pages.put_nowait(page)
        workers = max(1, min(self._daemon.config.lastfm.max_in_flight, len(todo)))
        fetched: asyncio.Queue[_Ready | None] = asyncio.Queue(workers)

        async def fetch_all() -> None:
            async with asyncio.TaskGroup() as fetchers:
                for _ in range(workers):
                    fetchers.create_task(self._fetcher(job, plan, pages, fetched))
            await fetched.put(None)

        async with asyncio.TaskGroup() as group:
            group.create_task(fetch_all())
            group.create_task(self._writer(job, plan, fetched))

    async def _fetcher(
        self,
        job: JobContext,
        plan: _Plan,
        pages: asyncio.Queue[int],
        fetched: asyncio.Queue[_Ready | None],
    ) -> None:
        while not pages.empty():
            page = pages.get_nowait()
            # Prepared here, while the writer commits earlier pages: the writer's own turn
            # per page is then only the checkpoint and the transaction.
            ready = self._prepare(job, plan, page, await self._fetch(job, page, plan.per_page))
            await fetched.put(ready)

    async def _writer(
        self,
        job: JobContext,
        plan: _Plan,
        fetched: asyncio.Queue[_Ready | None],
    ) -> None:
        # The pages waiting when the writer comes round go to the writer's thread together:
        # still one transaction each, but run back to back, not each after a round trip
        # through the event loop (which is busy parsing the next pages meanwhile).
        ended = False
        while not ended and (ready := await fetched.get()) is not None:
            batch = [ready]
            while not fetched.empty():
                more = fetched.get_nowait()
                if more is None:
                    ended = True
                    break
                batch.append(more)
            await self._write(job, plan, batch)

    async def _first_page(self, job: JobContext) -> _Plan:
        """Page 1 tells the window's size: plan the job and store the page in one go."""
        lastfm = self._daemon.require_lastfm()
        limit = job.params.get("limit")
        page_size = self._daemon.config.lastfm.page_size
        if limit is not None:
            page_size = min(page_size, max(int(limit), 1))
        first, playcount = await asyncio.gather(self._fetch(job, 1, page_size), lastfm.playcount())
        # Number the pages at the size Last.fm actually served: above 200 it may refuse the
        # limit (the client falls back to 200) or clamp it, and pages counted at the size
        # asked for would skip listens. ``client.page_size`` is what the client settled on.
        per_page = max(min(first.per_page or lastfm.page_size, page_size, lastfm.page_size), 1)
        window_total = max(first.total, len(first.scrobbles))
        expected = window_total if limit is None else min(int(limit), window_total)
        pages_total = math.ceil(expected / per_page) if expected else 0
        plan = _Plan(per_page, pages_total, expected, limit, set())
        job.log.info(
            "import planned",
            window_from=job.window_from,
            window_to=job.window_to,
            scrobbles=expected,
            pages=pages_total,
            per_page=per_page,
            playcount=playcount,
        )
        async with job.db.transaction() as conn:
            await store.update_plan(
                conn,
                job.job_id,
                checkpoint=plan.dump(()),
                pages_total=pages_total,
                total_scrobbles=playcount,
            )
        if pages_total:
            await self._write(job, plan, [self._prepare(job, plan, 1, first)])
        else:
            await job.published()
        return plan

    async def _fetch(self, job: JobContext, page: int, per_page: int) -> RecentTracksPage:
        return await job.recent_tracks(
            page=page, limit=per_page, from_ts=job.window_from, to_ts=job.window_to
        )

    def _prepare(
        self, job: JobContext, plan: _Plan, page: int, fetched: RecentTracksPage
    ) -> _Ready:
        scrobbles, reasons = _split_valid(page, plan.keep(page, fetched.scrobbles))
        prepared = prepare_page(
            scrobbles,
            source="import",
            job_id=job.job_id,
            skip_existing=bool(job.params.get("skip_existing", True)),
        )
        return _Ready(page, prepared, reasons)

    async def _write(self, job: JobContext, plan: _Plan, batch: list[_Ready]) -> None:
        """Store each page of ``batch`` with its checkpoint in its own transaction.

        The rows, their JSON parameters and the checkpoints are prepared here; the
        transactions (BEGIN, one statement per table, the job's counters returning the row
        the progress event shows, COMMIT) then run in ONE hop on the writer's thread, in
        order, stopping at the first that fails: so page N's checkpoint may name the pages
        of the batch before it. New albums are tagged and counted by the ``albums_enqueue``
        trigger as they are made.
        """
        first_sweep = plan.sweep == 1
        active_s = job.active_s()
        done = set(plan.done)
        units = []
        for ready in batch:
            done.add(ready.page)
            units.append(
                _page_transaction(
                    job.job_id,
                    ready,
                    plan.dump(done),
                    first_sweep=first_sweep,
                    active_s=active_s,
                )
            )
        results = await job.db.run_transactions(units)
        plan.done.update(ready.page for ready in batch)
        if any(result.new_albums for result, _ in results):
            enricher = getattr(self._daemon, "enricher", None)
            if enricher is not None:
                enricher.wake()
        for _, row in results:
            await job.published(row)

    # Last in the class: below it, ``list`` would name this method in annotations.
    async def list(self, limit: int) -> list[dict[str, Any]]:
        return await self._daemon.jobs.recent(limit)
