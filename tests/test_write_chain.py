"""Hops queued on the writer without waiting for each other (the import hands over its next
batch while the last one runs): in a ``WriteChain`` they commit in order, and none commits
after an earlier one failed, since its checkpoint would name pages that were never stored."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from musiqued.errors import StoreError
from musiqued.storage import Database
from musiqued.storage.writer import WriteChain


def _insert(value: int) -> Callable[[sqlite3.Connection], int]:
    def work(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t VALUES (?)", (value,))
        return value

    return work


async def _open(tmp_path: Path) -> Database:
    db = Database(tmp_path / "m.db")
    await db.open()
    await db.write(lambda conn: conn.execute("CREATE TABLE t (v INTEGER)"))
    return db


async def _values(db: Database) -> list[int]:
    return [int(row[0]) for row in await db.fetchall("SELECT v FROM t ORDER BY rowid")]


async def test_queued_hops_commit_in_order(tmp_path: Path) -> None:
    db = await _open(tmp_path)
    try:
        chain = WriteChain()
        hops = [
            asyncio.create_task(db.write_each([_insert(n), _insert(n + 1)], chain))
            for n in range(0, 20, 2)
        ]
        results = await asyncio.gather(*hops)
        assert [value for pair in results for value in pair] == list(range(20))
        assert await _values(db) == list(range(20))
        assert not chain.failed
    finally:
        await db.close()


async def test_a_hop_queued_behind_a_failed_one_writes_nothing(tmp_path: Path) -> None:
    db = await _open(tmp_path)
    try:
        release = threading.Event()

        def held(conn: sqlite3.Connection) -> int:
            # The first hop waits on the writer's thread until the second is queued behind it.
            release.wait(10)
            conn.execute("INSERT INTO t VALUES (1)")
            raise sqlite3.OperationalError("disk I/O error")

        chain = WriteChain()
        first = asyncio.create_task(db.write_each([held], chain))
        second = asyncio.create_task(db.write_each([_insert(2)], chain))
        await asyncio.sleep(0)  # both hops handed to the writer's thread
        release.set()
        with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
            await first
        with pytest.raises(StoreError, match="an earlier write it builds on failed"):
            await second
        assert chain.failed
        assert await _values(db) == []
        # Outside the chain, writing goes on.
        await db.write_each([_insert(3)])
        assert await _values(db) == [3]
    finally:
        await db.close()


async def test_without_a_chain_a_later_hop_still_commits(tmp_path: Path) -> None:
    """What the chain is for: unchained hops are independent."""
    db = await _open(tmp_path)
    try:

        def failing(conn: sqlite3.Connection) -> int:
            raise sqlite3.OperationalError("disk I/O error")

        first = asyncio.create_task(db.write_each([failing]))
        second = asyncio.create_task(db.write_each([_insert(2)]))
        with pytest.raises(sqlite3.OperationalError):
            await first
        assert await second == [2]
        assert await _values(db) == [2]
    finally:
        await db.close()
