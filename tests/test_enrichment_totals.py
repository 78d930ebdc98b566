"""The enrichment queue's running counts (``enrichment_totals``, ``job_albums_enriched``) stay
exactly equal to the full queries over the queue whatever happens to its rows, and the
migration that adds them derives them from an existing queue."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from musiqued.storage.migrations import MIGRATIONS

STATES = ("pending", "running", "done", "failed", "skipped")


@contextmanager
def database(version: int = len(MIGRATIONS)) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        for script in MIGRATIONS[:version]:
            conn.executescript(script)
        yield conn
    finally:
        conn.close()


def counted(conn: sqlite3.Connection) -> tuple[dict[tuple[str, str], int], dict[int, int]]:
    totals = {
        (source, state): n
        for source, state, n in conn.execute("SELECT source, state, n FROM enrichment_totals")
        if n
    }
    albums = {job: n for job, n in conn.execute("SELECT job_id, n FROM job_albums_enriched") if n}
    return totals, albums


def queried(conn: sqlite3.Connection) -> tuple[dict[tuple[str, str], int], dict[int, int]]:
    """The same figures as the queries they replace compute them."""
    totals = {
        (source, state): n
        for source, state, n in conn.execute(
            "SELECT source, state, COUNT(*) FROM enrichment_queue GROUP BY source, state"
        )
    }
    albums = dict(
        conn.execute(
            """SELECT job_id, COUNT(*) FROM (
                SELECT job_id, item_id FROM enrichment_queue
                WHERE job_id IS NOT NULL AND item_kind = 'album'
                GROUP BY job_id, item_id
                HAVING SUM(state NOT IN ('done', 'skipped')) = 0)
            GROUP BY job_id"""
        ).fetchall()
    )
    return totals, albums


def add_albums(conn: sqlite3.Connection, rng: random.Random, count: int) -> None:
    """New artists and albums, some made by a job: the triggers queue them."""
    for _ in range(count):
        artist = conn.execute(
            "INSERT INTO artists (name, name_key) VALUES (?, ?)",
            (name := f"artist {rng.random()}", name),
        ).lastrowid
        job = rng.choice([None, 1, 2, 3])
        conn.execute(
            "INSERT INTO albums (artist_id, title, title_key, job_id) VALUES (?, 'a', 'a', ?)",
            (artist, job),
        )


def test_counts_follow_every_change_of_the_queue() -> None:
    """Random inserts (through new albums and artists), state changes (one row or many at
    once, done and back), and deletions: after each, the counts equal the full queries."""
    rng = random.Random(31)
    with database() as conn:
        conn.executemany(
            "INSERT INTO jobs (id, kind, state, created_at) VALUES (?, 'import', 'running', 0)",
            [(1,), (2,), (3,)],
        )
        add_albums(conn, rng, 40)
        assert counted(conn) == queried(conn)
        enriched_seen = False
        for step in range(600):
            ids = [row[0] for row in conn.execute("SELECT id FROM enrichment_queue")]
            action = rng.random()
            if action < 0.05:
                add_albums(conn, rng, rng.randint(1, 3))
            elif action < 0.1 and ids:
                conn.execute("DELETE FROM enrichment_queue WHERE id = ?", (rng.choice(ids),))
            elif action < 0.15:
                conn.execute(
                    "UPDATE enrichment_queue SET state = ? WHERE source = ? AND state = ?",
                    (
                        rng.choice(STATES),
                        rng.choice(["lastfm", "spotify", "ai"]),
                        rng.choice(STATES),
                    ),
                )
            elif ids:
                conn.execute(
                    "UPDATE enrichment_queue SET state = ? WHERE id = ?",
                    (rng.choice(STATES), rng.choice(ids)),
                )
            assert counted(conn) == queried(conn), step
            enriched_seen = enriched_seen or bool(counted(conn)[1])
        assert enriched_seen, "albums became enriched at times: both directions were seen"


def test_the_migration_derives_the_counts_from_the_queue() -> None:
    """A database from before the counts, its queue part done: upgraded, the counts are the
    queue's."""
    rng = random.Random(32)
    with database(version=len(MIGRATIONS) - 1) as conn:
        conn.execute(
            "INSERT INTO jobs (id, kind, state, created_at) VALUES (1, 'import', 'done', 0)"
        )
        add_albums(conn, rng, 30)
        conn.execute("UPDATE enrichment_queue SET state = 'done' WHERE id % 3 != 0")
        conn.execute("UPDATE enrichment_queue SET state = 'skipped' WHERE id % 7 = 0")
        conn.executescript(MIGRATIONS[-1])
        assert counted(conn) == queried(conn)
        assert counted(conn)[1], "some albums enriched before the upgrade"
