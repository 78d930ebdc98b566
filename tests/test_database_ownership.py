"""The database is musiqued's alone: never another application's file, never two daemons
at once, however the lock file beside it is treated (issue 26, items 5 and 6)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.support import DaemonProcess, base_sections, write_config

EX_CONFIG = 78


def configured(workdir: Path, **daemon: str) -> DaemonProcess:
    sections = base_sections(workdir)
    sections["daemon"].update(daemon)
    config = write_config(workdir / "musiqued.toml", sections)
    return DaemonProcess(workdir, config, Path(sections["daemon"]["socket"]))


def test_another_applications_database_is_refused_untouched(workdir: Path) -> None:
    """``[daemon] database`` naming another application's SQLite file (its own tables,
    ``user_version`` 0): one line naming the file and its tables, exit 78, and the file
    keeps exactly its tables and version (our schema was written into it before)."""
    database = workdir / "notes.db"
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("INSERT INTO notes (body) VALUES ('keep me')")
    conn.close()
    line = configured(workdir, database=str(database)).start(wait=False).refused(EX_CONFIG)
    assert line == (
        f"musiqued: database {database} holds tables that are not musiqued's ('notes'): it "
        "belongs to another application; set [daemon] database to another file"
    )
    with sqlite3.connect(database) as conn:
        tables = conn.execute("SELECT name FROM sqlite_master").fetchall()
        version = conn.execute("PRAGMA user_version").fetchone()
        body = conn.execute("SELECT body FROM notes").fetchall()
    conn.close()
    assert (tables, version, body) == ([("notes",)], (0,), [("keep me",)])
