"""The database: connection set-up, pragmas, migrations, and serialised write transactions.

One writer connection, guarded by an ``asyncio.Lock`` so a transaction's statements never
interleave with another task's; one reader connection, which WAL lets run beside the writer.
Each aiosqlite await is a thread hop, so repositories write a page in a handful of
``executemany`` calls, never one await per row.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar, cast

import aiosqlite

from musiqued.errors import SchemaTooNewError, StoreError
from musiqued.storage.migrations import LATEST_VERSION, MIGRATIONS

PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA busy_timeout = 10000",
    "PRAGMA cache_size = -16000",
    "PRAGMA temp_store = MEMORY",
)

T = TypeVar("T")


async def on_thread(conn: aiosqlite.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``work`` with ``conn``'s sqlite3 connection on its own thread: ONE hop.

    A page written as one await per statement waits for the busy event loop between
    statements (each result is handed back through ``call_soon_threadsafe`` and the next
    statement queued from the loop); run whole on the connection's thread, it does not.
    aiosqlite has no public call for this; ``_execute`` is what its own methods use.
    """
    execute = cast(Callable[..., Awaitable[T]], conn._execute)
    return await execute(lambda: work(conn._conn))


def _in_transaction(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work(conn)
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    return result


class Database:
    """Owns the SQLite file for the daemon's lifetime."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        # Bumped after every committed write transaction: read results cached against it
        # stay exact without re-running the query on every call (``fetchall(cached=True)``).
        self.generation = 0
        self._cache: dict[tuple[str, str, tuple[object, ...]], tuple[int, object]] = {}

    async def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            writer = await aiosqlite.connect(self.path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from None
        self._writer = writer
        try:
            for pragma in PRAGMAS:
                await writer.execute(pragma)
            await self._migrate(writer)
            reader = await aiosqlite.connect(self.path, isolation_level=None)
            for pragma in PRAGMAS[1:]:
                await reader.execute(pragma)
            await reader.execute("PRAGMA query_only = ON")
            reader.row_factory = sqlite3.Row
            self._reader = reader
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                with contextlib.suppress(sqlite3.Error, ValueError):
                    await conn.close()
        self._reader = self._writer = None

    async def _migrate(self, conn: aiosqlite.Connection) -> None:
        async with conn.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        version = int(row[0]) if row else 0
        if version > LATEST_VERSION:
            raise SchemaTooNewError(
                f"database {self.path} has schema version {version}, newer than this "
                f"musiqued understands ({LATEST_VERSION}); upgrade musiqued"
            )
        if version == LATEST_VERSION:
            return
        if version > 0:
            backup = self.path.with_name(f"{self.path.name}.v{version}.bak")
            await conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            await asyncio.to_thread(shutil.copy2, self.path, backup)
        for target, script in enumerate(MIGRATIONS[version:], start=version + 1):
            await conn.executescript(
                f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {target};\nCOMMIT;"
            )

    @property
    def writer(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise StoreError("database is not open")
        return self._writer

    @property
    def reader(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise StoreError("database is not open")
        return self._reader

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction: committed on success, rolled back on any exception."""
        async with self._write_lock:
            conn = self.writer
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")
            self.generation += 1

    async def run_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work`` as one write transaction, run whole on the writer's thread (one hop).

        For hot paths (an import page and its checkpoint): same lock and guarantees as
        ``transaction()``, committed if ``work`` returns, rolled back if it raises. ``work``
        runs on another thread: give it values computed beforehand, not live objects the
        event loop may change meanwhile.
        """
        return (await self.run_transactions([work]))[0]

    async def run_transactions(self, works: Sequence[Callable[[sqlite3.Connection], T]]) -> list[T]:
        """Each of ``works`` as its OWN transaction, one after another, all in one hop.

        The first that raises is rolled back and its exception propagates; those before it
        stay committed, those after it never run. So a unit may count on every earlier
        one having committed (an import page's checkpoint names the pages before it).
        """

        def run_all(conn: sqlite3.Connection) -> list[T]:
            return [_in_transaction(conn, work) for work in works]

        async with self._write_lock:
            hop: asyncio.Future[list[T]] = asyncio.ensure_future(on_thread(self.writer, run_all))
            try:
                return await asyncio.shield(hop)
            finally:
                # Cancelled meanwhile: the transactions are already queued on the writer's
                # thread and will end (commit or roll back) there; hold the lock, and keep
                # cached reads exact, until they have.
                if not hop.done():
                    await asyncio.wait([hop])
                    hop.exception()  # retrieved: the caller sees the cancellation instead
                self.generation += 1

    async def fetchall(
        self,
        sql: str,
        params: tuple[object, ...] | dict[str, object] = (),
        *,
        cached: bool = False,
    ) -> list[sqlite3.Row]:
        """All rows; ``cached``: reuse the last result until a write transaction commits."""
        if cached:
            return list(cast(tuple[sqlite3.Row, ...], await self._cached("all", sql, params)))
        async with self.reader.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def fetchone(
        self,
        sql: str,
        params: tuple[object, ...] | dict[str, object] = (),
        *,
        cached: bool = False,
    ) -> sqlite3.Row | None:
        """The first row or None; ``cached`` as for ``fetchall``."""
        if cached:
            return cast(sqlite3.Row | None, await self._cached("one", sql, params))
        async with self.reader.execute(sql, params) as cursor:
            return await cursor.fetchone()

    async def scalar(
        self, sql: str, params: tuple[object, ...] = (), *, cached: bool = False
    ) -> object:
        row = await self.fetchone(sql, params, cached=cached)
        return None if row is None else row[0]

    async def cached_scalar(self, sql: str, params: tuple[object, ...] = ()) -> object:
        return await self.scalar(sql, params, cached=True)

    async def _cached(
        self, kind: str, sql: str, params: tuple[object, ...] | dict[str, object]
    ) -> object:
        """Reads that are asked far more often than the data changes (``daemon.status`` on
        every call: COUNT(*) over a million listens takes ~4 ms, and each aiosqlite await is
        a thread hop) run again only after a write transaction committed.

        Exact because every write goes through ``transaction()``, which bumps ``generation``
        after its COMMIT. Only for queries whose result depends on the data and params alone
        (not on ``'now'``).
        """
        key = (kind, sql, params if isinstance(params, tuple) else tuple(sorted(params.items())))
        hit = self._cache.get(key)
        if hit is not None and hit[0] == self.generation:
            return hit[1]
        # Read the generation first: a commit landing during the query makes the entry stale.
        generation = self.generation
        async with self.reader.execute(sql, params) as cursor:
            value: object = (
                tuple(await cursor.fetchall()) if kind == "all" else await cursor.fetchone()
            )
        if len(self._cache) > 256:
            self._cache.clear()
        self._cache[key] = (generation, value)
        return value
