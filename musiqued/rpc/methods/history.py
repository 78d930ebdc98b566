"""``history.recent``, ``history.list`` and ``stats.summary``: reading the stored history."""

from __future__ import annotations

from typing import Any, Self

from pydantic import Field, model_validator

from musiqued import wire
from musiqued.contract.params import CursorText, Params, RecentParams, Timestamp
from musiqued.contract.shapes import listen_shape
from musiqued.rpc.table import CallContext, Method
from musiqued.services.export import Format
from musiqued.storage import history

MAX_PAGE = wire.MAX_LISTENS


class _Period(Params):
    since: Timestamp | None = None
    until: Timestamp | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.since is not None and self.until is not None and self.until < self.since:
            raise ValueError("until must not be before since")
        return self


async def recent(ctx: CallContext, params: RecentParams) -> list[dict[str, Any]]:
    return await ctx.services.library.recent(params.limit, listen_shape)


class ListParams(_Period):
    after: CursorText = None
    limit: int = Field(default=1000, ge=1, le=MAX_PAGE)


async def list_listens(ctx: CallContext, params: ListParams) -> dict[str, Any]:
    listens, cursor = await ctx.services.library.page(
        since=params.since,
        until=params.until,
        after=history.Cursor.decode(params.after) if params.after else None,
        limit=params.limit,
        shape=listen_shape,
    )
    result: dict[str, Any] = {
        "listens": listens,
        "next": cursor.encode() if cursor else None,
    }
    if params.after is None and cursor is not None:
        # A first page that does not hold the whole period says how many there are in all.
        result["total"] = await ctx.services.library.count_period(
            since=params.since, until=params.until
        )
    return result


class ExportParams(_Period):
    format: Format


async def export(ctx: CallContext, params: ExportParams) -> dict[str, Any]:
    exported = await ctx.services.library.export(
        params.format, since=params.since, until=params.until, write=ctx.stream
    )
    return {"exported": exported, "format": params.format}


class SummaryParams(_Period):
    top: int = Field(default=10, ge=1, le=wire.MAX_TOP)


async def summary(ctx: CallContext, params: SummaryParams) -> dict[str, Any]:
    summary = await ctx.services.library.summary(
        since=params.since, until=params.until, top=params.top
    )
    for edge in ("first_listen", "last_listen"):
        if summary[edge] is not None:
            summary[edge] = listen_shape(summary[edge])
    return summary


METHODS = (
    Method("history.recent", RecentParams, recent, "The latest listens, newest first.", bulk=True),
    Method(
        "history.list",
        ListParams,
        list_listens,
        "Listens oldest first in [since, until), paged with the opaque `next` cursor; a first "
        "page that does not hold the whole period also gives its `total`.",
        bulk=True,
    ),
    Method(
        "history.export",
        ExportParams,
        export,
        "Every listen of [since, until) oldest first as `format` (csv, json, jsonl, listenbrainz or "
        "maloja, as "
        "`musiquectl export` writes them), streamed: `stream` notifications "
        "`{id, data}` carry the text in order, then the result `{exported, format}`.",
        streamed=True,
    ),
    Method(
        "stats.summary",
        SummaryParams,
        summary,
        "Counts, first/last listen, top artists, albums and tracks, listens per UTC day.",
    ),
)
