"""The ``jobs`` table: import and verify jobs, their counters and their checkpoints.

A job's progress (counters and checkpoint) is written by ``record_page`` inside the caller's
transaction, the same one that stores the rows the page covers, so a crash can never leave a
checkpoint that claims rows which are not there, nor rows the checkpoint forgets.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import aiosqlite

from musiqued.storage.db import Database

JobState = Literal["queued", "running", "paused", "done", "failed", "cancelled", "interrupted"]
STATES: tuple[JobState, ...] = (
    "queued",
    "running",
    "paused",
    "done",
    "failed",
    "cancelled",
    "interrupted",
)
ACTIVE_STATES: tuple[JobState, ...] = ("queued", "running", "paused", "interrupted")
"""A job in one of these states still has work to do (it blocks a second import)."""
FINISHED_STATES: tuple[JobState, ...] = ("done", "failed", "cancelled")

MAX_ERROR_REASONS = 50
"""Reasons kept on a job for its ``tracks_errors``: enough to diagnose, bounded in size."""


@dataclass(frozen=True, slots=True)
class PageProgress:
    """What one page (or any unit of a job's work) adds to the job's counters."""

    checkpoint: dict[str, Any]
    imported: int = 0
    skipped: int = 0
    errors: int = 0
    reasons: Sequence[str] = field(default_factory=tuple)
    new_albums: int = 0
    active_s: float = 0.0
    pages: int = 1


async def create(
    db: Database,
    kind: str,
    params: dict[str, Any],
    *,
    window_from: int | None = None,
    window_to: int | None = None,
    state: JobState = "queued",
) -> int:
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "INSERT INTO jobs (kind, state, params, created_at, window_from, window_to) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (kind, state, json.dumps(params), time.time(), window_from, window_to),
        )
        job_id = cursor.lastrowid
    assert job_id is not None
    return int(job_id)


async def get(db: Database, job_id: int) -> sqlite3.Row | None:
    return await db.fetchone("SELECT * FROM jobs WHERE id = ?", (job_id,))


async def list_jobs(db: Database, limit: int) -> list[sqlite3.Row]:
    return await db.fetchall("SELECT * FROM jobs ORDER BY id DESC LIMIT ?", (limit,))


async def with_states(
    db: Database, states: Iterable[str], *, cached: bool = False
) -> list[sqlite3.Row]:
    chosen = tuple(states)
    marks = ", ".join("?" for _ in chosen)
    return await db.fetchall(
        f"SELECT * FROM jobs WHERE state IN ({marks}) ORDER BY id", chosen, cached=cached
    )


async def active(db: Database) -> list[sqlite3.Row]:
    # daemon.status asks on every call; re-read only after a write (see Database.fetchall).
    return await with_states(db, ACTIVE_STATES, cached=True)


async def set_state(
    db: Database,
    job_id: int,
    state: JobState,
    *,
    error: str | None = None,
    started: bool = False,
    active_s: float | None = None,
) -> None:
    """Move a job to ``state``; a finished state stamps ``finished_at``; errors are kept."""
    now = time.time()
    finished = now if state in FINISHED_STATES else None
    async with db.transaction() as conn:
        await conn.execute(
            """
            UPDATE jobs SET
                state = ?,
                error = CASE WHEN ? THEN ? ELSE error END,
                started_at = CASE WHEN ? AND started_at IS NULL THEN ? ELSE started_at END,
                finished_at = ?,
                active_s = COALESCE(?, active_s)
            WHERE id = ?
            """,
            (state, state != "done", error, started, now, finished, active_s, job_id),
        )


async def update_plan(
    conn: aiosqlite.Connection,
    job_id: int,
    *,
    checkpoint: dict[str, Any],
    pages_total: int | None = None,
    total_scrobbles: int | None = None,
) -> None:
    """Record what the job found it has to do (inside the caller's transaction)."""
    await conn.execute(
        "UPDATE jobs SET checkpoint = ?, pages_total = COALESCE(?, pages_total), "
        "total_scrobbles = COALESCE(?, total_scrobbles) WHERE id = ?",
        (json.dumps(checkpoint), pages_total, total_scrobbles, job_id),
    )


async def record_page(conn: aiosqlite.Connection, job_id: int, progress: PageProgress) -> None:
    """Add one page's counters and store the new checkpoint, in the caller's transaction."""
    if progress.reasons:
        await conn.execute(
            """
            UPDATE jobs SET error_reasons = (
                SELECT json_group_array(value) FROM (
                    SELECT value FROM json_each(jobs.error_reasons)
                    UNION ALL SELECT value FROM json_each(?)
                    LIMIT ?))
            WHERE id = ?
            """,
            (json.dumps(list(progress.reasons)), MAX_ERROR_REASONS, job_id),
        )
    await conn.execute(
        """
        UPDATE jobs SET
            checkpoint = ?,
            pages_done = pages_done + ?,
            tracks_imported = tracks_imported + ?,
            tracks_skipped = tracks_skipped + ?,
            tracks_errors = tracks_errors + ?,
            total_albums_to_enrich = total_albums_to_enrich + ?,
            active_s = ?
        WHERE id = ?
        """,
        (
            json.dumps(progress.checkpoint, separators=(",", ":")),
            progress.pages,
            progress.imported,
            progress.skipped,
            progress.errors,
            progress.new_albums,
            progress.active_s,
            job_id,
        ),
    )


async def claim_new_albums(conn: aiosqlite.Connection, job_id: int, after_album_id: int) -> int:
    """Tag the enrichment queue rows of albums created after ``after_album_id`` with the job.

    Called in the page's transaction, so those albums are exactly the ones the page created.
    Returns how many albums that is.
    """
    newest = await newest_album_id(conn)
    if newest <= after_album_id:
        return 0
    await conn.execute(
        "UPDATE enrichment_queue SET job_id = ? "
        "WHERE item_kind = 'album' AND item_id > ? AND job_id IS NULL",
        (job_id, after_album_id),
    )
    return newest - after_album_id


async def newest_album_id(conn: aiosqlite.Connection) -> int:
    # execute_fetchall: one thread hop, where execute + fetchone + close take three.
    rows = list(await conn.execute_fetchall("SELECT COALESCE(MAX(id), 0) FROM albums"))
    return int(rows[0][0]) if rows else 0


async def albums_enriched(db: Database, job_ids: Sequence[int]) -> dict[int, int]:
    """Per job: its albums whose every enrichment source is done or skipped."""
    if not job_ids:
        return {}
    marks = ", ".join("?" for _ in job_ids)
    rows = await db.fetchall(
        f"""
        SELECT job_id, COUNT(*) FROM (
            SELECT job_id, item_id FROM enrichment_queue
            WHERE job_id IN ({marks}) AND item_kind = 'album'
            GROUP BY job_id, item_id
            HAVING SUM(state NOT IN ('done', 'skipped')) = 0)
        GROUP BY job_id
        """,
        tuple(job_ids),
    )
    return {int(r[0]): int(r[1]) for r in rows}


def job_dict(row: sqlite3.Row, *, albums_enriched: int | None = None) -> dict[str, Any]:
    """A job as the RPC contract shows it (DESIGN.md), plus ``error_reasons``."""
    processed = row["tracks_imported"] + row["tracks_skipped"] + row["tracks_errors"]
    active_s = float(row["active_s"] or 0.0)
    rate = round(processed / active_s, 1) if active_s > 0 else 0.0
    checkpoint = json.loads(row["checkpoint"] or "{}")
    expected = checkpoint.get("expected")
    eta: float | None = None
    if row["state"] == "done":
        eta = 0.0
    elif row["state"] in ("running", "queued") and rate > 0 and isinstance(expected, int):
        eta = round(max(expected - processed, 0) / rate, 1)
    return {
        "job_id": row["id"],
        "kind": row["kind"],
        "state": row["state"],
        "params": json.loads(row["params"] or "{}"),
        "created_at": row["created_at"],
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
        "pages_done": row["pages_done"],
        "pages_total": row["pages_total"],
        "tracks_imported": row["tracks_imported"],
        "tracks_skipped": row["tracks_skipped"],
        "tracks_errors": row["tracks_errors"],
        "albums_enriched": (row["albums_enriched"] if albums_enriched is None else albums_enriched),
        "total_albums_to_enrich": row["total_albums_to_enrich"],
        "total_scrobbles": row["total_scrobbles"],
        "rate_per_s": rate,
        "eta_s": eta,
        "error": row["error"],
        "error_reasons": json.loads(row["error_reasons"] or "[]"),
        "result": json.loads(row["result"] or "{}"),
        "window": {"from": row["window_from"], "to": row["window_to"]},
        "expected": expected,
        "active_s": round(active_s, 3),
    }
