"""The enrichment queue and what enrichment writes into ``albums`` / ``artists``.

One ``enrichment_queue`` row per (item, source); triggers enqueue every new album
(``lastfm``, ``spotify``, ``ai``) and artist (``spotify``). Picking the next row is a read;
a row's outcome and the data it found are written in one small transaction, so the worker
holds the writer lock for a few milliseconds at a time and imports keep their pace.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from musiqued.storage.db import Database

SOURCES = ("lastfm", "spotify", "ai")
STATES = ("pending", "running", "done", "failed", "skipped")
NOT_CONFIGURED = "not configured"
ACTIVE_JOB_STATES = ("queued", "running", "paused")


@dataclass(frozen=True, slots=True)
class QueueItem:
    id: int
    item_kind: str  # 'album' or 'artist'
    item_id: int
    source: str
    attempts: int
    artist: str
    title: str  # the album title; '' for an artist


@dataclass(frozen=True, slots=True)
class AlbumFacts:
    artist: str
    title: str
    year: int | None
    wiki_summary: str | None
    tracks: list[tuple[str, int]]  # (title, listens), most listened first
    listens: int


async def job_cutoffs(db: Database, cap: int) -> list[tuple[int, int]]:
    """(job, last album id enrichable while the job is active) for active jobs over the cap."""
    if cap <= 0:
        return []
    marks = ", ".join("?" for _ in ACTIVE_JOB_STATES)
    jobs = await db.fetchall(f"SELECT id FROM jobs WHERE state IN ({marks})", ACTIVE_JOB_STATES)
    cutoffs = []
    for job in jobs:
        row = await db.fetchone(
            "SELECT item_id FROM enrichment_queue WHERE job_id = ? AND item_kind = 'album' "
            "AND source = 'lastfm' ORDER BY item_id LIMIT 1 OFFSET ?",
            (job["id"], cap - 1),
        )
        if row is not None:
            cutoffs.append((int(job["id"]), int(row[0])))
    return cutoffs


async def import_running(db: Database) -> bool:
    row = await db.fetchone("SELECT 1 FROM jobs WHERE state = 'running' AND kind = 'import'")
    return row is not None


async def next_item(
    db: Database,
    source: str,
    now: float,
    *,
    busy: Iterable[tuple[str, int]] = (),
    cutoffs: Sequence[tuple[int, int]] = (),
) -> QueueItem | None:
    """The next due pending row of ``source`` that may run now.

    Skipped over: items another source is working on (``busy``), albums beyond a running
    job's cap (``cutoffs``), and for ``ai`` albums whose Last.fm row is not finished (the
    description uses the wiki summary).
    """
    where = ["q.source = ?", "q.state = 'pending'", "q.next_attempt_at <= ?"]
    params: list[object] = [source, now]
    for kind, item_id in busy:
        where.append("NOT (q.item_kind = ? AND q.item_id = ?)")
        params += [kind, item_id]
    for job_id, last in cutoffs:
        where.append("NOT (q.item_kind = 'album' AND q.job_id IS ? AND q.item_id > ?)")
        params += [job_id, last]
    if source == "ai":
        where.append(
            "NOT EXISTS (SELECT 1 FROM enrichment_queue l WHERE l.item_kind = 'album' "
            "AND l.item_id = q.item_id AND l.source = 'lastfm' AND l.state IN ('pending', 'running'))"
        )
    row = await db.fetchone(
        f"""
        SELECT q.id, q.item_kind, q.item_id, q.source, q.attempts,
               COALESCE(ar.name, aa.name, '') AS artist, COALESCE(al.title, '') AS title
        FROM enrichment_queue q
        LEFT JOIN albums al ON q.item_kind = 'album' AND al.id = q.item_id
        LEFT JOIN artists aa ON aa.id = al.artist_id
        LEFT JOIN artists ar ON q.item_kind = 'artist' AND ar.id = q.item_id
        WHERE {" AND ".join(where)}
        ORDER BY q.next_attempt_at, q.id
        LIMIT 1
        """,
        tuple(params),
    )
    return None if row is None else QueueItem(*row)  # the columns in the fields' order


async def next_due_at(db: Database, source: str) -> float | None:
    """When the earliest pending row of ``source`` is due (None: nothing pending)."""
    value = await db.scalar(
        "SELECT MIN(next_attempt_at) FROM enrichment_queue WHERE source = ? AND state = 'pending'",
        (source,),
    )
    return float(value) if isinstance(value, int | float) else None


async def finish(
    db: Database,
    item: QueueItem,
    state: str,
    *,
    result: str | None = None,
    error: str | None = None,
    attempted: bool = True,
    updates: Sequence[tuple[str, tuple[object, ...]]] = (),
) -> None:
    """Record a row's outcome, and in the same transaction the data it found."""
    now = time.time()

    async with db.transaction() as conn:
        for sql, params in updates:
            await conn.execute(sql, params)
        await conn.execute(
            "UPDATE enrichment_queue SET state = ?, result = ?, last_error = ?, "
            "attempts = attempts + ?, updated_at = ? WHERE id = ?",
            (state, result, error, int(attempted), now, item.id),
        )


