"""``import.*``: start history import jobs; the other ``import.*`` methods alias ``jobs.*``."""

from __future__ import annotations

from typing import Any, Self

from pydantic import Field, model_validator

from musiqued.rpc.methods import jobs
from musiqued.rpc.table import CallContext, Method, Params, Timestamp, not_in_future
from musiqued.services.importer import ImportRequest

MAX_LIMIT = 2**53
"""More scrobbles than anyone has: an import ``limit`` above it is refused."""


class StartParams(Params):
    limit: int | None = Field(default=None, ge=1, le=MAX_LIMIT)
    all: bool = False
    skip_existing: bool = True
    since: Timestamp | None = None
    until: Timestamp | None = None
    incremental: bool = False

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.all and self.limit is not None:
            raise ValueError("give either limit or all, not both")
        not_in_future(self.since)
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise ValueError("until must be after since")
        return self


async def start(ctx: CallContext, params: StartParams) -> dict[str, Any]:
    request = ImportRequest(**params.model_dump())
    return {"job_id": await ctx.services.importer.start_import(request)}


METHODS = (
    Method("import.start", StartParams, start, "Start a history import job; returns its id."),
    Method("import.status", jobs.JobParams, jobs.get, "Alias of jobs.get."),
    Method("import.list", jobs.ListParams, jobs.list_jobs, "Alias of jobs.list.", bulk=True),
    Method("import.cancel", jobs.JobParams, jobs.cancel, "Alias of jobs.cancel."),
    Method("import.pause", jobs.JobParams, jobs.pause, "Alias of jobs.pause."),
    Method("import.resume", jobs.JobParams, jobs.resume, "Alias of jobs.resume."),
)
