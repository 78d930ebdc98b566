"""Versioned schema migrations. ``PRAGMA user_version`` records the applied version.

Table names follow the original application (``artists``, ``albums``, ``tracks``,
``listening_history``). Names are matched through ``*_key`` columns holding
``str.casefold()`` of the name, so identity is case-insensitive for every script, not only
ASCII as SQLite's ``lower()`` would be.
Sub-second defaults use ``julianday('now')``: ``unixepoch('subsec')`` needs SQLite 3.42,
and Python builds still ship 3.40.
"""

from __future__ import annotations

SCHEMA_V1 = """
CREATE TABLE artists (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    mbid TEXT NOT NULL DEFAULT '',
    url TEXT NOT NULL DEFAULT '',
    image_lastfm TEXT,
    image_spotify TEXT,
    spotify_id TEXT,
    enriched_at REAL,
    created_at REAL NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0)
);

CREATE TABLE albums (
    id INTEGER PRIMARY KEY,
    artist_id INTEGER NOT NULL REFERENCES artists(id),
    title TEXT NOT NULL,
    title_key TEXT NOT NULL,
    mbid TEXT NOT NULL DEFAULT '',
    url TEXT,
    image_lastfm TEXT,
    image_spotify TEXT,
    spotify_id TEXT,
    wiki_summary TEXT,
    release_year INTEGER,
    description TEXT,
    description_model TEXT,
    description_at REAL,
    enriched_at REAL,
    job_id INTEGER,                     -- the import/verify job that first stored it
    created_at REAL NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0),
    UNIQUE (artist_id, title_key)
);

CREATE TABLE tracks (
    id INTEGER PRIMARY KEY,
    artist_id INTEGER NOT NULL REFERENCES artists(id),
    title TEXT NOT NULL,
    title_key TEXT NOT NULL,
    mbid TEXT NOT NULL DEFAULT '',
    url TEXT NOT NULL DEFAULT '',
    UNIQUE (artist_id, title_key)
);

-- One row per listen. (timestamp, track_id) is unique, and a track is unique per
-- (artist name_key, title_key): that is Last.fm's own identity rule for a scrobble.
CREATE TABLE listening_history (
    id INTEGER PRIMARY KEY,
    timestamp INTEGER NOT NULL,
    date TEXT NOT NULL,
    track_id INTEGER NOT NULL REFERENCES tracks(id),
    artist_id INTEGER NOT NULL REFERENCES artists(id),
    album_id INTEGER REFERENCES albums(id),
    source TEXT NOT NULL CHECK (source IN ('import', 'tracker')),
    loved INTEGER NOT NULL DEFAULT 0,
    job_id INTEGER,
    -- As scrobbled: Last.fm may give one title (one tracks row) an MBID per release.
    track_mbid TEXT NOT NULL DEFAULT '',
    recorded_at REAL NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0)
);
CREATE UNIQUE INDEX listening_history_identity ON listening_history (timestamp, track_id);
CREATE INDEX listening_history_date ON listening_history (date);
-- (timestamp) ends with the rowid, so it is the (timestamp, id) order history.list pages by.
CREATE INDEX listening_history_timestamp ON listening_history (timestamp);
CREATE INDEX listening_history_album ON listening_history (album_id);

CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('import', 'verify')),
    state TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    window_from INTEGER,
    window_to INTEGER,
    checkpoint TEXT NOT NULL DEFAULT '{}',
    pages_done INTEGER NOT NULL DEFAULT 0,
    pages_total INTEGER NOT NULL DEFAULT 0,
    tracks_imported INTEGER NOT NULL DEFAULT 0,
    tracks_skipped INTEGER NOT NULL DEFAULT 0,
    tracks_errors INTEGER NOT NULL DEFAULT 0,
    error_reasons TEXT NOT NULL DEFAULT '[]',
    albums_enriched INTEGER NOT NULL DEFAULT 0,
    total_albums_to_enrich INTEGER NOT NULL DEFAULT 0,
    total_scrobbles INTEGER NOT NULL DEFAULT 0,
    active_s REAL NOT NULL DEFAULT 0,   -- seconds spent running, over every resume
    result TEXT NOT NULL DEFAULT '{}',
    error TEXT
);
CREATE INDEX jobs_state ON jobs (state);

-- Small persistent key/value state (tracker running flag and interval, ...).
CREATE TABLE daemon_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- One row per (item, source): the enrichment worker's persistent queue.
CREATE TABLE enrichment_queue (
    id INTEGER PRIMARY KEY,
    item_kind TEXT NOT NULL CHECK (item_kind IN ('album', 'artist')),
    item_id INTEGER NOT NULL,
    source TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'running', 'done', 'failed', 'skipped')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    result TEXT,                        -- what the source found, e.g. "image, wiki" or "not found"
    next_attempt_at REAL NOT NULL DEFAULT 0,
    job_id INTEGER,
    updated_at REAL NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0),
    UNIQUE (item_kind, item_id, source)
);
CREATE INDEX enrichment_queue_state ON enrichment_queue (state, next_attempt_at);
CREATE INDEX enrichment_queue_job ON enrichment_queue (job_id) WHERE job_id IS NOT NULL;

-- Every new album and artist enters the queue, whichever path created it. An album a job
-- created is tagged with it and counted on it here, in the insert itself: an import page
-- then needs no statements of its own to find its new albums.
CREATE TRIGGER albums_enqueue AFTER INSERT ON albums BEGIN
    INSERT OR IGNORE INTO enrichment_queue (item_kind, item_id, source, job_id)
    VALUES ('album', NEW.id, 'lastfm', NEW.job_id), ('album', NEW.id, 'spotify', NEW.job_id),
           ('album', NEW.id, 'ai', NEW.job_id);
    UPDATE jobs SET total_albums_to_enrich = total_albums_to_enrich + 1 WHERE id = NEW.job_id;
END;
CREATE TRIGGER artists_enqueue AFTER INSERT ON artists BEGIN
    INSERT OR IGNORE INTO enrichment_queue (item_kind, item_id, source)
    VALUES ('artist', NEW.id, 'spotify');
END;
"""

