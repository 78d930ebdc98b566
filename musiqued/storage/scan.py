"""Long reads (an export): one query read in batches, each batch shaped on the scan's thread.

A scan has a connection and a thread of its own for its duration. Not the shared reader's:
a statement left open there would hold that connection's read transaction, so every other
read on it (``daemon.status``, the cached counts) would see the database as it was when
the scan began, and wait behind each batch.

Each batch is fetched AND shaped (formatted, say) on the scan's thread by a plain function
of the rows, as writes are plain functions run on the writer's thread: the rows never
cross to the event loop, and fetching and formatting run one after the other on one
thread. Split between two threads (aiosqlite's fetching, the loop formatting) they fought
over the GIL, which sqlite3 releases and takes back for every row: a 1,000,000-listen CSV
export took 9.2 s of CPU that way, against 6.3 s for the same work in one plain thread.
The next batches are prepared while the caller handles this one (``AHEAD``), so a moment's
delay on either side does not stall the other; no more than that is ever in memory.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sqlite3
from collections.abc import AsyncGenerator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
Row = tuple[Any, ...]

AHEAD = 2
"""Batches prepared ahead of the one the caller handles."""


async def read_batches(
    path: Path,
    pragmas: Sequence[str],
    *,
    sql: str,
    params: tuple[object, ...],
    size: int,
    shape: Callable[[list[Row]], T],
) -> AsyncGenerator[tuple[int, T], None]:
    """``(len(rows), shape(rows))`` for each batch of up to ``size`` rows of ``sql``, in
    order (never an empty batch).

    ``shape`` runs on the scan's thread: give it no object the event loop also uses. Iterate
    this inside ``contextlib.aclosing``, so that leaving early closes the connection.
    """
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="musiqued-scan")
    loop = asyncio.get_running_loop()
    connection: list[sqlite3.Connection] = []

    def start() -> sqlite3.Cursor:
        conn = sqlite3.connect(path, isolation_level=None)
        connection.append(conn)
        for pragma in pragmas:
            conn.execute(pragma)
        conn.execute("PRAGMA query_only = ON")
        return conn.execute(sql, params)

    def close() -> None:
        for conn in connection:
            conn.close()

    ahead: collections.deque[asyncio.Future[tuple[int, T] | None]] = collections.deque()
    try:
        cursor = await loop.run_in_executor(executor, start)

        def batch() -> tuple[int, T] | None:
            rows = cursor.fetchmany(size)
            return (len(rows), shape(rows)) if rows else None

        # One thread takes the batches in the order they were asked for.
        ahead.extend(loop.run_in_executor(executor, batch) for _ in range(AHEAD))
        while (done := await ahead.popleft()) is not None:
            ahead.append(loop.run_in_executor(executor, batch))
            yield done
    finally:
        for future in ahead:
            # Those not started yet never run; one that already failed has said all it had
            # to (the caller is leaving anyway).
            if not future.cancel() and not future.cancelled():
                future.exception()
        # Queued after the batch the thread may be on; it runs even if this wait is
        # cancelled, so the connection is closed whatever happens here.
        closing = loop.run_in_executor(executor, close)
        executor.shutdown(wait=False)
        with contextlib.suppress(sqlite3.Error):
            await closing
