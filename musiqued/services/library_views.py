"""The library's views: top lists, timelines, search, album and artist pages, a year in
review, this day in earlier years. Days, weeks, months and years are the user's
(``zone``: ``[daemon] timezone``, or a call's own); answers hold ``Listen`` values, which
the front ends shape (``contract/shapes.py``)."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal

from musiqued import zones
from musiqued.errors import NotFoundError
from musiqued.services.image_cache import local_image_url
from musiqued.storage import history, library, totals
from musiqued.storage.db import Database, Row
from musiqued.storage.library import HOURS_PER_WEEK
from musiqued.storage.totals import Kind

Bucket = Literal["day", "week", "month", "year", "hour_of_week"]
TOP_OF_PAGE = 5
"""How many albums, tracks or artists a page or a year shows in each list."""
PAGE_LIST = 50
ON_THIS_DAY_LISTENS = 50


def _image(row: Row) -> str | None:
    return local_image_url(row["image_spotify"] or row["image_lastfm"])


class LibraryViews:
    """Each view in the zone its caller gives (``Library.zone_for``)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def per_day(
        self, since: int | None, until: int | None, zone: dt.tzinfo
    ) -> list[dict[str, Any]]:
        """``[{day, listens}]`` for each day of ``zone`` with listens in ``[since, until)``."""
        span = await library.history_span(self._db)
        if span is None:
            return []
        low = max(since, span[0]) if since is not None else span[0]
        high = min(until, span[1] + 1) if until is not None else span[1] + 1
        if high <= low:
            return []
        days = await totals.local_counts(self._db, low, high, zone, unit=zones.DAY)
        return [
            {"day": zones.day_of(day).isoformat(), "listens": n} for day, n in sorted(days.items())
        ]

    async def top(
        self, kind: Kind, *, since: int | None, until: int | None, limit: int, zone: dt.tzinfo
    ) -> dict[str, Any]:
        """The period's most listened artists, albums or tracks, each with its rank in the
        period of the same length just before (None: not heard then, or no such period)."""
        if since is not None and until is None:
            until = int(time.time()) + 1
        top = await library.top_ids(self._db, kind, since, until, limit)
        ids = [item_id for item_id, _ in top]
        previous: dict[int, int] = {}
        previous_period = None
        if since is not None and until is not None and until > since:
            previous_period = {"since": 2 * since - until, "until": since}
            previous = await library.ranks(self._db, kind, 2 * since - until, since, ids)
        items = await self._ranked(kind, top, previous)
        return {
            "kind": kind,
            "since": since,
            "until": until,
            "tz": zones.zone_name(zone),
            "previous": previous_period,
            "items": items,
        }

    async def _ranked(
        self, kind: Kind, top: list[tuple[int, int]], previous: dict[int, int] | None
    ) -> list[dict[str, Any]]:
        """``(id, listens)`` pairs, most first, as ranked items with names and images."""
        found = await library.items(self._db, kind, [item_id for item_id, _ in top])
        items = []
        for rank, (item_id, listens) in enumerate(top, start=1):
            row = found[item_id]
            item: dict[str, Any] = {"rank": rank, "id": item_id, "artist": row["artist"]}
            if kind != "artists":
                item["artist_id"] = row["artist_id"]
                item["title"] = row["title"]
            item.update(listens=listens, image=_image(row))
            if previous is not None:
                item["previous_rank"] = previous.get(item_id)
            items.append(item)
        return items

    async def timeline(
        self, *, since: int, until: int, bucket: Bucket, zone: dt.tzinfo
    ) -> dict[str, Any]:
        """Listens of ``[since, until)`` per bucket of ``zone``, every bucket listed (zeros
        too); ``hour_of_week``: 168 buckets, Monday 00:00 first."""
        answer: dict[str, Any] = {
            "since": since,
            "until": until,
            "bucket": bucket,
            "tz": zones.zone_name(zone),
        }
        span = await library.history_span(self._db)
        low, high = (max(since, span[0]), min(until, span[1] + 1)) if span else (0, 0)
        if bucket == "hour_of_week":
            hours = await totals.local_counts(
                self._db,
                low,
                high,
                zone,
                unit=3600,
                cycle=HOURS_PER_WEEK,
                shift=library.MONDAY_SHIFT,
            )
            answer["buckets"] = [
                {"weekday": h // 24, "hour": h % 24, "listens": hours.get(h, 0)}
                for h in range(HOURS_PER_WEEK)
            ]
            return answer
        if until <= since:
            answer["buckets"] = []
            return answer
        days = await totals.local_counts(self._db, low, high, zone, unit=zones.DAY)
        answer["buckets"] = _buckets(days, since, until, bucket, zone)
        return answer

    async def search(
        self,
        *,
        q: str | None,
        since: int | None,
        until: int | None,
        limit: int,
        cursor: history.Cursor | None,
    ) -> dict[str, Any]:
        """Listens newest first; with ``q``, those whose artist, album or title hold every
        word of it (as a word's start, whatever the case and accents)."""
        listens, following = await library.search_page(
            self._db,
            terms=library.match_terms(q or ""),
            low=since,
            high=until,
            before=cursor,
            limit=limit,
        )
        return {"listens": listens, "next_cursor": following.encode() if following else None}

    async def album(self, album_id: int, zone: dt.tzinfo) -> dict[str, Any]:
        """An album's page: cover, description, tracks with their listens, listens per
        month, first and last listen, Last.fm and Spotify links."""
        row = await library.album_row(self._db, album_id)
        if row is None:
            raise NotFoundError(f"no album {album_id}")
        first, last = await library.edges(self._db, "albums", album_id)
        tracks = await library.album_tracks(self._db, album_id)
        return {
            "id": album_id,
            "artist": row["artist"],
            "artist_id": row["artist_id"],
            "title": row["title"],
            "mbid": row["mbid"] or None,
            "image": _image(row),
            "description": row["description"],
            "description_model": row["description_model"],
            "wiki_summary": row["wiki_summary"],
            "release_year": row["release_year"],
            "listens": row["listens"],
            "first_listen": first,
            "last_listen": last,
            "tracks": [
                {"id": t["id"], "title": t["title"], "listens": t["listens"]} for t in tracks
            ],
            "per_month": await self._per_month("albums", album_id, first, last, zone),
            "links": _links(row, "album"),
            "tz": zones.zone_name(zone),
        }

    async def artist(self, artist_id: int, zone: dt.tzinfo) -> dict[str, Any]:
        """An artist's page: image, top albums and tracks, listens per month, first and last
        listen."""
        row = await library.artist_row(self._db, artist_id)
        if row is None:
            raise NotFoundError(f"no artist {artist_id}")
        first, last = await library.edges(self._db, "artists", artist_id)
        albums = await library.artist_albums(self._db, artist_id, PAGE_LIST)
        tracks = await library.artist_tracks(self._db, artist_id, PAGE_LIST)
        return {
            "id": artist_id,
            "artist": row["name"],
            "mbid": row["mbid"] or None,
            "image": _image(row),
            "listens": row["listens"],
            "first_listen": first,
            "last_listen": last,
            "albums": [
                {"id": a["id"], "title": a["title"], "listens": a["listens"], "image": _image(a)}
                for a in albums
            ],
            "tracks": [
                {"id": t["id"], "title": t["title"], "listens": t["listens"]} for t in tracks
            ],
            "per_month": await self._per_month("artists", artist_id, first, last, zone),
            "links": _links(row, "artist"),
            "tz": zones.zone_name(zone),
        }

    async def album_id(self, artist: str, title: str) -> int:
        found = await library.album_by_name(self._db, artist, title)
        if found is None:
            raise NotFoundError(f"no album {title!r} by {artist!r}")
        return found

    async def artist_id(self, name: str) -> int:
        found = await library.artist_by_name(self._db, name)
        if found is None:
            raise NotFoundError(f"no artist {name!r}")
        return found

    async def year(self, year: int, zone: dt.tzinfo) -> dict[str, Any]:
        """A year in review: totals, top fives, artists first heard, the busiest day, the
        longest run of days with listens, listens per month."""
        low = zones.midnight(dt.date(year, 1, 1), zone)
        high = zones.midnight(dt.date(year + 1, 1, 1), zone) if year < dt.MAXYEAR else 2**53
        days = await totals.local_counts(self._db, low, high, zone, unit=zones.DAY)
        listens = sum(days.values())
        figures = await library.year_figures(self._db, low, high, top=TOP_OF_PAGE, fresh=PAGE_LIST)
        new_artists = await self._ranked("artists", figures["fresh"], None)
        busiest = max(sorted(days.items()), key=lambda item: item[1], default=None)
        months: Counter[int] = Counter()
        for day, n in days.items():
            months[zones.day_of(day).month] += n
        return {
            "year": year,
            "tz": zones.zone_name(zone),
            "since": low,
            "until": high,
            "listens": listens,
            "artists": figures["artists"],
            "albums": figures["albums"],
            "tracks": figures["tracks"],
            "days_with_listens": len(days),
            "top_artists": await self._ranked("artists", figures["top_artists"], None),
            "top_albums": await self._ranked("albums", figures["top_albums"], None),
            "top_tracks": await self._ranked("tracks", figures["top_tracks"], None),
            "new_artists_count": figures["new_artists"],
            "new_artists": [
                {key: a[key] for key in ("id", "artist", "listens", "image")} for a in new_artists
            ],
            "busiest_day": (
                {"day": zones.day_of(busiest[0]).isoformat(), "listens": busiest[1]}
                if busiest
                else None
            ),
            "longest_streak": _longest_run(days),
            "per_month": [
                {"month": f"{year:04d}-{month:02d}", "listens": months.get(month, 0)}
                for month in range(1, 13)
            ],
        }

    async def on_this_day(self, day: dt.date | None, zone: dt.tzinfo) -> dict[str, Any]:
        """The listens of this date (today in ``zone`` by default) in each earlier year."""
        if day is None:
            day = zones.local_date(int(time.time()), zone)
        span = await library.history_span(self._db)
        years: list[dict[str, Any]] = []
        if span is not None:
            first_year = zones.local_date(span[0], zone).year
            for year in range(day.year - 1, first_year - 1, -1):
                try:
                    then = day.replace(year=year)
                except ValueError:  # 29 February in a common year
                    continue
                low = zones.midnight(then, zone)
                high = zones.midnight(then + dt.timedelta(days=1), zone)
                count = await history.count_window(self._db, low, high)
                if count:
                    listens = await library.listens_between(
                        self._db, low, high, ON_THIS_DAY_LISTENS
                    )
                    years.append(
                        {"year": year, "date": then.isoformat(), "listens": count, "first": listens}
                    )
        return {"date": day.isoformat(), "tz": zones.zone_name(zone), "years": years}

    async def _per_month(
        self, kind: Kind, item_id: int, first: Any, last: Any, zone: dt.tzinfo
    ) -> list[dict[str, Any]]:
        if first is None or last is None:
            return []
        days = await totals.local_counts(
            self._db,
            first.timestamp,
            last.timestamp + 1,
            zone,
            unit=zones.DAY,
            only=(kind, item_id),
        )
        return _buckets(days, first.timestamp, last.timestamp + 1, "month", zone)


def _links(row: Row, what: Literal["album", "artist"]) -> dict[str, str | None]:
    spotify = row["spotify_id"]
    return {
        "lastfm": row["url"] or None,
        "spotify": f"https://open.spotify.com/{what}/{spotify}" if spotify else None,
    }


DayStep = Callable[[dt.date], dt.date]
_CALENDAR: dict[str, tuple[DayStep, DayStep]] = {
    # bucket: (the first day of the bucket holding a day, the first day of the next bucket)
    "day": (lambda day: day, lambda start: start + dt.timedelta(days=1)),
    "week": (  # Monday to Sunday (ISO 8601)
        lambda day: day - dt.timedelta(days=day.weekday()),
        lambda start: start + dt.timedelta(days=7),
    ),
    "month": (
        lambda day: day.replace(day=1),
        lambda start: dt.date(start.year + start.month // 12, start.month % 12 + 1, 1),
    ),
    "year": (
        lambda day: day.replace(month=1, day=1),
        lambda start: start.replace(year=start.year + 1),
    ),
}


def _buckets(
    days: Counter[int], since: int, until: int, bucket: Bucket, zone: dt.tzinfo
) -> list[dict[str, Any]]:
    """Every bucket from the one holding ``since`` to the one holding ``until - 1``."""
    start_of, after = _CALENDAR[bucket]
    sums: Counter[dt.date] = Counter()
    for day, n in days.items():
        sums[start_of(zones.day_of(day))] += n
    start = start_of(zones.local_date(since, zone))
    last = start_of(zones.local_date(until - 1, zone))
    found: list[dict[str, Any]] = []
    while start <= last:
        found.append(
            {
                "start": zones.midnight(start, zone),
                "date": start.isoformat(),
                "listens": sums.get(start, 0),
            }
        )
        start = after(start)
    return found


def _longest_run(days: Counter[int]) -> dict[str, Any] | None:
    """The longest run of consecutive days with listens (the earliest of equal ones)."""
    best: tuple[int, int] | None = None  # (length, first day)
    run_start, previous = None, None
    for day in sorted(days):
        if previous is None or day != previous + 1:
            run_start = day
        previous = day
        assert run_start is not None
        length = day - run_start + 1
        if best is None or length > best[0]:
            best = (length, run_start)
    if best is None:
        return None
    return {
        "days": best[0],
        "first": zones.day_of(best[1]).isoformat(),
        "last": zones.day_of(best[1] + best[0] - 1).isoformat(),
    }
