"""``import.*``: start, follow and steer history import jobs."""

from __future__ import annotations

from typing import Any, Self

from pydantic import Field, model_validator

from musiqued.rpc.table import CallContext, Method, Params, Timestamp
from musiqued.services.importer import ImportRequest


class StartParams(Params):
    limit: int | None = Field(default=None, ge=1)
    all: bool = False
    skip_existing: bool = True
    since: Timestamp | None = None
    until: Timestamp | None = None
    incremental: bool = False

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.all and self.limit is not None:
            raise ValueError("give either limit or all, not both")
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise ValueError("until must be after since")
        return self


class JobParams(Params):
    job_id: int


class ListParams(Params):
    limit: int = Field(default=20, ge=1, le=1000)


async def start(ctx: CallContext, params: StartParams) -> dict[str, Any]:
    request = ImportRequest(**params.model_dump())
    return {"job_id": await ctx.daemon.importer.start_import(request)}


async def status(ctx: CallContext, params: JobParams) -> dict[str, Any]:
    return await ctx.daemon.importer.get(params.job_id)


async def list_jobs(ctx: CallContext, params: ListParams) -> list[dict[str, Any]]:
    return await ctx.daemon.importer.list(params.limit)


async def cancel(ctx: CallContext, params: JobParams) -> dict[str, Any]:
    return await ctx.daemon.importer.cancel(params.job_id)


async def pause(ctx: CallContext, params: JobParams) -> dict[str, Any]:
    return await ctx.daemon.importer.pause(params.job_id)


async def resume(ctx: CallContext, params: JobParams) -> dict[str, Any]:
    return await ctx.daemon.importer.resume(params.job_id)


METHODS = (
    Method("import.start", StartParams, start, "Start a history import job; returns its id."),
    Method("import.status", JobParams, status, "One job with its counters and progress."),
    Method("import.list", ListParams, list_jobs, "Jobs, newest first."),
    Method("import.cancel", JobParams, cancel, "Cancel a job (rows already stored stay)."),
    Method("import.pause", JobParams, pause, "Pause a job at its last committed page."),
    Method("import.resume", JobParams, resume, "Resume a paused, failed or interrupted job."),
)
