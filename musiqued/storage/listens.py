"""Listens and their artists, albums and tracks.

``write_page`` is the import, tracker, verify and file-import write path: a page of
scrobbles stored inside the caller's transaction (so a job's checkpoint commits with the
rows it covers), one statement per table, then the running totals of the listens it added.
Every lookup goes through a unique index and nothing scans the history: a page's cost grows
with the depth of the indexes it changes, not in proportion to the history.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import aiosqlite

from musiqued.models import Listen, Scrobble, utc_day
from musiqued.storage.db import Database, Row
from musiqued.storage.migrations import (
    JULY_YEAR_LEVELS,
    PERIOD_KINDS,
    PERIOD_LEVELS,
    period_key,
)

Source = Literal["import", "tracker", "file"]
T = TypeVar("T")

_PAGE_ROWS = 200
"""The rows of every ``VALUES`` list below: a whole Last.fm page. A shorter list is padded
with rows of NULLs, which match no artist and are left out: each statement then has one
text, which SQLite prepares once and keeps (a text per length would fill the connection's
statement cache with large statements)."""


def _page_values(columns: int) -> str:
    return ", ".join(["(" + ", ".join("?" * columns) + ")"] * _PAGE_ROWS)


# Each statement takes the page's rows as one ``VALUES`` list (``page``): SQLite runs it in
# one step, where ``executemany`` would take the interpreter's lock back for every row and
# wait for it whenever the event loop is busy.
_INSERT_ARTIST = f"""
INSERT INTO artists (name, name_key, mbid, url)
WITH page (name, name_key, mbid, url) AS (VALUES {_page_values(4)})
SELECT * FROM page WHERE name IS NOT NULL
ON CONFLICT (name_key) DO UPDATE SET
    mbid = CASE WHEN artists.mbid = '' THEN excluded.mbid ELSE artists.mbid END,
    url = CASE WHEN artists.url = '' THEN excluded.url ELSE artists.url END
WHERE (artists.mbid = '' AND excluded.mbid != '') OR (artists.url = '' AND excluded.url != '')
"""
# ``job_id``: the albums_enqueue trigger tags the new album's enrichment rows with the job
# and counts it on the job.
_INSERT_ALBUM = f"""
INSERT INTO albums (artist_id, title, title_key, mbid, job_id)
WITH page (title, title_key, mbid, job_id, artist_key) AS (VALUES {_page_values(5)})
SELECT a.id, p.title, p.title_key, p.mbid, p.job_id
FROM page p CROSS JOIN artists a WHERE a.name_key = p.artist_key
ON CONFLICT (artist_id, title_key) DO UPDATE SET mbid = excluded.mbid
WHERE albums.mbid = '' AND excluded.mbid != ''
"""
_INSERT_TRACK = f"""
INSERT INTO tracks (artist_id, title, title_key, mbid, url)
WITH page (title, title_key, mbid, url, artist_key) AS (VALUES {_page_values(5)})
SELECT a.id, p.title, p.title_key, p.mbid, p.url
FROM page p CROSS JOIN artists a WHERE a.name_key = p.artist_key
ON CONFLICT (artist_id, title_key) DO UPDATE SET
    mbid = CASE WHEN tracks.mbid = '' THEN excluded.mbid ELSE tracks.mbid END,
    url = CASE WHEN tracks.url = '' THEN excluded.url ELSE tracks.url END
WHERE (tracks.mbid = '' AND excluded.mbid != '') OR (tracks.url = '' AND excluded.url != '')
"""
_INSERT_LISTEN = f"""
INSERT INTO listening_history
    (timestamp, date, track_id, artist_id, album_id, source, loved, job_id, track_mbid,
     origin, spotify_uri)
WITH page (timestamp, date, album_key, source, loved, job_id, track_mbid, origin, spotify_uri,
           title_key, artist_key) AS (VALUES {_page_values(11)})
SELECT p.timestamp, p.date, t.id, a.id,
       (SELECT al.id FROM albums al WHERE al.artist_id = a.id AND al.title_key = p.album_key),
       p.source, p.loved, p.job_id, p.track_mbid, p.origin, p.spotify_uri
FROM page p CROSS JOIN artists a CROSS JOIN tracks t
WHERE a.name_key = p.artist_key AND t.artist_id = a.id AND t.title_key = p.title_key
ON CONFLICT (timestamp, track_id) DO NOTHING
"""
_REFRESH_LISTEN = """
UPDATE listening_history SET
    album_id = (SELECT al.id FROM albums al
                WHERE al.artist_id = listening_history.artist_id AND al.title_key = ?),
    loved = ?,
    track_mbid = ?
WHERE timestamp = ? AND track_id = (
    SELECT t.id FROM tracks t JOIN artists a ON a.id = t.artist_id
    WHERE a.name_key = ? AND t.title_key = ?)
