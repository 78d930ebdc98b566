"""Listens and their artists, albums and tracks.

``store_page`` is the import and tracker hot path: a page is written with one
``executemany`` per table inside the caller's transaction (so a job's checkpoint commits
with the rows it covers). Every lookup goes through a unique index, so the cost per page
stays flat as the history grows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import aiosqlite

from musiqued.models import Scrobble, iso_utc, utc_day
from musiqued.storage.db import Database

Source = Literal["import", "tracker"]

_INSERT_ARTIST = """
INSERT INTO artists (name, name_key, mbid, url) VALUES (?, ?, ?, ?)
ON CONFLICT (name_key) DO UPDATE SET
    mbid = CASE WHEN artists.mbid = '' THEN excluded.mbid ELSE artists.mbid END,
    url = CASE WHEN artists.url = '' THEN excluded.url ELSE artists.url END
WHERE (artists.mbid = '' AND excluded.mbid != '') OR (artists.url = '' AND excluded.url != '')
"""
_INSERT_ALBUM = """
INSERT INTO albums (artist_id, title, title_key, mbid)
SELECT id, ?, ?, ? FROM artists WHERE name_key = ?
ON CONFLICT (artist_id, title_key) DO UPDATE SET mbid = excluded.mbid
WHERE albums.mbid = '' AND excluded.mbid != ''
"""
_INSERT_TRACK = """
INSERT INTO tracks (artist_id, title, title_key, mbid, url)
SELECT id, ?, ?, ?, ? FROM artists WHERE name_key = ?
ON CONFLICT (artist_id, title_key) DO UPDATE SET
    mbid = CASE WHEN tracks.mbid = '' THEN excluded.mbid ELSE tracks.mbid END,
    url = CASE WHEN tracks.url = '' THEN excluded.url ELSE tracks.url END
WHERE (tracks.mbid = '' AND excluded.mbid != '') OR (tracks.url = '' AND excluded.url != '')
"""
_INSERT_LISTEN = """
INSERT INTO listening_history (timestamp, date, track_id, artist_id, album_id, source, loved, job_id)
SELECT ?, ?, t.id, a.id,
       (SELECT al.id FROM albums al WHERE al.artist_id = a.id AND al.title_key = ?),
       ?, ?, ?
FROM artists a JOIN tracks t ON t.artist_id = a.id AND t.title_key = ?
WHERE a.name_key = ?
ON CONFLICT (timestamp, track_id) DO NOTHING
"""
_REFRESH_LISTEN = """
UPDATE listening_history SET
    album_id = (SELECT al.id FROM albums al
                WHERE al.artist_id = listening_history.artist_id AND al.title_key = ?),
    loved = ?
WHERE timestamp = ? AND track_id = (
    SELECT t.id FROM tracks t JOIN artists a ON a.id = t.artist_id
    WHERE a.name_key = ? AND t.title_key = ?)
"""

LISTEN_COLUMNS = """
    l.id, l.timestamp, ar.name AS artist, t.title AS title, COALESCE(al.title, '') AS album,
    ar.mbid AS artist_mbid, COALESCE(al.mbid, '') AS album_mbid, t.mbid AS track_mbid, l.source
"""
LISTEN_FROM = """
    listening_history l
    JOIN tracks t ON t.id = l.track_id
    JOIN artists ar ON ar.id = l.artist_id
    LEFT JOIN albums al ON al.id = l.album_id
