"""The library's views as both front ends serve them: ``library.<name>`` over RPC and
``GET /api/v1/library/<name>`` over HTTP, each with its params model and the service call
that answers it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from musiqued.contract import params as p
from musiqued.services.library import Library
from musiqued.storage.history import Cursor


async def top(library: Library, params: p.TopParams) -> dict[str, Any]:
    return await library.views.top(
        params.kind,
        since=params.since,
        until=params.until,
        limit=params.limit,
        zone=library.zone_for(params.tz),
    )


async def timeline(library: Library, params: p.TimelineParams) -> dict[str, Any]:
    return await library.views.timeline(
        since=params.since,
        until=params.until,
        bucket=params.bucket,
        zone=library.zone_for(params.tz),
    )


async def search(library: Library, params: p.SearchParams) -> dict[str, Any]:
    return await library.views.search(
        q=params.q,
        since=params.since,
        until=params.until,
        limit=params.limit,
        cursor=Cursor.decode(params.cursor) if params.cursor else None,
    )


async def album(library: Library, params: p.AlbumParams) -> dict[str, Any]:
    album_id = params.id
    if album_id is None:
        assert params.artist is not None  # the model checks
        assert params.title is not None
        album_id = await library.views.album_id(params.artist, params.title)
    return await library.views.album(album_id, library.zone_for(params.tz))


async def artist(library: Library, params: p.ArtistParams) -> dict[str, Any]:
    artist_id = params.id
    if artist_id is None:
        assert params.name is not None  # the model checks
        artist_id = await library.views.artist_id(params.name)
    return await library.views.artist(artist_id, library.zone_for(params.tz))


async def year(library: Library, params: p.YearParams) -> dict[str, Any]:
    return await library.views.year(params.year, library.zone_for(params.tz))


async def on_this_day(library: Library, params: p.OnThisDayParams) -> dict[str, Any]:
    return await library.views.on_this_day(params.date, library.zone_for(params.tz))


View = Callable[[Library, Any], Awaitable[dict[str, Any]]]
VIEWS: dict[str, tuple[type[p.Params], View, str]] = {
    "top": (
        p.TopParams,
        top,
        "The most listened artists, albums or tracks of [since, until) (all time without "
        "either), with listens, image and `previous_rank` in the period just before.",
    ),
    "timeline": (
        p.TimelineParams,
        timeline,
        "Listens of [since, until) per day, week, month or year of the zone, or per hour of "
        "the week.",
    ),
    "search": (
        p.SearchParams,
        search,
        "Listens newest first, those matching `q` (artist, album, title; any case and "
        "accents), paged with `next_cursor`.",
    ),
    "album": (
        p.AlbumParams,
        album,
        "An album's page: cover, description, tracks, listens per month, links.",
    ),
    "artist": (
        p.ArtistParams,
        artist,
        "An artist's page: image, top albums and tracks, listens per month.",
    ),
    "year": (
        p.YearParams,
        year,
        "A year in review: totals, top fives, new artists, busiest day, longest run, months.",
    ),
    "on_this_day": (
        p.OnThisDayParams,
        on_this_day,
        "This date's listens in each earlier year.",
    ),
}
"""Each view: its params model, the call that answers it, one line for the method list."""
