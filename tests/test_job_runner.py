"""The generic job runner's state machine, built on its own against a temporary database:
a job body whose steps the test hands out one by one, so every transition happens at a
known point (pause, resume, cancel, failure, a restart). The schema knows two kinds,
``import`` and ``verify``: the test bodies run under those names."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest

from musiqued.errors import ConflictError, NotConfiguredError, TransientUpstreamError
from musiqued.services.events import EventBus, Subscription
from musiqued.services.jobs import JobContext, JobKind, JobRunner
from musiqued.storage import jobs as store
from musiqued.storage.db import Database
from musiqued.storage.jobs import PageProgress
from tests.fixtures.services import next_event

FINISHED = ("done", "failed", "cancelled")


def failure(kind: str) -> Exception:
    """What a step raises when the job's params say ``{"fail_at": step, "with": kind}``."""
    if kind == "ours":
        return TransientUpstreamError("Last.fm answered 503 three times")
    if kind == "grouped":  # as from the importer's task group of fetchers
        return ExceptionGroup("fetchers", [TransientUpstreamError("page 7 stayed short")])
    return ValueError("bad value")


class Steps:
    """A job body of ``total`` steps; each waits for a permit from the test, then commits
    one page with its checkpoint (the step count) in one transaction, as real kinds do.
    A job whose params hold ``fail_at`` raises ``failure(params["with"])`` at that step,
    once."""

    def __init__(self, db: Database, total: int = 3) -> None:
        self.db = db
        self.total = total
        self.permits: asyncio.Queue[None] = asyncio.Queue()
        self.starts: list[int] = []
        """The checkpoint each run of the body began at."""
        self._failed: set[int] = set()

    def allow(self, steps: int) -> None:
        for _ in range(steps):
            self.permits.put_nowait(None)

    async def run(self, job: JobContext) -> None:
        done = int(job.checkpoint.get("steps", 0))
        self.starts.append(done)
        for step in range(done + 1, self.total + 1):
            await self.permits.get()
            if job.params.get("fail_at") == step and job.job_id not in self._failed:
                self._failed.add(job.job_id)
                raise failure(str(job.params["with"]))
            progress = PageProgress(checkpoint={"steps": step}, imported=1, active_s=job.active_s())
            async with self.db.transaction() as conn:
                row = await store.write_page_progress(conn, job.job_id, progress)
            await job.published(row)


@asynccontextmanager
async def running(database: Database, bus: EventBus, *kinds: JobKind) -> AsyncIterator[JobRunner]:
    """A runner with ``kinds`` registered, opened (it resumes what it finds), then closed."""
    runner = JobRunner(database, bus)
    for kind in kinds:
        runner.register(kind)
    await runner.open()
    try:
        yield runner
    finally:
        await runner.close()


@contextmanager
def subscribed(bus: EventBus) -> Iterator[Subscription]:
    subscription = bus.subscribe(["job"])
    try:
        yield subscription
    finally:
        subscription.close()


async def ended(events: Subscription, job_id: int) -> dict[str, Any]:
    return await next_event(events, "job", lambda job: job["state"] in FINISHED, job_id=job_id)


async def test_a_job_runs_its_steps_to_done(database: Database, bus: EventBus) -> None:
    """A submitted job is created queued, runs, publishes each committed step, and ends
    done with its counters; the runner's status line shows it while it runs."""
    steps = Steps(database, total=3)
    with subscribed(bus) as events:
        async with running(database, bus, JobKind("import", steps.run, label="stepping")) as jobs:
            job_id = await jobs.submit("import", {"n": 3})
            created = await next_event(events, "job", job_id=job_id)
            assert (created["event"], created["state"]) == ("created", "queued")
            await next_event(events, "job", job_id=job_id, event="state", state="running")
            steps.allow(1)
            first = await next_event(events, "job", job_id=job_id, event="progress")
            assert (first["pages_done"], first["tracks_imported"]) == (1, 1)
            assert jobs.status_line() == f"stepping job {job_id}: starting"
            assert [job["job_id"] for job in await jobs.active()] == [job_id]
            steps.allow(2)
            done = await ended(events, job_id)
            assert done["event"] == "state"
            job = await jobs.get(job_id)
            assert jobs.status_line() is None
    assert (job["state"], job["pages_done"], job["tracks_imported"]) == ("done", 3, 3)
    assert job["params"] == {"n": 3}
    assert job["finished_at"] is not None
    assert steps.starts == [0]


