"""An import page and its job's progress as one statement (``storage.job_pages``): the same
rows, counters and checkpoint as the page written statement by statement, committed together
or not at all."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from musiqued.errors import NotFoundError, StoreError
from musiqued.models import Scrobble
from musiqued.storage.job_pages import write_job_page
from musiqued.storage.jobs import PageProgress
from musiqued.storage.listens import prepare_page
from musiqued.storage.migrations import MIGRATIONS
from musiqued.storage.writer import OwnTransaction

COUNTERS = "pages_done, tracks_imported, tracks_skipped, tracks_errors, checkpoint, error_reasons"


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS:
        conn.executescript(script)
    conn.execute("INSERT INTO jobs (kind, state, created_at) VALUES ('import', 'running', 0)")
    return conn


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = _connect(tmp_path / "m.db")
    yield connection
    connection.close()


def _page(start: int, n: int, artist: str = "Artist", album: str = "Album") -> list[Scrobble]:
    return [
        Scrobble(timestamp=start + i, artist=artist, title=f"Song {i}", album=album)
        for i in range(n)
    ]


def _progress(done: int, **values: Any) -> PageProgress:
    return PageProgress(checkpoint={"done": [[1, done]]}, active_s=float(done), **values)


def _state(conn: sqlite3.Connection) -> dict[str, Any]:
    """Everything a page write leaves: the job's counters, the listens and the totals."""
    return {
        "job": conn.execute(f"SELECT {COUNTERS} FROM jobs WHERE id = 1").fetchone(),
        "listens": conn.execute(
            "SELECT timestamp, date, track_id, artist_id, album_id, source, job_id"
            " FROM listening_history ORDER BY id"
        ).fetchall(),
        "albums": conn.execute("SELECT id, title, job_id FROM albums ORDER BY id").fetchall(),
        "days": conn.execute("SELECT day, n FROM day_totals ORDER BY day").fetchall(),
        "artists": conn.execute("SELECT * FROM artist_totals ORDER BY artist_id").fetchall(),
        "queued_albums": conn.execute(
            "SELECT total_albums_to_enrich FROM jobs WHERE id = 1"
        ).fetchone(),
    }


def _statement_by_statement(conn: sqlite3.Connection, scrobbles: list[Scrobble]) -> None:
    """The same page through the path that writes a statement per table (the rows hold a
    NUL character, which JSON cannot carry)."""
    marked = [
        Scrobble(s.timestamp, s.artist, s.title + "\x00", s.album) if i == 0 else s
        for i, s in enumerate(scrobbles)
    ]
    page = prepare_page(marked, source="import", job_id=1)
    assert page.json_rows is None
    write_job_page(conn, 1, page, _progress(1, errors=1, reasons=("x",)), first_visit=True)


def test_first_visit_counts_new_and_existing_listens(conn: sqlite3.Connection) -> None:
    first = prepare_page(_page(1000, 5), source="import", job_id=1)
    assert first.json_rows is not None
    result, row = write_job_page(conn, 1, first, _progress(1), first_visit=True)
    assert (result.imported, result.skipped, result.new_albums) == (5, 0, 1)
    assert (row["pages_done"], row["tracks_imported"], row["tracks_skipped"]) == (1, 5, 0)
    assert not conn.in_transaction

    # Three of these are stored already: skipped on a first visit, not counted on a later one.
    overlapping = prepare_page(_page(1000, 8)[2:], source="import", job_id=1)
    result, row = write_job_page(conn, 1, overlapping, _progress(2), first_visit=True)
    assert (result.imported, result.skipped) == (3, 3)
    assert (row["tracks_imported"], row["tracks_skipped"]) == (8, 3)
    result, row = write_job_page(
        conn,
        1,
        prepare_page(_page(1000, 8), source="import", job_id=1),
        _progress(3, pages=0),
        first_visit=False,
    )
    assert (result.imported, row["tracks_imported"], row["tracks_skipped"]) == (0, 8, 3)
    assert row["pages_done"] == 2
    assert json.loads(row["checkpoint"]) == {"done": [[1, 3]]}
    assert row == dict(
        zip(
            row,
            conn.execute(f"SELECT {', '.join(row)} FROM jobs WHERE id = 1").fetchone(),
            strict=True,
        )
    )


def test_one_statement_leaves_what_the_statements_leave(tmp_path: Path) -> None:
    """Same rows, totals, albums queued and counters, whichever way the page is written."""
    scrobbles = _page(5000, 40, artist="Band") + _page(90_000, 10, artist="Other", album="")
    states = []
    for name, write in (
        (
            "one",
            lambda c: write_job_page(
                c,
                1,
                prepare_page(scrobbles, source="import", job_id=1),
                _progress(1, errors=1, reasons=("x",)),
                first_visit=True,
            ),
        ),
        ("several", lambda c: _statement_by_statement(c, scrobbles)),
    ):
        connection = _connect(tmp_path / f"{name}.db")
        try:
            write(connection)
            state = _state(connection)
        finally:
            connection.close()
        states.append(state)
    assert states[0]["job"][:4] == (1, 50, 0, 1)
    assert states[0]["job"] == states[1]["job"]
    # The listens' track rows differ only in the one title holding a NUL character.
    assert [r[:2] + r[3:] for r in states[0]["listens"]] == [
        r[:2] + r[3:] for r in states[1]["listens"]
    ]
    for key in ("albums", "days", "artists", "queued_albums"):
        assert states[0][key] == states[1][key], key


