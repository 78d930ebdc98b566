"""The SQLite store: WAL, recorded migrations, refusal of a newer schema, the listen identity
rule, and page writes."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from musiqued.app.cli import exit_status
from musiqued.app.daemon import Daemon
from musiqued.config import Config
from musiqued.errors import MusiqueError, SchemaTooNewError
from musiqued.models import Listen, Scrobble
from musiqued.storage import Database
from musiqued.storage.listens import count_listens, recent_listens, write_page
from musiqued.storage.migrations import LATEST_VERSION, MIGRATIONS
from tests.history_support import assert_totals_exact, store
from tests.support import base_sections


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "m.db")
    await database.open()
    yield database
    await database.close()


def _page(start: int, n: int, artist: str = "Artist", album: str = "Album") -> list[Scrobble]:
    return [
        Scrobble(timestamp=start + i, artist=artist, title=f"Song {i}", album=album)
        for i in range(n)
    ]


async def test_wal_and_recorded_version(db: Database) -> None:
    """The database runs in WAL mode and records the applied migration in user_version."""
    assert await db.scalar("PRAGMA journal_mode") == "wal"
    assert await db.scalar("PRAGMA user_version") == LATEST_VERSION
    tables = {r[0] for r in await db.fetchall("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"artists", "albums", "tracks", "listening_history", "jobs"} <= tables


async def test_reopen_keeps_data_and_version(tmp_path: Path) -> None:
    """Opening an up-to-date database again migrates nothing and keeps its rows."""
    first = Database(tmp_path / "m.db")
    await first.open()
    await store(first, _page(1000, 3), source="import")
    await first.close()
    again = Database(tmp_path / "m.db")
    await again.open()
    assert await count_listens(again) == 3
    assert await again.scalar("PRAGMA user_version") == LATEST_VERSION
    await again.close()


async def test_upgrade_derives_the_new_totals_from_the_stored_listens(tmp_path: Path) -> None:
    """A database of the previous schema version, with listens, opens: the newest migration
    runs over them, the old file is kept as a backup, and every running total equals the
    listens."""
    path = tmp_path / "m.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(f"BEGIN;\n{MIGRATIONS[0]}\nPRAGMA user_version = 1;\nCOMMIT;")
    conn.execute("INSERT INTO artists (id, name, name_key) VALUES (1, 'A', 'a'), (2, 'B', 'b')")
    conn.execute("INSERT INTO albums (id, artist_id, title, title_key) VALUES (1, 1, 'X', 'x')")
    conn.execute(
        "INSERT INTO tracks (id, artist_id, title, title_key) VALUES (1, 1, 'S', 's'), (2, 2, 'T', 't')"
    )
    moments = [1_700_000_000 + 3571 * i for i in range(2000)]  # about three months
    conn.executemany(
        "INSERT INTO listening_history (timestamp, date, track_id, artist_id, album_id, source)"
        " VALUES (?, '', ?, ?, ?, 'import')",
        [(t, 1 + i % 2, 1 + i % 2, 1 if i % 2 == 0 else None) for i, t in enumerate(moments)],
    )
    for version, script in enumerate(MIGRATIONS[1:-1], start=2):
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {version};\nCOMMIT;")
    conn.close()
    db = Database(path)
    await db.open()
    try:
        assert await db.scalar("PRAGMA user_version") == LATEST_VERSION
        assert (tmp_path / f"m.db.v{LATEST_VERSION - 1}.bak").exists()
        assert await count_listens(db) == len(moments)
        await assert_totals_exact(db)
    finally:
        await db.close()


def _newer_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    conn.close()


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """A database written by a newer musiqued is refused with a clear message."""
    path = tmp_path / "m.db"
    _newer_database(path)
    with pytest.raises(SchemaTooNewError, match="newer than this musiqued understands"):
        await Database(path).open()


async def test_daemon_exits_on_newer_schema(workdir: Path) -> None:
    """The daemon refuses to start on a newer database: its exit status is non-zero, the
    reason shown (the daemon's own start, in this process; the process exiting with that
    one line is in ``test_startup_errors``)."""
    _newer_database(workdir / "musique.db")
    config = Config.model_validate(base_sections(workdir))
    with pytest.raises(MusiqueError) as refused:
        await Daemon(config).run()
    assert exit_status(refused.value) != 0
    assert f"schema version {LATEST_VERSION + 1}, newer than this musiqued" in str(refused.value)
    assert "upgrade musiqued" in str(refused.value)


async def test_identity_is_case_insensitive_unicode(db: Database) -> None:
    """(timestamp, artist, title) compared case-insensitively, non-ASCII included: "Ä" and
    "ä" are the same listen; another second is another listen."""
    variants = [
        Scrobble(timestamp=100, artist="Ärzte", title="Ärger"),
        Scrobble(timestamp=100, artist="ärzte", title="äRGER"),
        Scrobble(timestamp=100, artist="ÄRZTE", title="ärger"),
    ]
    result = await store(db, variants, source="import")
    assert (result.imported, result.skipped) == (1, 2)
    again = await store(
        db, [Scrobble(timestamp=101, artist="ärzte", title="ärger")], source="tracker"
    )
    assert again.imported == 1
    assert await count_listens(db) == 2
    assert await db.scalar("SELECT COUNT(*) FROM artists") == 1


async def test_unique_index_enforces_identity(db: Database) -> None:
    """The rule holds below store_page too: a duplicate row is rejected by unique indexes."""
    await store(db, [Scrobble(timestamp=5, artist="Ä", title="x")], source="import")
    with pytest.raises(sqlite3.IntegrityError):
        await db.execute(
            "INSERT INTO listening_history (timestamp, date, track_id, artist_id, source) "
            "SELECT timestamp, date, track_id, artist_id, 'tracker' FROM listening_history"
        )
    with pytest.raises(sqlite3.IntegrityError):
        await db.execute("INSERT INTO artists (name, name_key) VALUES ('ä', 'ä')")
    indexes = await db.fetchall("PRAGMA index_list('listening_history')")
    assert any(row["unique"] and row["name"] == "listening_history_identity" for row in indexes)


async def test_same_page_twice_stores_no_duplicates(db: Database) -> None:
    """Storing the same page twice: the second write skips every listen; counts are right."""
    page = _page(1_000_000, 200)
    first = await store(db, page, source="import")
    second = await store(db, page, source="import")
    assert (first.imported, first.skipped, first.new_albums) == (200, 0, 1)
    assert (second.imported, second.skipped, second.new_albums) == (0, 200, 0)
    assert await count_listens(db) == 200
    assert await db.scalar("SELECT COUNT(*) FROM tracks") == 200


async def test_skip_existing_false_refreshes(db: Database) -> None:
    """skip_existing=False updates stored listens (album, loved) instead of skipping them."""
    await store(db, _page(10, 3, album=""), source="import")
    changed = [
        Scrobble(timestamp=s.timestamp, artist=s.artist, title=s.title, album="Later", loved=True)
        for s in _page(10, 3)
    ]
    result = await store(db, changed, source="import", skip_existing=False)
    assert (result.imported, result.skipped, result.refreshed) == (0, 0, 3)
    rows = await db.fetchall(
        "SELECT al.title, l.loved FROM listening_history l JOIN albums al ON al.id = l.album_id"
    )
    assert [(r[0], r[1]) for r in rows] == [("Later", 1)] * 3


async def recent(db: Database, limit: int) -> list[Listen]:
    """The latest ``limit`` listens as the storage reads them."""
    return await recent_listens(db, limit, lambda listen: listen)


async def test_each_listen_keeps_its_track_mbid(db: Database) -> None:
    """One title scrobbled with two MBIDs (two releases) and once without: every listen reads
    back with its own; skip_existing=False refreshes a listen's MBID."""
    mbid_a, mbid_b = "aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002"
    page = [
        Scrobble(timestamp=100, artist="Artist", title="Song", album="First", track_mbid=mbid_a),
        Scrobble(timestamp=200, artist="Artist", title="Song", album="Live", track_mbid=mbid_b),
        Scrobble(timestamp=300, artist="Artist", title="Song"),
    ]
    await store(db, page, source="import")
    assert [x.track_mbid for x in reversed(await recent(db, 10))] == [mbid_a, mbid_b, ""]
    fixed = [Scrobble(timestamp=300, artist="Artist", title="Song", track_mbid=mbid_a)]
    await store(db, fixed, source="import", skip_existing=False)
    assert (await recent(db, 1))[0].track_mbid == mbid_a


