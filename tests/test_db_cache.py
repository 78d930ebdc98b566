"""Cached reads (``daemon.status``'s) stay exact, and a write hop reads them again itself: the
next caller gets the new value without a read of its own on the reader's connection."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from musiqued.errors import StoreError
from musiqued.storage import Database
from musiqued.storage.listens import count_listens, newest_listen
from tests.history_support import generated, store


async def test_a_write_hop_refreshes_the_reads_asked_lately(tmp_path: Path) -> None:
    db = Database(tmp_path / "m.db")
    await db.open()
    try:
        history = generated(1000)
        await store(db, history[:200])
        assert await count_listens(db) == 200  # asked: from now on the writes read it again
        traced: list[str] = []
        await db.reader.set_trace_callback(traced.append)
        for start in range(200, 1000, 200):
            await store(db, history[start : start + 200])
            assert await count_listens(db) == start + 200
            newest = await newest_listen(db)
            assert newest is not None
            assert newest["timestamp"] == max(s.timestamp for s in history[: start + 200])
        # newest_listen was first asked after the first of those writes: read once on the
        # reader, then by every write hop.
        assert len(traced) == 1, traced
        assert "ORDER BY l.timestamp DESC" in traced[0]
    finally:
        await db.close()


async def test_cached_reads_stay_exact_when_a_write_fails(tmp_path: Path) -> None:
    """A hop whose transaction fails commits nothing and refreshes nothing: the next
    caller reads for itself and gets the value as it is."""
    db = Database(tmp_path / "m.db")
    await db.open()
    try:
        await store(db, generated(300))
        assert await count_listens(db) == 300

        def fails(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM listening_history WHERE id <= 100")
            raise StoreError("refused half way")

        with pytest.raises(StoreError, match="refused half way"):
            await db.write(fails)
        assert await count_listens(db) == 300
        await db.execute("DELETE FROM listening_history WHERE id <= 100")
        assert await count_listens(db) == 200
    finally:
        await db.close()
