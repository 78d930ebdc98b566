"""The database: its file, pragmas, migrations, reads, and one writer at a time.

Everything goes through aiosqlite's public API. Three connections share the file (WAL mode):
one writes, one serves the quick reads (status, lookups) and one the large reads (the rows of
a list answer, ``fetch_large``), so that a read never waits behind a page being written and
a quick read never waits behind thousands of rows being fetched. A write is a
plain transaction (``transaction``): ``BEGIN IMMEDIATE``, the caller's statements,
``COMMIT``; an ``asyncio.Lock`` keeps one writer at a time. A long read (an export) gets a
connection of its own for its duration (``scan``), so that a statement left open does not
hold the shared reader in an old snapshot.

Failures that say something about the disk rather than the data become our errors:
``SQLITE_FULL`` is ``StorageFullError`` (a job pauses and resumes once space is back), and a
database file deleted or replaced under the daemon is ``DatabaseGoneError`` (writes stop:
they would go into an unlinked inode and be lost at the next start).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
import structlog

from musiqued.errors import DatabaseGoneError, SchemaTooNewError, StorageFullError, StoreError
from musiqued.storage.dbfile import Found, prepare
from musiqued.storage.lock import hold_file, in_use_message
from musiqued.storage.migrations import LATEST_VERSION, MIGRATIONS

PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA busy_timeout = 10000",
    "PRAGMA cache_size = -16000",
    "PRAGMA temp_store = MEMORY",
    # A checkpoint copies the pages changed since the last one back into the database and
    # syncs it. In a large history one page of an import changes hundreds of index pages (a
    # listen has its own place in the per-artist, per-album and per-track indexes): at
    # SQLite's default of 1,000 pages, a checkpoint and its sync would follow every commit or
    # two. At 10,000 (a WAL of up to 40 MB) they come ten times less often, and a page
    # changed by several commits in between is copied once.
    "PRAGMA wal_autocheckpoint = 10000",
)
READER_PRAGMAS = (*PRAGMAS[1:], "PRAGMA query_only = ON")
MAX_SCANS = 4
"""Long reads (``Database.scan``) running at once; more wait for a free one. Each holds a
connection, its thread and its page cache while it runs."""

Row = sqlite3.Row
Params = Sequence[object] | dict[str, object]
T = TypeVar("T")

log = structlog.get_logger("musiqued.storage")


def file_identity(path: Path) -> tuple[int, int] | None:
    """``(st_dev, st_ino)`` of ``path``, or None when it does not exist."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return (info.st_dev, info.st_ino)


def _reason(path: Path, exc: Exception) -> str:
    """Why SQLite could not open ``path``, in words a person can act on."""
    if not os.access(path.parent, os.W_OK):
        # WAL mode creates <name>-wal and <name>-shm beside the database.
        return f"its directory {path.parent} is not writable ({exc})"
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return f"the file is damaged ({exc}); restore it from a backup, or move it away"
    return str(exc)