# Running totals of the whole history, so that ``stats.summary`` over everything reads a few
# thousand rows instead of every listen. Inserts are counted by the page write itself
# (``listens.write_page``, a handful of statements per page, in the page's transaction); updates of a listen's album (``skip_existing = false``) and deletions keep
# them exact through the triggers below. ``tests/test_stats_rollup.py`` checks them against a
# full aggregate after every path that writes listens.
SCHEMA_V2 = """
CREATE TABLE day_totals (day TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE artist_totals (artist_id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
CREATE TABLE album_totals (album_id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
CREATE TABLE track_totals (track_id INTEGER PRIMARY KEY, n INTEGER NOT NULL);

INSERT INTO day_totals SELECT date, COUNT(*) FROM listening_history GROUP BY date;
INSERT INTO artist_totals SELECT artist_id, COUNT(*) FROM listening_history GROUP BY artist_id;
INSERT INTO album_totals SELECT album_id, COUNT(*) FROM listening_history
    WHERE album_id IS NOT NULL GROUP BY album_id;
INSERT INTO track_totals SELECT track_id, COUNT(*) FROM listening_history GROUP BY track_id;

CREATE TRIGGER listening_history_album_totals AFTER UPDATE OF album_id ON listening_history
WHEN OLD.album_id IS NOT NEW.album_id BEGIN
    UPDATE album_totals SET n = n - 1 WHERE album_id = OLD.album_id;
    INSERT INTO album_totals SELECT NEW.album_id, 1 WHERE NEW.album_id IS NOT NULL
        ON CONFLICT (album_id) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER listening_history_totals_delete AFTER DELETE ON listening_history BEGIN
    UPDATE day_totals SET n = n - 1 WHERE day = OLD.date;
    UPDATE artist_totals SET n = n - 1 WHERE artist_id = OLD.artist_id;
    UPDATE album_totals SET n = n - 1 WHERE album_id = OLD.album_id;
    UPDATE track_totals SET n = n - 1 WHERE track_id = OLD.track_id;
END;
CREATE TRIGGER listening_history_totals_moved
AFTER UPDATE OF date, artist_id, track_id ON listening_history BEGIN
    UPDATE day_totals SET n = n - 1 WHERE day = OLD.date;
    UPDATE artist_totals SET n = n - 1 WHERE artist_id = OLD.artist_id;
    UPDATE track_totals SET n = n - 1 WHERE track_id = OLD.track_id;
    INSERT INTO day_totals VALUES (NEW.date, 1) ON CONFLICT (day) DO UPDATE SET n = n + 1;
    INSERT INTO artist_totals VALUES (NEW.artist_id, 1)
        ON CONFLICT (artist_id) DO UPDATE SET n = n + 1;
    INSERT INTO track_totals VALUES (NEW.track_id, 1)
        ON CONFLICT (track_id) DO UPDATE SET n = n + 1;
END;
"""
# Running counts of the enrichment queue, so that ``daemon.status`` reads a few rows instead
# of grouping the whole queue: rows per source and state, and per
# job the albums whose every row is done or skipped (``jobs.albums_enriched``). The triggers
# keep them exact for every insert, state change and deletion; a row's item and job never
# change. ``tests/test_enrichment_totals.py`` checks them against the full queries.
# "+q.job_id": look the album's rows up by item (a few rows), never through the job's index
# (all the rows of the job: a cost that grows with the import).
_OTHERS = """FROM enrichment_queue q WHERE q.item_kind = 'album' AND q.item_id = {row}.item_id
    AND +q.job_id = {row}.job_id AND q.id != {row}.id"""