async def test_active_shows_each_committed_step_and_no_caller_changes(
    database: Database, bus: EventBus
) -> None:
    """``active()`` (daemon.status's jobs) keeps the form it last showed a job's row in:
    after each commit it shows the new row, live fields stay live, and what a caller does
    to an answer is not in the next one."""
    steps = Steps(database, total=3)
    with subscribed(bus) as events:
        async with running(database, bus, JobKind("import", steps.run, label="stepping")) as jobs:
            job_id = await jobs.submit("import", {"n": 3})
            await next_event(events, "job", job_id=job_id, event="state", state="running")
            for step in (1, 2):
                steps.allow(1)
                await next_event(events, "job", job_id=job_id, pages_done=step)
                first, again = await jobs.active(), await jobs.active()
                assert first == again
                assert (first[0]["pages_done"], first[0]["tracks_imported"]) == (step, step)
                first[0]["pages_done"] = -1
                first[0]["state"] = "scribbled"
                shown = (await jobs.active())[0]
                assert (shown["pages_done"], shown["state"]) == (step, "running")
                jobs.set_trouble(job_id, "Last.fm answered 503; retrying")
                assert (await jobs.active())[0]["upstream_trouble"] == (
                    "Last.fm answered 503; retrying"
                )
                jobs.set_trouble(job_id, None)
                assert (await jobs.active())[0]["upstream_trouble"] is None
            steps.allow(1)
            await ended(events, job_id)
            assert await jobs.active() == []


async def test_pause_then_resume_goes_on_from_the_checkpoint(
    database: Database, bus: EventBus
) -> None:
    """Pause stops the job between committed steps; nothing moves while it is paused; resume
    runs the body again from the checkpoint, and the counters count each step once."""
    steps = Steps(database, total=4)
    with subscribed(bus) as events:
        async with running(database, bus, JobKind("import", steps.run, label="stepping")) as jobs:
            job_id = await jobs.submit("import", {})
            steps.allow(2)
            await next_event(events, "job", job_id=job_id, pages_done=2)
            paused = await jobs.pause(job_id)
            assert (paused["state"], paused["pages_done"]) == ("paused", 2)
            steps.allow(1)  # a permit the paused job must not use
            await asyncio.sleep(0.05)  # a negative: the paused job commits nothing
            assert (await jobs.get(job_id))["pages_done"] == 2
            assert (await jobs.pause(job_id))["state"] == "paused"  # again: as it is

            resumed = await jobs.resume(job_id)
            assert resumed["state"] in ("queued", "running")
            steps.allow(1)
            done = await ended(events, job_id)
    assert (done["state"], done["pages_done"], done["tracks_imported"]) == ("done", 4, 4)
    assert steps.starts == [0, 2]


async def test_cancel_is_final(database: Database, bus: EventBus) -> None:
    """A cancelled job (running or paused) ends for good: no resume, no pause; cancelling
    it again leaves it as it is."""
    steps = Steps(database, total=5)
    async with running(database, bus, JobKind("import", steps.run, label="stepping")) as jobs:
        first = await jobs.submit("import", {})
        cancelled = await jobs.cancel(first)
        assert cancelled["state"] == "cancelled"
        assert cancelled["finished_at"] is not None
        second = await jobs.submit("import", {})
        await jobs.pause(second)
        assert (await jobs.cancel(second))["state"] == "cancelled"
        for job_id in (first, second):
            with pytest.raises(ConflictError, match="only a paused, failed or interrupted"):
                await jobs.resume(job_id)
            with pytest.raises(ConflictError):
                await jobs.pause(job_id)
            assert (await jobs.cancel(job_id))["state"] == "cancelled"
        assert await jobs.active() == []


async def test_exclusive_kinds_never_run_two_at_a_time(database: Database, bus: EventBus) -> None:
    """While an exclusive job is active (even paused), another is refused with the job to
    wait for or cancel; a non-exclusive kind runs beside it."""
    steps, side = Steps(database, total=1), Steps(database, total=1)
    kinds = (
        JobKind("import", steps.run, label="stepping"),
        JobKind("verify", side.run, label="beside", exclusive=False),
    )
    with subscribed(bus) as events:
        async with running(database, bus, *kinds) as jobs:
            job_id = await jobs.submit("import", {})
            await jobs.pause(job_id)
            with pytest.raises(ConflictError, match=rf"job {job_id} \(import\) is paused"):
                await jobs.submit("import", {})
            beside = await jobs.submit("verify", {})
            side.allow(1)
            assert (await ended(events, beside))["state"] == "done"
            await jobs.resume(job_id)
            steps.allow(1)
            assert (await ended(events, job_id))["state"] == "done"
            after = await jobs.submit("import", {})
            steps.allow(1)
            assert (await ended(events, after))["state"] == "done"


