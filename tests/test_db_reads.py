"""Reads through ``Database`` see every write committed before them, however many other
reads are in flight on the shared reader connection (the enricher's lanes, RPC calls and
the tracker all read at once)."""

from __future__ import annotations

import asyncio

from musiqued.storage.db import Database
from musiqued.storage.state import get_state, set_state


async def test_a_read_sees_the_write_committed_before_it(database: Database) -> None:
    """A value written then read back is the value written, while other coroutines keep
    reading: a read never runs inside the older snapshot of a read still in progress."""
    for key in ("a", "b", "c"):
        await set_state(database, key, key)
    reading = True

    async def keep_reading() -> int:
        reads = 0
        while reading:
            await database.fetchall("SELECT key, value FROM daemon_state")
            await database.fetchone("SELECT COUNT(*) FROM daemon_state")
            reads += 1
        return reads

    others = [asyncio.create_task(keep_reading()) for _ in range(4)]
    try:
        stale = []
        for value in range(1, 150):
            await set_state(database, "counter", value)
            read = await get_state(database, "counter")
            if read != value:
                stale.append((value, read))
    finally:
        reading = False
        done = await asyncio.gather(*others)
    assert min(done) > 0
    assert stale == []