def test_error_reasons_of_a_page_fetched_again_replace_its_earlier_ones(
    conn: sqlite3.Connection,
) -> None:
    page = prepare_page(_page(1000, 3), source="import", job_id=1)
    write_job_page(
        conn,
        1,
        page,
        _progress(1, errors=2, reasons=("page 1: a", "page 1: b")),
        first_visit=True,
    )
    _, row = write_job_page(
        conn,
        1,
        page,
        _progress(1, pages=0, errors=-1, reasons=("page 1: c",), replaces="page 1: "),
        first_visit=False,
    )
    assert row["tracks_errors"] == 1
    assert json.loads(row["error_reasons"]) == ["page 1: c"]


def test_a_missing_job_writes_nothing(conn: sqlite3.Connection) -> None:
    page = prepare_page(_page(1000, 3), source="import", job_id=1)
    with pytest.raises(NotFoundError, match="no job 7"):
        write_job_page(conn, 7, page, _progress(1), first_visit=True)
    assert not conn.in_transaction
    assert conn.execute("SELECT COUNT(*) FROM listening_history").fetchone() == (0,)
    assert conn.execute("SELECT COUNT(*) FROM day_totals").fetchone() == (0,)


def test_a_failing_page_commits_neither_rows_nor_checkpoint(conn: sqlite3.Connection) -> None:
    """A statement failing half-way (here the running totals) undoes the page's rows too."""
    conn.execute(
        "CREATE TRIGGER fail_totals BEFORE INSERT ON day_totals"
        " WHEN NEW.day = '1970-01-02' BEGIN SELECT RAISE(ABORT, 'disk trouble'); END"
    )
    with pytest.raises(sqlite3.IntegrityError, match="disk trouble"):
        write_job_page(
            conn,
            1,
            prepare_page(_page(86_400, 3), source="import", job_id=1),
            _progress(1),
            first_visit=True,
        )
    assert not conn.in_transaction
    assert conn.execute("SELECT COUNT(*) FROM listening_history").fetchone() == (0,)
    assert conn.execute(f"SELECT {COUNTERS} FROM jobs").fetchone()[:4] == (0, 0, 0, 0)
    _, row = write_job_page(
        conn,
        1,
        prepare_page(_page(1000, 3), source="import", job_id=1),
        _progress(1),
        first_visit=True,
    )
    assert row["tracks_imported"] == 3


def test_after_a_rolled_back_page_the_writer_is_made_again(conn: sqlite3.Connection) -> None:
    """The page statement's temporary table, made inside a transaction that rolls back, is
    undone with it: the next one-statement page makes it again."""
    conn.execute("BEGIN")
    prepare_page(_page(1000, 2), source="tracker", job_id=None).write(conn)
    conn.execute("ROLLBACK")
    result, row = write_job_page(
        conn,
        1,
        prepare_page(_page(2000, 4), source="import", job_id=1),
        _progress(1),
        first_visit=True,
    )
    assert (result.imported, row["tracks_imported"]) == (4, 4)


def test_refreshing_a_page_counts_what_it_refreshed(conn: sqlite3.Connection) -> None:
    write_job_page(
        conn,
        1,
        prepare_page(_page(1000, 4), source="import", job_id=1),
        _progress(1),
        first_visit=True,
    )
    again = prepare_page(
        _page(1000, 4, album="Other"), source="import", job_id=1, skip_existing=False
    )
    result, row = write_job_page(conn, 1, again, _progress(2), first_visit=True)
    assert (result.imported, result.refreshed, result.skipped) == (0, 4, 0)
    assert (row["tracks_imported"], row["tracks_skipped"]) == (8, 0)
    albums = conn.execute(
        "SELECT DISTINCT al.title FROM listening_history l JOIN albums al ON al.id = l.album_id"
    ).fetchall()
    assert albums == [("Other",)]


def test_own_transaction_refuses_to_leave_one_open(conn: sqlite3.Connection) -> None:
    def forgets_commit(c: sqlite3.Connection) -> None:
        c.execute("BEGIN")
        c.execute("UPDATE jobs SET pages_done = 99")

    with pytest.raises(StoreError, match="left its transaction open"):
        OwnTransaction(forgets_commit)(conn)
    assert not conn.in_transaction
    assert conn.execute("SELECT pages_done FROM jobs").fetchone() == (0,)

    def fails_inside(c: sqlite3.Connection) -> None:
        c.execute("BEGIN")
        c.execute("UPDATE jobs SET pages_done = 98")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        OwnTransaction(fails_inside)(conn)
    assert not conn.in_transaction
    assert conn.execute("SELECT pages_done FROM jobs").fetchone() == (0,)