# In parentheses: NOT binds more loosely than the arithmetic the deltas do with them.
_OTHERS_DONE = "(NOT EXISTS (SELECT 1 {others} AND q.state NOT IN ('done', 'skipped')))"
_OTHERS_EXIST = "(EXISTS (SELECT 1 {others}))"


def _job_albums_delta(row: str, delta: str) -> str:
    return f"""INSERT INTO job_albums_enriched (job_id, n)
        SELECT {row}.job_id, d FROM (SELECT {delta} AS d) WHERE d != 0
        ON CONFLICT (job_id) DO UPDATE SET n = n + excluded.n;"""


def _schema_v3() -> str:
    new_others, old_others = _OTHERS.format(row="NEW"), _OTHERS.format(row="OLD")
    new_done = "(NEW.state IN ('done', 'skipped'))"
    old_done = "(OLD.state IN ('done', 'skipped'))"
    new_rest_done = _OTHERS_DONE.format(others=new_others)
    old_rest_done = _OTHERS_DONE.format(others=old_others)
    new_rest = _OTHERS_EXIST.format(others=new_others)
    old_rest = _OTHERS_EXIST.format(others=old_others)
    album = "{row}.item_kind = 'album' AND {row}.job_id IS NOT NULL"
    return f"""
CREATE TABLE enrichment_totals (
    source TEXT NOT NULL,
    state TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (source, state)
) WITHOUT ROWID;
CREATE TABLE job_albums_enriched (job_id INTEGER PRIMARY KEY, n INTEGER NOT NULL);

INSERT INTO enrichment_totals
    SELECT source, state, COUNT(*) FROM enrichment_queue GROUP BY source, state;
INSERT INTO job_albums_enriched
    SELECT job_id, COUNT(*) FROM (
        SELECT job_id, item_id FROM enrichment_queue
        WHERE job_id IS NOT NULL AND item_kind = 'album'
        GROUP BY job_id, item_id
        HAVING SUM(state NOT IN ('done', 'skipped')) = 0)
    GROUP BY job_id;

CREATE TRIGGER enrichment_totals_insert AFTER INSERT ON enrichment_queue BEGIN
    INSERT INTO enrichment_totals VALUES (NEW.source, NEW.state, 1)
        ON CONFLICT (source, state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER enrichment_totals_update AFTER UPDATE OF source, state ON enrichment_queue
WHEN OLD.source IS NOT NEW.source OR OLD.state IS NOT NEW.state BEGIN
    UPDATE enrichment_totals SET n = n - 1 WHERE source = OLD.source AND state = OLD.state;
    INSERT INTO enrichment_totals VALUES (NEW.source, NEW.state, 1)
        ON CONFLICT (source, state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER enrichment_totals_delete AFTER DELETE ON enrichment_queue BEGIN
    UPDATE enrichment_totals SET n = n - 1 WHERE source = OLD.source AND state = OLD.state;
END;

-- An album is enriched when it has rows and every one is done or skipped: each trigger
-- adds (after - before) for the album of the row it saw, the other rows being as they are.
CREATE TRIGGER job_albums_insert AFTER INSERT ON enrichment_queue
WHEN {album.format(row="NEW")} BEGIN
    {_job_albums_delta("NEW", f"({new_rest_done} AND {new_done}) - ({new_rest} AND {new_rest_done})")}
END;
CREATE TRIGGER job_albums_update AFTER UPDATE OF state ON enrichment_queue
WHEN {album.format(row="NEW")} AND {old_done} != {new_done} BEGIN
    {_job_albums_delta("NEW", f"{new_rest_done} * ({new_done} - {old_done})")}
END;
CREATE TRIGGER job_albums_delete AFTER DELETE ON enrichment_queue
WHEN {album.format(row="OLD")} BEGIN
    {_job_albums_delta("OLD", f"({old_rest} AND {old_rest_done}) - ({old_rest_done} AND {old_done})")}
END;
"""


