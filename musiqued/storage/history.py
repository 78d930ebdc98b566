"""Reading the history: keyset pages, period statistics, per-day counts.

Every query is bounded by ``[since, until)`` on ``listening_history.timestamp`` (``until``
exclusive, like Last.fm's ``to``) and walks the ``(timestamp)`` index, whose entries end
with the rowid: that is exactly the ``(timestamp, id)`` order pages are cut in, so a page
costs the same at the start and at the end of a million listens.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from musiqued.models import Listen
from musiqued.storage.db import Database
from musiqued.storage.listens import LISTEN_COLUMNS, LISTEN_FROM, listen_of

NO_END = 2**62
"""An ``until`` past any real timestamp, so queries keep one shape."""
DAY = 86400
QUARTER = 900
"""The running totals' unit (``quarter_totals``): listens per UTC quarter hour."""
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended: the last listen's ``(timestamp, id)``; opaque to clients."""

    timestamp: int
    listen_id: int

    def encode(self) -> str:
        return f"{self.timestamp}.{self.listen_id}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Raises ``ValueError`` for anything ``encode`` cannot have produced."""
        timestamp, sep, listen_id = text.partition(".")
        if not sep or not timestamp.lstrip("-").isdecimal() or not listen_id.isdecimal():
            raise ValueError(f"{text!r} is not a cursor returned by history.list")
        cursor = cls(int(timestamp), int(listen_id))
        if abs(cursor.timestamp) >= NO_END or cursor.listen_id >= 2**63:
            raise ValueError(f"{text!r} is not a cursor returned by history.list")
        return cursor


def _bounds(since: int | None, until: int | None) -> tuple[int, int]:
    return (since if since is not None else -NO_END, until if until is not None else NO_END)


async def list_page(
    db: Database,
    *,
    since: int | None = None,
    until: int | None = None,
    after: Cursor | None = None,
    limit: int = 1000,
    shape: Callable[[Listen], T],
) -> tuple[list[T], Cursor | None]:
    """Listens oldest first after ``after``, each as ``shape(listen)`` (as
    ``listens.recent_listens`` makes them); the cursor is None when nothing follows."""
    low, high = _bounds(since, until)
    start = after if after is not None else Cursor(low, -1)
    found = await db.fetch_large_as(
        f"SELECT {LISTEN_COLUMNS} FROM {LISTEN_FROM}"
        " WHERE (l.timestamp, l.id) > (?, ?) AND l.timestamp >= ? AND l.timestamp < ?"
        " ORDER BY l.timestamp, l.id LIMIT ?",
        (start.timestamp, start.listen_id, low, high, limit + 1),
        lambda row: (shape(listen_of(row)), row["timestamp"], row["id"]),
    )
    more = len(found) > limit
    found = found[:limit]
    cursor = Cursor(found[-1][1], found[-1][2]) if more and found else None
    return [listen for listen, _, _ in found], cursor


# One scan of the period, grouped per (track, album) into a small materialised table;
# every figure is then read from that table instead of scanning the listens again.
_SUMMARY = """
WITH g AS MATERIALIZED (
    SELECT artist_id, album_id, track_id, COUNT(*) AS n
    FROM listening_history
    WHERE timestamp >= :low AND timestamp < :high
    GROUP BY track_id, album_id
)
SELECT
    (SELECT COALESCE(SUM(n), 0) FROM g) AS listens,
    (SELECT COUNT(DISTINCT artist_id) FROM g) AS artists,
    (SELECT COUNT(DISTINCT album_id) FROM g) AS albums,
    (SELECT COUNT(DISTINCT track_id) FROM g) AS tracks,
    (SELECT json_group_array(json_array(name, n)) FROM (
        SELECT ar.name AS name, top.n AS n
        FROM (SELECT artist_id, SUM(n) AS n FROM g GROUP BY artist_id
              ORDER BY n DESC, artist_id LIMIT :top) top
        JOIN artists ar ON ar.id = top.artist_id
        ORDER BY top.n DESC, ar.name_key)) AS top_artists,
    (SELECT json_group_array(json_array(artist, title, n)) FROM (
        SELECT ar.name AS artist, al.title AS title, top.n AS n
        FROM (SELECT album_id, SUM(n) AS n FROM g WHERE album_id IS NOT NULL
              GROUP BY album_id ORDER BY n DESC, album_id LIMIT :top) top
        JOIN albums al ON al.id = top.album_id
        JOIN artists ar ON ar.id = al.artist_id
        ORDER BY top.n DESC, ar.name_key, al.title_key)) AS top_albums,
    (SELECT json_group_array(json_array(artist, title, n)) FROM (
        SELECT ar.name AS artist, t.title AS title, top.n AS n
        FROM (SELECT track_id, SUM(n) AS n FROM g
              GROUP BY track_id ORDER BY n DESC, track_id LIMIT :top) top
        JOIN tracks t ON t.id = top.track_id
        JOIN artists ar ON ar.id = t.artist_id
        ORDER BY top.n DESC, ar.name_key, t.title_key)) AS top_tracks
"""

