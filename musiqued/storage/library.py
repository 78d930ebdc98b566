"""The library's reads: listens per local day or hour, top lists of a period, search,
an album's and an artist's listens (``migrations.SCHEMA_LIBRARY`` adds their indexes).

Periods are ``[low, high)`` in Unix seconds; the running totals are read in
``storage/totals.py``.
"""

from __future__ import annotations

import bisect
import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from musiqued.models import Listen
from musiqued.storage.db import Database, Row
from musiqued.storage.history import Cursor
from musiqued.storage.listens import LISTEN_COLUMNS, LISTEN_FROM, listen_of
from musiqued.storage.totals import COLUMN, Kind, period_pieces, period_sql, period_values

HOURS_PER_WEEK = 168
MONDAY_SHIFT = 72
"""Hours from a Monday 00:00 to 1970-01-01 00:00 (a Thursday): hour ``h`` since the epoch
is hour ``(h + 72) % 168`` of its week."""

_TOTALS: dict[Kind, tuple[str, str]] = {
    "artists": ("artist_totals", "artist_id"),
    "albums": ("album_totals", "album_id"),
    "tracks": ("track_totals", "track_id"),
}


async def top_ids(
    db: Database, kind: Kind, low: int | None, high: int | None, limit: int
) -> list[tuple[int, int]]:
    """``(id, listens)`` of the period's most listened items, most first (ties: oldest id);
    the whole history (both bounds None) from the running totals."""
    if low is None and high is None:
        table, key = _TOTALS[kind]
        rows = await db.fetchall(
            f"SELECT {key} AS id, n FROM {table} WHERE n > 0 ORDER BY n DESC, {key} LIMIT ?",
            (limit,),
        )
    else:
        pieces = period_pieces(_low(low), _high(high))
        rows = await db.fetchall(
            f"SELECT id, n FROM ({period_sql(kind, pieces)}) ORDER BY n DESC, id LIMIT :limit",
            {**period_values(pieces), "limit": limit},
        )
    return [(int(r["id"]), int(r["n"])) for r in rows]


async def ranks(
    db: Database, kind: Kind, low: int, high: int, ids: Sequence[int]
) -> dict[int, int]:
    """The rank in ``[low, high)`` of each of ``ids`` that has listens then: one more than
    the items heard more often, and than those heard as often with a smaller id."""
    if not ids:
        return {}
    pieces = period_pieces(low, high)
    # Every item's count as two JSON arrays in one read (the same rows, in the same order):
    # counted here without sorting the items, as a ranking in SQL would.
    row = await db.fetchone(
        "SELECT json_group_array(id) AS ids, json_group_array(n) AS counts"
        f" FROM ({period_sql(kind, pieces)})",
        period_values(pieces),
    )
    assert row is not None
    items: list[int] = json.loads(row["ids"])
    counts: list[int] = json.loads(row["counts"])
    wanted = set(ids)
    heard = {item: n for item, n in zip(items, counts, strict=True) if item in wanted}
    ties: dict[int, list[int]] = {n: [] for n in heard.values()}
    for item, n in zip(items, counts, strict=True):
        if n in ties:
            ties[n].append(item)
    per_count = Counter(counts)
    for same in ties.values():
        same.sort()
    return {
        item: 1
        + sum(k for count, k in per_count.items() if count > n)
        + bisect.bisect_left(ties[n], item)
        for item, n in heard.items()
    }


_ITEMS: dict[Kind, str] = {
    "artists": "SELECT ar.id, ar.name AS artist, ar.id AS artist_id, NULL AS title,"
    " ar.image_spotify, ar.image_lastfm FROM artists ar WHERE ar.id IN ({marks})",
    "albums": "SELECT al.id, ar.name AS artist, ar.id AS artist_id, al.title,"
    " al.image_spotify, al.image_lastfm"
    " FROM albums al JOIN artists ar ON ar.id = al.artist_id WHERE al.id IN ({marks})",
    "tracks": "SELECT t.id, ar.name AS artist, ar.id AS artist_id, t.title,"
    " ar.image_spotify, ar.image_lastfm"
    " FROM tracks t JOIN artists ar ON ar.id = t.artist_id WHERE t.id IN ({marks})",
}