"""


@dataclass(frozen=True, slots=True)
class StoreResult:
    """What writing one page did; ``new`` lists the listens that were not stored before."""

    imported: int
    skipped: int
    refreshed: int
    new_albums: int
    new: list[Scrobble]


async def store_page(
    conn: aiosqlite.Connection,
    scrobbles: Sequence[Scrobble],
    *,
    source: Source,
    job_id: int | None = None,
    skip_existing: bool = True,
    want_new: bool = False,
) -> StoreResult:
    """Write ``scrobbles`` inside the caller's transaction (``Database.transaction``)."""
    if not scrobbles:
        return StoreResult(0, 0, 0, 0, [])
    artists: dict[str, tuple[str, str, str, str]] = {}
    albums: dict[tuple[str, str], tuple[str, str, str, str]] = {}
    tracks: dict[tuple[str, str], tuple[str, str, str, str, str]] = {}
    listens: list[tuple[Any, ...]] = []
    for s in scrobbles:
        artist_key = s.artist.casefold()
        title_key = s.title.casefold()
        album_key = s.album.casefold()
        artists.setdefault(artist_key, (s.artist, artist_key, s.artist_mbid, s.artist_url))
        if s.album:
            albums.setdefault(
                (artist_key, album_key), (s.album, album_key, s.album_mbid, artist_key)
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
                title_key,
                artist_key,
            )
        )
    await conn.executemany(_INSERT_ARTIST, list(artists.values()))
    album_cursor = await conn.executemany(_INSERT_ALBUM, list(albums.values()))
    new_albums = max(album_cursor.rowcount, 0)
    await conn.executemany(_INSERT_TRACK, list(tracks.values()))
    before = 0
    if want_new:
        async with conn.execute("SELECT COALESCE(MAX(id), 0) FROM listening_history") as cur:
            row = await cur.fetchone()
            before = int(row[0]) if row else 0
    cursor = await conn.executemany(_INSERT_LISTEN, listens)
    imported = max(cursor.rowcount, 0)
    existing = len(scrobbles) - imported
    refreshed = 0
    if not skip_existing and existing:
        refresh = [(row[2], row[4], row[0], row[7], row[6]) for row in listens]
        await conn.executemany(_REFRESH_LISTEN, refresh)
        refreshed = existing
    new: list[Scrobble] = []
    if want_new and imported:
        async with conn.execute(
            f"SELECT {LISTEN_COLUMNS} FROM {LISTEN_FROM} WHERE l.id > ? ORDER BY l.timestamp, l.id",
            (before,),
        ) as cur:
            new = [
                Scrobble(
                    timestamp=r[1],
                    artist=r[2],
                    title=r[3],
                    album=r[4],
                    artist_mbid=r[5],
                    album_mbid=r[6],
                    track_mbid=r[7],
                )
                for r in await cur.fetchall()
            ]
    return StoreResult(
        imported=imported,
        skipped=existing if skip_existing else 0,
        refreshed=refreshed,
        new_albums=new_albums,
        new=new,
    )


def listen_dict(row: sqlite3.Row) -> dict[str, Any]:
    """A listen as the RPC contract shows it."""
    return {
        "timestamp": row["timestamp"],
        "date": iso_utc(row["timestamp"]),
        "artist": row["artist"],
        "title": row["title"],
        "album": row["album"] or None,
        "artist_mbid": row["artist_mbid"] or None,
        "album_mbid": row["album_mbid"] or None,
        "track_mbid": row["track_mbid"] or None,
        "source": row["source"],
    }


async def count_listens(db: Database) -> int:
    value = await db.scalar("SELECT COUNT(*) FROM listening_history", cached=True)
    return int(value) if isinstance(value, int) else 0


async def newest_listen(db: Database) -> sqlite3.Row | None:
    return await db.fetchone(
        f"SELECT {LISTEN_COLUMNS} FROM {LISTEN_FROM} ORDER BY l.timestamp DESC, l.id DESC LIMIT 1",
        cached=True,
    )


async def recent_listens(db: Database, limit: int) -> list[dict[str, Any]]:
    rows = await db.fetchall(
        f"SELECT {LISTEN_COLUMNS} FROM {LISTEN_FROM} ORDER BY l.timestamp DESC, l.id DESC LIMIT ?",
        (limit,),
    )
    return [listen_dict(row) for row in rows]