SCHEMA_V3 = _schema_v3()

# Listens per UTC quarter hour (``timestamp / 900``): every zone's day, week, month and year
# starts on a quarter hour (offsets of 30 and 45 minutes included), so a period's count in
# any zone is a sum of whole quarters, exact. Per UTC day (``timestamp / 86400``, an integer
# now) beside them: the whole history's count and ``per_day`` read a row per day.
SCHEMA_V4 = """
CREATE TABLE quarter_totals (quarter INTEGER PRIMARY KEY, n INTEGER NOT NULL);
INSERT INTO quarter_totals SELECT timestamp / 900, COUNT(*) FROM listening_history GROUP BY 1;
DROP TRIGGER listening_history_totals_delete;
DROP TRIGGER listening_history_totals_moved;
DROP TABLE day_totals;
CREATE TABLE day_totals (day INTEGER PRIMARY KEY, n INTEGER NOT NULL);
INSERT INTO day_totals SELECT quarter / 96, SUM(n) FROM quarter_totals GROUP BY 1;
CREATE TRIGGER listening_history_totals_delete AFTER DELETE ON listening_history BEGIN
    UPDATE day_totals SET n = n - 1 WHERE day = OLD.timestamp / 86400;
    UPDATE quarter_totals SET n = n - 1 WHERE quarter = OLD.timestamp / 900;
    UPDATE artist_totals SET n = n - 1 WHERE artist_id = OLD.artist_id;
    UPDATE album_totals SET n = n - 1 WHERE album_id = OLD.album_id;
    UPDATE track_totals SET n = n - 1 WHERE track_id = OLD.track_id;
END;
CREATE TRIGGER listening_history_totals_moved
AFTER UPDATE OF timestamp, artist_id, track_id ON listening_history BEGIN
    UPDATE day_totals SET n = n - 1 WHERE day = OLD.timestamp / 86400;
    UPDATE quarter_totals SET n = n - 1 WHERE quarter = OLD.timestamp / 900;
    UPDATE artist_totals SET n = n - 1 WHERE artist_id = OLD.artist_id;
    UPDATE track_totals SET n = n - 1 WHERE track_id = OLD.track_id;
    INSERT INTO day_totals VALUES (NEW.timestamp / 86400, 1)
        ON CONFLICT (day) DO UPDATE SET n = n + 1;
    INSERT INTO quarter_totals VALUES (NEW.timestamp / 900, 1)
        ON CONFLICT (quarter) DO UPDATE SET n = n + 1;
    INSERT INTO artist_totals VALUES (NEW.artist_id, 1)
        ON CONFLICT (artist_id) DO UPDATE SET n = n + 1;
    INSERT INTO track_totals VALUES (NEW.track_id, 1)
        ON CONFLICT (track_id) DO UPDATE SET n = n + 1;
END;
"""