# The whole history, from the running totals (migrations.SCHEMA_V2): the same figures as
# ``_SUMMARY`` over everything, ties broken the same way, without reading every listen.
_SUMMARY_ALL = """
SELECT
    (SELECT COALESCE(SUM(n), 0) FROM day_totals) AS listens,
    (SELECT COUNT(*) FROM artist_totals WHERE n > 0) AS artists,
    (SELECT COUNT(*) FROM album_totals WHERE n > 0) AS albums,
    (SELECT COUNT(*) FROM track_totals WHERE n > 0) AS tracks,
    (SELECT json_group_array(json_array(name, n)) FROM (
        SELECT ar.name AS name, top.n AS n
        FROM (SELECT artist_id, n FROM artist_totals WHERE n > 0
              ORDER BY n DESC, artist_id LIMIT :top) top
        JOIN artists ar ON ar.id = top.artist_id
        ORDER BY top.n DESC, ar.name_key)) AS top_artists,
    (SELECT json_group_array(json_array(artist, title, n)) FROM (
        SELECT ar.name AS artist, al.title AS title, top.n AS n
        FROM (SELECT album_id, n FROM album_totals WHERE n > 0
              ORDER BY n DESC, album_id LIMIT :top) top
        JOIN albums al ON al.id = top.album_id
        JOIN artists ar ON ar.id = al.artist_id
        ORDER BY top.n DESC, ar.name_key, al.title_key)) AS top_albums,
    (SELECT json_group_array(json_array(artist, title, n)) FROM (
        SELECT ar.name AS artist, t.title AS title, top.n AS n
        FROM (SELECT track_id, n FROM track_totals WHERE n > 0
              ORDER BY n DESC, track_id LIMIT :top) top
        JOIN tracks t ON t.id = top.track_id
        JOIN artists ar ON ar.id = t.artist_id
        ORDER BY top.n DESC, ar.name_key, t.title_key)) AS top_tracks
"""

_EDGE = (
    f"SELECT {LISTEN_COLUMNS} FROM {LISTEN_FROM}"
    " WHERE l.timestamp >= ? AND l.timestamp < ? ORDER BY l.timestamp {order}, l.id {order}"
    " LIMIT 1"
)


async def summary(
    db: Database, *, since: int | None = None, until: int | None = None, top: int = 10
) -> dict[str, Any]:
    """The ``stats.summary`` figures for ``[since, until)`` (``first_listen`` and
    ``last_listen`` as ``Listen``); ``per_day`` is the service's, in the user's zone."""
    low, high = _bounds(since, until)
    everything = since is None and until is None
    row = await db.fetchone(
        _SUMMARY_ALL if everything else _SUMMARY, {"low": low, "high": high, "top": top}
    )
    assert row is not None
    first = await db.fetchone(_EDGE.format(order="ASC"), (low, high))
    last = await db.fetchone(_EDGE.format(order="DESC"), (low, high))
    return {
        "since": since,
        "until": until,
        "listens": row["listens"],
        "artists": row["artists"],
        "albums": row["albums"],
        "tracks": row["tracks"],
        "first_listen": listen_of(first) if first else None,
        "last_listen": listen_of(last) if last else None,
        "top_artists": [
            {"artist": name, "listens": n} for name, n in json.loads(row["top_artists"])
        ],
        "top_albums": [
            {"artist": artist, "album": title, "listens": n}
            for artist, title, n in json.loads(row["top_albums"])
        ],
        "top_tracks": [
            {"artist": artist, "title": title, "listens": n}
            for artist, title, n in json.loads(row["top_tracks"])
        ],
    }