def _is_full(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorname", None) == "SQLITE_FULL"


async def _connect(path: Path, pragmas: Sequence[str]) -> aiosqlite.Connection:
    # isolation_level=None: transactions are ours (BEGIN IMMEDIATE … COMMIT).
    conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        for pragma in pragmas:
            # Closed at once: a statement left open (journal_mode answers a row) would make
            # a migration's DROP TABLE fail with "database table is locked".
            await (await conn.execute(pragma)).close()
    except BaseException:
        await conn.close()
        raise
    conn.row_factory = sqlite3.Row
    return conn


async def _migrate(path: Path, conn: aiosqlite.Connection) -> None:
    async with conn.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    version = int(row[0]) if row is not None else 0
    if version > LATEST_VERSION:
        raise SchemaTooNewError(
            f"database {path} has schema version {version}, newer than this "
            f"musiqued understands ({LATEST_VERSION}); upgrade musiqued"
        )
    if version == LATEST_VERSION:
        return
    if version > 0:
        backup = path.with_name(f"{path.name}.v{version}.bak")
        await (await conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")).close()
        await asyncio.to_thread(shutil.copy2, path, backup)
    for target, script in enumerate(MIGRATIONS[version:], start=version + 1):
        await conn.executescript(
            f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {target};\nCOMMIT;"
        )


async def _our_tables() -> frozenset[str]:
    """Every table some version of our schema has (the migrations run in memory)."""
    names: set[str] = set()
    async with aiosqlite.connect(":memory:") as conn:
        for script in MIGRATIONS:
            await conn.executescript(script)
            names.update(
                row[0] for row in await conn.execute_fetchall("SELECT name FROM sqlite_master")
            )
    return frozenset(names)


async def _refuse_foreign(path: Path) -> None:
    """Refuse a file holding tables that no version of our schema has (another
    application's database), read-only: nothing is written into it, not even WAL mode."""
    async with (
        aiosqlite.connect(f"file:{path}?mode=ro", uri=True) as conn,
        conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'"
        ) as cursor,
    ):
        rows = await cursor.fetchall()
    ours = await _our_tables()
    foreign = sorted(str(row[0]) for row in rows if row[0] not in ours)
    if foreign:
        shown = ", ".join(repr(name) for name in foreign[:5])
        more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        raise StoreError(
            f"database {path} holds tables that are not musiqued's ({shown}{more}): it "
            "belongs to another application; set [daemon] database to another file"
        )


async def _rollback(conn: aiosqlite.Connection) -> None:
    await conn.execute("ROLLBACK")


class Database:
    """Owns the SQLite file for the daemon's lifetime."""

    def __init__(self, path: Path, *, exclusive: bool = False) -> None:
        """``exclusive``: hold a lock on the file itself while open, so that no other
        process holding it the same way (a second daemon) can open it too."""
        self.path = path
        self._exclusive = exclusive
        self._held: int | None = None
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._large_reader: aiosqlite.Connection | None = None
        self._writing = asyncio.Lock()
        self._scans = asyncio.Semaphore(MAX_SCANS)
        self._identity: tuple[int, int] | None = None
        self._gone: str | None = None
        self.created = False
        """True when ``open`` created the file (or found it empty): a new history."""

    async def open(self) -> None:
        try:
            found = prepare(self.path)
            self.created = found is not Found.EXISTING
            if self._exclusive:
                self._held = hold_file(self.path, in_use=in_use_message(self.path))
            if found is Found.EMPTY:
                log.warning("database file was empty; initialising it", database=str(self.path))
            if found is Found.EXISTING:
                await _refuse_foreign(self.path)
            self._writer = await _connect(self.path, PRAGMAS)
            await _migrate(self.path, self._writer)
            self._reader = await _connect(self.path, READER_PRAGMAS)
            self._large_reader = await _connect(self.path, READER_PRAGMAS)
            self._identity = file_identity(self.path)
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
        for conn in (self._large_reader, self._reader, self._writer):
            if conn is not None:
                with contextlib.suppress(sqlite3.Error, ValueError):
                    await conn.close()
        self._large_reader = self._reader = self._writer = None
        # Last: closing any descriptor of the file drops SQLite's POSIX locks on it.
        held, self._held = self._held, None
        if held is not None:
            os.close(held)

    # -- the file ------------------------------------------------------------------------

    def check_file(self) -> str | None:
        """Why the file on disk is no longer ours (deleted, replaced), else None."""
        if self._gone is None and self._identity is not None:
            now = file_identity(self.path)
            if now is None:
                self._gone = f"the database file {self.path} was deleted while musiqued ran"
            elif now != self._identity:
                self._gone = f"the database file {self.path} was replaced while musiqued ran"
        return self._gone

    def free_bytes(self) -> int | None:
        """Space left for the database's files (unprivileged), or None if it cannot be told."""
        try:
            info = os.statvfs(self.path.parent)
        except OSError:
            return None
        return info.f_bavail * info.f_frsize

    # -- writes --------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction: committed if the block ends, rolled back if it raises
        (or is cancelled). One at a time: a second caller waits for the first to end."""
        async with self._writing:
            conn = self._writer
            if conn is None:
                raise StoreError("database is not open")
            gone = self.check_file()
            if gone is not None:
                raise DatabaseGoneError(f"{gone}; writes stopped, restart musiqued")
            try:
                try:
                    await conn.execute("BEGIN IMMEDIATE")
                    yield conn
                    await conn.execute("COMMIT")
                except BaseException:
                    # A statement awaited when the task is cancelled still runs on the
                    # connection's thread; the rollback queued after it (shielded from a
                    # second cancel) leaves no transaction open for the next writer. A
                    # COMMIT that ran before the cancel stays: the rollback then finds no
                    # transaction, which is harmless.
                    with contextlib.suppress(sqlite3.Error):
                        await asyncio.shield(_rollback(conn))
                    raise
            except sqlite3.Error as exc:
                if _is_full(exc):
                    raise StorageFullError(
                        f"no space left on {self.path.parent} for the database"
                    ) from None
                raise

    async def execute(self, sql: str, params: Params = ()) -> int:
        """One statement as its own transaction; returns the rows it changed."""
        async with self.transaction() as conn:
            cursor = await conn.execute(sql, params)
            return max(cursor.rowcount, 0)

    # -- reads ---------------------------------------------------------------------------

    def _read(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise StoreError("database is not open")
        return self._reader

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Every row of ``sql``, read in one go: a statement left open across awaits would
        keep the reader in the snapshot it began with, and later reads would miss commits."""
        return list(await self._read().execute_fetchall(sql, params))

    async def fetch_large(self, sql: str, params: Params = ()) -> list[Row]:
        """``fetchall`` for a read of many rows (the thousands of a list answer), on the large
        reads' own connection: the quick reads never queue behind it."""
        if self._large_reader is None:
            raise StoreError("database is not open")
        return list(await self._large_reader.execute_fetchall(sql, params))

    async def fetch_large_as(
        self, sql: str, params: Params, convert: Callable[[Row], T]
    ) -> list[T]:
        """``fetch_large`` with each row made into ``convert(row)`` on the large reads' own
        thread, as it is read: the thousands of values of a list answer are not built on
        the caller's thread, which serves every other client."""
        if self._large_reader is None:
            raise StoreError("database is not open")
        async with self._large_reader.execute(sql, params) as cursor:

            def make(raw: sqlite3.Cursor, values: tuple[Any, ...]) -> T:
                return convert(Row(raw, values))

            cursor.row_factory = make  # type: ignore[assignment]  # typed narrower than it is
            return list(await cursor.fetchall())  # type: ignore[arg-type]

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """The first row or None, for queries of one row (a key, ``LIMIT 1``, an aggregate)."""
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def scalar(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    async def scan(
        self, sql: str, params: Params, size: int
    ) -> AsyncGenerator[list[tuple[Any, ...]], None]:
        """A long read (an export): the rows of ``sql`` in batches of up to ``size``, on a
        connection of its own; at most ``MAX_SCANS`` at once. Iterate it inside
        ``contextlib.aclosing`` so that leaving early closes the connection."""
        async with self._scans:
            if self._reader is None:
                raise StoreError("database is not open")
            conn = await aiosqlite.connect(self.path, isolation_level=None)
            try:
                for pragma in READER_PRAGMAS:
                    await conn.execute(pragma)
                async with conn.execute(sql, params) as cursor:
                    while rows := await cursor.fetchmany(size):
                        yield [tuple(row) for row in rows]
            finally:
                with contextlib.suppress(sqlite3.Error, ValueError):
                    await conn.close()
