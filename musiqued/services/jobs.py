"""The generic job runner: one owned asyncio task per running job, a persistent state machine.

States (``jobs.state``)::

    queued ──► running ──► done
                 │  ▲ ├──► failed      (an error; ``resume`` retries from the checkpoint)
                 │  │ └──► cancelled   (final)
                 ▼  │
               paused                  (``pause``; ``resume`` continues from the checkpoint)
    running ──► interrupted            (the daemon stopped while the job ran)

Restart policy: when the daemon starts, every job left ``running`` (the daemon crashed or
was killed), ``queued`` or ``interrupted`` (clean stop) is resumed by itself from its
checkpoint. A ``paused`` job stays paused: a person asked for that, a restart does not undo
it. A job that cannot resume (e.g. the Last.fm credentials were removed) stays
``interrupted`` with the reason in ``error`` until ``resume`` is called.

Pause and cancel cancel the job's task: because a job commits its checkpoint in the same
transaction as the rows it covers, a cancelled page is simply rolled back and fetched again
on resume. So a job body needs no pause logic of its own.

Plugging a new kind in (how ``verify`` joins)::

    async def run_verify(job: JobContext) -> None:
        # job.params: the dict given to submit(); job.window_from / job.window_to: frozen
        # at creation; job.checkpoint: what the last committed unit of work stored.
        # Do the work in units; commit each unit with its progress in ONE transaction, a
        # plain function run on the database's writer thread:
        def unit(conn: sqlite3.Connection) -> dict[str, Any]:
            ...  # write the unit's rows
            return storage.jobs.write_page_progress(conn, job.job_id, PageProgress(
                checkpoint={...}, imported=..., skipped=..., active_s=job.active_s()))
        row = await db.write(unit)
        await job.published(row)  # progress event + STATUS= refresh
        # return → done; raise a MusiqueError → failed with its message.

    runner.register(JobKind("verify", run_verify, label="verifying", ready=lastfm.require))
    job_id = await runner.submit("verify", params, window_from=..., window_to=...)

Register kinds before the runner starts (in the owning service's constructor), so jobs left
over from a previous run find their kind. ``exclusive`` kinds (import, verify) never run
two at a time: ``submit`` raises ConflictError (-32003) while one is active.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from musiqued.errors import ConflictError, MusiqueError, NotFoundError
from musiqued.services.events import EventBus
from musiqued.storage import jobs as store
from musiqued.storage.db import Database
from musiqued.storage.jobs import ACTIVE_STATES, JobState

log = structlog.get_logger("musiqued.jobs")

RESUMABLE_AT_START: tuple[JobState, ...] = ("running", "queued", "interrupted")
RESUMABLE: tuple[JobState, ...] = ("paused", "failed", "interrupted")


@dataclass(frozen=True, slots=True)
class JobKind:
    """A kind of job: its body, the verb for STATUS=, and what it needs to run."""

    name: str
    run: Callable[[JobContext], Awaitable[None]]
    label: str
    ready: Callable[[], object] | None = None
    """Raises (e.g. NotConfiguredError) when the job cannot run now."""
    extra: Callable[[], dict[str, Any]] | None = None
    """Live fields added to a running job of this kind (e.g. the Last.fm request rate)."""
    exclusive: bool = True


class JobContext:
    """What a job body sees: its parameters, frozen window, checkpoint, and progress hooks."""

    def __init__(self, runner: JobRunner, row: sqlite3.Row) -> None:
        self._runner = runner
        self.job_id: int = row["id"]
        self.kind: str = row["kind"]
        self.params: dict[str, Any] = json.loads(row["params"] or "{}")
        self.window_from: int | None = row["window_from"]
        self.window_to: int | None = row["window_to"]
        self.checkpoint: dict[str, Any] = json.loads(row["checkpoint"] or "{}")
        self._active_before = float(row["active_s"] or 0.0)
        self._run_started = time.monotonic()
        self.log = log.bind(job_id=self.job_id, job_kind=self.kind)

    def active_s(self) -> float:
        """Seconds this job has spent running, over every run (for ``rate_per_s``)."""
        return self._active_before + (time.monotonic() - self._run_started)

    async def published(self, row: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Announce the job's committed progress: a ``job`` event and the STATUS= line.

        ``row``: the job's row as the unit of work committed it (``record_page`` returns
        it), which spares reading it back.
        """
        return await self._runner.publish(self.job_id, "progress", row=row)