async def retry_later(
    db: Database, item: QueueItem, at: float, error: str, *, attempted: bool = True
) -> None:
    await db.execute(
        "UPDATE enrichment_queue SET state = 'pending', last_error = ?, next_attempt_at = ?, "
        "attempts = attempts + ?, updated_at = ? WHERE id = ?",
        (error, at, int(attempted), time.time(), item.id),
    )


async def skip_pending(db: Database, source: str) -> int:
    """Mark every pending row of an unconfigured source 'skipped'."""
    return await db.execute(
        "UPDATE enrichment_queue SET state = 'skipped', last_error = ?, updated_at = ? "
        "WHERE source = ? AND state = 'pending'",
        (NOT_CONFIGURED, time.time(), source),
    )


async def requeue(
    db: Database,
    *,
    configured: Iterable[str],
    failed: bool = False,
    regenerate: bool = False,
    interrupted: bool = False,
) -> int:
    """Put rows back to 'pending'; returns how many.

    Always: rows skipped for want of configuration whose source is now configured.
    ``failed``: failed rows. ``regenerate``: every album's AI description.
    ``interrupted``: rows a stopped daemon left 'running'.
    """
    sources = [s for s in configured if s in SOURCES]
    clauses = []
    params: list[object] = []
    if sources:
        marks = ", ".join("?" for _ in sources)
        clauses.append(f"(state = 'skipped' AND source IN ({marks}))")
        params += sources
    if failed:
        clauses.append("state = 'failed'")
    if regenerate and "ai" in sources:
        clauses.append("(source = 'ai' AND item_kind = 'album' AND state != 'pending')")
    if interrupted:
        clauses.append("state = 'running'")
    if not clauses:
        return 0
    return await db.execute(
        "UPDATE enrichment_queue SET state = 'pending', attempts = 0, next_attempt_at = 0, "
        f"last_error = NULL, updated_at = ? WHERE {' OR '.join(clauses)}",
        (time.time(), *params),
    )


async def counts(db: Database) -> dict[str, dict[str, int]]:
    """Rows per source and state."""
    table = {source: dict.fromkeys(STATES, 0) for source in SOURCES}
    # The running counts (migrations.SCHEMA_V3), not a GROUP BY over the whole queue.
    rows = await db.fetchall("SELECT source, state, n FROM enrichment_totals")
    for source, state, count in rows:
        table.setdefault(source, dict.fromkeys(STATES, 0))[state] = int(count)
    return table


async def last_failures(db: Database) -> dict[str, tuple[str, float]]:
    """Per source: the latest failed row's error and when."""
    rows = await db.fetchall(
        "SELECT source, last_error, MAX(updated_at) FROM enrichment_queue "
        "WHERE state = 'failed' GROUP BY source"
    )
    return {str(r[0]): (str(r[1] or ""), float(r[2] or 0)) for r in rows}


