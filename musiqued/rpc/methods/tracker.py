"""``tracker.status``, ``tracker.start`` and ``tracker.stop``."""

from __future__ import annotations

from typing import Any

from musiqued.contract.params import NoParams, TrackerParams
from musiqued.rpc.table import CallContext, Method


async def status(ctx: CallContext, _: NoParams) -> dict[str, Any]:
    return await ctx.services.tracker.status()


async def start(ctx: CallContext, params: TrackerParams) -> dict[str, Any]:
    started = await ctx.services.tracker.start(params.interval_seconds)
    return {"status": "started" if started else "already_running"}


async def stop(ctx: CallContext, _: NoParams) -> dict[str, Any]:
    await ctx.services.tracker.stop()
    return {"status": "stopped"}


METHODS = (
    Method("tracker.status", NoParams, status, "Is the tracker running, what it last saw."),
    Method(
        "tracker.start",
        TrackerParams,
        start,
        "Start polling Last.fm (or change the interval of the running tracker).",
    ),
    Method("tracker.stop", NoParams, stop, "Stop polling Last.fm."),
)
