"""The database: connection set-up, pragmas, migrations, reads, and serialised writes.

Writes go through ``Writer``: one plain ``sqlite3`` connection on its own thread, fed plain
functions of ``(conn, …)``, each transaction run whole in one hop (``write``,
``write_each``). Reads use a second connection through aiosqlite's public API, which WAL
lets run beside the writer. ``generation`` counts committed write hops, so results cached
against it (``fetchall(cached=True)``) stay exact; the cached reads asked lately are read
again at the end of each write hop, on the writer's connection, so that ``daemon.status``
during an import (a write every few milliseconds) finds them fresh instead of opening a
read of its own (which SQLite may hold back for a while as the WAL turns over). A long
read (an export) gets a connection and a thread of its own for its duration (``scan``),
read in batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import aiosqlite
import structlog

from musiqued.errors import SchemaTooNewError, StoreError
from musiqued.storage.dbfile import Found, prepare
from musiqued.storage.migrations import LATEST_VERSION, MIGRATIONS
from musiqued.storage.scan import read_batches
from musiqued.storage.writer import Unit, WriteChain, Writer

PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA busy_timeout = 10000",
    "PRAGMA cache_size = -16000",
    "PRAGMA temp_store = MEMORY",
)
log = structlog.get_logger("musiqued.storage")

T = TypeVar("T")

CacheKey = tuple[str, str, tuple[object, ...]]
Params = tuple[object, ...] | dict[str, object]

REFRESH_WINDOW_S = 2.0
"""A cached read asked within this long is read again by each write hop, ahead of its next
caller; one not asked for longer is left until it is."""
MAX_REFRESHED = 16
"""At most this many of them per write hop (``daemon.status`` asks five)."""

MAX_SCANS = 4
"""Long reads (``Database.scan``) running at once; more wait for a free one. Each holds a
connection, its thread and its page cache while it runs."""


def _migrate(path: Path, conn: sqlite3.Connection) -> None:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > LATEST_VERSION:
        raise SchemaTooNewError(
            f"database {path} has schema version {version}, newer than this "
            f"musiqued understands ({LATEST_VERSION}); upgrade musiqued"
        )
    if version == LATEST_VERSION:
        return
    if version > 0:
        backup = path.with_name(f"{path.name}.v{version}.bak")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        shutil.copy2(path, backup)
    for target, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {target};\nCOMMIT;")


def _cached_value(kind: str, rows: list[sqlite3.Row]) -> object:
    return tuple(rows) if kind == "all" else (rows[0] if rows else None)


def _reason(path: Path, exc: Exception) -> str:
    """Why SQLite could not open ``path``, in words a person can act on."""
    if not os.access(path.parent, os.W_OK):
        # WAL mode creates <name>-wal and <name>-shm beside the database.
        return f"its directory {path.parent} is not writable ({exc})"
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return f"the file is damaged ({exc}); restore it from a backup, or move it away"
    return str(exc)


class Database:
    """Owns the SQLite file for the daemon's lifetime."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer = Writer(path)
        self._reader: aiosqlite.Connection | None = None
        self.created = False
        """True when ``open`` created the file (or found it empty): a new history."""
        # Bumped after every write hop: read results cached against it stay exact without
        # re-running the query on every call (``fetchall(cached=True)``).
        self.generation = 0
        self._cache: dict[CacheKey, tuple[int, object]] = {}
        self._asked: dict[CacheKey, tuple[str, str, Params, float]] = {}
        self._hops = 0
        """Write hops submitted; the cache takes a hop's reads only if no later hop has
        stored its own (hops end in order, but their callers may resume out of order)."""
        self._stored_hop = 0
        self._scans = asyncio.Semaphore(MAX_SCANS)

    async def open(self) -> None:
        try:
            found = prepare(self.path)
            self.created = found is not Found.EXISTING
            if found is Found.EMPTY:
                log.warning("database file was empty; initialising it", database=str(self.path))

            def setup(conn: sqlite3.Connection) -> None:
                for pragma in PRAGMAS:
                    conn.execute(pragma)
                _migrate(self.path, conn)

            await self._writer.open(setup)
            reader = await aiosqlite.connect(self.path, isolation_level=None)
            try:
                for pragma in PRAGMAS[1:]:
                    await reader.execute(pragma)
                await reader.execute("PRAGMA query_only = ON")
            except BaseException:
                await reader.close()
                raise
            reader.row_factory = sqlite3.Row
            self._reader = reader
        except StoreError:
            await self.close()
            raise
        except (OSError, sqlite3.Error) as exc:
            await self.close()
            raise StoreError(
                f"cannot open database {self.path}: {_reason(self.path, exc)}"
            ) from None
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            with contextlib.suppress(sqlite3.Error, ValueError):
                await reader.close()
        await self._writer.close()

    # -- writes --------------------------------------------------------------------------

    def check_file(self) -> str | None:
        """Why the file on disk is no longer ours (deleted, replaced), else None."""
        return self._writer.check_file()

    def free_bytes(self) -> int | None:
        """Space left for the database's files (unprivileged), or None if it cannot be told."""
        try:
            info = os.statvfs(self.path.parent)
        except OSError:
            return None
        return info.f_bavail * info.f_frsize

    async def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work`` as one write transaction, run whole on the writer's thread (one hop).

        Committed if ``work`` returns, rolled back if it raises. ``work`` runs on another
        thread: give it values computed beforehand, not live objects the event loop may
        change meanwhile.
        """
        return (await self.write_each([work]))[0]

    async def write_each(
        self,
        works: Sequence[Unit[T]],
        chain: WriteChain | None = None,
    ) -> list[T]:
        """Each of ``works`` as its OWN transaction, in order, in one hop (``Writer``); in
        ``chain``, only if no earlier hop of the chain failed (``WriteChain``)."""
        self._hops += 1
        hop = self._hops
        asked = self._refreshable()
        fresh: list[tuple[CacheKey, object]] = []

        def read_again(conn: sqlite3.Connection) -> None:
            cursor = conn.cursor()
            cursor.row_factory = sqlite3.Row
            try:
                for key, kind, sql, params in asked:
                    rows = cursor.execute(sql, params).fetchall()
                    fresh.append((key, _cached_value(kind, rows)))
            except sqlite3.Error:
                fresh.clear()  # the writes stand; each caller reads for itself instead
            finally:
                cursor.close()

        try:
            return await self._writer.transactions(works, read_again if asked else None, chain)
        finally:
            self.generation += 1
            if fresh and hop > self._stored_hop:
                self._stored_hop = hop
                for key, value in fresh:
                    self._cache[key] = (self.generation, value)

    def _refreshable(self) -> list[tuple[CacheKey, str, str, Params]]:
        """The cached reads asked in the last ``REFRESH_WINDOW_S``, newest first."""
        now = time.monotonic()
        for key in [k for k, asked in self._asked.items() if now - asked[3] > REFRESH_WINDOW_S]:
            del self._asked[key]
        recent = sorted(self._asked.items(), key=lambda item: -item[1][3])[:MAX_REFRESHED]
        return [(key, kind, sql, params) for key, (kind, sql, params, _) in recent]

    async def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        """One statement as its own transaction; returns the rows it changed."""
        return await self.write(lambda conn: max(conn.execute(sql, params).rowcount, 0))

    # -- reads ---------------------------------------------------------------------------

    @property
    def reader(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise StoreError("database is not open")
        return self._reader

    async def fetchall(
        self,
        sql: str,
        params: tuple[object, ...] | dict[str, object] = (),
        *,
        cached: bool = False,
    ) -> list[sqlite3.Row]:
        """All rows; ``cached``: reuse the last result until a write commits."""
        if cached:
            return list(cast(tuple[sqlite3.Row, ...], await self._cached("all", sql, params)))
        return await self._rows(sql, params)

    async def fetchone(
        self,
        sql: str,
        params: tuple[object, ...] | dict[str, object] = (),
        *,
        cached: bool = False,
    ) -> sqlite3.Row | None:
        """The first row or None, for queries of one row (a key, ``LIMIT 1``, an aggregate):
        every row the query yields is read; ``cached`` as for ``fetchall``."""
        if cached:
            return cast(sqlite3.Row | None, await self._cached("one", sql, params))
        rows = await self._rows(sql, params)
        return rows[0] if rows else None

    async def _rows(
        self, sql: str, params: tuple[object, ...] | dict[str, object]
    ) -> list[sqlite3.Row]:
        """Run ``sql`` and read all its rows in ONE hop on the reader's thread.

        Reads see the writes committed before them only this way: a statement left open
        across hops (execute, fetch, close, with other coroutines' reads in between) keeps
        the reader connection in the read transaction it began, and every read made
        meanwhile sees the database as it was then (a job's last event said "running"
        after its "done" had committed). Finished within its hop, each read starts afresh.
        """
        return list(await self.reader.execute_fetchall(sql, params))

    async def scalar(
        self, sql: str, params: tuple[object, ...] = (), *, cached: bool = False
    ) -> object:
        row = await self.fetchone(sql, params, cached=cached)
        return None if row is None else row[0]

    async def _cached(self, kind: str, sql: str, params: Params) -> object:
        """Reads that are asked far more often than the data changes (``daemon.status`` on
        every call: each aiosqlite await is a thread hop, queued behind the other reads) run
        again only after a write committed, and then by the write hop itself, ahead of their
        next caller (``write_each``).

        Exact because every write goes through the writer, which bumps ``generation`` after
        its hop. Only for queries whose result depends on the data and params alone (not on
        ``'now'``).
        """
        key = (kind, sql, params if isinstance(params, tuple) else tuple(sorted(params.items())))
        self._asked[key] = (kind, sql, params, time.monotonic())
        hit = self._cache.get(key)
        if hit is not None and hit[0] == self.generation:
            return hit[1]
        return await self._read_into_cache(key, kind, sql, params)

    async def _read_into_cache(self, key: CacheKey, kind: str, sql: str, params: Params) -> object:
        # Read the generation first: a commit landing during the query makes the entry stale.
        generation = self.generation
        value = _cached_value(kind, await self._rows(sql, params))
        if len(self._cache) > 256:
            self._cache.clear()
        self._cache[key] = (generation, value)
        return value

    async def scan(
        self,
        sql: str,
        params: tuple[object, ...],
        size: int,
        shape: Callable[[list[tuple[Any, ...]]], T],
    ) -> AsyncGenerator[tuple[int, T], None]:
        """A long read (an export): ``(len(rows), shape(rows))`` for each batch of up to
        ``size`` rows, on a connection and a thread of its own (``storage/scan.py``); at
        most ``MAX_SCANS`` at once. Iterate it inside ``contextlib.aclosing``."""
        async with self._scans:
            if self._reader is None:
                raise StoreError("database is not open")
            batches = read_batches(
                self.path, PRAGMAS[1:], sql=sql, params=params, size=size, shape=shape
            )
            async with contextlib.aclosing(batches):
                async for batch in batches:
                    yield batch
