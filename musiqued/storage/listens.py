"""Listens and their artists, albums and tracks.

``prepare_page`` → ``PreparedPage.write`` is the import, tracker and verify hot path: a page
is written with one statement per table (the page's rows as one JSON parameter) inside the
caller's transaction on the writer's thread (so a job's checkpoint commits with the rows it
covers). Every lookup goes through a unique index, so the cost per page stays flat as the
history grows.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from musiqued.aio import Turns, at_once
from musiqued.models import Scrobble, iso_utc, utc_day
from musiqued.storage.db import Database

Source = Literal["import", "tracker"]

# Each statement takes a whole page as ONE JSON array of rows (``json_each``), not one
# execution per row (executemany): Python's sqlite3 releases the GIL around every step, and
# each time it must win it back from the busy event loop; per row, that convoy made an
# import several times slower than the same writes on an idle thread. The page trigger
# below runs them all from one statement.
INSERT_ARTIST = """
INSERT INTO artists (name, name_key, mbid, url)
SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(?) WHERE true
ON CONFLICT (name_key) DO UPDATE SET
    mbid = CASE WHEN artists.mbid = '' THEN excluded.mbid ELSE artists.mbid END,
    url = CASE WHEN artists.url = '' THEN excluded.url ELSE artists.url END
WHERE (artists.mbid = '' AND excluded.mbid != '') OR (artists.url = '' AND excluded.url != '')
"""
# ``job_id``: the albums_enqueue trigger tags the new album's enrichment rows with the job
# and counts it on the job, so an import page needs no statement of its own for that.
INSERT_ALBUM = """
INSERT INTO albums (artist_id, title, title_key, mbid, job_id)
SELECT a.id, j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3
FROM json_each(?) j JOIN artists a ON a.name_key = j.value ->> 4 WHERE true
ON CONFLICT (artist_id, title_key) DO UPDATE SET mbid = excluded.mbid
WHERE albums.mbid = '' AND excluded.mbid != ''
"""
INSERT_TRACK = """
INSERT INTO tracks (artist_id, title, title_key, mbid, url)
SELECT a.id, j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3
FROM json_each(?) j JOIN artists a ON a.name_key = j.value ->> 4 WHERE true
ON CONFLICT (artist_id, title_key) DO UPDATE SET
    mbid = CASE WHEN tracks.mbid = '' THEN excluded.mbid ELSE tracks.mbid END,
    url = CASE WHEN tracks.url = '' THEN excluded.url ELSE tracks.url END
WHERE (tracks.mbid = '' AND excluded.mbid != '') OR (tracks.url = '' AND excluded.url != '')
"""
INSERT_LISTEN = """
INSERT INTO listening_history
    (timestamp, date, track_id, artist_id, album_id, source, loved, job_id, track_mbid)
SELECT j.value ->> 0, j.value ->> 1, t.id, a.id,
       (SELECT al.id FROM albums al WHERE al.artist_id = a.id AND al.title_key = j.value ->> 2),
       j.value ->> 3, j.value ->> 4, j.value ->> 5, j.value ->> 6
FROM json_each(?) j
JOIN artists a ON a.name_key = j.value ->> 8
JOIN tracks t ON t.artist_id = a.id AND t.title_key = j.value ->> 7
WHERE true
ON CONFLICT (timestamp, track_id) DO NOTHING
"""
PAGE_ROWS_TABLE = "temp.mq_page_rows"
"""Where a page whose text holds a NUL character is loaded (see ``PreparedPage``)."""
_CREATE_PAGE_ROWS = (
    f"CREATE TABLE IF NOT EXISTS {PAGE_ROWS_TABLE} (c0, c1, c2, c3, c4, c5, c6, c7, c8)"
)


def _from_table(sql: str) -> str:
    """The statement reading its rows from ``PAGE_ROWS_TABLE`` instead of a JSON array.

    SQLite's JSON functions end a string at a NUL character; a bound parameter does not.
    """
    return re.sub(r"value ->> (\d)", r"c\1", sql.replace("json_each(?)", PAGE_ROWS_TABLE))


_REFRESH_LISTEN = """
UPDATE listening_history SET
    album_id = (SELECT al.id FROM albums al
                WHERE al.artist_id = listening_history.artist_id AND al.title_key = ?),
    loved = ?,
    track_mbid = ?
