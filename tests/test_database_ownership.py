"""The database is musiqued's alone: never another application's file (issue 26, item 5).
Never two daemons at once, however the lock file beside it is treated (item 6), is
``tests/test_single_daemon.py``'s."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from musiqued.app.cli import exit_status
from musiqued.errors import MusiqueError
from tests.fixtures.whole_daemon import whole_daemons
from tests.support import base_sections, write_config

EX_CONFIG = 78


def test_another_applications_database_is_refused_untouched(workdir: Path) -> None:
    """``[daemon] database`` naming another application's SQLite file (its own tables,
    ``user_version`` 0): one line naming the file and its tables, exit 78, and the file
    keeps exactly its tables, version and journal mode (our schema was written into it
    before). The daemon runs in the test's process (``tests/fixtures/whole_daemon.py``)."""
    database = workdir / "notes.db"
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("INSERT INTO notes (body) VALUES ('keep me')")
    conn.close()
    sections = base_sections(workdir)
    sections["daemon"]["database"] = str(database)
    config = write_config(workdir / "musiqued.toml", sections)
    with whole_daemons(workdir) as start, pytest.raises(MusiqueError) as stopped:
        start(config_path=config)
    assert exit_status(stopped.value) == EX_CONFIG
    assert f"musiqued: {stopped.value.message}" == (
        f"musiqued: database {database} holds tables that are not musiqued's ('notes'): it "
        "belongs to another application; set [daemon] database to another file"
    )
    with sqlite3.connect(database) as conn:
        tables = conn.execute("SELECT name FROM sqlite_master").fetchall()
        version = conn.execute("PRAGMA user_version").fetchone()
        body = conn.execute("SELECT body FROM notes").fetchall()
        mode = conn.execute("PRAGMA journal_mode").fetchone()
    conn.close()
    assert (tables, version, body, mode) == ([("notes",)], (0,), [("keep me",)], ("delete",))
