"""File imports in-process: a ``file`` job against a real database, matched against a
Last.fm history, counted exactly, dry-run, undone."""

from __future__ import annotations

import json
import zoneinfo
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from musiqued.config import ImportConfig
from musiqued.errors import BadFileError, ConflictError, StoreError
from musiqued.models import Scrobble
from musiqued.services.events import EventBus
from musiqued.services.file_batches import HandedFile
from musiqued.services.file_import import FileImporter
from musiqued.services.jobs import JobRunner
from musiqued.storage import jobs as job_store
from musiqued.storage.db import Database
from tests import interchange_files as files
from tests.fixtures.services import eventually
from tests.history_support import assert_totals_exact, store

WINDOW = 180
START = 1_700_000_000


@pytest.fixture
def runner(database: Database, bus: EventBus) -> JobRunner:
    return JobRunner(database, bus)


@pytest.fixture
async def importer(database: Database, runner: JobRunner) -> AsyncIterator[FileImporter]:
    """The file importer, its kind registered with ``runner``, which runs."""
    service = FileImporter(
        runner, database, ImportConfig(match_window_s=WINDOW), on_new_albums=lambda: None
    )
    await runner.open()
    try:
        yield service
    finally:
        await runner.close()


@pytest.fixture
def handed(tmp_path: Path) -> Iterator[Any]:
    with ExitStack() as stack:

        def hand(name: str, data: bytes) -> HandedFile:
            path = tmp_path / name
            path.write_bytes(data)
            return HandedFile(name, stack.enter_context(open(path, "rb")))

        yield hand


def spotify_history() -> tuple[list[Scrobble], list[dict[str, Any]]]:
    """A Last.fm history of 40 plays and a Spotify dump of the same plays, each ending
    200 s after a start offset from Last.fm's by up to the window either way, plus 10 plays
    Last.fm never saw, a repeated entry, short plays, an incognito one, a podcast."""
    lastfm = [
        Scrobble(timestamp=START + i * 600, artist=f"Artist {i % 5}", title=f"Song {i}")
        for i in range(40)
    ]
    entries = []
    for i, s in enumerate(lastfm):
        offset = (-WINDOW, WINDOW, 0, 90, -37)[i % 5]
        entries.append(
            files.spotify_play(
                s.timestamp + offset + 200, track=s.title.upper(), artist=f"artist {i % 5}"
            )
        )
    for i in range(10):
        entries.append(
            files.spotify_play(START + 40 * 600 + i * 600 + 200, track=f"New {i}", artist="Ärtist")
        )
    entries.append(dict(entries[-1]))  # the same play twice in the file
    entries.append(files.spotify_play(START + 99_000, ms_played=12_000))
    entries.append(files.spotify_play(START + 99_500, incognito=True))
    entries.append(files.spotify_episode(START + 99_900))
    return lastfm, entries


async def _finished(database: Database, job_id: int) -> dict[str, Any]:
    async def probe() -> Any:
        row = await job_store.get(database, job_id)
        return row if row is not None and row["state"] in ("done", "failed") else None

    return dict(await eventually(probe))


async def _count(database: Database, where: str = "1") -> int:
    return int(await database.scalar(f"SELECT COUNT(*) FROM listening_history WHERE {where}"))


async def _totals_exact(database: Database) -> None:
    await assert_totals_exact(database)
    assert await database.scalar("SELECT COALESCE(SUM(n), 0) FROM quarter_totals") == await _count(
        database
    )
    assert await database.scalar("SELECT COALESCE(SUM(n), 0) FROM artist_totals") == await _count(
        database
    )