async def test_a_failing_job_says_why_and_can_be_resumed(database: Database, bus: EventBus) -> None:
    """An error of ours fails the job with its message (even from inside a task group); any
    other exception is an internal error naming it; a failed job resumes from its checkpoint."""
    steps = Steps(database, total=3)
    with subscribed(bus) as events:
        async with running(database, bus, JobKind("import", steps.run, label="stepping")) as jobs:
            for kind, message in (
                ("ours", "Last.fm answered 503 three times"),
                ("crash", "internal error: ValueError: bad value"),
                ("grouped", "page 7 stayed short"),
            ):
                job_id = await jobs.submit("import", {"fail_at": 2, "with": kind})
                steps.allow(2)
                failed = await ended(events, job_id)
                assert (failed["state"], failed["pages_done"]) == ("failed", 1)
                assert failed["error"] == message
                await jobs.cancel(job_id)  # out of the way of the next one

            job_id = await jobs.submit("import", {"fail_at": 3, "with": "ours"})
            steps.allow(3)
            assert (await ended(events, job_id))["state"] == "failed"
            await jobs.resume(job_id)
            steps.allow(1)
            done = await ended(events, job_id)
    assert (done["state"], done["pages_done"], done["error"]) == ("done", 3, None)
    assert steps.starts[-2:] == [0, 2]


async def test_a_restart_resumes_what_was_running_but_not_what_was_paused(
    database: Database, bus: EventBus
) -> None:
    """Closing the runner interrupts its running jobs; the next runner on the same database
    resumes them from their checkpoints, and jobs left running (a crash) or queued; a paused
    job stays paused; a job of a kind nobody registered fails with that reason."""
    before = Steps(database, total=3)
    kind = JobKind("import", before.run, label="stepping", exclusive=False)
    with subscribed(bus) as events:
        async with running(database, bus, kind) as jobs:
            paused = await jobs.submit("import", {})
            await jobs.pause(paused)
            interrupted = await jobs.submit("import", {})
            before.allow(1)
            await next_event(events, "job", job_id=interrupted, pages_done=1)
    row = await store.get(database, interrupted)
    assert row is not None
    assert (row["state"], row["pages_done"]) == ("interrupted", 1)
    crashed = await store.create(database, "import", {}, state="running")
    queued = await store.create(database, "import", {}, state="queued")
    unknown = await store.create(database, "verify", {}, state="running")

    after = Steps(database, total=3)
    kind = JobKind("import", after.run, label="stepping", exclusive=False)
    with subscribed(bus) as events:
        async with running(database, bus, kind) as jobs:
            after.allow(2 + 3 + 3)
            for job_id in (interrupted, crashed, queued):
                assert (await ended(events, job_id))["state"] == "done"
            assert (await jobs.get(paused))["state"] == "paused"
            gone = await jobs.get(unknown)
    assert (gone["state"], gone["error"]) == ("failed", "unknown job kind 'verify'")
    assert sorted(after.starts) == [0, 0, 1]


async def test_a_job_that_cannot_run_at_start_waits_interrupted(
    database: Database, bus: EventBus
) -> None:
    """A kind that is not ready (no Last.fm credentials) refuses a new job at once; a job
    of it found at start stays interrupted with the reason, until resumed once ready."""
    configured = False

    def ready() -> None:
        if not configured:
            raise NotConfiguredError("Last.fm is not configured")

    steps = Steps(database, total=1)
    kind = JobKind("import", steps.run, label="stepping", ready=ready)
    waiting = await store.create(database, "import", {}, state="interrupted")
    with subscribed(bus) as events:
        async with running(database, bus, kind) as jobs:
            with pytest.raises(NotConfiguredError):
                await jobs.submit("import", {})
            job = await jobs.get(waiting)
            assert (job["state"], job["error"]) == ("interrupted", "Last.fm is not configured")
            with pytest.raises(NotConfiguredError):
                await jobs.resume(waiting)
            configured = True
            await jobs.resume(waiting)
            steps.allow(1)
            assert (await ended(events, waiting))["state"] == "done"