# The ListenBrainz mirror. Its position is a listening_history id, not a time: a listen
# stored later with an older time (the late sweep, a file import) comes after it all the
# same. ``server`` is the API root and the user the token belongs to. Refused listens are
# kept by id, without a foreign key: the listen may go (``jobs undo``), the refusal stays.
SCHEMA_MIRROR = """
CREATE TABLE mirror_positions (
    server TEXT PRIMARY KEY,
    acknowledged_id INTEGER NOT NULL DEFAULT 0,  -- every listen up to it is sent or refused
    submitted INTEGER NOT NULL DEFAULT 0,        -- listens the server acknowledged
    refused INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0)
);
CREATE TABLE mirror_refusals (
    server TEXT NOT NULL,
    listen_id INTEGER NOT NULL,
    reason TEXT NOT NULL,
    refused_at REAL NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0),
    PRIMARY KEY (server, listen_id)
) WITHOUT ROWID;
"""

# The library's reads (storage/library.py). Search goes through full-text indexes of every
# track and album with its artist's name, folded for case and accents ("sigur ros" finds
# "Sigur Rós"), kept by triggers whichever path writes the names. The listens' indexes:
# a period's top lists read one covering index in time order; an artist's or a track's
# listens are found newest first without reading the others.
_SEARCH_TOKENIZER = "tokenize = 'unicode61 remove_diacritics 2'"
SCHEMA_LIBRARY = f"""
CREATE INDEX listening_history_period
    ON listening_history (timestamp, artist_id, album_id, track_id);
CREATE INDEX listening_history_artist ON listening_history (artist_id, timestamp);
CREATE INDEX listening_history_track ON listening_history (track_id, timestamp);

CREATE VIRTUAL TABLE track_search USING fts5(artist, title, {_SEARCH_TOKENIZER});
CREATE VIRTUAL TABLE album_search USING fts5(artist, title, {_SEARCH_TOKENIZER});
INSERT INTO track_search (rowid, artist, title)
    SELECT t.id, a.name, t.title FROM tracks t JOIN artists a ON a.id = t.artist_id;
INSERT INTO album_search (rowid, artist, title)
    SELECT al.id, a.name, al.title FROM albums al JOIN artists a ON a.id = al.artist_id;

CREATE TRIGGER track_search_insert AFTER INSERT ON tracks BEGIN
    INSERT INTO track_search (rowid, artist, title)
        SELECT NEW.id, name, NEW.title FROM artists WHERE id = NEW.artist_id;
END;
CREATE TRIGGER track_search_update AFTER UPDATE OF title, artist_id ON tracks BEGIN
    DELETE FROM track_search WHERE rowid = OLD.id;
    INSERT INTO track_search (rowid, artist, title)
        SELECT NEW.id, name, NEW.title FROM artists WHERE id = NEW.artist_id;
END;
CREATE TRIGGER track_search_delete AFTER DELETE ON tracks BEGIN
    DELETE FROM track_search WHERE rowid = OLD.id;
END;
CREATE TRIGGER album_search_insert AFTER INSERT ON albums BEGIN
    INSERT INTO album_search (rowid, artist, title)
        SELECT NEW.id, name, NEW.title FROM artists WHERE id = NEW.artist_id;
END;
CREATE TRIGGER album_search_update AFTER UPDATE OF title, artist_id ON albums BEGIN
    DELETE FROM album_search WHERE rowid = OLD.id;
    INSERT INTO album_search (rowid, artist, title)
        SELECT NEW.id, name, NEW.title FROM artists WHERE id = NEW.artist_id;
END;
CREATE TRIGGER album_search_delete AFTER DELETE ON albums BEGIN
    DELETE FROM album_search WHERE rowid = OLD.id;
END;
CREATE TRIGGER artist_search_rename AFTER UPDATE OF name ON artists BEGIN
    UPDATE track_search SET artist = NEW.name
        WHERE rowid IN (SELECT id FROM tracks WHERE artist_id = NEW.id);
    UPDATE album_search SET artist = NEW.name
        WHERE rowid IN (SELECT id FROM albums WHERE artist_id = NEW.id);
END;
"""


JOBS_REFRESHED = """
ALTER TABLE jobs ADD COLUMN tracks_refreshed INTEGER NOT NULL DEFAULT 0;
"""
"""Listens a job found stored already and refreshed (``skip_existing=false``), counted apart
from the ones it imported: imported + refreshed + skipped + errors = fetched."""