async def test_a_spotify_dump_matches_the_lastfm_history_and_counts_exactly(
    database: Database, importer: FileImporter, handed: Any
) -> None:
    """Plays whose starts are within the window of a Last.fm listen of the same artist and
    title (case aside) are already stored; the others are added with origin spotify and
    source file; repeats, short, incognito and podcast entries are skipped by reason; the
    counts add up to the entries read; the dry run says the same and stores nothing."""
    lastfm, entries = spotify_history()
    await store(database, lastfm)
    dump = handed(
        "Streaming_History_Audio_2023.json", files.json_file(entries, bom=True, crlf=True)
    )
    dry = await importer.dry_run([dump])
    assert await _count(database) == 40
    job_id = await importer.start([dump])
    row = await _finished(database, job_id)
    assert row["state"] == "done", row["error"]
    summary = {
        "entries": 54,
        "added": 10,
        "already_stored": 40,
        "unreadable": 0,
        "skipped": {"duplicate_in_file": 1, "short_play": 1, "incognito": 1, "podcast": 1},
    }
    assert {**summary, "dry_run": True} == dry

    assert json.loads(row["result"]) == summary
    assert row["tracks_imported"] == 10
    assert await _count(database, "source = 'file' AND origin = 'spotify'") == 10
    assert await _count(database, f"job_id = {job_id} AND spotify_uri LIKE 'spotify:track:%'") == 10
    await _totals_exact(database)


async def test_a_second_import_of_the_same_file_adds_nothing(
    database: Database, importer: FileImporter, handed: Any
) -> None:
    """Listens added from a file are matched like Last.fm's: importing it again stores none."""
    _, entries = spotify_history()
    dump = handed("endsong_0.json", files.json_file(entries))
    first = await _finished(database, await importer.start([dump]))
    second = await _finished(database, await importer.start([dump]))

    assert json.loads(first["result"])["added"] == 50
    again = json.loads(second["result"])
    assert (again["added"], again["already_stored"]) == (0, 50)


async def test_undo_removes_exactly_what_the_job_added(
    database: Database, importer: FileImporter, handed: Any
) -> None:
    """Undo removes the job's listens and nothing else, the running totals stay exact; a
    Last.fm import cannot be undone, and says why."""
    lastfm, entries = spotify_history()
    await store(database, lastfm)
    job_id = await importer.start(
        [handed("Streaming_History_Audio_1.json", files.json_file(entries))]
    )
    await _finished(database, job_id)
    assert await _count(database) == 50
    assert await importer.undo(job_id) == {"job_id": job_id, "removed": 10}
    assert await _count(database) == 40
    assert await _count(database, "source = 'file'") == 0
    await _totals_exact(database)
    # The library holds nothing only the undone listens held: the new artist and its
    # tracks and album are gone, Last.fm's are all there.
    artists = await database.fetchall("SELECT name FROM artists ORDER BY name")
    assert [r["name"] for r in artists] == [f"Artist {i}" for i in range(5)]
    assert await database.scalar("SELECT COUNT(*) FROM tracks") == 40
    assert await database.scalar("SELECT COUNT(*) FROM albums") == 0
    assert (
        await database.scalar("SELECT COUNT(*) FROM enrichment_queue WHERE item_kind = 'artist'")
        == 5
    )
    lastfm_job = await job_store.create(database, "import", {}, state="done")
    with pytest.raises(ConflictError, match=r"Last\.fm's own history"):
        await importer.undo(lastfm_job)


async def test_a_pause_mid_file_then_the_resume_counts_exactly(
    database: Database, importer: FileImporter, runner: JobRunner, handed: Any
) -> None:
    """Paused after a few batches (the batch being stored is rolled back), resumed: every
    entry is counted once, every play stored once, repeats across batches still counted as
    repeats."""
    entries = [
        files.spotify_play(START + i * 300, track=f"Song {i % 400}", artist=f"Artist {i % 9}")
        for i in range(40_000)
    ]
    entries += entries[:500]  # repeats of plays read batches before
    job_id = await importer.start([handed("endsong_1.json", files.json_file(entries))])

    async def some_batches() -> Any:
        row = await job_store.get(database, job_id)
        return row is not None and row["pages_done"] >= 2

    await eventually(some_batches)
    assert (await runner.pause(job_id))["state"] == "paused"
    await runner.resume(job_id)
    row = await _finished(database, job_id)
    assert json.loads(row["result"]) == {
        "entries": 40_500,
        "added": 40_000,
        "already_stored": 0,
        "skipped": {"duplicate_in_file": 500},
        "unreadable": 0,
    }
    assert await _count(database) == 40_000
    await _totals_exact(database)


