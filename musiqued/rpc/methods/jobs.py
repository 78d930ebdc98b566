"""``jobs.*``: list, read and steer jobs of every kind (imports, verifies and file imports alike).

The ``import.status/list/pause/resume/cancel`` methods are aliases of these (``imports.py``),
kept for the original clients.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from musiqued.rpc.table import CallContext, Method, Params

MAX_JOB_ID = 2**63 - 1


class JobParams(Params):
    job_id: int = Field(ge=1, le=MAX_JOB_ID)


class ListParams(Params):
    limit: int = Field(default=20, ge=1, le=1000)


async def get(ctx: CallContext, params: JobParams) -> dict[str, Any]:
    return await ctx.services.jobs.get(params.job_id)


async def list_jobs(ctx: CallContext, params: ListParams) -> list[dict[str, Any]]:
    return await ctx.services.jobs.recent(params.limit)


async def cancel(ctx: CallContext, params: JobParams) -> dict[str, Any]:
    return await ctx.services.jobs.cancel(params.job_id)


async def pause(ctx: CallContext, params: JobParams) -> dict[str, Any]:
    return await ctx.services.jobs.pause(params.job_id)


async def resume(ctx: CallContext, params: JobParams) -> dict[str, Any]:
    return await ctx.services.jobs.resume(params.job_id)


async def undo(ctx: CallContext, params: JobParams) -> dict[str, Any]:
    return await ctx.services.files.undo(params.job_id)


METHODS = (
    Method("jobs.list", ListParams, list_jobs, "Jobs of every kind, newest first."),
    Method("jobs.get", JobParams, get, "One job with its counters and progress."),
    Method("jobs.pause", JobParams, pause, "Pause a job at its last committed unit of work."),
    Method("jobs.resume", JobParams, resume, "Resume a paused, failed or interrupted job."),
    Method("jobs.cancel", JobParams, cancel, "Cancel a job (what it stored stays)."),
    Method(
        "jobs.undo",
        JobParams,
        undo,
        "Remove exactly the listens a finished file job added: `{job_id, removed}`; "
        "refused (conflict) for Last.fm jobs and for jobs still active.",
    ),
)