WHERE timestamp = ? AND track_id = (
    SELECT t.id FROM tracks t JOIN artists a ON a.id = t.artist_id
    WHERE a.name_key = ? AND t.title_key = ?)
"""

# The page's new listens (ids above the largest before the page) added to the running
# totals, one statement per table (see migrations.SCHEMA_V2). The "+" keeps SQLite on the
# rowid range of the new rows: left to itself it reads the date or album index whole to skip
# the GROUP BY's sort, a cost that grows with the history (quadratic over an import).
# (``NOT INDEXED`` would say the same, but SQLite refuses it inside a trigger.)
_ROLLUPS = (
    """INSERT INTO day_totals (day, n)
    SELECT date, COUNT(*) FROM listening_history WHERE id > {before} GROUP BY +date
    ON CONFLICT (day) DO UPDATE SET n = n + excluded.n""",
    """INSERT INTO artist_totals (artist_id, n)
    SELECT artist_id, COUNT(*) FROM listening_history WHERE id > {before} GROUP BY +artist_id
    ON CONFLICT (artist_id) DO UPDATE SET n = n + excluded.n""",
    """INSERT INTO album_totals (album_id, n)
    SELECT album_id, COUNT(*) FROM listening_history
    WHERE id > {before} AND +album_id IS NOT NULL GROUP BY +album_id
    ON CONFLICT (album_id) DO UPDATE SET n = n + excluded.n""",
    """INSERT INTO track_totals (track_id, n)
    SELECT track_id, COUNT(*) FROM listening_history WHERE id > {before} GROUP BY +track_id
    ON CONFLICT (track_id) DO UPDATE SET n = n + excluded.n""",
)
ROLLUP_STATEMENTS = tuple(sql.format(before="?") for sql in _ROLLUPS)

# A page as ONE statement: its four JSON arrays inserted as a row of a temporary table, whose
# trigger runs the inserts and the running totals, and records what they did. Python's
# sqlite3 releases the GIL around every statement and must win it back from the event loop
# (busy parsing the next pages) after each: with a statement per table, that waiting took
# about a fifth of the import writer's time. (Per connection; made by the first page written.)
PAGE_INBOX = "mq_page_inbox"
PAGE_RESULT = "mq_page_result"
_PAGE_WRITER = (  # run one by one: executescript would commit the page's open transaction
    f"CREATE TEMP TABLE IF NOT EXISTS {PAGE_INBOX}"
    " (artists TEXT, albums TEXT, tracks TEXT, listens TEXT)",
    f"CREATE TEMP TABLE IF NOT EXISTS {PAGE_RESULT} (before INT, new_albums INT, imported INT)",
    f"INSERT INTO {PAGE_RESULT} SELECT 0, 0, 0 WHERE NOT EXISTS (SELECT 1 FROM {PAGE_RESULT})",
    f"""CREATE TEMP TRIGGER IF NOT EXISTS {PAGE_INBOX}_write AFTER INSERT ON {PAGE_INBOX} BEGIN
    {INSERT_ARTIST.replace("json_each(?)", "json_each(NEW.artists)").strip()};
    {INSERT_ALBUM.replace("json_each(?)", "json_each(NEW.albums)").strip()};
    UPDATE {PAGE_RESULT} SET new_albums = changes();
    {INSERT_TRACK.replace("json_each(?)", "json_each(NEW.tracks)").strip()};
    UPDATE {PAGE_RESULT} SET before = (SELECT COALESCE(MAX(id), 0) FROM listening_history);
    {INSERT_LISTEN.replace("json_each(?)", "json_each(NEW.listens)").strip()};
    UPDATE {PAGE_RESULT} SET imported = changes();
    {";".join(sql.format(before=f"(SELECT before FROM {PAGE_RESULT})") for sql in _ROLLUPS)};
    DELETE FROM {PAGE_INBOX};