# File imports (issue 28). Each listen records where it came from (``origin``: ``lastfm`` for
# everything before, or the format of the file it was read from) and a Spotify track URI when
# the file gave one; ``source`` also says ``file``; a job may be of any kind a service
# registers (the runner fails one of an unknown kind), ``file`` among them. SQLite cannot
# change a CHECK constraint, so both tables are rebuilt the documented way (create the new
# table, copy, drop, rename, recreate the indexes and triggers), ids kept. The rename runs
# with ``legacy_alter_table``: the triggers of other tables that name ``jobs`` (albums_enqueue)
# are then left as they are rather than checked while ``jobs`` is briefly missing.
# ``file_matches``: which stored listen each file job's play was matched to, so a listen
# answers for one play only, across pages and resumes. Listen ids are AUTOINCREMENT from
# here on: after ``jobs undo`` removes the newest listens, their ids are not given again
# (the mirror's position is a listen id).
SCHEMA_FILES = """
CREATE TABLE listening_history_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp INTEGER NOT NULL,
    date TEXT NOT NULL,
    track_id INTEGER NOT NULL REFERENCES tracks(id),
    artist_id INTEGER NOT NULL REFERENCES artists(id),
    album_id INTEGER REFERENCES albums(id),
    source TEXT NOT NULL CHECK (source IN ('import', 'tracker', 'file')),
    loved INTEGER NOT NULL DEFAULT 0,
    job_id INTEGER,
    track_mbid TEXT NOT NULL DEFAULT '',
    recorded_at REAL NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0),
    origin TEXT NOT NULL DEFAULT 'lastfm' CHECK (origin IN
        ('lastfm', 'spotify', 'listenbrainz', 'maloja', 'lastfm-csv', 'scrobbler-log')),
    spotify_uri TEXT NOT NULL DEFAULT ''
);
INSERT INTO listening_history_new
    (id, timestamp, date, track_id, artist_id, album_id, source, loved, job_id, track_mbid,
     recorded_at)
SELECT id, timestamp, date, track_id, artist_id, album_id, source, loved, job_id, track_mbid,
       recorded_at
FROM listening_history;
DROP TABLE listening_history;

CREATE TABLE jobs_new (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    window_from INTEGER,
    window_to INTEGER,
    checkpoint TEXT NOT NULL DEFAULT '{}',
    pages_done INTEGER NOT NULL DEFAULT 0,
    pages_total INTEGER NOT NULL DEFAULT 0,
    tracks_imported INTEGER NOT NULL DEFAULT 0,
    tracks_skipped INTEGER NOT NULL DEFAULT 0,
    tracks_errors INTEGER NOT NULL DEFAULT 0,
    error_reasons TEXT NOT NULL DEFAULT '[]',
    albums_enriched INTEGER NOT NULL DEFAULT 0,
    total_albums_to_enrich INTEGER NOT NULL DEFAULT 0,
    total_scrobbles INTEGER NOT NULL DEFAULT 0,
    active_s REAL NOT NULL DEFAULT 0,
    result TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    tracks_refreshed INTEGER NOT NULL DEFAULT 0
);
INSERT INTO jobs_new SELECT * FROM jobs;
DROP TABLE jobs;

PRAGMA legacy_alter_table = ON;
ALTER TABLE listening_history_new RENAME TO listening_history;
ALTER TABLE jobs_new RENAME TO jobs;
PRAGMA legacy_alter_table = OFF;

CREATE UNIQUE INDEX listening_history_identity ON listening_history (timestamp, track_id);
CREATE INDEX listening_history_date ON listening_history (date);
CREATE INDEX listening_history_timestamp ON listening_history (timestamp);
CREATE INDEX listening_history_album ON listening_history (album_id);
CREATE INDEX listening_history_period
    ON listening_history (timestamp, artist_id, album_id, track_id);
CREATE INDEX listening_history_artist ON listening_history (artist_id, timestamp);
CREATE INDEX listening_history_track ON listening_history (track_id, timestamp);
CREATE INDEX listening_history_job ON listening_history (job_id) WHERE job_id IS NOT NULL;
CREATE INDEX jobs_state ON jobs (state);

CREATE TRIGGER listening_history_album_totals AFTER UPDATE OF album_id ON listening_history
WHEN OLD.album_id IS NOT NEW.album_id BEGIN
    UPDATE album_totals SET n = n - 1 WHERE album_id = OLD.album_id;
    INSERT INTO album_totals SELECT NEW.album_id, 1 WHERE NEW.album_id IS NOT NULL
        ON CONFLICT (album_id) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER listening_history_totals_delete AFTER DELETE ON listening_history BEGIN
    UPDATE day_totals SET n = n - 1 WHERE day = OLD.timestamp / 86400;
    UPDATE quarter_totals SET n = n - 1 WHERE quarter = OLD.timestamp / 900;
    UPDATE artist_totals SET n = n - 1 WHERE artist_id = OLD.artist_id;
    UPDATE album_totals SET n = n - 1 WHERE album_id = OLD.album_id;
    UPDATE track_totals SET n = n - 1 WHERE track_id = OLD.track_id;
END;
CREATE TRIGGER listening_history_totals_moved
AFTER UPDATE OF timestamp, artist_id, track_id ON listening_history BEGIN
    UPDATE day_totals SET n = n - 1 WHERE day = OLD.timestamp / 86400;
    UPDATE quarter_totals SET n = n - 1 WHERE quarter = OLD.timestamp / 900;
    UPDATE artist_totals SET n = n - 1 WHERE artist_id = OLD.artist_id;
    UPDATE track_totals SET n = n - 1 WHERE track_id = OLD.track_id;
    INSERT INTO day_totals VALUES (NEW.timestamp / 86400, 1)
        ON CONFLICT (day) DO UPDATE SET n = n + 1;
    INSERT INTO quarter_totals VALUES (NEW.timestamp / 900, 1)
        ON CONFLICT (quarter) DO UPDATE SET n = n + 1;
    INSERT INTO artist_totals VALUES (NEW.artist_id, 1)
        ON CONFLICT (artist_id) DO UPDATE SET n = n + 1;
    INSERT INTO track_totals VALUES (NEW.track_id, 1)
        ON CONFLICT (track_id) DO UPDATE SET n = n + 1;
END;

CREATE TABLE file_matches (
    job_id INTEGER NOT NULL,
    listen_id INTEGER NOT NULL,
    PRIMARY KEY (job_id, listen_id)
) WITHOUT ROWID;
"""