async def test_a_truncated_json_stores_what_came_before_and_fails_saying_where(
    database: Database, importer: FileImporter, handed: Any
) -> None:
    """The entries before the break are stored; the job fails naming the file and where."""
    _, entries = spotify_history()
    data = files.json_file(entries[:20])
    cut = handed("Streaming_History_Audio_2.json", data[: data.rindex(b'"ts"')])
    row = await _finished(database, await importer.start([cut]))
    assert row["state"] == "failed"
    assert "Streaming_History_Audio_2.json" in row["error"]
    assert "after entry 19" in row["error"]
    assert await _count(database) == 19


async def test_a_file_of_no_known_format_is_refused_with_nothing_stored(
    database: Database, importer: FileImporter, handed: Any
) -> None:
    """One line naming the file; no job, no listen."""
    with pytest.raises(BadFileError, match=r"notes\.txt: not a file musiqued can import"):
        await importer.start([handed("notes.txt", b"hello\nworld\n")])
    assert await job_store.list_jobs(database, 10) == []
    assert await _count(database) == 0


async def test_a_csv_not_in_utf8_stores_the_lines_before_and_fails_naming_the_line(
    database: Database, importer: FileImporter, handed: Any
) -> None:
    """A Last.fm CSV saved in Latin-1: the lines before the first non-UTF-8 one are stored
    (origin lastfm-csv), the job fails saying which line and how to fix it."""
    rows = [("Artist", "Album", f"Song {i}", files.lastfm_date(START + i * 600)) for i in range(3)]
    rows.append(("Björk", "Homogenic", "Jóga", files.lastfm_date(START + 4000)))
    row = await _finished(
        database,
        await importer.start([handed("scrobbles.csv", files.lastfm_csv(rows, encoding="latin-1"))]),
    )
    assert row["state"] == "failed"
    assert "scrobbles.csv: line 4 is not UTF-8" in row["error"]
    assert await _count(database, "origin = 'lastfm-csv' AND source = 'file'") == 3


async def test_no_room_for_the_copies_is_one_line_and_nothing_imported(
    database: Database, importer: FileImporter, handed: Any
) -> None:
    """Where the copies go cannot hold them (here a file stands where their folder goes):
    one line saying so, no job, no listen."""
    (database.path.parent / "imports").write_text("in the way")
    _, entries = spotify_history()
    with pytest.raises(StoreError, match=r"cannot keep a copy of the files in .*nothing imported"):
        await importer.start([handed("endsong_9.json", files.json_file(entries))])
    assert await job_store.list_jobs(database, 10) == []
    assert await _count(database) == 0


async def test_copies_no_job_will_read_again_are_removed(
    database: Database, importer: FileImporter, handed: Any
) -> None:
    """A done job's copies go when it ends; a failed job's stay (it may be resumed); what
    nothing refers to goes at the next start."""
    _, entries = spotify_history()
    data = files.json_file(entries)
    failed = await _finished(
        database, await importer.start([handed("endsong_5.json", data[: len(data) // 2])])
    )
    folders = database.path.parent / "imports"
    failed_folder = folders / json.loads(failed["params"])["folder"]
    assert failed["state"] == "failed"
    assert failed_folder.is_dir()
    (folders / "left-behind").mkdir()
    done = await _finished(database, await importer.start([handed("endsong_6.json", data)]))
    assert done["state"] == "done"
    assert sorted(p.name for p in folders.iterdir()) == [failed_folder.name]


async def test_a_scrobbler_log_in_local_time_without_a_callers_zone_is_in_the_daemons(
    database: Database, bus: EventBus, handed: Any
) -> None:
    """``#TZ/UNKNOWN`` and no zone from the caller: the daemon's zone (``[daemon] timezone``)."""
    runner = JobRunner(database, bus)
    service = FileImporter(
        runner,
        database,
        ImportConfig(),
        on_new_albums=lambda: None,
        zone=zoneinfo.ZoneInfo("Asia/Kolkata"),
    )
    await runner.open()
    try:
        wall = 1_612_124_100
        log = files.scrobbler_log(
            [("Artist", "Album", "Song", "1", "200", "L", str(wall), "")], zone="UNKNOWN"
        )
        await _finished(database, await service.start([handed(".scrobbler.log", log)]))
    finally:
        await runner.close()
    assert await database.scalar("SELECT timestamp FROM listening_history") == wall - 19_800
