"""File imports: other services' listening files, matched against the history, as jobs.

``start`` detects each handed-over file's format (refusing, with nothing stored, a file that
is none), copies the files into the daemon's state (``<database dir>/imports/<token>/``: the
descriptors a client passed die with the daemon, the copies let a job resume), then submits
a ``file`` job. The job reads the copies in batches of ``BATCH`` entries; each batch's new
listens, its matches and the job's checkpoint (file, entries consumed, counts) commit in ONE
transaction, so a kill loses nothing and counts nothing twice: on resume the entries before
the checkpoint are read again only to remember the file's plays (``FileDuplicates``).

A play is already stored when a stored listen of the same identity starts within
``[import] match_window_s`` (``interchange.matching``); each stored listen answers for one
play only (``file_matches`` remembers which, across batches and resumes). The listens the
job added from the file it is reading are no candidates: two plays of one file are the same
play only when they are exact duplicates. Listens it added from its earlier files are.

Every entry read is counted once: ``added``, ``already_stored``, ``skipped`` by reason (an
exact duplicate within its file is skipped as ``duplicate_in_file``) or ``unreadable``.
The unreadable ones are logged with where they are, the first ones kept on the job.

A dry run runs the same reading and matching inside one transaction that is rolled back,
and returns the summary: nothing is stored (other writers wait while it runs).

``undo`` removes exactly the listens a file job added, and the albums, tracks and artists
only they held (``storage/undo.py``); the running totals follow. A Last.fm import's listens
are the history itself: undo refuses them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import json
import secrets
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from musiqued.config import ImportConfig
from musiqued.errors import (
    BadFileError,
    ConflictError,
    NotFoundError,
    StorageFullError,
    StoreError,
)
from musiqued.interchange.entries import Origin, Play
from musiqued.models import Scrobble
from musiqued.services.file_batches import (
    Batch,
    HandedFile,
    Place,
    Tally,
    chosen_formats,
    known_zone,
    next_batch,
    ranges,
    scrobble_of,
    take,
)
from musiqued.services.jobs import JobContext, JobKind, JobRunner
from musiqued.storage import jobs as store
from musiqued.storage.db import Database
from musiqued.storage.jobs import ACTIVE_STATES, PageProgress
from musiqued.storage.listens import write_page
from musiqued.storage.undo import remove_job_listens

BATCH = 10_000
"""Entries read, matched and committed at a time."""
DRY_RUN_JOB = 0
"""The job id a dry run's rolled-back rows carry: no job has it."""
MAX_LOGGED = 1000
"""Unreadable entries logged one by one per file; past that, only counted."""

_CANDIDATES = """
SELECT l.id, l.timestamp, ar.name, t.title
FROM json_each(:ranges) r
JOIN listening_history l
    ON l.timestamp BETWEEN json_extract(r.value, '$[0]') AND json_extract(r.value, '$[1]')
JOIN tracks t ON t.id = l.track_id
JOIN artists ar ON ar.id = l.artist_id
WHERE NOT (l.job_id IS :job AND l.id > :watermark)
  AND NOT EXISTS (SELECT 1 FROM file_matches m WHERE m.job_id = :job AND m.listen_id = l.id)
"""