async def window_identities(
    db: Database, low: int, high: int
) -> list[tuple[Listen, tuple[int, str, str]]]:
    """Every listen in ``[low, high)`` with its identity, for comparing with Last.fm."""
    rows = await db.fetchall(
        f"SELECT {LISTEN_COLUMNS}, ar.name_key AS artist_key, t.title_key AS title_key"
        f" FROM {LISTEN_FROM} WHERE l.timestamp >= ? AND l.timestamp < ?"
        " ORDER BY l.timestamp, l.id",
        (low, high),
    )
    return [(listen_of(r), (r["timestamp"], r["artist_key"], r["title_key"])) for r in rows]


# The exports' columns, computed by SQLite as the exports write them: ``date`` in ISO 8601
# UTC (``models.iso_utc``'s text for every storable timestamp, 1970 to 9999); an empty
# album or MBID is NULL.
EXPORT_SQL = f"""
SELECT
    l.timestamp, strftime('%Y-%m-%dT%H:%M:%SZ', l.timestamp, 'unixepoch'), ar.name, t.title,
    NULLIF(al.title, ''), NULLIF(ar.mbid, ''), NULLIF(al.mbid, ''), NULLIF(l.track_mbid, ''),
    l.source, l.origin, NULLIF(l.spotify_uri, ''), l.loved
FROM {LISTEN_FROM}
WHERE l.timestamp >= ? AND l.timestamp < ?
ORDER BY l.timestamp, l.id
"""
EXPORT_FIELDS = (
    "timestamp",
    "date",
    "artist",
    "title",
    "album",
    "artist_mbid",
    "album_mbid",
    "track_mbid",
    "source",
    "origin",
    "spotify_id",
    "loved",
)
"""The fields of a listen, in the order of ``export_rows``' tuples (and of every export)."""


def export_rows(
    db: Database, *, since: int | None, until: int | None, batch: int
) -> AsyncGenerator[list[tuple[Any, ...]], None]:
    """Every listen of ``[since, until)`` oldest first, as tuples of ``EXPORT_FIELDS``, in
    batches of up to ``batch`` (``Database.scan``: iterate it inside ``contextlib.aclosing``)."""
    return db.scan(EXPORT_SQL, _bounds(since, until), batch)


async def oldest_timestamp(db: Database) -> int | None:
    """When the oldest stored listen was, or None with nothing stored."""
    value = await db.scalar("SELECT MIN(timestamp) FROM listening_history")
    return value if isinstance(value, int) else None


async def count_window(db: Database, since: int | None, until: int | None) -> int:
    """Listens in ``[since, until)`` (None: unbounded on that side): the whole quarter hours
    inside from the running totals (``quarter_totals``), the parts at either end from the
    listens, so the count costs a few thousand rows at most, whatever the history's size."""
    low, high = _bounds(since, until)
    first = -(-max(low, 0) // QUARTER)
    end = min(high, NO_END) // QUARTER
    if first >= end:
        value = await db.scalar(
            "SELECT COUNT(*) FROM listening_history WHERE timestamp >= ? AND timestamp < ?",
            (low, high),
        )
    else:
        value = await db.scalar(
            "SELECT (SELECT COALESCE(SUM(n), 0) FROM quarter_totals"
            " WHERE quarter >= ? AND quarter < ?)"
            " + (SELECT COUNT(*) FROM listening_history WHERE timestamp >= ? AND timestamp < ?)"
            " + (SELECT COUNT(*) FROM listening_history WHERE timestamp >= ? AND timestamp < ?)",
            (first, end, low, first * QUARTER, end * QUARTER, high),
        )
    return int(value) if isinstance(value, int) else 0