class JobRunner:
    """Runs the jobs of every registered kind; persists their states in ``db``."""

    def __init__(self, db: Database, events: EventBus) -> None:
        self._db = db
        self._events = events
        self._kinds: dict[str, JobKind] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._latest: dict[int, dict[str, Any]] = {}
        self._lock = asyncio.Lock()
        self._started = False

    def register(self, kind: JobKind) -> None:
        if kind.name in self._kinds:
            raise RuntimeError(f"job kind {kind.name} is registered twice")
        self._kinds[kind.name] = kind

    # -- lifecycle -----------------------------------------------------------------------

    async def open(self) -> None:
        """Resume the jobs a previous run left running, queued or interrupted."""
        self._started = True
        for row in await store.with_states(self._db, RESUMABLE_AT_START):
            log.info("resuming job", job_id=row["id"], job_kind=row["kind"], state=row["state"])
            await self._launch(row["id"], row["kind"], at_start=True)

    async def close(self) -> None:
        """Interrupt running jobs: their checkpoints are committed, they resume at next start."""
        self._started = False
        for job_id in list(self._tasks):
            await self._halt(job_id, "interrupted", error=None)

    # -- requests ------------------------------------------------------------------------

    async def submit(
        self,
        kind: str,
        params: dict[str, Any],
        *,
        window_from: int | None = None,
        window_to: int | None = None,
    ) -> int:
        job_kind = self._kinds[kind]
        if job_kind.ready is not None:
            job_kind.ready()
        async with self._lock:
            if job_kind.exclusive:
                await self._check_no_conflict(kind)
            job_id = await store.create(
                self._db, kind, params, window_from=window_from, window_to=window_to
            )
            log.info("job created", job_id=job_id, job_kind=kind, params=params)
            await self.publish(job_id, "created")
            await self._launch(job_id, kind, at_start=False)
        return job_id

    async def get(self, job_id: int) -> dict[str, Any]:
        row = await store.get(self._db, job_id)
        if row is None:
            raise NotFoundError(f"no job {job_id}")
        return await self._render(row)

    async def recent(self, limit: int) -> list[dict[str, Any]]:
        """Jobs of every kind, newest first."""
        rows = await store.list_jobs(self._db, limit)
        enriched = await store.albums_enriched(self._db, [r["id"] for r in rows])
        return [self._dict(row, enriched.get(row["id"], 0)) for row in rows]

    async def active(self) -> list[dict[str, Any]]:
        rows = await store.active(self._db)
        enriched = await store.albums_enriched(self._db, [r["id"] for r in rows])
        return [self._dict(row, enriched.get(row["id"], 0)) for row in rows]

    async def pause(self, job_id: int) -> dict[str, Any]:
        """Pause a queued or running job; a paused one is left as it is (idempotent)."""
        return await self._request_halt(job_id, "paused", allowed=("queued", "running"))

    async def cancel(self, job_id: int) -> dict[str, Any]:
        """Cancel a job that has work left; a cancelled one is left as it is (idempotent)."""
        return await self._request_halt(
            job_id, "cancelled", allowed=("queued", "running", "paused", "interrupted", "failed")
        )

    async def resume(self, job_id: int) -> dict[str, Any]:
        async with self._lock:
            row = await self._row(job_id)
            if row["state"] in ("running", "queued") and job_id in self._tasks:
                return await self._render(row)
            if row["state"] not in RESUMABLE:
                raise ConflictError(
                    f"job {job_id} is {row['state']}; only a paused, failed or interrupted "
                    "job can be resumed"
                )
            job_kind = self._kind_of(row)
            if job_kind.ready is not None:
                job_kind.ready()
            if job_kind.exclusive:
                await self._check_no_conflict(row["kind"], besides=job_id)
            await store.set_state(self._db, job_id, "queued")
            await self._launch(job_id, row["kind"], at_start=False)
        return await self.get(job_id)

    # -- internals -----------------------------------------------------------------------

    async def _request_halt(
        self, job_id: int, target: JobState, *, allowed: tuple[JobState, ...]
    ) -> dict[str, Any]:
        async with self._lock:
            row = await self._row(job_id)
            if row["state"] == target:
                return await self._render(row)
            if row["state"] not in allowed:
                raise ConflictError(f"job {job_id} is {row['state']}; it cannot be {target}")
            await self._halt(job_id, target, error=None)
        return await self.get(job_id)

    async def _halt(self, job_id: int, target: JobState, *, error: str | None) -> None:
        task = self._tasks.get(job_id)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        row = await store.get(self._db, job_id)
        # The task may have finished (done/failed) just before it was cancelled: keep that.
        if row is not None and (row["state"] in ("running", "queued") or target == "cancelled"):
            ctx_active = self._latest.get(job_id, {}).get("active_s")
            await store.set_state(self._db, job_id, target, error=error, active_s=ctx_active)
            log.info("job halted", job_id=job_id, state=target)
            await self.publish(job_id, "state")
        self._latest.pop(job_id, None)

    async def _check_no_conflict(self, kind: str, besides: int | None = None) -> None:
        exclusive = {name for name, k in self._kinds.items() if k.exclusive}
        for row in await store.active(self._db):
            if row["id"] != besides and row["kind"] in exclusive:
                raise ConflictError(_blocked_by(row, kind))

    async def _launch(self, job_id: int, kind: str, *, at_start: bool) -> None:
        if not self._started:
            return
        job_kind = self._kinds.get(kind)
        if job_kind is None:
            await store.set_state(self._db, job_id, "failed", error=f"unknown job kind {kind!r}")
            return
        if job_kind.ready is not None:
            try:
                job_kind.ready()
            except MusiqueError as exc:
                if not at_start:
                    raise
                await store.set_state(self._db, job_id, "interrupted", error=exc.message)
                log.warning("job cannot resume", job_id=job_id, error=exc.message)
                return
        if at_start:
            # Before the socket serves anyone: a client never reads a resuming job as
            # interrupted (or running, left by a crash) while its task has yet to start.
            await store.set_state(self._db, job_id, "queued")
        task = asyncio.create_task(self._run(job_id, job_kind), name=f"job-{job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda _: self._forget(job_id, task))

    def _forget(self, job_id: int, task: asyncio.Task[None]) -> None:
        if self._tasks.get(job_id) is task:
            del self._tasks[job_id]

    async def _run(self, job_id: int, kind: JobKind) -> None:
        await store.set_state(self._db, job_id, "running", started=True)
        row = await self._row(job_id)
        job = JobContext(self, row)
        await self.publish(job_id, "state")
        job.log.info("job running")
        try:
            await kind.run(job)
        except asyncio.CancelledError:
            self._latest[job_id] = {"active_s": job.active_s()}
            raise
        except Exception as exc:
            error = _error_message(exc)
            if error is None:
                job.log.exception("job crashed")
                error = f"internal error: {type(exc).__name__}: {exc}"
            else:
                job.log.error("job failed", error=error)
            await store.set_state(self._db, job_id, "failed", error=error)
        else:
            await store.set_state(self._db, job_id, "done", active_s=job.active_s())
            job.log.info("job done")
        self._latest.pop(job_id, None)
        await self.publish(job_id, "state")

    async def publish(
        self, job_id: int, event: str, *, row: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Send the job's committed state as a ``job`` event; remember it for STATUS=."""
        current: sqlite3.Row | Mapping[str, Any] = (
            row if row is not None else await self._row(job_id)
        )
        job = self._dict(current, None)
        if current["state"] == "running":
            self._latest[job_id] = job
        self._events.publish("job", event=event, **job)
        return job

    async def _render(self, row: sqlite3.Row) -> dict[str, Any]:
        enriched = await store.albums_enriched(self._db, [row["id"]])
        return self._dict(row, enriched.get(row["id"], 0))

    def _dict(
        self, row: sqlite3.Row | Mapping[str, Any], albums_enriched: int | None
    ) -> dict[str, Any]:
        job = store.job_dict(row, albums_enriched=albums_enriched)
        kind = self._kinds.get(row["kind"])
        if row["state"] == "running" and kind is not None and kind.extra is not None:
            job.update(kind.extra())
        return job

    async def _row(self, job_id: int) -> sqlite3.Row:
        row = await store.get(self._db, job_id)
        if row is None:
            raise NotFoundError(f"no job {job_id}")
        return row

    def _kind_of(self, row: sqlite3.Row) -> JobKind:
        kind = self._kinds.get(row["kind"])
        if kind is None:
            raise ConflictError(f"job {row['id']} has an unknown kind {row['kind']!r}")
        return kind

    def status_line(self) -> str | None:
        parts = []
        for job_id, job in sorted(self._latest.items()):
            if "kind" not in job:
                continue
            kind = self._kinds.get(job["kind"])
            label = kind.label if kind else job["kind"]
            total = job.get("pages_total") or 0
            percent = f"{100 * job['pages_done'] // total}%" if total else "starting"
            parts.append(f"{label} job {job_id}: {percent}")
        return ", ".join(parts) or None

    @property
    def running(self) -> list[int]:
        return sorted(self._tasks)


def _blocked_by(row: sqlite3.Row, kind: str) -> str:
    """Why another job cannot start, and the commands that unblock it."""
    job_id, state = row["id"], row["state"]
    first = f"job {job_id} ({row['kind']}) is {state}"
    if state in ("paused", "interrupted"):
        return (
            f"{first}: finish it with `musiquectl jobs resume {job_id}`, or "
            f"`musiquectl jobs cancel {job_id}` before starting another {kind}"
        )
    return (
        f"{first}: wait for it (`musiquectl jobs show {job_id}` follows it), or "
        f"`musiquectl jobs cancel {job_id}` before starting another {kind}"
    )


def _error_message(exc: BaseException) -> str | None:
    """The first deliberate error's message, looking inside exception groups (TaskGroup)."""
    if isinstance(exc, MusiqueError):
        return exc.message
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            message = _error_message(inner)
            if message is not None:
                return message
    return None


__all__ = ["ACTIVE_STATES", "JobContext", "JobKind", "JobRunner"]