async def album_facts(db: Database, album_id: int, max_tracks: int = 15) -> AlbumFacts | None:
    album = await db.fetchone(
        "SELECT al.title, ar.name AS artist, al.release_year, al.wiki_summary "
        "FROM albums al JOIN artists ar ON ar.id = al.artist_id WHERE al.id = ?",
        (album_id,),
    )
    if album is None:
        return None
    tracks = await db.fetchall(
        "SELECT t.title, COUNT(*) AS n FROM listening_history l JOIN tracks t ON t.id = l.track_id "
        "WHERE l.album_id = ? GROUP BY t.id ORDER BY n DESC, t.title LIMIT ?",
        (album_id, max_tracks),
    )
    listens = await db.scalar(
        "SELECT COUNT(*) FROM listening_history WHERE album_id = ?", (album_id,)
    )
    return AlbumFacts(
        artist=album["artist"],
        title=album["title"],
        year=album["release_year"],
        wiki_summary=album["wiki_summary"],
        tracks=[(str(r[0]), int(r[1])) for r in tracks],
        listens=int(listens) if isinstance(listens, int) else 0,
    )


# -- what enrichment writes (statements for ``finish(updates=…)``) -------------------------


def lastfm_album_update(
    album_id: int, url: str, image: str | None, wiki: str | None, year: int | None
) -> tuple[str, tuple[object, ...]]:
    return (
        "UPDATE albums SET url = COALESCE(NULLIF(?, ''), url), "
        "image_lastfm = COALESCE(?, image_lastfm), wiki_summary = COALESCE(?, wiki_summary), "
        "release_year = COALESCE(release_year, ?), enriched_at = ? WHERE id = ?",
        (url, image, wiki, year, time.time(), album_id),
    )


def spotify_album_update(
    album_id: int, spotify_id: str, image: str | None, year: int | None
) -> tuple[str, tuple[object, ...]]:
    return (
        "UPDATE albums SET spotify_id = ?, image_spotify = COALESCE(?, image_spotify), "
        "release_year = COALESCE(release_year, ?), enriched_at = ? WHERE id = ?",
        (spotify_id, image, year, time.time(), album_id),
    )


def spotify_artist_update(
    artist_id: int, spotify_id: str, image: str | None
) -> tuple[str, tuple[object, ...]]:
    return (
        "UPDATE artists SET spotify_id = ?, image_spotify = COALESCE(?, image_spotify), "
        "enriched_at = ? WHERE id = ?",
        (spotify_id, image, time.time(), artist_id),
    )


def description_update(album_id: int, text: str, model: str) -> tuple[str, tuple[object, ...]]:
    now = time.time()
    return (
        "UPDATE albums SET description = ?, description_model = ?, description_at = ?, "
        "enriched_at = ? WHERE id = ?",
        (text, model, now, now, album_id),
    )


# -- albums.list ---------------------------------------------------------------------------


def _like(text: str) -> str:
    escaped = text.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_albums(
    db: Database,
    *,
    query: str | None = None,
    artist: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Albums with their enrichment, most listened first."""
    where = []
    params: list[object] = []
    if query:
        where.append("(al.title_key LIKE ? ESCAPE '\\' OR ar.name_key LIKE ? ESCAPE '\\')")
        params += [_like(query), _like(query)]
    if artist:
        where.append("ar.name_key LIKE ? ESCAPE '\\'")
        params.append(_like(artist))
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = await db.fetch_large(
        f"""
        SELECT ar.name AS artist, al.title, NULLIF(al.mbid, '') AS mbid,
               (SELECT COUNT(*) FROM listening_history l WHERE l.album_id = al.id) AS listens,
               al.image_lastfm, al.image_spotify, al.spotify_id, al.description,
               al.description_model, al.description_at, al.enriched_at, al.url,
               al.release_year, al.wiki_summary, ar.image_spotify AS artist_image_spotify
        FROM albums al JOIN artists ar ON ar.id = al.artist_id
        {clause}
        ORDER BY listens DESC, ar.name_key, al.title_key, al.id
        LIMIT ? OFFSET ?
        """,
        (*params, limit, offset),
    )
    return [dict(row) for row in rows]
