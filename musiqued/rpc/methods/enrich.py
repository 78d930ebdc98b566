"""``enrich.status``, ``enrich.run`` and ``albums.list``."""

from __future__ import annotations

from typing import Any

from musiqued.contract.params import AlbumsParams, NoParams, Params
from musiqued.rpc.table import CallContext, Method


async def status(ctx: CallContext, _: NoParams) -> dict[str, Any]:
    return await ctx.services.enricher.status()


class RunParams(Params):
    retry_failed: bool = False
    regenerate: bool = False


async def run(ctx: CallContext, params: RunParams) -> dict[str, Any]:
    return await ctx.services.enricher.run(
        retry_failed=params.retry_failed, regenerate=params.regenerate
    )


async def albums(ctx: CallContext, params: AlbumsParams) -> list[dict[str, Any]]:
    return await ctx.services.library.albums(
        query=params.query, artist=params.artist, limit=params.limit, offset=params.offset
    )


METHODS = (
    Method(
        "enrich.status",
        NoParams,
        status,
        "Enrichment queue counts (rows per item and source), per source with configured flags.",
    ),
    Method(
        "enrich.run",
        RunParams,
        run,
        "Wake the enrichment worker; retry_failed re-queues failures, regenerate redoes "
        "AI descriptions.",
    ),
    Method(
        "albums.list",
        AlbumsParams,
        albums,
        "Albums with listens, images and description, most listened first.",
        bulk=True,
    ),
)