class FileImporter:
    """Starts file imports, runs their jobs, their dry runs and their undoing."""

    def __init__(
        self,
        jobs: JobRunner,
        db: Database,
        settings: ImportConfig,
        *,
        on_new_albums: Callable[[], None],
        zone: dt.tzinfo = dt.UTC,
    ) -> None:
        """``zone``: that of ``.scrobbler.log`` times marked ``#TZ/UNKNOWN`` when the caller
        names none (``[daemon] timezone``)."""
        self._zone = zone
        self._jobs = jobs
        self._db = db
        self._settings = settings
        self._on_new_albums = on_new_albums
        self._folder = db.path.parent / "imports"
        self._starting = asyncio.Lock()
        jobs.register(JobKind("file", self._run, label="importing files"))

    def reconfigure(self, settings: ImportConfig) -> None:
        self._settings = settings

    async def start(
        self, files: Sequence[HandedFile], fmt: str = "auto", *, zone: str | None = None
    ) -> int:
        """Copy the files into the daemon's state and submit their import; the job's id.
        ``zone``: the IANA zone of ``.scrobbler.log`` times marked ``#TZ/UNKNOWN`` (None:
        the daemon's)."""
        found = chosen_formats(files, fmt)
        token = secrets.token_hex(8)
        folder = self._folder / token
        async with self._starting:
            await self._sweep()
            return await self._submit(files, found, folder, zone)

    async def _sweep(self) -> None:
        """Remove the copies no job will read again: those of done and cancelled jobs (a
        failed one may be resumed), and any a start left behind."""
        rows = await self._db.fetchall(
            "SELECT params FROM jobs WHERE kind = 'file' AND state NOT IN ('done', 'cancelled')"
        )
        kept = {str(json.loads(row["params"] or "{}").get("folder")) for row in rows}
        names = await asyncio.to_thread(
            lambda: [p.name for p in self._folder.iterdir()] if self._folder.is_dir() else []
        )
        for name in names:
            if name not in kept:
                await asyncio.to_thread(shutil.rmtree, self._folder / name, True)

    async def _submit(
        self, files: Sequence[HandedFile], found: list[Origin], folder: Path, zone: str | None
    ) -> int:
        token = folder.name
        try:
            await asyncio.to_thread(self._copy, files, folder)
            params: dict[str, Any] = {
                "folder": token,
                "zone": zone,
                "files": [
                    {"name": handed.name, "format": origin}
                    for handed, origin in zip(files, found, strict=True)
                ],
            }
            return await self._jobs.submit("file", params)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, folder, True)
            raise

    @staticmethod
    def _copy(files: Sequence[HandedFile], folder: Path) -> None:
        try:
            folder.mkdir(parents=True, mode=0o700)
            for index, handed in enumerate(files):
                handed.file.seek(0)
                with open(folder / str(index), "xb") as out:
                    shutil.copyfileobj(handed.file, out, 1024 * 1024)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise StorageFullError(
                    f"no room to keep a copy of the files in {folder.parent}; nothing imported"
                ) from None
            raise StoreError(
                f"cannot keep a copy of the files in {folder.parent}: "
                f"{exc.strerror or exc}; nothing imported"
            ) from None

    async def dry_run(
        self, files: Sequence[HandedFile], fmt: str = "auto", *, zone: str | None = None
    ) -> dict[str, Any]:
        """What importing ``files`` would do, stored nowhere: the summary."""
        # The readers and the matching rules load with the first file import, not at start.
        from musiqued.interchange import formats
        from musiqued.interchange.matching import FileDuplicates

        found = chosen_formats(files, fmt)
        tally = Tally()
        error: BadFileError | None = None
        with contextlib.suppress(_RolledBack):
            async with self._db.transaction() as conn:
                for handed, origin in zip(files, found, strict=True):
                    handed.file.seek(0)
                    watermark = await _max_id(conn)
                    entries = formats.read(
                        origin, handed.file, handed.name, local_zone=known_zone(zone, self._zone)
                    )
                    dups = FileDuplicates()
                    while True:
                        batch = await asyncio.to_thread(
                            next_batch, entries, BATCH, dups, handed.name
                        )
                        tally.count(batch)
                        await self._store(conn, batch.plays, DRY_RUN_JOB, watermark, tally)
                        error = batch.error
                        if error is not None or batch.read < BATCH:
                            break
                    if error is not None:
                        break
                raise _RolledBack
        summary = {"dry_run": True, **tally.as_dict()}
        if error is not None:
            summary["error"] = error.message
        return summary

    async def undo(self, job_id: int) -> dict[str, Any]:
        """Remove the listens file job ``job_id`` added; ``{job_id, removed}``."""
        row = await store.get(self._db, job_id)
        if row is None:
            raise NotFoundError(f"no job {job_id}")
        if row["kind"] != "file":
            raise ConflictError(
                f"job {job_id} is a {row['kind']} job: its listens are Last.fm's own history, "
                "and undo removes only what a file import added"
            )
        if row["state"] in ACTIVE_STATES:
            raise ConflictError(
                f"job {job_id} is {row['state']}; cancel it first (musiquectl jobs cancel "
                f"{job_id}), then undo it"
            )
        async with self._db.transaction() as conn:
            removed = await remove_job_listens(conn, job_id)
            result = json.loads(row["result"] or "{}")
            result["undone"] = int(result.get("undone", 0)) + removed
            await store.write_result(conn, job_id, result)
        folder = self._folder / str(json.loads(row["params"] or "{}").get("folder", ""))
        if folder != self._folder:
            await asyncio.to_thread(shutil.rmtree, folder, True)
        await self._jobs.publish(job_id, "state")
        return {"job_id": job_id, "removed": removed}

    # -- the job body ---------------------------------------------------------------------

    async def _run(self, job: JobContext) -> None:
        folder = self._folder / str(job.params["folder"])
        files: list[dict[str, str]] = job.params["files"]
        checkpoint = job.checkpoint
        tally = Tally.load(checkpoint.get("tally") or {})
        first = int(checkpoint.get("file", 0))
        for index in range(first, len(files)):
            resumed = index == first and "watermark" in checkpoint
            consumed = int(checkpoint.get("consumed", 0)) if resumed else 0
            watermark = int(checkpoint["watermark"]) if resumed else await self._watermark()
            at = Place(index, consumed, watermark)
            await self._run_file(job, folder / str(index), files[index], at, tally)
        job.log.info("file import done", **tally.as_dict())
        async with self._db.transaction() as conn:
            await conn.execute("DELETE FROM file_matches WHERE job_id = ?", (job.job_id,))
        await asyncio.to_thread(shutil.rmtree, folder, True)

    async def _watermark(self) -> int:
        value = await self._db.scalar("SELECT COALESCE(MAX(id), 0) FROM listening_history")
        return int(value) if isinstance(value, int) else 0

    async def _run_file(
        self,
        job: JobContext,
        path: Path,
        described: dict[str, str],
        at: Place,
        tally: Tally,
    ) -> None:
        # The readers and the matching rules load with the first file import, not at start.
        from musiqued.interchange import formats
        from musiqued.interchange.matching import FileDuplicates

        name = described["name"]
        origin: Origin = described["format"]  # type: ignore[assignment]
        index, consumed, watermark = at.index, at.consumed, at.watermark
        # A regular file in the daemon's own state: its reads do not block.
        with open(path, "rb") as file:  # noqa: ASYNC230
            zone = known_zone(job.params.get("zone"), self._zone)
            entries = formats.read(origin, file, name, local_zone=zone)
            dups = FileDuplicates()
            # Read again to the checkpoint, only to remember the plays already seen.
            done = 0
            while done < consumed:
                taken, error = await asyncio.to_thread(take, entries, min(BATCH, consumed - done))
                for entry in taken:
                    if isinstance(entry, Play):
                        dups.seen(entry)
                done += len(taken)
                if error is not None or not taken:
                    break
            # The next batch is read and sorted out (in a thread) while this one is stored.
            reading: asyncio.Future[Batch] | None
            reading = asyncio.ensure_future(
                asyncio.to_thread(next_batch, entries, BATCH, dups, name)
            )
            try:
                while True:
                    assert reading is not None  # set for each batch that follows
                    batch = await reading
                    reading = None
                    error = batch.error
                    tally.count(batch)
                    logged = min(len(batch.reasons), max(MAX_LOGGED - tally.unreadable, 0))
                    for reason in batch.reasons[:logged]:
                        job.log.warning("unreadable entry", file=name, reason=reason)
                    done += batch.read
                    finished = error is None and batch.read < BATCH
                    if error is None and not finished:
                        reading = asyncio.ensure_future(
                            asyncio.to_thread(next_batch, entries, BATCH, dups, name)
                        )
                    checkpoint = {
                        "file": index + 1 if finished else index,
                        "consumed": 0 if finished else done,
                        "tally": {},
                    }
                    async with self._db.transaction() as conn:
                        before = tally.added, tally.already_stored
                        new_albums = await self._store(
                            conn, batch.plays, job.job_id, watermark, tally
                        )
                        checkpoint["tally"] = tally.as_dict()
                        if not finished:
                            checkpoint["watermark"] = watermark
                        await store.write_result(conn, job.job_id, tally.as_dict())
                        row = await store.write_page_progress(
                            conn,
                            job.job_id,
                            PageProgress(
                                checkpoint=checkpoint,
                                imported=tally.added - before[0],
                                skipped=tally.already_stored
                                - before[1]
                                + sum(batch.skipped.values()),
                                errors=batch.unreadable,
                                reasons=batch.reasons,
                                active_s=job.active_s(),
                            ),
                        )
                    if new_albums:
                        self._on_new_albums()
                    await job.published(row)
                    if error is not None:
                        raise error
                    if finished:
                        return
            finally:
                if reading is not None:
                    # The file closes only once the read under way is over.
                    await asyncio.wait([reading])
                    if not reading.cancelled():
                        reading.exception()

    async def _store(
        self,
        conn: aiosqlite.Connection,
        plays: list[Play],
        job_id: int,
        watermark: int,
        tally: Tally,
    ) -> int:
        """Match ``plays`` against the stored listens, store the others (inside the caller's
        transaction), count both in ``tally``; returns the albums the listens made."""
        from musiqued.interchange.matching import identity, nearest  # loaded by the reading

        if not plays:
            return 0
        window = self._settings.match_window_s
        rows = await conn.execute_fetchall(
            _CANDIDATES,
            {"ranges": json.dumps(ranges(plays, window)), "job": job_id, "watermark": watermark},
        )
        candidates: dict[tuple[str, str], list[tuple[int, int]]] = {}
        for listen_id, start, artist, title in rows:
            candidates.setdefault(identity(artist, title), []).append((start, listen_id))
        taken: list[tuple[int, int]] = []
        fresh: list[Scrobble] = []
        for play in sorted(plays, key=lambda p: p.timestamp):
            mine = candidates.get(identity(play.artist, play.title))
            start = nearest(play.timestamp, (s for s, _ in mine), window) if mine else None
            if mine is None or start is None:
                fresh.append(scrobble_of(play))
                continue
            at = next(i for i, (s, _) in enumerate(mine) if s == start)
            taken.append((job_id, mine.pop(at)[1]))
        if taken:
            await conn.executemany(
                "INSERT OR IGNORE INTO file_matches (job_id, listen_id) VALUES (?, ?)", taken
            )
        stored = await write_page(conn, fresh, source="file", job_id=job_id)
        tally.added += stored.imported
        # A fresh play the unique (timestamp, track) index found stored is stored as well.
        tally.already_stored += len(taken) + len(fresh) - stored.imported
        return stored.new_albums


class _RolledBack(Exception):
    """Ends a dry run's transaction: everything it wrote is rolled back."""


async def _max_id(conn: aiosqlite.Connection) -> int:
    async with conn.execute("SELECT COALESCE(MAX(id), 0) FROM listening_history") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row is not None else 0