PERIOD_KINDS = ("artist", "album", "track")
PERIOD_LEVELS = ("month", "year")
"""The levels of ``SCHEMA_PERIOD_TOTALS``; ``JULY_YEAR_LEVELS``: the one
``SCHEMA_JULY_YEAR_TOTALS`` adds."""
JULY_YEAR_LEVELS = ("july_year",)


def period_key(level: str, moment: str) -> str:
    """SQL for the UTC month (``year * 12 + month - 1``), year, or year from July (that
    month's ``(month - 6) / 12``: the year its July is in) of Unix seconds ``moment``."""
    year = f"CAST(strftime('%Y', {moment}, 'unixepoch') AS INTEGER)"
    if level == "year":
        return year
    month = f"({year} * 12 + CAST(strftime('%m', {moment}, 'unixepoch') AS INTEGER) - 1)"
    return month if level == "month" else f"(({month} - 6) / 12)"


def _level_totals(kind: str, level: str) -> tuple[str, str, str]:
    """The table of ``kind``'s listens per UTC ``level``, and the trigger statements that
    take a listen away from it and add one to it."""
    table, column = f"{kind}_{level}s", f"{kind}_id"
    return (
        f"CREATE TABLE {table} ({level} INTEGER NOT NULL, {column} INTEGER NOT NULL,"
        f" n INTEGER NOT NULL, PRIMARY KEY ({level}, {column})) WITHOUT ROWID;",
        f"UPDATE {table} SET n = n - 1 WHERE {level} = {period_key(level, 'OLD.timestamp')}"
        f" AND {column} = OLD.{column};",
        f"INSERT INTO {table} SELECT {period_key(level, 'NEW.timestamp')}, NEW.{column}, 1"
        f" WHERE NEW.{column} IS NOT NULL"
        f" ON CONFLICT ({level}, {column}) DO UPDATE SET n = n + 1;",
    )