async def items(db: Database, kind: Kind, ids: Sequence[int]) -> dict[int, Row]:
    """Names and image URLs of ``ids`` (a track shows its artist's image)."""
    if not ids:
        return {}
    rows = await db.fetchall(_ITEMS[kind].format(marks=",".join("?" * len(ids))), tuple(ids))
    return {int(r["id"]): r for r in rows}


def match_terms(text: str) -> list[str]:
    """FTS5 queries, one per word of ``text`` (a prefix of a word of the names), the longest
    first; empty when ``text`` holds no letter or digit. Each word is quoted and stripped to
    letters and digits, so no character of ``text`` is FTS syntax."""
    words = {"".join(c for c in word if c.isalnum()) for word in text.split()}
    return [f'"{word}"*' for word in sorted(words - {""}, key=lambda w: (-len(w), w))]


_TRACKS_MATCHING = "(SELECT rowid FROM track_search WHERE track_search MATCH :w{i})"
_ALBUMS_MATCHING = "(SELECT rowid FROM album_search WHERE album_search MATCH :w{i})"


async def search_page(
    db: Database,
    *,
    terms: Sequence[str],
    low: int | None,
    high: int | None,
    before: Cursor | None,
    limit: int,
) -> tuple[list[Listen], Cursor | None]:
    """Listens newest first, older than ``before``, in ``[low, high)``; with ``terms``, only
    those where each term matches the track (with its artist) or the album. The rarest term
    decides the plan (``FEW_MATCHES``), so a page costs little for rare and common words."""
    start = before if before is not None else Cursor(_high(high), 0)
    values: dict[str, object] = {
        "low": _low(low),
        "ts": start.timestamp,
        "id": start.listen_id,
        "limit": limit + 1,
    }
    where = "(l.timestamp, l.id) < (:ts, :id) AND l.timestamp >= :low"
    counted = sorted([(await _matches(db, term), term) for term in terms])
    for i, (_, term) in enumerate(counted):
        values[f"w{i}"] = term
        # "+": each word filters the listens found otherwise, never drives the search
        # through the track index (which would gather and sort all of a common word's).
        where += (
            f" AND (+l.track_id IN {_TRACKS_MATCHING.format(i=i)}"
            f" OR +l.album_id IN {_ALBUMS_MATCHING.format(i=i)})"
        )
    if counted and counted[0][0] <= FEW_MATCHES:
        # The rarest word matches few listens: find them through the listens' track and
        # album indexes rather than walk the history until enough turn up.
        window = "(timestamp, id) < (:ts, :id) AND timestamp >= :low"
        where += (
            f" AND l.id IN (SELECT id FROM listening_history WHERE {window}"
            f" AND track_id IN {_TRACKS_MATCHING.format(i=0)}"
            f" UNION SELECT id FROM listening_history WHERE {window}"
            f" AND album_id IN {_ALBUMS_MATCHING.format(i=0)})"
        )
    rows = await db.fetchall(
        f"SELECT {LISTEN_COLUMNS} FROM {LISTEN_FROM} WHERE {where}"
        " ORDER BY l.timestamp DESC, l.id DESC LIMIT :limit",
        values,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = Cursor(rows[-1]["timestamp"], rows[-1]["id"]) if more and rows else None
    return [listen_of(row) for row in rows], cursor


FEW_MATCHES = 20_000
"""Up to this many listens, a search collects its word's listens through the indexes;
beyond, it walks the history newest first, where matches are then frequent."""


_MANY_ITEMS = 2000
"""A word matching more tracks or albums than this is common: its listens are not summed."""


async def _matches(db: Database, term: str) -> int:
    """How many listens ``term`` matches (from the running totals), or more than
    ``FEW_MATCHES`` for a word found in many names (not counted: that costs time)."""
    items = await db.scalar(
        "SELECT (SELECT COUNT(*) FROM (SELECT rowid FROM track_search"
        "  WHERE track_search MATCH :w LIMIT :cap))"
        " + (SELECT COUNT(*) FROM (SELECT rowid FROM album_search"
        "  WHERE album_search MATCH :w LIMIT :cap))",
        {"w": term, "cap": _MANY_ITEMS + 1},
    )
    if isinstance(items, int) and items > _MANY_ITEMS:
        return FEW_MATCHES + 1
    value = await db.scalar(
        "SELECT COALESCE((SELECT SUM(n) FROM track_totals WHERE track_id IN"
        " (SELECT rowid FROM track_search WHERE track_search MATCH :w)), 0)"
        " + COALESCE((SELECT SUM(n) FROM album_totals WHERE album_id IN"
        " (SELECT rowid FROM album_search WHERE album_search MATCH :w)), 0)",
        {"w": term},
    )
    return value if isinstance(value, int) else 0


async def album_row(db: Database, album_id: int) -> Row | None:
    return await db.fetchone(
        "SELECT al.*, ar.name AS artist, COALESCE(t.n, 0) AS listens FROM albums al"
        " JOIN artists ar ON ar.id = al.artist_id"
        " LEFT JOIN album_totals t ON t.album_id = al.id WHERE al.id = ?",
        (album_id,),
    )


async def album_by_name(db: Database, artist: str, title: str) -> int | None:
    value = await db.scalar(
        "SELECT al.id FROM albums al JOIN artists ar ON ar.id = al.artist_id"
        " WHERE ar.name_key = ? AND al.title_key = ?",
        (artist.casefold(), title.casefold()),
    )
    return value if isinstance(value, int) else None


async def artist_by_name(db: Database, name: str) -> int | None:
    value = await db.scalar("SELECT id FROM artists WHERE name_key = ?", (name.casefold(),))
    return value if isinstance(value, int) else None


async def album_tracks(db: Database, album_id: int) -> list[Row]:
    """The album's tracks with their listens on it, most first."""
    return await db.fetchall(
        "SELECT t.id, t.title, g.n AS listens FROM"
        " (SELECT track_id, COUNT(*) AS n FROM listening_history WHERE album_id = ?"
        "  GROUP BY track_id) g JOIN tracks t ON t.id = g.track_id"
        " ORDER BY g.n DESC, t.title_key",
        (album_id,),
    )


async def edges(db: Database, kind: Kind, item_id: int) -> tuple[Listen | None, Listen | None]:
    """The first and the last listen of an artist, album or track."""
    column = COLUMN[kind]
    # An album's listens have no index in time order: "+" sorts its few listens rather
    # than walk the whole history's timestamp index until one of them turns up.
    order_by = "+l.timestamp" if kind == "albums" else "l.timestamp"
    found: list[Listen | None] = []
    for order in ("ASC", "DESC"):
        row = await db.fetchone(
            f"SELECT {LISTEN_COLUMNS} FROM {LISTEN_FROM} WHERE l.{column} = ?"
            f" ORDER BY {order_by} {order}, l.id {order} LIMIT 1",
            (item_id,),
        )
        found.append(listen_of(row) if row is not None else None)
    return found[0], found[1]


async def artist_row(db: Database, artist_id: int) -> Row | None:
    return await db.fetchone(
        "SELECT ar.*, COALESCE(t.n, 0) AS listens FROM artists ar"
        " LEFT JOIN artist_totals t ON t.artist_id = ar.id WHERE ar.id = ?",
        (artist_id,),
    )


async def artist_albums(db: Database, artist_id: int, limit: int) -> list[Row]:
    return await db.fetchall(
        "SELECT al.id, al.title, al.image_spotify, al.image_lastfm, t.n AS listens"
        " FROM albums al JOIN album_totals t ON t.album_id = al.id"
        " WHERE al.artist_id = ? AND t.n > 0 ORDER BY t.n DESC, al.title_key LIMIT ?",
        (artist_id, limit),
    )


async def artist_tracks(db: Database, artist_id: int, limit: int) -> list[Row]:
    return await db.fetchall(
        "SELECT tr.id, tr.title, t.n AS listens"
        " FROM tracks tr JOIN track_totals t ON t.track_id = tr.id"
        " WHERE tr.artist_id = ? AND t.n > 0 ORDER BY t.n DESC, tr.title_key LIMIT ?",
        (artist_id, limit),
    )


_YEAR = """
WITH a AS MATERIALIZED ({artists}),
al AS MATERIALIZED ({albums}),
t AS MATERIALIZED ({tracks}),
fresh AS MATERIALIZED (
    SELECT id, n FROM a WHERE NOT EXISTS (
        SELECT 1 FROM listening_history e WHERE e.artist_id = a.id AND e.timestamp < :low)
)
SELECT
    (SELECT COUNT(*) FROM a) AS artists,
    (SELECT COUNT(*) FROM al) AS albums,
    (SELECT COUNT(*) FROM t) AS tracks,
    (SELECT COUNT(*) FROM fresh) AS new_artists,
    (SELECT json_group_array(json_array(id, n)) FROM
        (SELECT id, n FROM a ORDER BY n DESC, id LIMIT :top)) AS top_artists,
    (SELECT json_group_array(json_array(id, n)) FROM
        (SELECT id, n FROM al ORDER BY n DESC, id LIMIT :top)) AS top_albums,
    (SELECT json_group_array(json_array(id, n)) FROM
        (SELECT id, n FROM t ORDER BY n DESC, id LIMIT :top)) AS top_tracks,
    (SELECT json_group_array(json_array(id, n)) FROM
        (SELECT id, n FROM fresh ORDER BY n DESC, id LIMIT :fresh)) AS fresh
"""


async def year_figures(
    db: Database, low: int, high: int, *, top: int, fresh: int
) -> dict[str, Any]:
    """Distinct artists, albums and tracks of ``[low, high)``, its top ``top`` of each as
    ``(id, listens)``, and the artists first heard then (``new_artists`` of them; the
    ``fresh`` most listened as ``(id, listens)``)."""
    pieces = period_pieces(low, high)
    sql = _YEAR.format(
        artists=period_sql("artists", pieces),
        albums=period_sql("albums", pieces),
        tracks=period_sql("tracks", pieces),
    )
    values: dict[str, object] = {**period_values(pieces), "low": low, "top": top, "fresh": fresh}
    row = await db.fetchone(sql, values)
    assert row is not None
    figures: dict[str, Any] = {
        key: row[key] for key in ("artists", "albums", "tracks", "new_artists")
    }
    for key in ("top_artists", "top_albums", "top_tracks", "fresh"):
        figures[key] = [(int(i), int(n)) for i, n in json.loads(row[key])]
    return figures


async def listens_between(db: Database, low: int, high: int, limit: int) -> list[Listen]:
    rows = await db.fetchall(
        f"SELECT {LISTEN_COLUMNS} FROM {LISTEN_FROM} WHERE l.timestamp >= ? AND l.timestamp < ?"
        " ORDER BY l.timestamp, l.id LIMIT ?",
        (low, high, limit),
    )
    return [listen_of(row) for row in rows]


async def history_span(db: Database) -> tuple[int, int] | None:
    """The first and last stored timestamps."""
    # Two subqueries: each reads one end of the timestamp index; MIN and MAX together in one
    # SELECT would read the whole table.
    row = await db.fetchone(
        "SELECT (SELECT MIN(timestamp) FROM listening_history) AS lo,"
        " (SELECT MAX(timestamp) FROM listening_history) AS hi"
    )
    if row is None or row["lo"] is None:
        return None
    return int(row["lo"]), int(row["hi"])


_NO_END = 2**62


def _low(low: int | None) -> int:
    return low if low is not None else -_NO_END


def _high(high: int | None) -> int:
    return high if high is not None else _NO_END