END""",
)
_WRITE_PAGE = f"INSERT INTO temp.{PAGE_INBOX} VALUES (?, ?, ?, ?)"
_PAGE_WRITTEN = f"SELECT before, new_albums, imported FROM temp.{PAGE_RESULT}"


def create_page_writer(conn: sqlite3.Connection) -> None:
    """Make the page statement's temporary table and trigger on ``conn``, if not there yet
    (per connection; a rollback of the transaction that made them undoes them)."""
    for statement in _PAGE_WRITER:
        conn.execute(statement)


def lacks_table(exc: sqlite3.OperationalError, *tables: str) -> bool:
    """Did a statement fail because one of the (temporary) ``tables`` is not there?"""
    return "no such table" in str(exc) and any(table in str(exc) for table in tables)


def _write_json_page(conn: sqlite3.Connection, rows: tuple[str, ...]) -> tuple[int, int, int]:
    """``(largest id before the page, albums made or completed, listens stored)``."""
    try:
        conn.execute(_WRITE_PAGE, rows)
    except sqlite3.OperationalError as exc:
        if not lacks_table(exc, PAGE_INBOX):
            raise
        create_page_writer(conn)  # the connection's first page, or the first since a rollback
        conn.execute(_WRITE_PAGE, rows)
    before, new_albums, imported = conn.execute(_PAGE_WRITTEN).fetchone()
    return int(before), int(new_albums), int(imported)


# A track is one row per (artist, title), but Last.fm may give one title several MBIDs (one
# per release): the listen keeps the MBID it was scrobbled with, empty ones included.
LISTEN_COLUMNS = """
    l.id, l.timestamp, ar.name AS artist, t.title AS title, COALESCE(al.title, '') AS album,
    ar.mbid AS artist_mbid, COALESCE(al.mbid, '') AS album_mbid, l.track_mbid, l.source,
    l.loved
"""
LISTEN_FROM = """
    listening_history l
    JOIN tracks t ON t.id = l.track_id
    JOIN artists ar ON ar.id = l.artist_id
    LEFT JOIN albums al ON al.id = l.album_id
"""


@dataclass(frozen=True, slots=True)
class StoreResult:
    """What writing one page did; ``new`` lists the listens that were not stored before."""

    imported: int
    skipped: int
    refreshed: int
    new_albums: int
    """Albums created, or given the MBID they lacked (worth waking the enricher for)."""
    new: list[Scrobble]


@dataclass(frozen=True, slots=True)
class PageRows:
    """The parameters of ``PreparedPage``'s statements for one page: one list per statement,
    artists, albums and tracks once each (``tests/bench`` replays them with bare sqlite3)."""

    artists: list[tuple[Any, ...]]
    albums: list[tuple[Any, ...]]
    tracks: list[tuple[Any, ...]]
    listens: list[tuple[Any, ...]]

    def statements(self) -> list[tuple[str, tuple[str]]]:
        """The four inserts, in order, each with its rows as one JSON array parameter."""
        return [(sql, (orjson.dumps(rows).decode(),)) for sql, rows in self._by_statement()]

    def steps(self) -> list[Step]:
        """The four inserts as steps for ``PreparedPage``: JSON parameters, or (a page whose
        text holds a NUL character) rows bound one by one."""
        json_steps = [JsonStep(orjson.dumps(rows).decode()) for _, rows in self._by_statement()]
        if not any(_NUL_IN_JSON in step.rows for step in json_steps):
            return list(json_steps)
        return [TableStep(_from_table(sql), rows) for sql, rows in self._by_statement()]

    def _by_statement(self) -> list[tuple[str, list[tuple[Any, ...]]]]:
        return [
            (INSERT_ARTIST, self.artists),
            (INSERT_ALBUM, self.albums),
            (INSERT_TRACK, self.tracks),
            (INSERT_LISTEN, self.listens),
        ]


_NUL_IN_JSON = "\\u0000"


@dataclass(frozen=True, slots=True)
class JsonStep:
    """One insert's rows as one JSON array (run by the page trigger, ``PAGE_INBOX``)."""

    rows: str


@dataclass(frozen=True, slots=True)
class TableStep:
    """One insert reading rows bound one by one into ``PAGE_ROWS_TABLE`` (slower; only for
    the rare page whose text holds a NUL character, which JSON strings cannot carry)."""

    sql: str
    rows: list[tuple[Any, ...]]

    def run(self, conn: sqlite3.Connection) -> int:
        conn.execute(_CREATE_PAGE_ROWS)
        conn.execute(f"DELETE FROM {PAGE_ROWS_TABLE}")
        conn.executemany(
            f"INSERT INTO {PAGE_ROWS_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(*row, *(None,) * (9 - len(row))) for row in self.rows],
        )
        return max(conn.execute(self.sql).rowcount, 0)


