"""``jobs.*``: list, read and steer jobs of every kind (imports, verifies and file imports alike).

The ``import.status/list/pause/resume/cancel`` methods are aliases of these (``imports.py``),
kept for the original clients.
"""

from __future__ import annotations

from typing import Any

from musiqued.contract.params import JobListParams, JobParams
from musiqued.rpc.table import CallContext, Method


async def get(ctx: CallContext, params: JobParams) -> dict[str, Any]:
    return await ctx.services.jobs.get(params.job_id)


async def list_jobs(ctx: CallContext, params: JobListParams) -> list[dict[str, Any]]:
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
    Method("jobs.list", JobListParams, list_jobs, "Jobs of every kind, newest first.", bulk=True),
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
