"""The one connection that writes: a plain ``sqlite3.Connection`` living on its own thread.

Every write of the daemon is a plain function of ``(conn, …)`` handed to ``Writer.run``; the
functions run one after another on the writer's single thread, each transaction whole, in
ONE hop from the event loop (an await per statement would wait for the busy loop between
statements). Nothing else touches the connection, so no lock is needed: the thread is the
queue.

Failures that say something about the disk rather than the data become our errors:
``SQLITE_FULL`` is ``StorageFullError`` (the job pauses and resumes once space is back),
and a database file deleted or replaced under the daemon is ``DatabaseGoneError`` (writes
stop: they would go into an unlinked inode and be lost at the next start).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeAlias, TypeVar

from musiqued.errors import DatabaseGoneError, StorageFullError, StoreError

T = TypeVar("T")

FULL_CODES = frozenset({"SQLITE_FULL"})


def file_identity(path: Path) -> tuple[int, int] | None:
    """``(st_dev, st_ino)`` of ``path``, or None when it does not exist."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return (info.st_dev, info.st_ino)


def in_transaction(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """``work`` between BEGIN IMMEDIATE and COMMIT; rolled back if it raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work(conn)
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    return result


@dataclass(frozen=True, slots=True)
class OwnTransaction(Generic[T]):
    """A unit of ``Writer.transactions`` that is its own transaction (one statement, which
    SQLite commits by itself, or its own BEGIN … COMMIT): run as it is.

    Why: the writer's thread gives the GIL up for every statement and waits to win it back
    from the busy event loop; a BEGIN and a COMMIT around a one-statement page are two more
    of those waits.
    """

    work: Callable[[sqlite3.Connection], T]

    def __call__(self, conn: sqlite3.Connection) -> T:
        try:
            result = self.work(conn)
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
        if conn.in_transaction:
            conn.execute("ROLLBACK")
            raise StoreError("a write that should commit by itself left its transaction open")
        return result


Unit: TypeAlias = Callable[[sqlite3.Connection], T] | OwnTransaction[T]
"""What ``Writer.transactions`` runs: a function it wraps in BEGIN IMMEDIATE … COMMIT, or an
``OwnTransaction``."""


class WriteChain:
    """Hops handed to the writer one after another without waiting for each: they commit in
    order, and once one has failed the later ones fail without running.

    For writes that build on each other (an import page's checkpoint names the pages of the
    hops before it): queueing the next hop while the last one runs keeps the writer's
    thread busy, and the chain keeps a later hop from committing over an earlier failure.
    """

    def __init__(self) -> None:
        self.failed = False


class Writer:
    """Owns the writing connection and the thread it lives on."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None
        self.gone: str | None = None
        """Why writing stopped for good (the file vanished or was replaced), else None."""

    async def open(self, setup: Callable[[sqlite3.Connection], None]) -> None:
        """Connect on the writer's thread and run ``setup`` (pragmas, migrations) there."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="musiqued-writer")

        def connect() -> None:
            # isolation_level=None: transactions are ours (BEGIN IMMEDIATE … COMMIT).
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            try:
                setup(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn

        await self._submit(connect)
        self._identity = file_identity(self.path)

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.get_running_loop().run_in_executor(executor, conn.close)
        executor.shutdown(wait=False)

    def check_file(self) -> str | None:
        """Is the file on disk still the one we write? The reason it is not, else None."""
        if self.gone is None and self._identity is not None:
            now = file_identity(self.path)
            if now is None:
                self.gone = f"the database file {self.path} was deleted while musiqued ran"
            elif now != self._identity:
                self.gone = f"the database file {self.path} was replaced while musiqued ran"
        return self.gone

    async def run(
        self, work: Callable[[sqlite3.Connection], T], chain: WriteChain | None = None
    ) -> T:
        """``work(conn)`` on the writer's thread, outside any transaction of ours; in
        ``chain``: not run if an earlier hop of the chain failed."""
        if chain is None:
            return await self._submit(lambda: self._guarded(work))
        return await self._submit(lambda: self._chained(chain, work))

    async def transactions(
        self,
        works: Sequence[Unit[T]],
        after: Callable[[sqlite3.Connection], None] | None = None,
        chain: WriteChain | None = None,
    ) -> list[T]:
        """Each of ``works`` as its OWN transaction (``Unit``), one after another, all in one hop.

        The first that raises is rolled back and its exception propagates; those before it
        stay committed, those after it never run. So a unit may count on every earlier one
        having committed (an import page's checkpoint names the pages before it). ``after``
        runs once they all committed, in the same hop, before any other write: reads that
        see exactly what they left.
        """

        def run_all(conn: sqlite3.Connection) -> list[T]:
            results = [
                work(conn) if isinstance(work, OwnTransaction) else in_transaction(conn, work)
                for work in works
            ]
            if after is not None:
                after(conn)
            return results

        return await self.run(run_all, chain)

    def _chained(self, chain: WriteChain, work: Callable[[sqlite3.Connection], T]) -> T:
        if chain.failed:
            raise StoreError("not written: an earlier write it builds on failed")
        try:
            return self._guarded(work)
        except BaseException:
            chain.failed = True
            raise

    def _guarded(self, work: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        if conn is None:
            raise StoreError("database is not open")
        gone = self.check_file()
        if gone is not None:
            raise DatabaseGoneError(f"{gone}; writes stopped, restart musiqued")
        try:
            return work(conn)
        except sqlite3.Error as exc:
            if getattr(exc, "sqlite_errorname", None) in FULL_CODES:
                raise StorageFullError(
                    f"no space left on {self.path.parent} for the database"
                ) from None
            raise

    async def _submit(self, work: Callable[[], T]) -> T:
        if self._executor is None:
            raise StoreError("database is not open")
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, work)
        try:
            return await asyncio.shield(future)
        finally:
            # Cancelled meanwhile: the work is already on the writer's thread and will end
            # (commit or roll back) there; wait for it, so what follows sees its outcome.
            if not future.done():
                await asyncio.wait([future])
                future.exception()  # retrieved: the caller sees the cancellation instead
