"""The ``jobs`` table: import and verify jobs, their counters and their checkpoints.

A job's progress (counters and checkpoint) is written by ``write_page_progress`` inside the
caller's transaction, the same one that stores the rows the page covers, so a crash can
never leave a checkpoint that claims rows which are not there, nor rows the checkpoint
forgets.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import aiosqlite

from musiqued.errors import NotFoundError
from musiqued.models import iso_utc
from musiqued.storage.db import Database, Row

JobState = Literal["queued", "running", "paused", "done", "failed", "cancelled", "interrupted"]
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
    refreshed: int = 0
    errors: int = 0
    reasons: Sequence[str] = field(default_factory=tuple)
    active_s: float = 0.0
    pages: int = 1
    replaces: str | None = None
    """Reasons starting with this (``"page 7: "``) are dropped first: the unit was done
    again and ``reasons`` are its current ones (``errors`` is then the change in count)."""


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
        assert cursor.lastrowid is not None
        return int(cursor.lastrowid)


async def get(db: Database, job_id: int) -> Row | None:
    return await db.fetchone("SELECT * FROM jobs WHERE id = ?", (job_id,))


async def list_jobs(db: Database, limit: int) -> list[Row]:
    return await db.fetchall("SELECT * FROM jobs ORDER BY id DESC LIMIT ?", (limit,))


async def with_states(db: Database, states: Iterable[str]) -> list[Row]:
    chosen = tuple(states)
    marks = ", ".join("?" for _ in chosen)
    return await db.fetchall(f"SELECT * FROM jobs WHERE state IN ({marks}) ORDER BY id", chosen)


async def active(db: Database) -> list[Row]:
    return await with_states(db, ACTIVE_STATES)


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
    await db.execute(
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


async def write_plan(
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


async def write_result(conn: aiosqlite.Connection, job_id: int, result: dict[str, Any]) -> None:
    """A job's own findings (a verify's summary), in the caller's transaction."""
    await conn.execute("UPDATE jobs SET result = ? WHERE id = ?", (json.dumps(result), job_id))


_RECORD_PAGE = """
UPDATE jobs SET
    checkpoint = :checkpoint,
    pages_done = pages_done + :pages,
    tracks_imported = tracks_imported + :imported,
    tracks_skipped = tracks_skipped + :skipped,
    tracks_refreshed = tracks_refreshed + :refreshed,
    tracks_errors = tracks_errors + :errors,
    error_reasons = CASE WHEN :reasons IS NULL AND :replaces IS NULL THEN error_reasons ELSE (
        SELECT json_group_array(value) FROM (
            SELECT value FROM json_each(jobs.error_reasons)
            WHERE :replaces IS NULL OR substr(value, 1, length(:replaces)) != :replaces
            UNION ALL SELECT value FROM json_each(COALESCE(:reasons, '[]'))
            LIMIT :max_reasons)) END,
    active_s = :active_s
WHERE id = :job_id
RETURNING *
"""


async def write_page_progress(
    conn: aiosqlite.Connection, job_id: int, progress: PageProgress
) -> dict[str, Any]:
    """Add one page's counters and store the new checkpoint, in the caller's transaction.

    Returns the job's row as it will commit (the progress event needs no second read). New
    albums are counted by the ``albums_enqueue`` trigger as the page's albums are made.
    """
    values = {
        "checkpoint": json.dumps(progress.checkpoint, separators=(",", ":")),
        "pages": progress.pages,
        "imported": progress.imported,
        "skipped": progress.skipped,
        "refreshed": progress.refreshed,
        "errors": progress.errors,
        "reasons": json.dumps(list(progress.reasons)) if progress.reasons else None,
        "max_reasons": MAX_ERROR_REASONS,
        "replaces": progress.replaces,
        "active_s": progress.active_s,
        "job_id": job_id,
    }
    rows = list(await conn.execute_fetchall(_RECORD_PAGE, values))
    if not rows:
        raise NotFoundError(f"no job {job_id}")
    return dict(rows[0])


async def albums_enriched(db: Database, job_ids: Sequence[int]) -> dict[int, int]:
    """Per job: its albums whose every enrichment source is done or skipped."""
    if not job_ids:
        return {}
    marks = ", ".join("?" for _ in job_ids)
    # Kept by triggers (migrations.SCHEMA_V3): grouping the job's queue rows costs more
    # the more albums it has.
    rows = await db.fetchall(
        f"SELECT job_id, n FROM job_albums_enriched WHERE job_id IN ({marks})", tuple(job_ids)
    )
    return {int(r[0]): int(r[1]) for r in rows}


def _missing(checkpoint: dict[str, Any]) -> dict[str, Any] | None:
    """What an import's checkpoint says it could not store, and where (None: no gap)."""
    short = checkpoint.get("short") or []
    gap = checkpoint.get("gap")
    count = int(gap) if isinstance(gap, int) else sum(int(entry[1]) for entry in short)
    if not count:
        return None
    where: list[dict[str, Any]] = [
        {
            "page": page,
            "missing": lacking,
            "from": iso_utc(oldest) if oldest is not None else None,
            "to": iso_utc(newest) if newest is not None else None,
        }
        for page, lacking, newest, oldest in short
    ]
    # Pages never stored (Last.fm kept failing on one, the job ended): a span each, with
    # the scrobbles the job would have stored from it (every page full but the last).
    per_page = int(checkpoint.get("per_page") or 0)
    expected = int(checkpoint.get("expected") or 0)
    for first, last in checkpoint.get("unfetched") or []:
        held = max(0, min(expected, last * per_page) - (first - 1) * per_page)
        where.append({"page": first, "last_page": last, "missing": held, "from": None, "to": None})
    return {"count": count, "where": where}


def job_dict(row: Row | Mapping[str, Any], *, albums_enriched: int | None = None) -> dict[str, Any]:
    """A job as the RPC contract shows it (DESIGN.md), plus ``error_reasons``."""
    processed = (
        row["tracks_imported"]
        + row["tracks_refreshed"]
        + row["tracks_skipped"]
        + row["tracks_errors"]
    )
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
        "tracks_refreshed": row["tracks_refreshed"],
        "tracks_errors": row["tracks_errors"],
        "albums_enriched": (row["albums_enriched"] if albums_enriched is None else albums_enriched),
        "total_albums_to_enrich": row["total_albums_to_enrich"],
        "total_scrobbles": row["total_scrobbles"],
        "rate_per_s": rate,
        "eta_s": eta,
        "missing": _missing(checkpoint),
        "upstream_trouble": None,
        "error": row["error"],
        "error_reasons": json.loads(row["error_reasons"] or "[]"),
        "result": json.loads(row["result"] or "{}"),
        "window": {"from": row["window_from"], "to": row["window_to"]},
        "expected": expected,
        "active_s": round(active_s, 3),
    }
