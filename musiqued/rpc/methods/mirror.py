"""``mirror.status``, ``mirror.pause`` and ``mirror.resume``: the ListenBrainz mirror."""

from __future__ import annotations

from typing import Any

from musiqued.contract.params import NoParams
from musiqued.rpc.table import CallContext, Method


async def status(ctx: CallContext, _: NoParams) -> dict[str, Any]:
    return await ctx.services.mirror.status()


async def pause(ctx: CallContext, _: NoParams) -> dict[str, Any]:
    return await ctx.services.mirror.pause()


async def resume(ctx: CallContext, _: NoParams) -> dict[str, Any]:
    return await ctx.services.mirror.resume()


METHODS = (
    Method(
        "mirror.status",
        NoParams,
        status,
        "The ListenBrainz mirror: submitted, pending, its rate, the last error, the next attempt.",
    ),
    Method("mirror.pause", NoParams, pause, "Stop sending to ListenBrainz; kept across restarts."),
    Method("mirror.resume", NoParams, resume, "Send to ListenBrainz again."),
)
