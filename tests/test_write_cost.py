"""Writing a page costs the same whatever the size of the history: every statement of the page
write (the inserts, the running totals, the listing of what is new, the triggers that queue
new albums for enrichment and count them) reads the page's rows, never a whole table or
index. Counted in SQLite's own virtual-machine steps, not in time."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from musiqued.models import Scrobble
from musiqued.storage.listens import prepare_page
from musiqued.storage.migrations import MIGRATIONS
from tests.history_support import generated

PAGE = 200
JOB = 1
STEP_BATCH = 100
"""SQLite calls the progress handler every this many virtual-machine instructions."""


@contextmanager
def history_of(listens: int) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        for script in MIGRATIONS:
            conn.executescript(script)
        conn.execute(
            "INSERT INTO jobs (id, kind, state, created_at) VALUES (?, 'import', 'running', 0)",
            (JOB,),
        )
        for start in range(0, listens, 1000):
            page = generated(min(1000, listens - start), start=1_000_000_000 + start * 200)
            # Albums of their own, as a long import meets new ones: the job's queue grows.
            write(conn, [dataclasses.replace(s, album=f"{s.album} {start}") for s in page])
        yield conn
    finally:
        conn.close()


def write(conn: sqlite3.Connection, scrobbles: list[Scrobble], *, want_new: bool = False) -> int:
    """The daemon's page write in one transaction; returns the SQLite steps it took."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    prepared = prepare_page(scrobbles, source="import", job_id=JOB)
    conn.set_progress_handler(count, STEP_BATCH)
    try:
        conn.execute("BEGIN")
        result = prepared.write(conn, want_new=want_new)
        conn.execute("COMMIT")
    finally:
        conn.set_progress_handler(None, 0)
    assert result.imported == len(scrobbles)
    return steps


def next_page(conn: sqlite3.Connection) -> list[Scrobble]:
    """A page after the newest listen, with albums never seen (the job queues them)."""
    newest = conn.execute("SELECT MAX(timestamp) FROM listening_history").fetchone()[0]
    return [
        dataclasses.replace(s, album=f"{s.album} (new {i % 20})")
        for i, s in enumerate(generated(PAGE, start=newest + 10_000))
    ]


def test_a_page_write_does_not_grow_with_the_history() -> None:
    """The same page written after 2,000 and after 60,000 listens takes about the same
    number of SQLite steps (a scan of the history would take ~30 times as many), for the
    import's write and for the tracker's, which also lists the listens that were new."""
    for want_new in (False, True):
        with history_of(2_000) as small, history_of(60_000) as large:
            few = write(small, next_page(small), want_new=want_new)
            many = write(large, next_page(large), want_new=want_new)
        assert many <= few * 1.5, (want_new, few, many)


def test_totals_stay_on_the_new_rows_once_sqlite_has_statistics() -> None:
    """With ``ANALYZE``'s statistics (which change SQLite's plans) the page write still
    reads only the page."""
    with history_of(2_000) as small, history_of(60_000) as large:
        for conn in (small, large):
            conn.execute("ANALYZE")
        few = write(small, next_page(small), want_new=True)
        many = write(large, next_page(large), want_new=True)
    assert many <= few * 1.5, (few, many)