Step = JsonStep | TableStep


# Scrobbles turned into rows per turn of the event loop (``prepare_page_in_turns``): about
# 0.6 ms of work, where a page of 1,000 takes some 3.5 ms.
SCROBBLES_PER_TURN = 250


def page_rows(scrobbles: Sequence[Scrobble], *, source: Source, job_id: int | None) -> PageRows:
    return at_once(_page_rows_in_turns(scrobbles, source=source, job_id=job_id))


def _page_rows_in_turns(
    scrobbles: Sequence[Scrobble], *, source: Source, job_id: int | None
) -> Turns[PageRows]:
    artists: dict[str, tuple[Any, ...]] = {}
    albums: dict[tuple[str, str], tuple[Any, ...]] = {}
    tracks: dict[tuple[str, str], tuple[Any, ...]] = {}
    listens: list[tuple[Any, ...]] = []
    for start in range(0, len(scrobbles), SCROBBLES_PER_TURN):
        if start:
            yield
        for s in scrobbles[start : start + SCROBBLES_PER_TURN]:
            artist_key = s.artist.casefold()
            title_key = s.title.casefold()
            album_key = s.album.casefold()
            artists.setdefault(artist_key, (s.artist, artist_key, s.artist_mbid, s.artist_url))
            if s.album:
                albums.setdefault(
                    (artist_key, album_key),
                    (s.album, album_key, s.album_mbid, job_id, artist_key),
                )
            tracks.setdefault(
                (artist_key, title_key),
                (s.title, title_key, s.track_mbid, s.track_url, artist_key),
            )
            listens.append(
                (
                    s.timestamp,
                    utc_day(s.timestamp),
                    album_key,
                    source,
                    int(s.loved),
                    job_id,
                    s.track_mbid,
                    title_key,
                    artist_key,
                )
            )
    return PageRows(list(artists.values()), list(albums.values()), list(tracks.values()), listens)


def prepare_page(
    scrobbles: Sequence[Scrobble],
    *,
    source: Source,
    job_id: int | None,
    skip_existing: bool = True,
) -> PreparedPage:
    """What ``PreparedPage.write`` needs, built on the caller's side of the thread hop.

    Only the statements' JSON is kept (and the refresh rows if asked): an import holds
    several prepared pages at once, and the peak memory of a long import counts.
    """
    return at_once(
        prepare_page_in_turns(scrobbles, source=source, job_id=job_id, skip_existing=skip_existing)
    )


def prepare_page_in_turns(
    scrobbles: Sequence[Scrobble],
    *,
    source: Source,
    job_id: int | None,
    skip_existing: bool = True,
) -> Turns[PreparedPage]:
    """``prepare_page``, pausing after every ``SCROBBLES_PER_TURN`` scrobbles' rows and
    before their statements' JSON is made."""
    rows = yield from _page_rows_in_turns(scrobbles, source=source, job_id=job_id)
    yield
    refresh = None
    if not skip_existing:
        refresh = [(r[2], r[4], r[6], r[0], r[8], r[7]) for r in rows.listens]
    return PreparedPage(len(scrobbles), rows.steps(), refresh)


