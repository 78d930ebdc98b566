"""Undoing a file import: its listens removed, and what only they held.

One transaction: the listens the job added (the delete trigger keeps the running totals),
then the albums the job made that no listen holds any more (with their enrichment rows),
the tracks those listens named that no listen holds, and their artists left with nothing
(no listen, track or album). The running totals say what is held: after the delete they
are exact, and reading them costs a lookup where counting listens would read a table.
"""

from __future__ import annotations

import aiosqlite

_TOUCHED = """
CREATE TEMP TABLE IF NOT EXISTS undo_touched (track_id INTEGER, artist_id INTEGER)
"""
_EMPTY_ALBUMS = """
SELECT al.id FROM albums al
WHERE al.job_id = :job
  AND COALESCE((SELECT n FROM album_totals WHERE album_id = al.id), 0) = 0
"""
_EMPTY_TRACKS = """
SELECT t.id FROM tracks t
WHERE t.id IN (SELECT track_id FROM temp.undo_touched)
  AND COALESCE((SELECT n FROM track_totals WHERE track_id = t.id), 0) = 0
"""
_EMPTY_ARTISTS = """
SELECT ar.id FROM artists ar
WHERE ar.id IN (SELECT artist_id FROM temp.undo_touched)
  AND COALESCE((SELECT n FROM artist_totals WHERE artist_id = ar.id), 0) = 0
  AND NOT EXISTS (SELECT 1 FROM tracks t WHERE t.artist_id = ar.id)
  AND NOT EXISTS (SELECT 1 FROM albums al WHERE al.artist_id = ar.id)
"""
_STATEMENTS = (
    f"DELETE FROM enrichment_queue WHERE item_kind = 'album' AND item_id IN ({_EMPTY_ALBUMS})",
    f"DELETE FROM album_totals WHERE album_id IN ({_EMPTY_ALBUMS})",
    f"DELETE FROM albums WHERE id IN ({_EMPTY_ALBUMS})",
    f"DELETE FROM track_totals WHERE track_id IN ({_EMPTY_TRACKS})",
    f"DELETE FROM tracks WHERE id IN ({_EMPTY_TRACKS})",
    f"DELETE FROM enrichment_queue WHERE item_kind = 'artist' AND item_id IN ({_EMPTY_ARTISTS})",
    f"DELETE FROM artist_totals WHERE artist_id IN ({_EMPTY_ARTISTS})",
    f"DELETE FROM artists WHERE id IN ({_EMPTY_ARTISTS})",
)


async def remove_job_listens(conn: aiosqlite.Connection, job_id: int) -> int:
    """Remove what file job ``job_id`` added, inside the caller's transaction; returns how
    many listens."""
    await conn.execute(_TOUCHED)
    await conn.execute("DELETE FROM temp.undo_touched")
    await conn.execute(
        "INSERT INTO temp.undo_touched SELECT DISTINCT track_id, artist_id"
        " FROM listening_history WHERE job_id = ?",
        (job_id,),
    )
    cursor = await conn.execute("DELETE FROM listening_history WHERE job_id = ?", (job_id,))
    removed = max(cursor.rowcount, 0)
    for statement in _STATEMENTS:
        await conn.execute(statement, {"job": job_id})
    await conn.execute("DELETE FROM temp.undo_touched")
    await conn.execute("DELETE FROM file_matches WHERE job_id = ?", (job_id,))
    return removed
