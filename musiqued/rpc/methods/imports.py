"""``import.*``: start history import jobs; the other ``import.*`` methods alias ``jobs.*``."""

from __future__ import annotations

from typing import Any

from musiqued.contract.params import ImportParams, JobListParams, JobParams
from musiqued.rpc.methods import jobs
from musiqued.rpc.table import CallContext, Method
from musiqued.services.importer import ImportRequest


async def start(ctx: CallContext, params: ImportParams) -> dict[str, Any]:
    request = ImportRequest(**params.model_dump())
    return {"job_id": await ctx.services.importer.start_import(request)}


METHODS = (
    Method("import.start", ImportParams, start, "Start a history import job; returns its id."),
    Method("import.status", JobParams, jobs.get, "Alias of jobs.get."),
    Method("import.list", JobListParams, jobs.list_jobs, "Alias of jobs.list.", bulk=True),
    Method("import.cancel", JobParams, jobs.cancel, "Alias of jobs.cancel."),
    Method("import.pause", JobParams, jobs.pause, "Alias of jobs.pause."),
    Method("import.resume", JobParams, jobs.resume, "Alias of jobs.resume."),
)
