"""The ListenBrainz mirror's position per server and the listens it refused.

A server is named by its API root and the user its token belongs to. Its position is the
``listening_history`` id up to which every listen was acknowledged by the server or
refused: ids grow in the order listens are stored, so a listen stored after the position
moved (a late sweep, a file import of old listens) is after it, whatever its time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from musiqued.storage.db import Database
from musiqued.storage.listens import LISTEN_FROM

PENDING_FIELDS = """
    l.timestamp, ar.name AS artist, t.title AS title, COALESCE(al.title, '') AS album,
    ar.mbid AS artist_mbid, COALESCE(al.mbid, '') AS album_mbid, l.track_mbid, l.source,
    l.origin, l.spotify_uri AS spotify_id
"""


@dataclass(frozen=True, slots=True)
class MirrorPosition:
    acknowledged_id: int
    submitted: int
    refused: int


@dataclass(frozen=True, slots=True)
class PendingListen:
    """A stored listen not yet acknowledged, as the mirror reads it."""

    id: int
    fields: dict[str, Any]
    """The listen's ``id`` and ``PENDING_FIELDS``, by name."""


async def read_position(db: Database, server: str) -> MirrorPosition:
    row = await db.fetchone(
        "SELECT acknowledged_id, submitted, refused FROM mirror_positions WHERE server = ?",
        (server,),
    )
    if row is None:
        return MirrorPosition(0, 0, 0)
    return MirrorPosition(int(row[0]), int(row[1]), int(row[2]))


async def pending_listens(db: Database, after_id: int, limit: int) -> list[PendingListen]:
    """The next ``limit`` listens stored after ``after_id``, in the order they were stored."""
    rows = await db.fetchall(
        f"SELECT l.id, {PENDING_FIELDS} FROM {LISTEN_FROM} WHERE l.id > ? ORDER BY l.id LIMIT ?",
        (after_id, limit),
    )
    return [PendingListen(int(row["id"]), dict(row)) for row in rows]


async def count_pending(db: Database, after_id: int) -> int:
    return int(await db.scalar("SELECT COUNT(*) FROM listening_history WHERE id > ?", (after_id,)))


async def acknowledge(
    db: Database,
    server: str,
    up_to_id: int,
    *,
    submitted: int,
    refusals: Sequence[tuple[int, str]] = (),
) -> None:
    """Move ``server``'s position to ``up_to_id``: ``submitted`` more listens acknowledged,
    ``refusals`` (listen id, reason) recorded, all in one transaction."""
    async with db.transaction() as conn:
        if refusals:
            await conn.executemany(
                "INSERT OR IGNORE INTO mirror_refusals (server, listen_id, reason) "
                "VALUES (?, ?, ?)",
                [(server, listen_id, reason) for listen_id, reason in refusals],
            )
        await conn.execute(
            """INSERT INTO mirror_positions (server, acknowledged_id, submitted, refused)
            VALUES (?, ?, ?, ?)
            ON CONFLICT (server) DO UPDATE SET
                acknowledged_id = MAX(acknowledged_id, excluded.acknowledged_id),
                submitted = submitted + excluded.submitted,
                refused = refused + excluded.refused,
                updated_at = (julianday('now') - 2440587.5) * 86400.0""",
            (server, up_to_id, submitted, len(refusals)),
        )