@dataclass(frozen=True, slots=True)
class PreparedPage:
    """A page's statements with their rows, ready to run on the writer's thread."""

    size: int
    steps: list[Step]
    refresh: list[tuple[Any, ...]] | None
    """``skip_existing=False``: the album, loved flag and MBID to set on listens stored before."""

    @property
    def json_rows(self) -> tuple[str, ...] | None:
        """The page statement's four JSON arrays; None for a page that holds a NUL character
        (its rows go through ``PAGE_ROWS_TABLE``)."""
        rows = tuple(step.rows for step in self.steps if isinstance(step, JsonStep))
        return rows if len(rows) == len(self.steps) else None

    def write(self, conn: sqlite3.Connection, *, want_new: bool = False) -> StoreResult:
        """Run the statements inside the open transaction (blocking: the writer's thread)."""
        if not self.size:
            return StoreResult(0, 0, 0, 0, [])
        json_rows = self.json_rows
        if json_rows is not None:
            before, new_albums, imported = _write_json_page(conn, json_rows)
        else:  # a page holding a NUL character: its rows go through PAGE_ROWS_TABLE
            tables = [step for step in self.steps if isinstance(step, TableStep)]
            artists, albums, tracks, listen = tables
            artists.run(conn)
            new_albums = albums.run(conn)
            tracks.run(conn)
            row = conn.execute("SELECT COALESCE(MAX(id), 0) FROM listening_history").fetchone()
            before = int(row[0]) if row else 0
            imported = listen.run(conn)
            if imported:
                for statement in ROLLUP_STATEMENTS:
                    conn.execute(statement, (before,))
        existing = self.size - imported
        refreshed = 0
        if self.refresh is not None and existing:
            conn.executemany(_REFRESH_LISTEN, self.refresh)
            refreshed = existing
        new: list[Scrobble] = []
        if want_new and imported:
            new = [
                Scrobble(
                    timestamp=r[1],
                    artist=r[2],
                    title=r[3],
                    album=r[4],
                    artist_mbid=r[5],
                    album_mbid=r[6],
                    track_mbid=r[7],
                )
                for r in conn.execute(
                    f"SELECT {LISTEN_COLUMNS} FROM {LISTEN_FROM} WHERE l.id > ? "
                    # "+": sort the page's few rows rather than walk the timestamp index
                    # (the whole history) in order, which SQLite prefers otherwise.
                    "ORDER BY +l.timestamp, l.id",
                    (before,),
                )
            ]
        return StoreResult(
            imported=imported,
            skipped=existing if self.refresh is None else 0,
            refreshed=refreshed,
            new_albums=new_albums,
            new=new,
        )


ListenValues = tuple[int, str, str, str, str, str, str, str]
"""timestamp, artist, title, album, artist_mbid, album_mbid, track_mbid, source."""


def listen_shape(values: ListenValues, *, loved: bool = False) -> dict[str, Any]:
    """A listen as the RPC contract shows it (``history.*``, exports, ``scrobble`` events).

    The one place that shape is made: ``listen_dict`` for stored rows and ``scrobble_dict``
    for scrobbles just stored both come here.
    """
    timestamp, artist, title, album, artist_mbid, album_mbid, track_mbid, source = values
    return {
        "timestamp": timestamp,
        "date": iso_utc(timestamp),
        "artist": artist,
        "title": title,
        "album": album or None,
        "artist_mbid": artist_mbid or None,
        "album_mbid": album_mbid or None,
        "track_mbid": track_mbid or None,
        "source": source,
        "loved": loved,
    }


def listen_dict(row: sqlite3.Row) -> dict[str, Any]:
    """A stored listen: a row starting with ``LISTEN_COLUMNS`` (id, then the listen's fields)."""
    values: ListenValues = row[1:9]  # LISTEN_COLUMNS after the id, in that order
    return listen_shape(values, loved=bool(row[9]))


def scrobble_dict(scrobble: Scrobble, source: Source) -> dict[str, Any]:
    """A scrobble just stored (``StoreResult.new``), shaped as ``listen_dict``."""
    return listen_shape(
        (
            scrobble.timestamp,
            scrobble.artist,
            scrobble.title,
            scrobble.album,
            scrobble.artist_mbid,
            scrobble.album_mbid,
            scrobble.track_mbid,
            source,
        ),
        loved=scrobble.loved,
    )


async def count_listens(db: Database) -> int:
    # The running totals (exact: see ROLLUP_STATEMENTS): COUNT(*) reads the whole table.
    value = await db.scalar("SELECT COALESCE(SUM(n), 0) FROM day_totals", cached=True)
    return int(value) if isinstance(value, int) else 0


async def newest_listen(db: Database) -> sqlite3.Row | None:
    return await db.fetchone(
        f"SELECT {LISTEN_COLUMNS} FROM {LISTEN_FROM} ORDER BY l.timestamp DESC, l.id DESC LIMIT 1",
        cached=True,
    )


async def recent_listens(db: Database, limit: int) -> list[dict[str, Any]]:
    rows = await db.fetchall(
        f"SELECT {LISTEN_COLUMNS} FROM {LISTEN_FROM} ORDER BY l.timestamp DESC, l.id DESC LIMIT ?",
        (limit,),
    )
    return [listen_dict(row) for row in rows]
