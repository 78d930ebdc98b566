"""Watching the free space for jobs that a full disk stopped.

A job whose write failed for lack of space is paused, and a state that could not be written
at all is held in memory by the runner. Every ``SPACE_POLL_S`` the watcher gives the runner
a chance to write what it holds and resumes the paused jobs once the free space has grown
by ``SPACE_MARGIN`` since the failure. It stops when nothing waits for space, and for good
when the database file is gone (nothing can be written any more).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from musiqued.aio import cancel_and_wait
from musiqued.clock import SYSTEM_CLOCK, Clock
from musiqued.errors import MusiqueError, StorageFullError

log = structlog.get_logger("musiqued.jobs")

SPACE_POLL_S = 2.0
"""How often the free space is looked at while a job waits for it."""
SPACE_MARGIN = 1 << 20
"""Free bytes beyond what was free at the failure that count as "space is back"."""


class SpaceWatch:
    """Resumes the jobs a full disk paused, once space is back."""

    def __init__(
        self,
        *,
        free_bytes: Callable[[], int | None],
        gone: Callable[[], str | None],
        resume: Callable[[int], Awaitable[object]],
        write_held: Callable[[], Awaitable[bool]],
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """``free_bytes()``: the space left for the database (None: unknown); ``gone()``:
        why the database can no longer be written, else None; ``resume(job_id)``: the
        runner's resume; ``write_held()``: write the states the runner holds in memory,
        True while some are still held."""
        self._free_bytes = free_bytes
        self._gone = gone
        self._resume = resume
        self._write_held = write_held
        self._clock = clock
        self._short: dict[int, int] = {}
        """Jobs paused for lack of space → the free bytes when their write failed."""
        self._task: asyncio.Task[None] | None = None
        self._open = False

    @property
    def waiting(self) -> list[int]:
        """The jobs paused until space is back."""
        return sorted(self._short)

    def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    def paused_for_space(self, job_id: int) -> None:
        """``job_id`` stopped for lack of space: resume it once space is back."""
        self._short[job_id] = self._free_bytes() or 0
        self.watch()

    def forget(self, job_id: int) -> None:
        """The job was resumed, paused or cancelled by a person: no longer waiting."""
        self._short.pop(job_id, None)

    def watch(self) -> None:
        """Look at the free space until nothing waits for it (also for held states)."""
        if self._open and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._loop(), name="job space")

    async def _loop(self) -> None:
        held = True
        while self._short or held:
            await self._clock.sleep(SPACE_POLL_S)
            if self._gone() is not None:
                return  # nothing can be written any more; daemon.status says why
            held = await self._write_held()
            free = self._free_bytes()
            for job_id, at_failure in list(self._short.items()):
                if free is None or free < at_failure + SPACE_MARGIN:
                    continue
                self._short.pop(job_id, None)
                try:
                    await self._resume(job_id)
                except StorageFullError:
                    self._short[job_id] = self._free_bytes() or 0
                    continue
                except MusiqueError as exc:
                    log.warning(
                        "job not resumed after space came back", job_id=job_id, error=exc.message
                    )
                    continue
                log.info("space is back; job resumed", job_id=job_id, free_bytes=free)
