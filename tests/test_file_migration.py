"""The file-import migration (``SCHEMA_FILES``) on a database of the version before it: the
rebuilt ``listening_history`` and ``jobs`` keep every row, id, index and trigger."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from musiqued.storage.db import Database
from musiqued.storage.migrations import LATEST_VERSION, MIGRATIONS, SCHEMA_FILES

TABLES = ("listening_history", "jobs")


def _schema(conn: sqlite3.Connection) -> dict[str, str]:
    rows = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') AND sql IS NOT NULL"
        f" AND tbl_name IN {TABLES}"
    )
    return {name: " ".join(sql.split()) for name, sql in rows}


def _later(files_at: int) -> tuple[set[str], set[str]]:
    """Names of the indexes and triggers the migrations after ``SCHEMA_FILES`` add, and of
    those they drop."""
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        for script in MIGRATIONS[: files_at + 1]:
            conn.executescript(script)
        before = set(_schema(conn))
        for script in MIGRATIONS[files_at + 1 :]:
            conn.executescript(script)
        after = set(_schema(conn))
        return after - before, before - after


async def test_the_rebuild_keeps_rows_ids_indexes_and_triggers(tmp_path: Path) -> None:
    """Every index and trigger on the two tables is there after, as it was (but those a later
    migration drops); the listens keep their ids and fields and say origin lastfm; the jobs
    keep theirs; the totals still move."""
    files_at = MIGRATIONS.index(SCHEMA_FILES)
    path = tmp_path / "musique.db"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        for version, script in enumerate(MIGRATIONS[:files_at], start=1):
            conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {version};\nCOMMIT;")
        conn.executescript(
            """
            INSERT INTO artists (id, name, name_key) VALUES (1, 'Björk', 'björk');
            INSERT INTO tracks (id, artist_id, title, title_key) VALUES (7, 1, 'Jóga', 'jóga');
            INSERT INTO listening_history (id, timestamp, date, track_id, artist_id, source, job_id)
                VALUES (41, 1700000000, '2023-11-14', 7, 1, 'import', 3),
                       (95, 1700000010, '2023-11-14', 7, 1, 'tracker', NULL);
            INSERT INTO quarter_totals VALUES (1700000000 / 900, 2);
            INSERT INTO artist_totals VALUES (1, 2);
            INSERT INTO track_totals VALUES (7, 2);
            INSERT INTO jobs (id, kind, state, created_at, tracks_imported)
                VALUES (3, 'import', 'done', 1.5, 1);
            """
        )
        before = _schema(conn)
    database = Database(path)
    await database.open()
    try:
        listens = await database.fetchall(
            "SELECT id, source, origin, job_id, spotify_uri FROM listening_history ORDER BY id"
        )
        assert [tuple(r) for r in listens] == [
            (41, "import", "lastfm", 3, ""),
            (95, "tracker", "lastfm", None, ""),
        ]
        job = await database.fetchone("SELECT kind, state, tracks_imported FROM jobs WHERE id = 3")
        assert job is not None
        assert tuple(job) == ("import", "done", 1)
        async with database.transaction() as conn:
            await conn.execute("DELETE FROM listening_history WHERE id = 95")
        assert await database.scalar("SELECT n FROM quarter_totals") == 1
        assert await database.scalar("PRAGMA user_version") == LATEST_VERSION
    finally:
        await database.close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        after = _schema(conn)
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    added, dropped = _later(files_at)
    kept = {name: sql for name, sql in before.items() if name not in dropped}
    assert {name: sql for name, sql in after.items() if name in before} == kept
    assert set(after) - set(before) - added == {"listening_history_job"}