"""
# The page's new listens (ids above the largest before the page) added to the running
# totals (migrations: SCHEMA_V2, V4, SCHEMA_PERIOD_TOTALS, SCHEMA_JULY_YEAR_TOTALS). The "+" keeps SQLite on the
# rowid range of the new rows: left to itself it reads a whole index to skip the GROUP BY's
# sort, a cost that grows with the history.
_ROLLUPS = (
    """INSERT INTO day_totals (day, n)
    SELECT timestamp / 86400, COUNT(*) FROM listening_history WHERE id > ? GROUP BY +timestamp / 86400
    ON CONFLICT (day) DO UPDATE SET n = n + excluded.n""",
    """INSERT INTO hour_totals (hour, n)
    SELECT timestamp / 3600, COUNT(*) FROM listening_history WHERE id > ? GROUP BY +timestamp / 3600
    ON CONFLICT (hour) DO UPDATE SET n = n + excluded.n""",
    """INSERT INTO quarter_totals (quarter, n)
    SELECT timestamp / 900, COUNT(*) FROM listening_history WHERE id > ? GROUP BY +timestamp / 900
    ON CONFLICT (quarter) DO UPDATE SET n = n + excluded.n""",
    """INSERT INTO artist_totals (artist_id, n)
    SELECT artist_id, COUNT(*) FROM listening_history WHERE id > ? GROUP BY +artist_id
    ON CONFLICT (artist_id) DO UPDATE SET n = n + excluded.n""",
    """INSERT INTO album_totals (album_id, n)
    SELECT album_id, COUNT(*) FROM listening_history
    WHERE id > ? AND +album_id IS NOT NULL GROUP BY +album_id
    ON CONFLICT (album_id) DO UPDATE SET n = n + excluded.n""",
    """INSERT INTO track_totals (track_id, n)
    SELECT track_id, COUNT(*) FROM listening_history WHERE id > ? GROUP BY +track_id
    ON CONFLICT (track_id) DO UPDATE SET n = n + excluded.n""",
    *(
        f"""INSERT INTO {kind}_{level}s ({level}, {kind}_id, n)
    SELECT {period_key(level, "timestamp")}, {kind}_id, COUNT(*) FROM listening_history
    WHERE id > ? AND +{kind}_id IS NOT NULL GROUP BY 1, +{kind}_id
    ON CONFLICT ({level}, {kind}_id) DO UPDATE SET n = n + excluded.n"""
        for kind in PERIOD_KINDS
        for level in (*PERIOD_LEVELS, *JULY_YEAR_LEVELS)
    ),
)

# A track is one row per (artist, title), but Last.fm may give one title several MBIDs (one
# per release): the listen keeps the MBID it was scrobbled with, empty ones included.
LISTEN_COLUMNS = """
    l.id, l.timestamp, ar.name AS artist, t.title AS title, COALESCE(al.title, '') AS album,
    ar.mbid AS artist_mbid, COALESCE(al.mbid, '') AS album_mbid, l.track_mbid, l.source, l.loved,
    l.origin
"""
LISTEN_FROM = """
    listening_history l
    JOIN tracks t ON t.id = l.track_id
    JOIN artists ar ON ar.id = l.artist_id
    LEFT JOIN albums al ON al.id = l.album_id