async def test_count_follows_writes_and_rollbacks(db: Database) -> None:
    """The listens count daemon.status shows (the running totals) is exact after every
    write, and a transaction that fails leaves nothing of itself."""
    assert await count_listens(db) == 0
    await store(db, _page(1, 5), source="import")
    assert await count_listens(db) == 5
    await db.execute("DELETE FROM listening_history WHERE timestamp < 3")
    assert await count_listens(db) == 3

    async def delete_then_fail() -> None:
        async with db.transaction() as conn:
            await conn.execute("DELETE FROM listening_history")
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        await delete_then_fail()
    assert await count_listens(db) == 3


async def test_a_cancelled_transaction_is_rolled_back_and_the_next_writes(db: Database) -> None:
    """A page write cancelled half-way (a paused job) leaves nothing behind, and the next
    writer finds no transaction left open."""
    started = asyncio.Event()

    async def interrupted() -> None:
        async with db.transaction() as conn:
            await write_page(conn, _page(1000, 5), source="import", job_id=None)
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(interrupted())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await count_listens(db) == 0
    result = await store(db, _page(1000, 5))
    assert (result.imported, result.skipped) == (5, 0)
    assert await count_listens(db) == 5


async def test_text_with_nul_and_odd_characters_is_stored_unchanged(db: Database) -> None:
    """A NUL character, U+E000 and bidi controls in a name, title, album or MBID: stored and
    read back exactly, and recognised as the same listens when stored again."""
    odd = [
        Scrobble(timestamp=10, artist="nul\x00byte", title="t\x00\x00", album="a\x00"),
        Scrobble(timestamp=11, artist="\ue000private", title="\u202eevil", album="x\x00y"),
        Scrobble(timestamp=12, artist="plain", title="song", track_mbid="m\x00bid"),
    ]
    result = await store(db, odd)
    assert result.imported == 3
    back = sorted(await recent(db, 10), key=lambda x: x.timestamp)
    assert [(x.artist, x.title, x.album) for x in back] == [
        ("nul\x00byte", "t\x00\x00", "a\x00"),
        ("\ue000private", "\u202eevil", "x\x00y"),
        ("plain", "song", ""),
    ]
    assert back[2].track_mbid == "m\x00bid"
    again = await store(db, odd)
    assert (again.imported, again.skipped) == (0, 3)


async def test_pages_in_any_order_keep_counts_and_totals(db: Database) -> None:
    """Pages stored out of order, one of them twice: counts and running totals are those of
    the listens stored, and the tracker's page reads back exactly what it added."""
    for start, artist in ((2000, "Other"), (1000, "Artist")):
        async with db.transaction() as conn:
            result = await write_page(
                conn, _page(start, 5, artist), source="import", job_id=None, want_new=True
            )
        assert (result.imported, result.skipped, result.new_albums) == (5, 0, 1)
        assert [listen.timestamp for listen in result.new] == list(range(start, start + 5))
    again = await store(db, _page(1000, 5))
    assert (again.imported, again.skipped, again.new_albums) == (0, 5, 0)
    assert await db.scalar("SELECT COUNT(*) FROM listening_history") == 10
    assert await db.scalar("SELECT SUM(n) FROM quarter_totals") == 10
    totals = await db.fetchall("SELECT n FROM artist_totals ORDER BY artist_id")
    assert [row[0] for row in totals] == [5, 5]
