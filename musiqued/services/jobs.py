"""The generic job runner: one owned asyncio task per running job, its state persisted.

The states and the moves between them are the table in ``job_states``; the free-space
watch for jobs a full disk stopped is ``space_watch``.

Restart policy: when the daemon starts, every job left ``running`` (the daemon crashed or
was killed), ``queued`` or ``interrupted`` (clean stop) is resumed by itself from its
checkpoint. A ``paused`` job stays paused: a person asked for that, a restart does not undo
it. A job that cannot resume (e.g. the Last.fm credentials were removed) stays
``interrupted`` with the reason in ``error`` until ``resume`` is called.

Storage failures: a write that fails for lack of space (``StorageFullError``) pauses the job
with the reason in ``error`` (nothing of the failed page was committed); the runner watches
the free space and resumes it by itself once space is back (``resume`` works too), and so
does the next start. A database file deleted or replaced under the daemon
(``DatabaseGoneError``) interrupts the job: nothing can be written any more. When even the
new state cannot be written (the disk is that full), the runner keeps it in memory and shows
it (``held``), so a job never stays ``running`` without a task.

Pause and cancel cancel the job's task: because a job commits its checkpoint in the same
transaction as the rows it covers, a cancelled page is simply rolled back and fetched again
on resume. So a job body needs no pause logic of its own.

Plugging a new kind in (how ``verify`` joins)::

    async def run_verify(job: JobContext) -> None:
        # job.params: the dict given to submit(); job.window_from / job.window_to: frozen
        # at creation; job.checkpoint: what the last committed unit of work stored.
        # Do the work in units; commit each unit with its progress in ONE transaction:
        async with db.transaction() as conn:
            ...  # write the unit's rows
            row = await storage.jobs.write_page_progress(conn, job.job_id, PageProgress(
                checkpoint={...}, imported=..., skipped=..., active_s=job.active_s()))
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
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from musiqued.aio import cancel_and_wait
from musiqued.clock import SYSTEM_CLOCK, Clock
from musiqued.errors import (
    ConflictError,
    DatabaseGoneError,
    MusiqueError,
    NotFoundError,
    StorageFullError,
    StoreError,
)
from musiqued.services.events import EventBus
from musiqued.services.job_states import REQUESTS, RESUMED_AT_START, target_of
from musiqued.services.space_watch import SpaceWatch
from musiqued.storage import jobs as store
from musiqued.storage.db import Database, Row
from musiqued.storage.jobs import ACTIVE_STATES, JobState

log = structlog.get_logger("musiqued.jobs")

E = TypeVar("E", bound=BaseException)


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

    def __init__(self, runner: JobRunner, row: Row) -> None:
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

    def report_trouble(self, trouble: str | None) -> None:
        """The upstream trouble the job is working through, in words (None: over). Shown
        as the job's ``upstream_trouble`` while it runs; each change is a ``job`` event."""
        self._runner.set_trouble(self.job_id, trouble)

    async def published(self, row: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Announce the job's committed progress: a ``job`` event and the STATUS= line.

        ``row``: the job's row as the unit of work committed it (``record_page`` returns
        it), which spares reading it back.
        """
        return await self._runner.publish(self.job_id, "progress", row=row)


class JobRunner:
    """Runs the jobs of every registered kind; persists their states in ``db``."""

    def __init__(self, db: Database, events: EventBus, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._db = db
        self._events = events
        self._kinds: dict[str, JobKind] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._latest: dict[int, dict[str, Any]] = {}
        self._lock = asyncio.Lock()
        self._started = False
        self._held: dict[int, tuple[JobState, str]] = {}
        """Jobs whose state could not be written (the disk was full): what it should say."""
        self._space = SpaceWatch(
            free_bytes=db.free_bytes,
            gone=db.check_file,
            resume=self.resume,
            write_held=self._write_held,
            clock=clock,
        )
        self._trouble: dict[int, str] = {}
        """Running jobs → the upstream trouble they are retrying through."""

    def register(self, kind: JobKind) -> None:
        if kind.name in self._kinds:
            raise RuntimeError(f"job kind {kind.name} is registered twice")
        self._kinds[kind.name] = kind

    # -- lifecycle -----------------------------------------------------------------------

    async def open(self) -> None:
        """Resume the jobs a previous run left running, queued or interrupted, and those the
        daemon paused for lack of space (a person's pause clears ``error``)."""
        self._started = True
        self._space.open()
        rows = await store.with_states(self._db, (*RESUMED_AT_START, "paused"))
        for row in rows:
            if row["state"] == "paused" and not row["error"]:
                continue
            log.info("resuming job", job_id=row["id"], job_kind=row["kind"], state=row["state"])
            await self._launch(row["id"], row["kind"], at_start=True)

    async def close(self) -> None:
        """Interrupt running jobs: their checkpoints are committed, they resume at next start."""
        self._started = False
        await self._space.close()
        for job_id in list(self._tasks):
            with contextlib.suppress(StoreError):  # logged; the next start resumes it
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
        return await self._render(await self._row(job_id))

    async def recent(self, limit: int) -> list[dict[str, Any]]:
        """Jobs of every kind, newest first."""
        return await self._render_all(await store.list_jobs(self._db, limit))

    async def active(self) -> list[dict[str, Any]]:
        return await self._render_all(await store.active(self._db))

    async def pause(self, job_id: int) -> dict[str, Any]:
        """Pause a queued or running job; a paused one is left as it is (idempotent)."""
        return await self._request_halt(job_id, "pause")

    async def cancel(self, job_id: int) -> dict[str, Any]:
        """Cancel a job that has work left; a cancelled one is left as it is (idempotent)."""
        return await self._request_halt(job_id, "cancel")

    async def resume(self, job_id: int) -> dict[str, Any]:
        async with self._lock:
            row = await self._row(job_id)
            state = self._state_of(row)
            if state in ("running", "queued") and job_id in self._tasks:
                return await self._render(row)
            target = target_of("resume", job_id, state)
            job_kind = self._kind_of(row)
            if job_kind.ready is not None:
                job_kind.ready()
            if job_kind.exclusive:
                await self._check_no_conflict(row["kind"], besides=job_id)
            await store.set_state(self._db, job_id, target)
            self._held.pop(job_id, None)
            self._space.forget(job_id)
            await self._launch(job_id, row["kind"], at_start=False)
        return await self.get(job_id)

    # -- internals -----------------------------------------------------------------------

    async def _request_halt(self, job_id: int, request: str) -> dict[str, Any]:
        async with self._lock:
            row = await self._row(job_id)
            state = self._state_of(row)
            if state == REQUESTS[request][0]:
                return await self._render(row)
            await self._halt(job_id, target_of(request, job_id, state), error=None)
        return await self.get(job_id)

    async def _halt(self, job_id: int, target: JobState, *, error: str | None) -> None:
        task = self._tasks.get(job_id)
        if task is not None:
            await cancel_and_wait(task)
        row = await store.get(self._db, job_id)
        # The task may have finished (done/failed) just before it was cancelled: keep that.
        held = job_id in self._held
        if row is not None and (
            row["state"] in ("running", "queued") or held or target == "cancelled"
        ):
            ctx_active = self._latest.get(job_id, {}).get("active_s")
            self._space.forget(job_id)
            try:
                await store.set_state(self._db, job_id, target, error=error, active_s=ctx_active)
            except StoreError as exc:
                self._hold(job_id, target, exc, error)
            else:
                self._held.pop(job_id, None)
            log.info("job halted", job_id=job_id, state=target)
            with contextlib.suppress(StoreError):
                await self.publish(job_id, "state")
        self._latest.pop(job_id, None)

    async def _check_no_conflict(self, kind: str, besides: int | None = None) -> None:
        exclusive = {name for name, k in self._kinds.items() if k.exclusive}
        for row in await store.active(self._db):
            state = self._state_of(row)
            if row["id"] != besides and row["kind"] in exclusive and state in ACTIVE_STATES:
                raise ConflictError(_blocked_by(row["id"], row["kind"], state, kind))

    async def _launch(self, job_id: int, kind: str, *, at_start: bool) -> None:
        if not self._started:
            return
        job_kind = self._kinds.get(kind)
        if job_kind is None:
            await self._record(job_id, "failed", f"unknown job kind {kind!r}")
            return
        if job_kind.ready is not None:
            try:
                job_kind.ready()
            except MusiqueError as exc:
                if not at_start:
                    raise
                await self._record(job_id, "interrupted", exc.message)
                log.warning("job cannot resume", job_id=job_id, error=exc.message)
                return
        if at_start:
            # Before the socket serves anyone: a client never reads a resuming job as
            # interrupted (or running, left by a crash) while its task has yet to start.
            # On a full disk the task's own first write fails and pauses it.
            with contextlib.suppress(StoreError):
                await store.set_state(self._db, job_id, "queued")
        task = asyncio.create_task(self._run(job_id, job_kind), name=f"job-{job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda _: self._forget(job_id, task))

    def _forget(self, job_id: int, task: asyncio.Task[None]) -> None:
        if self._tasks.get(job_id) is task:
            del self._tasks[job_id]

    async def _run(self, job_id: int, kind: JobKind) -> None:
        job: JobContext | None = None
        try:
            await store.set_state(self._db, job_id, "running", started=True)
            job = JobContext(self, await self._row(job_id))
            await self.publish(job_id, "state")
            job.log.info("job running")
            await kind.run(job)
            await store.set_state(self._db, job_id, "done", active_s=job.active_s())
            job.log.info("job done")
        except asyncio.CancelledError:
            if job is not None:
                self._latest[job_id] = {"active_s": job.active_s()}
            raise
        except Exception as exc:
            await self._ended_by(job_id, exc)
        finally:
            self._trouble.pop(job_id, None)
        self._latest.pop(job_id, None)
        with contextlib.suppress(StoreError):
            await self.publish(job_id, "state")

    async def _ended_by(self, job_id: int, exc: Exception) -> None:
        """Record why a job's task ended early; storage failures pause or interrupt it."""
        job_log = log.bind(job_id=job_id)
        full = find_error(exc, StorageFullError)
        gone = find_error(exc, DatabaseGoneError)
        if full is not None:
            free = self._db.free_bytes()
            reason = (
                f"{full.message}; job {job_id} paused: it resumes by itself once space is "
                f"free (or `musiquectl jobs resume {job_id}`)"
            )
            job_log.error("job paused: no space left", error=reason, free_bytes=free)
            await self._record(job_id, "paused", reason)
            self._space.paused_for_space(job_id)
            return
        if gone is not None:
            job_log.error("job interrupted: the database file is gone", error=gone.message)
            await self._record(job_id, "interrupted", gone.message)
            return
        error = _error_message(exc)
        if error is None:
            job_log.error("job crashed", exc_info=exc)
            error = f"internal error: {_leaf_text(exc)}"
        else:
            job_log.error("job failed", error=error)
        await self._record(job_id, "failed", error)

    async def _record(self, job_id: int, state: JobState, error: str) -> None:
        """Write the job's new state; if even that cannot be written, hold it in memory."""
        try:
            await store.set_state(self._db, job_id, state, error=error)
        except StoreError as exc:
            self._hold(job_id, state, exc, error)
        except Exception as exc:  # e.g. a disk I/O error: still never "running" without a task
            log.exception("job state not saved", job_id=job_id, state=state)
            self._hold(job_id, state, StoreError(f"{type(exc).__name__}: {exc}"), error)
        else:
            self._held.pop(job_id, None)

    def _hold(
        self, job_id: int, state: JobState, cause: StoreError, error: str | None = None
    ) -> None:
        """Show ``state`` for the job until it can be written (the watcher retries)."""
        self._held[job_id] = (state, error or cause.message)
        log.error(
            "job state not saved; kept in memory",
            job_id=job_id,
            state=state,
            cause=cause.message,
        )
        self._space.watch()

    def _state_of(self, row: Row | Mapping[str, Any]) -> JobState:
        held = self._held.get(row["id"])
        state: JobState = held[0] if held is not None else row["state"]
        return state

    async def _write_held(self) -> bool:
        """Write the states held in memory (for jobs without a task); True while some are
        still held."""
        for job_id, (state, error) in list(self._held.items()):
            if job_id not in self._space.waiting and job_id not in self._tasks:
                with contextlib.suppress(StoreError):
                    await store.set_state(self._db, job_id, state, error=error)
                    self._held.pop(job_id, None)
        return bool(self._held)

    def set_trouble(self, job_id: int, trouble: str | None) -> None:
        if self._trouble.get(job_id) == trouble:
            return
        if trouble is None:
            self._trouble.pop(job_id, None)
        else:
            self._trouble[job_id] = trouble
        latest = self._latest.get(job_id)
        if latest is not None and "kind" in latest:
            # The job's last committed state, with the trouble in it: no read needed.
            latest["upstream_trouble"] = trouble
            self._events.publish("job", event="trouble", **latest)

    async def publish(
        self, job_id: int, event: str, *, row: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Send the job's committed state as a ``job`` event; remember it for STATUS=."""
        current: Row | Mapping[str, Any] = row if row is not None else await self._row(job_id)
        job = self._dict(current, None)
        if current["state"] == "running":
            self._latest[job_id] = job
        self._events.publish("job", event=event, **job)
        return job

    async def _render(self, row: Row) -> dict[str, Any]:
        return (await self._render_all([row]))[0]

    async def _render_all(self, rows: list[Row]) -> list[dict[str, Any]]:
        enriched = await store.albums_enriched(self._db, [row["id"] for row in rows])
        return [self._dict(row, enriched.get(row["id"], 0)) for row in rows]

    def _dict(self, row: Row | Mapping[str, Any], albums_enriched: int | None) -> dict[str, Any]:
        job = store.job_dict(row, albums_enriched=albums_enriched)
        held = self._held.get(row["id"])
        if held is not None:
            job["state"], job["error"] = held
            job["held"] = True
        kind = self._kinds.get(row["kind"])
        if job["state"] == "running":
            job["upstream_trouble"] = self._trouble.get(row["id"])
            if kind is not None and kind.extra is not None:
                job.update(kind.extra())
        return job

    async def _row(self, job_id: int) -> Row:
        row = await store.get(self._db, job_id)
        if row is None:
            raise NotFoundError(f"no job {job_id}")
        return row

    def _kind_of(self, row: Row) -> JobKind:
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
            trouble = self._trouble.get(job_id)
            parts.append(f"{label} job {job_id}: {percent}" + (f" ({trouble})" if trouble else ""))
        parts.extend(
            f"job {job_id} paused: no space left for the database" for job_id in self._space.waiting
        )
        return ", ".join(parts) or None


def _blocked_by(job_id: int, job_kind: str, state: str, kind: str) -> str:
    """Why another job cannot start, and the commands that unblock it."""
    first = f"job {job_id} ({job_kind}) is {state}"
    if state in ("paused", "interrupted"):
        return (
            f"{first}: finish it with `musiquectl jobs resume {job_id}`, or "
            f"`musiquectl jobs cancel {job_id}` before starting another {kind}"
        )
    return (
        f"{first}: wait for it (`musiquectl jobs show {job_id}` follows it), or "
        f"`musiquectl jobs cancel {job_id}` before starting another {kind}"
    )


def find_error(exc: BaseException, kind: type[E]) -> E | None:
    """The first ``kind`` error in ``exc``, looking inside exception groups (TaskGroup)."""
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = find_error(inner, kind)
            if found is not None:
                return found
    return None


def _error_message(exc: BaseException) -> str | None:
    """The first deliberate error's message, looking inside exception groups (TaskGroup)."""
    found = find_error(exc, MusiqueError)
    return None if found is None else found.message


def _leaf_text(exc: BaseException) -> str:
    """``Type: message`` of the first error that is not a group: what actually went wrong."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"