"""


@dataclass(frozen=True, slots=True)
class PageStored:
    """What storing one page did; ``new`` lists the listens that were not stored before."""

    imported: int
    skipped: int
    refreshed: int
    new_albums: int
    """Albums created, or given the MBID they lacked (worth waking the enricher for)."""
    new: list[Listen]


def listen_of(row: Row) -> Listen:
    """A stored listen from a row starting with ``LISTEN_COLUMNS``."""
    return Listen(
        timestamp=row["timestamp"],
        artist=row["artist"],
        title=row["title"],
        album=row["album"],
        artist_mbid=row["artist_mbid"],
        album_mbid=row["album_mbid"],
        track_mbid=row["track_mbid"],
        source=row["source"],
        loved=bool(row["loved"]),
        origin=row["origin"],
    )


async def write_page(
    conn: aiosqlite.Connection,
    scrobbles: Sequence[Scrobble],
    *,
    source: Source,
    job_id: int | None,
    refresh: bool = False,
    want_new: bool = False,
) -> PageStored:
    """Store ``scrobbles`` inside the caller's open transaction.

    A listen already stored is skipped; with ``refresh`` its album, loved flag and MBID are
    set from the scrobble instead (counted as ``refreshed``). ``want_new``: read back the
    listens this page added (the tracker announces each).
    """
    if not scrobbles:
        return PageStored(0, 0, 0, 0, [])
    artists: dict[str, tuple[Any, ...]] = {}
    albums: dict[tuple[str, str], tuple[Any, ...]] = {}
    tracks: dict[tuple[str, str], tuple[Any, ...]] = {}
    listens: list[tuple[Any, ...]] = []
    for s in scrobbles:
        artist_key, title_key, album_key = (
            s.artist.casefold(),
            s.title.casefold(),
            s.album.casefold(),
        )
        artists.setdefault(artist_key, (s.artist, artist_key, s.artist_mbid, s.artist_url))
        if s.album:
            albums.setdefault(
                (artist_key, album_key), (s.album, album_key, s.album_mbid, job_id, artist_key)
            )
        tracks.setdefault(
            (artist_key, title_key), (s.title, title_key, s.track_mbid, s.track_url, artist_key)
        )
        listens.append(
            (
                s.timestamp,
                utc_day(s.timestamp),
                album_key,
                source,
                int(s.loved),
                job_id,
                s.track_mbid,
                s.origin,
                s.spotify_uri,
                title_key,
                artist_key,
            )
        )
    await _insert_all(conn, _INSERT_ARTIST, list(artists.values()))
    new_albums = await _insert_all(conn, _INSERT_ALBUM, list(albums.values()))
    await _insert_all(conn, _INSERT_TRACK, list(tracks.values()))
    async with conn.execute("SELECT COALESCE(MAX(id), 0) FROM listening_history") as cursor:
        row = await cursor.fetchone()
    before = int(row[0]) if row is not None else 0
    imported = await _insert_all(conn, _INSERT_LISTEN, listens)
    if imported:
        # Queued together, the connection's thread runs them back to back instead of
        # waiting for the event loop (busy with the next page's parse) between them.
        await asyncio.gather(*(conn.execute(rollup, (before,)) for rollup in _ROLLUPS))
    existing = len(scrobbles) - imported
    refreshed = 0
    if refresh and existing:
        await conn.executemany(
            _REFRESH_LISTEN, [(r[2], r[4], r[6], r[0], r[10], r[9]) for r in listens]
        )
        refreshed = existing
    new: list[Listen] = []
    if want_new and imported:
        rows = await conn.execute_fetchall(
            # "+": sort the page's few rows rather than walk the timestamp index (the whole
            # history) in order, which SQLite prefers otherwise.
            f"SELECT {LISTEN_COLUMNS} FROM {LISTEN_FROM} WHERE l.id > ? ORDER BY +l.timestamp, l.id",
            (before,),
        )
        new = [listen_of(r) for r in rows]
    return PageStored(
        imported=imported,
        skipped=0 if refresh else existing,
        refreshed=refreshed,
        new_albums=new_albums,
        new=new,
    )


async def _insert_all(
    conn: aiosqlite.Connection, statement: str, rows: Sequence[tuple[Any, ...]]
) -> int:
    """``statement`` run over ``rows``, ``_PAGE_ROWS`` at a time; the rows it inserted or
    updated."""
    changed = 0
    for start in range(0, len(rows), _PAGE_ROWS):
        chunk = rows[start : start + _PAGE_ROWS]
        padding = [None] * (len(chunk[0]) * (_PAGE_ROWS - len(chunk)))
        values = [value for row in chunk for value in row]
        cursor = await conn.execute(statement, values + padding)
        changed += max(cursor.rowcount, 0)
    return changed


async def count_stored_by_job(
    conn: aiosqlite.Connection, scrobbles: Sequence[Scrobble], job_id: int
) -> int:
    """How many of ``scrobbles`` (distinct identities) job ``job_id`` has stored already."""
    identities = {(s.timestamp, s.artist.casefold(), s.title.casefold()) for s in scrobbles}
    if not identities:
        return 0
    rows = ", ".join("(?, ?, ?)" for _ in identities)
    params: list[object] = [value for identity in sorted(identities) for value in identity]
    async with conn.execute(
        f"""WITH page (ts, artist_key, title_key) AS (VALUES {rows})
        SELECT COUNT(*) FROM page
        JOIN artists a ON a.name_key = page.artist_key
        JOIN tracks t ON t.artist_id = a.id AND t.title_key = page.title_key
        JOIN listening_history l ON l.timestamp = page.ts AND l.track_id = t.id
        WHERE l.job_id = ?""",
        [*params, job_id],
    ) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row is not None else 0


async def store_page(
    db: Database, scrobbles: Sequence[Scrobble], *, source: Source, want_new: bool = False
) -> PageStored:
    """``write_page`` as a transaction of its own (the tracker's pages)."""
    async with db.transaction() as conn:
        return await write_page(conn, scrobbles, source=source, job_id=None, want_new=want_new)


async def count_listens(db: Database) -> int:
    # The running totals, one row per day: COUNT(*) would read the whole table.
    value = await db.scalar("SELECT COALESCE(SUM(n), 0) FROM day_totals")
    return int(value) if isinstance(value, int) else 0


async def newest_listen(db: Database) -> Listen | None:
    row = await db.fetchone(
        f"SELECT {LISTEN_COLUMNS} FROM {LISTEN_FROM} ORDER BY l.timestamp DESC, l.id DESC LIMIT 1"
    )
    return None if row is None else listen_of(row)


async def recent_listens(db: Database, limit: int, shape: Callable[[Listen], T]) -> list[T]:
    """The latest ``limit`` listens, newest first, each as ``shape(listen)``, made as it is
    read (``Database.fetch_large_as``): a list answer's thousands of listens exist only in
    the form it sends, never as ``Listen`` objects too. The garbage collector's full passes
    walk every object that outlives a few collections; a dict of strings and numbers is not
    one it tracks, a ``Listen`` is."""
    return await db.fetch_large_as(
        f"SELECT {LISTEN_COLUMNS} FROM {LISTEN_FROM} ORDER BY l.timestamp DESC, l.id DESC LIMIT ?",
        (limit,),
        lambda row: shape(listen_of(row)),
    )
