"""An import page and its job's progress as ONE statement, which is its own transaction.

The page's rows and the checkpoint that says the page is done must commit together. Written
as a row of a temporary table whose trigger runs the page statement (``listens``) and the
job's UPDATE (``jobs.record_page_statement``), they need no BEGIN and no COMMIT: SQLite
commits the one statement by itself. Every statement costs the writer's thread a wait for
the GIL, which the event loop holds while it parses the next pages.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import Any

from musiqued.errors import NotFoundError
from musiqued.storage.jobs import (
    JOB_COLUMNS,
    PROGRESS_VALUES,
    PageProgress,
    progress_values,
    record_page_statement,
    write_page_progress,
)
from musiqued.storage.listens import (
    PAGE_INBOX,
    PAGE_RESULT,
    PreparedPage,
    StoreResult,
    create_page_writer,
    lacks_table,
)
from musiqued.storage.writer import in_transaction

JOB_PAGE_INBOX = "mq_job_page_inbox"
_NO_JOB = "musiqued: no such job"

_STORED = f"(SELECT imported FROM temp.{PAGE_RESULT})"
_VALUES = {name: f"NEW.{name}" for name in PROGRESS_VALUES} | {
    # What the page newly stored counts as imported; on its first visit, the rest (stored
    # before) as skipped.
    "imported": f"NEW.imported + {_STORED}",
    "skipped": f"NEW.skipped + CASE WHEN NEW.first_visit THEN NEW.size - {_STORED} ELSE 0 END",
}
_JOB_PAGE_WRITER = (
    f"CREATE TEMP TABLE IF NOT EXISTS {JOB_PAGE_INBOX} (artists TEXT, albums TEXT,"
    " tracks TEXT, listens TEXT, size INT, first_visit INT, " + ", ".join(PROGRESS_VALUES) + ")",
    f"""CREATE TEMP TRIGGER IF NOT EXISTS {JOB_PAGE_INBOX}_write
AFTER INSERT ON {JOB_PAGE_INBOX} BEGIN
    SELECT RAISE(ABORT, '{_NO_JOB}') WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE id = NEW.job_id);
    INSERT INTO {PAGE_INBOX} VALUES (NEW.artists, NEW.albums, NEW.tracks, NEW.listens);
    {record_page_statement(_VALUES).strip()};
    DELETE FROM {JOB_PAGE_INBOX};
END""",
)
_WRITE_JOB_PAGE = (
    f"INSERT INTO temp.{JOB_PAGE_INBOX} VALUES (:artists, :albums, :tracks, :listens, "
    ":size, :first_visit, " + ", ".join(f":{name}" for name in PROGRESS_VALUES) + ")"
)
_JOB_PAGE_WRITTEN = (
    f"SELECT r.new_albums, r.imported, {', '.join(f'j.{c}' for c in JOB_COLUMNS)}"
    f" FROM temp.{PAGE_RESULT} r JOIN jobs j ON j.id = ?"
)


def write_job_page(
    conn: sqlite3.Connection,
    job_id: int,
    page: PreparedPage,
    progress: PageProgress,
    *,
    first_visit: bool,
) -> tuple[StoreResult, dict[str, Any]]:
    """Store ``page`` and add ``progress`` to job ``job_id``, committed together by this call
    (no transaction may be open); the page's result and the job's row after it.

    The listens the page newly stores add to ``tracks_imported``; on the page's
    ``first_visit`` the rest (stored before, or refreshed) to ``tracks_skipped`` (to
    ``tracks_imported``); ``progress`` says what else the page adds.
    """
    rows = page.json_rows
    if page.size and rows is not None and page.refresh is None:
        return _one_statement(conn, job_id, page.size, rows, progress, first_visit=first_visit)
    # A page holding a NUL character, or refreshing listens: several statements.
    return in_transaction(
        conn, lambda c: _statements(c, job_id, page, progress, first_visit=first_visit)
    )


def _one_statement(
    conn: sqlite3.Connection,
    job_id: int,
    size: int,
    rows: tuple[str, ...],
    progress: PageProgress,
    *,
    first_visit: bool,
) -> tuple[StoreResult, dict[str, Any]]:
    values = progress_values(job_id, progress) | {"size": size, "first_visit": first_visit}
    parameters = dict(zip(("artists", "albums", "tracks", "listens"), rows, strict=True)) | values
    try:
        _insert(conn, parameters)
    except sqlite3.OperationalError as exc:
        if not lacks_table(exc, JOB_PAGE_INBOX, PAGE_INBOX, PAGE_RESULT):
            raise
        create_page_writer(conn)
        for statement in _JOB_PAGE_WRITER:
            conn.execute(statement)
        _insert(conn, parameters)
    written = conn.execute(_JOB_PAGE_WRITTEN, (job_id,)).fetchone()
    new_albums, imported, *job = written
    result = StoreResult(
        imported=imported, skipped=size - imported, refreshed=0, new_albums=new_albums, new=[]
    )
    return result, dict(zip(JOB_COLUMNS, job, strict=True))


def _insert(conn: sqlite3.Connection, parameters: dict[str, Any]) -> None:
    try:
        conn.execute(_WRITE_JOB_PAGE, parameters)
    except sqlite3.IntegrityError as exc:
        if _NO_JOB in str(exc):
            raise NotFoundError(f"no job {parameters['job_id']}") from None
        raise


def _statements(
    conn: sqlite3.Connection,
    job_id: int,
    page: PreparedPage,
    progress: PageProgress,
    *,
    first_visit: bool,
) -> tuple[StoreResult, dict[str, Any]]:
    result = page.write(conn)
    counted = dataclasses.replace(
        progress,
        imported=progress.imported + result.imported + (result.refreshed if first_visit else 0),
        skipped=progress.skipped + (result.skipped if first_visit else 0),
    )
    return result, write_page_progress(conn, job_id, counted)