_MOVED = " OR ".join(
    f"OLD.{c} IS NOT NEW.{c}" for c in ("timestamp", "artist_id", "album_id", "track_id")
)


def _triggers(name: str, gone: list[str], added: list[str]) -> str:
    """``listening_history_<name>_delete`` and ``_moved``: a listen deleted is taken away,
    a listen changed is taken away and added again."""
    newline = "\n    "
    return f"""CREATE TRIGGER listening_history_{name}_delete AFTER DELETE ON listening_history BEGIN
    {newline.join(gone)}
END;
CREATE TRIGGER listening_history_{name}_moved
AFTER UPDATE OF timestamp, artist_id, album_id, track_id ON listening_history
WHEN {_MOVED} BEGIN
    {newline.join(gone)}
    {newline.join(added)}
END;
"""


def _period_totals() -> str:
    tables, fills = [], []
    gone = ["UPDATE hour_totals SET n = n - 1 WHERE hour = OLD.timestamp / 3600;"]
    added = [
        "INSERT INTO hour_totals VALUES (NEW.timestamp / 3600, 1)"
        " ON CONFLICT (hour) DO UPDATE SET n = n + 1;"
    ]
    for kind in PERIOD_KINDS:
        for level in PERIOD_LEVELS:
            create, take, add = _level_totals(kind, level)
            tables.append(create)
            gone.append(take)
            added.append(add)
        fills.append(
            f"INSERT INTO {kind}_months SELECT {period_key('month', 'timestamp')}, {kind}_id,"
            f" COUNT(*) FROM listening_history WHERE {kind}_id IS NOT NULL GROUP BY 1, 2;"
            f"\nINSERT INTO {kind}_years SELECT month / 12, {kind}_id, SUM(n) FROM {kind}_months"
            " GROUP BY 1, 2;"
        )
    return f"""
CREATE TABLE hour_totals (hour INTEGER PRIMARY KEY, n INTEGER NOT NULL);
INSERT INTO hour_totals SELECT timestamp / 3600, COUNT(*) FROM listening_history GROUP BY 1;
{chr(10).join(tables)}
{chr(10).join(fills)}
{_triggers("periods", gone, added)}"""


def _july_year_totals() -> str:
    tables, fills, gone, added = [], [], [], []
    for kind in PERIOD_KINDS:
        for level in JULY_YEAR_LEVELS:
            create, take, add = _level_totals(kind, level)
            tables.append(create)
            gone.append(take)
            added.append(add)
            fills.append(
                f"INSERT INTO {kind}_{level}s SELECT (month - 6) / 12, {kind}_id, SUM(n)"
                f" FROM {kind}_months GROUP BY 1, 2;"
            )
    return f"""
{chr(10).join(tables)}
{chr(10).join(fills)}
{_triggers("july_years", gone, added)}"""


SCHEMA_PERIOD_TOTALS = _period_totals()

# Listens per artist, album and track per UTC year from July too (``artist_july_years``,
# ...): a period of whole months is then a few blocks of years, years from July and months
# (storage/totals.py ``period_pieces``), so twelve months from July read one year from July
# rather than twelve months, and any twelve months are a year and at most three months.
# Kept like the month and year rows: by the page write and by the triggers below.
SCHEMA_JULY_YEAR_TOTALS = _july_year_totals()

# The listens' ``date`` column is read by no query: its index only cost every listen written.
DROP_DATE_INDEX = """
DROP INDEX listening_history_date;
"""

MIGRATIONS: tuple[str, ...] = (
    SCHEMA_V1,
    SCHEMA_V2,
    SCHEMA_V3,
    SCHEMA_V4,
    SCHEMA_MIRROR,
    SCHEMA_LIBRARY,
    JOBS_REFRESHED,
    SCHEMA_FILES,
    SCHEMA_PERIOD_TOTALS,
    SCHEMA_JULY_YEAR_TOTALS,
    DROP_DATE_INDEX,
)
LATEST_VERSION = len(MIGRATIONS)
